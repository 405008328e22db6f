//! `PairAlignModel`: the VQ encoder, the conditioner that turns its output into the condition,
//! and the autoregressive decoder with its LM and timing heads; the teacher-forced forward
//! (public for the training losses of `pairalign-train`), and `init_from_vq`.
//!
//! Timing recovery uses a small head on the decoder state rather than the cross-attention
//! weights: the head gets direct supervision for free (the VQ-derived targets carry the start
//! time of each token's run, issue 8 component 7), its error can be measured and trained down,
//! and it costs one tiny MLP per step; cross-attention of a multi-head decoder is not bound to
//! be sharp or to peak at a token's start, so times read from it would need extra constraints
//! (monotonic or guided attention) to be trusted. The head reads the state at the position where
//! the token is the *input*, so it sees the token itself and everything before it, and every
//! emitted token's time is ready by the step that emits the next token or EOS.

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Embedding, Init, Linear, Module, VarBuilder, VarMap};

use super::layers::{
    apply, band_mask, causal_mask, key_mask, linear, sinusoids, Attention, LayerNorm, Mlp,
};
use super::PairAlignConfig;
use crate::vq::{subsampled_len, Encoder, CODE_FRAME_MS};
use crate::{Error, Result, VqTokenizer};

/// Standard deviation of the token and position embeddings at init (GPT-2's 0.02).
const EMBED_INIT_STD: f64 = 0.02;

/// The condition of a batch of clips: what the decoder attends to.
#[derive(Clone, Debug)]
pub struct Condition {
    /// `[B, T, d_model]` at 50 Hz; frames past `lens[b]` are padding.
    pub states: Tensor,
    /// Valid 50 Hz frames of each row.
    pub lens: Vec<usize>,
    /// `[B, 1, 1, T]` additive key mask: 0 on valid frames, `-inf` on padding.
    pub mask: Tensor,
}

impl Condition {
    /// Rows `rows` of the batch (a row may repeat), e.g. every clip's condition once per
    /// target for the likelihood contrast, or the other view's for cross-paired teacher
    /// forcing.
    pub fn select(&self, rows: &[usize]) -> Result<Condition> {
        let device = self.states.device();
        let idx: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        let idx = Tensor::from_vec(idx, rows.len(), device)?;
        let lens = rows
            .iter()
            .map(|&r| {
                self.lens.get(r).copied().ok_or_else(|| {
                    Error::BadInput(format!("row {r} of a condition of {}", self.lens.len()))
                })
            })
            .collect::<Result<_>>()?;
        Ok(Condition {
            states: self.states.index_select(&idx, 0)?,
            lens,
            mask: self.mask.index_select(&idx, 0)?,
        })
    }

    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// True for a batch of no rows.
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }
}

/// A pre-norm transformer layer over the condition: `x + attn(norm_1(x))`, then
/// `x + mlp(norm_2(x))`.
#[derive(Clone, Debug)]
pub struct ConditionLayer {
    norm_1: LayerNorm,
    attn: Attention,
    norm_2: LayerNorm,
    mlp: Mlp,
}

impl ConditionLayer {
    /// Weights `norm_1`, `attn`, `norm_2`, `mlp`.
    pub fn load(cfg: &PairAlignConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.d_model;
        Ok(ConditionLayer {
            norm_1: LayerNorm::load(d, cfg.layer_norm_eps, vb.pp("norm_1"))?,
            attn: Attention::load(d, cfg.heads, vb.pp("attn"))?,
            norm_2: LayerNorm::load(d, cfg.layer_norm_eps, vb.pp("norm_2"))?,
            mlp: Mlp::load(d, cfg.ff_dim, d, vb.pp("mlp"))?,
        })
    }

    /// `x`: `[B, T, d]`; `mask`: the `[B, 1, 1, T]` key mask, or a `[B, 1, T, T]` one.
    pub fn forward(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let x = (x + self
            .attn
            .forward(&self.norm_1.forward(x)?, None, Some(mask))?)?;
        Ok((&x + self.mlp.forward(&self.norm_2.forward(&x)?)?)?)
    }
}

