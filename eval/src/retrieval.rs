//! `eval retrieval`: view 1 of every clip queries a database of view 0 of all clips, ranked by
//! normalized edit distance (cosine distance for a dense subject); P@1, MRR, mAP and recall@10
//! with ties by expectation (`metrics`). Each query has one relevant item, so mAP equals MRR
//! (it is computed by the general formula all the same).

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::metrics::{average_precision, RankStats, RetrievalMetrics};
use crate::output::{label, num, table, Outputs};
use crate::pairs::Encoded;
use crate::plot;
use crate::source::PairedViews;
use crate::subject::{Subject, SubjectInfo};
use crate::Result;

/// Retrieval figures of one subject.
#[derive(Clone, Debug, Serialize)]
pub struct RetrievalReport {
    /// Which subject.
    #[serde(flatten)]
    pub subject: SubjectInfo,
    /// `"retrieval"`.
    pub protocol: &'static str,
    /// Clips: queries, and items in the database.
    pub clips: usize,
    /// Seconds of audio per view, summed over the clips.
    pub seconds: f64,
    /// Tokens per second of audio over both views (`None` for a dense subject).
    pub tokens_per_s: Option<f64>,
    /// What ranks: `ned` (normalized edit distance) or `cosine`.
    pub score: &'static str,
    /// Mean precision at 1.
    pub p_at_1: f64,
    /// Mean reciprocal rank.
    pub mrr: f64,
    /// Mean average precision (equals the MRR with one relevant item per query).
    pub map: f64,
    /// Share of queries whose clip is in the first 10.
    pub recall_at_10: f64,
    /// Wall time: encoding both views and ranking.
    pub wall_s: f64,
}

/// Ranks of every query's own clip and the average precisions, from a distance row function.
pub(crate) fn rank_rows(
    n: usize,
    row: impl Fn(usize) -> Vec<f64> + Sync,
) -> (Vec<RankStats>, Vec<f64>) {
    (0..n)
        .into_par_iter()
        .map(|i| {
            let scores = row(i);
            (RankStats::of(&scores, i), average_precision(&scores, &[i]))
        })
        .unzip()
}

/// Runs retrieval for `subject` on `views`.
pub fn retrieval(subject: &Subject, views: &PairedViews) -> Result<RetrievalReport> {
    let started = Instant::now();
    let encoded = Encoded::new(subject, views)?;
    let n = encoded.len();
    let (ranks, aps) = rank_rows(n, |i| encoded.row(i));
    let m = RetrievalMetrics::from_ranks(&ranks, &aps, n);
    let both_views = views.seconds(0) + views.seconds(1);
    let tokens_per_s = encoded.tokens().map(|(a, b)| {
        a.iter().chain(b).map(|t| t.len()).sum::<usize>() as f64 / both_views.max(1e-9)
    });
    Ok(RetrievalReport {
        subject: subject.info(),
        protocol: "retrieval",
        clips: n,
        seconds: views.seconds(0),
        tokens_per_s,
        score: encoded.score(),
        p_at_1: m.p_at_1,
        mrr: m.mrr,
        map: m.map,
        recall_at_10: m.recall_at_10,
        wall_s: started.elapsed().as_secs_f64(),
    })
}

/// The markdown table and a bar chart of the metrics.
pub fn outputs(reports: &[RetrievalReport]) -> Outputs {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                label(&r.subject),
                r.score.to_string(),
                r.clips.to_string(),
                num(r.tokens_per_s, 2),
                format!("**{:.3}**", r.p_at_1),
                format!("{:.3}", r.mrr),
                format!("{:.3}", r.map),
                format!("{:.3}", r.recall_at_10),
                format!("{:.0}", r.wall_s),
            ]
        })
        .collect();
    let markdown = table(
        &[
            "tokenizer",
            "ranked by",
            "clips",
            "tokens/s",
            "P@1",
            "MRR",
            "mAP",
            "recall@10",
            "wall s",
        ],
        &rows,
    );
    let names: Vec<String> = reports.iter().map(|r| label(&r.subject)).collect();
    let metric = |name: &str, f: fn(&RetrievalReport) -> f64| {
        (
            name.to_string(),
            reports.iter().map(|r| Some(f(r))).collect(),
        )
    };
    let chart = plot::bars(
        &format!(
            "Retrieval: view 1 queries view 0 of {} clips",
            reports.first().map_or(0, |r| r.clips)
        ),
        &names,
        &[
            metric("P@1", |r| r.p_at_1),
            metric("MRR", |r| r.mrr),
            metric("mAP", |r| r.map),
            metric("recall@10", |r| r.recall_at_10),
        ],
    );
    Outputs {
        json: Outputs::json_of(reports),
        markdown,
        plots: vec![("retrieval.svg".into(), chart)],
    }
}
