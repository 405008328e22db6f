//! Database-level tests: round trips, the q-gram filter against exhaustive search, crash leftovers,
//! deletes and compaction, corruption of the MANIFEST and tombstones, locking, token import.

#![allow(clippy::unwrap_used)] // Tests unwrap: a failure is the test failing.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use pairalign_engine::import::{import_jsonl, ImportOptions};
use pairalign_engine::segment::{DocInput, SegmentWriter};
use pairalign_engine::synthetic::{best_per_doc, rng, ZipfTokens};
use pairalign_engine::{
    DatabaseConfig, DatabaseWriter, EditBudget, Error, Hit, Mode, NewDoc, SearchOptions, Searcher,
    Symbol,
};
use rand::Rng;

fn doc(id: &str, tokens: Vec<Symbol>) -> NewDoc {
    NewDoc {
        id: id.to_string(),
        tokens,
        ..NewDoc::default()
    }
}

fn ids(hits: &[Hit]) -> Vec<&str> {
    hits.iter().map(|h| h.id.as_str()).collect()
}

fn exact(k: u32, mode: Mode, exhaustive: bool) -> SearchOptions {
    SearchOptions {
        top: usize::MAX,
        k: Some(EditBudget::Absolute(k)),
        mode,
        exhaustive,
        ..SearchOptions::default()
    }
}

#[test]
fn round_trip_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(64, 3)).unwrap();
    db.add_tokens(&[
        doc("a", vec![1, 2, 3, 4, 5, 6, 7, 8]),
        NewDoc {
            id: "b".into(),
            tokens: vec![9, 9, 1, 2, 3, 4, 10],
            times_ms: Some(vec![0, 100, 200, 300, 400, 500, 600]),
            duration_ms: Some(700),
        },
    ])
    .unwrap();
    db.add_tokens(&[doc("c", vec![20, 21, 22])]).unwrap();
    drop(db);

    let db = Searcher::open(dir.path()).unwrap();
    let info = db.info().unwrap();
    assert_eq!((info.segments, info.docs, info.tokens), (2, 3, 18));
    let outcome = db
        .search_tokens(&[1, 2, 3, 4], &exact(0, Mode::Infix, false))
        .unwrap();
    assert!(outcome.lossless);
    assert_eq!(ids(&outcome.hits), ["a", "b"]);
    let b = &outcome.hits[1];
    assert_eq!(
        (b.start, b.end, b.start_ms, b.end_ms, b.distance),
        (2, 6, 200, 600, 0)
    );
    // A match at the end of a document ends at its duration.
    let outcome = db
        .search_tokens(&[3, 4, 10], &exact(0, Mode::Infix, false))
        .unwrap();
    assert_eq!((outcome.hits[0].end, outcome.hits[0].end_ms), (7, 700));
    // Global mode compares whole documents.
    let outcome = db
        .search_tokens(&[20, 21, 23], &exact(1, Mode::Global, false))
        .unwrap();
    assert_eq!(ids(&outcome.hits), ["c"]);
    assert_eq!(outcome.hits[0].distance, 1);
}

#[test]
fn times_are_filled_in_when_missing() {
    let with_duration = NewDoc {
        id: "x".into(),
        tokens: vec![1, 2, 3, 4],
        times_ms: None,
        duration_ms: Some(1000),
    };
    assert_eq!(
        with_duration.resolved_times(),
        (vec![0, 250, 500, 750], 1000)
    );
    let (times, duration) = doc("y", vec![1; 127]).resolved_times();
    assert_eq!(duration, 10_000, "127 tokens at the nominal 12.7 tokens/s");
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn filter_equals_exhaustive_when_the_lemma_applies() {
    let mut r = rng(11);
    for (round, &(vocab, q)) in [(8u32, 2u32), (16, 3), (512, 3), (512, 4), (4096, 2)]
        .iter()
        .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(vocab, q)).unwrap();
        let zipf = ZipfTokens::new(vocab, 1.0, round as u64);
        let mut docs = Vec::new();
        for d in 0..120 {
            // Short documents (3 s clips) and long ones (recordings), two segments.
            let len = if d % 10 == 0 {
                r.gen_range(200..600)
            } else {
                r.gen_range(0..60)
            };
            docs.push(doc(&format!("d{d}"), zipf.string(&mut r, len)));
        }
        db.add_tokens(&docs[..60]).unwrap();
        db.add_tokens(&docs[60..]).unwrap();
        for _ in 0..25 {
            let source = &docs[r.gen_range(0..docs.len())].tokens;
            if source.len() < 12 {
                continue;
            }
            let len = r.gen_range(12..=source.len().min(90));
            let start = r.gen_range(0..=source.len() - len);
            let rate = r.gen_range(0.0..0.2);
            let query = zipf.noisy_copy(&mut r, &source[start..start + len], rate);
            let m = query.len();
            // The largest k for which the lemma's threshold m - q + 1 - k*q is positive.
            let k_max = (m as i64 - q as i64) / q as i64;
            for k in [0, k_max / 2, k_max].into_iter().filter(|k| *k >= 0) {
                for mode in [Mode::Infix, Mode::Global] {
                    let filtered = db
                        .search_tokens(&query, &exact(k as u32, mode, false))
                        .unwrap();
                    let exhaustive = db
                        .search_tokens(&query, &exact(k as u32, mode, true))
                        .unwrap();
                    assert!(filtered.lossless, "m={m} q={q} k={k}");
                    assert_eq!(
                        best_per_doc(&filtered.hits),
                        best_per_doc(&exhaustive.hits),
                        "vocab={vocab} q={q} m={m} k={k} mode={mode:?}"
                    );
                    if mode == Mode::Global {
                        assert_eq!(filtered.hits, exhaustive.hits);
                    }
                }
            }
        }
    }
}

/// `search_many` (one candidate pass for several strings, as a clip's grid phases are searched)
/// answers each string exactly as `search_tokens` does alone: lossless and ranked budgets, both
/// modes, strings that share most q-grams (noisy copies of one passage) and one that shares
/// none, and a string short enough to be scanned.
#[test]
fn search_many_equals_one_search_per_string() {
    let mut r = rng(29);
    let dir = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(64, 3)).unwrap();
    let zipf = ZipfTokens::new(64, 1.0, 3);
    let docs: Vec<NewDoc> = (0..90)
        .map(|d| {
            let len = r.gen_range(20..400);
            doc(&format!("d{d}"), zipf.string(&mut r, len))
        })
        .collect();
    db.add_tokens(&docs[..45]).unwrap();
    db.add_tokens(&docs[45..]).unwrap();
    for round in 0..12 {
        let source = &docs[r.gen_range(0..docs.len())].tokens;
        let len = r.gen_range(15..=source.len().min(60));
        let start = r.gen_range(0..=source.len() - len);
        let passage = &source[start..start + len];
        let mut strings: Vec<Vec<Symbol>> = (0..3)
            .map(|_| zipf.noisy_copy(&mut r, passage, 0.15))
            .collect();
        strings.push(zipf.string(&mut r, 40));
        strings.push(passage[..2].to_vec());
        let refs: Vec<&[Symbol]> = strings.iter().map(Vec::as_slice).collect();
        for budget in [
            EditBudget::Fraction(0.1),
            EditBudget::Fraction(0.4),
            EditBudget::Fraction(0.9),
        ] {
            for mode in [Mode::Infix, Mode::Global] {
                let options = SearchOptions {
                    top: 20,
                    k: Some(budget),
                    mode,
                    // Filter rather than scan the small archive (the short string still scans).
                    exhaustive_below_cells: if round % 2 == 0 { 0 } else { 100 },
                    max_regions: 50,
                    ..SearchOptions::default()
                };
                let many = db.search_many(&refs, &options).unwrap();
                assert_eq!(many.len(), refs.len());
                for (string, got) in refs.iter().zip(&many) {
                    let alone = db.search_tokens(string, &options).unwrap();
                    assert_eq!(
                        got.hits,
                        alone.hits,
                        "{budget:?} {mode:?} m={}",
                        string.len()
                    );
                    assert_eq!(
                        (got.k, got.lossless, got.regions, got.verified_tokens),
                        (
                            alone.k,
                            alone.lossless,
                            alone.regions,
                            alone.verified_tokens
                        )
                    );
                }
            }
        }
    }
    // A bad string anywhere refuses the call.
    let err = db
        .search_many(&[&[1, 2, 3], &[]], &SearchOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
}

