//! How long a metadata filter takes to resolve to document ids, the step a filtered search adds
//! before verification: `CatalogReader::select_ids` (the `id` fast column) beside
//! `CatalogReader::select` (one stored-document read per match, the way filters were resolved
//! before the column existed), in the same run, on one synthetic catalog.
//!
//! Data: `PAIRALIGN_FILTER_DOCS` (default 108,674, the document count of the 100-hour synthetic
//! archive) entries with a tag from `tag0`..`tag99` (so `tags:tag7` selects 1%), a second tag
//! `even` or `odd` (50%) and durations spread over 2-6 s. Each filter runs 7 times; the median
//! is reported.
//!
//! Run: `cargo bench -p pairalign-benches --bench catalog_filter`. Prints a table and one JSON
//! line.

use std::time::Instant;

use pairalign_catalog::{Asset, Catalog};

fn median_ms(mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..7 {
        let t = Instant::now();
        n = f();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], n)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let docs: usize = std::env::var("PAIRALIGN_FILTER_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(108_674);
    let dir = tempfile::tempdir()?;
    let mut catalog = Catalog::open_or_create(dir.path())?;
    let t = Instant::now();
    let assets: Vec<Asset> = (0..docs)
        .map(|i| Asset {
            id: format!("/archive/voice{:03}/utt{i:07}.wav", i % 97),
            path: Some(format!("/archive/voice{:03}/utt{i:07}.wav", i % 97)),
            file_name: Some(format!("utt{i:07}.wav")),
            title: None,
            tags: vec![
                format!("tag{}", i % 100),
                if i % 2 == 0 { "even" } else { "odd" }.to_string(),
            ],
            duration_s: 2.0 + (i % 400) as f64 / 100.0,
            format: Some("wav/pcm_s16le".into()),
            sample_rate: Some(16_000),
            content_hash: format!("{i:064x}"),
            tokens: 100,
            indexed_at: "2026-12-02T00:00:00Z".into(),
            file_size: Some(100_000),
            modified_ns: Some(0),
        })
        .collect();
    for chunk in assets.chunks(10_000) {
        catalog.upsert(chunk)?;
    }
    println!(
        "catalog: {docs} entries written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let reader = catalog.reader();
    println!(
        "| filter | matches | select_ids (column) ms | select (stored documents) ms | ratio |"
    );
    println!("|---|---|---|---|---|");
    let mut rows = Vec::new();
    for filter in [
        "tags:tag7",
        "duration:>5.5",
        "tags:even",
        "tags:even OR tags:tag7",
    ] {
        let (column_ms, n) = median_ms(|| reader.select_ids(filter).map_or(0, |v| v.len()));
        let (stored_ms, m) = median_ms(|| reader.select(filter).map_or(0, |v| v.len()));
        assert_eq!(n, m, "{filter}: both paths select the same entries");
        println!(
            "| `{filter}` | {n} | {column_ms:.2} | {stored_ms:.2} | {:.1}x |",
            stored_ms / column_ms
        );
        rows.push(serde_json::json!({"filter": filter, "matches": n,
            "select_ids_ms": column_ms, "select_ms": stored_ms}));
    }
    println!(
        "{}",
        serde_json::json!({"bench": "catalog_filter", "docs": docs, "rows": rows})
    );
    Ok(())
}
