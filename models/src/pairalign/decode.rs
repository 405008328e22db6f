//! Batched greedy decoding with a KV cache, length-constrained and deterministic.
//!
//! Every row starts from BOS. At each step the decoder sees one new position per row: its
//! self-attention keys and values are appended to the cache, the cross-attention ones were
//! computed once from the condition. The next token is the highest-scoring VQ code, or EOS when
//! EOS scores higher and the row has its minimum length ([`greedy_choice`]); a row at its
//! maximum gets EOS. Finished rows leave the batch (their cache rows are dropped), so the
//! remaining steps compute only what is still needed.
//!
//! Without decoding history (`decode_history` false) every input is BOS, so on given centres
//! (the fixed grid) all positions are decoded in one pass instead of step by step.

use candle_core::Tensor;

use super::model::{Centres, Condition, LayerCache};
use super::{PairAlignConfig, PairAlignModel};
use crate::vq::CODE_FRAME_MS;
use crate::{Error, Result, TokenString};

/// One decoded clip.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decoded {
    /// VQ-code ids, each below the codebook size (no BOS, EOS or PAD).
    pub tokens: Vec<u16>,
    /// For each token, its predicted start as a fraction of the clip's condition frames, from
    /// the timing head (raw: neither clamped nor made monotone).
    pub times: Vec<f32>,
}

impl Decoded {
    /// The token times in ms for a clip of `cond_frames` 50 Hz frames: each fraction times the
    /// clip's span, clamped to the start of its last frame (so within the clip), rounded, and
    /// made non-decreasing by a running maximum (a token never starts before the one it
    /// follows); a non-finite prediction repeats the previous time.
    pub fn times_ms(&self, cond_frames: usize) -> Vec<u32> {
        let span = (cond_frames as u64 * u64::from(CODE_FRAME_MS)) as f64;
        let last = span - f64::from(CODE_FRAME_MS);
        let mut prev = 0u32;
        self.times
            .iter()
            .map(|&f| {
                if f.is_finite() {
                    let t = (f64::from(f) * span).clamp(0.0, last.max(0.0)).round() as u32;
                    prev = prev.max(t);
                }
                prev
            })
            .collect()
    }
}

/// The greedy choice of decoding for one row: `logits` over the decoder vocabulary, `emitted`
/// tokens so far, the last of them `prev`, `(min, max)` tokens allowed. EOS at the maximum;
/// before the minimum, the best code; otherwise EOS when it scores strictly higher than every
/// code, else the best code. The code `prev` is never chosen again: a target string never holds
/// the same code twice in a row (runs are merged, `pairalign_train::pairalign::vq_targets`),
/// and without this rule a decoder that has lost its place repeats its last code to the
/// maximum length. BOS and PAD are never chosen; ties go to the lowest id; NaN scores never
/// win.
pub fn greedy_choice(
    cfg: &PairAlignConfig,
    logits: &[f32],
    emitted: usize,
    prev: Option<u32>,
    (min, max): (usize, usize),
) -> u32 {
    let eos = cfg.eos();
    if emitted >= max {
        return eos;
    }
    let mut best = 0u32;
    let mut best_score = f32::NEG_INFINITY;
    for (i, &s) in logits.iter().take(cfg.codebook_size()).enumerate() {
        if s > best_score && prev != Some(i as u32) {
            best = i as u32;
            best_score = s;
        }
    }
    let eos_score = logits
        .get(eos as usize)
        .copied()
        .unwrap_or(f32::NEG_INFINITY);
    if emitted >= min && eos_score > best_score {
        eos
    } else {
        best
    }
}

/// The decoder's cache for a batch being decoded: one [`LayerCache`] per layer and the
/// condition's key mask, for the rows still active.
#[derive(Clone, Debug)]
struct DecodeCache {
    layers: Vec<LayerCache>,
    cond_mask: Tensor,
    lens: Vec<usize>,
}

impl DecodeCache {
    /// Keeps rows `keep` (indices into the current batch) of every cached tensor.
    fn retain(&mut self, keep: &[usize]) -> Result<()> {
        let device = self.cond_mask.device().clone();
        let idx: Vec<u32> = keep.iter().map(|&i| i as u32).collect();
        let idx = Tensor::from_vec(idx, keep.len(), &device)?;
        let pick = |t: &Tensor| -> Result<Tensor> { Ok(t.index_select(&idx, 0)?) };
        for layer in &mut self.layers {
            layer.self_k = layer.self_k.as_ref().map(&pick).transpose()?;
            layer.self_v = layer.self_v.as_ref().map(&pick).transpose()?;
            layer.cross_k = pick(&layer.cross_k)?;
            layer.cross_v = pick(&layer.cross_v)?;
        }
        self.cond_mask = pick(&self.cond_mask)?;
        self.lens = keep.iter().map(|&i| self.lens[i]).collect();
        Ok(())
    }
}

