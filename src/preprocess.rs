//! Turning decoded pictures of any size into training images: alpha over a background colour,
//! center-crop / fit-with-padding / stretch to a square, antialiased resize, RGB or grayscale.
//! Pure Rust on RGBA8 input, so the page (after the browser decodes) and the CLI (after the
//! `image` crate decodes) prepare pictures identically.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::error::{GanError, Result};

/// How a non-square picture becomes square.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Keep the central square (loses the edges of the long side).
    #[default]
    Crop,
    /// Fit the whole picture, filling the rest with the background colour.
    Pad,
    /// Squash or stretch to the square (distorts the aspect ratio).
    Stretch,
}

/// The preprocessing a dataset was made with; travels in model files as metadata.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Preprocess {
    /// Side of the square training images, in pixels.
    pub size: usize,
    /// 3 (RGB) or 1 (grayscale).
    pub channels: usize,
    /// Crop, pad or stretch.
    pub fit: Fit,
    /// RGB shown through transparent pixels and used for padding.
    pub background: [u8; 3],
}

/// Largest picture file accepted: 20 MB holds any photo a phone takes.
pub const MAX_FILE_BYTES: u64 = 20 << 20;
/// Largest picture accepted, in pixels (about 8000x6000, 48 MP): the decoded RGBA is 192 MB.
pub const MAX_PIXELS: u64 = 48_000_000;
/// Bytes of a file's start that [`check_header`] needs to find the size of every format.
pub const HEADER_BYTES: usize = 64 << 10;

/// The error for a file over [`MAX_FILE_BYTES`], if it is (checked before reading it).
pub fn too_large(name: &str, file_len: u64) -> Option<GanError> {
    (file_len > MAX_FILE_BYTES).then(|| GanError::BadImage {
        name: name.to_string(),
        problem: format!(
            "the file is {} MB; pictures up to {} MB are accepted",
            file_len >> 20,
            MAX_FILE_BYTES >> 20
        ),
    })
}

/// Checks a picture file before it is decoded, from its length and its first bytes (up to
/// [`HEADER_BYTES`]): not empty, at most 20 MB, a known format, at most 48 megapixels.
/// Returns the declared width and height.
pub fn check_header(name: &str, file_len: u64, head: &[u8]) -> Result<(usize, usize)> {
    let bad = |problem: String| GanError::BadImage {
        name: name.to_string(),
        problem,
    };
    if file_len == 0 {
        return Err(bad("the file is empty".into()));
    }
    if let Some(e) = too_large(name, file_len) {
        return Err(e);
    }
    let known = matches!(
        imagesize::image_type(head),
        Ok(imagesize::ImageType::Png
            | imagesize::ImageType::Jpeg
            | imagesize::ImageType::Gif
            | imagesize::ImageType::Bmp
            | imagesize::ImageType::Webp)
    );
    if !known {
        return Err(bad(
            "not a picture (PNG, JPEG, WebP, GIF and BMP are supported)".into(),
        ));
    }
    let size = imagesize::blob_size(head)
        .map_err(|e| bad(format!("damaged picture: its header cannot be read ({e})")))?;
    let (w, h) = (size.width, size.height);
    if w == 0 || h == 0 {
        return Err(bad(format!("the header declares {w}x{h} pixels")));
    }
    if w as u64 * h as u64 > MAX_PIXELS {
        return Err(bad(format!(
            "{w}x{h} pixels is too large; pictures up to {} megapixels are accepted",
            MAX_PIXELS / 1_000_000
        )));
    }
    Ok((w, h))
}

/// A decoded picture: `width * height * 4` RGBA bytes, straight (not premultiplied) alpha.
pub struct Picture<'a> {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major RGBA bytes.
    pub rgba: &'a [u8],
}

