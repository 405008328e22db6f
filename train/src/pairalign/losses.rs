//! The training objectives of the PairAlign tokenizer (issue 8, "Training"), each a function of
//! teacher-forced outputs on constructed inputs, so that each can be tested alone:
//! teacher forcing (3: cross-paired when the conditions are the other view's), likelihood
//! contrast (5), length control (6), timing recovery (7), and the bypass measurement (4).

use candle_core::{DType, Device, Tensor, D};

use pairalign_models::pairalign::{Condition, TeacherOutput};
use pairalign_models::{PairAlignConfig, PairAlignModel};

use super::corrupt::TeacherExample;
use crate::{Error, Result};

/// Floor on `1 - p(EOS)` inside a logarithm.
const MIN_SURVIVAL: f64 = 1e-6;

/// Teacher-forcing examples padded into tensors, one row per example.
#[derive(Clone, Debug)]
pub struct TeacherBatch {
    /// `[B, L]` u32 decoder inputs, PAD past each row's end.
    pub input: Tensor,
    /// `[B, L]` u32 targets, PAD past each row's end.
    pub target: Tensor,
    /// `[B, L]` f32: 1 on the positions of a row, 0 on its padding.
    pub mask: Tensor,
    /// `[B, L]` f32: the start of each input token as a fraction of its clip (0 where none).
    pub times: Tensor,
    /// `[B, L]` f32: 1 where `times` holds a time (true and substituted tokens).
    pub time_mask: Tensor,
    /// `[B]` f32: the length each row's decoding should have (duration x token rate).
    pub desired_len: Tensor,
    /// Positions (inputs) of each row.
    pub lens: Vec<usize>,
}

impl TeacherBatch {
    /// Pads `examples` to the longest.
    pub fn new(
        cfg: &PairAlignConfig,
        examples: &[TeacherExample],
        device: &Device,
    ) -> Result<Self> {
        if examples.is_empty() || examples.iter().any(|e| e.input.is_empty()) {
            return Err(Error::BadInput(
                "a teacher batch needs at least one example, each with BOS".into(),
            ));
        }
        let b = examples.len();
        let l = examples.iter().map(|e| e.input.len()).max().unwrap_or(1);
        let mut input = vec![cfg.pad(); b * l];
        let mut target = vec![cfg.pad(); b * l];
        let mut mask = vec![0f32; b * l];
        let mut times = vec![0f32; b * l];
        let mut time_mask = vec![0f32; b * l];
        for (r, ex) in examples.iter().enumerate() {
            let row = r * l;
            let n = ex.input.len();
            input[row..row + n].copy_from_slice(&ex.input);
            target[row..row + n].copy_from_slice(&ex.target);
            mask[row..row + n].fill(1.0);
            for (k, t) in ex.input_times.iter().enumerate() {
                if let Some(t) = t {
                    times[row + k] = *t;
                    time_mask[row + k] = 1.0;
                }
            }
        }
        let desired: Vec<f32> = examples.iter().map(|e| e.desired_len as f32).collect();
        Ok(TeacherBatch {
            input: Tensor::from_vec(input, (b, l), device)?,
            target: Tensor::from_vec(target, (b, l), device)?,
            mask: Tensor::from_vec(mask, (b, l), device)?,
            times: Tensor::from_vec(times, (b, l), device)?,
            time_mask: Tensor::from_vec(time_mask, (b, l), device)?,
            desired_len: Tensor::from_vec(desired, b, device)?,
            lens: examples.iter().map(|e| e.input.len()).collect(),
        })
    }

    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// True for a batch of no rows (never built by [`TeacherBatch::new`]).
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Rows `rows` of the batch (a row may repeat).
    pub fn select(&self, rows: &[usize]) -> Result<TeacherBatch> {
        let device = self.input.device();
        let idx: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        let idx = Tensor::from_vec(idx, rows.len(), device)?;
        let lens = rows
            .iter()
            .map(|&r| {
                self.lens.get(r).copied().ok_or_else(|| {
                    Error::BadInput(format!("row {r} of a batch of {}", self.lens.len()))
                })
            })
            .collect::<Result<_>>()?;
        let pick = |t: &Tensor| -> Result<Tensor> { Ok(t.index_select(&idx, 0)?) };
        Ok(TeacherBatch {
            input: pick(&self.input)?,
            target: pick(&self.target)?,
            mask: pick(&self.mask)?,
            times: pick(&self.times)?,
            time_mask: pick(&self.time_mask)?,
            desired_len: pick(&self.desired_len)?,
            lens,
        })
    }
}

