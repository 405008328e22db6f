//! Recall and latency of the ranked filter on a real-token archive, for tuning candidate
//! generation (issue 23). Reads the scale bench's cached queries (`queries.json`, phase 0 of
//! each), computes the exhaustive top 10 once per budget (cached next to the queries), then times
//! the filtered search.
//!
//! ```text
//! cargo run --release -p pairalign-engine --example recall_probe -- DB QUERIES.json [K...]
//! ```
//! `PROBE_MAX_REGIONS` overrides the candidate budget, `PROBE_PART_MIN_TOKENS` the size from
//! which a segment is voted in parts; `PROBE_PHASES=all` searches every phase;
//! `PROBE_EXHAUSTIVE=1` times the exhaustive search; `PROBE_EXPLAIN=1` prints, for each query
//! whose source the filter missed, the q-grams the source's hit shares with the query.
//! `PROBE_NEAREST=DIR` times the exact unbounded top 10 in global mode (`k: None`, what
//! rapidfuzz's `process.cdist` computes) and writes the documents and queries to DIR for the peer
//! (`scripts/scale-nearest-peer.sh` runs both).

use std::path::Path;
use std::time::Instant;

use pairalign_engine::{EditBudget, Hit, SearchOptions, Searcher, Symbol};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, queries_path, ks @ ..] = &args[..] else {
        return Err("usage: recall_probe DB QUERIES.json [K...]".into());
    };
    let ks: Vec<f64> = if ks.is_empty() {
        vec![0.4, 0.9]
    } else {
        ks.iter()
            .map(|k| k.parse())
            .collect::<std::result::Result<_, _>>()?
    };
    let all_phases = std::env::var("PROBE_PHASES").is_ok_and(|p| p == "all");
    let text = std::fs::read_to_string(queries_path)?;
    let value: serde_json::Value = serde_json::from_str(&text)?;
    let listed = value["queries"].as_array().ok_or("no queries")?;
    let queries: Vec<Vec<Vec<Symbol>>> = listed
        .iter()
        .map(|q| serde_json::from_value(q["phases"].clone()))
        .collect::<std::result::Result<_, _>>()?;
    let assets: Vec<String> = listed
        .iter()
        .map(|q| q["asset"].as_str().unwrap_or_default().to_string())
        .collect();
    let searcher = Searcher::open(Path::new(db))?;
    searcher.verify()?;
    let tokens: u64 = searcher.segments()?.iter().map(|s| s.token_count()).sum();
    println!("{db}: {tokens} tokens, {} queries", queries.len());
    if let Ok(dir) = std::env::var("PROBE_NEAREST") {
        return nearest(&searcher, &queries, Path::new(&dir));
    }
    for k in ks {
        let exact_path = format!(
            "{queries_path}.{}-{k}{}.exact2.json",
            db.replace('/', "_"),
            if all_phases { "-all" } else { "" }
        );
        let exact: Vec<Vec<(Vec<u32>, bool)>> = match std::fs::read_to_string(&exact_path) {
            Ok(text) => serde_json::from_str(&text)?,
            Err(_) => {
                let options = options(k, true);
                let exact: Vec<Vec<(Vec<u32>, bool)>> = queries
                    .iter()
                    .zip(&assets)
                    .map(|(phases, asset)| {
                        Ok(searcher
                            .search_many(&phase_refs(phases, all_phases), &options)?
                            .iter()
                            .map(|o| (distances(&o.hits), o.hits.iter().any(|h| &h.id == asset)))
                            .collect())
                    })
                    .collect::<Result<_>>()?;
                std::fs::write(&exact_path, serde_json::to_string(&exact)?)?;
                exact
            }
        };
        // `PROBE_EXHAUSTIVE=1` times the exhaustive search instead (the filter's reference).
        let options = options(k, std::env::var("PROBE_EXHAUSTIVE").is_ok());
        let mut times = Vec::new();
        let (mut recall, mut counted, mut regions, mut best) = (0.0, 0usize, 0usize, 0usize);
        let (mut sources, mut sources_found) = (0usize, 0usize);
        let explain = std::env::var("PROBE_EXPLAIN").is_ok();
        for ((phases, truth), asset) in queries.iter().zip(&exact).zip(&assets) {
            let started = Instant::now();
            let outcomes = searcher.search_many(&phase_refs(phases, all_phases), &options)?;
            times.push(started.elapsed().as_secs_f64() * 1e3);
            for (outcome, (truth, source)) in outcomes.iter().zip(truth) {
                regions += outcome.regions;
                if *source {
                    sources += 1;
                    sources_found += usize::from(outcome.hits.iter().any(|h| &h.id == asset));
                }
                let Some(&worst) = truth.last() else { continue };
                let good = outcome
                    .hits
                    .iter()
                    .filter(|h| h.distance <= worst)
                    .count()
                    .min(truth.len());
                recall += good as f64 / truth.len() as f64;
                best +=
                    usize::from(outcome.hits.first().map(|h| h.distance) == truth.first().copied());
                let source_missed = *source && !outcome.hits.iter().any(|h| &h.id == asset);
                if explain && source_missed {
                    let exact = searcher.search_tokens(&phases[0], &self::options(k, true))?;
                    let of_source: Vec<Hit> = exact
                        .hits
                        .iter()
                        .filter(|h| &h.id == asset)
                        .cloned()
                        .collect();
                    explain_misses(&searcher, &phases[0], &of_source, &outcome.hits)?;
                }
                counted += 1;
            }
        }
        times.sort_by(f64::total_cmp);
        let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
        println!(
            "k {k}: p50 {:.2} ms, p90 {:.2}, p99 {:.2}; recall@10 {:.3}, best found {:.3} over {counted} strings; \
             source {sources_found}/{sources}; {:.0} regions a string",
            pct(0.5),
            pct(0.9),
            pct(0.99),
            recall / counted.max(1) as f64,
            best as f64 / counted.max(1) as f64,
            regions as f64 / (queries.len() as f64),
        );
    }
    Ok(())
}