/// Plain dynamic programming: the edit distance of `query` to `text` (global), or to its best
/// substring (infix: free start and end in the text).
fn dp_distance(query: &[Symbol], text: &[Symbol], mode: Mode) -> u32 {
    let mut row: Vec<u32> = (0..=text.len() as u32)
        .map(|j| if mode == Mode::Infix { 0 } else { j })
        .collect();
    for (i, &q) in query.iter().enumerate() {
        let mut next = vec![i as u32 + 1; text.len() + 1];
        for (j, &t) in text.iter().enumerate() {
            next[j + 1] = (row[j] + u32::from(q != t))
                .min(row[j + 1] + 1)
                .min(next[j] + 1);
        }
        row = next;
    }
    match mode {
        Mode::Infix => row.into_iter().min().unwrap_or(0),
        Mode::Global => row[text.len()],
    }
}

/// Without a budget (`k: None`) a search returns the `top` nearest documents exactly, from a
/// bounded scan, on an archive far above the exhaustive threshold: the same documents and
/// distances as plain dynamic programming over every live document, ties at the cut broken by
/// id, one hit per document, deleted and filtered-out documents never returned.
#[test]
fn unbounded_search_returns_the_exact_nearest() {
    let mut r = rng(31);
    let dir = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(16, 3)).unwrap();
    let zipf = ZipfTokens::new(16, 1.0, 5);
    let docs: Vec<NewDoc> = (0..3000)
        .map(|d| {
            let len = r.gen_range(0..70);
            doc(&format!("d{d:04}"), zipf.string(&mut r, len))
        })
        .collect();
    for chunk in docs.chunks(700) {
        db.add_tokens(chunk).unwrap();
    }
    db.delete(&["d0001", "d0002", "d0100"]).unwrap();
    let only: roaring::RoaringBitmap = (0..3000u32).filter(|d| d % 3 != 0).collect();
    for round in 0..16 {
        let source = &docs[r.gen_range(0..docs.len())].tokens;
        let query = if source.len() >= 12 && round % 4 != 3 {
            let start = r.gen_range(0..=source.len() - 12);
            zipf.noisy_copy(&mut r, &source[start..start + 12], 0.3)
        } else {
            zipf.string(&mut r, 20)
        };
        let mode = if round % 2 == 0 {
            Mode::Infix
        } else {
            Mode::Global
        };
        let top = [1, 3, 10, 40][round % 4];
        let restricted = round % 5 == 4;
        let options = SearchOptions {
            top,
            k: None,
            mode,
            exhaustive_below_cells: 0,
            only: restricted.then(|| std::sync::Arc::new(only.clone())),
            ..SearchOptions::default()
        };
        let got = db.search_tokens(&query, &options).unwrap();
        assert!(got.lossless);
        let mut expected: Vec<(u32, String)> = docs
            .iter()
            .enumerate()
            .filter(|(i, d)| {
                db.contains(&d.id).unwrap() && (!restricted || only.contains(*i as u32))
            })
            .map(|(_, d)| (dp_distance(&query, &d.tokens, mode), d.id.clone()))
            .collect();
        expected.sort();
        expected.truncate(top);
        let got_pairs: Vec<(u32, String)> = got
            .hits
            .iter()
            .map(|h| (h.distance, h.id.clone()))
            .collect();
        assert_eq!(got_pairs, expected, "round {round} {mode:?} top {top}");
        for hit in &got.hits {
            let (s, ord) = db.find(&hit.id).unwrap().unwrap();
            let tokens = db.segments().unwrap()[s].doc(ord).tokens;
            assert_eq!(
                dp_distance(&query, &tokens[hit.start..hit.end], Mode::Global),
                hit.distance,
                "the span holds the match"
            );
        }
    }
}

/// A batch or a compaction with more tokens than one segment may hold is written as several
/// segments, each within the limit, in one commit; every document stays searchable and keeps its
/// number.
#[test]
fn segments_split_below_the_token_limit() {
    let mut r = rng(41);
    let dir = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(64, 3)).unwrap();
    db.set_segment_token_limit(500);
    let zipf = ZipfTokens::new(64, 1.0, 9);
    let docs: Vec<NewDoc> = (0..40)
        .map(|d| {
            let len = r.gen_range(20..120);
            doc(&format!("d{d:02}"), zipf.string(&mut r, len))
        })
        .collect();
    let total: usize = docs.iter().map(|d| d.tokens.len()).sum();
    let generation = db.manifest().generation;
    db.add_tokens(&docs).unwrap();
    assert_eq!(db.manifest().generation, generation + 1, "one commit");
    let counts = |db: &Searcher| -> Vec<u64> {
        db.segments()
            .unwrap()
            .iter()
            .map(|s| s.token_count())
            .collect()
    };
    let split = counts(&db);
    assert!(split.len() >= total / 500, "{split:?}");
    assert!(split.iter().all(|&t| t <= 500), "{split:?}");
    assert_eq!(split.iter().sum::<u64>(), total as u64);
    db.delete(&["d03"]).unwrap();
    db.compact().unwrap();
    let compacted = counts(&db);
    assert!(
        compacted.len() > 1 && compacted.iter().all(|&t| t <= 500),
        "{compacted:?}"
    );
    let reader = Searcher::open(dir.path()).unwrap();
    for (i, d) in docs.iter().enumerate() {
        assert_eq!(reader.contains(&d.id).unwrap(), i != 3, "{}", d.id);
    }
    let exact = SearchOptions {
        k: Some(EditBudget::Absolute(0)),
        exhaustive: true,
        top: 1,
        ..SearchOptions::default()
    };
    let hit = &reader.search_tokens(&docs[17].tokens, &exact).unwrap().hits[0];
    assert_eq!((hit.id.as_str(), hit.doc_id, hit.distance), ("d17", 17, 0));
}

