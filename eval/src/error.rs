//! The crate's error type.

/// What can go wrong while evaluating.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tokenizer failed.
    #[error(transparent)]
    Model(#[from] pairalign_models::Error),

    /// The evaluation data could not be read.
    #[error(transparent)]
    Data(#[from] pairalign_datasets::Error),

    /// The evaluation set cannot run the protocol (too few clips, one view only).
    #[error("cannot evaluate: {0}")]
    BadInput(String),
}

/// `Result` with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
