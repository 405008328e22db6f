//! `VqModel`: encoder, codebook and decoder together. Its training forward pass (the
//! straight-through estimator, the reconstruction and commitment losses) is
//! `pairalign_train::vq::forward`.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::{Codebook, Decoder, Encoder, VqConfig};
use crate::Result;

/// The VQ autoencoder. Weights: `encoder.*`, `codebook.*`, `decoder.*`.
#[derive(Clone, Debug)]
pub struct VqModel {
    /// Log-mel -> 50 Hz vectors.
    pub encoder: Encoder,
    /// The codes; trained by EMA, not by gradients.
    pub codebook: Codebook,
    /// Codes -> log-mel, run in training only; its weights are part of every checkpoint (and
    /// of its weights hash), so it is loaded with the rest.
    pub decoder: Decoder,
}

impl VqModel {
    /// Validates `cfg` and loads (or, from a `VarMap`, creates) every weight.
    pub fn load(cfg: &VqConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        Ok(VqModel {
            encoder: Encoder::load(cfg, vb.pp("encoder"))?,
            codebook: Codebook::load(cfg, vb.pp("codebook"))?,
            decoder: Decoder::load(cfg, vb.pp("decoder"))?,
        })
    }

    /// Codes `[B, ceil(T / 2)]` (u32) of normalized log-mels `[B, T, n_mels]`; `lens` gives each
    /// row's valid frames in a padded batch, and codes past `ceil(lens[b] / 2)` are padding.
    pub fn encode(&self, mel: &Tensor, lens: Option<&[usize]>) -> Result<Tensor> {
        let z = self.encoder.forward(mel, lens)?;
        let (b, t2, d) = z.dims3()?;
        Ok(self
            .codebook
            .nearest(&z.reshape((b * t2, d))?)?
            .reshape((b, t2))?)
    }
}
