//! `pairalign index` (bulk indexing with a progress bar) and the audio form of `pairalign search`
//! (query by example): argument handling and output around `pairalign-indexer` and
//! `pairalign-query`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pairalign_engine::{SearchOptions, Searcher};
use pairalign_indexer::{
    index_paths, open_or_create_for, AssetMetadata, IndexOptions, IndexReport, Progress,
};
use serde_json::json;

use crate::tokenize::{tokenizer_for, with_phases};

/// Arguments of `pairalign index`.
#[derive(clap::Args, Debug)]
pub struct IndexArgs {
    /// Audio files and folders (walked recursively; symbolic links followed).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Database directory (created when missing).
    #[arg(long)]
    db: PathBuf,
    /// `vq`, `vq-v2`, `pairalign`, `pairalign-v2`, `pairalign-v3` (the shipped models) or a weights folder of either kind; must be the
    /// tokenizer the database was built with. Default: the shipped model the database
    /// records, or pairalign-v3 (the default) for a new database.
    #[arg(long)]
    tokenizer: Option<String>,
    /// Threads for decoding and tokenizing (0: one per core).
    #[arg(long, default_value_t = 0)]
    jobs: usize,
    /// Files per committed batch (a crash loses at most one batch).
    #[arg(long, default_value_t = IndexOptions::default().batch_files)]
    batch_files: usize,
    /// A tag for every file of this run, added to those of its sidecar JSON (`FILE.json` or
    /// `FILE.wav.json` beside it: `{"title": "...", "tags": ["..."]}`). Repeatable.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Keep one segment per batch instead of merging them at the end of the run (merging
    /// happens when there are more than 8).
    #[arg(long)]
    no_compact: bool,
    /// No progress bar and no summary; failures still go to stderr.
    #[arg(long)]
    quiet: bool,
    /// Print the summary as one JSON object (no progress bar).
    #[arg(long)]
    json: bool,
    /// As each batch commits, print `{"committed": [ids...]}` on stdout (one JSON line, flushed):
    /// the files named are durable, and survive a crash or kill -9 of this run.
    #[arg(long)]
    events: bool,
}

