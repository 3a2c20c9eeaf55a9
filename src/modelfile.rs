//! Model files: one `.safetensors` file (spec-compliant, so Python's `safetensors` opens it) with
//! G (always) and D (optional) weights named by module path, and `__metadata__` carrying the
//! format, its version, the full model config and the training step. Written with ONE async
//! readback (no synchronous read, so it works on WebGPU in the browser), and checked on load
//! before anything big is allocated.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::{Device, Tensor, Transaction};
use safetensors::{Dtype, SafeTensors, View};

use crate::config::ModelConfig;
use crate::error::{GanError, Result};
use crate::model::{Discriminator, Generator, RewriteParams, from_values};
use crate::rng::Rng;
use crate::sample;

/// Value of the `format` metadata key.
pub const FORMAT: &str = "gan-playground";
/// Value of the `format_version` key this build writes and reads.
pub const FORMAT_VERSION: &str = "1";
/// Largest file accepted: the biggest valid model (50 M parameters, G and D) is 200 MB.
pub const MAX_FILE_BYTES: usize = 256 << 20;

/// Where a model came from, for the file's metadata (all text; JSON where structured).
pub struct Provenance {
    /// A title the user gave, or "".
    pub title: String,
    /// Seconds since 1970 when the file was written (callers pass it: wasm32 has no clock).
    pub created_unix: u64,
    /// [`Dataset::summary`](crate::data::Dataset::summary) of the training images.
    pub dataset: String,
    /// The preprocessing, as JSON.
    pub preprocessing: String,
}

impl Provenance {
    /// The metadata entries.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        vec![
            ("title", self.title.clone()),
            ("created", rfc3339(self.created_unix)),
            ("dataset", self.dataset.clone()),
            ("preprocessing", self.preprocessing.clone()),
        ]
    }
}

/// `unix_secs` as an RFC 3339 UTC timestamp ("2026-12-05T01:48:03Z"), for the `created` key.
/// Days to civil date by Howard Hinnant's algorithm (howardhinnant.github.io/date_algorithms.html,
/// `civil_from_days`); std has no calendar and wasm32 has no clock, so callers pass the time.
pub fn rfc3339(unix_secs: u64) -> String {
    let (days, secs) = ((unix_secs / 86_400) as i64, unix_secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A loaded model file.
#[derive(Clone)]
pub struct Loaded {
    /// The validated model config.
    pub model: ModelConfig,
    /// Training steps done when the file was written.
    pub step: u64,
    /// The generator.
    pub generator: Generator,
    /// The discriminator, when the file has one (needed to continue training).
    pub discriminator: Option<Discriminator>,
    /// All metadata, as text (show it as text only).
    pub metadata: BTreeMap<String, String>,
}

fn bad(problem: impl Into<String>) -> GanError {
    GanError::BadModelFile(problem.into())
}

fn bad_file(problem: String) -> GanError {
    GanError::BadModelFile(problem)
}

/// A named tensor: its dotted path, shape, and flattened values on the device.
pub(crate) type Named = (String, Vec<usize>, Tensor<1>);

/// Collects every float tensor of a module with its dotted path ("blocks.0.conv.weight") and
/// parameter id.
struct Collect {
    prefix: &'static str,
    path: Vec<String>,
    out: Vec<Named>,
    ids: Vec<ParamId>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // Without autodiff: one transaction holds tensors of one kind.
        let tensor = param.val().inner();
        let shape = tensor.dims().to_vec();
        let flat = tensor.reshape([shape.iter().product::<usize>()]);
        self.out.push((
            format!("{}.{}", self.prefix, self.path.join(".")),
            shape,
            flat,
        ));
        self.ids.push(param.id);
    }
}

pub(crate) fn collect<M: Module>(module: &M, prefix: &'static str) -> Vec<Named> {
    collect_with_ids(module, prefix).0
}

/// [`collect`], with each tensor's parameter id (in the same order).
pub(crate) fn collect_with_ids<M: Module>(
    module: &M,
    prefix: &'static str,
) -> (Vec<Named>, Vec<ParamId>) {
    let mut c = Collect {
        prefix,
        path: Vec::new(),
        out: Vec::new(),
        ids: Vec::new(),
    };
    module.visit(&mut c);
    (c.out, c.ids)
}

/// A tensor's bytes (little-endian), as safetensors wants them.
pub(crate) struct Raw {
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) bytes: Vec<u8>,
}

