//! Sharded archives ([`ShardWriter`]): written from recordings prepared elsewhere (through their
//! bytes, as workers send them), they hold exactly what one database indexed from the same
//! files holds, each document in the shard its id hashes to; reruns skip what is committed, a
//! changed file replaces its document, a copy is found in any shard, a writer dropped before
//! its commit loses only what was pending, and mismatched counts, tokenizers and bytes are
//! refused.

#![allow(clippy::unwrap_used)] // Tests unwrap: a failure is the test failing.

use std::collections::BTreeMap;
use std::path::Path;

use pairalign_datasets::decode::DecodeOptions;
use pairalign_engine::{Searcher, Symbol};
use pairalign_indexer::{
    index_paths, open_or_create_for, shard_dir, shard_dirs, shard_of, Added, AssetMetadata, Error,
    IndexOptions, PreparedRecording, ShardWriter, SHARDS_FILE,
};

mod common;
use common::{archive, listing, write_levels, Levels, LEVELS};

/// Every live document of the database in `dir`: id -> (tokens, times, duration).
fn documents(dir: &Path) -> BTreeMap<String, (Vec<Symbol>, Vec<u32>, u32)> {
    let db = Searcher::open(dir).unwrap();
    let mut all = BTreeMap::new();
    for segment in db.segments().unwrap().iter() {
        for ord in 0..segment.doc_count() {
            let doc = segment.doc(ord);
            if db.contains(doc.name).unwrap() {
                all.insert(
                    doc.name.to_string(),
                    (doc.tokens.to_vec(), doc.times_ms.to_vec(), doc.duration_ms),
                );
            }
        }
    }
    all
}

/// What a worker makes of the file at `path` with `tokenizer`.
fn prepare(tokenizer: &Levels, path: &Path, id: &str) -> PreparedRecording {
    PreparedRecording::from_file(
        tokenizer,
        path,
        id,
        &AssetMetadata::default(),
        &DecodeOptions::default(),
    )
    .unwrap()
}

/// Runs a sharded indexing of `root` into `dir` as a distributed run does: plan, prepare each
/// file (through the bytes a worker would send), add, finish. Returns the report and what
/// `add` said of each file.
fn run(
    dir: &Path,
    shards: usize,
    root: &Path,
    batch_files: usize,
) -> (pairalign_indexer::IndexReport, Vec<Added>) {
    let mut writer = ShardWriter::open_or_create(dir, shards, &LEVELS, batch_files, 1e9).unwrap();
    let plan = writer.plan(&[root]).unwrap();
    let mut added = Vec::new();
    for file in &plan.files {
        assert_eq!(file.shard, shard_of(&file.id, writer.shards()));
        let prepared = prepare(&LEVELS, &file.path, &file.id);
        let bytes = prepared.to_bytes();
        let received = PreparedRecording::from_bytes(&bytes).unwrap();
        assert_eq!(received, prepared);
        added.push(writer.add(received).unwrap());
    }
    (writer.finish(None).unwrap(), added)
}

