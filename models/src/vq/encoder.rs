//! `Encoder`: normalized log-mel at 100 Hz -> code-space vectors at 50 Hz.

use candle_core::Tensor;
use candle_nn::{LayerNorm, Linear, Module, VarBuilder};

use super::layers::{apply_mask, frame_mask, norm_channels, subsampled_len, Conv1d, ResBlock};
use super::VqConfig;
use crate::Result;

/// `conv_in` (k, 100 Hz) -> `subsample` (k = 3, stride 2, 50 Hz) -> `layers.{i}` residual blocks
/// -> `norm_out` -> `proj` to `code_dim`.
#[derive(Clone, Debug)]
pub struct Encoder {
    conv_in: Conv1d,
    subsample: Conv1d,
    layers: Vec<ResBlock>,
    norm_out: LayerNorm,
    proj: Linear,
}

impl Encoder {
    /// Weights under `vb`: `conv_in`, `subsample`, `layers.{i}`, `norm_out`, `proj`.
    pub fn load(cfg: &VqConfig, vb: VarBuilder) -> Result<Self> {
        let c = cfg.channels;
        let layers = (0..cfg.encoder_layers)
            .map(|i| ResBlock::load(cfg, vb.pp("layers").pp(i)))
            .collect::<Result<_>>()?;
        Ok(Encoder {
            conv_in: Conv1d::load(cfg.n_mels, c, cfg.kernel_size, 1, vb.pp("conv_in"))?,
            subsample: Conv1d::load(c, c, 3, 2, vb.pp("subsample"))?,
            layers,
            norm_out: candle_nn::layer_norm(c, cfg.layer_norm_eps, vb.pp("norm_out"))?,
            proj: candle_nn::linear(c, cfg.code_dim, vb.pp("proj"))?,
        })
    }

    /// `mel`: `[B, T, n_mels]`, normalized. `lens`: the valid frames of each row when the batch
    /// is padded (`None`: every row is `T` long). Returns `[B, ceil(T / 2), code_dim]`; rows
    /// past `ceil(lens[b] / 2)` are padding.
    pub fn forward(&self, mel: &Tensor, lens: Option<&[usize]>) -> Result<Tensor> {
        let (_, t, _) = mel.dims3()?;
        let t2 = subsampled_len(t);
        let (mask, mask2) = match lens {
            Some(lens) => {
                let half: Vec<usize> = lens.iter().map(|&n| subsampled_len(n)).collect();
                (
                    Some(frame_mask(lens, t, mel.device())?),
                    Some(frame_mask(&half, t2, mel.device())?),
                )
            }
            None => (None, None),
        };
        let x = apply_mask(&mel.transpose(1, 2)?, mask.as_ref())?;
        let x = apply_mask(
            &crate::ops::gelu(&self.conv_in.forward(&x)?)?,
            mask.as_ref(),
        )?;
        let mut x = apply_mask(
            &crate::ops::gelu(&self.subsample.forward(&x)?)?,
            mask2.as_ref(),
        )?;
        for layer in &self.layers {
            x = layer.forward(&x, mask2.as_ref())?;
        }
        let x = norm_channels(&self.norm_out, &x)?.transpose(1, 2)?;
        Ok(self.proj.forward(&x)?)
    }
}
