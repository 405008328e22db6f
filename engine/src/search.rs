//! Search: query string -> candidate regions (diagonal voting on positional q-gram hits) ->
//! verification (bit-parallel Levenshtein) -> ranked hits. Also the exhaustive scan that the filter
//! is tested against.
//!
//! The filter rests on the q-gram lemma (Jokinen & Ukkonen 1991): if the query `P` (length `m`)
//! matches a substring `T'` with at most `k` edits, then at least `t = m - q + 1 - k*q` of `P`'s
//! q-grams occur in `T'`, and in an alignment with at most `k` indels every preserved q-gram lies on
//! a diagonal (text position minus query position) within `k` of the others and within `k` of the
//! match start. So we count hits per diagonal window of width `k + 1`; a window with fewer than `t`
//! hits cannot hold a match. When `t >= 1` this is lossless (proven against exhaustive search by the
//! tests); when `t <= 0` the lemma says nothing and the windows are ranked by their counts instead,
//! and only the best `max_regions` are verified (recall measured in docs/RESULTS.md).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use roaring::RoaringBitmap;
use serde::Serialize;

use crate::database::Searcher;
use crate::segment::{qgram_key, Segment};
use crate::verifier::{Match, Mode, Verifier};
use crate::{Error, Result, Symbol};

/// Regions verified per parallel task.
const VERIFY_CHUNK: usize = 4096;

/// What collecting, sorting and voting one q-gram match costs, in verifier cells. A segment's
/// matches are sorted on one thread (about 20 ns a match) while a scan verifies on every core
/// (20 G cells/s on 2 cores), so a match costs about 400 cells a core, 800 against the scan
/// (scripts/scale-bench.sh: at 500 h of real tokens, the lossless filter at 200 was still slower
/// than the scan at p50, 46 against 41 ms). A segment whose matches would cost more than
/// verifying all of it is verified whole instead: the filter is never much slower than the scan
/// it replaces, and the scan is exact.
const MATCH_COST_CELLS: u64 = 800;

/// Whether tests force the pigeonhole filter on (`Some(true)`) or off for every lossless plan
/// that fits it; `None` (always, outside tests) lets the costs decide.
#[cfg(test)]
fn force_pieces() -> Option<bool> {
    FORCE_PIECES.with(|f| f.get())
}

#[cfg(not(test))]
fn force_pieces() -> Option<bool> {
    None
}

#[cfg(test)]
thread_local! {
    static FORCE_PIECES: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// Largest table of the pigeonhole filter's dynamic program (`k + 1` rows of a query's length):
/// 32 MB, a 3,000-token query (4 minutes) at k 0.25.
const MAX_PIECE_CELLS: usize = 1 << 22;

/// Minimum q-gram hits in a diagonal window when the filter is ranked rather than lossless.
const RANKED_MIN_VOTES: i64 = 2;

/// Longest query accepted, in tokens (a minute of audio is about 760).
pub const MAX_QUERY_TOKENS: usize = 65_535;

/// How many edits a hit may have.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EditBudget {
    /// At most this many edits.
    Absolute(u32),
    /// At most this fraction of the query length (rounded down), in `[0, 1]`.
    Fraction(f64),
}

impl EditBudget {
    /// Parses the CLI form: an integer is absolute, a number below 1 a fraction of the query length.
    pub fn parse(text: &str) -> Result<EditBudget> {
        let text = text.trim();
        if let Ok(k) = text.parse::<u32>() {
            return Ok(EditBudget::Absolute(k));
        }
        match text.parse::<f64>() {
            Ok(f) if (0.0..1.0).contains(&f) => Ok(EditBudget::Fraction(f)),
            _ => Err(Error::InvalidInput(format!(
                "k must be a non-negative integer or a fraction in [0, 1), got {text:?}"
            ))),
        }
    }

    /// The absolute budget for a query of `m` tokens.
    pub fn resolve(self, m: usize) -> u32 {
        match self {
            EditBudget::Absolute(k) => k,
            EditBudget::Fraction(f) => (f.clamp(0.0, 1.0) * m as f64).floor() as u32,
        }
    }
}

/// How to search.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchOptions {
    /// Number of hits to return.
    pub top: usize,
    /// Edit budget; `None` means unbounded (every document's best match competes).
    pub k: Option<EditBudget>,
    /// `Infix` finds the query inside documents; `Global` compares whole documents.
    pub mode: Mode,
    /// Verify every document instead of filtering with q-grams.
    pub exhaustive: bool,
    /// When the filter cannot be lossless, how many candidate regions (best vote counts first) are
    /// verified.
    pub max_regions: usize,
    /// When the filter cannot be lossless and verifying everything costs at most this many
    /// dynamic-programming cells (archive tokens times query length), search exhaustively instead:
    /// exact beats ranked when it is this cheap. The default is a few milliseconds of verifier time.
    pub exhaustive_below_cells: u64,
    /// When set, only these documents (by [`Hit::doc_id`]) are searched: a metadata filter
    /// resolved before verification. Documents outside it cost nothing.
    pub only: Option<Arc<RoaringBitmap>>,
    /// A segment with at least this many tokens per thread has its q-gram matches collected
    /// and voted in parts (of its diagonals) in parallel, up to one part per thread: one large
    /// segment (a compacted archive) would otherwise be voted on one core. The results do not
    /// depend on it.
    pub part_min_tokens: u64,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            top: 10,
            k: Some(EditBudget::Fraction(0.4)),
            mode: Mode::Infix,
            exhaustive: false,
            max_regions: 10_000,
            exhaustive_below_cells: 50_000_000,
            only: None,
            part_min_tokens: 4_000_000,
        }
    }
}

/// One place where the query occurs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hit {
    /// The document's id.
    pub id: String,
    /// The document's number in the database.
    #[serde(skip)]
    pub doc_id: u32,
    /// First matched token (index into the document's string).
    pub start: usize,
    /// One past the last matched token.
    pub end: usize,
    /// Start time of the first matched token.
    pub start_ms: u32,
    /// Start time of the token after the match, or the document's duration at its end.
    pub end_ms: u32,
    /// Levenshtein distance between the query and `tokens[start..end]`.
    pub distance: u32,
    /// `distance` divided by the query length.
    pub norm_distance: f64,
}

/// Hits and what it took to find them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchOutcome {
    /// Best hits, sorted by distance, then id, then start.
    pub hits: Vec<Hit>,
    /// The absolute edit budget used.
    pub k: Option<u32>,
    /// True when the result is guaranteed equal to exhaustive search (exhaustive, or the q-gram
    /// lemma's threshold was positive).
    pub lossless: bool,
    /// Candidate regions verified.
    pub regions: usize,
    /// Tokens of text the verifier read.
    pub verified_tokens: u64,
    /// Wall time in milliseconds.
    pub took_ms: f64,
}

