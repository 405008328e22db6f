//! Training the VQ tokenizer from a feature cache: mel reconstruction plus commitment loss by
//! AdamW (warmup and cosine schedule, gradient clipping), the codebook by EMA with dead-code
//! restart ([`forward`], [`loss`], [`ema_update`]); the loop, checkpoints, log and stop are the shared ones
//! ([`crate::run`]).
//!
//! Every batch is two views of `batch_size` clips (both views are trained on, so a step sees
//! `2 x batch_size` clips), cropped to `crop_frames`; padded frames count in no loss and in no
//! codebook statistic.

mod objective;

use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use pairalign_datasets::cache::{Batch, FeatureCache};
use pairalign_models::init::seeded_varmap;
use pairalign_models::vq::{LevelNorm, MelNorm};
use pairalign_models::{VqConfig, VqModel, VqTokenizer};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use self::objective::{ema_update, forward, loss, recon_loss, EmaStats, VqOutput};
use crate::checkpoint::{self, Saved};
use crate::optim::{AdamW, AdamWConfig};
use crate::params::{norm_tensors, scalar, shares, Parameters};
use crate::run::{impl_run_config, LogRecord, Progress, TrainReport, Trainer, Training};
use crate::schedule::LrSchedule;
use crate::{Error, Result};

/// Everything a VQ training run depends on; stored in every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VqTrainConfig {
    /// The model.
    pub model: VqConfig,
    /// Optimizer steps of the whole run (the cosine schedule ends here).
    pub steps: u64,
    /// Clips per step, each seen in two views.
    pub batch_size: usize,
    /// Frames (10 ms) each view is cropped to; 300 is a 3 s clip.
    pub crop_frames: usize,
    /// The learning-rate schedule.
    pub lr: LrSchedule,
    /// AdamW's hyper-parameters.
    pub optimizer: AdamWConfig,
    /// Gradients are scaled down to this global L2 norm when above it (0: no clipping).
    pub clip_grad_norm: f64,
    /// Seed of the initial weights and of the batch order.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: u64,
    /// Steps between log records.
    pub log_every: u64,
    /// Clips whose view 0 gives the mel normalization statistics.
    pub norm_clips: usize,
    /// Parts each batch is split into, run side by side on rayon's threads, their gradients
    /// averaged (weighted by clips). candle's element-wise CPU ops use one thread, so a single
    /// part keeps one core of two idle; 1 on a GPU. Changes the numerics slightly, not the
    /// batch.
    pub micro_batches: usize,
    /// The front end's per-window level normalization (issue 22: tokens that ignore the
    /// level); absent: v1's front end, whose tokens depend on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<LevelNorm>,
}

impl_run_config!(VqTrainConfig);

impl Default for VqTrainConfig {
    fn default() -> Self {
        VqTrainConfig {
            model: VqConfig::default(),
            steps: 4000,
            batch_size: 16,
            crop_frames: 300,
            lr: LrSchedule::default(),
            optimizer: AdamWConfig::default(),
            clip_grad_norm: 1.0,
            seed: 0,
            checkpoint_every: 250,
            log_every: 25,
            norm_clips: 2000,
            level: None,
            micro_batches: 2,
        }
    }
}

/// Averages over one log interval, as printed and written to `train.jsonl`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VqLogRecord {
    /// Steps done.
    pub step: u64,
    /// Steps of the whole run.
    pub steps: u64,
    /// Epoch of the last batch (0-based).
    pub epoch: u64,
    /// Total loss.
    pub loss: f64,
    /// Mel reconstruction MSE (normalized mel; predicting the mean scores 1).
    pub recon: f64,
    /// Commitment MSE.
    pub commit: f64,
    /// Codebook perplexity of the batches (effective number of codes used).
    pub perplexity: f64,
    /// Codes used by the last batch.
    pub used_codes: usize,
    /// Codes restarted over the interval.
    pub dead_codes: usize,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate of the last step.
    pub lr: f64,
    /// Steps per second over the interval.
    pub steps_per_s: f64,
    /// Seconds of training in this process.
    pub elapsed_s: f64,
}

