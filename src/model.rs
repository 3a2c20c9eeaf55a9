//! The DCGAN generator and discriminator (Radford et al. 2015, arXiv:1511.06434), built from a
//! validated `ModelConfig`; with the defaults this is exactly the reference DCGAN of
//! `shared/bench-tfjs/page/dcgan.js`.

use burn::module::{Module, ModuleMapper, Param, ParamId};
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

/// Spectral normalisation (Miyato et al. 2018, arXiv:1802.05957): a conv's weight W is divided
/// by an estimate of its largest singular value sigma, so D is 1-Lipschitz per layer and cannot
/// sharpen without bound on a small set. `u` estimates the first left singular vector of W seen
/// as a [cout, cin * kh * kw] matrix; it is not trained, but refined by one power iteration per
/// step (the paper's Algorithm 1, as in PyTorch's `torch.nn.utils.spectral_norm`).
#[derive(Module, Debug)]
pub struct SpectralNorm {
    u: Param<Tensor<1>>,
}

/// Added to norms before dividing; PyTorch's `spectral_norm` uses the same 1e-12.
const SN_EPS: f32 = 1e-12;

/// `x / |x|` for each row of `x`.
fn unit_rows(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt() + SN_EPS; // [R, 1]
    x / norm
}

impl SpectralNorm {
    /// A random unit `u` of length `cout`, drawn from `rng` so every backend starts alike.
    fn new(cout: usize, rng: &mut Rng, device: &Device) -> Self {
        let u = Tensor::<2>::from_data(
            TensorData::new(rng.normals(cout, 0.0, 1.0), [1, cout]),
            device,
        );
        let u = unit_rows(u).reshape([cout]);
        Self {
            // Initialised on a plain device, so it never requires a gradient: Adam skips it.
            u: Param::initialized(ParamId::new(), u),
        }
    }

    /// `weight` [cout, cin, kh, kw] as a [cout, n] matrix, and `u` as a [1, cout] row.
    fn operands(&self, weight: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let [cout, cin, kh, kw] = weight.dims();
        let w = weight.reshape([cout, cin * kh * kw]); // [cout, n]
        (w, self.u.val().detach().reshape([1, cout])) // [1, cout]
    }

    /// `weight / sigma` with sigma = u W v and v = W^T u / |W^T u|; gradients flow through W
    /// only (u and v are held constant, as in the paper).
    fn normalise(&self, weight: Tensor<4>) -> Tensor<4> {
        let (w, u) = self.operands(weight.clone());
        let v = unit_rows(u.clone().matmul(w.clone().detach())); // [1, n]
        let sigma = (u.matmul(w) * v).sum(); // [1]
        weight / sigma.reshape([1, 1, 1, 1]) // [cout, cin, kh, kw]
    }

    /// One power iteration on `weight`: u <- W v / |W v|, v = W^T u / |W^T u|.
    fn iterate(self, weight: Tensor<4>) -> Self {
        let (w, u) = self.operands(weight.detach());
        let v = unit_rows(u.matmul(w.clone())); // [1, n]
        let u = unit_rows(v.matmul(w.transpose())); // [1, cout]
        let [_, cout] = u.dims();
        Self {
            u: self.u.map(|_| u.reshape([cout])),
        }
    }

    /// An estimate of W's largest singular value, for tests.
    pub fn sigma(&self, weight: Tensor<4>) -> Tensor<1> {
        let (w, u) = self.operands(weight);
        let v = unit_rows(u.clone().matmul(w.clone())); // [1, n]
        (u.matmul(w) * v).sum() // [1]
    }
}

/// `conv` applied with its weight spectrally normalised when `sn` is on.
fn conv_forward(conv: &Conv2d, sn: Option<&SpectralNorm>, x: Tensor<4>) -> Tensor<4> {
    match sn {
        None => conv.forward(x),
        Some(sn) => {
            let mut conv = conv.clone();
            conv.weight = conv.weight.map(|w| sn.normalise(w));
            conv.forward(x)
        }
    }
}