/// Encoder output -> condition: `proj` to `d_model`, sinusoidal positions, `layers.{i}`,
/// `norm`.
#[derive(Clone, Debug)]
pub struct Conditioner {
    proj: Linear,
    layers: Vec<ConditionLayer>,
    norm: LayerNorm,
    d_model: usize,
    window: usize,
    positions: bool,
}

impl Conditioner {
    /// Weights `proj`, `layers.{i}`, `norm`.
    pub fn load(cfg: &PairAlignConfig, vb: VarBuilder) -> Result<Self> {
        let layers = (0..cfg.cond_layers)
            .map(|i| ConditionLayer::load(cfg, vb.pp("layers").pp(i)))
            .collect::<Result<_>>()?;
        Ok(Conditioner {
            proj: linear(cfg.encoder.code_dim, cfg.d_model, vb.pp("proj"))?,
            layers,
            norm: LayerNorm::load(cfg.d_model, cfg.layer_norm_eps, vb.pp("norm"))?,
            d_model: cfg.d_model,
            window: cfg.cond_window,
            positions: cfg.absolute_positions,
        })
    }

    /// `z`: encoder output `[B, T, code_dim]`; `lens`: valid frames of each row.
    pub fn forward(&self, z: &Tensor, lens: &[usize]) -> Result<Condition> {
        let (_, t, _) = z.dims3()?;
        let device = z.device();
        let mask = key_mask(lens, t, device)?;
        let mut x = apply(&self.proj, z)?;
        if self.positions {
            x = x.broadcast_add(&sinusoids(t, self.d_model, device)?)?;
        }
        let self_mask = if self.window > 0 && !self.layers.is_empty() {
            band_mask(lens, t, self.window, device)?
        } else {
            mask.clone()
        };
        for layer in &self.layers {
            x = layer.forward(&x, &self_mask)?;
        }
        Ok(Condition {
            states: self.norm.forward(&x)?,
            lens: lens.to_vec(),
            mask,
        })
    }
}

/// Keys and values of one decoder layer during decoding: self-attention ones grow by one
/// position per step, cross-attention ones are computed once per clip.
#[derive(Clone, Debug)]
pub(crate) struct LayerCache {
    pub(crate) self_k: Option<Tensor>,
    pub(crate) self_v: Option<Tensor>,
    pub(crate) cross_k: Tensor,
    pub(crate) cross_v: Tensor,
}

/// A pre-norm decoder layer: causal self-attention, cross-attention over the condition, MLP,
/// each `x + block(norm(x))`.
#[derive(Clone, Debug)]
pub struct DecoderLayer {
    norm_self: LayerNorm,
    self_attn: Attention,
    norm_cross: LayerNorm,
    cross_attn: Attention,
    norm_mlp: LayerNorm,
    mlp: Mlp,
}

impl DecoderLayer {
    /// Weights `norm_self`, `self_attn`, `norm_cross`, `cross_attn`, `norm_mlp`, `mlp`.
    pub fn load(cfg: &PairAlignConfig, vb: VarBuilder) -> Result<Self> {
        let (d, eps) = (cfg.d_model, cfg.layer_norm_eps);
        Ok(DecoderLayer {
            norm_self: LayerNorm::load(d, eps, vb.pp("norm_self"))?,
            self_attn: Attention::load(d, cfg.heads, vb.pp("self_attn"))?,
            norm_cross: LayerNorm::load(d, eps, vb.pp("norm_cross"))?,
            cross_attn: Attention::load(d, cfg.heads, vb.pp("cross_attn"))?,
            norm_mlp: LayerNorm::load(d, eps, vb.pp("norm_mlp"))?,
            mlp: Mlp::load(d, cfg.ff_dim, d, vb.pp("mlp"))?,
        })
    }

