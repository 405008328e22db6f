//! The protocols tell good tokenizers from bad and measure what they claim, checked with
//! deterministic toy tokenizers whose answers are known by construction: an oracle (a clip's own
//! id as its tokens) scores perfectly, a tokenizer that says the same for every clip scores
//! chance; compaction counts bytes as the engine stores them; the sweep of a tokenizer that
//! reads out the position in the recording gives the edit distance a shift must give; locate
//! finds excerpts of such recordings within one token of their start; content never offers a
//! clip of the query's own voice. Data are tiny caches and WAV files written by the tests.

#![allow(clippy::unwrap_used)] // Tests unwrap: a failure is the test failing.

use std::path::Path;

use pairalign_datasets::cache::{CacheWriter, Dtype};
use pairalign_datasets::{Audio, SAMPLE_RATE};
use pairalign_eval::{
    compaction, consistency, content, locate, retrieval, sweep, CompactionOptions,
    ConsistencyOptions, ContentOptions, ContentSet, Embedder, Error, Layout, LocateOptions, Match,
    Silence, Source, Subject, SweepOptions, ViewOptions,
};
use pairalign_models::{TokenString, Tokenizer};

const N_MELS: usize = 4;

/// A cache of `clips` clips whose every mel value is the clip number (both views alike, so the
/// oracle can read the clip back), `views` views each.
fn cache(path: &Path, clips: usize, views: usize) -> Source {
    let mut writer = CacheWriter::create(path, N_MELS, views, Dtype::F32).unwrap();
    for c in 0..clips {
        let frames = 10 + c % 3;
        let mel = vec![c as f32; frames * N_MELS];
        let refs: Vec<&[f32]> = (0..views).map(|_| mel.as_slice()).collect();
        writer.add_clip(&format!("c{c}"), &refs).unwrap();
    }
    writer.finish().unwrap();
    Source::open(path, Layout::Auto, None).unwrap().0
}

