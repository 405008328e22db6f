//! `merge_databases`: shard databases merged into one search exactly like one database built
//! with the same documents; reruns, conflicts, deletes, mismatched shards and damaged shards.

#![allow(clippy::unwrap_used)] // Tests unwrap: a failure is the test failing.

use std::path::{Path, PathBuf};

use pairalign_catalog::{Asset, Catalog, CatalogReader};
use pairalign_engine::synthetic::{rng, ZipfTokens};
use pairalign_engine::{
    DatabaseConfig, DatabaseWriter, EditBudget, Hit, NewDoc, SearchOptions, Searcher,
    TokenizerRecord,
};
use pairalign_indexer::{merge_databases, shard_of, MergeOptions};
use rand::Rng;

const VOCAB: u32 = 64;

fn tokenizer(id: &str) -> TokenizerRecord {
    TokenizerRecord {
        id: id.into(),
        weights_hash: "abc123".into(),
    }
}

fn asset(doc: &NewDoc) -> Asset {
    Asset {
        id: doc.id.clone(),
        path: Some(format!("/archive/{}.wav", doc.id)),
        file_name: Some(format!("{}.wav", doc.id)),
        title: Some(format!("Recording {}", doc.id)),
        tags: vec!["shard-test".into()],
        duration_s: f64::from(doc.duration_ms.unwrap_or(0)) / 1000.0,
        format: Some("wav/pcm_s16le".into()),
        sample_rate: Some(16_000),
        content_hash: format!("hash-{}", doc.id),
        tokens: doc.tokens.len() as u64,
        indexed_at: "2026-12-07T10:00:00Z".into(),
        file_size: None,
        modified_ns: None,
    }
}

/// A database of `docs` with their catalog entries, committed in batches of `batch`.
fn build(dir: &Path, docs: &[NewDoc], record: Option<TokenizerRecord>, batch: usize) {
    let mut db = DatabaseWriter::create(dir, DatabaseConfig::new(VOCAB, 3)).unwrap();
    if let Some(record) = record {
        db.set_tokenizer(record).unwrap();
    }
    let mut catalog = Catalog::open_or_create(dir).unwrap();
    for chunk in docs.chunks(batch) {
        catalog
            .upsert(&chunk.iter().map(asset).collect::<Vec<_>>())
            .unwrap();
        db.add_tokens(chunk).unwrap();
    }
}

fn documents(n: usize, seed: u64) -> Vec<NewDoc> {
    let mut r = rng(seed);
    let zipf = ZipfTokens::new(VOCAB, 1.0, seed);
    (0..n)
        .map(|d| {
            let len = r.gen_range(5..200);
            let tokens = zipf.string(&mut r, len);
            let times: Vec<u32> = (0..tokens.len() as u32).map(|i| i * 79 + 3).collect();
            NewDoc {
                id: format!("doc-{seed}-{d:04}"),
                duration_ms: Some(tokens.len() as u32 * 79 + 50),
                times_ms: Some(times),
                tokens,
            }
        })
        .collect()
}

fn search_all(db: &Searcher, queries: &[Vec<u16>]) -> Vec<Vec<Hit>> {
    let mut all = Vec::new();
    for query in queries {
        for k in [0.1, 0.4, 0.9] {
            let options = SearchOptions {
                top: 20,
                k: Some(EditBudget::Fraction(k)),
                ..SearchOptions::default()
            };
            let mut hits = db.search_tokens(query, &options).unwrap().hits;
            // Document numbers differ between databases; ids, places and times do not.
            for hit in &mut hits {
                hit.doc_id = 0;
            }
            all.push(hits);
        }
    }
    all
}

fn queries(docs: &[NewDoc], seed: u64) -> Vec<Vec<u16>> {
    let mut r = rng(seed);
    let zipf = ZipfTokens::new(VOCAB, 1.0, seed);
    (0..12)
        .map(|_| {
            let source = &docs[r.gen_range(0..docs.len())].tokens;
            let len = source.len().min(30);
            let start = r.gen_range(0..=source.len() - len);
            zipf.noisy_copy(&mut r, &source[start..start + len], 0.1)
        })
        .collect()
}