    /// Teacher-forced: `x` `[B, L, d]`, `causal` the `[1, 1, L, L]` mask, `cross_mask` the
    /// condition's key mask with the alignment prior (`[B, 1, L or 1, T]`).
    pub fn forward(
        &self,
        x: &Tensor,
        causal: &Tensor,
        cond: &Condition,
        cross_mask: &Tensor,
    ) -> Result<Tensor> {
        let x = (x + self
            .self_attn
            .forward(&self.norm_self.forward(x)?, None, Some(causal))?)?;
        let x = (&x
            + self.cross_attn.forward(
                &self.norm_cross.forward(&x)?,
                Some(&cond.states),
                Some(cross_mask),
            )?)?;
        Ok((&x + self.mlp.forward(&self.norm_mlp.forward(&x)?)?)?)
    }

    /// The cross-attention keys and values of `cond`, once per clip.
    pub(crate) fn start_cache(&self, cond: &Condition) -> Result<LayerCache> {
        let (cross_k, cross_v) = self.cross_attn.keys_values(&cond.states)?;
        Ok(LayerCache {
            self_k: None,
            self_v: None,
            cross_k,
            cross_v,
        })
    }

    /// One decoding step: `x` `[B, 1, d]` is the newest position; its keys and values are
    /// appended to `cache`, and it attends to every cached position (all earlier, so no causal
    /// mask is needed) and to the condition (`cond_mask`).
    /// With `context > 0` only the last `context` earlier positions stay in the cache.
    pub(crate) fn step(
        &self,
        x: &Tensor,
        cache: &mut LayerCache,
        cond_mask: &Tensor,
        context: usize,
    ) -> Result<Tensor> {
        let h = self.norm_self.forward(x)?;
        let q = self.self_attn.queries(&h)?;
        let (k, v) = self.self_attn.keys_values(&h)?;
        let (mut k, mut v) = match (&cache.self_k, &cache.self_v) {
            (Some(pk), Some(pv)) => (Tensor::cat(&[pk, &k], 2)?, Tensor::cat(&[pv, &v], 2)?),
            _ => (k, v),
        };
        let kept = k.dim(2)?;
        if context > 0 && kept > context + 1 {
            k = k.narrow(2, kept - context - 1, context + 1)?.contiguous()?;
            v = v.narrow(2, kept - context - 1, context + 1)?.contiguous()?;
        }
        let x = (x + self.self_attn.attend(&q, &k, &v, None)?)?;
        cache.self_k = Some(k);
        cache.self_v = Some(v);
        let q = self.cross_attn.queries(&self.norm_cross.forward(&x)?)?;
        let x = (&x
            + self
                .cross_attn
                .attend(&q, &cache.cross_k, &cache.cross_v, Some(cond_mask))?)?;
        Ok((&x + self.mlp.forward(&self.norm_mlp.forward(&x)?)?)?)
    }
}

/// Teacher-forced outputs.
#[derive(Clone, Debug)]
pub struct TeacherOutput {
    /// `[B, L, vocab]`: position `k` scores the token after input `k` (the first token after
    /// BOS, ..., EOS after the last).
    pub logits: Tensor,
    /// `[B, L]` in (0, 1): position `k >= 1` predicts when input token `k` starts, as a
    /// fraction of the clip's condition frames; position 0 (BOS) predicts nothing useful.
    pub times: Tensor,
}

/// Tokens -> decoder states -> next-token logits and token times: `embed`, `pos`,
/// `layers.{i}`, `norm_out`, `lm_head`, `timing`.
#[derive(Clone, Debug)]
pub struct Decoder {
    embed: Embedding,
    pos: Embedding,
    layers: Vec<DecoderLayer>,
    norm_out: LayerNorm,
    lm_head: Linear,
    timing: Mlp,
    max_tokens: usize,
    alignment_sigma: f64,
    decode_alignment_sigma: f64,
    token_rate: f64,
    /// A whole window's condition frames: the unit of the prior's width on given centres.
    window_cond_frames: usize,
    context: usize,
    positions: bool,
}

