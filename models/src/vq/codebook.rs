//! `Codebook`: nearest-code quantization and its EMA training with dead-code restart
//! (VQ-VAE, van den Oord et al. 2017, appendix A.1; restart as in Jukebox, Dhariwal et al. 2020).

use candle_core::{DType, Tensor, D};
use candle_nn::{Init, VarBuilder};

use super::layers::to_f32;
use super::VqConfig;
use crate::Result;

/// Floor on a cluster size before dividing by it.
const MIN_CLUSTER_SIZE: f64 = 1e-5;
/// The EMA cluster size a restarted code starts from: as if it had been given one vector.
const RESTART_CLUSTER_SIZE: f32 = 1.0;

/// What one EMA update saw and did, for the training log.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EmaStats {
    /// `exp` of the entropy of the batch's code distribution: the effective number of codes.
    pub perplexity: f32,
    /// Codes assigned to at least one vector of the batch.
    pub used_codes: usize,
    /// Codes restarted from batch vectors because their cluster size fell below the threshold.
    pub restarted: usize,
}

/// The code vectors and their EMA statistics. Weights: `embed` `[K, D]` (the codes) and
/// `cluster_size` `[K]` (the EMA count of vectors assigned per step). The EMA sum of assigned
/// vectors is `embed * cluster_size`, so it is not stored. No gradient reaches either: they move
/// by [`Codebook::ema_update`] only.
#[derive(Clone, Debug)]
pub struct Codebook {
    embed: Tensor,
    cluster_size: Tensor,
    decay: f64,
    dead_code_threshold: f64,
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
            decay: cfg.ema_decay,
            dead_code_threshold: cfg.dead_code_threshold,
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

    /// One EMA step from a batch: `z` (`[N, D]`, the encoder outputs) assigned to `codes`
    /// (`[N]`, u32, from [`Codebook::nearest`]).
    ///
    /// `n_k <- decay n_k + (1 - decay) count_k` and `m_k <- decay m_k + (1 - decay) sum_k`, with
    /// `m_k = e_k n_k`; then `e_k = m_k / n_k`. Codes whose `n_k` falls below the dead-code
    /// threshold take the batch vectors farthest from their nearest code, farthest first (in
    /// turn when there are more dead codes than vectors), and restart with `n_k = 1`.
    ///
    /// The new values are written into the existing tensors in place, so a `VarMap` the codebook
    /// was loaded from sees them and saves them.
    pub fn ema_update(&mut self, z: &Tensor, codes: &Tensor) -> Result<EmaStats> {
        let z = to_f32(&z.detach())?;
        let (n, _) = z.dims2()?;
        let k = self.size()?;
        let device = z.device().clone();
        let decay = self.decay;

        let ids = Tensor::arange(0u32, k as u32, &device)?.unsqueeze(0)?;
        let onehot = codes
            .unsqueeze(1)?
            .broadcast_eq(&ids)?
            .to_dtype(DType::F32)?; // [N, K]
        let counts = onehot.sum(0)?; // [K]
        let sums = onehot.t()?.matmul(&z)?; // [K, D]

        let old_embed = self.embed.detach();
        let size = self.cluster_size.detach().maximum(MIN_CLUSTER_SIZE)?;
        let mass = old_embed.broadcast_mul(&size.unsqueeze(1)?)?;
        let size = ((size * decay)? + (&counts * (1.0 - decay))?)?;
        let mass = ((mass * decay)? + (sums * (1.0 - decay))?)?;
        let mut embed = mass.broadcast_div(&size.maximum(MIN_CLUSTER_SIZE)?.unsqueeze(1)?)?;
        let mut size = size;

        let counts_host = counts.to_vec1::<f32>()?;
        let size_host = size.to_vec1::<f32>()?;
        let dead: Vec<usize> = (0..k)
            .filter(|&i| f64::from(size_host[i]) < self.dead_code_threshold)
            .collect();
        if !dead.is_empty() && n > 0 {
            let (embed_new, size_new) =
                self.restart(&z, codes, &old_embed, &dead, &embed, &size)?;
            embed = embed_new;
            size = size_new;
        }
        write_in_place(&self.embed, &embed)?;
        write_in_place(&self.cluster_size, &size)?;

        let total: f32 = counts_host.iter().sum();
        let entropy: f32 = counts_host
            .iter()
            .filter(|&&c| c > 0.0)
            .map(|&c| {
                let p = c / total;
                -p * p.ln()
            })
            .sum();
        Ok(EmaStats {
            perplexity: entropy.exp(),
            used_codes: counts_host.iter().filter(|&&c| c > 0.0).count(),
            restarted: if n > 0 { dead.len() } else { 0 },
        })
    }

