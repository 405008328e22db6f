//! The server's limits with their defaults, and what enforces them: the request timeout
//! (middleware) and the search and upload slots (extractors that take a slot, wait in the
//! search queue, or answer 503). The body size limit is enforced where bodies are read
//! ([`crate::request`]).

use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// Largest search body in bytes (at most `max_body_bytes`): a search's clip or tokens are
    /// held in memory while it runs, so this times `max_concurrent_searches` bounds the memory
    /// searches take. Default 32 MiB: a 60 s clip (the longest a search takes) of 48 kHz
    /// 24-bit stereo WAV is 17.3 MB, of 96 kHz 16-bit stereo 23 MB. Larger bodies get 413.
    pub max_search_body_bytes: u64,
    /// Longest time from the request's headers to its reply, body upload included. Default 60 s.
    /// Slower requests get 408; a write already queued still completes (a large upload is better
    /// sent as a job: see `sync_upload_max_s`).
    pub request_timeout: Duration,
    /// Searches running at once. Default twice the number of cores: a search is CPU work
    /// (tokenizing, verifying) and the second half overlaps the first half's body upload and
    /// decoding. More wait in a queue (`search_queue`). The audio of a span
    /// (`GET /v1/assets/{id}/audio`, decoding) takes a slot too.
    pub max_concurrent_searches: usize,
    /// Searches waiting for a slot, first come first served; one more gets 503 with
    /// `Retry-After: 1` at once. Default 256: a burst of a few hundred clients is served in turn
    /// rather than refused (0: no queue).
    pub search_queue: usize,
    /// Longest wait in the search queue; a search still waiting then gets 503. Default 10 s.
    pub search_queue_wait: Duration,
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
    /// Longest wait for a request's headers, from the connection's start or the end of the
    /// previous reply; also how long an idle keep-alive connection stays open. A client slower
    /// than that (headers sent a byte a second) is disconnected. Default 10 s.
    pub header_timeout: Duration,
    /// Largest request head (request line and headers), in bytes; larger gets 431. Default
    /// 32 KiB (hyper's smallest buffer is 8 KiB): a thousand half-sent heads hold 32 MB at most.
    pub max_header_bytes: usize,
    /// Connections open at once. One more is answered 503 and closed at once, so that idle or
    /// slow sockets cannot take every file descriptor (the limit is lowered to fit the
    /// process's descriptor limit, with room for the database's files). Default 1,024.
    pub max_connections: usize,
    /// On shutdown (Ctrl-C, SIGTERM), how long requests in flight may take to finish before
    /// their connections are closed; queued writes are committed after that either way, and
    /// work of requests that are gone is not waited for. Default 10 s.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Limits {
            max_body_bytes: 64 << 20,
            max_search_body_bytes: 32 << 20,
            request_timeout: Duration::from_secs(60),
            max_concurrent_searches: 2 * cores,
            search_queue: 256,
            search_queue_wait: Duration::from_secs(10),
            max_concurrent_uploads: 8,
            max_queued_writes: 64,
            max_top: 100,
            sync_upload_max_s: 30.0,
            max_list_limit: 1000,
            max_finished_jobs: 1000,
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 32 * 1024,
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// The body limit of a search: the smaller of the two limits.
    pub(crate) fn search_body_limit(&self) -> u64 {
        self.max_search_body_bytes.min(self.max_body_bytes)
    }

    /// Checks that every limit lets some request through.
    pub fn check(&self) -> Result<()> {
        let positive = [
            ("max_body_bytes", self.max_body_bytes > 0),
            ("max_search_body_bytes", self.max_search_body_bytes > 0),
            ("request_timeout", !self.request_timeout.is_zero()),
            ("max_concurrent_searches", self.max_concurrent_searches > 0),
            ("max_concurrent_uploads", self.max_concurrent_uploads > 0),
            ("max_queued_writes", self.max_queued_writes > 0),
            ("max_top", self.max_top > 0),
            ("max_list_limit", self.max_list_limit > 0),
            ("header_timeout", !self.header_timeout.is_zero()),
            ("max_connections", self.max_connections > 0),
            (
                "sync_upload_max_s",
                self.sync_upload_max_s.is_finite() && self.sync_upload_max_s >= 0.0,
            ),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, ok)| !ok) {
            return Err(Error::Config(format!("{name} must be positive")));
        }
        // hyper's read buffer cannot be smaller than 8 KiB.
        if self.max_header_bytes < 8192 {
            return Err(Error::Config(format!(
                "max_header_bytes must be at least 8192, got {}",
                self.max_header_bytes
            )));
        }
        Ok(())
    }
}

