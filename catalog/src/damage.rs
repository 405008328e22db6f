//! A damaged catalog (issue 21, item 5): one flipped bit in a catalog file used to list fewer
//! documents or a wrong hash with exit 0, panic inside tantivy or abort on a 36 PB allocation,
//! and a missing `meta.json` read as an empty catalog that the next write replaced.
//!
//! The oracle is the catalog's pristine answers, themselves checked against the entries the
//! test wrote. For every byte of every file of a small catalog (three commits: a replaced entry
//! and a removed one leave delete files) one bit is flipped (bit `offset % 8`), the catalog is
//! opened the way searching and listing open it ([`CatalogReader::open_for`], against the
//! database) and read: every entry, filters, ids by filter, entries by id. Each read must be an
//! error or exactly the pristine answer; a panic anywhere fails the test.

#![allow(clippy::unwrap_used)] // Tests unwrap: a failure is the test failing.

use std::os::unix::fs::FileExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use pairalign_engine::{DatabaseConfig, DatabaseWriter, NewDoc, Searcher, TokenizerRecord};

use crate::catalog::{Asset, Catalog, CatalogReader, CATALOG_DIR};
use crate::Error;

const FILTERS: [&str; 4] = [
    "tags:interview",
    "duration:>30",
    "tags:music OR title:seven",
    "hash:h5",
];

const GETS: [&str; 4] = ["doc-00", "doc-03", "doc-09", "doc-10"];

fn entry(i: usize, tags: &[&str], tokens: usize) -> Asset {
    let words = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    Asset {
        id: format!("doc-{i:02}"),
        path: Some(format!("/archive/doc-{i:02}.wav")),
        file_name: Some(format!("doc-{i:02}.wav")),
        title: Some(format!("Recording {}", words[i])),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        duration_s: 10.0 * i as f64 + 0.5,
        format: Some("wav/pcm_s16le".into()),
        sample_rate: Some(16_000),
        content_hash: format!("h{i}"),
        tokens: tokens as u64,
        indexed_at: "2026-12-01T10:00:00Z".into(),
        file_size: Some(1000 + i as u64),
        modified_ns: Some(i as i64),
    }
}

fn doc(i: usize, tokens: usize) -> NewDoc {
    NewDoc {
        id: format!("doc-{i:02}"),
        tokens: (0..tokens).map(|t| (t * 7 + i) as u16 % 64).collect(),
        times_ms: None,
        duration_ms: None,
    }
}

/// A database of 10 live documents (doc-00 to doc-10 but doc-09) and its catalog, written in
/// three commits as the indexer writes them (catalog first): 10 documents, then doc-03's entry
/// replaced and doc-09 removed, then doc-10 added. Returns the live entries, sorted by id.
fn build(dir: &Path) -> Vec<Asset> {
    let mut db = DatabaseWriter::create(dir, DatabaseConfig::new(64, 3)).unwrap();
    db.set_tokenizer(TokenizerRecord {
        id: "test".into(),
        weights_hash: "0".into(),
    })
    .unwrap();
    let tags: [&[&str]; 10] = [
        &["interview"],
        &["music"],
        &[],
        &["interview", "radio"],
        &["music"],
        &["Interview"],
        &[],
        &["radio"],
        &["interview"],
        &["music"],
    ];
    let mut entries: Vec<Asset> = (0..10).map(|i| entry(i, tags[i], 5 + i)).collect();
    let mut catalog = Catalog::open_or_create(dir).unwrap();
    catalog.upsert(&entries).unwrap();
    db.add_tokens(&(0..10).map(|i| doc(i, 5 + i)).collect::<Vec<_>>())
        .unwrap();

    entries[3].tags = vec!["archive".into()];
    catalog.upsert(&entries[3..4]).unwrap();
    db.delete(&["doc-09"]).unwrap();
    catalog.remove(&["doc-09"]).unwrap();
    entries.remove(9);

    let added = entry(10, &["interview", "music"], 20);
    catalog.upsert(std::slice::from_ref(&added)).unwrap();
    db.add_tokens(&[doc(10, 20)]).unwrap();
    entries.push(added);
    entries
}

