//! A small seeded random generator (SplitMix64, Steele et al. 2014) owned by the trainer, so that
//! weights, noise and batch order are the same on every backend and every run for one seed.

/// SplitMix64: 64-bit state, passes BigCrush, trivially portable (no platform RNG involved).
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose whole stream is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// The whole state: `Rng::new(rng.state())` goes on with the same stream (checkpoints).
    pub fn state(&self) -> u64 {
        self.state
    }

    /// Next 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        // Constants from the SplitMix64 reference (Vigna, prng.di.unimi.it/splitmix64.c).
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), with 53 bits of precision.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }

    /// Standard normal samples by Box-Muller (pairs; the second half is used too).
    pub fn normals(&mut self, count: usize, mean: f32, std: f32) -> Vec<f32> {
        let mut out = Vec::with_capacity(count + 1);
        while out.len() < count {
            let u1 = 1.0 - self.uniform(); // (0, 1]: keeps ln finite
            let u2 = self.uniform();
            let r = (-2.0 * u1.ln()).sqrt();
            let t = std::f64::consts::TAU * u2;
            out.push(mean + std * (r * t.cos()) as f32);
            out.push(mean + std * (r * t.sin()) as f32);
        }
        out.truncate(count);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normals_have_the_requested_moments() {
        let xs = Rng::new(7).normals(20_000, 1.0, 0.5);
        let mean = xs.iter().sum::<f32>() / xs.len() as f32;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / xs.len() as f32;
        assert!((mean - 1.0).abs() < 0.02, "mean {mean}");
        assert!((var.sqrt() - 0.5).abs() < 0.02, "std {}", var.sqrt());
    }
}
