//! Training the PairAlign tokenizer from a feature cache (issue 8, "Training"): the model starts
//! from a VQ tokenizer's encoder; every batch holds two views of each clip; the loss is the
//! sum of the switched-on components of
//! [`Components`](pairalign_models::pairalign::Components):
//!
//! 1. targets derived from the (frozen) VQ tokenizer's codes of each view, and 2. targets
//!    decoded by the EMA teacher, mixed by the schedule `teacher_share`;
//! 3. cross-paired teacher forcing (each view's target under the other view's condition);
//! 4. the teacher-forced prefix corrupted at the scheduled rates; the bypass measured at every
//!    log step;
//! 5. likelihood contrast over the clips of each micro-batch (at most `contrast_clips`);
//! 6. the expected-length loss;
//! 7. the timing loss on the targets' token times.
//!
//! A voice clip of the cache (its views: one sentence in two voices) has its targets carried
//! across voices by `align.rs` (DTW over mean-removed cepstra), so that each view is trained to
//! say what the VQ tokenizer heard in the other voice (issue 22, part 4).
//!
//! The pieces: `targets.rs` (1, [`vq_targets`], [`grid_targets`]), `ema.rs` (2,
//! [`EmaTeacher`]), `corrupt.rs` (4, [`teacher_example`]), `losses.rs` (3 to 7 and the bypass). The loop is the shared one ([`crate::run`]).
//! Checkpoints resume bit for bit (weights, EMA teacher in `teacher.safetensors`, AdamW
//! moments; the batch order and every random draw follow from the seed and the step), each loss
//! term is logged on its own field in `train.jsonl`, and a stop request ends the run with a
//! checkpoint. The VQ tokenizer the run starts from is copied to `OUT/init-vq/` so that a
//! resumed run derives the same targets.

mod align;
mod corrupt;
mod ema;
mod losses;
mod targets;

use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use pairalign_datasets::cache::{Batch, FeatureCache};
use pairalign_models::init::seeded_varmap;
use pairalign_models::pairalign::{init_from_vq, Condition};
use pairalign_models::vq::{subsampled_len, LevelNorm, MelNorm, CODE_FRAME_MS};
use pairalign_models::{PairAlignConfig, PairAlignModel, PairAlignTokenizer, TokenString};
use pairalign_models::{Tokenizer, VqTokenizer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use self::align::{carry_across, cepstra, dtw_path, warp_codes, N_CEPS};
pub use self::corrupt::{teacher_example, CorruptionRates, TeacherExample};
pub use self::ema::EmaTeacher;
pub use self::losses::{
    contrast_loss, expected_length, length_loss, likelihood_matrix, measure_bypass,
    paired_teacher_forcing, sequence_log_likelihood, teacher_forcing_loss, timing_loss,
    token_log_probs, Bypass, TeacherBatch,
};
pub use self::targets::{grid_targets, vq_segments, vq_targets};
use crate::checkpoint::{self, Saved};
use crate::optim::{AdamW, AdamWConfig};
use crate::params::{norm_tensors, scalar, shares, Parameters};
use crate::run::{impl_run_config, LogRecord, Progress, TrainReport, Trainer, Training};
use crate::schedule::{corruption_scale, teacher_share, LrSchedule};
use crate::{Error, Result};

/// The EMA teacher's weights inside a checkpoint.
pub const TEACHER_FILE: &str = "teacher.safetensors";
/// Folder, in a run's output folder, of the VQ tokenizer the run started from.
pub const INIT_VQ_DIR: &str = "init-vq";

/// Everything a PairAlign training run depends on; stored in every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PairAlignTrainConfig {
    /// The model and its training components (`model.components`); `model.encoder` must be
    /// the config of the VQ tokenizer the run starts from. Its `format_version` says which
    /// defaults fill what it leaves out ([`PairAlignConfig::from_json`]): a config without
    /// one (written before issue 24) gets the paper's recipe.
    #[serde(deserialize_with = "PairAlignConfig::deserialize_versioned")]
    pub model: PairAlignConfig,
    /// Optimizer steps of the whole run (the schedules end here).
    pub steps: u64,
    /// Clips per step, each seen in two views.
    pub batch_size: usize,
    /// Frames (10 ms) each view is cropped to; 300 is the index's 3 s window.
    pub crop_frames: usize,
    /// The learning-rate schedule.
    pub lr: LrSchedule,
    /// AdamW's hyper-parameters.
    pub optimizer: AdamWConfig,
    /// Gradients are scaled down to this global L2 norm when above it (0: no clipping).
    pub clip_grad_norm: f64,
    /// Seed of the new weights, of the batch order and of every random draw.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: u64,
    /// Steps between log records (the bypass is measured at these steps).
    pub log_every: u64,
    /// Parts each batch is split into, run side by side on rayon's threads, their gradients
    /// averaged (candle's element-wise CPU ops use one thread); 1 on a GPU. The contrast is
    /// taken within each part.
    pub micro_batches: usize,
    /// Most clips of a part in the likelihood-contrast matrix: it costs `2 n^2` teacher-forced
    /// sequences for `n` clips. 4 (not the part's 8 clips) because at 8 the contrast is about
    /// half of a step's time: 6.4 against 3.4 CPU-seconds per step at the shipping size
    /// (measured in release on 2 cores; models/weights/pairalign-v1/README.md).
    pub contrast_clips: usize,
    /// Share of clips whose two views are both cut to one random span (the same share of each
    /// view's length) of [`min_span_frames`](Self::min_span_frames) frames or more before the
    /// targets are derived. The index cuts recordings into windows that start anywhere in the
    /// speech and a query clip is cut anywhere in a recording, so a
    /// span of audio should give the same string whatever window holds it; spans teach that.
    /// 0 (the default) leaves every view whole, as pairalign-v1 was trained.
    pub span_share: f64,
    /// Shortest span, frames (10 ms): 50 is the shortest piece of a query at 6 phases.
    pub min_span_frames: usize,
    /// Crop an item's two views to one span of the clip
    /// ([`BatchLoader::with_content_crop`](pairalign_datasets::cache::BatchLoader::with_content_crop)),
    /// so that a view at another speed keeps the same words and the targets of one view,
    /// timed as shares of its window, fall on the same audio in the other. false (the default)
    /// crops both to `crop_frames` at one relative position, as pairalign-v1 and -v2 were
    /// trained.
    pub content_crop: bool,
}

