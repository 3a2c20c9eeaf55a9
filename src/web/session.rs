//! The two handles JS holds: `Session` (a GAN being trained) and `Model` (a loaded model file that
//! draws samples and can become a Session again). Conversion and error mapping only.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use burn::module::Module;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::{Picture, device, parse, usable};
use crate::config::ModelConfig;
use crate::error::GanError;
use crate::model::Generator;
use crate::modelfile::{self, Loaded, Provenance};
use crate::render::{Rgba, grid_from_nchw, grid_from_nhwc};
use crate::sample::{self, Draw};
use crate::settings::Plan;
use crate::train::Trainer;

/// Seconds since 1970, from the JS clock (wasm32 has no `SystemTime`).
fn now_unix() -> u64 {
    (js_sys::Date::now() / 1000.0) as u64
}

fn draw(seed: u64, count: usize, truncation: Option<f32>) -> Draw {
    Draw {
        seed,
        count,
        truncation,
    }
}

/// Columns of a square-ish grid of `count` images.
fn cols(count: usize) -> usize {
    (count as f64).sqrt().ceil() as usize
}

/// Draws `d` from `generator` as one RGBA grid.
async fn sample_grid(
    generator: Generator,
    model: ModelConfig,
    d: Draw,
) -> Result<Picture, GanError> {
    let device = device()?;
    let images = sample::images(&generator, model.latent, d, &device).await?;
    Ok(Picture {
        rgba: grid_from_nchw(&images, model.image_size, model.channels, cols(d.count)),
    })
}

/// Result of one training tick: losses of the last step and the sample grid.
#[wasm_bindgen]
pub struct TickResult {
    /// Steps done so far.
    pub step: u64,
    /// Discriminator loss.
    pub d_loss: f32,
    /// Generator loss.
    pub g_loss: f32,
    /// Mean D logit on real images.
    pub d_real: f32,
    /// Mean D logit on fakes.
    pub d_fake: f32,
    samples: Rgba,
}

#[wasm_bindgen]
impl TickResult {
    /// Width of the sample grid in pixels.
    #[wasm_bindgen(getter)]
    pub fn width(&self) -> usize {
        self.samples.width
    }
    /// Height of the sample grid in pixels.
    #[wasm_bindgen(getter)]
    pub fn height(&self) -> usize {
        self.samples.height
    }
    /// The sample grid's RGBA bytes (copied into a fresh Uint8Array).
    #[wasm_bindgen(getter)]
    pub fn rgba(&self) -> Vec<u8> {
        self.samples.pixels.clone()
    }
}

/// A training session: the opaque handle JS holds.
#[wasm_bindgen]
pub struct Session {
    pub(super) trainer: Rc<RefCell<Option<Trainer>>>,
    params: (usize, usize),
    /// Where the pictures came from, their summary and preprocessing, for files' metadata.
    pub(super) source: String,
    pub(super) dataset: String,
    pub(super) preprocessing: String,
    /// The nearest sample/training pairs of the last quality score, two to a row.
    pairs: Rc<RefCell<Option<Rgba>>>,
}

impl Session {
    pub(super) fn wrap(trainer: Trainer, source: &str, preprocessing: String) -> Session {
        Session {
            pairs: Rc::default(),
            params: trainer.num_params(),
            source: source.to_string(),
            dataset: trainer.images.summary(source),
            trainer: Rc::new(RefCell::new(Some(trainer))),
            preprocessing,
        }
    }

    pub(crate) fn from_plan(p: Plan) -> Result<Session, JsValue> {
        let trainer = Trainer::new(p.model, p.train, &p.dataset, p.grid, &device()?)?;
        Ok(Session::wrap(trainer, &p.source, p.preprocessing))
    }

    pub(crate) fn resume_plan(
        model: &Model,
        plan: Result<Plan, GanError>,
    ) -> Result<Session, JsValue> {
        usable()?;
        let loaded = model.loaded.borrow_mut().take().ok_or_else(Model::gone)?;
        let has_d = loaded.discriminator.is_some();
        let plan = plan.and_then(|p| {
            if !has_d {
                return Err(GanError::BadModelFile(
                    "this file has no discriminator, so it can draw samples but not go on training"
                        .into(),
                ));
            }
            Ok(p)
        });
        let p = match plan {
            Ok(p) => p,
            Err(e) => {
                *model.loaded.borrow_mut() = Some(loaded);
                return Err(e.into());
            }
        };
        // Keep a copy so a refused resume (data of the wrong size) gives the model back.
        let backup = loaded.clone();
        match Trainer::resume(loaded, p.train, &p.dataset, p.grid, &device()?) {
            Ok(t) => Ok(Session::wrap(t, &p.source, p.preprocessing)),
            Err(e) => {
                *model.loaded.borrow_mut() = Some(backup);
                Err(e.into())
            }
        }
    }

