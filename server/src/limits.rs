//! The server's limits with their defaults, and what enforces them: the request timeout
//! (middleware) and the search and upload slots (extractors that take a slot or answer 503). The body
//! size limit is enforced where bodies are read ([`crate::request`]).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::state::AppState;
use crate::{Error, Result};

/// Limits of one server. `Limits::default()` gives the documented defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Largest request body in bytes (raw audio, multipart or JSON). Default 64 MiB: an hour of
    /// 128 kbit/s MP3, 35 minutes of 16 kHz 16-bit WAV. Larger bodies get 413.
    pub max_body_bytes: u64,
    /// Longest time from the request's headers to its reply, body upload included. Default 60 s.
    /// Slower requests get 408; a write already queued still completes (a large upload is better
    /// sent as a job: see `sync_upload_max_s`).
    pub request_timeout: Duration,
    /// Searches running at once; one more gets 503 with `Retry-After: 1` at once (no queue).
    /// Default twice the number of cores: a search is CPU work (tokenizing, verifying) and the
    /// second half overlaps the first half's body upload and decoding.
    pub max_concurrent_searches: usize,
    /// Uploads receiving their body or waiting for their commit at once (each may hold up to
    /// `max_body_bytes` in `<db>/uploads/`); one more gets 503 at once. Default 8.
    pub max_concurrent_uploads: usize,
    /// Writes (uploads, deletes) waiting for the writer; one more gets 503. Default 64.
    pub max_queued_writes: usize,
    /// Largest `top` a search may ask for (400 above). Default 100.
    pub max_top: usize,
    /// Uploads of at most this many seconds of audio are indexed before the reply (201); longer
    /// ones are queued as a job (202). Default 30 s (indexing 30 s takes well under a second).
    pub sync_upload_max_s: f64,
    /// Largest `limit` of an asset listing (400 above). Default 1,000.
    pub max_list_limit: usize,
    /// Finished jobs remembered for `GET /v1/jobs/{id}` (the oldest are forgotten first).
    /// Default 1,000.
    pub max_finished_jobs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Limits {
            max_body_bytes: 64 << 20,
            request_timeout: Duration::from_secs(60),
            max_concurrent_searches: 2 * cores,
            max_concurrent_uploads: 8,
            max_queued_writes: 64,
            max_top: 100,
            sync_upload_max_s: 30.0,
            max_list_limit: 1000,
            max_finished_jobs: 1000,
        }
    }
}

impl Limits {
    /// Checks that every limit lets some request through.
    pub fn check(&self) -> Result<()> {
        let positive = [
            ("max_body_bytes", self.max_body_bytes > 0),
            ("request_timeout", !self.request_timeout.is_zero()),
            ("max_concurrent_searches", self.max_concurrent_searches > 0),
            ("max_concurrent_uploads", self.max_concurrent_uploads > 0),
            ("max_queued_writes", self.max_queued_writes > 0),
            ("max_top", self.max_top > 0),
            ("max_list_limit", self.max_list_limit > 0),
            (
                "sync_upload_max_s",
                self.sync_upload_max_s.is_finite() && self.sync_upload_max_s >= 0.0,
            ),
        ];
        match positive.iter().find(|(_, ok)| !ok) {
            Some((name, _)) => Err(Error::Config(format!("{name} must be positive"))),
            None => Ok(()),
        }
    }
}

/// Slots for one kind of work: a semaphore, taken without waiting (a full set is 503 at once,
/// no queue).
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    semaphore: Arc<Semaphore>,
    size: usize,
    what: &'static str,
}

impl Slots {
    pub(crate) fn new(size: usize, what: &'static str) -> Self {
        Slots {
            semaphore: Arc::new(Semaphore::new(size)),
            size,
            what,
        }
    }

    /// Slots taken now.
    pub(crate) fn in_use(&self) -> usize {
        self.size.saturating_sub(self.semaphore.available_permits())
    }

    fn take(&self) -> Result<OwnedSemaphorePermit> {
        Arc::clone(&self.semaphore)
            .try_acquire_owned()
            .map_err(|_| {
                Error::Overloaded(format!(
                    "all {} {} slots are busy; retry shortly",
                    self.size, self.what
                ))
            })
    }
}

/// One search slot, held from before the body is read until the search ends (it moves into the
/// blocking task, so a timed-out request's search still counts until it finishes).
#[derive(Debug)]
pub(crate) struct SearchPermit(#[allow(dead_code)] OwnedSemaphorePermit);

impl FromRequestParts<AppState> for SearchPermit {
    type Rejection = Error;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self> {
        state.search_slots.take().map(SearchPermit)
    }
}

/// One upload slot, held from before the body is read until the upload is committed (201) or
/// queued (202): it bounds the disk that bodies on their way take.
#[derive(Debug)]
pub(crate) struct UploadPermit(#[allow(dead_code)] OwnedSemaphorePermit);

impl FromRequestParts<AppState> for UploadPermit {
    type Rejection = Error;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self> {
        state.upload_slots.take().map(UploadPermit)
    }
}

/// Middleware: answers 408 when the request takes longer than `request_timeout`.
pub(crate) async fn timeout(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.limits.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Error::Timeout(limit).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_zero_limits_are_refused() {
        assert!(Limits::default().check().is_ok());
        let zero = Limits {
            max_concurrent_searches: 0,
            ..Limits::default()
        };
        assert!(matches!(zero.check(), Err(Error::Config(m)) if m.contains("max_concurrent")));
    }
}
