//! Synthetic token strings shaped like a learned tokenizer's output, for tests, benchmarks and the
//! demo: Zipf-distributed symbols with no immediate repeats (tokenizers collapse runs), and noisy
//! copies with substitutions, insertions and deletions at a given rate. Deterministic from a seed.
//! Also [`best_per_doc`], the oracle the filter tests compare against exhaustive search.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::{Hit, Symbol};

/// A Zipf distribution over a vocabulary, with frequency ranks assigned to symbols at random so
/// that frequent symbols are not simply the small ones.
#[derive(Clone, Debug)]
pub struct ZipfTokens {
    cdf: Vec<f64>,
    symbol_of_rank: Vec<Symbol>,
}

impl ZipfTokens {
    /// Zipf with `exponent` (1.0 is classic Zipf) over `0..vocab_size`; `vocab_size` is clamped to
    /// 2..=65536.
    pub fn new(vocab_size: u32, exponent: f64, seed: u64) -> Self {
        let n = vocab_size.clamp(2, 65_536) as usize;
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for rank in 1..=n {
            total += 1.0 / (rank as f64).powf(exponent);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        let mut symbol_of_rank: Vec<Symbol> = (0..n).map(|s| s as Symbol).collect();
        symbol_of_rank.shuffle(&mut StdRng::seed_from_u64(seed));
        ZipfTokens {
            cdf,
            symbol_of_rank,
        }
    }

    /// One symbol.
    pub fn symbol(&self, rng: &mut impl Rng) -> Symbol {
        let u: f64 = rng.gen();
        let rank = self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1);
        self.symbol_of_rank[rank]
    }

    /// A string of `len` symbols with no symbol equal to its predecessor.
    pub fn string(&self, rng: &mut impl Rng, len: usize) -> Vec<Symbol> {
        let mut out: Vec<Symbol> = Vec::with_capacity(len);
        while out.len() < len {
            let s = self.symbol(rng);
            if out.last() != Some(&s) {
                out.push(s);
            }
        }
        out
    }

    /// A copy of `source` where each position is edited with probability `rate`: a substitution,
    /// an insertion before it or a deletion, equally likely.
    pub fn noisy_copy(&self, rng: &mut impl Rng, source: &[Symbol], rate: f64) -> Vec<Symbol> {
        let mut out = Vec::with_capacity(source.len() + source.len() / 4 + 1);
        for &s in source {
            if rng.gen_bool(rate.clamp(0.0, 1.0)) {
                match rng.gen_range(0..3) {
                    0 => out.push(self.other_than(rng, s)),
                    1 => {
                        out.push(self.symbol(rng));
                        out.push(s);
                    }
                    _ => {}
                }
            } else {
                out.push(s);
            }
        }
        out
    }

    fn other_than(&self, rng: &mut impl Rng, s: Symbol) -> Symbol {
        loop {
            let t = self.symbol(rng);
            if t != s {
                return t;
            }
        }
    }
}

/// A seeded random generator, so that callers need not depend on `rand` directly.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Per document, the smallest distance among `hits`: what a filter must find the same of as
/// exhaustive search (the same documents, each with the same best distance).
pub fn best_per_doc(hits: &[Hit]) -> BTreeMap<String, u32> {
    let mut best = BTreeMap::new();
    for hit in hits {
        let d = best.entry(hit.id.clone()).or_insert(u32::MAX);
        *d = (*d).min(hit.distance);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_in_vocabulary_without_repeats_and_skewed() {
        let zipf = ZipfTokens::new(512, 1.0, 7);
        let mut rng = rng(1);
        let s = zipf.string(&mut rng, 20_000);
        assert_eq!(s.len(), 20_000);
        assert!(s.iter().all(|&t| t < 512));
        assert!(s.windows(2).all(|w| w[0] != w[1]));
        let mut counts = vec![0usize; 512];
        for &t in &s {
            counts[t as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        // Zipf: the most frequent symbol is far more common than the median one.
        assert!(counts[0] > 20 * counts[256].max(1), "{:?}", &counts[..4]);
    }

    #[test]
    fn noisy_copy_changes_about_the_requested_share() {
        let zipf = ZipfTokens::new(512, 1.0, 7);
        let mut rng = rng(2);
        let source = zipf.string(&mut rng, 3_000);
        assert_eq!(zipf.noisy_copy(&mut rng, &source, 0.0), source);
        let noisy = zipf.noisy_copy(&mut rng, &source, 0.2);
        let d = crate::verifier::oracle::global(&source, &noisy) as f64 / source.len() as f64;
        assert!((0.15..0.25).contains(&d), "normalized distance {d}");
    }

    #[test]
    fn same_seed_same_strings() {
        let a = ZipfTokens::new(512, 1.0, 3).string(&mut rng(9), 100);
        let b = ZipfTokens::new(512, 1.0, 3).string(&mut rng(9), 100);
        assert_eq!(a, b);
    }
}
