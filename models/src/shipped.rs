//! The tokenizer weights shipped with the project, compiled into the binary so that a fresh
//! machine indexes and searches without a download or a path to find (`models/weights/`, each
//! folder with its model card).

use std::path::Path;

use crate::{Device, PairAlignTokenizer, Result, VqTokenizer};

/// Folder of the shipped VQ weights, relative to the repository (for messages and model cards).
pub const VQ_DIR: &str = "models/weights/vq-v1";

const VQ_CONFIG: &str = include_str!("../weights/vq-v1/config.json");
const VQ_WEIGHTS: &[u8] = include_bytes!("../weights/vq-v1/model.safetensors");

/// The shipped VQ tokenizer (`vq-v1`) on `device`.
pub fn vq(device: &Device) -> Result<VqTokenizer> {
    VqTokenizer::from_bytes(VQ_CONFIG, VQ_WEIGHTS, Path::new(VQ_DIR), device)
}

/// Folder of the shipped vq-v2 weights: vq-v1's weights behind the level-normalizing front end
/// (`norm.level` in its config: tokens that ignore the level; issue 22).
pub const VQ_V2_DIR: &str = "models/weights/vq-v2";

const VQ_V2_CONFIG: &str = include_str!("../weights/vq-v2/config.json");
const VQ_V2_WEIGHTS: &[u8] = include_bytes!("../weights/vq-v2/model.safetensors");

/// The shipped vq-v2 tokenizer (`--tokenizer vq-v2`) on `device`.
pub fn vq_v2(device: &Device) -> Result<VqTokenizer> {
    VqTokenizer::from_bytes(VQ_V2_CONFIG, VQ_V2_WEIGHTS, Path::new(VQ_V2_DIR), device)
}

/// Folder of the shipped PairAlign weights, relative to the repository. A build compiles them in
/// when the folder holds `config.json` and `model.safetensors` (see `models/build.rs`).
pub const PAIRALIGN_DIR: &str = "models/weights/pairalign-v1";

#[cfg(pairalign_shipped)]
const PAIRALIGN_CONFIG: &str = include_str!("../weights/pairalign-v1/config.json");
#[cfg(pairalign_shipped)]
const PAIRALIGN_WEIGHTS: &[u8] = include_bytes!("../weights/pairalign-v1/model.safetensors");

/// True when this build holds the shipped PairAlign weights.
pub const PAIRALIGN_SHIPPED: bool = cfg!(pairalign_shipped);

/// The tokenizer a new database gets when none is named: `pairalign-v2` (since 2026-12-07: it
/// ignores the level and beats pairalign-v1 on the robustness matrix; docs/RESULTS.md, issue
/// 22), else `pairalign` (pairalign-v1), or `vq` in a build made before either was shipped. A
/// database keeps the tokenizer it records. The name opens with
/// [`crate::AnyTokenizer::open`].
pub const DEFAULT: &str = if PAIRALIGN_V2_SHIPPED {
    "pairalign-v2"
} else if PAIRALIGN_SHIPPED {
    "pairalign"
} else {
    "vq"
};

/// The shipped PairAlign tokenizer (`pairalign-v1`) on `device`; [`crate::Error::NotShipped`] in a
/// build made before its weights were in [`PAIRALIGN_DIR`].
pub fn pairalign(device: &Device) -> Result<PairAlignTokenizer> {
    #[cfg(pairalign_shipped)]
    {
        PairAlignTokenizer::from_bytes(
            PAIRALIGN_CONFIG,
            PAIRALIGN_WEIGHTS,
            Path::new(PAIRALIGN_DIR),
            device,
        )
    }
    #[cfg(not(pairalign_shipped))]
    {
        let _ = device;
        Err(crate::Error::NotShipped {
            name: "pairalign".into(),
            dir: PAIRALIGN_DIR.into(),
        })
    }
}

/// Folder of the shipped pairalign-v2 weights (level-normalizing front end; issue 22). A build
/// compiles them in when the folder holds `config.json` and `model.safetensors`.
pub const PAIRALIGN_V2_DIR: &str = "models/weights/pairalign-v2";

#[cfg(pairalign_v2_shipped)]
const PAIRALIGN_V2_CONFIG: &str = include_str!("../weights/pairalign-v2/config.json");
#[cfg(pairalign_v2_shipped)]
const PAIRALIGN_V2_WEIGHTS: &[u8] = include_bytes!("../weights/pairalign-v2/model.safetensors");

/// True when this build holds the shipped pairalign-v2 weights.
pub const PAIRALIGN_V2_SHIPPED: bool = cfg!(pairalign_v2_shipped);

/// The shipped pairalign-v2 tokenizer (`--tokenizer pairalign-v2`) on `device`;
/// [`crate::Error::NotShipped`] in a build without its weights.
pub fn pairalign_v2(device: &Device) -> Result<PairAlignTokenizer> {
    #[cfg(pairalign_v2_shipped)]
    {
        PairAlignTokenizer::from_bytes(
            PAIRALIGN_V2_CONFIG,
            PAIRALIGN_V2_WEIGHTS,
            Path::new(PAIRALIGN_V2_DIR),
            device,
        )
    }
    #[cfg(not(pairalign_v2_shipped))]
    {
        let _ = device;
        Err(crate::Error::NotShipped {
            name: "pairalign-v2".into(),
            dir: PAIRALIGN_V2_DIR.into(),
        })
    }
}
