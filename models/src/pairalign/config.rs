//! `PairAlignConfig`: the hyper-parameters of the PairAlign tokenizer and of each of its training
//! components (issue 8), stored as JSON beside its weights; the token ids and the length bounds
//! that decoding enforces.

use serde::{Deserialize, Serialize};

use crate::vq::CODE_FRAME_MS;
use crate::{Error, Result, VqConfig};

/// One switch per training component of shared/DESIGN.md section 1 (issue 8, "Training"), each
/// on by default, with the hyper-parameters of the components. The model ignores them; the
/// trainer reads them, and a shipped `config.json` records how its weights were trained, so
/// that ablations (one switch off at a time) can be run and reported. Their schedules over a run
/// (`teacher_share`, `corruption_scale`) are the trainer's (`pairalign_train::pairalign`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Components {
    /// 1. VQ-derived targets: the target string of a clip is its VQ frame codes compacted to
    ///    the token rate (`pairalign_train::pairalign::vq_targets`).
    pub vq_targets: bool,
    /// 2. EMA-teacher targets: an exponential-moving-average copy of the model decodes one view
    ///    (length-constrained) and its string is the target for the other view.
    pub ema_teacher: bool,
    /// 3. Cross-paired teacher forcing: the loss is `-log p(y_A | cond(x_B)) - log p(y_B |
    ///    cond(x_A))`; off, each view is trained on its own target.
    pub cross_paired: bool,
    /// 4. Anti-bypass regularization: the teacher-forced prefix is corrupted (substitutions,
    ///    insertions, deletions), so the decoder must read the condition.
    pub anti_bypass: bool,
    /// 5. Likelihood contrast: a cross-entropy over the batch's matrix of length-normalized
    ///    log-likelihoods (each target under every clip's condition).
    pub contrast: bool,
    /// 6. Length control: a loss that holds the expected length at `token_rate`, on top of the
    ///    length bounds of decoding (which always apply).
    pub length_control: bool,
    /// 7. Timing recovery: the timing head is trained on the targets' run start times.
    pub timing: bool,

    /// Decay of the EMA teacher's weights per step (2; 0.999 as in mean-teacher training,
    /// Tarvainen and Valpola 2017).
    pub ema_decay: f64,
    /// Fraction of the run's steps after which EMA targets start to replace VQ targets (2).
    pub teacher_start: f64,
    /// Fraction of the run's steps from which every target is an EMA target (2); between
    /// `teacher_start` and this, the share of EMA targets grows linearly.
    pub teacher_end: f64,
    /// Most of the targets the EMA teacher may supply (2), whatever the schedule says: below 1,
    /// the rest stay VQ-derived for the whole run, a guard against the collapse of docs/
    /// RESULTS.md (issue 8) where a student trained on its teacher's strings alone converged
    /// on a dozen codes. Not applied when VQ-derived targets are off (the teacher then supplies
    /// every target).
    pub teacher_max_share: f64,
    /// Probability that a teacher-forced input token is replaced by a random code (4).
    pub corrupt_substitute: f64,
    /// Probability that a random code is inserted before a teacher-forced input token (4).
    pub corrupt_insert: f64,
    /// Probability that a teacher-forced input token is deleted (4).
    pub corrupt_delete: f64,
    /// Fraction of the run's steps over which the corruption rates ramp up from 0 (4).
    pub corrupt_warmup: f64,
    /// Temperature of the likelihood-contrast softmax over length-normalized log-likelihoods
    /// (5).
    pub contrast_temperature: f64,
    /// Weight of the contrast loss against the teacher-forcing loss (5).
    pub contrast_weight: f64,
    /// Weight of the length loss (6). The loss is a squared relative error (a string 10% off
    /// costs 0.01), small next to the teacher-forcing NLL, hence a weight of 1 (0.1 left the
    /// expected length where it was in the training test).
    pub length_weight: f64,
    /// Weight of the timing loss (7): mean absolute error of the predicted time as a fraction
    /// of the clip.
    pub timing_weight: f64,
}

/// The shipped recipe's components (pairalign-v1 and v2): the paper's, without the EMA
/// teacher (it collapsed the strings; docs/RESULTS.md, issue 8) and without anti-bypass
/// corruption (a model decoded without history is fed BOS, never its prefix).
impl Default for Components {
    fn default() -> Self {
        Components {
            ema_teacher: false,
            anti_bypass: false,
            ..Components::paper()
        }
    }
}

