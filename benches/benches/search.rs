//! Search over synthetic archives shaped like real tokens.
//!
//! Data model: Zipf-distributed symbols (exponent 1) over a vocabulary of 512 with no immediate
//! repeats (what a collapsed tokenizer emits); queries are noisy copies of a random 38-token stretch
//! (3 s at 12.7 tokens/s) with 10-40% substitutions, insertions and deletions. Archives:
//! - `1e5x38`, `1e6x38`: 10^5 / 10^6 documents of 38 tokens (3 s clips);
//! - `1000h`: 1,000 hours at 12.7 tokens/s in 1-hour documents (45.7 M tokens).
//!
//! For each archive it reports build time, bytes on disk and resident memory per hour of tokens,
//! exhaustive throughput (DP cells per second), filtered p50/p99 latency and recall@10 against
//! exhaustive search at each noise level, and for `1e6x38` the rapidfuzz Python package's
//! `process.cdist` (C++, all cores) on the same data in the same run, as a ratio.
//!
//! Run: `cargo bench -p pairalign-benches --bench search` (all archives; about 15 minutes on 2 cores)
//! or with `PA_BENCH_ARCHIVES=1e5x38` for a quick run, `PA_BENCH_Q=2,3,4` to compare q.
//! The peer needs `scripts/setup-bench.sh` (pip install rapidfuzz numpy); without it the peer row
//! is skipped with a note.

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use criterion::black_box;
use pairalign_benches::recall_at_10;
use pairalign_engine::synthetic::{rng, ZipfTokens};
use pairalign_engine::{
    DatabaseConfig, DatabaseWriter, EditBudget, Mode, NewDoc, SearchOptions, Searcher, Symbol,
};
use rand::Rng;

const VOCAB: u32 = 512;
const QUERY_LEN: usize = 38;
const TOKENS_PER_HOUR: f64 = 12.7 * 3600.0;

