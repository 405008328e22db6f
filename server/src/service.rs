//! What each route does, one method per route on the shared state: the handlers in
//! [`crate::routes`] unpack the request and call one of these. Reads run on the blocking pool
//! against the current snapshot; writes go to the writer's queue.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pairalign_archive::{clip_search_options, ArchiveReport};
use pairalign_datasets::decode::probe_duration;
use pairalign_engine::SearchOptions;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::archive::{Asset, Compaction};
use crate::audio::{self, Span, SpanParams};
use crate::jobs::{Job, JobStatus};
use crate::limits::{SearchPermit, UploadPermit};
use crate::metrics::Gauges;
use crate::request::{Budget, SearchParams, SearchQuery, SearchRequest, UploadRequest};
use crate::state::AppState;
use crate::writer::{UploadReply, Write};
use crate::{Error, Result};

pub use pairalign_query::SearchResults;

/// How an upload went: committed, or queued as a job.
#[derive(Debug)]
pub(crate) enum Uploaded {
    Committed(Asset),
    Queued(Job),
}

/// `GET /v1/assets` query parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    filter: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
}

/// One page of assets.
#[derive(Debug, Serialize)]
pub(crate) struct AssetPage {
    /// Assets matching the filter, in all.
    total: usize,
    /// Assets skipped before this page.
    offset: usize,
    /// This page, sorted by id.
    assets: Vec<Asset>,
}

/// `GET /v1/stats`: the archive report of the current snapshot and the server's queues.
#[derive(Debug, Serialize)]
pub(crate) struct Stats {
    #[serde(flatten)]
    archive: ArchiveReport,
    /// Writes waiting for the writer.
    writer_queue: usize,
    /// Searches running now.
    searches_in_flight: usize,
    /// Searches waiting for a slot.
    searches_queued: usize,
    /// Uploads receiving their body or waiting for their commit.
    uploads_in_flight: usize,
}

/// A span of a recording as a WAV file, and the span it holds (the one asked for, its end
/// clamped to the recording's).
#[derive(Debug)]
pub(crate) struct AudioSpan {
    pub wav: Vec<u8>,
    pub span: Span,
}

/// Default page size of asset listings.
const DEFAULT_LIST_LIMIT: usize = 50;

/// Runs `f` on the blocking pool, unless the request is gone before a thread takes it up: a
/// request that timed out (408) or whose client hung up drops this future, and its work, still
/// waiting for a thread, is then skipped rather than run for no one. Work already running
/// finishes (each piece is bounded: clip length, filter limits), and shutdown does not wait
/// for it ([`crate::Server::run`]).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    let gone = Arc::new(AtomicBool::new(false));
    let _guard = SetOnDrop(Arc::clone(&gone));
    tokio::task::spawn_blocking(move || {
        if gone.load(Ordering::Acquire) {
            return Err(Error::Internal("the request is gone".into()));
        }
        f()
    })
    .await
    .map_err(|e| Error::Internal(format!("a worker task failed: {e}")))?
}

/// Sets its flag when dropped: when the request that owns it ends, however it ends.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A filter, or none when empty.
fn filter(filter: Option<String>) -> Option<String> {
    filter.filter(|f| !f.trim().is_empty())
}

impl AppState {
    /// `POST /v1/search`: a query by example or a token string against the current snapshot.
    /// `permit` is held until the search ends.
    pub(crate) async fn search(
        &self,
        permit: SearchPermit,
        request: SearchRequest,
    ) -> Result<SearchResults> {
        let snapshot = self.snapshot();
        let audio = matches!(request.query, SearchQuery::Audio(_));
        let options = self.search_options(&request.params, audio)?;
        let filter = filter(request.params.filter);
        blocking(move || {
            let _permit = permit;
            match request.query {
                SearchQuery::Audio(clip) => {
                    let outcome = snapshot.search_clip(clip, &options, filter.as_deref())?;
                    Ok(SearchResults::from(outcome))
                }
                SearchQuery::Tokens(tokens) => {
                    let outcome = snapshot.search_tokens(&tokens, &options, filter.as_deref())?;
                    Ok(SearchResults::of_tokens(outcome, tokens.len()))
                }
            }
        })
        .await
    }

