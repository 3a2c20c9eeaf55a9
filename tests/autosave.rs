//! Native tests of what autosave relies on: a checkpoint resumes training exactly (weights,
//! generator average, Adam moments, random stream), damage is detected, pictures files round
//! trip, our Adam is burn's, and the memory estimate counts what training really allocates.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use gan_playground::GanError;
use gan_playground::adam::Adam;
use gan_playground::checkpoint::{self, decode_dataset, encode_dataset};
use gan_playground::config::{Loss, ModelConfig, TrainConfig};
use gan_playground::data::{self, Dataset};
use gan_playground::rng::Rng;
use gan_playground::settings::Uploaded;
use gan_playground::train::{Tick, Trainer};
use pollster::block_on;

fn tiny() -> ModelConfig {
    ModelConfig::new()
        .with_image_size(16)
        .with_channels(3)
        .with_latent(16)
        .with_width(8)
}

fn shapes() -> Dataset {
    data::builtin_first("shapes", 16, 1, 64).unwrap()
}

fn ticks(t: &mut Trainer, n: usize) -> Vec<Tick> {
    (0..n).map(|_| block_on(t.run(2)).unwrap()).collect()
}

/// Trains 3 ticks, checkpoints, trains 2 more; a trainer restored from the checkpoint must
/// produce the very same 2 ticks (losses and samples, bit for bit, on Flex).
fn resumes_exactly(model: ModelConfig, train: TrainConfig) {
    let data = shapes();
    let cpu = Device::flex();
    let mut a = Trainer::new(model, train, &data, 4, &cpu).unwrap();
    ticks(&mut a, 3);
    let bytes = block_on(a.checkpoint(&[("page_settings", "{}".into())])).unwrap();
    let info = checkpoint::info(&bytes).unwrap();
    assert_eq!(info.step, 6);
    assert_eq!(info.metadata["page_settings"], "{}");
    let expected = ticks(&mut a, 2);

    let mut b = Trainer::restore(&bytes, &data, 1.0, &cpu).unwrap();
    assert_eq!(b.steps(), 6);
    assert_eq!(block_on(b.digest()).unwrap(), info.digest, "restored state");
    assert_eq!(ticks(&mut b, 2), expected);
}

#[test]
fn a_checkpoint_resumes_training_exactly() {
    resumes_exactly(tiny(), TrainConfig::new().with_batch(8));
    // The small-set recipe: hinge, spectral norm (power-iteration vectors), DiffAugment and
    // flips (random stream), and the generator average.
    resumes_exactly(
        tiny().with_loss(Loss::Hinge).with_spectral_norm(true),
        TrainConfig::new()
            .with_batch(8)
            .with_augment(1.0)
            .with_flip(true)
            .with_ema(0.99),
    );
}

#[test]
fn fresh_moments_would_not_resume_exactly() {
    // The checkpoint's Adam moments matter: the same weights with fresh moments (a model file)
    // train differently, so the exact-resume test above can fail.
    let data = shapes();
    let cpu = Device::flex();
    let mut a = Trainer::new(tiny(), TrainConfig::new().with_batch(8), &data, 4, &cpu).unwrap();
    ticks(&mut a, 3);
    let file = block_on(a.save(true, &[])).unwrap();
    let bytes = block_on(a.checkpoint(&[])).unwrap();
    let mut from_file = Trainer::resume(
        gan_playground::modelfile::load(&file, &cpu).unwrap(),
        TrainConfig::new().with_batch(8),
        &data,
        4,
        &cpu,
    )
    .unwrap();
    let mut from_checkpoint = Trainer::restore(&bytes, &data, 1.0, &cpu).unwrap();
    assert_ne!(ticks(&mut from_file, 1), ticks(&mut from_checkpoint, 1));
}

