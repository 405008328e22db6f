//! `VqTokenizer`: log-mel -> normalize -> encoder -> nearest codes at 50 Hz -> collapsed tokens;
//! and its checkpoint: `model.safetensors` beside `config.json` (config and mel statistics).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use pairalign_datasets::mel::{LogMel, LOG_FLOOR};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{subsampled_len, VqConfig, VqModel};
use crate::tokenizer::{collapse_repeats, TokenString, Tokenizer};
use crate::{Error, Result};

/// Duration of one code frame: the encoder runs at 50 Hz (stride 2 over the 10 ms mel hop).
pub const CODE_FRAME_MS: u32 = 20;
/// Version of the checkpoint layout written by [`VqTokenizer::save`].
pub const FORMAT_VERSION: u32 = 1;
/// Name of the weights file in a checkpoint folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Name of the config file in a checkpoint folder.
pub const CONFIG_FILE: &str = "config.json";
/// Default tokenizer id.
const DEFAULT_ID: &str = "vq";
/// Most clips per model call in batched CPU inference (measured on 2 cores: 16 clips of 3 s per
/// call beat 32 and 64).
pub const CLIPS_PER_CALL: usize = 16;
/// Floor on a normalization standard deviation, so that a constant mel bin does not divide by 0.
const MIN_STD: f32 = 1e-5;

/// Per-bin log-mel statistics: the model sees `(mel - mean) / std`, of each window's log-mel
/// brought to one level first when `level` is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MelNorm {
    /// Mean of each mel bin over the training frames.
    pub mean: Vec<f32>,
    /// Standard deviation of each mel bin over the training frames (at least 1e-5).
    pub std: Vec<f32>,
    /// Per-window level normalization before the statistics (absent in v1 configs: their
    /// tokens depend on the level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<LevelNorm>,
}

/// Level normalization of one window's log-mel (issue 22, "level invariance by construction").
/// A gain `g` multiplies every mel energy by `g^2`, so it adds `2 ln g` to every log-mel value
/// above the log floor; subtracting the window's level `s` (the log of its mean mel energy,
/// which moves by the same `2 ln g`) takes the gain out exactly. What the log floor of the
/// front end (`ln 1e-10`, digital silence) would let through is cut by a floor relative to
/// the level: values below `level - floor_db` are raised to it, the same at any gain while
/// the absolute floor stays below that (a window whose mean energy is at least
/// `floor + 20 dB` above 1e-10 for a 20 dB quieter copy); values at the absolute floor itself
/// (digital silence) go to the relative floor at any gain.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelNorm {
    /// The level every window is brought to: its log mean mel energy becomes this (the
    /// training data's typical level, so that features keep their usual range).
    pub reference: f32,
    /// How far below the window's level (in natural-log units of energy: 2.3 per 10 dB) values
    /// are floored.
    pub floor: f32,
}

impl LevelNorm {
    /// Brings one window's log-mel (any frames x bins, row-major) to the reference level, in
    /// place. An empty window is left as it is.
    pub fn apply(&self, mel: &mut [f32]) {
        let Some(level) = log_mean_energy(mel) else {
            return;
        };
        // Values at the front end's log floor are digital silence, not a level: they go to the
        // relative floor whatever the gain (otherwise a quieter copy would lift them closer to
        // its level than the original's).
        let silence = LOG_FLOOR + 1e-3;
        for v in mel.iter_mut() {
            *v = if *v <= silence {
                -self.floor
            } else {
                (*v - level).max(-self.floor)
            } + self.reference;
        }
    }
}

/// A weights hash extended by the front end's settings when they are not v1's
/// ([`MelNorm::hash_key`]): the same weights behind another front end are another tokenizer to
/// a database.
pub(crate) fn with_front_end(hash: String, norm: &MelNorm) -> String {
    match norm.hash_key() {
        None => hash,
        Some(key) => {
            let mut h = Sha256::new();
            h.update(hash.as_bytes());
            h.update(b"\0");
            h.update(key.as_bytes());
            hex(&h.finalize())
        }
    }
}

/// The log of the mean energy of log-mel values (`ln mean exp(L)`), computed without overflow;
/// `None` for no values.
pub fn log_mean_energy(mel: &[f32]) -> Option<f32> {
    let top = mel.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !top.is_finite() {
        return None;
    }
    let sum: f64 = mel.iter().map(|&v| f64::from(v - top).exp()).sum();
    Some(top + (sum / mel.len() as f64).ln() as f32)
}

