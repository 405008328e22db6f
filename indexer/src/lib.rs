//! pairalign-indexer: bulk indexing of audio archives (shared/DESIGN.md section 3). Walks folders,
//! decodes every audio file to 16 kHz mono on a thread pool, tokenizes it window by window with
//! absolute per-token times, and commits one engine document per file, a batch of files per
//! segment. Runs are resumable and idempotent: a file whose id is already in the database is
//! skipped, and a killed run loses at most the batch it had not committed yet.
//!
//! ```no_run
//! use pairalign_indexer::{index_paths, open_or_create_for, IndexOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tokenizer = pairalign_models::shipped::vq(&pairalign_models::Device::Cpu)?;
//! let mut db = open_or_create_for("archive.db", &tokenizer)?;
//! let report = index_paths(&mut db, &tokenizer, &["recordings"], &IndexOptions::default(), |_| {})?;
//! for problem in &report.failed {
//!     eprintln!("{}: {}", problem.path.display(), problem.reason);
//! }
//! # Ok(())
//! # }
//! ```

mod error;
mod pipeline;
mod report;
mod walk;

pub use error::{Error, Result};
pub use pipeline::{
    check_tokenizer, doc_id, index_paths, open_or_create_for, IndexOptions, IndexReport, Progress,
};
pub use report::{archive_report, compare, svg, ArchiveReport, Comparison, StorageBytes};
pub use walk::{find_audio_files, is_audio_path, Discovery, FileProblem};
