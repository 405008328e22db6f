//! pairalign-server: the HTTP API over one archive (shared/DESIGN.md section 8, issue 6), axum on
//! tokio.
//!
//! Design: a single writer and snapshot readers. One thread owns the writable archive and applies
//! writes (uploads, deletes, compactions) one at a time from a queue ([`writer`]); after each
//! commit it publishes a fresh read-only snapshot. Searches and GETs take the current snapshot and
//! run on the blocking pool, so they run while the writer indexes or compacts and see committed
//! data only. Limits ([`Limits`]) bound bodies, time, concurrent searches and uploads, and the
//! writer's queue. Shutdown stops accepting, finishes the requests in flight, lets the writer
//! apply every queued write, then returns.
//!
//! ```no_run
//! use std::sync::Arc;
//! use pairalign_server::{Limits, Server};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = pairalign_models::Device::Cpu;
//! let tokenizer = Arc::new(pairalign_query::database_tokenizer("assets.db".as_ref(), &device)?);
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
mod auth;
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
pub use auth::read_token_file;
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
    limits: Limits,
}

impl ServerBuilder {
    /// Writes need `Authorization: Bearer <token>` (default: no token, writes are open; the
    /// server binds 127.0.0.1 unless told otherwise).
    pub fn token(&mut self, token: Option<String>) -> &mut Self {
        self.token = token;
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

    /// Serves on `listener` until `shutdown` completes, then stops accepting, finishes the
    /// requests in flight and commits every queued write before it returns.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let served = axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| Error::io("serving", e));
        let closed = self.shutdown().await;
        served.and(closed)
    }

    /// Takes no more writes and waits until the writer has applied every queued one.
    pub async fn shutdown(&self) -> Result<()> {
        self.state.writer.close().await
    }

    /// Serves on `listener` until Ctrl-C or SIGTERM, on a tokio runtime of its own; returns when
    /// everything queued is committed.
    pub fn run(self, listener: std::net::TcpListener) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("pairalign-http")
            .build()
            .map_err(|e| Error::io("starting the async runtime", e))?;
        runtime.block_on(async move {
            listener
                .set_nonblocking(true)
                .map_err(|e| Error::io("configuring the listener", e))?;
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|e| Error::io("configuring the listener", e))?;
            self.serve(listener, shutdown_signal()).await
        })
    }
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
