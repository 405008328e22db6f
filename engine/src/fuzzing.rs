//! Entry points for coverage-guided fuzzing (`fuzz/`, cargo-fuzz) and for replaying its corpora
//! and crash regressions as tests: each feeds arbitrary bytes to a reader of on-disk or user data
//! and checks what it can without an oracle. An error is a fine answer; a panic is a bug (the
//! fuzzer reports it as a crash, and the test replays it).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::import::{import_jsonl, ImportOptions};
use crate::manifest::{segment_file_name, Manifest, SegmentEntry};
use crate::segment::{qgram_key, Segment};
use crate::{DatabaseConfig, DatabaseWriter, EditBudget, SearchOptions, Searcher};

/// The inputs kept in `fuzz/regressions/<target>/` of the repository (crashes the fuzzer found,
/// replayed by the tests forever), sorted by file name.
pub fn regressions(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n != ".keep"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
        .collect()
}

/// A fresh scratch directory, removed on drop.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// Creates `$TMPDIR/pairalign-fuzz-<pid>-<n>` (point TMPDIR at a tmpfs to fuzz faster).
    pub fn new() -> Scratch {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pairalign-fuzz-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory can be created");
        Scratch(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `bytes` as a segment file: open it, read every document, look up its q-grams and names, then
/// commit a MANIFEST naming it and search the database with a piece of a document.
pub fn segment(bytes: &[u8]) {
    let scratch = Scratch::new();
    let segments = scratch.path().join("segments");
    std::fs::create_dir_all(&segments).expect("scratch");
    let file = segment_file_name(1);
    let path = segments.join(&file);
    std::fs::write(&path, bytes).expect("scratch file");
    let Ok(segment) = Segment::open(&path) else {
        return;
    };
    let (vocab, q) = (segment.vocab_size(), segment.q() as usize);
    let mut next_doc_id = 0u32;
    for doc in segment.docs().take(1000) {
        next_doc_id = next_doc_id.max(doc.doc_id.saturating_add(1));
        assert_eq!(doc.tokens.len(), doc.times_ms.len(), "a time per token");
        let times = doc.times_ms.to_vec();
        assert_eq!(times.len(), doc.tokens.len(), "every time decodes");
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "times do not decrease"
        );
        for i in [0, doc.tokens.len() / 2, doc.tokens.len().saturating_sub(1)] {
            assert_eq!(doc.times_ms.get(i), times.get(i).copied(), "time {i}");
        }
        assert_eq!(segment.doc_tokens(doc.ord), doc.tokens);
        let _ = segment.find(doc.name);
        let _ = segment.doc_at_position(doc.token_start);
        for gram in doc.tokens.windows(q).take(64) {
            let key = qgram_key(gram, vocab);
            let _ = segment.postings(key);
            let _ = segment.for_each_position(key, |_| {});
            let _ = segment.posting_len(key);
        }
    }
    let query: Vec<u16> = segment
        .docs()
        .next()
        .map(|d| d.tokens.iter().take(24).copied().collect())
        .unwrap_or_default();
    let mut manifest = Manifest::new(vocab, q as u32);
    manifest.next_doc_id = manifest.next_doc_id.max(next_doc_id);
    manifest.next_segment_id = 2;
    manifest.segments.push(SegmentEntry {
        file,
        doc_count: segment.doc_count() as u32,
        token_count: segment.token_count(),
        bytes: segment.byte_len(),
    });
    drop(segment);
    if manifest.commit(scratch.path()).is_err() {
        return;
    }
    let Ok(db) = Searcher::open(scratch.path()) else {
        return;
    };
    if query.len() >= q {
        for exhaustive in [false, true] {
            let options = SearchOptions {
                k: Some(EditBudget::Absolute(4)),
                exhaustive,
                ..SearchOptions::default()
            };
            let _ = db.search_tokens(&query, &options);
        }
    }
}

/// `bytes` as a MANIFEST: parse it; what parses must serialize and parse back to itself.
pub fn manifest(bytes: &[u8]) {
    let Ok(manifest) = Manifest::parse(Path::new("MANIFEST"), bytes) else {
        return;
    };
    let again = manifest.to_bytes().expect("a parsed manifest serializes");
    let back = Manifest::parse(Path::new("MANIFEST"), &again).expect("and parses back");
    assert_eq!(back, manifest);
}

/// `bytes` as a token JSONL file: import it into a new database, leniently and strictly; every
/// line is imported or reported, and the database reopens holding what the report says.
pub fn import(bytes: &[u8]) {
    let scratch = Scratch::new();
    let file = scratch.path().join("tokens.jsonl");
    std::fs::write(&file, bytes).expect("scratch file");
    for strict in [false, true] {
        let dir = scratch
            .path()
            .join(if strict { "strict" } else { "lenient" });
        let mut db = DatabaseWriter::create(&dir, DatabaseConfig::new(512, 3)).expect("create");
        let options = ImportOptions {
            strict,
            batch_docs: 3,
            ..ImportOptions::default()
        };
        let Ok(report) = import_jsonl(&mut db, &file, &options) else {
            continue;
        };
        drop(db);
        let db = Searcher::open(&dir).expect("an import leaves a database that opens");
        let segments = db.segments().expect("an imported database verifies");
        let docs: usize = segments.iter().map(|s| s.doc_count()).sum();
        assert_eq!(
            docs, report.imported,
            "imported documents are in the database"
        );
        if strict && !report.problems.is_empty() {
            assert_eq!(docs, 0, "a strict import with problems writes nothing");
        }
    }
}

/// `n` cheap mutations of `seed` (byte flips, overwrites with boundary values, truncations,
/// duplicated runs), reproducible from `rng_seed`: the short form of fuzzing that `cargo test`
/// runs through the entry points above without a coverage-guided engine.
pub fn mutations(seed: &[u8], n: usize, rng_seed: u64) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut state = rng_seed | 1;
    let mut next = move |bound: usize| {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as usize % bound.max(1)
    };
    (0..n).map(move |_| {
        let mut bytes = seed.to_vec();
        for _ in 0..1 + next(4) {
            if bytes.is_empty() {
                bytes.push(next(256) as u8);
                continue;
            }
            let at = next(bytes.len());
            match next(5) {
                0 => bytes[at] ^= 1 << next(8),
                1 => bytes[at] = [0x00, 0x01, 0x7f, 0x80, 0xff][next(5)],
                2 => bytes.truncate(at),
                3 => {
                    let end = (at + 1 + next(16)).min(bytes.len());
                    let run = bytes[at..end].to_vec();
                    bytes.splice(at..at, run);
                }
                _ => {
                    // A little-endian u32 field set to 0, 1 or a huge value.
                    let value = [0u32, 1, u32::MAX / 2, u32::MAX][next(4)].to_le_bytes();
                    for (i, b) in value.iter().enumerate() {
                        if let Some(slot) = bytes.get_mut(at + i) {
                            *slot = *b;
                        }
                    }
                }
            }
        }
        bytes
    })
}