#[test]
fn shards_hold_what_one_database_holds_each_document_where_its_id_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let root = archive(dir.path(), 12);
    let single = dir.path().join("single");
    let mut store = open_or_create_for(&single, &LEVELS).unwrap();
    let options = IndexOptions {
        compact_above: None,
        ..IndexOptions::default()
    };
    let one = index_paths(&mut store, &LEVELS, &[&root], &options, |_| {}).unwrap();
    drop(store);
    // Files i and i + 9 have the same content: the copies are left out, by either indexer.
    assert_eq!((one.indexed, one.duplicates.len()), (9, 3));

    let sharded = dir.path().join("sharded");
    let (report, added) = run(&sharded, 3, &root, 2);
    assert_eq!((report.files_found, report.indexed), (12, 9));
    let copies: Vec<_> = report.duplicates.iter().map(|d| (&d.path, &d.of)).collect();
    assert_eq!(
        copies,
        one.duplicates
            .iter()
            .map(|d| (&d.path, &d.of))
            .collect::<Vec<_>>()
    );
    assert_eq!(added.iter().filter(|a| **a == Added::Pending).count(), 9);
    assert!(report.batches >= 3, "{} batches", report.batches);
    assert_eq!(report.tokenizer.id, "levels");

    let dirs = shard_dirs(&sharded).unwrap();
    assert_eq!(
        dirs,
        (0..3).map(|i| shard_dir(&sharded, i)).collect::<Vec<_>>()
    );
    let mut union = BTreeMap::new();
    let mut catalog = Vec::new();
    for (index, shard) in dirs.iter().enumerate() {
        let docs = documents(shard);
        for id in docs.keys() {
            assert_eq!(shard_of(id, 3), index, "{id}");
        }
        union.extend(docs);
        catalog.extend(listing(shard));
    }
    assert_eq!(union, documents(&single));
    catalog.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(catalog, listing(&single));

    // A rerun finds nothing to do.
    let (report, added) = run(&sharded, 0, &root, 2);
    // A rerun finds nothing to do but look at the copies again (they have no entry).
    assert_eq!((report.indexed, report.skipped, added.len()), (0, 9, 3));
}

#[test]
fn reruns_replace_changed_files_skip_copies_in_any_shard_and_redo_what_was_not_committed() {
    let dir = tempfile::tempdir().unwrap();
    let root = archive(dir.path(), 6);
    let sharded = dir.path().join("sharded");
    run(&sharded, 2, &root, 32);

    // A changed file, and a copy whose id hashes to the other shard than its original's.
    let changed = root.join("f00.wav");
    write_levels(&changed, &[9, 9, 9, 9], 2.0);
    let original = root.join("f02.wav");
    let original_id = pairalign_indexer::doc_id(&original).unwrap();
    let copy = (0..)
        .map(|i| root.join(format!("copy{i}.wav")))
        .find(|p| {
            let id = p.to_string_lossy().into_owned();
            shard_of(&id, 2) != shard_of(&original_id, 2)
        })
        .unwrap();
    std::fs::copy(&original, &copy).unwrap();
    let (report, added) = run(&sharded, 2, &root, 32);
    assert_eq!(added.len(), 2, "{added:?}");
    assert!(
        added.contains(&Added::Duplicate(original_id.clone())),
        "{added:?}"
    );
    assert_eq!((report.indexed, report.replaced), (1, 1));
    assert_eq!(report.duplicates.len(), 1);
    let changed_id = pairalign_indexer::doc_id(&changed).unwrap();
    let shard = shard_dir(&sharded, shard_of(&changed_id, 2));
    assert_eq!(
        documents(&shard)[&changed_id].0.len(),
        8,
        "4 windows of 2 tokens"
    );

    // A file touched but not changed is recognized by its content: only its stamp is updated.
    let touched = root.join("f04.wav");
    std::fs::write(&touched, std::fs::read(&touched).unwrap()).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&touched)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let (report, added) = run(&sharded, 2, &root, 32);
    // (The copy is looked at again on every run: it has no entry of its own.)
    let copy_again = Added::Duplicate(original_id.clone());
    assert_eq!(added, vec![copy_again.clone(), Added::Unchanged]);
    assert_eq!((report.indexed, report.skipped), (0, 6));
    let (_, added) = run(&sharded, 2, &root, 32);
    assert_eq!(added, vec![copy_again], "the new stamp was recorded");

    // A writer dropped (killed) before its commit: what was pending is planned again.
    for i in 0..3 {
        write_levels(&root.join(format!("new{i}.wav")), &[3, (i + 1) as u16], 1.0);
    }
    let mut writer = ShardWriter::open_or_create(&sharded, 2, &LEVELS, 32, 1e9).unwrap();
    let plan = writer.plan(&[&root]).unwrap();
    assert_eq!(plan.files.len(), 4, "3 new files and the copy");
    for file in &plan.files {
        let prepared = prepare(&LEVELS, &file.path, &file.id);
        writer.add(prepared).unwrap();
    }
    drop(writer);
    let (report, _) = run(&sharded, 2, &root, 32);
    assert_eq!(report.indexed, 3);
}