/// A query made mostly of the archive's commonest q-gram (silence: runs of one symbol) would
/// collect more matches than verifying every document costs: the segments are verified whole
/// instead, and the answer is exhaustive search's, in both lossless and ranked budgets.
#[test]
fn a_query_of_silence_scans_rather_than_collects_matches() {
    let mut r = rng(43);
    let dir = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(64, 3)).unwrap();
    let zipf = ZipfTokens::new(64, 1.0, 11);
    let docs: Vec<NewDoc> = (0..400)
        .map(|d| {
            // Speech-like pieces separated by long pauses (symbol 0).
            let mut tokens = Vec::new();
            while tokens.len() < 300 {
                tokens.extend(std::iter::repeat_n(0, r.gen_range(10..40)));
                let len = r.gen_range(5..20);
                tokens.extend(zipf.string(&mut r, len).into_iter().map(|t| t.max(1)));
            }
            doc(&format!("d{d:03}"), tokens)
        })
        .collect();
    db.add_tokens(&docs[..200]).unwrap();
    db.add_tokens(&docs[200..]).unwrap();
    let total: u64 = docs.iter().map(|d| d.tokens.len() as u64).sum();
    let mut query: Vec<Symbol> = vec![0; 30];
    query.extend_from_slice(&docs[7].tokens[40..48]);
    for k in [0.1, 0.25, 0.4] {
        let options = SearchOptions {
            k: Some(EditBudget::Fraction(k)),
            top: 20,
            exhaustive_below_cells: 0,
            ..SearchOptions::default()
        };
        let filtered = db.search_tokens(&query, &options).unwrap();
        let exhaustive = db
            .search_tokens(
                &query,
                &SearchOptions {
                    exhaustive: true,
                    ..options.clone()
                },
            )
            .unwrap();
        assert_eq!(filtered.hits, exhaustive.hits, "k {k}");
        assert_eq!(
            filtered.verified_tokens, total,
            "k {k}: every segment verified whole"
        );
    }
}

/// A writer's staged additions and deletions are invisible (to itself and to readers) until
/// `commit`, which writes them as one MANIFEST; `rollback` drops them; a commit with nothing
/// staged writes nothing.
#[test]
fn staged_changes_are_committed_together() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(64, 3)).unwrap();
    db.add_tokens(&[doc("a", vec![1, 2, 3]), doc("b", vec![4, 5, 6])])
        .unwrap();
    let generation = db.manifest().generation;
    db.stage_delete(&["a"]);
    db.stage_add(&[doc("a", vec![7, 7]), doc("c", vec![8, 8])])
        .unwrap();
    // Taking a live id that is not staged for deletion is refused, and stages nothing.
    assert!(matches!(
        db.stage_add(&[doc("d", vec![1]), doc("b", vec![1])]),
        Err(Error::DuplicateId(ref id)) if id == "b"
    ));
    assert!(
        db.contains("a").unwrap() && !db.contains("c").unwrap(),
        "nothing visible before the commit"
    );
    assert!(!Searcher::open(dir.path()).unwrap().contains("c").unwrap());
    let report = db.commit().unwrap();
    assert_eq!(report.deleted, ["a"]);
    assert_eq!(db.manifest().generation, generation + 1, "one MANIFEST");
    let reader = Searcher::open(dir.path()).unwrap();
    let (s, ord) = reader.find("a").unwrap().unwrap();
    assert_eq!(reader.segments().unwrap()[s].doc(ord).tokens, [7, 7]);
    assert!(reader.contains("c").unwrap() && !reader.contains("d").unwrap());

    db.stage_add(&[doc("e", vec![1])]).unwrap();
    db.rollback();
    assert_eq!(db.commit().unwrap(), Default::default());
    assert_eq!(
        db.manifest().generation,
        generation + 1,
        "nothing to commit, nothing written"
    );
    assert!(!Searcher::open(dir.path()).unwrap().contains("e").unwrap());
}

#[test]
fn restricted_search_equals_unrestricted_hits_inside_the_restriction() {
    // `only` (a metadata filter) must remove exactly the documents outside it, on every path:
    // lossless filter, exhaustive scan and the ranked filter; and a deleted document stays out
    // even when the restriction names it.
    let dir = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(64, 3)).unwrap();
    let zipf = ZipfTokens::new(64, 1.0, 7);
    let mut r = rng(7);
    let docs: Vec<NewDoc> = (0..80)
        .map(|d| {
            let len = r.gen_range(30..200);
            doc(&format!("d{d:02}"), zipf.string(&mut r, len))
        })
        .collect();
    db.add_tokens(&docs[..40]).unwrap();
    db.add_tokens(&docs[40..]).unwrap();
    db.delete(&["d03"]).unwrap();
    let number = |id: &str| {
        let (s, ord) = db.find(id).unwrap().unwrap();
        db.segments().unwrap()[s].doc(ord).doc_id
    };
    let allowed: Vec<String> = (0..80)
        .filter(|d| d % 3 == 0 && *d != 3)
        .map(|d| format!("d{d:02}"))
        .collect();
    let mut only: roaring::RoaringBitmap = allowed.iter().map(|id| number(id)).collect();
    only.insert(docs.len() as u32 + 1000); // a number no document has: harmless
    let only = std::sync::Arc::new(only);
    for t in 0..20 {
        let source = &docs[r.gen_range(0..docs.len())].tokens;
        let start = r.gen_range(0..=source.len() - 20);
        let query = zipf.noisy_copy(&mut r, &source[start..start + 20], 0.1);
        let paths = [
            exact(4, Mode::Infix, false),
            exact(4, Mode::Infix, true),
            SearchOptions {
                top: usize::MAX,
                exhaustive_below_cells: 0,
                ..SearchOptions::default()
            },
        ];
        for options in paths {
            let all = db.search_tokens(&query, &options).unwrap();
            let restricted = db
                .search_tokens(
                    &query,
                    &SearchOptions {
                        only: Some(only.clone()),
                        ..options.clone()
                    },
                )
                .unwrap();
            let expected: Vec<&Hit> = all
                .hits
                .iter()
                .filter(|h| allowed.contains(&h.id))
                .collect();
            assert_eq!(
                restricted.hits.iter().collect::<Vec<_>>(),
                expected,
                "query {t}, {options:?}"
            );
            assert!(restricted.hits.iter().all(|h| h.id != "d03"));
        }
    }
    let nothing = SearchOptions {
        only: Some(std::sync::Arc::new(roaring::RoaringBitmap::new())),
        ..exact(4, Mode::Infix, true)
    };
    assert!(db
        .search_tokens(&docs[0].tokens[..20], &nothing)
        .unwrap()
        .hits
        .is_empty());
}

#[test]
fn exhaustive_equals_oracle() {
    use pairalign_engine::verifier::oracle;
    let dir = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(32, 2)).unwrap();
    let zipf = ZipfTokens::new(32, 1.0, 5);
    let mut r = rng(5);
    let docs: Vec<NewDoc> = (0..50)
        .map(|d| {
            let len = r.gen_range(0..80);
            doc(&format!("d{d:02}"), zipf.string(&mut r, len))
        })
        .collect();
    db.add_tokens(&docs).unwrap();
    for _ in 0..20 {
        let len = r.gen_range(1..20);
        let query = zipf.string(&mut r, len);
        let k = r.gen_range(0..10);
        for mode in [Mode::Infix, Mode::Global] {
            let outcome = db.search_tokens(&query, &exact(k, mode, true)).unwrap();
            let mut expected: Vec<(u32, &str)> = docs
                .iter()
                .map(|d| {
                    let dist = match mode {
                        Mode::Infix => oracle::infix(&query, &d.tokens),
                        Mode::Global => oracle::global(&query, &d.tokens),
                    };
                    (dist, d.id.as_str())
                })
                .filter(|(dist, _)| *dist <= k)
                .collect();
            expected.sort();
            let got: BTreeMap<String, u32> = best_per_doc(&outcome.hits);
            let want: BTreeMap<String, u32> = expected
                .iter()
                .map(|(d, id)| (id.to_string(), *d))
                .collect();
            assert_eq!(got, want, "k={k} mode={mode:?}");
            // Hits come sorted by distance, then id.
            let keys: Vec<(u32, &str)> = outcome
                .hits
                .iter()
                .map(|h| (h.distance, h.id.as_str()))
                .collect();
            assert!(keys.windows(2).all(|w| w[0] <= w[1]));
        }
    }
}