impl Decoder {
    /// Weights `embed` `[vocab, d]`, `pos` `[max_tokens, d]`, `layers.{i}`, `norm_out`,
    /// `lm_head` `[vocab, d]`, `timing` (MLP `d -> d -> 1`).
    pub fn load(cfg: &PairAlignConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.d_model;
        let init = Init::Randn {
            mean: 0.0,
            stdev: EMBED_INIT_STD,
        };
        let embed = vb
            .pp("embed")
            .get_with_hints((cfg.vocab_size(), d), "weight", init)?;
        let pos = vb
            .pp("pos")
            .get_with_hints((cfg.max_tokens, d), "weight", init)?;
        let layers = (0..cfg.layers)
            .map(|i| DecoderLayer::load(cfg, vb.pp("layers").pp(i)))
            .collect::<Result<_>>()?;
        Ok(Decoder {
            embed: Embedding::new(embed, d),
            pos: Embedding::new(pos, d),
            layers,
            norm_out: LayerNorm::load(d, cfg.layer_norm_eps, vb.pp("norm_out"))?,
            lm_head: linear(d, cfg.vocab_size(), vb.pp("lm_head"))?,
            timing: Mlp::load(d, d, 1, vb.pp("timing"))?,
            max_tokens: cfg.max_tokens,
            alignment_sigma: cfg.alignment_sigma,
            decode_alignment_sigma: if cfg.decode_alignment_sigma > 0.0 {
                cfg.decode_alignment_sigma
            } else {
                cfg.alignment_sigma
            },
            token_rate: cfg.token_rate,
            window_cond_frames: subsampled_len(cfg.window_frames),
            context: cfg.decoder_context,
            positions: cfg.absolute_positions,
        })
    }

    /// The condition's key mask `mask` (`[B, 1, 1, T]`) plus, when the prior is on
    /// (`sigma > 0`), the alignment prior of decoder positions `positions`: `[B, 1, P, T]`.
    /// `lens` are the rows' valid 50 Hz frames.
    fn cross_mask(
        &self,
        mask: &Tensor,
        lens: &[usize],
        positions: std::ops::Range<usize>,
        sigma: f64,
        centres: Centres<'_>,
    ) -> Result<Tensor> {
        if sigma <= 0.0 {
            return Ok(mask.clone());
        }
        let t = mask.dim(D::Minus1)?;
        let p = positions.len();
        let bias = match centres {
            Centres::Grid => alignment_bias(lens, positions, t, sigma, self.token_rate),
            Centres::Frames(rows) => {
                let sigma_frames = sigma * self.window_cond_frames as f64;
                anchored_bias(lens, rows, positions, t, sigma_frames)
            }
        };
        let bias = Tensor::from_vec(bias, (lens.len(), 1, p, t), mask.device())?;
        Ok(mask.broadcast_add(&bias)?)
    }

    /// Teacher-forced pass over `input` (`[B, L]` u32, BOS first, right-padded with any id):
    /// every position attends to itself and the positions before it, so padding after a
    /// row's end changes nothing before it. The prior spreads the positions evenly over each
    /// row's clip.
    pub fn forward(&self, input: &Tensor, cond: &Condition) -> Result<TeacherOutput> {
        self.check_positions(input)?;
        let x = self.embed.forward(input)?;
        self.all_positions(x, cond, Centres::Grid, self.alignment_sigma)
    }

    /// Every position of `input` (`[B, L]` u32) at once, the prior centred on `centres` at the
    /// decoding width: the logits and times that decoding step by step gives when no input
    /// depends on an earlier output (decoding without history: BOS everywhere).
    pub(crate) fn forward_decoding(
        &self,
        input: &Tensor,
        cond: &Condition,
        centres: Centres<'_>,
    ) -> Result<TeacherOutput> {
        self.check_positions(input)?;
        let x = self.embed.forward(input)?;
        self.all_positions(x, cond, centres, self.decode_alignment_sigma)
    }

    /// An error when `input` (`[B, L]`) has more positions than the model.
    fn check_positions(&self, input: &Tensor) -> Result<()> {
        let (_, l) = input.dims2()?;
        if l > self.max_tokens {
            return Err(Error::BadInput(format!(
                "{l} decoder positions, the model has {}",
                self.max_tokens
            )));
        }
        Ok(())
    }