impl View for Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Reads `tensors` back in ONE async transaction (no synchronous read: WebGPU in the browser
/// forbids it), as `(name, shape, values)`.
pub(crate) async fn read_back(tensors: Vec<Named>) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>> {
    let mut transaction = Transaction::default();
    for (_, _, t) in &tensors {
        transaction = transaction.register(t.clone());
    }
    let data = transaction
        .execute_async()
        .await
        .map_err(|e| GanError::Backend(format!("reading tensors from the device failed: {e:?}")))?;
    tensors
        .into_iter()
        .zip(data)
        .map(|((name, shape, _), d)| {
            let values = d.convert::<f32>().try_into_vec::<f32>().map_err(|e| {
                GanError::Backend(format!("unexpected tensor data for {name}: {e:?}"))
            })?;
            Ok((name, shape, values))
        })
        .collect()
}

/// Writes G (and D when given) with `metadata` (title, dataset summary...) added to ours.
pub async fn save(
    model: &ModelConfig,
    step: u64,
    generator: &Generator,
    discriminator: Option<&Discriminator>,
    extra: &[(&str, String)],
) -> Result<Vec<u8>> {
    let mut tensors = collect(generator, "generator");
    if let Some(d) = discriminator {
        tensors.extend(collect(d, "discriminator"));
    }
    // G's running statistics become the standing statistics every sample is drawn with, so the
    // file draws the same images here, in the CLI and in any framework's inference mode.
    let device = tensors[0].2.device();
    for (i, (mean, var)) in sample::standing_stats(generator, model.latent, &device)
        .into_iter()
        .enumerate()
    {
        for (stat, value) in [("running_mean", mean), ("running_var", var)] {
            let name = format!("generator.blocks.{i}.norm.{stat}");
            let slot = tensors.iter_mut().find(|t| t.0 == name);
            slot.expect("every G block has a BatchNorm").2 = value;
        }
    }
    let mut views = Vec::with_capacity(tensors.len());
    for (name, shape, values) in read_back(tensors).await? {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let dtype = Dtype::F32;
        views.push((
            name,
            Raw {
                dtype,
                shape,
                bytes,
            },
        ));
    }
    let mut metadata: HashMap<String, String> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    metadata.insert("format".into(), FORMAT.into());
    metadata.insert("format_version".into(), FORMAT_VERSION.into());
    metadata.insert("model_config".into(), model.to_string());
    metadata.insert("step".into(), step.to_string());
    metadata.insert("app_version".into(), env!("CARGO_PKG_VERSION").into());
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| GanError::Backend(format!("writing the model file failed: {e}")))
}

/// Gives every float tensor of a module the file's tensor of the same path. `load` checked every
/// name and shape before, so the lookup cannot miss.
pub(crate) fn fill<'a>(
    prefix: &'a str,
    values: &'a HashMap<String, Vec<f32>>,
) -> RewriteParams<impl FnMut(&[String], Tensor<1>) -> Option<Tensor<1>> + 'a> {
    RewriteParams::new(move |path: &[String], t: Tensor<1>| {
        let values = values[&format!("{prefix}.{}", path.join("."))].clone();
        Some(from_values(values, &t))
    })
}