/// Runs `index`: exit code 0 when every file was indexed or skipped, 1 when some failed, 130
/// when interrupted by Ctrl-C (what was committed stays; a re-run resumes).
pub fn index(args: IndexArgs) -> anyhow::Result<ExitCode> {
    let tokenizer = tokenizer_for(&args.db, args.tokenizer.as_deref())?;
    let mut store = open_or_create_for(&args.db, &tokenizer)?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::Relaxed) {
                eprintln!("\nsecond interrupt: exiting; the batch in progress is lost");
                std::process::exit(130);
            }
            eprintln!("\ninterrupted: committing the files done so far (Ctrl-C again to abort)");
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    let options = IndexOptions {
        jobs: args.jobs,
        batch_files: args.batch_files.max(1),
        stop: Some(stop),
        compact_above: if args.no_compact {
            None
        } else {
            IndexOptions::default().compact_above
        },
        metadata: AssetMetadata {
            tags: args.tags.clone(),
            ..AssetMetadata::default()
        },
        ..IndexOptions::default()
    };
    options.metadata.check().map_err(|e| anyhow::anyhow!(e))?;
    let bar = progress_bar(args.quiet || args.json);
    let report = index_paths(
        &mut store,
        &tokenizer,
        &args.paths,
        &options,
        |p: &Progress| {
            if args.events && !p.committed_ids.is_empty() {
                print_committed(&p.committed_ids);
            }
            bar.set_length(p.files_total as u64);
            bar.set_position(p.files_done as u64);
            bar.set_message(format!(
                "{:.2} h of audio, {:.0}x realtime, {} skipped, {} failed",
                p.audio_s / 3600.0,
                p.audio_s / p.wall_s.max(1e-9),
                p.skipped,
                p.failed
            ));
        },
    )?;
    bar.finish_and_clear();
    for problem in &report.failed {
        eprintln!("failed {}: {}", problem.path.display(), problem.reason);
    }
    if !args.quiet && !args.json {
        for copy in &report.duplicates {
            eprintln!(
                "duplicate {}: same content as {}",
                copy.path.display(),
                copy.of
            );
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else if !args.quiet {
        print_summary(&report, &args.db);
    }
    Ok(if report.interrupted {
        ExitCode::from(130)
    } else if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One `{"committed": [ids...]}` line on stdout, flushed at once so that a reader sees it before
/// anything that may kill this process.
fn print_committed(ids: &[String]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // A closed stdout (the reader went away) must not stop the indexer.
    let _ = writeln!(out, "{}", json!({ "committed": ids }));
    let _ = out.flush();
}

/// A bar on stderr with files, hours of audio, x realtime and ETA; hidden when asked (and by
/// indicatif when stderr is not a terminal).
fn progress_bar(hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} files, {msg}, ETA {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message("looking for audio files");
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn print_summary(report: &IndexReport, db: &Path) {
    println!(
        "indexed {} file(s), {:.2} h of audio, {} tokens in {:.1} s ({:.0}x realtime) into {}",
        report.indexed,
        report.audio_s / 3600.0,
        report.tokens,
        report.wall_s,
        report.realtime,
        db.display()
    );
    println!(
        "{} found, {} already indexed (skipped), {} changed (re-indexed), {} duplicate(s), {} failed, \
         {} batch(es){}",
        report.files_found,
        report.skipped,
        report.replaced,
        report.duplicates.len(),
        report.failed.len(),
        report.batches,
        if report.interrupted {
            "; interrupted: run again to resume"
        } else if report.compacted {
            ", segments merged into one"
        } else {
            ""
        }
    );
    println!(
        "time: walk {:.2} s, decode {:.2} s and tokenizer {:.2} s (thread time), storage {:.2} s; \
         tokenizer {} ({})",
        report.walk_s,
        report.decode_s,
        report.tokenize_s,
        report.storage_s,
        report.tokenizer.id,
        report
            .tokenizer
            .weights_hash
            .get(..12)
            .unwrap_or(&report.tokenizer.weights_hash)
    );
}

/// The audio form of `pairalign search`: decode `clip`, tokenize it with `tokenizer`, search.
pub fn search_clip(
    db: &Path,
    clip: &Path,
    tokenizer: Option<&str>,
    phases: Option<usize>,
    mut options: SearchOptions,
    filter: Option<&str>,
    json_output: bool,
) -> anyhow::Result<ExitCode> {
    let tokenizer = with_phases(tokenizer_for(db, tokenizer)?, phases)?;
    let db = Searcher::open(db)?;
    if let Some(filter) = filter {
        options.only = Some(pairalign_query::select_documents(&db, filter)?);
    }
    let outcome = pairalign_query::search_file(&db, &tokenizer, clip, &options)
        .with_context(|| format!("query {}", clip.display()))?;
    let name = clip.display().to_string();
    if json_output {
        let line = json!({
            "query": name,
            "query_tokens": outcome.query_tokens,
            "tokenize_ms": outcome.tokenize_ms,
            "took_ms": outcome.took_ms,
            "hits": outcome.hits,
        });
        println!("{line}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "query {name}: {} tokens, {} hit(s) in {:.1} ms (tokenizer {:.1} ms){}",
        outcome.query_tokens,
        outcome.hits.len(),
        outcome.took_ms,
        outcome.tokenize_ms,
        if outcome.lossless {
            ""
        } else {
            " (ranked candidates)"
        }
    );
    for (rank, hit) in outcome.hits.iter().enumerate() {
        println!(
            "{:>4}. {}  {:.2}-{:.2} s  distance {} ({:.2})",
            rank + 1,
            hit.id,
            f64::from(hit.start_ms) / 1e3,
            f64::from(hit.end_ms) / 1e3,
            hit.distance,
            hit.norm_distance
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `pairalign assets`.
#[derive(clap::Args, Debug)]
pub struct AssetsArgs {
    /// Database directory.
    #[arg(long)]
    db: PathBuf,
    /// Only the documents whose metadata match, in tantivy query syntax: `field:value`, `AND`,
    /// `OR`, `NOT`, ranges `duration:>60` or `duration:[10 TO 20]`; bare words search title,
    /// file name and tags. Fields: id, path, file_name, title, tags, duration (s), format,
    /// sample_rate, hash, indexed_at (RFC 3339), tokens.
    #[arg(long)]
    filter: Option<String>,
    /// Skip this many (sorted by id).
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// Show at most this many.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// One JSON object: {"total", "assets": [...]}.
    #[arg(long)]
    json: bool,
}

/// Runs `assets`.
pub fn assets(args: AssetsArgs) -> anyhow::Result<ExitCode> {
    let db = Searcher::open(&args.db)?;
    let page = pairalign_query::list_assets(&db, args.filter.as_deref(), args.offset, args.limit)?;
    if args.json {
        println!("{}", serde_json::to_string(&page)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} document(s) match; showing {}",
        page.total,
        page.assets.len()
    );
    for a in &page.assets {
        let title = a
            .title
            .as_deref()
            .map(|t| format!("  \"{t}\""))
            .unwrap_or_default();
        let tags = if a.tags.is_empty() {
            String::new()
        } else {
            format!("  [{}]", a.tags.join(", "))
        };
        println!(
            "{}  {:.1} s  {}{title}{tags}",
            a.id,
            a.duration_s,
            a.format.as_deref().unwrap_or("-")
        );
    }
    Ok(ExitCode::SUCCESS)
}
