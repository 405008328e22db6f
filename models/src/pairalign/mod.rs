//! The PairAlign tokenizer (shared/DESIGN.md sections 1 and 6, issue 8): the VQ encoder's output
//! is the condition of an autoregressive transformer decoder that emits VQ-code ids from BOS to
//! EOS at a target rate (12.7 tokens/s), each with a time; greedy decoding with a KV cache,
//! batched and length-constrained. The pieces of its training (targets, corruption, the EMA
//! teacher, the losses) are in `pairalign-train`; the teacher-forced forward they run is
//! [`PairAlignModel::forward_teacher`].

mod config;
mod decode;
mod layers;
mod model;
mod tokenizer;

pub use config::{Components, PairAlignConfig, CONFIG_FORMAT, MAX_GRID_PHASES};
pub use decode::{greedy_choice, Decoded};
pub use layers::{Attention, LayerNorm, Mlp};
pub use model::{
    init_from_vq, Condition, ConditionLayer, Conditioner, Decoder, DecoderLayer, PairAlignModel,
    TeacherOutput,
};
pub use tokenizer::{PairAlignTokenizer, FORMAT_VERSION, TOKENIZER_ID, WINDOWS_PER_MODEL_CALL};
