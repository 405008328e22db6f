//! Rust errors on their way to Python: the crate's [`Error`], the exception classes of the
//! `pairalign` module ([`exceptions`]), and which class each error raises ([`Error::kind`]). An
//! exception's message is the Rust error's, word for word.

use pyo3::exceptions::{PyException, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a call from Python can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The archive failed: adding, searching, deleting or opening.
    #[error(transparent)]
    Archive(#[from] pairalign_archive::Error),
    /// A tokenizer could not be loaded, or failed ([`crate::tokenize`]).
    #[error(transparent)]
    Tokenizer(#[from] pairalign_models::Error),
    /// Audio given to [`crate::tokenize`] could not be read or resampled.
    #[error(transparent)]
    Audio(#[from] pairalign_datasets::Error),
    /// An argument checked here, before any Rust library sees it, is out of range (`k`, `top`,
    /// a token above 65,535).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A file cannot be indexed (not audio, damaged, gives no token): the reason.
    #[error("{0}")]
    Unindexable(String),
    /// The archive was closed ([`crate::archive::PyArchive::close`]) or an earlier call on it
    /// panicked.
    #[error("{0}")]
    Closed(String),
}

impl From<pairalign_query::Error> for Error {
    fn from(error: pairalign_query::Error) -> Self {
        Error::Archive(error.into())
    }
}

impl From<pairalign_indexer::Error> for Error {
    fn from(error: pairalign_indexer::Error) -> Self {
        Error::Archive(error.into())
    }
}

impl From<pairalign_engine::Error> for Error {
    fn from(error: pairalign_engine::Error) -> Self {
        Error::Archive(error.into())
    }
}

/// Which exception class an error raises: one per kind of failure a caller may handle
/// differently, all under `pairalign.Error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Bad arguments: clip length, options, filter, metadata, tokens outside the vocabulary.
    InvalidInput,
    /// Audio that cannot be decoded (a subclass of `InvalidInput`).
    Decode,
    /// The id is taken, the content is indexed under another id, or another writer holds the
    /// database.
    Conflict,
    /// The database was built with another tokenizer.
    TokenizerMismatch,
    /// An operating-system I/O call failed (a file missing, a full disk).
    Io,
    /// A database, catalog or weights file is damaged or of an unreadable version.
    Corrupt,
    /// Anything else (the tokenizer's tensor library, a thread pool, a closed archive).
    Other,
}

impl Error {
    /// The exception class this error raises.
    pub fn kind(&self) -> Kind {
        match self {
            Error::Archive(e) => archive_kind(e),
            Error::Tokenizer(e) => models_kind(e),
            Error::Audio(e) => datasets_kind(e),
            Error::InvalidInput(_) => Kind::InvalidInput,
            Error::Unindexable(_) => Kind::Decode,
            Error::Closed(_) => Kind::Other,
        }
    }
}

fn archive_kind(error: &pairalign_archive::Error) -> Kind {
    use pairalign_archive::Error as A;
    match error {
        A::ClipLength { .. } | A::Filter(_) | A::InvalidMetadata(_) | A::InvalidOption(_) => {
            Kind::InvalidInput
        }
        A::TokenizerMismatch(_) => Kind::TokenizerMismatch,
        A::IdTaken(_) | A::Duplicate { .. } => Kind::Conflict,
        A::Decode(e) => datasets_kind(e),
        A::Tokenize(e) => models_kind(e),
        A::Catalog(e) => catalog_kind(e),
        A::Engine(e) => engine_kind(e),
        A::ThreadPool(_) => Kind::Other,
    }
}

fn catalog_kind(error: &pairalign_catalog::Error) -> Kind {
    use pairalign_catalog::Error as C;
    match error {
        C::Engine(e) => engine_kind(e),
        // The catalog library's own failures are reading and writing its files.
        C::Catalog(_) => Kind::Io,
        C::CatalogDamaged { .. } => Kind::Corrupt,
        C::Filter(_) => Kind::InvalidInput,
    }
}

fn engine_kind(error: &pairalign_engine::Error) -> Kind {
    use pairalign_engine::Error as E;
    match error {
        E::Io { .. } => Kind::Io,
        E::Corrupt { .. } | E::UnsupportedVersion { .. } => Kind::Corrupt,
        E::Locked { .. } | E::DuplicateId(_) | E::AlreadyExists { .. } => Kind::Conflict,
        E::TokenizerMismatch(_) => Kind::TokenizerMismatch,
        E::NotADatabase { .. }
        | E::SymbolOutOfVocabulary { .. }
        | E::NotFound(_)
        | E::InvalidInput(_) => Kind::InvalidInput,
    }
}

fn datasets_kind(error: &pairalign_datasets::Error) -> Kind {
    use pairalign_datasets::Error as D;
    match error {
        D::Io { .. } => Kind::Io,
        D::Empty { .. }
        | D::NotAudio { .. }
        | D::Truncated { .. }
        | D::NoChannels { .. }
        | D::BadSampleRate { .. }
        | D::TooLong { .. } => Kind::Decode,
        D::Corrupt { .. } | D::UnsupportedVersion { .. } => Kind::Corrupt,
        D::InvalidInput(_) => Kind::InvalidInput,
        D::MissingEngine { .. } | D::Engine { .. } => Kind::Other,
    }
}

fn models_kind(error: &pairalign_models::Error) -> Kind {
    use pairalign_models::Error as M;
    match error {
        M::Io { .. } => Kind::Io,
        M::BadConfig(_) | M::WeightsMismatch { .. } => Kind::Corrupt,
        M::BadInput(_) | M::NotShipped { .. } | M::NotATokenizer { .. } => Kind::InvalidInput,
        M::Candle(_) => Kind::Other,
    }
}

/// The exception classes, created once per interpreter by [`exceptions`].
#[derive(Debug)]
pub struct Exceptions {
    /// `pairalign.Error`: the base of all of them.
    pub error: Py<PyType>,
    invalid_input: Py<PyType>,
    decode: Py<PyType>,
    conflict: Py<PyType>,
    tokenizer_mismatch: Py<PyType>,
    io: Py<PyType>,
    corrupt: Py<PyType>,
}

impl Exceptions {
    /// The classes by the name the module gives them.
    pub fn named(&self) -> [(&'static str, &Py<PyType>); 7] {
        [
            ("Error", &self.error),
            ("InvalidInputError", &self.invalid_input),
            ("DecodeError", &self.decode),
            ("ConflictError", &self.conflict),
            ("TokenizerMismatchError", &self.tokenizer_mismatch),
            ("IoError", &self.io),
            ("CorruptError", &self.corrupt),
        ]
    }

    fn class(&self, kind: Kind) -> &Py<PyType> {
        match kind {
            Kind::InvalidInput => &self.invalid_input,
            Kind::Decode => &self.decode,
            Kind::Conflict => &self.conflict,
            Kind::TokenizerMismatch => &self.tokenizer_mismatch,
            Kind::Io => &self.io,
            Kind::Corrupt => &self.corrupt,
            Kind::Other => &self.error,
        }
    }
}

static EXCEPTIONS: PyOnceLock<Exceptions> = PyOnceLock::new();

/// The module's exception classes. Invalid input is also a `ValueError` and I/O also an
/// `OSError`, so that code catching the built-in classes keeps working; `pyo3`'s
/// `create_exception!` takes one base only, so the classes are made by calling `type`.
pub fn exceptions(py: Python<'_>) -> PyResult<&Exceptions> {
    EXCEPTIONS.get_or_try_init(py, || {
        let class = |name: &str, doc: &str, bases: Vec<Bound<'_, PyType>>| -> PyResult<_> {
            let namespace = PyDict::new(py);
            namespace.set_item("__module__", "pairalign")?;
            namespace.set_item("__doc__", doc)?;
            let bases = PyTuple::new(py, bases)?;
            let made = py
                .get_type::<PyType>()
                .call1((name, bases, namespace))?
                .cast_into::<PyType>()?;
            Ok(made.unbind())
        };
        let error = class(
            "Error",
            "Base class of every error PairAlign raises; the message is the Rust library's.",
            vec![py.get_type::<PyException>()],
        )?;
        let base = || error.bind(py).clone();
        let invalid_input = class(
            "InvalidInputError",
            "Bad arguments: clip length, options, filter, metadata, tokens outside the \
             vocabulary.",
            vec![base(), py.get_type::<PyValueError>()],
        )?;
        let decode = class(
            "DecodeError",
            "Audio that cannot be decoded: not audio, empty, damaged, too long.",
            vec![invalid_input.bind(py).clone()],
        )?;
        let conflict = class(
            "ConflictError",
            "The id is taken, the same content is indexed under another id, or another writer \
             holds the database.",
            vec![base()],
        )?;
        let tokenizer_mismatch = class(
            "TokenizerMismatchError",
            "The database was built with another tokenizer, or holds imported tokens.",
            vec![base()],
        )?;
        let io = class(
            "IoError",
            "An operating-system I/O call failed: a file missing or unreadable, a full disk.",
            vec![base(), py.get_type::<PyOSError>()],
        )?;
        let corrupt = class(
            "CorruptError",
            "A database, catalog or weights file is damaged or of an unreadable version.",
            vec![base()],
        )?;
        Ok(Exceptions {
            error,
            invalid_input,
            decode,
            conflict,
            tokenizer_mismatch,
            io,
            corrupt,
        })
    })
}

impl From<Error> for PyErr {
    fn from(error: Error) -> PyErr {
        let message = error.to_string();
        Python::attach(|py| match exceptions(py) {
            Ok(classes) => PyErr::from_type(classes.class(error.kind()).bind(py).clone(), message),
            Err(_) => PyRuntimeError::new_err(message),
        })
    }
}