    /// The engine's options for `params`: clip defaults (infix, k 0.9 of the query) for audio,
    /// the engine's defaults for tokens; `top` within 1..=`max_top`.
    fn search_options(&self, params: &SearchParams, audio: bool) -> Result<SearchOptions> {
        let mut options = if audio {
            clip_search_options()
        } else {
            SearchOptions::default()
        };
        if let Some(top) = params.top {
            let max = self.limits.max_top;
            if !(1..=max).contains(&top) {
                return Err(Error::BadRequest(format!(
                    "top must be 1 to {max}, got {top}"
                )));
            }
            options.top = top;
        }
        if let Some(Budget(k)) = params.k {
            options.k = Some(k);
        }
        Ok(options)
    }

    /// `POST /v1/assets`: an upload of at most `sync_upload_max_s` seconds is committed before
    /// the reply; a longer one becomes a job. `_permit` is held until then.
    pub(crate) async fn upload(
        &self,
        _permit: UploadPermit,
        request: UploadRequest,
    ) -> Result<Uploaded> {
        let UploadRequest { file, metadata } = request;
        if let Some(id) = &metadata.id {
            check_new_id(id)?;
        }
        let (file, duration_s) = blocking(move || {
            let seconds = probe_duration(file.path()).map_err(|e| {
                Error::from_archive(
                    pairalign_archive::Error::Decode(e),
                    Some(file.path()),
                    file.display_name(),
                )
            })?;
            Ok((file, seconds))
        })
        .await?;
        if duration_s <= self.limits.sync_upload_max_s {
            let (tx, rx) = oneshot::channel();
            self.writer.submit(Write::Upload {
                file,
                metadata,
                reply: UploadReply::Wait(tx),
            })?;
            let asset = rx
                .await
                .map_err(|_| Error::Internal("the writer stopped".into()))??;
            return Ok(Uploaded::Committed(asset));
        }
        let id = self
            .jobs
            .create(file.file_name().map(String::from), duration_s);
        let write = Write::Upload {
            file,
            metadata,
            reply: UploadReply::Job(id.clone()),
        };
        if let Err(e) = self.writer.submit(write) {
            self.jobs.remove(&id);
            return Err(e);
        }
        self.job(&id).map(Uploaded::Queued)
    }

    /// `DELETE /v1/assets/{id}`: committed before it returns; 404 when there is no such asset.
    pub(crate) async fn delete(&self, id: String) -> Result<()> {
        check_id(&id)?;
        let (tx, rx) = oneshot::channel();
        self.writer.submit(Write::Delete {
            id: id.clone(),
            reply: tx,
        })?;
        let deleted = rx
            .await
            .map_err(|_| Error::Internal("the writer stopped".into()))??;
        if deleted {
            Ok(())
        } else {
            Err(Error::NotFound(format!("no asset {id:?}")))
        }
    }

    /// `POST /v1/compact`: queued behind the writes before it; searches go on meanwhile.
    pub(crate) async fn compact(&self) -> Result<Compaction> {
        let (tx, rx) = oneshot::channel();
        self.writer.submit(Write::Compact { reply: tx })?;
        rx.await
            .map_err(|_| Error::Internal("the writer stopped".into()))?
    }

    /// `GET /v1/assets/{id}`.
    pub(crate) async fn asset(&self, id: String) -> Result<Asset> {
        let snapshot = self.snapshot();
        blocking(move || {
            snapshot
                .asset(&id)?
                .ok_or_else(|| Error::NotFound(format!("no asset {id:?}")))
        })
        .await
    }

