//! A power-loss model: replay the recorded file-system events of a workload up to every point,
//! keep only what had been made durable by then, and reopen the database from that.
//!
//! Two disks are modelled, both losing every byte that was not fsynced:
//! - `strict`: names too are lost unless their directory was fsynced after the change (POSIX
//!   promises no more);
//! - `ordered_names`: every create, rename and removal survives at once (as with a journalling
//!   file system that orders metadata), but file contents only as far as they were fsynced, so a
//!   rename can land before the data of the file renamed.
//!
//! After each simulated crash the database must open, hold the documents of the last commit that
//! returned before the crash or of the one in progress (never a mix, never less), and take a new
//! commit.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::recorder::{self, Recorded};
use super::Event;
use crate::{DatabaseConfig, DatabaseWriter, NewDoc, Searcher};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Disk {
    Strict,
    OrderedNames,
}

/// The file system as the replay goes: names to inodes now, and what would survive a crash.
#[derive(Default)]
struct Replay {
    next_inode: u64,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    durable_bytes: HashMap<u64, Vec<u8>>,
}

impl Replay {
    /// Starts from the files under `root` as they are, all durable.
    fn from_disk(root: &Path) -> Replay {
        let mut replay = Replay::default();
        for path in files_under(root) {
            let inode = replay.new_inode();
            replay.names.insert(path.clone(), inode);
            replay.durable_names.insert(path.clone(), inode);
            replay
                .durable_bytes
                .insert(inode, std::fs::read(&path).expect("readable"));
        }
        replay
    }

    fn new_inode(&mut self) -> u64 {
        self.next_inode += 1;
        self.next_inode
    }

    fn apply(&mut self, (event, bytes): &Recorded) {
        match event {
            Event::Created(path) => {
                let inode = self.new_inode();
                self.names.insert(path.clone(), inode);
            }
            Event::FileSynced(path) => {
                let inode = self.names[path];
                let bytes = bytes.clone().expect("synced files carry their bytes");
                self.durable_bytes.insert(inode, bytes);
            }
            Event::Renamed(from, to) => {
                let inode = self.names.remove(from).expect("renamed file exists");
                self.names.insert(to.clone(), inode);
            }
            Event::Removed(path) => {
                self.names.remove(path);
            }
            Event::DirSynced(dir) => {
                self.durable_names.retain(|p, _| p.parent() != Some(dir));
                for (path, inode) in &self.names {
                    if path.parent() == Some(dir) {
                        self.durable_names.insert(path.clone(), *inode);
                    }
                }
            }
        }
    }

