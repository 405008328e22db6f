//! The tokenizer weights shipped with the project, compiled into the binary so that a fresh
//! machine indexes and searches without a download or a path to find (`models/weights/`, each
//! folder with its model card).

use std::path::Path;

use crate::{Device, Result, VqTokenizer};

/// Folder of the shipped VQ weights, relative to the repository (for messages and model cards).
pub const VQ_DIR: &str = "models/weights/vq-v1";

const VQ_CONFIG: &str = include_str!("../weights/vq-v1/config.json");
const VQ_WEIGHTS: &[u8] = include_bytes!("../weights/vq-v1/model.safetensors");

/// The shipped VQ tokenizer (`vq-v1`) on `device`.
pub fn vq(device: &Device) -> Result<VqTokenizer> {
    VqTokenizer::from_bytes(VQ_CONFIG, VQ_WEIGHTS, Path::new(VQ_DIR), device)
}
