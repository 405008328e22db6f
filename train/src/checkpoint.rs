//! Training checkpoints on disk, the one writer and reader both trainers use: a folder replaced
//! atomically, so that a run killed at any moment leaves either the previous checkpoint or the
//! new one, never a mix.
//!
//! Layout of `OUT/checkpoint/`: the tokenizer files (`model.safetensors`, `config.json`, loadable
//! as a tokenizer), `optimizer.safetensors` (the AdamW moments), what else a trainer keeps (the
//! PairAlign run's `teacher.safetensors`) and `trainer.json` ([`TrainerState`]: step, run
//! config, the data it trains on). A save writes `OUT/checkpoint.tmp/`, syncs it, renames the old
//! checkpoint to `checkpoint.old`, renames the new one into place, and removes the old one.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use pairalign_datasets::cache::FeatureCache;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::optim::AdamW;
use crate::{Error, Result};

/// Version of `trainer.json` this build writes (the same for both tokenizers).
pub const FORMAT_VERSION: u32 = 1;
/// The oldest version of `trainer.json` this build reads.
pub const OLDEST_SUPPORTED_VERSION: u32 = 1;

/// Folder of the current checkpoint inside a run's output folder.
pub const CHECKPOINT_DIR: &str = "checkpoint";
/// The optimizer state file inside a checkpoint.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The trainer state file inside a checkpoint.
pub const TRAINER_FILE: &str = "trainer.json";

/// `out/checkpoint`, or `out/checkpoint.old` when a save was interrupted between its two
/// renames; `None` when the run has no checkpoint yet.
pub fn find(out: &Path) -> Option<PathBuf> {
    [CHECKPOINT_DIR, "checkpoint.old"]
        .iter()
        .map(|name| out.join(name))
        .find(|dir| dir.join(TRAINER_FILE).is_file())
}

/// Writes a checkpoint: `fill` writes the files into an empty temporary folder, which then
/// replaces `out/checkpoint`.
pub fn save(out: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
    let tmp = out.join("checkpoint.tmp");
    let old = out.join("checkpoint.old");
    let dir = out.join(CHECKPOINT_DIR);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    fill(&tmp)?;
    for entry in std::fs::read_dir(&tmp).map_err(|e| Error::io(&tmp, e))? {
        let path = entry.map_err(|e| Error::io(&tmp, e))?.path();
        sync(&path)?;
    }
    sync(&tmp)?;
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        }
        std::fs::rename(&dir, &old).map_err(|e| Error::io(&dir, e))?;
    }
    std::fs::rename(&tmp, &dir).map_err(|e| Error::io(&tmp, e))?;
    sync(out)?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    Ok(dir)
}

/// Writes named tensors as safetensors (sorted by name, so equal tensors give equal bytes).
pub fn write_tensors(path: &Path, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
    let cpu: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, t)| Ok((k.clone(), t.to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<Result<_>>()?;
    candle_core::safetensors::save(&cpu, path).map_err(|e| match e {
        candle_core::Error::Io(io) => Error::io(path, io),
        other => Error::Candle(other),
    })
}

/// Reads a safetensors file onto `device`.
pub fn read_tensors(path: &Path, device: &Device) -> Result<BTreeMap<String, Tensor>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| {
        Error::BadCheckpoint(format!(
            "{}: not a valid safetensors file: {e}",
            path.display()
        ))
    })?;
    Ok(tensors.into_iter().collect())
}

/// Identifies the training data, so that a run does not resume on other data by mistake.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// Clips in the cache.
    pub clips: usize,
    /// Frames of all views.
    pub total_frames: u64,
    /// Views per clip.
    pub views_per_clip: usize,
}

impl DataFingerprint {
    /// The fingerprint of `cache`.
    pub fn of(cache: &FeatureCache) -> Self {
        DataFingerprint {
            clips: cache.len(),
            total_frames: cache.total_frames(),
            views_per_clip: cache.views_per_clip(),
        }
    }
}

/// What `trainer.json` holds, for either tokenizer (the fields in file order).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerState<C> {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Steps done.
    pub step: u64,
    /// The run's config (`VqTrainConfig`, `PairAlignTrainConfig`).
    pub config: C,
    /// The data the run trains on.
    pub data: DataFingerprint,
    /// Weights hash of the VQ tokenizer in `OUT/init-vq` that a PairAlign run started from;
    /// absent for a VQ run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_vq_hash: Option<String>,
}

/// A run's checkpoint as read back by [`load`]: its folder and its state.
#[derive(Clone, Debug)]
pub struct Saved<C> {
    /// The checkpoint folder (`OUT/checkpoint`, or `OUT/checkpoint.old` after an interrupted
    /// save).
    pub dir: PathBuf,
    /// Its `trainer.json`.
    pub state: TrainerState<C>,
}