struct Archive {
    name: &'static str,
    docs: usize,
    doc_len: usize,
    queries_per_level: usize,
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    if let Ok(db) = std::env::var("PA_BENCH_RSS_DB") {
        return measure_rss_child(&db);
    }
    let wanted =
        std::env::var("PA_BENCH_ARCHIVES").unwrap_or_else(|_| "1e5x38,1e6x38,1000h".into());
    let qs: Vec<u32> = std::env::var("PA_BENCH_Q")
        .unwrap_or_else(|_| "3".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let archives = [
        Archive {
            name: "1e5x38",
            docs: 100_000,
            doc_len: 38,
            queries_per_level: 200,
        },
        Archive {
            name: "1e6x38",
            docs: 1_000_000,
            doc_len: 38,
            queries_per_level: 50,
        },
        Archive {
            name: "1000h",
            docs: 1000,
            doc_len: TOKENS_PER_HOUR as usize,
            queries_per_level: 30,
        },
    ];
    println!("threads: {}", rayon::current_num_threads());
    for archive in archives
        .iter()
        .filter(|a| wanted.split(',').any(|w| w == a.name))
    {
        for &q in &qs {
            run_archive(archive, q);
        }
    }
}

fn run_archive(archive: &Archive, q: u32) {
    let zipf = ZipfTokens::new(VOCAB, 1.0, 42);
    let mut r = rng(42);
    let docs: Vec<NewDoc> = (0..archive.docs)
        .map(|d| NewDoc {
            id: format!("doc-{d:07}"),
            tokens: zipf.string(&mut r, archive.doc_len),
            ..NewDoc::default()
        })
        .collect();
    let tokens: u64 = docs.iter().map(|d| d.tokens.len() as u64).sum();
    let hours = tokens as f64 / TOKENS_PER_HOUR;
    let dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(VOCAB, q)).expect("create");
    db.add_tokens(&docs).expect("add");
    let build_s = started.elapsed().as_secs_f64();
    drop(db);
    // Opening reads the MANIFEST and the segment headers; the full check of the sections runs
    // in the background and before first use (`Searcher::verify`): both timed, warm cache.
    let mut opens = Vec::new();
    let mut verifies = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let db = Searcher::open(dir.path()).expect("open");
        opens.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        db.verify().expect("verify");
        verifies.push(t.elapsed().as_secs_f64() * 1e3);
    }
    opens.sort_by(f64::total_cmp);
    verifies.sort_by(f64::total_cmp);
    let db = Searcher::open(dir.path()).expect("open");
    let info = db.info().expect("info");
    println!(
        "\n## {} (q={q}): {} docs, {} tokens, {:.1} hours\nbuild {:.1} s; on disk {:.2} MB = {:.0} bytes/hour ({:.2} bytes/token)",
        archive.name,
        archive.docs,
        tokens,
        hours,
        build_s,
        info.bytes as f64 / 1e6,
        info.bytes as f64 / hours,
        info.bytes as f64 / tokens as f64
    );

    println!(
        "open (warm): median {:.2} ms; the full check after it (verify, waits for the background \
         check): median {:.1} ms",
        percentile(&opens, 0.5),
        percentile(&verifies, 0.5)
    );

    let levels = [0.1, 0.2, 0.3, 0.4];
    let queries: Vec<Vec<Vec<Symbol>>> = levels
        .iter()
        .map(|&rate| {
            (0..archive.queries_per_level)
                .map(|_| {
                    let doc = &docs[r.gen_range(0..docs.len())].tokens;
                    let start = r.gen_range(0..=doc.len() - QUERY_LEN);
                    zipf.noisy_copy(&mut r, &doc[start..start + QUERY_LEN], rate)
                })
                .collect()
        })
        .collect();

    // Exhaustive throughput, both modes.
    // Global mode only makes sense where documents are as long as the query.
    let modes: &[Mode] = if archive.doc_len == QUERY_LEN {
        &[Mode::Global, Mode::Infix]
    } else {
        &[Mode::Infix]
    };
    for &mode in modes {
        let options = SearchOptions {
            exhaustive: true,
            mode,
            k: Some(EditBudget::Fraction(0.4)),
            ..SearchOptions::default()
        };
        let sample = &queries[1][..queries[1].len().min(10)];
        let _ = db.search_tokens(&sample[0], &options);
        let mut times = Vec::new();
        let mut cells = 0.0;
        for query in sample {
            let t = Instant::now();
            black_box(db.search_tokens(query, &options).expect("search"));
            times.push(t.elapsed().as_secs_f64() * 1e3);
            cells += query.len() as f64 * tokens as f64;
        }
        let total: f64 = times.iter().sum();
        times.sort_by(f64::total_cmp);
        println!(
            "exhaustive {mode:?} k=0.4: median {:.1} ms/query, {:.2} G cells/s",
            percentile(&times, 0.5),
            cells / (total / 1e3) / 1e9
        );
        if archive.doc_len == QUERY_LEN && mode == Mode::Global {
            // The N nearest without a budget (exact, `k: None`), as rapidfuzz's cdist answers.
            let nearest = SearchOptions {
                k: None,
                mode,
                top: 10,
                ..SearchOptions::default()
            };
            let mut nearest_times = Vec::new();
            for query in sample {
                let t = Instant::now();
                black_box(db.search_tokens(query, &nearest).expect("search"));
                nearest_times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            nearest_times.sort_by(f64::total_cmp);
            let nearest_ms = percentile(&nearest_times, 0.5);
            println!("unbounded top 10 (k: None, exact) {mode:?}: median {nearest_ms:.1} ms/query");
            peer_cdist(
                &docs,
                archive.doc_len,
                sample,
                percentile(&times, 0.5),
                nearest_ms,
            );
        }
    }

    println!("| noise | k | lossless | filtered p50 ms | p99 ms | recall@10 | exhaustive p50 ms | source found |");
    println!("|---|---|---|---|---|---|---|---|");
    for (level, level_queries) in levels.iter().zip(&queries) {
        for k in [0.25, 0.4] {
            let filtered_options = SearchOptions {
                k: Some(EditBudget::Fraction(k)),
                ..SearchOptions::default()
            };
            let exhaustive_options = SearchOptions {
                exhaustive: true,
                ..filtered_options.clone()
            };
            let mut latencies = Vec::new();
            let mut exhaustive_latencies = Vec::new();
            let mut recalls = Vec::new();
            let mut lossless = true;
            let mut found = 0;
            for query in level_queries {
                let t = Instant::now();
                let filtered = db.search_tokens(query, &filtered_options).expect("search");
                latencies.push(t.elapsed().as_secs_f64() * 1e3);
                lossless &= filtered.lossless;
                let t = Instant::now();
                let exhaustive = db
                    .search_tokens(query, &exhaustive_options)
                    .expect("search");
                exhaustive_latencies.push(t.elapsed().as_secs_f64() * 1e3);
                if let Some(recall) = recall_at_10(&filtered.hits, &exhaustive.hits) {
                    recalls.push(recall);
                }
                found += usize::from(!filtered.hits.is_empty());
            }
            latencies.sort_by(f64::total_cmp);
            exhaustive_latencies.sort_by(f64::total_cmp);
            let recall = if recalls.is_empty() {
                f64::NAN
            } else {
                recalls.iter().sum::<f64>() / recalls.len() as f64
            };
            println!(
                "| {:.0}% | {k} | {} | {:.2} | {:.2} | {:.3} | {:.1} | {}/{} |",
                level * 100.0,
                if lossless { "yes" } else { "no (ranked)" },
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99),
                recall,
                percentile(&exhaustive_latencies, 0.5),
                found,
                level_queries.len()
            );
        }
    }
    phases_in_one_pass(&db, &docs, &zipf, &mut r, archive.queries_per_level);
    measure_rss(dir.path(), &queries[1], hours);
    let _ = std::io::stdout().flush();
}

