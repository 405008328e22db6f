//! `pairalign.Archive`: the facade ([`pairalign_archive::Archive`]) for Python. Writes go to
//! the one writer, one at a time; searches and reads go to a snapshot of what is committed,
//! taken after every write, so that Python threads search while another one adds. Every call
//! that does work releases the GIL.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError, RwLock};

use numpy::{AllowTypeChange, PyArrayLike1};
use pairalign_archive::{Archive, ArchiveReader};

use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple, PyType};

use crate::convert::{self, to_python};
use crate::error::{Error, Result};
use crate::read::{self, Snapshot};
use crate::tokenize::{self, PyQuery};

/// What a closed archive's calls say.
const CLOSED: &str = "the archive is closed";

/// What calls say after one panicked while writing: the writer may be half way through a
/// change, so it is not used again (what was committed is on disk; open the folder again).
const POISONED: &str =
    "an earlier call on this archive failed unexpectedly (a panic); open it again";

/// An audio archive: a database folder, its metadata catalog and its tokenizer, opened for
/// adding and searching. The folder is created on first use. One process writes a folder at a
/// time (its lock is held until `close()` or the object is gone).
#[pyclass(name = "Archive", module = "pairalign", frozen)]
pub struct PyArchive {
    dir: PathBuf,
    tokenizer: String,
    /// The writer; `None` once closed.
    writer: Mutex<Option<Archive>>,
    /// What searches and reads use: the writer's snapshot after its last write.
    snapshot: RwLock<Option<ArchiveReader>>,
}

impl std::fmt::Debug for PyArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyArchive")
            .field("dir", &self.dir)
            .field("tokenizer", &self.tokenizer)
            .finish()
    }
}

impl PyArchive {
    fn open_archive(
        dir: PathBuf,
        tokenizer: Option<String>,
        phases: Option<usize>,
    ) -> Result<PyArchive> {
        let tokenizer = tokenize::for_archive(&dir, tokenizer.as_deref(), phases)?;
        let archive = Archive::open_with(&dir, tokenizer)?;
        Ok(PyArchive {
            dir,
            tokenizer: archive.tokenizer().id().to_string(),
            snapshot: RwLock::new(Some(archive.reader())),
            writer: Mutex::new(Some(archive)),
        })
    }

    /// Runs `write` on the writer, then publishes the snapshot of what is committed (also
    /// after an error: a bulk add commits batch by batch).
    fn write<T>(&self, write: impl FnOnce(&mut Archive) -> Result<T>) -> Result<T> {
        let mut writer = self
            .writer
            .lock()
            .map_err(|_| Error::Closed(POISONED.into()))?;
        let archive = writer
            .as_mut()
            .ok_or_else(|| Error::Closed(CLOSED.into()))?;
        let result = write(archive);
        let reader = archive.reader();
        *self
            .snapshot
            .write()
            .map_err(|_| Error::Closed(POISONED.into()))? = Some(reader);
        result
    }
}

impl Snapshot for PyArchive {
    fn snapshot(&self) -> Result<ArchiveReader> {
        let snapshot = self
            .snapshot
            .read()
            .map_err(|_| Error::Closed(POISONED.into()))?;
        snapshot.clone().ok_or_else(|| Error::Closed(CLOSED.into()))
    }
}

#[pymethods]
impl PyArchive {
    /// Opens the archive in `dir`, creating it when missing. `tokenizer`: for a new archive,
    /// `pairalign-v3` (the default), `pairalign-v2`, `pairalign`, `vq`, `vq-v2` or a weights
    /// folder; an existing one is opened with the tokenizer it records (naming another raises
    /// `TokenizerMismatchError`). `phases`: the grid phases a clip search tokenizes the clip
    /// at (PairAlign models; default the model's, 4 for the shipped ones; 2 halves the search
    /// for a point or two of recall); files are indexed as always.
    #[new]
    #[pyo3(signature = (dir, tokenizer=None, *, phases=None))]
    fn new(
        py: Python<'_>,
        dir: PathBuf,
        tokenizer: Option<String>,
        phases: Option<usize>,
    ) -> PyResult<Self> {
        Ok(py.detach(|| PyArchive::open_archive(dir, tokenizer, phases))?)
    }

    /// The same as `Archive(dir, tokenizer, phases=phases)`.
    #[classmethod]
    #[pyo3(signature = (dir, tokenizer=None, *, phases=None))]
    fn open(
        _cls: &Bound<'_, PyType>,
        py: Python<'_>,
        dir: PathBuf,
        tokenizer: Option<String>,
        phases: Option<usize>,
    ) -> PyResult<Self> {
        PyArchive::new(py, dir, tokenizer, phases)
    }

    /// The archive's folder.
    #[getter]
    fn path(&self) -> PathBuf {
        self.dir.clone()
    }