/// How a VQ run ended.
pub type VqTrainReport = TrainReport<VqLogRecord>;

impl LogRecord for VqLogRecord {
    fn step(&self) -> u64 {
        self.step
    }
}

/// A VQ training run over a feature cache, writing to an output folder.
pub type VqTrainer<'c> = Trainer<'c, VqTraining>;

/// The VQ model in training: its weights and optimizer, and the mel normalization.
#[derive(Debug)]
pub struct VqTraining {
    cfg: VqTrainConfig,
    device: Device,
    params: Parameters,
    model: VqModel,
    norm: MelNorm,
    mean: Tensor,
    std: Tensor,
}

impl VqTraining {
    /// Builds the model on weights drawn from `cfg.seed`, normalizing by `norm`.
    fn build(cfg: VqTrainConfig, norm: MelNorm, device: &Device) -> Result<Self> {
        let varmap = VarMap::new();
        let model = VqModel::load(&cfg.model, seeded_varmap(&varmap, cfg.seed, device))?;
        // The codebook moves by EMA, not by gradients.
        let params = Parameters::new(
            varmap,
            |name| !name.starts_with("codebook."),
            cfg.optimizer.clone(),
        )?;
        let (mean, std) = norm_tensors(&norm, cfg.model.n_mels, device)?;
        Ok(VqTraining {
            cfg,
            device: device.clone(),
            params,
            model,
            norm,
            mean,
            std,
        })
    }

    /// A tokenizer frozen from the current weights.
    fn tokenizer(&self) -> Result<VqTokenizer> {
        Ok(VqTokenizer::from_varmap(
            &self.cfg.model,
            self.norm.clone(),
            &self.params.varmap,
            &self.device,
        )?)
    }
}

impl<'c> Trainer<'c, VqTraining> {
    /// A fresh run: weights drawn from `cfg.seed`, mel statistics from the cache.
    pub fn new(
        cache: &'c FeatureCache,
        cfg: VqTrainConfig,
        out: &Path,
        device: &Device,
    ) -> Result<Self> {
        check_config(&cfg, cache)?;
        let norm = mel_norm(cache, cfg.norm_clips, cfg.level);
        Self::start(VqTraining::build(cfg, norm, device)?, cache, out)
    }

    /// A tokenizer frozen from the current weights.
    pub fn tokenizer(&self) -> Result<VqTokenizer> {
        self.training.tokenizer()
    }
}

impl Training for VqTraining {
    type Config = VqTrainConfig;
    type Stats = VqStepStats;
    type Record = VqLogRecord;

    fn restore(
        saved: &Saved<VqTrainConfig>,
        cfg: VqTrainConfig,
        cache: &FeatureCache,
        _out: &Path,
        device: &Device,
    ) -> Result<Self> {
        let dir = &saved.dir;
        // Loading it as a tokenizer checks every tensor against the model config.
        let tokenizer = VqTokenizer::load(dir, &Device::Cpu)?;
        if tokenizer.config() != &saved.state.config.model {
            return Err(Error::BadCheckpoint(format!(
                "{}: the weights' model config differs from the run's",
                dir.display()
            )));
        }
        check_config(&cfg, cache)?;
        let training = Self::build(cfg, tokenizer.norm().clone(), device)?;
        checkpoint::restore_vars(&training.params.varmap, tokenizer.weights(), dir, device)?;
        Ok(training)
    }

    fn config(&self) -> &VqTrainConfig {
        &self.cfg
    }

    fn optimizer(&self) -> &AdamW {
        &self.params.opt
    }

    fn optimizer_mut(&mut self) -> &mut AdamW {
        &mut self.params.opt
    }