    /// `GET /v1/assets/{id}/audio?start_ms=&end_ms=`: the span of the asset's recording as WAV,
    /// read from the file the catalog names (never a path from the request). Decoding is CPU
    /// work like a search, so it holds `permit`, a search slot, until it ends.
    pub(crate) async fn asset_audio(
        &self,
        permit: SearchPermit,
        id: String,
        params: SpanParams,
    ) -> Result<AudioSpan> {
        check_id(&id)?;
        let snapshot = self.snapshot();
        blocking(move || {
            let _permit = permit;
            let asset = snapshot
                .asset(&id)?
                .ok_or_else(|| Error::NotFound(format!("no asset {id:?}")))?;
            let span = params.resolve(audio::duration_ms(&asset))?;
            let path = audio::recording(&asset)?;
            let samples = audio::decode_span(&path, span)?;
            if samples.is_empty() {
                return Err(Error::BadRequest(format!(
                    "start_ms ({}) is at or after the end of the decoded recording",
                    span.start_ms
                )));
            }
            let rate = pairalign_datasets::SAMPLE_RATE;
            let end_ms = span.start_ms + (samples.len() as u64 * 1000).div_ceil(u64::from(rate));
            Ok(AudioSpan {
                wav: audio::wav(&samples, rate),
                span: Span {
                    start_ms: span.start_ms,
                    end_ms: end_ms.min(span.end_ms),
                },
            })
        })
        .await
    }

    /// `GET /v1/assets?filter=&offset=&limit=`.
    pub(crate) async fn assets(&self, params: ListParams) -> Result<AssetPage> {
        let max = self.limits.max_list_limit;
        let limit = params.limit.unwrap_or(DEFAULT_LIST_LIMIT.min(max));
        if !(1..=max).contains(&limit) {
            return Err(Error::BadRequest(format!(
                "limit must be 1 to {max}, got {limit}"
            )));
        }
        let offset = params.offset.unwrap_or(0);
        let filter = filter(params.filter);
        let snapshot = self.snapshot();
        blocking(move || {
            let page = snapshot.assets(filter.as_deref(), offset, limit)?;
            Ok(AssetPage {
                total: page.total,
                offset,
                assets: page.assets,
            })
        })
        .await
    }

    /// `GET /v1/jobs/{id}`.
    pub(crate) fn job(&self, id: &str) -> Result<Job> {
        self.jobs.get(id).ok_or_else(|| {
            Error::NotFound(format!(
                "no job {id:?} (jobs are kept in memory: a restarted server forgets them)"
            ))
        })
    }

    /// `GET /v1/stats`.
    pub(crate) fn stats(&self) -> Stats {
        Stats {
            archive: self.snapshot().stats().clone(),
            writer_queue: self.writer.queued(),
            searches_in_flight: self.search_slots.in_use(),
            searches_queued: self.search_slots.waiting(),
            uploads_in_flight: self.upload_slots.in_use(),
        }
    }

    /// `GET /metrics`.
    pub(crate) fn metrics_text(&self) -> String {
        let snapshot = self.snapshot();
        let stats = snapshot.stats();
        let jobs = self.jobs.counts().map(|(status, n)| {
            let name = match status {
                JobStatus::Queued => "queued",
                JobStatus::Running => "running",
                JobStatus::Done => "done",
                JobStatus::Failed => "failed",
            };
            (name, n)
        });
        self.metrics.render(&Gauges {
            documents: stats.docs,
            hours: stats.hours,
            tokens: stats.tokens,
            writer_queue: self.writer.queued(),
            searches_in_flight: self.search_slots.in_use(),
            searches_queued: self.search_slots.waiting(),
            uploads_in_flight: self.upload_slots.in_use(),
            jobs: jobs.to_vec(),
        })
    }
}

/// Asset ids are 1 to [`pairalign_engine::MAX_ID_BYTES`] bytes.
fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > pairalign_engine::MAX_ID_BYTES {
        return Err(Error::BadRequest(format!(
            "an asset id is 1 to {} bytes, got {}",
            pairalign_engine::MAX_ID_BYTES,
            id.len()
        )));
    }
    Ok(())
}

/// [`check_id`] for an id a client gives a new asset: also no control characters, as ids are
/// printed in listings, logs and terminals (a newline or an escape sequence in an id would
/// forge lines or colours there). Ids of indexed files are their paths, whatever they hold, so
/// reads and deletes take any id.
fn check_new_id(id: &str) -> Result<()> {
    check_id(id)?;
    if let Some(c) = id.chars().find(|c| c.is_control()) {
        return Err(Error::BadRequest(format!(
            "an asset id must not contain control characters, found {:?}",
            c
        )));
    }
    Ok(())
}