fn options(k: f64, exhaustive: bool) -> SearchOptions {
    let mut options = SearchOptions {
        top: 10,
        k: Some(EditBudget::Fraction(k)),
        exhaustive,
        ..SearchOptions::default()
    };
    if let Some(n) = std::env::var("PROBE_PART_MIN_TOKENS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        options.part_min_tokens = n;
    }
    if let Some(n) = std::env::var("PROBE_MAX_REGIONS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        options.max_regions = n;
    }
    options
}

fn phase_refs(phases: &[Vec<Symbol>], all: bool) -> Vec<&[Symbol]> {
    let n = if all { phases.len() } else { 1 };
    phases.iter().take(n).map(Vec::as_slice).collect()
}

fn distances(hits: &[Hit]) -> Vec<u32> {
    hits.iter().map(|h| h.distance).collect()
}

/// Prints, for each exact hit the filter missed, what its q-grams looked like.
fn explain_misses(
    searcher: &Searcher,
    query: &[Symbol],
    exact: &[Hit],
    found: &[Hit],
) -> Result<()> {
    let q = 3;
    let segments = searcher.segments()?;
    let vocab = segments[0].vocab_size();
    let tokens: u64 = segments.iter().map(|s| s.token_count()).sum();
    let cap = (tokens / 2048).max(1024);
    println!(
        "query m {} cut {:?} found {:?}",
        query.len(),
        exact.last().map(|h| h.distance),
        found.iter().map(|h| h.distance).collect::<Vec<_>>()
    );
    for hit in exact.iter().take(1) {
        if found
            .iter()
            .any(|f| f.doc_id == hit.doc_id && f.start < hit.end && hit.start < f.end)
        {
            continue;
        }
        let Some((s, ord)) = searcher.find(&hit.id)? else {
            continue;
        };
        let text = &segments[s].doc_tokens(ord)[hit.start..hit.end];
        let text_grams: std::collections::HashSet<&[Symbol]> = text.windows(q).collect();
        let shared: Vec<(usize, u32)> = query
            .windows(q)
            .enumerate()
            .filter(|(_, g)| text_grams.contains(g))
            .map(|(i, g)| {
                let key = pairalign_engine::segment::qgram_key(g, vocab);
                (i, segments[s].posting_len(key).unwrap_or(0))
            })
            .collect();
        let rare = shared.iter().filter(|&&(_, n)| u64::from(n) <= cap).count();
        println!(
            "  missed d {} len {}: shared offsets {} (under cap {cap}: {rare}) {:?}",
            hit.distance,
            hit.end - hit.start,
            shared.len(),
            shared
                .iter()
                .map(|&(i, n)| format!("{i}:{n}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    Ok(())
}

/// Times the exact 10 nearest documents (no budget) of each query's phase 0, by global distance
/// (what the peer computes) and by infix distance (where in each document the query fits best),
/// and writes the documents (`docs.u16`, `lengths.u32`) and queries (`queries.json`) to `dir`
/// for `scripts/peer_rapidfuzz_cdist.py`.
fn nearest(searcher: &Searcher, queries: &[Vec<Vec<Symbol>>], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let (mut tokens, mut lengths) = (Vec::new(), Vec::new());
    for segment in searcher.segments()? {
        for ord in 0..segment.doc_count() {
            let doc = segment.doc_tokens(ord);
            tokens.extend(doc.iter().flat_map(|t| t.to_le_bytes()));
            lengths.extend((doc.len() as u32).to_le_bytes());
        }
    }
    std::fs::write(dir.join("docs.u16"), tokens)?;
    std::fs::write(dir.join("lengths.u32"), lengths)?;
    let phase0: Vec<&Vec<Symbol>> = queries.iter().map(|q| &q[0]).collect();
    std::fs::write(dir.join("queries.json"), serde_json::to_vec(&phase0)?)?;
    let mut p50 = Vec::new();
    for mode in [
        pairalign_engine::Mode::Global,
        pairalign_engine::Mode::Infix,
    ] {
        let options = SearchOptions {
            top: 10,
            k: None,
            mode,
            ..SearchOptions::default()
        };
        let mut times = Vec::new();
        for query in &phase0 {
            let started = Instant::now();
            searcher.search_tokens(query, &options)?;
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        p50.push(times[times.len() / 2]);
    }
    println!(
        "{{\"ours_ms_per_query_p50\": {:.3}, \"ours_infix_ms_per_query_p50\": {:.3}, \"queries\": {}}}",
        p50[0],
        p50[1],
        phase0.len()
    );
    Ok(())
}
