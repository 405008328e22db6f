//! `pairalign.tokenize`: audio (a file, or samples and their rate) to the token string and
//! per-token times the index would store for it, with any tokenizer; and the tokenizers loaded
//! by name, kept for the life of the process.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use numpy::{AllowTypeChange, IntoPyArray, PyArray1, PyArrayLike1};
use pairalign_archive::ArchiveTokenizer;
use pairalign_datasets::decode::{decode_file, DecodeOptions};
use pairalign_indexer::{doc_id, PreparedRecording};
use pairalign_models::{
    shipped, tokenize_windows, AnyTokenizer, TokenString, WINDOWS_PER_CALL, WINDOW_SAMPLES,
};
use pairalign_query::{decode_clip_bytes, decode_clip_file, tokenize_clip, ClipQuery};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::convert;
use crate::error::{Error, Result};

/// Tokenizers loaded by name (`vq`, `pairalign-v2`, a weights folder), device and query grid
/// phases: loading one parses its weights, which costs more than tokenizing a short clip.
type Loaded = Vec<((String, String, Option<usize>), ArchiveTokenizer)>;
static LOADED: Mutex<Loaded> = Mutex::new(Vec::new());

/// The tokenizer called `name` ([`AnyTokenizer::open`]) on the CPU, loaded once per process.
pub fn load(name: &str) -> Result<ArchiveTokenizer> {
    load_on(name, "cpu", None)
}

/// The tokenizer called `name` on `device` (`cpu`, `cuda`, `cuda:N`: a build with the `cuda`
/// feature), with queries cut at `phases` grid phases when given
/// ([`AnyTokenizer::with_query_phases`]), loaded once per process.
pub fn load_on(name: &str, device: &str, phases: Option<usize>) -> Result<ArchiveTokenizer> {
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    let key = (name.to_string(), device.to_string(), phases);
    if let Some((_, tokenizer)) = loaded.iter().find(|(k, _)| *k == key) {
        return Ok(Arc::clone(tokenizer));
    }
    let on = pairalign_models::parse_device(device)?;
    let tokenizer: ArchiveTokenizer =
        Arc::new(with_phases(AnyTokenizer::open(name, &on)?, phases)?);
    loaded.push((key, Arc::clone(&tokenizer)));
    Ok(tokenizer)
}

/// The tokenizer an archive in `dir` searches clips with: `name` when given, else the one the
/// archive records (the default for a new one; [`pairalign_query::database_tokenizer`]), with
/// queries cut at `phases` grid phases when given. What `Archive` and `Reader` open with.
pub fn for_archive(
    dir: &Path,
    name: Option<&str>,
    phases: Option<usize>,
) -> Result<ArchiveTokenizer> {
    match name {
        Some(name) => load_on(name, "cpu", phases),
        None => Ok(Arc::new(with_phases(
            pairalign_query::database_tokenizer(dir, &pairalign_models::Device::Cpu)?,
            phases,
        )?)),
    }
}

/// `tokenizer` with queries cut at `phases` grid phases when given (a VQ tokenizer takes only
/// 1): an error names the keyword.
fn with_phases(tokenizer: AnyTokenizer, phases: Option<usize>) -> Result<AnyTokenizer> {
    match phases {
        None => Ok(tokenizer),
        Some(n) => tokenizer
            .with_query_phases(n)
            .map_err(|e| Error::InvalidInput(format!("phases={n}: {e}"))),
    }
}

/// Audio as Python hands it over.
pub enum Audio {
    /// A file in any format the front end decodes.
    File(PathBuf),
    /// Mono samples at a rate.
    Samples(Vec<f32>, u32),
}

impl Audio {
    /// `audio` as a path (`str` or `os.PathLike`), or as samples with `rate`.
    pub fn extract(audio: &Bound<'_, PyAny>, rate: Option<u32>) -> PyResult<Audio> {
        if let Ok(path) = audio.extract::<PathBuf>() {
            if rate.is_some() {
                return Err(Error::InvalidInput(
                    "rate is for samples; a file's rate is read from the file".into(),
                )
                .into());
            }
            return Ok(Audio::File(path));
        }
        let array: PyArrayLike1<'_, f32, AllowTypeChange> = audio.extract()?;
        let rate = rate.ok_or_else(|| {
            Error::InvalidInput("samples need their rate: tokenize(samples, rate)".into())
        })?;
        Ok(Audio::Samples(convert::samples(&array), rate))
    }

    /// The audio at 16 kHz mono, as the index reads it.
    fn samples_16k(self) -> Result<Vec<f32>> {
        match self {
            Audio::File(path) => Ok(decode_file(&path, &DecodeOptions::default())?.samples),
            Audio::Samples(samples, rate) => {
                Ok(pairalign_query::to_16k(&samples, rate)?.into_owned())
            }
        }
    }
}

