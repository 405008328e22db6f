//! Search at scale on real tokens (issue 23): archives of 50 to 10,000 hours made from real
//! tokenizer output, searched with real noisy queries; latency, recall of the exact top 10, open
//! time, resident memory and bytes per hour.
//!
//! Data model:
//! - Source: a database built by `pairalign index` (the default tokenizer, pairalign-v3) over
//!   real and synthetic recordings, in `PA_SCALE_SOURCE` (default `PA_SCALE_DIR/source`). Its
//!   documents' tokens and times are the source strings, its catalog names the audio files.
//! - Archives (`PA_SCALE_HOURS`, default `50,500,2000`, hours of tokens at 12.7 tokens/s): the
//!   source documents themselves (every query's true source is there) plus documents of 30-60 s
//!   made by concatenating random 6-18-token pieces of the source strings (pieces drawn by token
//!   position, seed `PA_SCALE_SEED`, default 1), times carried over from the pieces. Written with
//!   `DatabaseWriter::add_tokens` in batches of about equal size, of at most about
//!   `PA_SCALE_BATCH_DOCS` (default 200,000) documents, one segment per batch, left unmerged.
//!   Each archive is kept in `PA_SCALE_DIR/<hours>h` and reused on a rerun when its MANIFEST and
//!   `scale-build.json` (written last) exist and match the source, seed and batch size; a partial
//!   or stale one is built again. A build that would leave less than `PA_SCALE_MIN_FREE_GB`
//!   (default 8) free on the disk is refused.
//! - Queries (`PA_SCALE_QUERIES`, default 100): 3 s excerpts of the source's audio files of at
//!   least 3.5 s, modified by the view `PA_SCALE_VIEW` (default `noise=20,speed=1.05,gain=-6:-6`)
//!   and tokenized with the tokenizer the source records into its grid phases (what query by
//!   example searches); cached in `PA_SCALE_DIR/queries.json`.
//!
//! For each archive and each budget in `PA_SCALE_KS` (default `0.25,0.4,0.9`: lossless for a
//! 36-token query, the CLI's token default, the clip default), infix mode, top `PA_SCALE_TOP`
//! (default 10): phase 0 alone (`search_tokens`) and all phases in one pass (`search_many`, as
//! query by example does), p50 and p99 ms, recall of the exact top 10 (against `exhaustive:
//! true` with the same budget; tie-aware: a returned hit counts when its distance is no worse
//! than the exhaustive 10th), whether the filter was lossless, the exhaustive p50, and how often
//! the true source is in the top 10. Also the open time warm (after a first open) and cold (the
//! archive's files dropped from the page cache with `posix_fadvise(POSIX_FADV_DONTNEED)` first),
//! resident memory of a fresh process after open and after the queries (anonymous and
//! file-backed), bytes per hour by section, build time, the token statistics of issue 23 (most
//! common symbol, repeats, most common q-gram), and a least-squares fit of latency against hours
//! with its value at 100,000 h.
//!
//! Run: `scripts/scale-bench.sh [WORK]` (builds the source database first), or, with a source
//! database at hand, `PA_SCALE_DIR=WORK cargo bench -p pairalign-benches --bench scale`. Prints
//! markdown tables and one JSON line per archive. The default takes about 20 minutes on 2 cores,
//! most of it the exhaustive searches that recall is measured against.

use std::collections::HashMap;
use std::error::Error;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use pairalign_benches::{env_or, percentile, recall_at_10};
use pairalign_datasets::decode::{decode_file, DecodeOptions};
use pairalign_datasets::views::{apply, ViewSpace};
use pairalign_datasets::{Audio, SAMPLE_RATE};
use pairalign_engine::segment::qgram_key;
use pairalign_engine::{
    DatabaseConfig, DatabaseWriter, EditBudget, NewDoc, SearchOptions, Searcher, Symbol,
    TokenizerRecord,
};
use pairalign_models::{tokenize_query, WINDOWS_PER_CALL, WINDOW_SAMPLES};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Issue 23's nominal token rate: hours of an archive are its tokens / (12.7 x 3600).
const TOKENS_PER_SECOND: f64 = 12.7;
const TOKENS_PER_HOUR: f64 = TOKENS_PER_SECOND * 3600.0;
/// Length of a generated document, seconds (at the nominal rate).
const GENERATED_SECONDS: (f64, f64) = (30.0, 60.0);
/// Length of a piece of a source string, tokens.
const PIECE_TOKENS: (usize, usize) = (6, 18);
/// Length of a query excerpt, seconds, and the shortest file it is cut from.
const QUERY_SECONDS: f64 = 3.0;
const MIN_FILE_SECONDS: f64 = 3.5;
/// The extrapolation target of the fit.
const EXTRAPOLATE_HOURS: f64 = 100_000.0;
/// Written last into an archive's folder: the archive is complete and what it was built from.
const BUILD_MARKER: &str = "scale-build.json";