    /// Replaces the `dead` rows of `embed` by the batch vectors farthest from their codes, and
    /// their sizes by [`RESTART_CLUSTER_SIZE`].
    fn restart(
        &self,
        z: &Tensor,
        codes: &Tensor,
        old_embed: &Tensor,
        dead: &[usize],
        embed: &Tensor,
        size: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let device = z.device();
        let k = embed.dim(0)?;
        let err = (z - old_embed.index_select(codes, 0)?)?
            .sqr()?
            .sum(1)?
            .to_vec1::<f32>()?;
        let mut order: Vec<u32> = (0..err.len() as u32).collect();
        // Farthest first; the index breaks ties so that the order is deterministic.
        order.sort_by(|&a, &b| err[b as usize].total_cmp(&err[a as usize]).then(a.cmp(&b)));
        let mut source = vec![0u32; k];
        let mut is_dead = vec![0u8; k];
        for (j, &code) in dead.iter().enumerate() {
            source[code] = order[j % order.len()];
            is_dead[code] = 1;
        }
        let is_dead = Tensor::from_vec(is_dead, k, device)?;
        let source = Tensor::from_vec(source, k, device)?;
        let replacement = z.index_select(&source, 0)?;
        let embed = is_dead
            .unsqueeze(1)?
            .broadcast_as(embed.shape())?
            .where_cond(&replacement, embed)?;
        let size = is_dead.where_cond(&Tensor::full(RESTART_CLUSTER_SIZE, k, device)?, size)?;
        Ok((embed, size))
    }
}

/// Copies `value` into `target`'s storage.
fn write_in_place(target: &Tensor, value: &Tensor) -> Result<()> {
    let value = value.to_dtype(target.dtype())?.contiguous()?;
    target.slice_set(&value, 0, 0)?;
    Ok(())
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

    #[test]
    fn ema_moves_used_code_to_its_mean_and_restarts_dead_ones() {
        let (vm, mut cb) = codebook(256, 4);
        // Every vector is the same, so one code takes all of them and the rest are unused.
        let z = Tensor::ones((10, 4), DType::F32, &Device::Cpu).unwrap();
        let codes = cb.nearest(&z).unwrap();
        let used = codes.to_vec1::<u32>().unwrap()[0] as usize;
        let before = cb.embed().to_vec2::<f32>().unwrap()[used].clone();
        let stats = cb.ema_update(&z, &codes).unwrap();
        assert_eq!(stats.used_codes, 1);
        assert!((stats.perplexity - 1.0).abs() < 1e-5);
        assert_eq!(stats.restarted, 255);
        let embed = cb.embed().to_vec2::<f32>().unwrap();
        let sizes = cb.cluster_size().to_vec1::<f32>().unwrap();
        // n = 0.99 * 1 + 0.01 * 10; e = (0.99 * e_old + 0.01 * 10 * 1) / n.
        let n = 0.99 + 0.1;
        assert!((sizes[used] - n).abs() < 1e-5);
        for (x, b) in embed[used].iter().zip(&before) {
            assert!((x - (0.99 * b + 0.1) / n).abs() < 1e-5);
        }
        for (i, row) in embed.iter().enumerate() {
            if i != used {
                assert_eq!(
                    row,
                    &vec![1.0; 4],
                    "dead code {i} restarts from a batch vector"
                );
                assert_eq!(sizes[i], RESTART_CLUSTER_SIZE);
            }
        }
        // The VarMap holds the updated values too.
        let data = vm.data().lock().unwrap();
        let stored = data["embed"].to_vec2::<f32>().unwrap();
        assert_eq!(stored, embed);
    }
}
