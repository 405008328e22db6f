//! `pairalign eval`: the issue 7 protocols (retrieval, consistency, compaction, sweep, locate)
//! and content across voices (issue 22) for any number of tokenizers and the dense baseline.
//! Thin: arguments, loading, one library call per protocol, printing and `--out`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::ValueEnum;
use pairalign_datasets::corpus::Split;
use pairalign_datasets::views::ViewSpace;
use pairalign_engine::EditBudget;
use pairalign_eval::{
    CompactionOptions, Condition, ConsistencyOptions, ContentOptions, ContentSet, Layout,
    LocateOptions, Match, Outputs, Silence, Source, Subject, SubjectName, SweepOptions,
    ViewOptions, CONDITIONS, DEFAULT_VIEW_SPACE,
};

/// The layouts `--corpus` can have.
#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum LayoutArg {
    /// A folder is a folder corpus, a .jsonl file a synthetic manifest, another file a cache.
    Auto,
    /// A feature cache of paired views (`pairalign features`).
    Cache,
    /// Any folder of audio, recursively.
    Folder,
    /// LibriSpeech: <speaker>/<chapter>/*.flac with *.trans.txt.
    Librispeech,
    /// TIMIT: TRAIN|TEST/<dialect>/<speaker>/*.WAV.
    Timit,
    /// The manifest.jsonl written by `pairalign synth`.
    Manifest,
    /// Speech Commands: <word>/<speaker>_nohash_<n>.wav.
    SpeechCommands,
}

/// Voice splits of a synthetic manifest.
#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum SplitArg {
    /// Voices used for training.
    Train,
    /// Voices held out of training.
    Heldout,
}

/// What every protocol takes.
#[derive(clap::Args, Debug)]
pub struct CommonArgs {
    /// The data: a feature cache of paired views (`pairalign features`), or a corpus (a folder,
    /// LibriSpeech, TIMIT, or a synthetic manifest.jsonl).
    #[arg(long, alias = "cache")]
    corpus: PathBuf,
    /// How --corpus is laid out.
    #[arg(long, value_enum, default_value_t = LayoutArg::Auto)]
    layout: LayoutArg,
    /// With a synthetic manifest: only the training or the held-out voices.
    #[arg(long, value_enum)]
    split: Option<SplitArg>,
    /// A shipped tokenizer (`vq`, `vq-v2`, `pairalign`, `pairalign-v2`, `pairalign-v3`), a
    /// weights folder, `dense` / `dense:DIR` (the mean-pooled encoder output of the shipped VQ
    /// or of a weights folder: the dense baseline), or `vq-targets[@RATE][:DIR]` (VQ codes
    /// compacted to RATE tokens/s, default 12.7, as PairAlign's VQ-derived training targets
    /// are). Repeat to compare.
    #[arg(long = "tokenizer", default_value = "vq")]
    tokenizers: Vec<String>,
    /// Seed of everything drawn (views from a corpus, pairs, excerpts, sweep starts).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One JSON object per tokenizer and line (keys: see the pairalign-eval crate docs).
    #[arg(long)]
    json: bool,
    /// Also write results.json, results.md and the SVG plots into this folder.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// How clips in two views are made from a corpus (retrieval, consistency).
#[derive(clap::Args, Debug)]
pub struct ViewArgs {
    /// Only the first N clips.
    #[arg(long)]
    max_clips: Option<usize>,
    /// View library for a corpus (a cache has its views).
    #[arg(long, default_value = DEFAULT_VIEW_SPACE)]
    view_space: String,
}

/// Arguments of `eval retrieval`.
#[derive(clap::Args, Debug)]
pub struct RetrievalArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    views: ViewArgs,
}

/// Arguments of `eval consistency`.
#[derive(clap::Args, Debug)]
pub struct ConsistencyArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    views: ViewArgs,
    /// Unrelated clips compared with each clip.
    #[arg(long, default_value_t = ConsistencyOptions::default().unrelated_per_clip)]
    unrelated_per_clip: usize,
}

/// Arguments of `eval compaction`.
#[derive(clap::Args, Debug)]
pub struct CompactionArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Only the first N recordings (clips of a cache).
    #[arg(long)]
    max_recordings: Option<usize>,
}

/// Arguments of `eval sweep`.
#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Sweeps (one per recording at most).
    #[arg(long, default_value_t = SweepOptions::default().sweeps)]
    sweeps: usize,
    /// Step between shifts, ms.
    #[arg(long, default_value_t = SweepOptions::default().step_ms)]
    step_ms: u32,
    /// Largest shift, seconds.
    #[arg(long, default_value_t = SweepOptions::default().max_shift_s)]
    max_shift: f64,
    /// Join utterances of one speaker into recordings of at least this many seconds (for
    /// corpora of short utterances; 0: files as they are).
    #[arg(long, default_value_t = 0.0)]
    join: f64,
}

