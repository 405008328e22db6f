//! AdamW whose moments can be saved and restored (candle-nn's `AdamW` keeps them private), so a
//! resumed run continues exactly where it stopped; and gradient clipping by global norm.

use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Hyper-parameters of [`AdamW`] (Loshchilov and Hutter 2019, "Decoupled weight decay
/// regularization", algorithm 2). The learning rate comes from the schedule at each step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamWConfig {
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub eps: f64,
    /// Decoupled weight decay, applied to matrices and conv kernels only (not to biases and
    /// norms, whose scale carries no capacity).
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// One optimized parameter and its moments.
#[derive(Debug)]
struct Param {
    name: String,
    var: Var,
    m: Tensor,
    v: Tensor,
    decay: bool,
}

/// AdamW over named variables. Variables that get no gradient in a step (for example a
/// codebook trained by EMA) are left alone.
#[derive(Debug)]
pub struct AdamW {
    params: Vec<Param>,
    cfg: AdamWConfig,
    step: u64,
}

impl AdamW {
    /// Optimizes `vars` (name, variable). Weight decay applies to variables of rank 2 or more.
    pub fn new(vars: Vec<(String, Var)>, cfg: AdamWConfig) -> Result<Self> {
        let params = vars
            .into_iter()
            .map(|(name, var)| {
                let m = var.zeros_like()?;
                let v = var.zeros_like()?;
                let decay = var.rank() >= 2;
                Ok(Param {
                    name,
                    var,
                    m,
                    v,
                    decay,
                })
            })
            .collect::<Result<_>>()?;
        Ok(AdamW {
            params,
            cfg,
            step: 0,
        })
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// One update with learning rate `lr`, each gradient multiplied by `grad_scale` first (the
    /// factor from [`clip_scale`]).
    pub fn step(&mut self, grads: &GradStore, lr: f64, grad_scale: f64) -> Result<()> {
        self.step += 1;
        let AdamWConfig {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.cfg;
        let t = self.step as i32;
        let bias1 = 1.0 - beta1.powi(t);
        let bias2 = 1.0 - beta2.powi(t);
        for p in &mut self.params {
            let Some(g) = grads.get(p.var.as_tensor()) else {
                continue;
            };
            let g = if grad_scale == 1.0 {
                g.clone()
            } else {
                (g * grad_scale)?
            };
            p.m = ((&p.m * beta1)? + (&g * (1.0 - beta1))?)?;
            p.v = ((&p.v * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let m_hat = (&p.m / bias1)?;
            let v_hat = (&p.v / bias2)?;
            let update = (m_hat / (v_hat.sqrt()? + eps)?)?;
            let theta = p.var.as_tensor();
            let decayed = if p.decay && weight_decay > 0.0 {
                (theta * (1.0 - lr * weight_decay))?
            } else {
                theta.clone()
            };
            p.var.set(&(decayed - (update * lr)?)?)?;
        }
        Ok(())
    }

    /// The moments as named tensors (`m.<name>`, `v.<name>`), for a checkpoint.
    pub fn state(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for p in &self.params {
            out.insert(format!("m.{}", p.name), p.m.clone());
            out.insert(format!("v.{}", p.name), p.v.clone());
        }
        out
    }

    /// Restores the moments saved by [`AdamW::state`] and the step count. Every parameter's
    /// moments must be present with the parameter's shape.
    pub fn restore(&mut self, state: &BTreeMap<String, Tensor>, step: u64) -> Result<()> {
        for p in &mut self.params {
            for (key, slot) in [("m", &mut p.m), ("v", &mut p.v)] {
                let name = format!("{key}.{}", p.name);
                let t = state.get(&name).ok_or_else(|| {
                    Error::BadCheckpoint(format!("optimizer state has no tensor {name}"))
                })?;
                if t.dims() != p.var.dims() {
                    return Err(Error::BadCheckpoint(format!(
                        "optimizer tensor {name} has shape {:?}, the parameter {:?}",
                        t.dims(),
                        p.var.dims()
                    )));
                }
                *slot = t.to_dtype(p.var.dtype())?.to_device(p.var.device())?;
            }
        }
        self.step = step;
        Ok(())
    }
}

/// The global L2 norm of the gradients of `vars` and the factor that brings it down to
/// `max_norm` (1 when it is already below, or when `max_norm` is not positive).
pub fn clip_scale(grads: &GradStore, vars: &[Var], max_norm: f64) -> Result<(f64, f64)> {
    let mut sum = 0f64;
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            sum += f64::from(
                g.sqr()?
                    .sum_all()?
                    .to_dtype(candle_core::DType::F32)?
                    .to_scalar::<f32>()?,
            );
        }
    }
    let norm = sum.sqrt();
    let scale = if max_norm > 0.0 && norm > max_norm {
        max_norm / norm
    } else {
        1.0
    };
    Ok((norm, scale))
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;

    /// One parameter, loss = sum(w * x): the gradient is x, so the update is computable by hand.
    #[test]
    fn first_steps_match_the_formula() {
        let dev = Device::Cpu;
        let w = Var::from_vec(vec![1.0f32, -2.0, 0.5, 3.0], (2, 2), &dev).unwrap();
        let x = Tensor::from_vec(vec![0.5f32, -1.0, 2.0, 0.0], (2, 2), &dev).unwrap();
        let cfg = AdamWConfig {
            weight_decay: 0.1,
            ..Default::default()
        };
        let mut opt = AdamW::new(vec![("w".into(), w.clone())], cfg.clone()).unwrap();
        let lr = 0.01;
        let mut expect: Vec<f64> = vec![1.0, -2.0, 0.5, 3.0];
        let g: Vec<f64> = vec![0.5, -1.0, 2.0, 0.0];
        let (mut m, mut v) = (vec![0.0; 4], vec![0.0; 4]);
        for t in 1..=3 {
            let loss = (w.as_tensor() * &x).unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            opt.step(&grads, lr, 1.0).unwrap();
            for i in 0..4 {
                m[i] = cfg.beta1 * m[i] + (1.0 - cfg.beta1) * g[i];
                v[i] = cfg.beta2 * v[i] + (1.0 - cfg.beta2) * g[i] * g[i];
                let mh = m[i] / (1.0 - cfg.beta1.powi(t));
                let vh = v[i] / (1.0 - cfg.beta2.powi(t));
                expect[i] =
                    expect[i] * (1.0 - lr * cfg.weight_decay) - lr * mh / (vh.sqrt() + cfg.eps);
            }
            let got = w
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            for (a, b) in got.iter().zip(&expect) {
                assert!(
                    (f64::from(*a) - b).abs() < 1e-5,
                    "step {t}: {got:?} vs {expect:?}"
                );
            }
        }
        assert_eq!(opt.steps(), 3);
    }

    #[test]
    fn restored_state_continues_identically() {
        let dev = Device::Cpu;
        let x = Tensor::from_vec(vec![0.3f32, -0.7, 1.1], 3, &dev).unwrap();
        let run = |split: Option<usize>| {
            let w = Var::from_vec(vec![0.1f32, 0.2, 0.3], 3, &dev).unwrap();
            let mut opt =
                AdamW::new(vec![("w".into(), w.clone())], AdamWConfig::default()).unwrap();
            for i in 0..6 {
                if split == Some(i) {
                    let state = opt.state();
                    let step = opt.steps();
                    opt =
                        AdamW::new(vec![("w".into(), w.clone())], AdamWConfig::default()).unwrap();
                    opt.restore(&state, step).unwrap();
                }
                let loss = (w.as_tensor() * &x)
                    .unwrap()
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap();
                opt.step(&loss.backward().unwrap(), 0.05, 1.0).unwrap();
            }
            w.as_tensor().to_vec1::<f32>().unwrap()
        };
        assert_eq!(run(None), run(Some(3)));
        // A fresh optimizer without the state does not continue the same way.
        let w = Var::from_vec(vec![0.1f32, 0.2, 0.3], 3, &dev).unwrap();
        let mut opt = AdamW::new(vec![("w".into(), w.clone())], AdamWConfig::default()).unwrap();
        let mut missing = BTreeMap::new();
        missing.insert(
            "m.w".to_string(),
            Tensor::zeros(3, DType::F32, &dev).unwrap(),
        );
        assert!(matches!(
            opt.restore(&missing, 1),
            Err(Error::BadCheckpoint(_))
        ));
        missing.insert(
            "v.w".to_string(),
            Tensor::zeros(4, DType::F32, &dev).unwrap(),
        );
        assert!(matches!(
            opt.restore(&missing, 1),
            Err(Error::BadCheckpoint(_))
        ));
    }

    #[test]
    fn clipping_scales_to_the_max_norm() {
        let dev = Device::Cpu;
        let w = Var::from_vec(vec![0.0f32, 0.0], 2, &dev).unwrap();
        let x = Tensor::from_vec(vec![3.0f32, 4.0], 2, &dev).unwrap();
        let grads = (w.as_tensor() * &x)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let (norm, scale) = clip_scale(&grads, std::slice::from_ref(&w), 1.0).unwrap();
        assert!((norm - 5.0).abs() < 1e-6);
        assert!((scale - 0.2).abs() < 1e-9);
        let (_, scale) = clip_scale(&grads, &[w], 10.0).unwrap();
        assert_eq!(scale, 1.0);
    }
}
