//! Clip -> tokens -> engine search -> hits, with the checks that keep a query comparable with the
//! archive: the same tokenizer as the one the database records, and a clip length in range.

use std::path::Path;
use std::time::Instant;

use pairalign_datasets::decode::{decode_bytes, decode_file, DecodeOptions};
use pairalign_datasets::{Audio, SAMPLE_RATE};
use pairalign_engine::{EditBudget, Hit, SearchOptions, Searcher, Symbol, TokenizerRecord};
use pairalign_models::{
    shipped, tokenize_query, AnyTokenizer, Device, Tokenizer, WINDOWS_PER_CALL, WINDOW_SAMPLES,
};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Shortest clip accepted, in seconds: below it a clip gives a handful of tokens that match
/// almost anywhere.
pub const MIN_CLIP_S: f64 = 0.5;
/// Longest clip accepted, in seconds (issue 6): longer queries cost verifier time quadratic in
/// their length and are better split by the caller.
pub const MAX_CLIP_S: f64 = 60.0;

/// Edit budget for clip queries when the caller gives none, as a fraction of the query length.
/// Looser than the engine's token-query default (0.4) because the shipped VQ tokenizer (vq-v1)
/// gives views of the same speech normalized distances of 0.3 to 0.8 (speed 1.05, gain), while
/// unrelated speech sits at 0.8 to 0.92 (measured on `samples/`, 2026-11-25); a tighter budget
/// returns nothing for a real, modified clip. Tighten it when a more robust tokenizer ships.
pub const CLIP_EDIT_BUDGET: EditBudget = EditBudget::Fraction(0.9);

/// The search options for clip queries: infix mode (find the clip inside files), the engine's
/// defaults, and [`CLIP_EDIT_BUDGET`].
pub fn clip_search_options() -> SearchOptions {
    SearchOptions {
        k: Some(CLIP_EDIT_BUDGET),
        ..SearchOptions::default()
    }
}

/// Hits of one query by example and where the time went.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchOutcome {
    /// Best hits, sorted by distance (then id, then start); `id` is the file's document id.
    pub hits: Vec<Hit>,
    /// Tokens in the query string.
    pub query_tokens: usize,
    /// The absolute edit budget used (`None`: unbounded).
    pub k: Option<u32>,
    /// True when the result equals an exhaustive search.
    pub lossless: bool,
    /// Milliseconds spent tokenizing the clip.
    pub tokenize_ms: f64,
    /// Milliseconds spent in the engine's search.
    pub search_ms: f64,
    /// Milliseconds in all (tokenizing and searching; decoding excluded).
    pub took_ms: f64,
}

/// The reply to a search: the HTTP API's `POST /v1/search` JSON, which the server and the
/// Python package both answer with.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchResults {
    /// Best hits, sorted by distance (then id, then start).
    pub hits: Vec<Hit>,
    /// Tokens in the query string.
    pub query_tokens: usize,
    /// The absolute edit budget used (`null`: unbounded).
    pub k: Option<u32>,
    /// True when the result equals an exhaustive search.
    pub lossless: bool,
    /// Milliseconds spent tokenizing the clip (`null` for token queries).
    pub tokenize_ms: Option<f64>,
    /// Milliseconds in the engine's search.
    pub search_ms: f64,
}

impl From<SearchOutcome> for SearchResults {
    /// A query by example's reply.
    fn from(outcome: SearchOutcome) -> Self {
        SearchResults {
            hits: outcome.hits,
            query_tokens: outcome.query_tokens,
            k: outcome.k,
            lossless: outcome.lossless,
            tokenize_ms: Some(outcome.tokenize_ms),
            search_ms: outcome.search_ms,
        }
    }
}

impl SearchResults {
    /// A token query's reply: `outcome` of a string of `query_tokens` tokens.
    pub fn of_tokens(outcome: pairalign_engine::SearchOutcome, query_tokens: usize) -> Self {
        SearchResults {
            hits: outcome.hits,
            query_tokens,
            k: outcome.k,
            lossless: outcome.lossless,
            tokenize_ms: None,
            search_ms: outcome.took_ms,
        }
    }
}

/// Checks that `db` was built with `tokenizer` (same id, weights hash and vocabulary); a database
/// that records no tokenizer cannot be searched with audio.
pub fn check_tokenizer(db: &Searcher, tokenizer: &dyn Tokenizer) -> Result<()> {
    check_tokenizer_record(
        db,
        tokenizer.id(),
        tokenizer.weights_hash(),
        tokenizer.vocab_size(),
    )
}

/// [`check_tokenizer`] for the tokenizer with `id`, `weights_hash` and `vocab_size` symbols.
fn check_tokenizer_record(
    db: &Searcher,
    id: &str,
    weights_hash: &str,
    vocab_size: u32,
) -> Result<()> {
    if db.tokenizer().is_none() {
        return Err(Error::TokenizerMismatch(format!(
            "{} records no tokenizer (it holds imported tokens or nothing yet); \
             search it with token strings",
            db.dir().display()
        )));
    }
    // The same comparison (id, weights hash, vocabulary) as for adding to the database.
    db.accepts_tokenizer(id, weights_hash, vocab_size)
        .map_err(|e| match e {
            pairalign_engine::Error::TokenizerMismatch(why) => Error::TokenizerMismatch(why),
            other => Error::Engine(other),
        })
}

