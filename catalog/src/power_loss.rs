//! Power loss under the catalog (issue 9): the catalog runs over a tantivy directory that
//! records every write, flush, delete and directory sync; then, for every prefix of that record,
//! the directory a power cut at that moment would leave is rebuilt (only what was made durable),
//! and the catalog must open from it, hold exactly the entries of the last commit that returned
//! or of the one in flight, and take further writes.
//!
//! Durability model (POSIX, as tantivy's `MmapDirectory` uses it): a file's bytes are durable as
//! of its last flush (tantivy's flush syncs the file's data), but a new file, or a deleted one,
//! is only durable once the directory is synced; `atomic_write` (meta.json) writes, syncs and
//! renames, then syncs the directory, so it is durable with everything pending when it returns.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use tantivy::directory::error::{DeleteError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, FileHandle, RamDirectory, TerminatingWrite, WatchCallback, WatchHandle, WritePtr,
};
use tantivy::Directory;

use crate::catalog::tests::asset;
use crate::catalog::Catalog;

/// One change the directory saw, in order.
#[derive(Clone, Debug)]
enum Event {
    /// A file's bytes so far, flushed (durable data, not yet a durable entry if new).
    Flush(PathBuf, Vec<u8>),
    /// Written, synced, renamed into place and the directory synced.
    Atomic(PathBuf, Vec<u8>),
    Delete(PathBuf),
    SyncDirectory,
}

type Log = Arc<Mutex<Vec<Event>>>;

fn push(log: &Log, event: Event) {
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(event);
}

/// A `RamDirectory` that records what it is asked to do.
#[derive(Clone, Debug)]
struct Recording {
    inner: RamDirectory,
    log: Log,
}

struct RecordingWriter {
    inner: WritePtr,
    path: PathBuf,
    written: Vec<u8>,
    log: Log,
}

impl Write for RecordingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()?;
        push(
            &self.log,
            Event::Flush(self.path.clone(), self.written.clone()),
        );
        Ok(())
    }
}

impl TerminatingWrite for RecordingWriter {
    fn terminate_ref(&mut self, token: AntiCallToken) -> io::Result<()> {
        self.flush()?;
        self.inner.terminate_ref(token)
    }
}

impl Directory for Recording {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        self.inner.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.inner.delete(path)?;
        push(&self.log, Event::Delete(path.to_path_buf()));
        Ok(())
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        let inner = self.inner.open_write(path)?;
        Ok(io::BufWriter::new(Box::new(RecordingWriter {
            inner,
            path: path.to_path_buf(),
            written: Vec::new(),
            log: Arc::clone(&self.log),
        })))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.inner.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.inner.atomic_write(path, data)?;
        push(&self.log, Event::Atomic(path.to_path_buf(), data.to_vec()));
        Ok(())
    }

    fn sync_directory(&self) -> io::Result<()> {
        self.inner.sync_directory()?;
        push(&self.log, Event::SyncDirectory);
        Ok(())
    }

    fn watch(&self, callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(callback)
    }
}

/// The files a power cut after `events` leaves.
fn durable(events: &[Event]) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    // Flushed data of entries not yet durable, and deletes not yet durable.
    let mut created: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
    let mut deleted: BTreeSet<PathBuf> = BTreeSet::new();
    let sync = |files: &mut BTreeMap<PathBuf, Vec<u8>>,
                created: &mut BTreeMap<PathBuf, Vec<u8>>,
                deleted: &mut BTreeSet<PathBuf>| {
        files.append(created);
        for path in std::mem::take(deleted) {
            files.remove(&path);
        }
    };
    for event in events {
        match event {
            Event::Flush(path, bytes) => {
                if let Some(durable) = files.get_mut(path) {
                    *durable = bytes.clone();
                } else {
                    created.insert(path.clone(), bytes.clone());
                }
            }
            Event::Delete(path) => {
                created.remove(path);
                deleted.insert(path.clone());
            }
            Event::SyncDirectory => sync(&mut files, &mut created, &mut deleted),
            Event::Atomic(path, bytes) => {
                deleted.remove(path);
                created.remove(path);
                files.insert(path.clone(), bytes.clone());
                sync(&mut files, &mut created, &mut deleted);
            }
        }
    }
    files
}