/// A hit before it is named: where it is by segment and ordinal. Names and times are read only
/// for the hits that make the final top N ([`Searcher::finish`]).
#[derive(Clone, Copy, Debug)]
struct RawHit {
    segment: usize,
    ord: usize,
    doc_id: u32,
    start: usize,
    end: usize,
    distance: u32,
}

/// What the q-gram filter leaves to verify for one query string: regions, and segments to verify
/// whole (their matches would have cost more than the scan).
#[derive(Clone, Debug, Default)]
struct Candidates {
    regions: Vec<Region>,
    scanned: Vec<usize>,
}

/// One segment's part of [`Candidates`].
enum SegmentCandidates {
    Regions(Vec<Region>),
    Scan,
}

/// The matches of one part of a segment's diagonals: windows start on diagonals (shifted by
/// `m`, as packed) below `starts_below`, and the matches of the `band` diagonals above it are
/// included so that the last windows are whole.
struct PartHits {
    hits: Vec<u64>,
    min_votes: u32,
    starts_below: u64,
}

/// The plans (by index) that read one q-gram, with its offsets in each.
type GramUsers<'p> = Vec<(usize, &'p [u32])>;

/// What a segment's candidate pass reads ([`segment_reads`]).
struct SegmentReads<'p> {
    /// For each q-gram to read (by key): the plans that keep it.
    reads: Vec<(u64, GramUsers<'p>)>,
    /// Per plan, the votes a window needs, or `None` to verify the segment whole.
    min_votes: Vec<Option<u32>>,
}

/// A stretch of one document to verify.
#[derive(Clone, Copy, Debug)]
struct Region {
    segment: usize,
    ord: usize,
    /// Document-relative token range.
    start: usize,
    end: usize,
    votes: u32,
}

/// One query string of a search, with what its length and the options make of it.
struct Plan<'q> {
    query: &'q [Symbol],
    /// The absolute edit budget.
    k: Option<u32>,
    /// The q-gram lemma's threshold (< 1: no guarantee).
    threshold: i64,
    /// The result equals exhaustive search.
    lossless: bool,
    /// Verify every document instead of filtering.
    scan: bool,
    /// Window drift allowed when voting.
    band: i64,
    /// The query's q-grams (keys) and the offsets where each occurs.
    grams: HashMap<u64, Vec<u32>>,
    /// Lossless by pieces instead of by counting ([`choose_pieces`]): `k + 1` disjoint q-grams
    /// of the query (key, offset), one of which every match holds unchanged.
    pieces: Option<Vec<(u64, u32)>>,
}

impl Searcher {
    /// Searches the database for `query`.
    pub fn search_tokens(
        &self,
        query: &[Symbol],
        options: &SearchOptions,
    ) -> Result<SearchOutcome> {
        let mut outcomes = self.search_many(&[query], options)?;
        outcomes
            .pop()
            .ok_or_else(|| Error::InvalidInput("the query has no tokens".into()))
    }

    /// Searches for several strings of one query at once (a clip's grid phases), one outcome per
    /// string, each what [`Searcher::search_tokens`] gives for it: one candidate pass visits each
    /// segment once and reads the postings of a q-gram the strings share once. Each outcome's
    /// `took_ms` is the time of the whole call.
    pub fn search_many(
        &self,
        queries: &[&[Symbol]],
        options: &SearchOptions,
    ) -> Result<Vec<SearchOutcome>> {
        let started = Instant::now();
        // Every segment checked in full before its contents are read (done once, usually in the
        // background since open).
        self.verified()?;
        let plans: Vec<Plan<'_>> = queries
            .iter()
            .map(|query| self.plan(query, options))
            .collect::<Result<_>>()?;
        let filtered: Vec<&Plan<'_>> = plans.iter().filter(|p| !p.scan).collect();
        let mut candidates = self.candidate_regions(&filtered, options)?.into_iter();
        let mut outcomes = Vec::with_capacity(plans.len());
        for plan in &plans {
            let verifier = Verifier::new(plan.query, options.mode);
            let (hits, regions, verified_tokens) = if plan.k.is_none() {
                self.scan_nearest(&verifier, options)
            } else if plan.scan {
                self.scan_all(&verifier, plan.k, options, None)
            } else {
                let Candidates { regions, scanned } = candidates.next().unwrap_or_default();
                let verified_tokens = regions.iter().map(|r| (r.end - r.start) as u64).sum();
                let mut hits: Vec<RawHit> = regions
                    .par_chunks(VERIFY_CHUNK)
                    .flat_map_iter(|chunk| self.verify_regions(&verifier, chunk, plan.k, options))
                    .collect();
                let (mut count, mut tokens) = (regions.len(), verified_tokens);
                if !scanned.is_empty() {
                    let (more, docs, more_tokens) =
                        self.scan_all(&verifier, plan.k, options, Some(&scanned));
                    hits.extend(more);
                    count += docs;
                    tokens += more_tokens;
                }
                (hits, count, tokens)
            };
            let hits = self.finish(hits, options.top, plan.query.len());
            outcomes.push(SearchOutcome {
                hits,
                k: plan.k,
                lossless: plan.lossless,
                regions,
                verified_tokens,
                took_ms: 0.0,
            });
        }
        let took_ms = started.elapsed().as_secs_f64() * 1e3;
        for outcome in &mut outcomes {
            outcome.took_ms = took_ms;
        }
        Ok(outcomes)
    }

