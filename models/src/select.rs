//! Choosing a tokenizer by name, as every command's `--tokenizer` does: `vq`, `vq-v2`,
//! `pairalign`, `pairalign-v2` and `pairalign-v3` are the shipped models ([`crate::shipped`],
//! `shipped::NAMES`); anything else is a weights folder of either kind, told apart by its
//! `config.json`.

use std::path::Path;

use crate::tokenizer::{TokenString, Tokenizer};
use crate::vq::CONFIG_FILE;
use crate::{shipped, Device, Error, PairAlignTokenizer, Result, VqTokenizer};

/// The two tokenizer families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizerKind {
    /// Frame-level VQ codes with repeats collapsed ([`VqTokenizer`]).
    Vq,
    /// The autoregressive PairAlign tokenizer ([`PairAlignTokenizer`]).
    PairAlign,
}

impl TokenizerKind {
    /// The kind of the checkpoint in `dir`, from the `model` object of its `config.json`: a
    /// PairAlign config nests the VQ encoder's config under `model.encoder`, a VQ config holds
    /// `model.codebook_size` itself.
    pub fn of_folder(dir: &Path) -> Result<TokenizerKind> {
        let path = dir.join(CONFIG_FILE);
        let json = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotATokenizer {
                    path: dir.to_path_buf(),
                    detail: format!(
                        "no {CONFIG_FILE} (a tokenizer folder holds {CONFIG_FILE} and \
                         model.safetensors, as written by `pairalign train`)"
                    ),
                }
            } else {
                Error::io(&path, e)
            }
        })?;
        let value: serde_json::Value = serde_json::from_str(&json)
            .map_err(|e| Error::BadConfig(format!("{}: {e}", path.display())))?;
        let model = &value["model"];
        if model["encoder"].is_object() {
            Ok(TokenizerKind::PairAlign)
        } else if model["codebook_size"].is_number() {
            Ok(TokenizerKind::Vq)
        } else {
            Err(Error::NotATokenizer {
                path: dir.to_path_buf(),
                detail: format!(
                    "{CONFIG_FILE} describes neither a VQ model (model.codebook_size) nor a \
                     PairAlign model (model.encoder)"
                ),
            })
        }
    }
}

/// A tokenizer of either family, chosen at run time.
#[derive(Debug)]
pub enum AnyTokenizer {
    /// A VQ tokenizer.
    Vq(Box<VqTokenizer>),
    /// A PairAlign tokenizer.
    PairAlign(Box<PairAlignTokenizer>),
}

impl AnyTokenizer {
    /// This tokenizer with queries cut at `phases` grid phases
    /// ([`PairAlignTokenizer::with_grid_phases`]); a VQ tokenizer takes only 1 (its one string).
    pub fn with_query_phases(self, phases: usize) -> Result<AnyTokenizer> {
        match self {
            AnyTokenizer::PairAlign(t) => Ok(AnyTokenizer::PairAlign(Box::new(
                t.with_grid_phases(phases)?,
            ))),
            AnyTokenizer::Vq(t) if phases == 1 => Ok(AnyTokenizer::Vq(t)),
            AnyTokenizer::Vq(t) => Err(Error::BadInput(format!(
                "{} gives a query one string: it has no grid phases to choose",
                t.id()
            ))),
        }
    }

    /// `vq`, `vq-v2` (shipped), `pairalign`, `pairalign-v2`, `pairalign-v3` (shipped;
    /// [`Error::NotShipped`] in a build without their weights) or a weights folder of either
    /// kind, on `device`.
    pub fn open(name: &str, device: &Device) -> Result<AnyTokenizer> {
        match name {
            "vq" => Ok(AnyTokenizer::Vq(Box::new(shipped::vq(device)?))),
            "vq-v2" => Ok(AnyTokenizer::Vq(Box::new(shipped::vq_v2(device)?))),
            "pairalign-v2" => Ok(AnyTokenizer::PairAlign(Box::new(shipped::pairalign_v2(
                device,
            )?))),
            "pairalign-v3" => Ok(AnyTokenizer::PairAlign(Box::new(shipped::pairalign_v3(
                device,
            )?))),
            "pairalign" => Ok(AnyTokenizer::PairAlign(Box::new(shipped::pairalign(
                device,
            )?))),
            _ => {
                let dir = Path::new(name);
                if !dir.is_dir() {
                    return Err(Error::NotATokenizer {
                        path: dir.to_path_buf(),
                        detail: format!(
                            "no such folder (a tokenizer is {} or a weights folder)",
                            shipped::NAMES.map(|n| format!("`{n}`")).join(", ")
                        ),
                    });
                }
                Ok(match TokenizerKind::of_folder(dir)? {
                    TokenizerKind::Vq => {
                        AnyTokenizer::Vq(Box::new(VqTokenizer::load(dir, device)?))
                    }
                    TokenizerKind::PairAlign => {
                        AnyTokenizer::PairAlign(Box::new(PairAlignTokenizer::load(dir, device)?))
                    }
                })
            }
        }
    }

