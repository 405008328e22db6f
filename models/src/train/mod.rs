//! Training machinery shared by the tokenizers (shared/DESIGN.md section 6): AdamW with state
//! that checkpoints can hold, the learning-rate schedule, seeded initialization, atomic
//! checkpoints; and the training loops of the VQ and PairAlign tokenizers.

pub mod checkpoint;
mod init;
mod optim;
mod pairalign;
mod schedule;
mod vq;

pub use init::seeded_varmap;
pub(crate) use init::snapshot_weights;
pub use optim::{clip_scale, AdamW, AdamWConfig};
pub use pairalign::{
    PairAlignLogRecord, PairAlignTrainConfig, PairAlignTrainReport, PairAlignTrainer, INIT_VQ_DIR,
    PAIRALIGN_TRAINER_FORMAT_VERSION, TEACHER_FILE,
};
pub use schedule::LrSchedule;
pub use vq::{
    DataFingerprint, LogRecord, TrainReport, VqTrainConfig, VqTrainer, LOG_FILE,
    TRAINER_FORMAT_VERSION,
};
