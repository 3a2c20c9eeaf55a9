//! The training loop: one D update then one G update per step (DCGAN paper, Algorithm 1 of
//! Goodfellow et al. 2014 with k = 1), and `run`, which does k steps and then ONE batched async
//! readback of the losses and the fixed-noise sample grid — never a synchronous read.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData, Transaction};

use crate::adam::Adam;
use crate::augment::{diff_augment, random_flip};
use crate::config::{Loss, ModelConfig, TrainConfig};
use crate::data::Dataset;
use crate::error::{GanError, Result};
use crate::metrics::{self, Memorisation};
use crate::model::{Discriminator, Generator};
use crate::modelfile::Loaded;
use crate::rng::Rng;
use crate::sample::{self, Draw};

/// Seed of the samples and patches the quality scores use (fixed, so scores are comparable).
const QUALITY_SEED: u64 = 0x0A11_7E57;

/// Quality scores of the generator at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Quality {
    /// Steps done.
    pub step: u64,
    /// Mean sliced Wasserstein distance x1e3 over pyramid levels (lower is better).
    pub swd: f32,
    /// How many samples look copied from the training set.
    pub memorisation: Memorisation,
    /// The 4 samples closest to a training image, each followed by that image (see
    /// [`metrics::nearest_pairs`]).
    pub pairs: Dataset,
}

/// Largest mean D logit accepted before training counts as diverged.
const MAX_LOGIT: f32 = 1e4;

/// Sample/training pairs shown for the memorisation check.
const SHOWN_PAIRS: usize = 4;

/// What one call to [`Trainer::run`] reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Steps done since the trainer was built.
    pub step: u64,
    /// Discriminator loss of the last step.
    pub d_loss: f32,
    /// Generator loss of the last step.
    pub g_loss: f32,
    /// Mean D logit on the last real batch.
    pub d_real: f32,
    /// Mean D logit on the last fake batch.
    pub d_fake: f32,
    /// Generator output for the fixed noise, `[N, C, H, W]` in [-1, 1].
    pub samples: Vec<f32>,
}

/// Numerically stable softplus, log(1 + e^x) = max(x, 0) + log1p(e^-|x|): burn's `softplus`
/// computes exp(x) directly, which overflows to inf for logits above ~88.
fn softplus(x: Tensor<1>) -> Tensor<1> {
    relu(x.clone()) + x.abs().neg().exp().log1p()
}

impl Loss {
    /// D's loss from its logits on a real and a fake batch.
    fn discriminator(self, real: Tensor<1>, fake: Tensor<1>) -> Tensor<1> {
        match self {
            // -log sigmoid(r) - log(1 - sigmoid(f)) = softplus(-r) + softplus(f)
            Loss::NonSaturating => softplus(real.neg()).mean() + softplus(fake).mean(),
            Loss::Hinge => relu(real.neg() + 1.0).mean() + relu(fake + 1.0).mean(),
        }
    }

    /// G's loss from D's logits on its fakes.
    fn generator(self, fake: Tensor<1>) -> Tensor<1> {
        match self {
            // Non-saturating: maximise log D(G(z)) (Goodfellow et al. 2014, §3).
            Loss::NonSaturating => softplus(fake.neg()).mean(),
            Loss::Hinge => fake.neg().mean(),
        }
    }
}

/// Loss and logit tensors of the last step, kept on the device until the next readback.
struct LastStep {
    d_loss: Tensor<1>,
    g_loss: Tensor<1>,
    d_real: Tensor<1>,
    d_fake: Tensor<1>,
}

/// A GAN being trained on one device, with everything it needs to go on.
pub struct Trainer {
    pub(crate) model: ModelConfig,
    pub(crate) train: TrainConfig,
    pub(crate) device: Device,
    pub(crate) generator: Generator,
    /// The moving average of G (no autodiff) when `train.ema > 0`: what samples and files use.
    pub(crate) ema: Option<Generator>,
    pub(crate) discriminator: Discriminator,
    pub(crate) opt_g: Adam,
    pub(crate) opt_d: Adam,
    pub(crate) rng: Rng,
    pub(crate) draw: Draw,
    /// The training images, as u8 on the CPU: batches are uploaded from here, and the quality
    /// scores compare against them.
    pub(crate) images: Dataset,
    pub(crate) step: u64,
    last: Option<LastStep>,
}

