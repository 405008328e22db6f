//! `eval locate`: query by example inside long recordings, as `pairalign search` does it. Every
//! recording is tokenized window by window (as the indexer does) into an engine database in a
//! temporary folder; queries are 3 s excerpts cut from inside the recordings at random (from the
//! seed) and modified by a view drawn from the view library, then searched with
//! `pairalign_query::search_audio` (infix search, the clip edit budget unless given). A query
//! is found when the top hit is its source recording; the start-time error is the distance
//! between that hit's start and the excerpt's true start. Every tokenizer gets the same
//! queries. A dense subject has no index in the engine and is not run.
//!
//! Several conditions run on one index: every excerpt is cut once and modified once per
//! condition ([`Condition`]; [`CONDITIONS`] names the robustness matrix of issue 22), so the
//! conditions differ by the modification alone, and the archive is tokenized once.

use std::time::Instant;

use pairalign_datasets::views::{apply, ViewSpace};
use pairalign_datasets::{Audio, SAMPLE_RATE};
use pairalign_engine::{
    DatabaseConfig, DatabaseWriter, EditBudget, NewDoc, SearchOptions, TokenizerRecord,
};
use pairalign_models::{Tokenizer, WINDOWS_PER_CALL};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::metrics::Summary;
use crate::output::{label, num, table, Outputs};
use crate::plot;
use crate::source::{default_view_space, for_each_chunk, Source};
use crate::subject::{Subject, SubjectInfo};
use crate::windows::tokenize_recordings;
use crate::{Error, Result};

/// Recordings decoded at a time.
const RECORDINGS_PER_CHUNK: usize = 32;
/// Mixed into a query's seed for applying its view (the plain seed draws the view).
const APPLY_SEED: u64 = 0xA5A5_5A5A_0F0F_F0F0;
/// A start within this many ms of the truth counts as located (the issue 6 criterion).
pub const LOCATED_WITHIN_MS: u32 = 300;
/// Seconds of one tokenization window.
const WINDOW_S: f64 = pairalign_models::WINDOW_SAMPLES as f64 / SAMPLE_RATE as f64;

/// One way of modifying the excerpts: a name for the tables and the view library it draws from.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// What tables call it (`clean`, `white20`, or the view space's text).
    pub name: String,
    /// The views it draws from, one per excerpt.
    pub view_space: ViewSpace,
}

/// The named conditions of the robustness matrix (issue 22), as view-space text: every listed
/// kind applies (`p=1`). Codecs (MP3, Opus) are not views of the library and are measured by
/// `scripts/peers.sh` on encoded files.
pub const CONDITIONS: &[(&str, &str)] = &[
    ("clean", "gain=0:0"),
    ("gain-12", "gain=-12:-12"),
    ("gain-6", "gain=-6:-6"),
    ("gain+6", "gain=6:6"),
    ("gain+12", "gain=12:12"),
    ("white20", "noise=20:20,noise-kinds=white"),
    ("white10", "noise=10:10,noise-kinds=white"),
    ("white5", "noise=5:5,noise-kinds=white"),
    ("babble20", "noise=20:20,noise-kinds=babble"),
    ("babble10", "noise=10:10,noise-kinds=babble"),
    ("pink10", "noise=10:10,noise-kinds=pink"),
    ("speed0.95", "speed=0.95:0.95"),
    ("speed1.05", "speed=1.05:1.05"),
    ("pitch-2", "pitch=-2:-2"),
    ("pitch+2", "pitch=2:2"),
    ("telephone", "telephone"),
    ("8k", "8k"),
    ("reverb", "reverb=0.3:0.3"),
    (
        "chain",
        "noise=20:20,noise-kinds=white,speed=1.05:1.05,gain=-6:-6,p=1",
    ),
];

