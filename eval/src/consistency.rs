//! `eval consistency`: how alike the two views of one clip come out, against unrelated clips.
//! For a tokenizer: normalized edit distance (NED) between the views of each clip, and between
//! a clip's view 1 and the view 0 of `unrelated_per_clip` other clips drawn by the seed (all
//! others when there are fewer); token rate, the length difference between views, vocabulary
//! use (perplexity). For a dense subject: cosine similarities instead. `separation` is the
//! chance that a same-clip pair is closer than an unrelated pair (1: always, 0.5: chance).

use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::Serialize;

use crate::metrics::{perplexity, separation, Summary};
use crate::output::{label, num, table, Outputs};
use crate::pairs::Encoded;
use crate::plot::{self, Panel, Series};
use crate::source::PairedViews;
use crate::subject::{Kind, Subject, SubjectInfo};
use crate::Result;

/// How consistency runs.
#[derive(Clone, Debug)]
pub struct ConsistencyOptions {
    /// Unrelated clips compared with each clip.
    pub unrelated_per_clip: usize,
    /// Seed of the unrelated pairs.
    pub seed: u64,
}

impl Default for ConsistencyOptions {
    fn default() -> Self {
        ConsistencyOptions {
            unrelated_per_clip: 50,
            seed: 0,
        }
    }
}

/// Consistency figures of one subject. Token figures are `None` for a dense subject, cosine
/// figures `None` for a tokenizer.
#[derive(Clone, Debug, Serialize)]
pub struct ConsistencyReport {
    /// Which subject.
    #[serde(flatten)]
    pub subject: SubjectInfo,
    /// `"consistency"`.
    pub protocol: &'static str,
    /// Clips.
    pub clips: usize,
    /// Seconds of audio per view, summed over the clips.
    pub seconds: f64,
    /// Unrelated pairs compared.
    pub unrelated_pairs: usize,
    /// Frames per second before repeats collapse, where the tokenizer has frames.
    pub frame_rate_hz: Option<f64>,
    /// Tokens per second of audio (both views).
    pub tokens_per_s: Option<f64>,
    /// Effective number of distinct tokens (exp of the unigram entropy).
    pub perplexity: Option<f64>,
    /// Distinct tokens seen, as a share of the vocabulary.
    pub vocab_used: Option<f64>,
    /// Vocabulary size.
    pub vocab_size: Option<u32>,
    /// Median over clips of |len(view 0) - len(view 1)| / len(view 0).
    pub length_diff_views: Option<f64>,
    /// Its 90th percentile.
    pub length_diff_views_p90: Option<f64>,
    /// Mean NED between the two views of a clip.
    pub ned_views: Option<f64>,
    /// Median of the same.
    pub ned_views_median: Option<f64>,
    /// Mean NED between unrelated clips.
    pub ned_unrelated: Option<f64>,
    /// Median of the same.
    pub ned_unrelated_median: Option<f64>,
    /// Mean cosine similarity between the two views of a clip.
    pub cos_views: Option<f64>,
    /// Median of the same.
    pub cos_views_median: Option<f64>,
    /// Mean cosine similarity between unrelated clips.
    pub cos_unrelated: Option<f64>,
    /// Median of the same.
    pub cos_unrelated_median: Option<f64>,
    /// Chance that a same-clip pair is closer than an unrelated pair (ties half).
    pub separation: f64,
    /// Wall time.
    pub wall_s: f64,
}

/// A report and the distances behind it (NED, or cosine distance for a dense subject), for the
/// plot.
#[derive(Clone, Debug)]
pub struct Consistency {
    /// The figures.
    pub report: ConsistencyReport,
    /// Distance between the two views of each clip.
    pub views: Vec<f64>,
    /// Distance of each unrelated pair.
    pub unrelated: Vec<f64>,
}

