//! Training machinery shared by the tokenizers (shared/DESIGN.md section 6): AdamW with state
//! that checkpoints can hold, the learning-rate schedule, seeded initialization, atomic
//! checkpoints; and the VQ tokenizer's training loop.

pub mod checkpoint;
mod init;
mod optim;
mod schedule;
mod vq;

pub use init::seeded_varmap;
pub use optim::{clip_scale, AdamW, AdamWConfig};
pub use schedule::LrSchedule;
pub use vq::{
    DataFingerprint, LogRecord, TrainReport, VqTrainConfig, VqTrainer, LOG_FILE,
    TRAINER_FORMAT_VERSION,
};