    /// The layers and heads over embedded inputs `x` (`[B, L, d]`), causal self-attention and
    /// the prior of width `sigma`.
    fn all_positions(
        &self,
        mut x: Tensor,
        cond: &Condition,
        centres: Centres<'_>,
        sigma: f64,
    ) -> Result<TeacherOutput> {
        let l = x.dim(1)?;
        let device = x.device().clone();
        if self.positions {
            x = x.broadcast_add(&self.pos.embeddings().narrow(0, 0, l)?)?;
        }
        let causal = causal_mask(l, self.context, &device)?;
        let cross_mask = self.cross_mask(&cond.mask, &cond.lens, 0..l, sigma, centres)?;
        for layer in &self.layers {
            x = layer.forward(&x, &causal, cond, &cross_mask)?;
        }
        self.heads(&x)
    }

    /// LM and timing heads over decoder states `[B, L, d]`.
    fn heads(&self, x: &Tensor) -> Result<TeacherOutput> {
        let h = self.norm_out.forward(x)?;
        let logits = apply(&self.lm_head, &h)?;
        let times = candle_nn::ops::sigmoid(&self.timing.forward(&h)?)?.squeeze(D::Minus1)?;
        Ok(TeacherOutput { logits, times })
    }

    pub(crate) fn start_cache(&self, cond: &Condition) -> Result<Vec<LayerCache>> {
        self.layers.iter().map(|l| l.start_cache(cond)).collect()
    }

    /// One decoding step at position `pos`: `tokens` `[B]` u32 are the inputs there;
    /// `cond_mask` and `lens` are the condition's key mask and valid frames. Returns
    /// `[B, 1, vocab]` logits and `[B, 1]` times. `centres` places the alignment prior.
    pub(crate) fn step(
        &self,
        tokens: &Tensor,
        pos: usize,
        caches: &mut [LayerCache],
        cond_mask: &Tensor,
        lens: &[usize],
        centres: Centres<'_>,
    ) -> Result<TeacherOutput> {
        if pos >= self.max_tokens {
            return Err(Error::BadInput(format!(
                "decoder position {pos}, the model has {}",
                self.max_tokens
            )));
        }
        let b = tokens.dim(0)?;
        let mut x = self.embed.forward(tokens)?;
        if self.positions {
            x = x.broadcast_add(&self.pos.embeddings().narrow(0, pos, 1)?)?;
        }
        let mut x = x.reshape((b, 1, ()))?;
        let cross_mask = self.cross_mask(
            cond_mask,
            lens,
            pos..pos + 1,
            self.decode_alignment_sigma,
            centres,
        )?;
        for (layer, cache) in self.layers.iter().zip(caches.iter_mut()) {
            x = layer.step(&x, cache, &cross_mask, self.context)?;
        }
        self.heads(&x)
    }
}

/// Where the alignment prior expects each decoder position's token.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Centres<'a> {
    /// Evenly spread over each row's clip ([`alignment_bias`]). Fixed relative to the window,
    /// not to the audio in it.
    Grid,
    /// Given per row, in condition frames: position `k` of row `b` at `rows[b][k]` (the
    /// clip's last frame past its end), e.g. the points of a fixed token grid
    /// ([`super::PairAlignConfig::grid_centres`]; [`anchored_bias`]).
    Frames(&'a [Vec<f64>]),
}

/// The alignment prior's bias, `[rows, positions, t]` flattened: for row `b` of `lens[b]` valid
/// 50 Hz frames (`n = lens[b] * 0.02 s * token_rate` expected tokens), position `k` and frame
/// `f`, `-(x_f - c_k)^2 / (2 sigma^2)` with `x_f = (f + 0.5) / lens[b]` and `c_k = min(1, (k +
/// 0.5) / n)`: 0 where the `k`-th token is expected, falling off with the distance in clip
/// fractions.
fn alignment_bias(
    lens: &[usize],
    positions: std::ops::Range<usize>,
    t: usize,
    sigma: f64,
    token_rate: f64,
) -> Vec<f32> {
    let inv = 1.0 / (2.0 * sigma * sigma);
    let mut bias = Vec::with_capacity(lens.len() * positions.len() * t);
    for &frames in lens {
        let f_len = frames.max(1) as f64;
        let expected = (f_len * f64::from(CODE_FRAME_MS) / 1000.0 * token_rate).max(1.0);
        for k in positions.clone() {
            let centre = ((k as f64 + 0.5) / expected).min(1.0);
            bias.extend((0..t).map(|f| {
                let x = (f as f64 + 0.5) / f_len - centre;
                (-(x * x) * inv) as f32
            }));
        }
    }
    bias
}

