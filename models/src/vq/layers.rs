//! Building blocks shared by the encoder and the decoder: the masked residual conv block and the
//! padding masks that keep a clip's result independent of the batch it is in.

use candle_core::{DType, Device, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, LayerNorm, Module, VarBuilder};

use super::VqConfig;
use crate::Result;

/// `[B, 1, T]` mask, 1 on the first `lens[b]` frames of row `b` and 0 on the padding.
pub(crate) fn frame_mask(lens: &[usize], t: usize, device: &Device) -> Result<Tensor> {
    let mut m = vec![0f32; lens.len() * t];
    for (row, &len) in m.chunks_exact_mut(t.max(1)).zip(lens) {
        row[..len.min(t)].fill(1.0);
    }
    Ok(Tensor::from_vec(m, (lens.len(), 1, t), device)?)
}

/// Zeroes the padding of `x` (`[B, C, T]`). Doing it after every layer makes the padding look
/// exactly like a conv's own zero padding, so a clip gets the same codes alone or in a batch.
pub(crate) fn apply_mask(x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    Ok(match mask {
        Some(m) => x.broadcast_mul(m)?,
        None => x.clone(),
    })
}

/// Layer norm over the channels of a `[B, C, T]` tensor.
pub(crate) fn norm_channels(norm: &LayerNorm, x: &Tensor) -> Result<Tensor> {
    Ok(norm.forward(&x.transpose(1, 2)?)?.transpose(1, 2)?)
}

/// `x + conv_2(gelu(conv_1(norm(x))))`, pre-norm, over `[B, C, T]`; `conv_1` mixes time with
/// `kernel_size`, `conv_2` is pointwise.
#[derive(Clone, Debug)]
pub struct ResBlock {
    norm: LayerNorm,
    conv_1: Conv1d,
    conv_2: Conv1d,
}

impl ResBlock {
    /// Weights `norm.{weight,bias}`, `conv_1.{weight,bias}`, `conv_2.{weight,bias}`.
    pub fn load(cfg: &VqConfig, vb: VarBuilder) -> Result<Self> {
        let c = cfg.channels;
        let pad = Conv1dConfig {
            padding: cfg.kernel_size / 2,
            ..Default::default()
        };
        Ok(ResBlock {
            norm: candle_nn::layer_norm(c, cfg.layer_norm_eps, vb.pp("norm"))?,
            conv_1: candle_nn::conv1d(c, c, cfg.kernel_size, pad, vb.pp("conv_1"))?,
            conv_2: candle_nn::conv1d(c, c, 1, Default::default(), vb.pp("conv_2"))?,
        })
    }

    /// `x`: `[B, C, T]`, zero on the padding when `mask` is given.
    pub fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let h = apply_mask(&norm_channels(&self.norm, x)?, mask)?;
        let h = self.conv_1.forward(&h)?.gelu()?;
        let h = self.conv_2.forward(&h)?;
        apply_mask(&(x + h)?, mask)
    }
}

/// Number of 50 Hz frames for `n` 100 Hz frames: the stride-2 conv keeps `ceil(n / 2)`.
pub fn subsampled_len(n: usize) -> usize {
    n.div_ceil(2)
}

/// Casts `x` to f32 if it is not already.
pub(crate) fn to_f32(x: &Tensor) -> Result<Tensor> {
    Ok(if x.dtype() == DType::F32 {
        x.clone()
    } else {
        x.to_dtype(DType::F32)?
    })
}
