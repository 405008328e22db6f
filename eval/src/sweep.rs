//! `eval sweep`: the paper's continuous-sweep probe (shared/DESIGN.md section 1). In a long
//! recording, a window of 3 s slides in steps of 100 ms; at each shift the window's string is
//! compared with the unshifted window's (edit distance and NED) and its tokens are counted. A
//! tokenizer with good length control keeps the count steady; a good trajectory grows with
//! the shift smoothly, in proportion to the content that changed, instead of jumping at the
//! first step. A tokenizer with query variants (PairAlign's grid phases) is read as search
//! reads it: the unshifted window's database string against the closest variant of the
//! shifted window's; token counts are the database strings'. For a dense subject the cosine
//! distance to the unshifted window's vector. The
//! overlap (the share of audio the shifted window still shares with the first) is the reference
//! every trajectory is read against.
//!
//! Sweeps start at a random point (from the seed) of distinct recordings long enough for the
//! window and the largest shift, drawn in random order.

use std::time::Instant;

use pairalign_datasets::mel::LogMel;
use pairalign_datasets::SAMPLE_RATE;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::metrics::{cosine, ned};
use crate::output::{label, num, table, Outputs};
use crate::plot::{self, Panel, Series};
use crate::source::{for_each_chunk, Source};
use crate::subject::{Model, Subject, SubjectInfo};
use crate::{Error, Result};

/// How the sweep runs.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Window length, seconds.
    pub window_s: f64,
    /// Step between shifts, ms.
    pub step_ms: u32,
    /// Largest shift, seconds.
    pub max_shift_s: f64,
    /// Sweeps (one per recording, at most).
    pub sweeps: usize,
    /// Seed of the recordings and starting points.
    pub seed: u64,
    /// Join utterances of one speaker into recordings of at least this many seconds (0: files
    /// as they are).
    pub join_s: f64,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            window_s: 3.0,
            step_ms: 100,
            max_shift_s: 3.0,
            sweeps: 50,
            seed: 0,
            join_s: 0.0,
        }
    }
}

/// Sweep trajectories of one subject, averaged over the sweeps; arrays are indexed like
/// `shift_ms`.
#[derive(Clone, Debug, Serialize)]
pub struct SweepReport {
    /// Which subject.
    #[serde(flatten)]
    pub subject: SubjectInfo,
    /// `"sweep"`.
    pub protocol: &'static str,
    /// Sweeps averaged.
    pub sweeps: usize,
    /// Window length, seconds.
    pub window_s: f64,
    /// The shifts, ms.
    pub shift_ms: Vec<u32>,
    /// Share of the unshifted window's audio still in the shifted window.
    pub overlap: Vec<f64>,
    /// What `distance` is: `ned` or `cosine` (cosine distance, 1 - cosine similarity).
    pub score: &'static str,
    /// Mean distance to the unshifted window.
    pub distance: Vec<f64>,
    /// `distance` at 100 ms.
    pub distance_at_100ms: Option<f64>,
    /// `distance` at 500 ms.
    pub distance_at_500ms: Option<f64>,
    /// `distance` at 1 s.
    pub distance_at_1000ms: Option<f64>,
    /// Mean edit distance (tokens) to the unshifted window's string.
    pub edit_distance: Option<Vec<f64>>,
    /// Mean tokens per window.
    pub tokens: Option<Vec<f64>>,
    /// Tokens per second over all windows.
    pub tokens_per_s: Option<f64>,
    /// Length control: the coefficient of variation (standard deviation / mean) of the token
    /// count over the shifts of one sweep, averaged over the sweeps.
    pub length_cv: Option<f64>,
    /// Wall time.
    pub wall_s: f64,
}

/// Sums over the sweeps, per shift.
struct Sums {
    distance: Vec<f64>,
    edit: Vec<f64>,
    tokens: Vec<f64>,
    cv: f64,
}

