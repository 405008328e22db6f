//! Seeded weight initialization. candle's CPU random generator cannot be seeded, so a fresh
//! `VarMap` differs from run to run; [`seeded_varmap`] draws every initial weight from a ChaCha
//! stream instead, with the distributions the layers ask for, so that one seed gives one model.
//!
//! It lives in the inference crate, not in `pairalign-train`, because an untrained tokenizer
//! of a given seed is built here too ([`crate::PairAlignTokenizer::init_from_vq`]: benchmarks and
//! tests of the shipping size); training starts every run from [`seeded_varmap`].

use std::sync::Mutex;

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::init::NormalOrUniform;
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A `VarMap` backend that creates missing variables from a seeded generator.
struct SeededInit {
    varmap: VarMap,
    rng: Mutex<ChaCha8Rng>,
}

impl SeededInit {
    fn draw(&self, n: usize, init: Init, shape: &Shape) -> candle_core::Result<Vec<f32>> {
        let mut rng = self
            .rng
            .lock()
            .map_err(|_| candle_core::Error::Msg("the init generator lock is poisoned".into()))?;
        let rng = &mut *rng;
        Ok(match init {
            Init::Const(c) => vec![c as f32; n],
            Init::Randn { mean, stdev } => (0..n).map(|_| normal(rng, mean, stdev)).collect(),
            Init::Uniform { lo, up } => (0..n).map(|_| rng.gen_range(lo..up) as f32).collect(),
            Init::Kaiming {
                dist,
                fan,
                non_linearity,
            } => {
                let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
                match dist {
                    NormalOrUniform::Normal => (0..n).map(|_| normal(rng, 0.0, std)).collect(),
                    NormalOrUniform::Uniform => {
                        let bound = 3f64.sqrt() * std;
                        (0..n)
                            .map(|_| rng.gen_range(-bound..bound) as f32)
                            .collect()
                    }
                }
            }
        })
    }
}

/// One draw from N(mean, std^2) by Box-Muller; `1 - u` keeps the logarithm finite.
fn normal(rng: &mut ChaCha8Rng, mean: f64, std: f64) -> f32 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen::<f64>();
    (mean + std * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

impl SimpleBackend for SeededInit {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let data = self.varmap.data();
        let mut vars = data
            .lock()
            .map_err(|_| candle_core::Error::Msg("the VarMap lock is poisoned".into()))?;
        if let Some(var) = vars.get(name) {
            let t = var.as_tensor();
            if t.shape() != &s {
                candle_core::bail!("shape mismatch for {name}: {:?} vs {s:?}", t.shape());
            }
            return Ok(t.clone());
        }
        let values = self.draw(s.elem_count(), h, &s)?;
        let var = Var::from_tensor(&Tensor::from_vec(values, s, dev)?.to_dtype(dtype)?)?;
        let t = var.as_tensor().clone();
        vars.insert(name.to_string(), var);
        Ok(t)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!("{name}: a seeded init needs the shape of every tensor")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap
            .data()
            .lock()
            .is_ok_and(|vars| vars.contains_key(name))
    }
}

/// A `VarBuilder` that fills `varmap` with weights drawn from `seed`: building the same model
/// twice with the same seed gives the same weights.
pub fn seeded_varmap(varmap: &VarMap, seed: u64, device: &Device) -> VarBuilder<'static> {
    let backend: Box<dyn SimpleBackend> = Box::new(SeededInit {
        varmap: varmap.clone(),
        rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
    });
    VarBuilder::from_backend(backend, DType::F32, device.clone())
}

/// A copy of every variable in `varmap`, by name: a snapshot later optimizer steps do not change
/// (what a tokenizer is frozen from at the end of training).
pub(crate) fn snapshot_weights(
    varmap: &VarMap,
) -> crate::Result<std::collections::BTreeMap<String, Tensor>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| crate::Error::BadConfig("the VarMap lock is poisoned".into()))?;
    data.iter()
        .map(|(name, var)| Ok((name.clone(), var.as_tensor().copy()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{VqConfig, VqModel};

    fn weights(seed: u64) -> Vec<(String, Vec<f32>)> {
        let vm = VarMap::new();
        VqModel::load(&VqConfig::default(), seeded_varmap(&vm, seed, &Device::Cpu)).unwrap();
        let data = vm.data().lock().unwrap();
        let mut out: Vec<(String, Vec<f32>)> = data
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_tensor().flatten_all().unwrap().to_vec1().unwrap(),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn same_seed_same_weights_other_seed_other_weights() {
        let a = weights(1);
        assert_eq!(a, weights(1));
        let b = weights(2);
        assert_eq!(a.len(), b.len());
        assert_ne!(a, b);
    }

    #[test]
    fn draws_follow_the_requested_distributions() {
        let vm = VarMap::new();
        let vb = seeded_varmap(&vm, 7, &Device::Cpu);
        let n = 20_000;
        let stats = |t: Tensor| {
            let v: Vec<f32> = t.to_vec1().unwrap();
            let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64;
            let var = v
                .iter()
                .map(|&x| (f64::from(x) - mean).powi(2))
                .sum::<f64>()
                / n as f64;
            (mean, var.sqrt(), v)
        };
        let (mean, std, _) = stats(
            vb.get_with_hints(
                n,
                "normal",
                Init::Randn {
                    mean: 1.0,
                    stdev: 2.0,
                },
            )
            .unwrap(),
        );
        assert!(
            (mean - 1.0).abs() < 0.05 && (std - 2.0).abs() < 0.05,
            "{mean} {std}"
        );
        let (mean, _, v) = stats(
            vb.get_with_hints(n, "uniform", Init::Uniform { lo: -0.5, up: 0.25 })
                .unwrap(),
        );
        assert!(v.iter().all(|&x| (-0.5..0.25).contains(&x)));
        assert!((mean + 0.125).abs() < 0.01, "{mean}");
        let (_, _, v) = stats(vb.get_with_hints(n, "const", Init::Const(3.0)).unwrap());
        assert!(v.iter().all(|&x| x == 3.0));
        // A second get of the same name returns the same variable, not a new draw.
        let again = vb.get_with_hints(n, "normal", Init::Const(0.0)).unwrap();
        assert_eq!(
            again.to_vec1::<f32>().unwrap()[..10],
            stats(vm.data().lock().unwrap()["normal"].as_tensor().clone()).2[..10]
        );
    }
}
