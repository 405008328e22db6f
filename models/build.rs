//! Compiles the shipped PairAlign weights into the crate once `weights/pairalign-v1/` (and
//! `weights/pairalign-v2/`, `weights/pairalign-v3/`) hold them (`cfg(pairalign_shipped)`,
//! `cfg(pairalign_v2_shipped)`, `cfg(pairalign_v3_shipped)`); until then `shipped::pairalign`
//! (`pairalign_v2`, `pairalign_v3`) says they are not shipped.

use std::path::Path;

fn main() {
    for (folder, cfg) in [
        ("weights/pairalign-v1", "pairalign_shipped"),
        ("weights/pairalign-v2", "pairalign_v2_shipped"),
        ("weights/pairalign-v3", "pairalign_v3_shipped"),
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-changed={folder}");
        let dir = Path::new(folder);
        if dir.join("config.json").is_file() && dir.join("model.safetensors").is_file() {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
