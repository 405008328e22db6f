//! What every request shares: the limits and token, the current snapshot, the writer, the jobs,
//! the metrics and the search and upload slots.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::archive::Snapshot;
use crate::jobs::Jobs;
use crate::limits::{Limits, Slots};
use crate::metrics::Metrics;
use crate::writer::Writer;

/// The server's shared state (cheap to clone: one `Arc`).
#[derive(Clone, Debug)]
pub(crate) struct AppState(Arc<Inner>);

#[derive(Debug)]
pub(crate) struct Inner {
    pub limits: Limits,
    /// Writes need `Authorization: Bearer <token>` when set.
    pub token: Option<String>,
    /// Reads need the token too (every route of the table but `/healthz` and `/openapi.json`;
    /// the console's static files are outside it).
    pub protect_reads: bool,
    /// The last committed state; the writer replaces it after each write.
    pub current: Arc<ArcSwap<Snapshot>>,
    pub writer: Writer,
    pub jobs: Arc<Jobs>,
    pub metrics: Metrics,
    pub search_slots: Slots,
    pub upload_slots: Slots,
    /// `<db>/uploads`: request bodies on their way to the archive.
    pub uploads: PathBuf,
}

impl AppState {
    pub(crate) fn new(inner: Inner) -> Self {
        AppState(Arc::new(inner))
    }

    /// The snapshot to read from now.
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot::clone(&self.current.load())
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
