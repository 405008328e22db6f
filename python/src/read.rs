//! The reading calls `pairalign.Archive` and `pairalign.Reader` share: searches (clip, file,
//! tokens, a tokenized query), catalog reads and stats, on a snapshot of what is committed. Each
//! class declares the Python methods and hands its snapshot here.

use std::path::PathBuf;

use numpy::{AllowTypeChange, PyArrayLike1};
use pairalign_archive::{clip_search_options, ArchiveReader, SearchOptions};
use pairalign_query::{SearchOutcome, SearchResults};
use pyo3::prelude::*;

use crate::convert::{self, to_python};
use crate::error::Result;
use crate::tokenize::PyQuery;

/// What gives the snapshot to read: the archive's latest after its last write, or a reader's.
pub trait Snapshot: Sync {
    /// The snapshot; an error once closed.
    fn snapshot(&self) -> Result<ArchiveReader>;
}

/// A clip search: the clip defaults (`k` 0.9) with `k` and `top` as given, `search` run on the
/// snapshot without the GIL, the reply as the HTTP API's JSON.
fn clip_search<'py>(
    from: &impl Snapshot,
    py: Python<'py>,
    k: Option<&Bound<'py, PyAny>>,
    top: Option<usize>,
    search: impl FnOnce(&ArchiveReader, &SearchOptions) -> pairalign_query::Result<SearchOutcome> + Send,
) -> PyResult<Bound<'py, PyAny>> {
    let options = convert::search_options(clip_search_options(), k, top)?;
    let results =
        py.detach(|| -> Result<SearchResults> { Ok(search(&from.snapshot()?, &options)?.into()) })?;
    to_python(py, &results)
}

/// `search_audio`: a clip given as samples at `rate`.
pub fn search_audio<'py>(
    from: &impl Snapshot,
    py: Python<'py>,
    samples: &PyArrayLike1<'py, f32, AllowTypeChange>,
    rate: u32,
    k: Option<&Bound<'py, PyAny>>,
    top: Option<usize>,
    filter: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let samples = convert::samples(samples);
    clip_search(from, py, k, top, |reader, options| {
        reader.search_audio(&samples, rate, options, filter.as_deref())
    })
}

/// `search_file`: the clip in an audio file.
pub fn search_file<'py>(
    from: &impl Snapshot,
    py: Python<'py>,
    path: PathBuf,
    k: Option<&Bound<'py, PyAny>>,
    top: Option<usize>,
    filter: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    clip_search(from, py, k, top, |reader, options| {
        reader.search_file(&path, options, filter.as_deref())
    })
}

/// `search_query`: a clip tokenized by `Tokenizer.query` (once for every shard).
pub fn search_query<'py>(
    from: &impl Snapshot,
    py: Python<'py>,
    query: &PyQuery,
    k: Option<&Bound<'py, PyAny>>,
    top: Option<usize>,
    filter: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    clip_search(from, py, k, top, |reader, options| {
        reader.search_clip(&query.query, options, filter.as_deref())
    })
}

/// `search_tokens`: a token string (`k` defaults to the engine's 0.4).
pub fn search_tokens<'py>(
    from: &impl Snapshot,
    py: Python<'py>,
    tokens: &Bound<'py, PyAny>,
    k: Option<&Bound<'py, PyAny>>,
    top: Option<usize>,
    filter: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let options = convert::search_options(SearchOptions::default(), k, top)?;
    let tokens = convert::tokens(tokens)?;
    let results = py.detach(|| -> Result<SearchResults> {
        let outcome = from
            .snapshot()?
            .search_tokens(&tokens, &options, filter.as_deref())?;
        Ok(SearchResults::of_tokens(outcome, tokens.len()))
    })?;
    to_python(py, &results)
}

/// `asset`: a live document's catalog entry, or None.
pub fn asset<'py>(
    from: &impl Snapshot,
    py: Python<'py>,
    id: String,
) -> PyResult<Bound<'py, PyAny>> {
    let asset = py.detach(|| -> Result<_> { Ok(from.snapshot()?.asset(&id)?) })?;
    to_python(py, &asset)
}

/// `assets`: one page of the catalog entries a filter selects.
pub fn assets<'py>(
    from: &impl Snapshot,
    py: Python<'py>,
    filter: Option<String>,
    offset: usize,
    limit: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let page = py.detach(|| -> Result<_> {
        Ok(from.snapshot()?.assets(filter.as_deref(), offset, limit)?)
    })?;
    to_python(py, &page)
}

/// `stats`: documents, hours, tokens per second and bytes.
pub fn stats<'py>(from: &impl Snapshot, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
    let report = py.detach(|| -> Result<_> { Ok(from.snapshot()?.stats()?) })?;
    to_python(py, &report)
}
