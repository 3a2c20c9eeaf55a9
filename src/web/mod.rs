//! The wasm boundary, and nothing else: type conversion and error mapping over the core.
//! Long-lived state (the trainer) lives here behind an opaque handle; JS gets small results and
//! flat RGBA bytes. Errors cross as `JsError`; a panic poisons the module and is reported.

mod autosave;
mod session;
mod upload;

use std::cell::{Cell, RefCell};

use burn::tensor::Device;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::config::ModelConfig;
use crate::error::GanError;
use crate::memory::{self, Limits};
use crate::recipe::Recipe;
use crate::render::{Rgba, grid_from_nhwc};
use crate::settings::{Plan, Settings, Uploaded};
use crate::{data, parity};

thread_local! {
    static DEVICE: RefCell<Option<(Device, &'static str)>> = const { RefCell::new(None) };
    static POISONED: Cell<bool> = const { Cell::new(false) };
}

impl From<GanError> for JsValue {
    /// A JS `Error` with the message; a divergence is named `DivergenceError`, so the worker
    /// can roll back instead of stopping.
    fn from(e: GanError) -> JsValue {
        let error = js_sys::Error::new(&e.to_string());
        if matches!(e, GanError::NonFinite { .. } | GanError::Exploded { .. }) {
            error.set_name("DivergenceError");
        }
        error.into()
    }
}

pub(crate) fn usable() -> Result<(), GanError> {
    if POISONED.get() {
        Err(GanError::Poisoned)
    } else {
        Ok(())
    }
}

pub(crate) fn device() -> Result<Device, GanError> {
    usable()?;
    DEVICE
        .with_borrow(|d| d.as_ref().map(|(d, _)| d.clone()))
        .ok_or_else(|| GanError::Backend("no backend yet: call init_backend first".into()))
}

unsafe extern "C" {
    /// Synthesised by wasm-ld: runs the module's static constructors (CubeCL's IR registers its
    /// dialects through `inventory`, which uses them).
    fn __wasm_call_ctors();
}

/// Runs the static constructors once, then installs the panic hook.
///
/// Why the explicit call: when no code calls `__wasm_call_ctors`, wasm-ld treats the module as a
/// "command" and wraps every export, wasm-bindgen's own glue included, in a call to it
/// (<https://reviews.llvm.org/D81689>; inventory's docs, "WebAssembly and constructors"). Each
/// WebGPU dispatch crosses that boundary a few times, so the constructors ran thousands of times
/// per training step: 3.6 ms per dispatch, 2.7 s per step of the tiny test model on SwiftShader
/// (`tests/e2e/profile.mjs`). Calling it here, from wasm-bindgen's start function (run once after
/// instantiation), makes wasm-ld leave the exports alone.
///
/// The panic hook: a panic is terminal, so mark the module poisoned and tell the worker through
/// `self.__ganPanic(message)` so the page can offer a restart.
#[wasm_bindgen(start)]
pub fn start() {
    // SAFETY: called once, first, from the start function, before any other export runs.
    unsafe { __wasm_call_ctors() };
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
/// `max_tensor` is the WebGPU adapter's largest buffer binding in bytes (its
/// `maxStorageBufferBindingSize`, capped by `maxBufferSize`): configs are checked against it.
#[wasm_bindgen]
pub async fn init_backend(kind: String, max_tensor: Option<f64>) -> Result<String, JsValue> {
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
            memory::set_limits(Limits {
                max_tensor: max_tensor.map_or(Limits::DEFAULT.max_tensor, |b| b as u64),
                total: None,
                source: "this GPU",
            });
            (d, "webgpu")
        }
        "cpu" => {
            // wasm32 addresses 4 GiB in all; 3 GiB for training leaves room for the code, the
            // pictures and their copies. One Vec holds at most 2 GiB (isize::MAX).
            memory::set_limits(Limits {
                max_tensor: 2 << 30,
                total: Some(3 << 30),
                source: "the CPU backend in WebAssembly",
            });
            (Device::flex(), "cpu")
        }
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

pub(crate) fn parse(settings: JsValue) -> Result<Plan, GanError> {
    parse_with(settings, None)
}

/// Parses the page's settings; dataset `"upload"` means `uploaded`.
pub(crate) fn parse_with(settings: JsValue, uploaded: Option<Uploaded>) -> Result<Plan, GanError> {
    let settings: Settings = from_js(settings, "settings", "an object of known settings")?;
    settings.resolve_with(uploaded)
}

/// A JS object as a Rust value; a mismatch is an `InvalidConfig` naming `field`.
pub(crate) fn from_js<T: serde::de::DeserializeOwned>(
    value: JsValue,
    field: &'static str,
    allowed: &'static str,
) -> Result<T, GanError> {
    serde_wasm_bindgen::from_value(value).map_err(|e| GanError::InvalidConfig {
        field,
        value: e.to_string(),
        allowed,
    })
}

/// An RGBA picture with its size, for `new ImageData(rgba, width, height)`.
#[wasm_bindgen]
pub struct Picture {
    pub(crate) rgba: Rgba,
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

#[derive(Serialize)]
struct RecipeView {
    name: Recipe,
    label: &'static str,
    settings: Settings,
}

/// The recipe `name` ("auto": the one for `count` pictures) as `{name, label, settings}`, the
/// settings in the page's field names.
#[wasm_bindgen]
pub fn recipe(name: &str, count: usize) -> Result<JsValue, JsValue> {
    let recipe = match name {
        "auto" => Recipe::for_count(count),
        other => Recipe::parse(other).ok_or(GanError::InvalidConfig {
            field: "recipe",
            value: other.into(),
            allowed: "auto, tiny, small, large or reference",
        })?,
    };
    let view = RecipeView {
        name: recipe,
        label: recipe.label(),
        settings: recipe.settings(),
    };
    serde_wasm_bindgen::to_value(&view).map_err(|e| JsError::new(&e.to_string()).into())
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