#[test]
fn a_damaged_or_foreign_checkpoint_is_refused_by_name() {
    let data = shapes();
    let cpu = Device::flex();
    let mut t = Trainer::new(tiny(), TrainConfig::new().with_batch(4), &data, 4, &cpu).unwrap();
    ticks(&mut t, 1);
    let bytes = block_on(t.checkpoint(&[])).unwrap();
    let refused = |b: &[u8]| match Trainer::restore(b, &data, 1.0, &cpu) {
        Err(GanError::BadCheckpoint(why)) => why,
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("a bad checkpoint was accepted"),
    };
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x10;
    assert!(refused(&flipped).contains("checksum mismatch"));
    assert!(refused(&bytes[..bytes.len() / 3]).contains("cut off"));
    assert!(refused(&[]).contains("cut off"));
    let model_file = block_on(t.save(true, &[])).unwrap();
    assert!(refused(&checkpoint::seal(model_file)).contains("format is \"gan-playground\""));
    let pictures = encode_dataset(&uploaded(data.clone())).unwrap();
    assert!(refused(&pictures).contains("gan-playground-dataset"));
    // Every single-byte corruption anywhere in the file is caught (CRC-32 detects all of them).
    for i in (0..bytes.len()).step_by(bytes.len() / 97) {
        let mut b = bytes.clone();
        b[i] = b[i].wrapping_add(1);
        assert!(Trainer::restore(&b, &data, 1.0, &cpu).is_err(), "byte {i}");
    }
}

fn uploaded(dataset: Dataset) -> Uploaded {
    Uploaded {
        dataset,
        source: "your pictures".into(),
        preprocessing: r#"{"size":16,"channels":3,"fit":"crop","background":[255,255,255]}"#.into(),
    }
}

#[test]
fn pictures_files_round_trip_and_damage_is_refused() {
    let u = uploaded(shapes());
    let bytes = encode_dataset(&u).unwrap();
    assert_eq!(decode_dataset(&bytes).unwrap(), u);
    let mut damaged = bytes.clone();
    damaged[100] ^= 1;
    assert!(matches!(
        decode_dataset(&damaged),
        Err(GanError::BadCheckpoint(_))
    ));
    let other = data::builtin_first("shapes", 16, 2, 64).unwrap();
    assert_eq!(
        checkpoint::dataset_id(&u.dataset),
        checkpoint::dataset_id(&shapes())
    );
    assert_ne!(
        checkpoint::dataset_id(&u.dataset),
        checkpoint::dataset_id(&other)
    );
}

#[test]
fn a_rollback_lowers_the_learning_rates_and_keeps_them_lowered() {
    let data = shapes();
    let cpu = Device::flex();
    let train = TrainConfig::new().with_batch(4).with_lr_g(4e-4);
    let t = Trainer::new(tiny(), train, &data, 4, &cpu).unwrap();
    let bytes = block_on(t.checkpoint(&[])).unwrap();
    let halved = Trainer::restore(&bytes, &data, 0.5, &cpu).unwrap();
    assert_eq!(halved.train_config().lr_g, 2e-4);
    assert_eq!(halved.train_config().lr_d, 1e-4);
    let again = block_on(halved.checkpoint(&[])).unwrap();
    assert_eq!(checkpoint::info(&again).unwrap().train.lr_g, 2e-4);
}

#[test]
fn a_diverged_trainer_reports_it_and_its_checkpoint_restores_finite() {
    // What the page's divergence guard relies on: a NaN is a `NonFinite` error naming the
    // value, and the last checkpoint trains on, finite, at half the learning rates.
    let data = shapes();
    let cpu = Device::flex();
    let mut t = Trainer::new(tiny(), TrainConfig::new().with_batch(4), &data, 4, &cpu).unwrap();
    ticks(&mut t, 1);
    let bytes = block_on(t.checkpoint(&[])).unwrap();
    t.poison(f32::NAN);
    match block_on(t.run(1)) {
        Err(GanError::NonFinite { what, step }) => {
            assert!(what.contains("loss") || what.contains("output"), "{what}");
            assert_eq!(step, 3);
        }
        other => panic!("a NaN discriminator trained on: {other:?}"),
    }
    // Finite but exploding logits count as divergence too.
    let mut t = Trainer::restore(&bytes, &data, 1.0, &cpu).unwrap();
    t.poison(1e6);
    match block_on(t.run(1)) {
        Err(e @ GanError::Exploded { .. }) => {
            assert!(e.to_string().contains("exploded to"), "{e}")
        }
        other => panic!("an exploding discriminator trained on: {other:?}"),
    }
    let mut back = Trainer::restore(&bytes, &data, 0.5, &cpu).unwrap();
    assert_eq!(back.steps(), 2);
    let tick = block_on(back.run(2)).unwrap();
    assert!(tick.d_loss.is_finite() && tick.g_loss.is_finite());
}