/// A tokenizer given by a function of a clip's cached log-mel.
struct FnTokenizer(&'static str, fn(&[f32]) -> Vec<u16>);

impl Tokenizer for FnTokenizer {
    fn id(&self) -> &str {
        self.0
    }
    fn weights_hash(&self) -> &str {
        "-"
    }
    fn vocab_size(&self) -> u32 {
        16
    }
    fn tokenize(&self, _: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
        unreachable!("the protocol reads cached log-mels")
    }
    fn tokenize_mels(&self, mels: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
        Ok(mels
            .iter()
            .map(|m| {
                let tokens = (self.1)(m);
                TokenString {
                    times_ms: (0..tokens.len() as u32).map(|i| 20 * i).collect(),
                    tokens,
                }
            })
            .collect())
    }
}

/// Tokens that name the clip: its number in base 16, one token per digit.
const ORACLE: FnTokenizer = FnTokenizer("oracle", |m| {
    let c = m[0] as u32;
    (0..3).map(|d| ((c >> (4 * d)) & 15) as u16).collect()
});
/// The same string for every clip.
const CONSTANT: FnTokenizer = FnTokenizer("constant", |_| vec![1, 2, 3]);

fn subject(t: &'static FnTokenizer) -> Subject {
    Subject::tokens(t.0, Box::new(FnTokenizer(t.0, t.1)))
}

/// A dense embedding that puts clip `c` at angle `c` degrees: the nearest vector is its own.
struct Angle;

impl Embedder for Angle {
    fn id(&self) -> String {
        "dense:angle".into()
    }
    fn weights_hash(&self) -> &str {
        "-"
    }
    fn dim(&self) -> usize {
        2
    }
    fn embed_mels(&self, mels: &[&[f32]]) -> pairalign_models::Result<Vec<Vec<f32>>> {
        Ok(mels
            .iter()
            .map(|m| {
                let a = m[0].to_radians();
                vec![a.cos(), a.sin()]
            })
            .collect())
    }
}

#[test]
fn an_oracle_scores_perfectly_and_a_constant_tokenizer_scores_chance() {
    let dir = tempfile::tempdir().unwrap();
    let n = 100;
    let source = cache(&dir.path().join("c.feat"), n, 2);
    let views = source.paired_views(&ViewOptions::default()).unwrap();
    let oracle = retrieval(&subject(&ORACLE), &views).unwrap();
    assert_eq!(oracle.clips, n);
    assert_eq!(
        (oracle.p_at_1, oracle.mrr, oracle.map, oracle.recall_at_10),
        (1.0, 1.0, 1.0, 1.0)
    );
    assert_eq!(oracle.score, "ned");
    let constant = retrieval(&subject(&CONSTANT), &views).unwrap();
    assert!((constant.p_at_1 - 1.0 / n as f64).abs() < 1e-12);
    assert!((constant.recall_at_10 - 10.0 / n as f64).abs() < 1e-12);
    let harmonic: f64 = (1..=n).map(|r| 1.0 / r as f64).sum::<f64>() / n as f64;
    assert!((constant.mrr - harmonic).abs() < 1e-12);
    assert!((constant.map - constant.mrr).abs() < 1e-12);
    // 3 tokens per clip of 10-12 frames (0.10-0.12 s), in both views.
    let seconds: f64 = (0..n).map(|c| (10 + c % 3) as f64 * 0.01).sum();
    assert!((constant.tokens_per_s.unwrap() - 3.0 * n as f64 / seconds).abs() < 1e-9);
    // The dense route ranks by cosine.
    let dense = retrieval(&Subject::dense("angle", Box::new(Angle)), &views).unwrap();
    assert_eq!(
        (dense.score, dense.p_at_1, dense.tokens_per_s),
        ("cosine", 1.0, None)
    );
    // A limit takes the first clips only.
    let some = source
        .paired_views(&ViewOptions {
            max_clips: Some(7),
            ..ViewOptions::default()
        })
        .unwrap();
    assert_eq!(retrieval(&subject(&ORACLE), &some).unwrap().clips, 7);
}

/// Reads a clip number from the integer part of a log-mel and a "grid phase" from the
/// fractional part: at phase 0 (or when `at_phase_zero`, whatever the audio's phase) the
/// oracle's string, at any other phase a scrambled one.
fn phased_string(m: &[f32], at_phase_zero: bool) -> Vec<u16> {
    let c = m[0].floor() as u32;
    let c = if at_phase_zero || m[0].fract() == 0.0 {
        c
    } else {
        (c * 37 + 1000) % 4096 // never another clip's number
    };
    (0..3).map(|d| ((c >> (4 * d)) & 15) as u16).collect()
}

/// Strings of the audio's phase: scrambled off phase 0.
const PLAIN_PHASED: FnTokenizer = FnTokenizer("plain", |m| phased_string(m, false));
/// The same clip read at phase 0 whatever the audio's.
const AT_PHASE_ZERO: FnTokenizer = FnTokenizer("at-zero", |m| phased_string(m, true));

/// `.0`'s strings, with `.1`'s as a second query variant.
struct WithVariant(FnTokenizer, FnTokenizer);

impl Tokenizer for WithVariant {
    fn id(&self) -> &str {
        self.0.id()
    }
    fn weights_hash(&self) -> &str {
        self.0.weights_hash()
    }
    fn vocab_size(&self) -> u32 {
        self.0.vocab_size()
    }
    fn tokenize(&self, batch: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
        self.0.tokenize(batch)
    }
    fn tokenize_mels(&self, mels: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
        self.0.tokenize_mels(mels)
    }
    fn tokenize_mels_variants(
        &self,
        mels: &[&[f32]],
    ) -> pairalign_models::Result<Vec<Vec<TokenString>>> {
        Ok(vec![
            self.0.tokenize_mels(mels)?,
            self.1.tokenize_mels(mels)?,
        ])
    }
}

#[test]
fn retrieval_ranks_a_query_by_its_best_variant() {
    let dir = tempfile::tempdir().unwrap();
    let n = 50;
    let path = dir.path().join("c.feat");
    let mut writer = CacheWriter::create(&path, N_MELS, 2, Dtype::F32).unwrap();
    for c in 0..n {
        // View 1 is "off the grid" by a quarter.
        let v0 = vec![c as f32; 10 * N_MELS];
        let v1 = vec![c as f32 + 0.25; 10 * N_MELS];
        writer.add_clip(&format!("c{c}"), &[&v0, &v1]).unwrap();
    }
    writer.finish().unwrap();
    let views = Source::open(&path, Layout::Auto, None)
        .unwrap()
        .0
        .paired_views(&ViewOptions::default())
        .unwrap();
    // The first variant alone (the database's phase) misses every clip; the second finds all.
    let plain = retrieval(&subject(&PLAIN_PHASED), &views).unwrap();
    assert!(plain.p_at_1 < 0.1, "{}", plain.p_at_1);
    let both = WithVariant(
        FnTokenizer(PLAIN_PHASED.0, PLAIN_PHASED.1),
        FnTokenizer(AT_PHASE_ZERO.0, AT_PHASE_ZERO.1),
    );
    let report = retrieval(&Subject::tokens("phased", Box::new(both)), &views).unwrap();
    assert_eq!(report.p_at_1, 1.0);
    // Consistency and the token rate stay those of the plain strings.
    assert!((report.tokens_per_s.unwrap() - plain.tokens_per_s.unwrap()).abs() < 1e-12);
}

#[test]
fn consistency_separates_the_oracle_and_not_the_constant() {
    let dir = tempfile::tempdir().unwrap();
    let n = 40;
    let source = cache(&dir.path().join("c.feat"), n, 2);
    let views = source.paired_views(&ViewOptions::default()).unwrap();
    let options = ConsistencyOptions {
        unrelated_per_clip: 5,
        seed: 3,
    };
    let oracle = consistency(&subject(&ORACLE), &views, &options).unwrap();
    let r = &oracle.report;
    assert_eq!((r.clips, r.unrelated_pairs), (n, n * 5));
    assert_eq!((r.ned_views, r.ned_views_median), (Some(0.0), Some(0.0)));
    assert!(r.ned_unrelated.unwrap() > 0.3);
    assert_eq!(r.separation, 1.0);
    assert_eq!(r.length_diff_views, Some(0.0));
    assert_eq!(r.cos_views, None);
    assert_eq!(oracle.views.len(), n);
    // Reproducible from the seed.
    let again = consistency(&subject(&ORACLE), &views, &options).unwrap();
    assert_eq!(again.unrelated, oracle.unrelated);
    let constant = consistency(&subject(&CONSTANT), &views, &options).unwrap();
    assert_eq!(constant.report.ned_unrelated, Some(0.0));
    assert_eq!(constant.report.separation, 0.5);
    assert!((constant.report.perplexity.unwrap() - 3.0).abs() < 1e-9);
    assert_eq!(constant.report.vocab_used, Some(3.0 / 16.0));
    let dense = consistency(&Subject::dense("angle", Box::new(Angle)), &views, &options).unwrap();
    assert_eq!(dense.report.cos_views, Some(1.0));
    assert_eq!(dense.report.ned_views, None);
    assert_eq!(dense.report.tokens_per_s, None);
}

#[test]
fn caches_the_protocols_cannot_run_on_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let one_view = cache(&dir.path().join("one.feat"), 10, 1);
    let err = one_view.paired_views(&ViewOptions::default()).unwrap_err();
    assert!(matches!(err, Error::BadInput(_)), "{err}");
    assert!(err.to_string().contains("needs 2"), "{err}");
    let one_clip = cache(&dir.path().join("two.feat"), 1, 2);
    let err = one_clip.paired_views(&ViewOptions::default()).unwrap_err();
    assert!(err.to_string().contains("at least 2"), "{err}");
    // Sweep and locate need recordings.
    let err = sweep(&one_clip, &[subject(&ORACLE)], &SweepOptions::default()).unwrap_err();
    assert!(err.to_string().contains("not a feature cache"), "{err}");
    let err = locate(&one_clip, &[subject(&ORACLE)], &LocateOptions::default()).unwrap_err();
    assert!(err.to_string().contains("not a feature cache"), "{err}");
}