#[test]
fn uncommitted_segment_is_invisible_and_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(64, 2)).unwrap();
    db.add_tokens(&[doc("kept", vec![1, 2, 3, 4])]).unwrap();
    let next = db.manifest().next_segment_id;
    drop(db);
    // A writer died after writing its segment (under the very name the next segment gets) and a
    // temporary MANIFEST, but before the rename that commits.
    let leftover = dir.path().join(format!("segments/seg-{next:08}.seg"));
    let mut writer = SegmentWriter::new(64, 2).unwrap();
    let tokens = [5u16, 6, 7, 8];
    writer
        .add(&DocInput {
            name: "lost",
            doc_id: 1,
            tokens: &tokens,
            times_ms: &[0, 1, 2, 3],
            duration_ms: 4,
        })
        .unwrap();
    writer.write(&leftover).unwrap();
    fs::write(dir.path().join("MANIFEST.tmp"), b"{\"half\": ").unwrap();

    let reader = Searcher::open(dir.path()).unwrap();
    assert_eq!(reader.info().unwrap().docs, 1);
    assert!(reader
        .search_tokens(&[5, 6, 7, 8], &exact(0, Mode::Infix, true))
        .unwrap()
        .hits
        .is_empty());
    drop(reader);

    let mut db = DatabaseWriter::open(dir.path()).unwrap();
    assert!(
        !leftover.exists(),
        "the writer removes files the MANIFEST does not name"
    );
    assert!(!dir.path().join("MANIFEST.tmp").exists());
    db.add_tokens(&[doc("new", vec![5, 6, 7, 8])]).unwrap();
    let hits = db
        .search_tokens(&[5, 6, 7, 8], &exact(0, Mode::Infix, false))
        .unwrap()
        .hits;
    assert_eq!(ids(&hits), ["new"]);
}

#[test]
fn delete_then_compact() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(64, 2)).unwrap();
    db.add_tokens(&[doc("a", vec![1, 2, 3]), doc("b", vec![1, 2, 3, 4])])
        .unwrap();
    db.add_tokens(&[doc("c", vec![9, 1, 2, 3])]).unwrap();
    let report = db.delete(&["b", "nope", "b"]).unwrap();
    assert_eq!(report.deleted, ["b"]);
    assert_eq!(report.missing, ["nope", "b"]);
    let query = [1, 2, 3];
    let before = db
        .search_tokens(&query, &exact(0, Mode::Infix, false))
        .unwrap()
        .hits;
    assert_eq!(ids(&before), ["a", "c"]);
    // Deletes survive a reopen.
    drop(db);
    let mut db = DatabaseWriter::open(dir.path()).unwrap();
    assert_eq!(db.info().unwrap().deleted, 1);
    assert!(!db.contains("b").unwrap());
    // A deleted id can be added again.
    db.add_tokens(&[doc("b", vec![7, 7, 7])]).unwrap();
    db.compact().unwrap();
    let info = db.info().unwrap();
    assert_eq!(
        (info.segments, info.docs, info.deleted, info.tokens),
        (1, 3, 0, 10)
    );
    let after = db
        .search_tokens(&query, &exact(0, Mode::Infix, false))
        .unwrap()
        .hits;
    assert_eq!(after, before);
    drop(db);
    let db = DatabaseWriter::open(dir.path()).unwrap();
    assert_eq!(
        db.search_tokens(&[7, 7, 7], &exact(0, Mode::Global, false))
            .unwrap()
            .hits
            .len(),
        1
    );
    // Only the compacted segment and no tombstone file remain.
    let segs = fs::read_dir(dir.path().join("segments")).unwrap().count();
    assert_eq!(segs, 1);
    assert!(fs::read_dir(dir.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("deletes-")));
}

/// `replace` tombstones and adds in one commit (one MANIFEST generation): a reader sees the old
/// document or the new one under the same id; a new document may take only a replaced id; and a
/// refused batch changes nothing, tombstones included.
#[test]
fn replace_is_one_commit_and_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(64, 3)).unwrap();
    db.add_tokens(&[doc("a", vec![1, 2, 3, 4]), doc("b", vec![5, 6, 7, 8])])
        .unwrap();
    let before = db.searcher();
    let generation = db.manifest().generation;
    let report = db
        .replace(
            &["a", "gone"],
            &[doc("a", vec![9, 9, 9]), doc("c", vec![4, 4, 4])],
        )
        .unwrap();
    assert_eq!(report.deleted, ["a"]);
    assert_eq!(report.missing, ["gone"]);
    assert_eq!(db.manifest().generation, generation + 1, "one commit");
    let tokens = |db: &Searcher, id: &str| {
        let (s, ord) = db.find(id).unwrap().unwrap();
        db.segments().unwrap()[s].doc(ord).tokens.to_vec()
    };
    assert_eq!(tokens(&db, "a"), [9, 9, 9]);
    assert_eq!(
        tokens(&before, "a"),
        [1, 2, 3, 4],
        "the old snapshot is unchanged"
    );
    let reopened = Searcher::open(dir.path()).unwrap();
    assert_eq!(tokens(&reopened, "a"), [9, 9, 9]);
    assert!(reopened.contains("c").unwrap() && reopened.contains("b").unwrap());

    // A live id that is not replaced is taken; an invalid document refuses the whole batch.
    let generation = db.manifest().generation;
    let err = db.replace::<&str>(&[], &[doc("b", vec![1])]).unwrap_err();
    assert!(
        matches!(err, Error::DuplicateId(ref id) if id == "b"),
        "{err}"
    );
    let err = db
        .replace(&["b"], &[doc("b", vec![1]), doc("d", vec![200])])
        .unwrap_err();
    assert!(matches!(err, Error::SymbolOutOfVocabulary { .. }), "{err}");
    assert_eq!(db.manifest().generation, generation, "nothing committed");
    assert_eq!(tokens(&db, "b"), [5, 6, 7, 8], "b is still live");
    let reopened = Searcher::open(dir.path()).unwrap();
    assert_eq!(tokens(&reopened, "b"), [5, 6, 7, 8]);
    assert!(!reopened.contains("d").unwrap());
}

fn corrupt_file(path: &Path, offset: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset] ^= 0x55;
    fs::write(path, bytes).unwrap();
}