/// What a reader answers: each read on its own, an error as its message.
#[derive(Clone, Debug, PartialEq)]
struct Answers {
    all: Result<Vec<Asset>, String>,
    selected: Vec<Result<Vec<String>, String>>,
    selected_ids: Vec<Result<Vec<String>, String>>,
    got: Vec<Result<Option<Asset>, String>>,
}

fn sorted_ids(assets: Vec<Asset>) -> Vec<String> {
    let mut ids: Vec<String> = assets.into_iter().map(|a| a.id).collect();
    ids.sort();
    ids
}

/// Opens the catalog as the query path does and reads it; `Err` when it does not open.
fn read(db: &Searcher) -> Result<Answers, Error> {
    let catalog = CatalogReader::open_for(db)?.expect("the catalog exists");
    let message = |e: Error| e.to_string();
    Ok(Answers {
        all: catalog
            .all()
            .map(|mut all| {
                all.sort_by(|a, b| a.id.cmp(&b.id));
                all
            })
            .map_err(message),
        selected: FILTERS
            .iter()
            .map(|f| catalog.select(f).map(sorted_ids).map_err(message))
            .collect(),
        selected_ids: FILTERS
            .iter()
            .map(|f| {
                catalog
                    .select_ids(f)
                    .map(|mut ids| {
                        ids.sort();
                        ids
                    })
                    .map_err(message)
            })
            .collect(),
        got: GETS
            .iter()
            .map(|id| catalog.get(id).map_err(message))
            .collect(),
    })
}

/// How the reads of one probe compare with the pristine ones.
#[derive(Debug, Default)]
struct Tally {
    /// Probes whose catalog did not open (an error naming what is wrong).
    refused: usize,
    /// Probes that opened and answered every read exactly as the pristine catalog.
    identical: usize,
    /// Probes that opened and answered some reads with an error, the others identically.
    some_errors: usize,
    /// Probes that answered something else than the pristine catalog: (file, offset, read).
    changed: Vec<String>,
    /// Probes that panicked: (file, offset, message).
    panicked: Vec<String>,
}

impl Tally {
    fn compare(&mut self, at: &str, pristine: &Answers, answers: Answers) {
        let mut errors = false;
        let mut same = |read: String, identical: bool, failed: bool| {
            errors |= failed;
            if !identical && !failed {
                self.changed.push(format!("{at}: {read}"));
            }
        };
        same(
            format!("all() = {:?}", answers.all),
            answers.all == pristine.all,
            answers.all.is_err(),
        );
        for (i, filter) in FILTERS.iter().enumerate() {
            let got = &answers.selected[i];
            same(
                format!("select({filter}) = {got:?}"),
                *got == pristine.selected[i],
                got.is_err(),
            );
            let got = &answers.selected_ids[i];
            same(
                format!("select_ids({filter}) = {got:?}"),
                *got == pristine.selected_ids[i],
                got.is_err(),
            );
        }
        for (i, id) in GETS.iter().enumerate() {
            let got = &answers.got[i];
            same(
                format!("get({id}) = {got:?}"),
                *got == pristine.got[i],
                got.is_err(),
            );
        }
        if errors {
            self.some_errors += 1;
        } else {
            self.identical += 1;
        }
    }
}

