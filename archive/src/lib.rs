//! pairalign-archive: the archive as one value for an application to embed (a media asset
//! manager, a script, the HTTP server). [`Archive`] holds a database, its metadata catalog and its
//! tokenizer together, so that adding and searching can never mix tokenizers; it adds through
//! the indexer (`pairalign-indexer`, the one path from a recording to a committed document) and
//! searches through the query crate (`pairalign-query`, which never writes). Its
//! [`ArchiveReader`] snapshots search from any number of threads while the archive is written.
//! Errors are one flat [`Error`].
//!
//! ```no_run
//! use pairalign_archive::{clip_search_options, Archive, AssetMetadata};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut archive = Archive::open("assets.db")?; // created on first use, pairalign-v3
//! let tags = AssetMetadata { tags: vec!["interview".into()], ..AssetMetadata::default() };
//! archive.add_file("recordings/interview-0412.flac", &tags)?;
//! let options = clip_search_options();
//! let hits = archive.search_file("clip.wav", &options, Some("tags:interview"))?.hits;
//! for hit in &hits {
//!     println!("{} {}..{} ms, distance {}", hit.id, hit.start_ms, hit.end_ms, hit.distance);
//! }
//! archive.delete(&["/archive/recordings/old.wav"])?;
//! println!("{:.1} h indexed", archive.stats()?.hours);
//! # Ok(())
//! # }
//! ```

mod archive;
mod error;

pub use archive::Archive;
pub use error::{Error, Result};
pub use pairalign_catalog::{file_stamp, Asset, AssetMetadata};
pub use pairalign_engine::{DeleteReport, EditBudget, Hit, Mode, SearchOptions, Symbol};
pub use pairalign_indexer::IndexReport;
pub use pairalign_query::{
    clip_search_options, database_tokenizer, ArchiveReader, ArchiveReport, ArchiveTokenizer,
    AssetPage, SearchOutcome, FILTER_FIELDS,
};
