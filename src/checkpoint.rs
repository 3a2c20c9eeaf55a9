//! Checkpoints: everything needed to go on training exactly where it stopped (G, D, the generator
//! average, both optimisers' moments, the step, the random stream and the settings) as one
//! safetensors file sealed with a CRC-32, so a torn or damaged copy is refused before use. The
//! training pictures get a sealed file of their own: stored once, not in every checkpoint.

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ParamId};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::adam::{Adam, Moments};
use crate::config::{ModelConfig, TrainConfig};
use crate::data::{self, Dataset};
use crate::error::{GanError, Result};
use crate::modelfile::{
    Named, Raw, collect, collect_with_ids, fill, model_config, parse, read_back, read_expected,
};
use crate::rng::Rng;
use crate::settings::Uploaded;
use crate::train::Trainer;

/// `format` of a checkpoint file.
pub const FORMAT: &str = "gan-playground-checkpoint";
/// `format` of a pictures file.
pub const DATASET_FORMAT: &str = "gan-playground-dataset";
/// `format_version` this build writes and reads.
pub const VERSION: &str = "1";
/// Ends every sealed file, after the CRC-32 of everything before it.
const MAGIC: &[u8; 8] = b"GANSEAL1";

fn bad(problem: String) -> GanError {
    GanError::BadCheckpoint(problem)
}

/// `bytes` followed by their CRC-32 (little-endian) and the end marker.
pub fn seal(mut bytes: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes.extend_from_slice(MAGIC);
    bytes
}

/// The payload of a sealed file, once its end marker and checksum are right.
pub fn unseal(bytes: &[u8]) -> Result<&[u8]> {
    let n = bytes.len();
    if n < 12 || &bytes[n - 8..] != MAGIC {
        return Err(bad(format!(
            "{n} bytes without the end marker: the save was cut off or this is not a checkpoint"
        )));
    }
    let payload = &bytes[..n - 12];
    let stored = u32::from_le_bytes(bytes[n - 12..n - 8].try_into().expect("4 bytes"));
    let computed = crc32fast::hash(payload);
    if stored != computed {
        return Err(bad(format!(
            "checksum mismatch (stored {stored:08x}, computed {computed:08x}): the saved data is damaged"
        )));
    }
    Ok(payload)
}

/// What a checkpoint holds, read without building anything.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    /// Steps done.
    pub step: u64,
    /// The model settings.
    pub model: ModelConfig,
    /// The training settings.
    pub train: TrainConfig,
    /// CRC-32 of every tensor's values, in file order: equal digests mean identical state.
    pub digest: u32,
    /// All metadata, as text.
    pub metadata: BTreeMap<String, String>,
}

fn open<'a>(bytes: &'a [u8], format: &str) -> Result<(SafeTensors<'a>, BTreeMap<String, String>)> {
    let payload = unseal(bytes)?;
    let (file, metadata) = parse(payload).map_err(|e| bad(format!("unreadable: {e}")))?;
    let found = metadata.get("format").map_or("none", String::as_str);
    if found != format {
        return Err(bad(format!("format is \"{found}\", not \"{format}\"")));
    }
    let version = metadata
        .get("format_version")
        .map_or("none", String::as_str);
    if version != VERSION {
        return Err(bad(format!(
            "format version {version} is not supported (this app reads version {VERSION})"
        )));
    }
    Ok((file, metadata))
}

fn get<'a>(metadata: &'a BTreeMap<String, String>, key: &str) -> Result<&'a str> {
    metadata
        .get(key)
        .map(String::as_str)
        .ok_or_else(|| bad(format!("metadata has no `{key}`")))
}

fn number<T: std::str::FromStr>(metadata: &BTreeMap<String, String>, key: &str) -> Result<T> {
    let text = get(metadata, key)?;
    text.parse()
        .map_err(|_| bad(format!("`{key}` = \"{text}\" is not a number")))
}

/// Checks a checkpoint's seal and reads its settings (nothing is allocated on a device).
pub fn info(bytes: &[u8]) -> Result<Info> {
    let (_, metadata) = open(bytes, FORMAT)?;
    info_of(metadata)
}

/// The settings of an opened checkpoint, from its metadata.
fn info_of(metadata: BTreeMap<String, String>) -> Result<Info> {
    let model = model_config(get(&metadata, "model_config")?).map_err(|e| match e {
        GanError::BadModelFile(p) => bad(p),
        other => other,
    })?;
    model.validate()?;
    let train: TrainConfig = serde_json::from_str(get(&metadata, "train_config")?)
        .map_err(|e| bad(format!("train_config is not a valid config: {e}")))?;
    train.validate()?;
    Ok(Info {
        step: number(&metadata, "step")?,
        digest: number(&metadata, "digest")?,
        model,
        train,
        metadata,
    })
}

/// Every parameter of a module with its dotted path, as `modelfile::collect` names it.
fn ids<M: Module>(module: &M, prefix: &'static str) -> Vec<(String, ParamId)> {
    let (tensors, ids) = collect_with_ids(module, prefix);
    tensors.into_iter().map(|t| t.0).zip(ids).collect()
}