impl Components {
    /// Every component of the paper on (the defaults of a format-1 config).
    pub fn paper() -> Self {
        Components {
            vq_targets: true,
            ema_teacher: true,
            cross_paired: true,
            anti_bypass: true,
            contrast: true,
            length_control: true,
            timing: true,
            ema_decay: 0.999,
            teacher_start: 0.3,
            teacher_end: 0.6,
            teacher_max_share: 1.0,
            corrupt_substitute: 0.1,
            corrupt_insert: 0.05,
            corrupt_delete: 0.05,
            corrupt_warmup: 0.2,
            contrast_temperature: 0.1,
            contrast_weight: 0.5,
            length_weight: 1.0,
            timing_weight: 1.0,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::BadConfig(msg));
        if !(0.0..1.0).contains(&self.ema_decay) {
            return bad(format!(
                "components.ema_decay must be in [0, 1), got {}",
                self.ema_decay
            ));
        }
        let fractions = [
            ("teacher_start", self.teacher_start),
            ("teacher_end", self.teacher_end),
            ("teacher_max_share", self.teacher_max_share),
            ("corrupt_substitute", self.corrupt_substitute),
            ("corrupt_insert", self.corrupt_insert),
            ("corrupt_delete", self.corrupt_delete),
            ("corrupt_warmup", self.corrupt_warmup),
        ];
        for (name, v) in fractions {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("components.{name} must be in [0, 1], got {v}"));
            }
        }
        if self.teacher_end < self.teacher_start {
            return bad("components.teacher_end must not be before teacher_start".into());
        }
        if self.corrupt_substitute + self.corrupt_delete > 1.0 {
            return bad("components.corrupt_substitute + corrupt_delete must be at most 1".into());
        }
        if self.contrast_temperature.is_nan() || self.contrast_temperature <= 0.0 {
            return bad("components.contrast_temperature must be > 0".into());
        }
        let weights = [self.contrast_weight, self.length_weight, self.timing_weight];
        if !weights.iter().all(|w| *w >= 0.0) {
            return bad("components' loss weights must be >= 0".into());
        }
        Ok(())
    }
}