impl PairAlignModel {
    /// Greedy decoding of every row of `cond` within the config's length bounds for its
    /// duration ([`PairAlignConfig::length_bounds`]). A row with no frames decodes to nothing.
    pub fn decode_greedy(&self, cond: &Condition) -> Result<Vec<Decoded>> {
        let bounds: Vec<(usize, usize)> = cond
            .lens
            .iter()
            .map(|&n| self.config().length_bounds(n))
            .collect();
        self.decode_greedy_bounded(cond, &bounds)
    }

    /// Greedy decoding of every row of `cond` with `bounds[b]` = `(min, max)` tokens for row
    /// `b` (`max` at most `max_tokens - 1`). Rows with no frames or `max` 0 decode to nothing.
    pub fn decode_greedy_bounded(
        &self,
        cond: &Condition,
        bounds: &[(usize, usize)],
    ) -> Result<Vec<Decoded>> {
        self.decode_rows(cond, bounds, None)
    }

    /// Greedy decoding with the alignment prior of row `b`'s `k`-th token centred at
    /// `centres[b][k]` (in condition frames, e.g. the fixed grid's points,
    /// [`super::PairAlignConfig::grid_centres`]) instead of spread over the clip, its width
    /// a fraction of a whole window: row `b` gets exactly `centres[b].len()` tokens (at most
    /// `max_tokens - 1`; later centres are dropped).
    pub fn decode_greedy_anchored(
        &self,
        cond: &Condition,
        centres: &[Vec<f64>],
    ) -> Result<Vec<Decoded>> {
        if centres.len() != cond.len() {
            return Err(Error::BadInput(format!(
                "{} rows of centres for {} conditions",
                centres.len(),
                cond.len()
            )));
        }
        let most = self.config().max_tokens - 1;
        let bounds: Vec<(usize, usize)> = centres
            .iter()
            .map(|c| (c.len().min(most), c.len().min(most)))
            .collect();
        self.decode_rows(cond, &bounds, Some(centres))
    }

    /// Strings on the fixed token grid, as the tokenizer stores them: row `b` decoded on
    /// [`PairAlignConfig::grid_centres`] of its condition frames moved by `offsets[b]`, each
    /// token timed where its grid cell starts (half a period before its centre, at least 0).
    /// A grid token reads the audio at its grid point (the alignment prior is centred there);
    /// the timing head, trained on the times of VQ runs, put runs of grid tokens at one time
    /// and missed by up to seconds (docs/RESULTS.md, issue 8), so its times are not used.
    pub fn decode_on_grid(&self, cond: &Condition, offsets: &[f64]) -> Result<Vec<TokenString>> {
        if offsets.len() != cond.len() {
            return Err(Error::BadInput(format!(
                "{} grid offsets for {} conditions",
                offsets.len(),
                cond.len()
            )));
        }
        let cfg = self.config();
        let centres: Vec<Vec<f64>> = cond
            .lens
            .iter()
            .zip(offsets)
            .map(|(&frames, &offset)| cfg.grid_centres(frames, offset))
            .collect();
        let half = 0.5 * cfg.grid_period();
        let ms = |c: f64| ((c - half).max(0.0) * f64::from(CODE_FRAME_MS)).round() as u32;
        Ok(self
            .decode_greedy_anchored(cond, &centres)?
            .into_iter()
            .zip(&centres)
            .map(|(d, c)| TokenString {
                times_ms: c.iter().take(d.tokens.len()).map(|&c| ms(c)).collect(),
                tokens: d.tokens,
            })
            .collect())
    }

    fn decode_rows(
        &self,
        cond: &Condition,
        bounds: &[(usize, usize)],
        centres: Option<&[Vec<f64>]>,
    ) -> Result<Vec<Decoded>> {
        let cfg = self.config();
        if bounds.len() != cond.len() {
            return Err(Error::BadInput(format!(
                "{} length bounds for {} conditions",
                bounds.len(),
                cond.len()
            )));
        }
        if let Some(&(_, max)) = bounds.iter().find(|(_, max)| *max >= cfg.max_tokens) {
            return Err(Error::BadInput(format!(
                "a maximum of {max} tokens needs more than the model's {} positions",
                cfg.max_tokens
            )));
        }
        let out = vec![Decoded::default(); cond.len()];
        // Original row of each active batch row.
        let active: Vec<usize> = (0..cond.len())
            .filter(|&b| cond.lens[b] > 0 && bounds[b].1 > 0)
            .collect();
        if active.is_empty() {
            return Ok(out);
        }
        let cond = if active.len() == cond.len() {
            cond.clone()
        } else {
            cond.select(&active)?
        };
        match (cfg.decode_history, centres) {
            (false, Some(centres)) => self.decode_all_at_once(&cond, &active, bounds, centres, out),
            _ => self.decode_steps(cond, active, bounds, centres, out),
        }
    }