/// One token per 100 ms of audio: the value its first sample encodes (`round(10^4 * x)`),
/// timed at its start. Recordings written by [`write_positions`] make it read out where in
/// which recording a window is.
struct Positions {
    id: &'static str,
    /// Tokens per 100 ms chunk (a second tokenizer with twice the tokens).
    repeat: usize,
}

const CHUNK: usize = SAMPLE_RATE as usize / 10;

impl Tokenizer for Positions {
    fn id(&self) -> &str {
        self.id
    }
    fn weights_hash(&self) -> &str {
        "-"
    }
    fn vocab_size(&self) -> u32 {
        4096
    }
    fn tokenize(&self, batch: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
        Ok(batch
            .iter()
            .map(|w| {
                let mut ts = TokenString::default();
                for (i, chunk) in w.chunks(CHUNK).enumerate() {
                    for _ in 0..self.repeat {
                        ts.tokens.push((chunk[0] * 1e4).round() as u16);
                        ts.times_ms.push(100 * i as u32);
                    }
                }
                ts
            })
            .collect())
    }
    fn tokenize_mels(&self, _: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
        unreachable!("these protocols read audio")
    }
}

/// Writes `dir/r{r}.wav` of `seconds` for each `r < recordings`: each 100 ms chunk holds the
/// constant `(1000 r + chunk index + 1) / 10^4`, a value no other chunk of any recording has.
fn write_positions(dir: &Path, recordings: usize, seconds: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for r in 0..recordings {
        let samples: Vec<f32> = (0..seconds * SAMPLE_RATE as usize)
            .map(|i| (1000 * r + i / CHUNK + 1) as f32 / 1e4)
            .collect();
        pairalign_datasets::synth::write_wav_16k(
            &dir.join(format!("r{r}.wav")),
            &Audio::new(samples, SAMPLE_RATE),
        )
        .unwrap();
    }
}

