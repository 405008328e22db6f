//! pairalign-models: the `Tokenizer` trait, the VQ tokenizer (and, later, PairAlign), their
//! training pieces and safetensors checkpoints (shared/DESIGN.md section 6).

mod error;
pub mod shipped;
pub mod tokenizer;
pub mod train;
pub mod vq;

pub use candle_core::Device;
pub use error::{Error, Result};
pub use tokenizer::{
    collapse_repeats, tokenize_windows, TokenString, Tokenizer, WINDOWS_PER_CALL, WINDOW_SAMPLES,
};
pub use vq::{VqConfig, VqModel, VqTokenizer};
