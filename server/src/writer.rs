//! The single writer: one thread owns the writable archive and applies writes (uploads, deletes,
//! compactions) one at a time, in the order they were queued. After each committed write it
//! publishes a fresh [`Snapshot`] before it answers, so a client that got its reply searches a
//! state that holds its write, and searches never see half of one.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};

use crate::archive::{Asset, Compaction, Snapshot, UploadMetadata, Writable};
use crate::jobs::Jobs;
use crate::request::UploadedFile;
use crate::{Error, Result};

/// A write for the writer thread.
#[derive(Debug)]
pub(crate) enum Write {
    /// Index an uploaded file; the temporary file is removed when the write is done.
    Upload {
        file: UploadedFile,
        metadata: UploadMetadata,
        reply: UploadReply,
    },
    /// Delete an asset; answers whether it existed.
    Delete {
        id: String,
        reply: oneshot::Sender<Result<bool>>,
    },
    /// Merge every segment into one, dropping deleted documents.
    Compact {
        reply: oneshot::Sender<Result<Compaction>>,
    },
}

/// Who learns how an upload went.
#[derive(Debug)]
pub(crate) enum UploadReply {
    /// The request waiting for it (201).
    Wait(oneshot::Sender<Result<Asset>>),
    /// The job it belongs to (202).
    Job(String),
}

/// The handle on the writer thread that requests use.
#[derive(Debug)]
pub(crate) struct Writer {
    queue: Mutex<Option<mpsc::Sender<Write>>>,
    queued: Arc<AtomicUsize>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread on `archive`; it publishes snapshots into `current` and job
    /// outcomes into `jobs`.
    pub(crate) fn start(
        archive: Writable,
        current: Arc<ArcSwap<Snapshot>>,
        jobs: Arc<Jobs>,
        capacity: usize,
    ) -> Result<Writer> {
        let (tx, rx) = mpsc::channel(capacity);
        let queued = Arc::new(AtomicUsize::new(0));
        let thread = {
            let queued = Arc::clone(&queued);
            std::thread::Builder::new()
                .name("pairalign-writer".into())
                .spawn(move || run(archive, rx, current, jobs, queued))
                .map_err(|e| Error::io("starting the writer thread", e))?
        };
        Ok(Writer {
            queue: Mutex::new(Some(tx)),
            queued,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `write`; 503 when the queue is full or the server is shutting down.
    pub(crate) fn submit(&self, write: Write) -> Result<()> {
        let sender = self
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(Error::ShuttingDown)?;
        // Counted before sending so that the writer's decrement never comes first.
        self.queued.fetch_add(1, Ordering::SeqCst);
        sender.try_send(write).map_err(|e| {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            match e {
                mpsc::error::TrySendError::Full(_) => {
                    Error::Overloaded("the writer's queue is full; retry shortly".to_string())
                }
                mpsc::error::TrySendError::Closed(_) => Error::ShuttingDown,
            }
        })
    }

    /// Writes waiting in the queue (not counting the one being applied).
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Takes no more writes, lets the thread apply every queued one, and waits for it to end.
    pub(crate) async fn close(&self) -> Result<()> {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|e| Error::Internal(format!("waiting for the writer: {e}")))?
                .map_err(|_| Error::Internal("the writer thread panicked".into()))?;
        }
        Ok(())
    }
}

/// The writer thread: applies writes until every sender is gone and the queue is empty.
fn run(
    mut archive: Writable,
    mut queue: mpsc::Receiver<Write>,
    current: Arc<ArcSwap<Snapshot>>,
    jobs: Arc<Jobs>,
    queued: Arc<AtomicUsize>,
) {
    while let Some(write) = queue.blocking_recv() {
        queued.fetch_sub(1, Ordering::SeqCst);
        match write {
            Write::Upload {
                file,
                metadata,
                reply,
            } => {
                if let UploadReply::Job(id) = &reply {
                    jobs.set_running(id);
                }
                let outcome = archive.upload(file.path(), &metadata, file.display_name());
                // The temporary file goes as soon as it is indexed (or refused).
                drop(file);
                let outcome = outcome.and_then(|asset| publish(&archive, &current).map(|()| asset));
                match reply {
                    UploadReply::Wait(tx) => {
                        let _ = tx.send(outcome);
                    }
                    UploadReply::Job(id) => jobs.finish(&id, outcome.map_err(|e| (&e).into())),
                }
            }
            Write::Delete { id, reply } => {
                let outcome = archive.delete(&id).and_then(|deleted| {
                    if deleted {
                        publish(&archive, &current)?;
                    }
                    Ok(deleted)
                });
                let _ = reply.send(outcome);
            }
            Write::Compact { reply } => {
                // Searches go on against the published snapshot, whose segments stay mapped
                // until the last search holding it ends, and see the merged one once it is
                // committed and published.
                let outcome = archive
                    .compact()
                    .and_then(|compaction| publish(&archive, &current).map(|()| compaction));
                let _ = reply.send(outcome);
            }
        }
    }
}

fn publish(archive: &Writable, current: &ArcSwap<Snapshot>) -> Result<()> {
    current.store(Arc::new(archive.snapshot()?));
    Ok(())
}

/// Removes temporary upload files left by a server that was killed (the writer holds the
/// database's lock, so no other server is using them).
pub(crate) fn clear_uploads(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(crate::request::UPLOAD_PREFIX)
        {
            let path = entry.path();
            let _ = match entry.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(path),
                _ => std::fs::remove_file(path),
            };
        }
    }
    Ok(())
}
