//! The DCGAN generator and discriminator (Radford et al. 2015, arXiv:1511.06434), built from a
//! validated `ModelConfig`; with the defaults this is exactly the reference DCGAN of
//! `shared/bench-tfjs/page/dcgan.js`.

use burn::module::{Module, ModuleMapper, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::{leaky_relu, relu, tanh};
use burn::tensor::{Device, Tensor, TensorData};

use crate::config::ModelConfig;
use crate::error::Result;
use crate::rng::Rng;

/// LeakyReLU slope in D, from the DCGAN paper §3.
const LEAKY_SLOPE: f64 = 0.2;
/// Std of the N(0, std) weight init, from the DCGAN paper §4.
const INIT_STD: f32 = 0.02;

/// Transposed conv (no bias: BatchNorm's mean subtraction cancels it) + BatchNorm + ReLU.
#[derive(Module, Debug)]
pub struct UpBlock {
    conv: ConvTranspose2d,
    norm: BatchNorm,
}

impl UpBlock {
    fn new(cin: usize, cout: usize, stride: usize, padding: usize, device: &Device) -> Self {
        let conv = ConvTranspose2dConfig::new([cin, cout], [4, 4])
            .with_stride([stride, stride])
            .with_padding([padding, padding])
            .with_bias(false)
            .init(device);
        Self {
            conv,
            norm: BatchNormConfig::new(cout).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.norm.forward(self.conv.forward(x))) // [B, cout, 2H or 4, 2W or 4]
    }

    /// Like `forward`, but BatchNorm normalises every row with the mean and (biased) variance
    /// of the first `reference` rows, which it also returns as `[cout]` each.
    fn forward_standing(
        &self,
        x: Tensor<4>,
        reference: usize,
    ) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
        let y = self.conv.forward(x); // [B, C, H, W]
        let [_, c, _, _] = y.dims();
        let r = y.clone().narrow(0, 0, reference); // [R, C, H, W]
        let mean = r.clone().mean_dims(&[0, 2, 3]); // [1, C, 1, 1]
        let var = (r - mean.clone()).powi_scalar(2).mean_dims(&[0, 2, 3]); // [1, C, 1, 1]
        let n = &self.norm;
        let x = (y - mean.clone()) / (var.clone() + n.epsilon).sqrt()
            * n.gamma.val().reshape([1, c, 1, 1])
            + n.beta.val().reshape([1, c, 1, 1]); // [B, C, H, W]
        (relu(x), mean.reshape([c]), var.reshape([c]))
    }
}

/// Strided conv (no bias) + BatchNorm + LeakyReLU.
#[derive(Module, Debug)]
pub struct DownBlock {
    conv: Conv2d,
    norm: BatchNorm,
}

impl DownBlock {
    fn new(cin: usize, cout: usize, device: &Device) -> Self {
        Self {
            conv: down_conv(cin, cout, false, device),
            norm: BatchNormConfig::new(cout).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        leaky_relu(self.norm.forward(self.conv.forward(x)), LEAKY_SLOPE) // [B, cout, H/2, W/2]
    }
}

/// 4x4 stride-2 conv with 1 pixel of padding: TF's 'same' for even sizes, halves H and W.
fn down_conv(cin: usize, cout: usize, bias: bool, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [4, 4])
        .with_stride([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(bias)
        .init(device)
}

/// z -> image in [-1, 1].
#[derive(Module, Debug)]
pub struct Generator {
    blocks: Vec<UpBlock>,
    out: ConvTranspose2d,
}

impl Generator {
    /// `z`: [B, latent] -> images [B, channels, size, size].
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let [batch, latent] = z.dims();
        let mut x = z.reshape([batch, latent, 1, 1]); // [B, latent, 1, 1]
        for block in &self.blocks {
            x = block.forward(x); // [B, top, 4, 4] -> [B, top/2, 8, 8] -> ... -> [B, w, S/2, S/2]
        }
        tanh(self.out.forward(x)) // [B, C, S, S]
    }

    /// The forward used for every sample shown or saved: BatchNorm uses "standing statistics"
    /// (Brock et al. 2018, BigGAN, §3.1 and App. C), the batch statistics of the first
    /// `reference` rows of `z` (a fixed reference batch), so each image depends on its own z only,
    /// and early in training, when running averages still lag far behind the weights, samples
    /// look as they do to D. Returns the images and each BatchNorm's (mean, variance) `[C]`.
    pub fn forward_standing(
        &self,
        z: Tensor<2>,
        reference: usize,
    ) -> (Tensor<4>, Vec<(Tensor<1>, Tensor<1>)>) {
        let [batch, latent] = z.dims();
        let mut x = z.reshape([batch, latent, 1, 1]); // [B, latent, 1, 1]
        let mut stats = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let (y, mean, var) = block.forward_standing(x, reference); // [B, c, 2H, 2W]
            stats.push((mean, var));
            x = y;
        }
        (tanh(self.out.forward(x)), stats) // [B, C, S, S]
    }
}

/// image -> one logit per image.
#[derive(Module, Debug)]
pub struct Discriminator {
    input: Conv2d,
    blocks: Vec<DownBlock>,
    out: Conv2d,
}

