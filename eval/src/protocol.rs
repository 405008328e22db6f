//! The evaluation protocol over a feature cache of paired views (`pairalign features` with 2
//! views per clip): view 1 of every clip is a query against view 0 of all clips.
//!
//! For a tokenizer: token rate, vocabulary use, normalized edit distance (NED) between the two
//! views of a clip against the NED between unrelated clips (every query against every other
//! clip's view 0), and retrieval ranked by NED. For the dense baseline (the VQ encoder's output
//! averaged over time): the same retrieval ranked by cosine similarity.

use pairalign_datasets::cache::FeatureCache;
use pairalign_engine::Symbol;
use pairalign_models::vq::CODE_FRAME_MS;
use pairalign_models::{TokenString, Tokenizer, VqTokenizer};
use rayon::prelude::*;
use serde::Serialize;

use crate::metrics::{cosine, ned_row, perplexity, RankStats, RetrievalMetrics, Summary};
use crate::{Error, Result};

/// Clips per tokenizer call.
const CLIPS_PER_BATCH: usize = 64;
/// Duration of one log-mel frame in seconds (10 ms hop).
const MEL_FRAME_S: f64 = 0.01;

/// Every figure for one tokenizer.
#[derive(Clone, Debug, Serialize)]
pub struct TokenizerReport {
    /// The tokenizer's id.
    pub tokenizer: String,
    /// Its weights hash.
    pub weights_hash: String,
    /// Clips evaluated.
    pub clips: usize,
    /// Seconds of audio per view, summed over the clips.
    pub seconds: f64,
    /// Frames per second before repeats collapse, where the tokenizer has frames (VQ: 50).
    pub frame_rate_hz: Option<f64>,
    /// Tokens per second of audio (both views).
    pub tokens_per_s: f64,
    /// Effective number of distinct tokens (exp of the unigram entropy).
    pub perplexity: f64,
    /// Distinct tokens seen, as a share of the vocabulary.
    pub vocab_used: f64,
    /// NED between the two views of the same clip.
    pub ned_views: Summary,
    /// NED between a clip's view 1 and every other clip's view 0.
    pub ned_unrelated: Summary,
    /// |len(view 0) - len(view 1)| / len(view 0), per clip.
    pub length_diff_views: Summary,
    /// View 1 of each clip queries view 0 of all clips, ranked by NED.
    pub retrieval: RetrievalMetrics,
}

/// The dense baseline's figures.
#[derive(Clone, Debug, Serialize)]
pub struct DenseReport {
    /// What the embedding is.
    pub embedding: String,
    /// Its dimension.
    pub dim: usize,
    /// Cosine similarity between the two views of the same clip.
    pub cos_views: Summary,
    /// Cosine similarity between a clip's view 1 and every other clip's view 0.
    pub cos_unrelated: Summary,
    /// View 1 queries view 0 of all clips, ranked by cosine similarity.
    pub retrieval: RetrievalMetrics,
}

/// The first `max_clips` clips of `cache` (all without a limit), view `v` of each, as f32.
fn view_mels(cache: &FeatureCache, clips: usize, v: usize) -> Vec<Vec<f32>> {
    (0..clips)
        .into_par_iter()
        .map(|i| {
            let mut buf = Vec::new();
            cache.view(i, v).to_f32(&mut buf);
            buf
        })
        .collect()
}

fn clip_count(cache: &FeatureCache, max_clips: Option<usize>) -> Result<usize> {
    if cache.views_per_clip() < 2 {
        return Err(Error::BadInput(format!(
            "{} has {} view per clip; the protocol needs 2",
            cache.path().display(),
            cache.views_per_clip()
        )));
    }
    let n = max_clips.map_or(cache.len(), |m| m.min(cache.len()));
    if n < 2 {
        return Err(Error::BadInput(format!(
            "{} clips: retrieval needs at least 2",
            n
        )));
    }
    Ok(n)
}

/// `f` over view `v` of the first `n` clips, [`CLIPS_PER_BATCH`] clips per call.
fn per_batch<T>(
    cache: &FeatureCache,
    n: usize,
    v: usize,
    f: impl Fn(&[&[f32]]) -> pairalign_models::Result<Vec<T>>,
) -> Result<Vec<T>> {
    let mels = view_mels(cache, n, v);
    let mut out = Vec::with_capacity(n);
    for chunk in mels.chunks(CLIPS_PER_BATCH) {
        let refs: Vec<&[f32]> = chunk.iter().map(Vec::as_slice).collect();
        out.extend(f(&refs)?);
    }
    Ok(out)
}