fn main() -> ExitCode {
    let result = match std::env::var("PA_SCALE_RSS_CHILD") {
        Ok(dir) => rss_child(Path::new(&dir)),
        Err(_) => run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scale bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the environment asks for.
#[derive(Debug)]
struct Settings {
    dir: PathBuf,
    source: PathBuf,
    hours: Vec<u32>,
    queries: usize,
    seed: u64,
    view: String,
    ks: Vec<f64>,
    batch_docs: usize,
    min_free_gb: f64,
    top: usize,
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let dir = std::env::var("PA_SCALE_DIR").map_or_else(
            |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scale-data"),
            PathBuf::from,
        );
        let source =
            std::env::var("PA_SCALE_SOURCE").map_or_else(|_| dir.join("source"), PathBuf::from);
        let list = |name: &str, default: &str| -> Result<Vec<String>> {
            let text = std::env::var(name).unwrap_or_else(|_| default.to_string());
            let items: Vec<String> = text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            if items.is_empty() {
                return Err(format!("{name} is empty").into());
            }
            Ok(items)
        };
        let hours = list("PA_SCALE_HOURS", "50,500,2000")?
            .iter()
            .map(|h| {
                h.parse::<u32>()
                    .ok()
                    .filter(|&h| h > 0)
                    .ok_or_else(|| format!("PA_SCALE_HOURS: `{h}` is not a whole number of hours"))
            })
            .collect::<std::result::Result<Vec<u32>, String>>()?;
        let ks = list("PA_SCALE_KS", "0.25,0.4,0.9")?
            .iter()
            .map(|k| {
                k.parse::<f64>()
                    .ok()
                    .filter(|k| (0.0..=1.0).contains(k))
                    .ok_or_else(|| format!("PA_SCALE_KS: `{k}` is not a fraction in [0, 1]"))
            })
            .collect::<std::result::Result<Vec<f64>, String>>()?;
        Ok(Settings {
            dir,
            source,
            hours,
            queries: env_or("PA_SCALE_QUERIES", 100usize).max(1),
            seed: env_or("PA_SCALE_SEED", 1u64),
            view: env_or(
                "PA_SCALE_VIEW",
                "noise=20,speed=1.05,gain=-6:-6".to_string(),
            ),
            ks,
            batch_docs: env_or("PA_SCALE_BATCH_DOCS", 200_000usize).max(1),
            min_free_gb: env_or("PA_SCALE_MIN_FREE_GB", 8.0f64),
            top: env_or("PA_SCALE_TOP", 10usize).max(1),
        })
    }
}

fn run() -> Result<()> {
    let settings = Settings::from_env()?;
    std::fs::create_dir_all(&settings.dir)
        .map_err(|e| format!("cannot create {}: {e}", settings.dir.display()))?;
    let source = Source::load(&settings.source)?;
    println!(
        "source {}: {} documents, {} tokens, {:.2} h of audio ({:.2} tokens/s), vocab {}, q {}, \
         tokenizer {}",
        settings.source.display(),
        source.docs.len(),
        source.tokens,
        source.audio_hours(),
        source.tokens as f64 / (source.audio_hours() * 3600.0),
        source.config.vocab_size,
        source.config.q,
        source.tokenizer.as_ref().map_or("none", |t| t.id.as_str())
    );
    let source_stats = TokenStats::of(
        source.docs.iter().map(|d| d.tokens.as_slice()),
        &source.config,
    );
    println!("source tokens: {}", source_stats.describe());
    let queries = Queries::load_or_make(&settings, &source)?;
    let phase0_stats = TokenStats::of(
        queries
            .items
            .iter()
            .filter_map(|q| q.phases.first())
            .map(Vec::as_slice),
        &source.config,
    );
    println!(
        "{} queries of {QUERY_SECONDS} s, view {}, {:.1} phases a query, {:.1} tokens (phase 0); \
         phase-0 tokens: {}",
        queries.items.len(),
        settings.view,
        queries.items.iter().map(|q| q.phases.len()).sum::<usize>() as f64
            / queries.items.len() as f64,
        queries
            .items
            .iter()
            .map(|q| q.phases.first().map_or(0, Vec::len))
            .sum::<usize>() as f64
            / queries.items.len() as f64,
        phase0_stats.describe()
    );
    println!("threads: {}", rayon_threads());

    let mut reports = Vec::new();
    for &hours in &settings.hours {
        let report = measure_archive(&settings, &source, &queries, hours)?;
        println!("{}", report.json);
        reports.push(report);
    }
    print_summary(&settings, &reports, &source_stats);
    Ok(())
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

// ---------------------------------------------------------------------------------------------
// Source strings

/// One document of the source database.
#[derive(Debug)]
struct SourceDoc {
    tokens: Vec<Symbol>,
    times_ms: Vec<u32>,
    duration_ms: u32,
    id: String,
}

/// The source database's live documents, configuration and tokenizer.
#[derive(Debug)]
struct Source {
    config: DatabaseConfig,
    tokenizer: Option<TokenizerRecord>,
    generation: u64,
    tokens: u64,
    docs: Vec<SourceDoc>,
    /// Bytes on disk per token (for the disk-space estimate of a build).
    bytes_per_token: f64,
}

impl Source {
    fn load(dir: &Path) -> Result<Source> {
        if !dir.join("MANIFEST").exists() {
            return Err(format!(
                "no source database at {} (no MANIFEST). Build it with `scripts/scale-bench.sh \
                 WORK` (WORK/source), or `target/release/pairalign index AUDIO_DIRS... --db {}` \
                 (the default tokenizer), or point PA_SCALE_SOURCE at one",
                dir.display(),
                dir.display()
            )
            .into());
        }
        let db = Searcher::open(dir)
            .map_err(|e| format!("cannot open the source database {}: {e}", dir.display()))?;
        let info = db.info()?;
        let mut docs = Vec::new();
        for segment in db.segments()? {
            for doc in segment.docs() {
                // A document without a time per token (not one the engine writes) is left out:
                // the generated documents take their times from the pieces.
                if db.is_deleted(doc.doc_id)
                    || doc.tokens.is_empty()
                    || doc.times_ms.len() != doc.tokens.len()
                {
                    continue;
                }
                docs.push(SourceDoc {
                    tokens: doc.tokens.to_vec(),
                    times_ms: doc.times_ms.to_vec(),
                    duration_ms: doc.duration_ms,
                    id: doc.name.to_string(),
                });
            }
        }
        let tokens: u64 = docs.iter().map(|d| d.tokens.len() as u64).sum();
        if tokens == 0 {
            return Err(format!("the source database {} has no tokens", dir.display()).into());
        }
        Ok(Source {
            config: db.config(),
            tokenizer: db.tokenizer().cloned(),
            generation: info.generation,
            tokens,
            docs,
            bytes_per_token: info.bytes as f64 / tokens as f64,
        })
    }

    fn audio_hours(&self) -> f64 {
        self.docs
            .iter()
            .map(|d| f64::from(d.duration_ms))
            .sum::<f64>()
            / 3.6e6
    }
}

/// Draws pieces of the source strings uniformly by token position.
#[derive(Debug)]
struct PieceSampler {
    /// First global token position of each source document (ascending), then the total.
    starts: Vec<u64>,
}

impl PieceSampler {
    fn new(source: &Source) -> PieceSampler {
        let mut starts = Vec::with_capacity(source.docs.len() + 1);
        let mut at = 0u64;
        for doc in &source.docs {
            starts.push(at);
            at += doc.tokens.len() as u64;
        }
        starts.push(at);
        PieceSampler { starts }
    }

    /// (document, first token, length) of a random piece of 6-18 tokens (shorter only in a
    /// shorter document).
    fn draw(&self, source: &Source, rng: &mut StdRng) -> (usize, usize, usize) {
        let total = self.starts.last().copied().unwrap_or(0).max(1);
        let pos = rng.gen_range(0..total);
        let d = self
            .starts
            .partition_point(|&s| s <= pos)
            .saturating_sub(1)
            .min(source.docs.len() - 1);
        let len = source.docs[d].tokens.len();
        let want = rng.gen_range(PIECE_TOKENS.0..=PIECE_TOKENS.1).min(len);
        let start = ((pos - self.starts[d]) as usize).min(len - want);
        (d, start, want)
    }
}

/// A generated document: random pieces of source strings until 30-60 s of tokens, each piece's
/// times carried over (relative to its first token) and the pieces laid end to end.
fn generated_doc(source: &Source, sampler: &PieceSampler, rng: &mut StdRng, id: String) -> NewDoc {
    let seconds = rng.gen_range(GENERATED_SECONDS.0..=GENERATED_SECONDS.1);
    let target = (seconds * TOKENS_PER_SECOND).round() as usize;
    let mut tokens = Vec::with_capacity(target);
    let mut times = Vec::with_capacity(target);
    let mut offset = 0u32;
    while tokens.len() < target {
        let (d, start, len) = sampler.draw(source, rng);
        let len = len.min(target - tokens.len());
        let doc = &source.docs[d];
        let t0 = doc.times_ms[start];
        for i in start..start + len {
            tokens.push(doc.tokens[i]);
            times.push(offset.saturating_add(doc.times_ms[i].saturating_sub(t0)));
        }
        // The piece lasts until the token after it starts (or its recording ends).
        let end = doc
            .times_ms
            .get(start + len)
            .copied()
            .unwrap_or(doc.duration_ms)
            .max(doc.times_ms[start + len - 1]);
        offset = offset.saturating_add(end.saturating_sub(t0));
    }
    let duration = offset.max(times.last().copied().unwrap_or(0));
    NewDoc {
        id,
        tokens,
        times_ms: Some(times),
        duration_ms: Some(duration),
    }
}

// ---------------------------------------------------------------------------------------------
// Archives

/// How an archive was built (its `scale-build.json`).
#[derive(Debug)]
struct Build {
    seconds: f64,
    segments: usize,
    docs: u64,
    tokens: u64,
    /// Built in this run (else reused).
    fresh: bool,
}

fn archive_dir(settings: &Settings, hours: u32) -> PathBuf {
    settings.dir.join(format!("{hours}h"))
}

/// What an archive is built from: a cached archive is reused only when these match.
fn build_key(settings: &Settings, source: &Source, hours: u32) -> Value {
    json!({
        "hours": hours,
        "seed": settings.seed,
        "batch_docs": settings.batch_docs,
        "source": settings.source.display().to_string(),
        "source_generation": source.generation,
        "source_tokens": source.tokens,
    })
}

/// The archive of `hours`, built unless a complete one built from the same source is cached.
fn ensure_archive(settings: &Settings, source: &Source, hours: u32) -> Result<Build> {
    let dir = archive_dir(settings, hours);
    let key = build_key(settings, source, hours);
    let marker = dir.join(BUILD_MARKER);
    if dir.join("MANIFEST").exists() {
        if let Ok(text) = std::fs::read_to_string(&marker) {
            let v: Value = serde_json::from_str(&text).unwrap_or_default();
            if v["key"] == key {
                return Ok(Build {
                    seconds: v["build_s"].as_f64().unwrap_or(f64::NAN),
                    segments: v["segments"].as_u64().unwrap_or(0) as usize,
                    docs: v["docs"].as_u64().unwrap_or(0),
                    tokens: v["tokens"].as_u64().unwrap_or(0),
                    fresh: false,
                });
            }
            println!(
                "{}: built from other settings ({}), building again",
                dir.display(),
                v["key"]
            );
        } else {
            println!(
                "{}: incomplete (no {BUILD_MARKER}), building again",
                dir.display()
            );
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot remove the stale archive {}: {e}", dir.display()))?;
    }
    let target_tokens = (f64::from(hours) * TOKENS_PER_HOUR).round() as u64;
    check_free_space(settings, target_tokens as f64 * source.bytes_per_token)?;
    println!(
        "building {} ({target_tokens} tokens, batches of {} documents)",
        dir.display(),
        settings.batch_docs
    );
    let started = Instant::now();
    let mut db = DatabaseWriter::create(&dir, source.config)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if let Some(record) = &source.tokenizer {
        db.set_tokenizer(record.clone())?;
    }
    let sampler = PieceSampler::new(source);
    let mut rng = StdRng::seed_from_u64(settings.seed ^ u64::from(hours).rotate_left(32));
    let mut batch: Vec<NewDoc> = source
        .docs
        .iter()
        .map(|d| NewDoc {
            id: d.id.clone(),
            tokens: d.tokens.clone(),
            times_ms: Some(d.times_ms.clone()),
            duration_ms: Some(d.duration_ms.max(d.times_ms.last().copied().unwrap_or(0))),
        })
        .collect();
    // Batches of about equal tokens, of at most about `batch_docs` documents each (by the mean
    // generated document), so that the segment count follows the settings and not the draws.
    let mean_doc_tokens = (GENERATED_SECONDS.0 + GENERATED_SECONDS.1) / 2.0 * TOKENS_PER_SECOND;
    let expected_docs = source.docs.len() as f64
        + target_tokens.saturating_sub(source.tokens) as f64 / mean_doc_tokens;
    let batches = (expected_docs / settings.batch_docs as f64).ceil().max(1.0) as u64;
    let batch_tokens = target_tokens.div_ceil(batches);
    let mut in_batch = source.tokens;
    let mut tokens = source.tokens;
    let mut docs = 0u64;
    let mut generated = 0u64;
    while tokens < target_tokens {
        let doc = generated_doc(
            source,
            &sampler,
            &mut rng,
            format!("generated/{generated:09}"),
        );
        generated += 1;
        tokens += doc.tokens.len() as u64;
        in_batch += doc.tokens.len() as u64;
        batch.push(doc);
        if in_batch >= batch_tokens && tokens < target_tokens {
            docs += flush(&mut db, &mut batch)?;
            in_batch = 0;
        }
    }
    docs += flush(&mut db, &mut batch)?;
    let segments = db.segment_count();
    drop(db);
    let seconds = started.elapsed().as_secs_f64();
    let record = json!({
        "key": key,
        "build_s": seconds,
        "segments": segments,
        "docs": docs,
        "tokens": tokens,
    });
    std::fs::write(&marker, record.to_string())
        .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    println!("built in {seconds:.1} s: {segments} segment(s), {docs} documents, {tokens} tokens");
    Ok(Build {
        seconds,
        segments,
        docs,
        tokens,
        fresh: true,
    })
}

/// Adds `batch` as one segment and empties it; returns how many documents it held.
fn flush(db: &mut DatabaseWriter, batch: &mut Vec<NewDoc>) -> Result<u64> {
    if batch.is_empty() {
        return Ok(0);
    }
    db.add_tokens(batch)?;
    let n = batch.len() as u64;
    batch.clear();
    Ok(n)
}

/// Refuses a build of about `bytes` that would leave less than the settings' minimum free.
fn check_free_space(settings: &Settings, bytes: f64) -> Result<()> {
    let free = free_bytes(&settings.dir)? as f64;
    let min = settings.min_free_gb * 1e9;
    if free - bytes < min {
        return Err(format!(
            "building about {:.1} GB in {} would leave {:.1} GB free, below PA_SCALE_MIN_FREE_GB \
             = {} GB: free some space or ask for fewer hours",
            bytes / 1e9,
            settings.dir.display(),
            (free - bytes) / 1e9,
            settings.min_free_gb
        )
        .into());
    }
    Ok(())
}

fn free_bytes(dir: &Path) -> Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| format!("{} holds a NUL byte", dir.display()))?;
    // SAFETY: statvfs is a plain C struct of integers, for which all-zero bytes are valid.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string and `stat` a valid, writable statvfs that
    // outlives the call.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return Err(format!(
            "statvfs {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        )
        .into());
    }
    Ok(stat.f_bavail as u64 * stat.f_frsize as u64)
}