/// Hyper-parameters of [`super::PairAlignModel`]. Missing JSON fields take the defaults of
/// the config's `format_version` ([`CONFIG_FORMAT`]): the shipped recipe ([`Default`]: the
/// shipped vq-v1 encoder, a 1-layer condition transformer with a bounded window and a 2-layer
/// decoder of width 128, about 1.6 M parameters, decoded on a fixed grid without history), or
/// for a config without a version (written before issue 24), the paper's recipe
/// ([`PairAlignConfig::paper`]). Such a config may still name the retired recipes' fields
/// with the values that turn them off; any other value is an error that names the recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PairAlignConfig {
    /// [`CONFIG_FORMAT`] (a parsed config always holds it: its fields are complete).
    pub format_version: u32,
    /// The VQ model whose encoder this model starts from (`init_from_vq`): its encoder fields
    /// shape the encoder weights, and its codebook size is the number of token ids the
    /// decoder emits (decoder-only VQ fields are unused).
    pub encoder: VqConfig,
    /// Width of the condition and of the decoder.
    pub d_model: usize,
    /// Pre-norm transformer layers over the projected encoder output (the encoder is
    /// convolutional with a receptive field of a few frames; these give the condition context
    /// across the clip). 0: the projection alone.
    pub cond_layers: usize,
    /// Decoder layers (causal self-attention, cross-attention over the condition, MLP).
    pub layers: usize,
    /// Attention heads; must divide `d_model`.
    pub heads: usize,
    /// Hidden width of every MLP.
    pub ff_dim: usize,
    /// Decoder positions (learned embeddings), BOS included: one window decodes at most
    /// `max_tokens - 1` tokens before EOS.
    pub max_tokens: usize,
    /// Longest piece, in 10 ms mel frames, that the tokenizer decodes at once; longer clips are
    /// cut into pieces of this length, decoded separately, and their strings concatenated with
    /// absolute times. 300 is the index's 3 s window.
    pub window_frames: usize,
    /// Target tokens per second of audio (12.7 in the paper on 3 s speech clips; issue 8).
    pub token_rate: f64,
    /// Relative width of the length bounds around `duration * token_rate` (0.3: +-30%).
    pub length_tolerance: f64,
    /// Epsilon of the layer norms of the condition transformer and the decoder.
    pub layer_norm_eps: f64,
    /// Width (standard deviation, as a fraction of the clip) of the alignment prior: a
    /// Gaussian bias on the cross-attention scores around where the token being predicted is
    /// expected, `(k + 0.5) / n` of the clip for the `k`-th of the `n = duration * token_rate`
    /// tokens. It keeps the decoder reading the part of the clip it is at (without it a small
    /// decoder lost its place after a few tokens and looped over two codes; docs/RESULTS.md,
    /// issue 8). 0 turns it off. A config that leaves it out gets the default (0.1); until
    /// 2026-12-05 it got 0, so training configs with a `model` section but no width trained
    /// without the prior (the ablation runs in docs/RESULTS.md, issue 8, among them).
    pub alignment_sigma: f64,
    /// The alignment prior's width when decoding (greedy decoding of the tokenizer and of the
    /// EMA teacher); 0 takes `alignment_sigma`. Narrower than in training works better: on the
    /// held-out voices a model trained at 0.1 retrieved P@1 0.24 decoding at 0.1 and 0.35 at
    /// 0.03 (docs/RESULTS.md, issue 8). Left out: the default, 0.03.
    pub decode_alignment_sigma: f64,
    /// Grid targets (`pairalign_train::pairalign::grid_targets`): the VQ-derived string is the code at each
    /// point of the fixed token grid (the code most of the grid cell's frames hold) rather
    /// than the clip compacted to `token_rate` segments, so target `k` is what the audio at
    /// grid point `k` holds: for a model decoded on the grid without history
    /// (`grid_phases` > 0, `decode_history` false). Training only.
    pub grid_targets: bool,
    /// Condition frames (50 Hz) on each side that a frame of the condition transformer
    /// attends to; 0: the whole clip (pairalign-v1). A bound makes the condition of a frame
    /// the same whichever window it is in, except near the window's edges.
    pub cond_window: usize,
    /// Earlier tokens the decoder's self-attention sees; 0: all of them (pairalign-v1). A bound
    /// keeps a token from depending on where its window started.
    pub decoder_context: usize,
    /// Absolute positions: sinusoids on the condition frames and learned embeddings on the
    /// decoder positions (pairalign-v1). Off, nothing tells a frame or a token where in the
    /// window it is (the `pos` weights stay, unused), so that the same audio gets the same
    /// string at any offset.
    pub absolute_positions: bool,
    /// Token-grid phases (models decoding on the grid only). 0: the decoder places its
    /// tokens at `(k + 0.5) / n` of each window and ends where EOS wins within the length
    /// bounds (pairalign-v1 as trained). `p > 0`: one token every `1 / token_rate` s, the
    /// first half a token from the window's start, so a window's length is fixed by its
    /// duration; and a query is also decoded with the grid moved by `1/p, 2/p, ...` of a
    /// token ([`crate::Tokenizer::tokenize_mels_variants`]), the best match of the `p`
    /// strings counting. A grid-placed decoder samples the audio at the grid's points: a
    /// query whose audio starts a fraction of a token off the database's gets other codes at
    /// every point, which a second grid phase of the query undoes (docs/RESULTS.md, issue 8).
    /// At most 16.
    pub grid_phases: usize,
    /// Whether greedy decoding feeds each emitted token back as the next position's input
    /// (true, pairalign-v1, as trained) or feeds BOS at every position and lets any code
    /// follow any (false): a token then depends on the audio at its grid point and on the
    /// decoder states of the positions its self-attention sees (`decoder_context`), not on
    /// the codes chosen before it, so a query that starts mid-window can reach the strings
    /// the index decoded with another history (docs/RESULTS.md, issue 8). Set in a training
    /// config, teacher forcing feeds BOS too (the target prefix, corrupted or not, is not fed);
    /// pairalign-v1 was trained with history and is decoded without.
    pub decode_history: bool,
    /// The training components and their hyper-parameters.
    pub components: Components,
}

/// Most grid phases a query may be cut at (`grid_phases`, `PairAlignTokenizer::with_grid_phases`).
pub const MAX_GRID_PHASES: usize = 16;