#[test]
fn damaged_files_name_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(64, 2)).unwrap();
    db.add_tokens(&[doc("a", vec![1, 2, 3]), doc("b", vec![4, 5, 6])])
        .unwrap();
    db.delete(&["a"]).unwrap();
    let deletes = db.manifest().deletes.clone().unwrap().file;
    let segment = db.manifest().segments[0].file.clone();
    drop(db);

    // Tombstones: every flipped byte and every truncation.
    let path = dir.path().join(&deletes);
    let good = fs::read(&path).unwrap();
    for offset in 0..good.len() {
        corrupt_file(&path, offset);
        let err = Searcher::open(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Corrupt {
                    section: "deletes",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains(&deletes), "{err}");
        fs::write(&path, &good).unwrap();
    }
    for len in 0..good.len() {
        fs::write(&path, &good[..len]).unwrap();
        let err = Searcher::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains(&deletes), "{err}");
    }
    fs::write(&path, &good).unwrap();

    // A segment truncated or with a flipped byte.
    let seg_path = dir.path().join("segments").join(&segment);
    let good_seg = fs::read(&seg_path).unwrap();
    fs::write(&seg_path, &good_seg[..good_seg.len() - 3]).unwrap();
    let err = Searcher::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains(&segment), "{err}");
    fs::write(&seg_path, &good_seg).unwrap();
    // Every flipped byte of the segment (issue 23: opening reads the MANIFEST and the headers
    // only; the sections are checked in the background and before their first use): the open
    // fails, or it succeeds and every use fails, naming the file; never a wrong answer.
    let names_segment = |err: &Error| {
        assert!(
            matches!(
                err,
                Error::Corrupt { .. } | Error::UnsupportedVersion { .. }
            ),
            "{err}"
        );
        assert!(err.to_string().contains(&segment), "{err}");
    };
    let (mut at_open, mut at_use) = (0, 0);
    for offset in 0..good_seg.len() {
        corrupt_file(&seg_path, offset);
        match Searcher::open(dir.path()) {
            Err(err) => {
                names_segment(&err);
                at_open += 1;
            }
            Ok(db) => {
                names_segment(&db.verify().unwrap_err());
                names_segment(
                    &db.search_tokens(&[4, 5, 6], &SearchOptions::default())
                        .unwrap_err(),
                );
                names_segment(&db.find("b").unwrap_err());
                names_segment(&db.info().unwrap_err());
                at_use += 1;
            }
        }
        fs::write(&seg_path, &good_seg).unwrap();
    }
    assert!(
        at_open > 0 && at_use > 0,
        "{at_open} at open, {at_use} at first use"
    );
    corrupt_file(&seg_path, good_seg.len() / 2);
    let err = DatabaseWriter::open(dir.path())
        .and_then(|mut db| db.compact())
        .unwrap_err();
    names_segment(&err);
    fs::write(&seg_path, &good_seg).unwrap();

    // A segment file missing altogether.
    fs::rename(&seg_path, dir.path().join("elsewhere")).unwrap();
    let err = Searcher::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains(&segment), "{err}");
    fs::rename(dir.path().join("elsewhere"), &seg_path).unwrap();

    // The MANIFEST.
    let manifest = dir.path().join("MANIFEST");
    corrupt_file(&manifest, 30);
    let err = DatabaseWriter::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("MANIFEST"), "{err}");

    let err = DatabaseWriter::open(dir.path().join("missing")).unwrap_err();
    assert!(matches!(err, Error::NotADatabase { .. }), "{err}");
}

#[test]
fn one_writer_many_readers() {
    let dir = tempfile::tempdir().unwrap();
    let db = DatabaseWriter::create(dir.path(), DatabaseConfig::default()).unwrap();
    assert!(matches!(
        DatabaseWriter::open(dir.path()),
        Err(Error::Locked { .. })
    ));
    assert!(matches!(
        DatabaseWriter::create(dir.path(), DatabaseConfig::default()),
        Err(Error::Locked { .. }) | Err(Error::AlreadyExists { .. })
    ));
    // A reader opens while the writer holds the lock (and has no way to write: `Searcher` has no
    // writing method).
    let reader = Searcher::open(dir.path()).unwrap();
    assert_eq!(reader.manifest().generation, db.manifest().generation);
    drop(db);
    assert!(matches!(
        DatabaseWriter::create(dir.path(), DatabaseConfig::default()),
        Err(Error::AlreadyExists { .. })
    ));
    DatabaseWriter::open(dir.path()).unwrap();
}

#[test]
fn bad_documents_are_rejected_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(16, 2)).unwrap();
    db.add_tokens(&[doc("a", vec![1, 2])]).unwrap();
    let cases = [
        (vec![doc("b", vec![1, 16])], "outside the vocabulary"),
        (vec![doc("a", vec![1])], "already exists"),
        (vec![doc("c", vec![1]), doc("c", vec![2])], "already exists"),
        (vec![doc("", vec![1])], "id must be"),
        (
            vec![NewDoc {
                id: "t".into(),
                tokens: vec![1, 2],
                times_ms: Some(vec![5, 4]),
                duration_ms: None,
            }],
            "decreases",
        ),
        (
            vec![NewDoc {
                id: "t".into(),
                tokens: vec![1, 2],
                times_ms: Some(vec![5]),
                duration_ms: None,
            }],
            "entries",
        ),
    ];
    for (batch, message) in cases {
        let err = db.add_tokens(&batch).unwrap_err();
        assert!(
            err.to_string().contains(message),
            "{err} should say {message}"
        );
    }
    assert_eq!(db.info().unwrap().docs, 1);
    assert!(db.search_tokens(&[], &SearchOptions::default()).is_err());
}

