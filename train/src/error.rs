//! The crate's error type: every fallible call in `pairalign-train` returns [`Result`].

use std::path::PathBuf;

/// Everything that can go wrong while setting up, running, saving or resuming a training run.
/// The messages of the variants shared with `pairalign-models` read as that crate's do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Building, loading, saving or running a model or tokenizer failed (a tokenizer folder
    /// that does not load, a mismatched encoder).
    #[error(transparent)]
    Model(#[from] pairalign_models::Error),

    /// A tensor operation failed inside candle (shape mismatch, device error, ...).
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),

    /// Reading or writing a run's files (checkpoint, log, config file) failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or folder that was being read or written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A run config holds a value the loop cannot run, or a warm start does not fit the run.
    #[error("bad model config: {0}")]
    BadConfig(String),

    /// A run config file could not be read.
    #[error("cannot read {}", path.display())]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },

    /// A run config file is not valid JSON or names unknown fields.
    #[error("{}: {detail}", path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What the JSON reader said.
        detail: String,
    },

    /// A training checkpoint is incomplete or does not belong to this run (missing optimizer
    /// tensors, unreadable state file, another model config, other data).
    #[error("bad checkpoint: {0}")]
    BadCheckpoint(String),

    /// Training data could not be read (the feature cache, or the corpus it is built from).
    #[error("training data: {0}")]
    Data(#[from] pairalign_datasets::Error),

    /// The path given as training data is neither a feature cache, a synthetic manifest nor a
    /// folder of audio.
    #[error("--data {}: not a feature cache (.feat), a manifest.jsonl or a folder", .0.display())]
    NotTrainingData(PathBuf),

    /// Inputs to an objective do not fit together (rows against conditions, an empty batch).
    #[error("bad tokenizer input: {0}")]
    BadInput(String),
}

/// `Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
