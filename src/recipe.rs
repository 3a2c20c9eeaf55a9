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
    /// to the user. Chosen from measurements (README, "Choosing the recipes"): on the 512
    /// built-in shapes at 32 px, a plain DCGAN collapsed by 10,000 steps while DiffAugment with
    /// flips kept it varied and scored best; spectral normalisation and the generator average
    /// both scored worse within 10,000 steps, but on 64 pictures spectral norm with hinge loss
    /// stopped samples copying pictures at no cost in SWD.
    pub fn settings(self) -> Settings {
        let tiny = self == Recipe::Tiny;
        let reference = self == Recipe::Reference;
        Settings {
            // Smaller batches on smaller sets: a batch of 64 from 50 pictures repeats most of
            // them. 64 is the DCGAN paper's batch (§4).
            batch: Some(match self {
                Recipe::Tiny => 16,
                Recipe::Small => 32,
                Recipe::Large | Recipe::Reference => 64,
            }),
            // 32 channels keeps a step fast on integrated GPUs; the reference uses the paper's 64.
            width: Some(if reference { 64 } else { 32 }),
            // Tiny sets: hinge loss with spectral normalisation in D (Miyato et al. 2018, SNGAN;
            // Zhang et al. 2019, SAGAN), which kept D from letting G copy. Otherwise the
            // DCGAN's non-saturating loss with BatchNorm in D, which learned faster.
            loss: Some(if tiny { "hinge" } else { "nonsaturating" }.into()),
            spectral_norm: Some(tiny),
            // Adam 2e-4, beta1 0.5: the DCGAN paper (§4) and SNGAN's setting C (Table 1).
            lr_g: Some(2e-4),
            lr_d: Some(2e-4),
            // DiffAugment (colour, translation, cutout) at the paper's strength below 1,000
            // pictures (Zhao et al. 2020, Table 2 and Fig. 1).
            augment: Some(match self {
                Recipe::Tiny | Recipe::Small => 1.0,
                Recipe::Large | Recipe::Reference => 0.0,
            }),
            // Mirrored copies double the set (StyleGAN2-ADA's `--mirror`, Karras et al. 2020);
            // off for the reference. Turn it off for pictures with text.
            flip: Some(!reference),
            // The generator average (ProGAN, BigGAN) helps over long runs; within the 10,000
            // steps of a browser session it blurred samples and scored worse, so it is off.
            ema: Some(0.0),
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
            assert_eq!(plan.model.spectral_norm, r == Recipe::Tiny);
            assert_eq!(plan.train.flip, r != Recipe::Reference);
        }
        // The reference is the TF.js benchmark's DCGAN, exactly.
        let reference = Recipe::Reference.settings().resolve().unwrap();
        assert_eq!(reference.model, crate::config::ModelConfig::reference());
        assert_eq!(
            (
                reference.train.batch,
                reference.train.augment,
                reference.train.ema
            ),
            (64, 0.0, 0.0)
        );
        let small = Recipe::Small.settings().resolve().unwrap();
        assert_eq!((small.train.batch, small.train.augment), (32, 1.0));
    }
}
