//! pairalign-catalog: the metadata catalog of an archive (shared/DESIGN.md section 3), one
//! tantivy document per archive document in `<db>/catalog/`: what users filter and list by
//! (title, tags, duration, format...) and what a re-run of the indexer needs to skip unchanged
//! files (size, modification time, content hash). Both sides use it: the indexer writes it, the
//! query crate reads it for filters and listings. It depends on the engine only to check its
//! entries against the database's live documents.
//!
//! ```no_run
//! use pairalign_catalog::CatalogReader;
//! use pairalign_engine::Searcher;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let db = Searcher::open("archive.db")?;
//! if let Some(catalog) = CatalogReader::open_for(&db)? {
//!     for asset in catalog.select("tags:interview AND duration:>60")? {
//!         println!("{} {:.0} s", asset.id, asset.duration_s);
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod catalog;
#[cfg(test)]
mod damage;
mod error;
mod filter;
#[cfg(test)]
mod power_loss;

pub use catalog::{
    dir_bytes, file_stamp, hash_file, hash_samples, now_secs, rfc3339, Asset, AssetMetadata,
    Catalog, CatalogReader, CrossCheck, CATALOG_DIR, FIELDS, MAX_TAGS, MAX_TAG_BYTES,
    MAX_TITLE_BYTES,
};
pub use error::{Error, Result};
pub use filter::{check as check_filter, measure as measure_filter, FilterLimits, FilterShape};
