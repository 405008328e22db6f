//! Training the VQ tokenizer from a feature cache: mel reconstruction plus commitment loss by
//! AdamW (warmup and cosine schedule, gradient clipping), the codebook by EMA with dead-code
//! restart; checkpoints that resume bit for bit, a JSONL log, and a clean stop on request.
//!
//! Every batch is two views of `batch_size` clips (both views are trained on, so a step sees
//! `2 x batch_size` clips), cropped to `crop_frames`; padded frames count in no loss and in no
//! codebook statistic. The batch order is fixed by the seed and the step, so a resumed run sees
//! the batches the uninterrupted run would have seen.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;
use pairalign_datasets::cache::{Batch, BatchLoader, FeatureCache};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::checkpoint::{self, OPTIMIZER_FILE, TRAINER_FILE};
use super::{seeded_varmap, AdamW, AdamWConfig, LrSchedule};
use crate::vq::{LevelNorm, MelNorm};
use crate::{Error, Result, VqConfig, VqModel, VqTokenizer};

/// Version of `trainer.json`.
pub const TRAINER_FORMAT_VERSION: u32 = 1;
/// The JSONL training log in a run's output folder.
pub const LOG_FILE: &str = "train.jsonl";

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

/// Identifies the training data, so that a run does not resume on other data by mistake.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// Clips in the cache.
    pub clips: usize,
    /// Frames of all views.
    pub total_frames: u64,
    /// Views per clip.
    pub views_per_clip: usize,
}

impl DataFingerprint {
    pub(crate) fn of(cache: &FeatureCache) -> Self {
        DataFingerprint {
            clips: cache.len(),
            total_frames: cache.total_frames(),
            views_per_clip: cache.views_per_clip(),
        }
    }
}

/// What `trainer.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainerState {
    format_version: u32,
    step: u64,
    config: VqTrainConfig,
    data: DataFingerprint,
}

/// Averages over one log interval, as printed and written to `train.jsonl`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
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

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainReport {
    /// Steps done (of the whole run, across resumes).
    pub step: u64,
    /// Whether the run stopped on request before its last step.
    pub interrupted: bool,
    /// The last log record.
    pub last: Option<LogRecord>,
    /// The checkpoint folder.
    pub checkpoint: PathBuf,
    /// Wall time in this process.
    pub wall_s: f64,
}

/// What one step measured.
#[derive(Clone, Copy, Debug, Default)]
struct StepStats {
    loss: f64,
    recon: f64,
    commit: f64,
    perplexity: f64,
    used_codes: usize,
    restarted: usize,
    grad_norm: f64,
    lr: f64,
}

/// A VQ training run over a feature cache, writing to an output folder.
pub struct VqTrainer<'c> {
    cfg: VqTrainConfig,
    cache: &'c FeatureCache,
    out: PathBuf,
    device: Device,
    varmap: VarMap,
    model: VqModel,
    trainable: Vec<Var>,
    opt: AdamW,
    norm: MelNorm,
    mean: Tensor,
    std: Tensor,
    step: u64,
}

