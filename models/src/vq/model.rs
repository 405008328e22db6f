//! `VqModel`: encoder, codebook and decoder together, with the training losses.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::layers::frame_mask;
use super::{subsampled_len, Codebook, Decoder, Encoder, VqConfig};
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
    /// Commitment loss `mean ||z - sg(q)||^2` over the valid frames (VQ-VAE, van den Oord et
    /// al. 2017, eq. 3).
    pub commit_loss: Tensor,
    /// `[B, T, 1]` mask of the valid 100 Hz frames when the batch is padded.
    pub mask: Option<Tensor>,
    /// The valid 50 Hz frames of each row (`ceil(lens[b] / 2)`; `T2` for every row unpadded).
    pub code_lens: Vec<usize>,
}

impl VqOutput {
    /// `[N, code_dim]` encoder outputs and `[N]` codes of the valid frames only, in row order:
    /// what the codebook's EMA update should see.
    pub fn valid_frames(&self) -> Result<(Tensor, Tensor)> {
        let (b, t2, d) = self.z.dims3()?;
        let z = self.z.reshape((b * t2, d))?;
        let codes = self.codes.flatten_all()?;
        if self.code_lens.iter().all(|&n| n == t2) {
            return Ok((z, codes));
        }
        let rows: Vec<u32> = self
            .code_lens
            .iter()
            .enumerate()
            .flat_map(|(i, &n)| (0..n.min(t2)).map(move |j| (i * t2 + j) as u32))
            .collect();
        let idx = Tensor::from_vec(rows.clone(), rows.len(), z.device())?;
        Ok((z.index_select(&idx, 0)?, codes.index_select(&idx, 0)?))
    }
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

    /// Training forward pass over normalized log-mels `[B, T, n_mels]`; `lens` gives each row's
    /// valid frames when the batch is zero-padded (`None`: every row is `T` long). The decoder
    /// gets the codes through the straight-through estimator, so the reconstruction gradient
    /// reaches the encoder; padded frames count in neither loss.
    pub fn forward(&self, mel: &Tensor, lens: Option<&[usize]>) -> Result<VqOutput> {
        let (b, t, _) = mel.dims3()?;
        let z = self.encoder.forward(mel, lens)?;
        let (_, t2, d) = z.dims3()?;
        let codes = self.codebook.nearest(&z.reshape((b * t2, d))?)?;
        let q = self.codebook.lookup(&codes)?.reshape((b, t2, d))?;
        let (mask, mask2, code_lens) = match lens {
            Some(lens) => {
                let half: Vec<usize> = lens.iter().map(|&n| subsampled_len(n)).collect();
                let mask = frame_mask(lens, t, mel.device())?.transpose(1, 2)?;
                let mask2 = frame_mask(&half, t2, mel.device())?.transpose(1, 2)?;
                (Some(mask), Some(mask2), half)
            }
            None => (None, None, vec![t2; b]),
        };
        let commit_loss = masked_mse(&z, &q, mask2.as_ref())?;
        let q_st = (&z + (q - &z)?.detach())?;
        let q_st = match &mask2 {
            Some(m) => q_st.broadcast_mul(m)?,
            None => q_st,
        };
        let recon = self.decoder.forward(&q_st, t)?;
        Ok(VqOutput {
            recon,
            z,
            codes: codes.reshape((b, t2))?,
            commit_loss,
            mask,
            code_lens,
        })
    }

    /// Reconstruction loss: mean squared error between `out.recon` and `mel` over the valid
    /// frames.
    pub fn recon_loss(&self, mel: &Tensor, out: &VqOutput) -> Result<Tensor> {
        masked_mse(&out.recon, mel, out.mask.as_ref())
    }

    /// Training loss: `recon_loss + commitment_weight * commit_loss`.
    pub fn loss(&self, mel: &Tensor, out: &VqOutput) -> Result<Tensor> {
        let recon_loss = self.recon_loss(mel, out)?;
        Ok((recon_loss + (&out.commit_loss * self.commitment_weight)?)?)
    }

    /// The weight of the commitment loss in [`VqModel::loss`].
    pub fn commitment_weight(&self) -> f64 {
        self.commitment_weight
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

/// Mean of `(a - b)^2` over the elements where `mask` (`[B, T, 1]`, 0 or 1) is 1; over all of
/// them without a mask.
fn masked_mse(a: &Tensor, b: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    let Some(mask) = mask else {
        return Ok(candle_nn::loss::mse(a, b)?);
    };
    let per_frame = a.dim(2)? as f64;
    let sq = (a - b)?.sqr()?.broadcast_mul(mask)?.sum_all()?;
    let count = (mask.sum_all()? * per_frame)?.maximum(1.0)?;
    Ok(sq.div(&count)?)
}
