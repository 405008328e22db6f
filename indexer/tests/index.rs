//! The indexer as a library, with a small deterministic tokenizer so that the tests are fast and
//! the expected token strings are known: one document per file with window-by-window times,
//! batches as segments, idempotent re-runs, bad files, the tokenizer record, stop requests.

#![allow(clippy::unwrap_used)] // Tests unwrap: a failure is the test failing.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use pairalign_engine::{DatabaseWriter, SearchOptions};
use pairalign_indexer::{doc_id, index_paths, open_or_create_for, Error, IndexOptions};

mod common;
use common::{archive, listing, write_levels, Levels, LEVELS};

fn options(batch_files: usize) -> IndexOptions {
    IndexOptions {
        jobs: 2,
        batch_files,
        compact_above: None,
        ..IndexOptions::default()
    }
}

#[test]
fn many_batches_are_merged_at_the_end_unless_stopped_or_few() {
    let dir = tempfile::tempdir().unwrap();
    let root = archive(dir.path(), 7);
    let merged = |limit: Option<usize>, batch: usize| {
        let db_dir = tempfile::tempdir_in(dir.path()).unwrap();
        let mut db = open_or_create_for(db_dir.path().join("db"), &LEVELS).unwrap();
        let opts = IndexOptions {
            compact_above: limit,
            ..options(batch)
        };
        let report = index_paths(&mut db, &LEVELS, &[&root], &opts, |_| {}).unwrap();
        assert_eq!(report.indexed, 7);
        let info = db.info().unwrap();
        assert_eq!(info.docs, 7);
        (report.batches, report.compacted, db.segment_count())
    };
    assert_eq!(merged(Some(2), 1), (7, true, 1));
    assert_eq!(
        merged(Some(8), 1),
        (7, false, 7),
        "7 segments are not more than 8"
    );
    assert_eq!(merged(None, 1), (7, false, 7));
}

#[test]
fn one_document_per_file_with_window_times_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let root = archive(dir.path(), 7);
    let mut db = open_or_create_for(dir.path().join("db"), &LEVELS).unwrap();
    let mut ticks = 0;
    let report = index_paths(&mut db, &LEVELS, &[&root], &options(3), |_| ticks += 1).unwrap();
    assert_eq!(report.files_found, 7);
    assert_eq!(report.indexed, 7);
    assert_eq!(report.batches, 3, "7 files in batches of 3");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(
        (report.audio_s - 7.0 * 7.5).abs() < 0.01,
        "{}",
        report.audio_s
    );
    assert_eq!(report.tokens, 7 * 6);
    assert!(ticks >= 2);
    assert_eq!(db.segment_count(), 3);
    assert_eq!(db.tokenizer().unwrap().id, "levels");

    // File 4: levels 5, 5, 9; windows of 3, 3 and 1.5 s at 0, 3000 and 6000 ms.
    let id = doc_id(&root.join("f04.wav")).unwrap();
    let hits = db
        .search_tokens(
            &[30, 5, 30, 5, 15, 9],
            &SearchOptions {
                k: None,
                top: 1,
                ..SearchOptions::default()
            },
        )
        .unwrap()
        .hits;
    assert_eq!(hits[0].id, id);
    assert_eq!(hits[0].distance, 0);
    assert_eq!((hits[0].start_ms, hits[0].end_ms), (0, 7500));
    let hits = db
        .search_tokens(&[5, 15, 9], &SearchOptions::default())
        .unwrap()
        .hits;
    assert_eq!(hits[0].start_ms, 3100, "times are absolute: {hits:?}");
}

