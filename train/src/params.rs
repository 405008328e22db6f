//! What every run trains with: the variables of a model built on a seeded `VarMap`, AdamW over
//! those the gradients reach, and the update that averages the gradients of a batch's parts,
//! clips them and applies them; the mel normalization as tensors.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use pairalign_models::vq::MelNorm;

use crate::optim::{clip_scale, AdamW, AdamWConfig};
use crate::{Error, Result};

/// A model's variables and the optimizer that moves some of them.
pub(crate) struct Parameters {
    /// Every variable of the model, by its checkpoint name.
    pub(crate) varmap: VarMap,
    /// The variables the gradients train, sorted by name.
    trainable: Vec<Var>,
    /// AdamW over `trainable`.
    pub(crate) opt: AdamW,
}

impl std::fmt::Debug for Parameters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parameters")
            .field("trainable", &self.trainable.len())
            .field("opt", &self.opt)
            .finish_non_exhaustive()
    }
}

impl Parameters {
    /// AdamW with `cfg` over the variables of `varmap` whose names `trained` accepts, in name
    /// order (the order of the optimizer's moments in a checkpoint).
    pub(crate) fn new(
        varmap: VarMap,
        trained: impl Fn(&str) -> bool,
        cfg: AdamWConfig,
    ) -> Result<Self> {
        let mut named: Vec<(String, Var)> = varmap
            .data()
            .lock()
            .map_err(|_| Error::BadConfig("the VarMap lock is poisoned".into()))?
            .iter()
            .filter(|(name, _)| trained(name))
            .map(|(name, var)| (name.clone(), var.clone()))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let trainable = named.iter().map(|(_, v)| v.clone()).collect();
        let opt = AdamW::new(named, cfg)?;
        Ok(Parameters {
            varmap,
            trainable,
            opt,
        })
    }

    /// One optimizer step at learning rate `lr` from the gradients of a batch's parts, each
    /// weighted by its share of the batch (`weights`, summing to 1; a single part is taken as
    /// it is), scaled down to the global norm `clip_grad_norm` when above it (0: no clipping).
    /// Returns the global norm before clipping.
    pub(crate) fn step(
        &mut self,
        mut parts: Vec<GradStore>,
        weights: &[f64],
        clip_grad_norm: f64,
        lr: f64,
    ) -> Result<f64> {
        let (grads, rest) = parts
            .split_first_mut()
            .ok_or_else(|| Error::BadInput("a training step without gradients".into()))?;
        if !rest.is_empty() {
            for var in &self.trainable {
                let mut sum: Option<Tensor> = None;
                let all = std::iter::once(&*grads).chain(rest.iter());
                for (g, w) in all.zip(weights) {
                    if let Some(g) = g.get(var.as_tensor()) {
                        let g = (g * *w)?;
                        sum = Some(match sum {
                            Some(acc) => (acc + g)?,
                            None => g,
                        });
                    }
                }
                if let Some(sum) = sum {
                    grads.insert(var.as_tensor(), sum);
                }
            }
        }
        let (grad_norm, scale) = clip_scale(grads, &self.trainable, clip_grad_norm)?;
        self.opt.step(grads, lr, scale)?;
        Ok(grad_norm)
    }
}

/// The mel statistics of `norm` as `[1, 1, n_mels]` tensors to subtract and divide by (the
/// deviations floored at 1e-5, as the tokenizers do).
pub(crate) fn norm_tensors(
    norm: &MelNorm,
    n_mels: usize,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let mean = Tensor::from_slice(&norm.mean, (1, 1, n_mels), device)?;
    let std: Vec<f32> = norm.std.iter().map(|s| s.max(1e-5)).collect();
    let std = Tensor::from_vec(std, (1, 1, n_mels), device)?;
    Ok((mean, std))
}

/// The value of a scalar tensor.
pub(crate) fn scalar(t: &Tensor) -> Result<f64> {
    Ok(f64::from(t.to_dtype(DType::F32)?.to_scalar::<f32>()?))
}

/// Shares of a batch of `total` rows held by the parts `bounds` (`start..end` row ranges).
pub(crate) fn shares(bounds: &[(usize, usize)], total: usize) -> Vec<f64> {
    bounds
        .iter()
        .map(|&(s, e)| (e - s) as f64 / total as f64)
        .collect()
}
