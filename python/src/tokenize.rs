//! `pairalign.tokenize`: audio (a file, or samples and their rate) to the token string and
//! per-token times the index would store for it, with any tokenizer; and the tokenizers loaded
//! by name, kept for the life of the process.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use numpy::{AllowTypeChange, IntoPyArray, PyArray1, PyArrayLike1};
use pairalign_archive::ArchiveTokenizer;
use pairalign_datasets::decode::{decode_file, DecodeOptions};
use pairalign_models::{
    shipped, tokenize_windows, AnyTokenizer, Device, TokenString, WINDOWS_PER_CALL, WINDOW_SAMPLES,
};
use pyo3::prelude::*;

use crate::convert;
use crate::error::{Error, Result};

/// Tokenizers loaded by name (`vq`, `pairalign-v2`, a weights folder): loading one parses its
/// weights, which costs more than tokenizing a short clip.
static LOADED: Mutex<Vec<(String, ArchiveTokenizer)>> = Mutex::new(Vec::new());

/// The tokenizer called `name` ([`AnyTokenizer::open`]), loaded once per process.
pub fn load(name: &str) -> Result<ArchiveTokenizer> {
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, tokenizer)) = loaded.iter().find(|(n, _)| n == name) {
        return Ok(Arc::clone(tokenizer));
    }
    let tokenizer: ArchiveTokenizer = Arc::new(AnyTokenizer::open(name, &Device::Cpu)?);
    loaded.push((name.to_string(), Arc::clone(&tokenizer)));
    Ok(tokenizer)
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
/// `tokenizer`: `pairalign-v2` (the default), `pairalign`, `vq`, `vq-v2` or a weights folder.
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
