//! pairalign-engine: storage and edit-distance search over token strings.
//!
//! The engine knows nothing about audio or models: a document is a string of `u16` symbols with
//! per-token times, from any tokenizer. It owns the on-disk database (segments, manifest,
//! tombstones), the positional q-gram postings that generate candidates, and the bit-parallel
//! Levenshtein verifier that ranks them (shared/DESIGN.md sections 4 and 5).
//!
//! ```no_run
//! use pairalign_engine::{DatabaseConfig, DatabaseWriter, NewDoc, SearchOptions};
//! # fn main() -> pairalign_engine::Result<()> {
//! let mut db = DatabaseWriter::create("my-db", DatabaseConfig::new(512, 3))?;
//! db.add_tokens(&[NewDoc { id: "a.wav".into(), tokens: vec![3, 17, 4, 9, 30], ..NewDoc::default() }])?;
//! let outcome = db.search_tokens(&[17, 4, 9], &SearchOptions::default())?;
//! for hit in outcome.hits {
//!     println!("{} {}..{} ms, distance {}", hit.id, hit.start_ms, hit.end_ms, hit.distance);
//! }
//! # Ok(())
//! # }
//! ```

mod database;
mod durability;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod import;
pub mod manifest;
mod search;
pub mod segment;
pub mod synthetic;
pub mod verifier;

pub use database::{
    tiered_merge_start, DatabaseConfig, DatabaseInfo, DatabaseWriter, DeleteReport, NewDoc,
    Searcher, MAX_ID_BYTES, MAX_SEGMENT_TOKENS, MERGE_TIER_BYTES, NOMINAL_TOKENS_PER_SECOND,
};
pub use error::{Error, Result};
pub use manifest::TokenizerRecord;
pub use search::{EditBudget, Hit, SearchOptions, SearchOutcome, MAX_QUERY_TOKENS};
pub use verifier::{Match, Mode, Verifier};

/// One token of a token string. Vocabularies of up to 65,536 symbols are supported.
pub type Symbol = u16;
