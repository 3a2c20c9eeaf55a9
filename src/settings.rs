//! The settings a page (or a CLI) sends, as one flat record with optional fields, resolved into a
//! dataset and validated model and training configs. Missing fields take the defaults.

use serde::{Deserialize, Serialize};

use crate::config::{Loss, ModelConfig, TrainConfig};
use crate::data::{self, Dataset};
use crate::error::{GanError, Result};

/// Fixed-noise samples shown by default: a 6x6 grid.
pub const DEFAULT_GRID: usize = 36;

/// Settings as the page sends them; unknown fields are refused so a typo is not silently ignored.
#[derive(Deserialize, Serialize, Default, Debug, Clone, PartialEq)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// A built-in dataset name.
    pub dataset: Option<String>,
    /// 16, 32 or 64.
    pub image_size: Option<usize>,
    /// Latent vector length.
    pub latent: Option<usize>,
    /// Base network width.
    pub width: Option<usize>,
    /// "nonsaturating" or "hinge".
    pub loss: Option<String>,
    /// Spectral normalisation in D.
    pub spectral_norm: Option<bool>,
    /// Images per batch.
    pub batch: Option<usize>,
    /// Generator learning rate.
    pub lr_g: Option<f64>,
    /// Discriminator learning rate.
    pub lr_d: Option<f64>,
    /// Seed for weights, noise and batch order.
    pub seed: Option<u64>,
    /// DiffAugment strength, 0 to 1.
    pub augment: Option<f32>,
    /// Generator EMA decay, 0 (off) to below 1.
    pub ema: Option<f64>,
    /// Mirror real pictures at random.
    pub flip: Option<bool>,
    /// Number of fixed-noise samples shown.
    pub grid: Option<usize>,
}

/// Pictures the user added (instead of a built-in set), already prepared.
#[derive(Debug, Clone, PartialEq)]
pub struct Uploaded {
    /// The prepared pictures.
    pub dataset: Dataset,
    /// Where they came from, for metadata.
    pub source: String,
    /// How they were prepared, as JSON, for metadata.
    pub preprocessing: String,
}

/// The dataset name that selects the user's own pictures.
pub const UPLOAD: &str = "upload";

/// What a session is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The training images.
    pub dataset: Dataset,
    /// The validated model config (channels follow the dataset).
    pub model: ModelConfig,
    /// The validated training config.
    pub train: TrainConfig,
    /// Number of fixed-noise samples shown.
    pub grid: usize,
    /// Where the images come from, for model-file metadata ("built-in set shapes").
    pub source: String,
    /// How they were prepared, as JSON, for model-file metadata.
    pub preprocessing: String,
}

impl Settings {
    /// These settings, with each one not given taken from `fallback`.
    pub fn or(self, fallback: Settings) -> Settings {
        Settings {
            dataset: self.dataset.or(fallback.dataset),
            image_size: self.image_size.or(fallback.image_size),
            latent: self.latent.or(fallback.latent),
            width: self.width.or(fallback.width),
            loss: self.loss.or(fallback.loss),
            spectral_norm: self.spectral_norm.or(fallback.spectral_norm),
            batch: self.batch.or(fallback.batch),
            lr_g: self.lr_g.or(fallback.lr_g),
            lr_d: self.lr_d.or(fallback.lr_d),
            seed: self.seed.or(fallback.seed),
            augment: self.augment.or(fallback.augment),
            ema: self.ema.or(fallback.ema),
            flip: self.flip.or(fallback.flip),
            grid: self.grid.or(fallback.grid),
        }
    }

    /// Validates every field and draws the dataset; nothing is allocated on a device.
    pub fn resolve(self) -> Result<Plan> {
        self.resolve_with(None)
    }

    /// [`resolve`](Self::resolve), where dataset `"upload"` means `uploaded`.
    pub fn resolve_with(self, uploaded: Option<Uploaded>) -> Result<Plan> {
        let loss = match self.loss.as_deref() {
            None | Some("nonsaturating") => Loss::NonSaturating,
            Some("hinge") => Loss::Hinge,
            Some(other) => {
                return Err(GanError::InvalidConfig {
                    field: "loss",
                    value: other.into(),
                    allowed: "nonsaturating or hinge",
                });
            }
        };
        let d = ModelConfig::new();
        let mut model = ModelConfig::new()
            .with_image_size(self.image_size.unwrap_or(d.image_size))
            .with_latent(self.latent.unwrap_or(d.latent))
            .with_width(self.width.unwrap_or(d.width))
            .with_loss(loss)
            .with_spectral_norm(self.spectral_norm.unwrap_or(d.spectral_norm));
        model.validate()?; // before drawing a dataset of an unsupported size
        let name = self.dataset.as_deref().unwrap_or(data::BUILTIN_NAMES[0]);
        let (dataset, source, preprocessing) = if name == UPLOAD {
            let Some(u) = uploaded.filter(|u| !u.dataset.is_empty()) else {
                return Err(GanError::InvalidConfig {
                    field: "dataset",
                    value: "your pictures (none added yet)".into(),
                    allowed: "add pictures first, or choose a built-in set",
                });
            };
            (u.dataset, u.source, u.preprocessing)
        } else {
            let dataset = data::builtin(name, model.image_size, 1)?;
            let preprocessing = serde_json::json!({
                "builtin": name,
                "size": dataset.size,
                "channels": dataset.channels,
            })
            .to_string();
            (dataset, format!("built-in set {name}"), preprocessing)
        };
        model.channels = dataset.channels;
        let t = TrainConfig::new();
        let train = TrainConfig::new()
            .with_batch(self.batch.unwrap_or(t.batch))
            .with_lr_g(self.lr_g.unwrap_or(t.lr_g))
            .with_lr_d(self.lr_d.unwrap_or(t.lr_d))
            .with_seed(self.seed.unwrap_or(t.seed))
            .with_augment(self.augment.unwrap_or(t.augment))
            .with_ema(self.ema.unwrap_or(t.ema))
            .with_flip(self.flip.unwrap_or(t.flip));
        train.validate()?;
        let grid = self.grid.unwrap_or(DEFAULT_GRID);
        if !(1..=256).contains(&grid) {
            return Err(GanError::InvalidConfig {
                field: "grid",
                value: grid.to_string(),
                allowed: "1 to 256 samples",
            });
        }
        Ok(Plan {
            dataset,
            model,
            train,
            grid,
            source,
            preprocessing,
        })
    }
}
