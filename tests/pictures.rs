//! Native tests of what users feed in and take out: picture preprocessing and decoding (bad files
//! named and skipped), the `gan` CLI end to end, going on training from a file, and samples that
//! depend on their own seed only.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::Device;
use gan_playground::GanError;
use gan_playground::config::{ModelConfig, TrainConfig};
use gan_playground::data;
use gan_playground::decode;
use gan_playground::modelfile::{self, rfc3339};
use gan_playground::preprocess::{Fit, Picture, Preprocess};
use gan_playground::render::grid_from_nchw;
use gan_playground::sample::{self, Draw};
use gan_playground::train::Trainer;

/// A fresh scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gan-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn prep(size: usize, channels: usize, fit: Fit) -> Preprocess {
    Preprocess {
        size,
        channels,
        fit,
        background: [255, 255, 255],
    }
}

/// A `w`x`h` picture whose left half is `left` and right half `right` (RGBA).
fn halves(w: usize, h: usize, left: [u8; 4], right: [u8; 4]) -> Vec<u8> {
    (0..w * h)
        .flat_map(|i| if i % w < w / 2 { left } else { right })
        .collect()
}

const RED: [u8; 4] = [255, 0, 0, 255];
const BLUE: [u8; 4] = [0, 0, 255, 255];

#[test]
fn preprocessing_crops_pads_resizes_blends_alpha_and_grays() {
    // 4x2, red | blue. Crop keeps the central 2x2: one red and one blue column.
    let rgba = halves(4, 2, RED, BLUE);
    let pic = || Picture {
        width: 4,
        height: 2,
        rgba: &rgba,
    };
    let crop = prep(8, 3, Fit::Crop).apply(&pic()).unwrap();
    assert_eq!(crop.len(), 8 * 8 * 3);
    assert_eq!(&crop[..3], &[255, 0, 0], "top-left is red");
    assert_eq!(&crop[7 * 3..8 * 3], &[0, 0, 255], "top-right is blue");
    // Pad: the whole 2:1 picture in the middle rows, white above and below.
    let pad = prep(8, 3, Fit::Pad).apply(&pic()).unwrap();
    assert_eq!(&pad[..3], &[255, 255, 255], "padding is the background");
    assert_eq!(&pad[(4 * 8) * 3..(4 * 8) * 3 + 3], &[255, 0, 0]);
    assert_eq!(&pad[(7 * 8 + 4) * 3..(7 * 8 + 4) * 3 + 3], &[255, 255, 255]);
    // Stretch fills the square: no background anywhere.
    let stretch = prep(8, 3, Fit::Stretch).apply(&pic()).unwrap();
    assert!(stretch.chunks(3).all(|p| p[1] == 0), "only red and blue");
    // Half-transparent red over white, and BT.601 luma of pure red (0.299 * 255 = 76).
    let see_through = [255u8, 0, 0, 128].repeat(4);
    let p = Picture {
        width: 2,
        height: 2,
        rgba: &see_through,
    };
    assert_eq!(
        &prep(8, 3, Fit::Crop).apply(&p).unwrap()[..3],
        &[255, 127, 127]
    );
    let red = RED.repeat(4);
    let p = Picture {
        width: 2,
        height: 2,
        rgba: &red,
    };
    assert_eq!(prep(8, 1, Fit::Crop).apply(&p).unwrap(), vec![76; 64]);
    // Shrinking a one-pixel checkerboard averages it to gray instead of aliasing.
    let board: Vec<u8> = (0..64 * 64)
        .flat_map(|i| {
            let v = if (i % 64 + i / 64) % 2 == 0 { 255 } else { 0 };
            [v, v, v, 255]
        })
        .collect();
    let p = Picture {
        width: 64,
        height: 64,
        rgba: &board,
    };
    let small = prep(16, 1, Fit::Crop).apply(&p).unwrap();
    assert!(small.iter().all(|&v| (120..=135).contains(&v)), "{small:?}");
    // Bad settings and pictures are named.
    assert!(prep(4, 3, Fit::Crop).validate().is_err());
    let e = prep(8, 3, Fit::Crop)
        .apply(&Picture {
            width: 3,
            height: 3,
            rgba: &[0; 5],
        })
        .unwrap_err();
    assert!(e.to_string().contains("3x3 with 5 bytes"), "{e}");
}