impl_run_config!(PairAlignTrainConfig, |c| c.content_crop);

impl Default for PairAlignTrainConfig {
    fn default() -> Self {
        PairAlignTrainConfig {
            model: PairAlignConfig::default(),
            steps: 2000,
            batch_size: 16,
            crop_frames: 300,
            lr: LrSchedule {
                peak: 1e-3,
                warmup_steps: 100,
                final_ratio: 0.05,
            },
            optimizer: AdamWConfig::default(),
            clip_grad_norm: 1.0,
            seed: 0,
            checkpoint_every: 100,
            log_every: 10,
            micro_batches: 2,
            contrast_clips: 4,
            span_share: 0.0,
            min_span_frames: 50,
            content_crop: false,
        }
    }
}

/// Averages over one log interval, as written to `train.jsonl`: one field per loss term
/// (`null` when its component is switched off).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PairAlignLogRecord {
    /// Steps done.
    pub step: u64,
    /// Steps of the whole run.
    pub steps: u64,
    /// Epoch of the last batch (0-based).
    pub epoch: u64,
    /// Total loss.
    pub loss: f64,
    /// Teacher-forcing loss (3): mean NLL per target token, summed over both directions.
    pub teacher_forcing: f64,
    /// Likelihood-contrast loss (5).
    pub contrast: Option<f64>,
    /// Length loss (6).
    pub length: Option<f64>,
    /// Timing loss (7): mean absolute error as a fraction of the clip.
    pub timing: Option<f64>,
    /// The timing error in ms.
    pub timing_ms: Option<f64>,
    /// Expected tokens per second under teacher forcing (the length loss's estimate).
    pub expected_rate: Option<f64>,
    /// Tokens per second of the targets.
    pub target_rate: f64,
    /// Mean normalized log-likelihood of the targets under their own condition (4).
    pub bypass_true_ll: Option<f64>,
    /// ... and under another clip's condition.
    pub bypass_shuffled_ll: Option<f64>,
    /// `bypass_true_ll - bypass_shuffled_ll`: 0 when the decoder ignores the condition.
    pub bypass_gap: Option<f64>,
    /// Share of EMA-teacher targets at the last step (2).
    pub teacher_share: f64,
    /// Factor of the corruption rates at the last step (4).
    pub corruption: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate of the last step.
    pub lr: f64,
    /// Steps per second over the interval.
    pub steps_per_s: f64,
    /// Seconds of training in this process.
    pub elapsed_s: f64,
}

/// How a PairAlign run ended.
pub type PairAlignTrainReport = TrainReport<PairAlignLogRecord>;

impl LogRecord for PairAlignLogRecord {
    fn step(&self) -> u64 {
        self.step
    }
}

/// A PairAlign training run over a feature cache, writing to an output folder.
pub type PairAlignTrainer<'c> = Trainer<'c, PairAlignTraining>;

/// The PairAlign model in training: the student's weights and optimizer, the frozen VQ
/// tokenizer of the targets and its normalization, and the EMA teacher.
#[derive(Debug)]
pub struct PairAlignTraining {
    cfg: PairAlignTrainConfig,
    device: Device,
    params: Parameters,
    model: PairAlignModel,
    vq: VqTokenizer,
    norm: MelNorm,
    mean: Tensor,
    std: Tensor,
    teacher: EmaTeacher,
}

impl PairAlignTraining {
    /// Builds the model on weights drawn from `cfg.seed`, over the encoder config of `vq`,
    /// normalizing by `norm`; the teacher starts as a copy of the student.
    fn build(
        cfg: PairAlignTrainConfig,
        vq: VqTokenizer,
        norm: MelNorm,
        device: &Device,
    ) -> Result<Self> {
        if &cfg.model.encoder != vq.config() {
            return Err(Error::BadConfig(format!(
                "the run's encoder config {:?} differs from the VQ tokenizer's {:?}",
                cfg.model.encoder,
                vq.config()
            )));
        }
        let varmap = VarMap::new();
        let model = PairAlignModel::load(&cfg.model, seeded_varmap(&varmap, cfg.seed, device))?;
        let params = Parameters::new(varmap, |_| true, cfg.optimizer.clone())?;
        let (mean, std) = norm_tensors(&norm, cfg.model.encoder.n_mels, device)?;
        let teacher = EmaTeacher::from_varmap(&params.varmap)?;
        Ok(PairAlignTraining {
            cfg,
            device: device.clone(),
            params,
            model,
            vq,
            norm,
            mean,
            std,
            teacher,
        })
    }

