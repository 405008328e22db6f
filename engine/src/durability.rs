//! The points where the engine changes what a disk holds: a file created, a file fsynced, a
//! rename, a removal, a directory fsynced. Writers call [`note`] at each; outside tests it does
//! nothing (the closure is never called). In tests a recorder on the calling thread logs the
//! events, with each synced file's bytes, so that a power-loss model can rebuild what the disk
//! could hold after a crash between any two of them (see `power_loss` below, and
//! docs/formats.md "Durability" for the ordering these tests hold the engine to).

use std::path::PathBuf;

/// A change to the file system, in the order the engine made it.
#[derive(Clone, Debug)]
#[cfg_attr(not(test), allow(dead_code))] // Built only to be recorded by tests.
pub(crate) enum Event {
    /// A new file at this path (its contents are not durable until [`Event::FileSynced`]; its
    /// name is not until its directory is synced).
    Created(PathBuf),
    /// The file at this path was fsynced: its current contents are durable.
    FileSynced(PathBuf),
    /// A rename (durable when the directory is synced).
    Renamed(PathBuf, PathBuf),
    /// A removal (durable when the directory is synced).
    Removed(PathBuf),
    /// The directory was fsynced: its entries as they are now are durable.
    DirSynced(PathBuf),
}

/// Records `event()` when a test on this thread is recording; otherwise does nothing.
#[inline(always)]
pub(crate) fn note(event: impl FnOnce() -> Event) {
    #[cfg(test)]
    recorder::push(event());
    #[cfg(not(test))]
    let _ = event;
}

#[cfg(test)]
pub(crate) mod recorder {
    use std::cell::RefCell;

    use super::Event;

    /// An event with, for a synced file, its bytes at that moment.
    pub(crate) type Recorded = (Event, Option<Vec<u8>>);

    thread_local! {
        static LOG: RefCell<Option<Vec<Recorded>>> = const { RefCell::new(None) };
    }

    pub(super) fn push(event: Event) {
        LOG.with(|log| {
            if let Some(log) = log.borrow_mut().as_mut() {
                let bytes = match &event {
                    Event::FileSynced(path) => Some(std::fs::read(path).expect("synced file")),
                    _ => None,
                };
                log.push((event, bytes));
            }
        });
    }

    /// Starts recording this thread's events (dropping any earlier log).
    pub(crate) fn start() {
        LOG.with(|log| *log.borrow_mut() = Some(Vec::new()));
    }

    /// The events since [`start`] (recording goes on).
    pub(crate) fn events() -> Vec<Recorded> {
        LOG.with(|log| log.borrow().clone().unwrap_or_default())
    }

    /// Stops recording.
    pub(crate) fn stop() {
        LOG.with(|log| *log.borrow_mut() = None);
    }
}

#[cfg(test)]
mod power_loss;
