//! The feature cache: one memory-mapped file holding, for every clip, `views_per_clip` log-mel
//! matrices (frames x n_mels, f32 or f16), and the batch loader that serves paired views of it to
//! training. This module owns the byte layout (`format`, drawn in datasets/README.md under
//! "Feature cache format"), the streaming writer, the validating reader and the loader.
//!
//! The cache exists so that training never decodes audio: views are rendered and turned into
//! log-mel features once, written here, and every epoch afterwards is only reads from the mapping.

mod build;
mod format;
mod loader;
mod reader;
mod writer;

pub use build::{build_cache, is_voice_clip, CacheBuildOptions, CacheBuildReport, VOICES_PREFIX};
pub use format::{Dtype, FORMAT_VERSION, OLDEST_SUPPORTED_VERSION};
pub use half::f16;
pub use loader::{Batch, BatchLoader};
pub use reader::{FeatureCache, FeatureData, FeaturesRef};
pub use writer::{CacheInfo, CacheWriter};

#[cfg(test)]
mod tests;