/// The anchored prior's bias, `[rows, positions, t]` flattened: for row `b`, position `k` and
/// frame `f`, `-(f + 0.5 - c)^2 / (2 sigma^2)` in condition frames, `c = rows[b][k]`, or the
/// row's end (`lens[b]`) for a position past its centres (EOS).
fn anchored_bias(
    lens: &[usize],
    rows: &[Vec<f64>],
    positions: std::ops::Range<usize>,
    t: usize,
    sigma_frames: f64,
) -> Vec<f32> {
    let inv = 1.0 / (2.0 * sigma_frames * sigma_frames).max(f64::MIN_POSITIVE);
    let mut bias = Vec::with_capacity(lens.len() * positions.len() * t);
    for (b, &frames) in lens.iter().enumerate() {
        let row = rows.get(b).map_or(&[][..], Vec::as_slice);
        for k in positions.clone() {
            let centre = row.get(k).copied().unwrap_or(frames as f64);
            bias.extend((0..t).map(|f| {
                let x = f as f64 + 0.5 - centre;
                (-(x * x) * inv) as f32
            }));
        }
    }
    bias
}

/// The PairAlign model. Weights: `encoder.*` (the VQ encoder's names), `condition.*`,
/// `decoder.*`.
#[derive(Clone, Debug)]
pub struct PairAlignModel {
    /// Normalized log-mel -> 50 Hz vectors (the VQ encoder).
    pub encoder: Encoder,
    /// Encoder output -> condition.
    pub conditioner: Conditioner,
    /// The autoregressive decoder.
    pub decoder: Decoder,
    cfg: PairAlignConfig,
}

impl PairAlignModel {
    /// Validates `cfg` and loads (or, from a `VarMap`, creates) every weight.
    pub fn load(cfg: &PairAlignConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        Ok(PairAlignModel {
            encoder: Encoder::load(&cfg.encoder, vb.pp("encoder"))?,
            conditioner: Conditioner::load(cfg, vb.pp("condition"))?,
            decoder: Decoder::load(cfg, vb.pp("decoder"))?,
            cfg: cfg.clone(),
        })
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &PairAlignConfig {
        &self.cfg
    }

    /// The condition of normalized log-mels `[B, T, n_mels]`; `lens` gives each row's valid
    /// 100 Hz frames in a padded batch (`None`: every row is `T` long).
    pub fn encode(&self, mel: &Tensor, lens: Option<&[usize]>) -> Result<Condition> {
        let (b, t, _) = mel.dims3()?;
        let z = self.encoder.forward(mel, lens)?;
        let cond_lens: Vec<usize> = match lens {
            Some(lens) => lens.iter().map(|&n| subsampled_len(n)).collect(),
            None => vec![subsampled_len(t); b],
        };
        self.conditioner.forward(&z, &cond_lens)
    }

    /// Teacher-forced logits and times of `input` (`[B, L]` u32: BOS, then the target tokens,
    /// right-padded) under `cond`.
    pub fn forward_teacher(&self, cond: &Condition, input: &Tensor) -> Result<TeacherOutput> {
        if input.dim(0)? != cond.len() {
            return Err(Error::BadInput(format!(
                "{} token rows for {} conditions",
                input.dim(0)?,
                cond.len()
            )));
        }
        self.decoder.forward(input, cond)
    }
}

/// Copies the encoder weights of the VQ tokenizer `vq` into `varmap`, which must hold a
/// PairAlign model built with `cfg` (by [`PairAlignModel::load`] on it) whose `encoder` config
/// equals `vq`'s. Returns the number of tensors copied. The mel normalization of `vq` must be
/// used with these weights (`vq.norm()`).
pub fn init_from_vq(cfg: &PairAlignConfig, varmap: &VarMap, vq: &VqTokenizer) -> Result<usize> {
    if &cfg.encoder != vq.config() {
        return Err(Error::BadConfig(format!(
            "the PairAlign encoder config {:?} differs from the VQ model's {:?}",
            cfg.encoder,
            vq.config()
        )));
    }
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| Error::BadConfig("the VarMap lock is poisoned".into()))?;
    let mut copied = 0;
    for (name, t) in vq
        .weights()
        .iter()
        .filter(|(k, _)| k.starts_with("encoder."))
    {
        let var = vars.get(name).ok_or_else(|| {
            Error::BadConfig(format!(
                "the PairAlign model has no tensor {name}: build it on the VarMap first"
            ))
        })?;
        if var.dims() != t.dims() {
            return Err(Error::BadConfig(format!(
                "{name}: shape {:?} in the VQ model, {:?} in the PairAlign model",
                t.dims(),
                var.dims()
            )));
        }
        var.set(&t.to_dtype(DType::F32)?.to_device(var.device())?)?;
        copied += 1;
    }
    let expected = vars.keys().filter(|k| k.starts_with("encoder.")).count();
    if copied != expected {
        return Err(Error::BadConfig(format!(
            "copied {copied} encoder tensors of the {expected} the PairAlign model has"
        )));
    }
    Ok(copied)
}