// ---------------------------------------------------------------------------------------------
// Queries

/// One query: where it was cut from and the strings of its grid phases (phase 0 first).
#[derive(Debug)]
struct Query {
    asset: String,
    phases: Vec<Vec<Symbol>>,
}

#[derive(Debug)]
struct Queries {
    path: PathBuf,
    items: Vec<Query>,
}

impl Queries {
    /// The cached queries when they were made with these settings from this source, else new
    /// ones (and the cache rewritten).
    fn load_or_make(settings: &Settings, source: &Source) -> Result<Queries> {
        let path = settings.dir.join("queries.json");
        let key = json!({
            "source": settings.source.display().to_string(),
            "source_generation": source.generation,
            "seed": settings.seed,
            "view": settings.view,
            "count": settings.queries,
            "seconds": QUERY_SECONDS,
            "tokenizer": source.tokenizer.as_ref().map(|t| t.weights_hash.clone()),
        });
        if let Ok(text) = std::fs::read_to_string(&path) {
            let v: Value = serde_json::from_str(&text).unwrap_or_default();
            if v["key"] == key {
                if let Some(items) = parse_queries(&v["queries"]) {
                    println!("queries: {} cached in {}", items.len(), path.display());
                    return Ok(Queries { path, items });
                }
            }
        }
        let started = Instant::now();
        let items = make_queries(settings, source)?;
        let v = json!({
            "key": key,
            "queries": items
                .iter()
                .map(|q| json!({"asset": q.asset, "phases": q.phases}))
                .collect::<Vec<_>>(),
        });
        std::fs::write(&path, v.to_string())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!(
            "queries: {} made in {:.1} s, cached in {}",
            items.len(),
            started.elapsed().as_secs_f64(),
            path.display()
        );
        Ok(Queries { path, items })
    }
}