#[test]
fn counts_tokenizers_folders_and_bytes_that_do_not_fit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = archive(dir.path(), 2);
    let sharded = dir.path().join("sharded");
    let new_without_count = ShardWriter::open_or_create(&sharded, 0, &LEVELS, 32, 1e9).unwrap_err();
    assert!(matches!(new_without_count, Error::InvalidOption(_)));
    run(&sharded, 2, &root, 32);
    let other_count = ShardWriter::open_or_create(&sharded, 3, &LEVELS, 32, 1e9).unwrap_err();
    assert!(
        other_count.to_string().contains("has 2 shards, not 3"),
        "{other_count}"
    );
    let other = Levels { hash: "bbbb" };
    let other_tokenizer = ShardWriter::open_or_create(&sharded, 2, &other, 32, 1e9).unwrap_err();
    assert!(other_tokenizer.is_tokenizer_mismatch(), "{other_tokenizer}");

    // Tokens another tokenizer made are refused, and nothing is written.
    let mut writer = ShardWriter::open_or_create(&sharded, 2, &LEVELS, 1, 1e9).unwrap();
    write_levels(&root.join("late.wav"), &[1, 2], 1.0);
    let late = pairalign_indexer::doc_id(&root.join("late.wav")).unwrap();
    let foreign = prepare(&other, &root.join("late.wav"), &late);
    let err = writer.add(foreign).unwrap_err();
    assert!(
        err.is_tokenizer_mismatch() && err.to_string().contains("bbbb"),
        "{err}"
    );
    drop(writer);
    assert!(!documents(&shard_dir(&sharded, shard_of(&late, 2))).contains_key(&late));

    // Bytes that are not a prepared recording, or one whose parts disagree.
    let good = prepare(&LEVELS, &root.join("late.wav"), &late);
    for bytes in [b"not json".to_vec(), good.to_bytes()[..40].to_vec()] {
        assert!(PreparedRecording::from_bytes(&bytes).is_err());
    }
    let mut short = good.clone();
    short.times_ms.pop();
    let err = PreparedRecording::from_bytes(&short.to_bytes()).unwrap_err();
    assert!(err.to_string().contains("times"), "{err}");

    // A plain database is not a sharded archive; a damaged SHARDS.json is named.
    let single = dir.path().join("single");
    drop(open_or_create_for(&single, &LEVELS).unwrap());
    let err = ShardWriter::open_or_create(&single, 2, &LEVELS, 32, 1e9).unwrap_err();
    assert!(err.to_string().contains("holds a database"), "{err}");
    assert!(shard_dirs(&single).is_err());
    std::fs::write(sharded.join(SHARDS_FILE), "{\"shards\": 2").unwrap();
    let err = shard_dirs(&sharded).unwrap_err();
    assert!(err.to_string().contains(SHARDS_FILE), "{err}");
    assert!(ShardWriter::open_or_create(&sharded, 2, &LEVELS, 32, 1e9).is_err());
}

/// The assignment is part of the on-disk format: these values must never change (a changed
/// hash would put a rerun's documents in other shards than the first run's).
#[test]
fn shard_assignment_is_stable_and_even() {
    let pinned: Vec<usize> = ["", "a", "/archive/interview-0412.flac"]
        .iter()
        .map(|id| shard_of(id, 1000))
        .collect();
    let expected: Vec<usize> = ["", "a", "/archive/interview-0412.flac"]
        .iter()
        .map(|id| {
            let h = blake3::hash(id.as_bytes());
            (u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap()) % 1000) as usize
        })
        .collect();
    assert_eq!(pinned, expected);
    let mut counts = [0usize; 4];
    for i in 0..10_000 {
        counts[shard_of(&format!("/archive/file-{i}.wav"), 4)] += 1;
    }
    assert!(
        counts.iter().all(|&c| (2_300..=2_700).contains(&c)),
        "{counts:?}"
    );
    assert_eq!(shard_of("anything", 1), 0);
}
