//! The pictures a person adds in the page: checked before decoding, prepared (crop/pad/stretch,
//! alpha, grayscale, resize) and kept compactly in Rust as u8 at the training size. The browser
//! decodes (`createImageBitmap` in the worker); this handle only converts and maps errors.

use wasm_bindgen::prelude::*;

use super::session::{Model, Session};
use super::{Picture, from_js, parse_with};
use crate::archive;
use crate::error::GanError;
use crate::preprocess::{self, Builder, Preprocess};
use crate::render::grid_from_nhwc;
use crate::settings::Uploaded;

/// The user's pictures, prepared with one set of preprocessing settings.
#[wasm_bindgen]
pub struct Upload {
    pub(super) builder: Builder,
}

impl Upload {
    pub(super) fn uploaded(&self) -> Uploaded {
        let prep = self.builder.preprocess();
        let mut preprocessing = serde_json::to_value(prep).unwrap_or_default();
        preprocessing["source"] = "browser upload".into();
        Uploaded {
            dataset: self.builder.snapshot(),
            source: "your pictures".into(),
            preprocessing: preprocessing.to_string(),
        }
    }
}

#[wasm_bindgen]
impl Upload {
    /// An empty set prepared with `prep`: `{size, channels, fit: "crop"|"pad"|"stretch",
    /// background: [r, g, b]}`.
    #[wasm_bindgen(constructor)]
    pub fn new(prep: JsValue) -> Result<Upload, JsValue> {
        let prep: Preprocess = from_js(prep, "preprocessing", "{size, channels, fit, background}")?;
        Ok(Upload {
            builder: Builder::new(prep)?,
        })
    }

    /// Checks a file before it is decoded, from its length and first bytes (64 KB are enough).
    pub fn check(name: &str, file_len: f64, head: &[u8]) -> Result<(), JsValue> {
        preprocess::check_header(name, file_len as u64, head)?;
        Ok(())
    }

    /// Adds one decoded RGBA picture. Returns `true` when it was new, `false` when it duplicates
    /// a picture already in the set (then it is dropped).
    pub fn add(
        &mut self,
        name: &str,
        width: usize,
        height: usize,
        rgba: &[u8],
    ) -> Result<bool, JsValue> {
        let picture = preprocess::Picture {
            width,
            height,
            rgba,
        };
        let added = self.builder.push(&picture).map_err(|e| match e {
            GanError::InvalidConfig { value, .. } => GanError::BadImage {
                name: name.to_string(),
                problem: format!("the browser decoded it to {value}"),
            },
            other => other,
        })?;
        Ok(added.is_none())
    }

    /// Removes the `index`-th picture.
    pub fn remove(&mut self, index: usize) -> Result<(), JsValue> {
        Ok(self.builder.remove(index)?)
    }

    /// Pictures in the set.
    #[wasm_bindgen(getter)]
    pub fn count(&self) -> usize {
        self.builder.len()
    }

    /// The first `count` pictures as a grid `cols` wide.
    pub fn preview(&self, count: usize, cols: usize) -> Picture {
        let p = self.builder.preprocess();
        let n = count.min(self.builder.len()) * p.size * p.size * p.channels;
        Picture {
            rgba: grid_from_nhwc(&self.builder.pixels()[..n], p.size, p.channels, cols),
        }
    }

    /// A new training session on these pictures.
    pub fn session(&self, settings: JsValue) -> Result<Session, JsValue> {
        let plan = parse_with(settings, Some(self.uploaded()))?;
        Session::from_plan(plan)
    }

    /// Goes on training a loaded model on these pictures (see `Session.resume`).
    pub fn resume(&self, model: &Model, settings: JsValue) -> Result<Session, JsValue> {
        let plan = parse_with(settings, Some(self.uploaded()));
        Session::resume_plan(model, plan)
    }
}

/// A `.zip` archive of pictures, read one entry at a time (see `archive.rs` for its limits).
#[wasm_bindgen]
pub struct Archive {
    inner: archive::Archive,
}

/// One picture file from an archive: its name ("set.zip/cats/1.png") and bytes.
#[wasm_bindgen(getter_with_clone)]
pub struct ArchiveEntry {
    pub name: String,
    pub bytes: Vec<u8>,
}

#[wasm_bindgen]
impl Archive {
    /// Refuses an archive by its length, before the page reads it.
    pub fn check(name: &str, len: f64) -> Result<(), JsValue> {
        archive::check_size(name, len as u64)?;
        Ok(())
    }

    /// Opens an archive from its bytes.
    #[wasm_bindgen(constructor)]
    pub fn new(name: &str, bytes: Vec<u8>) -> Result<Archive, JsValue> {
        Ok(Archive {
            inner: archive::Archive::open(name, bytes)?,
        })
    }

    /// Entries, folders included.
    #[wasm_bindgen(getter)]
    pub fn count(&self) -> usize {
        self.inner.len()
    }

    /// The `index`-th entry, `undefined` for folders and macOS metadata; an error naming the
    /// entry when it cannot be used.
    pub fn entry(&mut self, index: usize) -> Result<Option<ArchiveEntry>, JsValue> {
        Ok(self.inner.entry(index)?.map(|e| ArchiveEntry {
            name: e.name,
            bytes: e.bytes,
        }))
    }
}
