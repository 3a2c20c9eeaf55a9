//! Quality scores computed on the CPU from images already read back: the sliced Wasserstein
//! distance between Laplacian-pyramid patches of two image sets (Karras et al. 2018, ProGAN,
//! §5 and App. D; their `metrics/sliced_wasserstein.py`), and a memorisation check that counts
//! samples closer to a training image than any two training images are to each other.

use crate::data::Dataset;
use crate::error::{GanError, Result};
use crate::render::to_byte;
use crate::rng::Rng;

/// Side of the square patches compared (ProGAN: 7x7 neighbourhoods).
const PATCH: usize = 7;
/// Patches taken per image and pyramid level (ProGAN takes 128 from each of 16,384 images; ours
/// are small sets, compared often, so fewer).
const PATCHES_PER_IMAGE: usize = 32;
/// Random directions per repeat, and repeats (ProGAN: 128 and 4). Averaging over 512 directions
/// keeps the run-to-run spread of the score small next to the differences we look for.
const DIRECTIONS: usize = 128;
const REPEATS: usize = 4;
/// Smallest pyramid level, in pixels (ProGAN stops at 16).
const MIN_LEVEL: usize = 16;

/// An image as planar floats `[C][S][S]` in the 0–255 range.
type Planes = Vec<f32>;

fn planes(set: &Dataset, n: usize) -> Planes {
    let (s, c) = (set.size, set.channels);
    let image = &set.pixels[n * s * s * c..(n + 1) * s * s * c];
    let mut out = vec![0.0; s * s * c];
    for (p, px) in image.chunks_exact(c).enumerate() {
        for (ch, &v) in px.iter().enumerate() {
            out[ch * s * s + p] = v as f32;
        }
    }
    out
}

/// Binomial 5-tap blur [1 4 6 4 1]/16 with edge clamping, then every other pixel (Burt & Adelson
/// 1983, the Laplacian pyramid ProGAN uses).
fn down(img: &[f32], s: usize, c: usize) -> Planes {
    const K: [f32; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];
    let h = s / 2;
    let at = |i: isize| i.clamp(0, s as isize - 1) as usize;
    let mut out = vec![0.0; h * h * c];
    for ch in 0..c {
        let p = &img[ch * s * s..(ch + 1) * s * s];
        for y in 0..h {
            for x in 0..h {
                let mut acc = 0.0;
                for (dy, ky) in K.iter().enumerate() {
                    for (dx, kx) in K.iter().enumerate() {
                        let sy = at(2 * y as isize + dy as isize - 2);
                        let sx = at(2 * x as isize + dx as isize - 2);
                        acc += ky * kx * p[sy * s + sx];
                    }
                }
                out[ch * h * h + y * h + x] = acc;
            }
        }
    }
    out
}

/// Nearest-neighbour doubling (enough to form the band-pass residual).
fn up(img: &[f32], h: usize, c: usize) -> Planes {
    let s = 2 * h;
    let mut out = vec![0.0; s * s * c];
    for ch in 0..c {
        for y in 0..s {
            for x in 0..s {
                out[ch * s * s + y * s + x] = img[ch * h * h + (y / 2) * h + x / 2];
            }
        }
    }
    out
}

/// The pyramid levels from the full size down to `MIN_LEVEL` (or the image size if smaller):
/// band-pass residuals, then the coarsest low-pass image.
fn pyramid(img: Planes, s: usize, c: usize) -> Vec<(usize, Planes)> {
    let mut levels = Vec::new();
    let (mut cur, mut size) = (img, s);
    while size > MIN_LEVEL {
        let small = down(&cur, size, c);
        let blurred = up(&small, size / 2, c);
        let band = cur.iter().zip(&blurred).map(|(a, b)| a - b).collect();
        levels.push((size, band));
        cur = small;
        size /= 2;
    }
    levels.push((size, cur));
    levels
}

/// Random 7x7xC patches of every image at every level: `levels[l]` is a flat list of descriptors.
fn descriptors(set: &Dataset, count: usize, seed: u64) -> Vec<Vec<Vec<f32>>> {
    let (s, c) = (set.size, set.channels);
    let mut rng = Rng::new(seed);
    let mut levels: Vec<Vec<Vec<f32>>> = Vec::new();
    for n in 0..count.min(set.len()) {
        for (l, (size, img)) in pyramid(planes(set, n), s, c).into_iter().enumerate() {
            if levels.len() <= l {
                levels.push(Vec::new());
            }
            let span = size.saturating_sub(PATCH) + 1;
            for _ in 0..PATCHES_PER_IMAGE {
                let (y0, x0) = (rng.below(span), rng.below(span));
                let mut d = Vec::with_capacity(PATCH * PATCH * c);
                for ch in 0..c {
                    for y in y0..(y0 + PATCH).min(size) {
                        for x in x0..(x0 + PATCH).min(size) {
                            d.push(img[ch * size * size + y * size + x]);
                        }
                    }
                }
                levels[l].push(d);
            }
        }
    }
    levels
}