#[test]
fn rerun_and_overlapping_paths_add_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = archive(dir.path(), 4);
    let mut db = open_or_create_for(dir.path().join("db"), &LEVELS).unwrap();
    let sub = root.join("sub");
    let first = index_paths(&mut db, &LEVELS, &[&root, &sub], &options(32), |_| {}).unwrap();
    assert_eq!((first.indexed, first.skipped), (4, 2), "sub/ named twice");
    let again = index_paths(&mut db, &LEVELS, &[&root], &options(32), |_| {}).unwrap();
    assert_eq!((again.indexed, again.skipped, again.batches), (0, 4, 0));
    assert_eq!(db.info().unwrap().docs, 4);
}

#[test]
fn reruns_go_by_content_changed_files_are_replaced_and_copies_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = archive(dir.path(), 4);
    let mut store = open_or_create_for(dir.path().join("db"), &LEVELS).unwrap();
    index_paths(&mut store, &LEVELS, &[&root], &options(32), |_| {}).unwrap();
    let f00 = root.join("f00.wav");
    let id = doc_id(&f00).unwrap();
    let tokens_of = |store: &pairalign_indexer::Store, id: &str| {
        let (s, ord) = store.find(id).unwrap().unwrap();
        store.segments().unwrap()[s].doc_tokens(ord).to_vec()
    };
    let before = tokens_of(&store, &id);

    // Touched (new modification time), same bytes: the hash says unchanged.
    let bytes = std::fs::read(&f00).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&f00, &bytes).unwrap();
    let touched = index_paths(&mut store, &LEVELS, &[&root], &options(32), |_| {}).unwrap();
    assert_eq!(
        (touched.indexed, touched.skipped, touched.replaced),
        (0, 4, 0)
    );
    let stamp = pairalign_catalog::file_stamp(&f00).unwrap();
    let asset = store.catalog.reader().get(&id).unwrap().unwrap();
    assert_eq!(
        asset.file_size.zip(asset.modified_ns),
        Some(stamp),
        "restamped"
    );

    // New content under the same path: re-indexed in place of the old document.
    write_levels(&f00, &[7, 7], 2.0);
    let changed = index_paths(&mut store, &LEVELS, &[&root], &options(32), |_| {}).unwrap();
    assert_eq!(
        (changed.indexed, changed.skipped, changed.replaced),
        (1, 3, 1)
    );
    assert_eq!(store.info().unwrap().docs, 4);
    assert_ne!(tokens_of(&store, &id), before);
    assert_eq!(tokens_of(&store, &id), [30, 7, 20, 7]);
    let asset = store.catalog.reader().get(&id).unwrap().unwrap();
    assert_eq!(
        asset.content_hash,
        pairalign_catalog::hash_file(&f00).unwrap()
    );
    assert!((asset.duration_s - 5.0).abs() < 1e-9);

    // A copy under a new path is a duplicate of the indexed file, as is a second copy made in
    // the same run; once the original is gone (moved), the copy is indexed.
    let copies = dir.path().join("copies");
    std::fs::create_dir(&copies).unwrap();
    std::fs::copy(
        root.join("f01.wav".replace("f01", "sub/f01")),
        copies.join("a.wav"),
    )
    .unwrap();
    write_levels(&copies.join("new1.wav"), &[2, 2, 2], 1.0);
    std::fs::copy(copies.join("new1.wav"), copies.join("new2.wav")).unwrap();
    let run = index_paths(&mut store, &LEVELS, &[&copies], &options(32), |_| {}).unwrap();
    assert_eq!(run.indexed, 1, "{run:?}");
    let mut dups: Vec<(String, String)> = run
        .duplicates
        .iter()
        .map(|d| {
            (
                d.path.file_name().unwrap().to_str().unwrap().to_string(),
                d.of.clone(),
            )
        })
        .collect();
    dups.sort();
    assert_eq!(
        dups[0],
        (
            "a.wav".to_string(),
            doc_id(&root.join("sub/f01.wav")).unwrap()
        )
    );
    assert_eq!(dups[1].0, "new2.wav");
    assert_eq!(dups[1].1, doc_id(&copies.join("new1.wav")).unwrap());
    std::fs::remove_file(root.join("sub/f01.wav")).unwrap();
    let moved = index_paths(&mut store, &LEVELS, &[&copies], &options(32), |_| {}).unwrap();
    assert_eq!((moved.indexed, moved.duplicates.len()), (1, 1), "{moved:?}");
    assert!(store
        .contains(&doc_id(&copies.join("a.wav")).unwrap())
        .unwrap());

    // Deleting through the store removes the catalog entry too.
    store.delete(&[id.as_str()]).unwrap();
    assert!(store.catalog.reader().get(&id).unwrap().is_none());
}