/// Ranks of every query's own clip among all candidates, and the unrelated scores, from a
/// score function (lower is better).
fn rank_all(
    n: usize,
    row: impl Fn(usize) -> Vec<f64> + Sync,
) -> (Vec<RankStats>, Vec<f64>, Vec<f64>) {
    let rows: Vec<(RankStats, f64, Vec<f64>)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let scores = row(i);
            let own = scores[i];
            let others = scores
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, &s)| s)
                .collect();
            (RankStats::of(&scores, i), own, others)
        })
        .collect();
    let mut ranks = Vec::with_capacity(n);
    let mut own = Vec::with_capacity(n);
    let mut unrelated = Vec::with_capacity(n * (n - 1));
    for (r, o, u) in rows {
        ranks.push(r);
        own.push(o);
        unrelated.extend(u);
    }
    (ranks, own, unrelated)
}

/// Evaluates any tokenizer on the first `max_clips` clips of `cache`.
pub fn evaluate_tokens(
    tokenizer: &dyn Tokenizer,
    cache: &FeatureCache,
    max_clips: Option<usize>,
    frame_rate_hz: Option<f64>,
) -> Result<TokenizerReport> {
    let n = clip_count(cache, max_clips)?;
    let a = per_batch(cache, n, 0, |m| tokenizer.tokenize_mels(m))?;
    let b = per_batch(cache, n, 1, |m| tokenizer.tokenize_mels(m))?;
    let frames = |v: usize| (0..n).map(|i| cache.frames(i, v)).sum::<usize>() as f64 * MEL_FRAME_S;
    let seconds = frames(0);
    let total_tokens: usize = a.iter().chain(&b).map(TokenString::len).sum();
    let mut counts = vec![0u64; tokenizer.vocab_size() as usize];
    for ts in a.iter().chain(&b) {
        for &t in &ts.tokens {
            if let Some(c) = counts.get_mut(usize::from(t)) {
                *c += 1;
            }
        }
    }
    let used = counts.iter().filter(|&&c| c > 0).count();
    let texts: Vec<&[Symbol]> = a.iter().map(|ts| ts.tokens.as_slice()).collect();
    let (ranks, own, unrelated) = rank_all(n, |i| ned_row(&b[i].tokens, &texts));
    let length_diff: Vec<f64> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| x.len().abs_diff(y.len()) as f64 / x.len().max(1) as f64)
        .collect();
    Ok(TokenizerReport {
        tokenizer: tokenizer.id().to_string(),
        weights_hash: tokenizer.weights_hash().to_string(),
        clips: n,
        seconds,
        frame_rate_hz,
        tokens_per_s: total_tokens as f64 / (seconds + frames(1)).max(1e-9),
        perplexity: perplexity(&counts),
        vocab_used: used as f64 / counts.len().max(1) as f64,
        ned_views: Summary::of(&own),
        ned_unrelated: Summary::of(&unrelated),
        length_diff_views: Summary::of(&length_diff),
        retrieval: RetrievalMetrics::from_ranks(&ranks, n),
    })
}

/// The VQ tokenizer's report and the dense baseline from its encoder, on the first `max_clips`
/// clips of `cache`.
pub fn evaluate_vq(
    tokenizer: &VqTokenizer,
    cache: &FeatureCache,
    max_clips: Option<usize>,
) -> Result<(TokenizerReport, DenseReport)> {
    let report = evaluate_tokens(
        tokenizer,
        cache,
        max_clips,
        Some(1000.0 / f64::from(CODE_FRAME_MS)),
    )?;
    let n = report.clips;
    let a = per_batch(cache, n, 0, |m| tokenizer.pooled_embeddings(m))?;
    let b = per_batch(cache, n, 1, |m| tokenizer.pooled_embeddings(m))?;
    // Lower is better for the ranks: negated cosine.
    let (ranks, own, unrelated) = rank_all(n, |i| a.iter().map(|x| -cosine(&b[i], x)).collect());
    let flip = |v: Vec<f64>| -> Vec<f64> { v.into_iter().map(|s| -s).collect() };
    let dense = DenseReport {
        embedding: "vq encoder output before quantization, mean over 50 Hz frames".into(),
        dim: tokenizer.config().code_dim,
        cos_views: Summary::of(&flip(own)),
        cos_unrelated: Summary::of(&flip(unrelated)),
        retrieval: RetrievalMetrics::from_ranks(&ranks, n),
    };
    Ok((report, dense))
}