/// Normalises every descriptor dimension to zero mean and unit variance over the set (ProGAN
/// normalises per channel; per dimension is the same up to the patch's spatial layout).
fn normalise(desc: &mut [Vec<f32>]) {
    let (n, dims) = (desc.len() as f32, desc.first().map_or(0, Vec::len));
    for d in 0..dims {
        let mean = desc.iter().map(|v| v[d]).sum::<f32>() / n;
        let var = desc.iter().map(|v| (v[d] - mean).powi(2)).sum::<f32>() / n;
        let std = var.sqrt().max(1e-6);
        for v in desc.iter_mut() {
            v[d] = (v[d] - mean) / std;
        }
    }
}

/// Sliced Wasserstein distance between two equal-size sets of descriptors.
fn sliced(a: &[Vec<f32>], b: &[Vec<f32>], rng: &mut Rng) -> f32 {
    let dims = a[0].len();
    let mut total = 0.0;
    for _ in 0..REPEATS * DIRECTIONS {
        let mut dir = rng.normals(dims, 0.0, 1.0);
        let norm = dir.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        dir.iter_mut().for_each(|v| *v /= norm);
        let project = |set: &[Vec<f32>]| {
            let mut p: Vec<f32> = set
                .iter()
                .map(|v| v.iter().zip(&dir).map(|(x, d)| x * d).sum())
                .collect();
            p.sort_by(f32::total_cmp);
            p
        };
        let (pa, pb) = (project(a), project(b));
        total += pa.iter().zip(&pb).map(|(x, y)| (x - y).abs()).sum::<f32>() / pa.len() as f32;
    }
    total / (REPEATS * DIRECTIONS) as f32
}

/// SWD between `a` and `b` (the first `count` images of each), one value per pyramid level from
/// fine to coarse, x1000 as ProGAN reports it. Lower is closer; a set against another draw of
/// itself gives a small value, not zero. Both sets must have the same size and channels.
pub fn swd(a: &Dataset, b: &Dataset, count: usize, seed: u64) -> Result<Vec<f32>> {
    let count = count.min(a.len()).min(b.len());
    if (a.size, a.channels) != (b.size, b.channels) || count < 2 {
        return Err(GanError::InvalidConfig {
            field: "swd",
            value: format!(
                "{} images of {}x{}x{} against {} of {}x{}x{}",
                a.len(),
                a.size,
                a.size,
                a.channels,
                b.len(),
                b.size,
                b.size,
                b.channels
            ),
            allowed: "two sets of at least 2 images of one size and channel count",
        });
    }
    let mut da = descriptors(a, count, seed);
    let mut db = descriptors(b, count, seed ^ 0xD1FF);
    let mut rng = Rng::new(seed ^ 0x5EED);
    Ok(da
        .iter_mut()
        .zip(db.iter_mut())
        .map(|(la, lb)| {
            // Both sets share one normalisation (from their union), as ProGAN does.
            let mut all: Vec<Vec<f32>> = la.iter().chain(lb.iter()).cloned().collect();
            normalise(&mut all);
            let (na, nb) = all.split_at(la.len());
            sliced(na, nb, &mut rng) * 1000.0
        })
        .collect())
}

/// The mean of [`swd`] over levels: the one number a curve shows.
pub fn swd_mean(a: &Dataset, b: &Dataset, count: usize, seed: u64) -> Result<f32> {
    let levels = swd(a, b, count, seed)?;
    Ok(levels.iter().sum::<f32>() / levels.len() as f32)
}

/// What the memorisation check found.
#[derive(Debug, Clone, PartialEq)]
pub struct Memorisation {
    /// Samples closer to some training image than the closest two training images are.
    pub copies: usize,
    /// The closest distance between two different training images (RMS over pixels, 0–255).
    pub train_gap: f32,
    /// For every sample, most suspicious first: (sample index, nearest training image, distance).
    pub nearest: Vec<(usize, usize, f32)>,
}

/// Training images whose pairwise distances give the gap (see [`memorisation`]).
const GAP_IMAGES: usize = 1000;

/// Root-mean-square pixel distance between image `i` of `a` and image `j` of `b`.
fn distance(a: &Dataset, i: usize, b: &Dataset, j: usize) -> f32 {
    let n = a.size * a.size * a.channels;
    let (x, y) = (&a.pixels[i * n..(i + 1) * n], &b.pixels[j * n..(j + 1) * n]);
    let sum: f32 = x
        .iter()
        .zip(y)
        .map(|(&p, &q)| (p as f32 - q as f32).powi(2))
        .sum();
    (sum / n as f32).sqrt()
}

/// Side of the thumbnails used to prune the exact distance search.
const THUMB: usize = 8;

/// Block means of every image at `THUMB` x `THUMB` (or the image size, if smaller), as floats.
/// The RMS distance between two thumbnails never exceeds the RMS distance between the images
/// (the square of a block's mean difference is at most the mean of its squares, by Jensen's
/// inequality), so it is a lower bound that lets the search skip most exact distances.
fn thumbnails(set: &Dataset) -> Vec<f32> {
    let (s, c) = (set.size, set.channels);
    let t = s.min(THUMB);
    let k = s / t; // block side
    let n = s * s * c;
    let mut out = vec![0.0; set.len() * t * t * c];
    for (i, image) in set.pixels.chunks_exact(n).enumerate() {
        let thumb = &mut out[i * t * t * c..(i + 1) * t * t * c];
        for y in 0..s {
            for x in 0..s {
                for ch in 0..c {
                    thumb[((y / k) * t + x / k) * c + ch] += f32::from(image[(y * s + x) * c + ch]);
                }
            }
        }
        let area = (k * k) as f32;
        thumb.iter_mut().for_each(|v| *v /= area);
    }
    out
}