/// Runs consistency for `subject` on `views`.
pub fn consistency(
    subject: &Subject,
    views: &PairedViews,
    options: &ConsistencyOptions,
) -> Result<Consistency> {
    let started = Instant::now();
    let encoded = Encoded::new(subject, views)?;
    let n = encoded.len();
    let own: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| encoded.distance(i, i))
        .collect();
    // Partners drawn up front, so the draw does not depend on the thread schedule.
    let mut rng = StdRng::seed_from_u64(options.seed);
    let per_clip = options.unrelated_per_clip.min(n - 1);
    let partners: Vec<Vec<usize>> = (0..n)
        .map(|i| {
            sample(&mut rng, n - 1, per_clip)
                .into_iter()
                .map(|j| if j >= i { j + 1 } else { j })
                .collect()
        })
        .collect();
    let unrelated: Vec<f64> = partners
        .par_iter()
        .enumerate()
        .flat_map_iter(|(i, js)| js.iter().map(move |&j| (i, j)))
        .map(|(i, j)| encoded.distance(i, j))
        .collect();
    let both_views = views.seconds(0) + views.seconds(1);
    let mut report = ConsistencyReport {
        subject: subject.info(),
        protocol: "consistency",
        clips: n,
        seconds: views.seconds(0),
        unrelated_pairs: unrelated.len(),
        frame_rate_hz: subject.frame_rate_hz,
        tokens_per_s: None,
        perplexity: None,
        vocab_used: None,
        vocab_size: None,
        length_diff_views: None,
        length_diff_views_p90: None,
        ned_views: None,
        ned_views_median: None,
        ned_unrelated: None,
        ned_unrelated_median: None,
        cos_views: None,
        cos_views_median: None,
        cos_unrelated: None,
        cos_unrelated_median: None,
        separation: separation(&own, &unrelated),
        wall_s: 0.0,
    };
    let (sv, su) = (Summary::of(&own), Summary::of(&unrelated));
    match (encoded.tokens(), subject.tokenizer()) {
        (Some((a, b)), Some(tokenizer)) => {
            let vocab = tokenizer.vocab_size();
            let mut counts = vec![0u64; vocab as usize];
            for t in a.iter().chain(b).flat_map(|ts| &ts.tokens) {
                if let Some(c) = counts.get_mut(usize::from(*t)) {
                    *c += 1;
                }
            }
            let total: u64 = counts.iter().sum();
            let used = counts.iter().filter(|&&c| c > 0).count();
            let length_diff: Vec<f64> = a
                .iter()
                .zip(b)
                .map(|(x, y)| x.len().abs_diff(y.len()) as f64 / x.len().max(1) as f64)
                .collect();
            let ld = Summary::of(&length_diff);
            report.tokens_per_s = Some(total as f64 / both_views.max(1e-9));
            report.perplexity = Some(perplexity(&counts));
            report.vocab_used = Some(used as f64 / f64::from(vocab.max(1)));
            report.vocab_size = Some(vocab);
            report.length_diff_views = Some(ld.median);
            report.length_diff_views_p90 = Some(ld.p90);
            report.ned_views = Some(sv.mean);
            report.ned_views_median = Some(sv.median);
            report.ned_unrelated = Some(su.mean);
            report.ned_unrelated_median = Some(su.median);
        }
        _ => {
            // Distances are 1 - cosine; the report gives similarities. The median of the
            // similarities is 1 - the median of the distances (up to the lower-middle rule).
            report.cos_views = Some(1.0 - sv.mean);
            report.cos_views_median = Some(1.0 - sv.median);
            report.cos_unrelated = Some(1.0 - su.mean);
            report.cos_unrelated_median = Some(1.0 - su.median);
        }
    }
    report.wall_s = started.elapsed().as_secs_f64();
    Ok(Consistency {
        report,
        views: own,
        unrelated,
    })
}

/// The markdown table, and the distributions as one SVG panel per subject.
pub fn outputs(results: &[Consistency]) -> Outputs {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|c| {
            let r = &c.report;
            let (views, unrelated) = match r.subject.kind {
                Kind::Tokens => (
                    format!(
                        "NED {} (median {})",
                        num(r.ned_views, 3),
                        num(r.ned_views_median, 3)
                    ),
                    format!(
                        "NED {} (median {})",
                        num(r.ned_unrelated, 3),
                        num(r.ned_unrelated_median, 3)
                    ),
                ),
                Kind::Dense => (
                    format!(
                        "cosine {} (median {})",
                        num(r.cos_views, 3),
                        num(r.cos_views_median, 3)
                    ),
                    format!(
                        "cosine {} (median {})",
                        num(r.cos_unrelated, 3),
                        num(r.cos_unrelated_median, 3)
                    ),
                ),
            };
            vec![
                label(&r.subject),
                r.clips.to_string(),
                num(r.tokens_per_s, 2),
                views,
                unrelated,
                format!("{:.3}", r.separation),
                match (r.length_diff_views, r.length_diff_views_p90) {
                    (Some(m), Some(p)) => format!("{:.1}% (p90 {:.1}%)", 100.0 * m, 100.0 * p),
                    _ => "—".into(),
                },
                match (r.perplexity, r.vocab_used, r.vocab_size) {
                    (Some(p), Some(u), Some(v)) => {
                        format!("{p:.1} ({:.1}% of {v} used)", 100.0 * u)
                    }
                    _ => "—".into(),
                },
            ]
        })
        .collect();
    let markdown = table(
        &[
            "tokenizer",
            "clips",
            "tokens/s",
            "same clip, two views",
            "unrelated clips",
            "separation",
            "length difference (median)",
            "perplexity",
        ],
        &rows,
    );
    let panels: Vec<Panel> = results
        .iter()
        .map(|c| {
            let dense = c.report.subject.kind == Kind::Dense;
            let hi = if dense {
                c.views
                    .iter()
                    .chain(&c.unrelated)
                    .copied()
                    .fold(0.0f64, f64::max)
                    .max(1e-3)
            } else {
                1.0
            };
            Panel {
                title: label(&c.report.subject),
                x_label: if dense {
                    "cosine distance (1 - cosine)".into()
                } else {
                    "normalized edit distance".into()
                },
                y_label: "share of pairs".into(),
                series: vec![
                    Series {
                        name: "same clip, two views".into(),
                        points: plot::histogram(&c.views, 0.0, hi, 40),
                        dashed: false,
                    },
                    Series {
                        name: "unrelated clips".into(),
                        points: plot::histogram(&c.unrelated, 0.0, hi, 40),
                        dashed: true,
                    },
                ],
            }
        })
        .collect();
    let reports: Vec<&ConsistencyReport> = results.iter().map(|c| &c.report).collect();
    Outputs {
        json: Outputs::json_of(&reports),
        markdown,
        plots: vec![(
            "consistency.svg".into(),
            plot::lines(
                "Distance between views of one clip and between unrelated clips",
                &panels,
            ),
        )],
    }
}
