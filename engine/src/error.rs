//! The engine's error type: every failure a caller can act on, naming the file and section where
//! one is involved.

use std::path::{Path, PathBuf};

/// Result alias used across the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system I/O call on `path` failed (open, read, write, fsync, rename, map).
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file exists but its contents are damaged or inconsistent: truncated, a checksum mismatch,
    /// an offset or length out of bounds, a value outside its documented range. `section` names the
    /// part of the file (for example `header`, `tokens`, `postings`) and `reason` what was wrong.
    #[error("{}: corrupt {section}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        section: &'static str,
        reason: String,
    },
    /// A file was written in a format version this build cannot read.
    #[error(
        "{}: format version {found} is not supported (this build reads versions {oldest} to {current})",
        path.display()
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        oldest: u32,
        current: u32,
    },
    /// `DatabaseWriter::create` was pointed at a directory that already holds a database.
    #[error("{}: a database already exists here", path.display())]
    AlreadyExists { path: PathBuf },
    /// `DatabaseWriter::open` or `Searcher::open` was pointed at a directory without a MANIFEST.
    #[error("{}: not a PairAlign database (no MANIFEST)", path.display())]
    NotADatabase { path: PathBuf },
    /// Another process holds the database's write lock.
    #[error("{}: the database is locked by another writer", path.display())]
    Locked { path: PathBuf },
    /// A token is not below the database's vocabulary size.
    #[error(
        "symbol {symbol} at position {position} is outside the vocabulary (size {vocab_size})"
    )]
    SymbolOutOfVocabulary {
        symbol: u16,
        position: usize,
        vocab_size: u32,
    },
    /// A document id is already present in the database (or twice in one batch).
    #[error("document id {0:?} already exists")]
    DuplicateId(String),
    /// The database was built with another tokenizer (different id or weights hash), holds
    /// documents that no tokenizer recorded (imported tokens), or has a smaller vocabulary than
    /// the tokenizer: mixing strings from two tokenizers would make every distance meaningless
    /// ([`crate::Searcher::accepts_tokenizer`]).
    #[error("tokenizer mismatch: {0}")]
    TokenizerMismatch(String),
    /// A document id named by the caller is not in the database.
    #[error("document id {0:?} not found")]
    NotFound(String),
    /// A caller-supplied value is out of range or inconsistent (for example `times_ms` with a
    /// different length than `tokens`, or `q` of 0).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A corruption error for `section` of the file at `path`.
    pub fn corrupt(
        path: impl AsRef<Path>,
        section: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corrupt {
            path: path.as_ref().to_path_buf(),
            section,
            reason: reason.into(),
        }
    }
}
