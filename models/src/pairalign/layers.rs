//! Transformer building blocks of the PairAlign model: layer norm, multi-head attention, MLP and
//! sinusoidal positions, each fast at inference and differentiable in training.
//!
//! candle-nn's fused CPU kernels for layer norm and softmax have no backward pass (they are
//! applied with `apply_op*_no_bwd`, so a gradient silently stops there), while the composed
//! versions are several ops each. [`LayerNorm`] and [`softmax`] pick the fused kernel when no
//! gradient is tracked (inference, where weights are plain tensors) and the composed one when it
//! is (training, where weights are `Var`s).

use candle_core::{Device, Module, Tensor, D};
use candle_nn::{Init, Linear, VarBuilder};

use crate::Result;

/// Additive-mask value of a position that must get no attention: `exp(-inf) = 0` exactly, so a
/// padded frame changes nothing (every row has at least one visible position).
pub(crate) const MASKED: f32 = f32::NEG_INFINITY;

/// Softmax over the last dimension: candle-nn's fused kernel when `x` tracks no gradient, the
/// differentiable composition otherwise.
pub(crate) fn softmax(x: &Tensor) -> Result<Tensor> {
    Ok(if x.track_op() {
        candle_nn::ops::softmax(x, D::Minus1)?
    } else {
        candle_nn::ops::softmax_last_dim(x)?
    })
}

/// Layer norm over the last dimension with a weight and a bias (`weight`, `bias`).
#[derive(Clone, Debug)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// Weight 1 and bias 0 on a fresh init.
    pub fn load(dim: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(LayerNorm {
            weight: vb.get_with_hints(dim, "weight", Init::Const(1.0))?,
            bias: vb.get_with_hints(dim, "bias", Init::Const(0.0))?,
            eps,
        })
    }

    /// Normalizes the last dimension of `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.track_op() || self.weight.track_op() {
            let mean = x.mean_keepdim(D::Minus1)?;
            let centered = x.broadcast_sub(&mean)?;
            let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
            let normed = centered.broadcast_div(&(var + self.eps)?.sqrt()?)?;
            Ok(normed
                .broadcast_mul(&self.weight)?
                .broadcast_add(&self.bias)?)
        } else {
            Ok(candle_nn::ops::layer_norm(
                &x.contiguous()?,
                &self.weight,
                &self.bias,
                self.eps as f32,
            )?)
        }
    }
}

/// A linear layer initialized like `candle_nn::linear` (weights under `weight`, `bias`).
pub(crate) fn linear(d_in: usize, d_out: usize, vb: VarBuilder) -> Result<Linear> {
    Ok(candle_nn::linear(d_in, d_out, vb)?)
}

/// Applies `layer` to `x` of any rank by flattening its leading dimensions, so that candle
/// runs one plain matmul instead of a broadcast batched one.
pub(crate) fn apply(layer: &Linear, x: &Tensor) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let Some((&last, lead)) = dims.split_last() else {
        return Ok(layer.forward(x)?);
    };
    if lead.len() <= 1 {
        return Ok(layer.forward(x)?);
    }
    let rows: usize = lead.iter().product();
    let y = layer.forward(&x.contiguous()?.reshape((rows, last))?)?;
    let mut out = lead.to_vec();
    out.push(y.dim(1)?);
    Ok(y.reshape(out)?)
}

/// Multi-head attention (Vaswani et al. 2017, section 3.2): `q` from the queries, `kv` (keys
/// and values, fused into one projection) from the attended sequence, `o` back to `d_model`.
/// Used as self-attention (queries and keys from the same sequence) and as cross-attention.
#[derive(Clone, Debug)]
pub struct Attention {
    q: Linear,
    kv: Linear,
    o: Linear,
    heads: usize,
    head_dim: usize,
}