    /// One optimizer step and one codebook update on `batch`, whose clips (view a of every
    /// item, then view b) are split into `micro_batches` parts run side by side; the gradients
    /// and losses are averaged over the parts, weighted by their clips.
    fn train_step(&mut self, batch: &Batch, step: u64, _measure: bool) -> Result<VqStepStats> {
        let clips = 2 * batch.len();
        let per_clip = batch.frames * batch.n_mels;
        let mut data = Vec::with_capacity(clips * per_clip);
        data.extend_from_slice(&batch.a);
        data.extend_from_slice(&batch.b);
        let lens: Vec<usize> = batch
            .lengths_a
            .iter()
            .chain(&batch.lengths_b)
            .copied()
            .collect();
        let parts = self.cfg.micro_batches.clamp(1, clips);
        let bounds: Vec<(usize, usize)> = (0..parts)
            .map(|p| (p * clips / parts, (p + 1) * clips / parts))
            .collect();
        let input = MicroInput {
            model: &self.model,
            mean: &self.mean,
            std: &self.std,
            level: self.norm.level,
            commitment_weight: self.cfg.model.commitment_weight,
            device: &self.device,
            frames: batch.frames,
            n_mels: batch.n_mels,
        };
        let outs: Vec<MicroStep> = bounds
            .par_iter()
            .map(|&(s, e)| input.run(&data[s * per_clip..e * per_clip], &lens[s..e]))
            .collect::<Result<_>>()?;
        let weights = shares(&bounds, clips);
        let weighted = |f: fn(&MicroStep) -> f64| -> f64 {
            outs.iter().zip(&weights).map(|(o, w)| f(o) * w).sum()
        };
        let (loss, recon, commit) = (
            weighted(|o| o.loss),
            weighted(|o| o.recon),
            weighted(|o| o.commit),
        );
        let (z, codes) = if outs.len() == 1 {
            (outs[0].z.clone(), outs[0].codes.clone())
        } else {
            let zs: Vec<&Tensor> = outs.iter().map(|o| &o.z).collect();
            let cs: Vec<&Tensor> = outs.iter().map(|o| &o.codes).collect();
            (Tensor::cat(&zs, 0)?, Tensor::cat(&cs, 0)?)
        };
        let grads: Vec<GradStore> = outs.into_iter().map(|o| o.grads).collect();
        let lr = self.cfg.lr.at(step, self.cfg.steps);
        let grad_norm = self
            .params
            .step(grads, &weights, self.cfg.clip_grad_norm, lr)?;
        let ema = ema_update(&self.model.codebook, &self.cfg.model, &z, &codes)?;
        Ok(VqStepStats {
            loss,
            recon,
            commit,
            perplexity: f64::from(ema.perplexity),
            used_codes: ema.used_codes,
            restarted: ema.restarted,
            grad_norm,
            lr,
        })
    }

    fn record(&self, interval: &[VqStepStats], progress: Progress) -> VqLogRecord {
        let n = interval.len().max(1) as f64;
        let mean = |f: fn(&VqStepStats) -> f64| interval.iter().map(f).sum::<f64>() / n;
        let last = interval.last().copied().unwrap_or_default();
        VqLogRecord {
            step: progress.step,
            steps: progress.steps,
            epoch: progress.epoch,
            loss: mean(|s| s.loss),
            recon: mean(|s| s.recon),
            commit: mean(|s| s.commit),
            perplexity: mean(|s| s.perplexity),
            used_codes: last.used_codes,
            dead_codes: interval.iter().map(|s| s.restarted).sum(),
            grad_norm: mean(|s| s.grad_norm),
            lr: last.lr,
            steps_per_s: progress.steps_per_s,
            elapsed_s: progress.elapsed_s,
        }
    }

    fn save_tokenizer(&self, dir: &Path) -> Result<()> {
        Ok(self.tokenizer()?.save(dir)?)
    }
}

/// What one step of a VQ run measured; a log record averages them.
#[derive(Clone, Copy, Debug, Default)]
pub struct VqStepStats {
    loss: f64,
    recon: f64,
    commit: f64,
    perplexity: f64,
    used_codes: usize,
    restarted: usize,
    grad_norm: f64,
    lr: f64,
}

