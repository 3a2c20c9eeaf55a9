//! The native command line: `gan train` (a folder of pictures or a built-in set -> model file),
//! `gan sample` (model file -> PNG grid) and `gan info` (a model file's metadata). Same core and
//! same files as the page: a model trained here loads there and the reverse.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use burn::tensor::Device;
use clap::{Parser, Subcommand, ValueEnum};
use gan_playground::config::Loss;
use gan_playground::preprocess::{Fit, Preprocess};
use gan_playground::recipe::Recipe;
use gan_playground::render::grid_from_nchw;
use gan_playground::sample::{self, Draw};
use gan_playground::settings::{DEFAULT_GRID, Settings, UPLOAD, Uploaded};
use gan_playground::train::Trainer;
use gan_playground::{GanError, data, decode, modelfile};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(
    name = "gan",
    version,
    about = "Train a small GAN on your pictures; sample from model files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    /// The GPU when this build has it and one is found, else the CPU.
    Auto,
    /// The GPU through wgpu (Vulkan, Metal or DX12); needs `--features gpu`.
    Gpu,
    /// The CPU (Flex).
    Cpu,
}

// Parsed once per run, so the size of the train variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Train on a folder of pictures (or a built-in set) and write a model file.
    Train {
        /// Folder of pictures (PNG, JPEG, WebP, GIF, BMP; searched recursively, .zip archives in
        /// it opened), or one .zip archive of pictures.
        folder: Option<PathBuf>,
        /// Train on a built-in set instead: shapes or glyphs.
        #[arg(long, conflicts_with = "folder")]
        builtin: Option<String>,
        /// Model file to write.
        #[arg(short, long, default_value = "model.safetensors")]
        output: PathBuf,
        /// Go on training this model file (it must hold the discriminator).
        #[arg(long)]
        resume: Option<PathBuf>,
        /// Training steps (one D and one G update each).
        #[arg(long, default_value_t = 1000)]
        steps: u64,
        /// Image size in pixels: 16, 32 or 64.
        #[arg(long, default_value_t = 32)]
        size: usize,
        /// Train on grayscale pictures.
        #[arg(long)]
        gray: bool,
        /// How non-square pictures become square.
        #[arg(long, value_enum, default_value = "crop")]
        fit: FitArg,
        /// Background for transparent pixels and padding, as #rrggbb.
        #[arg(long, default_value = "#ffffff")]
        background: String,
        /// Train on the first N pictures only (after skipping bad files and duplicates), e.g. to
        /// try a recipe on a small set.
        #[arg(long)]
        limit: Option<usize>,
        /// Starting settings: auto (from the number of pictures), tiny, small, large or
        /// reference (the benchmark DCGAN). Each flag below overrides its recipe value.
        #[arg(long, default_value = "auto")]
        recipe: String,
        /// Images per batch [recipe: 16 tiny, 32 small, 64 large].
        #[arg(long)]
        batch: Option<usize>,
        /// Network width, channels of the widest-resolution layer [recipe: 32; reference 64].
        #[arg(long)]
        width: Option<usize>,
        /// Latent size.
        #[arg(long, default_value_t = 100)]
        latent: usize,
        /// Loss: nonsaturating or hinge [recipe: hinge below 100 pictures, else nonsaturating].
        #[arg(long)]
        loss: Option<String>,
        /// Spectral normalisation in the discriminator [recipe: true below 100 pictures].
        #[arg(long)]
        spectral_norm: Option<bool>,
        /// Generator learning rate [recipe: 2e-4].
        #[arg(long)]
        lr_g: Option<f64>,
        /// Discriminator learning rate [recipe: 2e-4].
        #[arg(long)]
        lr_d: Option<f64>,
        /// Seed for weights, noise and batch order.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// DiffAugment strength, 0 (off) to 1 [recipe: 1 below 1,000 pictures, else 0].
        #[arg(long)]
        augment: Option<f32>,
        /// Mirror pictures at random [recipe: true; reference false].
        #[arg(long)]
        flip: Option<bool>,
        /// Decay of the generator's moving average that samples and the file use, e.g. 0.999
        /// for long runs; 0 turns it off [recipe: 0].
        #[arg(long)]
        ema: Option<f64>,
        /// Leave the discriminator out of the file (smaller; it cannot go on training).
        #[arg(long)]
        no_discriminator: bool,
        /// A title stored in the file.
        #[arg(long, default_value = "")]
        title: String,
        /// Also write a PNG of samples here at the end.
        #[arg(long)]
        samples: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "auto")]
        backend: Backend,
    },
    /// Draw a grid of samples from a model file into a PNG.
    Sample {
        /// The model file (.safetensors, from the page or `gan train`).
        model: PathBuf,
        /// PNG to write.
        #[arg(short, long, default_value = "samples.png")]
        output: PathBuf,
        /// Seed of the latent vectors: the same seed gives the same images (as in the page).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Number of images (1 to 256).
        #[arg(long, default_value_t = DEFAULT_GRID)]
        count: usize,
        /// Truncation threshold: smaller is more typical, less varied (e.g. 0.7).
        #[arg(long)]
        truncation: Option<f32>,
        /// Images per row (default: a square grid).
        #[arg(long)]
        cols: Option<usize>,
        /// Enlarge every pixel this many times (nearest neighbour).
        #[arg(long, default_value_t = 1)]
        scale: usize,
        #[arg(long, value_enum, default_value = "auto")]
        backend: Backend,
    },
    /// Print a model file's metadata.
    Info {
        /// The model file.
        model: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum FitArg {
    Crop,
    Pad,
    Stretch,
}

/// Errors of the CLI: the core's, or a file it could not read or write.
#[derive(Debug)]
enum CliError {
    Core(GanError),
    Io(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Core(e) => e.fmt(f),
            CliError::Io(m) => f.write_str(m),
        }
    }
}

