//! Fuzzes picture decoding and preprocessing: any bytes must give a training image or a
//! `BadImage` error, never a panic or an unbounded allocation.
#![no_main]

use gan_playground::decode;
use gan_playground::preprocess::{Fit, Preprocess};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(picture) = decode::decode("fuzz input", data) {
        let prep = Preprocess {
            size: 16,
            channels: 3,
            fit: Fit::Pad,
            background: [255, 255, 255],
        };
        let _ = prep.apply(&picture.picture());
    }
});