/// Runs the sweep for every subject on the same windows.
pub fn sweep(
    source: &Source,
    subjects: &[Subject],
    options: &SweepOptions,
) -> Result<Vec<SweepReport>> {
    let started = Instant::now();
    if !(options.window_s > 0.0 && options.max_shift_s >= 0.0 && options.step_ms > 0) {
        return Err(Error::BadInput(
            "the window and the step must be positive, the largest shift not negative".into(),
        ));
    }
    let rate = f64::from(SAMPLE_RATE);
    let window = (options.window_s * rate).round() as usize;
    let step = options.step_ms as usize * SAMPLE_RATE as usize / 1000;
    let shifts =
        (options.max_shift_s * 1000.0 / f64::from(options.step_ms) + 1e-9).floor() as usize + 1;
    let span_s = options.window_s + (shifts - 1) as f64 * f64::from(options.step_ms) / 1000.0;
    let mut eligible: Vec<_> = source
        .recordings(options.join_s, "sweep")?
        .into_iter()
        .filter(|r| r.duration_s >= span_s)
        .collect();
    if eligible.is_empty() {
        return Err(Error::BadInput(format!(
            "no recording is {span_s:.1} s long (the window and the largest shift); join short \
             utterances of one speaker with --join"
        )));
    }
    let mut rng = StdRng::seed_from_u64(options.seed);
    eligible.shuffle(&mut rng);
    eligible.truncate(options.sweeps.max(1));
    let starts: Vec<f64> = eligible
        .iter()
        .map(|r| rng.gen_range(0.0..=(r.duration_s - span_s).max(0.0)))
        .collect();
    let mel = LogMel::new();
    let mut sums: Vec<Sums> = subjects
        .iter()
        .map(|_| Sums {
            distance: vec![0.0; shifts],
            edit: vec![0.0; shifts],
            tokens: vec![0.0; shifts],
            cv: 0.0,
        })
        .collect();
    let mut done = 0usize;
    for_each_chunk(&eligible, 8, |first, audio| {
        for (k, samples) in audio.iter().enumerate() {
            let start = (starts[first + k] * rate) as usize;
            // A decoded length a little under the probed duration shortens nothing: skip.
            if start + (shifts - 1) * step + window > samples.len() {
                continue;
            }
            let windows: Vec<&[f32]> = (0..shifts)
                .map(|s| &samples[start + s * step..start + s * step + window])
                .collect();
            for (subject, sum) in subjects.iter().zip(&mut sums) {
                match &subject.model {
                    Model::Tokens(t) => {
                        let variants = t.tokenize_variants(&windows)?;
                        if variants.iter().any(|v| v.len() != windows.len()) {
                            return Err(Error::BadInput(format!(
                                "tokenizer {} gave {} strings for {} windows",
                                t.id(),
                                variants.first().map_or(0, Vec::len),
                                windows.len()
                            )));
                        }
                        // The unshifted window as the database holds it (the first variant),
                        // the shifted one as a query: its closest variant, as search keeps.
                        let strings = &variants[0];
                        let first = &strings[0].tokens;
                        for (s, ts) in strings.iter().enumerate() {
                            let (d, len) = variants
                                .iter()
                                .map(|v| {
                                    let q = &v[s].tokens;
                                    (ned(first, q), first.len().max(q.len()))
                                })
                                .min_by(|a, b| a.0.total_cmp(&b.0))
                                .unwrap_or((0.0, 0));
                            // NED is the distance over the longer length: an integer back.
                            sum.edit[s] += (d * len as f64).round();
                            sum.distance[s] += d;
                            sum.tokens[s] += ts.len() as f64;
                        }
                        let counts: Vec<f64> = strings.iter().map(|t| t.len() as f64).collect();
                        let mean = counts.iter().sum::<f64>() / counts.len() as f64;
                        let var = counts.iter().map(|c| (c - mean).powi(2)).sum::<f64>()
                            / counts.len() as f64;
                        sum.cv += if mean > 0.0 { var.sqrt() / mean } else { 0.0 };
                    }
                    Model::Dense(e) => {
                        let mels: Vec<Vec<f32>> = windows.iter().map(|w| mel.compute(w)).collect();
                        let refs: Vec<&[f32]> = mels.iter().map(Vec::as_slice).collect();
                        let vectors = e.embed_mels(&refs)?;
                        for (s, v) in vectors.iter().enumerate() {
                            sum.distance[s] += 1.0 - cosine(&vectors[0], v);
                        }
                    }
                }
            }
            done += 1;
        }
        Ok(())
    })?;
    if done == 0 {
        return Err(Error::BadInput(
            "every recording decoded shorter than its probed duration".into(),
        ));
    }
    let wall_s = started.elapsed().as_secs_f64();
    let shift_ms: Vec<u32> = (0..shifts).map(|s| s as u32 * options.step_ms).collect();
    let overlap: Vec<f64> = shift_ms
        .iter()
        .map(|&ms| (1.0 - f64::from(ms) / 1000.0 / options.window_s).max(0.0))
        .collect();
    let n = done as f64;
    Ok(subjects
        .iter()
        .zip(sums)
        .map(|(subject, sum)| {
            let distance: Vec<f64> = sum.distance.iter().map(|d| d / n).collect();
            let at = |ms: u32| shift_ms.iter().position(|&s| s == ms).map(|i| distance[i]);
            let tokens = matches!(subject.model, Model::Tokens(_));
            let mean_tokens: Vec<f64> = sum.tokens.iter().map(|t| t / n).collect();
            SweepReport {
                subject: subject.info(),
                protocol: "sweep",
                sweeps: done,
                window_s: options.window_s,
                shift_ms: shift_ms.clone(),
                overlap: overlap.clone(),
                score: if tokens { "ned" } else { "cosine" },
                distance_at_100ms: at(100),
                distance_at_500ms: at(500),
                distance_at_1000ms: at(1000),
                distance,
                edit_distance: tokens.then(|| sum.edit.iter().map(|d| d / n).collect()),
                tokens_per_s: tokens.then(|| {
                    mean_tokens.iter().sum::<f64>() / mean_tokens.len() as f64 / options.window_s
                }),
                tokens: tokens.then_some(mean_tokens),
                length_cv: tokens.then(|| sum.cv / n),
                wall_s,
            }
        })
        .collect())
}