/// Every single-bit flip of every catalog file is an error or changes nothing (issue 21: 900 of
/// 1,110 flips changed results silently, 109 panicked, one aborted on a 36 PB allocation).
#[test]
fn every_flipped_bit_of_the_catalog_is_refused_or_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let expected = build(dir.path());
    let db = Searcher::open(dir.path()).unwrap();
    let pristine = read(&db).unwrap();
    // The pristine answers are those of the entries written.
    assert_eq!(pristine.all, Ok(expected.clone()));
    let ids = |pick: &dyn Fn(&Asset) -> bool| -> Result<Vec<String>, String> {
        Ok(expected
            .iter()
            .filter(|a| pick(a))
            .map(|a| a.id.clone())
            .collect())
    };
    let has = |a: &Asset, tag: &str| a.tags.iter().any(|t| t.eq_ignore_ascii_case(tag));
    let by_filter = [
        ids(&|a| has(a, "interview")),
        ids(&|a| a.duration_s > 30.0),
        ids(&|a| has(a, "music") || a.title.as_deref() == Some("Recording seven")),
        ids(&|a| a.content_hash == "h5"),
    ];
    assert_eq!(pristine.selected, by_filter);
    assert_eq!(pristine.selected_ids, by_filter);
    let gets: Vec<_> = GETS
        .iter()
        .map(|id| Ok(expected.iter().find(|a| a.id == *id).cloned()))
        .collect();
    assert_eq!(pristine.got, gets);

    let catalog_dir = dir.path().join(CATALOG_DIR);
    let mut files: Vec<_> = std::fs::read_dir(&catalog_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.metadata().unwrap().len() > 0)
        .collect();
    files.sort();
    assert!(
        files.iter().any(|f| f.to_string_lossy().ends_with(".del")),
        "the catalog has delete files: {files:?}"
    );
    let mut tally = Tally::default();
    let mut bytes_flipped = 0;
    let started = std::time::Instant::now();
    for file in &files {
        let original = std::fs::read(file).unwrap();
        let handle = std::fs::OpenOptions::new().write(true).open(file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (offset, &byte) in original.iter().enumerate() {
            let at = format!("{name} byte {offset}");
            handle
                .write_all_at(&[byte ^ (1 << (offset % 8))], offset as u64)
                .unwrap();
            match catch_unwind(AssertUnwindSafe(|| read(&db))) {
                Err(payload) => {
                    let message = payload
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tally.panicked.push(format!("{at}: {message}"));
                }
                Ok(Err(e)) => {
                    assert!(
                        matches!(e, Error::CatalogDamaged { .. } | Error::Catalog(_)),
                        "{at}: {e}"
                    );
                    tally.refused += 1;
                }
                Ok(Ok(answers)) => tally.compare(&at, &pristine, answers),
            }
            handle.write_all_at(&[byte], offset as u64).unwrap();
            bytes_flipped += 1;
        }
        assert_eq!(std::fs::read(file).unwrap(), original, "{name} restored");
    }
    eprintln!(
        "{bytes_flipped} flips in {} files ({:.1} s): {} refused at open, {} with some reads \
         refused, {} identical, {} changed, {} panicked",
        files.len(),
        started.elapsed().as_secs_f64(),
        tally.refused,
        tally.some_errors,
        tally.identical,
        tally.changed.len(),
        tally.panicked.len()
    );
    assert!(tally.panicked.is_empty(), "panics: {:#?}", tally.panicked);
    assert!(
        tally.changed.is_empty(),
        "silent changes: {:#?}",
        tally.changed
    );
    // The restored catalog answers as before.
    assert_eq!(read(&db).unwrap(), pristine);
}

/// The files of the catalog folder and their bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .filter(|(name, _)| !name.starts_with(".tantivy"))
        .collect();
    files.sort();
    files
}