/// The tokenizer for the database in `dir`: the shipped model it records (`vq` or `pairalign`,
/// with the same weights hash), or [`pairalign_models::shipped::DEFAULT`] for a database that
/// does not exist yet or records no tokenizer (adding audio to one of imported tokens then fails
/// with a clear error). A database built with weights that are not shipped is
/// [`Error::TokenizerMismatch`]: name its weights folder instead.
pub fn database_tokenizer(dir: &Path, device: &Device) -> Result<AnyTokenizer> {
    let recorded = Searcher::open(dir)
        .ok()
        .and_then(|d| d.tokenizer().cloned());
    let Some(record) = recorded else {
        return Ok(AnyTokenizer::open(shipped::DEFAULT, device)?);
    };
    if let Ok(tok) = AnyTokenizer::open(&record.id, device) {
        if tok.weights_hash() == record.weights_hash {
            return Ok(tok);
        }
    }
    Err(Error::TokenizerMismatch(format!(
        "{} was built with tokenizer {} (weights {}), not a shipped model: give its weights \
         folder",
        dir.display(),
        record.id,
        record.weights_hash
    )))
}

/// Searches `db` for the 16 kHz mono clip `samples_16k`: tokenized window by window like the
/// index, then `Searcher::search_tokens` with `options` (infix mode by default: the clip is found
/// inside files). A tokenizer that gives a query several strings
/// ([`Tokenizer::tokenize_variants`]: a PairAlign model's grid phases) has the clip searched for
/// every string ([`pairalign_models::tokenize_query`]) in one candidate pass
/// (`Searcher::search_many`); the hits of all are ranked together by
/// normalized distance, and of hits that overlap in a file only the best is kept. Each hit's
/// times are then placed where the clip starts ([`place_hit`]). Errors for a clip outside
/// [`MIN_CLIP_S`]..=[`MAX_CLIP_S`] and for a tokenizer other than the database's.
pub fn search_audio(
    db: &Searcher,
    tokenizer: &dyn Tokenizer,
    samples_16k: &[f32],
    options: &SearchOptions,
) -> Result<SearchOutcome> {
    check_tokenizer(db, tokenizer)?;
    let query = tokenize_clip(tokenizer, samples_16k)?;
    search_clip(db, &query, options)
}

/// A clip tokenized for searching ([`tokenize_clip`]): the string of every grid phase with its
/// tokens' times, and the tokenizer that made them. Searching several databases (the shards of
/// an archive) with one `ClipQuery` tokenizes the clip once; it serializes (serde) to travel
/// to them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClipQuery {
    /// The tokenizer that made the strings.
    pub tokenizer: TokenizerRecord,
    /// Its vocabulary size.
    pub vocab_size: u32,
    /// One string per phase, the first the clip windowed like a file; never empty.
    pub phases: Vec<QueryPhase>,
    /// Milliseconds spent tokenizing.
    pub tokenize_ms: f64,
}

/// One phase's string of a [`ClipQuery`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryPhase {
    /// Tokens.
    pub tokens: Vec<Symbol>,
    /// Start of each token in the clip, ms.
    pub times_ms: Vec<u32>,
}

impl ClipQuery {
    /// Tokens of the first phase: the clip windowed like a file.
    pub fn tokens(&self) -> &[Symbol] {
        self.phases.first().map_or(&[], |p| p.tokens.as_slice())
    }
}