impl From<GanError> for CliError {
    fn from(e: GanError) -> Self {
        CliError::Core(e)
    }
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> CliError {
    let message = format!("cannot {what} {}", path.display());
    move |e| CliError::Io(format!("{message}: {e}"))
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Info { model } => {
            let bytes = std::fs::read(&model).map_err(io("read", &model))?;
            let loaded = modelfile::load(&bytes, &Device::flex())?;
            for (key, value) in &loaded.metadata {
                println!("{key}: {value}");
            }
            let d = if loaded.discriminator.is_some() {
                "yes"
            } else {
                "no"
            };
            println!("discriminator included: {d}");
            Ok(())
        }
        Command::Sample {
            model,
            output,
            seed,
            count,
            truncation,
            cols,
            scale,
            backend,
        } => {
            let draw = Draw {
                seed,
                count,
                truncation,
            };
            draw.validate()?;
            if !(1..=16).contains(&scale) {
                return Err(CliError::Io(format!("--scale {scale}: use 1 to 16")));
            }
            let device = device(backend)?;
            let bytes = std::fs::read(&model).map_err(io("read", &model))?;
            let loaded = modelfile::load(&bytes, &device)?;
            let m = &loaded.model;
            let images =
                pollster::block_on(sample::images(&loaded.generator, m.latent, draw, &device))?;
            let cols = cols.unwrap_or((count as f64).sqrt().ceil() as usize);
            write_png(
                &output,
                &grid_from_nchw(&images, m.image_size, m.channels, cols),
                scale,
            )?;
            println!("wrote {} ({count} samples, seed {seed})", output.display());
            Ok(())
        }
        Command::Train {
            folder,
            builtin,
            output,
            resume,
            steps,
            size,
            gray,
            fit,
            background,
            limit,
            recipe,
            batch,
            width,
            latent,
            loss,
            spectral_norm,
            lr_g,
            lr_d,
            seed,
            augment,
            flip,
            ema,
            no_discriminator,
            title,
            samples,
            backend,
        } => {
            let flags = Settings {
                batch,
                width,
                latent: Some(latent),
                loss,
                spectral_norm,
                lr_g,
                lr_d,
                seed: Some(seed),
                augment,
                flip,
                ema,
                ..Settings::default()
            };
            let fixed = (recipe != "auto")
                .then(|| {
                    Recipe::parse(&recipe).ok_or(GanError::InvalidConfig {
                        field: "recipe",
                        value: recipe.clone(),
                        allowed: "auto, tiny, small, large or reference",
                    })
                })
                .transpose()?;
            let resumed = match &resume {
                Some(path) => Some(std::fs::read(path).map_err(io("read", path))?),
                None => None,
            };
            let device = device(backend)?;
            let resumed = resumed
                .map(|bytes| modelfile::load(&bytes, &device))
                .transpose()?;
            // A resumed model fixes the image size and channels.
            let (size, channels) = match &resumed {
                Some(l) => (l.model.image_size, l.model.channels),
                None => (size, if gray { 1 } else { 3 }),
            };
            let (dataset, source, preprocessing) = match (&folder, &builtin) {
                (_, Some(name)) => {
                    let set = data::builtin(name, size, 1)?;
                    let prep = serde_json::json!({"builtin": name, "size": size, "channels": set.channels});
                    (set, format!("built-in set {name}"), prep.to_string())
                }
                (Some(dir), None) => {
                    let prep = Preprocess {
                        size,
                        channels,
                        fit: match fit {
                            FitArg::Crop => Fit::Crop,
                            FitArg::Pad => Fit::Pad,
                            FitArg::Stretch => Fit::Stretch,
                        },
                        background: parse_colour(&background)?,
                    };
                    let f = decode::folder(dir, &prep)?;
                    for e in &f.skipped {
                        eprintln!("{e}");
                    }
                    eprintln!(
                        "{} pictures from {} files ({} skipped, {} duplicates dropped)",
                        f.dataset.len(),
                        f.files,
                        f.skipped.len(),
                        f.duplicates
                    );
                    let source = format!(
                        "{} {}",
                        if dir.is_file() { "archive" } else { "folder" },
                        dir.file_name().unwrap_or_default().to_string_lossy()
                    );
                    let prep = serde_json::to_string(&prep).expect("plain struct");
                    (f.dataset, source, prep)
                }
                (None, None) => {
                    return Err(CliError::Io(
                        "give a folder of pictures, or --builtin shapes|glyphs".into(),
                    ));
                }
            };
            let mut dataset = dataset;
            if let Some(n) = limit {
                let bytes = n.saturating_mul(dataset.size * dataset.size * dataset.channels);
                dataset.pixels.truncate(bytes);
            }
            let recipe = fixed.unwrap_or(Recipe::for_count(dataset.len()));
            let plan = Settings {
                dataset: Some(UPLOAD.into()),
                image_size: Some(size),
                grid: Some(DEFAULT_GRID),
                ..flags.or(recipe.settings())
            }
            .resolve_with(Some(Uploaded {
                dataset,
                source,
                preprocessing,
            }))?;
            let count = plan.dataset.len();
            let train = plan.train.clone();
            let mut trainer = match resumed {
                // A resumed model keeps its architecture; the training settings apply.
                Some(loaded) => {
                    Trainer::resume(loaded, plan.train, &plan.dataset, plan.grid, &device)?
                }
                None => Trainer::new(plan.model, plan.train, &plan.dataset, plan.grid, &device)?,
            };
            // The architecture printed is the trainer's: a resumed file keeps its own.
            let m = trainer.model_config();
            eprintln!(
                "recipe: {}; {count} pictures, batch {}, {} loss, spectral norm {}, DiffAugment {}, flip {}, EMA {}",
                recipe.label(),
                train.batch,
                if m.loss == Loss::Hinge {
                    "hinge"
                } else {
                    "non-saturating"
                },
                if m.spectral_norm { "on" } else { "off" },
                train.augment,
                if train.flip { "on" } else { "off" },
                train.ema
            );
            let (dataset, source, preprocessing) = (plan.dataset, plan.source, plan.preprocessing);
            let before = pollster::block_on(trainer.quality())?;
            let bar = ProgressBar::new(steps);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} steps, {per_sec}, ETA {eta} {msg}",
                )
                .expect("valid template"),
            );
            let start = Instant::now();
            let mut done = 0;
            while done < steps {
                // Read back every 10 steps: losses for the bar and a NaN check.
                let k = (steps - done).min(10);
                let tick = pollster::block_on(trainer.run(k as usize))?;
                done += k;
                bar.set_position(done);
                bar.set_message(format!(
                    "D loss {:.3}, G loss {:.3}",
                    tick.d_loss, tick.g_loss
                ));
            }
            bar.finish();
            eprintln!(
                "{steps} steps in {:.1} s ({:.2} steps/s)",
                start.elapsed().as_secs_f64(),
                steps as f64 / start.elapsed().as_secs_f64()
            );
            let after = pollster::block_on(trainer.quality())?;
            eprintln!(
                "quality: SWD x1e3 {:.1} at step {} -> {:.1} at step {} (lower is closer to the pictures)",
                before.swd, before.step, after.swd, after.step
            );
            let m = &after.memorisation;
            eprintln!(
                "memorisation: {} of 64 samples closer to a training picture than any two pictures are ({:.1})",
                m.copies, m.train_gap
            );
            let provenance = modelfile::Provenance {
                title,
                created_unix: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                dataset: dataset.summary(&source),
                preprocessing,
            };
            let bytes = pollster::block_on(trainer.save(!no_discriminator, &provenance.entries()))?;
            std::fs::write(&output, &bytes).map_err(io("write", &output))?;
            println!(
                "wrote {} ({} bytes, step {})",
                output.display(),
                bytes.len(),
                trainer.steps()
            );
            if let Some(path) = samples {
                let m = trainer.model_config().clone();
                let draw = trainer.draw();
                let images = pollster::block_on(sample::images(
                    trainer.generator(),
                    m.latent,
                    draw,
                    &device,
                ))?;
                let cols = (draw.count as f64).sqrt().ceil() as usize;
                write_png(
                    &path,
                    &grid_from_nchw(&images, m.image_size, m.channels, cols),
                    4,
                )?;
                println!("wrote {}", path.display());
            }
            Ok(())
        }
    }
}