/// RMS distance between thumbnail `i` of `a` and `j` of `b` (each `len` floats).
fn thumb_distance(a: &[f32], i: usize, b: &[f32], j: usize, len: usize) -> f32 {
    let (x, y) = (&a[i * len..(i + 1) * len], &b[j * len..(j + 1) * len]);
    let sum: f32 = x.iter().zip(y).map(|(p, q)| (p - q).powi(2)).sum();
    (sum / len as f32).sqrt()
}

/// The smallest exact distance among `candidates` (lower bound, i, j): exact distances are
/// computed in order of their lower bounds until a bound reaches the best found, so the result
/// is exact. Returns (distance, i, j).
fn closest(
    mut candidates: Vec<(f32, usize, usize)>,
    exact: impl Fn(usize, usize) -> f32,
) -> Option<(f32, usize, usize)> {
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut best: Option<(f32, usize, usize)> = None;
    for (bound, i, j) in candidates {
        // A float margin, since the bound and the distance are summed in different orders.
        if best.is_some_and(|b| bound > b.0 * (1.0 + 1e-5)) {
            break;
        }
        let d = exact(i, j);
        if best.is_none_or(|b| d < b.0) {
            best = Some((d, i, j));
        }
    }
    best
}

/// Checks whether `samples` copy `train`: a sample is flagged when it is closer to a training
/// image than any two training images are to each other (duplicates were removed on upload).
/// Exact, with thumbnails pruning the search (10,000 pictures at 64 px take well under a
/// second instead of ten).
pub fn memorisation(samples: &Dataset, train: &Dataset) -> Memorisation {
    // All pairs up to 1,000 images; beyond that (the pair count grows as N^2) the pairs among
    // an evenly spread 1,000, which can only overestimate the gap a little.
    let picks: Vec<usize> = if train.len() <= GAP_IMAGES {
        (0..train.len()).collect()
    } else {
        (0..GAP_IMAGES)
            .map(|k| k * train.len() / GAP_IMAGES)
            .collect()
    };
    let (tt, ts) = (thumbnails(train), thumbnails(samples));
    let len = train.size.min(THUMB).pow(2) * train.channels;
    let mut pairs = Vec::with_capacity(picks.len() * picks.len() / 2);
    for (a, &i) in picks.iter().enumerate() {
        for &j in &picks[a + 1..] {
            pairs.push((thumb_distance(&tt, i, &tt, j, len), i, j));
        }
    }
    let train_gap =
        closest(pairs, |i, j| distance(train, i, train, j)).map_or(f32::INFINITY, |b| b.0);
    let mut nearest: Vec<(usize, usize, f32)> = (0..samples.len())
        .map(|i| {
            let candidates = (0..train.len())
                .map(|j| (thumb_distance(&ts, i, &tt, j, len), i, j))
                .collect();
            closest(candidates, |i, j| distance(samples, i, train, j))
                .map_or((i, 0, f32::INFINITY), |(d, i, j)| (i, j, d))
        })
        .collect();
    nearest.sort_by(|a, b| a.2.total_cmp(&b.2));
    let copies = nearest.iter().filter(|n| n.2 < train_gap).count();
    Memorisation {
        copies,
        train_gap,
        nearest,
    }
}

/// The `k` most suspicious pairs side by side, for people to judge: image `2i` is pair `i`'s
/// sample and image `2i + 1` its nearest training image (fewer when there are fewer samples).
pub fn nearest_pairs(samples: &Dataset, train: &Dataset, m: &Memorisation, k: usize) -> Dataset {
    let n = train.size * train.size * train.channels;
    let mut pixels = Vec::with_capacity(2 * k * n);
    for &(i, j, _) in m.nearest.iter().take(k) {
        pixels.extend_from_slice(&samples.pixels[i * n..(i + 1) * n]);
        pixels.extend_from_slice(&train.pixels[j * n..(j + 1) * n]);
    }
    Dataset {
        size: train.size,
        channels: train.channels,
        pixels,
    }
}

impl Dataset {
    /// Generator output `[N, C, S, S]` in [-1, 1] as stored images (for the metrics).
    pub fn from_nchw(values: &[f32], size: usize, channels: usize) -> Dataset {
        let count = values.len() / (size * size * channels);
        let mut pixels = vec![0; values.len()];
        for n in 0..count {
            for ch in 0..channels {
                for p in 0..size * size {
                    let v = values[(n * channels + ch) * size * size + p];
                    pixels[(n * size * size + p) * channels + ch] = to_byte(v);
                }
            }
        }
        Dataset {
            size,
            channels,
            pixels,
        }
    }
}