/// Reads the checkpoint of the run in `out`, checking its version and that it was trained on
/// `cache`.
pub fn load<C: DeserializeOwned>(out: &Path, cache: &FeatureCache) -> Result<Saved<C>> {
    let dir = find(out).ok_or_else(|| {
        Error::BadCheckpoint(format!("{} holds no checkpoint to resume", out.display()))
    })?;
    let path = dir.join(TRAINER_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let state: TrainerState<C> = serde_json::from_str(&text)
        .map_err(|e| Error::BadCheckpoint(format!("{}: {e}", path.display())))?;
    if !(OLDEST_SUPPORTED_VERSION..=FORMAT_VERSION).contains(&state.format_version) {
        return Err(Error::BadCheckpoint(format!(
            "{}: format_version {} (this build reads {FORMAT_VERSION})",
            path.display(),
            state.format_version
        )));
    }
    let data = DataFingerprint::of(cache);
    if state.data != data {
        return Err(Error::BadCheckpoint(format!(
            "{} was trained on other data ({:?}) than {} ({data:?})",
            dir.display(),
            state.data,
            cache.path().display(),
        )));
    }
    Ok(Saved { dir, state })
}

/// Writes the checkpoint of `state` into `out`: `fill` writes the trainer's files (tokenizer,
/// and what else it keeps), then the optimizer's moments and `trainer.json` are added, and the
/// folder replaces the previous checkpoint.
pub fn save_run<C: Serialize>(
    out: &Path,
    state: &TrainerState<C>,
    opt: &AdamW,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    save(out, |dir| {
        fill(dir)?;
        write_tensors(&dir.join(OPTIMIZER_FILE), &opt.state())?;
        let json = serde_json::to_string_pretty(state)
            .map_err(|e| Error::BadCheckpoint(format!("cannot serialize: {e}")))?;
        let path = dir.join(TRAINER_FILE);
        std::fs::write(&path, json).map_err(|e| Error::io(&path, e))
    })
}

/// Sets every variable of `varmap` from `weights` (the tokenizer of the checkpoint in `dir`),
/// moved to `device`; a variable without a tensor is an error.
pub fn restore_vars(
    varmap: &VarMap,
    weights: &BTreeMap<String, Tensor>,
    dir: &Path,
    device: &Device,
) -> Result<()> {
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| Error::BadConfig("the VarMap lock is poisoned".into()))?;
    for (name, var) in vars.iter() {
        let t = weights.get(name).ok_or_else(|| {
            Error::BadCheckpoint(format!("{} has no tensor {name}", dir.display()))
        })?;
        var.set(&t.to_device(device)?)?;
    }
    Ok(())
}

/// Restores `opt` from the moments in the checkpoint folder `dir`, at `step`.
pub fn restore_optimizer(opt: &mut AdamW, dir: &Path, step: u64, device: &Device) -> Result<()> {
    let moments = read_tensors(&dir.join(OPTIMIZER_FILE), device)?;
    opt.restore(&moments, step)
}

/// fsync of a file or a folder.
fn sync(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_replaces_the_checkpoint_and_find_falls_back_to_old() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        assert_eq!(find(out), None);
        save(out, |tmp| {
            std::fs::write(tmp.join(TRAINER_FILE), "1").map_err(|e| Error::io(tmp, e))
        })
        .unwrap();
        assert_eq!(find(out), Some(out.join(CHECKPOINT_DIR)));
        save(out, |tmp| {
            std::fs::write(tmp.join(TRAINER_FILE), "2").map_err(|e| Error::io(tmp, e))
        })
        .unwrap();
        let text = std::fs::read_to_string(out.join(CHECKPOINT_DIR).join(TRAINER_FILE)).unwrap();
        assert_eq!(text, "2");
        assert!(!out.join("checkpoint.old").exists());
        assert!(!out.join("checkpoint.tmp").exists());
        // A save that failed while filling leaves the previous checkpoint.
        let err = save(out, |_| Err(Error::BadCheckpoint("disk full".into())));
        assert!(err.is_err());
        let text = std::fs::read_to_string(out.join(CHECKPOINT_DIR).join(TRAINER_FILE)).unwrap();
        assert_eq!(text, "2");
        // Killed between the two renames: only checkpoint.old is there.
        std::fs::rename(out.join(CHECKPOINT_DIR), out.join("checkpoint.old")).unwrap();
        assert_eq!(find(out), Some(out.join("checkpoint.old")));
    }

    #[test]
    fn tensors_round_trip_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let mut map = BTreeMap::new();
        map.insert(
            "a".to_string(),
            Tensor::from_vec(vec![1f32, 2.0, 3.0], 3, &Device::Cpu).unwrap(),
        );
        write_tensors(&path, &map).unwrap();
        let back = read_tensors(&path, &Device::Cpu).unwrap();
        assert_eq!(back["a"].to_vec1::<f32>().unwrap(), vec![1.0, 2.0, 3.0]);
        std::fs::write(&path, b"not safetensors").unwrap();
        assert!(matches!(
            read_tensors(&path, &Device::Cpu),
            Err(Error::BadCheckpoint(_))
        ));
    }
}