    /// Greedy decoding step by step with the KV cache; `cond` holds the `active` rows.
    fn decode_steps(
        &self,
        cond: Condition,
        mut active: Vec<usize>,
        bounds: &[(usize, usize)],
        centres: Option<&[Vec<f64>]>,
        mut out: Vec<Decoded>,
    ) -> Result<Vec<Decoded>> {
        let cfg = self.config();
        let mut cache = DecodeCache {
            layers: self.decoder.start_cache(&cond)?,
            cond_mask: cond.mask.clone(),
            lens: cond.lens.clone(),
        };
        let device = cond.states.device();
        let mut inputs = vec![cfg.bos(); active.len()];
        // The active rows' centres.
        let mut rows: Vec<Vec<f64>> = centres
            .map(|c| active.iter().map(|&b| c[b].clone()).collect())
            .unwrap_or_default();
        for pos in 0..cfg.max_tokens {
            let tokens = Tensor::from_slice(&inputs, inputs.len(), device)?;
            let step = self.decoder.step(
                &tokens,
                pos,
                &mut cache.layers,
                &cache.cond_mask,
                &cache.lens,
                if centres.is_some() {
                    Centres::Frames(&rows)
                } else {
                    Centres::Grid
                },
            )?;
            let logits = step.logits.squeeze(1)?.to_vec2::<f32>()?;
            let times = step.times.squeeze(1)?.to_vec1::<f32>()?;
            let mut keep = Vec::with_capacity(active.len());
            let mut next = Vec::with_capacity(active.len());
            for (i, &row) in active.iter().enumerate() {
                let dec = &mut out[row];
                if pos > 0 {
                    // The time of the token fed in at this position.
                    dec.times.push(times[i]);
                }
                let prev = dec
                    .tokens
                    .last()
                    .map(|&t| u32::from(t))
                    .filter(|_| cfg.decode_history);
                let choice = greedy_choice(cfg, &logits[i], dec.tokens.len(), prev, bounds[row]);
                if choice != cfg.eos() {
                    dec.tokens.push(choice as u16);
                    keep.push(i);
                    next.push(choice);
                }
            }
            if keep.is_empty() {
                return Ok(out);
            }
            if keep.len() < active.len() {
                cache.retain(&keep)?;
                active = keep.iter().map(|&i| active[i]).collect();
                if let Some(c) = centres {
                    rows = active.iter().map(|&b| c[b].clone()).collect();
                }
            }
            inputs = if cfg.decode_history {
                next
            } else {
                vec![cfg.bos(); next.len()]
            };
        }
        // Unreachable: every maximum is below max_tokens, so every row ends by then.
        Err(Error::BadInput(
            "decoding ran past the model's positions".into(),
        ))
    }