/// The names and shapes of a model with `cfg`, from a throwaway CPU init.
pub(crate) fn expected_shapes(
    cfg: &PairAlignConfig,
) -> Result<std::collections::BTreeMap<String, Vec<usize>>> {
    let vm = VarMap::new();
    PairAlignModel::load(cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu))?;
    let data = vm
        .data()
        .lock()
        .map_err(|_| Error::BadConfig("the VarMap lock is poisoned".into()))?;
    Ok(data
        .iter()
        .map(|(k, v)| (k.clone(), v.dims().to_vec()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::{alignment_bias, anchored_bias};

    #[test]
    fn alignment_bias_peaks_where_each_token_is_expected() {
        // 150 frames (3 s) at 10 tokens/s: 30 tokens expected, token k centred on frame
        // 5k + 2 (of 0.5 + 5k + 2 = (k + 0.5) / 30 * 150); positions past the end stay there.
        let t = 160;
        let bias = alignment_bias(&[150], 0..36, t, 0.1, 10.0);
        let argmax = |k: usize| {
            let row = &bias[k * t..(k + 1) * t];
            (0..t)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap_or(0)
        };
        assert_eq!(argmax(0), 2);
        assert_eq!(argmax(14), 72);
        assert_eq!(argmax(29), 147);
        assert!((149..=150).contains(&argmax(35)));
        // At sigma 0.1, a tenth of the clip away costs 0.5, three tenths 4.5.
        let row = &bias[14 * t..15 * t];
        assert!(row[72].abs() < 1e-6);
        assert!((row[72 + 15] + 0.5).abs() < 1e-3, "{}", row[72 + 15]);
        assert!((row[72 - 45] + 4.5).abs() < 1e-3, "{}", row[72 - 45]);
    }

    #[test]
    fn anchored_bias_follows_given_centres() {
        // Two rows of 100 frames; row 0's tokens at frames 10 and 75.5, row 1's at 50; past a
        // row's centres, its end.
        let t = 100;
        let rows = vec![vec![10.0, 75.5], vec![50.0]];
        let bias = anchored_bias(&[100, 80], &rows, 0..2, t, 5.0);
        let argmax = |row: usize, k: usize| {
            let at = (row * 2 + k) * t;
            let r = &bias[at..at + t];
            (0..t).max_by(|&a, &b| r[a].total_cmp(&r[b])).unwrap_or(0)
        };
        // Frame f's middle is f + 0.5: 10 lies between frames 9 and 10.
        assert!((9..=10).contains(&argmax(0, 0)));
        assert_eq!(argmax(0, 1), 75);
        assert!((49..=50).contains(&argmax(1, 0)));
        assert!((79..=80).contains(&argmax(1, 1)));
        // Sigma 5 frames: 5 frames away costs 0.5, in frames whatever the clip's length.
        let r = &bias[t..2 * t];
        assert!((r[80] + 0.5).abs() < 1e-6, "{}", r[80]);
    }
}
