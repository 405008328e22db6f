//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong while evaluating.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tokenizer failed.
    #[error(transparent)]
    Model(#[from] pairalign_models::Error),

    /// The evaluation data could not be read (corpus, cache, an audio file).
    #[error(transparent)]
    Data(#[from] pairalign_datasets::Error),

    /// The temporary database of compaction or locate failed.
    #[error(transparent)]
    Engine(#[from] pairalign_engine::Error),

    /// A query of locate, or the archive report of compaction, failed.
    #[error(transparent)]
    Query(#[from] pairalign_query::Error),

    /// A file or folder of the evaluation (temporary data, `--out`) could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },

    /// A subject's name (`pairalign eval --tokenizer`) is malformed, or names weights of the
    /// wrong kind (the dense baseline and `vq-targets` need VQ weights).
    #[error("{0}")]
    BadSubject(String),

    /// The data or the options cannot run the protocol (too few clips, one view only, no
    /// recording long enough, a feature cache where audio is needed).
    #[error("cannot evaluate: {0}")]
    BadInput(String),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
