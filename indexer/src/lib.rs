//! pairalign-indexer: bulk indexing of audio archives (shared/DESIGN.md section 3). Walks folders,
//! decodes every audio file to 16 kHz mono on a thread pool, tokenizes it window by window with
//! absolute per-token times, and commits one engine document per file, a batch of files per
//! segment, with a metadata catalog entry per file (tantivy: title, tags, duration, format...,
//! for filters). Runs are resumable and idempotent: a file already indexed (same path and
//! content) is skipped, a changed one re-indexed, a copy of indexed content reported and
//! skipped; a killed run loses at most the batch it had not committed yet.
//!
//! ```no_run
//! use pairalign_indexer::{index_paths, open_or_create_for, IndexOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use pairalign_models::{shipped, AnyTokenizer, Device};
//! let tokenizer = AnyTokenizer::open(shipped::DEFAULT, &Device::Cpu)?; // pairalign-v3
//! let mut store = open_or_create_for("archive.db", &tokenizer)?;
//! let report = index_paths(&mut store, &tokenizer, &["recordings"], &IndexOptions::default(), |_| {})?;
//! for problem in &report.failed {
//!     eprintln!("{}: {}", problem.path.display(), problem.reason);
//! }
//! # Ok(())
//! # }
//! ```

mod error;
mod merge;
mod pipeline;
mod recording;
mod repair;
mod shards;
mod walk;

pub use error::{Error, Result};
pub use merge::{merge_databases, MergeConflict, MergeOptions, MergeProgress, MergeReport};
pub use pairalign_catalog::{Asset, AssetMetadata};
pub use pipeline::{
    doc_id, index_paths, open_or_create_for, Duplicate, Freshness, IndexOptions, IndexReport,
    Progress, Store,
};
pub use recording::{index_recording, read_recording, IndexedRecording, Unindexable};
pub use repair::{check_database, repair_catalog, CheckReport, NotRecovered, RepairReport};
pub use shards::{
    shard_dir, shard_dirs, shard_of, Added, Plan, PlannedFile, PreparedRecording, ShardWriter,
    MAX_SHARDS, SHARDS_FILE,
};
pub use walk::{find_audio_files, is_audio_path, Discovery, FileProblem};