impl Attention {
    /// Weights `q` `[d, d]`, `kv` `[2d, d]`, `o` `[d, d]`, each with a bias.
    pub fn load(d_model: usize, heads: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Attention {
            q: linear(d_model, d_model, vb.pp("q"))?,
            kv: linear(d_model, 2 * d_model, vb.pp("kv"))?,
            o: linear(d_model, d_model, vb.pp("o"))?,
            heads,
            head_dim: d_model / heads,
        })
    }

    /// `[B, L, d]` -> `[B, H, L, head_dim]`.
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, l, _) = x.dims3()?;
        Ok(if l == 1 {
            x.reshape((b, self.heads, 1, self.head_dim))?
        } else {
            x.reshape((b, l, self.heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()?
        })
    }

    /// Queries of `x` (`[B, L, d]`), split into heads: `[B, H, L, head_dim]`.
    pub fn queries(&self, x: &Tensor) -> Result<Tensor> {
        self.split_heads(&apply(&self.q, x)?)
    }

    /// Keys and values of `x` (`[B, S, d]`), each `[B, H, S, head_dim]`.
    pub fn keys_values(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let kv = apply(&self.kv, x)?;
        let d = self.heads * self.head_dim;
        let k = self.split_heads(&kv.narrow(2, 0, d)?)?;
        let v = self.split_heads(&kv.narrow(2, d, d)?)?;
        Ok((k, v))
    }

    /// Attends queries `q` `[B, H, L, hd]` to keys `k` and values `v` `[B, H, S, hd]`; `mask`
    /// is added to the scores (broadcast to `[B, H, L, S]`: 0 where visible, [`MASKED`] where
    /// not). Returns `[B, L, d]` after the output projection.
    pub fn attend(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, h, l, hd) = q.dims4()?;
        let scores = (q.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?;
        let scores = match mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores,
        };
        let ctx = softmax(&scores)?.matmul(v)?;
        let ctx = if l == 1 {
            ctx.reshape((b, 1, h * hd))?
        } else {
            ctx.transpose(1, 2)?.contiguous()?.reshape((b, l, h * hd))?
        };
        apply(&self.o, &ctx)
    }

    /// Attention of `x` (`[B, L, d]`) over `context` (`[B, S, d]`), or over itself when
    /// `context` is `None`.
    pub fn forward(
        &self,
        x: &Tensor,
        context: Option<&Tensor>,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let q = self.queries(x)?;
        let (k, v) = self.keys_values(context.unwrap_or(x))?;
        self.attend(&q, &k, &v, mask)
    }
}

/// `fc_2(gelu(fc_1(x)))`.
#[derive(Clone, Debug)]
pub struct Mlp {
    fc_1: Linear,
    fc_2: Linear,
}

impl Mlp {
    /// Weights `fc_1` `[ff, d_in]`, `fc_2` `[d_out, ff]`.
    pub fn load(d_in: usize, ff: usize, d_out: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Mlp {
            fc_1: linear(d_in, ff, vb.pp("fc_1"))?,
            fc_2: linear(ff, d_out, vb.pp("fc_2"))?,
        })
    }

    /// `x`: `[..., d_in]` -> `[..., d_out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        apply(&self.fc_2, &crate::ops::gelu(&apply(&self.fc_1, x)?)?)
    }
}

/// Sinusoidal positions `[len, dim]` (Vaswani et al. 2017, section 3.5): the condition has no
/// fixed length, so its positions are computed, not learned.
pub(crate) fn sinusoids(len: usize, dim: usize, device: &Device) -> Result<Tensor> {
    let half = dim / 2;
    let mut out = vec![0f32; len * dim];
    for (pos, row) in out.chunks_exact_mut(dim.max(1)).enumerate() {
        for i in 0..half {
            let freq = (-(10_000f64.ln()) * (2 * i) as f64 / dim as f64).exp();
            let angle = pos as f64 * freq;
            row[2 * i] = angle.sin() as f32;
            row[2 * i + 1] = angle.cos() as f32;
        }
    }
    Ok(Tensor::from_vec(out, (len, dim), device)?)
}

/// `[B, 1, 1, S]` additive key mask: 0 on the first `lens[b]` positions of row `b`, [`MASKED`]
/// on the padding.
pub(crate) fn key_mask(lens: &[usize], s: usize, device: &Device) -> Result<Tensor> {
    let mut m = vec![MASKED; lens.len() * s];
    for (row, &len) in m.chunks_exact_mut(s.max(1)).zip(lens) {
        row[..len.min(s)].fill(0.0);
    }
    Ok(Tensor::from_vec(m, (lens.len(), 1, 1, s), device)?)
}

