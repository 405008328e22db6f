//! Teacher-forcing examples built from target strings, with the anti-bypass corruption of the
//! teacher-forced prefix (issue 8, training component 4).
//!
//! A decoder trained only on clean prefixes can lower its loss by continuing the prefix like a
//! language model and ignoring the condition (the "bypass"). Corrupting the prefix it is fed
//! (substituted, inserted and deleted tokens) while keeping the targets true makes the prefix
//! an unreliable guide: to predict the next true token the decoder has to read the condition.
//!
//! The target at every input position is the true token that follows the last *true* token of
//! the prefix: after an inserted token the target is the true token that was due before it;
//! after a substituted token (which stands in place of a true one) it is the true token after
//! that one; a deleted token is never fed, so the positions before the gap keep predicting it
//! and the token fed after the gap predicts the one after itself: the decoder learns to
//! continue past a gap. The last input
//! position's target is EOS, so the string's length is still taught.

use pairalign_models::vq::CODE_FRAME_MS;
use pairalign_models::{PairAlignConfig, TokenString};
use rand::Rng;

/// Per-token probabilities of the three corruptions.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CorruptionRates {
    /// Probability that a true token is fed as another, uniformly drawn, code.
    pub substitute: f64,
    /// Probability that a uniformly drawn code is fed before a true token.
    pub insert: f64,
    /// Probability that a true token is not fed at all.
    pub delete: f64,
}

impl CorruptionRates {
    /// The rates of `cfg.components`, multiplied by `scale` (the warmup ramp, 0 to 1); all 0
    /// when anti-bypass regularization is switched off.
    pub fn of(cfg: &PairAlignConfig, scale: f64) -> Self {
        let c = &cfg.components;
        if !c.anti_bypass {
            return Self::default();
        }
        let scale = scale.clamp(0.0, 1.0);
        CorruptionRates {
            substitute: c.corrupt_substitute * scale,
            insert: c.corrupt_insert * scale,
            delete: c.corrupt_delete * scale,
        }
    }
}

/// One teacher-forced training example: what the decoder is fed and what it must predict.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TeacherExample {
    /// Decoder inputs: BOS, then the (possibly corrupted) target tokens.
    pub input: Vec<u32>,
    /// The token to predict at each input position (same length as `input`): the true token
    /// after the last true token of the prefix, EOS after the last one.
    pub target: Vec<u32>,
    /// Start of each input token as a fraction of the clip (the timing head's target); `None`
    /// for BOS and for inserted tokens, which have no time.
    pub input_times: Vec<Option<f32>>,
    /// Tokens the decoding of this clip should produce (duration x token rate), the length
    /// loss's target.
    pub desired_len: f64,
    /// True tokens fed as another code.
    pub substituted: usize,
    /// Codes fed that are no true token.
    pub inserted: usize,
    /// True tokens not fed.
    pub deleted: usize,
}