#[test]
fn a_broken_sidecar_fails_its_file_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = archive(dir.path(), 2);
    std::fs::write(root.join("f00.json"), "{\"tags\": 3}").unwrap();
    std::fs::write(
        root.join("sub/f01.wav.json"),
        r#"{"title": "One", "tags": ["x"]}"#,
    )
    .unwrap();
    let mut store = open_or_create_for(dir.path().join("db"), &LEVELS).unwrap();
    let report = index_paths(&mut store, &LEVELS, &[&root], &options(32), |_| {}).unwrap();
    assert_eq!(report.indexed, 1);
    assert_eq!(report.failed.len(), 1);
    assert!(
        report.failed[0].reason.contains("f00.json"),
        "{:?}",
        report.failed
    );
    let one = doc_id(&root.join("sub/f01.wav")).unwrap();
    let hits = store
        .catalog
        .reader()
        .select("title:one AND tags:X")
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, one);
}

#[test]
fn bad_files_are_listed_and_the_rest_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let root = archive(dir.path(), 3);
    std::fs::write(
        root.join("broken.wav"),
        b"RIFF\x10\x00\x00\x00WAVEfmt garbage",
    )
    .unwrap();
    std::fs::write(root.join("empty.mp3"), b"").unwrap();
    let mut db = open_or_create_for(dir.path().join("db"), &LEVELS).unwrap();
    let missing = dir.path().join("missing");
    let report = index_paths(&mut db, &LEVELS, &[&root, &missing], &options(32), |_| {}).unwrap();
    assert_eq!(report.indexed, 3);
    let mut failed: Vec<&Path> = report.failed.iter().map(|f| f.path.as_path()).collect();
    failed.sort();
    assert_eq!(
        failed,
        vec![
            root.join("broken.wav").as_path(),
            root.join("empty.mp3").as_path(),
            missing.as_path()
        ]
    );
    for f in &report.failed {
        assert!(!f.reason.is_empty());
        assert!(
            !f.reason.starts_with(&*f.path.to_string_lossy()),
            "the path is not repeated: {}",
            f.reason
        );
    }
}

#[test]
fn another_tokenizer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = archive(dir.path(), 2);
    let db_dir = dir.path().join("db");
    let mut db = open_or_create_for(&db_dir, &LEVELS).unwrap();
    index_paths(&mut db, &LEVELS, &[&root], &options(32), |_| {}).unwrap();
    let other = Levels { hash: "bbbb" };
    let err = index_paths(&mut db, &other, &[&root], &options(32), |_| {}).unwrap_err();
    assert!(err.is_tokenizer_mismatch(), "{err}");
    drop(db);
    let err = open_or_create_for(&db_dir, &other).unwrap_err();
    assert!(err.to_string().contains("bbbb"), "{err}");
    // A database of imported tokens records no tokenizer: audio is not mixed into it.
    let imported = dir.path().join("imported");
    let mut db =
        DatabaseWriter::create(&imported, pairalign_engine::DatabaseConfig::new(64, 3)).unwrap();
    db.add_tokens(&[pairalign_engine::NewDoc {
        id: "a".into(),
        tokens: vec![1, 2, 3],
        times_ms: None,
        duration_ms: None,
    }])
    .unwrap();
    drop(db);
    let mut store = pairalign_indexer::Store::open(&imported).unwrap();
    let err = index_paths(&mut store, &LEVELS, &[&root], &options(32), |_| {}).unwrap_err();
    assert!(err.is_tokenizer_mismatch(), "{err}");
}

