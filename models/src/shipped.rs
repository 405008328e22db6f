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

/// A shipped PairAlign model: its folder constant, a `SHIPPED` flag and its loader, compiled
/// in when `models/build.rs` found its weights (the cfg names the folder's flag).
macro_rules! shipped_pairalign {
    (
        $(#[$doc:meta])*
        fn $load:ident, $name:literal, $folder:literal, $cfg:ident, $dir:ident, $shipped:ident
    ) => {
        #[doc = concat!(
            "Folder of the shipped `", $name, "` weights, relative to the repository. A build ",
            "compiles them in when the folder holds `config.json` and `model.safetensors` (see ",
            "`models/build.rs`)."
        )]
        pub const $dir: &str = concat!("models/weights/", $folder);

        #[doc = concat!("True when this build holds the shipped `", $name, "` weights.")]
        pub const $shipped: bool = cfg!($cfg);

        $(#[$doc])*
        ///
        /// [`crate::Error::NotShipped`] in a build without its weights.
        pub fn $load(device: &Device) -> Result<PairAlignTokenizer> {
            #[cfg($cfg)]
            {
                PairAlignTokenizer::from_bytes(
                    include_str!(concat!("../weights/", $folder, "/config.json")),
                    include_bytes!(concat!("../weights/", $folder, "/model.safetensors")),
                    Path::new($dir),
                    device,
                )
            }
            #[cfg(not($cfg))]
            {
                let _ = device;
                Err(crate::Error::NotShipped {
                    name: $name.into(),
                    dir: $dir.into(),
                })
            }
        }
    };
}

shipped_pairalign! {
    /// The shipped PairAlign tokenizer `pairalign` (pairalign-v1) on `device`.
    fn pairalign, "pairalign", "pairalign-v1", pairalign_shipped, PAIRALIGN_DIR, PAIRALIGN_SHIPPED
}

shipped_pairalign! {
    /// The shipped pairalign-v2 tokenizer (`--tokenizer pairalign-v2`: level-normalizing front
    /// end, hard views, real speech; issue 22) on `device`.
    fn pairalign_v2, "pairalign-v2", "pairalign-v2", pairalign_v2_shipped, PAIRALIGN_V2_DIR,
    PAIRALIGN_V2_SHIPPED
}

shipped_pairalign! {
    /// The shipped pairalign-v3 tokenizer (`--tokenizer pairalign-v3`: pairalign-v2 trained on
    /// with sentences in two voices, an EMA teacher on the grid and views cropped to one span;
    /// issue 22) on `device`.
    fn pairalign_v3, "pairalign-v3", "pairalign-v3", pairalign_v3_shipped, PAIRALIGN_V3_DIR,
    PAIRALIGN_V3_SHIPPED
}

/// The shipped tokenizers by the names [`crate::AnyTokenizer::open`] takes, oldest first (a
/// name is listed whether or not this build holds its weights).
pub const NAMES: [&str; 5] = ["vq", "vq-v2", "pairalign", "pairalign-v2", "pairalign-v3"];

/// The tokenizer a new database gets when none is named: `pairalign-v3` (since 2026-12-08: as
/// pairalign-v2 on clean, faster, slower and telephone speech, 6-8 points better in noise at
/// 10 dB SNR; docs/RESULTS.md, issue 22), else the newest PairAlign model the build holds, or
/// `vq` in a build made before any was shipped. A database keeps the tokenizer it records.
/// The name opens with [`crate::AnyTokenizer::open`].
pub const DEFAULT: &str = if PAIRALIGN_V3_SHIPPED {
    "pairalign-v3"
} else if PAIRALIGN_V2_SHIPPED {
    "pairalign-v2"
} else if PAIRALIGN_SHIPPED {
    "pairalign"
} else {
    "vq"
};