impl Condition {
    /// The condition called `name` in [`CONDITIONS`], or, when no condition has that name, the
    /// view space `name` itself (`speed=1.05,gain=3:3`).
    pub fn named(name: &str) -> Result<Condition> {
        let text = CONDITIONS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(name, |(_, text)| text);
        let view_space = ViewSpace::parse(text).map_err(|e| {
            Error::BadInput(format!(
                "condition {name:?} is neither a named condition ({}) nor a view space: {e}",
                CONDITIONS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        Ok(Condition {
            name: name.to_string(),
            view_space,
        })
    }
}

/// How locate runs.
#[derive(Clone, Debug)]
pub struct LocateOptions {
    /// Queries.
    pub queries: usize,
    /// Excerpt length, seconds.
    pub excerpt_s: f64,
    /// Queries come from recordings at least this long (seconds); all recordings are indexed.
    pub min_recording_s: f64,
    /// The conditions, each modifying every excerpt once (at least one).
    pub conditions: Vec<Condition>,
    /// Seed of the excerpts and views.
    pub seed: u64,
    /// Hits per query.
    pub top: usize,
    /// Edit budget (`None`: the clip default of `pairalign search`, 0.9 of the query).
    pub k: Option<EditBudget>,
    /// Join utterances of one speaker into recordings of at least this many seconds (0: files
    /// as they are).
    pub join_s: f64,
    /// Start every excerpt on a tokenization window boundary (a multiple of the window length),
    /// so that the query and the indexed windows cover the same audio: the difference from a
    /// run without it is what windowing costs a tokenizer.
    pub on_window_boundaries: bool,
}

impl Default for LocateOptions {
    fn default() -> Self {
        LocateOptions {
            queries: 200,
            excerpt_s: 3.0,
            min_recording_s: 6.0,
            conditions: vec![Condition {
                name: "views".into(),
                view_space: default_view_space(),
            }],
            seed: 0,
            top: 10,
            k: None,
            join_s: 0.0,
            on_window_boundaries: false,
        }
    }
}

/// Locate figures of one tokenizer.
#[derive(Clone, Debug, Serialize)]
pub struct LocateReport {
    /// Which subject.
    #[serde(flatten)]
    pub subject: SubjectInfo,
    /// `"locate"`.
    pub protocol: &'static str,
    /// The condition's name ([`Condition::name`]).
    pub condition: String,
    /// Recordings in the database.
    pub recordings: usize,
    /// Hours of audio in the database.
    pub hours: f64,
    /// Queries.
    pub queries: usize,
    /// Share of queries whose top hit is the source recording.
    pub found_first: f64,
    /// Share of queries with the source recording among the hits.
    pub found_in_top: f64,
    /// Share of queries whose top hit is the source and starts within 300 ms of the truth.
    pub located: f64,
    /// Median start-time error, ms, over the queries found first.
    pub start_error_ms_median: Option<f64>,
    /// 90th percentile of the same.
    pub start_error_ms_p90: Option<f64>,
    /// Median time of one search (tokenizing the query and the engine), ms.
    pub search_ms_median: f64,
    /// Wall time of this tokenizer: indexing and searching, and its share of decoding.
    pub wall_s: f64,
}

/// One planned query: an excerpt, modified once per condition.
struct Query {
    recording: usize,
    start_s: f64,
    /// The excerpt under each condition, in the order of [`LocateOptions::conditions`].
    samples: Vec<Vec<f32>>,
}

/// Runs locate for every token subject of `subjects` (dense ones are skipped) on the same
/// queries.
pub fn locate(
    source: &Source,
    subjects: &[Subject],
    options: &LocateOptions,
) -> Result<Vec<LocateReport>> {
    let tokenizers: Vec<(&Subject, &dyn Tokenizer)> = subjects
        .iter()
        .filter_map(|s| s.tokenizer().map(|t| (s, t)))
        .collect();
    if tokenizers.is_empty() {
        return Err(Error::BadInput(
            "locate searches token strings: give at least one tokenizer".into(),
        ));
    }
    if options.conditions.is_empty() {
        return Err(Error::BadInput(
            "locate needs at least one condition".into(),
        ));
    }
    let recordings = source.recordings(options.join_s, "locate")?;
    let min_s = options.min_recording_s.max(options.excerpt_s);
    let eligible: Vec<usize> = (0..recordings.len())
        .filter(|&r| recordings[r].duration_s >= min_s)
        .collect();
    if eligible.is_empty() {
        return Err(Error::BadInput(format!(
            "no recording is {min_s:.1} s long; join short utterances of one speaker with --join"
        )));
    }
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut plan: Vec<(usize, f64, u64)> = (0..options.queries)
        .map(|_| {
            let r = eligible[rng.gen_range(0..eligible.len())];
            let latest = (recordings[r].duration_s - options.excerpt_s).max(0.0);
            let mut start_s = rng.gen_range(0.0..=latest);
            if options.on_window_boundaries {
                start_s = (start_s / WINDOW_S).floor() * WINDOW_S;
            }
            (r, start_s, rng.gen())
        })
        .collect();
    plan.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));

    // One database per tokenizer; queries cut while their recording is decoded.
    let mut dbs = Vec::with_capacity(tokenizers.len());
    for (_, t) in &tokenizers {
        let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let mut db = DatabaseWriter::create(
            dir.path().join("db"),
            DatabaseConfig::new(t.vocab_size(), DatabaseConfig::default().q),
        )?;
        db.set_tokenizer(TokenizerRecord {
            id: t.id().to_string(),
            weights_hash: t.weights_hash().to_string(),
        })?;
        dbs.push((db, dir));
    }
    let rate = f64::from(SAMPLE_RATE);
    let window = pairalign_models::WINDOW_SAMPLES;
    let mut queries: Vec<Query> = Vec::with_capacity(plan.len());
    let mut seconds = 0.0;
    // Seconds spent indexing, per tokenizer; decoding and cutting queries shared out evenly.
    let mut index_s = vec![0.0; tokenizers.len()];
    let mut shared_s = 0.0;
    let mut chunk_started = Instant::now();
    for_each_chunk(&recordings, RECORDINGS_PER_CHUNK, |first, audio| {
        let refs: Vec<&[f32]> = audio.iter().map(Vec::as_slice).collect();
        seconds += refs.iter().map(|r| r.len()).sum::<usize>() as f64 / rate;
        shared_s += chunk_started.elapsed().as_secs_f64();
        for (((_, t), (db, _)), spent) in tokenizers.iter().zip(&mut dbs).zip(&mut index_s) {
            let indexing = Instant::now();
            let strings = tokenize_recordings(*t, &refs, window, WINDOWS_PER_CALL)?;
            let docs: Vec<NewDoc> = strings
                .into_iter()
                .enumerate()
                .map(|(k, ts)| {
                    let ms = refs[k].len() as u64 * 1000 / u64::from(SAMPLE_RATE);
                    let last = ts.times_ms.last().copied().unwrap_or(0);
                    NewDoc {
                        id: recordings[first + k].id.clone(),
                        tokens: ts.tokens,
                        times_ms: Some(ts.times_ms),
                        duration_ms: Some(u32::try_from(ms).unwrap_or(u32::MAX).max(last)),
                    }
                })
                .collect();
            db.add_tokens(&docs)?;
            *spent += indexing.elapsed().as_secs_f64();
        }
        let cutting = Instant::now();
        for &(r, start_s, view_seed) in plan
            .iter()
            .filter(|(r, _, _)| (first..first + refs.len()).contains(r))
        {
            let samples = refs[r - first];
            let start = ((start_s * rate) as usize).min(samples.len());
            let end = (start + (options.excerpt_s * rate) as usize).min(samples.len());
            let excerpt = Audio::new(samples[start..end].to_vec(), SAMPLE_RATE);
            let samples = options
                .conditions
                .iter()
                .map(|condition| {
                    let mut view_rng = StdRng::seed_from_u64(view_seed);
                    let view = condition.view_space.draw(&mut view_rng);
                    Ok(apply(&excerpt, &view, view_seed ^ APPLY_SEED, &[])?.samples)
                })
                .collect::<Result<Vec<_>>>()?;
            queries.push(Query {
                recording: r,
                start_s,
                samples,
            });
        }
        shared_s += cutting.elapsed().as_secs_f64();
        chunk_started = Instant::now();
        Ok(())
    })?;
    let search = SearchOptions {
        top: options.top.max(1),
        k: Some(options.k.unwrap_or(pairalign_query::CLIP_EDIT_BUDGET)),
        ..pairalign_query::clip_search_options()
    };
    let shared_s = shared_s / tokenizers.len() as f64;
    let mut reports = Vec::with_capacity(tokenizers.len() * options.conditions.len());
    for (((subject, t), (db, _dir)), indexing_s) in tokenizers.iter().zip(&dbs).zip(index_s) {
        for (c, condition) in options.conditions.iter().enumerate() {
            let searching = Instant::now();
            let (mut first, mut in_top, mut located) = (0usize, 0usize, 0usize);
            let mut errors = Vec::new();
            let mut took = Vec::with_capacity(queries.len());
            for q in &queries {
                let outcome = pairalign_query::search_audio(db, *t, &q.samples[c], &search)?;
                took.push(outcome.took_ms);
                let source_id = &recordings[q.recording].id;
                if outcome.hits.iter().any(|h| &h.id == source_id) {
                    in_top += 1;
                }
                if let Some(hit) = outcome.hits.first().filter(|h| &h.id == source_id) {
                    first += 1;
                    let error = (f64::from(hit.start_ms) - q.start_s * 1000.0).abs();
                    if error <= f64::from(LOCATED_WITHIN_MS) {
                        located += 1;
                    }
                    errors.push(error);
                }
            }
            let n = queries.len().max(1) as f64;
            let e = Summary::of(&errors);
            // Indexing and the shared work are counted with the first condition.
            let before = if c == 0 { shared_s + indexing_s } else { 0.0 };
            reports.push(LocateReport {
                subject: subject.info(),
                protocol: "locate",
                condition: condition.name.clone(),
                recordings: recordings.len(),
                hours: seconds / 3600.0,
                queries: queries.len(),
                found_first: first as f64 / n,
                found_in_top: in_top as f64 / n,
                located: located as f64 / n,
                start_error_ms_median: (!errors.is_empty()).then_some(e.median),
                start_error_ms_p90: (!errors.is_empty()).then_some(e.p90),
                search_ms_median: Summary::of(&took).median,
                wall_s: before + searching.elapsed().as_secs_f64(),
            });
        }
    }
    Ok(reports)
}

/// The markdown table and a bar chart of the shares found and located.
pub fn outputs(reports: &[LocateReport]) -> Outputs {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                label(&r.subject),
                r.condition.clone(),
                r.recordings.to_string(),
                format!("{:.2}", r.hours),
                r.queries.to_string(),
                format!("**{:.3}**", r.found_first),
                format!("{:.3}", r.found_in_top),
                format!("{:.3}", r.located),
                num(r.start_error_ms_median, 0),
                num(r.start_error_ms_p90, 0),
                format!("{:.1}", r.search_ms_median),
            ]
        })
        .collect();
    let names: Vec<String> = reports
        .iter()
        .map(|r| format!("{} {}", label(&r.subject), r.condition))
        .collect();
    let share = |name: &str, f: fn(&LocateReport) -> f64| {
        (
            name.to_string(),
            reports.iter().map(|r| Some(f(r))).collect(),
        )
    };
    let chart = plot::bars(
        &format!(
            "Locate: {} modified excerpts in {:.2} h of recordings",
            reports.first().map_or(0, |r| r.queries),
            reports.first().map_or(0.0, |r| r.hours)
        ),
        &names,
        &[
            share("source first", |r| r.found_first),
            share("source in top", |r| r.found_in_top),
            share("first, within 300 ms", |r| r.located),
        ],
    );
    Outputs {
        json: Outputs::json_of(reports),
        markdown: table(
            &[
                "tokenizer",
                "condition",
                "recordings",
                "hours",
                "queries",
                "source first",
                "source in top",
                "first and within 300 ms",
                "start error median (ms)",
                "start error p90 (ms)",
                "search ms (median)",
            ],
            &rows,
        ),
        plots: vec![("locate.svg".into(), chart)],
    }
}
