//! pairalign-eval: how good a tokenizer is for search, measured the way the paper does
//! (shared/DESIGN.md section 1): token rate and vocabulary use, the edit distance between two
//! views of a clip against unrelated clips, and retrieval of a clip's other view among all
//! clips; with a dense mean-pooled embedding as the baseline.
//!
//! `metrics` holds the pure functions (ranks with ties, normalized edit distance); `protocol`
//! runs them over a feature cache of paired views for a tokenizer.

mod error;
pub mod metrics;
pub mod protocol;

pub use error::{Error, Result};
pub use metrics::{ned, RankStats, RetrievalMetrics};
pub use protocol::{evaluate_tokens, evaluate_vq, DenseReport, TokenizerReport};
