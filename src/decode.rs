//! Reading pictures from files for the native CLI: PNG, JPEG, WebP, GIF (first frame) and BMP via
//! the `image` crate, with the file size and pixel count checked before anything is decoded, and
//! folders walked in a stable order. Every unusable file becomes a `BadImage` naming it and why.
//! (In the browser the page decodes pictures itself; this module is native only.)

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ImageReader, Limits};

use crate::data::Dataset;
use crate::error::{GanError, Result};
use crate::preprocess::{Builder, Picture, Preprocess};

/// Largest picture file accepted: 20 MB holds any photo a phone takes.
pub const MAX_FILE_BYTES: u64 = 20 << 20;
/// Largest picture accepted, in pixels (about 8000x6000, 48 MP): the decoded RGBA is 192 MB.
pub const MAX_PIXELS: u64 = 48_000_000;

/// A decoded picture, RGBA8.
pub struct Decoded {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major RGBA bytes.
    pub rgba: Vec<u8>,
}

impl Decoded {
    /// A view for [`Preprocess::apply`].
    pub fn picture(&self) -> Picture<'_> {
        Picture {
            width: self.width,
            height: self.height,
            rgba: &self.rgba,
        }
    }
}

fn too_large(name: &str, bytes: u64) -> GanError {
    GanError::BadImage {
        name: name.to_string(),
        problem: format!(
            "the file is {} MB; pictures up to {} MB are accepted",
            bytes >> 20,
            MAX_FILE_BYTES >> 20
        ),
    }
}

/// Decodes one file's bytes; `name` is only used in the error.
pub fn decode(name: &str, bytes: &[u8]) -> Result<Decoded> {
    let bad = |problem: String| GanError::BadImage {
        name: name.to_string(),
        problem,
    };
    if bytes.is_empty() {
        return Err(bad("the file is empty".into()));
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(name, bytes.len() as u64));
    }
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| bad(format!("cannot be read: {e}")))
    };
    if reader()?.format().is_none() {
        return Err(bad(
            "not a picture (PNG, JPEG, WebP, GIF and BMP are supported)".into(),
        ));
    }
    // The header alone gives the size: refuse huge pictures before allocating for them.
    let (w, h) = reader()?
        .into_dimensions()
        .map_err(|e| bad(format!("damaged or unsupported picture: {e}")))?;
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(bad(format!(
            "{w}x{h} pixels is too large; pictures up to {} megapixels are accepted",
            MAX_PIXELS / 1_000_000
        )));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    limits.max_alloc = Some(MAX_PIXELS * 4 + (64 << 20));
    let mut r = reader()?;
    r.limits(limits);
    let image = r
        .decode()
        .map_err(|e| bad(format!("damaged or unsupported picture: {e}")))?;
    let rgba = image.into_rgba8();
    Ok(Decoded {
        width: rgba.width() as usize,
        height: rgba.height() as usize,
        rgba: rgba.into_raw(),
    })
}

/// Every file under `dir` (recursively, sorted by path; hidden files skipped), and the
/// subfolders that could not be read. An unreadable `dir` itself is an error.
pub fn files(dir: &Path) -> Result<(Vec<PathBuf>, Vec<GanError>)> {
    let (mut out, mut unreadable) = (Vec::new(), Vec::new());
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) if d == dir => {
                return Err(GanError::InvalidConfig {
                    field: "folder",
                    value: format!("{} ({e})", d.display()),
                    allowed: "a readable folder of pictures",
                });
            }
            Err(e) => {
                unreadable.push(GanError::BadImage {
                    name: d.display().to_string(),
                    problem: format!("cannot read the folder: {e}"),
                });
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok((out, unreadable))
}

/// What loading a folder gave: the dataset, and one message per skipped file or duplicate.
#[derive(Debug)]
pub struct Folder {
    /// The usable pictures, preprocessed.
    pub dataset: Dataset,
    /// Files read.
    pub files: usize,
    /// Skipped files, each with its reason.
    pub skipped: Vec<GanError>,
    /// Exact duplicates (after preprocessing) that were dropped.
    pub duplicates: usize,
}

/// Loads every picture under `dir` with `prep`; bad files are skipped and reported. Each picture
/// is preprocessed as soon as it is decoded, so only the small copies are kept.
pub fn folder(dir: &Path, prep: &Preprocess) -> Result<Folder> {
    let (paths, mut skipped) = files(dir)?;
    let mut builder = Builder::new(*prep)?;
    let mut duplicates = 0;
    for path in &paths {
        let name = path.strip_prefix(dir).unwrap_or(path).display().to_string();
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let result = if size > MAX_FILE_BYTES {
            Err(too_large(&name, size)) // refused before reading it into memory
        } else {
            std::fs::read(path)
                .map_err(|e| GanError::BadImage {
                    name: name.clone(),
                    problem: format!("cannot be read: {e}"),
                })
                .and_then(|bytes| decode(&name, &bytes))
        };
        match result.and_then(|d| builder.push(&d.picture())) {
            Ok(None) => {}
            Ok(Some(_)) => duplicates += 1,
            Err(e) => skipped.push(e),
        }
    }
    Ok(Folder {
        dataset: builder.finish(),
        files: paths.len(),
        skipped,
        duplicates,
    })
}