/// Tokenizes the 16 kHz mono clip `samples_16k` for searching: window by window like the index,
/// in every variant the tokenizer gives ([`pairalign_models::tokenize_query`]: a PairAlign
/// model's grid phases). Errors for a clip outside [`MIN_CLIP_S`]..=[`MAX_CLIP_S`].
pub fn tokenize_clip(tokenizer: &dyn Tokenizer, samples_16k: &[f32]) -> Result<ClipQuery> {
    let seconds = samples_16k.len() as f64 / f64::from(SAMPLE_RATE);
    if !(MIN_CLIP_S..=MAX_CLIP_S).contains(&seconds) {
        return Err(Error::ClipLength {
            seconds,
            min: MIN_CLIP_S,
            max: MAX_CLIP_S,
        });
    }
    let started = Instant::now();
    let phases = tokenize_query(tokenizer, samples_16k, WINDOW_SAMPLES, WINDOWS_PER_CALL)?;
    Ok(ClipQuery {
        tokenizer: TokenizerRecord {
            id: tokenizer.id().to_string(),
            weights_hash: tokenizer.weights_hash().to_string(),
        },
        vocab_size: tokenizer.vocab_size(),
        phases: phases
            .into_iter()
            .map(|p| QueryPhase {
                tokens: p.tokens,
                times_ms: p.times_ms,
            })
            .collect(),
        tokenize_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

/// Searches `db` for a tokenized clip: `Searcher::search_tokens` with `options` (infix mode by
/// default: the clip is found inside files) for every phase's string in one candidate pass
/// (`Searcher::search_many`); the hits of all are ranked together by normalized distance, and
/// of hits that overlap in a file only the best is kept. Each hit's times are then placed where
/// the clip starts ([`place_hit`]). Errors when `db` records another tokenizer than the query's,
/// and for a query without strings or whose strings and times disagree.
pub fn search_clip(
    db: &Searcher,
    query: &ClipQuery,
    options: &SearchOptions,
) -> Result<SearchOutcome> {
    let record = &query.tokenizer;
    check_tokenizer_record(db, &record.id, &record.weights_hash, query.vocab_size)?;
    if query.phases.is_empty()
        || query
            .phases
            .iter()
            .any(|p| p.tokens.len() != p.times_ms.len())
    {
        return Err(Error::InvalidOption(
            "a clip query needs at least one string, with one time per token".into(),
        ));
    }
    let t = Instant::now();
    let strings: Vec<&[Symbol]> = query.phases.iter().map(|p| p.tokens.as_slice()).collect();
    let mut outcomes = db.search_many(&strings, options)?;
    for (outcome, phase) in outcomes.iter_mut().zip(&query.phases) {
        for hit in &mut outcome.hits {
            place_hit(db, hit, phase);
        }
    }
    let search_ms = t.elapsed().as_secs_f64() * 1e3;
    // Phase 0 is the clip windowed like a file: its length and budget are the ones reported.
    let k = outcomes.first().and_then(|o| o.k);
    let lossless = outcomes.iter().all(|o| o.lossless);
    let hits = if outcomes.len() == 1 {
        outcomes.pop().map(|o| o.hits).unwrap_or_default()
    } else {
        best_of_phases(
            outcomes.into_iter().flat_map(|o| o.hits).collect(),
            options.top,
        )
    };
    Ok(SearchOutcome {
        hits,
        query_tokens: query.tokens().len(),
        k,
        lossless,
        tokenize_ms: query.tokenize_ms,
        search_ms,
        took_ms: query.tokenize_ms + search_ms,
    })
}

/// Moves a hit's times to where the clip starts in the file. The engine gives the time of the
/// first matched file token, but the clip's first token need not sit at the clip's start (a grid
/// phase moved by a fraction of a token, a token that starts late), the alignment may start on a
/// neighbour, and a clip played faster or slower than the file runs on another clock: the
/// clip's string is aligned with the matched span (edit-distance traceback), and a line `file
/// time = start + rate x clip time` is fitted through the tokens that match exactly
/// ([`fitted_start`]). The clip's first token is left out when others match (its time is
/// clamped at the clip's start for grid phases whose first cell starts before it), and of a run
/// of one symbol only its first token counts. The end moves by as much as the start; both stay
/// inside the file. A hit without matching tokens is left as it is.
fn place_hit(db: &Searcher, hit: &mut Hit, query: &QueryPhase) {
    // The search that found the hit has checked the segments: these cannot fail.
    let Ok(Some((segment, ord))) = db.find(&hit.id) else {
        return;
    };
    let Some(segment) = db.segments().ok().and_then(|s| s.get(segment)) else {
        return;
    };
    let doc = segment.doc(ord);
    let (Some(span), Some(span_times)) = (
        doc.tokens.get(hit.start..hit.end),
        doc.times_ms.get_range(hit.start..hit.end),
    ) else {
        return;
    };
    let pairs = matched_pairs(&query.tokens, span);
    // (clip time, file time) of each exact match, in order. Inside a run of one symbol (a
    // pause) the alignment may pair any token of the clip's run with any of the file's: only
    // the first token of each run counts, when two or more do.
    let point = |&(j, i): &(usize, usize)| -> Option<(f64, f64)> {
        let clip = f64::from(*query.times_ms.get(j)?);
        Some((clip, f64::from(span_times[i])))
    };
    let run_starts: Vec<(f64, f64)> = pairs
        .iter()
        .filter(|&&(j, _)| j > 0 && query.tokens[j] != query.tokens[j - 1])
        .filter_map(point)
        .collect();
    let points: Vec<(f64, f64)> = if run_starts.len() >= 2 {
        run_starts
    } else {
        pairs
            .iter()
            .filter(|&&(j, _)| j > 0 || pairs.len() == 1)
            .filter_map(point)
            .collect()
    };
    let clip_end = query.times_ms.last().map_or(0.0, |&t| f64::from(t));
    let Some(start) = fitted_start(&points, clip_end) else {
        return;
    };
    let duration = f64::from(doc.duration_ms);
    let start = start.round().clamp(0.0, duration);
    let delta = start - f64::from(hit.start_ms);
    let end = (f64::from(hit.end_ms) + delta).clamp(start, duration);
    // Both lie in 0..=duration, a u32.
    hit.start_ms = start as u32;
    hit.end_ms = end as u32;
}

/// Points this close to the clip's last token are left out of the fit (when three or more
/// others remain): the tokenizer's last cells of a clip often sit one cell off the file's
/// (measured on the robustness matrix's real archive: half of the offset jumps of clean clips
/// are in their last 500 ms), which tilts the slope of a clip on the file's own clock.
const CLIP_END_MARGIN_MS: f64 = 500.0;

/// A point lies on a fitted line when its file time is this close to the line's: about half a
/// token at 12.7 tokens/s (tokens sit on grids of one period, so a point on the right line is
/// within half a period of it, or on a neighbouring cell).
const ON_LINE_MS: f64 = 45.0;

/// The file time at clip time 0 of the line `file = start + rate x clip` through `points`
/// (`(clip ms, file ms)`, in order; `clip_end` the clip time of the clip's last token); `None`
/// without points. The start is the median of `file - rate x clip`; the rate is 1 unless the
/// median slope over the pairs of points at least half the clip apart (within 0.8-1.25) is
/// 2.5% or more away from 1 and more points lie on its line than on the line of rate 1
/// ([`ON_LINE_MS`]). Points within [`CLIP_END_MARGIN_MS`] of the clip's end are left out.
///
/// Measured on the robustness matrix (200 queries, pairalign-v2; docs/RESULTS.md): median start
/// error at speed 1.05 47 -> 21 ms on real speech, clean 9.8 -> 10.5 ms. The rule it replaced kept
/// rate 1 unless the other rate had a smaller spread of residuals, which a clip 5% faster rarely
/// has: its residuals at rate 1 cluster on a few grid offsets.
fn fitted_start(points: &[(f64, f64)], clip_end: f64) -> Option<f64> {
    let inside: Vec<(f64, f64)> = points
        .iter()
        .filter(|&&(c, _)| c <= clip_end - CLIP_END_MARGIN_MS)
        .copied()
        .collect();
    let points = if inside.len() >= 3 {
        &inside[..]
    } else {
        points
    };
    let median = |mut v: Vec<f64>| -> Option<f64> {
        v.sort_by(f64::total_cmp);
        v.get(v.len().checked_sub(1)? / 2).copied()
    };
    // At most 128 points (evenly taken) for the slopes: 8,128 pairs at most.
    let step = points.len().div_ceil(128).max(1);
    let sample: Vec<(f64, f64)> = points.iter().step_by(step).copied().collect();
    let (first, last) = (sample.first()?.0, sample.last()?.0);
    let baseline = (last - first) / 2.0;
    let mut slopes = Vec::new();
    for (i, a) in sample.iter().enumerate() {
        for b in &sample[i + 1..] {
            if b.0 - a.0 >= baseline && b.0 > a.0 {
                slopes.push((b.1 - a.1) / (b.0 - a.0));
            }
        }
    }
    // Tokens 80 ms apart give a slope a few percent of noise: a rate within 2.5% of the clip's
    // own clock is taken as it (measured on real speech: a 1% margin let the noise move clean
    // starts by 3 ms at the median; a 5% speed change is still fitted).
    let fitted = match median(slopes) {
        Some(r) if (r - 1.0).abs() >= 0.025 => r.clamp(0.8, 1.25),
        _ => 1.0,
    };
    let start_at = |rate: f64| median(points.iter().map(|&(c, f)| f - rate * c).collect());
    let on_line = |rate: f64, start: f64| {
        points
            .iter()
            .filter(|&&(c, f)| (f - rate * c - start).abs() <= ON_LINE_MS)
            .count()
    };
    let same = start_at(1.0)?;
    if fitted != 1.0 {
        let start = start_at(fitted)?;
        // Runs of one symbol (pauses) align at either end and can tilt the slope: another rate
        // only when more matches lie on its line than on the clip's own clock's.
        if on_line(fitted, start) > on_line(1.0, same) {
            return Some(start);
        }
    }
    Some(same)
}

/// The `(query index, span index)` pairs of equal tokens on one optimal Levenshtein alignment
/// of `query` with `span` (whole against whole), in order.
fn matched_pairs(query: &[u16], span: &[u16]) -> Vec<(usize, usize)> {
    let (m, n) = (query.len(), span.len());
    let width = n + 1;
    let mut d = vec![0u32; (m + 1) * width];
    for (i, row) in d.chunks_mut(width).enumerate() {
        row[0] = i as u32;
    }
    for (j, cell) in d[..width].iter_mut().enumerate() {
        *cell = j as u32;
    }
    for i in 1..=m {
        for j in 1..=n {
            let diagonal = d[(i - 1) * width + j - 1] + u32::from(query[i - 1] != span[j - 1]);
            let up = d[(i - 1) * width + j] + 1;
            let left = d[i * width + j - 1] + 1;
            d[i * width + j] = diagonal.min(up).min(left);
        }
    }
    let mut pairs = Vec::new();
    let (mut i, mut j) = (m, n);
    while i > 0 && j > 0 {
        let here = d[i * width + j];
        let same = query[i - 1] == span[j - 1];
        if here == d[(i - 1) * width + j - 1] + u32::from(!same) {
            if same {
                pairs.push((i - 1, j - 1));
            }
            i -= 1;
            j -= 1;
        } else if here == d[(i - 1) * width + j] + 1 {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    pairs.reverse();
    pairs
}

/// The hits of several phases of one query, best first by normalized distance (the phases'
/// strings differ in length), then distance, id and start; a hit overlapping a better one in
/// the same file is dropped; at most `top`.
fn best_of_phases(mut hits: Vec<Hit>, top: usize) -> Vec<Hit> {
    hits.sort_by(|a, b| {
        a.norm_distance
            .total_cmp(&b.norm_distance)
            .then(a.distance.cmp(&b.distance))
            .then_with(|| a.id.cmp(&b.id))
            .then(a.start.cmp(&b.start))
    });
    let mut kept: Vec<Hit> = Vec::with_capacity(top.min(hits.len()));
    for hit in hits {
        if kept.len() >= top {
            break;
        }
        let overlaps = kept
            .iter()
            .any(|k| k.doc_id == hit.doc_id && k.start < hit.end && hit.start < k.end);
        if !overlaps {
            kept.push(hit);
        }
    }
    kept
}

/// Decodes the clip file at `path` (any format the front end reads) and runs [`search_audio`].
pub fn search_file(
    db: &Searcher,
    tokenizer: &dyn Tokenizer,
    path: &Path,
    options: &SearchOptions,
) -> Result<SearchOutcome> {
    let audio = decode_clip_file(path)?;
    search_audio(db, tokenizer, &audio.samples, options)
}

/// Decodes a clip file's bytes held in memory (a search request's body: nothing is written to
/// disk) and runs [`search_audio`], as [`search_file`] does for a file. Errors call the clip
/// `name` (e.g. the file name the client gave).
pub fn search_bytes(
    db: &Searcher,
    tokenizer: &dyn Tokenizer,
    bytes: impl AsRef<[u8]> + Send + Sync + 'static,
    name: &Path,
    options: &SearchOptions,
) -> Result<SearchOutcome> {
    let audio = decode_clip_bytes(bytes, name)?;
    search_audio(db, tokenizer, &audio.samples, options)
}

/// Decodes the clip file at `path` to 16 kHz mono, refusing one longer than [`MAX_CLIP_S`]
/// (without decoding it all).
pub fn decode_clip_file(path: &Path) -> Result<Audio> {
    decode_clip(|decode| decode_file(path, decode))
}

/// Decodes a clip file's bytes held in memory to 16 kHz mono, as [`decode_clip_file`]; errors
/// call it `name`.
pub fn decode_clip_bytes(
    bytes: impl AsRef<[u8]> + Send + Sync + 'static,
    name: &Path,
) -> Result<Audio> {
    decode_clip(|decode| decode_bytes(bytes, name, decode))
}

/// Runs `decode` with a duration limit just over [`MAX_CLIP_S`]: a longer clip is refused
/// anyway, so decoding stops early (at its header when it declares its length) and the error is
/// [`Error::ClipLength`].
fn decode_clip(
    decode: impl FnOnce(&DecodeOptions) -> pairalign_datasets::Result<Audio>,
) -> Result<Audio> {
    let options = DecodeOptions {
        max_duration_s: MAX_CLIP_S + 1.0,
    };
    decode(&options).map_err(|e| match e {
        pairalign_datasets::Error::TooLong { seconds, .. } => Error::ClipLength {
            seconds,
            min: MIN_CLIP_S,
            max: MAX_CLIP_S,
        },
        other => Error::Decode(other),
    })
}

#[cfg(test)]
mod tests {
    use pairalign_engine::{DatabaseConfig, DatabaseWriter, NewDoc, TokenizerRecord};
    use pairalign_models::TokenString;

    use super::*;

    /// One token per window: its length in tenths of a second.
    struct Lengths(&'static str);

    impl Tokenizer for Lengths {
        fn id(&self) -> &str {
            "lengths"
        }
        fn weights_hash(&self) -> &str {
            self.0
        }
        fn vocab_size(&self) -> u32 {
            64
        }
        fn tokenize(&self, batch: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
            Ok(batch
                .iter()
                .map(|w| TokenString {
                    tokens: vec![(w.len() / 1600) as u16],
                    times_ms: vec![0],
                })
                .collect())
        }
        fn tokenize_mels(&self, _: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
            Ok(Vec::new())
        }
    }

    /// [`Lengths`] with hash `"h"` and a second query variant: every token plus 20.
    struct Moved;

    impl Tokenizer for Moved {
        fn id(&self) -> &str {
            "lengths"
        }
        fn weights_hash(&self) -> &str {
            "h"
        }
        fn vocab_size(&self) -> u32 {
            64
        }
        fn tokenize(&self, batch: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
            Lengths("h").tokenize(batch)
        }
        fn tokenize_mels(&self, _: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
            Ok(Vec::new())
        }
        fn tokenize_variants(
            &self,
            batch: &[&[f32]],
        ) -> pairalign_models::Result<Vec<Vec<TokenString>>> {
            let plain = self.tokenize(batch)?;
            let moved = plain
                .iter()
                .map(|ts| TokenString {
                    tokens: ts.tokens.iter().map(|t| t + 20).collect(),
                    times_ms: ts.times_ms.clone(),
                })
                .collect();
            Ok(vec![plain, moved])
        }
    }

    fn database(dir: &Path, record: Option<&str>) -> DatabaseWriter {
        let mut db = DatabaseWriter::create(dir, DatabaseConfig::new(64, 3)).unwrap();
        if let Some(hash) = record {
            db.set_tokenizer(TokenizerRecord {
                id: "lengths".into(),
                weights_hash: hash.into(),
            })
            .unwrap();
        }
        db.add_tokens(&[NewDoc {
            id: "doc".into(),
            tokens: vec![30, 30, 30, 12, 7],
            times_ms: Some(vec![0, 3000, 6000, 9000, 12000]),
            duration_ms: Some(13_000),
        }])
        .unwrap();
        db
    }

    /// Adds a document that only [`Moved`]'s second variant finds exactly.
    fn add_second(db: &mut DatabaseWriter) {
        db.add_tokens(&[NewDoc {
            id: "second".into(),
            tokens: vec![1, 50, 50, 1],
            times_ms: Some(vec![0, 3000, 6000, 9000]),
            duration_ms: Some(12_000),
        }])
        .unwrap();
    }

    #[test]
    fn a_clip_is_tokenized_window_by_window_and_found_inside_documents() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(dir.path(), Some("h"));
        // 7.2 s: windows of 3, 3 and 1.2 s -> tokens 30, 30, 12.
        let clip = vec![0.0; 115_200];
        let outcome = search_audio(&db, &Lengths("h"), &clip, &clip_search_options()).unwrap();
        assert_eq!(outcome.query_tokens, 3);
        let hit = &outcome.hits[0];
        assert_eq!((hit.id.as_str(), hit.distance), ("doc", 0));
        assert_eq!((hit.start_ms, hit.end_ms), (3000, 12000));
    }

    /// A 6 s clip ([30, 30]) whose second variant ([50, 50]) is what a second file holds:
    /// found only when the variants are searched too.
    #[test]
    fn every_query_variant_is_searched() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = database(dir.path(), Some("h"));
        add_second(&mut db);
        let clip = vec![0.0; 96_000];
        let exact = SearchOptions {
            k: Some(EditBudget::Absolute(0)),
            ..clip_search_options()
        };
        let ids = |t: &dyn Tokenizer| -> Vec<String> {
            let mut ids: Vec<String> = search_audio(&db, t, &clip, &exact)
                .unwrap()
                .hits
                .into_iter()
                .map(|h| h.id)
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(&Lengths("h")), ["doc"]);
        assert_eq!(ids(&Moved), ["doc", "second"]);
        let outcome = search_audio(&db, &Moved, &clip, &exact).unwrap();
        assert_eq!(outcome.query_tokens, 2);
        let second = outcome.hits.iter().find(|h| h.id == "second").unwrap();
        assert_eq!((second.start_ms, second.end_ms), (3000, 9000));

        // With a looser budget the variants' hits are ranked together, best first, and none
        // overlaps another in the same file.
        let loose = SearchOptions {
            k: Some(EditBudget::Absolute(1)),
            top: 50,
            ..clip_search_options()
        };
        let hits = search_audio(&db, &Moved, &clip, &loose).unwrap().hits;
        assert!(hits.len() >= 2, "{hits:?}");
        assert_eq!(hits[0].distance, 0);
        assert!(hits
            .windows(2)
            .all(|w| w[0].norm_distance <= w[1].norm_distance));
        for (i, a) in hits.iter().enumerate() {
            assert!(a.distance <= 1);
            for b in &hits[i + 1..] {
                let apart = a.doc_id != b.doc_id || a.end <= b.start || b.end <= a.start;
                assert!(apart, "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn clip_length_and_tokenizer_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir.path().join("a"), Some("h"));
        let opts = clip_search_options();
        for len in [7_999, 60 * 16_000 + 1] {
            let err = search_audio(&db, &Lengths("h"), &vec![0.0; len], &opts).unwrap_err();
            assert!(matches!(err, Error::ClipLength { .. }), "{err}");
        }
        assert!(search_audio(&db, &Lengths("h"), &[0.0; 8_000], &opts).is_ok());
        let err = search_audio(&db, &Lengths("other"), &[0.0; 16_000], &opts).unwrap_err();
        assert!(matches!(err, Error::TokenizerMismatch(_)), "{err}");
        let imported = database(&dir.path().join("b"), None);
        let err = search_audio(&imported, &Lengths("h"), &[0.0; 16_000], &opts).unwrap_err();
        assert!(matches!(err, Error::TokenizerMismatch(_)), "{err}");
    }

    /// A clip tokenized once, sent as JSON (as to the shards of an archive) and searched,
    /// finds what `search_audio` finds; a query of another tokenizer or with strings and times
    /// that disagree is refused.
    #[test]
    fn a_clip_tokenized_once_searches_like_search_audio() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = database(&dir.path().join("a"), Some("h"));
        add_second(&mut db);
        let clip = vec![0.0; 96_000];
        let options = SearchOptions {
            k: Some(EditBudget::Absolute(1)),
            top: 50,
            ..clip_search_options()
        };
        let query = tokenize_clip(&Moved, &clip).unwrap();
        assert_eq!(query.phases.len(), 2);
        let sent: ClipQuery = serde_json::from_slice(&serde_json::to_vec(&query).unwrap()).unwrap();
        // (The time may come back a unit in the last place off: serde_json's float parsing.)
        assert_eq!(
            (&sent.tokenizer, &sent.phases),
            (&query.tokenizer, &query.phases)
        );
        assert!((sent.tokenize_ms - query.tokenize_ms).abs() <= 1e-9 * query.tokenize_ms.max(1.0));
        let hits = |o: SearchOutcome| -> Vec<(String, usize, u32, u32)> {
            o.hits
                .into_iter()
                .map(|h| (h.id, h.start, h.start_ms, h.distance))
                .collect()
        };
        let once = search_clip(&db, &sent, &options).unwrap();
        assert_eq!(once.query_tokens, 2);
        assert_eq!(once.tokenize_ms, query.tokenize_ms);
        let direct = search_audio(&db, &Moved, &clip, &options).unwrap();
        assert!(hits(direct.clone()).len() >= 2);
        assert_eq!(hits(once), hits(direct));

        let foreign = tokenize_clip(&Lengths("other"), &clip).unwrap();
        let err = search_clip(&db, &foreign, &options).unwrap_err();
        assert!(matches!(err, Error::TokenizerMismatch(_)), "{err}");
        let mut broken = query.clone();
        broken.phases[1].times_ms.pop();
        let err = search_clip(&db, &broken, &options).unwrap_err();
        assert!(matches!(err, Error::InvalidOption(_)), "{err}");
        broken.phases.clear();
        assert!(search_clip(&db, &broken, &options).is_err());
        let err = tokenize_clip(&Moved, &[0.0; 7_999]).unwrap_err();
        assert!(matches!(err, Error::ClipLength { .. }), "{err}");
    }

    #[test]
    fn an_undecodable_clip_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir.path().join("db"), Some("h"));
        let clip = dir.path().join("clip.wav");
        std::fs::write(&clip, b"not audio").unwrap();
        let err = search_file(&db, &Lengths("h"), &clip, &clip_search_options()).unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err}");
        let err = search_bytes(
            &db,
            &Lengths("h"),
            b"not audio".to_vec(),
            Path::new("body.wav"),
            &clip_search_options(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err}");
        assert!(err.to_string().contains("body.wav"), "{err}");
    }

    /// 16-bit mono WAV bytes of `seconds` of a tone at 16 kHz.
    fn wav(seconds: f64) -> Vec<u8> {
        let n = (seconds * 16_000.0) as usize;
        let mut bytes = Vec::with_capacity(44 + 2 * n);
        let data = (2 * n) as u32;
        bytes.extend_from_slice(b"RIFF");
        bytes.extend_from_slice(&(36 + data).to_le_bytes());
        bytes.extend_from_slice(b"WAVEfmt ");
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
        bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
        bytes.extend_from_slice(&16_000u32.to_le_bytes());
        bytes.extend_from_slice(&32_000u32.to_le_bytes()); // bytes per second
        bytes.extend_from_slice(&2u16.to_le_bytes()); // block align
        bytes.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&data.to_le_bytes());
        for i in 0..n {
            let s = (0.3 * (i as f64 * 0.07).sin() * 32_767.0) as i16;
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        bytes
    }

    /// A clip in memory is searched exactly as the same clip in a file, and one over the limit
    /// is refused from its header as a clip length, not decoded.
    #[test]
    fn a_clip_in_memory_searches_like_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir.path().join("db"), Some("h"));
        let opts = clip_search_options();
        // 7.2 s: tokens 30, 30, 12, found in "doc" as in the test above.
        let bytes = wav(7.2);
        let clip = dir.path().join("clip.wav");
        std::fs::write(&clip, &bytes).unwrap();
        let from_file = search_file(&db, &Lengths("h"), &clip, &opts).unwrap();
        let from_bytes =
            search_bytes(&db, &Lengths("h"), bytes, Path::new("clip.wav"), &opts).unwrap();
        assert_eq!(from_file.query_tokens, 3);
        assert_eq!(from_file.hits[0].id, "doc");
        assert_eq!(from_bytes.hits, from_file.hits);
        assert_eq!(from_bytes.query_tokens, from_file.query_tokens);

        // 2 hours declared in the header: refused before any sample is decoded.
        let mut long = wav(0.1);
        let declared = 2 * 3600 * 32_000u32;
        long[4..8].copy_from_slice(&(36 + declared).to_le_bytes());
        long[40..44].copy_from_slice(&declared.to_le_bytes());
        let err = search_bytes(&db, &Lengths("h"), long, Path::new("long.wav"), &opts).unwrap_err();
        assert!(
            matches!(err, Error::ClipLength { seconds, .. } if seconds > 7000.0),
            "{err}"
        );
    }

    /// The times of a clip found inside a file whose tokens sit on an 80 ms grid: the clip
    /// starts 30 ms before the file token its first token matches (a grid phase), its first
    /// token's time is clamped at 0, and the clip has one token the file does not (where the
    /// alignment starts). The engine's start is that file token's time; the placed start is the
    /// clip's, and the end moves with it.
    #[test]
    fn a_hit_starts_where_the_clip_starts() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(64, 3)).unwrap();
        let tokens: Vec<u16> = (0..100u16).map(|i| (i * 7 + i / 3) % 61).collect();
        db.add_tokens(&[NewDoc {
            id: "grid".into(),
            tokens: tokens.clone(),
            times_ms: Some((0..100).map(|i| i * 80).collect()),
            duration_ms: Some(8_000),
        }])
        .unwrap();
        // The clip starts at 1,570 ms: file token 20 (1,600 ms) is 30 ms into it.
        let mut query = QueryPhase {
            tokens: tokens[20..58].to_vec(),
            times_ms: (0..38).map(|j| 30 + 80 * j).collect(),
        };
        query.times_ms[0] = 0;
        query.tokens.insert(5, 63);
        query.times_ms.insert(5, query.times_ms[5]);
        let options = SearchOptions {
            k: Some(EditBudget::Absolute(2)),
            ..clip_search_options()
        };
        let mut hit = db.search_tokens(&query.tokens, &options).unwrap().hits[0].clone();
        assert_eq!((hit.start, hit.start_ms), (20, 1600));
        let end = hit.end_ms;
        place_hit(&db, &mut hit, &query);
        assert_eq!((hit.start_ms, hit.end_ms), (1570, end - 30));
    }

    /// A clip played 5% faster than the file: its tokens come 5% sooner on its own clock, so a
    /// single offset would be right at one point only; the fitted line starts where the clip
    /// does. Without a rate change the fit is the offset itself.
    #[test]
    fn a_faster_clip_starts_where_it_starts() {
        // The clip starts at file time 2,000 ms; file tokens every 80 ms from there.
        let faster: Vec<(f64, f64)> = (1..40)
            .map(|k| (f64::from(k) * 80.0 / 1.05, 2000.0 + f64::from(k) * 80.0))
            .collect();
        let start = fitted_start(&faster, 3000.0 / 1.05).unwrap();
        assert!((start - 2000.0).abs() < 1.0, "{start}");
        let same: Vec<(f64, f64)> = (1..40)
            .map(|k| (f64::from(k) * 80.0 + 30.0, 2000.0 + f64::from(k) * 80.0))
            .collect();
        assert!((fitted_start(&same, 3000.0).unwrap() - 1970.0).abs() < 1e-9);
        // One point: its offset; none: no fit.
        assert_eq!(fitted_start(&[(100.0, 600.0)], 3000.0), Some(500.0));
        assert_eq!(fitted_start(&[], 3000.0), None);
        // An outlier match does not move the start.
        let mut odd = same.clone();
        odd[20].1 += 900.0;
        assert!((fitted_start(&odd, 3000.0).unwrap() - 1970.0).abs() < 1e-9);
    }

    /// Two real hits (pairalign-v2 on the robustness matrix's real archive; file times relative
    /// to the true start, `(clip ms, file ms)` of the matched run starts). A clip played 5%
    /// faster: its offsets at rate 1 sit on a few grid steps, whose residuals the old rule
    /// (keep rate 1 unless the fitted rate has the smaller spread) preferred, placing it 115 ms
    /// late. A clip on the file's clock whose last three tokens sit one cell early: they tilt
    /// the slope to 0.96, and without [`CLIP_END_MARGIN_MS`] the start moved 71 ms.
    #[test]
    fn real_hits_start_where_their_clips_start() {
        let at = |offsets: &[(f64, f64)]| -> Vec<(f64, f64)> {
            offsets.iter().map(|&(c, f)| (c, 5000.0 + f)).collect()
        };
        let faster = at(&[
            (157.0, 186.0),
            (472.0, 501.0),
            (787.0, 824.0),
            (866.0, 903.0),
            (1181.0, 1296.0),
            (1417.0, 1533.0),
            (1575.0, 1690.0),
            (1654.0, 1769.0),
            (1890.0, 2005.0),
            (2205.0, 2320.0),
            (2283.0, 2399.0),
            (2441.0, 2556.0),
            (2598.0, 2714.0),
        ]);
        let start = fitted_start(&faster, 2780.0).unwrap();
        assert!((start - 5000.0).abs() <= 20.0, "{start}");
        let late_end = at(&[
            (394.0, 401.0),
            (945.0, 960.0),
            (1024.0, 1039.0),
            (1260.0, 1275.0),
            (1339.0, 1354.0),
            (1496.0, 1512.0),
            (1654.0, 1669.0),
            (1732.0, 1748.0),
            (1969.0, 1984.0),
            (2205.0, 2220.0),
            (2441.0, 2378.0),
            (2677.0, 2614.0),
            (2756.0, 2693.0),
        ]);
        let start = fitted_start(&late_end, 2913.0).unwrap();
        assert!((start - 5000.0).abs() <= 20.0, "{start}");
    }

    /// `matched_pairs` pairs equal tokens in order, and an optimal alignment leaves no more
    /// query (or span) tokens unmatched than the Levenshtein distance.
    #[test]
    fn matched_pairs_follow_an_optimal_alignment() {
        // The engine's verifier is the distance oracle.
        let levenshtein = |a: &[u16], b: &[u16]| -> usize {
            pairalign_engine::Verifier::new(a, pairalign_engine::Mode::Global)
                .distance(b, None)
                .map_or(usize::MAX, |d| d as usize)
        };
        assert_eq!(matched_pairs(&[1, 2, 3], &[1, 9, 3]), [(0, 0), (2, 2)]);
        assert_eq!(
            matched_pairs(&[1, 2, 3], &[7, 1, 2, 3]),
            [(0, 1), (1, 2), (2, 3)]
        );
        assert!(matched_pairs(&[], &[1]).is_empty());
        let mut state = 7u64;
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % n) as u16
        };
        for _ in 0..500 {
            let a: Vec<u16> = (0..next(12)).map(|_| next(4)).collect();
            let b: Vec<u16> = (0..next(12)).map(|_| next(4)).collect();
            let pairs = matched_pairs(&a, &b);
            assert!(pairs.iter().all(|&(i, j)| a[i] == b[j]));
            assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
            let d = levenshtein(&a, &b);
            // On an optimal path every unmatched query token is a substitution or a deletion
            // and every unmatched span token a substitution or an insertion, each one edit.
            assert!(
                a.len() - pairs.len() <= d && b.len() - pairs.len() <= d,
                "{a:?} {b:?}"
            );
        }
    }

    /// A new or record-less database gets the default tokenizer, one that records a shipped
    /// model gets that model, and one built with other weights is an error that says so.
    #[test]
    fn database_tokenizer_follows_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let cpu = Device::Cpu;
        let new = database_tokenizer(&dir.path().join("none"), &cpu).unwrap();
        assert_eq!(new.id(), shipped::DEFAULT);
        let bare = database(&dir.path().join("bare"), None);
        assert_eq!(
            database_tokenizer(bare.dir(), &cpu).unwrap().id(),
            shipped::DEFAULT
        );

        let vq = AnyTokenizer::open("vq", &cpu).unwrap();
        let recorded = |id: &str, hash: &str| {
            let path = dir.path().join(format!("{id}-{}", &hash[..4]));
            let mut db = DatabaseWriter::create(&path, DatabaseConfig::new(512, 3)).unwrap();
            db.set_tokenizer(TokenizerRecord {
                id: id.into(),
                weights_hash: hash.into(),
            })
            .unwrap();
            path
        };
        let tok = database_tokenizer(&recorded("vq", vq.weights_hash()), &cpu).unwrap();
        assert_eq!((tok.id(), tok.weights_hash()), ("vq", vq.weights_hash()));
        // The v2 models are found by the id a database records, and are not v1.
        for name in ["vq-v2", "pairalign-v2"] {
            let v2 = AnyTokenizer::open(name, &cpu).unwrap();
            assert_eq!(v2.id(), name);
            let tok = database_tokenizer(&recorded(name, v2.weights_hash()), &cpu).unwrap();
            assert_eq!((tok.id(), tok.weights_hash()), (name, v2.weights_hash()));
        }
        assert_ne!(
            AnyTokenizer::open("vq-v2", &cpu).unwrap().weights_hash(),
            vq.weights_hash()
        );

        let err = database_tokenizer(&recorded("vq", "0123abcd"), &cpu).unwrap_err();
        assert!(matches!(err, Error::TokenizerMismatch(_)), "{err}");
        assert!(err.to_string().contains("not a shipped model"), "{err}");
        let err = database_tokenizer(&recorded("lengths", "feedbeef"), &cpu).unwrap_err();
        assert!(err.to_string().contains("lengths"), "{err}");
    }
}