#[test]
fn duplicates_are_dropped_after_preprocessing() {
    let a = halves(8, 8, RED, BLUE);
    let b = halves(8, 8, BLUE, RED);
    let red = RED.repeat(8 * 8);
    let big_red = RED.repeat(32 * 32); // the same picture, larger: identical once resized
    let pics = [(8, &a), (8, &b), (8, &a), (8, &red), (32, &big_red)].map(|(s, px)| Picture {
        width: s,
        height: s,
        rgba: px,
    });
    let (set, dups) = prep(8, 3, Fit::Crop).dataset(pics).unwrap();
    assert_eq!(set.len(), 3);
    assert_eq!(dups, vec![None, None, Some(0), None, Some(3)]);
}

/// A PNG of `w`x`h` filled with `rgba`.
fn png(w: u32, h: u32, rgba: [u8; 4]) -> Vec<u8> {
    encode(w, h, rgba, image::ImageFormat::Png)
}

fn encode(w: u32, h: u32, rgba: [u8; 4], format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbaImage::from_pixel(w, h, image::Rgba(rgba));
    let mut out = std::io::Cursor::new(Vec::new());
    let img = image::DynamicImage::ImageRgba8(img);
    // JPEG and BMP encoders here take RGB only.
    let img = match format {
        image::ImageFormat::Jpeg => image::DynamicImage::ImageRgb8(img.to_rgb8()),
        _ => img,
    };
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// CRC-32 (ISO-HDLC, as PNG chunks use; PNG spec §5.5), to forge a valid header.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG whose (correctly checksummed) header declares `w`x`h` pixels.
fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut bytes = png(1, 1, RED);
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&bytes[12..29]); // chunk type + IHDR data
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// A folder of good pictures in every supported format and the bad files a user might have.
fn picture_folder(dir: &Path) -> Vec<(&'static str, &'static str)> {
    use image::ImageFormat::*;
    let colours = [[200, 30, 30, 255], [30, 200, 30, 255], [30, 30, 200, 255]];
    for (i, c) in colours.iter().enumerate() {
        std::fs::write(dir.join(format!("a{i}.png")), png(40, 30, *c)).unwrap();
    }
    std::fs::create_dir(dir.join("more")).unwrap();
    std::fs::write(
        dir.join("more/b.jpg"),
        encode(20, 20, [90, 90, 20, 255], Jpeg),
    )
    .unwrap();
    std::fs::write(
        dir.join("more/c.bmp"),
        encode(20, 20, [20, 90, 90, 255], Bmp),
    )
    .unwrap();
    std::fs::write(
        dir.join("more/d.gif"),
        encode(20, 20, [90, 20, 90, 255], Gif),
    )
    .unwrap();
    std::fs::write(
        dir.join("more/e.webp"),
        encode(20, 20, [10, 10, 10, 255], WebP),
    )
    .unwrap();
    std::fs::write(dir.join("copy-of-a0.png"), png(40, 30, colours[0])).unwrap();
    std::fs::write(dir.join(".DS_Store"), b"hidden junk").unwrap();
    let bad: [(&str, Vec<u8>, &str); 5] = [
        ("empty.png", vec![], "empty"),
        ("notes.png", b"just some text\n".to_vec(), "not a picture"),
        ("cut.png", png(64, 64, RED)[..60].to_vec(), "damaged"),
        (
            "huge.png",
            png_declaring(100_000, 100_000),
            "100000x100000 pixels is too large",
        ),
        ("big.png", vec![0; 30 << 20], "30 MB"),
    ];
    for (name, bytes, _) in &bad {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    bad.map(|(n, _, why)| (n, why)).to_vec()
}

#[test]
fn a_folder_loads_every_good_picture_and_names_every_bad_file() {
    let dir = scratch("folder");
    let bad = picture_folder(&dir);
    let f = decode::folder(&dir, &prep(16, 3, Fit::Crop)).unwrap();
    assert_eq!(f.files, 13, "hidden files are not read");
    assert_eq!(f.dataset.len(), 7, "3 PNG + JPEG, BMP, GIF, WebP");
    assert_eq!(f.duplicates, 1);
    assert_eq!(f.skipped.len(), bad.len(), "{:?}", f.skipped);
    for (name, why) in bad {
        let e = f
            .skipped
            .iter()
            .find(|e| matches!(e, GanError::BadImage { name: n, .. } if n == name))
            .unwrap_or_else(|| panic!("{name} is reported: {:?}", f.skipped));
        assert!(e.to_string().contains(why), "{name}: {e}");
    }
    let e = decode::folder(&dir.join("missing"), &prep(16, 3, Fit::Crop)).unwrap_err();
    assert!(e.to_string().contains("readable folder"), "{e}");
}

fn gan(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gan"))
        .args(args)
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

#[test]
fn the_cli_trains_on_a_folder_samples_resumes_and_refuses_bad_input() {
    let dir = scratch("cli");
    let pics = dir.join("pictures");
    std::fs::create_dir(&pics).unwrap();
    picture_folder(&pics);
    let model = dir.join("m.safetensors");
    let m = model.to_str().unwrap();
    let common = [
        "--size", "16", "--width", "8", "--latent", "16", "--batch", "4",
    ];
    let mut args = vec!["train", pics.to_str().unwrap(), "-o", m, "--steps", "3"];
    args.extend(common);
    args.extend(["--fit", "pad", "--title", "Test set"]);
    let (ok, _, err) = gan(&args);
    assert!(ok, "{err}");
    assert!(err.contains("skipped notes.png: not a picture"), "{err}");
    assert!(
        err.contains("7 pictures from 13 files (5 skipped, 1 duplicates dropped)"),
        "{err}"
    );
    // 7 pictures get the tiny-set recipe, with the batch given on the command line.
    assert!(
        err.contains("recipe: Tiny set (under 100 pictures); 7 pictures, batch 4, hinge loss, spectral norm on, DiffAugment 1, flip on, EMA 0"),
        "{err}"
    );

    let (ok, info, err) = gan(&["info", m]);
    assert!(ok, "{err}");
    assert!(info.contains("title: Test set"), "{info}");
    assert!(
        info.contains(r#""count":7"#) && info.contains(r#""source":"folder pictures""#),
        "{info}"
    );
    assert!(info.contains(r#""fit":"pad""#), "{info}");
    assert!(
        info.contains(r#""spectral_norm": true"#) && info.contains(r#""flip": true"#),
        "the recipe travels in the file: {info}"
    );
    assert!(
        info.contains("step: 3") && info.contains("discriminator included: yes"),
        "{info}"
    );

    // `sample` writes exactly the grid the core draws for that seed.
    let png_path = dir.join("s.png");
    let (ok, _, err) = gan(&[
        "sample",
        m,
        "--seed",
        "4",
        "--count",
        "9",
        "-o",
        png_path.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let written = image::open(&png_path).unwrap().to_rgba8();
    assert_eq!(written.dimensions(), (3 * 16 + 4, 3 * 16 + 4));
    let loaded = modelfile::load(&std::fs::read(&model).unwrap(), &Device::flex()).unwrap();
    let draw = Draw {
        seed: 4,
        count: 9,
        truncation: None,
    };
    let images =
        pollster::block_on(sample::images(&loaded.generator, 16, draw, &Device::flex())).unwrap();
    assert_eq!(written.into_raw(), grid_from_nchw(&images, 16, 3, 3).pixels);

    // --limit keeps the first pictures only.
    let other = dir.join("limited.safetensors");
    let mut args = vec![
        "train",
        pics.to_str().unwrap(),
        "--steps",
        "1",
        "--limit",
        "2",
    ];
    args.extend(["-o", other.to_str().unwrap()]);
    args.extend(common);
    let (ok, _, err) = gan(&args);
    assert!(ok && err.contains("; 2 pictures, batch 4"), "{err}");

    let mut args = vec![
        "train",
        pics.to_str().unwrap(),
        "-o",
        m,
        "--steps",
        "2",
        "--resume",
        m,
    ];
    args.extend(common);
    let (ok, _, err) = gan(&args);
    assert!(ok, "{err}");
    assert!(
        gan(&["info", m]).1.contains("step: 5"),
        "resumed from step 3"
    );

    // Refusals name the problem and exit non-zero.
    let notes = pics.join("notes.png");
    for (args, expect) in [
        (
            vec!["sample", notes.to_str().unwrap()],
            "cannot load this model file",
        ),
        (vec!["sample", m, "--count", "0"], "`count` = 0"),
        (vec!["sample", m, "--truncation", "0"], "truncation"),
        (
            vec!["train", "--builtin", "faces"],
            "unknown built-in dataset \"faces\"",
        ),
        (
            vec!["train", "--builtin", "glyphs", "--resume", m, "-o", m],
            "16x16x1 data for a 16x16x3 model",
        ),
        (
            vec!["train", "--builtin", "glyphs", "--batch", "1"],
            "`batch` = 1",
        ),
        (vec!["train", "/no/such/folder"], "readable folder"),
        (
            vec!["train", "--builtin", "glyphs", "--recipe", "huge"],
            "auto, tiny, small, large or reference",
        ),
    ] {
        let (ok, _, err) = gan(&args);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    assert!(
        gan(&["info", m]).1.contains("step: 5"),
        "a refused resume leaves the file alone"
    );
}

#[test]
fn a_loaded_file_goes_on_training_from_its_step_and_draws_what_the_trainer_drew() {
    let set = data::builtin("glyphs", 16, 1).unwrap();
    let model = ModelConfig::new()
        .with_image_size(16)
        .with_channels(1)
        .with_latent(16)
        .with_width(8);
    let train = TrainConfig::new().with_batch(8);
    let device = Device::flex();
    let mut t = Trainer::new(model, train.clone(), &set, 9, &device).unwrap();
    let before = pollster::block_on(t.run(3)).unwrap();
    let bytes = pollster::block_on(t.save(true, &[])).unwrap();
    let loaded = modelfile::load(&bytes, &device).unwrap();
    let draw = t.draw();
    let drawn = pollster::block_on(sample::images(&loaded.generator, 16, draw, &device)).unwrap();
    assert_eq!(
        drawn, before.samples,
        "the file draws exactly the trainer's grid"
    );

    let mut resumed = Trainer::resume(loaded, train.clone(), &set, 9, &device).unwrap();
    let tick = pollster::block_on(resumed.run(2)).unwrap();
    assert_eq!(tick.step, 5);
    assert!(tick.d_loss.is_finite() && tick.g_loss.is_finite());
    assert_ne!(tick.samples, before.samples, "training went on");

    let g_only = pollster::block_on(t.save(false, &[])).unwrap();
    let e = Trainer::resume(
        modelfile::load(&g_only, &device).unwrap(),
        train,
        &set,
        9,
        &device,
    );
    assert!(e.err().unwrap().to_string().contains("no discriminator"));
}

#[test]
fn a_sample_depends_on_its_own_seed_only() {
    let set = data::builtin("shapes", 16, 1).unwrap();
    let model = ModelConfig::new()
        .with_image_size(16)
        .with_latent(16)
        .with_width(8);
    let device = Device::flex();
    let mut t = Trainer::new(model, TrainConfig::new().with_batch(8), &set, 4, &device).unwrap();
    pollster::block_on(t.run(3)).unwrap();
    let draw = |count| Draw {
        seed: 11,
        count,
        truncation: None,
    };
    let one = pollster::block_on(sample::images(t.generator(), 16, draw(1), &device)).unwrap();
    let many = pollster::block_on(sample::images(t.generator(), 16, draw(8), &device)).unwrap();
    let worst = one
        .iter()
        .zip(&many)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(
        worst < 1e-5,
        "the first image alone and in a batch of 8 differ by {worst}"
    );
    let other = Draw {
        seed: 12,
        ..draw(1)
    };
    let other = pollster::block_on(sample::images(t.generator(), 16, other, &device)).unwrap();
    assert_ne!(one, other);
}

#[test]
fn creation_times_are_rfc3339_utc() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_796_435_283), "2026-12-05T01:48:03Z");
    assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
}

#[test]
fn the_page_checks_each_file_header_before_decoding() {
    use gan_playground::preprocess::{HEADER_BYTES, MAX_FILE_BYTES, check_header};
    let good = png(40, 30, RED);
    assert_eq!(
        check_header("a.png", good.len() as u64, &good),
        Ok((40, 30))
    );
    let jpeg = encode(20, 10, RED, image::ImageFormat::Jpeg);
    assert_eq!(
        check_header(
            "b.jpg",
            jpeg.len() as u64,
            &jpeg[..HEADER_BYTES.min(jpeg.len())]
        ),
        Ok((20, 10))
    );
    let cases: [(&str, u64, Vec<u8>, &str); 4] = [
        ("empty.png", 0, vec![], "empty.png: the file is empty"),
        (
            "big.png",
            MAX_FILE_BYTES + 1,
            good.clone(),
            "big.png: the file is 20 MB; pictures up to 20 MB",
        ),
        (
            "notes.png",
            15,
            b"just some text\n".to_vec(),
            "notes.png: not a picture",
        ),
        (
            "huge.png",
            70,
            png_declaring(100_000, 100_000),
            "100000x100000 pixels is too large",
        ),
    ];
    for (name, len, head, expect) in cases {
        let e = check_header(name, len, &head).unwrap_err();
        assert!(matches!(e, GanError::BadImage { .. }), "{name}: {e:?}");
        assert!(e.to_string().contains(expect), "{name}: {e}");
    }
}

#[test]
fn uploaded_pictures_train_and_can_be_removed() {
    use gan_playground::preprocess::Builder;
    use gan_playground::settings::{Settings, UPLOAD, Uploaded};
    let mut b = Builder::new(prep(16, 3, Fit::Crop)).unwrap();
    let pics: Vec<Vec<u8>> = (0..6u8)
        .map(|i| [i * 40, 255 - i * 40, 90, 255].repeat(16 * 16))
        .collect();
    for p in &pics {
        let pic = Picture {
            width: 16,
            height: 16,
            rgba: p,
        };
        assert_eq!(b.push(&pic).unwrap(), None);
    }
    b.remove(0).unwrap();
    assert_eq!(b.len(), 5);
    assert!(b.remove(5).is_err(), "past the end is refused");
    // The removed picture may come back: it is no longer a duplicate.
    assert_eq!(
        b.push(&Picture {
            width: 16,
            height: 16,
            rgba: &pics[0]
        })
        .unwrap(),
        None
    );
    let settings = || Settings {
        dataset: Some(UPLOAD.into()),
        image_size: Some(16),
        width: Some(8),
        latent: Some(16),
        batch: Some(4),
        ..Settings::default()
    };
    let e = settings().resolve_with(None).unwrap_err();
    assert!(e.to_string().contains("add pictures first"), "{e}");
    let uploaded = Uploaded {
        dataset: b.finish(),
        source: "your pictures".into(),
        preprocessing: "{}".into(),
    };
    let plan = settings().resolve_with(Some(uploaded)).unwrap();
    assert_eq!((plan.dataset.len(), plan.model.channels), (6, 3));
    let mut t = Trainer::new(plan.model, plan.train, &plan.dataset, 4, &Device::flex()).unwrap();
    assert!(pollster::block_on(t.run(2)).unwrap().g_loss.is_finite());
}

mod quality {
    use super::*;
    use gan_playground::data::Dataset;
    use gan_playground::metrics::{memorisation, swd_mean};
    use gan_playground::rng::Rng;

    fn slice(set: &Dataset, from: usize, to: usize) -> Dataset {
        let n = set.size * set.size * set.channels;
        Dataset {
            pixels: set.pixels[from * n..to * n].to_vec(),
            ..set.clone()
        }
    }

    fn noise(count: usize, size: usize, channels: usize) -> Dataset {
        let mut rng = Rng::new(5);
        let pixels = (0..count * size * size * channels)
            .map(|_| rng.below(256) as u8)
            .collect();
        Dataset {
            size,
            channels,
            pixels,
        }
    }

    #[test]
    fn swd_is_small_within_a_set_and_large_between_sets() {
        for size in [16, 32] {
            let shapes = data::builtin("shapes", size, 1).unwrap();
            let (a, b) = (slice(&shapes, 0, 256), slice(&shapes, 256, 512));
            let same = swd_mean(&a, &b, 256, 1).unwrap();
            let glyphs = data::builtin("glyphs", size, 1).unwrap();
            let gray_rgb = Dataset {
                channels: 3,
                pixels: glyphs.pixels.iter().flat_map(|&v| [v, v, v]).collect(),
                ..glyphs
            };
            let other = swd_mean(&a, &gray_rgb, 256, 1).unwrap();
            let random = swd_mean(&a, &noise(256, size, 3), 256, 1).unwrap();
            println!(
                "{size} px: SWD x1e3 shapes/shapes {same:.1}, shapes/glyphs {other:.1}, shapes/noise {random:.1}"
            );
            assert!(
                same * 3.0 < other && same * 3.0 < random,
                "{same} vs {other}, {random}"
            );
        }
        let e = swd_mean(&noise(4, 16, 3), &noise(4, 16, 1), 4, 1).unwrap_err();
        assert!(e.to_string().contains("one size and channel count"), "{e}");
    }

    #[test]
    fn swd_falls_as_a_model_trains_on_a_built_in_set() {
        let set = data::builtin("glyphs", 16, 1).unwrap();
        let model = ModelConfig::new()
            .with_image_size(16)
            .with_channels(1)
            .with_latent(32)
            .with_width(32);
        let device = Device::flex();
        let mut t =
            Trainer::new(model, TrainConfig::new().with_batch(32), &set, 4, &device).unwrap();
        let score = |t: &Trainer| {
            let draw = Draw {
                seed: 9,
                count: 256,
                truncation: None,
            };
            let images =
                pollster::block_on(sample::images(t.generator(), 32, draw, &device)).unwrap();
            swd_mean(&Dataset::from_nchw(&images, 16, 1), &set, 256, 1).unwrap()
        };
        let before = score(&t);
        pollster::block_on(t.run(300)).unwrap();
        let after = score(&t);
        println!("glyphs 16 px, width 32: SWD x1e3 {before:.1} at step 0, {after:.1} at step 300");
        assert!(after < 0.7 * before, "{before} -> {after}");
    }

    #[test]
    fn the_memorisation_check_flags_exact_copies() {
        let train = data::builtin("shapes", 16, 1).unwrap();
        let mut pixels = slice(&train, 10, 15).pixels; // five copies of training images
        pixels.extend(noise(5, 16, 3).pixels); // and five pictures unlike any of them
        let samples = Dataset {
            pixels,
            ..train.clone()
        };
        let m = memorisation(&samples, &slice(&train, 0, 100));
        assert_eq!(m.copies, 5, "{m:?}");
        assert!(m.train_gap > 0.0);
        let flagged: Vec<(usize, usize)> = m.nearest[..5].iter().map(|n| (n.0, n.1)).collect();
        for k in 0..5 {
            assert!(
                flagged.contains(&(k, 10 + k)),
                "sample {k} copies training image {}: {flagged:?}",
                10 + k
            );
        }
        // The pairs shown side by side: each flagged sample, then the picture it copies.
        let pairs = gan_playground::metrics::nearest_pairs(&samples, &train, &m, 4);
        assert_eq!(pairs.len(), 8);
        let n = 16 * 16 * 3;
        for p in 0..4 {
            let image = |k: usize| &pairs.pixels[k * n..(k + 1) * n];
            assert_eq!(
                image(2 * p),
                image(2 * p + 1),
                "pair {p} is a sample and its copy"
            );
            assert!(m.nearest[p].2 < m.train_gap);
        }
    }
}

/// Writes `entries` (name, bytes) into a zip at `path`, Deflate-compressed.
fn write_zip(path: &Path, entries: &[(String, Vec<u8>)]) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    for (name, bytes) in entries {
        if name.ends_with('/') {
            zip.add_directory(name.as_str(), options).unwrap();
        } else {
            zip.start_file(name.as_str(), options).unwrap();
            zip.write_all(bytes).unwrap();
        }
    }
    zip.finish().unwrap();
}

#[test]
fn a_zip_archive_loads_like_a_folder_and_bombs_are_named_and_skipped() {
    let dir = scratch("zip");
    let pics = dir.join("pictures");
    std::fs::create_dir(&pics).unwrap();
    let bad = picture_folder(&pics);
    let (paths, _) = decode::files(&pics).unwrap();
    let mut entries: Vec<(String, Vec<u8>)> = paths
        .iter()
        .map(|p| {
            let name = p.strip_prefix(&pics).unwrap().display().to_string();
            (name, std::fs::read(p).unwrap())
        })
        .collect();
    // What macOS adds, and folders: skipped without a message.
    entries.push(("more/".into(), vec![]));
    entries.push(("__MACOSX/._a0.png".into(), b"resource fork".to_vec()));
    entries.push((".DS_Store".into(), b"junk".to_vec()));
    entries.push(("more/._b.jpg".into(), b"junk".to_vec()));
    // A bomb entry: 200 MB of zeros deflate to ~200 KB.
    entries.push(("bomb.png".into(), vec![0; 200 << 20]));
    entries.push(("inner.zip".into(), b"PK\x03\x04 not opened".to_vec()));
    entries.push(("liar.png".into(), vec![7; 1 << 20]));
    let zip_path = dir.join("set.zip");
    write_zip(&zip_path, &entries);
    // liar.png's headers declare 1,000 bytes; it inflates to 1 MB.
    let mut bytes = std::fs::read(&zip_path).unwrap();
    let name = b"liar.png";
    for (signature, size_at) in [(b"PK\x03\x04", 22), (b"PK\x01\x02", 24)] {
        let header = (0..bytes.len() - 46)
            .find(|&i| {
                &bytes[i..i + 4] == signature && {
                    let name_at = if size_at == 22 { i + 30 } else { i + 46 };
                    bytes[name_at..].starts_with(name)
                }
            })
            .unwrap();
        bytes[header + size_at..header + size_at + 4].copy_from_slice(&1000u32.to_le_bytes());
    }
    std::fs::write(&zip_path, &bytes).unwrap();

    let f = decode::folder(&zip_path, &prep(16, 3, Fit::Crop)).unwrap();
    assert_eq!(f.dataset.len(), 7, "the same 7 pictures as the folder");
    assert_eq!(f.duplicates, 1);
    let reason = |name: &str| {
        f.skipped
            .iter()
            .find(|e| matches!(e, GanError::BadImage { name: n, .. } if n == &format!("set.zip/{name}")))
            .unwrap_or_else(|| panic!("{name} is reported: {:?}", f.skipped))
            .to_string()
    };
    for (name, why) in bad {
        assert!(reason(name).contains(why), "{}", reason(name));
    }
    assert!(
        reason("bomb.png").contains("unpacks to 200 MB"),
        "{}",
        reason("bomb.png")
    );
    assert!(reason("inner.zip").contains("archive inside an archive"));
    assert!(
        reason("liar.png").contains("more than its header declares")
            || reason("liar.png").contains("damaged"),
        "{}",
        reason("liar.png")
    );
    assert_eq!(f.skipped.len(), 5 + 3, "{:?}", f.skipped);

    // Archives that cannot be opened are one message each (the empty one is what cargo-fuzz
    // found first: it used to panic).
    for (name, bytes) in [
        ("notes.zip", &b"not an archive"[..]),
        ("empty.zip", &b""[..]),
        ("short.zip", &b"PK\x05\x06"[..]),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let f = decode::folder(&path, &prep(16, 3, Fit::Crop)).unwrap();
        assert!(
            f.skipped[0]
                .to_string()
                .contains(&format!("{name}: not a readable zip archive")),
            "{:?}",
            f.skipped
        );
    }
    let many = dir.join("many.zip");
    let names: Vec<(String, Vec<u8>)> =
        (0..100_001).map(|i| (format!("{i}.png"), vec![])).collect();
    write_zip(&many, &names);
    let f = decode::folder(&many, &prep(16, 3, Fit::Crop)).unwrap();
    assert!(
        f.skipped[0].to_string().contains("declares 100001 entries"),
        "{:?}",
        f.skipped
    );
}

#[test]
fn ten_thousand_pictures_at_64_px_are_kept_compactly_and_train() {
    use gan_playground::preprocess::Builder;
    use gan_playground::rng::Rng;
    use std::time::Instant;
    let mut builder = Builder::new(prep(64, 3, Fit::Crop)).unwrap();
    let mut rng = Rng::new(9);
    let start = Instant::now();
    for _ in 0..10_000 {
        // 80x64 pictures of 5x4 random colour blocks with a little noise: every one distinct,
        // each cropped and resized to 64x64.
        let blocks: Vec<u8> = (0..20 * 3).map(|_| rng.below(256) as u8).collect();
        let rgba: Vec<u8> = (0..80 * 64)
            .flat_map(|p| {
                let (x, y) = (p % 80 / 16, p / 80 / 16);
                let b = &blocks[(y * 5 + x) * 3..][..3];
                let jitter = rng.below(9) as u8;
                [b[0].saturating_add(jitter), b[1], b[2], 255]
            })
            .collect();
        let picture = Picture {
            width: 80,
            height: 64,
            rgba: &rgba,
        };
        assert_eq!(builder.push(&picture).unwrap(), None);
    }
    let prepared = start.elapsed();
    assert_eq!(builder.len(), 10_000);
    assert_eq!(
        builder.pixels().len(),
        10_000 * 64 * 64 * 3,
        "u8 at the training size: 123 MB"
    );
    let set = builder.finish();
    let model = ModelConfig::new()
        .with_image_size(64)
        .with_width(4)
        .with_latent(8);
    let start = Instant::now();
    let mut t = Trainer::new(
        model,
        TrainConfig::new().with_batch(8),
        &set,
        4,
        &Device::flex(),
    )
    .unwrap();
    pollster::block_on(t.run(2)).unwrap();
    let trained = start.elapsed();
    let start = Instant::now();
    let q = pollster::block_on(t.quality()).unwrap();
    assert!(q.swd.is_finite(), "{:?}", q.swd);
    assert_eq!(q.memorisation.nearest.len(), 64);
    eprintln!(
        "10,000 pictures at 64 px: prepared in {prepared:.1?}, trainer + 2 steps {trained:.1?}, quality {:.1?}",
        start.elapsed()
    );
}