/// A safetensors file's tensors and its metadata map (shared by model files and checkpoints).
pub(crate) fn parse(
    bytes: &[u8],
) -> std::result::Result<(SafeTensors<'_>, BTreeMap<String, String>), safetensors::SafeTensorError>
{
    let file = SafeTensors::deserialize(bytes)?;
    let (_, header) = SafeTensors::read_metadata(bytes)?;
    let metadata = header.metadata().clone().unwrap_or_default();
    Ok((file, metadata.into_iter().collect()))
}

/// Reads and checks a model file, then builds the modules on `device`. Every problem is a
/// `BadModelFile` error naming it; nothing big is allocated before the config is validated.
pub fn load(bytes: &[u8], device: &Device) -> Result<Loaded> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(bad(format!(
            "file is {} MB; the largest model file is {} MB",
            bytes.len() >> 20,
            MAX_FILE_BYTES >> 20
        )));
    }
    let (file, metadata) =
        parse(bytes).map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let get = |key: &str| {
        metadata.get(key).ok_or_else(|| {
            bad(format!(
                "metadata has no `{key}`: not a GAN Playground model file"
            ))
        })
    };
    if get("format")? != FORMAT {
        return Err(bad(format!(
            "format is \"{}\", not \"{FORMAT}\"",
            get("format")?
        )));
    }
    if get("format_version")? != FORMAT_VERSION {
        return Err(bad(format!(
            "format version {} is not supported (this app reads version {FORMAT_VERSION})",
            get("format_version")?
        )));
    }
    let model = model_config(get("model_config")?)?;
    model.validate()?; // bounds the allocation below (a `latent = 10^9` config stops here)
    let step_text = get("step")?;
    let step: u64 = step_text
        .parse()
        .map_err(|_| bad(format!("step \"{step_text}\" is not a number")))?;

    // The expected tensors, from a model built on the CPU (bounded by the validated config).
    let cpu = Device::flex();
    let (g, d) = model.init(&mut Rng::new(0), &cpu)?;
    let has_d = file.names().iter().any(|n| n.starts_with("discriminator."));
    let mut expected: Vec<(String, Vec<usize>)> = collect(&g, "generator")
        .into_iter()
        .map(|(n, s, _)| (n, s))
        .collect();
    if has_d {
        expected.extend(
            collect(&d, "discriminator")
                .into_iter()
                .map(|(n, s, _)| (n, s)),
        );
    }
    let values = read_expected(&file, &expected, bad_file)?;
    let generator = g.map(&mut fill("generator", &values)).to_device(device);
    let discriminator = has_d.then(|| d.map(&mut fill("discriminator", &values)).to_device(device));
    Ok(Loaded {
        model,
        step,
        generator,
        discriminator,
        metadata,
    })
}

/// Reads exactly the `expected` tensors (name and shape) of a file as f32 values: a missing,
/// misshapen, non-F32 or non-finite tensor, or one more than expected, is an error made by
/// `bad` naming it.
pub(crate) fn read_expected(
    file: &SafeTensors,
    expected: &[(String, Vec<usize>)],
    bad: fn(String) -> GanError,
) -> Result<HashMap<String, Vec<f32>>> {
    let mut values = HashMap::with_capacity(expected.len());
    for (name, shape) in expected {
        let view = file
            .tensor(name)
            .map_err(|_| bad(format!("tensor `{name}` is missing")))?;
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!(
                "tensor `{name}` is {:?}, expected F32",
                view.dtype()
            )));
        }
        if view.shape() != shape.as_slice() {
            return Err(bad(format!(
                "tensor `{name}` has shape {:?}, expected {shape:?}",
                view.shape()
            )));
        }
        let floats: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some(i) = floats.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!(
                "tensor `{name}` has a non-finite value ({}) at index {i}",
                floats[i]
            )));
        }
        values.insert(name.clone(), floats);
    }
    if let Some(extra) = file.names().into_iter().find(|n| !values.contains_key(*n)) {
        return Err(bad(format!("unexpected tensor `{extra}`")));
    }
    Ok(values)
}

/// Parses a file's `model_config`. Settings added after the file was written (such as
/// `spectral_norm`) are absent from it and take their defaults, which are what such a file's
/// model used; unknown settings are refused.
pub(crate) fn model_config(text: &str) -> Result<ModelConfig> {
    let invalid = |e: serde_json::Error| bad(format!("model_config is not a valid config: {e}"));
    let mut value: serde_json::Value = serde_json::from_str(text).map_err(invalid)?;
    let defaults = serde_json::to_value(ModelConfig::new()).map_err(invalid)?;
    let (Some(fields), Some(defaults)) = (value.as_object_mut(), defaults.as_object()) else {
        return Err(bad("model_config is not a JSON object"));
    };
    if let Some(key) = fields.keys().find(|k| !defaults.contains_key(*k)) {
        return Err(bad(format!("model_config has an unknown setting `{key}`")));
    }
    for (key, default) in defaults {
        fields.entry(key.clone()).or_insert_with(|| default.clone());
    }
    serde_json::from_value(value).map_err(invalid)
}