#[test]
fn import_reports_problems_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.jsonl");
    let mut f = fs::File::create(&file).unwrap();
    writeln!(f, r#"{{"id": "a", "tokens": [1, 2, 3]}}"#).unwrap();
    writeln!(
        f,
        r#"{{"id": "b", "tokens": [1, 2, 3], "times_ms": [0, 80, 160], "duration_ms": 240}}"#
    )
    .unwrap();
    writeln!(f, r#"{{"id": "a", "tokens": [4]}}"#).unwrap();
    writeln!(f).unwrap();
    writeln!(f, r#"{{"id": "c", "tokens": [1, 99]}}"#).unwrap();
    writeln!(f, r#"{{"id": "d", "tokens": [1, -2]}}"#).unwrap();
    writeln!(f, r#"not json"#).unwrap();
    f.write_all(b"{\"id\": \"\xff\", \"tokens\": []}\n")
        .unwrap();
    writeln!(f, r#"{{"id": "e", "tokens": [5, 6], "times_ms": [0]}}"#).unwrap();
    writeln!(f, r#"{{"id": "f", "tokens": [7]}}"#).unwrap();
    drop(f);

    let strict_dir = dir.path().join("strict");
    let mut db = DatabaseWriter::create(&strict_dir, DatabaseConfig::new(64, 2)).unwrap();
    let strict = ImportOptions {
        strict: true,
        ..ImportOptions::default()
    };
    let report = import_jsonl(&mut db, &file, &strict).unwrap();
    assert_eq!(report.imported, 0);
    assert_eq!(db.info().unwrap().docs, 0);

    let mut db = DatabaseWriter::create(dir.path().join("db"), DatabaseConfig::new(64, 2)).unwrap();
    let lenient = ImportOptions {
        batch_docs: 2,
        ..ImportOptions::default()
    };
    let report = import_jsonl(&mut db, &file, &lenient).unwrap();
    let lines: Vec<usize> = report.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [3, 5, 6, 7, 8, 9], "{:?}", report.problems);
    assert!(report.problems[0].message.contains("already exists"));
    assert!(report.problems[1]
        .message
        .contains("outside the vocabulary"));
    assert!(report.problems[2].message.contains("malformed"));
    assert_eq!((report.lines, report.imported, report.tokens), (9, 3, 7));
    assert_eq!(db.info().unwrap().segments, 2, "batches of two documents");
    // Re-importing the same file adds nothing: every id is already there.
    let again = import_jsonl(&mut db, &file, &lenient).unwrap();
    assert_eq!(again.imported, 0);
    assert_eq!(db.info().unwrap().docs, 3);
}

#[test]
fn ranked_filter_finds_noisy_copies() {
    // k = 40% of the query is beyond the lemma for q = 3, so the filter ranks diagonal windows by
    // votes; noisy copies of 3 s stretches must still come first.
    let dir = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(512, 3)).unwrap();
    let zipf = ZipfTokens::new(512, 1.0, 3);
    let mut r = rng(3);
    let docs: Vec<NewDoc> = (0..400)
        .map(|d| doc(&format!("d{d:03}"), zipf.string(&mut r, 400)))
        .collect();
    db.add_tokens(&docs).unwrap();
    let ranked = SearchOptions {
        exhaustive_below_cells: 0,
        ..SearchOptions::default()
    };
    let exhaustive = SearchOptions {
        exhaustive: true,
        ..SearchOptions::default()
    };
    let mut first = 0;
    let trials = 60;
    for t in 0..trials {
        let d = r.gen_range(0..docs.len());
        let start = r.gen_range(0..=400 - 38);
        let query = zipf.noisy_copy(&mut r, &docs[d].tokens[start..start + 38], 0.2);
        let outcome = db.search_tokens(&query, &ranked).unwrap();
        assert!(!outcome.lossless);
        let truth = db.search_tokens(&query, &exhaustive).unwrap();
        // Everything the ranked filter returns is a real match, at its true distance or worse.
        assert!(outcome.hits.len() <= truth.hits.len());
        if let (Some(got), Some(want)) = (outcome.hits.first(), truth.hits.first()) {
            assert!(got.distance >= want.distance);
        }
        if outcome.hits.first().map(|h| h.id.as_str()) == Some(docs[d].id.as_str()) {
            first += 1;
        } else {
            eprintln!("trial {t}: source {} not first", docs[d].id);
        }
    }
    assert!(
        first * 100 >= trials * 95,
        "source first in {first} of {trials}"
    );
}

/// A database written by format version 1 of every file (MANIFEST, segments, tombstones), kept so
/// that later versions prove they still read it.
const DB_V1_FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/db-v1");

#[test]
#[ignore = "regenerates the frozen fixture; run only when adding a new format version"]
fn regenerate_db_v1_fixture() {
    let dir = Path::new(DB_V1_FIXTURE);
    let _ = fs::remove_dir_all(dir);
    let mut db = DatabaseWriter::create(dir, DatabaseConfig::new(64, 2)).unwrap();
    db.add_tokens(&[
        NewDoc {
            id: "interview.wav".into(),
            tokens: vec![1, 2, 3, 4, 5, 6, 7, 8],
            times_ms: Some(vec![0, 80, 160, 240, 320, 400, 480, 560]),
            duration_ms: Some(640),
        },
        doc("jingle.flac", vec![9, 10, 11, 12]),
        doc("deleted.mp3", vec![1, 2, 3, 4]),
    ])
    .unwrap();
    db.add_tokens(&[doc("second-batch.ogg", vec![20, 2, 3, 4, 5, 21])])
        .unwrap();
    db.delete(&["deleted.mp3"]).unwrap();
    drop(db);
    fs::remove_file(dir.join("LOCK")).unwrap();
}

#[test]
fn frozen_db_v1_fixture_still_opens() {
    let db = Searcher::open(DB_V1_FIXTURE).unwrap();
    let info = db.info().unwrap();
    assert_eq!(
        (info.segments, info.docs, info.deleted, info.tokens),
        (2, 3, 1, 18)
    );
    let hits = db
        .search_tokens(&[2, 3, 4, 5], &exact(0, Mode::Infix, false))
        .unwrap()
        .hits;
    assert_eq!(ids(&hits), ["interview.wav", "second-batch.ogg"]);
    assert_eq!((hits[0].start_ms, hits[0].end_ms), (80, 400));
    // A writer can take it over (on a copy: tests must not change the fixture).
    let copy = copy_of_db_v1_fixture();
    let mut db = DatabaseWriter::open(copy.path()).unwrap();
    db.add_tokens(&[doc("new", vec![2, 3, 4, 5])]).unwrap();
    db.compact().unwrap();
    assert_eq!(db.info().unwrap().docs, 4);
}

/// A copy of the v1 database fixture that a test may change.
fn copy_of_db_v1_fixture() -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for sub in ["", "segments"] {
        fs::create_dir_all(copy.path().join(sub)).unwrap();
        for entry in fs::read_dir(Path::new(DB_V1_FIXTURE).join(sub)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                fs::copy(entry.path(), copy.path().join(sub).join(entry.file_name())).unwrap();
            }
        }
    }
    copy
}

/// Every live document by id: its tokens, times and duration, read back from the segments.
fn live_documents(db: &Searcher) -> BTreeMap<String, (Vec<Symbol>, Vec<u32>, u32)> {
    let mut docs = BTreeMap::new();
    for segment in db.segments().unwrap() {
        for d in segment.docs().filter(|d| !db.is_deleted(d.doc_id)) {
            let times = d.times_ms.to_vec();
            assert_eq!(times.len(), d.tokens.len());
            let doc = (d.tokens.to_vec(), times, d.duration_ms);
            assert!(docs.insert(d.name.to_string(), doc).is_none());
        }
    }
    docs
}

/// Hits as comparable tuples: id, token range, time range, distance.
fn hit_keys(hits: &[Hit]) -> Vec<(String, usize, usize, u32, u32, u32)> {
    let mut keys: Vec<_> = hits
        .iter()
        .map(|h| {
            (
                h.id.clone(),
                h.start,
                h.end,
                h.start_ms,
                h.end_ms,
                h.distance,
            )
        })
        .collect();
    keys.sort();
    keys
}

/// Issue 23 (segment format v2): a database of v1 segments (the frozen fixture) that takes v2
/// segments searches both, with the same hits and times as exhaustive search, and a compaction
/// rewrites everything as v2 without changing a document, a time or a hit.
#[test]
fn mixed_v1_and_v2_segments_search_and_compact() {
    let copy = copy_of_db_v1_fixture();
    let mut db = DatabaseWriter::open(copy.path()).unwrap();
    let mut r = rng(23);
    let zipf = ZipfTokens::new(64, 1.0, 23);
    // Zipf strings long enough for posting lists of more than 128 positions and documents over
    // several time blocks, on a 78/79 ms grid from a first time that is not 0; one holds the
    // fixture's [2, 3, 4, 5] across the boundary of its second and third time blocks.
    let mut added: Vec<NewDoc> = (0..40)
        .map(|i| {
            let len = r.gen_range(1..400);
            let first = r.gen_range(0..5000);
            NewDoc {
                id: format!("v2/{i:02}.wav"),
                tokens: zipf.string(&mut r, len),
                times_ms: Some((0..len as u32).map(|j| first + j * 10_000 / 127).collect()),
                duration_ms: Some(first + len as u32 * 79 + 79),
            }
        })
        .collect();
    let mut planted = zipf.string(&mut r, 300);
    planted[254..258].copy_from_slice(&[2, 3, 4, 5]);
    added.push(NewDoc {
        id: "v2/planted.wav".into(),
        times_ms: Some((0..300).map(|j| 700 + j * 80).collect()),
        duration_ms: Some(700 + 300 * 80),
        tokens: planted,
    });
    db.add_tokens(&added).unwrap();
    let versions = |db: &DatabaseWriter| -> Vec<u32> {
        db.segments()
            .unwrap()
            .iter()
            .map(|s| s.format_version())
            .collect()
    };
    assert_eq!(versions(&db), [1, 1, 2]);

    let queries: Vec<Vec<Symbol>> = std::iter::once(vec![2, 3, 4, 5])
        .chain((0..12).map(|i| {
            let d = &added[i * 3].tokens;
            let start = d.len() / 3;
            d[start..(start + 12).min(d.len())].to_vec()
        }))
        .collect();
    let search = |db: &Searcher, exhaustive: bool| -> Vec<_> {
        queries
            .iter()
            .map(|q| {
                let outcome = db
                    .search_tokens(q, &exact(1, Mode::Infix, exhaustive))
                    .unwrap();
                hit_keys(&outcome.hits)
            })
            .collect()
    };
    let before = db.searcher();
    let hits = search(&before, false);
    assert_eq!(
        hits,
        search(&before, true),
        "filter equals exhaustive search"
    );
    // The fixture's query finds documents in both layouts, timed from each.
    let exact_hits: Vec<_> = hits[0].iter().filter(|h| h.5 == 0).collect();
    assert_eq!(
        exact_hits
            .iter()
            .map(|h| (h.0.as_str(), h.3, h.4))
            .collect::<Vec<_>>(),
        [
            ("interview.wav", 80, 400),
            ("second-batch.ogg", 78, 393),
            ("v2/planted.wav", 700 + 254 * 80, 700 + 258 * 80)
        ]
    );
    let documents = live_documents(&before);
    assert_eq!(documents.len(), 3 + added.len());
    for d in &added {
        let (tokens, times, duration) = &documents[&d.id];
        assert_eq!(
            (tokens, Some(times), Some(*duration)),
            (&d.tokens, d.times_ms.as_ref(), d.duration_ms)
        );
    }

    db.compact().unwrap();
    assert_eq!(versions(&db), [2]);
    let after = db.searcher();
    assert_eq!(live_documents(&after), documents);
    assert_eq!(search(&after, false), hits);
    drop(db);
    let reopened = Searcher::open(copy.path()).unwrap();
    assert_eq!(live_documents(&reopened), documents);
    assert_eq!(search(&reopened, false), hits);
}

#[test]
fn tiered_policy_merges_a_full_tier_and_leaves_larger_segments() {
    use pairalign_engine::{tiered_merge_start, MERGE_TIER_BYTES};
    let small = 1000;
    let big = MERGE_TIER_BYTES * 5; // tier 2 for factor 4: above 4 MiB, at most 16 MiB
    assert_eq!(tiered_merge_start(&[], 4), None);
    assert_eq!(tiered_merge_start(&[small; 3], 4), None);
    assert_eq!(tiered_merge_start(&[small; 4], 4), Some(0));
    // Older, larger segments stay out of the run.
    assert_eq!(tiered_merge_start(&[big, small, small, small], 4), None);
    assert_eq!(
        tiered_merge_start(&[big, small, small, small, small], 4),
        Some(1)
    );
    // A newest segment of a higher tier takes the smaller ones before it along.
    assert_eq!(
        tiered_merge_start(&[big, small, small, small, big], 4),
        Some(0)
    );
    // Simulated uploads: the count stays below `factor` per tier and every merge is of one run.
    let factor = 4;
    let mut sizes: Vec<u64> = Vec::new();
    let mut rewritten = 0u64;
    for _ in 0..5000 {
        sizes.push(40_000);
        while let Some(from) = tiered_merge_start(&sizes, factor) {
            let merged: u64 = sizes.drain(from..).sum();
            rewritten += merged;
            sizes.push(merged);
        }
        assert!(sizes.len() < 4 * factor, "{} segments", sizes.len());
    }
    let total: u64 = sizes.iter().sum();
    // Each byte is rewritten a few times per tier (7.8 times here: 4 tiers, and segments under
    // 1 MiB share the first), not once per upload as merging everything each time would (2,500).
    assert!(rewritten < total * 10, "{rewritten} rewritten for {total}");
}

#[test]
fn merge_small_keeps_every_search_result() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(16, 2)).unwrap();
    let mut live: BTreeMap<String, Vec<Symbol>> = BTreeMap::new();
    let mut r = rng(7);
    let factor = 3;
    let mut merges = 0;
    for step in 0..60 {
        let id = format!("doc{step}");
        let tokens: Vec<Symbol> = (0..r.gen_range(3..40))
            .map(|_| r.gen_range(0..16))
            .collect();
        db.add_tokens(&[doc(&id, tokens.clone())]).unwrap();
        live.insert(id, tokens);
        if r.gen_bool(0.3) {
            let victim = live.keys().nth(r.gen_range(0..live.len())).unwrap().clone();
            db.delete(&[victim.as_str()]).unwrap();
            live.remove(&victim);
        }
        let before = db.segment_count();
        let merged = db.merge_small(factor).unwrap();
        assert_eq!(
            db.segment_count(),
            before - merged + usize::from(merged > 0)
        );
        merges += usize::from(merged > 0);
        assert!(
            db.segment_count() < factor,
            "all segments are in the smallest tier"
        );
        if step % 10 == 9 {
            drop(db);
            db = DatabaseWriter::open(dir.path()).unwrap();
        }
        // Every live document, and only those, is found by an exact global search for itself.
        let info = db.info().unwrap();
        assert_eq!(info.docs as usize, live.len());
        // Tombstones of documents a merge dropped are not counted as waiting for compaction.
        let present = db
            .segments()
            .unwrap()
            .iter()
            .map(|s| s.doc_count() as u64)
            .sum::<u64>();
        assert_eq!(info.docs + info.deleted, present);
        for (id, tokens) in &live {
            let hits = db
                .search_tokens(tokens, &exact(0, Mode::Global, true))
                .unwrap()
                .hits;
            assert!(
                ids(&hits).contains(&id.as_str()),
                "{id} lost at step {step}"
            );
            for hit in &hits {
                assert_eq!(live.get(&hit.id), Some(tokens), "{} is not live", hit.id);
            }
        }
    }
    assert!(merges > 10, "{merges} merges");
}

