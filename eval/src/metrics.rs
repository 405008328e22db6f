//! Retrieval metrics with ties handled by expectation, normalized edit distance, and summaries
//! of distributions.
//!
//! Ties: when candidates score exactly like the target, the ranking between them is taken as
//! uniformly random and every metric is its expected value. A tokenizer that gives every clip
//! the same string therefore scores chance (P@1 = 1/n), not 0 or 1. [`average_precision`] does
//! the same for any number of relevant items (the tie-aware average precision of McSherry and
//! Najork, "Computing information retrieval performance measures efficiently in the presence of
//! tied scores", ECIR 2008).

use pairalign_engine::{Mode, Symbol, Verifier};
use serde::Serialize;

/// Where the target of one query landed among the candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RankStats {
    /// Candidates scoring strictly better than the target.
    pub better: usize,
    /// Other candidates scoring exactly like the target.
    pub ties: usize,
}

impl RankStats {
    /// The target `target` among `scores` (lower is better; NaN ranks last).
    pub fn of(scores: &[f64], target: usize) -> Self {
        let t = scores[target];
        let mut better = 0;
        let mut ties = 0;
        for (j, &s) in scores.iter().enumerate() {
            if j == target {
                continue;
            }
            match s.total_cmp(&t) {
                std::cmp::Ordering::Less => better += 1,
                std::cmp::Ordering::Equal => ties += 1,
                std::cmp::Ordering::Greater => {}
            }
        }
        RankStats { better, ties }
    }

    /// Probability that the target is ranked first.
    pub fn p_at_1(&self) -> f64 {
        if self.better == 0 {
            1.0 / (self.ties + 1) as f64
        } else {
            0.0
        }
    }

    /// Expected reciprocal rank: the target is equally likely at ranks `better + 1` to
    /// `better + ties + 1`.
    pub fn reciprocal_rank(&self) -> f64 {
        let first = self.better + 1;
        let last = self.better + self.ties + 1;
        (first..=last).map(|r| 1.0 / r as f64).sum::<f64>() / (self.ties + 1) as f64
    }

    /// Probability that the target is within the first `k`.
    pub fn recall_at(&self, k: usize) -> f64 {
        let first = self.better + 1;
        let last = self.better + self.ties + 1;
        if k < first {
            0.0
        } else {
            (k.min(last) - first + 1) as f64 / (self.ties + 1) as f64
        }
    }
}

/// Retrieval quality over a set of queries. With one relevant item per query (our protocols)
/// the mean average precision equals the MRR; it is still computed by the general formula
/// ([`average_precision`]), so that the two agreeing is a check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct RetrievalMetrics {
    /// Queries.
    pub queries: usize,
    /// Candidates per query.
    pub candidates: usize,
    /// Mean precision at 1.
    pub p_at_1: f64,
    /// Mean reciprocal rank.
    pub mrr: f64,
    /// Mean average precision.
    pub map: f64,
    /// Share of queries whose target is in the first 10.
    pub recall_at_10: f64,
}

impl RetrievalMetrics {
    /// Averages over `ranks` and `average_precisions` (one each per query) among `candidates`
    /// candidates each.
    pub fn from_ranks(ranks: &[RankStats], average_precisions: &[f64], candidates: usize) -> Self {
        let n = ranks.len().max(1) as f64;
        RetrievalMetrics {
            queries: ranks.len(),
            candidates,
            p_at_1: ranks.iter().map(RankStats::p_at_1).sum::<f64>() / n,
            mrr: ranks.iter().map(RankStats::reciprocal_rank).sum::<f64>() / n,
            map: average_precisions.iter().sum::<f64>() / average_precisions.len().max(1) as f64,
            recall_at_10: ranks.iter().map(|r| r.recall_at(10)).sum::<f64>() / n,
        }
    }
}

