//! `PairAlignConfig`: the hyper-parameters of the PairAlign tokenizer and of each of its training
//! components (issue 8), stored as JSON beside its weights; the token ids and the length bounds
//! that decoding enforces.

use serde::{Deserialize, Serialize};

use crate::vq::CODE_FRAME_MS;
use crate::{Error, Result, VqConfig};

/// One switch per training component of shared/DESIGN.md section 1 (issue 8, "Training"), each
/// on by default, with the hyper-parameters of the components. The model ignores them; the
/// trainer reads them, and a shipped `config.json` records how its weights were trained, so
/// that ablations (one switch off at a time) can be run and reported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Components {
    /// 1. VQ-derived targets: the target string of a clip is its VQ frame codes compacted to
    ///    the token rate ([`super::vq_targets`]).
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

impl Default for Components {
    fn default() -> Self {
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
}

impl Components {
    /// Share of the targets at `step` of `steps` that come from the EMA teacher rather than
    /// from the VQ codes (2): 0 until `teacher_start`, rising linearly to 1 at `teacher_end`
    /// (a step past `teacher_start` when they are equal), capped at `teacher_max_share`. 0 when
    /// the EMA teacher is off; 1 when it is on and VQ-derived targets are off (the teacher then
    /// starts from the initial model).
    pub fn teacher_share(&self, step: u64, steps: u64) -> f64 {
        if !self.ema_teacher {
            return 0.0;
        }
        if !self.vq_targets {
            return 1.0;
        }
        let at = step as f64 / steps.max(1) as f64;
        let share = if at < self.teacher_start {
            0.0
        } else if at >= self.teacher_end {
            1.0
        } else {
            (at - self.teacher_start) / (self.teacher_end - self.teacher_start)
        };
        share.min(self.teacher_max_share)
    }

