//! End-to-end latency of query by example on an indexed archive: a 3 s excerpt of an indexed
//! file, modified by a view, is tokenized and searched in-process (`ArchiveReader::search_audio`,
//! the clip options the CLI uses); we record tokenize, search and total milliseconds, whether the
//! source file is the first hit and whether its start is within 300 ms (issue 6's target: p50
//! under 50 ms and p99 under 200 ms on a 100-hour archive on 2 cores).
//!
//! Data: the archive in `PAIRALIGN_LATENCY_DB` (built with `pairalign index`, searched with the
//! shipped tokenizer it records; the excerpts are cut from the files its catalog names), or, when
//! unset, the bundled samples indexed into a temporary database with the default tokenizer.
//! `PAIRALIGN_LATENCY_QUERIES` (default 200) queries, files drawn with seed
//! `PAIRALIGN_LATENCY_SEED` (default 1) among those of at least 3.5 s; view
//! `PAIRALIGN_LATENCY_VIEW` (default `noise=20,speed=1.05,gain=-6:-6`, issue 6's view;
//! `speed=1.05,gain=3:3` is the one vq-v1 survives; see docs/RESULTS.md); `PAIRALIGN_LATENCY_FILTER`, when set, is a metadata filter
//! applied to every search (its time is part of `search`); `PAIRALIGN_LATENCY_TOKENIZER`, when
//! set, is the tokenizer queries are cut with (a shipped name or a weights folder with the
//! recorded id and weights, e.g. a copy with another `grid_phases`). No peer: nothing else answers query by example on our archive.
//!
//! Side by side, on the same clips and the same snapshot: the engine part alone, the clip's grid
//! phases searched in one candidate pass (`Searcher::search_many`, what `search_audio` does)
//! against one `search_tokens` per phase (before issue 24), alternating which runs first; their
//! hits are checked equal.
//!
//! Run: `PAIRALIGN_LATENCY_DB=/data/idx100 cargo bench -p pairalign-benches --bench query_latency`
//! (scripts/latency-100h.sh builds the 100-hour archive first). Prints a table and one JSON line.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use pairalign_archive::{
    clip_search_options, database_tokenizer, Archive, ArchiveReader, AssetMetadata,
};
use pairalign_benches::{env_or, percentile};
use pairalign_datasets::decode::{decode_file, DecodeOptions};
use pairalign_datasets::views::{apply, ViewSpace};
use pairalign_datasets::{Audio, SAMPLE_RATE};
use pairalign_models::{tokenize_query, WINDOWS_PER_CALL, WINDOW_SAMPLES};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let queries: usize = env_or("PAIRALIGN_LATENCY_QUERIES", 200);
    let seed: u64 = env_or("PAIRALIGN_LATENCY_SEED", 1);
    let view_spec: String = env_or(
        "PAIRALIGN_LATENCY_VIEW",
        "noise=20,speed=1.05,gain=-6:-6".to_string(),
    );
    let filter = std::env::var("PAIRALIGN_LATENCY_FILTER").ok();
    let device = pairalign_models::Device::Cpu;
    let _temp;
    let reader = match std::env::var("PAIRALIGN_LATENCY_DB") {
        Ok(dir) => {
            let tokenizer = Arc::new(match std::env::var("PAIRALIGN_LATENCY_TOKENIZER") {
                Ok(name) => pairalign_models::AnyTokenizer::open(&name, &device)?,
                Err(_) => database_tokenizer(Path::new(&dir), &device)?,
            });
            ArchiveReader::open_with(&dir, tokenizer)?
        }
        Err(_) => {
            _temp = tempfile::tempdir()?;
            let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples");
            let mut archive = Archive::open(_temp.path().join("db"))?; // the default tokenizer
            archive.add_file(&samples, &AssetMetadata::default())?;
            archive.reader()
        }
    };
    let stats = reader.stats()?;
    let all = reader.assets(Some("duration:>3.5"), 0, usize::MAX)?.assets;
    if all.is_empty() {
        return Err("the archive has no file of 3.5 s or more with a catalog entry".into());
    }
    let mut space = ViewSpace::parse(&view_spec)?;
    space.p_each = 1.0;
    let options = clip_search_options();
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut tokenize, mut search, mut total) = (Vec::new(), Vec::new(), Vec::new());
    let (mut many_ms, mut each_ms, mut phase_counts) = (Vec::new(), Vec::new(), Vec::new());
    let (mut first, mut within) = (0usize, 0usize);
    // One unmeasured query first: page in the segments and warm the allocator.
    let mut warm = true;
    let mut done = 0;
    while done < queries {
        let asset = &all[rng.gen_range(0..all.len())];
        let Some(path) = &asset.path else { continue };
        let audio = decode_file(Path::new(path), &DecodeOptions::default())?;
        let window = 3 * SAMPLE_RATE as usize;
        if audio.samples.len() < window + SAMPLE_RATE as usize / 2 {
            continue;
        }
        let from = rng.gen_range(0..=audio.samples.len() - window);
        let excerpt = Audio::new(audio.samples[from..from + window].to_vec(), SAMPLE_RATE);
        let view = space.draw(&mut rng);
        let clip = apply(&excerpt, &view, seed + done as u64, &[])?;
        let t = Instant::now();
        let outcome =
            reader.search_audio(&clip.samples, SAMPLE_RATE, &options, filter.as_deref())?;
        let wall_ms = t.elapsed().as_secs_f64() * 1e3;
        if warm {
            warm = false;
            continue;
        }
        done += 1;
        // The engine part alone: the phases in one pass, and one search per phase.
        let phases = tokenize_query(
            reader.tokenizer().as_ref(),
            &clip.samples,
            WINDOW_SAMPLES,
            WINDOWS_PER_CALL,
        )?;
        let strings: Vec<&[u16]> = phases.iter().map(|p| p.tokens.as_slice()).collect();
        let db = reader.database();
        let timed_many = || -> Result<_, pairalign_engine::Error> {
            let t = Instant::now();
            let outcomes = db.search_many(&strings, &options)?;
            Ok((t.elapsed().as_secs_f64() * 1e3, outcomes))
        };
        let timed_each = || -> Result<_, pairalign_engine::Error> {
            let t = Instant::now();
            let outcomes = strings
                .iter()
                .map(|s| db.search_tokens(s, &options))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((t.elapsed().as_secs_f64() * 1e3, outcomes))
        };
        let ((m_ms, many), (e_ms, each)) = if done % 2 == 0 {
            let many = timed_many()?;
            (many, timed_each()?)
        } else {
            let each = timed_each()?;
            (timed_many()?, each)
        };
        for (a, b) in many.iter().zip(&each) {
            if a.hits != b.hits {
                return Err("search_many and search_tokens disagree".into());
            }
        }
        many_ms.push(m_ms);
        each_ms.push(e_ms);
        phase_counts.push(strings.len() as f64);
        tokenize.push(outcome.tokenize_ms);
        // Everything that is not tokenizing: the filter's resolution and the engine's search.
        search.push(wall_ms - outcome.tokenize_ms);
        total.push(wall_ms);
        if let Some(hit) = outcome.hits.first().filter(|h| h.id == asset.id) {
            first += 1;
            let true_ms = from as f64 * 1e3 / f64::from(SAMPLE_RATE);
            if (f64::from(hit.start_ms) - true_ms).abs() <= 300.0 {
                within += 1;
            }
        }
    }
    let ratio = each_ms.iter().sum::<f64>() / many_ms.iter().sum::<f64>().max(1e-9);
    for v in [
        &mut tokenize,
        &mut search,
        &mut total,
        &mut many_ms,
        &mut each_ms,
    ] {
        v.sort_by(f64::total_cmp);
    }
    println!(
        "archive: {} documents, {:.1} h, {} tokens, {} segment(s); {} queries of 3 s, view {view_spec}, \
         filter {filter:?}",
        stats.docs,
        stats.hours,
        stats.tokens,
        reader.database().segment_count(),
        queries
    );
    println!(
        "{:<10} {:>8} {:>8} {:>8} {:>8}",
        "ms", "p50", "p90", "p99", "max"
    );
    for (name, v) in [
        ("tokenize", &tokenize),
        ("search", &search),
        ("total", &total),
    ] {
        println!(
            "{name:<10} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            percentile(v, 50.0),
            percentile(v, 90.0),
            percentile(v, 99.0),
            percentile(v, 100.0)
        );
    }
    println!("source first: {first}/{queries}; start within 300 ms: {within}/{queries}");
    let phases_mean = phase_counts.iter().sum::<f64>() / phase_counts.len().max(1) as f64;
    println!(
        "engine, {phases_mean:.1} phases a clip: search_many p50 {:.2} p99 {:.2} ms; one search per \
         phase p50 {:.2} p99 {:.2} ms; total time ratio {ratio:.2}x",
        percentile(&many_ms, 50.0),
        percentile(&many_ms, 99.0),
        percentile(&each_ms, 50.0),
        percentile(&each_ms, 99.0)
    );
    let json = serde_json::json!({
        "docs": stats.docs,
        "hours": stats.hours,
        "tokens": stats.tokens,
        "segments": reader.database().segment_count(),
        "queries": queries,
        "view": view_spec,
        "filter": filter,
        "tokenize_ms": {"p50": percentile(&tokenize, 50.0), "p99": percentile(&tokenize, 99.0)},
        "search_ms": {"p50": percentile(&search, 50.0), "p99": percentile(&search, 99.0)},
        "total_ms": {"p50": percentile(&total, 50.0), "p90": percentile(&total, 90.0),
                     "p99": percentile(&total, 99.0), "max": percentile(&total, 100.0)},
        "engine_ms": {"phases": phases_mean,
                      "search_many": {"p50": percentile(&many_ms, 50.0), "p99": percentile(&many_ms, 99.0)},
                      "per_phase": {"p50": percentile(&each_ms, 50.0), "p99": percentile(&each_ms, 99.0)},
                      "ratio": ratio},
        "source_first": first,
        "start_within_300ms": within,
    });
    println!("{json}");
    Ok(())
}
