//! The indexer's error type: what stops a whole indexing run. A single bad file never does: it is
//! reported in [`crate::IndexReport::failed`] and skipped.

/// Result alias used across the indexer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that stops an indexing run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed: it cannot be opened or created, or committing a batch failed (disk
    /// full, lock held by another writer, corrupt segment). The batch being committed is lost; all
    /// earlier batches are kept.
    #[error(transparent)]
    Engine(#[from] pairalign_engine::Error),
    /// The database was built with another tokenizer (different id or weights hash), or holds
    /// documents that no tokenizer recorded (imported tokens): mixing strings from two
    /// tokenizers would make every distance meaningless.
    #[error("tokenizer mismatch: {0}")]
    TokenizerMismatch(String),
    /// An option is out of range (for example a window shorter than 0.1 s).
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The metadata catalog (`<db>/catalog/`) cannot be opened, read or written.
    #[error("catalog: {0}")]
    Catalog(String),
    /// A metadata filter does not parse or names an unknown field.
    #[error("bad filter {0}")]
    Filter(String),
    /// The thread pool could not be started.
    #[error("cannot start the thread pool: {0}")]
    ThreadPool(#[from] rayon::ThreadPoolBuildError),
}
