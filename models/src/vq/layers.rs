//! Building blocks shared by the encoder and the decoder: the masked residual conv block and the
//! padding masks that keep a clip's result independent of the batch it is in.

use candle_core::{DType, Device, Tensor};
use candle_nn::{Init, LayerNorm, Module, VarBuilder};

use super::VqConfig;
use crate::Result;

/// `[B, 1, T]` mask, 1 on the first `lens[b]` frames of row `b` and 0 on the padding. Public
/// for the training losses (`pairalign-train`), which leave the padding out the same way.
pub fn frame_mask(lens: &[usize], t: usize, device: &Device) -> Result<Tensor> {
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

/// A 1-D convolution over `[B, C, T]` with "same" zero padding (`kernel_size / 2` each side),
/// weights `weight` `[C_out, C_in, k]` and `bias` `[C_out]` as in `candle_nn::Conv1d`.
///
/// It is computed as gathered taps and one matmul rather than with `Tensor::conv1d`, whose CPU
/// kernel gradient is wrong for batches of more than one clip in candle 0.9.2 (checked against
/// finite differences; the backward convolves with a transposed, non-contiguous gradient, the
/// same class of bug as huggingface/candle#3735 for conv2d): training through it raised the loss.
/// On 2 CPU cores it is as fast for inference as `Tensor::conv1d` (measured on the default
/// config).
#[derive(Clone, Debug)]
pub struct Conv1d {
    weight: Tensor,
    bias: Tensor,
    kernel_size: usize,
    stride: usize,
}

impl Conv1d {
    /// Kaiming-normal weight and uniform bias on a fresh init, as `candle_nn::conv1d`.
    pub fn load(
        c_in: usize,
        c_out: usize,
        kernel_size: usize,
        stride: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let weight = vb.get_with_hints(
            (c_out, c_in, kernel_size),
            "weight",
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
        )?;
        let bound = 1.0 / ((c_in * kernel_size) as f64).sqrt();
        let bias = vb.get_with_hints(
            c_out,
            "bias",
            Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )?;
        Ok(Conv1d::new(weight, bias, stride))
    }

    /// From tensors: `weight` `[C_out, C_in, k]` (k odd), `bias` `[C_out]`.
    pub fn new(weight: Tensor, bias: Tensor, stride: usize) -> Self {
        let kernel_size = weight.dims().get(2).copied().unwrap_or(1);
        Conv1d {
            weight,
            bias,
            kernel_size,
            stride: stride.max(1),
        }
    }

    /// `x`: `[B, C_in, T]` -> `[B, C_out, (T - 1) / stride + 1]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c_in, t) = x.dims3()?;
        let k = self.kernel_size;
        let pad = k / 2;
        let t_out = (t + 2 * pad - k) / self.stride + 1;
        let xp = if pad > 0 {
            x.pad_with_zeros(2, pad, pad)?
        } else {
            x.clone()
        }
        .contiguous()?;
        // Tap j of output i reads input i * stride + j: a strided view made of narrow and
        // reshape, whose backward is a cheap pad (index_select's is a slow scatter-add).
        let span = t_out * self.stride;
        let tail = (k - 1 + span).saturating_sub(xp.dim(2)?);
        let xp = if tail > 0 {
            xp.pad_with_zeros(2, 0, tail)?
        } else {
            xp
        };
        let mut taps = Vec::with_capacity(k);
        for j in 0..k {
            let tap = xp.narrow(2, j, span)?;
            taps.push(if self.stride == 1 {
                tap
            } else {
                tap.reshape((b, c_in, t_out, self.stride))?
                    .narrow(3, 0, 1)?
                    .squeeze(3)?
            });
        }
        // [B, C_in, k, T_out] -> [B, C_in * k, T_out], the order of the weight's last two dims.
        let cols = Tensor::stack(&taps, 2)?.reshape((b, c_in * k, t_out))?;
        let c_out = self.weight.dim(0)?;
        let w = self.weight.reshape((c_out, c_in * k))?;
        Ok(w.broadcast_matmul(&cols)?
            .broadcast_add(&self.bias.reshape((1, c_out, 1))?)?)
    }
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
        Ok(ResBlock {
            norm: candle_nn::layer_norm(c, cfg.layer_norm_eps, vb.pp("norm"))?,
            conv_1: Conv1d::load(c, c, cfg.kernel_size, 1, vb.pp("conv_1"))?,
            conv_2: Conv1d::load(c, c, 1, 1, vb.pp("conv_2"))?,
        })
    }

    /// `x`: `[B, C, T]`, zero on the padding when `mask` is given.
    pub fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let h = apply_mask(&norm_channels(&self.norm, x)?, mask)?;
        let h = crate::ops::gelu(&self.conv_1.forward(&h)?)?;
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

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::*;

    fn loss(conv: &Conv1d, x: &Tensor, target: &Tensor) -> Tensor {
        let y = conv.forward(x).unwrap().transpose(1, 2).unwrap();
        candle_nn::loss::mse(&y, target).unwrap()
    }

    #[test]
    fn conv_matches_candle_forward() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 5, 9), &dev).unwrap();
        let w = Tensor::randn(0f32, 1.0, (4, 5, 3), &dev).unwrap();
        let b = Tensor::randn(0f32, 1.0, 4, &dev).unwrap();
        for stride in [1, 2] {
            let ours = Conv1d::new(w.clone(), b.clone(), stride)
                .forward(&x)
                .unwrap();
            let theirs = x
                .conv1d(&w, 1, stride, 1, 1)
                .unwrap()
                .broadcast_add(&b.reshape((1, 4, 1)).unwrap())
                .unwrap();
            assert_eq!(ours.dims(), theirs.dims());
            let diff = (ours - theirs).unwrap().abs().unwrap().max_all().unwrap();
            assert!(diff.to_scalar::<f32>().unwrap() < 1e-4);
        }
    }

    /// Regression: `Tensor::conv1d`'s kernel gradient is wrong on CPU for batches > 1 in candle
    /// 0.9.2; ours must match finite differences.
    #[test]
    fn conv_kernel_gradient_matches_finite_differences() {
        let dev = Device::Cpu;
        for stride in [1, 2] {
            let x = Tensor::randn(0f32, 1.0, (3, 4, 8), &dev).unwrap();
            let w = Var::randn(0f32, 0.5, (2, 4, 3), &dev).unwrap();
            let b = Tensor::zeros(2, candle_core::DType::F32, &dev).unwrap();
            let conv = Conv1d::new(w.as_tensor().clone(), b.clone(), stride);
            let t_out = (8 - 1) / stride + 1;
            let target = Tensor::randn(0f32, 1.0, (3, t_out, 2), &dev).unwrap();
            let grads = loss(&conv, &x, &target).backward().unwrap();
            let analytic = grads
                .get(&w)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let w0 = w
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let eps = 1e-2;
            for i in 0..w0.len() {
                let at = |delta: f32| {
                    let mut wi = w0.clone();
                    wi[i] += delta;
                    let wi = Tensor::from_vec(wi, (2, 4, 3), &dev).unwrap();
                    let l = loss(&Conv1d::new(wi, b.clone(), stride), &x, &target);
                    l.to_scalar::<f32>().unwrap()
                };
                let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
                assert!(
                    (numeric - analytic[i]).abs() < 1e-3,
                    "stride {stride}, weight {i}: {numeric} vs {}",
                    analytic[i]
                );
            }
        }
    }
}