fn positions(id: &'static str, repeat: usize) -> Subject {
    Subject::tokens(id, Box::new(Positions { id, repeat }))
}

/// Two 8 s position recordings (in a folder that lives as long as the first value) and a
/// sweep of shifts up to 1 s over them.
fn sweep_setup() -> (tempfile::TempDir, Source, SweepOptions) {
    let dir = tempfile::tempdir().unwrap();
    write_positions(&dir.path().join("audio"), 2, 8);
    let (source, _) = Source::open(&dir.path().join("audio"), Layout::Auto, None).unwrap();
    let options = SweepOptions {
        max_shift_s: 1.0,
        seed: 9,
        ..SweepOptions::default()
    };
    (dir, source, options)
}

/// [`Positions`] (one token a chunk) on a two-phase "grid": a window's string is marked (its
/// tokens' top bit set) when the phase key, the parity of its first position plus the
/// variant, is odd. The database string (variant 0) of a window shifted by an odd number of
/// chunks is marked unlike the unshifted one's; its variant 1 is marked like it, as a query
/// variant on the right grid phase reads the database's grid again.
struct TwoPhase;

impl TwoPhase {
    fn strings(&self, batch: &[&[f32]], variant: u16) -> Vec<TokenString> {
        let plain = Positions {
            id: "two-phase",
            repeat: 1,
        }
        .tokenize(batch)
        .unwrap();
        plain
            .into_iter()
            .map(|mut ts| {
                let key = ts.tokens.first().map_or(0, |&t| (t + variant) % 2);
                for t in &mut ts.tokens {
                    *t |= key << 11;
                }
                ts
            })
            .collect()
    }
}

impl Tokenizer for TwoPhase {
    fn id(&self) -> &str {
        "two-phase"
    }
    fn weights_hash(&self) -> &str {
        "-"
    }
    fn vocab_size(&self) -> u32 {
        4096
    }
    fn tokenize(&self, batch: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
        Ok(self.strings(batch, 0))
    }
    fn tokenize_mels(&self, _: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
        unreachable!("these protocols read audio")
    }
    fn tokenize_variants(
        &self,
        batch: &[&[f32]],
    ) -> pairalign_models::Result<Vec<Vec<TokenString>>> {
        Ok(vec![self.strings(batch, 0), self.strings(batch, 1)])
    }
}