/// Arguments of `eval locate`.
#[derive(clap::Args, Debug)]
pub struct LocateArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Queries (3 s excerpts).
    #[arg(long, default_value_t = LocateOptions::default().queries)]
    queries: usize,
    /// Views that modify the excerpts (one condition; see --condition for several).
    #[arg(long, default_value = DEFAULT_VIEW_SPACE)]
    view_space: String,
    /// Conditions to run on the same excerpts and one index, each a named condition (clean,
    /// gain-12, gain-6, gain+6, gain+12, white20, white10, white5, babble20, babble10, pink10,
    /// speed0.95, speed1.05, pitch-2, pitch+2, telephone, 8k, reverb, chain, or `all`) or a view
    /// space; repeat, or separate with spaces. Replaces --view-space.
    #[arg(long = "condition", num_args = 1.., value_delimiter = ' ')]
    conditions: Vec<String>,
    /// Edit budget: an integer is absolute, a number below 1 a fraction of the query length
    /// [default: 0.9, as `pairalign search` for clips].
    #[arg(long)]
    k: Option<String>,
    /// Hits per query.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Excerpts come from recordings at least this long, seconds.
    #[arg(long, default_value_t = LocateOptions::default().min_recording_s)]
    min_recording: f64,
    /// Join utterances of one speaker into recordings of at least this many seconds (0: files
    /// as they are).
    #[arg(long, default_value_t = 0.0)]
    join: f64,
    /// Start every excerpt on a tokenization window boundary (a multiple of 3 s): the
    /// difference from a run without it is what the windowing costs a tokenizer.
    #[arg(long)]
    on_window_boundaries: bool,
}

/// Which voices of a synthetic manifest `eval content` uses.
#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum VoicesArg {
    /// Voices held out of training.
    Heldout,
    /// Voices used for training.
    Train,
    /// Every voice.
    All,
}

/// How `eval content` compares two token strings.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum MatchArg {
    /// The whole strings: Levenshtein distance over the longer length.
    Global,
    /// The shorter string located inside the longer, over the shorter's length.
    Infix,
}

/// What `eval content` does with the silence around the words.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum SilenceArg {
    /// Tokenize each clip as it is.
    Keep,
    /// Cut leading and trailing silence by energy before tokenizing.
    Trim,
}