/// `[B, L]` log-probability of each target under the logits `[B, L, vocab]`.
pub fn token_log_probs(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    let lp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    Ok(lp
        .gather(&target.unsqueeze(D::Minus1)?.contiguous()?, D::Minus1)?
        .squeeze(D::Minus1)?)
}

/// `[B]` length-normalized log-likelihood of each row's targets: the mean log-probability of
/// its tokens and EOS.
pub fn sequence_log_likelihood(out: &TeacherOutput, batch: &TeacherBatch) -> Result<Tensor> {
    let lp = (token_log_probs(&out.logits, &batch.target)? * &batch.mask)?;
    Ok((lp.sum(1)? / batch.mask.sum(1)?)?)
}

/// The teacher-forcing loss: mean negative log-likelihood per target token over the batch
/// (components 3 and 1/2: which targets, under which view's condition, is the caller's).
pub fn teacher_forcing_loss(out: &TeacherOutput, batch: &TeacherBatch) -> Result<Tensor> {
    let lp = (token_log_probs(&out.logits, &batch.target)? * &batch.mask)?;
    Ok((lp.sum_all()?.neg()? / batch.mask.sum_all()?)?)
}

/// Teacher forcing over the two views of `n` clips (components 3 and 1/2): `cond` holds the
/// conditions of views A of the clips then of views B (`2n` rows), `batch` the examples built
/// from their target strings in the same order (y_A of every clip, then y_B). With `cross`,
/// the loss is `-log p(y_A | cond(x_B)) - log p(y_B | cond(x_A))`, each a mean over target
/// tokens, so every batch trains both directions; without it, each view's target is trained
/// under its own condition. One decoder call; its output is returned for the length and
/// timing losses, which use the same positions.
pub fn paired_teacher_forcing(
    model: &PairAlignModel,
    cond: &Condition,
    batch: &TeacherBatch,
    cross: bool,
) -> Result<(Tensor, TeacherOutput)> {
    let rows = batch.len();
    if rows == 0 || !rows.is_multiple_of(2) || cond.len() != rows {
        return Err(Error::BadInput(format!(
            "paired teacher forcing needs two views of each clip: {rows} target rows, {} \
             conditions",
            cond.len()
        )));
    }
    let n = rows / 2;
    let cond = if cross {
        let swapped: Vec<usize> = (n..rows).chain(0..n).collect();
        cond.select(&swapped)?
    } else {
        cond.clone()
    };
    let out = model.forward_teacher(&cond, &batch.input)?;
    let lp = (token_log_probs(&out.logits, &batch.target)? * &batch.mask)?;
    let half = |start: usize| -> Result<Tensor> {
        let lp = lp.narrow(0, start, n)?.sum_all()?;
        let count = batch.mask.narrow(0, start, n)?.sum_all()?;
        Ok((lp.neg()? / count)?)
    };
    Ok(((half(0)? + half(n)?)?, out))
}

/// `[B, B]` matrix of length-normalized log-likelihoods: entry `(i, j)` is that of row `i`'s
/// targets under row `j`'s condition (likelihood contrast, component 5). `B^2` teacher-forced
/// sequences in one decoder call.
pub fn likelihood_matrix(
    model: &PairAlignModel,
    cond: &Condition,
    batch: &TeacherBatch,
) -> Result<Tensor> {
    let b = batch.len();
    if cond.len() != b {
        return Err(Error::BadInput(format!(
            "{b} target rows for {} conditions",
            cond.len()
        )));
    }
    let targets: Vec<usize> = (0..b).flat_map(|i| std::iter::repeat_n(i, b)).collect();
    let conds: Vec<usize> = (0..b).flat_map(|_| 0..b).collect();
    let rows = batch.select(&targets)?;
    let out = model.forward_teacher(&cond.select(&conds)?, &rows.input)?;
    Ok(sequence_log_likelihood(&out, &rows)?.reshape((b, b))?)
}

/// The likelihood-contrast loss over `matrix` (`[B, B]`, as from [`likelihood_matrix`]) at
/// `temperature`: the mean of a cross-entropy over each row (target `i` should be most likely
/// under its own clip's condition among all the batch's conditions) and one over each column
/// (condition `j` should make its own clip's string the most likely of the batch's strings,
/// the unrelated clips' strings competing), the paired entries on the diagonal. Both
/// directions: the rows alone reward a decoder that reads the condition, the columns alone
/// one that ranks strings; the paper's surrogate wants both.
pub fn contrast_loss(matrix: &Tensor, temperature: f64) -> Result<Tensor> {
    let (b, b2) = matrix.dims2()?;
    if b != b2 || b == 0 {
        return Err(Error::BadInput(format!(
            "a contrast matrix must be square and non-empty, got {b} x {b2}"
        )));
    }
    let logits = (matrix / temperature)?;
    let eye = Tensor::eye(b, DType::F32, matrix.device())?;
    let rows = (candle_nn::ops::log_softmax(&logits, 1)? * &eye)?.sum_all()?;
    let cols = (candle_nn::ops::log_softmax(&logits, 0)? * &eye)?.sum_all()?;
    Ok(((rows + cols)? / (-2.0 * b as f64))?)
}

