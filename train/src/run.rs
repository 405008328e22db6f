//! The training loop both tokenizers share: batches of paired views in an order fixed by the
//! seed and the step (so a resumed run sees the batches the uninterrupted run would have seen),
//! one optimizer step per batch, a log record every `log_every` steps (appended to
//! `train.jsonl` and handed to the caller), a checkpoint every `checkpoint_every` steps and at
//! the end, a stop between steps on request, and the trained tokenizer in the output folder when
//! the run completes. What a step does is the [`Training`]'s.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::Device;
use pairalign_datasets::cache::{Batch, BatchLoader, FeatureCache};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::checkpoint::{self, DataFingerprint, Saved, TrainerState};
use crate::optim::AdamW;
use crate::schedule::LrSchedule;
use crate::{Error, Result};

/// The JSONL training log in a run's output folder.
pub const LOG_FILE: &str = "train.jsonl";

/// The fields of a run config that the loop reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopSettings {
    /// Optimizer steps of the whole run.
    pub steps: u64,
    /// Clips per step, each seen in two views.
    pub batch_size: usize,
    /// Frames (10 ms) each view is cropped to.
    pub crop_frames: usize,
    /// Whether both views are cropped to one span of the clip
    /// ([`BatchLoader::with_content_crop`]).
    pub content_crop: bool,
    /// Seed of the batch order.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: u64,
    /// Steps between log records.
    pub log_every: u64,
}

/// The fields that both run configs ([`VqTrainConfig`](crate::VqTrainConfig),
/// [`PairAlignTrainConfig`](crate::PairAlignTrainConfig)) have under the same names: what the
/// loop reads and what a command line's flags set ([`crate::Overrides`]).
pub trait RunConfig: Clone + std::fmt::Debug + Serialize + DeserializeOwned {
    /// The loop's fields.
    fn settings(&self) -> LoopSettings;

    /// The shared fields, to change.
    fn shared_mut(&mut self) -> SharedFields<'_>;
}

/// The shared fields of a run config, borrowed to change ([`RunConfig::shared_mut`]).
#[derive(Debug)]
pub struct SharedFields<'a> {
    /// Optimizer steps of the whole run.
    pub steps: &'a mut u64,
    /// Clips per step.
    pub batch_size: &'a mut usize,
    /// The learning-rate schedule.
    pub lr: &'a mut LrSchedule,
    /// Seed of the run.
    pub seed: &'a mut u64,
    /// Steps between checkpoints.
    pub checkpoint_every: &'a mut u64,
    /// Steps between log records.
    pub log_every: &'a mut u64,
}

/// Implements [`RunConfig`] for a config struct with the shared fields at its top level.
macro_rules! impl_run_config {
    ($config:ty) => {
        $crate::run::impl_run_config!($config, |_| false);
    };
    ($config:ty, $content_crop:expr) => {
        impl $crate::run::RunConfig for $config {
            fn settings(&self) -> $crate::run::LoopSettings {
                let content_crop: fn(&$config) -> bool = $content_crop;
                $crate::run::LoopSettings {
                    steps: self.steps,
                    batch_size: self.batch_size,
                    crop_frames: self.crop_frames,
                    content_crop: content_crop(self),
                    seed: self.seed,
                    checkpoint_every: self.checkpoint_every,
                    log_every: self.log_every,
                }
            }

            fn shared_mut(&mut self) -> $crate::run::SharedFields<'_> {
                $crate::run::SharedFields {
                    steps: &mut self.steps,
                    batch_size: &mut self.batch_size,
                    lr: &mut self.lr,
                    seed: &mut self.seed,
                    checkpoint_every: &mut self.checkpoint_every,
                    log_every: &mut self.log_every,
                }
            }
        }
    };
}
pub(crate) use impl_run_config;

/// Where the loop stands when it asks for a log record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Steps done.
    pub step: u64,
    /// Steps of the whole run.
    pub steps: u64,
    /// Epoch of the last batch (0-based).
    pub epoch: u64,
    /// Steps per second over the log interval.
    pub steps_per_s: f64,
    /// Seconds of training in this process.
    pub elapsed_s: f64,
}

