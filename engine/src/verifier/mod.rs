//! The bit-parallel Levenshtein verifier: given one query, computes its edit distance to
//! candidate token strings (global mode) or to their best-matching substring (infix mode), and
//! locates the matching substrings.
//!
//! A [`Verifier`] is compiled once per query (match masks, see `kernel.rs`) and then shared by
//! all threads. Queries of up to 64 symbols run Hyyrö's one-word algorithm; longer ones run Myers'
//! block-based variant, which with a bound `k` only computes the blocks that can still hold a
//! value `<= k` (infix) or that meet the diagonal band of width `2k + 1` (global).
//! [`Verifier::distances`] verifies many candidates at once, several per SIMD register
//! (`batch.rs`). [`oracle`] is the plain dynamic program everything is tested against.

mod batch;
mod kernel;
#[doc(hidden)]
pub mod oracle;

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use self::kernel::{blocks_global, blocks_scan, within, word_global, word_scan, Blocks, Peq};
use crate::Symbol;

/// How the query is aligned to a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The whole query against the whole text (Levenshtein distance).
    Global,
    /// The whole query against the best substring of the text (semi-global alignment): the
    /// start and the end in the text are free.
    Infix,
}

/// A located match: `text[start..end]` aligns with the whole query at `distance`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match {
    pub distance: u32,
    pub start: usize,
    pub end: usize,
}

/// A query compiled for repeated verification. Cheap to share across threads (`Send + Sync`).
#[derive(Clone, Debug)]
pub struct Verifier {
    query: Vec<Symbol>,
    mode: Mode,
    /// Match masks of the query.
    fwd: Peq,
    /// Match masks of the reversed query, for finding where an infix match starts; `None` in
    /// global mode, where matches always start at 0.
    rev: Option<Peq>,
}

impl Verifier {
    pub fn new(query: &[Symbol], mode: Mode) -> Verifier {
        let fwd = Peq::new(query.iter().copied());
        let rev = (mode == Mode::Infix).then(|| Peq::new(query.iter().rev().copied()));
        Verifier {
            query: query.to_vec(),
            mode,
            fwd,
            rev,
        }
    }

