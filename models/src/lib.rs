//! pairalign-models: the inference crate (shared/DESIGN.md section 6): the `Tokenizer` trait,
//! the VQ and PairAlign models and tokenizers, their safetensors checkpoints, the shipped
//! weights and the `--tokenizer` loader. Training lives in `pairalign-train`, which builds on
//! the items here that are public for it: the models' layers and teacher-forced forward
//! ([`PairAlignModel::forward_teacher`]), [`init::seeded_varmap`], and the tokenizers'
//! `from_varmap`.

mod error;
pub mod init;
pub mod ops;
pub mod pairalign;
mod select;
pub mod shipped;
pub mod tokenizer;
pub mod vq;

pub use candle_core::Device;
pub use error::{Error, Result};
pub use pairalign::{PairAlignConfig, PairAlignModel, PairAlignTokenizer};
pub use select::{parse_device, AnyTokenizer, TokenizerKind};
pub use tokenizer::{
    collapse_repeats, tokenize_query, tokenize_windows, TokenString, Tokenizer, WINDOWS_PER_CALL,
    WINDOW_SAMPLES,
};
pub use vq::{VqConfig, VqModel, VqTokenizer};
