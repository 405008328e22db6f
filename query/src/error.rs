//! The query crate's error type.

/// Result alias used across the query crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can make a query by example fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The clip is shorter than [`crate::MIN_CLIP_S`] or longer than [`crate::MAX_CLIP_S`].
    #[error("the clip is {seconds:.2} s long; queries must be {min} s to {max} s")]
    ClipLength {
        /// Length of the clip given.
        seconds: f64,
        /// Shortest accepted clip.
        min: f64,
        /// Longest accepted clip.
        max: f64,
    },
    /// The database records no tokenizer (it holds imported tokens; search it with tokens), or
    /// another one than the caller's (different id or weights hash): the strings would not be
    /// comparable.
    #[error("tokenizer mismatch: {0}")]
    TokenizerMismatch(String),
    /// A metadata filter does not parse, names an unknown field, or the database has no
    /// catalog to filter with.
    #[error("bad filter: {0}")]
    Filter(String),
    /// The clip file cannot be decoded (not audio, damaged, empty).
    #[error(transparent)]
    Decode(#[from] pairalign_datasets::Error),
    /// The tokenizer failed on the clip.
    #[error("tokenizing the clip failed: {0}")]
    Tokenize(#[from] pairalign_models::Error),
    /// The metadata catalog cannot be read, or is damaged (see
    /// [`pairalign_catalog::Error::CatalogDamaged`]).
    #[error(transparent)]
    Catalog(pairalign_catalog::Error),
    /// An option is out of range (a report's comparison without files to sample, for example).
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The engine rejected the search (bad options) or could not read the database.
    #[error(transparent)]
    Engine(#[from] pairalign_engine::Error),
}

impl From<pairalign_catalog::Error> for Error {
    /// A filter that does not parse is the caller's [`Error::Filter`]; the rest stay catalog
    /// errors.
    fn from(error: pairalign_catalog::Error) -> Self {
        match error {
            pairalign_catalog::Error::Filter(why) => Error::Filter(why),
            other => Error::Catalog(other),
        }
    }
}