/// A clip's grid phases, as `search_audio` searches them: four strings of one passage (each a
/// 10% noisy copy, as phases of one clip differ in a few tokens), searched in one candidate pass
/// (`search_many`) and one `search_tokens` per string, alternating which goes first, at the
/// clip budget (0.9, ranked) and at 0.25 (lossless). Hits are checked equal.
fn phases_in_one_pass(
    db: &Searcher,
    docs: &[NewDoc],
    zipf: &ZipfTokens,
    r: &mut impl Rng,
    clips: usize,
) {
    println!("| grid phases (4 strings) | k | search_many p50 ms | p99 ms | one per phase p50 ms | p99 ms | ratio of totals |");
    println!("|---|---|---|---|---|---|---|");
    let clips: Vec<Vec<Vec<Symbol>>> = (0..clips)
        .map(|_| {
            let doc = &docs[r.gen_range(0..docs.len())].tokens;
            let start = r.gen_range(0..=doc.len() - QUERY_LEN);
            (0..4)
                .map(|_| zipf.noisy_copy(r, &doc[start..start + QUERY_LEN], 0.1))
                .collect()
        })
        .collect();
    for k in [0.25, 0.9] {
        let options = SearchOptions {
            k: Some(EditBudget::Fraction(k)),
            ..SearchOptions::default()
        };
        let (mut many, mut each) = (Vec::new(), Vec::new());
        for (i, strings) in clips.iter().enumerate() {
            let refs: Vec<&[Symbol]> = strings.iter().map(Vec::as_slice).collect();
            let run_many = || {
                let t = Instant::now();
                let out = db.search_many(&refs, &options).expect("search_many");
                (t.elapsed().as_secs_f64() * 1e3, out)
            };
            let run_each = || {
                let t = Instant::now();
                let out: Vec<_> = refs
                    .iter()
                    .map(|s| db.search_tokens(s, &options).expect("search"))
                    .collect();
                (t.elapsed().as_secs_f64() * 1e3, out)
            };
            let ((m_ms, m), (e_ms, e)) = if i % 2 == 0 {
                let m = run_many();
                (m, run_each())
            } else {
                let e = run_each();
                (run_many(), e)
            };
            assert!(
                m.iter().zip(&e).all(|(a, b)| a.hits == b.hits),
                "search_many and search_tokens disagree"
            );
            many.push(m_ms);
            each.push(e_ms);
        }
        let ratio = each.iter().sum::<f64>() / many.iter().sum::<f64>().max(1e-12);
        many.sort_by(f64::total_cmp);
        each.sort_by(f64::total_cmp);
        println!(
            "| {} clips | {k} | {:.2} | {:.2} | {:.2} | {:.2} | {ratio:.2}x |",
            clips.len(),
            percentile(&many, 0.5),
            percentile(&many, 0.99),
            percentile(&each, 0.5),
            percentile(&each, 0.99)
        );
    }
}