/// Adam's moments for the parameters of `module`, named `{prefix}.{parameter}.m` and `.v`.
fn moments_of<M: Module>(module: &M, name: &'static str, adam: &Adam, out: &mut Vec<Named>) {
    for (param, id) in ids(module, name) {
        if let Some(Moments { m, v }) = adam.moments(id) {
            let n = m.dims()[0];
            let param = param.split_once('.').map_or(param.as_str(), |p| p.1);
            let prefix = if name == "generator" {
                "adam_g"
            } else {
                "adam_d"
            };
            out.push((format!("{prefix}.{param}.m"), vec![n], m.clone()));
            out.push((format!("{prefix}.{param}.v"), vec![n], v.clone()));
        }
    }
}

impl Trainer {
    /// Every tensor of the state, named, still on the device.
    fn state_tensors(&self) -> Vec<Named> {
        let mut tensors = collect(&self.generator, "generator");
        tensors.extend(collect(&self.discriminator, "discriminator"));
        if let Some(ema) = &self.ema {
            tensors.extend(collect(ema, "ema"));
        }
        moments_of(&self.generator, "generator", &self.opt_g, &mut tensors);
        moments_of(
            &self.discriminator,
            "discriminator",
            &self.opt_d,
            &mut tensors,
        );
        tensors
    }

    /// Reads the whole state back in ONE async transaction: `(name, shape, values)`.
    async fn read_state(&self) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>> {
        read_back(self.state_tensors()).await
    }

    /// CRC-32 of the whole state (weights, averages, moments): what `Info::digest` records.
    pub async fn digest(&self) -> Result<u32> {
        Ok(digest(&self.read_state().await?))
    }

    /// The state as one sealed checkpoint; `extra` metadata (the page's settings, the
    /// dataset's source) is kept with it.
    pub async fn checkpoint(&self, extra: &[(&str, String)]) -> Result<Vec<u8>> {
        let state = self.read_state().await?;
        let digest = digest(&state);
        let views = state.into_iter().map(|(name, shape, values)| {
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            let raw = Raw {
                dtype: Dtype::F32,
                shape,
                bytes,
            };
            (name, raw)
        });
        let mut metadata: HashMap<String, String> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        for (key, value) in [
            ("format", FORMAT.to_string()),
            ("format_version", VERSION.to_string()),
            ("model_config", self.model.to_string()),
            ("train_config", self.train.to_string()),
            ("step", self.step.to_string()),
            ("rng", self.rng.state().to_string()),
            ("adam_g_time", self.opt_g.time().to_string()),
            ("adam_d_time", self.opt_d.time().to_string()),
            ("grid", self.draw.count.to_string()),
            ("digest", digest.to_string()),
        ] {
            metadata.insert(key.into(), value);
        }
        let bytes = safetensors::serialize(views, Some(metadata))
            .map_err(|e| GanError::Backend(format!("writing the checkpoint failed: {e}")))?;
        Ok(seal(bytes))
    }

    /// Rebuilds a trainer from a checkpoint on `device`, training on `data` (the checkpoint's
    /// own pictures: see [`dataset`]). `lr_scale` multiplies both learning rates (the
    /// divergence guard halves them). Every problem is a `BadCheckpoint` naming it.
    pub fn restore(bytes: &[u8], data: &Dataset, lr_scale: f64, device: &Device) -> Result<Self> {
        // One seal check and one header parse for the whole restore.
        let (file, metadata) = open(bytes, FORMAT)?;
        let info = info_of(metadata.clone())?;
        let mut train = info.train.clone();
        train.lr_g = (train.lr_g * lr_scale).clamp(1e-7, 0.1);
        train.lr_d = (train.lr_d * lr_scale).clamp(1e-7, 0.1);
        let model = info.model.clone();
        let cpu = Device::flex();
        let (g, d) = model.init(&mut Rng::new(0), &cpu)?;
        let shapes = |m: Vec<Named>| m.into_iter().map(|(n, s, _)| (n, s)).collect::<Vec<_>>();
        let mut expected = shapes(collect(&g, "generator"));
        expected.extend(shapes(collect(&d, "discriminator")));
        if train.ema > 0.0 {
            expected.extend(shapes(collect(&g, "ema")));
        }
        // Moments exist only for parameters that had a gradient; take those the file has.
        let names = file.names();
        for (param, _) in ids(&g, "generator")
            .into_iter()
            .chain(ids(&d, "discriminator"))
        {
            let (module, rest) = param.split_once('.').expect("a dotted path");
            let prefix = if module == "generator" {
                "adam_g"
            } else {
                "adam_d"
            };
            let n = expected
                .iter()
                .find(|e| e.0 == param)
                .map_or(0, |e| e.1.iter().product());
            for which in ["m", "v"] {
                let name = format!("{prefix}.{rest}.{which}");
                if names.iter().any(|x| **x == name) {
                    expected.push((name, vec![n]));
                }
            }
        }
        let values = read_expected(&file, &expected, bad)?;
        let generator = g.clone().map(&mut fill("generator", &values));
        let discriminator = d.map(&mut fill("discriminator", &values));
        let rng = Rng::new(number(&metadata, "rng")?);
        let grid = number(&metadata, "grid")?;
        let mut t = Trainer::assemble(
            model,
            train,
            data,
            grid,
            device,
            (generator, discriminator),
            info.step,
            rng,
        )?;
        let inner = device.clone().autodiff().inner();
        if t.ema.is_some() {
            t.ema = Some(g.map(&mut fill("ema", &values)).to_device(&inner));
        }
        let restore = |module: Vec<(String, ParamId)>, prefix: &str| {
            let mut moments = HashMap::new();
            for (param, id) in module {
                let rest = param.split_once('.').expect("a dotted path").1;
                let key = |w: &str| format!("{prefix}.{rest}.{w}");
                if let (Some(m), Some(v)) = (values.get(&key("m")), values.get(&key("v"))) {
                    let tensor = |x: &Vec<f32>| {
                        Tensor::from_data(TensorData::new(x.clone(), [x.len()]), &inner)
                    };
                    moments.insert(
                        id,
                        Moments {
                            m: tensor(m),
                            v: tensor(v),
                        },
                    );
                }
            }
            moments
        };
        let mg = restore(ids(&t.generator, "generator"), "adam_g");
        let md = restore(ids(&t.discriminator, "discriminator"), "adam_d");
        t.opt_g.restore(number(&metadata, "adam_g_time")?, mg);
        t.opt_d.restore(number(&metadata, "adam_d_time")?, md);
        Ok(t)
    }
}