impl MelNorm {
    /// Mean 0 and std 1: no normalization.
    pub fn identity(n_mels: usize) -> Self {
        MelNorm {
            mean: vec![0.0; n_mels],
            std: vec![1.0; n_mels],
            level: None,
        }
    }

    /// Brings one window's log-mel to the reference level in place when `level` is set (the
    /// step before the statistics); leaves it as it is otherwise.
    pub fn apply_level(&self, mel: &mut [f32]) {
        if let Some(level) = &self.level {
            level.apply(mel);
        }
    }

    /// The statistics' contribution to a tokenizer's weights hash: nothing without level
    /// normalization (so v1 hashes are unchanged), else its settings.
    pub fn hash_key(&self) -> Option<String> {
        self.level
            .map(|l| format!("level:{}:{}", l.reference.to_bits(), l.floor.to_bits()))
    }

    /// Statistics over every frame of `mels` (each row-major `frames x n_mels`).
    pub fn from_mels(mels: &[&[f32]], n_mels: usize) -> Self {
        let mut sum = vec![0f64; n_mels];
        let mut sum_sq = vec![0f64; n_mels];
        let mut frames = 0usize;
        for mel in mels {
            for row in mel.chunks_exact(n_mels) {
                for (i, &x) in row.iter().enumerate() {
                    sum[i] += f64::from(x);
                    sum_sq[i] += f64::from(x) * f64::from(x);
                }
                frames += 1;
            }
        }
        if frames == 0 {
            return Self::identity(n_mels);
        }
        let n = frames as f64;
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let std = sum
            .iter()
            .zip(&sum_sq)
            .map(|(s, q)| ((q / n - (s / n) * (s / n)).max(0.0).sqrt() as f32).max(MIN_STD))
            .collect();
        MelNorm {
            mean,
            std,
            level: None,
        }
    }
}

/// What `config.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointConfig {
    /// [`FORMAT_VERSION`] of the writer.
    format_version: u32,
    /// The tokenizer id recorded by a database.
    id: String,
    /// The model's hyper-parameters.
    model: VqConfig,
    /// The input normalization.
    norm: MelNorm,
}

/// The VQ tokenizer: a [`VqModel`] frozen with its normalization, ready to tokenize batches.
pub struct VqTokenizer {
    id: String,
    cfg: VqConfig,
    norm: MelNorm,
    model: VqModel,
    weights: BTreeMap<String, Tensor>,
    hash: String,
    device: Device,
    mean: Tensor,
    std: Tensor,
    mel: LogMel,
}