/// The token string of `audio` as the index would store it: 3 s windows, tokenized in batches,
/// times absolute.
pub fn tokenize_audio(audio: Audio, tokenizer: &str) -> Result<TokenString> {
    let tokenizer = load(tokenizer)?;
    let samples = audio.samples_16k()?;
    Ok(tokenize_windows(
        tokenizer.as_ref(),
        &samples,
        WINDOW_SAMPLES,
        WINDOWS_PER_CALL,
    )?)
}

/// What `tokenize` returns: the tokens and the start time of each in milliseconds.
type TokensAndTimes<'py> = (Bound<'py, PyArray1<u16>>, Bound<'py, PyArray1<u32>>);

/// The tokens and their start times in milliseconds (two numpy arrays, uint16 and uint32) of
/// `audio`, a file or mono samples with their `rate`, as the index would store them.
/// `tokenizer`: `pairalign-v3` (the default), `pairalign-v2`, `pairalign`, `vq`, `vq-v2` or a
/// weights folder.
#[pyfunction]
#[pyo3(signature = (audio, rate=None, *, tokenizer=None))]
pub fn tokenize<'py>(
    py: Python<'py>,
    audio: &Bound<'py, PyAny>,
    rate: Option<u32>,
    tokenizer: Option<String>,
) -> PyResult<TokensAndTimes<'py>> {
    let audio = Audio::extract(audio, rate)?;
    let tokenizer = tokenizer.unwrap_or_else(|| shipped::DEFAULT.to_string());
    let string = py.detach(|| tokenize_audio(audio, &tokenizer))?;
    Ok((
        string.tokens.into_pyarray(py),
        string.times_ms.into_pyarray(py),
    ))
}

/// A tokenizer loaded once ([`load`]), for the work a process does over and over: what a
/// worker of a distributed indexer holds (`prepare_file`), and what the front of a sharded
/// search tokenizes queries with (`query`, `query_bytes`) before sending them to every shard.
#[pyclass(name = "Tokenizer", module = "pairalign", frozen)]
pub struct PyTokenizer {
    name: String,
    tokenizer: ArchiveTokenizer,
}

impl std::fmt::Debug for PyTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyTokenizer")
            .field("name", &self.name)
            .finish()
    }
}

#[pymethods]
impl PyTokenizer {
    /// Loads the tokenizer called `name`: `pairalign-v3` (the default), `pairalign-v2`,
    /// `pairalign`, `vq`, `vq-v2` or a weights folder, on `device`: `cpu` (the default), `cuda`
    /// or `cuda:N` (a module built with the `cuda` feature, on a machine with a GPU). `phases`:
    /// the grid phases `query` tokenizes a clip at, each searched (PairAlign models; default
    /// the model's, 4 for the shipped ones; 2 halves the search for a point or two of recall,
    /// docs/RESULTS.md); the strings of files do not change.
    #[new]
    #[pyo3(signature = (name=None, *, device="cpu", phases=None))]
    fn new(
        py: Python<'_>,
        name: Option<String>,
        device: &str,
        phases: Option<usize>,
    ) -> PyResult<Self> {
        let name = name.unwrap_or_else(|| shipped::DEFAULT.to_string());
        let tokenizer = py.detach(|| load_on(&name, device, phases))?;
        Ok(PyTokenizer { name, tokenizer })
    }

    /// The tokenizer's id (`pairalign-v2`, ...), as databases record it.
    #[getter]
    fn id(&self) -> &str {
        self.tokenizer.id()
    }

    /// The hash of its weights, as databases record it.
    #[getter]
    fn weights_hash(&self) -> &str {
        self.tokenizer.weights_hash()
    }

    /// How many symbols it has.
    #[getter]
    fn vocab_size(&self) -> u32 {
        self.tokenizer.vocab_size()
    }