/// Average precision of a ranking by `scores` (lower is better; NaN ranks last) in which the
/// items `relevant` (indices into `scores`) are the right answers: the mean, over the relevant
/// items, of the precision at each one's rank. Ties by expectation: within a group of equal
/// scores every order is equally likely. Position `p` of a tie group of `n` items, `r` of them
/// relevant, entered after `c` items of which `R` relevant, holds a relevant item with chance
/// `r / n`, and then has `R + 1 + (p - 1)(r - 1)/(n - 1)` relevant items at or above it on
/// average (hypergeometric), so the group adds `sum_p (r / n) (R + 1 + (p - 1)(r - 1)/(n - 1))
/// / (c + p)`. With one relevant item this is the expected reciprocal rank. 0 when nothing is
/// relevant.
pub fn average_precision(scores: &[f64], relevant: &[usize]) -> f64 {
    let mut is_relevant = vec![false; scores.len()];
    for &i in relevant {
        if let Some(r) = is_relevant.get_mut(i) {
            *r = true;
        }
    }
    let total = is_relevant.iter().filter(|&&r| r).count();
    if total == 0 {
        return 0.0;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut before, mut relevant_before, mut sum) = (0usize, 0usize, 0f64);
    let mut start = 0;
    while start < order.len() {
        let s = scores[order[start]];
        let end = start
            + order[start..]
                .iter()
                .take_while(|&&j| scores[j].total_cmp(&s).is_eq())
                .count();
        let n = end - start;
        let r = order[start..end]
            .iter()
            .filter(|&&j| is_relevant[j])
            .count();
        if r > 0 {
            let others = if n > 1 {
                (r - 1) as f64 / (n - 1) as f64
            } else {
                0.0
            };
            for p in 1..=n {
                let above = relevant_before as f64 + 1.0 + (p - 1) as f64 * others;
                sum += r as f64 / n as f64 * above / (before + p) as f64;
            }
        }
        before += n;
        relevant_before += r;
        start = end;
    }
    sum / total as f64
}

/// Where the relevant candidates of one query landed when several are relevant (all the clips
/// that say the same words: `eval content`), ties by expectation as everywhere in this module.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct GroupRankStats {
    /// Probability that the first candidate is relevant.
    pub p_at_1: f64,
    /// Expected reciprocal rank of the first relevant candidate (0 when none is relevant).
    pub reciprocal_rank: f64,
    /// Expected share of relevant candidates among the first 10 (relevant ones counted, divided
    /// by 10 even when fewer candidates or fewer relevant ones exist).
    pub p_at_10: f64,
}

impl GroupRankStats {
    /// The ranking of candidates by `scores` (lower is better; NaN ranks last) in which the
    /// candidates with `relevant[i]` are the right answers. Within a group of `n` equal scores
    /// holding `r` relevant candidates every order is equally likely: each of its positions holds
    /// a relevant one with chance `r / n`, and the first relevant one is at its `p`-th position
    /// with chance `r / (n - p + 1) * prod_{i < p - 1} (n - r - i) / (n - i)` (the first `p - 1`
    /// drawn without replacement are all irrelevant).
    pub fn of(scores: &[f64], relevant: &[bool]) -> Self {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        let mut stats = GroupRankStats::default();
        let (mut before, mut first_found) = (0usize, false);
        let mut start = 0;
        while start < order.len() {
            let s = scores[order[start]];
            let n = order[start..]
                .iter()
                .take_while(|&&j| scores[j].total_cmp(&s).is_eq())
                .count();
            let r = order[start..start + n]
                .iter()
                .filter(|&&j| relevant.get(j).copied().unwrap_or(false))
                .count();
            let share = r as f64 / n as f64;
            let in_top = |k: usize| k.saturating_sub(before).min(n) as f64;
            stats.p_at_1 += in_top(1) * share;
            stats.p_at_10 += in_top(10) * share / 10.0;
            if r > 0 && !first_found {
                first_found = true;
                let mut none_yet = 1.0;
                for p in 1..=n - r + 1 {
                    let here = none_yet * r as f64 / (n - p + 1) as f64;
                    stats.reciprocal_rank += here / (before + p) as f64;
                    none_yet *= (n - r - (p - 1)) as f64 / (n - (p - 1)) as f64;
                }
            }
            before += n;
            start += n;
        }
        stats
    }
}