#[test]
fn the_sweep_reads_a_shifted_window_by_its_closest_variant() {
    let (_dir, source, options) = sweep_setup();
    let reports = sweep(
        &source,
        &[
            Subject::tokens("two-phase", Box::new(TwoPhase)),
            positions("single", 1),
        ],
        &options,
    )
    .unwrap();
    let (phased, plain) = (&reports[0], &reports[1]);
    // Every shift finds the variant on the database's phase: the plain trajectory, 2 edits a
    // step; the database string alone would differ everywhere at odd shifts.
    assert_eq!(phased.edit_distance, plain.edit_distance);
    assert_eq!(phased.distance, plain.distance);
    assert_eq!(phased.tokens, plain.tokens);
    assert_eq!(phased.length_cv, Some(0.0));
    let alone = TwoPhase
        .tokenize(&[&[0.0001; 48_000], &[0.0002; 48_000]])
        .unwrap();
    assert_ne!(alone[0].tokens[0] >> 11, alone[1].tokens[0] >> 11);
}

#[test]
fn compaction_counts_tokens_and_engine_bytes_and_the_reduction_against_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    write_positions(&dir.path().join("audio"), 3, 7);
    let (source, problems) = Source::open(&dir.path().join("audio"), Layout::Auto, None).unwrap();
    assert!(problems.is_empty());
    let reference = positions("double", 2);
    let reports = compaction(
        &source,
        &[
            positions("single", 1),
            Subject::dense("angle", Box::new(Angle)),
        ],
        Some(&reference),
        &CompactionOptions::default(),
    )
    .unwrap();
    assert_eq!(reports.len(), 3, "the reference is measured as its own row");
    let (single, dense, double) = (&reports[0], &reports[1], &reports[2]);
    assert!(double.reference && !single.reference);
    assert_eq!(single.recordings, 3);
    assert!((single.hours - 21.0 / 3600.0).abs() < 1e-9);
    // 10 tokens a second; 2 bytes a token; the times packed (segment format v2: below v1's 4
    // bytes a token).
    assert_eq!(single.tokens, Some(210));
    assert!((single.tokens_per_s.unwrap() - 10.0).abs() < 1e-9);
    assert!((single.tokens_per_hour.unwrap() - 36_000.0).abs() < 1e-6);
    assert!((single.token_bytes_per_hour.unwrap() - 72_000.0).abs() < 1e-6);
    let time_bytes = single.time_bytes_per_hour.unwrap();
    assert!(time_bytes > 0.0 && time_bytes < 144_000.0, "{time_bytes}");
    assert!(single.bytes_per_hour > 72_000.0 + time_bytes);
    assert_eq!(double.tokens, Some(420));
    assert!((single.archive_reduction_vs_vq.unwrap() - 50.0).abs() < 1e-9);
    assert_eq!(double.archive_reduction_vs_vq, Some(0.0));
    assert!(single.bytes_reduction_vs_vq.unwrap() > 0.0);
    // The dense subject stores one 2-d f32 vector per started 3 s window: 3 per recording.
    assert_eq!(dense.tokens, None);
    assert_eq!(dense.bytes, 3 * 3 * 2 * 4);
    // A reference among the subjects is not measured twice.
    let reports = compaction(
        &source,
        &[positions("double", 2)],
        Some(&reference),
        &CompactionOptions::default(),
    )
    .unwrap();
    assert_eq!(reports.len(), 1);
    assert!(reports[0].reference);
}