/// CRC-32 over every value of the state, in order.
fn digest(state: &[(String, Vec<usize>, Vec<f32>)]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for (_, _, values) in state {
        for v in values {
            h.update(&v.to_le_bytes());
        }
    }
    h.finalize()
}

/// The built-in set a checkpoint trained on, from its `preprocessing` metadata; `None` for the
/// user's own pictures (stored in a pictures file).
pub fn builtin(info: &Info) -> Option<String> {
    let prep: serde_json::Value = serde_json::from_str(info.metadata.get("preprocessing")?).ok()?;
    prep.get("builtin")?.as_str().map(str::to_string)
}

/// The training pictures of a checkpoint of a built-in set, drawn again (they are deterministic).
pub fn builtin_dataset(info: &Info) -> Result<Option<Dataset>> {
    builtin(info)
        .map(|name| data::builtin(&name, info.model.image_size, 1))
        .transpose()
}

/// A short id of a set of pictures: its CRC-32 and count. Equal sets have equal ids, so a
/// stored set is not written again.
pub fn dataset_id(d: &Dataset) -> String {
    format!("{:08x}-{}", crc32fast::hash(&d.pixels), d.len())
}

/// The user's prepared pictures as one sealed file (u8 `[N, S, S, C]` plus where they came
/// from and how they were prepared).
pub fn encode_dataset(u: &Uploaded) -> Result<Vec<u8>> {
    let d = &u.dataset;
    let raw = Raw {
        dtype: Dtype::U8,
        shape: vec![d.len(), d.size, d.size, d.channels],
        bytes: d.pixels.clone(),
    };
    let metadata = HashMap::from([
        ("format".to_string(), DATASET_FORMAT.to_string()),
        ("format_version".into(), VERSION.into()),
        ("source".into(), u.source.clone()),
        ("preprocessing".into(), u.preprocessing.clone()),
    ]);
    let bytes = safetensors::serialize([("pixels", raw)], Some(metadata))
        .map_err(|e| GanError::Backend(format!("writing the pictures failed: {e}")))?;
    Ok(seal(bytes))
}

/// Reads a pictures file back; a damaged one is refused.
pub fn decode_dataset(bytes: &[u8]) -> Result<Uploaded> {
    let (file, metadata) = open(bytes, DATASET_FORMAT)?;
    let view = file
        .tensor("pixels")
        .map_err(|_| bad("no `pixels` tensor".into()))?;
    let shape = view.shape().to_vec();
    let ok = view.dtype() == Dtype::U8
        && shape.len() == 4
        && shape[0] > 0
        && shape[1] == shape[2]
        && [16, 32, 64].contains(&shape[1])
        && [1, 3].contains(&shape[3]);
    if !ok {
        return Err(bad(format!(
            "pictures are {:?} {shape:?}, expected U8 [count, size, size, 1 or 3]",
            view.dtype()
        )));
    }
    Ok(Uploaded {
        dataset: Dataset {
            size: shape[1],
            channels: shape[3],
            pixels: view.data().to_vec(),
        },
        source: get(&metadata, "source")?.to_string(),
        preprocessing: get(&metadata, "preprocessing")?.to_string(),
    })
}