impl std::fmt::Debug for VqTrainer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VqTrainer")
            .field("out", &self.out)
            .field("step", &self.step)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl<'c> VqTrainer<'c> {
    /// A fresh run: weights drawn from `cfg.seed`, mel statistics from the cache.
    pub fn new(
        cache: &'c FeatureCache,
        cfg: VqTrainConfig,
        out: &Path,
        device: &Device,
    ) -> Result<Self> {
        check_config(&cfg, cache)?;
        let norm = mel_norm(cache, cfg.norm_clips, cfg.level);
        Self::build(cache, cfg, norm, out, device)
    }

    /// Continues the run whose checkpoint is in `out`; `steps` (when given) changes the run's
    /// total steps, and so the rest of its schedule.
    pub fn resume(
        cache: &'c FeatureCache,
        out: &Path,
        steps: Option<u64>,
        device: &Device,
    ) -> Result<Self> {
        let dir = checkpoint::find(out).ok_or_else(|| {
            Error::BadCheckpoint(format!("{} holds no checkpoint to resume", out.display()))
        })?;
        let path = dir.join(TRAINER_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let state: TrainerState = serde_json::from_str(&text)
            .map_err(|e| Error::BadCheckpoint(format!("{}: {e}", path.display())))?;
        if state.format_version != TRAINER_FORMAT_VERSION {
            return Err(Error::BadCheckpoint(format!(
                "{}: format_version {} (this build reads {TRAINER_FORMAT_VERSION})",
                path.display(),
                state.format_version
            )));
        }
        if state.data != DataFingerprint::of(cache) {
            return Err(Error::BadCheckpoint(format!(
                "{} was trained on other data ({:?}) than {} ({:?})",
                dir.display(),
                state.data,
                cache.path().display(),
                DataFingerprint::of(cache)
            )));
        }
        // Loading it as a tokenizer checks every tensor against the model config.
        let saved = VqTokenizer::load(&dir, &Device::Cpu)?;
        if saved.config() != &state.config.model {
            return Err(Error::BadCheckpoint(format!(
                "{}: the weights' model config differs from the run's",
                dir.display()
            )));
        }
        let mut cfg = state.config;
        if let Some(steps) = steps {
            cfg.steps = steps;
        }
        check_config(&cfg, cache)?;
        let mut trainer = Self::build(cache, cfg, saved.norm().clone(), out, device)?;
        {
            let vars = trainer
                .varmap
                .data()
                .lock()
                .map_err(|_| Error::BadConfig("the VarMap lock is poisoned".into()))?;
            for (name, var) in vars.iter() {
                let t = saved.weights().get(name).ok_or_else(|| {
                    Error::BadCheckpoint(format!("{} has no tensor {name}", dir.display()))
                })?;
                var.set(&t.to_device(device)?)?;
            }
        }
        let moments = checkpoint::read_tensors(&dir.join(OPTIMIZER_FILE), device)?;
        trainer.opt.restore(&moments, state.step)?;
        trainer.step = state.step;
        Ok(trainer)
    }

    fn build(
        cache: &'c FeatureCache,
        cfg: VqTrainConfig,
        norm: MelNorm,
        out: &Path,
        device: &Device,
    ) -> Result<Self> {
        let varmap = VarMap::new();
        let model = VqModel::load(&cfg.model, seeded_varmap(&varmap, cfg.seed, device))?;
        let mut named: Vec<(String, Var)> = varmap
            .data()
            .lock()
            .map_err(|_| Error::BadConfig("the VarMap lock is poisoned".into()))?
            .iter()
            .filter(|(name, _)| !name.starts_with("codebook."))
            .map(|(name, var)| (name.clone(), var.clone()))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let trainable = named.iter().map(|(_, v)| v.clone()).collect();
        let opt = AdamW::new(named, cfg.optimizer.clone())?;
        let n_mels = cfg.model.n_mels;
        let mean = Tensor::from_slice(&norm.mean, (1, 1, n_mels), device)?;
        let std: Vec<f32> = norm.std.iter().map(|s| s.max(1e-5)).collect();
        let std = Tensor::from_vec(std, (1, 1, n_mels), device)?;
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        Ok(VqTrainer {
            cfg,
            cache,
            out: out.to_path_buf(),
            device: device.clone(),
            varmap,
            model,
            trainable,
            opt,
            norm,
            mean,
            std,
            step: 0,
        })
    }

    /// The run's config.
    pub fn config(&self) -> &VqTrainConfig {
        &self.cfg
    }

    /// Steps done.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// A tokenizer frozen from the current weights.
    pub fn tokenizer(&self) -> Result<VqTokenizer> {
        VqTokenizer::from_varmap(
            &self.cfg.model,
            self.norm.clone(),
            &self.varmap,
            &self.device,
        )
    }

    /// Trains until the run's last step or until `stop` is set (checked between steps), saving a
    /// checkpoint every `checkpoint_every` steps and at the end, and the final tokenizer
    /// (`model.safetensors`, `config.json`) in the output folder when the run completes.
    /// `on_log` sees every log record, which is also appended to `train.jsonl`.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        mut on_log: impl FnMut(&LogRecord),
    ) -> Result<TrainReport> {
        let started = Instant::now();
        let loader = BatchLoader::new(
            self.cache,
            self.cfg.batch_size,
            self.cfg.seed,
            Some(self.cfg.crop_frames),
        )?;
        let per_epoch = loader.batches_per_epoch() as u64;
        let mut log = self.open_log()?;
        let mut interval: Vec<StepStats> = Vec::new();
        let mut interval_start = Instant::now();
        let mut last = None;
        let mut interrupted = false;
        let mut epoch = self.step / per_epoch;
        let mut skip = (self.step % per_epoch) as usize;
        'epochs: while self.step < self.cfg.steps {
            for batch in loader.epoch(epoch).skip(skip) {
                if self.step >= self.cfg.steps {
                    break 'epochs;
                }
                if stop.load(Ordering::Relaxed) {
                    interrupted = true;
                    break 'epochs;
                }
                interval.push(self.train_step(&batch)?);
                let done = self.step == self.cfg.steps;
                if self.step.is_multiple_of(self.cfg.log_every.max(1)) || done {
                    let record = self.record(&interval, epoch, interval_start, started);
                    writeln!(
                        log,
                        "{}",
                        serde_json::to_string(&record).unwrap_or_default()
                    )
                    .map_err(|e| Error::io(self.out.join(LOG_FILE), e))?;
                    log.flush()
                        .map_err(|e| Error::io(self.out.join(LOG_FILE), e))?;
                    on_log(&record);
                    last = Some(record);
                    interval.clear();
                    interval_start = Instant::now();
                }
                if self.step.is_multiple_of(self.cfg.checkpoint_every.max(1)) && !done {
                    self.save_checkpoint()?;
                }
            }
            epoch += 1;
            skip = 0;
        }
        let checkpoint = self.save_checkpoint()?;
        if !interrupted {
            self.tokenizer()?.save(&self.out)?;
        }
        Ok(TrainReport {
            step: self.step,
            interrupted,
            last,
            checkpoint,
            wall_s: started.elapsed().as_secs_f64(),
        })
    }

    /// One optimizer step and one codebook update on `batch`, whose clips (view a of every
    /// item, then view b) are split into `micro_batches` parts run side by side; the gradients
    /// and losses are averaged over the parts, weighted by their clips.
    fn train_step(&mut self, batch: &Batch) -> Result<StepStats> {
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
            device: &self.device,
            frames: batch.frames,
            n_mels: batch.n_mels,
        };
        let mut outs: Vec<MicroStep> = bounds
            .par_iter()
            .map(|&(s, e)| input.run(&data[s * per_clip..e * per_clip], &lens[s..e]))
            .collect::<Result<_>>()?;
        let weights: Vec<f64> = bounds
            .iter()
            .map(|&(s, e)| (e - s) as f64 / clips as f64)
            .collect();
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
        let (first, rest) = outs.split_at_mut(1);
        let grads = &mut first[0].grads;
        if !rest.is_empty() {
            for var in &self.trainable {
                let mut sum: Option<Tensor> = None;
                let all = std::iter::once(&*grads).chain(rest.iter().map(|o| &o.grads));
                for (g, w) in all.zip(&weights) {
                    if let Some(g) = g.get(var.as_tensor()) {
                        let g = (g * *w)?;
                        sum = Some(match sum {
                            Some(acc) => (acc + g)?,
                            None => g,
                        });
                    }
                }
                if let Some(sum) = sum {
                    grads.insert(var.as_tensor(), sum);
                }
            }
        }
        let (grad_norm, scale) =
            super::clip_scale(grads, &self.trainable, self.cfg.clip_grad_norm)?;
        let lr = self.cfg.lr.at(self.step, self.cfg.steps);
        self.opt.step(grads, lr, scale)?;
        let ema = self.model.codebook.ema_update(&z, &codes)?;
        self.step += 1;
        Ok(StepStats {
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

    fn record(
        &self,
        interval: &[StepStats],
        epoch: u64,
        interval_start: Instant,
        started: Instant,
    ) -> LogRecord {
        let n = interval.len().max(1) as f64;
        let mean = |f: fn(&StepStats) -> f64| interval.iter().map(f).sum::<f64>() / n;
        let last = interval.last().copied().unwrap_or_default();
        LogRecord {
            step: self.step,
            steps: self.cfg.steps,
            epoch,
            loss: mean(|s| s.loss),
            recon: mean(|s| s.recon),
            commit: mean(|s| s.commit),
            perplexity: mean(|s| s.perplexity),
            used_codes: last.used_codes,
            dead_codes: interval.iter().map(|s| s.restarted).sum(),
            grad_norm: mean(|s| s.grad_norm),
            lr: last.lr,
            steps_per_s: interval.len() as f64 / interval_start.elapsed().as_secs_f64().max(1e-9),
            elapsed_s: started.elapsed().as_secs_f64(),
        }
    }

    /// Writes the checkpoint of the current step.
    pub fn save_checkpoint(&self) -> Result<PathBuf> {
        let tokenizer = self.tokenizer()?;
        let state = TrainerState {
            format_version: TRAINER_FORMAT_VERSION,
            step: self.step,
            config: self.cfg.clone(),
            data: DataFingerprint::of(self.cache),
        };
        checkpoint::save(&self.out, |dir| {
            tokenizer.save(dir)?;
            checkpoint::write_tensors(&dir.join(OPTIMIZER_FILE), &self.opt.state())?;
            let json = serde_json::to_string_pretty(&state)
                .map_err(|e| Error::BadCheckpoint(format!("cannot serialize: {e}")))?;
            let path = dir.join(TRAINER_FILE);
            std::fs::write(&path, json).map_err(|e| Error::io(&path, e))
        })
    }

    /// Opens `train.jsonl` for appending, first dropping records past the current step (written
    /// after the checkpoint a resumed run starts from).
    fn open_log(&self) -> Result<std::fs::File> {
        let path = self.out.join(LOG_FILE);
        let kept: String = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .lines()
                .filter(|line| {
                    serde_json::from_str::<LogRecord>(line).is_ok_and(|r| r.step <= self.step)
                })
                .map(|line| format!("{line}\n"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io(&path, e)),
        };
        std::fs::write(&path, kept).map_err(|e| Error::io(&path, e))?;
        OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))
    }
}

/// What a micro-batch needs, shared by the threads that run them.
struct MicroInput<'a> {
    model: &'a VqModel,
    mean: &'a Tensor,
    std: &'a Tensor,
    /// The front end's level normalization, applied to each clip before `mean` and `std`.
    level: Option<LevelNorm>,
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
        let out = self.model.forward(&x, padded.then_some(lens))?;
        let recon = self.model.recon_loss(&x, &out)?;
        let loss = (&recon + (&out.commit_loss * self.model.commitment_weight())?)?;
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

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(f64::from(
        t.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?,
    ))
}
