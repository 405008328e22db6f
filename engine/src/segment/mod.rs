//! Segments: immutable, memory-mapped files holding a batch of documents (tokens, per-token times,
//! names) and their positional q-gram postings. This module owns the byte layout (`format`, drawn
//! in docs/formats.md), the writer that serializes it and the reader that validates and serves it;
//! `times` and `postings` own the two packed sections of format v2 (encoder, decoder and check
//! each).
//!
//! A position is an index into the concatenation of all documents' tokens in the segment. The
//! postings of a q-gram are the positions where it starts; q-grams that straddle two documents are
//! not indexed.

mod format;
mod postings;
mod reader;
mod times;
mod varint;
mod writer;

pub use format::{FORMAT_VERSION, OLDEST_SUPPORTED_VERSION};
pub use reader::{DocRef, Segment};
pub use times::Times;
pub use writer::{DocInput, SegmentInfo, SegmentWriter};

use crate::Symbol;

/// The dictionary key of a q-gram: the base-`vocab_size` number whose digits are the symbols,
/// first symbol most significant (`fold(0, |acc, s| acc * vocab_size + s)`).
///
/// Keys are unique and ordered like the q-grams (lexicographically) when every symbol is below
/// `vocab_size` and `vocab_size^gram.len() <= 2^64`, which `SegmentWriter::new` guarantees for the
/// segment's q. Outside that range the arithmetic wraps instead of panicking.
pub fn qgram_key(gram: &[Symbol], vocab_size: u32) -> u64 {
    gram.iter().fold(0u64, |acc, &s| {
        acc.wrapping_mul(u64::from(vocab_size))
            .wrapping_add(u64::from(s))
    })
}

#[cfg(test)]
mod tests;
