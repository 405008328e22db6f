//! `pairalign.Reader`: an archive opened read only, without its write lock, alongside the
//! process that writes it (or none): what a shard of a sharded search holds. It searches the
//! state committed when it was opened or last reloaded; `reload()` moves it to a newer commit.

use std::path::PathBuf;
use std::sync::{PoisonError, RwLock};

use numpy::{AllowTypeChange, PyArrayLike1};
use pairalign_archive::{ArchiveReader, ArchiveTokenizer};
use pairalign_engine::manifest::Manifest;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::error::{Error, Result};
use crate::read::{self, Snapshot};
use crate::tokenize::{self, PyQuery};

/// What calls on a closed reader say.
const CLOSED: &str = "the reader is closed";

/// An archive opened read only (no lock: a writer may be adding to it meanwhile). Searches see
/// the state committed when it was opened, until `reload()`.
#[pyclass(name = "Reader", module = "pairalign", frozen)]
pub struct PyReader {
    dir: PathBuf,
    tokenizer: ArchiveTokenizer,
    snapshot: RwLock<Option<ArchiveReader>>,
}

impl std::fmt::Debug for PyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyReader").field("dir", &self.dir).finish()
    }
}

impl Snapshot for PyReader {
    fn snapshot(&self) -> Result<ArchiveReader> {
        let snapshot = self.snapshot.read().unwrap_or_else(PoisonError::into_inner);
        snapshot.clone().ok_or_else(|| Error::Closed(CLOSED.into()))
    }
}

impl PyReader {
    fn open(dir: PathBuf, tokenizer: Option<String>, phases: Option<usize>) -> Result<PyReader> {
        let tokenizer = tokenize::for_archive(&dir, tokenizer.as_deref(), phases)?;
        let reader = ArchiveReader::open_with(&dir, tokenizer.clone())?;
        Ok(PyReader {
            dir,
            tokenizer,
            snapshot: RwLock::new(Some(reader)),
        })
    }
}

#[pymethods]
impl PyReader {
    /// Opens the archive in `dir` read only. `tokenizer` (for clip searches): the one the
    /// archive records when None, else a name or weights folder (a clip search with another
    /// than the recorded one raises `TokenizerMismatchError`). Raises `InvalidInputError` when
    /// `dir` holds no database. `phases`: the grid phases a clip search tokenizes the clip at,
    /// as `Archive`'s.
    #[new]
    #[pyo3(signature = (dir, tokenizer=None, *, phases=None))]
    fn new(
        py: Python<'_>,
        dir: PathBuf,
        tokenizer: Option<String>,
        phases: Option<usize>,
    ) -> PyResult<Self> {
        Ok(py.detach(|| PyReader::open(dir, tokenizer, phases))?)
    }

    /// The archive's folder.
    #[getter]
    fn path(&self) -> PathBuf {
        self.dir.clone()
    }

    /// The MANIFEST generation of the state it searches (every commit increments it).
    #[getter]
    fn generation(&self) -> PyResult<u64> {
        Ok(self.snapshot()?.database().generation())
    }

    /// Moves to the latest committed state when it is newer than the one searched (a writer
    /// committed since): True when it moved. Cheap when nothing changed (reads the MANIFEST).
    fn reload(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(py.detach(|| -> Result<bool> {
            let current = self.snapshot()?.database().generation();
            if Manifest::read(&self.dir)?.generation == current {
                return Ok(false);
            }
            let reader = ArchiveReader::open_with(&self.dir, self.tokenizer.clone())?;
            let moved = reader.database().generation() != current;
            let mut snapshot = self
                .snapshot
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if snapshot.is_none() {
                return Err(Error::Closed(CLOSED.into()));
            }
            *snapshot = Some(reader);
            Ok(moved)
        })?)
    }

    /// Where the clip given as mono samples (0.5 to 60 s, any rate) occurs; as
    /// `Archive.search_audio`.
    #[pyo3(signature = (samples, rate, *, k=None, top=None, filter=None))]
    #[allow(clippy::too_many_arguments)] // The Python signature's keywords.
    fn search_audio<'py>(
        &self,
        py: Python<'py>,
        samples: PyArrayLike1<'py, f32, AllowTypeChange>,
        rate: u32,
        k: Option<&Bound<'py, PyAny>>,
        top: Option<usize>,
        filter: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        read::search_audio(self, py, &samples, rate, k, top, filter)
    }

    /// Where the clip in the audio file at `path` occurs; as `search_audio`.
    #[pyo3(signature = (path, *, k=None, top=None, filter=None))]
    fn search_file<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
        k: Option<&Bound<'py, PyAny>>,
        top: Option<usize>,
        filter: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        read::search_file(self, py, path, k, top, filter)
    }

    /// Where a clip tokenized by `Tokenizer.query` occurs; as `search_audio` (what each shard
    /// of a sharded search answers).
    #[pyo3(signature = (query, *, k=None, top=None, filter=None))]
    fn search_query<'py>(
        &self,
        py: Python<'py>,
        query: PyRef<'py, PyQuery>,
        k: Option<&Bound<'py, PyAny>>,
        top: Option<usize>,
        filter: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        read::search_query(self, py, &query, k, top, filter)
    }

    /// Where a token string occurs; as `Archive.search_tokens`.
    #[pyo3(signature = (tokens, *, k=None, top=None, filter=None))]
    fn search_tokens<'py>(
        &self,
        py: Python<'py>,
        tokens: &Bound<'py, PyAny>,
        k: Option<&Bound<'py, PyAny>>,
        top: Option<usize>,
        filter: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        read::search_tokens(self, py, tokens, k, top, filter)
    }

    /// The catalog entry of a live document, or None.
    fn asset<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        read::asset(self, py, id)
    }

    /// The catalog entries that `filter` selects (all when None), sorted by id, one page.
    #[pyo3(signature = (filter=None, *, offset=0, limit=100))]
    fn assets<'py>(
        &self,
        py: Python<'py>,
        filter: Option<String>,
        offset: usize,
        limit: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        read::assets(self, py, filter, offset, limit)
    }

    /// Documents, hours, tokens per second and bytes.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        read::stats(self, py)
    }

    /// Drops the snapshot (unmapping the segments); later calls raise `pairalign.Error`.
    fn close(&self) {
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, PyTuple>) -> bool {
        self.close();
        false
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let dir = PyString::new(py, &self.dir.to_string_lossy()).repr()?;
        Ok(format!("Reader({dir})"))
    }
}
