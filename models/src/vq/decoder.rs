//! `Decoder`: quantized 50 Hz vectors -> the normalized 100 Hz log-mel, for the reconstruction
//! loss that trains the encoder and the codebook.

use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};

use super::layers::{Conv1d, ResBlock};
use super::VqConfig;
use crate::Result;

/// `conv_in` (code_dim -> channels) -> `layers.{i}` at 50 Hz -> nearest x2 upsampling ->
/// `conv_up` -> `proj` to `n_mels`. Training batches are unpadded clips, so it takes no mask.
#[derive(Clone, Debug)]
pub struct Decoder {
    conv_in: Conv1d,
    layers: Vec<ResBlock>,
    conv_up: Conv1d,
    proj: Conv1d,
}

impl Decoder {
    /// Weights under `vb`: `conv_in`, `layers.{i}`, `conv_up`, `proj`.
    pub fn load(cfg: &VqConfig, vb: VarBuilder) -> Result<Self> {
        let c = cfg.channels;
        let layers = (0..cfg.decoder_layers)
            .map(|i| ResBlock::load(cfg, vb.pp("layers").pp(i)))
            .collect::<Result<_>>()?;
        Ok(Decoder {
            conv_in: Conv1d::load(cfg.code_dim, c, cfg.kernel_size, 1, vb.pp("conv_in"))?,
            layers,
            conv_up: Conv1d::load(c, c, cfg.kernel_size, 1, vb.pp("conv_up"))?,
            proj: small_conv1d(c, cfg.n_mels, vb.pp("proj"))?,
        })
    }

    /// `q`: `[B, T2, code_dim]`; returns `[B, n_frames, n_mels]` with `n_frames <= 2 * T2`
    /// (the mel length the codes came from).
    pub fn forward(&self, q: &Tensor, n_frames: usize) -> Result<Tensor> {
        let (b, t2, _) = q.dims3()?;
        let mut x = crate::ops::gelu(&self.conv_in.forward(&q.transpose(1, 2)?)?)?;
        for layer in &self.layers {
            x = layer.forward(&x, None)?;
        }
        let c = x.dim(1)?;
        // Nearest-neighbour upsampling: each 50 Hz frame becomes two 100 Hz frames.
        let x = x
            .unsqueeze(3)?
            .broadcast_as((b, c, t2, 2))?
            .reshape((b, c, 2 * t2))?
            .narrow(2, 0, n_frames.min(2 * t2))?;
        let x = crate::ops::gelu(&self.conv_up.forward(&x)?)?;
        Ok(self.proj.forward(&x)?.transpose(1, 2)?)
    }
}

/// A pointwise conv whose fresh init is near zero, so that an untrained decoder predicts about
/// the mean (0 after normalization) instead of a loss dominated by its random output scale.
fn small_conv1d(c_in: usize, c_out: usize, vb: VarBuilder) -> Result<Conv1d> {
    let init = Init::Randn {
        mean: 0.0,
        stdev: 0.02,
    };
    let weight = vb.get_with_hints((c_out, c_in, 1), "weight", init)?;
    let bias = vb.get_with_hints(c_out, "bias", Init::Const(0.0))?;
    Ok(Conv1d::new(weight, bias, 1))
}