/// `[B]` expected number of tokens before EOS under the decoder's EOS probabilities along each
/// teacher-forced row: position `k` (after `k` inputs past BOS) stops with probability
/// `p_k(EOS)` given that no earlier one did, and the row's last position stops for certain
/// (what follows it is not seen). `E[len] = sum_k k * p_k(EOS) * prod_{j<k} (1 - p_j(EOS))`.
pub fn expected_length(out: &TeacherOutput, batch: &TeacherBatch, eos: u32) -> Result<Tensor> {
    let (b, l, _) = out.logits.dims3()?;
    let device = out.logits.device();
    let lp = candle_nn::ops::log_softmax(&out.logits, D::Minus1)?;
    let p_eos = lp.narrow(2, eos as usize, 1)?.squeeze(2)?.exp()?;
    // before[b, k] = 1 for k < last; last[b, k] = 1 at the row's last position.
    let mut before = vec![0f32; b * l];
    let mut last = vec![0f32; b * l];
    for (r, &n) in batch.lens.iter().enumerate() {
        let n = n.clamp(1, l);
        before[r * l..r * l + n - 1].fill(1.0);
        last[r * l + n - 1] = 1.0;
    }
    let before = Tensor::from_vec(before, (b, l), device)?;
    let last = Tensor::from_vec(last, (b, l), device)?;
    let stop_here = ((&p_eos * &before)? + &last)?;
    let log_go_on = ((p_eos.affine(-1.0, 1.0)?.clamp(MIN_SURVIVAL, 1.0)?).log()? * &before)?;
    // Exclusive prefix sums: the log-probability of reaching position k.
    let reach = (log_go_on.cumsum(1)? - &log_go_on)?.exp()?;
    let k = Tensor::arange(0f32, l as f32, device)?.unsqueeze(0)?;
    Ok((stop_here * reach)?.broadcast_mul(&k)?.sum(1)?)
}

/// The length loss (component 6): mean squared relative error between the expected length
/// and the desired one, `((E[len] - n) / n)^2`, which moves EOS toward the target rate.
pub fn length_loss(expected: &Tensor, desired: &Tensor) -> Result<Tensor> {
    let desired = desired.clamp(1.0, f64::INFINITY)?;
    Ok(((expected - &desired)? / desired)?.sqr()?.mean_all()?)
}

/// The timing loss (component 7): mean absolute error of the predicted start of each timed
/// input token, as a fraction of the clip.
pub fn timing_loss(out: &TeacherOutput, batch: &TeacherBatch) -> Result<Tensor> {
    let err = ((&out.times - &batch.times)?.abs()? * &batch.time_mask)?;
    let n = batch.time_mask.sum_all()?.clamp(1.0, f64::INFINITY)?;
    Ok((err.sum_all()? / n)?)
}

/// How much the decoder relies on the condition (component 4's measurement): the mean
/// length-normalized log-likelihood of the targets under their own condition and under
/// another clip's (row `i`'s targets under row `i + 1`'s condition).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Bypass {
    /// Mean normalized log-likelihood with the true condition.
    pub true_ll: f64,
    /// Mean normalized log-likelihood with a shuffled condition.
    pub shuffled_ll: f64,
}

impl Bypass {
    /// `true_ll - shuffled_ll`: 0 for a decoder that ignores its condition (a language model
    /// of the strings), larger the more the condition decides the string.
    pub fn gap(&self) -> f64 {
        self.true_ll - self.shuffled_ll
    }
}