impl Discriminator {
    /// `images`: [B, channels, size, size] in [-1, 1] -> logits [B].
    pub fn forward(&self, images: Tensor<4>) -> Tensor<1> {
        let mut x = leaky_relu(self.input.forward(images), LEAKY_SLOPE); // [B, w, S/2, S/2]
        for block in &self.blocks {
            x = block.forward(x); // [B, 2w, S/4, S/4] -> ... -> [B, top, 4, 4]
        }
        let logits = self.out.forward(x); // [B, 1, 1, 1]
        let [batch, ..] = logits.dims();
        logits.reshape([batch]) // [B]
    }
}

impl ModelConfig {
    /// Builds G and D on `device` with DCGAN init drawn from `rng` (backend-independent).
    pub fn init(&self, rng: &mut Rng, device: &Device) -> Result<(Generator, Discriminator)> {
        self.validate()?;
        let n = self.num_upsamples();
        let top = self.width << (n - 1); // widest layer, next to the 4x4 map

        let mut blocks = vec![UpBlock::new(self.latent, top, 1, 0, device)];
        let mut c = top;
        for _ in 1..n {
            blocks.push(UpBlock::new(c, c / 2, 2, 1, device));
            c /= 2;
        }
        let out = ConvTranspose2dConfig::new([c, self.channels], [4, 4])
            .with_stride([2, 2])
            .with_padding([1, 1])
            .init(device);
        let generator = Generator { blocks, out }.map(&mut dcgan_init(rng));

        let input = down_conv(self.channels, self.width, true, device);
        let mut blocks = Vec::new();
        let mut c = self.width;
        for _ in 1..n {
            blocks.push(DownBlock::new(c, c * 2, device));
            c *= 2;
        }
        let out = Conv2dConfig::new([c, 1], [4, 4]).init(device);
        let discriminator = Discriminator { input, blocks, out }.map(&mut dcgan_init(rng));
        Ok((generator, discriminator))
    }
}

impl Generator {
    /// The exponential moving average step `ema * decay + current * (1 - decay)` for every
    /// tensor (weights and BatchNorm statistics alike), on `ema`'s device without autodiff.
    /// An EMA of G's weights gives steadier, better samples than G itself (Karras et al. 2018,
    /// ProGAN §A.1; Yazıcı et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training").
    pub fn blend(self, current: &Generator, decay: f32) -> Generator {
        let mut now: std::collections::HashMap<String, Tensor<1>> =
            crate::modelfile::collect(current, "g")
                .into_iter()
                .map(|(name, _, t)| (name, t))
                .collect();
        self.map(&mut RewriteParams::new(
            move |path: &[String], ema: Tensor<1>| {
                let now = now.remove(&format!("g.{}", path.join(".")))?;
                let now = now.to_device(&ema.device());
                Some(ema * decay + now * (1.0 - decay))
            },
        ))
    }
}

/// A flat tensor holding `values`, on the device of `like`.
pub(crate) fn from_values(values: Vec<f32>, like: &Tensor<1>) -> Tensor<1> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), &like.device())
}

/// Re-draws every parameter from our seeded RNG: conv weights N(0, 0.02), BatchNorm gamma
/// N(1, 0.02), biases and beta 0 (DCGAN paper §4; PyTorch examples/dcgan `weights_init`).
/// Anything else (BatchNorm running statistics) keeps burn's init (mean 0, var 1).
fn dcgan_init(
    rng: &mut Rng,
) -> RewriteParams<impl FnMut(&[String], Tensor<1>) -> Option<Tensor<1>> + '_> {
    RewriteParams::new(move |path: &[String], t: Tensor<1>| {
        let count = t.dims()[0];
        let values = match path.last().map(String::as_str) {
            Some("weight") => rng.normals(count, 0.0, INIT_STD),
            Some("gamma") => rng.normals(count, 1.0, INIT_STD),
            Some("bias" | "beta") => vec![0.0; count],
            _ => return None,
        };
        Some(from_values(values, &t))
    })
}

/// Replaces float tensors by module path: `f(path, current)` gets the tensor at `path` (e.g.
/// `["blocks", "0", "conv", "weight"]`) flattened, and gives its new flat value, or `None` to
/// keep it. Serves weight init, model-file loading and the generator average alike.
pub(crate) struct RewriteParams<F> {
    path: Vec<String>,
    f: F,
}

impl<F: FnMut(&[String], Tensor<1>) -> Option<Tensor<1>>> RewriteParams<F> {
    pub(crate) fn new(f: F) -> Self {
        Self {
            path: Vec::new(),
            f,
        }
    }
}

impl<F: FnMut(&[String], Tensor<1>) -> Option<Tensor<1>>> ModuleMapper for RewriteParams<F> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let shape = tensor.shape();
        let grad = tensor.is_require_grad();
        let flat = tensor.clone().reshape([shape.num_elements()]);
        let Some(fresh) = (self.f)(&self.path, flat) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let mut fresh: Tensor<D> = fresh.reshape(shape);
        if grad {
            fresh = fresh.require_grad();
        }
        Param::from_mapped_value(id, fresh, mapper)
    }
}