impl Preprocess {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if !(8..=128).contains(&self.size) {
            return Err(GanError::InvalidConfig {
                field: "size",
                value: self.size.to_string(),
                allowed: "8 to 128 pixels",
            });
        }
        if ![1, 3].contains(&self.channels) {
            return Err(GanError::InvalidConfig {
                field: "channels",
                value: self.channels.to_string(),
                allowed: "1 (grayscale) or 3 (RGB)",
            });
        }
        Ok(())
    }

    /// One picture as `size * size * channels` bytes, interleaved.
    pub fn apply(&self, p: &Picture) -> Result<Vec<u8>> {
        if p.width == 0 || p.height == 0 || p.rgba.len() != p.width * p.height * 4 {
            return Err(GanError::InvalidConfig {
                field: "picture",
                value: format!("{}x{} with {} bytes", p.width, p.height, p.rgba.len()),
                allowed: "a non-empty RGBA picture",
            });
        }
        // Composite over the background first, so resizing never mixes in hidden colours.
        let bg = self.background.map(|v| v as f32);
        let rgb: Vec<f32> = p
            .rgba
            .chunks_exact(4)
            .flat_map(|px| {
                let a = px[3] as f32 / 255.0;
                [0, 1, 2].map(|c| px[c] as f32 * a + bg[c] * (1.0 - a))
            })
            .collect();
        let (w, h, s) = (p.width, p.height, self.size);
        let square = match self.fit {
            Fit::Stretch => resize(&rgb, w, h, s, s),
            Fit::Crop => {
                let side = w.min(h);
                let (x0, y0) = ((w - side) / 2, (h - side) / 2);
                let mut crop = Vec::with_capacity(side * side * 3);
                for y in y0..y0 + side {
                    crop.extend_from_slice(&rgb[(y * w + x0) * 3..(y * w + x0 + side) * 3]);
                }
                resize(&crop, side, side, s, s)
            }
            Fit::Pad => {
                // The long side becomes `s`; the short one keeps the aspect ratio, centred.
                let (fw, fh) = if w >= h {
                    (s, ((h * s) as f64 / w as f64).round().max(1.0) as usize)
                } else {
                    (((w * s) as f64 / h as f64).round().max(1.0) as usize, s)
                };
                let fitted = resize(&rgb, w, h, fw, fh);
                let mut out = bg.repeat(s * s);
                let (x0, y0) = ((s - fw) / 2, (s - fh) / 2);
                for y in 0..fh {
                    let row = &fitted[y * fw * 3..(y + 1) * fw * 3];
                    out[((y0 + y) * s + x0) * 3..((y0 + y) * s + x0 + fw) * 3].copy_from_slice(row);
                }
                out
            }
        };
        let byte = |v: f32| v.round().clamp(0.0, 255.0) as u8;
        Ok(if self.channels == 3 {
            square.into_iter().map(byte).collect()
        } else {
            // Luma with ITU-R BT.601 weights (what most image tools use for "grayscale").
            square
                .chunks_exact(3)
                .map(|c| byte(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]))
                .collect()
        })
    }

    /// Preprocesses every picture into one dataset, dropping exact duplicates (after
    /// preprocessing). Returns the dataset and, per input, `None` or the index it duplicated.
    pub fn dataset<'a>(
        &self,
        pictures: impl IntoIterator<Item = Picture<'a>>,
    ) -> Result<(Dataset, Vec<Option<usize>>)> {
        let mut builder = Builder::new(*self)?;
        let duplicates = pictures
            .into_iter()
            .map(|p| builder.push(&p))
            .collect::<Result<_>>()?;
        Ok((builder.finish(), duplicates))
    }
}

/// Builds a dataset one picture at a time, so only the small preprocessed copies are kept.
pub struct Builder {
    prep: Preprocess,
    pixels: Vec<u8>,
    seen: HashMap<Vec<u8>, usize>,
    pushed: usize,
}

impl Builder {
    /// An empty dataset with these settings.
    pub fn new(prep: Preprocess) -> Result<Self> {
        prep.validate()?;
        Ok(Builder {
            prep,
            pixels: Vec::new(),
            seen: HashMap::new(),
            pushed: 0,
        })
    }

    /// A builder holding the pictures of `dataset` (restored from an autosave), which must have
    /// `prep`'s size and channels.
    pub fn from_dataset(prep: Preprocess, dataset: Dataset) -> Result<Self> {
        let mut builder = Builder::new(prep)?;
        if (dataset.size, dataset.channels) != (prep.size, prep.channels) {
            return Err(GanError::InvalidConfig {
                field: "preprocessing",
                value: format!(
                    "{} px x {} for pictures of {} px x {}",
                    prep.size, prep.channels, dataset.size, dataset.channels
                ),
                allowed: "the pictures' own size and channels",
            });
        }
        for (i, image) in dataset
            .pixels
            .chunks_exact(builder.image_bytes())
            .enumerate()
        {
            builder.seen.entry(image.to_vec()).or_insert(i);
        }
        builder.pushed = dataset.len();
        builder.pixels = dataset.pixels;
        Ok(builder)
    }