/// "#rrggbb" -> bytes.
fn parse_colour(text: &str) -> Result<[u8; 3], CliError> {
    let hex = text.strip_prefix('#').unwrap_or(text);
    let channel = |i: usize| {
        hex.get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
    };
    match (hex.len(), channel(0), channel(2), channel(4)) {
        (6, Some(r), Some(g), Some(b)) => Ok([r, g, b]),
        _ => Err(CliError::Io(format!(
            "--background {text}: use #rrggbb, e.g. #ffffff"
        ))),
    }
}

fn write_png(
    path: &Path,
    grid: &gan_playground::render::Rgba,
    scale: usize,
) -> Result<(), CliError> {
    let (w, h) = (grid.width * scale, grid.height * scale);
    let mut pixels = Vec::with_capacity(w * h * 4);
    for y in 0..h {
        for x in 0..w {
            let o = ((y / scale) * grid.width + x / scale) * 4;
            pixels.extend_from_slice(&grid.pixels[o..o + 4]);
        }
    }
    image::save_buffer(
        path,
        &pixels,
        w as u32,
        h as u32,
        image::ExtendedColorType::Rgba8,
    )
    .map_err(|e| CliError::Io(format!("cannot write {}: {e}", path.display())))
}

/// The device for `backend`: the GPU (when built with `--features gpu`) or Flex.
fn device(backend: Backend) -> Result<Device, CliError> {
    match backend {
        Backend::Cpu => Ok(Device::flex()),
        #[cfg(feature = "gpu")]
        Backend::Gpu | Backend::Auto => match Device::wgpu_options().init() {
            Ok(d) => {
                eprintln!("training device: GPU (wgpu)");
                Ok(d)
            }
            Err(e) if matches!(backend, Backend::Auto) => {
                eprintln!("no usable GPU ({e}); using the CPU");
                Ok(Device::flex())
            }
            Err(e) => Err(CliError::Io(format!("the GPU could not start: {e}"))),
        },
        #[cfg(not(feature = "gpu"))]
        Backend::Gpu => Err(CliError::Io(
            "this build has no GPU support: build with `cargo build --release --features gpu`"
                .into(),
        )),
        #[cfg(not(feature = "gpu"))]
        Backend::Auto => Ok(Device::flex()),
    }
}
