//! pairalign-train: training of the tokenizers of `pairalign-models` (shared/DESIGN.md section
//! 6, issue 8): the VQ tokenizer ([`vq`]: reconstruction and commitment losses, the codebook's
//! EMA update) and the PairAlign tokenizer ([`pairalign`]: VQ-derived and EMA-teacher targets,
//! corrupted cross-paired teacher forcing, likelihood contrast, length and timing losses), both
//! driven by one loop ([`run`]: batches, schedule, logging, stop, checkpoints, resume) over one
//! checkpoint format ([`checkpoint`]); AdamW with savable moments ([`optim`]), the schedules
//! ([`schedule`]); and what a command line needs around a run: the feature cache it trains on
//! ([`data`]) and its config from defaults, a file and flags ([`config`]).
//!
//! A run is deterministic: the same config and seed give the same weights, byte for byte, and a
//! run stopped and resumed ends as the uninterrupted one.

pub mod checkpoint;
pub mod config;
pub mod data;
mod error;
pub mod optim;
pub mod pairalign;
mod params;
pub mod run;
pub mod schedule;
pub mod vq;

pub use config::{pairalign_config, vq_config, Component, Overrides};
pub use data::{training_cache, CacheEvent};
pub use error::{Error, Result};
pub use optim::{clip_scale, AdamW, AdamWConfig};
pub use pairalign::{
    PairAlignLogRecord, PairAlignTrainConfig, PairAlignTrainReport, PairAlignTrainer,
    PairAlignTraining, INIT_VQ_DIR, TEACHER_FILE,
};
pub use run::{LogRecord, Progress, RunConfig, TrainReport, Trainer, Training, LOG_FILE};
pub use schedule::LrSchedule;
pub use vq::{VqLogRecord, VqTrainConfig, VqTrainReport, VqTrainer, VqTraining};
