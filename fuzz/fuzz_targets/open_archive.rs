//! Fuzzes `.zip` reading: any bytes must give entries or `BadImage` errors, never a panic, and
//! never more than the declared limits of memory (libFuzzer's RSS limit catches a bomb).
#![no_main]

use gan_playground::archive::Archive;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut archive) = Archive::open("fuzz.zip", data.to_vec()) {
        for i in 0..archive.len() {
            let _ = archive.entry(i);
        }
    }
});