/// The version of a config's fields and defaults ([`PairAlignConfig::format_version`]): 2
/// since the shipped recipe became the default and the recipes that results showed no better
/// were retired (issue 24). A config without one is read as version 1.
pub const CONFIG_FORMAT: u32 = 2;

/// Retired fields a version-1 config may name, with the value that keeps them off, and what
/// they did. Results showed none better than the shipped recipe (docs/RESULTS.md, issue 8).
const RETIRED: [(&str, &str, &str); 5] = [
    (
        "anchors",
        "\"grid\"",
        "decoding anchored on VQ segments (anchors vq-runs)",
    ),
    (
        "target_passes",
        "0",
        "targets compacted by local passes (target_passes)",
    ),
    ("draft_tokens", "false", "VQ draft tokens (draft_tokens)"),
    ("draft_bonus", "0.0", "the draft bonus (draft_bonus)"),
    (
        "query_phases",
        "1",
        "queries cut at several window phases (query_phases)",
    ),
];

/// The shipped recipe (pairalign-v1 and v2): grid targets, a condition window of 12 frames each
/// side, 4 earlier tokens of decoder context, no absolute positions, decoding on a fixed grid
/// at 4 query phases without history, and [`Components::default`].
impl Default for PairAlignConfig {
    fn default() -> Self {
        PairAlignConfig {
            grid_targets: true,
            cond_window: 12,
            decoder_context: 4,
            absolute_positions: false,
            grid_phases: 4,
            decode_history: false,
            components: Components::default(),
            ..PairAlignConfig::paper()
        }
    }
}

impl PairAlignConfig {
    /// The paper's recipe, the defaults of a version-1 config: targets compacted from the VQ
    /// codes to `token_rate`, autoregressive decoding with history that places its tokens at
    /// `(k + 0.5) / n` of each window and ends at EOS, absolute positions, unbounded attention,
    /// and every training component on ([`Components::paper`]).
    pub fn paper() -> Self {
        PairAlignConfig {
            format_version: CONFIG_FORMAT,
            encoder: VqConfig::default(),
            d_model: 128,
            cond_layers: 1,
            layers: 2,
            heads: 4,
            ff_dim: 512,
            max_tokens: 64,
            window_frames: 300,
            token_rate: 12.7,
            length_tolerance: 0.3,
            layer_norm_eps: 1e-5,
            alignment_sigma: 0.1,
            decode_alignment_sigma: 0.03,
            grid_targets: false,
            cond_window: 0,
            decoder_context: 0,
            absolute_positions: true,
            grid_phases: 0,
            decode_history: true,
            components: Components::paper(),
        }
    }

