//! The crate's error type: every fallible call in `pairalign-models` returns [`Result`].

use std::path::PathBuf;

/// Everything that can go wrong while building, loading, saving or running a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed inside candle (shape mismatch, device error, ...).
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),

    /// Reading or writing a tokenizer's files failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or folder that was being read or written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A model config holds a value outside its allowed range, or cannot be parsed.
    #[error("bad model config: {0}")]
    BadConfig(String),

    /// A tokenizer folder's weights do not match what its config describes (missing, extra or
    /// mis-shaped tensors), or the weights file is not valid safetensors.
    #[error("weights in {path} do not match the model: {detail}")]
    WeightsMismatch {
        /// The weights file.
        path: PathBuf,
        /// What was wrong, naming the tensor.
        detail: String,
    },

    /// Input given to a tokenizer is malformed (for example a log-mel whose length is not a
    /// multiple of the number of mel bins).
    #[error("bad tokenizer input: {0}")]
    BadInput(String),

    /// A shipped tokenizer was asked for by name in a build that does not hold its weights.
    #[error(
        "the {name} tokenizer is not shipped in this build (no weights in {dir}); train one with \
         `pairalign train {name}` and pass its folder to --tokenizer, or use --tokenizer vq"
    )]
    NotShipped {
        /// The name asked for (`pairalign`).
        name: String,
        /// The folder its weights would be compiled from.
        dir: String,
    },

    /// A folder given as a tokenizer is neither a VQ nor a PairAlign checkpoint.
    #[error("{path} is not a tokenizer folder: {detail}")]
    NotATokenizer {
        /// The folder.
        path: PathBuf,
        /// What was missing or unrecognized.
        detail: String,
    },
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
