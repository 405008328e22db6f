//! `Codebook`: nearest-code quantization (VQ-VAE, van den Oord et al. 2017). Its EMA training
//! with dead-code restart is `pairalign_train::vq::ema_update`.

use candle_core::{Tensor, D};
use candle_nn::{Init, VarBuilder};

use super::layers::to_f32;
use super::VqConfig;
use crate::Result;

/// The code vectors and their EMA statistics. Weights: `embed` `[K, D]` (the codes) and
/// `cluster_size` `[K]` (the EMA count of vectors assigned per step). The EMA sum of assigned
/// vectors is `embed * cluster_size`, so it is not stored. No gradient reaches either: they move
/// by the trainer's EMA update only (`pairalign_train::vq::ema_update`), which writes into these
/// tensors in place.
#[derive(Clone, Debug)]
pub struct Codebook {
    embed: Tensor,
    cluster_size: Tensor,
}

impl Codebook {
    /// Weights `embed` and `cluster_size` under `vb`; a fresh init draws codes from N(0, 1) and
    /// gives each a cluster size of 1.
    pub fn load(cfg: &VqConfig, vb: VarBuilder) -> Result<Self> {
        let k = cfg.codebook_size;
        let embed = vb.get_with_hints(
            (k, cfg.code_dim),
            "embed",
            Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        )?;
        let cluster_size = vb.get_with_hints(k, "cluster_size", Init::Const(1.0))?;
        Ok(Codebook {
            embed,
            cluster_size,
        })
    }

    /// The code vectors, `[K, D]`.
    pub fn embed(&self) -> &Tensor {
        &self.embed
    }

    /// The EMA cluster sizes, `[K]`.
    pub fn cluster_size(&self) -> &Tensor {
        &self.cluster_size
    }

    /// Number of codes `K`.
    pub fn size(&self) -> Result<usize> {
        Ok(self.embed.dim(0)?)
    }

    /// Index (u32) of the nearest code by L2 distance for each row of `z` (`[N, D]`); ties go to
    /// the lowest index.
    pub fn nearest(&self, z: &Tensor) -> Result<Tensor> {
        let e = self.embed.detach();
        // ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2, and ||z||^2 does not change the argmin.
        let e_sq = e.sqr()?.sum(1)?.unsqueeze(0)?;
        let dist = e_sq.broadcast_sub(&(to_f32(z)?.matmul(&e.t()?)? * 2.0)?)?;
        Ok(dist.argmin(D::Minus1)?)
    }

    /// The code vectors of `codes` (u32, any shape `S`), shape `S x D`, detached.
    pub fn lookup(&self, codes: &Tensor) -> Result<Tensor> {
        let flat = codes.flatten_all()?;
        let mut shape = codes.dims().to_vec();
        shape.push(self.embed.dim(1)?);
        Ok(self.embed.detach().index_select(&flat, 0)?.reshape(shape)?)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::{VarBuilder, VarMap};

    use super::*;

    fn codebook(k: usize, d: usize) -> (VarMap, Codebook) {
        let cfg = VqConfig {
            codebook_size: k,
            code_dim: d,
            ..Default::default()
        };
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
        let cb = Codebook::load(&cfg, vb).unwrap();
        (vm, cb)
    }

    #[test]
    fn nearest_matches_brute_force() {
        let (_, cb) = codebook(256, 8);
        let z = Tensor::randn(0f32, 1.0, (100, 8), &Device::Cpu).unwrap();
        let got = cb.nearest(&z).unwrap().to_vec1::<u32>().unwrap();
        let e = cb.embed().to_vec2::<f32>().unwrap();
        let zs = z.to_vec2::<f32>().unwrap();
        for (row, &code) in zs.iter().zip(&got) {
            let dist =
                |c: &Vec<f32>| -> f32 { row.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum() };
            let best = e.iter().map(dist).fold(f32::INFINITY, f32::min);
            assert!((dist(&e[code as usize]) - best).abs() < 1e-4);
        }
    }
}