    /// Reads a config from its JSON (a `model` section), whatever its version: a version-1
    /// config (no `format_version`) gets the paper's defaults for the fields it leaves out and
    /// may name a retired field only with the value that turned it off; a version-2 config gets
    /// [`Default`]'s. Errors name the field or the retired recipe.
    pub fn from_json(mut value: serde_json::Value) -> Result<Self> {
        let bad = |msg: String| Error::BadConfig(msg);
        let object = value
            .as_object_mut()
            .ok_or_else(|| bad("the model config must be a JSON object".into()))?;
        let version = match object.remove("format_version") {
            None => 1,
            Some(v) => v
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| bad(format!("model format_version must be a number, got {v}")))?,
        };
        match version {
            1 => {
                for (field, off, what) in RETIRED {
                    let Some(v) = object.remove(field) else {
                        continue;
                    };
                    let off: serde_json::Value = serde_json::from_str(off).unwrap_or_default();
                    let same = match (v.as_f64(), off.as_f64()) {
                        (Some(a), Some(b)) => a == b,
                        _ => v == off,
                    };
                    if !same {
                        return Err(bad(format!(
                            "{field} {v}: {what} was retired in model config format 2 (issue \
                             24); the last build that reads it is commit 43bdcdd"
                        )));
                    }
                }
                let paper = serde_json::to_value(Self::paper())
                    .map_err(|e| bad(format!("cannot serialize the defaults: {e}")))?;
                if let serde_json::Value::Object(defaults) = paper {
                    for (key, default) in defaults {
                        match (object.get_mut(&key), default) {
                            (None, default) => {
                                object.insert(key, default);
                            }
                            (
                                Some(serde_json::Value::Object(given)),
                                serde_json::Value::Object(inner),
                            ) => {
                                for (k, d) in inner {
                                    given.entry(k).or_insert(d);
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            CONFIG_FORMAT => {}
            other => {
                return Err(bad(format!(
                    "model format_version {other} is not supported (this build reads 1 and \
                     {CONFIG_FORMAT})"
                )))
            }
        }
        object.insert("format_version".into(), CONFIG_FORMAT.into());
        serde_json::from_value(value).map_err(|e| bad(e.to_string()))
    }

    /// A serde `deserialize_with` for a `model` section: [`PairAlignConfig::from_json`].
    pub fn deserialize_versioned<'de, D>(deserializer: D) -> std::result::Result<Self, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        let value = serde_json::Value::deserialize(deserializer)?;
        Self::from_json(value).map_err(serde::de::Error::custom)
    }

    /// The fields outside the weights that change the strings of a model decoding on the grid
    /// (windowing, length bounds, the decoding prior's effective width, attention bounds,
    /// positions, layer-norm epsilons), as JSON: [`super::PairAlignTokenizer`]'s weights hash
    /// covers them when they differ from the defaults, so that a database indexed before an
    /// edit of `config.json` refuses queries made after it. Training-only fields (the
    /// components, `alignment_sigma` when a decoding width is set) and the number of
    /// `grid_phases` (only whether there is a fixed grid) are not in it.
    pub fn decoding_key(&self) -> String {
        let decode_sigma = if self.decode_alignment_sigma > 0.0 {
            self.decode_alignment_sigma
        } else {
            self.alignment_sigma
        };
        let mut key = serde_json::json!({
            "window_frames": self.window_frames,
            "token_rate": self.token_rate,
            "length_tolerance": self.length_tolerance,
            "layer_norm_eps": self.layer_norm_eps,
            "encoder_layer_norm_eps": self.encoder.layer_norm_eps,
            "decode_alignment_sigma": decode_sigma,
            "cond_window": self.cond_window,
            "decoder_context": self.decoder_context,
            "absolute_positions": self.absolute_positions,
        });
        // The fixed grid changes every string; how many phases a query is decoded at does
        // not change the index's. Only when set, so that older configs keep their hash.
        if self.grid_phases > 0 {
            key["fixed_grid"] = true.into();
        }
        if !self.decode_history {
            key["decode_history"] = false.into();
        }
        key.to_string()
    }

    /// The default config over the encoder of the VQ model `encoder` (e.g. the shipped vq-v1's
    /// config).
    pub fn from_vq(encoder: &VqConfig) -> Self {
        PairAlignConfig {
            encoder: encoder.clone(),
            ..Default::default()
        }
    }

    /// Checks every field against its allowed range, and that a full window's length bounds fit
    /// in `max_tokens`.
    pub fn validate(&self) -> Result<()> {
        self.encoder.validate()?;
        let bad = |msg: String| Err(Error::BadConfig(msg));
        if self.d_model == 0 || self.heads == 0 || self.ff_dim == 0 || self.layers == 0 {
            return bad("d_model, heads, ff_dim and layers must be positive".into());
        }
        if !self.d_model.is_multiple_of(self.heads) {
            return bad(format!(
                "heads ({}) must divide d_model ({})",
                self.heads, self.d_model
            ));
        }
        for (name, sigma) in [
            ("alignment_sigma", self.alignment_sigma),
            ("decode_alignment_sigma", self.decode_alignment_sigma),
        ] {
            if !(0.0..=10.0).contains(&sigma) {
                return bad(format!("{name} must be in [0, 10], got {sigma}"));
            }
        }
        if self.grid_phases > MAX_GRID_PHASES {
            return bad(format!(
                "grid_phases must be at most {MAX_GRID_PHASES}, got {}",
                self.grid_phases
            ));
        }
        if self.format_version != CONFIG_FORMAT {
            return bad(format!(
                "format_version must be {CONFIG_FORMAT} (read older configs with from_json), got {}",
                self.format_version
            ));
        }
        if self.window_frames < 2 {
            return bad("window_frames must be at least 2".into());
        }
        if !(self.token_rate > 0.0 && self.token_rate <= 1000.0 / f64::from(CODE_FRAME_MS)) {
            return bad(format!(
                "token_rate must be in (0, {}], got {}",
                1000 / CODE_FRAME_MS,
                self.token_rate
            ));
        }
        if !(0.0..1.0).contains(&self.length_tolerance) {
            return bad(format!(
                "length_tolerance must be in [0, 1), got {}",
                self.length_tolerance
            ));
        }
        if self.layer_norm_eps.is_nan() || self.layer_norm_eps <= 0.0 {
            return bad("layer_norm_eps must be > 0".into());
        }
        let (_, max) = self.unclamped_bounds(self.window_frames.div_ceil(2));
        if max + 1 > self.max_tokens {
            return bad(format!(
                "max_tokens ({}) is too small: a window of {} frames may decode {max} tokens plus BOS",
                self.max_tokens, self.window_frames
            ));
        }
        self.components.validate()
    }

    /// Token ids the decoder emits as content: the VQ codes `0..codebook_size`.
    pub fn codebook_size(&self) -> usize {
        self.encoder.codebook_size
    }

    /// Begin-of-string id, the first decoder input.
    pub fn bos(&self) -> u32 {
        self.encoder.codebook_size as u32
    }

    /// End-of-string id.
    pub fn eos(&self) -> u32 {
        self.encoder.codebook_size as u32 + 1
    }

    /// Padding id of teacher-forced batches (never emitted, never a loss target).
    pub fn pad(&self) -> u32 {
        self.encoder.codebook_size as u32 + 2
    }

    /// Decoder vocabulary: the codes, BOS, EOS and PAD.
    pub fn vocab_size(&self) -> usize {
        self.encoder.codebook_size + 3
    }

    /// One token period of the fixed grid, in condition frames.
    pub fn grid_period(&self) -> f64 {
        1000.0 / (f64::from(CODE_FRAME_MS) * self.token_rate)
    }

    /// The fixed grid's centres, in condition frames, for a window of `frames` condition
    /// frames: one token every `1 / token_rate` s, the `k`-th at `k + offset` token periods
    /// from the window's start (`offset` in 0..1; 0.5 for the database's strings, as the
    /// trained grid of `(k + 0.5) / n`), for every centre inside the window, at most
    /// `max_tokens - 1`.
    pub fn grid_centres(&self, frames: usize, offset: f64) -> Vec<f64> {
        let period = self.grid_period();
        (0..self.max_tokens.saturating_sub(1))
            .map(|k| (k as f64 + offset) * period)
            .take_while(|&c| c < frames as f64)
            .collect()
    }

    /// Target number of tokens for a clip of `cond_frames` 50 Hz condition frames.
    pub fn target_tokens(&self, cond_frames: usize) -> f64 {
        cond_frames as f64 * f64::from(CODE_FRAME_MS) / 1000.0 * self.token_rate
    }

    /// `(min, max)` tokens that decoding allows for a clip of `cond_frames` 50 Hz condition
    /// frames: `floor(n (1 - tol))` and `ceil(n (1 + tol))` with `n = duration * token_rate`,
    /// at least 1 token for a non-empty clip, at most `max_tokens - 1`; `(0, 0)` for an empty
    /// clip.
    pub fn length_bounds(&self, cond_frames: usize) -> (usize, usize) {
        let (min, max) = self.unclamped_bounds(cond_frames);
        let max = max.min(self.max_tokens.saturating_sub(1));
        (min.min(max), max)
    }

    fn unclamped_bounds(&self, cond_frames: usize) -> (usize, usize) {
        if cond_frames == 0 {
            return (0, 0);
        }
        let n = self.target_tokens(cond_frames);
        let min = ((n * (1.0 - self.length_tolerance)).floor() as usize).max(1);
        let max = ((n * (1.0 + self.length_tolerance)).ceil() as usize).max(min);
        (min, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_special_ids_follow_the_codes() {
        let cfg = PairAlignConfig::default();
        cfg.validate().unwrap();
        assert_eq!(cfg.bos(), 512);
        assert_eq!(cfg.eos(), 513);
        assert_eq!(cfg.pad(), 514);
        assert_eq!(cfg.vocab_size(), 515);
    }

    #[test]
    fn bounds_follow_duration_and_rate() {
        let cfg = PairAlignConfig::default();
        // 3 s = 150 condition frames: 38.1 tokens, +-30%.
        assert_eq!(cfg.length_bounds(150), (26, 50));
        assert_eq!(cfg.length_bounds(0), (0, 0));
        // 20 ms: 0.254 tokens, but a non-empty clip gets at least one.
        assert_eq!(cfg.length_bounds(1), (1, 1));
        // Past the window, the positions clamp the maximum.
        let (min, max) = cfg.length_bounds(10_000);
        assert_eq!(max, cfg.max_tokens - 1);
        assert!(min <= max);
    }

    #[test]
    fn bad_values_are_rejected() {
        let mut cfg = PairAlignConfig {
            heads: 3,
            ..Default::default()
        };
        assert!(cfg.validate().is_err());
        cfg.heads = 4;
        cfg.max_tokens = 40;
        assert!(cfg.validate().is_err(), "a 3 s window needs 51 positions");
        cfg.max_tokens = 64;
        cfg.components.teacher_end = 0.1;
        assert!(cfg.validate().is_err());
        cfg.components.teacher_end = 0.6;
        cfg.components.contrast_temperature = f64::NAN;
        assert!(cfg.validate().is_err());
        cfg.components.contrast_temperature = 0.1;
        cfg.validate().unwrap();
        cfg.components.teacher_max_share = 1.5;
        assert!(cfg.validate().is_err());
        cfg.components.teacher_max_share = 0.5;
        // Grid phases: at most 16.
        cfg.grid_phases = 17;
        assert!(cfg.validate().is_err());
        cfg.grid_phases = 16;
        cfg.validate().unwrap();
        cfg.format_version = 1;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("format_version"), "{err}");
    }

    #[test]
    fn json_round_trip_and_defaults_for_missing_fields() {
        let cfg = PairAlignConfig::default();
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!(json["format_version"], 2);
        assert_eq!(PairAlignConfig::from_json(json).unwrap(), cfg);
        let read = |text: &str| PairAlignConfig::from_json(serde_json::from_str(text).unwrap());
        // Version 2: the shipped recipe fills what a config leaves out.
        let partial =
            read(r#"{"format_version": 2, "d_model": 64, "components": {"contrast": false}}"#)
                .unwrap();
        assert_eq!(partial.d_model, 64);
        assert!(!partial.components.contrast && partial.components.timing);
        assert!(partial.grid_targets && !partial.decode_history);
        assert!(!partial.components.ema_teacher);
        assert_eq!(partial.alignment_sigma, 0.1);
        assert_eq!(partial.decode_alignment_sigma, 0.03);
        // Version 1 (no version): the paper's recipe, nested components included.
        let old = read(r#"{"d_model": 64, "components": {"contrast": false}}"#).unwrap();
        assert_eq!(old.format_version, CONFIG_FORMAT);
        assert!(!old.grid_targets && old.decode_history && old.absolute_positions);
        assert!(old.components.ema_teacher && old.components.anti_bypass);
        assert!(!old.components.contrast);
        assert_eq!(
            old,
            PairAlignConfig {
                d_model: 64,
                components: Components {
                    contrast: false,
                    ..Components::paper()
                },
                ..PairAlignConfig::paper()
            }
        );
        assert!(read(r#"{"nope": 1}"#).is_err());
        assert!(read(r#"{"format_version": 3}"#).is_err());
        assert!(read("[1]").is_err());
    }

    /// A version-1 config may name a retired field only with the value that kept it off; a
    /// version-2 config may not name it at all.
    #[test]
    fn retired_recipes_are_refused_by_name() {
        let read = |text: &str| PairAlignConfig::from_json(serde_json::from_str(text).unwrap());
        let off = r#"{"anchors": "grid", "target_passes": 0, "draft_tokens": false,
            "draft_bonus": 0.0, "query_phases": 1, "grid_phases": 4}"#;
        assert_eq!(read(off).unwrap().grid_phases, 4);
        for (on, recipe) in [
            (r#"{"anchors": "vq-runs"}"#, "anchors vq-runs"),
            (r#"{"target_passes": 2}"#, "target_passes"),
            (r#"{"draft_tokens": true}"#, "draft_tokens"),
            (r#"{"draft_bonus": 5.0}"#, "draft_bonus"),
            (r#"{"query_phases": 6}"#, "query_phases"),
        ] {
            let err = read(on).unwrap_err().to_string();
            assert!(
                err.contains(recipe) && err.contains("retired"),
                "{on}: {err}"
            );
        }
        let err = read(r#"{"format_version": 2, "query_phases": 1}"#).unwrap_err();
        assert!(err.to_string().contains("query_phases"), "{err}");
    }
}