    /// Checks one query string and decides how it is searched.
    fn plan<'q>(&self, query: &'q [Symbol], options: &SearchOptions) -> Result<Plan<'q>> {
        if query.is_empty() {
            return Err(Error::InvalidInput("the query has no tokens".into()));
        }
        if query.len() > MAX_QUERY_TOKENS {
            return Err(Error::InvalidInput(format!(
                "the query has {} tokens; at most {MAX_QUERY_TOKENS} are accepted",
                query.len()
            )));
        }
        // A symbol the database cannot hold matches nothing: say so rather than answer "no
        // hits" (a client that sends another tokenizer's strings learns it here).
        let vocab = self.config().vocab_size;
        crate::database::check_vocabulary(query, vocab)?;
        let m = query.len();
        let q = self.config().q as usize;
        let k = options.k.map(|budget| budget.resolve(m));
        let total_tokens: u64 = self.segments.iter().map(|s| s.token_count()).sum();
        let cheap = total_tokens.saturating_mul(m as u64) <= options.exhaustive_below_cells;
        let threshold = lemma_threshold(m, q, k);
        // Without a budget the N nearest are found exactly by a bounded scan (`scan_nearest`).
        let lossless = options.exhaustive || threshold >= 1 || cheap || k.is_none();
        let scan = options.exhaustive || (threshold < 1 && cheap) || k.is_none();
        let mut grams: HashMap<u64, Vec<u32>> = HashMap::new();
        if !scan && m >= q {
            for (i, gram) in query.windows(q).enumerate() {
                grams
                    .entry(qgram_key(gram, vocab))
                    .or_default()
                    .push(i as u32);
            }
        }
        let pieces = match k {
            Some(k) if !scan && threshold >= 1 => self.choose_pieces(query, k, total_tokens),
            _ => None,
        };
        Ok(Plan {
            query,
            k,
            threshold,
            lossless,
            scan,
            // Band the windows: with no bound, allow a drift of half the query.
            band: i64::from(k.unwrap_or(m as u32 / 2).min(m as u32)),
            grams,
            pieces,
        })
    }

    /// The pigeonhole filter for a lossless budget `k`, when it is cheaper than counting: cut
    /// into `k + 1` disjoint q-grams, the query keeps at least one of them unchanged in every
    /// match within `k` edits (an edit breaks at most one piece), at the match's diagonal within
    /// `k`. So the postings of `k + 1` q-grams, chosen where they are rarest (a dynamic program
    /// over the query's offsets), find every match, while counting reads the postings of every
    /// q-gram of the query: runs of the pause symbol make a few of them millions long (issue
    /// 23). Each posting becomes a window of `m + 3k` tokens to verify, so pieces are chosen
    /// only when their postings and windows cost less than counting's matches (and than the
    /// scan). `None` when counting is as cheap, or no `k + 1` disjoint q-grams fit.
    fn choose_pieces(
        &self,
        query: &[Symbol],
        k: u32,
        total_tokens: u64,
    ) -> Option<Vec<(u64, u32)>> {
        let q = self.config().q as usize;
        let vocab = self.config().vocab_size;
        let m = query.len();
        let need = k as usize + 1;
        // The dynamic program's table is `need x m` costs: a long query with a wide budget (up
        // to 65,535 tokens) is left to counting rather than allocate gigabytes.
        if m < q || need * q > m || need.saturating_mul(m + 1) > MAX_PIECE_CELLS {
            return None;
        }
        let keys: Vec<u64> = query.windows(q).map(|g| qgram_key(g, vocab)).collect();
        let mut lengths: HashMap<u64, u64> = HashMap::new();
        let cost: Vec<u64> = keys
            .iter()
            .map(|&key| {
                *lengths.entry(key).or_insert_with(|| {
                    self.segments
                        .iter()
                        .map(|s| u64::from(s.posting_len(key).unwrap_or(0)))
                        .sum()
                })
            })
            .collect();
        let n = keys.len();
        // best[j][i]: the least postings of j pieces among offsets i.., u64::MAX if none fit.
        let mut best = vec![vec![u64::MAX; n + q + 1]; need + 1];
        for row in best[0].iter_mut() {
            *row = 0;
        }
        for j in 1..=need {
            for i in (0..n).rev() {
                let skip = best[j][i + 1];
                let take = best[j - 1][i + q].saturating_add(cost[i]);
                best[j][i] = skip.min(take);
            }
        }
        let chosen = best[need][0];
        if chosen == u64::MAX {
            return None;
        }
        let counted: u64 = cost.iter().sum();
        let window = (m + 3 * k as usize) as u64;
        let pieces_cells = chosen.saturating_mul(MATCH_COST_CELLS + window * m as u64);
        let counted_cells = counted.saturating_mul(MATCH_COST_CELLS);
        let scan_cells = total_tokens.saturating_mul(m as u64);
        let forced = force_pieces();
        if forced == Some(false)
            || (forced.is_none() && (pieces_cells >= counted_cells || pieces_cells >= scan_cells))
        {
            return None;
        }
        let mut pieces = Vec::with_capacity(need);
        let (mut i, mut j) = (0, need);
        while j > 0 {
            if best[j][i] == best[j - 1][i + q].saturating_add(cost[i]) {
                pieces.push((keys[i], i as u32));
                i += q;
                j -= 1;
            } else {
                i += 1;
            }
        }
        Some(pieces)
    }

    /// Verifies every live document, whole, in parallel tasks of [`VERIFY_CHUNK`] documents
    /// (no archive-sized allocations): the exhaustive search. Returns the hits, the number of
    /// documents and the number of tokens verified.
    fn scan_all(
        &self,
        verifier: &Verifier,
        k: Option<u32>,
        options: &SearchOptions,
        which: Option<&[usize]>,
    ) -> (Vec<RawHit>, usize, u64) {
        let tasks: Vec<(usize, usize)> = self
            .segments
            .iter()
            .enumerate()
            .filter(|(s, _)| which.is_none_or(|w| w.contains(s)))
            .flat_map(|(s, segment)| {
                (0..segment.doc_count())
                    .step_by(VERIFY_CHUNK)
                    .map(move |first| (s, first))
            })
            .collect();
        let per_task: Vec<(Vec<RawHit>, usize, u64)> = tasks
            .par_iter()
            .map(|&(s, first)| {
                let segment = &self.segments[s];
                let last = (first + VERIFY_CHUNK).min(segment.doc_count());
                let regions: Vec<Region> = (first..last)
                    .filter(|&ord| self.searchable(segment.doc_id(ord), options))
                    .map(|ord| Region {
                        segment: s,
                        ord,
                        start: 0,
                        end: segment.doc_tokens(ord).len(),
                        votes: 0,
                    })
                    .collect();
                let tokens = regions.iter().map(|r| r.end as u64).sum();
                (
                    self.verify_regions(verifier, &regions, k, options),
                    regions.len(),
                    tokens,
                )
            })
            .collect();
        let mut hits = Vec::new();
        let (mut docs, mut tokens) = (0, 0);
        for (task_hits, task_docs, task_tokens) in per_task {
            hits.extend(task_hits);
            docs += task_docs;
            tokens += task_tokens;
        }
        (hits, docs, tokens)
    }

    /// Whether document number `doc_id` takes part in a search: live, and inside the options'
    /// restriction when there is one.
    fn searchable(&self, doc_id: u32, options: &SearchOptions) -> bool {
        !self.deletes.contains(doc_id) && options.only.as_ref().is_none_or(|o| o.contains(doc_id))
    }

    /// Candidate regions of each plan, from q-gram diagonal voting (lossless for a plan whose
    /// `threshold >= 1`), in one pass over the segments.
    fn candidate_regions(
        &self,
        plans: &[&Plan<'_>],
        options: &SearchOptions,
    ) -> Result<Vec<Candidates>> {
        if plans.is_empty() {
            return Ok(Vec::new());
        }
        // A large segment is voted in parts of its diagonals, in parallel: one segment (a
        // compacted archive) would otherwise sort and vote on one core.
        let threads = rayon::current_num_threads() as u64;
        // Shifted diagonals (text position + m - query offset) lie below this.
        let longest = plans.iter().map(|p| p.query.len()).max().unwrap_or(0) as u64;
        let per_segment: Vec<Result<Vec<SegmentCandidates>>> = self
            .segments
            .par_iter()
            .enumerate()
            .map(|(s, segment)| {
                let end = segment.token_count() + longest + 1;
                let parts =
                    (segment.token_count() / options.part_min_tokens.max(1)).clamp(1, threads);
                let step = end.div_ceil(parts);
                let bounds: Vec<u64> = (0..=parts).map(|i| (i * step).min(end)).collect();
                // A metadata restriction drops the regions of documents outside it.
                let restrict = |regions: &mut Vec<Region>| {
                    if options.only.is_some() {
                        regions.retain(|r| self.searchable(segment.doc_id(r.ord), options));
                    }
                };
                let voted: Vec<&Plan<'_>> = plans
                    .iter()
                    .copied()
                    .filter(|p| p.pieces.is_none())
                    .collect();
                let reads = segment_reads(segment, &voted);
                let mut hits = collect_hits(segment, &voted, &reads, &bounds)?.into_iter();
                plans
                    .iter()
                    .map(|plan| {
                        if let Some(pieces) = &plan.pieces {
                            let mut regions = self.piece_regions(s, segment, plan, pieces)?;
                            restrict(&mut regions);
                            return Ok(SegmentCandidates::Regions(regions));
                        }
                        Ok(match hits.next().flatten() {
                            None => SegmentCandidates::Scan,
                            Some(parts) => {
                                // Ranked: only the budget's best regions are verified (chosen after
                                // a metadata restriction, when there is one).
                                let keep = (plan.threshold < 1 && options.only.is_none())
                                    .then_some(options.max_regions);
                                let per_part: Vec<Vec<Region>> = parts
                                    .into_par_iter()
                                    .map(|mut part| {
                                        sort_by_diagonal(&mut part.hits);
                                        let mut regions = self.vote(s, segment, part, plan, keep);
                                        restrict(&mut regions);
                                        regions
                                    })
                                    .collect();
                                SegmentCandidates::Regions(per_part.concat())
                            }
                        })
                    })
                    .collect()
            })
            .collect();
        let mut all: Vec<Candidates> = vec![Candidates::default(); plans.len()];
        for (s, segment_candidates) in per_segment.into_iter().enumerate() {
            for (candidates, found) in all.iter_mut().zip(segment_candidates?) {
                match found {
                    SegmentCandidates::Scan => candidates.scanned.push(s),
                    SegmentCandidates::Regions(regions) => candidates.regions.extend(regions),
                }
            }
        }
        // Where windows of two parts reach into the same stretch of a document, their regions
        // overlap: merge them, so that regions stay disjoint within a document. Each part's
        // regions ascend, so a segment voted whole is already in order.
        for candidates in &mut all {
            candidates
                .regions
                .sort_by_key(|r| (r.segment, r.ord, r.start));
            let mut merged: Vec<Region> = Vec::with_capacity(candidates.regions.len());
            for region in candidates.regions.drain(..) {
                match merged.last_mut() {
                    Some(last)
                        if (last.segment, last.ord) == (region.segment, region.ord)
                            && region.start <= last.end =>
                    {
                        last.end = last.end.max(region.end);
                        last.votes = last.votes.max(region.votes);
                    }
                    _ => merged.push(region),
                }
            }
            candidates.regions = merged;
        }
        for (plan, Candidates { regions, .. }) in plans.iter().zip(&mut all) {
            if options.mode == Mode::Global {
                // Global mode compares whole documents (each with its best votes).
                for r in regions.iter_mut() {
                    r.start = 0;
                    r.end = self.segments[r.segment].doc_tokens(r.ord).len();
                }
                regions.sort_by_key(|r| (r.segment, r.ord, std::cmp::Reverse(r.votes)));
                regions.dedup_by_key(|r| (r.segment, r.ord));
            }
            if plan.threshold < 1 && regions.len() > options.max_regions {
                // Ranked: the budget's best votes.
                regions.select_nth_unstable_by(options.max_regions, |a, b| b.votes.cmp(&a.votes));
                regions.truncate(options.max_regions);
            }
        }
        Ok(all)
    }

    /// Turns sorted diagonal hits into merged document regions with at least `min_votes` votes in
    /// a diagonal window of width `plan.band + 1`. A window's votes are the q-grams an alignment through
    /// it could preserve: each query offset and each text position counts once (an alignment maps
    /// one to one), so the smaller of the two distinct counts. That bound keeps the q-gram lemma
    /// (the lossless filter stays lossless) and stops runs of one symbol from voting many times:
    /// a run of `r` pauses in the query against a run of `s` in the text is `(r - 2)(s - 2)` hits
    /// but at most `min(r, s) - 2` preserved q-grams.
    fn vote(
        &self,
        s: usize,
        segment: &Segment,
        part: PartHits,
        plan: &Plan<'_>,
        keep: Option<usize>,
    ) -> Vec<Region> {
        let PartHits {
            hits,
            min_votes,
            starts_below,
        } = part;
        let (m, band) = (plan.query.len(), plan.band);
        // hits are (diagonal + m) << 16 | query offset, sorted.
        let diag = |h: u64| (h >> 16) as i64 - m as i64;
        let offset = |h: u64| (h & 0xffff) as usize;
        // Text positions in a window span less than `band + m + 1`: a ring of counts covers them.
        let ring = (band as usize + m + 1).next_power_of_two();
        let mask = ring as i64 - 1;
        let slot = |h: u64| ((diag(h) + offset(h) as i64) & mask) as usize;
        let mut per_offset = vec![0u32; m];
        let mut per_position = vec![0u32; ring];
        let (mut offsets, mut positions) = (0u32, 0u32);
        let mut spans: Vec<(i64, i64, u32)> = Vec::new();
        // The window is hits[lo..next].
        let mut next = 0;
        for lo in 0..hits.len() {
            if hits[lo] >> 16 >= starts_below {
                // The next part's windows.
                break;
            }
            let d = diag(hits[lo]);
            while next < hits.len() && diag(hits[next]) <= d + band {
                let h = hits[next];
                offsets += u32::from(per_offset[offset(h)] == 0);
                per_offset[offset(h)] += 1;
                positions += u32::from(per_position[slot(h)] == 0);
                per_position[slot(h)] += 1;
                next += 1;
            }
            let votes = offsets.min(positions);
            let last = diag(hits[next - 1]);
            let h = hits[lo];
            per_offset[offset(h)] -= 1;
            offsets -= u32::from(per_offset[offset(h)] == 0);
            per_position[slot(h)] -= 1;
            positions -= u32::from(per_position[slot(h)] == 0);
            if votes < min_votes {
                continue;
            }
            // Rank by votes, ties by the window's raw hits (runs that agree at length).
            let rank = votes << 16 | (next - lo).min(0xffff) as u32;
            // A match starting on this window's diagonals lies within these text positions.
            let start = d - band;
            let end = last + band + m as i64 + band;
            match spans.last_mut() {
                Some(last) if start <= last.1 => {
                    last.1 = last.1.max(end);
                    last.2 = last.2.max(rank);
                }
                _ => spans.push((start, end, rank)),
            }
        }
        if let Some(keep) = keep.filter(|&keep| spans.len() > keep) {
            // Only the spans with the most votes can make the ranked budget: name the documents
            // of those alone.
            spans.select_nth_unstable_by(keep, |a, b| b.2.cmp(&a.2));
            spans.truncate(keep);
            spans.sort_unstable_by_key(|span| span.0);
        }
        self.span_regions(s, segment, spans)
    }

    /// The regions of the pigeonhole filter in one segment ([`Searcher::choose_pieces`]): every
    /// posting of a piece at query offset `o` and text position `p` puts a match's start within
    /// `k` of diagonal `p - o`, so the window `p - o - k .. p - o + m + 2k` holds it whole.
    fn piece_regions(
        &self,
        s: usize,
        segment: &Segment,
        plan: &Plan<'_>,
        pieces: &[(u64, u32)],
    ) -> Result<Vec<Region>> {
        let (m, k) = (plan.query.len() as i64, plan.band);
        let mut diagonals: Vec<i64> = Vec::new();
        for &(key, offset) in pieces {
            segment.for_each_position(key, |position| {
                diagonals.push(i64::from(position) - i64::from(offset));
            })?;
        }
        diagonals.sort_unstable();
        diagonals.dedup();
        let mut spans: Vec<(i64, i64, u32)> = Vec::new();
        for d in diagonals {
            let (start, end) = (d - k, d + m + 2 * k);
            match spans.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => spans.push((start, end, 0)),
            }
        }
        Ok(self.span_regions(s, segment, spans))
    }

    /// Segment-global spans `(start, end, rank)`, ascending and disjoint, as regions of the
    /// live documents they cover (a span across documents is cut at their bounds).
    fn span_regions(
        &self,
        s: usize,
        segment: &Segment,
        spans: Vec<(i64, i64, u32)>,
    ) -> Vec<Region> {
        let total = segment.token_count() as i64;
        let mut regions: Vec<Region> = Vec::new();
        // Spans ascend, so each lookup starts where the last one ended.
        let mut cursor = 0;
        for (start, end, votes) in spans {
            let start = start.clamp(0, total) as u32;
            let end = end.clamp(0, total) as u32;
            if start >= end {
                continue;
            }
            let Some(mut ord) = segment.doc_at_position_from(start, cursor) else {
                continue;
            };
            cursor = ord;
            while let Some((doc_start, doc_len, doc_id)) = segment.doc_span(ord) {
                if doc_start >= end {
                    break;
                }
                let doc_end = doc_start + doc_len;
                if !self.deletes.contains(doc_id) && doc_len > 0 {
                    let region = Region {
                        segment: s,
                        ord,
                        start: (start.max(doc_start) - doc_start) as usize,
                        end: (end.min(doc_end) - doc_start) as usize,
                        votes,
                    };
                    match regions.last_mut() {
                        Some(last) if last.ord == ord && region.start <= last.end => {
                            last.end = last.end.max(region.end);
                            last.votes = last.votes.max(votes);
                        }
                        _ => regions.push(region),
                    }
                }
                ord += 1;
            }
        }
        regions
    }

    /// Verifies regions, which do not overlap within a document (as the filter and the scan
    /// make them), and returns the hits of those that can make the top `options.top`.
    fn verify_regions(
        &self,
        verifier: &Verifier,
        regions: &[Region],
        k: Option<u32>,
        options: &SearchOptions,
    ) -> Vec<RawHit> {
        // Every region goes through the batched (SIMD) distance first, and only those within k
        // are located: most candidates fail, and the batch is several times faster per token than
        // `matches`, which then rescans the few that pass.
        // Without a bound every region passes, so the first pass would be wasted.
        let passing: Vec<&Region> = if k.is_none() {
            regions.iter().collect()
        } else {
            let texts: Vec<&[Symbol]> = regions.iter().map(|r| self.region_tokens(r)).collect();
            let mut passing: Vec<(&Region, u32)> = regions
                .iter()
                .zip(verifier.distances(&texts, k))
                .filter_map(|(r, d)| Some((r, d?)))
                .collect();
            // Each passing region holds a hit at its distance, and the regions are disjoint: once
            // `top` of them are at most some distance, a region above it cannot place a hit in the
            // top (ties at it still can). With a wide budget almost every region passes, and
            // locating them all would cost more than the batch.
            let top = options.top;
            if top > 0 && passing.len() > top {
                passing.select_nth_unstable_by_key(top - 1, |&(_, d)| d);
                let cut = passing[top - 1].1;
                passing.retain(|&(_, d)| d <= cut);
            }
            passing.into_iter().map(|(r, _)| r).collect()
        };
        let mode = options.mode;
        passing
            .par_iter()
            .flat_map_iter(|r| {
                let text = self.region_tokens(r);
                let matches = match (mode, k) {
                    (Mode::Infix, Some(k)) => verifier.matches(text, k),
                    _ => verifier.locate(text, k).into_iter().collect(),
                };
                let doc_id = self.segments[r.segment].doc_id(r.ord);
                matches
                    .into_iter()
                    .map(move |found| raw_hit(r, doc_id, found))
            })
            .collect()
    }

    fn region_tokens(&self, r: &Region) -> &[Symbol] {
        &self.segments[r.segment].doc_tokens(r.ord)[r.start..r.end]
    }

    /// The final top `top` of `raw`, named: overlapping hits in a document reduced to the best,
    /// then the best by distance; only the hits that can make the cut (every hit at the cut's
    /// distance, for the tie-break by id) are named and timed, then sorted by distance, id and
    /// start.
    fn finish(&self, raw: Vec<RawHit>, top: usize, m: usize) -> Vec<Hit> {
        let mut raw = keep_best_of_overlapping(raw);
        if top == 0 {
            return Vec::new();
        }
        if raw.len() > top {
            raw.select_nth_unstable_by_key(top - 1, |h| h.distance);
            let cut = raw[top - 1].distance;
            raw.retain(|h| h.distance <= cut);
        }
        let mut hits: Vec<Hit> = raw.iter().map(|r| self.named(r, m)).collect();
        hits.sort_by(|a, b| (a.distance, &a.id, a.start).cmp(&(b.distance, &b.id, b.start)));
        hits.truncate(top);
        hits
    }

    fn named(&self, r: &RawHit, m: usize) -> Hit {
        let doc = self.segments[r.segment].doc(r.ord);
        let time_at = |i: usize| doc.times_ms.get(i).unwrap_or(doc.duration_ms);
        Hit {
            id: doc.name.to_string(),
            doc_id: r.doc_id,
            start: r.start,
            end: r.end,
            start_ms: time_at(r.start),
            end_ms: time_at(r.end),
            distance: r.distance,
            norm_distance: f64::from(r.distance) / m as f64,
        }
    }

    /// The `options.top` nearest documents exactly, without a budget: every searchable document
    /// through the batched distance, in parallel tasks, each bounded by the `top`-th best distance
    /// found so far (the bound tightens as tasks finish, and the banded kernels get cheaper with
    /// it); then only the documents that make the cut are located (where in the document).
    /// Returns the hits, the documents and the tokens verified.
    fn scan_nearest(
        &self,
        verifier: &Verifier,
        options: &SearchOptions,
    ) -> (Vec<RawHit>, usize, u64) {
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::sync::Mutex;

        let top = options.top;
        let bound = AtomicU32::new(u32::MAX);
        // The `top` best distances so far (a max-heap), shared by the tasks.
        let best = Mutex::new(std::collections::BinaryHeap::<u32>::with_capacity(
            top.min(1 << 16),
        ));
        let tasks: Vec<(usize, usize)> = self
            .segments
            .iter()
            .enumerate()
            .flat_map(|(s, segment)| {
                (0..segment.doc_count())
                    .step_by(VERIFY_CHUNK)
                    .map(move |first| (s, first))
            })
            .collect();
        // Per task: the documents within the bound (segment, ordinal, distance), documents and
        // tokens verified.
        type Found = Vec<(usize, usize, u32)>;
        let per_task: Vec<(Found, usize, u64)> = tasks
            .par_iter()
            .map(|&(s, first)| {
                let segment = &self.segments[s];
                let last = (first + VERIFY_CHUNK).min(segment.doc_count());
                let ords: Vec<usize> = (first..last)
                    .filter(|&ord| self.searchable(segment.doc_id(ord), options))
                    .collect();
                let texts: Vec<&[Symbol]> = ords.iter().map(|&o| segment.doc_tokens(o)).collect();
                let tokens = texts.iter().map(|t| t.len() as u64).sum();
                let limit = bound.load(Ordering::Relaxed);
                let k = (limit != u32::MAX).then_some(limit);
                let found: Vec<(usize, usize, u32)> = ords
                    .iter()
                    .zip(verifier.distances(&texts, k))
                    .filter_map(|(&ord, d)| Some((s, ord, d?)))
                    .collect();
                if top > 0 && !found.is_empty() {
                    if let Ok(mut heap) = best.lock() {
                        for &(_, _, d) in &found {
                            if heap.len() < top {
                                heap.push(d);
                            } else if heap.peek().is_some_and(|&worst| d < worst) {
                                heap.pop();
                                heap.push(d);
                            }
                        }
                        if heap.len() == top {
                            if let Some(&worst) = heap.peek() {
                                bound.fetch_min(worst, Ordering::Relaxed);
                            }
                        }
                    }
                }
                (found, ords.len(), tokens)
            })
            .collect();
        let mut found = Vec::new();
        let (mut docs, mut tokens) = (0, 0);
        for (task_found, task_docs, task_tokens) in per_task {
            found.extend(task_found);
            docs += task_docs;
            tokens += task_tokens;
        }
        // Keep the documents that can make the top (ties at the cut included), then locate them.
        if top > 0 && found.len() > top {
            found.select_nth_unstable_by_key(top - 1, |&(_, _, d)| d);
            let cut = found[top - 1].2;
            found.retain(|&(_, _, d)| d <= cut);
        } else if top == 0 {
            found.clear();
        }
        let hits = found
            .par_iter()
            .filter_map(|&(s, ord, _)| {
                let segment = &self.segments[s];
                let text = segment.doc_tokens(ord);
                let m = verifier.locate(text, None)?;
                Some(RawHit {
                    segment: s,
                    ord,
                    doc_id: segment.doc_id(ord),
                    start: m.start,
                    end: m.end,
                    distance: m.distance,
                })
            })
            .collect();
        (hits, docs, tokens)
    }
}