/// Slots for one kind of work: a semaphore with a bounded queue in front of it. When every slot
/// is taken a request waits its turn (tokio's semaphore is fair: first come, first served) if
/// fewer than `queue` are waiting, for at most `wait`; otherwise, or after that, it gets 503.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    semaphore: Arc<Semaphore>,
    size: usize,
    queue: usize,
    wait: Duration,
    waiting: Arc<AtomicUsize>,
    what: &'static str,
}

impl Slots {
    /// `size` slots and no queue: a request that finds them all taken gets 503 at once.
    pub(crate) fn new(size: usize, what: &'static str) -> Self {
        Slots::queued(size, 0, Duration::ZERO, what)
    }

    /// `size` slots, and up to `queue` requests waiting for one for at most `wait`.
    pub(crate) fn queued(size: usize, queue: usize, wait: Duration, what: &'static str) -> Self {
        Slots {
            semaphore: Arc::new(Semaphore::new(size)),
            size,
            queue,
            wait,
            waiting: Arc::default(),
            what,
        }
    }

    /// Slots taken now.
    pub(crate) fn in_use(&self) -> usize {
        self.size.saturating_sub(self.semaphore.available_permits())
    }

    /// Requests waiting for a slot now.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    async fn take(&self) -> Result<OwnedSemaphorePermit> {
        let busy = || {
            Error::Overloaded(format!(
                "all {} {} slots are busy and {} requests wait for one; retry shortly",
                self.size,
                self.what,
                self.waiting()
            ))
        };
        if let Ok(permit) = Arc::clone(&self.semaphore).try_acquire_owned() {
            return Ok(permit);
        }
        // A place in the queue, if one is free.
        let queued = self
            .waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.queue).then_some(n + 1)
            });
        if queued.is_err() {
            return Err(busy());
        }
        let _place = QueuePlace(&self.waiting);
        match tokio::time::timeout(self.wait, Arc::clone(&self.semaphore).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; a timeout is the queue's limit.
            Ok(Err(_)) | Err(_) => Err(busy()),
        }
    }
}

/// A place in a queue of [`Slots`], given back when the wait ends (a permit, a timeout, or the
/// request dropped while waiting).
struct QueuePlace<'a>(&'a AtomicUsize);

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One search slot, held from before the body is read until the search ends (it moves into the
/// blocking task, so a timed-out request's search still counts until it finishes).
#[derive(Debug)]
pub(crate) struct SearchPermit(#[allow(dead_code)] OwnedSemaphorePermit);

impl FromRequestParts<AppState> for SearchPermit {
    type Rejection = Error;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self> {
        state.search_slots.take().await.map(SearchPermit)
    }
}

/// One upload slot, held from before the body is read until the upload is committed (201) or
/// queued (202): it bounds the disk that bodies on their way take.
#[derive(Debug)]
pub(crate) struct UploadPermit(#[allow(dead_code)] OwnedSemaphorePermit);

impl FromRequestParts<AppState> for UploadPermit {
    type Rejection = Error;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self> {
        state.upload_slots.take().await.map(UploadPermit)
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

    #[tokio::test]
    async fn a_full_set_of_slots_queues_in_turn_then_refuses() {
        let slots = Slots::queued(1, 1, Duration::from_millis(300), "search");
        let first = slots.take().await.unwrap();
        // The second waits for the first's slot.
        let waiter = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.take().await })
        };
        while slots.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        // The queue (one place) is full: the third is refused at once.
        assert!(matches!(slots.take().await, Err(Error::Overloaded(_))));
        drop(first);
        let second = waiter.await.unwrap().unwrap();
        assert_eq!((slots.in_use(), slots.waiting()), (1, 0));
        // A wait longer than the limit ends in 503 and gives its place back.
        let started = std::time::Instant::now();
        assert!(matches!(slots.take().await, Err(Error::Overloaded(_))));
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(slots.waiting(), 0);
        drop(second);
        assert!(slots.take().await.is_ok());
        // Without a queue a full set refuses at once.
        let unqueued = Slots::new(1, "upload");
        let _held = unqueued.take().await.unwrap();
        assert!(matches!(unqueued.take().await, Err(Error::Overloaded(_))));
    }

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
