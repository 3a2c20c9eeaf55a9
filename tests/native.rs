//! Native tests of the core on Flex (burn's pure-Rust CPU backend): model shapes, the reference
//! DCGAN, config validation, datasets, determinism and a short training run.

use burn::tensor::{Device, Tensor};
use gan_playground::GanError;
use gan_playground::config::{Loss, ModelConfig, TrainConfig};
use gan_playground::data::{self, Dataset};
use gan_playground::rng::Rng;
use gan_playground::train::{Tick, Trainer};

fn tiny(size: usize, channels: usize) -> ModelConfig {
    ModelConfig::new()
        .with_image_size(size)
        .with_channels(channels)
        .with_latent(16)
        .with_width(8)
}

fn train_run(
    model: ModelConfig,
    train: TrainConfig,
    data: &Dataset,
    ticks: usize,
    k: usize,
) -> Vec<Tick> {
    let mut trainer = Trainer::new(model, train, data, 4, &Device::flex()).expect("valid settings");
    (0..ticks)
        .map(|_| pollster::block_on(trainer.run(k)).expect("finite training"))
        .collect()
}

#[test]
fn output_shapes_for_every_size_and_channel_count() {
    let device = Device::flex();
    for size in [16, 32, 64] {
        for channels in [1, 3] {
            let cfg = tiny(size, channels);
            let (g, d) = cfg.init(&mut Rng::new(1), &device).unwrap();
            let images = g.forward(Tensor::zeros([2, 16], &device));
            assert_eq!(
                images.dims(),
                [2, channels, size, size],
                "G for {size}x{size}x{channels}"
            );
            assert_eq!(
                d.forward(images).dims(),
                [2],
                "D for {size}x{size}x{channels}"
            );
        }
    }
}

#[test]
fn reference_dcgan_matches_the_tfjs_benchmark_layers() {
    // Parameter counts of shared/bench-tfjs/page/dcgan.js (TF.js `total`: trainable plus
    // BatchNorm's moving mean/variance, which burn's `num_params` counts too), layer by layer:
    // G: convT 100->256 (409600) + BN 4*256, convT 256->128 (524288) + BN 4*128,
    //    convT 128->64 (131072) + BN 4*64, convT 64->3 with bias (3072 + 3).
    // D: conv 3->64 with bias (3072 + 64), conv 64->128 (131072) + BN 4*128,
    //    conv 128->256 (524288) + BN 4*256, conv 256->1 with bias (4096 + 1).
    let g_expected = 409_600 + 1_024 + 524_288 + 512 + 131_072 + 256 + 3_075;
    let d_expected = 3_136 + 131_072 + 512 + 524_288 + 1_024 + 4_097;
    let cfg = ModelConfig::reference();
    assert_eq!(
        (cfg.image_size, cfg.channels, cfg.latent, cfg.loss),
        (32, 3, 100, Loss::NonSaturating)
    );
    let device = Device::flex();
    let (g, d) = cfg.init(&mut Rng::new(1), &device).unwrap();
    use burn::module::Module;
    assert_eq!((g.num_params(), d.num_params()), (g_expected, d_expected));
    assert_eq!(
        cfg.param_count(),
        g_expected + d_expected,
        "the estimate needs no allocation"
    );
}

#[test]
fn size_estimates_match_real_models_and_refuse_memory_bombs() {
    use burn::module::Module;
    let device = Device::flex();
    for (size, channels, width, latent, sn) in [
        (16, 1, 4, 1, false),
        (32, 3, 24, 100, false),
        (64, 3, 16, 7, false),
        (32, 3, 8, 16, true),
    ] {
        let cfg = ModelConfig::new()
            .with_image_size(size)
            .with_channels(channels)
            .with_width(width)
            .with_latent(latent)
            .with_spectral_norm(sn);
        let (g, d) = cfg.init(&mut Rng::new(1), &device).unwrap();
        assert_eq!(
            cfg.param_count(),
            g.num_params() + d.num_params(),
            "{cfg:?}"
        );
    }
    // 64 px at width 256: ~105 M parameters, refused before anything is allocated.
    let err = ModelConfig::new()
        .with_image_size(64)
        .with_width(256)
        .validate()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("width") && err.contains("million parameters"),
        "{err}"
    );
    // A batch whose activations cannot be bound on every WebGPU adapter is refused by name.
    let data = data::builtin("shapes", 64, 1).unwrap();
    let big = ModelConfig::new().with_image_size(64).with_width(160);
    let err = Trainer::new(big, TrainConfig::new().with_batch(256), &data, 4, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("batch") && err.contains("MB per tensor"),
        "{err}"
    );
}

