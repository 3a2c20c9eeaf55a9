//! Training recipes chosen by dataset size (tiny < 100 pictures, small < 1,000, large), and the
//! reference DCGAN: each is a set of settings the page shows in its controls and the CLI uses as
//! defaults, so both train alike and the user can still change any of them.

use serde::Serialize;

use crate::settings::Settings;

/// A named starting point for the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Recipe {
    /// Fewer than 100 pictures.
    Tiny,
    /// 100 to 999 pictures.
    Small,
    /// 1,000 pictures or more.
    Large,
    /// The DCGAN of Radford et al. 2015 as the TF.js benchmark trains it (no small-set aids).
    Reference,
}

/// Below this many pictures a set is "tiny": Zhao et al. 2020 (DiffAugment) and Karras et al.
/// 2020 (ADA) report their 100-shot results in this range.
pub const TINY_BELOW: usize = 100;
/// Below this many pictures a set is "small": both papers find augmentation matters most under
/// a few thousand images; 1,000 is the CLI's long-standing threshold.
pub const SMALL_BELOW: usize = 1_000;

impl Recipe {
    /// The recipe for a set of `count` pictures.
    pub fn for_count(count: usize) -> Recipe {
        match count {
            c if c < TINY_BELOW => Recipe::Tiny,
            c if c < SMALL_BELOW => Recipe::Small,
            _ => Recipe::Large,
        }
    }

    /// Parses a recipe name as the CLI and the page spell it.
    pub fn parse(name: &str) -> Option<Recipe> {
        Some(match name {
            "tiny" => Recipe::Tiny,
            "small" => Recipe::Small,
            "large" => Recipe::Large,
            "reference" => Recipe::Reference,
            _ => return None,
        })
    }

    /// A short description for people.
    pub fn label(self) -> &'static str {
        match self {
            Recipe::Tiny => "Tiny set (under 100 pictures)",
            Recipe::Small => "Small set (100 to 999 pictures)",
            Recipe::Large => "Large set (1,000 pictures or more)",
            Recipe::Reference => "Reference DCGAN (benchmark settings)",
        }
    }

    /// The settings this recipe chooses; the dataset, image size, latent size and seed are left
    /// to the user.
    pub fn settings(self) -> Settings {
        let small_set_aids = self != Recipe::Reference;
        Settings {
            // Smaller batches on smaller sets: a batch of 64 from 50 pictures repeats most of
            // them. 64 is the DCGAN paper's batch (§4).
            batch: Some(match self {
                Recipe::Tiny => 16,
                Recipe::Small => 32,
                Recipe::Large | Recipe::Reference => 64,
            }),
            // 32 channels keeps a step fast on integrated GPUs; the reference uses the paper's 64.
            width: Some(if small_set_aids { 32 } else { 64 }),
            // Hinge loss with spectral normalisation in D: Miyato et al. 2018 (SNGAN) and Zhang
            // et al. 2019 (SAGAN); Adam 2e-4, beta1 0.5 as SNGAN's setting C (Table 1).
            loss: Some(
                if small_set_aids {
                    "hinge"
                } else {
                    "nonsaturating"
                }
                .into(),
            ),
            spectral_norm: Some(small_set_aids),
            lr_g: Some(2e-4),
            lr_d: Some(2e-4),
            // DiffAugment (colour, translation, cutout) at the paper's strength below 1,000
            // pictures (Zhao et al. 2020, Table 2 and Fig. 1).
            augment: Some(match self {
                Recipe::Tiny | Recipe::Small => 1.0,
                Recipe::Large | Recipe::Reference => 0.0,
            }),
            // Mirrored copies double a small set (StyleGAN2-ADA's `--mirror`, Karras et al. 2020);
            // off for large sets and the reference. Turn it off for pictures with text.
            flip: Some(matches!(self, Recipe::Tiny | Recipe::Small)),
            // A moving average of G for samples (ProGAN, BigGAN); the reference shows G itself.
            ema: Some(if small_set_aids { 0.999 } else { 0.0 }),
            ..Settings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes_follow_the_set_size_and_resolve() {
        assert_eq!(Recipe::for_count(1), Recipe::Tiny);
        assert_eq!(Recipe::for_count(99), Recipe::Tiny);
        assert_eq!(Recipe::for_count(100), Recipe::Small);
        assert_eq!(Recipe::for_count(999), Recipe::Small);
        assert_eq!(Recipe::for_count(1000), Recipe::Large);
        for r in [
            Recipe::Tiny,
            Recipe::Small,
            Recipe::Large,
            Recipe::Reference,
        ] {
            let name = serde_json::to_value(r).unwrap();
            assert_eq!(Recipe::parse(name.as_str().unwrap()), Some(r));
            // Every recipe is a valid set of settings.
            let plan = r.settings().resolve().unwrap();
            assert_eq!(plan.model.spectral_norm, r != Recipe::Reference);
        }
        let reference = Recipe::Reference.settings().resolve().unwrap();
        assert_eq!(reference.model.width, 64);
        assert_eq!(reference.train.augment, 0.0);
        assert!(!reference.train.flip);
        assert!(Recipe::Tiny.settings().resolve().unwrap().train.flip);
    }
}