/// The chance that a value drawn from `lower` is below one drawn from `higher`, ties counting
/// half: the area under the ROC curve of a threshold separating the two (1: always separated,
/// 0.5: indistinguishable). Used for "same clip, two views" against "unrelated clips".
pub fn separation(lower: &[f64], higher: &[f64]) -> f64 {
    if lower.is_empty() || higher.is_empty() {
        return 0.5;
    }
    let mut sorted = higher.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut wins = 0f64;
    for &x in lower {
        let below_or_equal = sorted.partition_point(|y| y.total_cmp(&x).is_le());
        let below = sorted.partition_point(|y| y.total_cmp(&x).is_lt());
        wins += (sorted.len() - below_or_equal) as f64 + 0.5 * (below_or_equal - below) as f64;
    }
    wins / (lower.len() as f64 * sorted.len() as f64)
}

/// Levenshtein distance divided by the longer length (0 for two empty strings): 0 is
/// identical, 1 shares nothing in place.
pub fn ned(a: &[Symbol], b: &[Symbol]) -> f64 {
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 0.0;
    }
    let d = Verifier::new(a, Mode::Global)
        .distance(b, None)
        .unwrap_or(longest as u32);
    f64::from(d) / longest as f64
}

/// Normalized edit distances from `query` to every text (the verifier's batched kernels).
pub fn ned_row(query: &[Symbol], texts: &[&[Symbol]]) -> Vec<f64> {
    let verifier = Verifier::new(query, Mode::Global);
    verifier
        .distances(texts, None)
        .iter()
        .zip(texts)
        .map(|(d, t)| {
            let longest = query.len().max(t.len());
            match (longest, d) {
                (0, _) => 0.0,
                (_, Some(d)) => f64::from(*d) / longest as f64,
                (_, None) => 1.0,
            }
        })
        .collect()
}

/// Edit distance of the shorter string located inside the longer (the best substring of the
/// longer, as the engine's infix search finds a query inside a document), divided by the
/// shorter's length: 0 when one says the other's words with anything around them. 0 for two
/// empty strings, 1 when only one is empty (an empty string locates nothing). Symmetric.
pub fn infix_ned(a: &[Symbol], b: &[Symbol]) -> f64 {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    match (short.len(), long.len()) {
        (0, 0) => 0.0,
        (0, _) => 1.0,
        (n, _) => {
            let d = Verifier::new(short, Mode::Infix)
                .distance(long, None)
                .unwrap_or(n as u32);
            f64::from(d) / n as f64
        }
    }
}

/// [`infix_ned`] from `query` to every text; the texts at least as long as the query through
/// the verifier's batched kernels.
pub fn infix_ned_row(query: &[Symbol], texts: &[&[Symbol]]) -> Vec<f64> {
    let batched = |t: &[Symbol]| !query.is_empty() && t.len() >= query.len();
    let longer: Vec<&[Symbol]> = texts.iter().copied().filter(|t| batched(t)).collect();
    let mut found = Verifier::new(query, Mode::Infix)
        .distances(&longer, None)
        .into_iter();
    texts
        .iter()
        .map(|t| {
            if batched(t) {
                let d = found.next().flatten().unwrap_or(query.len() as u32);
                f64::from(d) / query.len() as f64
            } else {
                infix_ned(query, t)
            }
        })
        .collect()
}

/// Mean, median and the 10th and 90th percentiles of a sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Arithmetic mean.
    pub mean: f64,
    /// Median (lower middle for even sizes).
    pub median: f64,
    /// 10th percentile (nearest rank).
    pub p10: f64,
    /// 90th percentile (nearest rank).
    pub p90: f64,
}

