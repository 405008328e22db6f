//! The `pairalign` command line. Thin: parses arguments, calls the library crates, prints results.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use pairalign_engine::import::{import_jsonl, ImportOptions, TokenLine};
use pairalign_engine::synthetic::{self, ZipfTokens};
use pairalign_engine::{
    DatabaseConfig, DatabaseWriter, EditBudget, Mode, SearchOptions, Searcher, Symbol,
};
use serde_json::json;

mod check;
mod eval;
mod excerpt;
mod index;
mod merge;
mod report;
mod serve;
mod tokenize;
mod train;

/// PairAlign Search: query-by-example search over learned audio token strings.
#[derive(Parser, Debug)]
#[command(name = "pairalign", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Import token strings from a JSON Lines file (creates the database if missing).
    ImportTokens(ImportTokensArgs),
    /// Index audio files and folders: decode, tokenize, commit in batches (resumable).
    Index(index::IndexArgs),
    /// Search the database with an audio clip (query by example) or with token strings.
    Search(SearchArgs),
    /// Show counts and sizes.
    Info(InfoArgs),
    /// Delete documents by id.
    Delete(DeleteArgs),
    /// Merge all segments into one and drop deleted documents.
    Compact(DbArg),
    /// Copy the documents of shard databases (and their catalog entries) into one database
    /// (resumable; exit code 1 when an id was held with different tokens).
    Merge(merge::MergeArgs),
    /// Verify a database: segments, MANIFEST, the catalog's files and its entries against the
    /// documents (exit code 1 when something is wrong).
    Check(check::CheckArgs),
    /// Rebuild a damaged metadata catalog from the database and the files' sidecars (the old
    /// folder is kept as catalog.damaged-TIME).
    Repair(check::RepairArgs),
    /// Write a synthetic token archive and noisy queries (Zipf symbols), for demos and benchmarks.
    SynthTokens(SynthTokensArgs),
    /// Render synthetic multi-voice speech (espeak-ng, flite, piper) with train/held-out voices.
    Synth(SynthArgs),
    /// Build a feature cache (log-mel of several views of every clip) from a corpus, for training.
    Features(FeaturesArgs),
    /// Train a tokenizer.
    #[command(subcommand)]
    Train(TrainCommand),
    /// Turn audio files into token strings with per-token times.
    Tokenize(tokenize::TokenizeArgs),
    /// List the archive's documents with their metadata (title, tags, duration, format...),
    /// optionally those a filter selects.
    Assets(index::AssetsArgs),
    /// What an archive holds, tokens and bytes per hour, and the reduction against VQ.
    Report(report::ReportArgs),
    /// Cut a clip out of a recording, optionally modified (speed, noise, gain...): a query by
    /// example.
    Excerpt(excerpt::ExcerptArgs),
    /// Measure tokenizers: retrieval, cross-view consistency, compaction, the continuous sweep,
    /// locating excerpts, content across voices (tables, JSON, SVG plots).
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Serve the HTTP API over an archive (search, upload, delete, stats, metrics).
    Serve(serve::ServeArgs),
}

#[derive(Subcommand, Debug)]
enum EvalCommand {
    /// View 1 of each 3 s clip queries view 0 of all clips: P@1, MRR, mAP, recall@10.
    Retrieval(eval::RetrievalArgs),
    /// Distance between two views of a clip against unrelated clips, token rate, length
    /// difference, vocabulary use; the distributions as SVG.
    Consistency(eval::ConsistencyArgs),
    /// Archive tokens and bytes per hour, and the reduction against VQ.
    Compaction(eval::CompactionArgs),
    /// A 3 s window shifted in 100 ms steps: distance to the unshifted window and token count.
    Sweep(eval::SweepArgs),
    /// Modified 3 s excerpts of long recordings searched in a database of the recordings:
    /// source found first, start-time error.
    Locate(eval::LocateArgs),
    /// The same words said by different voices (Speech Commands, or a synthetic corpus with
    /// several voices per sentence): each clip queries the clips of the other voices; P@1, MRR,
    /// P@10.
    Content(eval::ContentArgs),
}