/// The hit of a match found in region `r` of document number `doc_id`.
fn raw_hit(r: &Region, doc_id: u32, found: Match) -> RawHit {
    RawHit {
        segment: r.segment,
        ord: r.ord,
        doc_id,
        start: r.start + found.start,
        end: r.start + found.end,
        distance: found.distance,
    }
}

/// Regions of one document can overlap, and so can their hits: keeps the best hit (lowest
/// distance, then shortest) of each group of overlapping hits in a document.
fn keep_best_of_overlapping(mut hits: Vec<RawHit>) -> Vec<RawHit> {
    hits.sort_by_key(|h| (h.segment, h.ord, h.start, h.distance));
    let mut kept: Vec<RawHit> = Vec::with_capacity(hits.len());
    for hit in hits {
        match kept.last_mut() {
            Some(last)
                if (last.segment, last.ord) == (hit.segment, hit.ord)
                    && hit.start < last.end.max(last.start + 1) =>
            {
                if (hit.distance, hit.end - hit.start) < (last.distance, last.end - last.start) {
                    *last = hit;
                }
            }
            _ => kept.push(hit),
        }
    }
    kept
}

/// The q-gram lemma's guaranteed count of shared q-grams for a match within `k` edits of a query of
/// `m` tokens; without a bound there is no guarantee.
fn lemma_threshold(m: usize, q: usize, k: Option<u32>) -> i64 {
    match k {
        Some(k) if m >= q => (m - q + 1) as i64 - i64::from(k) * q as i64,
        _ => 0,
    }
}

