//! Drawing images from a generator: seeded, optionally truncated noise, so the page, a loaded
//! model file and the CLI give the same images for the same seed, and a generator forward with
//! BatchNorm on the standing statistics of a fixed reference batch, so an image depends on its
//! own z only, not on which other images share its batch.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData, Transaction};

use crate::error::{GanError, Result};
use crate::model::Generator;
use crate::rng::Rng;

/// Which images to draw: `count` latents from the stream of `seed`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draw {
    /// Seed of the latent stream: the same seed gives the same images.
    pub seed: u64,
    /// Number of images.
    pub count: usize,
    /// Truncation threshold: latent values beyond ±t are redrawn (the "truncation trick",
    /// Brock et al. 2018, BigGAN §3.1), trading variety for fidelity. `None` is plain N(0, 1).
    pub truncation: Option<f32>,
}

/// Most images one draw may ask for (a 16x16 grid).
pub const MAX_DRAW: usize = 256;

impl Draw {
    /// Checks the count and threshold before anything is allocated.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_DRAW).contains(&self.count) {
            return Err(GanError::InvalidConfig {
                field: "count",
                value: self.count.to_string(),
                allowed: "1 to 256 images",
            });
        }
        if let Some(t) = self.truncation {
            // Below ~0.05 almost every draw is rejected; BigGAN's figures go down to 0.04.
            if !(t.is_finite() && (0.05..=10.0).contains(&t)) {
                return Err(GanError::InvalidConfig {
                    field: "truncation",
                    value: t.to_string(),
                    allowed: "0.05 to 10 (or none)",
                });
            }
        }
        Ok(())
    }

    /// The latent vectors, `count * latent` values, row by row.
    pub fn latents(&self, latent: usize) -> Vec<f32> {
        let mut rng = Rng::new(self.seed);
        let mut z = rng.normals(self.count * latent, 0.0, 1.0);
        if let Some(t) = self.truncation {
            for v in &mut z {
                while v.abs() > t {
                    *v = rng.normals(1, 0.0, 1.0)[0];
                }
            }
        }
        z
    }
}

/// Rows of the fixed reference batch whose BatchNorm statistics every sample uses. 64 latents
/// give each channel of the 4x4 layer 1,024 values, enough for stable estimates.
pub const REFERENCE: usize = 64;
/// Seed of the reference batch (any fixed value; it must never change, or saved models would
/// draw different images).
const REFERENCE_SEED: u64 = 0x5EED_BA7C;

fn reference_latents(latent: usize) -> Vec<f32> {
    Rng::new(REFERENCE_SEED).normals(REFERENCE * latent, 0.0, 1.0)
}

/// The generator's images for `z` (`count` rows of `latent`) as `[count, C, S, S]` in [-1, 1],
/// still on the device: BatchNorm with the standing statistics of the reference batch (see
/// [`Generator::forward_standing`]), without autodiff, so nothing about training is touched.
pub fn generate(generator: &Generator, z: Vec<f32>, count: usize, device: &Device) -> Tensor<4> {
    let device = device.clone().inner();
    let latent = z.len() / count.max(1);
    let mut all = reference_latents(latent);
    all.extend(z);
    let z = Tensor::<2>::from_data(TensorData::new(all, [REFERENCE + count, latent]), &device);
    let (images, _) = generator.valid().forward_standing(z, REFERENCE); // [R + count, C, S, S]
    images.narrow(0, REFERENCE, count) // [count, C, S, S]
}

/// Each BatchNorm's (mean, variance) over the reference batch, `[C]` each, on the plain device:
/// saved as the running statistics, so any framework's inference mode draws our images.
pub fn standing_stats(
    generator: &Generator,
    latent: usize,
    device: &Device,
) -> Vec<(Tensor<1>, Tensor<1>)> {
    let device = device.clone().inner();
    let z = TensorData::new(reference_latents(latent), [REFERENCE, latent]);
    let z = Tensor::<2>::from_data(z, &device);
    generator.valid().forward_standing(z, REFERENCE).1
}

/// Draws `draw` from `generator` and reads the images back (async, so it works on WebGPU).
pub async fn images(
    generator: &Generator,
    latent: usize,
    draw: Draw,
    device: &Device,
) -> Result<Vec<f32>> {
    draw.validate()?;
    let images = generate(generator, draw.latents(latent), draw.count, device);
    let data = Transaction::default()
        .register(images)
        .execute_async()
        .await
        .map_err(|e| GanError::Backend(format!("reading samples from the device failed: {e:?}")))?;
    let values = data
        .into_iter()
        .next()
        .ok_or_else(|| GanError::Backend("the device returned no samples".into()))?;
    values
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| GanError::Backend(format!("unexpected sample data: {e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_bounds_every_latent_and_keeps_the_seed_stream() {
        let plain = Draw {
            seed: 3,
            count: 8,
            truncation: None,
        };
        let cut = Draw {
            truncation: Some(0.5),
            ..plain
        };
        let (a, b) = (plain.latents(100), cut.latents(100));
        assert_eq!(a, plain.latents(100), "same seed, same latents");
        assert!(a.iter().any(|v| v.abs() > 0.5));
        assert!(b.iter().all(|v| v.abs() <= 0.5));
        // Values already inside the threshold are kept where they were.
        let kept = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        assert_eq!(kept, a.iter().filter(|v| v.abs() <= 0.5).count());
        assert!(
            Draw {
                truncation: Some(0.0),
                ..plain
            }
            .validate()
            .is_err()
        );
        assert!(Draw { count: 0, ..plain }.validate().is_err());
    }
}