    /// Factor of the corruption rates at `step` of `steps` (4): rising linearly from 0 to 1
    /// over the first `corrupt_warmup` of the run; 0 when anti-bypass is off.
    pub fn corruption_scale(&self, step: u64, steps: u64) -> f64 {
        if !self.anti_bypass {
            return 0.0;
        }
        let warmup = self.corrupt_warmup * steps.max(1) as f64;
        if warmup <= 0.0 {
            1.0
        } else {
            (step as f64 / warmup).min(1.0)
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

fn yes() -> bool {
    true
}

/// Where the alignment prior is centred ([`PairAlignConfig::anchors`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Anchors {
    /// Evenly over the window.
    #[default]
    Grid,
    /// On the segments of the VQ-derived targets.
    VqRuns,
}

/// Hyper-parameters of [`super::PairAlignModel`]. Missing JSON fields take the defaults: the
/// shipped vq-v1 encoder, a 1-layer condition transformer and a 2-layer decoder of width 128
/// (about 1.6 M parameters).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PairAlignConfig {
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
    /// Where the alignment prior is centred, in training and decoding: `grid` spreads the
    /// tokens evenly over the window (pairalign-v1); `vq-runs` puts one token on each segment
    /// of the window's VQ-derived target string ([`super::vq_anchors`]; in training, the
    /// target's own segments), so a token's place and the string's length follow the audio
    /// rather than the window, and the prior's width is a fraction of a whole window
    /// (`window_frames`) whatever the clip's length. Decoding with `vq-runs` needs the VQ
    /// tokenizer the model was initialized from
    /// ([`super::PairAlignTokenizer::with_anchor_vq`]).
    #[serde(default)]
    pub anchors: Anchors,
    /// How VQ frame codes become the target string and the anchors: 0 compacts each clip to
    /// `token_rate` ([`super::vq_targets`], pairalign-v1); `k > 0` runs `k` local passes
    /// ([`super::local_targets`]), whose rate follows the audio (about 11 tokens/s at 3) and
    /// whose strings of the same audio agree in any window.
    #[serde(default)]
    pub target_passes: usize,
    /// Grid targets ([`super::grid_targets`]): the VQ-derived string is the code at each
    /// point of the fixed token grid (the code most of the grid cell's frames hold) rather
    /// than the clip compacted to `token_rate` segments, so target `k` is what the audio at
    /// grid point `k` holds: for a model decoded on the grid without history
    /// (`grid_phases` > 0, `decode_history` false). Training only.
    #[serde(default)]
    pub grid_targets: bool,
    /// Draft tokens (anchored models only): each decoder position also gets, through its own
    /// embedding (`decoder.draft`), the VQ-derived code of the segment it is anchored on, so
    /// the decoder starts from the VQ string and learns what to change rather than every
    /// token from the condition alone.
    #[serde(default)]
    pub draft_tokens: bool,
    /// Added to the draft code's score when decoding with draft tokens: 0 lets the decoder
    /// choose freely, a large bonus returns the drafts (the VQ-derived string) unchanged;
    /// between, the decoder changes a draft only where it is that much surer of another code.
    #[serde(default)]
    pub draft_bonus: f64,
    /// Condition frames (50 Hz) on each side that a frame of the condition transformer
    /// attends to; 0: the whole clip (pairalign-v1). A bound makes the condition of a frame
    /// the same whichever window it is in, except near the window's edges.
    #[serde(default)]
    pub cond_window: usize,
    /// Earlier tokens the decoder's self-attention sees; 0: all of them (pairalign-v1). A bound
    /// keeps a token from depending on where its window started.
    #[serde(default)]
    pub decoder_context: usize,
    /// Absolute positions: sinusoids on the condition frames and learned embeddings on the
    /// decoder positions (pairalign-v1). Off, nothing tells a frame or a token where in the
    /// window it is (the `pos` weights stay, unused), so that the same audio gets the same
    /// string at any offset.
    #[serde(default = "yes")]
    pub absolute_positions: bool,
    /// Window phases at which a query clip is tokenized (`Tokenizer::query_phases`,
    /// `crate::tokenize_phases`): above 1 for a model whose string of a stretch of audio
    /// changes with where its window starts, so that one phase of the query sees the audio
    /// windowed as the index did. 1 for pairalign-v1: at 6 phases it found an excerpt's source
    /// file first no more often (11% against 9% over 127 recordings) for 4x the search time
    /// (docs/RESULTS.md, issue 8). At most 30.
    pub query_phases: usize,
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
    #[serde(default = "yes")]
    pub decode_history: bool,
    /// The training components and their hyper-parameters.
    pub components: Components,
}

impl Default for PairAlignConfig {
    fn default() -> Self {
        PairAlignConfig {
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
            anchors: Anchors::Grid,
            target_passes: 0,
            grid_targets: false,
            draft_tokens: false,
            draft_bonus: 0.0,
            cond_window: 0,
            decoder_context: 0,
            absolute_positions: true,
            query_phases: 1,
            grid_phases: 0,
            decode_history: true,
            components: Components::default(),
        }
    }
}

impl PairAlignConfig {
    /// The fields outside the weights that change the strings of a model decoding on the grid
    /// (windowing, length bounds, the decoding prior's effective width, attention bounds,
    /// positions, layer-norm epsilons), as JSON: [`super::PairAlignTokenizer`]'s weights hash
    /// covers them when they differ from the defaults, so that a database indexed before an
    /// edit of `config.json` refuses queries made after it. Training-only fields (the
    /// components, `alignment_sigma` when a decoding width is set), `query_phases` (which
    /// changes how a query is cut, not the index's strings) and the number of `grid_phases`
    /// (only whether there is a fixed grid) are not in it.
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

    /// The draft id of a position with no segment (EOS): one past the codes.
    pub fn no_draft(&self) -> u32 {
        self.encoder.codebook_size as u32
    }