#[test]
fn invalid_settings_are_refused_with_the_field_named() {
    let cases: Vec<(ModelConfig, &str)> = vec![
        (ModelConfig::new().with_image_size(48), "image_size"),
        (ModelConfig::new().with_channels(2), "channels"),
        (ModelConfig::new().with_latent(0), "latent"),
        (ModelConfig::new().with_latent(1_000_000_000), "latent"),
        (ModelConfig::new().with_width(100_000), "width"),
    ];
    for (cfg, field) in cases {
        let err = cfg.init(&mut Rng::new(1), &Device::flex()).unwrap_err();
        assert!(
            matches!(err, GanError::InvalidConfig { field: f, .. } if f == field),
            "{err}"
        );
        assert!(
            err.to_string().contains(field),
            "message names the field: {err}"
        );
    }
    let train_cases: Vec<(TrainConfig, &str)> = vec![
        (TrainConfig::new().with_batch(1), "batch"),
        (TrainConfig::new().with_batch(100_000), "batch"),
        (TrainConfig::new().with_lr_g(f64::NAN), "lr_g"),
        (TrainConfig::new().with_lr_d(-1e-4), "lr_d"),
        (TrainConfig::new().with_beta1(1.0), "beta1"),
        (TrainConfig::new().with_epsilon(0.0), "epsilon"),
    ];
    let data = data::builtin("glyphs", 16, 1).unwrap();
    for (cfg, field) in train_cases {
        let err = Trainer::new(tiny(16, 1), cfg, &data, 4, &Device::flex())
            .err()
            .expect("refused");
        assert!(
            matches!(err, GanError::InvalidConfig { field: f, .. } if f == field),
            "{err}"
        );
    }
    // Data that does not fit the model is refused too, naming both shapes.
    let err = Trainer::new(tiny(16, 3), TrainConfig::new(), &data, 4, &Device::flex())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("16x16x1 data for a 16x16x3 model"),
        "{err}"
    );
}

#[test]
fn config_round_trips_through_json() {
    use burn::config::Config;
    let cfg = tiny(32, 3).with_loss(Loss::Hinge);
    let back = ModelConfig::load_binary(cfg.to_string().as_bytes()).unwrap();
    assert_eq!(back, cfg);
}

#[test]
fn builtin_sets_are_deterministic_distinct_and_not_blank() {
    let shapes = data::builtin("shapes", 32, 7).unwrap();
    assert_eq!(
        shapes,
        data::builtin("shapes", 32, 7).unwrap(),
        "same seed, same images"
    );
    assert_ne!(
        shapes,
        data::builtin("shapes", 32, 8).unwrap(),
        "other seed, other images"
    );
    assert_eq!((shapes.len(), shapes.channels), (data::BUILTIN_COUNT, 3));
    let glyphs = data::builtin("glyphs", 32, 7).unwrap();
    assert_eq!(glyphs.channels, 1);
    for set in [&shapes, &glyphs] {
        let per = set.size * set.size * set.channels;
        for image in set.pixels.chunks_exact(per).take(50) {
            let (lo, hi) = (image.iter().min().unwrap(), image.iter().max().unwrap());
            assert!(hi - lo > 60, "each image has visible contrast ({lo}..{hi})");
        }
    }
    // Glyphs are mostly dark background with bright strokes; shapes are colourful.
    let mean =
        |d: &Dataset| d.pixels.iter().map(|&v| v as f64).sum::<f64>() / d.pixels.len() as f64;
    assert!(
        mean(&glyphs) < 90.0 && mean(&shapes) > 90.0,
        "{} {}",
        mean(&glyphs),
        mean(&shapes)
    );
    let preview = data::builtin_first("glyphs", 32, 7, 5).unwrap();
    assert_eq!(
        preview.pixels[..],
        glyphs.pixels[..preview.pixels.len()],
        "previews show the training images"
    );
    let err = data::builtin("cats", 32, 1).unwrap_err();
    assert!(
        err.to_string().contains("cats") && err.to_string().contains("shapes"),
        "{err}"
    );
}

