//! The VQ tokenizer (shared/DESIGN.md section 6): a conv encoder over log-mel at 50 Hz, a codebook
//! (trained by EMA with dead-code restart in `pairalign-train`), a small decoder for the mel
//! reconstruction loss, and the [`VqTokenizer`] that turns audio into collapsed code strings.

mod codebook;
mod config;
mod decoder;
mod encoder;
mod layers;
mod model;
mod tokenizer;

pub use codebook::Codebook;
pub use config::{VqConfig, MAX_CODEBOOK_SIZE, MIN_CODEBOOK_SIZE};
pub use decoder::Decoder;
pub use encoder::Encoder;
pub use layers::{frame_mask, subsampled_len, Conv1d, ResBlock};
pub use model::VqModel;
pub(crate) use tokenizer::with_front_end;
pub use tokenizer::{
    log_mean_energy, LevelNorm, MelNorm, VqTokenizer, CLIPS_PER_CALL, CODE_FRAME_MS, CONFIG_FILE,
    FORMAT_VERSION, WEIGHTS_FILE,
};
