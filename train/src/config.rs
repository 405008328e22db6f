//! A run's config from three layers, each over the one before: the defaults, a JSON file
//! (fields of [`VqTrainConfig`] or [`PairAlignTrainConfig`]; missing ones take the defaults),
//! and [`Overrides`] (what the command line's flags set); and the training components an
//! ablation switches off ([`Component`]).

use std::path::Path;

use pairalign_models::pairalign::Components;
use pairalign_models::{PairAlignConfig, VqConfig};

use crate::pairalign::PairAlignTrainConfig;
use crate::run::RunConfig;
use crate::vq::VqTrainConfig;
use crate::{Error, Result};

/// Values that replace a run config's own, each when set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    /// Optimizer steps of the whole run.
    pub steps: Option<u64>,
    /// Clips per step.
    pub batch_size: Option<usize>,
    /// Peak learning rate.
    pub lr: Option<f64>,
    /// Seed of the weights, of the batch order and of every random draw.
    pub seed: Option<u64>,
    /// Steps between checkpoints.
    pub checkpoint_every: Option<u64>,
    /// Steps between log records.
    pub log_every: Option<u64>,
}

impl Overrides {
    /// Whether these would change what a run computes beyond its length (batch size,
    /// learning rate, seed): a resumed run keeps its config, only `steps` may change. (The
    /// intervals of checkpoints and log records are not read on a resume.)
    pub fn change_the_run(&self) -> bool {
        self.batch_size.is_some() || self.lr.is_some() || self.seed.is_some()
    }

    /// Sets the fields of `cfg` that are overridden.
    pub fn apply(&self, cfg: &mut impl RunConfig) {
        let f = cfg.shared_mut();
        if let Some(v) = self.steps {
            *f.steps = v;
        }
        if let Some(v) = self.batch_size {
            *f.batch_size = v;
        }
        if let Some(v) = self.lr {
            f.lr.peak = v;
        }
        if let Some(v) = self.seed {
            *f.seed = v;
        }
        if let Some(v) = self.checkpoint_every {
            *f.checkpoint_every = v;
        }
        if let Some(v) = self.log_every {
            *f.log_every = v;
        }
    }
}

/// A VQ run's config: the defaults, then the file `file`, then `overrides`.
pub fn vq_config(file: Option<&Path>, overrides: &Overrides) -> Result<VqTrainConfig> {
    let mut cfg = match file {
        Some(path) => serde_json::from_str(&read(path)?).map_err(|e| bad_file(path, e))?,
        None => VqTrainConfig::default(),
    };
    overrides.apply(&mut cfg);
    Ok(cfg)
}

/// A PairAlign run's config over the encoder `encoder` (the VQ tokenizer the run starts from):
/// the defaults, then the file `file` (its `model.encoder` when it names one, else `encoder`),
/// then `overrides`, then the components in `without` switched off.
pub fn pairalign_config(
    file: Option<&Path>,
    encoder: &VqConfig,
    overrides: &Overrides,
    without: &[Component],
) -> Result<PairAlignTrainConfig> {
    let mut cfg = match file {
        Some(path) => {
            let value: serde_json::Value =
                serde_json::from_str(&read(path)?).map_err(|e| bad_file(path, e))?;
            let own_encoder = value.pointer("/model/encoder").is_some();
            let mut cfg: PairAlignTrainConfig =
                serde_json::from_value(value).map_err(|e| bad_file(path, e))?;
            if !own_encoder {
                cfg.model.encoder = encoder.clone();
            }
            cfg
        }
        None => PairAlignTrainConfig {
            model: PairAlignConfig::from_vq(encoder),
            ..Default::default()
        },
    };
    overrides.apply(&mut cfg);
    for off in without {
        off.switch_off(&mut cfg.model.components);
    }
    Ok(cfg)
}

