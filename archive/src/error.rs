//! The facade's error type: one flat enum for everything adding to and searching an archive can
//! fail with, so that an application (or the HTTP server) matches on what happened, not on which
//! crate said it.

/// Result alias used across the facade.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything adding to or searching an archive can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The clip is shorter than [`pairalign_query::MIN_CLIP_S`] or longer than
    /// [`pairalign_query::MAX_CLIP_S`].
    #[error("the clip is {seconds:.2} s long; queries must be {min} s to {max} s")]
    ClipLength {
        /// Length of the clip given.
        seconds: f64,
        /// Shortest accepted clip.
        min: f64,
        /// Longest accepted clip.
        max: f64,
    },
    /// The database was built with another tokenizer (different id or weights hash), holds
    /// imported tokens, or records none to search audio with.
    #[error("tokenizer mismatch: {0}")]
    TokenizerMismatch(String),
    /// A metadata filter does not parse, names an unknown field, or the database has no
    /// catalog to filter with.
    #[error("bad filter: {0}")]
    Filter(String),
    /// Metadata (title, tags, id) breaks a limit.
    #[error("invalid metadata: {0}")]
    InvalidMetadata(String),
    /// The id asked for a new asset belongs to a live document.
    #[error("the id {0:?} is taken")]
    IdTaken(String),
    /// The same content (same BLAKE3 hash) is already indexed under another id.
    #[error("the same content is already indexed as {of:?}")]
    Duplicate {
        /// The id of the document holding that content.
        of: String,
    },
    /// The audio cannot be decoded (not audio, damaged, empty), or gives no token.
    #[error(transparent)]
    Decode(#[from] pairalign_datasets::Error),
    /// The tokenizer failed.
    #[error("tokenizing failed: {0}")]
    Tokenize(#[from] pairalign_models::Error),
    /// The metadata catalog cannot be read or written, or is damaged
    /// ([`pairalign_catalog::Error::CatalogDamaged`]: `pairalign repair` rebuilds it).
    #[error(transparent)]
    Catalog(pairalign_catalog::Error),
    /// The engine rejected the request (bad options or tokens) or could not read or write the
    /// database.
    #[error(transparent)]
    Engine(pairalign_engine::Error),
    /// An option is out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The indexer's thread pool could not be started.
    #[error("cannot start the thread pool: {0}")]
    ThreadPool(String),
}

impl From<pairalign_engine::Error> for Error {
    fn from(error: pairalign_engine::Error) -> Self {
        match error {
            pairalign_engine::Error::TokenizerMismatch(why) => Error::TokenizerMismatch(why),
            other => Error::Engine(other),
        }
    }
}

impl From<pairalign_catalog::Error> for Error {
    fn from(error: pairalign_catalog::Error) -> Self {
        match error {
            pairalign_catalog::Error::Filter(why) => Error::Filter(why),
            pairalign_catalog::Error::Engine(e) => e.into(),
            other => Error::Catalog(other),
        }
    }
}

impl From<pairalign_query::Error> for Error {
    fn from(error: pairalign_query::Error) -> Self {
        use pairalign_query::Error as Q;
        match error {
            Q::ClipLength { seconds, min, max } => Error::ClipLength { seconds, min, max },
            Q::TokenizerMismatch(why) => Error::TokenizerMismatch(why),
            Q::Filter(why) => Error::Filter(why),
            Q::Decode(e) => Error::Decode(e),
            Q::Tokenize(e) => Error::Tokenize(e),
            Q::Catalog(e) => e.into(),
            Q::InvalidOption(why) => Error::InvalidOption(why),
            Q::Engine(e) => e.into(),
        }
    }
}

impl From<pairalign_indexer::Error> for Error {
    fn from(error: pairalign_indexer::Error) -> Self {
        use pairalign_indexer::Error as I;
        match error {
            I::Engine(e) => e.into(),
            I::Catalog(e) => e.into(),
            I::InvalidOption(why) => Error::InvalidOption(why),
            I::ThreadPool(e) => Error::ThreadPool(e.to_string()),
        }
    }
}
