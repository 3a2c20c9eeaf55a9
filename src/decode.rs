//! Reading pictures from files for the native CLI: PNG, JPEG, WebP, GIF (first frame) and BMP via
//! the `image` crate, with the file size and pixel count checked before anything is decoded, and
//! folders walked in a stable order. Every unusable file becomes a `BadImage` naming it and why.
//! (In the browser the page decodes pictures itself; this module is native only.)

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ImageReader, Limits};

use crate::archive::{self, Archive, is_zip};
use crate::data::Dataset;
use crate::error::{GanError, Result};
use crate::preprocess::{Builder, Picture, Preprocess};

use crate::preprocess::{HEADER_BYTES, check_header, too_large};
pub use crate::preprocess::{MAX_FILE_BYTES, MAX_PIXELS};

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

/// Decodes one file's bytes; `name` is only used in the error. The same checks as the page
/// ([`check_header`]) run first, on the header alone, before anything is decoded.
pub fn decode(name: &str, bytes: &[u8]) -> Result<Decoded> {
    let head = &bytes[..bytes.len().min(HEADER_BYTES)];
    let (w, h) = check_header(name, bytes.len() as u64, head)?;
    let bad = |problem: String| GanError::BadImage {
        name: name.to_string(),
        problem,
    };
    let mut limits = Limits::default();
    limits.max_image_width = Some(w as u32);
    limits.max_image_height = Some(h as u32);
    limits.max_alloc = Some(MAX_PIXELS * 4 + (64 << 20));
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(format!("cannot be read: {e}")))?;
    reader.limits(limits);
    let image = reader
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
    /// Files read, counting each picture inside an archive.
    pub files: usize,
    /// Skipped files, each with its reason.
    pub skipped: Vec<GanError>,
    /// Exact duplicates (after preprocessing) that were dropped.
    pub duplicates: usize,
}

/// Loads every picture under `dir` (a folder, or one `.zip` archive) with `prep`, opening the
/// `.zip` archives found on the way; bad files are skipped and reported. Each picture is
/// preprocessed as soon as it is decoded, so only the small copies are kept.
pub fn folder(dir: &Path, prep: &Preprocess) -> Result<Folder> {
    let (paths, mut skipped) = if dir.is_file() && is_zip(&dir.to_string_lossy()) {
        (vec![dir.to_path_buf()], Vec::new())
    } else {
        files(dir)?
    };
    let root = if dir.is_file() {
        dir.parent().unwrap_or(dir)
    } else {
        dir
    };
    let mut builder = Builder::new(*prep)?;
    let (mut duplicates, mut files) = (0, 0);
    let mut take = |result: Result<Decoded>, skipped: &mut Vec<GanError>| match result
        .and_then(|d| builder.push(&d.picture()))
    {
        Ok(None) => {}
        Ok(Some(_)) => duplicates += 1,
        Err(e) => skipped.push(e),
    };
    for path in &paths {
        let name = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let read = || {
            std::fs::read(path).map_err(|e| GanError::BadImage {
                name: name.clone(),
                problem: format!("cannot be read: {e}"),
            })
        };
        if is_zip(&name) {
            let opened = archive::check_size(&name, size)
                .and_then(|()| read())
                .and_then(|bytes| Archive::open(&name, bytes));
            let mut zip = match opened {
                Ok(zip) => zip,
                Err(e) => {
                    files += 1;
                    skipped.push(e);
                    continue;
                }
            };
            for i in 0..zip.len() {
                match zip.entry(i) {
                    Ok(None) => {}
                    Ok(Some(entry)) => {
                        files += 1;
                        take(decode(&entry.name, &entry.bytes), &mut skipped);
                    }
                    Err(e) => {
                        files += 1;
                        skipped.push(e);
                    }
                }
            }
            continue;
        }
        files += 1;
        let result = if let Some(e) = too_large(&name, size) {
            Err(e) // refused before reading it into memory
        } else {
            read().and_then(|bytes| decode(&name, &bytes))
        };
        take(result, &mut skipped);
    }
    Ok(Folder {
        dataset: builder.finish(),
        files,
        skipped,
        duplicates,
    })
}