/// Resident memory of a fresh process that opens the database and searches it: what a server
/// holding this archive needs. Runs this benchmark binary again in child mode.
fn measure_rss(db: &std::path::Path, queries: &[Vec<Symbol>], hours: f64) {
    let queries_path = db.join("rss-queries.json");
    std::fs::write(&queries_path, serde_json::to_vec(queries).expect("json"))
        .expect("write queries");
    let output = std::env::current_exe()
        .and_then(|exe| Command::new(exe).env("PA_BENCH_RSS_DB", db).output());
    match output {
        Ok(out) if out.status.success() => {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let mb = |key: &str| v[key].as_f64().unwrap_or(f64::NAN) / 1024.0;
            println!(
                "resident memory of a searching process (anonymous + file-backed pages of the mapped segments): \
                 after open {:.1} + {:.1} MB; after {} filtered queries {:.1} + {:.1} MB ({:.0} KB/hour anonymous); \
                 after an exhaustive scan {:.1} + {:.1} MB",
                mb("open_anon_kib"),
                mb("open_file_kib"),
                queries.len(),
                mb("filtered_anon_kib"),
                mb("filtered_file_kib"),
                v["filtered_anon_kib"].as_f64().unwrap_or(f64::NAN) / hours,
                mb("exhaustive_anon_kib"),
                mb("exhaustive_file_kib"),
            );
        }
        Ok(out) => println!("rss child failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => println!("rss child failed: {e}"),
    }
}

fn measure_rss_child(db: &str) {
    let dir = std::path::Path::new(db);
    let queries: Vec<Vec<Symbol>> =
        serde_json::from_slice(&std::fs::read(dir.join("rss-queries.json")).expect("queries"))
            .expect("queries json");
    let db = Searcher::open(dir).expect("open");
    let open = (rss_kib("RssAnon:"), rss_kib("RssFile:"));
    for query in &queries {
        black_box(
            db.search_tokens(query, &SearchOptions::default())
                .expect("search"),
        );
    }
    let filtered = (rss_kib("RssAnon:"), rss_kib("RssFile:"));
    let exhaustive = SearchOptions {
        exhaustive: true,
        ..SearchOptions::default()
    };
    black_box(db.search_tokens(&queries[0], &exhaustive).expect("search"));
    let scanned = (rss_kib("RssAnon:"), rss_kib("RssFile:"));
    println!(
        "{}",
        serde_json::json!({
            "open_anon_kib": open.0, "open_file_kib": open.1,
            "filtered_anon_kib": filtered.0, "filtered_file_kib": filtered.1,
            "exhaustive_anon_kib": scanned.0, "exhaustive_file_kib": scanned.1,
        })
    );
}

/// Runs the rapidfuzz cdist peer on the same documents and queries, and prints the ratio.
fn peer_cdist(
    docs: &[NewDoc],
    doc_len: usize,
    queries: &[Vec<Symbol>],
    ours_ms: f64,
    ours_nearest_ms: f64,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let docs_path = dir.path().join("docs.u16");
    let queries_path = dir.path().join("queries.json");
    let mut bytes = Vec::with_capacity(docs.len() * doc_len * 2);
    for doc in docs {
        for &t in &doc.tokens {
            bytes.extend_from_slice(&t.to_le_bytes());
        }
    }
    std::fs::write(&docs_path, bytes).expect("write docs");
    std::fs::write(&queries_path, serde_json::to_vec(queries).expect("json"))
        .expect("write queries");
    let k = (0.4 * QUERY_LEN as f64) as u32;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/peer_rapidfuzz_cdist.py"
    );
    let output = Command::new("python3")
        .arg(script)
        .arg(&docs_path)
        .arg(doc_len.to_string())
        .arg(&queries_path)
        .arg(k.to_string())
        .arg("5")
        .output();
    match output {
        Ok(out) if out.status.success() => {
            let line = String::from_utf8_lossy(&out.stdout);
            let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap_or_default();
            let peer = v["ms_per_query_unbounded"].as_f64().unwrap_or(f64::NAN);
            let peer_bounded = v["ms_per_query_bounded"].as_f64().unwrap_or(f64::NAN);
            println!(
                "peer rapidfuzz process.cdist (all cores): {peer:.1} ms/query unbounded, {peer_bounded:.1} ms/query with score_cutoff={k}; ours {ours_ms:.1} ms at k={k}: peer/ours = {:.2}x (unbounded), {:.2}x (bounded)",
                peer / ours_ms,
                peer_bounded / ours_ms
            );
            println!(
                "unbounded top 10: peer {peer:.1} ms/query (every distance), ours {ours_nearest_ms:.1} ms (exact top 10): peer/ours = {:.2}x",
                peer / ours_nearest_ms
            );
        }
        Ok(out) => println!(
            "peer rapidfuzz skipped (run scripts/setup-bench.sh): {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(e) => println!("peer rapidfuzz skipped: {e}"),
    }
}
