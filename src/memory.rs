//! How much memory training a config takes (weights, gradients, Adam moments, activations),
//! estimated from the layer list before anything is allocated, and checked against the limits
//! of the device it will run on: a config that does not fit is refused with the numbers.

use std::cell::Cell;

use serde::Serialize;

use crate::config::ModelConfig;
use crate::error::{GanError, Result};

/// What the device allows. WebGPU reports per-buffer limits only (no total); the CPU backend in
/// wasm32 has the 4 GiB address space in all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest single tensor, in bytes (`maxStorageBufferBindingSize`, capped by
    /// `maxBufferSize`, on WebGPU).
    pub max_tensor: u64,
    /// All of training together, in bytes, when the device has such a limit.
    pub total: Option<u64>,
    /// Where the limits come from, for messages ("this GPU", "the CPU in WebAssembly").
    pub source: &'static str,
}

impl Limits {
    /// 128 MiB per buffer: WebGPU's default `maxStorageBufferBindingSize`, which every adapter
    /// supports (WebGPU spec, "Limits"). What applies until a device reports its own.
    pub const DEFAULT: Limits = Limits {
        max_tensor: 128 << 20,
        total: None,
        source: "every WebGPU device",
    };
}

thread_local! {
    static LIMITS: Cell<Limits> = const { Cell::new(Limits::DEFAULT) };
}

/// Sets the limits of the device in use (the wasm boundary does, from the WebGPU adapter).
pub fn set_limits(limits: Limits) {
    LIMITS.set(limits);
}

/// The limits of the device in use.
pub fn limits() -> Limits {
    LIMITS.get()
}

/// Bytes training takes, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Estimate {
    /// Parameters of G and D, BatchNorm running statistics and spectral-norm vectors included.
    pub params: usize,
    /// Parameters that get gradients (and Adam moments).
    pub trainable: usize,
    /// Weights of G and D, and the generator average when on.
    pub weights: u64,
    /// One gradient per trainable parameter.
    pub gradients: u64,
    /// Adam's two moments per trainable parameter.
    pub adam: u64,
    /// Activations kept for the backward pass at the peak of a step, plus the sample grid.
    pub activations: u64,
    /// The largest single tensor.
    pub largest: u64,
    /// Everything above together.
    pub total: u64,
}

const F32: u64 = 4;

/// Each layer keeps about this many tensors of its output's size for the backward pass:
/// the convolution's output, the normalisation's output and the activation's output.
const KEPT_PER_LAYER: u64 = 3;

impl ModelConfig {
    /// Elements of each layer's output for one image: G's (4x4 up to the image), then D's.
    fn layer_outputs(&self) -> (Vec<usize>, Vec<usize>) {
        let n = self.num_upsamples();
        let top = self.width << n.saturating_sub(1);
        let mut g = vec![top * 16];
        let (mut c, mut side) = (top, 4);
        for _ in 1..n {
            (c, side) = (c / 2, side * 2);
            g.push(c * side * side);
        }
        g.push(self.channels * self.image_size * self.image_size);
        let (mut c, mut side) = (self.width, self.image_size / 2);
        let mut d = vec![c * side * side];
        for _ in 1..n {
            (c, side) = (c * 2, side / 2);
            d.push(c * side * side);
        }
        d.push(1);
        (g, d)
    }

    /// Parameters that get gradients: all but BatchNorm's running mean and variance (2 per
    /// channel) and spectral norm's `u` vectors.
    pub fn trainable_count(&self) -> usize {
        let n = self.num_upsamples();
        let top = self.width << n.saturating_sub(1);
        // G: a BatchNorm after every layer but the last.
        let mut stats: usize = (0..n).map(|i| 2 * (top >> i)).sum();
        if self.spectral_norm {
            // D: one `u` per conv, of its output channels; no BatchNorm.
            stats += (0..n).map(|i| self.width << i).sum::<usize>() + 1;
        } else {
            // D: BatchNorm after every conv but the first and the last.
            stats += (1..n).map(|i| 2 * (self.width << i)).sum::<usize>();
        }
        self.param_count() - stats
    }

    /// The memory training takes at `batch` images per step with a `grid`-image sample grid,
    /// with the generator average (`ema`) or not.
    pub fn memory(&self, batch: usize, grid: usize, ema: bool) -> Estimate {
        let params = self.param_count();
        let trainable = self.trainable_count();
        let (g, d) = self.layer_outputs();
        let (g, d): (u64, u64) = (
            g.iter().sum::<usize>() as u64,
            d.iter().sum::<usize>() as u64,
        );
        let g_params = self.generator_params() as u64;
        let weights = F32 * (params as u64 + if ema { g_params } else { 0 });
        let gradients = F32 * trainable as u64;
        let adam = 2 * F32 * trainable as u64;
        // D sees a real and a fake batch; G's step runs G and D once more.
        let activations =
            F32 * KEPT_PER_LAYER * batch as u64 * (2 * g + 3 * d) + F32 * grid as u64 * g;
        let largest =
            (self.activation_bytes(batch.max(grid)) as u64).max(F32 * self.largest_weight() as u64);
        Estimate {
            params,
            trainable,
            weights,
            gradients,
            adam,
            activations,
            largest,
            total: weights + gradients + adam + activations,
        }
    }

    /// Elements of the largest weight tensor (G's first layer or a widest conv).
    fn largest_weight(&self) -> usize {
        let n = self.num_upsamples();
        let top = self.width << n.saturating_sub(1);
        (self.latent * top * 16).max(top * (top / 2).max(1) * 16)
    }

    /// Refuses a batch (or sample grid) that does not fit the device in use, naming the numbers.
    pub fn check_memory(&self, batch: usize, grid: usize, ema: bool) -> Result<()> {
        let e = self.memory(batch, grid, ema);
        let limits = limits();
        let mb = |b: u64| format!("{:.0} MB", b as f64 / 1e6);
        if e.largest > limits.max_tensor {
            return Err(GanError::InvalidConfig {
                field: "batch",
                value: format!(
                    "{batch} images at width {}, {} px (its largest tensor is {}; {} allows {} per tensor)",
                    self.width,
                    self.image_size,
                    mb(e.largest),
                    limits.source,
                    mb(limits.max_tensor)
                ),
                allowed: "a smaller batch, width or image size",
            });
        }
        if let Some(total) = limits.total.filter(|&t| e.total > t) {
            return Err(GanError::InvalidConfig {
                field: "batch",
                value: format!(
                    "{batch} images at width {}, {} px (training needs about {}: weights {}, gradients {}, Adam {}, activations {}; {} has {})",
                    self.width,
                    self.image_size,
                    mb(e.total),
                    mb(e.weights),
                    mb(e.gradients),
                    mb(e.adam),
                    mb(e.activations),
                    limits.source,
                    mb(total)
                ),
                allowed: "a smaller batch, width or image size",
            });
        }
        Ok(())
    }
}