#[test]
fn same_seed_same_training_and_other_seed_differs() {
    let data = data::builtin("glyphs", 16, 3).unwrap();
    let train = TrainConfig::new().with_batch(8).with_seed(11);
    let a = train_run(tiny(16, 1), train.clone(), &data, 2, 2);
    let b = train_run(tiny(16, 1), train.clone(), &data, 2, 2);
    assert_eq!(a, b, "bit-identical losses and samples");
    let c = train_run(tiny(16, 1), train.with_seed(12), &data, 2, 2);
    assert_ne!(a[1].samples, c[1].samples);
}

#[test]
fn discriminator_learns_to_separate_real_from_fake() {
    for (loss, sn) in [
        (Loss::NonSaturating, false),
        (Loss::Hinge, false),
        (Loss::Hinge, true),
    ] {
        let data = data::builtin("shapes", 16, 5).unwrap();
        let model = tiny(16, 3).with_loss(loss).with_spectral_norm(sn);
        let ticks = train_run(
            model,
            TrainConfig::new().with_batch(16).with_lr_d(1e-3),
            &data,
            3,
            10,
        );
        let last = ticks.last().unwrap();
        assert_eq!(last.step, 30);
        for t in &ticks {
            assert!(
                t.d_loss.is_finite() && t.g_loss.is_finite(),
                "{loss:?}: {t:?}"
            );
        }
        assert!(
            last.d_real > last.d_fake + 0.5,
            "{loss:?}: D logits real {} fake {}",
            last.d_real,
            last.d_fake
        );
        // The gap opened during training: after the first tick D was far less sure.
        assert!(
            ticks[0].d_real - ticks[0].d_fake < last.d_real - last.d_fake,
            "{loss:?}: {ticks:?}"
        );
        assert_eq!(last.samples.len(), 4 * 3 * 16 * 16);
        assert!(last.samples.iter().all(|v| (-1.0..=1.0).contains(v)));
    }
}