/// Measures the [`Bypass`] of `model` on `batch` (at least 2 rows) under `cond`.
pub fn measure_bypass(
    model: &PairAlignModel,
    cond: &Condition,
    batch: &TeacherBatch,
) -> Result<Bypass> {
    let b = batch.len();
    if b < 2 || cond.len() != b {
        return Err(Error::BadInput(format!(
            "the bypass needs at least 2 rows and one condition per row, got {b} rows and {} \
             conditions",
            cond.len()
        )));
    }
    let mean = |t: Tensor| -> Result<f64> {
        Ok(f64::from(
            t.mean_all()?.to_dtype(DType::F32)?.to_scalar::<f32>()?,
        ))
    };
    let own = model.forward_teacher(cond, &batch.input)?;
    let shifted: Vec<usize> = (0..b).map(|i| (i + 1) % b).collect();
    let other = model.forward_teacher(&cond.select(&shifted)?, &batch.input)?;
    Ok(Bypass {
        true_ll: mean(sequence_log_likelihood(&own, batch)?.detach())?,
        shuffled_ll: mean(sequence_log_likelihood(&other, batch)?.detach())?,
    })
}

#[cfg(test)]
mod tests {
    use candle_core::Var;

    use super::*;

    fn scalar(t: &Tensor) -> f32 {
        t.to_scalar::<f32>().unwrap()
    }

    #[test]
    fn contrast_is_lowest_when_paired() {
        let dev = Device::Cpu;
        // Log-likelihoods where each target is most likely under its own condition.
        let b = 5;
        let mut m = vec![0f32; b * b];
        for i in 0..b {
            for j in 0..b {
                m[i * b + j] = -2.0 - 0.3 * ((i * 7 + j * 3) % 5) as f32;
            }
            m[i * b + i] = -1.0;
        }
        let paired = Tensor::from_vec(m.clone(), (b, b), &dev).unwrap();
        let base = scalar(&contrast_loss(&paired, 0.1).unwrap());
        // Every other pairing of targets and conditions (a permutation of the columns) scores
        // worse.
        let perms = [
            [1, 0, 2, 3, 4],
            [0, 1, 2, 4, 3],
            [4, 0, 1, 2, 3],
            [2, 3, 4, 0, 1],
        ];
        for perm in perms {
            let mut p = vec![0f32; b * b];
            for i in 0..b {
                for j in 0..b {
                    p[i * b + j] = m[i * b + perm[j]];
                }
            }
            let t = Tensor::from_vec(p, (b, b), &dev).unwrap();
            let loss = scalar(&contrast_loss(&t, 0.1).unwrap());
            assert!(loss > base, "{perm:?}: {loss} against {base}");
        }
        // A matrix that does not depend on the condition gives the chance level ln(B).
        let flat = Tensor::full(-1.5f32, (b, b), &dev).unwrap();
        let loss = scalar(&contrast_loss(&flat, 0.1).unwrap());
        assert!((loss - (b as f32).ln()).abs() < 1e-5);
        assert!(base < loss);
        assert!(contrast_loss(&Tensor::zeros((2, 3), DType::F32, &dev).unwrap(), 0.1).is_err());
    }

    fn batch_with_lens(lens: &[usize], l: usize, desired: &[f32]) -> TeacherBatch {
        let dev = Device::Cpu;
        let b = lens.len();
        let z = Tensor::zeros((b, l), DType::F32, &dev).unwrap();
        TeacherBatch {
            input: Tensor::zeros((b, l), DType::U32, &dev).unwrap(),
            target: Tensor::zeros((b, l), DType::U32, &dev).unwrap(),
            mask: z.clone(),
            times: z.clone(),
            time_mask: z,
            desired_len: Tensor::new(desired, &dev).unwrap(),
            lens: lens.to_vec(),
        }
    }

    fn output(logits: Tensor) -> TeacherOutput {
        let (b, l, _) = logits.dims3().unwrap();
        TeacherOutput {
            times: Tensor::zeros((b, l), DType::F32, logits.device()).unwrap(),
            logits,
        }
    }

    #[test]
    fn expected_length_matches_the_formula() {
        let dev = Device::Cpu;
        // Vocabulary of 3, EOS = 2; row 0 has 4 positions, row 1 has 2 (then padding).
        let logits = Tensor::randn(0f32, 1.0, (2, 4, 3), &dev).unwrap();
        let batch = batch_with_lens(&[4, 2], 4, &[3.0, 1.0]);
        let e: Vec<f32> = expected_length(&output(logits.clone()), &batch, 2)
            .unwrap()
            .to_vec1()
            .unwrap();
        let p: Vec<Vec<Vec<f32>>> = candle_nn::ops::softmax(&logits, 2)
            .unwrap()
            .to_vec3()
            .unwrap();
        for (r, &n) in [4usize, 2].iter().enumerate() {
            let (mut reach, mut want) = (1f64, 0f64);
            for (k, probs) in p[r].iter().take(n).enumerate() {
                let stop = if k + 1 == n { 1.0 } else { f64::from(probs[2]) };
                want += k as f64 * stop * reach;
                reach *= 1.0 - stop;
            }
            assert!(
                (f64::from(e[r]) - want).abs() < 1e-5,
                "row {r}: {} against {want}",
                e[r]
            );
        }
    }

