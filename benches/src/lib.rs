//! pairalign-benches: shared generators for the criterion benchmarks in `benches/benches/`.
//!
//! The data model every benchmark uses is "realistic tokens": Zipf-distributed symbols over a
//! vocabulary of 512 (what a learned audio tokenizer emits), and queries that are noisy copies of an
//! archive substring with substitutions, insertions and deletions at a given rate.

use pairalign_engine::{Hit, Symbol};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Vocabulary size of the realistic-token data model.
pub const VOCAB: usize = 512;

/// Zipf distribution over the symbols `0..vocab`: symbol `r` has weight `1 / (r + 1)^exponent`.
/// Sampled by inverse CDF (binary search), so construction is O(vocab) and a draw O(log vocab).
#[derive(Clone, Debug)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// `vocab` must be in `1..=65536` (clamped into that range).
    pub fn new(vocab: usize, exponent: f64) -> Zipf {
        let vocab = vocab.clamp(1, 1 << 16);
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (0..vocab)
            .map(|r| {
                acc += 1.0 / ((r + 1) as f64).powf(exponent);
                acc
            })
            .collect();
        for p in &mut cdf {
            *p /= acc;
        }
        Zipf { cdf }
    }

    /// The data model's default: exponent 1 over [`VOCAB`] symbols.
    pub fn tokens() -> Zipf {
        Zipf::new(VOCAB, 1.0)
    }

    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Symbol {
        let u: f64 = rng.gen();
        let r = self.cdf.partition_point(|&p| p < u).min(self.cdf.len() - 1);
        r as Symbol
    }

    /// A string of `len` independent draws.
    pub fn string<R: Rng + ?Sized>(&self, rng: &mut R, len: usize) -> Vec<Symbol> {
        (0..len).map(|_| self.sample(rng)).collect()
    }
}

/// A noisy copy of `src`: each position is substituted, deleted, or kept and followed by an
/// inserted symbol, each with probability `rate / 3`; new symbols are drawn from `symbols`. The
/// edit distance to `src` is at most (and usually close to) `rate * src.len()`.
pub fn noisy_copy<R: Rng + ?Sized>(
    rng: &mut R,
    src: &[Symbol],
    rate: f64,
    symbols: &Zipf,
) -> Vec<Symbol> {
    let mut out = Vec::with_capacity(src.len() + src.len() / 4 + 1);
    for &c in src {
        let r: f64 = rng.gen();
        if r < rate / 3.0 {
            out.push(symbols.sample(rng));
        } else if r < 2.0 * rate / 3.0 {
            // deleted
        } else {
            out.push(c);
            if r < rate {
                out.push(symbols.sample(rng));
            }
        }
    }
    out
}

/// `len` random symbols with a noisy copy of `query` (see [`noisy_copy`]) placed at a random
/// position: a long text that contains one occurrence.
pub fn embed_copy<R: Rng + ?Sized>(
    rng: &mut R,
    query: &[Symbol],
    len: usize,
    rate: f64,
    symbols: &Zipf,
) -> Vec<Symbol> {
    let copy = noisy_copy(rng, query, rate, symbols);
    let flank = len.saturating_sub(copy.len());
    let before = rng.gen_range(0..=flank);
    let mut text = symbols.string(rng, before);
    text.extend(copy);
    text.extend(symbols.string(rng, flank - before));
    text
}

/// Deterministic speech-like audio at `rate` Hz: a glottal pulse train at 90-230 Hz shaped by
/// three formant resonators that change every 120-300 ms, with pauses and a little noise,
/// peak-normalized to 0.8.
pub fn speech_like(seconds: f64, rate: u32, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = (seconds * f64::from(rate)) as usize;
    let mut out = Vec::with_capacity(n);
    let dt = 1.0 / f64::from(rate);
    // Two-pole resonators, one per formant: y = x + a1 y1 + a2 y2.
    let mut state = [[0.0f64; 2]; 3];
    let mut coefs = [[0.0f64; 2]; 3];
    let (mut seg_left, mut voiced, mut f0, mut phase) = (0usize, true, 120.0f64, 0.0f64);
    for _ in 0..n {
        if seg_left == 0 {
            seg_left = (rng.gen_range(0.12..0.3) * f64::from(rate)) as usize;
            voiced = rng.gen_bool(0.8);
            f0 = rng.gen_range(90.0..230.0);
            let formants = [
                rng.gen_range(300.0..900.0),
                rng.gen_range(900.0..2500.0),
                rng.gen_range(2500.0..3500.0),
            ];
            for (c, f) in coefs.iter_mut().zip(formants) {
                let r = (-std::f64::consts::PI * 80.0 * dt).exp();
                *c = [
                    2.0 * r * (2.0 * std::f64::consts::PI * f * dt).cos(),
                    -r * r,
                ];
            }
        }
        seg_left -= 1;
        phase += f0 * dt;
        let excitation = if voiced && phase >= 1.0 {
            phase -= 1.0;
            1.0
        } else {
            if phase >= 1.0 {
                phase -= 1.0;
            }
            0.0
        } + rng.gen_range(-0.02..0.02);
        let mut y = 0.0;
        for (s, c) in state.iter_mut().zip(&coefs) {
            let v = excitation + c[0] * s[0] + c[1] * s[1];
            s[1] = s[0];
            s[0] = v;
            y += v;
        }
        out.push(y);
    }
    let peak = out.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-9);
    out.iter().map(|v| (0.8 * v / peak) as f32).collect()
}

/// The shortest of three timed runs of `f`: the least disturbed by the rest of the machine.
pub fn best_of_3(mut f: impl FnMut()) -> std::time::Duration {
    (0..3)
        .map(|_| {
            let t = std::time::Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// The environment variable `name` parsed as a `T`, or `default` when it is unset or does not
/// parse (the settings of the benches that run without Criterion).
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p`-th percentile (0 to 100) of `sorted` by the nearest rank; NaN when it is empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Tie-aware recall@10: the share of the exhaustive top 10 matched by filtered hits at a distance
/// no worse than the exhaustive 10th (among equal distances any document is as good). `None`
/// when exhaustive search finds nothing. The `search` and `scale` benches both report it.
pub fn recall_at_10(filtered: &[Hit], exhaustive: &[Hit]) -> Option<f64> {
    let truth = &exhaustive[..exhaustive.len().min(10)];
    let worst = truth.last()?.distance;
    let good = filtered
        .iter()
        .take(10)
        .filter(|h| h.distance <= worst)
        .count();
    Some(good.min(truth.len()) as f64 / truth.len() as f64)
}
