//! Model and training settings: `#[derive(Config)]` structs with defaults, validated before any
//! tensor is allocated, serialisable so they can travel with the weights.

use burn::config::Config;

use crate::error::GanError;

/// The adversarial loss.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Non-saturating BCE on logits (Goodfellow et al. 2014, §3; the DCGAN reference).
    NonSaturating,
    /// Hinge loss (Lim & Ye 2017, "Geometric GAN"; used by SAGAN and BigGAN).
    Hinge,
}

/// Architecture of the DCGAN pair (Radford et al. 2015, arXiv:1511.06434).
#[derive(Config, Debug, PartialEq)]
pub struct ModelConfig {
    /// Side of the square images, in pixels: 16, 32 or 64.
    #[config(default = 32)]
    pub image_size: usize,
    /// 1 (grayscale) or 3 (RGB).
    #[config(default = 3)]
    pub channels: usize,
    /// Length of the latent vector z. 100 is the DCGAN paper's value.
    #[config(default = 100)]
    pub latent: usize,
    /// Channels of the widest-resolution layer; deeper layers double it. 64 is the paper's
    /// `ngf`/`ndf` (also PyTorch examples/dcgan).
    #[config(default = 64)]
    pub width: usize,
    /// The adversarial loss.
    #[config(default = "Loss::NonSaturating")]
    pub loss: Loss,
    /// Spectral normalisation on every D layer, in place of D's BatchNorm (Miyato et al. 2018).
    /// Off in the reference DCGAN; on in the page's and CLI's small-set recipe.
    #[config(default = false)]
    pub spectral_norm: bool,
}

/// Optimiser and schedule settings.
#[derive(Config, Debug, PartialEq)]
pub struct TrainConfig {
    /// Images per batch, for both the real and the fake half.
    #[config(default = 64)]
    pub batch: usize,
    /// Generator learning rate; 2e-4 from the DCGAN paper §4.
    #[config(default = 2e-4)]
    pub lr_g: f64,
    /// Discriminator learning rate; 2e-4 from the DCGAN paper §4.
    #[config(default = 2e-4)]
    pub lr_d: f64,
    /// Adam beta1; 0.5 from the DCGAN paper §4 (0.9 made training oscillate there).
    #[config(default = 0.5)]
    pub beta1: f32,
    /// Adam beta2; 0.999 is Adam's default (Kingma & Ba 2014).
    #[config(default = 0.999)]
    pub beta2: f32,
    /// Adam epsilon; 1e-8 as in PyTorch and TF.js (burn's default is 1e-5).
    #[config(default = 1e-8)]
    pub epsilon: f32,
    /// Seed for weights, noise and batch order.
    #[config(default = 1)]
    pub seed: u64,
    /// DiffAugment strength, 0 (off) to 1 (Zhao et al. 2020's setting). Off by default so the
    /// reference DCGAN stays the TF.js benchmark's; the page and CLI turn it on for small sets.
    #[config(default = 0.0)]
    pub augment: f32,
    /// Decay of the generator's exponential moving average, used for every sample shown and
    /// saved; 0 turns it off (the reference DCGAN). 0.999 is the usual value (ProGAN, SAGAN,
    /// BigGAN: 0.999 to 0.9999), reached after a warm-up (see `Trainer`).
    #[config(default = 0.0)]
    pub ema: f64,
    /// Mirror each real picture left to right with probability 1/2 (off in the reference).
    #[config(default = false)]
    pub flip: bool,
}

/// Largest model accepted: G and D together, counting BatchNorm running statistics. With
/// gradients and Adam's two moments that is ~800 MB of f32, about what a browser tab can hold.
pub const MAX_PARAMS: usize = 50_000_000;

fn invalid(field: &'static str, value: impl ToString, allowed: &'static str) -> GanError {
    GanError::InvalidConfig {
        field,
        value: value.to_string(),
        allowed,
    }
}

impl ModelConfig {
    /// The exact reference DCGAN of `shared/bench-tfjs/page/dcgan.js`: 32x32x3, latent 100,
    /// G 256-128-64 channels, D 64-128-256, non-saturating loss.
    pub fn reference() -> Self {
        ModelConfig::new()
    }