/// The top N is the head of a longer list, whatever the path (scan, lossless filter, ranked
/// filter): the verifier locates only the regions that can make the top N (ties at the cut
/// included), which must change nothing but the work. Pieces repeat across documents, so there
/// are ties at every cut.
#[test]
fn top_n_is_the_head_of_the_full_ranking() {
    let mut r = rng(41);
    let dir = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(32, 3)).unwrap();
    let zipf = ZipfTokens::new(32, 1.0, 5);
    let pieces: Vec<Vec<Symbol>> = (0..20).map(|_| zipf.string(&mut r, 8)).collect();
    let docs: Vec<NewDoc> = (0..200)
        .map(|d| {
            let tokens = (0..r.gen_range(2..12))
                .flat_map(|_| pieces[r.gen_range(0..pieces.len())].clone())
                .collect();
            doc(&format!("d{d:03}"), tokens)
        })
        .collect();
    db.add_tokens(&docs[..100]).unwrap();
    db.add_tokens(&docs[100..]).unwrap();
    for _ in 0..10 {
        let source = &docs[r.gen_range(0..docs.len())].tokens;
        let len = 24.min(source.len());
        let start = r.gen_range(0..=source.len() - len);
        let query = zipf.noisy_copy(&mut r, &source[start..start + len], 0.1);
        for k in [0.1, 0.4, 0.9] {
            for (exhaustive, max_regions) in [(true, 10_000), (false, 10_000), (false, 20)] {
                for mode in [Mode::Infix, Mode::Global] {
                    let options = |top| SearchOptions {
                        top,
                        k: Some(EditBudget::Fraction(k)),
                        mode,
                        exhaustive,
                        max_regions,
                        exhaustive_below_cells: 0,
                        ..SearchOptions::default()
                    };
                    let all = db.search_tokens(&query, &options(100_000)).unwrap().hits;
                    for top in [1, 3, 10] {
                        let head = db.search_tokens(&query, &options(top)).unwrap().hits;
                        assert_eq!(
                            head,
                            all[..top.min(all.len())],
                            "k {k} top {top} exhaustive {exhaustive} regions {max_regions} \
                             {mode:?}"
                        );
                    }
                }
            }
        }
    }
}