/// The markdown table, and the trajectories (distance and tokens against shift) as SVG.
pub fn outputs(reports: &[SweepReport]) -> Outputs {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                label(&r.subject),
                r.score.to_string(),
                r.sweeps.to_string(),
                num(r.distance_at_100ms, 3),
                num(r.distance_at_500ms, 3),
                num(r.distance_at_1000ms, 3),
                num(r.distance.last().copied(), 3),
                num(r.tokens.as_ref().and_then(|t| t.first().copied()), 1),
                num(r.length_cv, 3),
            ]
        })
        .collect();
    let last = reports
        .first()
        .and_then(|r| r.shift_ms.last().copied())
        .unwrap_or(0);
    let markdown = table(
        &[
            "tokenizer",
            "distance",
            "sweeps",
            "at 100 ms",
            "at 500 ms",
            "at 1 s",
            &format!("at {:.1} s", f64::from(last) / 1000.0),
            "tokens per window",
            "length CV",
        ],
        &rows,
    );
    let xy = |r: &SweepReport, ys: &[f64]| -> Vec<(f64, f64)> {
        r.shift_ms
            .iter()
            .zip(ys)
            .map(|(&ms, &y)| (f64::from(ms) / 1000.0, y))
            .collect()
    };
    let mut distance: Vec<Series> = reports
        .iter()
        .map(|r| Series {
            name: format!("{} ({})", label(&r.subject), r.score),
            points: xy(r, &r.distance),
            dashed: r.score != "ned",
        })
        .collect();
    if let Some(r) = reports.first() {
        let changed: Vec<f64> = r.overlap.iter().map(|o| 1.0 - o).collect();
        distance.push(Series {
            name: "1 - overlap".into(),
            points: xy(r, &changed),
            dashed: true,
        });
    }
    let lengths: Vec<Series> = reports
        .iter()
        .filter_map(|r| {
            r.tokens.as_ref().map(|t| Series {
                name: label(&r.subject),
                points: xy(r, t),
                dashed: false,
            })
        })
        .collect();
    let panels = vec![
        Panel {
            title: "distance to the unshifted window".into(),
            x_label: "shift (s)".into(),
            y_label: "NED / cosine distance".into(),
            series: distance,
        },
        Panel {
            title: "tokens per window".into(),
            x_label: "shift (s)".into(),
            y_label: "tokens".into(),
            series: lengths,
        },
    ];
    Outputs {
        json: Outputs::json_of(reports),
        markdown,
        plots: vec![(
            "sweep.svg".into(),
            plot::lines(
                &format!(
                    "Continuous sweep: a {:.0} s window shifted in steps of {} ms",
                    reports.first().map_or(3.0, |r| r.window_s),
                    reports
                        .first()
                        .and_then(|r| r.shift_ms.get(1).copied())
                        .unwrap_or(100)
                ),
                &panels,
            ),
        )],
    }
}
