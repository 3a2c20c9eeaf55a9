//! Built-in datasets, drawn procedurally and deterministically from a seed (nothing downloaded):
//! `shapes` (RGB discs, squares and triangles on gradients) and `glyphs` (grayscale
//! seven-segment digits with varied stroke, slant and position).

use crate::error::{GanError, Result};
use crate::rng::Rng;

/// Names of the built-in sets, in the order the page lists them.
pub const BUILTIN_NAMES: [&str; 2] = ["shapes", "glyphs"];

/// Images per built-in set: 8 batches of 64, as in the TF.js reference benchmark.
pub const BUILTIN_COUNT: usize = 512;

/// Square images stored compactly as u8, interleaved `[N, H, W, C]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Side in pixels.
    pub size: usize,
    /// 1 or 3.
    pub channels: usize,
    /// `count * size * size * channels` bytes.
    pub pixels: Vec<u8>,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / (self.size * self.size * self.channels)
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    /// A JSON summary for model-file metadata: where the images came from, how many, their size
    /// (never the images).
    pub fn summary(&self, source: &str) -> String {
        serde_json::json!({
            "source": source,
            "count": self.len(),
            "size": self.size,
            "channels": self.channels,
        })
        .to_string()
    }

    /// Images `indices` (repeats allowed) as `[B, C, H, W]` floats in [-1, 1], the layout the
    /// networks take.
    pub fn batch_nchw(&self, indices: &[usize]) -> Vec<f32> {
        let (s, c) = (self.size, self.channels);
        let n = s * s * c;
        let mut out = vec![0.0; indices.len() * n];
        for (b, &i) in indices.iter().enumerate() {
            let image = &self.pixels[i * n..(i + 1) * n];
            for (p, px) in image.chunks_exact(c).enumerate() {
                for (ch, &v) in px.iter().enumerate() {
                    out[((b * c + ch) * s * s) + p] = v as f32 / 127.5 - 1.0;
                }
            }
        }
        out
    }
}

/// Builds the built-in set `name` at `size` pixels.
pub fn builtin(name: &str, size: usize, seed: u64) -> Result<Dataset> {
    builtin_first(name, size, seed, BUILTIN_COUNT)
}

/// The first `count` images of [`builtin`] (the same images; for previews).
pub fn builtin_first(name: &str, size: usize, seed: u64, count: usize) -> Result<Dataset> {
    let mut rng = Rng::new(seed);
    let draw: fn(&mut Rng, usize) -> Vec<u8> = match name {
        "shapes" => draw_shapes,
        "glyphs" => draw_glyph,
        other => return Err(GanError::UnknownDataset(other.to_string())),
    };
    let channels = if name == "glyphs" { 1 } else { 3 };
    let count = count.min(BUILTIN_COUNT);
    let mut pixels = Vec::with_capacity(count * size * size * channels);
    for _ in 0..count {
        pixels.extend(draw(&mut rng, size));
    }
    Ok(Dataset {
        size,
        channels,
        pixels,
    })
}

/// 4x4 supersampling: enough to anti-alias edges at 16 px.
const SUB: usize = 4;

/// Renders one image by averaging `shade(x, y)` (coordinates in [0, 1]) over sub-pixels.
fn render<const C: usize>(size: usize, shade: impl Fn(f32, f32) -> [f32; C]) -> Vec<u8> {
    let mut out = Vec::with_capacity(size * size * C);
    for py in 0..size {
        for px in 0..size {
            let mut acc = [0.0f32; C];
            for sy in 0..SUB {
                for sx in 0..SUB {
                    let x = (px as f32 + (sx as f32 + 0.5) / SUB as f32) / size as f32;
                    let y = (py as f32 + (sy as f32 + 0.5) / SUB as f32) / size as f32;
                    for (a, v) in acc.iter_mut().zip(shade(x, y)) {
                        *a += v;
                    }
                }
            }
            out.extend(
                acc.map(|a| (a / (SUB * SUB) as f32 * 255.0).round().clamp(0.0, 255.0) as u8),
            );
        }
    }
    out
}

#[derive(Clone, Copy)]
enum Shape {
    Disc,
    Square,
    Triangle,
}

struct Blob {
    shape: Shape,
    cx: f32,
    cy: f32,
    r: f32,
    color: [f32; 3],
}

