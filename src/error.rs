//! The one typed error of the crate: every fallible call returns `GanError`, and the wasm boundary
//! turns it into a `JsError` whose message a person can act on.

use std::fmt;

/// Everything that can go wrong in the playground core, each with a message naming the problem.
#[derive(Debug, Clone, PartialEq)]
pub enum GanError {
    /// A setting is outside the range the model or trainer supports.
    InvalidConfig {
        /// The setting's name as the page and the config file spell it.
        field: &'static str,
        /// The rejected value, as text.
        value: String,
        /// What would have been accepted.
        allowed: &'static str,
    },
    /// A built-in dataset name that does not exist.
    UnknownDataset(String),
    /// The backend (WebGPU or CPU) failed to start or to return data.
    Backend(String),
    /// The trainer produced a loss that is NaN or infinite.
    NonFinite {
        /// Which value went bad.
        what: &'static str,
        /// The step at which it happened.
        step: u64,
    },
    /// A value that stayed finite but exploded (training has diverged).
    Exploded {
        /// Which value.
        what: &'static str,
        /// Its value.
        value: f32,
        /// The step at which it happened.
        step: u64,
    },
    /// A model file that cannot be loaded; the text names the problem.
    BadModelFile(String),
    /// An autosaved checkpoint (or its pictures) that cannot be resumed from; the text names the
    /// problem (a damaged copy fails its checksum).
    BadCheckpoint(String),
    /// A picture that cannot be used for training (skipped; the others still load).
    BadImage {
        /// The file's name.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The core panicked earlier; the session is unusable and must be restarted.
    Poisoned,
}

impl fmt::Display for GanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GanError::InvalidConfig {
                field,
                value,
                allowed,
            } => {
                write!(f, "invalid setting `{field}` = {value}: allowed {allowed}")
            }
            GanError::UnknownDataset(name) => {
                write!(
                    f,
                    "unknown built-in dataset \"{name}\" (choose one of: {})",
                    crate::data::BUILTIN_NAMES.join(", ")
                )
            }
            GanError::Backend(msg) => write!(f, "backend error: {msg}"),
            GanError::NonFinite { what, step } => {
                write!(
                    f,
                    "{what} became NaN or infinite at step {step}; try a lower learning rate"
                )
            }
            GanError::Exploded { what, value, step } => {
                write!(f, "{what} exploded to {value:.3e} at step {step}")
            }
            GanError::BadModelFile(problem) => write!(f, "cannot load this model file: {problem}"),
            GanError::BadCheckpoint(problem) => {
                write!(f, "cannot resume from this autosave: {problem}")
            }
            GanError::BadImage { name, problem } => write!(f, "skipped {name}: {problem}"),
            GanError::Poisoned => write!(
                f,
                "the training core crashed earlier and refuses further work; restart the worker"
            ),
        }
    }
}

impl std::error::Error for GanError {}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, GanError>;