    /// The tokenizer's id (`pairalign-v2`, ...).
    #[getter]
    fn tokenizer(&self) -> &str {
        &self.tokenizer
    }

    /// Adds the audio file or folder at `path`. Without `id`: every audio file under it, each
    /// under its canonical path (files already indexed are skipped, changed ones re-indexed, bad
    /// ones listed under `failed`); returns the index report. With `id`: the one file under that
    /// id (its path not recorded); returns its catalog entry, and raises `ConflictError` when
    /// the id is taken or the same content is indexed. `title` and `tags` go to the catalog
    /// (for filters).
    #[pyo3(signature = (path, id=None, *, title=None, tags=None))]
    fn add_file<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
        id: Option<String>,
        title: Option<String>,
        tags: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let metadata = convert::metadata(title, tags, None);
        match id {
            None => {
                let report = py.detach(|| self.write(|a| Ok(a.add_file(&path, &metadata)?)))?;
                to_python(py, &report)
            }
            Some(id) => {
                let asset =
                    py.detach(|| self.write(|a| Ok(a.add_upload(Some(&id), &path, &metadata)?)))?;
                to_python(py, &asset)
            }
        }
    }

    /// Adds a recording given as mono samples (a 1-D array of floats in [-1, 1], any rate)
    /// under `id`; returns its catalog entry. Raises `ConflictError` when the id is taken or the
    /// same samples are indexed.
    #[pyo3(signature = (samples, rate, id, *, title=None, tags=None, file_name=None))]
    #[allow(clippy::too_many_arguments)] // The Python signature's keywords.
    fn add_samples<'py>(
        &self,
        py: Python<'py>,
        samples: PyArrayLike1<'py, f32, AllowTypeChange>,
        rate: u32,
        id: String,
        title: Option<String>,
        tags: Option<Vec<String>>,
        file_name: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let samples = convert::samples(&samples);
        let metadata = convert::metadata(title, tags, file_name);
        let asset =
            py.detach(|| self.write(|a| Ok(a.add_samples(&id, &samples, rate, &metadata)?)))?;
        to_python(py, &asset)
    }

    /// Where the clip given as mono samples (0.5 to 60 s, any rate) occurs: a dict with the
    /// HTTP API's fields (`hits`: `id`, `start`, `end`, `start_ms`, `end_ms`, `distance`,
    /// `norm_distance`; `query_tokens`, `k`, `lossless`, `tokenize_ms`, `search_ms`). `k`: an
    /// integer edit budget or a fraction of the query's length (default 0.9); `top`: hits at
    /// most (default 10); `filter`: a metadata filter (`tags:interview AND duration:>60`).
    #[pyo3(signature = (samples, rate, *, k=None, top=None, filter=None))]
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

    /// Where a token string (a sequence of integers, such as `tokenize`'s tokens) occurs; as
    /// `search_audio`, with the engine's default `k` of 0.4 and `tokenize_ms` None. Raises
    /// `InvalidInputError` for a symbol outside the archive's vocabulary.
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

    /// Where a clip tokenized by `Tokenizer.query` occurs; as `search_audio`.
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

    /// The catalog entry of a live document, or None.
    fn asset<'py>(&self, py: Python<'py>, id: String) -> PyResult<Bound<'py, PyAny>> {
        read::asset(self, py, id)
    }

    /// The catalog entries that `filter` selects (all when None), sorted by id, one page:
    /// `{"total", "assets"}`.
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

    /// Deletes documents by id, committed before it returns: `{"deleted": [...], "missing":
    /// [...]}`.
    fn delete<'py>(&self, py: Python<'py>, ids: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
        let report = py.detach(|| self.write(|a| Ok(a.delete(&ids)?)))?;
        to_python(py, &report)
    }

    /// Merges all segments into one, dropping deleted documents.
    fn compact(&self, py: Python<'_>) -> PyResult<()> {
        Ok(py.detach(|| self.write(|a| Ok(a.compact()?)))?)
    }

    /// Documents, hours, tokens per second and bytes (`pairalign report`'s figures).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        read::stats(self, py)
    }

    /// Releases the folder's write lock (also after a failed call); every later call raises
    /// `pairalign.Error`.
    fn close(&self, py: Python<'_>) {
        py.detach(|| {
            let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            *self
                .snapshot
                .write()
                .unwrap_or_else(PoisonError::into_inner) = None;
            *writer = None;
        });
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let repr = |s: &str| -> PyResult<String> { Ok(PyString::new(py, s).repr()?.to_string()) };
        Ok(format!(
            "Archive({}, tokenizer={})",
            repr(&self.dir.to_string_lossy())?,
            repr(&self.tokenizer)?
        ))
    }
}