impl std::fmt::Debug for VqTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VqTokenizer")
            .field("id", &self.id)
            .field("weights_hash", &self.hash)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl VqTokenizer {
    /// Freezes a snapshot of the weights in `varmap` (as built by `VqModel::load` on it), e.g.
    /// at the end of training; later training steps do not change this tokenizer.
    pub fn from_varmap(
        cfg: &VqConfig,
        norm: MelNorm,
        varmap: &VarMap,
        device: &Device,
    ) -> Result<Self> {
        let weights = crate::init::snapshot_weights(varmap)?;
        Self::from_weights(
            DEFAULT_ID.into(),
            cfg.clone(),
            norm,
            weights,
            device,
            Path::new("<memory>"),
        )
    }

    /// Builds the tokenizer from named weights, checking them against `cfg`.
    fn from_weights(
        id: String,
        cfg: VqConfig,
        norm: MelNorm,
        weights: BTreeMap<String, Tensor>,
        device: &Device,
        source: &Path,
    ) -> Result<Self> {
        cfg.validate()?;
        if norm.mean.len() != cfg.n_mels || norm.std.len() != cfg.n_mels {
            return Err(Error::BadConfig(format!(
                "normalization has {} means and {} stds for {} mel bins",
                norm.mean.len(),
                norm.std.len(),
                cfg.n_mels
            )));
        }
        check_weights(&cfg, &weights, source)?;
        let weights = weights
            .into_iter()
            .map(|(k, t)| Ok((k, t.to_dtype(DType::F32)?.to_device(device)?)))
            .collect::<Result<BTreeMap<_, _>>>()?;
        let bytes = serialize(&weights)?;
        let hash = with_front_end(hex(&Sha256::digest(&bytes)), &norm);
        let map: HashMap<String, Tensor> = weights.clone().into_iter().collect();
        let model = VqModel::load(&cfg, VarBuilder::from_tensors(map, DType::F32, device))?;
        let std: Vec<f32> = norm.std.iter().map(|s| s.max(MIN_STD)).collect();
        let mean = Tensor::from_slice(&norm.mean, (1, 1, cfg.n_mels), device)?;
        let std = Tensor::from_vec(std, (1, 1, cfg.n_mels), device)?;
        Ok(VqTokenizer {
            id,
            cfg,
            norm,
            model,
            weights,
            hash,
            device: device.clone(),
            mean,
            std,
            mel: LogMel::new(),
        })
    }

    /// Writes `dir/model.safetensors` and `dir/config.json`, creating `dir`.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let bytes = serialize(&self.weights)?;
        let path = dir.join(WEIGHTS_FILE);
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
        let cfg = CheckpointConfig {
            format_version: FORMAT_VERSION,
            id: self.id.clone(),
            model: self.cfg.clone(),
            norm: self.norm.clone(),
        };
        let json = serde_json::to_string_pretty(&cfg)
            .map_err(|e| Error::BadConfig(format!("cannot serialize the config: {e}")))?;
        let path = dir.join(CONFIG_FILE);
        std::fs::write(&path, json).map_err(|e| Error::io(&path, e))?;
        Ok(())
    }

    /// Reads a checkpoint written by [`VqTokenizer::save`] onto `device`.
    pub fn load(dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let dir = dir.as_ref();
        let path = dir.join(CONFIG_FILE);
        let json = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let weights_path = dir.join(WEIGHTS_FILE);
        let bytes = std::fs::read(&weights_path).map_err(|e| Error::io(&weights_path, e))?;
        Self::from_bytes(&json, &bytes, dir, device)
    }

    /// Builds the tokenizer from the contents of `config.json` and `model.safetensors` (for
    /// weights compiled into the binary); `source` names them in errors.
    pub fn from_bytes(
        config_json: &str,
        weights: &[u8],
        source: &Path,
        device: &Device,
    ) -> Result<Self> {
        let config_path = source.join(CONFIG_FILE);
        let cfg: CheckpointConfig = serde_json::from_str(config_json)
            .map_err(|e| Error::BadConfig(format!("{}: {e}", config_path.display())))?;
        if cfg.format_version != FORMAT_VERSION {
            return Err(Error::BadConfig(format!(
                "{}: format_version {} is not supported (this build reads {FORMAT_VERSION})",
                config_path.display(),
                cfg.format_version
            )));
        }
        let path = source.join(WEIGHTS_FILE);
        let tensors =
            candle_core::safetensors::load_buffer(weights, &Device::Cpu).map_err(|e| {
                Error::WeightsMismatch {
                    path: path.clone(),
                    detail: format!("not a valid safetensors file: {e}"),
                }
            })?;
        let tok = Self::from_weights(
            cfg.id,
            cfg.model,
            cfg.norm,
            tensors.into_iter().collect(),
            device,
            &path,
        )?;
        debug_assert_eq!(
            tok.hash,
            with_front_end(hex(&Sha256::digest(weights)), &tok.norm)
        );
        Ok(tok)
    }

    /// The model.
    pub fn model(&self) -> &VqModel {
        &self.model
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &VqConfig {
        &self.cfg
    }

    /// The input normalization.
    pub fn norm(&self) -> &MelNorm {
        &self.norm
    }

    /// The weights by name, on the tokenizer's device.
    pub fn weights(&self) -> &BTreeMap<String, Tensor> {
        &self.weights
    }

    /// Raw 50 Hz codes of a batch of log-mels (each `frames x n_mels`), before collapsing.
    pub fn frame_codes(&self, mels: &[&[f32]]) -> Result<Vec<Vec<u16>>> {
        let (x, lens) = self.normalized_batch(mels)?;
        let Some(x) = x else {
            return Ok(vec![vec![]; mels.len()]);
        };
        let codes = self.model.encode(&x, Some(&lens))?.to_vec2::<u32>()?;
        Ok(codes
            .into_iter()
            .zip(&lens)
            .map(|(row, &len)| {
                row[..subsampled_len(len)]
                    .iter()
                    .map(|&c| c as u16)
                    .collect()
            })
            .collect())
    }

    /// The dense baseline: each clip's encoder output before quantization, averaged over its
    /// 50 Hz frames (`code_dim` values; zeros for an empty clip).
    pub fn pooled_embeddings(&self, mels: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        let (x, lens) = self.normalized_batch(mels)?;
        let Some(x) = x else {
            return Ok(vec![vec![0.0; self.cfg.code_dim]; mels.len()]);
        };
        let z = self
            .model
            .encoder
            .forward(&x, Some(&lens))?
            .to_vec3::<f32>()?;
        Ok(z.into_iter()
            .zip(&lens)
            .map(|(rows, &len)| {
                let n = subsampled_len(len);
                let mut mean = vec![0f32; self.cfg.code_dim];
                for row in &rows[..n] {
                    for (m, v) in mean.iter_mut().zip(row) {
                        *m += v / n as f32;
                    }
                }
                mean
            })
            .collect())
    }

    /// The batch zero-padded to its longest clip and normalized, with each clip's frames;
    /// `None` when every clip is empty.
    fn normalized_batch(&self, mels: &[&[f32]]) -> Result<(Option<Tensor>, Vec<usize>)> {
        let m = self.cfg.n_mels;
        let mut lens = Vec::with_capacity(mels.len());
        for (i, mel) in mels.iter().enumerate() {
            if mel.len() % m != 0 {
                return Err(Error::BadInput(format!(
                    "log-mel {i} has {} values, not a multiple of {m} mel bins",
                    mel.len()
                )));
            }
            lens.push(mel.len() / m);
        }
        let t = lens.iter().copied().max().unwrap_or(0);
        if t == 0 {
            return Ok((None, lens));
        }
        let mut buf = vec![0f32; mels.len() * t * m];
        for (row, mel) in buf.chunks_exact_mut(t * m).zip(mels) {
            row[..mel.len()].copy_from_slice(mel);
            self.norm.apply_level(&mut row[..mel.len()]);
        }
        let x = Tensor::from_vec(buf, (mels.len(), t, m), &self.device)?
            .broadcast_sub(&self.mean)?
            .broadcast_div(&self.std)?;
        Ok((Some(x), lens))
    }
}

