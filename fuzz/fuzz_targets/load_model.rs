//! Fuzzes the model-file loader: any bytes must give a model or a `BadModelFile` error, never a
//! panic, and never an allocation the config checks should have refused.
#![no_main]

use burn::tensor::Device;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gan_playground::modelfile::load(data, &Device::flex());
});
