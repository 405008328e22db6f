//! Compiles the shipped PairAlign weights into the crate once `weights/pairalign-v1/` holds them
//! (`cfg(pairalign_shipped)`); until then `shipped::pairalign` says they are not shipped.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(pairalign_shipped)");
    println!("cargo::rerun-if-changed=weights/pairalign-v1");
    let dir = Path::new("weights/pairalign-v1");
    if dir.join("config.json").is_file() && dir.join("model.safetensors").is_file() {
        println!("cargo::rustc-cfg=pairalign_shipped");
    }
}