#[test]
fn our_adam_updates_exactly_like_burns() {
    let cpu = Device::flex();
    let ad = cpu.clone().autodiff();
    let (g, _) = tiny().init(&mut Rng::new(3), &cpu).unwrap();
    let g = g.to_device(&ad).train();
    let mut ours = Adam::new(0.5, 0.999, 1e-8);
    let mut burns = AdamConfig::new()
        .with_beta_1(0.5)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .init();
    let (mut a, mut b) = (g.clone(), g);
    let mut rng = Rng::new(9);
    for _ in 0..4 {
        let z = gan_playground::train::noise(&mut rng, 4, 16, &ad);
        let loss = |m: &gan_playground::model::Generator| -> Tensor<1> {
            (m.forward(z.clone()) - 0.3).powf_scalar(2.0).mean()
        };
        let ga = GradientsParams::from_grads(loss(&a).backward(), &a);
        let gb = GradientsParams::from_grads(loss(&b).backward(), &b);
        a = ours.step(2e-3, a, ga);
        b = burns.step(2e-3, b, gb);
    }
    let (x, y) = (weights(&a), weights(&b));
    let worst = x
        .iter()
        .zip(&y)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f32::max);
    assert!(worst < 1e-6, "largest difference {worst}");
}

/// Every weight of a module, in visiting order (a synchronous read: fine natively).
fn weights<M: Module>(m: &M) -> Vec<f32> {
    struct All(Vec<f32>);
    impl ModuleVisitor for All {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let data = p.val().into_data().convert::<f32>();
            self.0.extend(data.try_to_vec::<f32>().unwrap());
        }
    }
    let mut all = All(Vec::new());
    m.visit(&mut all);
    all.0
}

#[test]
fn the_memory_estimate_counts_what_training_allocates() {
    let cpu = Device::flex();
    for (model, ema) in [
        (tiny(), false),
        (tiny().with_spectral_norm(true).with_image_size(32), true),
        (ModelConfig::reference(), false),
    ] {
        let data = data::builtin_first("shapes", model.image_size, 1, 8).unwrap();
        let train = TrainConfig::new()
            .with_batch(4)
            .with_ema(if ema { 0.9 } else { 0.0 });
        let mut t = Trainer::new(model.clone(), train, &data, 4, &cpu).unwrap();
        block_on(t.run(1)).unwrap();
        let bytes = block_on(t.checkpoint(&[])).unwrap();
        let file =
            safetensors::SafeTensors::deserialize(checkpoint::unseal(&bytes).unwrap()).unwrap();
        let count = |prefix: &str| -> usize {
            file.tensors()
                .iter()
                .filter(|(n, _)| n.starts_with(prefix))
                .map(|(_, v)| v.shape().iter().product::<usize>())
                .sum()
        };
        let e = model.memory(4, 4, ema);
        let (g, d) = t.num_params();
        assert_eq!(e.params, g + d, "{model:?}");
        assert_eq!(count("generator.") + count("discriminator."), e.params);
        // Adam holds two moments for exactly the parameters that get gradients.
        assert_eq!(count("adam_") / 2, e.trainable, "{model:?}");
        assert_eq!(e.adam, 8 * e.trainable as u64);
        assert_eq!(e.gradients, 4 * e.trainable as u64);
        let averaged = if ema { count("ema.") } else { 0 };
        assert_eq!(e.weights, 4 * (e.params + averaged) as u64);
        assert!(e.activations > 0 && e.total > e.weights + e.adam);
    }
    // A device with a total limit refuses what does not fit, with the numbers.
    use gan_playground::memory::{Limits, set_limits};
    set_limits(Limits {
        max_tensor: 1 << 30,
        total: Some(50_000_000),
        source: "a 50 MB test device",
    });
    let data = data::builtin_first("shapes", 32, 1, 8).unwrap();
    let refused = Trainer::new(ModelConfig::reference(), TrainConfig::new(), &data, 4, &cpu);
    set_limits(Limits::DEFAULT);
    let err = refused.err().expect("refused").to_string();
    let e = ModelConfig::reference().memory(64, 4, false);
    let adam = format!("Adam {:.0} MB", e.adam as f64 / 1e6);
    assert!(
        err.contains("training needs about")
            && err.contains(&adam)
            && err.contains("a 50 MB test device has 50 MB"),
        "{err}"
    );
}