    pub fn query(&self) -> &[Symbol] {
        &self.query
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Global: Levenshtein(query, text). Infix: the minimum over all substrings `t` of `text`
    /// of Levenshtein(query, t). Returns `None` when the distance exceeds `k` (`None` means
    /// unbounded); with a bound the computation may stop early.
    ///
    /// An empty query has distance `text.len()` (global) or 0 (infix); an empty text has
    /// distance `query.len()`.
    pub fn distance(&self, text: &[Symbol], k: Option<u32>) -> Option<u32> {
        self.distance_usize(text, k.map(widen)).map(narrow)
    }

    /// Like [`Verifier::distance`], but also says where. Global: `start` is 0 and `end` is
    /// `text.len()`. Infix: `end` is the end of the best substring (smallest distance, leftmost
    /// end on ties) and `start` the start of the shortest substring ending there with that
    /// distance, found by running the reversed query backwards from `end`.
    pub fn locate(&self, text: &[Symbol], k: Option<u32>) -> Option<Match> {
        let k = k.map(widen);
        match self.mode {
            Mode::Global => self.distance_usize(text, k).map(|d| Match {
                distance: narrow(d),
                start: 0,
                end: text.len(),
            }),
            Mode::Infix => {
                let (distance, end) = self.best_end(text, k)?;
                Some(Match {
                    distance: narrow(distance),
                    start: self.start_of(text, end, distance),
                    end,
                })
            }
        }
    }

    /// Every occurrence with distance `<= k` in a long text (infix mode). For each maximal run
    /// of consecutive end positions whose score is `<= k`, the end with the minimal score
    /// (leftmost on ties) is taken and its start recovered as in [`Verifier::locate`]; then any
    /// match whose `[start, end)` shares a position with a better one (lower distance, then
    /// earlier start) is dropped. Sorted by start.
    ///
    /// In global mode this is the single global match if its distance is `<= k`.
    pub fn matches(&self, text: &[Symbol], k: u32) -> Vec<Match> {
        if self.mode == Mode::Global {
            return self.locate(text, Some(k)).into_iter().collect();
        }
        let k = widen(k);
        let m = self.fwd.m;
        if m == 0 {
            // Every end scores 0: one run, whose leftmost best end is 0.
            return vec![Match {
                distance: 0,
                start: 0,
                end: 0,
            }];
        }

        // Best (score, end) of each maximal run of ends scoring <= k.
        let mut best_ends: Vec<(usize, usize)> = Vec::new();
        let mut run: Option<(usize, usize)> = (m <= k).then_some((m, 0));
        let mut visit = |j: usize, score: Option<usize>| match (score, &mut run) {
            (Some(s), Some(best)) => {
                if s < best.0 {
                    *best = (s, j);
                }
            }
            (Some(s), None) => run = Some((s, j)),
            (None, Some(_)) => best_ends.extend(run.take()),
            (None, None) => {}
        };
        if self.fwd.words == 1 {
            word_scan(&self.fwd, text.iter().copied(), 0, 0, !0, 0, m, |j, s| {
                visit(j, (s <= k).then_some(s));
                ControlFlow::Continue(())
            });
        } else {
            let mut st = Blocks::new(&self.fwd, Some(k));
            blocks_scan(
                &self.fwd,
                text.iter().copied(),
                0,
                false,
                Some(k),
                &mut st,
                |j, s, _| {
                    visit(j, s);
                    ControlFlow::Continue(())
                },
            );
        }
        best_ends.extend(run);

        let mut found: Vec<Match> = best_ends
            .into_iter()
            .map(|(distance, end)| Match {
                distance: narrow(distance),
                start: self.start_of(text, end, distance),
                end,
            })
            .collect();
        found.sort_unstable_by_key(|h| (h.distance, h.start, h.end));

        // Accepted non-empty intervals, by start. They are disjoint, so their ends are sorted
        // too and only the last one starting before a candidate's end can overlap it. Empty
        // intervals overlap nothing and are always kept.
        let mut taken: BTreeMap<usize, usize> = BTreeMap::new();
        let mut kept = Vec::with_capacity(found.len());
        for h in found {
            if h.start < h.end {
                let clash = taken
                    .range(..h.end)
                    .next_back()
                    .is_some_and(|(_, &end)| end > h.start);
                if clash {
                    continue;
                }
                taken.insert(h.start, h.end);
            }
            kept.push(h);
        }
        kept.sort_unstable_by_key(|h| (h.start, h.end));
        kept
    }

    /// Many candidates at once, with the semantics of [`Verifier::distance`] for each, in
    /// input order. Candidates are verified several per SIMD register where the CPU allows
    /// (AVX-512 or AVX2), and chunks of candidates run on the rayon pool.
    pub fn distances(&self, texts: &[&[Symbol]], k: Option<u32>) -> Vec<Option<u32>> {
        batch::distances_with(self, texts, k.map(widen), batch::Backend::detect())
    }

    /// [`Verifier::distances`] without SIMD (still chunked over rayon): the baseline that shows
    /// what the vector kernels buy.
    #[doc(hidden)]
    pub fn distances_scalar(&self, texts: &[&[Symbol]], k: Option<u32>) -> Vec<Option<u32>> {
        batch::distances_with(self, texts, k.map(widen), batch::Backend::Scalar)
    }

    /// The scalar path behind [`Verifier::distance`], in `usize`.
    fn distance_usize(&self, text: &[Symbol], k: Option<usize>) -> Option<usize> {
        let m = self.fwd.m;
        let n = text.len();

        match self.mode {
            Mode::Global => {
                // Every alignment pays at least the length difference.
                if !within(m.abs_diff(n), k) {
                    return None;
                }
                if m == 0 {
                    return Some(n);
                }
                if self.fwd.words == 1 {
                    word_global(&self.fwd, text, 0, n, !0, 0, k)
                } else {
                    blocks_global(&self.fwd, text, k)
                }
            }
            Mode::Infix => {
                if m == 0 {
                    return Some(0);
                }
                if self.fwd.words == 1 {
                    let mut best = m;
                    word_scan(&self.fwd, text.iter().copied(), 0, 0, !0, 0, m, |_, s| {
                        best = best.min(s);
                        // Nothing beats an exact occurrence.
                        if best == 0 {
                            ControlFlow::Break(())
                        } else {
                            ControlFlow::Continue(())
                        }
                    });
                    Some(best).filter(|&d| within(d, k))
                } else {
                    self.best_end(text, k).map(|(d, _)| d)
                }
            }
        }
    }

    /// Infix forward pass: the smallest last-row score and its leftmost column (= end).
    fn best_end(&self, text: &[Symbol], k: Option<usize>) -> Option<(usize, usize)> {
        let m = self.fwd.m;
        // Column 0: the empty substring at position 0 costs m.
        let mut best = (m, 0);
        if m > 0 {
            if self.fwd.words == 1 {
                word_scan(&self.fwd, text.iter().copied(), 0, 0, !0, 0, m, |j, s| {
                    if s < best.0 {
                        best = (s, j);
                    }
                    if best.0 == 0 {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                });
            } else {
                let mut st = Blocks::new(&self.fwd, k);
                blocks_scan(
                    &self.fwd,
                    text.iter().copied(),
                    0,
                    false,
                    k,
                    &mut st,
                    |j, s, _| {
                        match s {
                            Some(s) if s < best.0 => best = (s, j),
                            _ => {}
                        }
                        if best.0 == 0 {
                            ControlFlow::Break(())
                        } else {
                            ControlFlow::Continue(())
                        }
                    },
                );
            }
        }
        Some(best).filter(|&(d, _)| within(d, k))
    }

    /// Start of the shortest substring ending at `end` that aligns with the query at distance
    /// `d`, where `d` is the best infix score at `end`.
    ///
    /// Runs the reversed query over `text[..end]` backwards in prefix mode (anchored at `end`,
    /// free start): the first column reaching `d` is the shortest substring. No alignment of m
    /// symbols at distance d spans more than m + d text symbols, which bounds the pass.
    fn start_of(&self, text: &[Symbol], end: usize, d: usize) -> usize {
        let Some(rev) = &self.rev else {
            return 0;
        };
        let m = rev.m;
        if m <= d {
            // The empty substring already costs m.
            return end;
        }
        let before = &text[..end.min(text.len())];
        let limit = before.len().min(m + d);
        let backwards = before.iter().rev().copied().take(limit);
        let mut len = None;
        if rev.words == 1 {
            word_scan(rev, backwards, 0, 1, !0, 0, m, |j, s| {
                if s <= d {
                    len = Some(j);
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
        } else {
            let mut st = Blocks::new(rev, Some(d));
            blocks_scan(rev, backwards, 0, true, Some(d), &mut st, |j, s, _| {
                if s.is_some() {
                    len = Some(j);
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
        }
        // `d` is attained by construction; should that ever fail, the widest window keeps the
        // answer a valid (if longer) substring rather than a panic.
        debug_assert!(len.is_some(), "reverse pass did not reach distance {d}");
        end - len.unwrap_or(limit)
    }
}

fn widen(k: u32) -> usize {
    usize::try_from(k).unwrap_or(usize::MAX)
}

fn narrow(d: usize) -> u32 {
    u32::try_from(d).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