/// Runs of one symbol (pauses) must not outvote real agreement: a window's votes count each
/// query offset and each text position once, so documents with long pauses do not crowd the
/// passage's own document out of a small ranked budget. With one vote per q-gram hit, a query
/// run of 12 pauses against a text run of 40 is about 150 votes in one window, more than the
/// passage's own document gets (about 90 for its run of 12 and 16 for its words); counted once,
/// the run is 10 votes and the words 16 more.
#[test]
fn pause_runs_do_not_crowd_out_the_ranked_budget() {
    let mut r = rng(43);
    let dir = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(64, 3)).unwrap();
    let zipf = ZipfTokens::new(64, 0.5, 9);
    let pause: Symbol = 1;
    let words = |r: &mut rand::rngs::StdRng, n: usize| -> Vec<Symbol> {
        zipf.string(r, n).into_iter().map(|s| s.max(2)).collect()
    };
    // 4,000 documents of random words (enough that the filter is cheaper than a scan), 20 of
    // them with a long pause (rare enough that the ranked filter reads its q-gram), and the
    // passage's document.
    let mut docs: Vec<NewDoc> = (0..4000)
        .map(|d| {
            let mut tokens = words(&mut r, 30);
            if d % 200 == 0 {
                tokens.extend([pause; 40]);
            }
            tokens.extend(words(&mut r, 30));
            doc(&format!("noise{d:03}"), tokens)
        })
        .collect();
    let mut passage = vec![pause; 12];
    passage.extend(words(&mut r, 24));
    let mut target = words(&mut r, 30);
    target.extend(&passage);
    target.extend(words(&mut r, 30));
    docs.insert(2500, doc("target", target));
    db.add_tokens(&docs).unwrap();
    let mut query = passage.clone();
    query[20] = 63;
    query[30] = 62;
    let options = SearchOptions {
        top: 1,
        k: Some(EditBudget::Fraction(0.4)),
        max_regions: 5,
        exhaustive_below_cells: 0,
        ..SearchOptions::default()
    };
    let outcome = db.search_tokens(&query, &options).unwrap();
    assert!(!outcome.lossless);
    assert_eq!(ids(&outcome.hits), ["target"]);
    assert_eq!(outcome.hits[0].distance, 2);
}

/// The galloping document lookup that voting uses agrees with the plain one at every position,
/// from every starting ordinal, empty documents included.
#[test]
fn doc_lookup_from_a_cursor_agrees_with_the_plain_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(16, 2)).unwrap();
    let lengths = [3usize, 0, 1, 7, 0, 0, 2, 40, 1, 0, 5];
    let docs: Vec<NewDoc> = lengths
        .iter()
        .enumerate()
        .map(|(d, &n)| {
            doc(
                &format!("d{d:02}"),
                (0..n as Symbol).map(|s| s % 16).collect(),
            )
        })
        .collect();
    db.add_tokens(&docs).unwrap();
    let searcher = db.searcher();
    let segment = &searcher.segments().unwrap()[0];
    let total = lengths.iter().sum::<usize>() as u32;
    for pos in 0..total + 3 {
        let plain = segment.doc_at_position(pos);
        for first in 0..lengths.len() + 2 {
            assert_eq!(
                segment.doc_at_position_from(pos, first),
                plain,
                "position {pos} from {first}"
            );
        }
    }
}

/// A segment voted in parts of its diagonals (in parallel, one part per thread) gives what it
/// gives voted whole: the same hits and the same candidate regions at every budget and in both
/// modes. 64 threads over 3,000 tokens: parts of about 50 diagonals, so that most matches cross
/// a boundary; a large vocabulary so that the filter votes rather than scans.
#[test]
fn parts_of_a_segment_vote_like_the_whole() {
    let mut r = rng(47);
    let dir = tempfile::tempdir().unwrap();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(4096, 3)).unwrap();
    let zipf = ZipfTokens::new(4096, 0.3, 7);
    let docs: Vec<NewDoc> = (0..100)
        .map(|d| doc(&format!("d{d:03}"), zipf.string(&mut r, 30)))
        .collect();
    db.add_tokens(&docs).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(64)
        .build()
        .unwrap();
    let mut voted = 0;
    for round in 0..60 {
        let source = &docs[r.gen_range(0..docs.len())].tokens;
        let start = r.gen_range(0..=5);
        let rate = [0.05, 0.15, 0.3][round % 3];
        let query = zipf.noisy_copy(&mut r, &source[start..start + 25], rate);
        for k in [0.1, 0.25, 0.4, 0.9] {
            for mode in [Mode::Infix, Mode::Global] {
                let whole = SearchOptions {
                    top: 50,
                    k: Some(EditBudget::Fraction(k)),
                    mode,
                    max_regions: 1_000_000,
                    exhaustive_below_cells: 0,
                    ..SearchOptions::default()
                };
                let parts = SearchOptions {
                    part_min_tokens: 1,
                    ..whole.clone()
                };
                let expected = db.search_tokens(&query, &whole).unwrap();
                let got = pool.install(|| db.search_tokens(&query, &parts).unwrap());
                assert_eq!(got.hits, expected.hits, "k {k} {mode:?}");
                // The same candidate regions, merged across part boundaries.
                assert_eq!(
                    (got.lossless, got.regions, got.verified_tokens),
                    (
                        expected.lossless,
                        expected.regions,
                        expected.verified_tokens
                    ),
                    "k {k} {mode:?}"
                );
                // Voted, not scanned: fewer regions than documents.
                voted += usize::from(expected.regions < docs.len());
            }
        }
    }
    assert!(voted > 360, "only {voted} of 480 searches voted");
}
