//! pairalign-server: the HTTP API over one archive (shared/DESIGN.md section 8, issue 6), axum on
//! tokio.
//!
//! Design: a single writer and snapshot readers. One thread owns the writable archive and applies
//! writes (uploads, deletes, compactions) one at a time from a queue ([`writer`]); after each
//! commit it publishes a fresh read-only snapshot. Searches and GETs take the current snapshot and
//! run on the blocking pool, so they run while the writer indexes or compacts and see committed
//! data only. Limits ([`Limits`]) bound bodies, time, concurrent searches and uploads, and the
//! writer's queue. Shutdown stops accepting, finishes the requests in flight, lets the writer
//! apply every queued write, then returns. `GET /` serves a search console built on the same
//! API (`console`), and `GET /v1/assets/{id}/audio` the audio of a hit's span (`audio`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use pairalign_server::{Limits, Server};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = pairalign_models::Device::Cpu;
//! let tokenizer = Arc::new(pairalign_archive::database_tokenizer("assets.db".as_ref(), &device)?);
//! let server = Server::builder()
//!     .token(Some("s3cret".into()))
//!     .limits(Limits { max_top: 50, ..Limits::default() })
//!     .build("assets.db", tokenizer)?;
//! let listener = std::net::TcpListener::bind("127.0.0.1:7700")?;
//! server.run(listener)?; // until Ctrl-C or SIGTERM
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;

mod archive;
mod audio;
mod auth;
mod console;
mod error;
mod jobs;
mod keep_alive;
mod limits;
mod metrics;
mod openapi;
mod request;
mod routes;
mod service;
mod state;
mod writer;

pub use archive::{Asset, Compaction, SharedTokenizer, UploadMetadata};
pub use audio::MAX_SPAN_MS;
pub use auth::read_token_file;
pub use console::CONTENT_SECURITY_POLICY;
pub use error::{Error, ErrorDetail, Result};
pub use jobs::{Job, JobStatus};
pub use limits::Limits;
pub use openapi::document as openapi_document;
pub use request::AUDIO_CONTENT_TYPES;
pub use routes::{Route, Verb, ROUTES};
pub use service::SearchResults;

use crate::archive::Writable;
use crate::jobs::Jobs;
use crate::limits::Slots;
use crate::metrics::Metrics;
use crate::state::{AppState, Inner};
use crate::writer::Writer;

/// Configures a [`Server`]: the token that guards writes and the limits.
#[derive(Debug, Default, Clone)]
pub struct ServerBuilder {
    token: Option<String>,
    protect_reads: bool,
    limits: Limits,
}

impl ServerBuilder {
    /// Writes need `Authorization: Bearer <token>` (default: no token, writes are open; the
    /// server binds 127.0.0.1 unless told otherwise).
    pub fn token(&mut self, token: Option<String>) -> &mut Self {
        self.token = token;
        self
    }

    /// Reads need the token too: searches, asset listings and reads, the audio of spans, jobs,
    /// stats and metrics (`/healthz`, `/openapi.json` and the console's static files stay open). Default false: asset listings show the
    /// server's file paths, sizes and hashes to whoever can reach it. Needs a token.
    pub fn protect_reads(&mut self, protect: bool) -> &mut Self {
        self.protect_reads = protect;
        self
    }

    /// The limits (default: [`Limits::default`]).
    pub fn limits(&mut self, limits: Limits) -> &mut Self {
        self.limits = limits;
        self
    }

    /// Opens the archive in `db` (created when missing) with `tokenizer`, clears what a killed
    /// server left in `<db>/uploads/`, and starts the writer. Blocking: call it before entering
    /// an async runtime or on its blocking pool.
    pub fn build(&self, db: impl AsRef<Path>, tokenizer: SharedTokenizer) -> Result<Server> {
        let db = db.as_ref();
        self.limits.check()?;
        if self.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(Error::Config("the token is empty".into()));
        }
        if self.protect_reads && self.token.is_none() {
            return Err(Error::Config(
                "protecting reads needs a token (--token-file)".into(),
            ));
        }
        let archive = Writable::open(db, tokenizer)?;
        let uploads = db.join("uploads");
        writer::clear_uploads(&uploads)?;
        let current = Arc::new(ArcSwap::from_pointee(archive.snapshot()?));
        let jobs = Arc::new(Jobs::new(self.limits.max_finished_jobs));
        let writer = Writer::start(
            archive,
            Arc::clone(&current),
            Arc::clone(&jobs),
            self.limits.max_queued_writes,
        )?;
        Ok(Server {
            state: AppState::new(Inner {
                limits: self.limits.clone(),
                token: self.token.clone(),
                protect_reads: self.protect_reads,
                current,
                writer,
                jobs,
                metrics: Metrics::default(),
                search_slots: Slots::queued(
                    self.limits.max_concurrent_searches,
                    self.limits.search_queue,
                    self.limits.search_queue_wait,
                    "search",
                ),
                upload_slots: Slots::new(self.limits.max_concurrent_uploads, "upload"),
                uploads,
            }),
        })
    }
}