    pub(super) fn busy() -> GanError {
        GanError::Backend("a training tick is running; try again after it".into())
    }
}

#[wasm_bindgen]
impl Session {
    /// Validates `settings` and builds the models on the initialised backend.
    #[wasm_bindgen(constructor)]
    pub fn new(settings: JsValue) -> Result<Session, JsValue> {
        Session::from_plan(parse(settings)?)
    }

    /// Goes on training a loaded model (which must hold D) on the data of `settings`. Takes the
    /// model: on success the JS `Model` is used up; on failure it is handed back unchanged.
    pub fn resume(model: &Model, settings: JsValue) -> Result<Session, JsValue> {
        Session::resume_plan(model, parse(settings))
    }

    /// Runs `k` steps, then one async readback. Resolves to a `TickResult`.
    pub fn run(&self, k: usize) -> js_sys::Promise {
        let trainer = self.trainer.clone();
        future_to_promise(async move {
            usable()?;
            // Take the trainer out for the tick rather than hold a RefCell borrow across awaits.
            let mut t = trainer.borrow_mut().take().ok_or_else(Session::busy)?;
            let tick = t.run(k).await;
            let m = t.model_config().clone();
            let count = t.draw().count;
            *trainer.borrow_mut() = Some(t);
            let tick = tick?;
            let samples = grid_from_nchw(&tick.samples, m.image_size, m.channels, cols(count));
            Ok(TickResult {
                step: tick.step,
                d_loss: tick.d_loss,
                g_loss: tick.g_loss,
                d_real: tick.d_real,
                d_fake: tick.d_fake,
                samples,
            }
            .into())
        })
    }

    /// Which images the live grid shows from now on: `count` latents of `seed`, truncated at
    /// `truncation` when given. Training itself is unaffected.
    pub fn set_samples(
        &self,
        seed: u64,
        count: usize,
        truncation: Option<f32>,
    ) -> Result<(), JsValue> {
        usable()?;
        let mut slot = self.trainer.borrow_mut();
        let t = slot.as_mut().ok_or_else(Session::busy)?;
        Ok(t.set_draw(draw(seed, count, truncation))?)
    }

    /// Scores the generator against the training pictures. Resolves to `{step, swd, copies,
    /// trainGap, nearest: [[sample, train, distance], ...]}` (the 8 nearest); the 4 nearest
    /// pairs' pictures are then in `nearest_pairs`.
    pub fn quality(&self) -> js_sys::Promise {
        let trainer = self.trainer.clone();
        let pairs = self.pairs.clone();
        future_to_promise(async move {
            usable()?;
            let t = trainer.borrow_mut().take().ok_or_else(Session::busy)?;
            let q = t.quality().await;
            *trainer.borrow_mut() = Some(t);
            let q = q?;
            *pairs.borrow_mut() = Some(grid_from_nhwc(
                &q.pairs.pixels,
                q.pairs.size,
                q.pairs.channels,
                2,
            ));
            let m = q.memorisation;
            let report = QualityReport {
                step: q.step,
                swd: q.swd,
                copies: m.copies,
                train_gap: m.train_gap,
                nearest: m.nearest.into_iter().take(8).collect(),
            };
            report
                .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
                .map_err(|e| JsError::new(&e.to_string()).into())
        })
    }

    /// The 4 samples closest to a training picture at the last quality score, each beside that
    /// picture (sample left, training picture right); `undefined` before the first score.
    pub fn nearest_pairs(&self) -> Option<Picture> {
        self.pairs.borrow().clone().map(|rgba| Picture { rgba })
    }

    /// Draws the current grid without training. Resolves to a `Picture`.
    pub fn sample(&self) -> js_sys::Promise {
        let taken = self
            .trainer
            .borrow()
            .as_ref()
            .map(|t| (t.generator().clone(), t.model_config().clone(), t.draw()));
        future_to_promise(async move {
            usable()?;
            let (g, m, d) = taken.ok_or_else(Session::busy)?;
            Ok(sample_grid(g, m, d).await?.into())
        })
    }

    /// The model as `.safetensors` bytes (G always, D when `with_discriminator`), read back
    /// asynchronously. Resolves to a Uint8Array.
    pub fn save_model(&self, with_discriminator: bool, title: String) -> js_sys::Promise {
        let trainer = self.trainer.clone();
        let provenance = Provenance {
            title,
            created_unix: now_unix(),
            dataset: self.dataset.clone(),
            preprocessing: self.preprocessing.clone(),
        };
        future_to_promise(async move {
            usable()?;
            let t = trainer.borrow_mut().take().ok_or_else(Session::busy)?;
            let bytes = t.save(with_discriminator, &provenance.entries()).await;
            *trainer.borrow_mut() = Some(t);
            Ok(js_sys::Uint8Array::from(&bytes?[..]).into())
        })
    }