/// Arguments of `eval content`.
#[derive(clap::Args, Debug)]
pub struct ContentArgs {
    /// A Speech Commands folder (<word>/<speaker>_nohash_<n>.wav): the clips of a word say the
    /// same thing, a speaker is a voice.
    #[arg(long, conflicts_with_all = ["corpus", "layout"], required_unless_present = "corpus")]
    speech_commands: Option<PathBuf>,
    /// A corpus with transcripts: a synthetic manifest.jsonl rendered with `pairalign synth
    /// --voices-per-sentence K` (clips of a sentence say the same thing, an engine voice is a
    /// voice), or LibriSpeech.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// How --corpus is laid out.
    #[arg(long, value_enum, default_value_t = LayoutArg::Auto)]
    layout: LayoutArg,
    /// With a synthetic manifest: which voices.
    #[arg(long, value_enum, default_value_t = VoicesArg::Heldout)]
    voices: VoicesArg,
    /// `vq`, `vq-v2`, `pairalign`, `pairalign-v2`, `pairalign-v3`, a weights folder, or any other token subject
    /// of `eval retrieval --help`. Repeat to compare.
    #[arg(long = "tokenizer", default_value = "vq")]
    tokenizers: Vec<String>,
    /// How token strings are compared; several (`global,infix`) run on the same strings
    /// [default: global].
    #[arg(long = "match", value_enum, value_delimiter = ',')]
    matches: Vec<MatchArg>,
    /// Silence around the words; several (`keep,trim`) run on the same decoded clips
    /// [default: trim].
    #[arg(long = "silence", value_enum, value_delimiter = ',')]
    silences: Vec<SilenceArg>,
    /// Only the first N clips (in id order).
    #[arg(long)]
    max_clips: Option<usize>,
    /// One JSON object per tokenizer, silence and match mode, and line.
    #[arg(long)]
    json: bool,
    /// Also write results.json, results.md and content.svg into this folder.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The source and the subjects, loaded; problems of the corpus printed.
struct Loaded {
    source: Source,
    subjects: Vec<Subject>,
    problems: usize,
}

fn load(common: &CommonArgs) -> anyhow::Result<Loaded> {
    let layout = match common.layout {
        LayoutArg::Auto => Layout::Auto,
        LayoutArg::Cache => Layout::Cache,
        LayoutArg::Folder => Layout::Folder,
        LayoutArg::Librispeech => Layout::Librispeech,
        LayoutArg::Timit => Layout::Timit,
        LayoutArg::Manifest => Layout::Manifest,
        LayoutArg::SpeechCommands => Layout::SpeechCommands,
    };
    let split = common.split.map(|s| match s {
        SplitArg::Train => Split::Train,
        SplitArg::Heldout => Split::Heldout,
    });
    let (source, problems) = Source::open(&common.corpus, layout, split)
        .with_context(|| format!("opening {}", common.corpus.display()))?;
    for (path, why) in &problems {
        eprintln!("skipped {}: {why}", path.display());
    }
    let subjects = common
        .tokenizers
        .iter()
        .map(|name| subject(name))
        .collect::<anyhow::Result<_>>()?;
    Ok(Loaded {
        source,
        subjects,
        problems: problems.len(),
    })
}

/// The subject named `name` (see `pairalign_eval::SubjectName`), its weights loaded (and
/// announced) as every command loads a tokenizer.
fn subject(name: &str) -> anyhow::Result<Subject> {
    let spec = SubjectName::parse(name)?;
    let tokenizer = crate::tokenize::load_tokenizer(spec.weights())?;
    Ok(spec.subject(name, tokenizer)?)
}

fn view_options(views: &ViewArgs, seed: u64) -> anyhow::Result<ViewOptions> {
    Ok(ViewOptions {
        view_space: ViewSpace::parse(&views.view_space)?,
        seed,
        max_clips: views.max_clips,
        ..ViewOptions::default()
    })
}

/// Prints the reports (JSON lines or the markdown table), writes `--out`, and gives the exit
/// code: 1 when the corpus had entries that could not be read.
fn finish(common: &CommonArgs, outputs: &Outputs, problems: usize) -> anyhow::Result<ExitCode> {
    if common.json {
        for line in &outputs.json {
            println!("{line}");
        }
    } else {
        print!("{}", outputs.markdown);
    }
    if let Some(dir) = &common.out {
        outputs.write(dir)?;
        eprintln!("wrote {}", dir.display());
    }
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs `eval retrieval`.
pub fn retrieval(args: RetrievalArgs) -> anyhow::Result<ExitCode> {
    let loaded = load(&args.common)?;
    let views = loaded
        .source
        .paired_views(&view_options(&args.views, args.common.seed)?)?;
    let mut reports = Vec::new();
    for s in &loaded.subjects {
        let report = pairalign_eval::retrieval::retrieval(s, &views)?;
        eprintln!(
            "retrieval: {} on {} clips in {:.1} s",
            s.name, report.clips, report.wall_s
        );
        reports.push(report);
    }
    finish(
        &args.common,
        &pairalign_eval::retrieval::outputs(&reports),
        loaded.problems,
    )
}

/// Runs `eval consistency`.
pub fn consistency(args: ConsistencyArgs) -> anyhow::Result<ExitCode> {
    let loaded = load(&args.common)?;
    let views = loaded
        .source
        .paired_views(&view_options(&args.views, args.common.seed)?)?;
    let options = ConsistencyOptions {
        unrelated_per_clip: args.unrelated_per_clip,
        seed: args.common.seed,
    };
    let mut results = Vec::new();
    for s in &loaded.subjects {
        let result = pairalign_eval::consistency::consistency(s, &views, &options)?;
        eprintln!("consistency: {} in {:.1} s", s.name, result.report.wall_s);
        results.push(result);
    }
    finish(
        &args.common,
        &pairalign_eval::consistency::outputs(&results),
        loaded.problems,
    )
}

/// Runs `eval compaction`; the shipped VQ is the reference of the reductions.
pub fn compaction(args: CompactionArgs) -> anyhow::Result<ExitCode> {
    let loaded = load(&args.common)?;
    let reference = subject("vq")?;
    let options = CompactionOptions {
        max_recordings: args.max_recordings,
        ..CompactionOptions::default()
    };
    let reports = pairalign_eval::compaction::compaction(
        &loaded.source,
        &loaded.subjects,
        Some(&reference),
        &options,
    )?;
    finish(
        &args.common,
        &pairalign_eval::compaction::outputs(&reports),
        loaded.problems,
    )
}

/// Runs `eval sweep`.
pub fn sweep(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let loaded = load(&args.common)?;
    let options = SweepOptions {
        sweeps: args.sweeps,
        step_ms: args.step_ms,
        max_shift_s: args.max_shift,
        seed: args.common.seed,
        join_s: args.join,
        ..SweepOptions::default()
    };
    let reports = pairalign_eval::sweep::sweep(&loaded.source, &loaded.subjects, &options)?;
    finish(
        &args.common,
        &pairalign_eval::sweep::outputs(&reports),
        loaded.problems,
    )
}

/// Runs `eval locate` (dense subjects are skipped: the engine indexes token strings).
pub fn locate(args: LocateArgs) -> anyhow::Result<ExitCode> {
    let loaded = load(&args.common)?;
    for s in loaded.subjects.iter().filter(|s| s.tokenizer().is_none()) {
        eprintln!(
            "locate: skipping {}: the engine indexes token strings",
            s.name
        );
    }
    let conditions = if args.conditions.is_empty() {
        vec![Condition {
            name: args.view_space.clone(),
            view_space: ViewSpace::parse(&args.view_space)?,
        }]
    } else {
        let names: Vec<&str> = if args.conditions.iter().any(|c| c == "all") {
            CONDITIONS.iter().map(|(n, _)| *n).collect()
        } else {
            args.conditions.iter().map(String::as_str).collect()
        };
        names
            .into_iter()
            .map(Condition::named)
            .collect::<Result<Vec<_>, _>>()?
    };
    let options = LocateOptions {
        queries: args.queries,
        conditions,
        seed: args.common.seed,
        top: args.top,
        k: args.k.as_deref().map(EditBudget::parse).transpose()?,
        min_recording_s: args.min_recording,
        join_s: args.join,
        on_window_boundaries: args.on_window_boundaries,
        ..LocateOptions::default()
    };
    let reports = pairalign_eval::locate::locate(&loaded.source, &loaded.subjects, &options)?;
    finish(
        &args.common,
        &pairalign_eval::locate::outputs(&reports),
        loaded.problems,
    )
}

/// Runs `eval content` (dense subjects are skipped: the clips are compared as token strings).
pub fn content(args: ContentArgs) -> anyhow::Result<ExitCode> {
    let (corpus, layout) = match (&args.speech_commands, &args.corpus) {
        (Some(folder), _) => (folder.clone(), LayoutArg::SpeechCommands),
        (None, Some(corpus)) => (corpus.clone(), args.layout),
        (None, None) => anyhow::bail!("give --speech-commands DIR or --corpus PATH"),
    };
    let is_manifest = match layout {
        LayoutArg::Manifest => true,
        LayoutArg::Auto => corpus.is_file() && corpus.extension().is_some_and(|e| e == "jsonl"),
        _ => false,
    };
    let split = match args.voices {
        _ if !is_manifest => None,
        VoicesArg::Heldout => Some(SplitArg::Heldout),
        VoicesArg::Train => Some(SplitArg::Train),
        VoicesArg::All => None,
    };
    let name = match corpus.file_name().and_then(|n| n.to_str()) {
        Some("manifest.jsonl") => corpus.parent().and_then(|p| p.file_name()),
        _ => corpus.file_name(),
    }
    .map_or_else(
        || corpus.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let name = match (is_manifest, args.voices) {
        (true, VoicesArg::Heldout) => format!("{name} held-out"),
        (true, VoicesArg::Train) => format!("{name} train"),
        _ => name,
    };
    let common = CommonArgs {
        corpus,
        layout,
        split,
        tokenizers: args.tokenizers,
        seed: 0,
        json: args.json,
        out: args.out,
    };
    let loaded = load(&common)?;
    for s in loaded.subjects.iter().filter(|s| s.tokenizer().is_none()) {
        eprintln!("content: skipping {}: it compares token strings", s.name);
    }
    let set = ContentSet::from_source(name, &loaded.source)?;
    eprintln!(
        "content: {} clips of {} groups in {} voices",
        set.clips.len(),
        set.groups(),
        set.voices()
    );
    let defaults = ContentOptions::default();
    let options = ContentOptions {
        silences: if args.silences.is_empty() {
            defaults.silences
        } else {
            dedup(&args.silences)
                .into_iter()
                .map(|s| match s {
                    SilenceArg::Keep => Silence::Keep,
                    SilenceArg::Trim => Silence::Trim,
                })
                .collect()
        },
        matches: if args.matches.is_empty() {
            defaults.matches
        } else {
            dedup(&args.matches)
                .into_iter()
                .map(|m| match m {
                    MatchArg::Global => Match::Global,
                    MatchArg::Infix => Match::Infix,
                })
                .collect()
        },
        max_clips: args.max_clips,
    };
    let reports = pairalign_eval::content::content(&set, &loaded.subjects, &options)?;
    finish(
        &common,
        &pairalign_eval::content::outputs(&reports),
        loaded.problems,
    )
}

/// `values` without repeats, in first-seen order.
fn dedup<T: PartialEq + Copy>(values: &[T]) -> Vec<T> {
    let mut out = Vec::new();
    for &v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}
