//! pairalign-datasets: everything between an audio file and the tensors a tokenizer trains or runs
//! on (shared/DESIGN.md sections 3, 6 and 7): decoding to 16 kHz mono, 80-bin log-mel features,
//! corpus readers and fixed-length clips, synthetic multi-voice speech, content-preserving views,
//! and the memory-mapped feature cache with its paired-view batch loader.

pub mod audio;
pub mod cache;
pub mod corpus;
pub mod decode;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod mel;
pub mod synth;
pub mod views;

pub use audio::{Audio, SAMPLE_RATE};
pub use error::{Error, Result};