impl Tokenizer for VqTokenizer {
    fn id(&self) -> &str {
        &self.id
    }

    fn weights_hash(&self) -> &str {
        &self.hash
    }

    fn vocab_size(&self) -> u32 {
        self.cfg.codebook_size as u32
    }

    fn tokenize(&self, batch: &[&[f32]]) -> Result<Vec<TokenString>> {
        let mels: Vec<Vec<f32>> = batch.par_iter().map(|w| self.mel.compute(w)).collect();
        let refs: Vec<&[f32]> = mels.iter().map(Vec::as_slice).collect();
        self.tokenize_mels(&refs)
    }

    /// On the CPU the batch is split into one model call per core (at most
    /// [`CLIPS_PER_CALL`] clips each) run on rayon's pool: candle's matmuls use several
    /// threads but its element-wise ops one, so calls side by side keep both cores busy (about
    /// twice the throughput on 2 cores, see `benches/benches/tokenizer.rs`). A clip's tokens do
    /// not depend on the batch it is in.
    fn tokenize_mels(&self, mels: &[&[f32]]) -> Result<Vec<TokenString>> {
        let per_call = if self.device.is_cpu() {
            mels.len()
                .div_ceil(rayon::current_num_threads())
                .clamp(1, CLIPS_PER_CALL)
        } else {
            mels.len().max(1)
        };
        let codes: Vec<Vec<Vec<u16>>> = mels
            .par_chunks(per_call)
            .map(|chunk| self.frame_codes(chunk))
            .collect::<Result<_>>()?;
        Ok(codes
            .iter()
            .flatten()
            .map(|codes| collapse_repeats(codes, CODE_FRAME_MS))
            .collect())
    }
}

/// The names and shapes a model with `cfg` has, from a throwaway CPU init.
fn expected_shapes(cfg: &VqConfig) -> Result<BTreeMap<String, Vec<usize>>> {
    let vm = VarMap::new();
    VqModel::load(cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu))?;
    let data = vm
        .data()
        .lock()
        .map_err(|_| Error::BadConfig("the VarMap lock is poisoned".into()))?;
    Ok(data
        .iter()
        .map(|(k, v)| (k.clone(), v.dims().to_vec()))
        .collect())
}

