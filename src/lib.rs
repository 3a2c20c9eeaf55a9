//! GAN Playground core: a DCGAN trained with Burn on WebGPU (in the browser) or Flex (CPU),
//! with procedural datasets, an async training loop and sample-grid rendering. Everything here
//! compiles and is tested natively; `web` is the thin wasm boundary.

pub mod adam;
pub mod archive;
pub mod augment;
pub mod checkpoint;
pub mod config;
pub mod data;
#[cfg(not(target_arch = "wasm32"))]
pub mod decode;
pub mod error;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod modelfile;
pub mod parity;
pub mod preprocess;
pub mod recipe;
pub mod render;
pub mod rng;
pub mod sample;
pub mod settings;
pub mod train;

#[cfg(target_arch = "wasm32")]
mod web;

pub use config::{Loss, ModelConfig, TrainConfig};
pub use error::{GanError, Result};