    /// Adds one picture; `Some(i)` when it duplicates the `i`-th pushed one (then it is dropped).
    pub fn push(&mut self, picture: &Picture) -> Result<Option<usize>> {
        let image = self.prep.apply(picture)?;
        let index = self.pushed;
        self.pushed += 1;
        if let Some(&first) = self.seen.get(&image) {
            return Ok(Some(first));
        }
        self.pixels.extend_from_slice(&image);
        self.seen.insert(image, index);
        Ok(None)
    }

    /// Pictures kept so far.
    pub fn len(&self) -> usize {
        self.pixels.len() / self.image_bytes()
    }

    /// Whether no picture was kept.
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    fn image_bytes(&self) -> usize {
        self.prep.size * self.prep.size * self.prep.channels
    }

    /// The settings pictures are prepared with.
    pub fn preprocess(&self) -> Preprocess {
        self.prep
    }

    /// Removes the `index`-th kept picture (a copy of it may then be added again).
    pub fn remove(&mut self, index: usize) -> Result<()> {
        let n = self.image_bytes();
        if index >= self.len() {
            return Err(GanError::InvalidConfig {
                field: "picture",
                value: index.to_string(),
                allowed: "the index of a loaded picture",
            });
        }
        let image: Vec<u8> = self.pixels.drain(index * n..(index + 1) * n).collect();
        self.seen.remove(&image);
        Ok(())
    }

    /// The kept pictures' bytes, `[N, S, S, C]`.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The kept pictures so far, as a dataset (a copy; the builder goes on).
    pub fn snapshot(&self) -> Dataset {
        Dataset {
            size: self.prep.size,
            channels: self.prep.channels,
            pixels: self.pixels.clone(),
        }
    }

    /// The dataset of every distinct picture pushed.
    pub fn finish(self) -> Dataset {
        Dataset {
            size: self.prep.size,
            channels: self.prep.channels,
            pixels: self.pixels,
        }
    }
}

/// Separable resize of interleaved RGB floats with a triangle (tent) filter whose support grows
/// with the downscale factor, so shrinking averages every source pixel instead of aliasing
/// (the antialiased bilinear of Pillow's `Image.resize`).
fn resize(src: &[f32], w: usize, h: usize, nw: usize, nh: usize) -> Vec<f32> {
    let rows = resample_axis(src, w, h, nw, true); // [h, nw]
    resample_axis(&rows, nw, h, nh, false) // [nh, nw]
}

/// Resamples along x (`horizontal`) or y; `n` is the new length of that axis.
fn resample_axis(src: &[f32], w: usize, h: usize, n: usize, horizontal: bool) -> Vec<f32> {
    let len = if horizontal { w } else { h };
    let scale = len as f64 / n as f64;
    let support = scale.max(1.0); // tent half-width in source pixels
    let (ow, oh) = if horizontal { (n, h) } else { (w, n) };
    let mut out = vec![0.0; ow * oh * 3];
    for i in 0..n {
        let centre = (i as f64 + 0.5) * scale;
        let lo = (centre - support).floor().max(0.0) as usize;
        let hi = ((centre + support).ceil() as usize).min(len);
        let weights: Vec<(usize, f32)> = (lo..hi)
            .map(|j| {
                let d = ((j as f64 + 0.5 - centre) / support).abs();
                (j, (1.0 - d).max(0.0) as f32)
            })
            .filter(|&(_, wt)| wt > 0.0)
            .collect();
        let total: f32 = weights.iter().map(|(_, wt)| wt).sum();
        for other in 0..(if horizontal { h } else { w }) {
            let (x, y) = if horizontal { (i, other) } else { (other, i) };
            for c in 0..3 {
                let mut acc = 0.0;
                for &(j, wt) in &weights {
                    let (sx, sy) = if horizontal { (j, other) } else { (other, j) };
                    acc += wt * src[(sy * w + sx) * 3 + c];
                }
                out[(y * ow + x) * 3 + c] = acc / total;
            }
        }
    }
    out
}