#[test]
fn a_shifted_window_costs_two_edits_a_step_until_nothing_is_shared() {
    let (_dir, source, options) = sweep_setup();
    let reports = sweep(
        &source,
        &[
            positions("single", 1),
            Subject::dense("angle", Box::new(Angle)),
        ],
        &options,
    )
    .unwrap();
    let r = &reports[0];
    assert_eq!(r.sweeps, 2);
    assert_eq!(r.shift_ms, (0..=10).map(|k| 100 * k).collect::<Vec<u32>>());
    assert!((r.overlap[3] - 0.9).abs() < 1e-12);
    // Windows start anywhere, so the first chunk of a shifted window may straddle two
    // positions; its token still reads a position: a shift of k steps deletes k tokens at the
    // front and inserts k at the back.
    for (k, &d) in r.edit_distance.as_ref().unwrap().iter().enumerate() {
        assert_eq!(d, 2.0 * k as f64, "shift {k}");
        assert!((r.distance[k] - 2.0 * k as f64 / 30.0).abs() < 1e-12);
    }
    assert_eq!(r.distance_at_500ms, Some(10.0 / 30.0));
    assert!(r.tokens.as_ref().unwrap().iter().all(|&t| t == 30.0));
    assert_eq!(r.length_cv, Some(0.0));
    assert!((r.tokens_per_s.unwrap() - 10.0).abs() < 1e-9);
    assert_eq!(reports[1].score, "cosine");
    assert_eq!(reports[1].tokens, None);
    // Too long a sweep for the recordings is an error that says what to do.
    let err = sweep(
        &source,
        &[positions("single", 1)],
        &SweepOptions {
            max_shift_s: 6.0,
            ..SweepOptions::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("--join"), "{err}");
}

#[test]
fn excerpts_are_found_in_their_recording_within_one_token_of_their_start() {
    let dir = tempfile::tempdir().unwrap();
    write_positions(&dir.path().join("audio"), 3, 12);
    let (source, _) = Source::open(&dir.path().join("audio"), Layout::Auto, None).unwrap();
    let options = LocateOptions {
        queries: 12,
        conditions: vec![pairalign_eval::Condition::named("gain=0").unwrap()],
        seed: 4,
        ..LocateOptions::default()
    };
    let reports = locate(
        &source,
        &[
            positions("single", 1),
            Subject::dense("angle", Box::new(Angle)),
        ],
        &options,
    )
    .unwrap();
    assert_eq!(reports.len(), 1, "the dense subject is not run");
    let r = &reports[0];
    assert_eq!((r.recordings, r.queries), (3, 12));
    assert_eq!((r.found_first, r.found_in_top, r.located), (1.0, 1.0, 1.0));
    // The query's first token reads the position its first sample is in: the match starts at
    // that chunk, up to 100 ms before the true start.
    assert!(r.start_error_ms_p90.unwrap() < 100.0, "{r:?}");
    let err = locate(
        &source,
        &[Subject::dense("angle", Box::new(Angle))],
        &options,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("give at least one tokenizer"),
        "{err}"
    );
}

/// Several conditions share one index and one set of excerpts: a report per condition, in
/// order, each with its name; a condition that breaks the positions the test tokenizer reads
/// (the sample values are the positions: -6 dB halves them) scores lower than the clean one on the
/// same excerpts. Unknown names are refused with the list of known ones.
#[test]
fn conditions_run_on_the_same_excerpts_and_one_index() {
    let dir = tempfile::tempdir().unwrap();
    write_positions(&dir.path().join("audio"), 3, 12);
    let (source, _) = Source::open(&dir.path().join("audio"), Layout::Auto, None).unwrap();
    let conditions = vec![
        pairalign_eval::Condition::named("clean").unwrap(),
        pairalign_eval::Condition::named("gain=-6:-6").unwrap(),
    ];
    let options = LocateOptions {
        queries: 12,
        conditions,
        seed: 4,
        ..LocateOptions::default()
    };
    let reports = locate(&source, &[positions("single", 1)], &options).unwrap();
    let names: Vec<&str> = reports.iter().map(|r| r.condition.as_str()).collect();
    assert_eq!(names, ["clean", "gain=-6:-6"]);
    assert_eq!(reports[0].located, 1.0);
    assert!(reports[1].located < reports[0].located, "{reports:?}");
    assert!(reports.iter().all(|r| r.queries == 12 && r.recordings == 3));
    let err = pairalign_eval::Condition::named("loud")
        .unwrap_err()
        .to_string();
    assert!(err.contains("white20") && err.contains("chain"), "{err}");
    for (name, _) in pairalign_eval::CONDITIONS {
        pairalign_eval::Condition::named(name).unwrap();
    }
}

#[test]
fn a_corpus_is_rendered_into_two_views_per_clip() {
    let dir = tempfile::tempdir().unwrap();
    write_positions(&dir.path().join("audio"), 2, 7);
    let (source, _) = Source::open(&dir.path().join("audio"), Layout::Auto, None).unwrap();
    // 7 s recordings give two 3 s clips each; the tail is dropped.
    let views = source.paired_views(&ViewOptions::default()).unwrap();
    assert_eq!(views.clips(), 4);
    assert!(views.built().is_some());
    // Four clips of 3 s, each view played at 0.9 to 1.1 times the speed.
    assert!(
        (10.5..13.5).contains(&views.seconds(0)),
        "{}",
        views.seconds(0)
    );
    // Sweep and locate joined over a speaker (the folder layout's speaker).
    let recordings = source.recordings(100.0, "sweep").unwrap();
    assert!(recordings.len() <= 2);
    assert_eq!(
        recordings.iter().map(|r| r.parts.len()).sum::<usize>(),
        2,
        "every file in exactly one recording"
    );
}

#[test]
fn content_never_offers_a_clip_of_the_query_s_own_voice() {
    // Speech Commands layout: voice a says x and y identically; voice b says x like a and y
    // otherwise. `Positions` reads each 100 ms chunk's level as a token.
    let dir = tempfile::tempdir().unwrap();
    for (file, level) in [
        ("x/a_nohash_0.wav", 0.01),
        ("y/a_nohash_0.wav", 0.01),
        ("x/b_nohash_0.wav", 0.01),
        ("y/b_nohash_0.wav", 0.05),
    ] {
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let audio = Audio::new(vec![level; 3 * CHUNK], SAMPLE_RATE);
        pairalign_datasets::synth::write_wav_16k(&path, &audio).unwrap();
    }
    let (source, problems) = Source::open(dir.path(), Layout::SpeechCommands, None).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let set = ContentSet::from_source("tiny", &source).unwrap();
    assert_eq!((set.clips.len(), set.groups(), set.voices()), (4, 2, 2));
    let options = ContentOptions {
        silences: vec![Silence::Keep, Silence::Trim],
        matches: vec![Match::Global, Match::Infix],
        max_clips: None,
    };
    let reports = content(&set, &[positions("positions", 1)], &options).unwrap();
    let modes: Vec<(&str, &str)> = reports.iter().map(|r| (r.silence, r.matching)).collect();
    assert_eq!(
        modes,
        [
            ("keep", "global"),
            ("keep", "infix"),
            ("trim", "global"),
            ("trim", "infix")
        ]
    );
    for r in &reports {
        // x by a: x by b first (identical; y by a, as identical, is no candidate): 1.
        // y by a: x by b, then y by b: 0, rank 2. x by b and y by b: a's two clips tie: 1/2,
        // ranks 1 or 2. Had own-voice clips been candidates, x by a would tie with y by a.
        let m = r.metrics;
        assert_eq!((m.queries, m.unanswerable, m.candidates), (4, 0, 2.0));
        assert!((m.p_at_1 - 0.5).abs() < 1e-12, "{r:?}");
        assert!((m.mrr - 0.75).abs() < 1e-12, "{r:?}");
        assert!((m.p_at_10 - 0.1).abs() < 1e-12, "{r:?}");
        assert_eq!(m.chance_p_at_1, 0.5);
        assert_eq!(
            (r.tokens_per_clip, r.clips, r.set.as_str()),
            (3.0, 4, "tiny")
        );
        assert!(
            (r.seconds_per_clip - 0.3).abs() < 1e-9,
            "a level clip is not trimmed"
        );
    }
    // Strings are needed, and the clips of one voice alone cannot be compared across voices.
    let dense = Subject::dense("angle", Box::new(Angle));
    assert!(content(&set, &[dense], &options).is_err());
    let one_voice = ContentOptions {
        max_clips: Some(1),
        ..options
    };
    let err = content(&set, &[positions("positions", 1)], &one_voice).unwrap_err();
    assert!(err.to_string().contains("at least 2 voices"), "{err}");
}