/// What a micro-batch needs, shared by the threads that run them.
struct MicroInput<'a> {
    model: &'a VqModel,
    mean: &'a Tensor,
    std: &'a Tensor,
    /// The front end's level normalization, applied to each clip before `mean` and `std`.
    level: Option<LevelNorm>,
    /// The weight of the commitment loss ([`VqConfig::commitment_weight`]).
    commitment_weight: f64,
    device: &'a Device,
    frames: usize,
    n_mels: usize,
}

/// One micro-batch's gradients, losses and codebook inputs.
struct MicroStep {
    grads: GradStore,
    loss: f64,
    recon: f64,
    commit: f64,
    /// Encoder outputs of the valid frames, `[N, code_dim]`.
    z: Tensor,
    /// Their codes, `[N]`.
    codes: Tensor,
}

impl MicroInput<'_> {
    /// Forward and backward over the clips in `data` (each `frames x n_mels`, zero-padded past
    /// `lens`).
    fn run(&self, data: &[f32], lens: &[usize]) -> Result<MicroStep> {
        let leveled;
        let data = match &self.level {
            Some(level) => {
                let per_clip = self.frames * self.n_mels;
                let mut owned = data.to_vec();
                for (clip, &len) in owned.chunks_exact_mut(per_clip).zip(lens) {
                    level.apply(&mut clip[..len * self.n_mels]);
                }
                leveled = owned;
                leveled.as_slice()
            }
            None => data,
        };
        let x = Tensor::from_slice(data, (lens.len(), self.frames, self.n_mels), self.device)?
            .broadcast_sub(self.mean)?
            .broadcast_div(self.std)?;
        let padded = lens.iter().any(|&n| n != self.frames);
        let out = forward(self.model, &x, padded.then_some(lens))?;
        let recon = recon_loss(&x, &out)?;
        let loss = (&recon + (&out.commit_loss * self.commitment_weight)?)?;
        let grads = loss.backward()?;
        let (z, codes) = out.valid_frames()?;
        Ok(MicroStep {
            grads,
            loss: scalar(&loss)?,
            recon: scalar(&recon)?,
            commit: scalar(&out.commit_loss)?,
            z,
            codes,
        })
    }
}

/// Rejects configs the loop cannot run.
fn check_config(cfg: &VqTrainConfig, cache: &FeatureCache) -> Result<()> {
    cfg.model.validate()?;
    if cfg.batch_size == 0 || cfg.crop_frames < 2 || cfg.steps == 0 {
        return Err(Error::BadConfig(
            "steps and batch_size must be at least 1 and crop_frames at least 2".into(),
        ));
    }
    if cache.n_mels() != cfg.model.n_mels {
        return Err(Error::BadConfig(format!(
            "{} has {} mel bins, the model expects {}",
            cache.path().display(),
            cache.n_mels(),
            cfg.model.n_mels
        )));
    }
    if cache.is_empty() {
        return Err(Error::BadConfig(format!(
            "{} holds no clips",
            cache.path().display()
        )));
    }
    Ok(())
}

/// Mel statistics over view 0 of the first `clips` clips, each brought to one level first
/// when `level` is set (and recorded with them).
fn mel_norm(cache: &FeatureCache, clips: usize, level: Option<LevelNorm>) -> MelNorm {
    let n = clips.clamp(1, cache.len());
    let mels: Vec<Vec<f32>> = (0..n)
        .map(|i| {
            let mut buf = Vec::new();
            cache.view(i, 0).to_f32(&mut buf);
            if let Some(level) = &level {
                level.apply(&mut buf);
            }
            buf
        })
        .collect();
    let refs: Vec<&[f32]> = mels.iter().map(Vec::as_slice).collect();
    MelNorm {
        level,
        ..MelNorm::from_mels(&refs, cache.n_mels())
    }
}
