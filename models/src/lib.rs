//! pairalign-models: the `Tokenizer` trait, the VQ and PairAlign tokenizers, their training loops and safetensors I/O (shared/DESIGN.md section 6). Filled in by issues 5 and 8.
//!
//! No code yet; this crate exists so that the workspace has its final shape and
//! dependencies point the way shared/DESIGN.md section 2 says.
