//! The VQ tokenizer's training objective: the training forward pass (the straight-through
//! estimator), the mel reconstruction and commitment losses over the valid frames of a padded
//! batch, and the codebook's EMA update with dead-code restart (VQ-VAE, van den Oord et al.
//! 2017, appendix A.1; restart as in Jukebox, Dhariwal et al. 2020).

use candle_core::{DType, Tensor};
use pairalign_models::vq::{frame_mask, subsampled_len, Codebook};
use pairalign_models::{VqConfig, VqModel};

use crate::Result;

/// Floor on a cluster size before dividing by it.
const MIN_CLUSTER_SIZE: f64 = 1e-5;
/// The EMA cluster size a restarted code starts from: as if it had been given one vector.
const RESTART_CLUSTER_SIZE: f32 = 1.0;

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

/// Training forward pass of `model` over normalized log-mels `[B, T, n_mels]`; `lens` gives
/// each row's valid frames when the batch is zero-padded (`None`: every row is `T` long). The
/// decoder gets the codes through the straight-through estimator, so the reconstruction
/// gradient reaches the encoder; padded frames count in neither loss.
pub fn forward(model: &VqModel, mel: &Tensor, lens: Option<&[usize]>) -> Result<VqOutput> {
    let (b, t, _) = mel.dims3()?;
    let z = model.encoder.forward(mel, lens)?;
    let (_, t2, d) = z.dims3()?;
    let codes = model.codebook.nearest(&z.reshape((b * t2, d))?)?;
    let q = model.codebook.lookup(&codes)?.reshape((b, t2, d))?;
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
    let recon = model.decoder.forward(&q_st, t)?;
    Ok(VqOutput {
        recon,
        z,
        codes: codes.reshape((b, t2))?,
        commit_loss,
        mask,
        code_lens,
    })
}

/// Reconstruction loss: mean squared error between `out.recon` and `mel` over the valid frames.
pub fn recon_loss(mel: &Tensor, out: &VqOutput) -> Result<Tensor> {
    masked_mse(&out.recon, mel, out.mask.as_ref())
}

/// Training loss: `recon_loss + cfg.commitment_weight * commit_loss`.
pub fn loss(cfg: &VqConfig, mel: &Tensor, out: &VqOutput) -> Result<Tensor> {
    let recon_loss = recon_loss(mel, out)?;
    Ok((recon_loss + (&out.commit_loss * cfg.commitment_weight)?)?)
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

/// One EMA step of `codebook` (built with `cfg`) from a batch: `z` (`[N, D]`, the encoder
/// outputs) assigned to `codes` (`[N]`, u32, from [`Codebook::nearest`]).
///
/// `n_k <- decay n_k + (1 - decay) count_k` and `m_k <- decay m_k + (1 - decay) sum_k`, with
/// `m_k = e_k n_k`; then `e_k = m_k / n_k`. Codes whose `n_k` falls below the dead-code
/// threshold take the batch vectors farthest from their nearest code, farthest first (in
/// turn when there are more dead codes than vectors), and restart with `n_k = 1`.
///
/// The new values are written into the codebook's tensors in place, so a `VarMap` the
/// codebook was loaded from sees them and saves them.
pub fn ema_update(
    codebook: &Codebook,
    cfg: &VqConfig,
    z: &Tensor,
    codes: &Tensor,
) -> Result<EmaStats> {
    let z = to_f32(&z.detach())?;
    let (n, _) = z.dims2()?;
    let k = codebook.size()?;
    let device = z.device().clone();
    let decay = cfg.ema_decay;

    let ids = Tensor::arange(0u32, k as u32, &device)?.unsqueeze(0)?;
    let onehot = codes
        .unsqueeze(1)?
        .broadcast_eq(&ids)?
        .to_dtype(DType::F32)?; // [N, K]
    let counts = onehot.sum(0)?; // [K]
    let sums = onehot.t()?.matmul(&z)?; // [K, D]

    let old_embed = codebook.embed().detach();
    let size = codebook.cluster_size().detach().maximum(MIN_CLUSTER_SIZE)?;
    let mass = old_embed.broadcast_mul(&size.unsqueeze(1)?)?;
    let size = ((size * decay)? + (&counts * (1.0 - decay))?)?;
    let mass = ((mass * decay)? + (sums * (1.0 - decay))?)?;
    let mut embed = mass.broadcast_div(&size.maximum(MIN_CLUSTER_SIZE)?.unsqueeze(1)?)?;
    let mut size = size;

    let counts_host = counts.to_vec1::<f32>()?;
    let size_host = size.to_vec1::<f32>()?;
    let dead: Vec<usize> = (0..k)
        .filter(|&i| f64::from(size_host[i]) < cfg.dead_code_threshold)
        .collect();
    if !dead.is_empty() && n > 0 {
        let (embed_new, size_new) = restart(&z, codes, &old_embed, &dead, &embed, &size)?;
        embed = embed_new;
        size = size_new;
    }
    write_in_place(codebook.embed(), &embed)?;
    write_in_place(codebook.cluster_size(), &size)?;

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

/// `x` as f32 (the dtype of the statistics), without a copy when it already is.
fn to_f32(x: &Tensor) -> Result<Tensor> {
    Ok(if x.dtype() == DType::F32 {
        x.clone()
    } else {
        x.to_dtype(DType::F32)?
    })
}

/// Copies `value` into `target`'s storage.
fn write_in_place(target: &Tensor, value: &Tensor) -> Result<()> {
    let value = value.to_dtype(target.dtype())?.contiguous()?;
    target.slice_set(&value, 0, 0)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use candle_nn::{VarBuilder, VarMap};

    use super::*;

    fn codebook(k: usize, d: usize) -> (VarMap, VqConfig, Codebook) {
        let cfg = VqConfig {
            codebook_size: k,
            code_dim: d,
            ..Default::default()
        };
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
        let cb = Codebook::load(&cfg, vb).unwrap();
        (vm, cfg, cb)
    }

    #[test]
    fn ema_moves_used_code_to_its_mean_and_restarts_dead_ones() {
        let (vm, cfg, cb) = codebook(256, 4);
        // Every vector is the same, so one code takes all of them and the rest are unused.
        let z = Tensor::ones((10, 4), DType::F32, &Device::Cpu).unwrap();
        let codes = cb.nearest(&z).unwrap();
        let used = codes.to_vec1::<u32>().unwrap()[0] as usize;
        let before = cb.embed().to_vec2::<f32>().unwrap()[used].clone();
        let stats = ema_update(&cb, &cfg, &z, &codes).unwrap();
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