/// Which q-grams of each plan are read in one segment, with the vote threshold that still
/// applies after skipping the most frequent ones; a plan whose matches would cost more than
/// verifying the segment is marked to scan it. A q-gram that several plans keep is read once.
fn segment_reads<'p>(segment: &Segment, plans: &[&'p Plan<'_>]) -> SegmentReads<'p> {
    // Very frequent q-grams cost the most and say the least. Skipping a q-gram that occurs at `c`
    // query offsets lowers the guaranteed count by at most `c`, so in lossless mode we skip only
    // while the threshold stays positive. Ranked mode skips more eagerly (its windows are ranked
    // by the rarer q-grams anyway) but keeps at least half of the query's q-gram offsets.
    let tokens = segment.token_count();
    let mut lengths: HashMap<u64, Option<u32>> = HashMap::new();
    let mut reads: HashMap<u64, GramUsers<'p>> = HashMap::new();
    let mut min_votes_of = Vec::with_capacity(plans.len());
    for (p, plan) in plans.iter().enumerate() {
        let lossless = plan.threshold >= 1;
        let cap = if lossless {
            (tokens / 256).max(4096)
        } else {
            (tokens / 2048).max(1024)
        };
        let mut by_frequency: Vec<(u32, u64, &'p Vec<u32>)> = plan
            .grams
            .iter()
            .filter_map(|(&key, offsets)| {
                let len = *lengths
                    .entry(key)
                    .or_insert_with(|| segment.posting_len(key));
                Some((len?, key, offsets))
            })
            .collect();
        by_frequency.sort_unstable_by_key(|&(len, key, _)| (std::cmp::Reverse(len), key));
        // Without the lemma's guarantee a window needs two hits: a single shared q-gram is what
        // unrelated strings over a few hundred symbols have by chance, and verifying those
        // windows would crowd out the real ones in the ranked budget.
        let query_grams: i64 = plan.grams.values().map(|o| o.len() as i64).sum();
        let mut min_votes = if lossless {
            plan.threshold
        } else {
            RANKED_MIN_VOTES.min(query_grams).max(1)
        };
        let mut kept_offsets = query_grams;
        let mut keep: Vec<(u64, &'p [u32])> = Vec::new();
        let mut matches = 0u64;
        for (len, key, offsets) in by_frequency {
            let c = offsets.len() as i64;
            let skippable = if lossless {
                min_votes - c >= 1
            } else {
                2 * (kept_offsets - c) >= query_grams
            };
            if u64::from(len) > cap && skippable {
                if lossless {
                    min_votes -= c;
                }
                kept_offsets -= c;
                continue;
            }
            matches += u64::from(len) * offsets.len() as u64;
            keep.push((key, offsets));
        }
        // Collecting and voting that many matches would cost more than verifying the segment.
        let scan_cells = tokens.saturating_mul(plan.query.len() as u64);
        if matches.saturating_mul(MATCH_COST_CELLS) > scan_cells {
            min_votes_of.push(None);
            continue;
        }
        for (key, offsets) in keep {
            reads.entry(key).or_default().push((p, offsets));
        }
        min_votes_of.push(Some(min_votes as u32));
    }
    SegmentReads {
        reads: reads.into_iter().collect(),
        min_votes: min_votes_of,
    }
}

/// Positional hits of each plan's q-grams in one segment, packed `(diagonal + m) << 16 |
/// offset` (the shifted diagonal), in one pass over the postings, dealt into the parts whose
/// shifted diagonals start at `bounds` (part `i` is `bounds[i]..bounds[i + 1]`, with the hits of
/// the `band` diagonals above it, so that its last windows are whole). Unsorted. `None` for a
/// plan that verifies the segment whole.
fn collect_hits(
    segment: &Segment,
    plans: &[&Plan<'_>],
    reads: &SegmentReads<'_>,
    bounds: &[u64],
) -> Result<Vec<Option<Vec<PartHits>>>> {
    let parts = bounds.len() - 1;
    let step = bounds.get(1).copied().unwrap_or(1).max(1);
    let mut hits: Vec<Vec<Vec<u64>>> = vec![vec![Vec::new(); parts]; plans.len()];
    for (key, users) in &reads.reads {
        segment.for_each_position(*key, |position| {
            for &(p, offsets) in users {
                let m = plans[p].query.len() as u64;
                let band = plans[p].band as u64;
                for &offset in offsets {
                    let shifted = u64::from(position) + m - u64::from(offset);
                    let packed = shifted << 16 | u64::from(offset);
                    let part = ((shifted / step) as usize).min(parts - 1);
                    hits[p][part].push(packed);
                    // The parts below need it while it is within `band` of their end.
                    let mut below = part;
                    while below > 0 && shifted < bounds[below] + band {
                        below -= 1;
                        hits[p][below].push(packed);
                    }
                }
            }
        })?;
    }
    Ok(hits
        .into_iter()
        .zip(&reads.min_votes)
        .map(|(per_part, &min_votes)| {
            let min_votes = min_votes?;
            Some(
                per_part
                    .into_iter()
                    .zip(&bounds[1..])
                    .map(|(hits, &starts_below)| PartHits {
                        hits,
                        min_votes,
                        starts_below,
                    })
                    .collect(),
            )
        })
        .collect())
}

/// Sorts packed hits (`diagonal << 16 | offset`) by diagonal: a least-significant-digit radix
/// sort over the diagonal's bits, in passes of at most 11 bits (a count table that stays in L1),
/// several times faster than a comparison sort on the millions of hits of a large segment. The
/// order of hits on one diagonal is unspecified (voting does not depend on it).
fn sort_by_diagonal(hits: &mut Vec<u64>) {
    const SMALL: usize = 256;
    if hits.len() <= SMALL {
        hits.sort_unstable();
        return;
    }
    let top = hits.iter().map(|&h| h >> 16).max().unwrap_or(0);
    let bits = 64 - top.leading_zeros();
    let passes = bits.div_ceil(11).max(1);
    let width = bits.div_ceil(passes);
    let mask = (1u64 << width) - 1;
    let mut scratch = vec![0u64; hits.len()];
    let mut counts = vec![0usize; 1 << width];
    for pass in 0..passes {
        let shift = 16 + pass * width;
        counts.fill(0);
        for &h in hits.iter() {
            counts[((h >> shift) & mask) as usize] += 1;
        }
        let mut sum = 0;
        for c in counts.iter_mut() {
            let n = *c;
            *c = sum;
            sum += n;
        }
        for &h in hits.iter() {
            let digit = ((h >> shift) & mask) as usize;
            scratch[counts[digit]] = h;
            counts[digit] += 1;
        }
        std::mem::swap(hits, &mut scratch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use crate::database::{DatabaseConfig, DatabaseWriter, NewDoc};
    use crate::synthetic::{best_per_doc, ZipfTokens};

    /// Strings like real tokens: runs of a pause symbol (0) between short runs of others.
    fn paused(r: &mut StdRng, vocab: u16, len: usize) -> Vec<Symbol> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let (symbol, run) = if r.gen_bool(0.3) {
                (0, r.gen_range(3..15))
            } else {
                (r.gen_range(1..vocab), r.gen_range(1..3))
            };
            out.extend(std::iter::repeat_n(symbol, run));
        }
        out.truncate(len);
        out
    }

    /// The pigeonhole filter, forced on for every lossless budget, finds what exhaustive search
    /// finds (the best distance in every document; in global mode every hit), over strings with
    /// pause runs, at budgets from 0 to the largest the pieces fit, in both modes and two
    /// segments, with a document deleted. Then the same with the filter forced off.
    #[test]
    fn pieces_find_what_exhaustive_search_finds() {
        let mut r = StdRng::seed_from_u64(23);
        for (vocab, q) in [(12u16, 2u32), (40, 3), (300, 3)] {
            let edits = ZipfTokens::new(u32::from(vocab), 1.0, 0);
            let dir = tempfile::tempdir().unwrap();
            let mut db =
                DatabaseWriter::create(dir.path(), DatabaseConfig::new(u32::from(vocab), q))
                    .unwrap();
            let docs: Vec<NewDoc> = (0..80)
                .map(|d| {
                    let len = r.gen_range(0..300);
                    NewDoc {
                        id: format!("d{d}"),
                        tokens: paused(&mut r, vocab, len),
                        ..NewDoc::default()
                    }
                })
                .collect();
            db.add_tokens(&docs[..40]).unwrap();
            db.add_tokens(&docs[40..]).unwrap();
            db.delete(&["d3"]).unwrap();
            db.commit().unwrap();
            for _ in 0..12 {
                let source = &docs[r.gen_range(0..docs.len())].tokens;
                if source.len() < 12 {
                    continue;
                }
                let len = r.gen_range(12..=source.len().min(60));
                let start = r.gen_range(0..=source.len() - len);
                let query = edits.noisy_copy(&mut r, &source[start..start + len], 0.05);
                let m = query.len();
                let k_max = (m / q as usize).saturating_sub(1) as u32;
                for force in [true, false] {
                    FORCE_PIECES.with(|f| f.set(Some(force)));
                    for k in [0, k_max / 2, k_max] {
                        for mode in [Mode::Infix, Mode::Global] {
                            let options = |exhaustive| SearchOptions {
                                top: usize::MAX,
                                k: Some(EditBudget::Absolute(k)),
                                mode,
                                exhaustive,
                                exhaustive_below_cells: 0,
                                ..SearchOptions::default()
                            };
                            let plan = db.plan(&query, &options(false)).unwrap();
                            assert_eq!(plan.pieces.is_some(), force, "m={m} q={q} k={k}");
                            let filtered = db.search_tokens(&query, &options(false)).unwrap();
                            let exhaustive = db.search_tokens(&query, &options(true)).unwrap();
                            assert!(filtered.lossless);
                            let what = format!("vocab={vocab} q={q} m={m} k={k} {mode:?} {force}");
                            assert_eq!(
                                best_per_doc(&filtered.hits),
                                best_per_doc(&exhaustive.hits),
                                "{what}"
                            );
                            if mode == Mode::Global {
                                assert_eq!(filtered.hits, exhaustive.hits, "{what}");
                            }
                        }
                    }
                }
                FORCE_PIECES.with(|f| f.set(None));
            }
        }
    }

    /// A query too long for the dynamic program's table at its budget is left to counting
    /// (no table of gigabytes is allocated), and the search stays exact.
    #[test]
    fn long_queries_with_wide_budgets_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(512, 3)).unwrap();
        let mut r = StdRng::seed_from_u64(9);
        let text = paused(&mut r, 512, 30_000);
        db.add_tokens(&[NewDoc {
            id: "long".into(),
            tokens: text.clone(),
            ..NewDoc::default()
        }])
        .unwrap();
        FORCE_PIECES.with(|f| f.set(Some(true)));
        let query = &text[1_000..21_000];
        let options = SearchOptions {
            k: Some(EditBudget::Absolute(2_000)),
            exhaustive_below_cells: 0,
            ..SearchOptions::default()
        };
        let plan = db.plan(query, &options).unwrap();
        assert!(plan.threshold >= 1 && plan.pieces.is_none());
        let short = SearchOptions {
            k: Some(EditBudget::Absolute(20)),
            ..options.clone()
        };
        assert!(db.plan(&query[..200], &short).unwrap().pieces.is_some());
        FORCE_PIECES.with(|f| f.set(None));
        let hits = db.search_tokens(query, &options).unwrap().hits;
        assert_eq!((hits[0].start, hits[0].distance), (1_000, 0));
    }

    /// Left to the costs, a query with a long pause run in an archive full of pause runs is
    /// filtered by pieces that avoid the pause q-gram, and reads far fewer postings than
    /// counting every q-gram would.
    #[test]
    fn pause_runs_choose_pieces_that_avoid_them() {
        let mut r = StdRng::seed_from_u64(5);
        let dir = tempfile::tempdir().unwrap();
        let mut db = DatabaseWriter::create(dir.path(), DatabaseConfig::new(512, 3)).unwrap();
        let docs: Vec<NewDoc> = (0..400)
            .map(|d| NewDoc {
                id: format!("d{d}"),
                tokens: paused(&mut r, 512, 600),
                ..NewDoc::default()
            })
            .collect();
        db.add_tokens(&docs).unwrap();
        let mut query = docs[7].tokens[100..118].to_vec();
        query.extend([0; 12]);
        query.extend_from_slice(&docs[7].tokens[130..136]);
        let options = SearchOptions {
            k: Some(EditBudget::Absolute(3)),
            exhaustive_below_cells: 0,
            ..SearchOptions::default()
        };
        let plan = db.plan(&query, &options).unwrap();
        let pieces = plan.pieces.expect("pieces");
        assert_eq!(pieces.len(), 4);
        let pause = qgram_key(&[0, 0, 0], 512);
        assert!(pieces.iter().all(|&(key, _)| key != pause), "{pieces:?}");
        let postings = |key| u64::from(db.segments[0].posting_len(key).unwrap_or(0));
        let read: u64 = pieces.iter().map(|&(key, _)| postings(key)).sum();
        let counted: u64 = query.windows(3).map(|g| postings(qgram_key(g, 512))).sum();
        assert!(read * 20 < counted, "{read} against {counted}");
    }

    proptest! {
        /// The radix sort orders by diagonal exactly as a comparison sort does, at every size
        /// and diagonal width (one pass and several).
        #[test]
        fn sort_by_diagonal_orders_by_diagonal(
            hits in proptest::collection::vec((0u64..1 << 40, 0u64..1 << 16), 0..3000),
            bits in 1u32..40,
        ) {
            let mut packed: Vec<u64> = hits
                .iter()
                .map(|&(diag, offset)| (diag & ((1 << bits) - 1)) << 16 | offset)
                .collect();
            let mut expected = packed.clone();
            expected.sort_unstable();
            sort_by_diagonal(&mut packed);
            let diagonals = |v: &[u64]| v.iter().map(|h| h >> 16).collect::<Vec<_>>();
            prop_assert_eq!(diagonals(&packed), diagonals(&expected));
            packed.sort_unstable();
            prop_assert_eq!(packed, expected);
        }
    }
}