#[test]
fn page_settings_resolve_to_validated_configs() {
    use gan_playground::settings::Settings;
    let parse = |json: &str| serde_json::from_str::<Settings>(json).map_err(|e| e.to_string());
    // Defaults: the reference DCGAN on the first built-in set.
    let plan = parse("{}").unwrap().resolve().unwrap();
    assert_eq!(plan.model, ModelConfig::reference());
    assert_eq!(
        (plan.train.batch, plan.grid, plan.dataset.len()),
        (64, 36, data::BUILTIN_COUNT)
    );
    // Channels follow the dataset.
    let plan = parse(r#"{"dataset":"glyphs","imageSize":16,"loss":"hinge","batch":8}"#)
        .unwrap()
        .resolve()
        .unwrap();
    assert_eq!(
        (plan.model.channels, plan.model.image_size, plan.model.loss),
        (1, 16, Loss::Hinge)
    );
    assert_eq!(plan.train.batch, 8);
    // Each bad value is named.
    for (json, field) in [
        (r#"{"loss":"wasserstein"}"#, "loss"),
        (r#"{"grid":0}"#, "grid"),
        (r#"{"imageSize":48}"#, "image_size"),
        (r#"{"batch":1}"#, "batch"),
        (r#"{"dataset":"cats"}"#, "cats"),
    ] {
        let err = parse(json).unwrap().resolve().unwrap_err().to_string();
        assert!(err.contains(field), "{json}: {err}");
    }
    // A misspelt field is refused rather than ignored.
    assert!(
        parse(r#"{"batchSize":8}"#)
            .unwrap_err()
            .contains("batchSize")
    );
}

mod model_files {
    use super::*;
    use gan_playground::modelfile::{self, FORMAT_VERSION};
    use safetensors::{Dtype, SafeTensors, View};
    use std::borrow::Cow;
    use std::collections::HashMap;

    fn trained_file(with_d: bool) -> (Vec<u8>, Trainer) {
        let data = data::builtin("glyphs", 16, 1).unwrap();
        let mut t = Trainer::new(
            tiny(16, 1),
            TrainConfig::new().with_batch(8),
            &data,
            4,
            &Device::flex(),
        )
        .unwrap();
        pollster::block_on(t.run(2)).unwrap();
        let bytes =
            pollster::block_on(t.save(with_d, &[("title", "<b>digits</b>".into())])).unwrap();
        (bytes, t)
    }

    struct Raw(Dtype, Vec<usize>, Vec<u8>);
    impl View for &Raw {
        fn dtype(&self) -> Dtype {
            self.0
        }
        fn shape(&self) -> &[usize] {
            &self.1
        }
        fn data(&self) -> Cow<'_, [u8]> {
            Cow::Borrowed(&self.2)
        }
        fn data_len(&self) -> usize {
            self.2.len()
        }
    }

    /// The file's tensors and metadata, to mutate and write back.
    fn parts(bytes: &[u8]) -> (HashMap<String, Raw>, HashMap<String, String>) {
        let file = SafeTensors::deserialize(bytes).unwrap();
        let tensors = file
            .tensors()
            .into_iter()
            .map(|(n, v)| (n, Raw(v.dtype(), v.shape().to_vec(), v.data().to_vec())))
            .collect();
        let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
        (tensors, header.metadata().clone().unwrap())
    }

    fn write(tensors: &HashMap<String, Raw>, meta: HashMap<String, String>) -> Vec<u8> {
        safetensors::serialize(tensors.iter().map(|(n, r)| (n.clone(), r)), Some(meta)).unwrap()
    }

    #[test]
    fn save_then_load_gives_identical_tensors_and_samples() {
        let (bytes, _) = trained_file(true);
        let loaded = modelfile::load(&bytes, &Device::flex()).unwrap();
        assert_eq!((loaded.step, loaded.model.clone()), (2, tiny(16, 1)));
        assert!(loaded.discriminator.is_some());
        assert_eq!(loaded.metadata["title"], "<b>digits</b>");
        let again = pollster::block_on(modelfile::save(
            &loaded.model,
            loaded.step,
            &loaded.generator,
            loaded.discriminator.as_ref(),
            &[],
        ))
        .unwrap();
        let (a, b) = (parts(&bytes).0, parts(&again).0);
        assert_eq!(a.len(), b.len());
        assert!(
            a.contains_key("generator.blocks.0.norm.running_var"),
            "BatchNorm statistics travel too: {:?}",
            a.keys()
        );
        assert!(
            a.contains_key("generator.out.weight") && a.contains_key("discriminator.input.bias")
        );
        for (name, raw) in &a {
            assert_eq!(raw.2, b[name].2, "tensor {name} round-trips bit for bit");
        }
        // A file written before a setting existed loads with that setting's default.
        let (tensors, mut meta) = parts(&bytes);
        let mut config: serde_json::Value = serde_json::from_str(&meta["model_config"]).unwrap();
        config
            .as_object_mut()
            .unwrap()
            .remove("spectral_norm")
            .unwrap();
        meta.insert("model_config".into(), config.to_string());
        let older = modelfile::load(&write(&tensors, meta), &Device::flex()).unwrap();
        assert_eq!(older.model, tiny(16, 1));
        // Without D the file is smaller and loads without one.
        let (g_only, _) = trained_file(false);
        assert!(g_only.len() < bytes.len());
        assert!(
            modelfile::load(&g_only, &Device::flex())
                .unwrap()
                .discriminator
                .is_none()
        );
    }

    #[test]
    fn malformed_files_get_an_error_naming_the_problem() {
        let (bytes, _) = trained_file(true);
        let (tensors, meta) = parts(&bytes);
        let name = "generator.out.weight".to_string();
        let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty", vec![], "not a valid safetensors"),
            (
                "truncated",
                bytes[..bytes.len() / 2].to_vec(),
                "not a valid safetensors",
            ),
            (
                "header length past the end",
                {
                    let mut b = bytes.clone();
                    b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
                    b
                },
                "not a valid safetensors",
            ),
            (
                "text named .safetensors",
                b"hello, I am a text file".to_vec(),
                "not a valid safetensors",
            ),
            (
                "too large",
                vec![0; modelfile::MAX_FILE_BYTES + 1],
                "largest model file",
            ),
        ];
        let mut with_meta =
            |label: &'static str, key: &str, value: Option<&str>, expect: &'static str| {
                let mut m = meta.clone();
                match value {
                    Some(v) => {
                        m.insert(key.into(), v.into());
                    }
                    None => {
                        m.remove(key);
                    }
                }
                cases.push((label, write(&tensors, m), expect));
            };
        with_meta("other format", "format", Some("keras"), "keras");
        with_meta("no format", "format", None, "no `format`");
        with_meta(
            "unknown version",
            "format_version",
            Some("99"),
            "version 99",
        );
        with_meta("no config", "model_config", None, "no `model_config`");
        with_meta(
            "config not JSON",
            "model_config",
            Some("{latent"),
            "model_config",
        );
        let mut bomb: serde_json::Value = serde_json::from_str(&meta["model_config"]).unwrap();
        bomb["latent"] = 1_000_000_000.into();
        with_meta(
            "memory bomb",
            "model_config",
            Some(&bomb.to_string()),
            "latent",
        );
        let mut unknown: serde_json::Value = serde_json::from_str(&meta["model_config"]).unwrap();
        unknown["dropout"] = 0.5.into();
        with_meta(
            "unknown config setting",
            "model_config",
            Some(&unknown.to_string()),
            "unknown setting `dropout`",
        );
        with_meta("bad step", "step", Some("soon"), "step");
        let mut with_tensors =
            |label: &'static str, f: &dyn Fn(&mut HashMap<String, Raw>), expect: &'static str| {
                let mut t: HashMap<String, Raw> = tensors
                    .iter()
                    .map(|(n, r)| (n.clone(), Raw(r.0, r.1.clone(), r.2.clone())))
                    .collect();
                f(&mut t);
                cases.push((label, write(&t, meta.clone()), expect));
            };
        with_tensors(
            "missing tensor",
            &|t| {
                t.remove(&name);
            },
            "`generator.out.weight` is missing",
        );
        with_tensors(
            "extra tensor",
            &|t| {
                t.insert(
                    "generator.spare".into(),
                    Raw(Dtype::F32, vec![1], vec![0; 4]),
                );
            },
            "unexpected tensor `generator.spare`",
        );
        with_tensors(
            "wrong dtype",
            &|t| {
                let r = t.get_mut(&name).unwrap();
                r.0 = Dtype::I32;
            },
            "expected F32",
        );
        with_tensors(
            "wrong shape",
            &|t| {
                let r = t.get_mut(&name).unwrap();
                let n: usize = r.1.iter().product();
                r.1 = vec![n];
            },
            "has shape",
        );
        with_tensors(
            "NaN",
            &|t| {
                t.get_mut(&name).unwrap().2[..4].copy_from_slice(&f32::NAN.to_le_bytes());
            },
            "non-finite",
        );
        with_tensors(
            "infinity",
            &|t| {
                t.get_mut(&name).unwrap().2[4..8].copy_from_slice(&f32::INFINITY.to_le_bytes());
            },
            "non-finite",
        );
        with_tensors(
            "half a discriminator",
            &|t| {
                t.retain(|n, _| !n.starts_with("discriminator.blocks"));
            },
            "discriminator.blocks",
        );
        // Raw header edits the safetensors writer would never make.
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
        let with_header = |h: &serde_json::Value| {
            let text = h.to_string().into_bytes();
            let mut b = (text.len() as u64).to_le_bytes().to_vec();
            b.extend(text);
            b.extend_from_slice(&bytes[8 + header_len..]);
            b
        };
        let mut overlap = header.clone();
        let first = overlap["generator.out.bias"]["data_offsets"].clone();
        overlap["generator.out.weight"]["data_offsets"] = first;
        cases.push((
            "overlapping offsets",
            with_header(&overlap),
            "not a valid safetensors",
        ));
        let mut past_end = header.clone();
        past_end["generator.out.bias"]["data_offsets"][1] = (bytes.len() as u64 * 2).into();
        cases.push((
            "offsets past the end",
            with_header(&past_end),
            "not a valid safetensors",
        ));
        let mut non_utf8 = bytes.clone();
        let at = bytes.windows(6).position(|w| w == b"digits").unwrap();
        non_utf8[at] = 0xFF; // inside the title's JSON string: the header is no longer UTF-8
        cases.push(("non-UTF-8 metadata", non_utf8, "not a valid safetensors"));
        let mut not_json = bytes.clone();
        not_json[8] = b'x';
        cases.push(("header not JSON", not_json, "not a valid safetensors"));
        assert!(cases.len() >= 23, "{} cases", cases.len());
        for (label, file, expect) in cases {
            match modelfile::load(&file, &Device::flex()) {
                Ok(_) => panic!("{label}: accepted"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        matches!(
                            e,
                            GanError::BadModelFile(_) | GanError::InvalidConfig { .. }
                        ),
                        "{label}: {msg}"
                    );
                    assert!(
                        msg.contains(expect),
                        "{label}: {msg:?} should mention {expect:?}"
                    );
                }
            }
        }
        assert_eq!(FORMAT_VERSION, "1");
    }

    #[test]
    fn twenty_thousand_seeded_mutants_never_panic() {
        let (bytes, _) = trained_file(true);
        let header_len = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let mut rng = Rng::new(2026);
        let (mut accepted, mut refused) = (0, 0);
        let start = std::time::Instant::now();
        for i in 0..20_000 {
            let mut m = bytes.clone();
            // Mostly flip bytes in the header (where parsing happens), sometimes anywhere,
            // sometimes truncate or append.
            for _ in 0..1 + rng.below(4) {
                let at = if rng.below(4) > 0 {
                    rng.below(header_len)
                } else {
                    rng.below(m.len())
                };
                m[at] = rng.next_u64() as u8;
            }
            match i % 10 {
                0 => m.truncate(rng.below(m.len())),
                1 => m.extend((0..rng.below(64)).map(|_| rng.next_u64() as u8)),
                _ => {}
            }
            match std::panic::catch_unwind(|| modelfile::load(&m, &Device::flex()).is_ok()) {
                Ok(true) => accepted += 1,
                Ok(false) => refused += 1,
                Err(_) => panic!("mutant {i} panicked"),
            }
        }
        println!(
            "20000 mutants: {accepted} loaded, {refused} refused, 0 panics, {:?}",
            start.elapsed()
        );
        assert_eq!(accepted + refused, 20_000);
        assert!(refused > 10_000, "most mutants are refused ({refused})");
    }
}

#[test]
fn the_generator_average_blends_weights_and_is_what_samples_use() {
    use gan_playground::sample::{self, Draw};
    let set = data::builtin("glyphs", 16, 1).unwrap();
    let device = Device::flex();
    let (g0, _) = tiny(16, 1).init(&mut Rng::new(1), &device).unwrap();
    let (g1, _) = tiny(16, 1).init(&mut Rng::new(2), &device).unwrap();
    let draw = Draw {
        seed: 3,
        count: 4,
        truncation: None,
    };
    let images = |g: &gan_playground::model::Generator| {
        pollster::block_on(sample::images(g, 16, draw, &device)).unwrap()
    };
    assert_eq!(
        images(&g0.clone().blend(&g1, 1.0)),
        images(&g0),
        "decay 1 keeps the average"
    );
    assert_eq!(
        images(&g0.clone().blend(&g1, 0.0)),
        images(&g1),
        "decay 0 takes the new weights"
    );
    let w = |g: &gan_playground::model::Generator| {
        let mut out = Vec::new();
        for (_, t) in pollster::block_on(modelfile_tensors(g)) {
            out.extend(t);
        }
        out
    };
    let (a, b, mid) = (w(&g0), w(&g1), w(&g0.clone().blend(&g1, 0.25)));
    for i in (0..a.len()).step_by(97) {
        assert!(
            (mid[i] - (0.25 * a[i] + 0.75 * b[i])).abs() < 1e-6,
            "tensor value {i}"
        );
    }
    // In training, samples and files come from the average: it differs from G as trained.
    let train = TrainConfig::new().with_batch(8);
    let mut plain = Trainer::new(tiny(16, 1), train.clone(), &set, 4, &device).unwrap();
    let mut averaged = Trainer::new(tiny(16, 1), train.with_ema(0.999), &set, 4, &device).unwrap();
    let (p, a) = (
        pollster::block_on(plain.run(5)).unwrap(),
        pollster::block_on(averaged.run(5)).unwrap(),
    );
    assert_eq!(
        (p.d_loss, p.g_loss),
        (a.d_loss, a.g_loss),
        "the average does not change training"
    );
    assert_ne!(p.samples, a.samples, "samples come from the average");
    assert!(TrainConfig::new().with_ema(1.0).validate().is_err());
}

/// Every tensor of a generator's model file, in file order.
async fn modelfile_tensors(g: &gan_playground::model::Generator) -> Vec<(String, Vec<f32>)> {
    let bytes = gan_playground::modelfile::save(&tiny(16, 1), 0, g, None, &[])
        .await
        .unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<f32>)> = file
        .tensors()
        .into_iter()
        .filter(|(n, _)| !n.contains("running"))
        .map(|(n, v)| {
            (
                n,
                v.data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            )
        })
        .collect();
    out.sort_by(|x, y| x.0.cmp(&y.0));
    out
}

/// The largest singular value of `w` seen as a `[rows, len / rows]` matrix, by 300 power
/// iterations in f64 from an all-ones start (independent of the model's estimate).
fn top_singular_value(w: &[f32], rows: usize) -> f64 {
    let cols = w.len() / rows;
    let at = |r: usize, c: usize| f64::from(w[r * cols + c]);
    let mut v = vec![1.0f64; cols];
    let mut sigma = 0.0;
    for _ in 0..300 {
        let u: Vec<f64> = (0..rows)
            .map(|r| (0..cols).map(|c| at(r, c) * v[c]).sum())
            .collect();
        let next: Vec<f64> = (0..cols)
            .map(|c| (0..rows).map(|r| at(r, c) * u[r]).sum())
            .collect();
        let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt();
        sigma = norm.sqrt(); // |W^T W v| -> sigma^2 for a unit v
        v = next.iter().map(|x| x / norm).collect();
    }
    sigma
}

#[test]
fn spectral_norm_bounds_each_layers_top_singular_value() {
    use gan_playground::model::Discriminator;
    let cfg = tiny(16, 3).with_spectral_norm(true);
    let device = Device::flex();
    let (g, d) = cfg.init(&mut Rng::new(4), &device).unwrap();
    let read = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap()[0];
    let norms = |d: &Discriminator| -> Vec<(f32, f32)> {
        d.spectral_norms()
            .into_iter()
            .map(|(s, n)| (read(s), read(n)))
            .collect()
    };
    // The true values, from the weights as a model file holds them.
    let truth = |d: &Discriminator| -> Vec<f64> {
        let bytes =
            pollster::block_on(gan_playground::modelfile::save(&cfg, 0, &g, Some(d), &[])).unwrap();
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut names: Vec<String> = file
            .names()
            .into_iter()
            .filter(|n| n.starts_with("discriminator.") && n.ends_with("conv.weight"))
            .map(String::from)
            .collect();
        names.sort();
        let mut layers = vec!["discriminator.input.weight".to_string()];
        layers.extend(names);
        layers.push("discriminator.out.weight".into());
        layers
            .iter()
            .map(|n| {
                let v = file.tensor(n).unwrap();
                let w: Vec<f32> = v
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                top_singular_value(&w, v.shape()[0])
            })
            .collect()
    };
    assert_eq!(norms(&d).len(), 3, "input, one block, output");
    let mut d = d;
    for _ in 0..30 {
        d = d.power_iterate();
    }
    for ((estimate, normalised), truth) in norms(&d).into_iter().zip(truth(&d)) {
        assert!(
            (f64::from(estimate) - truth).abs() < 0.01 * truth,
            "power iteration finds sigma: {estimate} vs {truth}"
        );
        assert!(
            (normalised - 1.0).abs() < 0.01,
            "the normalised weight has sigma 1: {normalised}"
        );
    }
    // While D trains (one power iteration per step), every layer stays at sigma <= ~1, though
    // its raw weights grow.
    let data = data::builtin("shapes", 16, 5).unwrap();
    let train = TrainConfig::new().with_batch(8).with_lr_d(1e-3);
    let mut t = Trainer::new(cfg.clone().with_loss(Loss::Hinge), train, &data, 4, &device).unwrap();
    pollster::block_on(t.run(40)).unwrap();
    let file = pollster::block_on(t.save(true, &[])).unwrap();
    let loaded = gan_playground::modelfile::load(&file, &device).unwrap();
    let trained = loaded.discriminator.unwrap();
    for (estimate, normalised) in norms(&trained) {
        assert!(
            normalised < 1.05 && normalised > 0.8,
            "after 40 steps: sigma of W/sigma is {normalised} (raw estimate {estimate})"
        );
    }
}
