//! `VqConfig`: the hyper-parameters of the VQ tokenizer, stored as JSON beside its weights.

use pairalign_datasets::mel::N_MELS;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Smallest codebook the VQ tokenizer accepts (shared/DESIGN.md section 6, issue 5).
pub const MIN_CODEBOOK_SIZE: usize = 256;
/// Largest codebook the VQ tokenizer accepts; codes must also fit a `u16` token.
pub const MAX_CODEBOOK_SIZE: usize = 1024;

/// Hyper-parameters of [`super::VqModel`]. Missing JSON fields take the defaults, which give a
/// model of about 1.1 M parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VqConfig {
    /// Mel bins of the input log-mel (the front end's `N_MELS`, 80).
    pub n_mels: usize,
    /// Channels of every conv layer in the encoder and the decoder.
    pub channels: usize,
    /// Kernel size of the time convolutions (odd, so that padding keeps the length).
    pub kernel_size: usize,
    /// Residual conv blocks after the stride-2 subsampling (100 Hz -> 50 Hz) in the encoder.
    pub encoder_layers: usize,
    /// Residual conv blocks in the decoder, at 50 Hz before its x2 upsampling.
    pub decoder_layers: usize,
    /// Codebook entries, which is the tokenizer's vocabulary size (256 to 1024).
    pub codebook_size: usize,
    /// Dimension of the encoder output and of every code vector.
    pub code_dim: usize,
    /// Decay of the codebook's exponential moving averages (0.99 in VQ-VAE, van den Oord et al.
    /// 2017, appendix A.1).
    pub ema_decay: f64,
    /// Weight of the commitment loss ||z - sg(q)||^2 (beta = 0.25 in VQ-VAE, section 3.2).
    pub commitment_weight: f64,
    /// A code whose EMA cluster size (vectors assigned per step) falls below this is restarted
    /// from a batch vector, so that no code stays dead (Dhariwal et al. 2020, Jukebox, 3.2).
    pub dead_code_threshold: f64,
    /// Epsilon of the layer norms.
    pub layer_norm_eps: f64,
}

impl Default for VqConfig {
    fn default() -> Self {
        VqConfig {
            n_mels: N_MELS,
            channels: 192,
            kernel_size: 3,
            encoder_layers: 4,
            decoder_layers: 2,
            codebook_size: 512,
            code_dim: 64,
            ema_decay: 0.99,
            commitment_weight: 0.25,
            dead_code_threshold: 1.0,
            layer_norm_eps: 1e-5,
        }
    }
}

impl VqConfig {
    /// Checks every field against its allowed range.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::BadConfig(msg));
        if self.n_mels == 0 || self.channels == 0 || self.code_dim == 0 {
            return bad("n_mels, channels and code_dim must be positive".into());
        }
        if self.kernel_size.is_multiple_of(2) {
            return bad(format!("kernel_size must be odd, got {}", self.kernel_size));
        }
        if !(MIN_CODEBOOK_SIZE..=MAX_CODEBOOK_SIZE).contains(&self.codebook_size) {
            return bad(format!(
                "codebook_size must be in {MIN_CODEBOOK_SIZE}..={MAX_CODEBOOK_SIZE}, got {}",
                self.codebook_size
            ));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return bad(format!(
                "ema_decay must be in [0, 1), got {}",
                self.ema_decay
            ));
        }
        if !(self.commitment_weight >= 0.0 && self.dead_code_threshold >= 0.0) {
            return bad("commitment_weight and dead_code_threshold must be >= 0".into());
        }
        if self.layer_norm_eps.is_nan() || self.layer_norm_eps <= 0.0 {
            return bad("layer_norm_eps must be > 0".into());
        }
        Ok(())
    }
}
