//! `PairAlignTokenizer`: log-mel -> normalize -> encoder -> condition -> greedy decoding ->
//! VQ-code tokens with times; and its checkpoint: `model.safetensors` beside `config.json`
//! (config and mel statistics), the layout of the VQ tokenizer's.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use pairalign_datasets::mel::{LogMel, HOP_LENGTH};
use pairalign_datasets::SAMPLE_RATE;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::expected_shapes;
use super::{init_from_vq, PairAlignConfig, PairAlignModel, MAX_GRID_PHASES};
use crate::init::seeded_varmap;
use crate::tokenizer::{TokenString, Tokenizer};
use crate::vq::{subsampled_len, with_front_end, MelNorm, CONFIG_FILE, WEIGHTS_FILE};
use crate::{Error, Result, VqTokenizer};

/// Version of the checkpoint layout written by [`PairAlignTokenizer::save`]: 2 since the model
/// section has a version of its own ([`super::CONFIG_FORMAT`]); 1 is read too (pairalign-v1
/// and v2 ship as 1).
pub const FORMAT_VERSION: u32 = 2;
/// Default tokenizer id, recorded by a database.
pub const TOKENIZER_ID: &str = "pairalign";
/// Most windows per model call in batched CPU inference: the decoder's per-step cost is mostly
/// per-op overhead at these sizes, so larger batches amortize it (measured on 2 cores).
pub const WINDOWS_PER_MODEL_CALL: usize = 32;
/// Duration of one log-mel frame (the 10 ms hop).
const MEL_FRAME_MS: u64 = HOP_LENGTH as u64 * 1000 / SAMPLE_RATE as u64;

/// What `config.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointConfig {
    /// [`FORMAT_VERSION`] of the writer.
    format_version: u32,
    /// The tokenizer id recorded by a database.
    id: String,
    /// The model's hyper-parameters (their own `format_version` says which defaults fill
    /// what a version-1 checkpoint left out).
    #[serde(deserialize_with = "PairAlignConfig::deserialize_versioned")]
    model: PairAlignConfig,
    /// The input normalization (the VQ encoder's, which the encoder starts from).
    norm: MelNorm,
}

/// The PairAlign tokenizer: a [`PairAlignModel`] frozen with its normalization, ready to
/// tokenize batches. Tokens are VQ-code ids (below the codebook size), never BOS, EOS or PAD.
pub struct PairAlignTokenizer {
    id: String,
    cfg: PairAlignConfig,
    norm: MelNorm,
    model: PairAlignModel,
    weights: BTreeMap<String, Tensor>,
    hash: String,
    device: Device,
    mean: Tensor,
    std: Tensor,
    mel: LogMel,
}

