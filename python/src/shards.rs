//! Sharded archives from Python: `pairalign.ShardWriter` (the one writer of a distributed
//! indexing run: plans the files, adds what workers prepared with `Tokenizer.prepare_file`,
//! commits a batch per shard), `pairalign.shard_of` and `pairalign.shard_dirs`.

use std::path::PathBuf;
use std::sync::Mutex;

use pairalign_indexer::{Added, PreparedRecording, ShardWriter};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::convert::to_python;
use crate::error::{Error, Result};
use crate::tokenize;

/// What calls on a finished or closed writer say.
const CLOSED: &str = "the shard writer is finished or closed";

/// The writer of a sharded archive: one folder of `shards` databases, each document in the
/// shard a stable hash of its id names. Holds every shard's write lock until `finish()` or
/// `close()`.
#[pyclass(name = "ShardWriter", module = "pairalign", frozen)]
pub struct PyShardWriter {
    writer: Mutex<Option<ShardWriter>>,
}

impl std::fmt::Debug for PyShardWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyShardWriter").finish()
    }
}

impl PyShardWriter {
    fn with<T>(&self, work: impl FnOnce(&mut ShardWriter) -> Result<T>) -> Result<T> {
        let mut writer = self
            .writer
            .lock()
            .map_err(|_| Error::Closed(CLOSED.into()))?;
        work(
            writer
                .as_mut()
                .ok_or_else(|| Error::Closed(CLOSED.into()))?,
        )
    }
}

#[pymethods]
impl PyShardWriter {
    /// Opens the sharded archive in `dir` for writing, creating it with `shards` shards when
    /// missing (`shards` 0: the count it has). `tokenizer`: the one its documents are made
    /// with (default `pairalign-v3`); a shard that records another raises
    /// `TokenizerMismatchError`, another shard count `InvalidInputError`. A shard commits a
    /// batch (one segment) when it holds `batch_files` files or `batch_seconds` of audio.
    #[new]
    #[pyo3(signature = (dir, shards=0, *, tokenizer=None, batch_files=32, batch_seconds=1800.0))]
    fn new(
        py: Python<'_>,
        dir: PathBuf,
        shards: usize,
        tokenizer: Option<String>,
        batch_files: usize,
        batch_seconds: f64,
    ) -> PyResult<Self> {
        let name = tokenizer.unwrap_or_else(|| pairalign_models::shipped::DEFAULT.to_string());
        let writer = py.detach(|| -> Result<ShardWriter> {
            let tokenizer = tokenize::load(&name)?;
            Ok(ShardWriter::open_or_create(
                &dir,
                shards,
                tokenizer.as_ref(),
                batch_files,
                batch_seconds,
            )?)
        })?;
        Ok(PyShardWriter {
            writer: Mutex::new(Some(writer)),
        })
    }

    /// How many shards the archive has.
    #[getter]
    fn shards(&self) -> PyResult<usize> {
        Ok(self.with(|w| Ok(w.shards()))?)
    }

    /// The shard folders, in order.
    #[getter]
    fn shard_dirs(&self) -> PyResult<Vec<PathBuf>> {
        Ok(self.with(|w| {
            Ok((0..w.shards())
                .map(|i| pairalign_indexer::shard_dir(w.dir(), i))
                .collect())
        })?)
    }

    /// The tokenizer id every shard records.
    #[getter]
    fn tokenizer(&self) -> PyResult<String> {
        Ok(self.with(|w| Ok(w.tokenizer().id.clone()))?)
    }

    /// Walks `paths` (files and folders) for audio files and returns those that need
    /// tokenizing: `{"files": [{"path", "id", "shard"}], "files_found", "skipped", "failed",
    /// "walk_s"}`. A file committed unchanged (same size and modification time) is skipped.
    fn plan<'py>(&self, py: Python<'py>, paths: Vec<PathBuf>) -> PyResult<Bound<'py, PyAny>> {
        let plan = py.detach(|| self.with(|w| Ok(w.plan(&paths)?)))?;
        to_python(py, &plan)
    }

    /// Adds what `Tokenizer.prepare_file` made of a file (its bytes): `"pending"` (committed
    /// with its shard's batch), `"unchanged"` (indexed with the same content: only its stamp
    /// is recorded) or `("duplicate", id)` (the same content is indexed as `id`). Raises
    /// `TokenizerMismatchError` for another tokenizer's tokens, `InvalidInputError` for other
    /// bytes.
    fn add<'py>(&self, py: Python<'py>, recording: Vec<u8>) -> PyResult<Bound<'py, PyAny>> {
        let added =
            py.detach(|| self.with(|w| Ok(w.add(PreparedRecording::from_bytes(&recording)?)?)))?;
        Ok(match added {
            Added::Pending => "pending".into_pyobject(py)?.into_any(),
            Added::Unchanged => "unchanged".into_pyobject(py)?.into_any(),
            Added::Duplicate(of) => PyTuple::new(py, ["duplicate", of.as_str()])?.into_any(),
        })
    }

    /// Records a file a worker could not index (it is listed under `failed`).
    fn fail(&self, path: PathBuf, reason: String) -> PyResult<()> {
        Ok(self.with(|w| {
            w.fail(path, reason);
            Ok(())
        })?)
    }

    /// Commits what every shard holds and returns the run's report so far (the fields of
    /// `Archive.add_file`'s).
    fn flush<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let report = py.detach(|| self.with(|w| Ok(w.flush()?)))?;
        to_python(py, &report)
    }

    /// Commits everything, merges the segments of each shard that has more than
    /// `compact_above` (None: never), releases the locks and returns the run's report.
    #[pyo3(signature = (compact_above=Some(8)))]
    fn finish<'py>(
        &self,
        py: Python<'py>,
        compact_above: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let report = py.detach(|| -> Result<_> {
            let writer = self
                .writer
                .lock()
                .map_err(|_| Error::Closed(CLOSED.into()))?
                .take()
                .ok_or_else(|| Error::Closed(CLOSED.into()))?;
            Ok(writer.finish(compact_above)?)
        })?;
        to_python(py, &report)
    }

    /// Releases the locks without committing what is pending (as a killed writer would: a
    /// rerun plans those files again).
    fn close(&self) {
        if let Ok(mut writer) = self.writer.lock() {
            *writer = None;
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Finishes the run when the block ends normally; commits what is pending when it ends
    /// with an exception (as `pairalign index` does when stopped), then releases the locks.
    #[pyo3(signature = (exc_type, _exc, _traceback))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let done = if exc_type.is_none() {
            self.finish(py, Some(8)).map(|_| ())
        } else {
            self.flush(py).map(|_| ())
        };
        self.close();
        done.map(|()| false)
    }
}

/// The shard (0 to `shards` - 1) of the document `id` in an archive of `shards` shards: the
/// first 8 bytes of BLAKE3 of its UTF-8 bytes, little-endian, modulo `shards`.
#[pyfunction]
pub fn shard_of(id: &str, shards: usize) -> PyResult<usize> {
    if shards == 0 {
        return Err(Error::InvalidInput("shards must be at least 1".into()).into());
    }
    Ok(pairalign_indexer::shard_of(id, shards))
}

/// The shard folders of the sharded archive in `dir`, in order, as its `SHARDS.json` says.
#[pyfunction]
pub fn shard_dirs(py: Python<'_>, dir: PathBuf) -> PyResult<Vec<PathBuf>> {
    Ok(py.detach(|| -> Result<_> { Ok(pairalign_indexer::shard_dirs(&dir)?) })?)
}