impl Blob {
    fn covers(&self, x: f32, y: f32) -> bool {
        let (dx, dy) = (x - self.cx, y - self.cy);
        match self.shape {
            Shape::Disc => dx * dx + dy * dy <= self.r * self.r,
            Shape::Square => dx.abs() <= self.r * 0.85 && dy.abs() <= self.r * 0.85,
            // Upward triangle: inside the base line and the two slanted sides.
            Shape::Triangle => dy <= self.r * 0.7 && dy >= -self.r + 2.0 * dx.abs() * 0.9,
        }
    }
}

fn color(rng: &mut Rng) -> [f32; 3] {
    [
        rng.uniform() as f32,
        rng.uniform() as f32,
        rng.uniform() as f32,
    ]
}

/// Vertical two-colour gradient with 1-3 solid shapes (like the TF.js reference data, plus
/// squares and triangles so that shape is learnable too).
fn draw_shapes(rng: &mut Rng, size: usize) -> Vec<u8> {
    let (top, bottom) = (color(rng), color(rng));
    let blobs: Vec<Blob> = (0..1 + rng.below(3))
        .map(|_| Blob {
            shape: [Shape::Disc, Shape::Square, Shape::Triangle][rng.below(3)],
            cx: 0.15 + 0.7 * rng.uniform() as f32,
            cy: 0.15 + 0.7 * rng.uniform() as f32,
            r: 0.12 + 0.15 * rng.uniform() as f32,
            color: color(rng),
        })
        .collect();
    render::<3>(size, |x, y| {
        let mut c = [0.0; 3];
        for ch in 0..3 {
            c[ch] = top[ch] * (1.0 - y) + bottom[ch] * y;
        }
        for blob in &blobs {
            if blob.covers(x, y) {
                c = blob.color;
            }
        }
        c
    })
}

/// Seven-segment endpoints in a 1x2 box (x right, y down): a top, b top-right, c bottom-right,
/// d bottom, e bottom-left, f top-left, g middle.
const SEGMENTS: [[(f32, f32); 2]; 7] = [
    [(0.0, 0.0), (1.0, 0.0)],
    [(1.0, 0.0), (1.0, 1.0)],
    [(1.0, 1.0), (1.0, 2.0)],
    [(0.0, 2.0), (1.0, 2.0)],
    [(0.0, 1.0), (0.0, 2.0)],
    [(0.0, 0.0), (0.0, 1.0)],
    [(0.0, 1.0), (1.0, 1.0)],
];

/// Which segments (bit 0 = a ... bit 6 = g) light each digit 0-9.
const DIGITS: [u8; 10] = [0x3F, 0x06, 0x5B, 0x4F, 0x66, 0x6D, 0x7D, 0x07, 0x7F, 0x6F];

/// Distance from p to the segment a-b.
fn segment_distance(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (abx, aby) = (b.0 - a.0, b.1 - a.1);
    let t = (((p.0 - a.0) * abx + (p.1 - a.1) * aby) / (abx * abx + aby * aby)).clamp(0.0, 1.0);
    let (dx, dy) = (p.0 - a.0 - t * abx, p.1 - a.1 - t * aby);
    (dx * dx + dy * dy).sqrt()
}

/// A white seven-segment digit on black with random size, stroke, slant and offset (MNIST-like).
fn draw_glyph(rng: &mut Rng, size: usize) -> Vec<u8> {
    let lit = DIGITS[rng.below(10)];
    let height = 0.55 + 0.2 * rng.uniform() as f32; // of the image
    let width = height * (0.35 + 0.2 * rng.uniform() as f32);
    let stroke = 0.05 + 0.05 * rng.uniform() as f32; // half-thickness, of the image
    let slant = (rng.uniform() as f32 - 0.5) * 0.5; // x shift per unit of y
    let x0 = 0.5 - width / 2.0 + (rng.uniform() as f32 - 0.5) * 0.15;
    let y0 = 0.5 - height / 2.0 + (rng.uniform() as f32 - 0.5) * 0.1;
    let gray = 0.75 + 0.25 * rng.uniform() as f32;
    let segments: Vec<_> = (0..7)
        .filter(|s| lit >> s & 1 == 1)
        .map(|s| {
            SEGMENTS[s].map(|(sx, sy)| {
                let y = y0 + sy * height / 2.0;
                (x0 + sx * width + slant * (0.5 - sy / 2.0) * height, y)
            })
        })
        .collect();
    render::<1>(size, |x, y| {
        let hit = segments
            .iter()
            .any(|[a, b]| segment_distance((x, y), *a, *b) <= stroke);
        [if hit { gray } else { 0.0 }]
    })
}