fn parse_queries(v: &Value) -> Option<Vec<Query>> {
    v.as_array()?
        .iter()
        .map(|q| {
            Some(Query {
                asset: q["asset"].as_str()?.to_string(),
                phases: parse_strings(&q["phases"])?,
            })
        })
        .collect()
}

fn parse_strings(v: &Value) -> Option<Vec<Vec<Symbol>>> {
    let phases: Option<Vec<Vec<Symbol>>> = v
        .as_array()?
        .iter()
        .map(|p| {
            p.as_array()?
                .iter()
                .map(|t| t.as_u64().and_then(|t| Symbol::try_from(t).ok()))
                .collect()
        })
        .collect();
    phases.filter(|p| !p.is_empty() && p.iter().all(|s| !s.is_empty()))
}

/// Cuts, modifies and tokenizes the queries (as `query_latency` does).
fn make_queries(settings: &Settings, source: &Source) -> Result<Vec<Query>> {
    let device = pairalign_models::Device::Cpu;
    let tokenizer = pairalign_query::database_tokenizer(&settings.source, &device)?;
    let db = Searcher::open(&settings.source)?;
    let filter = format!("duration:>{MIN_FILE_SECONDS}");
    let assets = pairalign_query::list_assets(&db, Some(&filter), 0, usize::MAX)?.assets;
    let files: Vec<(String, String)> = assets
        .into_iter()
        .filter_map(|a| a.path.map(|p| (a.id, p)))
        .filter(|(_, p)| Path::new(p).exists())
        .collect();
    if files.is_empty() {
        return Err(format!(
            "the source database {} names no audio file of {MIN_FILE_SECONDS} s or more that \
             exists here: index recordings with `pairalign index DIR --db {}`",
            settings.source.display(),
            settings.source.display()
        )
        .into());
    }
    println!(
        "making {} queries from {} files ({} source documents)",
        settings.queries,
        files.len(),
        source.docs.len()
    );
    let mut space = ViewSpace::parse(&settings.view)?;
    space.p_each = 1.0;
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let window = (QUERY_SECONDS * f64::from(SAMPLE_RATE)) as usize;
    let mut items = Vec::with_capacity(settings.queries);
    let mut tries = 0usize;
    while items.len() < settings.queries {
        tries += 1;
        if tries > settings.queries * 20 {
            return Err(format!(
                "only {} of {} queries after {tries} tries: the files are too short or silent",
                items.len(),
                settings.queries
            )
            .into());
        }
        let (id, path) = &files[rng.gen_range(0..files.len())];
        let audio = decode_file(Path::new(path), &DecodeOptions::default())
            .map_err(|e| format!("cannot decode {path}: {e}"))?;
        if audio.samples.len() < window + SAMPLE_RATE as usize / 2 {
            continue;
        }
        let from = rng.gen_range(0..=audio.samples.len() - window);
        let excerpt = Audio::new(audio.samples[from..from + window].to_vec(), SAMPLE_RATE);
        let view = space.draw(&mut rng);
        let clip = apply(&excerpt, &view, settings.seed + items.len() as u64, &[])?;
        let phases: Vec<Vec<Symbol>> =
            tokenize_query(&tokenizer, &clip.samples, WINDOW_SAMPLES, WINDOWS_PER_CALL)?
                .into_iter()
                .map(|p| p.tokens)
                .filter(|t| !t.is_empty())
                .collect();
        if phases.is_empty() {
            continue;
        }
        items.push(Query {
            asset: id.clone(),
            phases,
        });
    }
    Ok(items)
}

