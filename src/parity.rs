//! Cross-backend parity: the same seeded model, data and noise trained on two devices (WebGPU
//! and Flex in the browser), compared step by step. Guards against backend bugs such as the
//! NaN generator loss seen with burn 0.22.1's fusion + autotune on WebGPU.

use burn::tensor::Device;

use crate::config::{ModelConfig, TrainConfig};
use crate::data::Dataset;
use crate::error::Result;
use crate::train::{Tick, Trainer};

/// Per-step comparison of two backends.
#[derive(Debug, Clone, PartialEq)]
pub struct ParityStep {
    /// Steps done when this was read (0 = the untrained forward pass).
    pub step: u64,
    /// (D loss, G loss) on backend a.
    pub losses_a: (f32, f32),
    /// (D loss, G loss) on backend b.
    pub losses_b: (f32, f32),
    /// Largest absolute difference between the two generators' fixed-noise samples.
    pub sample_max_diff: f32,
}

/// Trains the same seeded GAN on `a` and `b` for `steps` steps, one step per readback. Values are
/// reported as they are, NaN included: judging them is the caller's business.
pub async fn compare(
    model: &ModelConfig,
    train: &TrainConfig,
    data: &Dataset,
    grid: usize,
    steps: usize,
    a: &Device,
    b: &Device,
) -> Result<Vec<ParityStep>> {
    let mut ta = Trainer::new(model.clone(), train.clone(), data, grid, a)?;
    let mut tb = Trainer::new(model.clone(), train.clone(), data, grid, b)?;
    let mut report = Vec::with_capacity(steps + 1);
    for i in 0..=steps {
        let k = usize::from(i > 0);
        let (ra, rb) = (ta.run_unchecked(k).await?, tb.run_unchecked(k).await?);
        report.push(diff(&ra, &rb));
    }
    Ok(report)
}

fn diff(a: &Tick, b: &Tick) -> ParityStep {
    // NaN compares false, so a NaN sample would vanish from a max: count it as infinite.
    let sample_max_diff = a
        .samples
        .iter()
        .zip(&b.samples)
        .map(|(x, y)| match (x - y).abs() {
            d if d.is_nan() => f32::INFINITY,
            d => d,
        })
        .fold(0.0, f32::max);
    ParityStep {
        step: a.step,
        losses_a: (a.d_loss, a.g_loss),
        losses_b: (b.d_loss, b.g_loss),
        sample_max_diff,
    }
}