    /// Decoding without history on given centres: no input depends on an output (BOS
    /// everywhere), so one pass over every position gives what the steps give, choice for
    /// choice (`decode_steps` without history is the oracle in the tests). `cond` holds the
    /// `active` rows; each row's last position gives the time of its last token, as the
    /// step that chooses EOS does.
    fn decode_all_at_once(
        &self,
        cond: &Condition,
        active: &[usize],
        bounds: &[(usize, usize)],
        centres: &[Vec<f64>],
        mut out: Vec<Decoded>,
    ) -> Result<Vec<Decoded>> {
        let cfg = self.config();
        let l = active.iter().map(|&b| bounds[b].1).max().unwrap_or(0) + 1;
        let rows: Vec<Vec<f64>> = active.iter().map(|&b| centres[b].clone()).collect();
        let input = Tensor::from_vec(
            vec![cfg.bos(); active.len() * l],
            (active.len(), l),
            cond.states.device(),
        )?;
        let step = self
            .decoder
            .forward_decoding(&input, cond, Centres::Frames(&rows))?;
        let logits = step.logits.to_vec3::<f32>()?;
        let times = step.times.to_vec2::<f32>()?;
        for (i, &row) in active.iter().enumerate() {
            let dec = &mut out[row];
            for pos in 0..l {
                let choice =
                    greedy_choice(cfg, &logits[i][pos], dec.tokens.len(), None, bounds[row]);
                if pos > 0 {
                    dec.times.push(times[i][pos]);
                }
                if choice == cfg.eos() {
                    break;
                }
                dec.tokens.push(choice as u16);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PairAlignConfig {
        PairAlignConfig {
            encoder: crate::VqConfig {
                codebook_size: 256,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Decoding without history in one pass gives what the steps give, token for token, on
    /// a grid of centres (rows of different lengths in one batch).
    #[test]
    fn decoding_at_once_matches_the_steps() {
        use candle_core::Device;
        use candle_nn::VarMap;

        let cfg = PairAlignConfig {
            encoder: crate::VqConfig {
                channels: 32,
                encoder_layers: 1,
                codebook_size: 256,
                code_dim: 16,
                ..Default::default()
            },
            d_model: 32,
            heads: 2,
            ff_dim: 64,
            cond_window: 6,
            decoder_context: 3,
            absolute_positions: false,
            grid_phases: 2,
            decode_history: false,
            ..Default::default()
        };
        let vm = VarMap::new();
        let model =
            PairAlignModel::load(&cfg, crate::init::seeded_varmap(&vm, 3, &Device::Cpu)).unwrap();
        let frames = [300usize, 180];
        let t = frames[0];
        let mel: Vec<f32> = (0..2 * t * 80)
            .map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) * ((i / 80) as f32 * 0.05).sin())
            .collect();
        let x = Tensor::from_vec(mel, (2, t, 80), &Device::Cpu).unwrap();
        let cond = model.encode(&x, Some(&frames)).unwrap();
        let period = 50.0 / cfg.token_rate;
        let centres: Vec<Vec<f64>> = cond
            .lens
            .iter()
            .map(|&n| {
                (0..)
                    .map(|k| (k as f64 + 0.25) * period)
                    .take_while(|&c| c < n as f64)
                    .collect()
            })
            .collect();
        let bounds: Vec<(usize, usize)> = centres.iter().map(|c| (c.len(), c.len())).collect();
        let at_once = model
            .decode_all_at_once(
                &cond,
                &[0, 1],
                &bounds,
                &centres,
                vec![Decoded::default(); 2],
            )
            .unwrap();
        let steps = model
            .decode_steps(
                cond.clone(),
                vec![0, 1],
                &bounds,
                Some(&centres),
                vec![Decoded::default(); 2],
            )
            .unwrap();
        assert_eq!(at_once[0].tokens.len(), 38);
        assert_eq!(at_once[1].tokens.len(), centres[1].len());
        for (a, b) in at_once.iter().zip(&steps) {
            assert_eq!(a.tokens, b.tokens);
            assert_eq!(a.times.len(), b.times.len());
            for (x, y) in a.times.iter().zip(&b.times) {
                assert!((x - y).abs() < 1e-5, "{x} {y}");
            }
        }
        // decode_greedy_anchored takes the single pass without history.
        let public = model.decode_greedy_anchored(&cond, &centres).unwrap();
        assert_eq!(public, at_once);
    }

    #[test]
    fn choice_follows_the_bounds() {
        let cfg = cfg();
        let mut logits = vec![0f32; cfg.vocab_size()];
        logits[7] = 1.0;
        logits[cfg.eos() as usize] = 5.0;
        logits[cfg.bos() as usize] = 9.0;
        logits[cfg.pad() as usize] = 9.0;
        assert_eq!(
            greedy_choice(&cfg, &logits, 0, None, (2, 4)),
            7,
            "before the minimum"
        );
        assert_eq!(greedy_choice(&cfg, &logits, 2, None, (2, 4)), cfg.eos());
        logits[cfg.eos() as usize] = -5.0;
        assert_eq!(greedy_choice(&cfg, &logits, 3, None, (2, 4)), 7);
        assert_eq!(
            greedy_choice(&cfg, &logits, 4, None, (2, 4)),
            cfg.eos(),
            "at the maximum"
        );
        // Never the previous code: the next best instead.
        logits[2] = 0.5;
        assert_eq!(greedy_choice(&cfg, &logits, 3, Some(7), (2, 4)), 2);
        assert_eq!(greedy_choice(&cfg, &logits, 3, Some(2), (2, 4)), 7);
        // Ties go to the lowest id, NaN never wins.
        let mut logits = vec![f32::NAN; cfg.vocab_size()];
        logits[3] = 2.0;
        logits[9] = 2.0;
        assert_eq!(greedy_choice(&cfg, &logits, 0, None, (1, 4)), 3);
        logits[cfg.eos() as usize] = 2.0;
        assert_eq!(
            greedy_choice(&cfg, &logits, 1, None, (1, 4)),
            3,
            "a tie is not EOS"
        );
    }

    #[test]
    fn times_are_clamped_monotone_and_in_ms() {
        let d = Decoded {
            tokens: vec![1; 6],
            times: vec![-0.5, 0.1, 0.05, f32::NAN, 0.5, 2.0],
        };
        // 150 frames: 3000 ms, the last frame starts at 2980.
        assert_eq!(d.times_ms(150), vec![0, 300, 300, 300, 1500, 2980]);
        assert_eq!(d.times_ms(1), vec![0; 6]);
    }
}