/// A directory holding `files`, less tantivy's lock files: `MmapDirectory` takes its locks as
/// OS file locks, which a power cut releases, so a lock file left on disk does not stop the
/// next writer (over a `RamDirectory` the file itself is the lock).
fn ram_directory(files: &BTreeMap<PathBuf, Vec<u8>>) -> RamDirectory {
    let directory = RamDirectory::create();
    let locks = [
        tantivy::directory::INDEX_WRITER_LOCK.filepath.as_path(),
        tantivy::directory::META_LOCK.filepath.as_path(),
    ];
    for (path, bytes) in files.iter().filter(|(p, _)| !locks.contains(&p.as_path())) {
        directory.atomic_write(path, bytes).unwrap();
    }
    directory
}

fn live_ids(catalog: &Catalog) -> BTreeSet<String> {
    catalog
        .reader()
        .all()
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect()
}

#[test]
fn every_power_cut_leaves_a_committed_catalog_that_takes_writes() {
    let log = Log::default();
    let recording = Recording {
        inner: RamDirectory::create(),
        log: Arc::clone(&log),
    };
    let name = PathBuf::from("power-loss-catalog");
    // (events when the operation returned, ids live after it)
    let mut committed = vec![(0, BTreeSet::new())];
    {
        let mut catalog = Catalog::with_directory(name.clone(), recording).unwrap();
        let mut live = BTreeSet::new();
        let mut mark = |catalog: &Catalog, live: &BTreeSet<String>| {
            assert_eq!(&live_ids(catalog), live);
            let events = log.lock().unwrap().len();
            committed.push((events, live.clone()));
        };
        mark(&catalog, &live);
        for round in 0..6 {
            let batch: Vec<_> = (0..3)
                .map(|i| {
                    asset(
                        &format!("r{round}-{i}"),
                        &["t"],
                        1.0,
                        &format!("h{round}{i}"),
                    )
                })
                .collect();
            catalog.upsert(&batch).unwrap();
            live.extend(batch.iter().map(|a| a.id.clone()));
            mark(&catalog, &live);
            // Replace one of the previous round's and remove another: commits with deletes.
            if round > 0 {
                let replaced = asset(&format!("r{}-0", round - 1), &["u"], 2.0, "x");
                catalog.upsert(&[replaced]).unwrap();
                mark(&catalog, &live);
                let gone = format!("r{}-1", round - 1);
                catalog.remove(&[gone.as_str()]).unwrap();
                live.remove(&gone);
                mark(&catalog, &live);
            }
        }
    }
    let events = log.lock().unwrap().clone();
    assert!(
        events.iter().any(|e| matches!(e, Event::Delete(_))),
        "the workload deletes files"
    );
    for cut in 0..=events.len() {
        let files = durable(&events[..cut]);
        // The last operation that returned before the cut, and the one in flight.
        let done = committed.iter().rposition(|(at, _)| *at <= cut).unwrap();
        let allowed: Vec<&BTreeSet<String>> = committed[done..]
            .iter()
            .take(2)
            .map(|(_, ids)| ids)
            .collect();
        let mut catalog = Catalog::with_directory(name.clone(), ram_directory(&files))
            .unwrap_or_else(|e| panic!("power cut after event {cut} of {}: {e}", events.len()));
        let ids = live_ids(&catalog);
        assert!(
            allowed.contains(&&ids),
            "power cut after event {cut}: {ids:?} is none of {allowed:?}"
        );
        // It takes writes again, deletes included (the files of the lost commit do not collide).
        catalog
            .upsert(&[
                asset("after", &[], 1.0, "after"),
                asset("r0-0", &[], 3.0, "y"),
            ])
            .unwrap_or_else(|e| panic!("power cut after event {cut}: {e}"));
        assert!(live_ids(&catalog).contains("after"));
    }
}