    #[test]
    fn length_loss_moves_eos_toward_the_target() {
        let dev = Device::Cpu;
        let (l, v, eos) = (40usize, 6usize, 5u32);
        // Row 0 stops too early (EOS likely everywhere), row 1 never stops before its end.
        let mut init = vec![0f32; 2 * l * v];
        for k in 0..l {
            init[k * v + eos as usize] = 3.0;
            init[(l + k) * v + eos as usize] = -6.0;
        }
        let logits = Var::from_vec(init, (2, l, v), &dev).unwrap();
        let batch = batch_with_lens(&[l, l], l, &[20.0, 12.0]);
        let desired = [20f32, 12.0];
        let expected = |logits: &Tensor| -> Vec<f32> {
            expected_length(&output(logits.clone()), &batch, eos)
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let before = expected(logits.as_tensor());
        assert!(before[0] < 2.0 && before[1] > 35.0, "{before:?}");
        let mut losses = vec![];
        for _ in 0..200 {
            let e = expected_length(&output(logits.as_tensor().clone()), &batch, eos).unwrap();
            let loss = length_loss(&e, &batch.desired_len).unwrap();
            losses.push(scalar(&loss));
            let grads = loss.backward().unwrap();
            let g = grads.get(logits.as_tensor()).unwrap();
            logits
                .set(&(logits.as_tensor() - (g * 20.0).unwrap()).unwrap())
                .unwrap();
        }
        let after = expected(logits.as_tensor());
        for r in 0..2 {
            let (b, a, d) = (before[r], after[r], desired[r]);
            assert!(
                (a - d).abs() < 0.25 * (b - d).abs(),
                "row {r}: {b} -> {a}, target {d}"
            );
        }
        assert!(losses.last().unwrap() < &(0.1 * losses[0]), "{losses:?}");
    }

    #[test]
    fn teacher_forcing_and_timing_ignore_padding() {
        let dev = Device::Cpu;
        let cfg = PairAlignConfig {
            encoder: pairalign_models::VqConfig {
                codebook_size: 256,
                ..Default::default()
            },
            ..Default::default()
        };
        let v = cfg.vocab_size();
        let ex = |tokens: &[u32], times: &[Option<f32>]| TeacherExample {
            input: std::iter::once(cfg.bos())
                .chain(tokens.iter().copied())
                .collect(),
            target: tokens
                .iter()
                .copied()
                .chain(std::iter::once(cfg.eos()))
                .collect(),
            input_times: std::iter::once(None).chain(times.iter().copied()).collect(),
            desired_len: 2.0,
            ..Default::default()
        };
        let examples = [
            ex(&[3, 4, 5], &[Some(0.0), Some(0.3), None]),
            ex(&[7], &[Some(0.5)]),
        ];
        let batch = TeacherBatch::new(&cfg, &examples, &dev).unwrap();
        assert_eq!(batch.lens, vec![4, 2]);
        // Logits with a known log-probability for each target: uniform except the target.
        let mut logits = vec![0f32; 2 * 4 * v];
        let targets: Vec<Vec<u32>> = batch.target.to_vec2().unwrap();
        for (r, row) in targets.iter().enumerate() {
            for (k, &t) in row.iter().enumerate() {
                logits[(r * 4 + k) * v + t as usize] = 2.0;
            }
        }
        let logits = Tensor::from_vec(logits, (2, 4, v), &dev).unwrap();
        let times = Tensor::new(&[[0.9f32, 0.1, 0.2, 0.9], [0.9, 0.6, 0.9, 0.9]], &dev).unwrap();
        let out = TeacherOutput { logits, times };
        let lp = 2.0 - ((v - 1) as f64 + 2f64.exp()).ln();
        let loss = f64::from(scalar(&teacher_forcing_loss(&out, &batch).unwrap()));
        assert!((loss + lp).abs() < 1e-5, "{loss} against {}", -lp);
        let ll: Vec<f32> = sequence_log_likelihood(&out, &batch)
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(ll.iter().all(|&x| (f64::from(x) - lp).abs() < 1e-5));
        // Timed positions: |0.1 - 0| + |0.2 - 0.3| + |0.6 - 0.5|, over 3.
        let t = scalar(&timing_loss(&out, &batch).unwrap());
        assert!((t - 0.1).abs() < 1e-6, "{t}");
    }
}