    /// Checks every field against what the model supports; call before allocating anything.
    pub fn validate(&self) -> crate::error::Result<()> {
        if ![16, 32, 64].contains(&self.image_size) {
            return Err(invalid(
                "image_size",
                self.image_size,
                "16, 32 or 64 pixels",
            ));
        }
        if ![1, 3].contains(&self.channels) {
            return Err(invalid(
                "channels",
                self.channels,
                "1 (grayscale) or 3 (RGB)",
            ));
        }
        if !(1..=512).contains(&self.latent) {
            return Err(invalid("latent", self.latent, "1 to 512"));
        }
        if !(4..=256).contains(&self.width) {
            return Err(invalid("width", self.width, "4 to 256 channels"));
        }
        let params = self.param_count();
        if params > MAX_PARAMS {
            return Err(GanError::InvalidConfig {
                field: "width",
                value: format!(
                    "{} ({:.0} million parameters at {} px)",
                    self.width,
                    params as f64 / 1e6,
                    self.image_size
                ),
                allowed: "at most 50 million parameters for G and D together",
            });
        }
        Ok(())
    }

    /// Parameters of G and D (with BatchNorm running statistics, as burn's `num_params` counts
    /// them), computed from the layer list without allocating anything.
    pub fn param_count(&self) -> usize {
        let n = self.num_upsamples();
        let conv = |cin: usize, cout: usize| cin * cout * 16; // 4x4 kernels
        let norm = |c: usize| 4 * c; // gamma, beta, running mean, running variance
        let g = self.generator_params();
        // With spectral normalisation each D conv keeps a `u` of its output channels, and D's
        // blocks have no BatchNorm.
        let sn = |c: usize| if self.spectral_norm { c } else { 0 };
        let d_norm = |c: usize| if self.spectral_norm { c } else { norm(c) };
        let mut d = conv(self.channels, self.width) + self.width + sn(self.width);
        let mut c = self.width;
        for _ in 1..n {
            d += conv(c, 2 * c) + d_norm(2 * c);
            c *= 2;
        }
        g + d + conv(c, 1) + 1 + sn(1)
    }

    /// Parameters of G alone (BatchNorm running statistics included).
    pub fn generator_params(&self) -> usize {
        let n = self.num_upsamples();
        let top = self.width << n.saturating_sub(1);
        let conv = |cin: usize, cout: usize| cin * cout * 16; // 4x4 kernels
        let norm = |c: usize| 4 * c; // gamma, beta, running mean, running variance
        let mut g = conv(self.latent, top) + norm(top);
        let mut c = top;
        for _ in 1..n {
            g += conv(c, c / 2) + norm(c / 2);
            c /= 2;
        }
        g + conv(c, self.channels) + self.channels
    }

    /// Bytes of the largest activation for `images` images: G's last hidden layer and D's first
    /// both hold `width` channels at half the image size.
    pub fn activation_bytes(&self, images: usize) -> usize {
        images * self.width * (self.image_size / 2).pow(2) * 4
    }

    /// Number of stride-2 layers between 4x4 and the image size.
    pub fn num_upsamples(&self) -> usize {
        (self.image_size / 4).trailing_zeros() as usize
    }
}

impl TrainConfig {
    /// Checks every field; call before allocating anything.
    pub fn validate(&self) -> crate::error::Result<()> {
        // Batch statistics of a batch of one are meaningless (BatchNorm divides by zero variance).
        if !(2..=256).contains(&self.batch) {
            return Err(invalid("batch", self.batch, "2 to 256 images"));
        }
        for (field, lr) in [("lr_g", self.lr_g), ("lr_d", self.lr_d)] {
            if !(lr.is_finite() && lr > 0.0 && lr <= 0.1) {
                return Err(invalid(field, lr, "greater than 0 and at most 0.1"));
            }
        }
        for (field, beta) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(beta.is_finite() && (0.0..1.0).contains(&beta)) {
                return Err(invalid(field, beta, "0 to below 1"));
            }
        }
        if !(self.ema.is_finite() && (0.0..1.0).contains(&self.ema)) {
            return Err(invalid("ema", self.ema, "0 (off) to below 1"));
        }
        if !(self.augment.is_finite() && (0.0..=1.0).contains(&self.augment)) {
            return Err(invalid("augment", self.augment, "0 (off) to 1"));
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0 && self.epsilon <= 1e-2) {
            return Err(invalid(
                "epsilon",
                self.epsilon,
                "greater than 0 and at most 0.01",
            ));
        }
        Ok(())
    }
}
