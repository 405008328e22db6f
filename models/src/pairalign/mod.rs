//! The PairAlign tokenizer (shared/DESIGN.md sections 1 and 6, issue 8): the VQ encoder's output
//! is the condition of an autoregressive transformer decoder that emits VQ-code ids from BOS to
//! EOS at a target rate (12.7 tokens/s), each with a time; greedy decoding with a KV cache,
//! batched and length-constrained; and the pieces of its training: VQ-derived targets, the
//! corrupted teacher-forcing examples, the EMA teacher and the losses.

mod config;
mod corrupt;
mod decode;
mod ema;
mod layers;
mod losses;
mod model;
mod targets;
mod tokenizer;

pub use config::{Components, PairAlignConfig, CONFIG_FORMAT};
pub use corrupt::{teacher_example, CorruptionRates, TeacherExample};
pub use decode::{greedy_choice, Decoded};
pub use ema::EmaTeacher;
pub use layers::{Attention, LayerNorm, Mlp};
pub use losses::{
    contrast_loss, expected_length, length_loss, likelihood_matrix, measure_bypass,
    paired_teacher_forcing, sequence_log_likelihood, teacher_forcing_loss, timing_loss,
    token_log_probs, Bypass, TeacherBatch,
};
pub use model::{
    init_from_vq, Condition, ConditionLayer, Conditioner, Decoder, DecoderLayer, PairAlignModel,
    TeacherOutput,
};
pub use targets::{grid_targets, vq_targets};
pub use tokenizer::{PairAlignTokenizer, FORMAT_VERSION, TOKENIZER_ID, WINDOWS_PER_MODEL_CALL};
