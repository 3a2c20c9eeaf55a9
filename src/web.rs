//! The wasm boundary, and nothing else: type conversion and error mapping over the core.
//! Long-lived state (the trainer) lives here behind an opaque handle; JS gets small results and
//! flat RGBA bytes. Errors cross as `JsError`; a panic poisons the module and is reported.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use burn::tensor::Device;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::config::ModelConfig;
use crate::error::GanError;
use crate::render::{Rgba, grid_from_nchw, grid_from_nhwc};
use crate::settings::{Plan, Settings};
use crate::train::Trainer;
use crate::{data, parity};

thread_local! {
    static DEVICE: RefCell<Option<(Device, &'static str)>> = const { RefCell::new(None) };
    static POISONED: Cell<bool> = const { Cell::new(false) };
}

impl From<GanError> for JsValue {
    fn from(e: GanError) -> JsValue {
        JsError::new(&e.to_string()).into()
    }
}

fn usable() -> Result<(), GanError> {
    if POISONED.get() {
        Err(GanError::Poisoned)
    } else {
        Ok(())
    }
}

fn device() -> Result<Device, GanError> {
    usable()?;
    DEVICE
        .with_borrow(|d| d.as_ref().map(|(d, _)| d.clone()))
        .ok_or_else(|| GanError::Backend("no backend yet: call init_backend first".into()))
}

/// Installs the panic hook: the panic is terminal, so mark the module poisoned and tell the
/// worker through `self.__ganPanic(message)` so the page can offer a restart.
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        POISONED.set(true);
        // One line a person can read: "what (at file:line)".
        let what = info.payload_as_str().unwrap_or("unknown panic");
        let message = match info.location() {
            Some(l) => format!("{what} (at {}:{})", l.file(), l.line()),
            None => what.to_string(),
        };
        web_sys::console::error_1(&message.clone().into());
        let hook = js_sys::Reflect::get(&js_sys::global(), &"__ganPanic".into());
        if let Ok(f) = hook.and_then(|f| f.dyn_into::<js_sys::Function>()) {
            let _ = f.call1(&JsValue::NULL, &message.into());
        }
    }));
}

/// Panics on purpose, so the browser tests can check that a crash is reported and the page
/// recovers by restarting the worker (the same path a real panic takes).
#[wasm_bindgen]
pub fn simulate_crash() {
    panic!("crash requested by the self-test");
}

/// Starts the backend once: "webgpu" (burn's wgpu runtime) or "cpu" (Flex). Returns its label.
#[wasm_bindgen]
pub async fn init_backend(kind: String) -> Result<String, JsValue> {
    usable()?;
    if let Some(label) = DEVICE.with_borrow(|d| d.as_ref().map(|(_, l)| *l)) {
        return Ok(label.to_string());
    }
    let (device, label) = match kind.as_str() {
        "webgpu" => {
            let d = Device::wgpu_options()
                .init_async()
                .await
                .map_err(|e| GanError::Backend(format!("WebGPU could not start: {e}")))?;
            (d, "webgpu")
        }
        "cpu" => (Device::flex(), "cpu"),
        other => {
            return Err(GanError::Backend(format!(
                "unknown backend \"{other}\" (use webgpu or cpu)"
            ))
            .into());
        }
    };
    DEVICE.set(Some((device, label)));
    Ok(label.to_string())
}

fn parse(settings: JsValue) -> Result<Plan, GanError> {
    let settings: Settings =
        serde_wasm_bindgen::from_value(settings).map_err(|e| GanError::InvalidConfig {
            field: "settings",
            value: e.to_string(),
            allowed: "an object of known settings",
        })?;
    settings.resolve()
}

/// An RGBA picture with its size, for `new ImageData(rgba, width, height)`.
#[wasm_bindgen]
pub struct Picture {
    rgba: Rgba,
}

#[wasm_bindgen]
impl Picture {
    #[wasm_bindgen(getter)]
    pub fn width(&self) -> usize {
        self.rgba.width
    }
    #[wasm_bindgen(getter)]
    pub fn height(&self) -> usize {
        self.rgba.height
    }
    /// The RGBA bytes (copied into a fresh Uint8Array).
    #[wasm_bindgen(getter)]
    pub fn rgba(&self) -> Vec<u8> {
        self.rgba.pixels.clone()
    }
}