    /// The tokens and their start times in ms of `audio` (a file, or mono samples with their
    /// `rate`) as the index would store them; as `pairalign.tokenize`.
    #[pyo3(signature = (audio, rate=None))]
    fn tokenize<'py>(
        &self,
        py: Python<'py>,
        audio: &Bound<'py, PyAny>,
        rate: Option<u32>,
    ) -> PyResult<TokensAndTimes<'py>> {
        let audio = Audio::extract(audio, rate)?;
        let string = py.detach(|| -> Result<TokenString> {
            let samples = audio.samples_16k()?;
            Ok(tokenize_windows(
                self.tokenizer.as_ref(),
                &samples,
                WINDOW_SAMPLES,
                WINDOWS_PER_CALL,
            )?)
        })?;
        Ok((
            string.tokens.into_pyarray(py),
            string.times_ms.into_pyarray(py),
        ))
    }

    /// The clip `audio` (a file, or mono samples with their `rate`; 0.5 to 60 s) tokenized for
    /// searching, once for any number of archives or shards (`Reader.search_query`).
    #[pyo3(signature = (audio, rate=None))]
    fn query(
        &self,
        py: Python<'_>,
        audio: &Bound<'_, PyAny>,
        rate: Option<u32>,
    ) -> PyResult<PyQuery> {
        let audio = Audio::extract(audio, rate)?;
        let query = py.detach(|| -> Result<ClipQuery> {
            let samples = match audio {
                Audio::File(path) => decode_clip_file(&path)?.samples,
                Audio::Samples(samples, rate) => {
                    pairalign_query::to_16k(&samples, rate)?.into_owned()
                }
            };
            Ok(tokenize_clip(self.tokenizer.as_ref(), &samples)?)
        })?;
        Ok(PyQuery { query })
    }

    /// The clip in an encoded audio file's bytes (any format the index reads; an HTTP
    /// request's body) tokenized for searching, as `query`; errors call it `name`.
    #[pyo3(signature = (data, name=None))]
    fn query_bytes(
        &self,
        py: Python<'_>,
        data: Vec<u8>,
        name: Option<String>,
    ) -> PyResult<PyQuery> {
        let name = PathBuf::from(name.unwrap_or_else(|| "the clip".into()));
        let query = py.detach(|| -> Result<ClipQuery> {
            let samples = decode_clip_bytes(data, &name)?.samples;
            Ok(tokenize_clip(self.tokenizer.as_ref(), &samples)?)
        })?;
        Ok(PyQuery { query })
    }

    /// The audio file at `path` hashed, decoded and tokenized into what an archive stores for
    /// it, as bytes for `ShardWriter.add` (in another process): what a worker of a distributed
    /// indexer does. `id` defaults to the file's canonical path (the id `Archive.add_file`
    /// gives it); `title` and `tags` are added to its sidecar's. Raises `DecodeError` with the
    /// reason when the file cannot be indexed.
    #[pyo3(signature = (path, id=None, *, title=None, tags=None))]
    fn prepare_file<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
        id: Option<String>,
        title: Option<String>,
        tags: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let run = convert::metadata(title, tags, None);
        let bytes = py.detach(|| -> Result<Vec<u8>> {
            let id = match id {
                Some(id) => id,
                None => doc_id(&path).map_err(Error::Unindexable)?,
            };
            let recording = PreparedRecording::from_file(
                self.tokenizer.as_ref(),
                &path,
                &id,
                &run,
                &DecodeOptions::default(),
            )
            .map_err(Error::Unindexable)?;
            Ok(recording.to_bytes())
        })?;
        Ok(PyBytes::new(py, &bytes))
    }

    fn __repr__(&self) -> String {
        format!("Tokenizer({:?})", self.name)
    }
}

/// A clip tokenized for searching (`Tokenizer.query`): the strings of every grid phase and the
/// tokenizer that made them. Pickles (as `to_bytes`) to travel to other processes.
#[pyclass(name = "Query", module = "pairalign", frozen)]
#[derive(Debug)]
pub struct PyQuery {
    pub(crate) query: ClipQuery,
}

#[pymethods]
impl PyQuery {
    /// The query's tokens (the clip windowed like a file), uint16.
    #[getter]
    fn tokens<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u16>> {
        self.query.tokens().to_vec().into_pyarray(py)
    }

    /// How many strings (grid phases) a search tries.
    #[getter]
    fn phases(&self) -> usize {
        self.query.phases.len()
    }

    /// The id of the tokenizer that made it.
    #[getter]
    fn tokenizer(&self) -> &str {
        &self.query.tokenizer.id
    }

    /// Milliseconds spent tokenizing.
    #[getter]
    fn tokenize_ms(&self) -> f64 {
        self.query.tokenize_ms
    }

    /// Its bytes (JSON), for `Query.from_bytes`.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        // Plain data always serializes.
        PyBytes::new(py, &serde_json::to_vec(&self.query).unwrap_or_default())
    }

    /// The query `to_bytes` gave; raises `InvalidInputError` for other bytes.
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<PyQuery> {
        let query = serde_json::from_slice(data)
            .map_err(|e| Error::InvalidInput(format!("not a pairalign query: {e}")))?;
        Ok(PyQuery { query })
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let from_bytes = slf.get_type().getattr("from_bytes")?;
        Ok((from_bytes, (slf.get().to_bytes(slf.py()),)))
    }

    fn __len__(&self) -> usize {
        self.query.tokens().len()
    }

    fn __repr__(&self) -> String {
        format!(
            "Query({} tokens, {} phases, tokenizer={:?})",
            self.query.tokens().len(),
            self.query.phases.len(),
            self.query.tokenizer.id
        )
    }
}

/// The audio file at `path` decoded and resampled as the index reads it: 16 kHz mono float32
/// samples in [-1, 1], and the rate (16000).
#[pyfunction]
pub fn decode<'py>(py: Python<'py>, path: PathBuf) -> PyResult<(Bound<'py, PyArray1<f32>>, u32)> {
    let samples = py.detach(|| Audio::File(path).samples_16k())?;
    Ok((samples.into_pyarray(py), pairalign_datasets::SAMPLE_RATE))
}