/// Fails with [`Error::WeightsMismatch`] unless `weights` has exactly the tensors `cfg` needs.
fn check_weights(cfg: &VqConfig, weights: &BTreeMap<String, Tensor>, path: &Path) -> Result<()> {
    let expected = expected_shapes(cfg)?;
    let mismatch = |detail: String| {
        Err(Error::WeightsMismatch {
            path: path.to_path_buf(),
            detail,
        })
    };
    for (name, shape) in &expected {
        match weights.get(name) {
            None => return mismatch(format!("tensor {name} is missing")),
            Some(t) if t.dims() != shape.as_slice() => {
                return mismatch(format!(
                    "tensor {name} has shape {:?}, the config needs {shape:?}",
                    t.dims()
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(name) = weights.keys().find(|k| !expected.contains_key(*k)) {
        return mismatch(format!("unexpected tensor {name}"));
    }
    Ok(())
}

/// Safetensors bytes of `weights` (moved to the CPU first; the layout is sorted, so equal weights
/// give equal bytes).
fn serialize(weights: &BTreeMap<String, Tensor>) -> Result<Vec<u8>> {
    let cpu = weights
        .iter()
        .map(|(k, t)| Ok((k.clone(), t.to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    safetensors::serialize(cpu.iter(), None)
        .map_err(|e| Error::Candle(candle_core::Error::Msg(format!("safetensors: {e}"))))
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A log-mel window with speech-like spread and some digital silence (the log floor).
    fn window() -> Vec<f32> {
        let floor = 1e-10f32.ln();
        (0..300 * 8)
            .map(|i| {
                if (i / 8) % 50 < 5 {
                    floor
                } else {
                    -6.0 + 4.0 * ((i as f32) * 0.37).sin() - 0.02 * (i % 8) as f32
                }
            })
            .collect()
    }

    /// The front end's log-mel of the same audio `db` decibels louder: every value moves by
    /// `db / 10 * ln 10`, values at the log floor stay there.
    fn louder(mel: &[f32], db: f32) -> Vec<f32> {
        let floor = 1e-10f32.ln();
        let shift = db / 10.0 * std::f32::consts::LN_10;
        mel.iter()
            .map(|&v| {
                if v <= floor {
                    floor
                } else {
                    (v + shift).max(floor)
                }
            })
            .collect()
    }

    #[test]
    fn log_mean_energy_is_the_log_of_the_mean_energy() {
        let mel = [0.0f32, 2f32.ln(), 3f32.ln()];
        assert!((log_mean_energy(&mel).unwrap() - 2f32.ln()).abs() < 1e-6);
        assert_eq!(log_mean_energy(&[]), None);
        // Large values do not overflow.
        let big = [500.0f32, 500.0];
        assert!((log_mean_energy(&big).unwrap() - 500.0).abs() < 1e-4);
    }

    #[test]
    fn a_leveled_window_is_the_same_at_any_gain_within_20_db() {
        let level = LevelNorm {
            reference: -5.0,
            floor: 12.0,
        };
        let mut reference = window();
        level.apply(&mut reference);
        for db in [-20.0f32, -12.0, -6.0, -3.0, 3.0, 6.0, 12.0, 20.0] {
            let mut moved = louder(&window(), db);
            level.apply(&mut moved);
            let worst = reference
                .iter()
                .zip(&moved)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-4, "{db} dB: values differ by up to {worst}");
        }
        // The window's level becomes the reference (the floor raises it a little).
        let leveled = log_mean_energy(&reference).unwrap();
        assert!((leveled - level.reference).abs() < 0.01, "{leveled}");
        // Without level normalization the statistics see the window as it is.
        let norm = MelNorm::identity(8);
        let mut unchanged = window();
        norm.apply_level(&mut unchanged);
        assert_eq!(unchanged, window());
        assert_eq!(norm.hash_key(), None);
        let leveled = MelNorm {
            level: Some(level),
            ..MelNorm::identity(8)
        };
        assert!(leveled.hash_key().is_some());
        let mut applied = window();
        leveled.apply_level(&mut applied);
        assert_eq!(applied, reference);
    }

    #[test]
    fn configs_without_level_read_and_write_as_before() {
        let json = r#"{"mean":[0.0],"std":[1.0]}"#;
        let norm: MelNorm = serde_json::from_str(json).unwrap();
        assert_eq!(norm.level, None);
        assert_eq!(serde_json::to_string(&norm).unwrap(), json);
    }
}