/// A record of the training log.
pub trait LogRecord: Clone + Serialize + DeserializeOwned {
    /// Steps done when it was written.
    fn step(&self) -> u64;
}

/// One tokenizer's training as the loop drives it: its config, its step, what it logs and what
/// its checkpoint holds besides the optimizer's moments and `trainer.json`.
pub trait Training: Sized {
    /// The run's config, stored in every checkpoint.
    type Config: RunConfig;
    /// What one step measured.
    type Stats;
    /// One record of the log: the steps of an interval summarized.
    type Record: LogRecord;

    /// Rebuilds the run from its checkpoint `saved` with `cfg` (the saved config, `steps`
    /// perhaps changed): the weights and what else the checkpoint keeps; the optimizer's
    /// moments are the loop's to restore.
    fn restore(
        saved: &Saved<Self::Config>,
        cfg: Self::Config,
        cache: &FeatureCache,
        out: &Path,
        device: &Device,
    ) -> Result<Self>;

    /// The run's config.
    fn config(&self) -> &Self::Config;

    /// The optimizer, whose moments every checkpoint holds.
    fn optimizer(&self) -> &AdamW;

    /// The same, to restore.
    fn optimizer_mut(&mut self) -> &mut AdamW;

    /// What `trainer.json` records of the tokenizer the run started from (a PairAlign run's
    /// VQ tokenizer); `None` by default.
    fn init_vq_hash(&self) -> Option<String> {
        None
    }

    /// Step `step` (0-based) of the run on `batch`; `measure` is set on the steps that end a
    /// log interval.
    fn train_step(&mut self, batch: &Batch, step: u64, measure: bool) -> Result<Self::Stats>;

    /// The log record of an interval's steps.
    fn record(&self, interval: &[Self::Stats], progress: Progress) -> Self::Record;

    /// Writes the tokenizer frozen from the current weights into `dir`.
    fn save_tokenizer(&self, dir: &Path) -> Result<()>;

    /// Writes the checkpoint's files other than the optimizer's and `trainer.json` into
    /// `dir`: the tokenizer by default.
    fn write_checkpoint(&self, dir: &Path) -> Result<()> {
        self.save_tokenizer(dir)
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainReport<R> {
    /// Steps done (of the whole run, across resumes).
    pub step: u64,
    /// Whether the run stopped on request before its last step.
    pub interrupted: bool,
    /// The last log record.
    pub last: Option<R>,
    /// The checkpoint folder.
    pub checkpoint: PathBuf,
    /// Wall time in this process.
    pub wall_s: f64,
}

/// A training run over a feature cache, writing to an output folder: the loop around a
/// [`Training`].
pub struct Trainer<'c, T> {
    pub(crate) training: T,
    cache: &'c FeatureCache,
    out: PathBuf,
    pub(crate) step: u64,
}

impl<T: Training> std::fmt::Debug for Trainer<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("out", &self.out)
            .field("step", &self.step)
            .field("cfg", self.training.config())
            .finish_non_exhaustive()
    }
}