/// Strided conv (no bias) + BatchNorm + LeakyReLU, or, with spectral normalisation, a
/// normalised conv + LeakyReLU (SNGAN's D has no BatchNorm: Miyato et al. 2018, Table 3).
#[derive(Module, Debug)]
pub struct DownBlock {
    conv: Conv2d,
    norm: Option<BatchNorm>,
    sn: Option<SpectralNorm>,
}

impl DownBlock {
    fn new(cin: usize, cout: usize, sn: Option<&mut Rng>, device: &Device) -> Self {
        let spectral = sn.map(|rng| SpectralNorm::new(cout, rng, device));
        Self {
            conv: down_conv(cin, cout, false, device),
            norm: spectral
                .is_none()
                .then(|| BatchNormConfig::new(cout).init(device)),
            sn: spectral,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = conv_forward(&self.conv, self.sn.as_ref(), x); // [B, cout, H/2, W/2]
        if let Some(norm) = &self.norm {
            x = norm.forward(x); // [B, cout, H/2, W/2]
        }
        leaky_relu(x, LEAKY_SLOPE) // [B, cout, H/2, W/2]
    }

    fn iterate(self) -> Self {
        let sn = self.sn.map(|sn| sn.iterate(self.conv.weight.val()));
        Self { sn, ..self }
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
    input_sn: Option<SpectralNorm>,
    blocks: Vec<DownBlock>,
    out: Conv2d,
    out_sn: Option<SpectralNorm>,
}

impl Discriminator {
    /// `images`: [B, channels, size, size] in [-1, 1] -> logits [B].
    pub fn forward(&self, images: Tensor<4>) -> Tensor<1> {
        let x = conv_forward(&self.input, self.input_sn.as_ref(), images); // [B, w, S/2, S/2]
        let mut x = leaky_relu(x, LEAKY_SLOPE);
        for block in &self.blocks {
            x = block.forward(x); // [B, 2w, S/4, S/4] -> ... -> [B, top, 4, 4]
        }
        let logits = conv_forward(&self.out, self.out_sn.as_ref(), x); // [B, 1, 1, 1]
        let [batch, ..] = logits.dims();
        logits.reshape([batch]) // [B]
    }

    /// One power iteration for every spectrally normalised layer (none without spectral
    /// normalisation); the trainer calls it once per step, before D's update.
    pub fn power_iterate(self) -> Self {
        let iterate =
            |sn: Option<SpectralNorm>, conv: &Conv2d| sn.map(|sn| sn.iterate(conv.weight.val()));
        Self {
            input_sn: iterate(self.input_sn, &self.input),
            out_sn: iterate(self.out_sn, &self.out),
            blocks: self.blocks.into_iter().map(DownBlock::iterate).collect(),
            ..self
        }
    }

    /// Each spectrally normalised layer's current estimate of its weight's largest singular
    /// value, and the normalised weight's (which should be close to 1), for tests.
    pub fn spectral_norms(&self) -> Vec<(Tensor<1>, Tensor<1>)> {
        let mut layers: Vec<(&Conv2d, &SpectralNorm)> = Vec::new();
        layers.extend(self.input_sn.as_ref().map(|sn| (&self.input, sn)));
        for b in &self.blocks {
            layers.extend(b.sn.as_ref().map(|sn| (&b.conv, sn)));
        }
        layers.extend(self.out_sn.as_ref().map(|sn| (&self.out, sn)));
        layers
            .into_iter()
            .map(|(conv, sn)| {
                let w = conv.weight.val();
                (sn.sigma(w.clone()), sn.sigma(sn.normalise(w)))
            })
            .collect()
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

        let sn = self.spectral_norm;
        let input = down_conv(self.channels, self.width, true, device);
        let input_sn = sn.then(|| SpectralNorm::new(self.width, rng, device));
        let mut blocks = Vec::new();
        let mut c = self.width;
        for _ in 1..n {
            blocks.push(DownBlock::new(c, c * 2, sn.then_some(&mut *rng), device));
            c *= 2;
        }
        let out = Conv2dConfig::new([c, 1], [4, 4]).init(device);
        let out_sn = sn.then(|| SpectralNorm::new(1, rng, device));
        let discriminator = Discriminator {
            input,
            input_sn,
            blocks,
            out,
            out_sn,
        }
        .map(&mut dcgan_init(rng));
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