// ---------------------------------------------------------------------------------------------
// Token statistics

/// Issue 23's statistics of token strings: the most common symbol, repeats of the previous
/// token, the most common q-gram.
#[derive(Debug, Default)]
struct TokenStats {
    tokens: u64,
    top_symbol: Symbol,
    top_symbol_share: f64,
    /// Share of tokens (after a document's first) equal to the one before.
    repeat_share: f64,
    top_gram: Vec<Symbol>,
    /// Share of all q-grams (inside documents).
    top_gram_share: f64,
}

impl TokenStats {
    fn of<'a>(strings: impl Iterator<Item = &'a [Symbol]>, config: &DatabaseConfig) -> TokenStats {
        let q = config.q.max(1) as usize;
        let vocab = config.vocab_size.max(1);
        let key_space = u64::from(vocab).checked_pow(config.q);
        // Dense counters when the keys fit in 2^27 (512 MB of u32, touched sparsely).
        let mut dense: Vec<u32> = match key_space {
            Some(n) if n <= 1 << 27 => vec![0; n as usize],
            _ => Vec::new(),
        };
        let mut sparse: HashMap<u64, u64> = HashMap::new();
        let mut symbols = vec![0u64; vocab as usize];
        let (mut tokens, mut pairs, mut repeats, mut grams) = (0u64, 0u64, 0u64, 0u64);
        for s in strings {
            tokens += s.len() as u64;
            for &t in s {
                if let Some(c) = symbols.get_mut(usize::from(t)) {
                    *c += 1;
                }
            }
            pairs += s.len().saturating_sub(1) as u64;
            repeats += s.windows(2).filter(|w| w[0] == w[1]).count() as u64;
            for gram in s.windows(q) {
                let key = qgram_key(gram, vocab);
                grams += 1;
                match dense.get_mut(key as usize) {
                    Some(c) => *c = c.saturating_add(1),
                    None => *sparse.entry(key).or_default() += 1,
                }
            }
        }
        let (top_symbol, top_count) = symbols
            .iter()
            .enumerate()
            .max_by_key(|&(_, &c)| c)
            .map_or((0, 0), |(s, &c)| (s as Symbol, c));
        let (top_key, top_gram_count) = dense
            .iter()
            .enumerate()
            .map(|(k, &c)| (k as u64, u64::from(c)))
            .chain(sparse.iter().map(|(&k, &c)| (k, c)))
            .max_by_key(|&(_, c)| c)
            .unwrap_or((0, 0));
        // The key is the q-gram read as a number in base `vocab`, first symbol most significant.
        let mut top_gram = vec![0; q];
        let mut rest = top_key;
        for slot in top_gram.iter_mut().rev() {
            *slot = (rest % u64::from(vocab)) as Symbol;
            rest /= u64::from(vocab);
        }
        let share = |n: u64, of: u64| {
            if of == 0 {
                f64::NAN
            } else {
                n as f64 / of as f64
            }
        };
        TokenStats {
            tokens,
            top_symbol,
            top_symbol_share: share(top_count, tokens),
            repeat_share: share(repeats, pairs),
            top_gram,
            top_gram_share: share(top_gram_count, grams),
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} tokens; most common symbol {} = {:.1}% of tokens; {:.1}% repeat the token before; \
             most common q-gram {:?} = {:.1}% of q-grams",
            self.tokens,
            self.top_symbol,
            100.0 * self.top_symbol_share,
            100.0 * self.repeat_share,
            self.top_gram,
            100.0 * self.top_gram_share
        )
    }

    fn json(&self) -> Value {
        json!({
            "tokens": self.tokens,
            "top_symbol": self.top_symbol,
            "top_symbol_share": self.top_symbol_share,
            "repeat_share": self.repeat_share,
            "top_gram": self.top_gram,
            "top_gram_share": self.top_gram_share,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Measurement

/// Latency and recall at one budget.
#[derive(Debug, Default)]
struct BudgetRow {
    k: f64,
    /// Phase 0 alone (`search_tokens`): sorted ms, mean recall, lossless count.
    phase0_ms: Vec<f64>,
    phase0_recall: f64,
    phase0_lossless: usize,
    phase0_source: usize,
    /// All phases in one pass (`search_many`).
    many_ms: Vec<f64>,
    many_recall: f64,
    many_lossless: usize,
    many_source: usize,
    /// Exhaustive: phase 0 alone, and all phases (phase 0 plus the others in one call).
    exhaustive0_ms: Vec<f64>,
    exhaustive_all_ms: Vec<f64>,
    /// Queries with at least one exact hit (phase 0).
    with_truth: usize,
    queries: usize,
}

impl BudgetRow {
    fn json(&self) -> Value {
        let ms = |v: &[f64]| json!({"p50": percentile(v, 50.0), "p99": percentile(v, 99.0), "max": percentile(v, 100.0)});
        json!({
            "k": self.k,
            "phase0": {"ms": ms(&self.phase0_ms), "recall_at_10": self.phase0_recall,
                       "lossless": self.phase0_lossless, "source_in_top": self.phase0_source},
            "all_phases": {"ms": ms(&self.many_ms), "recall_at_10": self.many_recall,
                           "lossless": self.many_lossless, "source_in_top": self.many_source},
            "exhaustive_phase0_ms": ms(&self.exhaustive0_ms),
            "exhaustive_all_phases_ms": ms(&self.exhaustive_all_ms),
            "queries_with_exact_hits": self.with_truth,
            "queries": self.queries,
        })
    }
}

/// What one archive measured.
#[derive(Debug)]
struct Report {
    hours: u32,
    audio_hours: f64,
    build: Build,
    bytes: u64,
    sections: Vec<(&'static str, u64)>,
    open_warm_ms: f64,
    open_cold_ms: f64,
    rss: Value,
    rows: Vec<BudgetRow>,
    json: Value,
}

impl Report {
    fn nominal_hours(&self) -> f64 {
        self.build.tokens as f64 / TOKENS_PER_HOUR
    }
}

fn measure_archive(
    settings: &Settings,
    source: &Source,
    queries: &Queries,
    hours: u32,
) -> Result<Report> {
    let load_before = load_average();
    let build = ensure_archive(settings, source, hours)?;
    let dir = archive_dir(settings, hours);
    println!(
        "\n## {hours} h: {} documents, {} tokens, {} segment(s); build {:.1} s{}",
        build.docs,
        build.tokens,
        build.segments,
        build.seconds,
        if build.fresh { "" } else { " (cached)" }
    );

    let (open_cold_ms, open_warm_ms) = open_times(&dir)?;
    let db = Searcher::open(&dir)?;
    let info = db.info()?;
    // Waits for the segments' checks where open leaves them to the background.
    let segments = db.segments()?;
    let mut sections: Vec<(&'static str, u64)> = Vec::new();
    for segment in segments {
        for (name, bytes) in segment.section_bytes() {
            match sections.iter_mut().find(|(n, _)| *n == name) {
                Some((_, b)) => *b += bytes,
                None => sections.push((name, bytes)),
            }
        }
    }
    let audio_hours = segments
        .iter()
        .flat_map(|s| (0..s.doc_count()).map(move |ord| s.doc(ord).duration_ms))
        .map(f64::from)
        .sum::<f64>()
        / 3.6e6;
    let stats = TokenStats::of(
        segments
            .iter()
            .flat_map(|s| (0..s.doc_count()).map(move |ord| s.doc_tokens(ord))),
        &db.config(),
    );
    println!("archive tokens: {}", stats.describe());

    // One unmeasured query first: the allocator and the code paths warm.
    if let Some(first) = queries.items.first() {
        let options = search_options(settings, 0.4, false);
        db.search_tokens(&first.phases[0], &options)?;
    }
    let mut rows = Vec::new();
    for &k in &settings.ks {
        let row = measure_budget(&db, settings, queries, k)?;
        rows.push(row);
    }
    drop(db);
    let rss = measure_rss(&dir, &queries.path);
    let load_after = load_average();

    let hours_nominal = build.tokens as f64 / TOKENS_PER_HOUR;
    print_archive_tables(hours, hours_nominal, &info, &sections, &rows);
    println!(
        "open: warm {open_warm_ms:.1} ms, cold {open_cold_ms:.1} ms (posix_fadvise DONTNEED); \
         resident memory (anonymous + file-backed): after open {:.1} + {:.1} MB, after the checks \
         {:.1} + {:.1} MB, after the queries {:.1} + {:.1} MB; load average {load_before} -> \
         {load_after}",
        rss["open_anon_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0,
        rss["open_file_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0,
        rss["checked_anon_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0,
        rss["checked_file_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0,
        rss["queries_anon_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0,
        rss["queries_file_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0,
    );
    let json = json!({
        "archive_hours": hours,
        "hours": hours_nominal,
        "audio_hours": audio_hours,
        "docs": info.docs,
        "tokens": info.tokens,
        "segments": info.segments,
        "build_s": build.seconds,
        "build_cached": !build.fresh,
        "bytes": info.bytes,
        "bytes_per_hour": info.bytes as f64 / hours_nominal,
        "section_bytes": sections.iter().map(|(n, b)| (n.to_string(), json!(b))).collect::<serde_json::Map<_, _>>(),
        "open_ms": {"warm": open_warm_ms, "cold": open_cold_ms, "cold_method": "posix_fadvise(POSIX_FADV_DONTNEED)"},
        "rss_kib": rss,
        "token_stats": stats.json(),
        "budgets": rows.iter().map(BudgetRow::json).collect::<Vec<_>>(),
        "queries": queries.items.len(),
        "view": settings.view,
        "threads": rayon_threads(),
        "load_average": [load_before, load_after],
    });
    Ok(Report {
        hours,
        audio_hours,
        build,
        bytes: info.bytes,
        sections,
        open_warm_ms,
        open_cold_ms,
        rss,
        rows,
        json,
    })
}

fn search_options(settings: &Settings, k: f64, exhaustive: bool) -> SearchOptions {
    SearchOptions {
        top: settings.top,
        k: Some(EditBudget::Fraction(k)),
        exhaustive,
        ..SearchOptions::default()
    }
}

fn measure_budget(
    db: &Searcher,
    settings: &Settings,
    queries: &Queries,
    k: f64,
) -> Result<BudgetRow> {
    let filtered = search_options(settings, k, false);
    let exhaustive = search_options(settings, k, true);
    let mut row = BudgetRow {
        k,
        queries: queries.items.len(),
        ..BudgetRow::default()
    };
    let (mut phase0_recalls, mut many_recalls) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for (i, query) in queries.items.iter().enumerate() {
        let strings: Vec<&[Symbol]> = query.phases.iter().map(Vec::as_slice).collect();
        let timed_one = || -> Result<_> {
            let t = Instant::now();
            let out = db.search_tokens(strings[0], &filtered)?;
            Ok((ms_since(t), out))
        };
        let timed_many = || -> Result<_> {
            let t = Instant::now();
            let out = db.search_many(&strings, &filtered)?;
            Ok((ms_since(t), out))
        };
        // Alternate which goes first, so neither always finds the caches the other left.
        let ((one_ms, one), (many_ms, many)) = if i % 2 == 0 {
            let one = timed_one()?;
            (one, timed_many()?)
        } else {
            let many = timed_many()?;
            (timed_one()?, many)
        };
        let t = Instant::now();
        let truth0 = db.search_tokens(strings[0], &exhaustive)?;
        let exhaustive0_ms = ms_since(t);
        let t = Instant::now();
        let truth_rest = if strings.len() > 1 {
            db.search_many(&strings[1..], &exhaustive)?
        } else {
            Vec::new()
        };
        let exhaustive_rest_ms = ms_since(t);

        row.phase0_ms.push(one_ms);
        row.many_ms.push(many_ms);
        row.exhaustive0_ms.push(exhaustive0_ms);
        row.exhaustive_all_ms
            .push(exhaustive0_ms + exhaustive_rest_ms);
        row.phase0_lossless += usize::from(one.lossless);
        row.many_lossless += usize::from(many.iter().all(|o| o.lossless));
        row.with_truth += usize::from(!truth0.hits.is_empty());
        row.phase0_source += usize::from(one.hits.iter().any(|h| h.id == query.asset));
        row.many_source += usize::from(
            many.iter()
                .any(|o| o.hits.iter().any(|h| h.id == query.asset)),
        );
        if let Some(r) = recall_at_10(&one.hits, &truth0.hits) {
            phase0_recalls.push(r);
        }
        let truths = std::iter::once(&truth0).chain(&truth_rest);
        for (outcome, truth) in many.iter().zip(truths) {
            if let Some(r) = recall_at_10(&outcome.hits, &truth.hits) {
                many_recalls.push(r);
            }
        }
    }
    row.phase0_recall = mean(&phase0_recalls);
    row.many_recall = mean(&many_recalls);
    for v in [
        &mut row.phase0_ms,
        &mut row.many_ms,
        &mut row.exhaustive0_ms,
        &mut row.exhaustive_all_ms,
    ] {
        v.sort_by(f64::total_cmp);
    }
    eprintln!(
        "  k {k}: {} queries in {:.1} s",
        queries.items.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(row)
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Median open time with the archive's files dropped from the page cache first (cold), and after
/// a first open (warm), in ms.
fn open_times(dir: &Path) -> Result<(f64, f64)> {
    let mut cold = Vec::new();
    for _ in 0..3 {
        drop_from_page_cache(dir)?;
        let t = Instant::now();
        let db = Searcher::open(dir)?;
        cold.push(ms_since(t));
        drop(db);
    }
    drop(Searcher::open(dir)?);
    let mut warm = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let db = Searcher::open(dir)?;
        warm.push(ms_since(t));
        drop(db);
    }
    cold.sort_by(f64::total_cmp);
    warm.sort_by(f64::total_cmp);
    Ok((percentile(&cold, 50.0), percentile(&warm, 50.0)))
}

/// Asks the kernel to drop the cached pages of every file under `dir` (clean pages of files no
/// one maps; the writer synced them).
fn drop_from_page_cache(dir: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            drop_from_page_cache(&path)?;
            continue;
        }
        let file = File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // SAFETY: the descriptor is open for the duration of the call; fadvise only advises the
        // kernel about the file's cached pages.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        if rc != 0 {
            return Err(format!(
                "posix_fadvise {}: {}",
                path.display(),
                std::io::Error::from_raw_os_error(rc)
            )
            .into());
        }
    }
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "?".into())
}

// ---------------------------------------------------------------------------------------------
// Resident memory (a fresh process)

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resident memory of a fresh process that opens the archive, waits for the segments' checks,
/// and runs every query (all phases, each budget, filtered): what a server holding this archive
/// needs. Runs this benchmark binary
/// again as a child.
fn measure_rss(dir: &Path, queries: &Path) -> Value {
    let output = std::env::current_exe().and_then(|exe| {
        Command::new(exe)
            .env("PA_SCALE_RSS_CHILD", dir)
            .env("PA_SCALE_RSS_QUERIES", queries)
            .output()
    });
    match output {
        Ok(out) if out.status.success() => {
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| json!({"error": e.to_string()}))
        }
        Ok(out) => json!({"error": String::from_utf8_lossy(&out.stderr).to_string()}),
        Err(e) => json!({"error": e.to_string()}),
    }
}

fn rss_child(dir: &Path) -> Result<()> {
    let settings = Settings::from_env()?;
    let path = std::env::var("PA_SCALE_RSS_QUERIES").map_err(|_| "PA_SCALE_RSS_QUERIES unset")?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let v: Value = serde_json::from_str(&text)?;
    let queries = parse_queries(&v["queries"]).ok_or_else(|| format!("{path}: no queries"))?;
    let db = Searcher::open(dir)?;
    let open = (rss_kib("RssAnon:"), rss_kib("RssFile:"));
    // Where open leaves the segments' checks to the background, this waits for them.
    db.segments()?;
    let checked = (rss_kib("RssAnon:"), rss_kib("RssFile:"));
    for &k in &settings.ks {
        let options = search_options(&settings, k, false);
        for query in &queries {
            let strings: Vec<&[Symbol]> = query.phases.iter().map(Vec::as_slice).collect();
            std::hint::black_box(db.search_many(&strings, &options)?);
        }
    }
    let after = (rss_kib("RssAnon:"), rss_kib("RssFile:"));
    println!(
        "{}",
        json!({
            "open_anon_kib": open.0, "open_file_kib": open.1,
            "checked_anon_kib": checked.0, "checked_file_kib": checked.1,
            "queries_anon_kib": after.0, "queries_file_kib": after.1,
        })
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Tables

fn print_archive_tables(
    hours: u32,
    hours_nominal: f64,
    info: &pairalign_engine::DatabaseInfo,
    sections: &[(&'static str, u64)],
    rows: &[BudgetRow],
) {
    println!(
        "on disk {:.1} MB = {:.0} KB per hour ({:.2} bytes per token); by section, KB per hour: {}",
        info.bytes as f64 / 1e6,
        info.bytes as f64 / hours_nominal / 1e3,
        info.bytes as f64 / info.tokens.max(1) as f64,
        sections
            .iter()
            .map(|(n, b)| format!("{n} {:.1}", *b as f64 / hours_nominal / 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "| archive | k | phase 0 p50 / p99 ms | recall@10 | lossless | all phases p50 / p99 ms | \
         recall@10 | lossless | exhaustive p50 ms, phase 0 / all | source in top 10, phase 0 / all |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {hours} h | {} | {:.2} / {:.1} | {:.3} | {}/{} | {:.2} / {:.1} | {:.3} | {}/{} | {:.1} / {:.1} | {} / {} |",
            r.k,
            percentile(&r.phase0_ms, 50.0),
            percentile(&r.phase0_ms, 99.0),
            r.phase0_recall,
            r.phase0_lossless,
            r.queries,
            percentile(&r.many_ms, 50.0),
            percentile(&r.many_ms, 99.0),
            r.many_recall,
            r.many_lossless,
            r.queries,
            percentile(&r.exhaustive0_ms, 50.0),
            percentile(&r.exhaustive_all_ms, 50.0),
            r.phase0_source,
            r.many_source,
        );
    }
}

/// Which sorted latencies of a row a fitted series reads.
type Pick = fn(&BudgetRow) -> &[f64];

/// The tables of all archives together, and the fit of latency against hours.
fn print_summary(settings: &Settings, reports: &[Report], source_stats: &TokenStats) {
    let queries = reports
        .first()
        .and_then(|r| r.rows.first())
        .map_or(0, |row| row.queries);
    println!("\n## Summary ({queries} queries, view {})", settings.view);
    println!("source tokens: {}", source_stats.describe());
    println!(
        "| archive | hours (tokens / 12.7 / 3600) | audio hours | segments | on disk | per hour | \
         build s | open warm / cold ms | RSS after open, anon + file MB | after the checks | \
         after the queries |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in reports {
        let mb = |key: &str| r.rss[key].as_f64().unwrap_or(f64::NAN) / 1024.0;
        println!(
            "| {} h | {:.1} | {:.1} | {} | {:.1} MB | {:.0} KB | {:.1}{} | {:.1} / {:.1} | {:.1} + {:.1} | {:.1} + {:.1} | {:.1} + {:.1} |",
            r.hours,
            r.nominal_hours(),
            r.audio_hours,
            r.build.segments,
            r.bytes as f64 / 1e6,
            r.bytes as f64 / r.nominal_hours() / 1e3,
            r.build.seconds,
            if r.build.fresh { "" } else { " (cached)" },
            r.open_warm_ms,
            r.open_cold_ms,
            mb("open_anon_kib"),
            mb("open_file_kib"),
            mb("checked_anon_kib"),
            mb("checked_file_kib"),
            mb("queries_anon_kib"),
            mb("queries_file_kib"),
        );
    }
    if let Some(first) = reports.first() {
        let names: Vec<&str> = first.sections.iter().map(|(n, _)| *n).collect();
        println!(
            "\nKB per hour by section:\n| archive | {} |",
            names.join(" | ")
        );
        println!("|---|{}", "---|".repeat(names.len()));
        for r in reports {
            let cells: Vec<String> = names
                .iter()
                .map(|n| {
                    let b = r
                        .sections
                        .iter()
                        .find(|(s, _)| s == n)
                        .map_or(0, |(_, b)| *b);
                    format!("{:.1}", b as f64 / r.nominal_hours() / 1e3)
                })
                .collect();
            println!("| {} h | {} |", r.hours, cells.join(" | "));
        }
    }
    println!(
        "\n| k | archive | phase 0 p50 / p99 ms | recall@10 | all phases p50 / p99 ms | recall@10 | \
         lossless (phase 0) | exhaustive p50 ms (phase 0) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (i, &k) in settings.ks.iter().enumerate() {
        for r in reports {
            let Some(row) = r.rows.get(i) else { continue };
            println!(
                "| {k} | {} h | {:.2} / {:.1} | {:.3} | {:.2} / {:.1} | {:.3} | {}/{} | {:.1} |",
                r.hours,
                percentile(&row.phase0_ms, 50.0),
                percentile(&row.phase0_ms, 99.0),
                row.phase0_recall,
                percentile(&row.many_ms, 50.0),
                percentile(&row.many_ms, 99.0),
                row.many_recall,
                row.phase0_lossless,
                row.queries,
                percentile(&row.exhaustive0_ms, 50.0),
            );
        }
    }
    if reports.len() < 2 {
        return;
    }
    println!(
        "\nLeast-squares fit ms = a + b x hours over {} archives, and its value at {} h:",
        reports.len(),
        EXTRAPOLATE_HOURS
    );
    println!("| k | series | a ms | b ms per 1,000 h | at 100,000 h |");
    println!("|---|---|---|---|---|");
    let mut fits = Vec::new();
    for (i, &k) in settings.ks.iter().enumerate() {
        let series: [(&str, Pick, f64); 5] = [
            ("phase 0 p50", |r| &r.phase0_ms, 50.0),
            ("phase 0 p99", |r| &r.phase0_ms, 99.0),
            ("all phases p50", |r| &r.many_ms, 50.0),
            ("all phases p99", |r| &r.many_ms, 99.0),
            ("exhaustive p50", |r| &r.exhaustive0_ms, 50.0),
        ];
        for (name, pick, p) in series {
            let points: Vec<(f64, f64)> = reports
                .iter()
                .filter_map(|r| Some((r.nominal_hours(), percentile(pick(r.rows.get(i)?), p))))
                .collect();
            if let Some((a, b)) = least_squares(&points) {
                let at = a + b * EXTRAPOLATE_HOURS;
                println!("| {k} | {name} | {a:.2} | {:.2} | {at:.0} |", b * 1e3);
                fits.push(json!({"k": k, "series": name, "a_ms": a, "b_ms_per_hour": b, "at_100000h_ms": at}));
            }
        }
    }
    println!("{}", json!({ "fits": fits }));
}

/// Intercept and slope of the least-squares line through `points`; `None` for fewer than two
/// distinct x.
fn least_squares(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if points.len() < 2 || sxx <= 0.0 {
        return None;
    }
    let b = sxy / sxx;
    Some((my - b * mx, b))
}