impl Trainer {
    /// Validates the settings, uploads `data` and builds G, D and their optimisers on `device`
    /// (gradients are switched on here). `grid` is the number of fixed-noise samples shown.
    pub fn new(
        model: ModelConfig,
        train: TrainConfig,
        data: &Dataset,
        grid: usize,
        device: &Device,
    ) -> Result<Self> {
        model.validate()?;
        let mut rng = Rng::new(train.seed);
        let (generator, discriminator) = model.init(&mut rng, &Device::flex())?;
        Self::assemble(
            model,
            train,
            data,
            grid,
            device,
            (generator, discriminator),
            0,
            rng,
        )
    }

    /// Goes on training a loaded model (it must hold D) on `data`, from the file's step, with
    /// fresh Adam moments (a shared file never holds optimiser state).
    pub fn resume(
        loaded: Loaded,
        train: TrainConfig,
        data: &Dataset,
        grid: usize,
        device: &Device,
    ) -> Result<Self> {
        let Some(discriminator) = loaded.discriminator else {
            return Err(GanError::BadModelFile(
                "this file has no discriminator, so it can draw samples but not go on training"
                    .into(),
            ));
        };
        // A different batch and noise stream from the first run's, still fixed by seed and step.
        let rng = Rng::new(train.seed ^ loaded.step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let modules = (loaded.generator, discriminator);
        Self::assemble(
            loaded.model,
            train,
            data,
            grid,
            device,
            modules,
            loaded.step,
            rng,
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn assemble(
        model: ModelConfig,
        train: TrainConfig,
        data: &Dataset,
        grid: usize,
        device: &Device,
        (generator, discriminator): (Generator, Discriminator),
        step: u64,
        rng: Rng,
    ) -> Result<Self> {
        model.validate()?;
        train.validate()?;
        model.check_memory(train.batch, grid, train.ema > 0.0)?;
        if data.size != model.image_size || data.channels != model.channels {
            return Err(GanError::InvalidConfig {
                field: "dataset",
                value: format!(
                    "{}x{}x{} data for a {}x{}x{} model",
                    data.size,
                    data.size,
                    data.channels,
                    model.image_size,
                    model.image_size,
                    model.channels
                ),
                allowed: "pictures of the model's size and channels (grayscale or colour)",
            });
        }
        if data.is_empty() {
            return Err(GanError::InvalidConfig {
                field: "dataset",
                value: "0 images".into(),
                allowed: "at least one image",
            });
        }
        let draw = Draw {
            seed: train.seed,
            count: grid,
            truncation: None,
        };
        draw.validate()?;
        let device = device.clone().autodiff();
        let ema = (train.ema > 0.0).then(|| generator.clone().to_device(&device.clone().inner()));
        let adam = Adam::new(train.beta1, train.beta2, train.epsilon);
        Ok(Trainer {
            opt_g: adam.clone(),
            opt_d: adam,
            model,
            train,
            ema,
            generator: generator.to_device(&device).train(),
            discriminator: discriminator.to_device(&device).train(),
            device,
            rng,
            draw,
            images: data.clone(),
            step,
            last: None,
        })
    }

    /// Which images the sample grid shows (seed, count, truncation); training is unaffected.
    pub fn set_draw(&mut self, draw: Draw) -> Result<()> {
        draw.validate()?;
        self.model
            .check_memory(self.train.batch, draw.count, self.train.ema > 0.0)?;
        self.draw = draw;
        Ok(())
    }

    /// The sample grid's draw.
    pub fn draw(&self) -> Draw {
        self.draw
    }

    /// The generator samples come from: the moving average when on, else G itself.
    pub fn generator(&self) -> &Generator {
        self.ema.as_ref().unwrap_or(&self.generator)
    }

    /// Steps done, counting those of a model this one resumed from.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The model settings.
    pub fn model_config(&self) -> &ModelConfig {
        &self.model
    }

    /// The model as one `.safetensors` file: G, and D when `with_discriminator` (needed to go
    /// on training), never optimiser state. `extra` metadata (title, dataset) is added.
    pub async fn save(
        &self,
        with_discriminator: bool,
        extra: &[(&str, String)],
    ) -> Result<Vec<u8>> {
        let d = with_discriminator.then_some(&self.discriminator);
        let mut extra = extra.to_vec();
        extra.push(("train_config", self.train.to_string()));
        crate::modelfile::save(&self.model, self.step, self.generator(), d, &extra).await
    }

    /// The training pictures.
    pub fn images(&self) -> &Dataset {
        &self.images
    }

    /// The training settings (the learning rates may have been lowered by a rollback).
    pub fn train_config(&self) -> &TrainConfig {
        &self.train
    }

    /// Test hook for the divergence guard: multiplies every weight of D by `factor`, as an
    /// exploding update would (NaN: the next tick reports a non-finite loss; 1e6 without
    /// spectral norm: exploding logits).
    #[doc(hidden)]
    pub fn poison(&mut self, factor: f32) {
        let mut scale = crate::model::RewriteParams::new(|_: &[String], t: Tensor<1>| {
            // On the plain tensor: a leaf again, so the parameter can track gradients.
            Some(Tensor::from_inner(t.inner().mul_scalar(factor)))
        });
        self.discriminator = self.discriminator.clone().map(&mut scale);
    }

    /// Parameters of (G, D), BatchNorm running statistics included.
    pub fn num_params(&self) -> (usize, usize) {
        (self.generator.num_params(), self.discriminator.num_params())
    }

    /// Queues one D update and one G update on the device; reads nothing back.
    pub fn step(&mut self) {
        let batch = self.train.batch;
        let loss = self.model.loss;
        let indices: Vec<usize> = (0..batch)
            .map(|_| self.rng.below(self.images.len()))
            .collect();
        // The set stays on the CPU as u8 (a quarter of f32, and no single device buffer past
        // WebGPU's 128 MiB binding limit for 10,000 pictures at 64 px); each step uploads its
        // batch (64 x 12 KB at 32 px: negligible next to the step).
        let (s, c) = (self.model.image_size, self.model.channels);
        let real = Tensor::<4>::from_data(
            TensorData::new(self.images.batch_nchw(&indices), [batch, c, s, s]),
            &self.device,
        ); // [B, C, S, S]
        let z = noise(&mut self.rng, batch, self.model.latent, &self.device); // [B, latent]

        let strength = self.train.augment;
        // One power iteration per step refines each spectral-norm estimate (a no-op without
        // spectral normalisation); D's update and G's step both use the refined estimate.
        self.discriminator = self.discriminator.clone().power_iterate();
        // D step: G's output is detached, so only D gets gradients. D sees every batch, real
        // or fake, through DiffAugment (a no-op at strength 0).
        let fake = self.generator.forward(z.clone()).detach(); // [B, C, S, S]
        let real = if self.train.flip {
            random_flip(real, &mut self.rng) // [B, C, S, S]
        } else {
            real
        };
        let real = diff_augment(real, strength, &mut self.rng); // [B, C, S, S]
        let fake = diff_augment(fake, strength, &mut self.rng); // [B, C, S, S]
        let d_real = self.discriminator.forward(real); // [B]
        let d_fake = self.discriminator.forward(fake); // [B]
        let d_loss = loss.discriminator(d_real.clone(), d_fake.clone()); // [1]
        let grads = GradientsParams::from_grads(d_loss.backward(), &self.discriminator);
        self.discriminator = self
            .opt_d
            .step(self.train.lr_d, self.discriminator.clone(), grads);

        // G step on the same z, through the updated D (as the TF.js reference does).
        let fake = diff_augment(self.generator.forward(z), strength, &mut self.rng); // [B, C, S, S]
        let g_fake = self.discriminator.forward(fake); // [B]
        let g_loss = loss.generator(g_fake); // [1]
        let grads = GradientsParams::from_grads(g_loss.backward(), &self.generator);
        self.generator = self
            .opt_g
            .step(self.train.lr_g, self.generator.clone(), grads);

        if let Some(ema) = self.ema.take() {
            // Warm-up: an average over the first steps would be mostly the random init, so the
            // decay ramps as min(decay, (1 + t) / (10 + t)), as TensorFlow's
            // `ExponentialMovingAverage(num_updates=t)` does.
            let t = self.step as f64;
            let decay = self.train.ema.min((1.0 + t) / (10.0 + t)) as f32;
            self.ema = Some(ema.blend(&self.generator, decay));
        }
        self.step += 1;
        self.last = Some(LastStep {
            d_loss: d_loss.detach(),
            g_loss: g_loss.detach(),
            d_real: d_real.detach().mean(),
            d_fake: d_fake.detach().mean(),
        });
    }

    /// The generator's images for the grid's draw, `[grid, C, S, S]`, still on the device;
    /// BatchNorm in inference mode, exactly as a saved model file draws them.
    fn fixed_samples(&self) -> Tensor<4> {
        let z = self.draw.latents(self.model.latent);
        sample::generate(self.generator(), z, self.draw.count, &self.device)
    }

    /// Scores the generator against the training images: SWD x1e3 between 256 samples (a fixed
    /// draw, so the curve only moves with the weights) and up to 256 training images, and the
    /// memorisation check of 64 samples against the whole set.
    pub async fn quality(&self) -> Result<Quality> {
        let (s, c) = (self.model.image_size, self.model.channels);
        let draw = Draw {
            seed: QUALITY_SEED,
            count: 256,
            truncation: None,
        };
        let values =
            sample::images(self.generator(), self.model.latent, draw, &self.device).await?;
        let samples = Dataset::from_nchw(&values, s, c);
        let n = s * s * c;
        let first = Dataset {
            pixels: samples.pixels[..64 * n].to_vec(),
            ..samples.clone()
        };
        let memorisation = metrics::memorisation(&first, &self.images);
        Ok(Quality {
            step: self.step,
            swd: metrics::swd_mean(&samples, &self.images, 256, QUALITY_SEED)?,
            pairs: metrics::nearest_pairs(&first, &self.images, &memorisation, SHOWN_PAIRS),
            memorisation,
        })
    }

    /// Runs `k` steps, then reads the losses and the sample grid back in one transaction.
    /// A NaN or infinite loss or sample is an error naming the value and the step.
    pub async fn run(&mut self, k: usize) -> Result<Tick> {
        let tick = self.run_unchecked(k).await?;
        for (what, v) in [
            ("discriminator loss", tick.d_loss),
            ("generator loss", tick.g_loss),
        ] {
            if !v.is_finite() {
                return Err(GanError::NonFinite {
                    what,
                    step: tick.step,
                });
            }
        }
        if tick.samples.iter().any(|v| !v.is_finite()) {
            return Err(GanError::NonFinite {
                what: "generator output",
                step: tick.step,
            });
        }
        // Finite but exploding: a logit this large means sigmoid(D) is 1 - e^-10000, a D that
        // has blown up rather than one that is winning (healthy runs stay within +-100).
        for (what, v) in [
            ("discriminator logit on real pictures", tick.d_real),
            ("discriminator logit on samples", tick.d_fake),
        ] {
            if v.abs() > MAX_LOGIT {
                return Err(GanError::Exploded {
                    what,
                    value: v,
                    step: tick.step,
                });
            }
        }
        Ok(tick)
    }

    /// [`run`](Self::run) without the finiteness check, for comparing backends value by value.
    pub async fn run_unchecked(&mut self, k: usize) -> Result<Tick> {
        for _ in 0..k {
            self.step();
        }
        let samples = self.fixed_samples();
        let last = self.last.as_ref();
        // One transaction holds tensors of one kind: the samples come from the plain device
        // (no autodiff), so the scalars leave the autodiff graph too.
        let zero = || Tensor::<1>::zeros([1], &self.device.clone().inner());
        let scalars = [
            last.map_or_else(zero, |l| l.d_loss.clone().inner()),
            last.map_or_else(zero, |l| l.g_loss.clone().inner()),
            last.map_or_else(zero, |l| l.d_real.clone().inner()),
            last.map_or_else(zero, |l| l.d_fake.clone().inner()),
        ];
        let mut transaction = Transaction::default();
        for s in scalars {
            transaction = transaction.register(s);
        }
        let data = transaction
            .register(samples)
            .execute_async()
            .await
            .map_err(|e| {
                GanError::Backend(format!("reading results from the device failed: {e:?}"))
            })?;
        let mut values = data.into_iter().map(|d| {
            d.convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| GanError::Backend(format!("unexpected tensor data: {e:?}")))
        });
        let mut scalar =
            || -> Result<f32> { Ok(values.next().expect("five tensors were registered")?[0]) };
        let (d_loss, g_loss, d_real, d_fake) = (scalar()?, scalar()?, scalar()?, scalar()?);
        let samples = values.next().expect("five tensors were registered")?;
        Ok(Tick {
            step: self.step,
            d_loss,
            g_loss,
            d_real,
            d_fake,
            samples,
        })
    }
}

/// `count` latent vectors from N(0, 1) (DCGAN paper §4 uses uniform; PyTorch's example and the
/// TF.js reference use normal), drawn on the CPU so every backend sees the same noise.
pub fn noise(rng: &mut Rng, count: usize, latent: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(rng.normals(count * latent, 0.0, 1.0), [count, latent]),
        device,
    )
}
