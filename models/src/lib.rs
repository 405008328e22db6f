//! pairalign-models: the `Tokenizer` trait, the VQ tokenizer (and, later, PairAlign), their
//! training pieces and safetensors checkpoints (shared/DESIGN.md section 6).

mod error;
pub mod tokenizer;
pub mod vq;

pub use error::{Error, Result};
pub use tokenizer::{collapse_repeats, TokenString, Tokenizer};
pub use vq::{VqConfig, VqModel, VqTokenizer};
