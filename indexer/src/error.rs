//! The indexer's error type: what stops a whole indexing run. A single bad file never does: it is
//! reported in [`crate::IndexReport::failed`] and skipped.

/// Result alias used across the indexer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that stops an indexing run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed: it cannot be opened or created, or committing a batch failed (disk
    /// full, lock held by another writer, corrupt segment). The batch being committed is lost; all
    /// earlier batches are kept. [`pairalign_engine::Error::TokenizerMismatch`] when the database
    /// was built with another tokenizer or holds imported tokens.
    #[error(transparent)]
    Engine(#[from] pairalign_engine::Error),
    /// The metadata catalog cannot be opened, read or written, or is damaged
    /// ([`pairalign_catalog::Error::CatalogDamaged`]: `pairalign repair` rebuilds it).
    #[error(transparent)]
    Catalog(#[from] pairalign_catalog::Error),
    /// An option is out of range (for example a window shorter than 0.1 s).
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The thread pool could not be started.
    #[error("cannot start the thread pool: {0}")]
    ThreadPool(#[from] rayon::ThreadPoolBuildError),
}

impl Error {
    /// Whether the database was built with another tokenizer (or holds imported tokens).
    pub fn is_tokenizer_mismatch(&self) -> bool {
        matches!(
            self,
            Error::Engine(pairalign_engine::Error::TokenizerMismatch(_))
        )
    }
}
