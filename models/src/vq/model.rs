//! `VqModel`: encoder, codebook and decoder together, with the training losses.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::{Codebook, Decoder, Encoder, VqConfig};
use crate::Result;

/// Everything one training forward pass produces.
#[derive(Clone, Debug)]
pub struct VqOutput {
    /// Reconstructed normalized log-mel, `[B, T, n_mels]`.
    pub recon: Tensor,
    /// Encoder output before quantization, `[B, T2, code_dim]` with `T2 = ceil(T / 2)`.
    pub z: Tensor,
    /// Nearest code of each 50 Hz frame, `[B, T2]`, u32.
    pub codes: Tensor,
    /// Commitment loss `mean ||z - sg(q)||^2` (VQ-VAE, van den Oord et al. 2017, eq. 3).
    pub commit_loss: Tensor,
}

/// The VQ autoencoder. Weights: `encoder.*`, `codebook.*`, `decoder.*`.
#[derive(Clone, Debug)]
pub struct VqModel {
    /// Log-mel -> 50 Hz vectors.
    pub encoder: Encoder,
    /// The codes; trained by EMA, not by gradients.
    pub codebook: Codebook,
    /// Codes -> log-mel, used for training only.
    pub decoder: Decoder,
    commitment_weight: f64,
}

impl VqModel {
    /// Validates `cfg` and loads (or, from a `VarMap`, creates) every weight.
    pub fn load(cfg: &VqConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        Ok(VqModel {
            encoder: Encoder::load(cfg, vb.pp("encoder"))?,
            codebook: Codebook::load(cfg, vb.pp("codebook"))?,
            decoder: Decoder::load(cfg, vb.pp("decoder"))?,
            commitment_weight: cfg.commitment_weight,
        })
    }

    /// Training forward pass over an unpadded batch of normalized log-mels `[B, T, n_mels]`.
    /// The decoder gets the codes through the straight-through estimator, so the
    /// reconstruction gradient reaches the encoder.
    pub fn forward(&self, mel: &Tensor) -> Result<VqOutput> {
        let (b, t, _) = mel.dims3()?;
        let z = self.encoder.forward(mel, None)?;
        let (_, t2, d) = z.dims3()?;
        let codes = self.codebook.nearest(&z.reshape((b * t2, d))?)?;
        let q = self.codebook.lookup(&codes)?.reshape((b, t2, d))?;
        let commit_loss = candle_nn::loss::mse(&z, &q)?;
        let q_st = (&z + (q - &z)?.detach())?;
        let recon = self.decoder.forward(&q_st, t)?;
        Ok(VqOutput {
            recon,
            z,
            codes: codes.reshape((b, t2))?,
            commit_loss,
        })
    }

    /// Training loss: `mse(recon, mel) + commitment_weight * commit_loss`.
    pub fn loss(&self, mel: &Tensor, out: &VqOutput) -> Result<Tensor> {
        let recon_loss = candle_nn::loss::mse(&out.recon, mel)?;
        Ok((recon_loss + (&out.commit_loss * self.commitment_weight)?)?)
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