impl std::fmt::Debug for PairAlignTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairAlignTokenizer")
            .field("id", &self.id)
            .field("weights_hash", &self.hash)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl PairAlignTokenizer {
    /// Freezes a snapshot of the weights in `varmap` (as built by `PairAlignModel::load` on
    /// it); later changes to the varmap do not change this tokenizer.
    pub fn from_varmap(
        cfg: &PairAlignConfig,
        norm: MelNorm,
        varmap: &VarMap,
        device: &Device,
    ) -> Result<Self> {
        let weights = crate::init::snapshot_weights(varmap)?;
        Self::from_weights(
            TOKENIZER_ID.into(),
            cfg.clone(),
            norm,
            weights,
            device,
            Path::new("<memory>"),
        )
    }

    /// The starting point of training: `vq`'s encoder and normalization, every other weight
    /// drawn from `seed` (untrained: for benchmarks and tests of the shipping size before
    /// trained weights exist).
    pub fn init_from_vq(
        cfg: &PairAlignConfig,
        vq: &VqTokenizer,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let vm = VarMap::new();
        PairAlignModel::load(cfg, seeded_varmap(&vm, seed, device))?;
        init_from_vq(cfg, &vm, vq)?;
        Self::from_varmap(cfg, vq.norm().clone(), &vm, device)
    }

    /// Builds the tokenizer from named weights, checking them against `cfg`.
    fn from_weights(
        id: String,
        cfg: PairAlignConfig,
        norm: MelNorm,
        weights: BTreeMap<String, Tensor>,
        device: &Device,
        source: &Path,
    ) -> Result<Self> {
        cfg.validate()?;
        let n_mels = cfg.encoder.n_mels;
        if norm.mean.len() != n_mels || norm.std.len() != n_mels {
            return Err(Error::BadConfig(format!(
                "normalization has {} means and {} stds for {n_mels} mel bins",
                norm.mean.len(),
                norm.std.len(),
            )));
        }
        check_weights(&cfg, &weights, source)?;
        let weights = weights
            .into_iter()
            .map(|(k, t)| Ok((k, t.to_dtype(DType::F32)?.to_device(device)?)))
            .collect::<Result<BTreeMap<_, _>>>()?;
        let hash = with_front_end(
            decoding_hash(hex(&Sha256::digest(serialize(&weights)?)), &cfg),
            &norm,
        );
        let map: HashMap<String, Tensor> = weights.clone().into_iter().collect();
        let model = PairAlignModel::load(&cfg, VarBuilder::from_tensors(map, DType::F32, device))?;
        // The VQ tokenizer's floor on a standard deviation.
        let std: Vec<f32> = norm.std.iter().map(|s| s.max(1e-5)).collect();
        let mean = Tensor::from_slice(&norm.mean, (1, 1, n_mels), device)?;
        let std = Tensor::from_vec(std, (1, 1, n_mels), device)?;
        Ok(PairAlignTokenizer {
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
        let path = dir.join(WEIGHTS_FILE);
        std::fs::write(&path, serialize(&self.weights)?).map_err(|e| Error::io(&path, e))?;
        let cfg = CheckpointConfig {
            format_version: FORMAT_VERSION,
            id: self.id.clone(),
            model: self.cfg.clone(),
            norm: self.norm.clone(),
        };
        let json = serde_json::to_string_pretty(&cfg)
            .map_err(|e| Error::BadConfig(format!("cannot serialize the config: {e}")))?;
        let path = dir.join(CONFIG_FILE);
        std::fs::write(&path, json).map_err(|e| Error::io(&path, e))
    }

    /// Reads a checkpoint written by [`PairAlignTokenizer::save`] onto `device`.
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
        if !(1..=FORMAT_VERSION).contains(&cfg.format_version) {
            return Err(Error::BadConfig(format!(
                "{}: format_version {} is not supported (this build reads 1 to {FORMAT_VERSION})",
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
        Self::from_weights(
            cfg.id,
            cfg.model,
            cfg.norm,
            tensors.into_iter().collect(),
            device,
            &path,
        )
    }

    /// This tokenizer with a query cut at `phases` grid phases instead of its config's
    /// `grid_phases` (offsets `0.5 + i / phases`, the database's first). A query-time setting:
    /// a file is tokenized at the database's phase whatever the count, and the count is not in
    /// the weights hash. Fewer phases search fewer strings (pairalign-v2 at 2 phases: the
    /// search half as dear, real clean excerpts found first 97.5% against 99.0%;
    /// docs/RESULTS.md). Errors for a model without a fixed grid and outside
    /// 1..=[`MAX_GRID_PHASES`].
    pub fn with_grid_phases(mut self, phases: usize) -> Result<Self> {
        if self.cfg.grid_phases == 0 {
            return Err(Error::BadInput(format!(
                "{} has no fixed token grid: its queries have one string",
                self.id
            )));
        }
        if !(1..=MAX_GRID_PHASES).contains(&phases) {
            return Err(Error::BadInput(format!(
                "query phases must be in 1..={MAX_GRID_PHASES}, got {phases}"
            )));
        }
        self.cfg.grid_phases = phases;
        Ok(self)
    }

    /// The model.
    pub fn model(&self) -> &PairAlignModel {
        &self.model
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &PairAlignConfig {
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

    /// The batch zero-padded to its longest clip and normalized, with each clip's frames;
    /// `None` when every clip is empty. Every length must be a whole number of mel frames.
    pub fn normalized_batch(&self, mels: &[&[f32]]) -> Result<(Option<Tensor>, Vec<usize>)> {
        let m = self.cfg.encoder.n_mels;
        let lens: Vec<usize> = mels.iter().map(|mel| mel.len() / m).collect();
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

    /// The grid offsets of the query variants: 0.5 (the database's) first, then moved by
    /// `1/p`, `2/p`, ... of a token; just `[0.5]` without `grid_phases`.
    fn grid_offsets(&self) -> Vec<f64> {
        let p = self.cfg.grid_phases.max(1);
        (0..p)
            .map(|i| (0.5 + i as f64 / p as f64).fract())
            .collect()
    }

    /// Tokens of a batch of log-mels that each fit one window, times in ms from each one's
    /// start: one model call.
    /// With `grid` (models with `grid_phases`), one string per `(log-mel, offset)` row instead,
    /// on the fixed grid moved by that fraction of a token
    /// ([`PairAlignConfig::grid_centres`]); each log-mel is encoded once, whatever the
    /// number of its rows.
    fn tokenize_pieces(
        &self,
        mels: &[&[f32]],
        grid: Option<&[(usize, f64)]>,
    ) -> Result<Vec<TokenString>> {
        let (x, lens) = self.normalized_batch(mels)?;
        let Some(x) = x else {
            return Ok(vec![
                TokenString::default();
                grid.map_or(mels.len(), <[_]>::len)
            ]);
        };
        let cond = self.model.encode(&x, Some(&lens))?;
        let Some(rows) = grid else {
            return Ok(self
                .model
                .decode_greedy(&cond)?
                .into_iter()
                .zip(&lens)
                .map(|(d, &len)| TokenString {
                    times_ms: d.times_ms(subsampled_len(len)),
                    tokens: d.tokens,
                })
                .collect());
        };
        let mel_of: Vec<usize> = rows.iter().map(|&(m, _)| m).collect();
        let cond = if mel_of.iter().copied().eq(0..lens.len()) {
            cond
        } else {
            cond.select(&mel_of)?
        };
        let offsets: Vec<f64> = rows.iter().map(|&(_, offset)| offset).collect();
        self.model.decode_on_grid(&cond, &offsets)
    }
}

impl Tokenizer for PairAlignTokenizer {
    fn id(&self) -> &str {
        &self.id
    }

    fn weights_hash(&self) -> &str {
        &self.hash
    }

    /// The codebook size: tokens are VQ-code ids.
    fn vocab_size(&self) -> u32 {
        self.cfg.codebook_size() as u32
    }

    fn tokenize(&self, batch: &[&[f32]]) -> Result<Vec<TokenString>> {
        let mels: Vec<Vec<f32>> = batch.par_iter().map(|w| self.mel.compute(w)).collect();
        let refs: Vec<&[f32]> = mels.iter().map(Vec::as_slice).collect();
        self.tokenize_mels(&refs)
    }

    /// Clips longer than `window_frames` are cut into windows, decoded separately and
    /// concatenated with absolute times. On the CPU the windows are split into one model call
    /// per core (at most [`WINDOWS_PER_MODEL_CALL`] each) run on rayon's pool, as the VQ
    /// tokenizer does: candle's element-wise CPU ops are single-threaded.
    fn tokenize_mels(&self, mels: &[&[f32]]) -> Result<Vec<TokenString>> {
        let offsets = (self.cfg.grid_phases > 0).then_some(&[0.5][..]);
        Ok(self.tokenize_mels_at(mels, offsets)?.swap_remove(0))
    }

    fn tokenize_variants(&self, batch: &[&[f32]]) -> Result<Vec<Vec<TokenString>>> {
        let mels: Vec<Vec<f32>> = batch.par_iter().map(|w| self.mel.compute(w)).collect();
        let refs: Vec<&[f32]> = mels.iter().map(Vec::as_slice).collect();
        self.tokenize_mels_variants(&refs)
    }

    /// One variant per grid phase (`grid_phases`), the database's first.
    fn tokenize_mels_variants(&self, mels: &[&[f32]]) -> Result<Vec<Vec<TokenString>>> {
        if self.cfg.grid_phases == 0 {
            return Ok(vec![self.tokenize_mels(mels)?]);
        }
        self.tokenize_mels_at(mels, Some(&self.grid_offsets()))
    }
}

impl PairAlignTokenizer {
    /// [`Tokenizer::tokenize_mels`] once per grid offset (`[variant][clip]`; None: one
    /// variant, on the trained grid with EOS, or on the VQ anchors). Every (variant, window)
    /// is a row of some model call, so the variants of one query share the cores.
    fn tokenize_mels_at(
        &self,
        mels: &[&[f32]],
        offsets: Option<&[f64]>,
    ) -> Result<Vec<Vec<TokenString>>> {
        let m = self.cfg.encoder.n_mels;
        let window = self.cfg.window_frames * m;
        // (clip, first frame) of every window.
        let mut pieces: Vec<(usize, usize, &[f32])> = Vec::new();
        for (i, mel) in mels.iter().enumerate() {
            if mel.len() % m != 0 {
                return Err(Error::BadInput(format!(
                    "log-mel {i} has {} values, not a multiple of {m} mel bins",
                    mel.len()
                )));
            }
            for (k, piece) in mel.chunks(window).enumerate() {
                pieces.push((i, k * self.cfg.window_frames, piece));
            }
        }
        let variants = offsets.map_or(1, <[f64]>::len);
        // (variant, piece) of every model row, window by window so that a model call holds
        // all the phases of its windows and encodes each once; a clip's windows stay in order.
        let rows: Vec<(usize, usize)> = (0..pieces.len())
            .flat_map(|p| (0..variants).map(move |v| (v, p)))
            .collect();
        let per_call = if self.device.is_cpu() {
            rows.len()
                .div_ceil(rayon::current_num_threads())
                .clamp(1, WINDOWS_PER_MODEL_CALL)
        } else {
            rows.len().max(1)
        };
        let strings: Vec<Vec<TokenString>> = rows
            .par_chunks(per_call)
            .map(|chunk| {
                let Some(offsets) = offsets else {
                    let refs: Vec<&[f32]> = chunk.iter().map(|&(_, p)| pieces[p].2).collect();
                    return self.tokenize_pieces(&refs, None);
                };
                // Each window once, however many of its grid phases the chunk holds.
                let mut unique: Vec<usize> = Vec::new();
                let grid: Vec<(usize, f64)> = chunk
                    .iter()
                    .map(|&(v, p)| {
                        let m = unique.iter().position(|&u| u == p).unwrap_or_else(|| {
                            unique.push(p);
                            unique.len() - 1
                        });
                        (m, offsets[v])
                    })
                    .collect();
                let refs: Vec<&[f32]> = unique.iter().map(|&p| pieces[p].2).collect();
                self.tokenize_pieces(&refs, Some(&grid))
            })
            .collect::<Result<_>>()?;
        let mut out = vec![vec![TokenString::default(); mels.len()]; variants];
        for (&(v, p), ts) in rows.iter().zip(strings.into_iter().flatten()) {
            let (clip, first_frame, _) = pieces[p];
            let offset = first_frame as u64 * MEL_FRAME_MS;
            let dst = &mut out[v][clip];
            dst.tokens.extend(ts.tokens);
            dst.times_ms.extend(
                ts.times_ms
                    .iter()
                    .map(|&t| u32::try_from(u64::from(t) + offset).unwrap_or(u32::MAX)),
            );
        }
        Ok(out)
    }
}

/// Fails with [`Error::WeightsMismatch`] unless `weights` has exactly the tensors `cfg` needs.
fn check_weights(
    cfg: &PairAlignConfig,
    weights: &BTreeMap<String, Tensor>,
    path: &Path,
) -> Result<()> {
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

/// Safetensors bytes of `weights` (moved to the CPU first; the layout is sorted by name, so
/// equal weights give equal bytes and so equal hashes).
fn serialize(weights: &BTreeMap<String, Tensor>) -> Result<Vec<u8>> {
    let cpu = weights
        .iter()
        .map(|(k, t)| Ok((k.clone(), t.to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    safetensors::serialize(cpu.iter(), None)
        .map_err(|e| Error::Candle(candle_core::Error::Msg(format!("safetensors: {e}"))))
}

/// The weights hash of a model: `weights_hash`, the SHA-256 of its weights as
/// `model.safetensors` holds them, when its decoding fields
/// ([`PairAlignConfig::decoding_key`]) are the defaults (pairalign-v1's: the hash that every
/// database indexed with it recorded), else the SHA-256 of that hash and the fields, so that
/// the same weights decoded another way are another tokenizer to a database.
fn decoding_hash(weights_hash: String, cfg: &PairAlignConfig) -> String {
    let key = cfg.decoding_key();
    if key == PairAlignConfig::paper().decoding_key() {
        return weights_hash;
    }
    extend_hash(&weights_hash, &[key.as_bytes()])
}

/// The SHA-256 of `hash` followed by each of `parts`, each after a NUL byte: a hash that
/// changes when any part does.
fn extend_hash(hash: &str, parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    h.update(hash.as_bytes());
    for part in parts {
        h.update(b"\0");
        h.update(part);
    }
    hex(&h.finalize())
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