    /// Which family this is.
    pub fn kind(&self) -> TokenizerKind {
        match self {
            AnyTokenizer::Vq(_) => TokenizerKind::Vq,
            AnyTokenizer::PairAlign(_) => TokenizerKind::PairAlign,
        }
    }

    /// The VQ tokenizer, when this is one.
    pub fn as_vq(&self) -> Option<&VqTokenizer> {
        match self {
            AnyTokenizer::Vq(t) => Some(t.as_ref()),
            AnyTokenizer::PairAlign(_) => None,
        }
    }

    /// The PairAlign tokenizer, when this is one.
    pub fn as_pairalign(&self) -> Option<&PairAlignTokenizer> {
        match self {
            AnyTokenizer::PairAlign(t) => Some(t.as_ref()),
            AnyTokenizer::Vq(_) => None,
        }
    }

    /// The VQ tokenizer, when this is one (for what needs its encoder itself, such as the
    /// dense baseline).
    pub fn into_vq(self) -> Option<VqTokenizer> {
        match self {
            AnyTokenizer::Vq(t) => Some(*t),
            AnyTokenizer::PairAlign(_) => None,
        }
    }

    fn inner(&self) -> &(dyn Tokenizer + Send + Sync) {
        match self {
            AnyTokenizer::Vq(t) => t.as_ref(),
            AnyTokenizer::PairAlign(t) => t.as_ref(),
        }
    }
}

impl Tokenizer for AnyTokenizer {
    fn id(&self) -> &str {
        self.inner().id()
    }

    fn weights_hash(&self) -> &str {
        self.inner().weights_hash()
    }

    fn vocab_size(&self) -> u32 {
        self.inner().vocab_size()
    }

    fn tokenize(&self, batch: &[&[f32]]) -> Result<Vec<TokenString>> {
        self.inner().tokenize(batch)
    }

    fn tokenize_mels(&self, mels: &[&[f32]]) -> Result<Vec<TokenString>> {
        self.inner().tokenize_mels(mels)
    }

    fn tokenize_mels_variants(&self, mels: &[&[f32]]) -> Result<Vec<Vec<TokenString>>> {
        self.inner().tokenize_mels_variants(mels)
    }

    fn tokenize_variants(&self, batch: &[&[f32]]) -> Result<Vec<Vec<TokenString>>> {
        self.inner().tokenize_variants(batch)
    }
}