    /// A tokenizer frozen from the current (student) weights.
    fn tokenizer(&self) -> Result<PairAlignTokenizer> {
        Ok(PairAlignTokenizer::from_varmap(
            &self.cfg.model,
            self.norm.clone(),
            &self.params.varmap,
            &self.device,
        )?)
    }
}

impl<'c> Trainer<'c, PairAlignTraining> {
    /// A fresh run from the VQ tokenizer `init`: its encoder weights and mel normalization,
    /// the rest drawn from `cfg.seed`. `init` is copied to `out/init-vq`.
    pub fn new(
        cache: &'c FeatureCache,
        cfg: PairAlignTrainConfig,
        init: VqTokenizer,
        out: &Path,
        device: &Device,
    ) -> Result<Self> {
        check_config(&cfg, cache)?;
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        init.save(out.join(INIT_VQ_DIR))?;
        let norm = init.norm().clone();
        let mut training = PairAlignTraining::build(cfg, init, norm, device)?;
        init_from_vq(&training.cfg.model, &training.params.varmap, &training.vq)?;
        training.teacher = EmaTeacher::from_varmap(&training.params.varmap)?;
        Self::start(training, cache, out)
    }

    /// Starts the model and its EMA teacher from a trained PairAlign tokenizer's weights
    /// instead of the VQ initialization (fine-tuning, e.g. pairalign-v1 with spans). Every
    /// weight of the run must be in `from` with the same shape, and `from` must normalize mels
    /// as the run's VQ tokenizer does; only before the first step.
    pub fn warm_start(&mut self, from: &PairAlignTokenizer) -> Result<()> {
        if self.step != 0 {
            return Err(Error::BadConfig(format!(
                "a warm start replaces the weights before training; this run is at step {}",
                self.step
            )));
        }
        let t = &mut self.training;
        if from.norm() != &t.norm {
            return Err(Error::BadConfig(
                "the warm start's mel normalization differs from the VQ tokenizer's".into(),
            ));
        }
        {
            let vars = t
                .params
                .varmap
                .data()
                .lock()
                .map_err(|_| Error::BadConfig("the VarMap lock is poisoned".into()))?;
            for (name, var) in vars.iter() {
                let w = from
                    .weights()
                    .get(name)
                    .filter(|t| t.dims() == var.dims())
                    .ok_or_else(|| {
                        Error::BadConfig(format!(
                            "the warm start has no tensor {name} of shape {:?}",
                            var.dims()
                        ))
                    })?;
                var.set(&w.to_device(&t.device)?)?;
            }
        }
        t.teacher = EmaTeacher::from_varmap(&t.params.varmap)?;
        Ok(())
    }

    /// A tokenizer frozen from the current (student) weights.
    pub fn tokenizer(&self) -> Result<PairAlignTokenizer> {
        self.training.tokenizer()
    }

    /// The student's weights, to inspect or to change before the run (a test that starts from
    /// a chosen point).
    pub fn varmap(&self) -> &VarMap {
        &self.training.params.varmap
    }

    /// The EMA teacher.
    pub fn teacher(&self) -> &EmaTeacher {
        &self.training.teacher
    }
}

impl Training for PairAlignTraining {
    type Config = PairAlignTrainConfig;
    type Stats = PairAlignStepStats;
    type Record = PairAlignLogRecord;

    fn restore(
        saved: &Saved<PairAlignTrainConfig>,
        cfg: PairAlignTrainConfig,
        cache: &FeatureCache,
        out: &Path,
        device: &Device,
    ) -> Result<Self> {
        let dir = &saved.dir;
        let init = VqTokenizer::load(out.join(INIT_VQ_DIR), device)?;
        if saved.state.init_vq_hash.as_deref() != Some(init.weights_hash()) {
            return Err(Error::BadCheckpoint(format!(
                "{}: the VQ tokenizer the run started from has changed",
                out.join(INIT_VQ_DIR).display()
            )));
        }
        // Loading it as a tokenizer checks every tensor against the model config.
        let tokenizer = PairAlignTokenizer::load(dir, &Device::Cpu)?;
        if tokenizer.config() != &saved.state.config.model {
            return Err(Error::BadCheckpoint(format!(
                "{}: the weights' model config differs from the run's",
                dir.display()
            )));
        }
        check_config(&cfg, cache)?;
        let mut training = Self::build(cfg, init, tokenizer.norm().clone(), device)?;
        checkpoint::restore_vars(&training.params.varmap, tokenizer.weights(), dir, device)?;
        let teacher = checkpoint::read_tensors(&dir.join(TEACHER_FILE), device)?;
        if teacher.len() != tokenizer.weights().len()
            || tokenizer
                .weights()
                .iter()
                .any(|(k, t)| teacher.get(k).is_none_or(|tt| tt.dims() != t.dims()))
        {
            return Err(Error::BadCheckpoint(format!(
                "{}: the EMA teacher's weights do not match the model",
                dir.join(TEACHER_FILE).display()
            )));
        }
        training.teacher = EmaTeacher::from_weights(teacher);
        Ok(training)
    }