/// The HTTP server over one archive.
#[derive(Debug)]
pub struct Server {
    state: AppState,
}

impl Server {
    /// A builder with no token and the default limits.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The axum router (for embedding it in another server or serving it yourself; then call
    /// [`Server::shutdown`] after the last request to commit queued writes).
    pub fn router(&self) -> axum::Router {
        routes::router(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` completes, then stops accepting, lets the requests
    /// in flight finish for at most [`Limits::shutdown_grace`], closes every connection, and
    /// commits every queued write before it returns.
    ///
    /// Connections are served by hyper directly (not `axum::serve`) for what a server facing
    /// the network needs: a deadline on request heads that also closes idle keep-alive
    /// connections ([`Limits::header_timeout`]), a head size limit
    /// ([`Limits::max_header_bytes`]), a cap on open connections ([`Limits::max_connections`];
    /// one more gets 503 and is closed), and a shutdown that a half-sent request cannot hold up.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let limits = self.state.limits.clone();
        let router = self.router();
        let cap = connection_cap(limits.max_connections);
        let slots = Arc::new(tokio::sync::Semaphore::new(cap));
        // Refusals being written count too: beyond these, a connection is closed unanswered.
        let refusals = Arc::new(tokio::sync::Semaphore::new(REFUSALS_IN_FLIGHT));
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(limits.max_header_bytes)
            .keep_alive(true);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut connections = tokio::task::JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            // Reap finished connections so that the set holds only live ones.
            while connections.try_join_next().is_some() {}
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                // Out of descriptors (EMFILE) or a connection reset before it was accepted:
                // wait a little instead of spinning; the cap keeps the former rare.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                self.state.metrics.connection_refused();
                if let Ok(refusal) = Arc::clone(&refusals).try_acquire_owned() {
                    connections.spawn(async move {
                        refuse_connection(stream).await;
                        drop(refusal);
                    });
                }
                continue;
            };
            let _ = stream.set_nodelay(true);
            let service = hyper_util::service::TowerToHyperService::new(router.clone());
            let connection = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let connection = graceful.watch(connection);
            connections.spawn(async move {
                // A connection ends with an error when the client goes away mid-request or
                // sends garbage: nothing to report to anyone.
                let _ = connection.await;
                drop(slot);
            });
        }
        drop(listener);
        // Idle connections close at once, busy ones after their reply; a connection that has
        // not finished by the grace period is dropped (a half-sent request cannot hold up the
        // shutdown).
        let _ = tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await;
        connections.abort_all();
        while connections.join_next().await.is_some() {}
        self.shutdown().await
    }

    /// Takes no more writes and waits until the writer has applied every queued one.
    pub async fn shutdown(&self) -> Result<()> {
        self.state.writer.close().await
    }

    /// Serves on `listener` until Ctrl-C or SIGTERM, on a tokio runtime of its own; returns when
    /// everything queued is committed. Work of requests that are gone (a search whose client
    /// timed out) is not waited for: the runtime is shut down without waiting for its blocking
    /// pool.
    pub fn run(self, listener: std::net::TcpListener) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("pairalign-http")
            .build()
            .map_err(|e| Error::io("starting the async runtime", e))?;
        let served = runtime.block_on(async move {
            listener
                .set_nonblocking(true)
                .map_err(|e| Error::io("configuring the listener", e))?;
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|e| Error::io("configuring the listener", e))?;
            self.serve(listener, shutdown_signal()).await
        });
        // Dropping a runtime waits for every blocking task; a search left running by a client
        // that gave up must not hold up the exit.
        runtime.shutdown_timeout(std::time::Duration::from_millis(100));
        served
    }
}

/// Connections over the cap being answered 503 at once; more are closed without an answer, so
/// that descriptors stay within the cap plus this.
const REFUSALS_IN_FLIGHT: usize = 64;

/// The connection cap: `wanted`, lowered to fit the process's limit on open files with 64
/// descriptors to spare for the database's own files and [`REFUSALS_IN_FLIGHT`] for refusals.
fn connection_cap(wanted: usize) -> usize {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            let soft = usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX);
            return wanted
                .min(soft.saturating_sub(64 + REFUSALS_IN_FLIGHT))
                .max(1);
        }
    }
    wanted
}

/// Answers a connection over the cap with 503 and closes it, without reading the request: at
/// most a second is spent on it.
async fn refuse_connection(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    const BODY: &str = "{\"error\":{\"code\":\"overloaded\",\"message\":\"too many open \
                        connections; retry shortly\"}}";
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let _ = stream.write_all(reply.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No handler could be installed: never complete rather than stop at once.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
