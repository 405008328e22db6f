//! pairalign-query: query by example (shared/DESIGN.md section 5). A clip is tokenized exactly
//! like the archive (16 kHz mono, 3 s windows, absolute per-token times), its string is searched
//! inside every document by edit distance (infix mode), and each hit maps back to a file and a
//! time range. Reading only: this crate never writes a database (the writer is
//! `pairalign-indexer`, and `pairalign-archive` puts both behind one facade for applications).
//!
//! ```no_run
//! use pairalign_engine::{DatabaseWriter, Searcher};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = pairalign_models::Device::Cpu;
//! let tokenizer = pairalign_query::database_tokenizer("archive.db".as_ref(), &device)?;
//! let db = Searcher::open("archive.db")?;
//! let outcome = pairalign_query::search_file(
//!     &db,
//!     &tokenizer,
//!     "clip.wav".as_ref(),
//!     &pairalign_query::clip_search_options(),
//! )?;
//! for hit in &outcome.hits {
//!     println!("{} {}..{} ms, distance {}", hit.id, hit.start_ms, hit.end_ms, hit.distance);
//! }
//! # Ok(())
//! # }
//! ```

mod error;
mod reader;
mod report;
mod search;

pub use error::{Error, Result};
pub use pairalign_catalog::{Asset, AssetMetadata, FIELDS as FILTER_FIELDS};
pub use pairalign_engine::{EditBudget, Hit, Mode, SearchOptions};
pub use reader::{
    list_assets, select_documents, to_16k, ArchiveReader, ArchiveTokenizer, AssetPage,
};
pub use report::{archive_report, compare, svg, ArchiveReport, Comparison, StorageBytes};
pub use search::{
    check_tokenizer, clip_search_options, database_tokenizer, decode_clip_bytes, decode_clip_file,
    search_audio, search_bytes, search_clip, search_file, tokenize_clip, ClipQuery, QueryPhase,
    SearchOutcome, SearchResults, CLIP_EDIT_BUDGET, MAX_CLIP_S, MIN_CLIP_S,
};