/// The example for target string `target`, timed in ms from the start of the view it comes
/// from (`target_frames` 50 Hz frames long), to be decoded under the condition of a view of
/// `cond_frames` frames (the other view in cross-paired training; its duration sets the desired
/// length), corrupted at `rates` with draws from `rng`. The target is cut
/// to `max_tokens - 1` tokens; insertions stop when the input would need more than the model's
/// `max_tokens` positions, and the last token is never deleted (its position teaches EOS).
pub fn teacher_example(
    cfg: &PairAlignConfig,
    target: &TokenString,
    target_frames: usize,
    cond_frames: usize,
    rates: &CorruptionRates,
    rng: &mut impl Rng,
) -> TeacherExample {
    let codes = cfg.codebook_size() as u32;
    let n = target.tokens.len().min(cfg.max_tokens.saturating_sub(1));
    let y: Vec<u32> = target.tokens[..n].iter().map(|&t| u32::from(t)).collect();
    let span_ms = (target_frames as f64 * f64::from(CODE_FRAME_MS)).max(1.0);
    let time = |i: usize| {
        target
            .times_ms
            .get(i)
            .map(|&t| (f64::from(t) / span_ms) as f32)
    };
    let next = |p: usize| y.get(p).copied().unwrap_or(cfg.eos());
    let mut ex = TeacherExample {
        input: vec![cfg.bos()],
        target: vec![next(0)],
        input_times: vec![None],
        desired_len: cfg.target_tokens(cond_frames),
        ..Default::default()
    };
    // True tokens up to the last one fed (true or substituted).
    let mut p = 0;
    for (i, &tok) in y.iter().enumerate() {
        // Positions still needed for the true tokens i.. if none of them is deleted.
        let room = ex.input.len() + (n - i) < cfg.max_tokens;
        if room && rates.insert > 0.0 && rng.gen_bool(rates.insert.min(1.0)) {
            ex.input.push(rng.gen_range(0..codes));
            ex.target.push(next(p));
            ex.input_times.push(None);
            ex.inserted += 1;
        }
        let u: f64 = rng.gen();
        // The last token is never deleted, so that the last position always predicts EOS.
        if u < rates.delete && i + 1 < n {
            ex.deleted += 1;
            continue;
        }
        let fed = if u < rates.delete + rates.substitute && codes > 1 {
            ex.substituted += 1;
            // Uniform over the other codes.
            let r = rng.gen_range(0..codes - 1);
            if r >= tok {
                r + 1
            } else {
                r
            }
        } else {
            tok
        };
        p = i + 1;
        ex.input.push(fed);
        ex.target.push(next(p));
        ex.input_times.push(time(i));
    }
    // A model that decodes without history is trained as it decodes: BOS at every position.
    if !cfg.decode_history {
        ex.input.fill(cfg.bos());
    }
    ex
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// The paper's recipe (decoding with history, anti-bypass on), with room for long strings.
    fn cfg() -> PairAlignConfig {
        PairAlignConfig {
            max_tokens: 400,
            window_frames: 600,
            ..PairAlignConfig::paper()
        }
    }

    fn string(n: usize) -> TokenString {
        TokenString {
            tokens: (0..n).map(|i| (i * 7 % 512) as u16).collect(),
            times_ms: (0..n).map(|i| i as u32 * 40).collect(),
        }
    }

    #[test]
    fn clean_example_is_the_shifted_string() {
        let cfg = cfg();
        let ts = string(5);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let ex = teacher_example(&cfg, &ts, 50, 50, &CorruptionRates::default(), &mut rng);
        assert_eq!(ex.input, vec![cfg.bos(), 0, 7, 14, 21, 28]);
        assert_eq!(ex.target, vec![0, 7, 14, 21, 28, cfg.eos()]);
        // 50 frames = 1000 ms.
        assert_eq!(
            ex.input_times,
            vec![
                None,
                Some(0.0),
                Some(0.04),
                Some(0.08),
                Some(0.12),
                Some(0.16)
            ]
        );
        assert!((ex.desired_len - 12.7).abs() < 1e-9);
        assert_eq!((ex.substituted, ex.inserted, ex.deleted), (0, 0, 0));
        // Without history the same example feeds BOS everywhere; targets unchanged.
        let free = PairAlignConfig {
            decode_history: false,
            ..cfg.clone()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let ex = teacher_example(&free, &ts, 50, 50, &CorruptionRates::default(), &mut rng);
        assert_eq!(ex.input, vec![cfg.bos(); 6]);
        assert_eq!(ex.target, vec![0, 7, 14, 21, 28, cfg.eos()]);
    }

    #[test]
    fn corruption_rates_are_met() {
        let cfg = cfg();
        let rates = CorruptionRates {
            substitute: 0.1,
            insert: 0.05,
            delete: 0.08,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (mut n, mut sub, mut ins, mut del) = (0usize, 0usize, 0usize, 0usize);
        for _ in 0..400 {
            let ts = string(100);
            let ex = teacher_example(&cfg, &ts, 500, 500, &rates, &mut rng);
            n += 100;
            sub += ex.substituted;
            ins += ex.inserted;
            del += ex.deleted;
            assert_eq!(ex.input.len(), 1 + 100 + ex.inserted - ex.deleted);
            assert_eq!(ex.target.len(), ex.input.len());
            assert_eq!(ex.input_times.len(), ex.input.len());
            assert_eq!(*ex.target.last().unwrap(), cfg.eos());
            // Substituted tokens really differ: count the true tokens fed as themselves.
            let fed_true = ex
                .input
                .iter()
                .zip(&ex.input_times)
                .filter(|(&t, time)| {
                    time.is_some_and(|s| {
                        ts.tokens[(s * 500.0 * 20.0 / 40.0).round() as usize] == t as u16
                    })
                })
                .count();
            assert_eq!(fed_true, 100 - ex.deleted - ex.substituted);
        }
        // 40,000 tokens: the binomial standard deviation of a 0.1 rate is 0.0015.
        let rate = |k: usize| k as f64 / n as f64;
        assert!(
            (rate(sub) - 0.1).abs() < 0.006,
            "substitution {}",
            rate(sub)
        );
        assert!((rate(ins) - 0.05).abs() < 0.005, "insertion {}", rate(ins));
        // The last token of each string is never deleted: 99 of every 100 can be.
        assert!(
            (rate(del) - 0.08 * 0.99).abs() < 0.005,
            "deletion {}",
            rate(del)
        );
    }

    #[test]
    fn targets_follow_the_last_true_token() {
        let cfg = cfg();
        let ts = string(60);
        let rates = CorruptionRates {
            substitute: 0.2,
            insert: 0.2,
            delete: 0.2,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let ex = teacher_example(&cfg, &ts, 150, 150, &rates, &mut rng);
        // Walk the example: the true position advances on every timed (true or substituted)
        // input; the target is always the true token at that position.
        let y: Vec<u32> = ts.tokens.iter().map(|&t| u32::from(t)).collect();
        let mut p = 0usize;
        for (k, time) in ex.input_times.iter().enumerate() {
            if let Some(t) = time {
                // Timed inputs carry the time of the true token they stand for.
                let idx = (t * 150.0 * 20.0 / 40.0).round() as usize;
                assert!(idx >= p, "times go forward");
                p = idx + 1;
            }
            let want = y.get(p).copied().unwrap_or(cfg.eos());
            assert_eq!(ex.target[k], want, "position {k}");
        }
    }

    #[test]
    fn rates_scale_and_switch_off() {
        let mut cfg = cfg();
        let full = CorruptionRates::of(&cfg, 1.0);
        assert_eq!(full.substitute, cfg.components.corrupt_substitute);
        let half = CorruptionRates::of(&cfg, 0.5);
        assert!((half.delete - cfg.components.corrupt_delete / 2.0).abs() < 1e-12);
        cfg.components.anti_bypass = false;
        assert_eq!(CorruptionRates::of(&cfg, 1.0), CorruptionRates::default());
    }

    #[test]
    fn insertions_never_overflow_the_positions() {
        let cfg = PairAlignConfig::paper();
        let ts = string(cfg.max_tokens - 1);
        let rates = CorruptionRates {
            substitute: 0.0,
            insert: 1.0,
            delete: 0.0,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let ex = teacher_example(&cfg, &ts, 150, 150, &rates, &mut rng);
        assert_eq!(ex.input.len(), cfg.max_tokens);
        assert_eq!(ex.inserted, 0);
        let ex = teacher_example(&cfg, &string(40), 150, 150, &rates, &mut rng);
        assert_eq!(ex.input.len(), cfg.max_tokens);
        assert_eq!(ex.inserted, cfg.max_tokens - 41);
    }
}