    /// Writes what `disk` would hold after a crash now under `to` (paths re-rooted from `root`).
    fn crash(&self, disk: Disk, root: &Path, to: &Path) {
        let names = match disk {
            Disk::Strict => &self.durable_names,
            Disk::OrderedNames => &self.names,
        };
        std::fs::create_dir_all(to.join("segments")).expect("scratch dir");
        for (path, inode) in names {
            let target = to.join(path.strip_prefix(root).expect("under the root"));
            std::fs::create_dir_all(target.parent().expect("a parent")).expect("scratch dir");
            // A file whose data never reached an fsync comes back empty.
            let bytes = self.durable_bytes.get(inode).map_or(&[][..], Vec::as_slice);
            std::fs::write(target, bytes).expect("scratch file");
        }
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable dir") {
        let entry = entry.expect("dir entry");
        if entry.file_type().expect("file type").is_dir() {
            files.extend(files_under(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

fn docs(prefix: &str, n: usize) -> Vec<NewDoc> {
    (0..n)
        .map(|i| NewDoc {
            id: format!("{prefix}-{i}"),
            tokens: (0..40).map(|t| ((t * 7 + i * 13) % 61) as u16).collect(),
            ..NewDoc::default()
        })
        .collect()
}

/// The live documents as `id:length`: a replaced document (same id, another string) counts as
/// another document, so that a state with the old one, the new one, both or neither is told
/// apart.
fn live_ids(db: &Searcher) -> BTreeSet<String> {
    db.segments()
        .expect("the recovered database verifies")
        .iter()
        .flat_map(|s| s.docs())
        .filter(|d| !db.is_deleted(d.doc_id))
        .map(|d| format!("{}:{}", d.name, d.tokens.len()))
        .collect()
}

/// A commit that returned: the number of events recorded by then, and the documents it left.
struct Acknowledged {
    events: usize,
    ids: BTreeSet<String>,
}

/// What a workload did: the disk before it (all durable), the events, the documents before the
/// first commit and after each.
struct Recording {
    baseline: Replay,
    events: Vec<Recorded>,
    initial: BTreeSet<String>,
    acked: Vec<Acknowledged>,
}

/// Adds, deletes, a compaction, more adds and deletes, and a replacement, recording every event
/// and each commit's result.
fn workload(db_dir: &Path) -> Recording {
    let mut db = DatabaseWriter::create(db_dir, DatabaseConfig::new(64, 3)).expect("create");
    db.add_tokens(&docs("a", 5)).expect("add a");
    let initial = live_ids(&db);
    let baseline = Replay::from_disk(db_dir);
    recorder::start();
    let mut acked = Vec::new();
    let ack = |db: &Searcher| Acknowledged {
        events: recorder::events().len(),
        ids: live_ids(db),
    };
    db.add_tokens(&docs("b", 4)).expect("add b");
    acked.push(ack(&db));
    db.delete(&["a-1", "b-2"]).expect("delete");
    acked.push(ack(&db));
    db.add_tokens(&docs("c", 3)).expect("add c");
    acked.push(ack(&db));
    db.compact().expect("compact");
    acked.push(ack(&db));
    db.delete(&["c-0"]).expect("delete after compaction");
    acked.push(ack(&db));
    db.add_tokens(&docs("d", 2)).expect("add d");
    acked.push(ack(&db));
    // A changed file indexed again: its old document and its new one in one commit, so a crash
    // leaves the old or the new, never neither (issue 24).
    let mut changed = docs("b", 2);
    for doc in &mut changed {
        doc.tokens.truncate(25);
    }
    db.replace(&["b-0", "b-1"], &changed).expect("replace");
    acked.push(ack(&db));
    let events = recorder::events();
    recorder::stop();
    Recording {
        baseline,
        events,
        initial,
        acked,
    }
}

fn check_every_crash_point(disk: Disk) {
    let scratch = tempfile::tempdir().expect("tempdir");
    let root = scratch.path().join("db");
    let Recording {
        baseline: mut replay,
        events,
        initial,
        acked,
    } = workload(&root);
    assert!(
        events
            .iter()
            .any(|(e, _)| matches!(e, Event::Renamed(_, to) if to.ends_with("MANIFEST"))),
        "the workload's commits were recorded"
    );
    eprintln!(
        "{disk:?}: {} events, {} commits acknowledged",
        events.len(),
        acked.len()
    );
    for k in 0..=events.len() {
        if k > 0 {
            replay.apply(&events[k - 1]);
        }
        let crashed = scratch.path().join(format!("crash-{k}"));
        replay.crash(disk, &root, &crashed);
        let before = acked
            .iter()
            .rev()
            .find(|a| a.events <= k)
            .map_or(&initial, |a| &a.ids);
        let after = acked.iter().find(|a| a.events > k).map(|a| &a.ids);
        let mut db = DatabaseWriter::open(&crashed).unwrap_or_else(|e| {
            panic!("{disk:?}: the database does not open after a crash at event {k}: {e}")
        });
        let ids = live_ids(&db);
        assert!(
            &ids == before || Some(&ids) == after,
            "{disk:?}, crash at event {k} ({:?}): {ids:?}, expected {before:?} or {after:?}",
            events.get(k.wrapping_sub(1)).map(|(e, _)| e)
        );
        // The recovered database takes new commits and reopens with them.
        db.add_tokens(&docs("z", 1))
            .unwrap_or_else(|e| panic!("{disk:?}: no commit after a crash at event {k}: {e}"));
        drop(db);
        let reopened = Searcher::open(&crashed).expect("reopens");
        assert!(reopened.contains("z-0").expect("verifies"));
        if k == events.len() {
            assert!(ids.contains("b-0:25") && !ids.contains("b-0:40"), "{ids:?}");
        }
        std::fs::remove_dir_all(&crashed).expect("cleanup");
    }
}

#[test]
fn strict_disk_every_crash_point_recovers_a_commit() {
    check_every_crash_point(Disk::Strict);
}

#[test]
fn ordered_names_every_crash_point_recovers_a_commit() {
    check_every_crash_point(Disk::OrderedNames);
}

/// The model itself: a rename without a directory fsync is lost on the strict disk, and
/// unsynced bytes are lost on both.
#[test]
fn the_model_drops_what_was_not_synced() {
    let root = PathBuf::from("/r");
    let mut replay = Replay::default();
    let created = |p: &str| (Event::Created(root.join(p)), None);
    replay.apply(&created("a"));
    replay.apply(&(Event::FileSynced(root.join("a")), Some(b"data".to_vec())));
    replay.apply(&created("b"));
    replay.apply(&(Event::DirSynced(root.clone()), None));
    replay.apply(&(Event::Renamed(root.join("a"), root.join("c")), None));
    let scratch = tempfile::tempdir().expect("tempdir");
    let strict = scratch.path().join("strict");
    replay.crash(Disk::Strict, &root, &strict);
    assert_eq!(
        std::fs::read(strict.join("a")).expect("a survives"),
        b"data"
    );
    assert!(!strict.join("c").exists());
    assert_eq!(std::fs::read(strict.join("b")).expect("b's name"), b"");
    let ordered = scratch.path().join("ordered");
    replay.crash(Disk::OrderedNames, &root, &ordered);
    assert!(!ordered.join("a").exists());
    assert_eq!(std::fs::read(ordered.join("c")).expect("renamed"), b"data");
}