impl<'c, T: Training> Trainer<'c, T> {
    /// A fresh run of `training` on `cache` into `out` (created when missing), at step 0.
    pub(crate) fn start(training: T, cache: &'c FeatureCache, out: &Path) -> Result<Self> {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        Ok(Trainer {
            training,
            cache,
            out: out.to_path_buf(),
            step: 0,
        })
    }

    /// Continues the run whose checkpoint is in `out`; `steps` (when given) changes the run's
    /// total steps, and so the rest of its schedules.
    pub fn resume(
        cache: &'c FeatureCache,
        out: &Path,
        steps: Option<u64>,
        device: &Device,
    ) -> Result<Self> {
        let saved = checkpoint::load::<T::Config>(out, cache)?;
        let mut cfg = saved.state.config.clone();
        if let Some(steps) = steps {
            *cfg.shared_mut().steps = steps;
        }
        let mut training = T::restore(&saved, cfg, cache, out, device)?;
        checkpoint::restore_optimizer(
            training.optimizer_mut(),
            &saved.dir,
            saved.state.step,
            device,
        )?;
        let mut trainer = Self::start(training, cache, out)?;
        trainer.step = saved.state.step;
        Ok(trainer)
    }

    /// The run's config.
    pub fn config(&self) -> &T::Config {
        self.training.config()
    }

    /// Steps done.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Trains until the run's last step or until `stop` is set (checked between steps), saving a
    /// checkpoint every `checkpoint_every` steps and at the end, and the final tokenizer
    /// (`model.safetensors`, `config.json`) in the output folder when the run completes.
    /// `on_log` sees every log record, which is also appended to `train.jsonl`.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        mut on_log: impl FnMut(&T::Record),
    ) -> Result<TrainReport<T::Record>> {
        let started = Instant::now();
        let s = self.training.config().settings();
        let loader = BatchLoader::new(self.cache, s.batch_size, s.seed, Some(s.crop_frames))?
            .with_content_crop(s.content_crop);
        let per_epoch = (loader.batches_per_epoch() as u64).max(1);
        let mut log = self.open_log()?;
        let mut interval: Vec<T::Stats> = Vec::new();
        let mut interval_start = Instant::now();
        let mut last = None;
        let mut interrupted = false;
        let mut epoch = self.step / per_epoch;
        let mut skip = (self.step % per_epoch) as usize;
        'epochs: while self.step < s.steps {
            for batch in loader.epoch(epoch).skip(skip) {
                if self.step >= s.steps {
                    break 'epochs;
                }
                if stop.load(Ordering::Relaxed) {
                    interrupted = true;
                    break 'epochs;
                }
                let logs_now =
                    (self.step + 1).is_multiple_of(s.log_every.max(1)) || self.step + 1 == s.steps;
                interval.push(self.training.train_step(&batch, self.step, logs_now)?);
                self.step += 1;
                let done = self.step == s.steps;
                if logs_now {
                    let progress = Progress {
                        step: self.step,
                        steps: s.steps,
                        epoch,
                        steps_per_s: interval.len() as f64
                            / interval_start.elapsed().as_secs_f64().max(1e-9),
                        elapsed_s: started.elapsed().as_secs_f64(),
                    };
                    let record = self.training.record(&interval, progress);
                    let path = self.out.join(LOG_FILE);
                    writeln!(
                        log,
                        "{}",
                        serde_json::to_string(&record).unwrap_or_default()
                    )
                    .map_err(|e| Error::io(&path, e))?;
                    log.flush().map_err(|e| Error::io(&path, e))?;
                    on_log(&record);
                    last = Some(record);
                    interval.clear();
                    interval_start = Instant::now();
                }
                if self.step.is_multiple_of(s.checkpoint_every.max(1)) && !done {
                    self.save_checkpoint()?;
                }
            }
            epoch += 1;
            skip = 0;
        }
        let checkpoint = self.save_checkpoint()?;
        if !interrupted {
            self.training.save_tokenizer(&self.out)?;
        }
        Ok(TrainReport {
            step: self.step,
            interrupted,
            last,
            checkpoint,
            wall_s: started.elapsed().as_secs_f64(),
        })
    }

    /// Writes the checkpoint of the current step.
    pub fn save_checkpoint(&self) -> Result<PathBuf> {
        let state = TrainerState {
            format_version: checkpoint::FORMAT_VERSION,
            step: self.step,
            config: self.training.config().clone(),
            data: DataFingerprint::of(self.cache),
            init_vq_hash: self.training.init_vq_hash(),
        };
        checkpoint::save_run(&self.out, &state, self.training.optimizer(), |dir| {
            self.training.write_checkpoint(dir)
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
                    serde_json::from_str::<T::Record>(line).is_ok_and(|r| r.step() <= self.step)
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