#[test]
fn a_stop_request_commits_what_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let root = archive(dir.path(), 5);
    let mut db = open_or_create_for(dir.path().join("db"), &LEVELS).unwrap();
    let stop = Arc::new(AtomicBool::new(true));
    let options = IndexOptions {
        stop: Some(stop),
        ..options(32)
    };
    let report = index_paths(&mut db, &LEVELS, &[&root], &options, |_| {}).unwrap();
    assert!(report.interrupted);
    assert_eq!(report.indexed, 0);
    // A later run without the request completes the archive.
    let report = index_paths(&mut db, &LEVELS, &[&root], &self::options(32), |_| {}).unwrap();
    assert_eq!((report.indexed, report.interrupted), (5, false));
}

#[test]
fn zero_batch_limits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open_or_create_for(dir.path().join("db"), &LEVELS).unwrap();
    let err = index_paths(&mut db, &LEVELS, &[dir.path()], &options(0), |_| {}).unwrap_err();
    assert!(matches!(err, Error::InvalidOption(_)), "{err}");
}

/// `check` passes on a healthy database and names a flipped bit of a catalog file; `repair`
/// rebuilds the catalog: indexed files as they were listed (title and tags from their sidecars,
/// hash, size, format, duration from the files), uploads listed as not recovered; the damaged
/// folder is kept. A catalog that only misses entries keeps the others as they were. Issue 21.
#[test]
fn check_finds_a_damaged_catalog_and_repair_rebuilds_it() {
    use pairalign_catalog::CatalogReader;
    use pairalign_indexer::{check_database, repair_catalog, Asset, Store};

    let dir = tempfile::tempdir().unwrap();
    let root = archive(dir.path(), 6);
    std::fs::write(
        root.join("f00.json"),
        r#"{"title": "First take", "tags": ["interview", "radio"]}"#,
    )
    .unwrap();
    std::fs::write(root.join("sub/f01.wav.json"), r#"{"tags": ["music"]}"#).unwrap();
    let db_dir = dir.path().join("db");
    let mut store = open_or_create_for(&db_dir, &LEVELS).unwrap();
    index_paths(&mut store, &LEVELS, &[&root], &options(2), |_| {}).unwrap();
    // An upload: no file at its id, its title and tags only in the catalog.
    let upload = Asset {
        id: "upload-1".into(),
        path: None,
        file_name: Some("talk.wav".into()),
        title: Some("Uploaded talk".into()),
        tags: vec!["upload".into()],
        duration_s: 1.0,
        format: Some("wav/pcm_s16le".into()),
        sample_rate: Some(16_000),
        content_hash: "0123".into(),
        tokens: 4,
        indexed_at: "2026-12-01T10:00:00Z".into(),
        file_size: None,
        modified_ns: None,
    };
    store.catalog.upsert(std::slice::from_ref(&upload)).unwrap();
    store
        .db
        .add_tokens(&[pairalign_engine::NewDoc {
            id: upload.id.clone(),
            tokens: vec![1, 2, 3, 4],
            times_ms: None,
            duration_ms: Some(1000),
        }])
        .unwrap();
    drop(store);
    let original = listing(&db_dir);
    assert_eq!(original.len(), 7);
    assert_eq!(
        original
            .iter()
            .find(|a| a.id.ends_with("f00.wav"))
            .unwrap()
            .tags,
        ["interview", "radio"]
    );

    let healthy = check_database(&db_dir);
    assert!(healthy.ok, "{healthy:#?}");
    assert!(healthy
        .checked
        .iter()
        .any(|c| c.contains("7 live document")));

    // One bit of a stored-documents file.
    let catalog_dir = db_dir.join("catalog");
    let store_file = std::fs::read_dir(&catalog_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "store"))
        .unwrap();
    let mut bytes = std::fs::read(&store_file).unwrap();
    bytes[10] ^= 0x04;
    std::fs::write(&store_file, &bytes).unwrap();
    let damaged = check_database(&db_dir);
    assert!(!damaged.ok);
    let named = store_file.display().to_string();
    assert!(
        damaged
            .problems
            .iter()
            .any(|p| p.contains(&named) && p.contains("checksum")),
        "{damaged:#?}"
    );
    assert!(damaged.notes.iter().any(|n| n.contains("pairalign repair")));
    let err = open_or_create_for(&db_dir, &LEVELS).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Catalog(pairalign_catalog::Error::CatalogDamaged { .. })
        ),
        "{err}"
    );

    let report = repair_catalog(&db_dir).unwrap();
    assert_eq!(
        (report.entries, report.kept, report.from_files),
        (7, 0, 6),
        "{report:#?}"
    );
    let aside = report.moved_aside.clone().unwrap();
    assert!(aside
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("catalog.damaged-"));
    assert_eq!(
        std::fs::read(aside.join(store_file.file_name().unwrap())).unwrap(),
        bytes,
        "the damaged folder is kept as it was"
    );
    assert_eq!(report.not_recovered.len(), 1);
    assert_eq!(report.not_recovered[0].id, "upload-1");
    assert!(report.not_recovered[0].reason.contains("title/tags lost"));
    let repaired = listing(&db_dir);
    let files: Vec<&Asset> = original.iter().filter(|a| a.path.is_some()).collect();
    assert_eq!(
        repaired
            .iter()
            .filter(|a| a.path.is_some())
            .collect::<Vec<_>>(),
        files
    );
    let rebuilt_upload = repaired.iter().find(|a| a.id == "upload-1").unwrap();
    assert_eq!((rebuilt_upload.tokens, rebuilt_upload.duration_s), (4, 1.0));
    assert_eq!(rebuilt_upload.title, None);
    let after = check_database(&db_dir);
    assert!(after.ok, "{after:#?}");

    // Entries missing but the files intact: the others are kept as they were (the upload's
    // too), the new document is not recovered.
    let mut store = Store::open(&db_dir).unwrap();
    store.catalog.upsert(std::slice::from_ref(&upload)).unwrap();
    store
        .db
        .add_tokens(&[pairalign_engine::NewDoc {
            id: "upload-2".into(),
            tokens: vec![5, 6],
            times_ms: None,
            duration_ms: Some(500),
        }])
        .unwrap();
    drop(store);
    let missing = check_database(&db_dir);
    assert!(
        missing
            .problems
            .iter()
            .any(|p| p.contains("no entry, the first \"upload-2\"")),
        "{missing:#?}"
    );
    let db = pairalign_engine::Searcher::open(&db_dir).unwrap();
    assert!(CatalogReader::open_for(&db).is_err());
    drop(db);
    let report = repair_catalog(&db_dir).unwrap();
    assert_eq!((report.entries, report.kept), (8, 7), "{report:#?}");
    assert_eq!(report.not_recovered.len(), 1);
    let relisted = listing(&db_dir);
    assert_eq!(
        relisted
            .iter()
            .find(|a| a.id == "upload-1")
            .unwrap()
            .title
            .as_deref(),
        Some("Uploaded talk")
    );
    assert!(check_database(&db_dir).ok);

    // A missing meta.json: the indexer's open refuses, names it and changes nothing.
    let meta = catalog_dir.join("meta.json");
    std::fs::remove_file(&meta).unwrap();
    let count = std::fs::read_dir(&catalog_dir).unwrap().count();
    let err = open_or_create_for(&db_dir, &LEVELS)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&meta.display().to_string()), "{err}");
    assert_eq!(std::fs::read_dir(&catalog_dir).unwrap().count(), count);
    assert!(!meta.exists());
    assert!(!check_database(&db_dir).ok);
}