/// Issue 21: a missing `meta.json` listed 0 documents with exit 0 and the next upload created
/// an empty catalog over the old entries. Now reading and every writer's open are errors naming
/// `<db>/catalog/meta.json`, and no file of the folder changes.
#[test]
fn a_missing_meta_json_is_an_error_and_nothing_is_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let catalog_dir = dir.path().join(CATALOG_DIR);
    let meta = catalog_dir.join("meta.json");
    std::fs::remove_file(&meta).unwrap();
    let before = snapshot(&catalog_dir);
    let names_meta = |e: Error| {
        assert!(matches!(e, Error::CatalogDamaged { .. }), "{e}");
        let message = e.to_string();
        assert!(message.contains(&meta.display().to_string()), "{message}");
        assert!(message.contains("pairalign repair"), "{message}");
    };
    names_meta(CatalogReader::open(dir.path()).unwrap_err());
    let db = Searcher::open(dir.path()).unwrap();
    names_meta(CatalogReader::open_for(&db).unwrap_err());
    drop(db);
    names_meta(Catalog::open_or_create(dir.path()).unwrap_err());
    assert_eq!(
        snapshot(&catalog_dir),
        before,
        "the catalog's files are untouched"
    );
    assert!(!meta.exists());

    // An absent or empty folder is still "no catalog" (databases of imported tokens), and a
    // writer creates one there.
    let empty = tempfile::tempdir().unwrap();
    assert!(CatalogReader::open(empty.path()).unwrap().is_none());
    std::fs::create_dir(empty.path().join(CATALOG_DIR)).unwrap();
    std::fs::write(
        empty.path().join(CATALOG_DIR).join(".tantivy-meta.lock"),
        "",
    )
    .unwrap();
    assert!(CatalogReader::open(empty.path()).unwrap().is_none());
    Catalog::open_or_create(empty.path()).unwrap();
    assert!(CatalogReader::open(empty.path())
        .unwrap()
        .unwrap()
        .is_empty());
}

/// The cross-check at open: a live document without its entry, or whose entry records another
/// token count, is an error naming the document; entries of documents the database does not
/// hold (left by a crash between the two commits) are allowed.
#[test]
fn entries_are_checked_against_the_live_documents() {
    let dir = tempfile::tempdir().unwrap();
    let expected = build(dir.path());
    let mut db = DatabaseWriter::open(dir.path()).unwrap();
    let check = CatalogReader::open_for(&db)
        .unwrap()
        .unwrap()
        .cross_check(&db)
        .unwrap();
    assert_eq!(
        (check.live_docs, check.entries, check.ghosts),
        (expected.len() as u64, expected.len() as u64, 0)
    );
    assert!(check.problems().is_empty());

    // A ghost: an entry written, its document never committed.
    let mut catalog = Catalog::open_or_create(dir.path()).unwrap();
    catalog.upsert(&[entry(9, &["ghost"], 3)]).unwrap();
    let reader = CatalogReader::open_for(&db).unwrap().unwrap();
    assert_eq!(reader.cross_check(&db).unwrap().ghosts, 1);

    // Another token count.
    catalog.upsert(&[entry(4, &["music"], 99)]).unwrap();
    let e = CatalogReader::open_for(&db).unwrap_err().to_string();
    assert!(
        e.contains("\"doc-04\" (99 tokens in the catalog, 9 in the database)"),
        "{e}"
    );
    catalog.upsert(&[entry(4, &["music"], 9)]).unwrap();
    assert!(CatalogReader::open_for(&db).is_ok());

    // A live document without an entry.
    db.add_tokens(&[doc(11, 6)]).unwrap();
    let e = CatalogReader::open_for(&db).unwrap_err().to_string();
    assert!(
        e.contains("1 live document(s) of the database have no entry, the first \"doc-11\""),
        "{e}"
    );
    assert!(
        e.contains(&dir.path().join(CATALOG_DIR).display().to_string()),
        "{e}"
    );

    // A database of imported tokens (no tokenizer recorded) has no metadata to miss.
    let imported = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(imported.path(), DatabaseConfig::new(64, 3)).unwrap();
    db.add_tokens(&[doc(0, 5)]).unwrap();
    Catalog::open_or_create(imported.path()).unwrap();
    assert!(CatalogReader::open_for(&db).unwrap().is_some());
}