/// `[1, 1, L, L]` additive causal mask: position `i` sees positions `0..=i`, only the last
/// `context` before it when `context > 0`.
pub(crate) fn causal_mask(l: usize, context: usize, device: &Device) -> Result<Tensor> {
    let sees = |i: usize, j: usize| j <= i && (context == 0 || i - j <= context);
    let m: Vec<f32> = (0..l)
        .flat_map(|i| (0..l).map(move |j| if sees(i, j) { 0.0 } else { MASKED }))
        .collect();
    Ok(Tensor::from_vec(m, (1, 1, l, l), device)?)
}

/// `[B, 1, T, T]` additive mask of a banded self-attention over rows of `lens[b]` valid
/// positions: a valid position sees the valid ones within `window` of it; a padding position
/// sees the padding within `window` of it (never nothing, which would make its softmax NaN,
/// and NaN times a zero weight later is still NaN).
pub(crate) fn band_mask(
    lens: &[usize],
    t: usize,
    window: usize,
    device: &Device,
) -> Result<Tensor> {
    let mut m = vec![MASKED; lens.len() * t * t];
    for (rows, &len) in m.chunks_exact_mut((t * t).max(1)).zip(lens) {
        for (i, row) in rows.chunks_exact_mut(t.max(1)).enumerate() {
            for (j, cell) in row.iter_mut().enumerate() {
                if i.abs_diff(j) <= window && (j < len) == (i < len) {
                    *cell = 0.0;
                }
            }
        }
    }
    Ok(Tensor::from_vec(m, (lens.len(), 1, t, t), device)?)
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Var};

    use super::*;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn fused_and_composed_paths_agree() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 2.0, (3, 5, 8), &dev).unwrap();
        let w = Tensor::randn(1f32, 0.1, 8, &dev).unwrap();
        let b = Tensor::randn(0f32, 0.1, 8, &dev).unwrap();
        let plain = LayerNorm {
            weight: w.clone(),
            bias: b.clone(),
            eps: 1e-5,
        };
        let tracked = LayerNorm {
            weight: Var::from_tensor(&w).unwrap().as_tensor().clone(),
            bias: b,
            eps: 1e-5,
        };
        assert!(max_diff(&plain.forward(&x).unwrap(), &tracked.forward(&x).unwrap()) < 1e-5);
        let xv = Var::from_tensor(&x).unwrap();
        let fused = softmax(&x).unwrap();
        let composed = softmax(xv.as_tensor()).unwrap();
        assert!(max_diff(&fused, &composed) < 1e-6);
    }

    #[test]
    fn gradients_flow_through_norm_and_softmax() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1.0, (2, 4), &dev).unwrap();
        let norm = LayerNorm::load(
            4,
            1e-5,
            VarBuilder::from_varmap(&candle_nn::VarMap::new(), DType::F32, &dev),
        )
        .unwrap();
        let target = Tensor::randn(0f32, 1.0, (2, 4), &dev).unwrap();
        let y = softmax(&norm.forward(x.as_tensor()).unwrap()).unwrap();
        let loss = (y - target).unwrap().sqr().unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let g = grads.get(x.as_tensor()).expect("a gradient for x");
        assert!(
            g.abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                > 0.0
        );
    }

    #[test]
    fn masked_keys_get_no_attention() {
        let dev = Device::Cpu;
        let vm = candle_nn::VarMap::new();
        let attn = Attention::load(8, 2, VarBuilder::from_varmap(&vm, DType::F32, &dev)).unwrap();
        let x = Tensor::randn(0f32, 1.0, (1, 3, 8), &dev).unwrap();
        let ctx = Tensor::randn(0f32, 1.0, (1, 4, 8), &dev).unwrap();
        let mask = key_mask(&[2], 4, &dev).unwrap();
        let a = attn.forward(&x, Some(&ctx), Some(&mask)).unwrap();
        let b = attn
            .forward(&x, Some(&ctx.narrow(1, 0, 2).unwrap()), None)
            .unwrap();
        assert!(max_diff(&a, &b) < 1e-5);
    }
}