/// A training component of PairAlign that an ablation can switch off (issue 8, "Training");
/// with the `clap` feature, a value of `--without` (`vq-targets`, `ema-teacher`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Component {
    /// 1. VQ-derived targets (EMA-teacher targets from the start).
    VqTargets,
    /// 2. EMA-teacher targets (VQ-derived targets throughout).
    EmaTeacher,
    /// 3. Cross-paired teacher forcing (each view on its own target).
    CrossPaired,
    /// 4. Anti-bypass corruption of the teacher-forced prefix.
    AntiBypass,
    /// 5. Likelihood contrast.
    Contrast,
    /// 6. The length loss (the length bounds of decoding stay).
    LengthControl,
    /// 7. Timing recovery (the timing head is not trained).
    Timing,
}

impl Component {
    /// Turns this component's switch in `c` off.
    pub fn switch_off(self, c: &mut Components) {
        match self {
            Component::VqTargets => c.vq_targets = false,
            Component::EmaTeacher => c.ema_teacher = false,
            Component::CrossPaired => c.cross_paired = false,
            Component::AntiBypass => c.anti_bypass = false,
            Component::Contrast => c.contrast = false,
            Component::LengthControl => c.length_control = false,
            Component::Timing => c.timing = false,
        }
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
        path: path.to_path_buf(),
        source,
    })
}

fn bad_file(path: &Path, e: serde_json::Error) -> Error {
    Error::ConfigFile {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_fills_the_defaults_and_overrides_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        std::fs::write(&path, r#"{"steps": 7, "batch_size": 3, "seed": 9}"#).unwrap();
        let overrides = Overrides {
            seed: Some(4),
            lr: Some(0.5),
            ..Default::default()
        };
        let cfg = vq_config(Some(&path), &overrides).unwrap();
        assert_eq!((cfg.steps, cfg.batch_size, cfg.seed), (7, 3, 4));
        assert_eq!(cfg.lr.peak, 0.5);
        assert_eq!(cfg.log_every, VqTrainConfig::default().log_every);
        assert_eq!(
            vq_config(None, &Overrides::default()).unwrap(),
            VqTrainConfig::default()
        );
        // Errors name the file.
        std::fs::write(&path, r#"{"stepz": 7}"#).unwrap();
        let err = vq_config(Some(&path), &overrides).unwrap_err();
        assert!(matches!(err, Error::ConfigFile { .. }), "{err}");
        assert!(err.to_string().contains("run.json"), "{err}");
        let missing = dir.path().join("missing.json");
        let err = vq_config(Some(&missing), &overrides).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot read {}", missing.display())
        );
        assert!(overrides.change_the_run());
        let later = Overrides {
            steps: Some(10),
            log_every: Some(1),
            ..Default::default()
        };
        assert!(!later.change_the_run());
    }

    #[test]
    fn a_pairalign_run_takes_the_init_encoder_unless_its_file_names_one() {
        let dir = tempfile::tempdir().unwrap();
        let encoder = VqConfig {
            channels: 32,
            ..Default::default()
        };
        let path = dir.path().join("pa.json");
        std::fs::write(&path, r#"{"model": {"d_model": 32}, "steps": 5}"#).unwrap();
        let without = [Component::Contrast, Component::Timing];
        let cfg = pairalign_config(Some(&path), &encoder, &Overrides::default(), &without).unwrap();
        assert_eq!(cfg.model.encoder, encoder);
        assert_eq!((cfg.model.d_model, cfg.steps), (32, 5));
        let c = &cfg.model.components;
        assert!(!c.contrast && !c.timing && c.cross_paired);
        std::fs::write(&path, r#"{"model": {"encoder": {"channels": 48}}}"#).unwrap();
        let cfg = pairalign_config(Some(&path), &encoder, &Overrides::default(), &[]).unwrap();
        assert_eq!(cfg.model.encoder.channels, 48);
        let cfg = pairalign_config(None, &encoder, &Overrides::default(), &[]).unwrap();
        assert_eq!(cfg.model, PairAlignConfig::from_vq(&encoder));
    }
}