#[derive(Subcommand, Debug)]
enum TrainCommand {
    /// The VQ tokenizer: conv encoder, EMA codebook, mel reconstruction (resumable, Ctrl-C saves).
    Vq(train::TrainVqArgs),
    /// The PairAlign tokenizer from a VQ tokenizer's encoder: cross-paired teacher forcing on
    /// VQ-derived then EMA-teacher targets, anti-bypass corruption, likelihood contrast, length
    /// and timing losses (resumable, Ctrl-C saves).
    Pairalign(train::TrainPairAlignArgs),
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum Layout {
    /// Any folder of audio, recursively.
    Folder,
    /// LibriSpeech: <speaker>/<chapter>/*.flac with *.trans.txt.
    Librispeech,
    /// TIMIT: TRAIN|TEST/<dialect>/<speaker>/*.WAV with .WRD/.PHN alignments.
    Timit,
    /// The manifest.jsonl written by `pairalign synth`.
    Manifest,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum SplitArg {
    /// Voices used for training.
    Train,
    /// Voices held out of training, for evaluation.
    Heldout,
}

#[derive(clap::Args, Debug)]
struct FeaturesArgs {
    /// The corpus: a folder, or a manifest.jsonl with --layout manifest.
    corpus: PathBuf,
    /// How the corpus is laid out.
    #[arg(long, value_enum, default_value_t = Layout::Folder)]
    layout: Layout,
    /// With --layout manifest: only the utterances of training voices or of held-out voices.
    #[arg(long, value_enum)]
    split: Option<SplitArg>,
    /// The cache file to write.
    #[arg(long)]
    out: PathBuf,
    /// Views per clip.
    #[arg(long, default_value_t = 2)]
    views: usize,
    /// View library, e.g. "noise=10:30,speed=0.9:1.1,gain=6,shift=100" (default: all views).
    #[arg(long)]
    view_space: Option<String>,
    /// Seed of the views.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Clip length in seconds.
    #[arg(long, default_value_t = 3.0)]
    window: f64,
    /// Only the first N clips.
    #[arg(long)]
    max_clips: Option<usize>,
    /// Store features as f32 instead of f16.
    #[arg(long)]
    f32: bool,
    /// Utterances that say one transcript in different voices (a synthetic corpus rendered
    /// with --voices-per-sentence) become voice clips: each view another voice, whole. The
    /// trainer aligns their views before pairing their targets (content across voices).
    #[arg(long)]
    cross_voice: bool,
    /// With --cross-voice: the view library of each voice clip's first view (its other views
    /// and every window clip: --view-space), e.g. a mild one, so that clean words are carried
    /// onto a hard view of another voice.
    #[arg(long, requires = "cross_voice")]
    voice_view_space: Option<String>,
    /// A folder of audio added to the corpus (repeatable): e.g. real speech beside a
    /// synthetic manifest.
    #[arg(long = "with-folder", value_name = "DIR")]
    with_folders: Vec<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct SynthArgs {
    /// Output directory: wav/ and manifest.jsonl are written here.
    #[arg(long)]
    out: PathBuf,
    /// Hours of audio to render (approximate: utterances are planned from estimated lengths).
    #[arg(long, default_value_t = 1.0)]
    hours: f64,
    /// Random seed: same seed, same output.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Engines, comma-separated (espeak-ng, flite, piper); missing ones are skipped and reported.
    #[arg(long, value_delimiter = ',', default_value = "espeak-ng,flite")]
    engines: Vec<String>,
    /// Fraction of each engine's voices held out of training.
    #[arg(long, default_value_t = 0.2)]
    heldout: f64,
    /// Utterances rendered in parallel (0: one per core).
    #[arg(long, default_value_t = 0)]
    jobs: usize,
    /// Distinct voices that say each sentence, all on one side of the train/held-out split (1:
    /// the corpus earlier versions rendered for the seed).
    #[arg(long, default_value_t = 1)]
    voices_per_sentence: usize,
    /// Render only the training or only the held-out voices (the split stays the same).
    #[arg(long, value_enum)]
    only: Option<SplitArg>,
    /// Seed of the sentences alone (default: --seed): held-out voices of a --seed corpus saying
    /// sentences that corpus does not hold.
    #[arg(long)]
    text_seed: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct DbArg {
    /// Database directory.
    #[arg(long)]
    db: PathBuf,
}

#[derive(clap::Args, Debug)]
struct ImportTokensArgs {
    /// Database directory.
    #[arg(long)]
    db: PathBuf,
    /// JSONL file: {"id", "tokens", "times_ms"?, "duration_ms"?} per line.
    file: PathBuf,
    /// Import nothing if any line has a problem.
    #[arg(long)]
    strict: bool,
    /// Vocabulary size, when the database is created by this import.
    #[arg(long, default_value_t = DatabaseConfig::default().vocab_size)]
    vocab: u32,
    /// q-gram length, when the database is created by this import.
    #[arg(long, default_value_t = DatabaseConfig::default().q)]
    q: u32,
    /// Commit a segment every this many documents (a crash loses at most one batch).
    #[arg(long, default_value_t = ImportOptions::default().batch_docs)]
    batch_docs: usize,
    /// ...or every this many tokens, whichever comes first (bounds the memory of an import).
    #[arg(long, default_value_t = ImportOptions::default().batch_tokens)]
    batch_tokens: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum ModeArg {
    Infix,
    Global,
}

#[derive(clap::Args, Debug)]
struct SearchArgs {
    /// Database directory.
    #[arg(long)]
    db: PathBuf,
    /// An audio clip (0.5 to 60 s, any format the front end decodes): query by example.
    #[arg(
        conflicts_with_all = ["tokens", "tokens_file"],
        required_unless_present_any = ["tokens", "tokens_file"]
    )]
    clip: Option<PathBuf>,
    /// With a clip: `vq`, `vq-v2`, `pairalign`, `pairalign-v2`, `pairalign-v3` (the shipped models) or a weights folder of either kind;
    /// must be the database's. Default: the shipped model the database records.
    #[arg(long)]
    tokenizer: Option<String>,
    /// With a clip and a PairAlign tokenizer: the grid phases the clip is tokenized at, each
    /// searched [default: the model's, 4 for the shipped ones]. Fewer is faster: 2 halves the
    /// search (pairalign-v2: real clean excerpts found first 97.5% against 99.0%;
    /// docs/RESULTS.md).
    #[arg(long)]
    phases: Option<usize>,
    /// One query as space-separated symbols, e.g. "3 17 17 4".
    #[arg(long, conflicts_with = "tokens_file")]
    tokens: Option<String>,
    /// Queries as JSONL, one {"id", "tokens"} per line.
    #[arg(long)]
    tokens_file: Option<PathBuf>,
    /// Number of hits per query.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Edit budget: an integer is absolute, a number below 1 is a fraction of the query length;
    /// `none`: no budget, the `--top` nearest exactly (a bounded scan of every document)
    /// [default: 0.4 for tokens, 0.9 for a clip (see pairalign_query::CLIP_EDIT_BUDGET)].
    #[arg(long)]
    k: Option<String>,
    /// infix: find the query inside documents; global: compare whole documents.
    #[arg(long, value_enum, default_value_t = ModeArg::Infix)]
    mode: ModeArg,
    /// Verify every document instead of filtering with q-grams.
    #[arg(long)]
    exhaustive: bool,
    /// Search only the documents whose metadata match, e.g. 'tags:interview AND duration:>60'
    /// (tantivy query syntax; `pairalign assets --help` lists the fields).
    #[arg(long)]
    filter: Option<String>,
    /// One JSON object per line and query, for scripts.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct InfoArgs {
    /// Database directory.
    #[arg(long)]
    db: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct DeleteArgs {
    /// Database directory.
    #[arg(long)]
    db: PathBuf,
    /// Document ids.
    #[arg(required = true)]
    ids: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct SynthTokensArgs {
    /// Output directory: archive.jsonl and queries.jsonl are written here.
    #[arg(long)]
    out: PathBuf,
    /// Documents in the archive.
    #[arg(long, default_value_t = 10_000)]
    docs: usize,
    /// Tokens per document.
    #[arg(long, default_value_t = 380)]
    len: usize,
    /// Vocabulary size.
    #[arg(long, default_value_t = 512)]
    vocab: u32,
    /// Queries: noisy copies of random document stretches.
    #[arg(long, default_value_t = 5)]
    queries: usize,
    /// Query length in tokens (38 is 3 s at 12.7 tokens/s).
    #[arg(long, default_value_t = 38)]
    query_len: usize,
    /// Share of query positions edited (substitution, insertion or deletion).
    #[arg(long, default_value_t = 0.2)]
    noise: f64,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        die_quietly_on_broken_pipe();
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Restores the default action of SIGPIPE (Rust ignores it, so `println!` panics once the
/// reader of stdout is gone: `pairalign info DB | head -1`): the command ends quietly, as other
/// Unix tools do. Not for `serve`, where a client hanging up must not stop the server.
fn die_quietly_on_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_DFL installs no handler and touches no
    // memory of ours; nothing else in the process has changed SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::ImportTokens(args) => import_tokens(args),
        Command::Index(args) => index::index(args),
        Command::Search(args) => search(args),
        Command::Info(args) => info(args),
        Command::Delete(args) => delete(args),
        Command::Assets(args) => index::assets(args),
        Command::Merge(args) => merge::merge(args),
        Command::Compact(args) => {
            let mut db = DatabaseWriter::open(&args.db)?;
            db.compact()?;
            let info = db.info()?;
            println!(
                "compacted: {} segment(s), {} docs, {} bytes",
                info.segments, info.docs, info.bytes
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => check::check(args),
        Command::Repair(args) => check::repair(args),
        Command::SynthTokens(args) => synth_tokens(args),
        Command::Synth(args) => synth(args),
        Command::Features(args) => features(args),
        Command::Train(TrainCommand::Vq(args)) => train::train_vq(args),
        Command::Train(TrainCommand::Pairalign(args)) => train::train_pairalign(args),
        Command::Tokenize(args) => tokenize::tokenize(args),
        Command::Excerpt(args) => excerpt::excerpt(args),
        Command::Report(args) => report::report(args),
        Command::Eval(command) => match command {
            EvalCommand::Retrieval(args) => eval::retrieval(args),
            EvalCommand::Consistency(args) => eval::consistency(args),
            EvalCommand::Compaction(args) => eval::compaction(args),
            EvalCommand::Sweep(args) => eval::sweep(args),
            EvalCommand::Locate(args) => eval::locate(args),
            EvalCommand::Content(args) => eval::content(args),
        },
        Command::Serve(args) => serve::serve(args),
    }
}

fn import_tokens(args: ImportTokensArgs) -> anyhow::Result<ExitCode> {
    let mut db = DatabaseWriter::open_or_create(&args.db, DatabaseConfig::new(args.vocab, args.q))?;
    let options = ImportOptions {
        strict: args.strict,
        batch_docs: args.batch_docs.max(1),
        batch_tokens: args.batch_tokens.max(1),
    };
    let report = import_jsonl(&mut db, &args.file, &options)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        for problem in &report.problems {
            eprintln!(
                "{}:{}: {}",
                args.file.display(),
                problem.line,
                problem.message
            );
        }
        println!(
            "imported {} of {} documents ({} tokens){}",
            report.imported,
            report.lines,
            report.tokens,
            if args.strict && !report.problems.is_empty() {
                " (--strict: nothing imported)"
            } else {
                ""
            }
        );
    }
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn parse_tokens(text: &str) -> anyhow::Result<Vec<Symbol>> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<Symbol>()
                .with_context(|| format!("{t:?} is not a symbol (0 to 65535)"))
        })
        .collect()
}

fn read_queries(path: &Path) -> anyhow::Result<Vec<(String, Vec<Symbol>)>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut queries = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: TokenLine = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: malformed query line", path.display(), i + 1))?;
        queries.push((parsed.id, parsed.tokens));
    }
    Ok(queries)
}

fn search(args: SearchArgs) -> anyhow::Result<ExitCode> {
    let options = SearchOptions {
        top: args.top,
        k: match (args.k.as_deref(), &args.clip) {
            (Some("none"), _) => None,
            (Some(text), _) => Some(EditBudget::parse(text)?),
            (None, Some(_)) => Some(pairalign_query::CLIP_EDIT_BUDGET),
            (None, None) => Some(EditBudget::Fraction(0.4)),
        },
        mode: match args.mode {
            ModeArg::Infix => Mode::Infix,
            ModeArg::Global => Mode::Global,
        },
        exhaustive: args.exhaustive,
        ..SearchOptions::default()
    };
    if let Some(clip) = &args.clip {
        return index::search_clip(
            &args.db,
            clip,
            args.tokenizer.as_deref(),
            args.phases,
            options,
            args.filter.as_deref(),
            args.json,
        );
    }
    if args.phases.is_some() {
        bail!("--phases applies to a clip: token queries are searched as given");
    }
    let db = Searcher::open(&args.db)?;
    let mut options = options;
    if let Some(filter) = &args.filter {
        options.only = Some(pairalign_query::select_documents(&db, filter)?);
    }
    let queries = match (&args.tokens, &args.tokens_file) {
        (Some(text), _) => vec![("query".to_string(), parse_tokens(text)?)],
        (None, Some(path)) => read_queries(path)?,
        (None, None) => bail!("give a clip, --tokens or --tokens-file"),
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for (id, tokens) in queries {
        let outcome = db
            .search_tokens(&tokens, &options)
            .with_context(|| format!("query {id:?}"))?;
        if args.json {
            let line = json!({"query": id, "took_ms": outcome.took_ms, "hits": outcome.hits});
            writeln!(out, "{line}")?;
            continue;
        }
        writeln!(
            out,
            "query {id}: {} hit(s) in {:.2} ms{}",
            outcome.hits.len(),
            outcome.took_ms,
            if outcome.lossless {
                ""
            } else {
                " (ranked candidates)"
            }
        )?;
        for (rank, hit) in outcome.hits.iter().enumerate() {
            writeln!(
                out,
                "{:>4}. {}  {:.2}-{:.2} s  tokens {}..{}  distance {} ({:.2})",
                rank + 1,
                hit.id,
                f64::from(hit.start_ms) / 1e3,
                f64::from(hit.end_ms) / 1e3,
                hit.start,
                hit.end,
                hit.distance,
                hit.norm_distance
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn info(args: InfoArgs) -> anyhow::Result<ExitCode> {
    let db = Searcher::open(&args.db)?;
    let info = db.info()?;
    if args.json {
        println!("{}", serde_json::to_string(&info)?);
    } else {
        println!("database:  {}", args.db.display());
        println!("segments:  {}", info.segments);
        println!(
            "docs:      {} ({} deleted, not yet compacted)",
            info.docs, info.deleted
        );
        println!("tokens:    {}", info.tokens);
        println!("bytes:     {}", info.bytes);
        println!("vocab:     {}  q: {}", info.vocab_size, info.q);
        if let Some(t) = &info.tokenizer {
            println!("tokenizer: {} ({})", t.id, t.weights_hash);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn delete(args: DeleteArgs) -> anyhow::Result<ExitCode> {
    let mut store = pairalign_indexer::Store::open(&args.db)?;
    let report = store.delete(&args.ids)?;
    for id in &report.missing {
        eprintln!("not found: {id}");
    }
    println!("deleted {} document(s)", report.deleted.len());
    Ok(if report.missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn synth(args: SynthArgs) -> anyhow::Result<ExitCode> {
    use pairalign_datasets::synth::{render, SynthOptions, SynthProgress};
    let options = SynthOptions {
        out: args.out.clone(),
        hours: args.hours,
        seed: args.seed,
        text_seed: args.text_seed,
        engines: args.engines,
        heldout_fraction: args.heldout,
        jobs: args.jobs,
        voices_per_sentence: args.voices_per_sentence,
        only: args.only.map(|s| match s {
            SplitArg::Train => pairalign_datasets::synth::Split::Train,
            SplitArg::Heldout => pairalign_datasets::synth::Split::Heldout,
        }),
    };
    let last_percent = std::sync::atomic::AtomicUsize::new(usize::MAX);
    let report = render(&options, |p: SynthProgress| {
        let percent = p.done * 100 / p.planned.max(1);
        if last_percent.swap(percent, std::sync::atomic::Ordering::Relaxed) != percent {
            eprint!(
                "\rsynth: {}/{} utterances, {:.2} h of audio",
                p.done,
                p.planned,
                p.seconds / 3600.0
            );
        }
    })?;
    eprintln!();
    for (engine, why) in &report.skipped_engines {
        eprintln!("skipped engine {engine}: {why}");
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "rendered {} utterances of {} sentences, {:.2} h of audio in {:.1} s, to {} ({} train voices, {} held-out)",
            report.utterances,
            report.sentences,
            report.seconds / 3600.0,
            report.wall_s,
            args.out.display(),
            report.voices_train.len(),
            report.voices_heldout.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn features(args: FeaturesArgs) -> anyhow::Result<ExitCode> {
    use pairalign_datasets::cache::{build_cache, CacheBuildOptions, Dtype};
    use pairalign_datasets::corpus::{
        read_folder, read_librispeech, read_manifest_split, read_timit, Split,
    };
    use pairalign_datasets::decode::probe_duration;
    use pairalign_datasets::views::ViewSpace;
    let split = args.split.map(|s| match s {
        SplitArg::Train => Split::Train,
        SplitArg::Heldout => Split::Heldout,
    });
    if split.is_some() && !matches!(args.layout, Layout::Manifest) {
        anyhow::bail!(
            "--split needs --layout manifest (only the synthetic corpus has voice splits)"
        );
    }
    let mut corpus = match args.layout {
        Layout::Folder => read_folder(&args.corpus, &probe_duration)?,
        Layout::Librispeech => read_librispeech(&args.corpus, &probe_duration)?,
        Layout::Timit => read_timit(&args.corpus, &probe_duration)?,
        Layout::Manifest => read_manifest_split(&args.corpus, split)?,
    };
    for folder in &args.with_folders {
        let more = read_folder(folder, &probe_duration)?;
        corpus.utterances.extend(more.utterances);
        corpus.problems.extend(more.problems);
    }
    for (path, why) in &corpus.problems {
        eprintln!("skipped {}: {why}", path.display());
    }
    let options = CacheBuildOptions {
        views_per_clip: args.views,
        view_space: match &args.view_space {
            Some(text) => ViewSpace::parse(text)?,
            None => ViewSpace::default(),
        },
        seed: args.seed,
        dtype: if args.f32 { Dtype::F32 } else { Dtype::F16 },
        window_s: args.window,
        max_clips: args.max_clips,
        cross_voice: args.cross_voice,
        voice_view_space: args
            .voice_view_space
            .as_deref()
            .map(ViewSpace::parse)
            .transpose()?,
        ..CacheBuildOptions::default()
    };
    let report = build_cache(&corpus.utterances, &args.out, &options)?;
    for (id, why) in &report.failed {
        eprintln!("failed {id}: {why}");
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let voices = if args.cross_voice {
            format!(" ({} voice clips)", report.voice_clips)
        } else {
            String::new()
        };
        println!(
            "{} clips{voices} ({:.2} h) x {} views in {:.1} s ({:.0}x realtime) -> {}",
            report.clips,
            report.seconds / 3600.0,
            args.views,
            report.wall_s,
            report.seconds / report.wall_s.max(1e-9),
            args.out.display()
        );
    }
    Ok(if report.failed.is_empty() && corpus.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn synth_tokens(args: SynthTokensArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let zipf = ZipfTokens::new(args.vocab, 1.0, args.seed);
    let mut rng = synthetic::rng(args.seed);
    let ms_per_token = 1000.0 / pairalign_engine::NOMINAL_TOKENS_PER_SECOND;
    let archive_path = args.out.join("archive.jsonl");
    let mut archive = BufWriter::new(File::create(&archive_path)?);
    let mut docs = Vec::with_capacity(args.docs);
    for d in 0..args.docs {
        let tokens = zipf.string(&mut rng, args.len);
        let times: Vec<u32> = (0..tokens.len())
            .map(|i| (i as f64 * ms_per_token) as u32)
            .collect();
        let line = json!({
            "id": format!("doc-{d:06}"),
            "tokens": tokens,
            "times_ms": times,
            "duration_ms": (tokens.len() as f64 * ms_per_token) as u32,
        });
        writeln!(archive, "{line}")?;
        docs.push(tokens);
    }
    archive.flush()?;
    let mut queries = BufWriter::new(File::create(args.out.join("queries.jsonl"))?);
    let queries_wanted = if docs.is_empty() { 0 } else { args.queries };
    for i in 0..queries_wanted {
        let d = rand::Rng::gen_range(&mut rng, 0..docs.len());
        let doc = &docs[d];
        let len = args.query_len.min(doc.len());
        let start = rand::Rng::gen_range(&mut rng, 0..=doc.len() - len);
        let tokens = zipf.noisy_copy(&mut rng, &doc[start..start + len], args.noise);
        let line = json!({
            "id": format!("q{i}-from-doc-{d:06}-at-{start}"),
            "tokens": tokens,
        });
        writeln!(queries, "{line}")?;
    }
    queries.flush()?;
    println!(
        "wrote {} documents of {} tokens and {} queries to {}",
        args.docs,
        args.len,
        args.queries,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
