//! DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
//! Training", arXiv:2006.10738; mit-han-lab/data-efficient-gans, `DiffAugment_pytorch.py`):
//! colour, translation and cutout applied to every batch D sees, real or fake, in the D and the G
//! step. Every op is differentiable, so G learns through it, and D cannot memorise a small set.
//! Random draws come from our RNG on the CPU, so every backend augments identically.

use burn::tensor::{Tensor, TensorData};

use crate::rng::Rng;

/// Largest shift, as a fraction of the image side (the reference's `ratio=0.125`).
const TRANSLATION: f32 = 0.125;
/// Side of the cut-out square, as a fraction of the image side (the reference's `ratio=0.5`).
const CUTOUT: f32 = 0.5;

/// Augments `x` (`[B, C, S, S]` in [-1, 1]) with colour, translation and cutout. `strength` in
/// [0, 1] scales every op (1 is the paper's setting); 0 returns `x` untouched and draws nothing.
pub fn diff_augment(x: Tensor<4>, strength: f32, rng: &mut Rng) -> Tensor<4> {
    if strength <= 0.0 {
        return x;
    }
    let x = colour(x, strength, rng);
    let x = translate(x, strength, rng);
    cutout(x, strength, rng)
}

/// Mirrors each image left to right with probability 1/2, for real batches only, so a set is
/// seen as twice as large (StyleGAN2-ADA's `--mirror`, Karras et al. 2020, arXiv:2006.06676).
pub fn random_flip(x: Tensor<4>, rng: &mut Rng) -> Tensor<4> {
    let [b, ..] = x.dims();
    let mask: Vec<f32> = (0..b)
        .map(|_| if rng.uniform() < 0.5 { 1.0 } else { 0.0 })
        .collect();
    let mask = per_image(mask, &x); // [B, 1, 1, 1]
    x.clone().flip([3]) * mask.clone() + x * (mask.neg() + 1.0) // [B, C, S, S]
}

/// One value per image, shaped `[B, 1, 1, 1]` to broadcast.
fn per_image(values: Vec<f32>, like: &Tensor<4>) -> Tensor<4> {
    let b = values.len();
    Tensor::from_data(TensorData::new(values, [b, 1, 1, 1]), &like.device())
}

/// Brightness, saturation and contrast, each with one random factor per image (the
/// reference's `rand_brightness`, `rand_saturation`, `rand_contrast`).
fn colour(x: Tensor<4>, s: f32, rng: &mut Rng) -> Tensor<4> {
    let [b, c, _, _] = x.dims();
    let mut draw =
        |f: &dyn Fn(f32) -> f32| -> Vec<f32> { (0..b).map(|_| f(rng.uniform() as f32)).collect() };
    let brightness = draw(&|u| (u - 0.5) * s); // reference: + (rand - 0.5)
    let saturation = draw(&|u| 1.0 + (2.0 * u - 1.0) * s); // reference: * (rand * 2)
    let contrast = draw(&|u| 1.0 + (u - 0.5) * s); // reference: * (rand + 0.5)
    let x = x.clone() + per_image(brightness, &x); // [B, C, S, S]
    let x = if c > 1 {
        let mean = x.clone().mean_dim(1); // [B, 1, S, S]
        (x - mean.clone()) * per_image(saturation, &mean) + mean
    } else {
        x
    };
    let mean = x.clone().mean_dims(&[1, 2, 3]); // [B, 1, 1, 1]
    (x - mean.clone()) * per_image(contrast, &mean) + mean
}

/// `[B, 1, S, S]` matrices that shift a column vector by `d[i]` places (zeros shifted in):
/// `T[y][x] = 1` where `x = y - d`.
fn shifts(d: &[isize], s: usize, like: &Tensor<4>) -> Tensor<4> {
    let mut m = vec![0.0f32; d.len() * s * s];
    for (i, &di) in d.iter().enumerate() {
        for y in 0..s {
            let x = y as isize - di;
            if (0..s as isize).contains(&x) {
                m[(i * s + y) * s + x as usize] = 1.0;
            }
        }
    }
    Tensor::from_data(TensorData::new(m, [d.len(), 1, s, s]), &like.device())
}