/// A grid of `count` images of the built-in set `name` at `size` pixels (no backend needed).
#[wasm_bindgen]
pub fn dataset_preview(name: &str, size: usize, count: usize) -> Result<Picture, JsValue> {
    usable()?;
    ModelConfig::new().with_image_size(size).validate()?;
    let set = data::builtin_first(name, size, 1, count.max(1))?;
    Ok(Picture {
        rgba: grid_from_nhwc(&set.pixels, size, set.channels, 8),
    })
}

/// Result of one training tick: losses of the last step and the fixed-noise sample grid.
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
    trainer: Rc<RefCell<Option<Trainer>>>,
    grid_cols: usize,
    params: (usize, usize),
}

#[wasm_bindgen]
impl Session {
    /// Validates `settings` and builds the models on the initialised backend.
    #[wasm_bindgen(constructor)]
    pub fn new(settings: JsValue) -> Result<Session, JsValue> {
        let p = parse(settings)?;
        let trainer = Trainer::new(p.model, p.train, &p.dataset, p.grid, &device()?)?;
        let params = trainer.num_params();
        let grid_cols = (p.grid as f64).sqrt().ceil() as usize;
        Ok(Session {
            trainer: Rc::new(RefCell::new(Some(trainer))),
            grid_cols,
            params,
        })
    }

    /// Runs `k` steps, then one async readback. Resolves to a `TickResult`.
    pub fn run(&self, k: usize) -> js_sys::Promise {
        let trainer = self.trainer.clone();
        let cols = self.grid_cols;
        future_to_promise(async move {
            usable()?;
            // Take the trainer out for the tick rather than hold a RefCell borrow across awaits.
            let mut t = trainer
                .borrow_mut()
                .take()
                .ok_or_else(|| GanError::Backend("a training tick is already running".into()))?;
            let tick = t.run(k).await;
            let (size, channels) = (t.model_config().image_size, t.model_config().channels);
            *trainer.borrow_mut() = Some(t);
            let tick = tick?;
            let samples = grid_from_nchw(&tick.samples, size, channels, cols);
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

    /// The model as `.safetensors` bytes (G always, D when `with_discriminator`), read back
    /// asynchronously. Resolves to a Uint8Array.
    pub fn save_model(&self, with_discriminator: bool, title: String) -> js_sys::Promise {
        let trainer = self.trainer.clone();
        future_to_promise(async move {
            usable()?;
            let t = trainer.borrow_mut().take().ok_or_else(|| {
                GanError::Backend("a training tick is running; save after it".into())
            })?;
            let extra = [("title", title)];
            let bytes = t.save(with_discriminator, &extra).await;
            *trainer.borrow_mut() = Some(t);
            Ok(js_sys::Uint8Array::from(&bytes?[..]).into())
        })
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ParityRow {
    step: u64,
    losses_gpu: (f32, f32),
    losses_cpu: (f32, f32),
    sample_max_diff: f32,
}

/// Trains the same seeded GAN on the initialised backend and on Flex for `steps` steps and
/// resolves to `[{step, lossesGpu, lossesCpu, sampleMaxDiff}]` (the backend self-check).
#[wasm_bindgen]
pub fn parity_check(settings: JsValue, steps: usize) -> js_sys::Promise {
    let parsed = parse(settings);
    future_to_promise(async move {
        let p = parsed?;
        let report = parity::compare(
            &p.model,
            &p.train,
            &p.dataset,
            p.grid,
            steps,
            &device()?,
            &Device::flex(),
        )
        .await?;
        let rows: Vec<ParityRow> = report
            .into_iter()
            .map(|r| ParityRow {
                step: r.step,
                losses_gpu: r.losses_a,
                losses_cpu: r.losses_b,
                sample_max_diff: r.sample_max_diff,
            })
            .collect();
        serde_wasm_bindgen::to_value(&rows).map_err(|e| JsError::new(&e.to_string()).into())
    })
}