    /// The VQ-derived string of a clip's 50 Hz frame codes: [`super::vq_targets`] at
    /// `token_rate`, [`super::local_targets`] when `target_passes` > 0, or
    /// [`super::grid_targets`] with `grid_targets`.
    pub fn vq_segments(&self, frame_codes: &[u16]) -> crate::TokenString {
        if self.grid_targets {
            super::grid_targets(frame_codes, self.token_rate)
        } else if self.target_passes > 0 {
            super::local_targets(frame_codes, self.target_passes)
        } else {
            super::vq_targets(frame_codes, self.token_rate)
        }
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
        if !(0.0..=1000.0).contains(&self.draft_bonus) {
            return bad(format!(
                "draft_bonus must be in [0, 1000], got {}",
                self.draft_bonus
            ));
        }
        if self.draft_tokens && self.anchors != Anchors::VqRuns {
            return bad("draft_tokens needs anchors vq-runs".into());
        }
        if !(1..=30).contains(&self.query_phases) {
            return bad(format!(
                "query_phases must be in 1..=30, got {}",
                self.query_phases
            ));
        }
        if self.grid_phases > 16 {
            return bad(format!(
                "grid_phases must be at most 16, got {}",
                self.grid_phases
            ));
        }
        if self.grid_phases > 0 && self.anchors != Anchors::Grid {
            return bad("grid_phases needs anchors grid".into());
        }
        if self.grid_targets && (self.anchors != Anchors::Grid || self.target_passes > 0) {
            return bad("grid_targets needs anchors grid and no target_passes".into());
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
        // Grid phases: at most 16, and only on the grid.
        cfg.grid_phases = 17;
        assert!(cfg.validate().is_err());
        cfg.grid_phases = 16;
        cfg.validate().unwrap();
        cfg.anchors = Anchors::VqRuns;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("grid_phases needs anchors grid"), "{err}");
        cfg.grid_phases = 0;
        cfg.validate().unwrap();
        cfg.anchors = Anchors::Grid;
        cfg.validate().unwrap();
        // Grid targets: only on the grid, and not with local passes.
        cfg.grid_targets = true;
        cfg.validate().unwrap();
        cfg.target_passes = 3;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("grid_targets needs anchors grid"), "{err}");
        cfg.target_passes = 0;
        cfg.anchors = Anchors::VqRuns;
        assert!(cfg.validate().is_err());
        cfg.anchors = Anchors::Grid;
        cfg.grid_targets = false;
        // Drafts come from the anchoring segments: not without them.
        cfg.draft_tokens = true;
        let err = cfg.validate().unwrap_err();
        assert!(err.to_string().contains("anchors vq-runs"), "{err}");
        cfg.anchors = Anchors::VqRuns;
        cfg.validate().unwrap();
        cfg.draft_bonus = -1.0;
        let err = cfg.validate().unwrap_err();
        assert!(err.to_string().contains("draft_bonus"), "{err}");
        cfg.draft_bonus = f64::NAN;
        assert!(cfg.validate().is_err());
    }

    #[test]
    fn schedules_ramp_and_follow_the_switches() {
        let mut c = Components::default();
        // teacher_start 0.3, teacher_end 0.6, corrupt_warmup 0.2 of 1000 steps.
        assert_eq!(c.teacher_share(0, 1000), 0.0);
        assert_eq!(c.teacher_share(299, 1000), 0.0);
        assert!((c.teacher_share(450, 1000) - 0.5).abs() < 1e-12);
        assert_eq!(c.teacher_share(600, 1000), 1.0);
        assert_eq!(c.corruption_scale(0, 1000), 0.0);
        assert!((c.corruption_scale(100, 1000) - 0.5).abs() < 1e-12);
        assert_eq!(c.corruption_scale(900, 1000), 1.0);
        c.teacher_max_share = 0.4;
        assert!((c.teacher_share(400, 1000) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(c.teacher_share(450, 1000), 0.4);
        assert_eq!(c.teacher_share(900, 1000), 0.4);
        c.vq_targets = false;
        assert_eq!(c.teacher_share(0, 1000), 1.0);
        c.ema_teacher = false;
        assert_eq!(c.teacher_share(900, 1000), 0.0);
        c.corrupt_warmup = 0.0;
        assert_eq!(c.corruption_scale(0, 1000), 1.0);
        c.anti_bypass = false;
        assert_eq!(c.corruption_scale(900, 1000), 0.0);
    }

    #[test]
    fn json_round_trip_and_defaults_for_missing_fields() {
        let cfg = PairAlignConfig::default();
        let json = serde_json::to_string(&cfg).unwrap();
        let back: PairAlignConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cfg);
        let partial: PairAlignConfig =
            serde_json::from_str(r#"{"d_model": 64, "components": {"contrast": false}}"#).unwrap();
        assert_eq!(partial.d_model, 64);
        assert!(!partial.components.contrast && partial.components.timing);
        // A config that names only some fields keeps the alignment prior.
        assert_eq!(partial.alignment_sigma, 0.1);
        assert_eq!(partial.decode_alignment_sigma, 0.03);
        assert!(serde_json::from_str::<PairAlignConfig>(r#"{"nope": 1}"#).is_err());
    }
}