impl Summary {
    /// Summary of `values` (all zeros for an empty sample).
    pub fn of(values: &[f64]) -> Self {
        if values.is_empty() {
            return Summary::default();
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
        Summary {
            mean: v.iter().sum::<f64>() / v.len() as f64,
            median: v[(v.len() - 1) / 2],
            p10: at(0.1),
            p90: at(0.9),
        }
    }
}

/// `exp` of the entropy of the distribution given by `counts`: the effective number of
/// symbols in use.
pub fn perplexity(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total as f64;
            -p * p.ln()
        })
        .sum();
    entropy.exp()
}

/// Cosine similarity (0 when either vector is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        dot += f64::from(x) * f64::from(y);
        na += f64::from(x) * f64::from(x);
        nb += f64::from(y) * f64::from(y);
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_hand() {
        // Target 0 scores 0.2; one candidate better (0.1), two tie (0.2).
        let r = RankStats::of(&[0.2, 0.1, 0.2, 0.5, 0.2], 0);
        assert_eq!(r, RankStats { better: 1, ties: 2 });
        assert_eq!(r.p_at_1(), 0.0);
        // Ranks 2, 3 or 4 with equal chance.
        assert!((r.reciprocal_rank() - (1.0 / 2.0 + 1.0 / 3.0 + 1.0 / 4.0) / 3.0).abs() < 1e-12);
        assert!((r.recall_at(3) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.recall_at(1), 0.0);
        assert_eq!(r.recall_at(10), 1.0);
        let best = RankStats::of(&[0.0, 0.3, 0.4], 0);
        assert_eq!((best.p_at_1(), best.reciprocal_rank()), (1.0, 1.0));
        let tied = RankStats::of(&[0.3, 0.3], 1);
        assert_eq!(tied.p_at_1(), 0.5);
        assert!((tied.reciprocal_rank() - 0.75).abs() < 1e-12);
        // NaN ranks last.
        assert_eq!(RankStats::of(&[0.1, f64::NAN], 0).better, 0);
    }

    #[test]
    fn constant_scores_give_chance_and_a_perfect_oracle_gives_one() {
        let n = 50;
        let constant: Vec<RankStats> = (0..n).map(|i| RankStats::of(&vec![0.5; n], i)).collect();
        let aps: Vec<f64> = (0..n)
            .map(|i| average_precision(&vec![0.5; n], &[i]))
            .collect();
        let m = RetrievalMetrics::from_ranks(&constant, &aps, n);
        assert!((m.map - m.mrr).abs() < 1e-12);
        assert!((m.p_at_1 - 1.0 / n as f64).abs() < 1e-12);
        assert!((m.recall_at_10 - 10.0 / n as f64).abs() < 1e-12);
        let harmonic: f64 = (1..=n).map(|r| 1.0 / r as f64).sum::<f64>() / n as f64;
        assert!((m.mrr - harmonic).abs() < 1e-12);
        let oracle: Vec<RankStats> = (0..n)
            .map(|i| {
                let scores: Vec<f64> = (0..n).map(|j| if i == j { 0.0 } else { 1.0 }).collect();
                RankStats::of(&scores, i)
            })
            .collect();
        let m = RetrievalMetrics::from_ranks(&oracle, &vec![1.0; n], n);
        assert_eq!(
            (m.p_at_1, m.mrr, m.map, m.recall_at_10),
            (1.0, 1.0, 1.0, 1.0)
        );
    }

    #[test]
    fn average_precision_by_hand() {
        // Relevant at ranks 1 and 3: (1/1 + 2/3) / 2.
        let ap = average_precision(&[0.1, 0.2, 0.3, 0.4], &[0, 2]);
        assert!((ap - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        // Relevant at rank 4 alone: 1/4.
        assert!((average_precision(&[0.4, 0.1, 0.2, 0.3], &[0]) - 0.25).abs() < 1e-12);
        // Nothing relevant.
        assert_eq!(average_precision(&[0.1, 0.2], &[]), 0.0);
        // One relevant item tied with one other at the top: rank 1 or 2, AP (1 + 1/2) / 2.
        assert!((average_precision(&[0.1, 0.1, 0.5], &[1]) - 0.75).abs() < 1e-12);
        // Two relevant tied with one irrelevant at the top: orders RRI, RIR, IRR equally
        // likely: AP (1 + 1) / 2, (1 + 2/3) / 2, (1/2 + 2/3) / 2.
        let expected = ((2.0) + (1.0 + 2.0 / 3.0) + (0.5 + 2.0 / 3.0)) / 2.0 / 3.0;
        assert!((average_precision(&[0.2, 0.2, 0.2, 0.9], &[0, 2]) - expected).abs() < 1e-12);
        // With one relevant item it is the expected reciprocal rank, ties or not.
        let scores = [0.2, 0.1, 0.2, 0.5, 0.2];
        let rr = RankStats::of(&scores, 0).reciprocal_rank();
        assert!((average_precision(&scores, &[0]) - rr).abs() < 1e-12);
    }

    /// Every order of `scores` that sorts them (ties in every order), enumerated: the oracle
    /// for the tie-aware formulas.
    fn tie_orders(scores: &[f64]) -> Vec<Vec<usize>> {
        fn permutations(items: Vec<usize>) -> Vec<Vec<usize>> {
            if items.len() <= 1 {
                return vec![items];
            }
            let mut out = Vec::new();
            for i in 0..items.len() {
                let mut rest = items.clone();
                let first = rest.remove(i);
                for mut p in permutations(rest) {
                    p.insert(0, first);
                    out.push(p);
                }
            }
            out
        }
        let mut sorted: Vec<usize> = (0..scores.len()).collect();
        sorted.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for i in sorted {
            match groups.last_mut() {
                Some(g) if scores[g[0]] == scores[i] => g.push(i),
                _ => groups.push(vec![i]),
            }
        }
        let mut orders: Vec<Vec<usize>> = vec![vec![]];
        for g in groups {
            let perms = permutations(g);
            orders = orders
                .iter()
                .flat_map(|o| {
                    perms.iter().map(move |p| {
                        let mut o = o.clone();
                        o.extend(p);
                        o
                    })
                })
                .collect();
        }
        orders
    }

    /// Every order of the tie groups, enumerated: the oracle for the tie-aware formula.
    fn average_precision_by_enumeration(scores: &[f64], relevant: &[usize]) -> f64 {
        let orders = tie_orders(scores);
        let ap = |order: &[usize]| {
            let mut hits = 0;
            let mut sum = 0.0;
            for (rank, i) in order.iter().enumerate() {
                if relevant.contains(i) {
                    hits += 1;
                    sum += hits as f64 / (rank + 1) as f64;
                }
            }
            sum / relevant.len() as f64
        };
        orders.iter().map(|o| ap(o)).sum::<f64>() / orders.len() as f64
    }

    #[test]
    fn average_precision_with_ties_equals_the_mean_over_all_orders() {
        let mut state = 7u32;
        let mut next = |m: u32| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (state >> 16) % m
        };
        for _ in 0..200 {
            let n = 1 + next(7) as usize;
            let scores: Vec<f64> = (0..n).map(|_| f64::from(next(3))).collect();
            let relevant: Vec<usize> = (0..n).filter(|_| next(2) == 0).collect();
            if relevant.is_empty() {
                continue;
            }
            let got = average_precision(&scores, &relevant);
            let want = average_precision_by_enumeration(&scores, &relevant);
            assert!(
                (got - want).abs() < 1e-12,
                "{scores:?} {relevant:?}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn separation_by_hand() {
        assert_eq!(separation(&[0.1, 0.2], &[0.5, 0.6]), 1.0);
        assert_eq!(separation(&[0.5, 0.6], &[0.1, 0.2]), 0.0);
        assert_eq!(separation(&[0.3], &[0.3]), 0.5);
        // 0.1 beats both; 0.5 ties 0.5 and loses to 0.4: (2 + 0.5) / 4.
        assert_eq!(separation(&[0.1, 0.5], &[0.4, 0.5]), 0.625);
        assert_eq!(separation(&[], &[0.4]), 0.5);
    }

    #[test]
    fn ned_against_hand_cases_and_the_row_agrees() {
        assert_eq!(ned(&[], &[]), 0.0);
        assert_eq!(ned(&[1, 2, 3], &[1, 2, 3]), 0.0);
        assert_eq!(ned(&[1, 2, 3], &[]), 1.0);
        assert!((ned(&[1, 2, 3, 4], &[1, 9, 3]) - 2.0 / 4.0).abs() < 1e-12);
        let texts: Vec<Vec<Symbol>> =
            vec![vec![1, 2, 3], vec![], vec![1, 9, 3], (0..100).collect()];
        let refs: Vec<&[Symbol]> = texts.iter().map(Vec::as_slice).collect();
        let row = ned_row(&[1, 2, 3, 4], &refs);
        for (t, got) in refs.iter().zip(&row) {
            assert!((ned(&[1, 2, 3, 4], t) - got).abs() < 1e-12);
        }
    }

    #[test]
    fn summaries_perplexity_and_cosine() {
        let s = Summary::of(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!((s.mean, s.median), (3.0, 3.0));
        assert_eq!(Summary::of(&[]), Summary::default());
        assert!((perplexity(&[10, 10, 10, 10]) - 4.0).abs() < 1e-9);
        assert!((perplexity(&[7, 0, 0]) - 1.0).abs() < 1e-12);
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-12);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-12);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
    }

    #[test]
    fn group_ranks_by_hand() {
        // Sorted: 0.1 (irrelevant), then 0.2 three times (one relevant: rank 2, 3 or 4 with
        // equal chance), 0.5 (relevant), 0.9 (relevant).
        let g = GroupRankStats::of(
            &[0.2, 0.1, 0.2, 0.5, 0.2, 0.9],
            &[false, false, true, true, false, true],
        );
        assert_eq!(g.p_at_1, 0.0);
        assert!((g.reciprocal_rank - (1.0 / 2.0 + 1.0 / 3.0 + 1.0 / 4.0) / 3.0).abs() < 1e-12);
        assert!(
            (g.p_at_10 - 0.3).abs() < 1e-12,
            "3 relevant in the first 10, over 10"
        );
        // Two relevant of three tied at the top: the first is relevant with chance 2/3; else
        // (1/3) the second is, so the expected reciprocal rank is 2/3 + 1/3 * 1/2.
        let g = GroupRankStats::of(&[0.1, 0.1, 0.1, 0.4], &[true, true, false, false]);
        assert!((g.p_at_1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((g.reciprocal_rank - 5.0 / 6.0).abs() < 1e-12);
        assert!((g.p_at_10 - 0.2).abs() < 1e-12);
        // Nothing relevant; NaN ranks last.
        assert_eq!(
            GroupRankStats::of(&[0.1, 0.2], &[false, false]),
            GroupRankStats::default()
        );
        let g = GroupRankStats::of(&[f64::NAN, 0.3], &[false, true]);
        assert_eq!((g.p_at_1, g.reciprocal_rank), (1.0, 1.0));
        // One relevant candidate: the single-target statistics.
        let scores = [0.2, 0.1, 0.2, 0.5, 0.2];
        let single = RankStats::of(&scores, 0);
        let g = GroupRankStats::of(&scores, &[true, false, false, false, false]);
        assert!((g.p_at_1 - single.p_at_1()).abs() < 1e-12);
        assert!((g.reciprocal_rank - single.reciprocal_rank()).abs() < 1e-12);
    }

    #[test]
    fn group_ranks_with_ties_equal_the_mean_over_all_orders() {
        let mut state = 11u32;
        let mut next = |m: u32| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (state >> 16) % m
        };
        for _ in 0..300 {
            let n = 1 + next(7) as usize;
            let scores: Vec<f64> = (0..n).map(|_| f64::from(next(3))).collect();
            let relevant: Vec<bool> = (0..n).map(|_| next(3) == 0).collect();
            let orders = tie_orders(&scores);
            let mean = |f: &dyn Fn(&[usize]) -> f64| {
                orders.iter().map(|o| f(o)).sum::<f64>() / orders.len() as f64
            };
            let p_at = |o: &[usize], k: usize| {
                o.iter().take(k).filter(|&&i| relevant[i]).count() as f64 / k as f64
            };
            let rr = |o: &[usize]| {
                o.iter()
                    .position(|&i| relevant[i])
                    .map_or(0.0, |r| 1.0 / (r + 1) as f64)
            };
            let got = GroupRankStats::of(&scores, &relevant);
            let want = GroupRankStats {
                p_at_1: mean(&|o| p_at(o, 1)),
                reciprocal_rank: mean(&rr),
                p_at_10: mean(&|o| p_at(o, 10)),
            };
            for (g, w) in [
                (got.p_at_1, want.p_at_1),
                (got.reciprocal_rank, want.reciprocal_rank),
                (got.p_at_10, want.p_at_10),
            ] {
                assert!(
                    (g - w).abs() < 1e-12,
                    "{scores:?} {relevant:?}: {got:?} vs {want:?}"
                );
            }
        }
    }

    /// Edit distance of `short` against the best substring of `long` by plain dynamic
    /// programming (the first row free: a match may start anywhere; the best of the last row).
    fn infix_by_dp(short: &[Symbol], long: &[Symbol]) -> usize {
        let mut row = vec![0usize; long.len() + 1];
        for (i, &x) in short.iter().enumerate() {
            let mut diagonal = row[0];
            row[0] = i + 1;
            for (j, &y) in long.iter().enumerate() {
                let up = row[j + 1];
                row[j + 1] = (up + 1).min(row[j] + 1).min(diagonal + usize::from(x != y));
                diagonal = up;
            }
        }
        row.into_iter().min().unwrap_or(0)
    }

    #[test]
    fn infix_ned_against_plain_dynamic_programming_and_the_row_agrees() {
        assert_eq!(infix_ned(&[], &[]), 0.0);
        assert_eq!(infix_ned(&[], &[1, 2]), 1.0);
        assert_eq!(infix_ned(&[2, 3], &[1, 2, 3, 4]), 0.0);
        assert_eq!(infix_ned(&[1, 2, 3, 4], &[2, 3]), 0.0, "symmetric");
        assert!((infix_ned(&[2, 9, 4], &[1, 2, 3, 4, 5]) - 1.0 / 3.0).abs() < 1e-12);
        let mut state = 5u32;
        let mut next = |m: u32| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (state >> 16) % m
        };
        for _ in 0..200 {
            let a: Vec<Symbol> = (0..next(12)).map(|_| next(4) as Symbol).collect();
            let texts: Vec<Vec<Symbol>> = (0..6)
                .map(|_| (0..next(20)).map(|_| next(4) as Symbol).collect())
                .collect();
            let refs: Vec<&[Symbol]> = texts.iter().map(Vec::as_slice).collect();
            let row = infix_ned_row(&a, &refs);
            for (t, got) in refs.iter().zip(&row) {
                let (short, long) = if a.len() <= t.len() {
                    (&a[..], *t)
                } else {
                    (*t, &a[..])
                };
                let want = match short.len() {
                    0 if long.is_empty() => 0.0,
                    0 => 1.0,
                    n => infix_by_dp(short, long) as f64 / n as f64,
                };
                assert!(
                    (got - want).abs() < 1e-12,
                    "{a:?} in {t:?}: {got} vs {want}"
                );
                assert!((infix_ned(&a, t) - want).abs() < 1e-12);
            }
        }
    }
}
