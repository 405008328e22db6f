//! pairalign-models: the `Tokenizer` trait, the VQ and PairAlign tokenizers, their training
//! pieces and safetensors checkpoints (shared/DESIGN.md section 6).

mod error;
pub mod pairalign;
mod select;
pub mod shipped;
pub mod tokenizer;
pub mod train;
pub mod vq;

pub use candle_core::Device;
pub use error::{Error, Result};
pub use pairalign::{PairAlignConfig, PairAlignModel, PairAlignTokenizer};
pub use select::{AnyTokenizer, TokenizerKind};
pub use tokenizer::{
    collapse_repeats, tokenize_query, tokenize_windows, TokenString, Tokenizer, WINDOWS_PER_CALL,
    WINDOW_SAMPLES,
};
pub use vq::{VqConfig, VqModel, VqTokenizer};