    fn config(&self) -> &PairAlignTrainConfig {
        &self.cfg
    }

    fn optimizer(&self) -> &AdamW {
        &self.params.opt
    }

    fn optimizer_mut(&mut self) -> &mut AdamW {
        &mut self.params.opt
    }

    fn init_vq_hash(&self) -> Option<String> {
        Some(self.vq.weights_hash().to_string())
    }

    /// One optimizer step (and one EMA update) on `batch`, whose clips are split into
    /// `micro_batches` parts run side by side; gradients and measurements are averaged over
    /// the parts, weighted by their clips.
    fn train_step(
        &mut self,
        batch: &Batch,
        step: u64,
        measure: bool,
    ) -> Result<PairAlignStepStats> {
        let n = batch.len();
        let components = &self.cfg.model.components;
        let share = teacher_share(components, step, self.cfg.steps);
        let corruption = corruption_scale(components, step, self.cfg.steps);
        let teacher = if share > 0.0 {
            Some(self.teacher.model(&self.cfg.model, &self.device)?)
        } else {
            None
        };
        let parts = self.cfg.micro_batches.clamp(1, n.max(1));
        let bounds: Vec<(usize, usize)> = (0..parts)
            .map(|p| (p * n / parts, (p + 1) * n / parts))
            .filter(|(s, e)| e > s)
            .collect();
        let input = MicroInput {
            cfg: &self.cfg,
            model: &self.model,
            teacher: teacher.as_ref(),
            vq: &self.vq,
            mean: &self.mean,
            std: &self.std,
            level: self.norm.level,
            device: &self.device,
            batch,
            share,
            rates: CorruptionRates::of(&self.cfg.model, corruption),
            measure,
        };
        let seed = self.cfg.seed;
        let outs: Vec<MicroStep> = bounds
            .par_iter()
            .enumerate()
            .map(|(p, &(s, e))| {
                let mut rng = ChaCha8Rng::seed_from_u64(draw_seed(seed, step, p));
                input.run(s, e, &mut rng)
            })
            .collect::<Result<_>>()?;
        let weights = shares(&bounds, n);
        let stats = average_stats(&outs, &weights);
        let grads: Vec<GradStore> = outs.into_iter().map(|o| o.grads).collect();
        let lr = self.cfg.lr.at(step, self.cfg.steps);
        let grad_norm = self
            .params
            .step(grads, &weights, self.cfg.clip_grad_norm, lr)?;
        if self.cfg.model.components.ema_teacher {
            self.teacher
                .update(&self.params.varmap, self.cfg.model.components.ema_decay)?;
        }
        Ok(PairAlignStepStats {
            teacher_share: share,
            corruption,
            grad_norm,
            lr,
            ..stats
        })
    }

