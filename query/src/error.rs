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
    /// The clip file cannot be decoded (not audio, damaged, empty).
    #[error(transparent)]
    Decode(#[from] pairalign_datasets::Error),
    /// The tokenizer failed on the clip.
    #[error("tokenizing the clip failed: {0}")]
    Tokenize(#[from] pairalign_models::Error),
    /// Adding to the archive failed as a whole (database, tokenizer mismatch, options); single
    /// bad files are listed in the indexing report instead.
    #[error(transparent)]
    Index(#[from] pairalign_indexer::Error),
    /// The engine rejected the search (bad options) or could not read the database.
    #[error(transparent)]
    Engine(#[from] pairalign_engine::Error),
}