/// Shifts each image by a random whole number of pixels, up to `TRANSLATION * strength` of the
/// side, padding with zeros (the reference's `rand_translation`), as two batched matmuls.
fn translate(x: Tensor<4>, strength: f32, rng: &mut Rng) -> Tensor<4> {
    let [b, c, s, _] = x.dims();
    let max = (s as f32 * TRANSLATION * strength).round() as isize;
    if max == 0 {
        return x;
    }
    let mut draw = || -> Vec<isize> {
        (0..b)
            .map(|_| rng.below(2 * max as usize + 1) as isize - max)
            .collect()
    };
    let (dy, dx) = (draw(), draw());
    let rows = shifts(&dy, s, &x).repeat_dim(1, c); // [B, C, S, S]
    let cols = shifts(&dx, s, &x).repeat_dim(1, c).transpose(); // [B, C, S, S]
    rows.matmul(x).matmul(cols) // [B, C, S, S]
}

/// Zeroes a random square of `CUTOUT * strength` of the side in each image (the reference's
/// `rand_cutout`; its centre may lie anywhere, so the square can be partly outside).
fn cutout(x: Tensor<4>, strength: f32, rng: &mut Rng) -> Tensor<4> {
    let [b, _, s, _] = x.dims();
    let size = (s as f32 * CUTOUT * strength).round() as usize;
    if size == 0 {
        return x;
    }
    let mut mask = vec![1.0f32; b * s * s];
    for i in 0..b {
        let cy = rng.below(s + 1 - size % 2) as isize - (size / 2) as isize;
        let cx = rng.below(s + 1 - size % 2) as isize - (size / 2) as isize;
        for y in cy.max(0)..(cy + size as isize).min(s as isize) {
            for x in cx.max(0)..(cx + size as isize).min(s as isize) {
                mask[(i * s + y as usize) * s + x as usize] = 0.0;
            }
        }
    }
    let mask = Tensor::<4>::from_data(TensorData::new(mask, [b, 1, s, s]), &x.device());
    x * mask // [B, C, S, S]
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn a_shift_matrix_moves_pixels_and_shifts_in_zeros() {
        let device = Device::flex();
        // One 4x4 image with a single 1 at (row 1, column 2).
        let mut img = vec![0.0f32; 16];
        img[4 + 2] = 1.0;
        let x = Tensor::<4>::from_data(TensorData::new(img, [1, 1, 4, 4]), &device);
        let down = shifts(&[1], 4, &x); // rows: +1
        let left = shifts(&[-2], 4, &x).transpose(); // columns: -2
        let moved = values(down.matmul(x).matmul(left));
        let at = moved.iter().position(|&v| v == 1.0);
        assert_eq!(at, Some(2 * 4), "now at (row 2, column 0)");
        assert_eq!(moved.iter().sum::<f32>(), 1.0);
    }

    #[test]
    fn augmenting_keeps_shapes_is_seeded_differentiable_and_off_at_zero() {
        let device = Device::flex().autodiff();
        for c in [1, 3] {
            let data: Vec<f32> = (0..2 * c * 16 * 16)
                .map(|i| ((i % 7) as f32 / 3.5) - 1.0)
                .collect();
            let x = Tensor::<4>::from_data(TensorData::new(data.clone(), [2, c, 16, 16]), &device)
                .require_grad();
            let off = diff_augment(x.clone(), 0.0, &mut Rng::new(1));
            assert_eq!(values(off.inner()), data, "strength 0 is the identity");
            let a = diff_augment(x.clone(), 1.0, &mut Rng::new(1));
            assert_eq!(a.dims(), [2, c, 16, 16]);
            let b = diff_augment(x.clone(), 1.0, &mut Rng::new(1));
            assert_eq!(
                values(a.clone().inner()),
                values(b.inner()),
                "same seed, same augmentation"
            );
            assert_ne!(values(a.clone().inner()), data);
            let grads = a.sum().backward();
            let g = x.grad(&grads).expect("gradient reaches the input");
            let g = g
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap();
            assert!(g.iter().all(|v| v.is_finite()) && g.iter().any(|&v| v != 0.0));
        }
    }
}