    fn record(&self, interval: &[PairAlignStepStats], progress: Progress) -> PairAlignLogRecord {
        let n = interval.len().max(1) as f64;
        let mean = |f: fn(&PairAlignStepStats) -> f64| interval.iter().map(f).sum::<f64>() / n;
        let mean_opt = |f: fn(&PairAlignStepStats) -> Option<f64>| {
            let v: Vec<f64> = interval.iter().filter_map(f).collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        let last = interval.last().cloned().unwrap_or_default();
        let bypass = interval.iter().rev().find_map(|s| s.bypass);
        PairAlignLogRecord {
            step: progress.step,
            steps: progress.steps,
            epoch: progress.epoch,
            loss: mean(|s| s.loss),
            teacher_forcing: mean(|s| s.teacher_forcing),
            contrast: mean_opt(|s| s.contrast),
            length: mean_opt(|s| s.length),
            timing: mean_opt(|s| s.timing),
            timing_ms: mean_opt(|s| s.timing_ms),
            expected_rate: mean_opt(|s| s.expected_rate),
            target_rate: mean(|s| s.target_rate),
            bypass_true_ll: bypass.map(|b| b.0),
            bypass_shuffled_ll: bypass.map(|b| b.1),
            bypass_gap: bypass.map(|b| b.0 - b.1),
            teacher_share: last.teacher_share,
            corruption: last.corruption,
            grad_norm: mean(|s| s.grad_norm),
            lr: last.lr,
            steps_per_s: progress.steps_per_s,
            elapsed_s: progress.elapsed_s,
        }
    }

    fn save_tokenizer(&self, dir: &Path) -> Result<()> {
        Ok(self.tokenizer()?.save(dir)?)
    }

    fn write_checkpoint(&self, dir: &Path) -> Result<()> {
        self.save_tokenizer(dir)?;
        checkpoint::write_tensors(&dir.join(TEACHER_FILE), self.teacher.weights())
    }
}

/// What one step (or one part of it) of a PairAlign run measured; `None` for switched-off
/// terms. A log record averages them.
#[derive(Clone, Debug, Default)]
pub struct PairAlignStepStats {
    loss: f64,
    teacher_forcing: f64,
    contrast: Option<f64>,
    length: Option<f64>,
    timing: Option<f64>,
    timing_ms: Option<f64>,
    expected_rate: Option<f64>,
    target_rate: f64,
    bypass: Option<(f64, f64)>,
    teacher_share: f64,
    corruption: f64,
    grad_norm: f64,
    lr: f64,
}

/// Seed of the random draws of part `part` of step `step`: a resumed run draws what the
/// uninterrupted one did (SplitMix64's finalizer over the three).
fn draw_seed(seed: u64, step: u64, part: usize) -> u64 {
    let mut z = seed
        .wrapping_add(step.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add((part as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Measurements averaged over the parts, weighted by their clips.
fn average_stats(outs: &[MicroStep], weights: &[f64]) -> PairAlignStepStats {
    let sum = |f: fn(&PairAlignStepStats) -> f64| -> f64 {
        outs.iter().zip(weights).map(|(o, w)| f(&o.stats) * w).sum()
    };
    let sum_opt = |f: fn(&PairAlignStepStats) -> Option<f64>| -> Option<f64> {
        let mut total = None;
        let mut weight = 0.0;
        for (o, w) in outs.iter().zip(weights) {
            if let Some(v) = f(&o.stats) {
                *total.get_or_insert(0.0) += v * w;
                weight += w;
            }
        }
        total.map(|t: f64| t / weight)
    };
    PairAlignStepStats {
        loss: sum(|s| s.loss),
        teacher_forcing: sum(|s| s.teacher_forcing),
        contrast: sum_opt(|s| s.contrast),
        length: sum_opt(|s| s.length),
        timing: sum_opt(|s| s.timing),
        timing_ms: sum_opt(|s| s.timing_ms),
        expected_rate: sum_opt(|s| s.expected_rate),
        target_rate: sum(|s| s.target_rate),
        bypass: outs.iter().find_map(|o| o.stats.bypass),
        ..Default::default()
    }
}

/// What a part of a batch needs, shared by the threads that run the parts.
struct MicroInput<'a> {
    cfg: &'a PairAlignTrainConfig,
    model: &'a PairAlignModel,
    teacher: Option<&'a PairAlignModel>,
    vq: &'a VqTokenizer,
    mean: &'a Tensor,
    std: &'a Tensor,
    /// The front end's level normalization, applied to each clip before `mean` and `std`.
    level: Option<LevelNorm>,
    device: &'a Device,
    batch: &'a Batch,
    share: f64,
    rates: CorruptionRates,
    measure: bool,
}

/// One part's gradients and measurements.
struct MicroStep {
    grads: GradStore,
    stats: PairAlignStepStats,
}

impl MicroInput<'_> {
    /// Forward and backward over clips `s..e` of the batch, both views.
    fn run(&self, s: usize, e: usize, rng: &mut ChaCha8Rng) -> Result<MicroStep> {
        let cfg = &self.cfg.model;
        let c = &cfg.components;
        let b = self.batch;
        let (k, per_clip) = (e - s, b.frames * b.n_mels);
        // Rows: view A of clips s..e, then view B.
        let mut data = Vec::with_capacity(2 * k * per_clip);
        data.extend_from_slice(&b.a[s * per_clip..e * per_clip]);
        data.extend_from_slice(&b.b[s * per_clip..e * per_clip]);
        let mut lens: Vec<usize> = b.lengths_a[s..e]
            .iter()
            .chain(&b.lengths_b[s..e])
            .copied()
            .collect();
        // Each clip brought to one level, as the tokenizer does each window.
        if let Some(level) = &self.level {
            for (r, &len) in lens.iter().enumerate() {
                level.apply(&mut data[r * per_clip..r * per_clip + len * b.n_mels]);
            }
        }
        cut_spans(
            &mut data,
            &mut lens,
            b.n_mels,
            self.cfg.span_share,
            self.cfg.min_span_frames,
            rng,
        );
        let mels: Vec<&[f32]> = lens
            .iter()
            .enumerate()
            .map(|(r, &len)| &data[r * per_clip..r * per_clip + len * b.n_mels])
            .collect();
        let x = Tensor::from_slice(&data, (2 * k, b.frames, b.n_mels), self.device)?
            .broadcast_sub(self.mean)?
            .broadcast_div(self.std)?;
        let cond_frames: Vec<usize> = lens.iter().map(|&n| subsampled_len(n)).collect();

        // The condition each target is trained under (3).
        let partner = |r: usize| if c.cross_paired { (r + k) % (2 * k) } else { r };
        // Targets (1, 2): one source per clip, both views from it. A voice clip's targets
        // come from the VQ tokenizer, carried onto the other voice's timeline (`align`).
        let same_timeline = |r: usize| b.same_timeline[s + r % k];
        let from_teacher: Vec<bool> = (0..k)
            .map(|i| rng.gen::<f64>() < self.share && same_timeline(i))
            .collect();
        let rows_from = |teacher: bool| -> Vec<usize> {
            (0..2 * k)
                .filter(|&r| from_teacher[r % k] == teacher)
                .collect()
        };
        let mut targets = vec![TokenString::default(); 2 * k];
        // The code frames each target is timed over: its own view's, or the other view's
        // when it was carried there.
        let mut target_frames = cond_frames.clone();
        let vq_rows = rows_from(false);
        if !vq_rows.is_empty() {
            let rows: Vec<&[f32]> = vq_rows.iter().map(|&r| mels[r]).collect();
            let mut codes = vec![Vec::new(); 2 * k];
            for (&r, c) in vq_rows.iter().zip(self.vq.frame_codes(&rows)?) {
                codes[r] = c;
            }
            for &r in &vq_rows {
                let p = partner(r);
                if same_timeline(r) || p == r {
                    targets[r] = vq_segments(cfg, &codes[r]);
                } else if r < k {
                    // Both views of the clip at once (its rows r and p = r + k, one alignment).
                    let (onto_p, onto_r) =
                        carry_across(&codes[r], &codes[p], mels[r], mels[p], b.n_mels);
                    targets[r] = vq_segments(cfg, &onto_p);
                    targets[p] = vq_segments(cfg, &onto_r);
                    (target_frames[r], target_frames[p]) = (cond_frames[p], cond_frames[r]);
                }
            }
        }
        let teacher_rows = rows_from(true);
        if let (Some(teacher), false) = (self.teacher, teacher_rows.is_empty()) {
            let idx: Vec<u32> = teacher_rows.iter().map(|&r| r as u32).collect();
            let idx = Tensor::from_vec(idx, teacher_rows.len(), self.device)?;
            let row_lens: Vec<usize> = teacher_rows.iter().map(|&r| lens[r]).collect();
            let cond = teacher.encode(&x.index_select(&idx, 0)?, Some(&row_lens))?;
            for (&r, t) in teacher_rows.iter().zip(teacher_strings(teacher, &cond)?) {
                targets[r] = t;
            }
        }

        let examples: Vec<TeacherExample> = (0..2 * k)
            .map(|r| {
                teacher_example(
                    cfg,
                    &targets[r],
                    target_frames[r],
                    cond_frames[partner(r)],
                    &self.rates,
                    rng,
                )
            })
            .collect();
        let tbatch = TeacherBatch::new(cfg, &examples, self.device)?;
        let cond = self.model.encode(&x, Some(&lens))?;
        let (tf, out) = paired_teacher_forcing(self.model, &cond, &tbatch, c.cross_paired)?;
        let mut total = tf.clone();
        let mut stats = PairAlignStepStats {
            teacher_forcing: scalar(&tf)?,
            ..Default::default()
        };
        let seconds: f64 = cond_frames
            .iter()
            .map(|&f| f as f64 * f64::from(CODE_FRAME_MS) / 1000.0)
            .sum::<f64>()
            .max(1e-9);
        stats.target_rate = targets.iter().map(TokenString::len).sum::<usize>() as f64 / seconds;

        if c.length_control {
            let expected = expected_length(&out, &tbatch, cfg.eos())?;
            let loss = length_loss(&expected, &tbatch.desired_len)?;
            total = (total + (&loss * c.length_weight)?)?;
            stats.length = Some(scalar(&loss)?);
            stats.expected_rate = Some(scalar(&expected.sum_all()?)? / seconds);
        }
        if c.timing {
            let loss = timing_loss(&out, &tbatch)?;
            total = (total + (&loss * c.timing_weight)?)?;
            let mean_span_ms = seconds * 1000.0 / (2 * k) as f64;
            stats.timing = Some(scalar(&loss)?);
            stats.timing_ms = Some(scalar(&loss)? * mean_span_ms);
        }
        // Clean examples (no corruption) for the contrast and the bypass.
        let clean = |rows: &[usize]| -> Result<TeacherBatch> {
            let none = CorruptionRates::default();
            let examples: Vec<TeacherExample> = rows
                .iter()
                .map(|&r| {
                    teacher_example(
                        cfg,
                        &targets[r],
                        target_frames[r],
                        cond_frames[partner(r)],
                        &none,
                        &mut ChaCha8Rng::seed_from_u64(0),
                    )
                })
                .collect();
            TeacherBatch::new(cfg, &examples, self.device)
        };
        let n = k.min(self.cfg.contrast_clips);
        if c.contrast && n >= 2 {
            let mut loss: Option<Tensor> = None;
            for view in [0, k] {
                let rows: Vec<usize> = (view..view + n).collect();
                let conds: Vec<usize> = rows.iter().map(|&r| partner(r)).collect();
                let m = likelihood_matrix(self.model, &cond.select(&conds)?, &clean(&rows)?)?;
                let l = contrast_loss(&m, c.contrast_temperature)?;
                loss = Some(match loss {
                    Some(acc) => (acc + l)?,
                    None => l,
                });
            }
            if let Some(loss) = loss {
                let loss = (loss / 2.0)?;
                total = (total + (&loss * c.contrast_weight)?)?;
                stats.contrast = Some(scalar(&loss)?);
            }
        }
        stats.loss = scalar(&total)?;
        let grads = total.backward()?;
        if self.measure && k >= 2 {
            let rows: Vec<usize> = (0..k).collect();
            let conds: Vec<usize> = rows.iter().map(|&r| partner(r)).collect();
            let bypass = measure_bypass(self.model, &cond.select(&conds)?, &clean(&rows)?)?;
            stats.bypass = Some((bypass.true_ll, bypass.shuffled_ll));
        }
        Ok(MicroStep { grads, stats })
    }
}

/// The EMA teacher's strings of `cond`, as targets: what the tokenizer would store. A grid
/// model (`grid_targets`) decodes on the database's grid (offset 0.5), one token per cell timed
/// at the cell's start, as the VQ targets are; decoding free of the grid gave strings whose
/// `k`-th token was not the `k`-th cell's and times from the timing head, twice as far from the
/// audio as the VQ targets' (docs/RESULTS.md, issue 22 part 4). Other models decode greedily
/// within their length bounds, timed by the timing head.
pub(crate) fn teacher_strings(
    teacher: &PairAlignModel,
    cond: &Condition,
) -> Result<Vec<TokenString>> {
    if teacher.config().grid_targets {
        return Ok(teacher.decode_on_grid(cond, &vec![0.5; cond.len()])?);
    }
    Ok(teacher
        .decode_greedy(cond)?
        .into_iter()
        .zip(&cond.lens)
        .map(|(d, &frames)| TokenString {
            times_ms: d.times_ms(frames),
            tokens: d.tokens,
        })
        .collect())
}

/// Cuts both views of a share of the clips to one random span ([`PairAlignTrainConfig::span_share`]).
/// `data` holds `lens.len()` rows of equal size, views A of `k = lens.len() / 2` clips then
/// their views B, each row's first `lens[r]` frames of `n_mels` values valid and the rest zero.
/// The span is drawn as shares of the shorter view (a speed view is longer or shorter) and
/// applied to each view in proportion to its length; a cut row holds the span's frames first
/// and zeros after. Draws nothing when `share` is 0.
pub(crate) fn cut_spans(
    data: &mut [f32],
    lens: &mut [usize],
    n_mels: usize,
    share: f64,
    min_frames: usize,
    rng: &mut ChaCha8Rng,
) {
    if share <= 0.0 || lens.is_empty() {
        return;
    }
    let k = lens.len() / 2;
    let row = data.len() / lens.len();
    for clip in 0..k {
        if rng.gen::<f64>() >= share {
            continue;
        }
        let shorter = lens[clip].min(lens[clip + k]);
        if shorter <= min_frames.max(1) {
            continue;
        }
        let len = rng.gen_range(min_frames.max(1)..=shorter) as f64 / shorter as f64;
        let start = rng.gen::<f64>() * (1.0 - len);
        for r in [clip, clip + k] {
            let full = lens[r];
            let a = ((start * full as f64) as usize).min(full - 1);
            let n = ((len * full as f64).round() as usize).clamp(1, full - a);
            let cells = &mut data[r * row..(r + 1) * row];
            cells.copy_within(a * n_mels..(a + n) * n_mels, 0);
            cells[n * n_mels..].fill(0.0);
            lens[r] = n;
        }
    }
}

/// Rejects configs the loop cannot run.
fn check_config(cfg: &PairAlignTrainConfig, cache: &FeatureCache) -> Result<()> {
    cfg.model.validate()?;
    if cfg.batch_size == 0 || cfg.steps == 0 {
        return Err(Error::BadConfig(
            "steps and batch_size must be at least 1".into(),
        ));
    }
    if cfg.crop_frames < 2 || cfg.crop_frames > cfg.model.window_frames {
        return Err(Error::BadConfig(format!(
            "crop_frames must be in 2..={} (the model's window), got {}",
            cfg.model.window_frames, cfg.crop_frames
        )));
    }
    if !(0.0..=1.0).contains(&cfg.span_share) || cfg.min_span_frames < 10 {
        return Err(Error::BadConfig(format!(
            "span_share must be in [0, 1] and min_span_frames at least 10, got {} and {}",
            cfg.span_share, cfg.min_span_frames
        )));
    }
    if cache.n_mels() != cfg.model.encoder.n_mels {
        return Err(Error::BadConfig(format!(
            "{} has {} mel bins, the model expects {}",
            cache.path().display(),
            cache.n_mels(),
            cfg.model.encoder.n_mels
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

/// `cfg` with a small encoder and decoder, for tests that run a model.
#[cfg(test)]
pub(crate) fn tiny_config(cfg: PairAlignConfig) -> PairAlignConfig {
    PairAlignConfig {
        encoder: pairalign_models::VqConfig {
            channels: 16,
            encoder_layers: 1,
            codebook_size: 256,
            code_dim: 8,
            ..Default::default()
        },
        d_model: 16,
        heads: 2,
        ff_dim: 32,
        layers: 1,
        ..cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of `frames` frames of 2 mels, each cell `row * 1000 + frame`, valid up to `lens`.
    fn rows(lens: &[usize], frames: usize) -> Vec<f32> {
        let mut data = vec![0.0; lens.len() * frames * 2];
        for (r, &len) in lens.iter().enumerate() {
            for f in 0..len {
                for m in 0..2 {
                    data[(r * frames + f) * 2 + m] = (r * 1000 + f) as f32;
                }
            }
        }
        data
    }

    /// A small PairAlign model of `cfg`'s decoding recipe.
    fn tiny_model(cfg: PairAlignConfig) -> PairAlignModel {
        let vm = VarMap::new();
        PairAlignModel::load(&tiny_config(cfg), seeded_varmap(&vm, 5, &Device::Cpu)).unwrap()
    }

    /// Conditions of noise log-mels of `lens` frames each (padded to the longest).
    fn conditions(model: &PairAlignModel, lens: &[usize]) -> Condition {
        let n_mels = model.config().encoder.n_mels;
        let t = *lens.iter().max().unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut data = vec![0f32; lens.len() * t * n_mels];
        for (r, &len) in lens.iter().enumerate() {
            for v in &mut data[r * t * n_mels..(r * t + len) * n_mels] {
                *v = rng.gen_range(-1.0..1.0);
            }
        }
        let x = Tensor::from_vec(data, (lens.len(), t, n_mels), &Device::Cpu).unwrap();
        model.encode(&x, Some(lens)).unwrap()
    }

    #[test]
    fn a_grid_teachers_targets_sit_on_the_vq_targets_grid() {
        // Clips of 3 s, 1.94 s and 0.5 s: whatever the untrained teacher predicts, its k-th
        // token is the k-th grid cell's, timed at the cell's start like a VQ grid target.
        let model = tiny_model(PairAlignConfig::default());
        let cfg = model.config().clone();
        let cond = conditions(&model, &[300, 194, 50]);
        let strings = teacher_strings(&model, &cond).unwrap();
        for (t, &frames) in strings.iter().zip(&cond.lens) {
            let vq = grid_targets(&vec![0; frames], cfg.token_rate);
            assert_eq!(t.times_ms, vq.times_ms, "{frames} condition frames");
            assert_eq!(t.tokens.len(), t.times_ms.len());
        }
        // The same tokens as the anchored decoding the tokenizer stores (offset 0.5).
        let centres: Vec<Vec<f64>> = cond
            .lens
            .iter()
            .map(|&f| cfg.grid_centres(f, 0.5))
            .collect();
        let anchored = model.decode_greedy_anchored(&cond, &centres).unwrap();
        for (t, d) in strings.iter().zip(&anchored) {
            assert_eq!(t.tokens, d.tokens);
        }
        // One offset per condition, or a clear error.
        let err = model.decode_on_grid(&cond, &[0.5]).unwrap_err().to_string();
        assert!(err.contains("1 grid offsets for 3 conditions"), "{err}");
    }

    #[test]
    fn a_free_teachers_targets_are_timed_by_its_timing_head() {
        let model = tiny_model(PairAlignConfig::paper());
        let cond = conditions(&model, &[300, 120]);
        let strings = teacher_strings(&model, &cond).unwrap();
        let decoded = model.decode_greedy(&cond).unwrap();
        for ((t, d), &frames) in strings.iter().zip(&decoded).zip(&cond.lens) {
            assert_eq!(t.tokens, d.tokens);
            assert_eq!(t.times_ms, d.times_ms(frames));
        }
    }

    #[test]
    fn spans_cut_both_views_at_the_same_share() {
        let frames = 330;
        // Views A of 3 clips, then their views B (the second one 10% longer: a speed view).
        let original = [300, 300, 120, 300, 330, 120];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut cut = 0;
        for _ in 0..50 {
            let mut lens = original;
            let mut data = rows(&lens, frames);
            cut_spans(&mut data, &mut lens, 2, 1.0, 50, &mut rng);
            for clip in 0..3 {
                let starts: Vec<f64> = [clip, clip + 3]
                    .iter()
                    .map(|&r| {
                        let row = &data[r * frames * 2..(r + 1) * frames * 2];
                        let n = lens[r];
                        let first = row[0] as usize - r * 1000;
                        // The span's frames, in order, then zeros.
                        for f in 0..n {
                            assert_eq!(row[f * 2] as usize, r * 1000 + first + f);
                            assert_eq!(row[f * 2 + 1], row[f * 2]);
                        }
                        assert!(row[n * 2..].iter().all(|&x| x == 0.0));
                        assert!(first + n <= original[r]);
                        first as f64 / original[r] as f64
                    })
                    .collect();
                let (a, b) = (lens[clip], lens[clip + 3]);
                let share = |r: usize| lens[r] as f64 / original[r] as f64;
                assert!((share(clip) - share(clip + 3)).abs() < 0.02, "{a} {b}");
                assert!((starts[0] - starts[1]).abs() < 0.02, "{starts:?}");
                assert!(a.min(b) >= 45, "{a} {b}");
                cut += usize::from(a < original[clip]);
            }
        }
        assert!(cut > 100, "most spans are shorter than the clip: {cut}");
        // Share 0 changes nothing and draws nothing.
        let mut lens = original;
        let mut data = rows(&lens, frames);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        cut_spans(&mut data, &mut lens, 2, 0.0, 50, &mut rng);
        assert_eq!((lens, data), (original, rows(&original, frames)));
        assert_eq!(rng.gen::<u64>(), ChaCha8Rng::seed_from_u64(3).gen::<u64>());
    }
}