#[test]
fn merged_shards_search_like_one_database() {
    let dir = tempfile::tempdir().unwrap();
    let docs = documents(300, 1);
    let record = Some(tokenizer("pairalign-v2"));
    build(&dir.path().join("single"), &docs, record.clone(), 50);
    let shard_dirs: Vec<PathBuf> = (0..3)
        .map(|s| dir.path().join(format!("shard{s}")))
        .collect();
    for (s, shard) in shard_dirs.iter().enumerate() {
        let mine: Vec<NewDoc> = docs
            .iter()
            .filter(|d| shard_of(&d.id, 3) == s)
            .cloned()
            .collect();
        build(shard, &mine, record.clone(), 40);
    }
    let out = dir.path().join("merged");
    let options = MergeOptions { batch_tokens: 5000 };
    let mut commits = 0;
    let report = merge_databases(&out, &shard_dirs, &options, |_| commits += 1).unwrap();
    assert_eq!(
        (report.shards, report.added, report.already_present),
        (3, 300, 0)
    );
    assert!(report.conflicts.is_empty());
    assert_eq!(report.catalog_entries, 300);
    assert!(commits > 3, "batches of 5,000 tokens: {commits} commits");

    let merged = Searcher::open(&out).unwrap();
    let single = Searcher::open(dir.path().join("single")).unwrap();
    assert_eq!(merged.tokenizer(), record.as_ref());
    assert_eq!(merged.info().unwrap().docs, 300);
    let queries = queries(&docs, 2);
    assert_eq!(search_all(&merged, &queries), search_all(&single, &queries));
    // Every catalog entry came along, unchanged.
    let catalog = CatalogReader::open(&out).unwrap().unwrap();
    for doc in &docs {
        assert_eq!(catalog.get(&doc.id).unwrap(), Some(asset(doc)));
    }

    // A rerun copies nothing and finds everything present.
    let again = merge_databases(&out, &shard_dirs, &options, |_| {}).unwrap();
    assert_eq!((again.added, again.already_present), (0, 300));
    assert_eq!(Searcher::open(&out).unwrap().info().unwrap().docs, 300);
}

#[test]
fn conflicts_deletes_and_reruns_after_a_partial_merge() {
    let dir = tempfile::tempdir().unwrap();
    let docs = documents(60, 3);
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    build(&a, &docs[..40], None, 20);
    // Shard b repeats 10 of a's documents: 5 the same, 5 with other tokens.
    let mut other: Vec<NewDoc> = docs[40..].to_vec();
    other.extend(docs[..5].iter().cloned());
    other.extend(docs[5..10].iter().map(|d| NewDoc {
        tokens: d.tokens.iter().map(|&t| (t + 1) % VOCAB as u16).collect(),
        ..d.clone()
    }));
    build(&b, &other, None, 20);
    // A document deleted in a shard is not copied.
    DatabaseWriter::open(&b)
        .unwrap()
        .delete(&[docs[45].id.as_str()])
        .unwrap();

    let out = dir.path().join("out");
    // A merge of shard a alone stands for a merge killed after its first shard.
    merge_databases(&out, &[&a], &MergeOptions::default(), |_| {}).unwrap();
    let report = merge_databases(&out, &[&a, &b], &MergeOptions::default(), |_| {}).unwrap();
    assert_eq!(report.added, 19, "b's 20 own documents but the deleted one");
    assert_eq!(report.already_present, 40 + 5);
    let conflicted: Vec<&str> = report.conflicts.iter().map(|c| c.id.as_str()).collect();
    let expected: Vec<&str> = docs[5..10].iter().map(|d| d.id.as_str()).collect();
    assert_eq!(conflicted, expected);
    assert!(report.conflicts.iter().all(|c| c.shard == b));
    let merged = Searcher::open(&out).unwrap();
    assert_eq!(merged.info().unwrap().docs, 59);
    assert!(!merged.contains(&docs[45].id).unwrap());
    // The first copy of a conflicting id stays.
    let (s, ord) = merged.find(&docs[7].id).unwrap().unwrap();
    assert_eq!(
        merged.segments().unwrap()[s].doc_tokens(ord),
        &docs[7].tokens[..]
    );
}

#[test]
fn mismatched_or_damaged_shards_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let docs = documents(40, 5);
    let v2 = dir.path().join("v2");
    let v1 = dir.path().join("v1");
    let imported = dir.path().join("imported");
    build(&v2, &docs[..20], Some(tokenizer("pairalign-v2")), 20);
    build(&v1, &docs[20..], Some(tokenizer("pairalign-v1")), 20);
    build(&imported, &docs[20..], None, 20);
    let out = dir.path().join("out");
    let options = MergeOptions::default();

    let err = merge_databases(&out, &[&v2, &v1], &options, |_| {}).unwrap_err();
    assert!(err.is_tokenizer_mismatch(), "{err}");
    assert!(err.to_string().contains("pairalign-v1"), "{err}");
    let err = merge_databases(&out, &[&v2, &imported], &options, |_| {}).unwrap_err();
    assert!(err.is_tokenizer_mismatch(), "{err}");
    assert!(!out.exists(), "nothing written for mismatched shards");

    // Another vocabulary.
    let wide = dir.path().join("wide");
    DatabaseWriter::create(&wide, DatabaseConfig::new(512, 3))
        .unwrap()
        .set_tokenizer(tokenizer("pairalign-v2"))
        .unwrap();
    let err = merge_databases(&out, &[&v2, &wide], &options, |_| {}).unwrap_err();
    assert!(err.to_string().contains("vocabulary"), "{err}");

    // A damaged segment: an error naming its file, and no output.
    let segment = std::fs::read_dir(v2.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&segment, bytes).unwrap();
    let err = merge_databases(&out, &[&v2], &options, |_| {}).unwrap_err();
    let name = segment.file_name().unwrap().to_string_lossy().to_string();
    assert!(err.to_string().contains(&name), "{err}");
    assert!(!out.exists());

    // The output cannot be one of the shards.
    let err = merge_databases(&v1, &[&v1], &options, |_| {}).unwrap_err();
    assert!(
        err.to_string().contains("both the output and a shard"),
        "{err}"
    );
}