    /// The memory training takes, estimated: `{params, trainable, weights, gradients, adam,
    /// activations, largest, total}` (bytes).
    pub fn memory(&self) -> Result<JsValue, JsValue> {
        let slot = self.trainer.borrow();
        let t = slot.as_ref().ok_or_else(Session::busy)?;
        let c = t.train_config();
        let e = t
            .model_config()
            .memory(c.batch, t.draw().count, c.ema > 0.0);
        e.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .map_err(|e| JsError::new(&e.to_string()).into())
    }

    /// Parameters of G, BatchNorm running statistics included.
    #[wasm_bindgen(getter)]
    pub fn generator_params(&self) -> usize {
        self.params.0
    }
    /// Parameters of D, BatchNorm running statistics included.
    #[wasm_bindgen(getter)]
    pub fn discriminator_params(&self) -> usize {
        self.params.1
    }
}

/// The quality scores, for the page.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QualityReport {
    step: u64,
    swd: f32,
    copies: usize,
    train_gap: f32,
    nearest: Vec<(usize, usize, f32)>,
}

/// What the page shows about a loaded model file (metadata as plain text).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModelInfo {
    step: u64,
    image_size: usize,
    channels: usize,
    latent: usize,
    width: usize,
    has_discriminator: bool,
    generator_params: usize,
    discriminator_params: Option<usize>,
    metadata: BTreeMap<String, String>,
}

/// A loaded model file: draws samples; becomes a `Session` again with `Session.resume`.
#[wasm_bindgen]
pub struct Model {
    loaded: RefCell<Option<Loaded>>,
}

impl Model {
    fn gone() -> GanError {
        GanError::Backend("this model was handed to a training session".into())
    }
}

#[wasm_bindgen]
impl Model {
    /// Checks and loads a `.safetensors` model file onto the initialised backend. A bad file is
    /// an error naming the problem; nothing else changes.
    pub fn load(bytes: &[u8]) -> Result<Model, JsValue> {
        let loaded = modelfile::load(bytes, &device()?)?;
        Ok(Model {
            loaded: RefCell::new(Some(loaded)),
        })
    }

    /// `{step, imageSize, channels, latent, width, hasDiscriminator, generatorParams,
    /// discriminatorParams, metadata}`.
    pub fn info(&self) -> Result<JsValue, JsValue> {
        let slot = self.loaded.borrow();
        let l = slot.as_ref().ok_or_else(Model::gone)?;
        let info = ModelInfo {
            step: l.step,
            image_size: l.model.image_size,
            channels: l.model.channels,
            latent: l.model.latent,
            width: l.model.width,
            has_discriminator: l.discriminator.is_some(),
            generator_params: l.generator.num_params(),
            discriminator_params: l.discriminator.as_ref().map(|d| d.num_params()),
            metadata: l.metadata.clone(),
        };
        // As a plain object (not a Map), with numbers as numbers.
        info.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .map_err(|e| JsError::new(&e.to_string()).into())
    }

    /// Draws `count` images of `seed` (truncated at `truncation` when given). Resolves to a
    /// `Picture`: the same images the page showed while training, and the CLI's `sample`.
    pub fn sample(&self, seed: u64, count: usize, truncation: Option<f32>) -> js_sys::Promise {
        let taken = self
            .loaded
            .borrow()
            .as_ref()
            .map(|l| (l.generator.clone(), l.model.clone()));
        future_to_promise(async move {
            usable()?;
            let (g, m) = taken.ok_or_else(Model::gone)?;
            Ok(sample_grid(g, m, draw(seed, count, truncation))
                .await?
                .into())
        })
    }

    /// The model as `.safetensors` bytes again (with D when it has one), keeping the file's
    /// dataset and preprocessing notes. Resolves to a Uint8Array.
    pub fn save_model(&self, title: String) -> js_sys::Promise {
        let taken = self.loaded.borrow().as_ref().map(|l| {
            (
                l.model.clone(),
                l.step,
                l.generator.clone(),
                l.discriminator.clone(),
                l.metadata.clone(),
            )
        });
        future_to_promise(async move {
            usable()?;
            let (m, step, g, d, meta) = taken.ok_or_else(Model::gone)?;
            let keep = |key: &str| meta.get(key).cloned().unwrap_or_default();
            let provenance = Provenance {
                title,
                created_unix: now_unix(),
                dataset: keep("dataset"),
                preprocessing: keep("preprocessing"),
            };
            let mut extra = provenance.entries();
            if let Some(t) = meta.get("train_config") {
                extra.push(("train_config", t.clone()));
            }
            let bytes = modelfile::save(&m, step, &g, d.as_ref(), &extra).await?;
            Ok(js_sys::Uint8Array::from(&bytes[..]).into())
        })
    }
}