/// The device called `name`: `cpu`, `cuda` or `cuda:N` (`cuda` needs a build with the `cuda`
/// feature, on a machine with a GPU). Errors ([`Error::BadInput`]) for another name and for a
/// CUDA device that cannot be opened, saying why in one line.
pub fn parse_device(name: &str) -> Result<Device> {
    let ordinal = match name {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => n,
            _ => {
                return Err(Error::BadInput(format!(
                    "device must be cpu, cuda or cuda:N, got {other:?}"
                )))
            }
        },
    };
    // candle's error carries a backtrace: only its first line is for the user.
    Device::new_cuda(ordinal).map_err(|e| {
        let reason = e.to_string();
        let reason = reason.lines().next().unwrap_or_default().to_string();
        Error::BadInput(format!(
            "cannot open CUDA device {ordinal} (is this a build with the cuda feature, on a \
             machine with a GPU?): {reason}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_names_and_folders_of_both_kinds_open() {
        let vq = AnyTokenizer::open("vq", &Device::Cpu).unwrap();
        assert_eq!(vq.kind(), TokenizerKind::Vq);
        let dir = tempfile::tempdir().unwrap();
        let vq_dir = dir.path().join("vq");
        vq.as_vq().unwrap().save(&vq_dir).unwrap();
        let again = AnyTokenizer::open(vq_dir.to_str().unwrap(), &Device::Cpu).unwrap();
        assert_eq!(again.kind(), TokenizerKind::Vq);
        assert_eq!(again.weights_hash(), vq.weights_hash());

        let cfg = crate::PairAlignConfig {
            d_model: 32,
            heads: 2,
            ff_dim: 64,
            layers: 1,
            ..Default::default()
        };
        let pa =
            PairAlignTokenizer::init_from_vq(&cfg, vq.as_vq().unwrap(), 1, &Device::Cpu).unwrap();
        let pa_dir = dir.path().join("pa");
        pa.save(&pa_dir).unwrap();
        let opened = AnyTokenizer::open(pa_dir.to_str().unwrap(), &Device::Cpu).unwrap();
        assert_eq!(opened.kind(), TokenizerKind::PairAlign);
        assert_eq!(opened.weights_hash(), pa.weights_hash());
        assert_eq!(opened.id(), "pairalign");

        let shipped = AnyTokenizer::open("pairalign", &Device::Cpu);
        assert_eq!(shipped.is_ok(), shipped::PAIRALIGN_SHIPPED);
        match shipped {
            Ok(t) => assert_eq!(t.kind(), TokenizerKind::PairAlign),
            Err(e) => assert!(matches!(e, Error::NotShipped { .. }), "{e}"),
        }
    }

    /// Every name the error message offers opens, as the model its name says (the id a database
    /// records), or says the build lacks its weights; the default is one of them.
    #[test]
    fn every_shipped_name_opens_as_itself() {
        let held = [
            true,
            true,
            shipped::PAIRALIGN_SHIPPED,
            shipped::PAIRALIGN_V2_SHIPPED,
            shipped::PAIRALIGN_V3_SHIPPED,
        ];
        let mut hashes = Vec::new();
        for (name, held) in shipped::NAMES.into_iter().zip(held) {
            match AnyTokenizer::open(name, &Device::Cpu) {
                Ok(t) => {
                    assert!(held, "{name} opened in a build without it");
                    assert_eq!(t.id(), name, "{name}");
                    hashes.push(t.weights_hash().to_string());
                }
                Err(e) => {
                    assert!(!held, "{name}: {e}");
                    assert!(matches!(e, Error::NotShipped { .. }), "{name}: {e}");
                }
            }
        }
        let distinct: std::collections::HashSet<_> = hashes.iter().collect();
        assert_eq!(distinct.len(), hashes.len(), "two names, one model");
        assert!(shipped::NAMES.contains(&shipped::DEFAULT));
        let e = AnyTokenizer::open("pairalign-v9", &Device::Cpu).unwrap_err();
        for name in shipped::NAMES {
            assert!(e.to_string().contains(&format!("`{name}`")), "{e}");
        }
    }

    #[test]
    fn query_phases_are_chosen_for_grid_models_only() {
        let vq = AnyTokenizer::open("vq", &Device::Cpu).unwrap();
        let vq = vq
            .with_query_phases(1)
            .expect("one string is what a VQ query has");
        let e = vq.with_query_phases(2).unwrap_err();
        assert!(e.to_string().contains("no grid phases"), "{e}");
        let Ok(pa) = AnyTokenizer::open("pairalign-v2", &Device::Cpu) else {
            return; // a build without the shipped PairAlign weights
        };
        let clip: Vec<f32> = (0..48_000).map(|i| (i as f32 * 0.05).sin() * 0.1).collect();
        assert_eq!(pa.tokenize_variants(&[&clip]).unwrap().len(), 4);
        let two = pa.with_query_phases(2).unwrap();
        assert_eq!(two.tokenize_variants(&[&clip]).unwrap().len(), 2);
    }

    #[test]
    fn other_folders_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = AnyTokenizer::open(missing.to_str().unwrap(), &Device::Cpu).unwrap_err();
        assert!(e.to_string().contains("no such folder"), "{e}");
        let e = AnyTokenizer::open(dir.path().to_str().unwrap(), &Device::Cpu).unwrap_err();
        assert!(e.to_string().contains("no config.json"), "{e}");
        std::fs::write(dir.path().join("config.json"), r#"{"model": {"x": 1}}"#).unwrap();
        let e = AnyTokenizer::open(dir.path().to_str().unwrap(), &Device::Cpu).unwrap_err();
        assert!(matches!(e, Error::NotATokenizer { .. }), "{e}");
    }
}
