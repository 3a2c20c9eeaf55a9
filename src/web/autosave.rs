//! The autosave boundary: checkpoints and pictures files out of a `Session`, sessions back from
//! them, and a checkpoint's summary for the resume prompt. Conversion and error mapping only;
//! IndexedDB is the worker's (www/store.js).

use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::device;
use super::session::Session;
use super::upload::Upload;
use super::usable;
use crate::checkpoint;
use crate::error::GanError;
use crate::preprocess::{Builder, Preprocess};
use crate::settings::Uploaded;
use crate::train::Trainer;

/// What the resume prompt shows about a checkpoint.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckpointView {
    step: u64,
    digest: u32,
    /// The page's settings when it was saved (JSON), to restore its controls.
    page_settings: Option<String>,
    /// The built-in set it trained on; `None` for the user's pictures (a pictures file).
    builtin: Option<String>,
    image_size: usize,
    lr_g: f64,
    lr_d: f64,
}

/// Checks a checkpoint's seal and settings. Resolves nothing big: safe to call on every slot.
#[wasm_bindgen]
pub fn checkpoint_info(bytes: &[u8]) -> Result<JsValue, JsValue> {
    let info = checkpoint::info(bytes)?;
    let view = CheckpointView {
        step: info.step,
        digest: info.digest,
        page_settings: info.metadata.get("page_settings").cloned(),
        builtin: checkpoint::builtin(&info),
        image_size: info.model.image_size,
        lr_g: info.train.lr_g,
        lr_d: info.train.lr_d,
    };
    view.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&e.to_string()).into())
}

fn restore(bytes: &[u8], u: Uploaded, lr_scale: f64) -> Result<Session, JsValue> {
    usable()?;
    let trainer = Trainer::restore(bytes, &u.dataset, lr_scale, &device()?)?;
    Ok(Session::wrap(trainer, &u.source, u.preprocessing))
}

#[wasm_bindgen]
impl Session {
    /// Resumes a checkpoint of a built-in set, with both learning rates times `lr_scale`.
    pub fn restore(bytes: &[u8], lr_scale: f64) -> Result<Session, JsValue> {
        let info = checkpoint::info(bytes)?;
        let Some(name) = checkpoint::builtin(&info) else {
            return Err(GanError::BadCheckpoint(
                "it trained on your own pictures, and they were not found".into(),
            )
            .into());
        };
        let dataset = checkpoint::builtin_dataset(&info)?.expect("a built-in set");
        let preprocessing = info.metadata.get("preprocessing").cloned();
        let u = Uploaded {
            dataset,
            source: format!("built-in set {name}"),
            preprocessing: preprocessing.unwrap_or_default(),
        };
        restore(bytes, u, lr_scale)
    }

    /// The whole training state as one sealed checkpoint, with the page's settings (JSON) kept
    /// in it. Resolves to a Uint8Array.
    pub fn checkpoint(&self, page_settings: String) -> js_sys::Promise {
        let trainer = self.trainer.clone();
        let extra = [
            ("page_settings", page_settings),
            ("dataset", self.dataset.clone()),
            ("preprocessing", self.preprocessing.clone()),
        ];
        future_to_promise(async move {
            usable()?;
            let t = trainer.borrow_mut().take().ok_or_else(Session::busy)?;
            let bytes = t.checkpoint(&extra).await;
            *trainer.borrow_mut() = Some(t);
            Ok(js_sys::Uint8Array::from(&bytes?[..]).into())
        })
    }

    /// CRC-32 of the whole training state; equals the `digest` of a checkpoint of it.
    pub fn digest(&self) -> js_sys::Promise {
        let trainer = self.trainer.clone();
        future_to_promise(async move {
            usable()?;
            let t = trainer.borrow_mut().take().ok_or_else(Session::busy)?;
            let digest = t.digest().await;
            *trainer.borrow_mut() = Some(t);
            Ok(JsValue::from(digest?))
        })
    }

    /// Id of the pictures trained on (equal sets, equal ids).
    pub fn pictures_id(&self) -> Result<String, JsValue> {
        let slot = self.trainer.borrow();
        let t = slot.as_ref().ok_or_else(Session::busy)?;
        Ok(checkpoint::dataset_id(t.images()))
    }

    /// The pictures trained on, as one sealed pictures file.
    pub fn pictures_file(&self) -> Result<Vec<u8>, JsValue> {
        let slot = self.trainer.borrow();
        let t = slot.as_ref().ok_or_else(Session::busy)?;
        let u = Uploaded {
            dataset: t.images().clone(),
            source: self.source.clone(),
            preprocessing: self.preprocessing.clone(),
        };
        Ok(checkpoint::encode_dataset(&u)?)
    }

    /// `[lr_g, lr_d]` now (a rollback lowers them).
    pub fn learning_rates(&self) -> Result<Vec<f64>, JsValue> {
        let slot = self.trainer.borrow();
        let t = slot.as_ref().ok_or_else(Session::busy)?;
        Ok(vec![t.train_config().lr_g, t.train_config().lr_d])
    }

    /// Test hook: makes the next tick diverge (D's weights times NaN).
    pub fn debug_diverge(&self) -> Result<(), JsValue> {
        let mut slot = self.trainer.borrow_mut();
        slot.as_mut().ok_or_else(Session::busy)?.poison(f32::NAN);
        Ok(())
    }
}

#[wasm_bindgen]
impl Upload {
    /// The pictures of a pictures file (from an autosave), as a set that can be shown,
    /// trimmed and trained on; a damaged file is refused.
    pub fn from_pictures_file(bytes: &[u8]) -> Result<Upload, JsValue> {
        let u = checkpoint::decode_dataset(bytes)?;
        let prep: Preprocess = serde_json::from_str(&u.preprocessing).map_err(|e| {
            GanError::BadCheckpoint(format!("the pictures' preprocessing is unreadable: {e}"))
        })?;
        Ok(Upload {
            builder: Builder::from_dataset(prep, u.dataset)?,
        })
    }

    /// Resumes a checkpoint on these pictures, with both learning rates times `lr_scale`.
    pub fn restore(&self, bytes: &[u8], lr_scale: f64) -> Result<Session, JsValue> {
        restore(bytes, self.uploaded(), lr_scale)
    }
}
