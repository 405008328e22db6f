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
    /// The metadata catalog is damaged or disagrees with the database: a file whose checksum
    /// does not match, a file missing (`meta.json` among them), counts that do not add up, a
    /// panic of the catalog library on its files, or a live document without its entry (or
    /// with another token count). Nothing is answered from it and no writer touches it;
    /// `pairalign repair --db DIR` rebuilds it from the database and the files' sidecars and
    /// keeps the damaged folder beside it.
    #[error(
        "the metadata catalog {} is damaged: {}; `pairalign repair --db {}` rebuilds it \
         (the damaged folder is kept)",
        .catalog.display(),
        .problems.join("; "),
        .db.display()
    )]
    CatalogDamaged {
        /// The catalog folder.
        catalog: std::path::PathBuf,
        /// The database folder, for the repair command.
        db: std::path::PathBuf,
        /// What is wrong, each naming the file or the document concerned.
        problems: Vec<String>,
    },
    /// A metadata filter does not parse or names an unknown field.
    #[error("bad filter: {0}")]
    Filter(String),
    /// The thread pool could not be started.
    #[error("cannot start the thread pool: {0}")]
    ThreadPool(#[from] rayon::ThreadPoolBuildError),
}
