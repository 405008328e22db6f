//! The byte layout of a segment file: constants, the header and the `#[repr(C)]` records that are
//! cast from the mapped bytes (docs/formats.md draws it). The section table, the placement of the
//! sections and the checksummed footer are the section layout that pairalign-sections owns; this
//! module says what the header holds and what each section means.
//!
//! Every integer is little-endian. The records are read by casting the mapped bytes with bytemuck,
//! which only gives the right values on a little-endian host, so the crate refuses to build on a
//! big-endian one rather than misread files.

use bytemuck::{Pod, Zeroable};
use pairalign_sections::SectionLayout;

#[cfg(target_endian = "big")]
compile_error!(
    "the segment format is read by casting little-endian bytes; big-endian hosts are not supported"
);

/// The format version this build writes.
pub const FORMAT_VERSION: u32 = 2;

/// The oldest format version this build can read.
pub const OLDEST_SUPPORTED_VERSION: u32 = 1;

/// The `oldest_supported_version` this build writes into its files: 2, because v2 re-encodes the
/// times and postings sections in place (same slots, new contents), so a v1 reader must refuse the
/// file (`UnsupportedVersion`) rather than read packed bytes as v1 arrays.
pub(crate) const WRITTEN_OLDEST_SUPPORTED_VERSION: u32 = 2;

/// First 8 bytes of every segment file.
pub(crate) const MAGIC: [u8; 8] = *b"PAIRSEG\0";

/// Last 8 bytes of every segment file; a truncated file loses it.
pub(crate) const FOOTER_MAGIC: [u8; 8] = *b"PASEGEND";

/// Longest document name, in UTF-8 bytes.
pub(crate) const MAX_NAME_BYTES: usize = 1024;

/// Largest q-gram length.
pub(crate) const MAX_Q: u32 = 8;

/// Largest vocabulary: every `u16` is a symbol.
pub(crate) const MAX_VOCAB: u32 = 1 << 16;

/// Sections in a v1 or v2 file; a newer writer that keeps them readable may append more.
pub(crate) const V1_SECTION_COUNT: usize = 8;

/// Tokens per block of the v2 times section and values per packed block of a v2 posting list:
/// one `BitPacker4x` block (the layout of Lemire's simdcomp with 4 lanes, which the `bitpacking`
/// crate implements with SSE3 and with a scalar fallback that produces the same bytes).
pub(crate) const PACKED_BLOCK_LEN: usize = 128;

/// v2 posting lists start at multiples of this many bytes (their refs count in these units), so
/// that a u32 reaches every list: a list of n >= 2 positions takes at most 5n bytes before
/// padding, at most n units after it, and a segment has fewer than 2^32 positions.
pub(crate) const LIST_ALIGN: u64 = 8;

/// Shortest serialized roaring bitmap (cookie + container count of an empty bitmap, roaring
/// portable format: <https://github.com/RoaringBitmap/RoaringFormatSpec>).
pub(crate) const MIN_BITMAP_BYTES: u32 = 8;

/// First word of a roaring list in the postings section. A position array can never start with
/// it: positions are below `token_count <= 2^32 - 1`.
pub(crate) const ROARING_MARKER: u32 = u32::MAX;

/// Words before the bitmap bytes of a roaring list: the marker and the byte length.
pub(crate) const ROARING_PREFIX_WORDS: u64 = 2;

/// The fixed file header at offset 0 (64 bytes). It is followed directly by `section_count`
/// [`pairalign_sections::SectionEntry`] records; the footer holds the CRC-32 of both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct Header {
    /// Always [`MAGIC`].
    pub magic: [u8; 8],
    /// Version of the writer that produced the file (>= 1).
    pub format_version: u32,
    /// Oldest reader version that can read the file; 1..=`format_version`. A reader whose
    /// `FORMAT_VERSION` is below it refuses the file.
    pub oldest_supported_version: u32,
    /// Number of symbols; every token is below it. 1..=65536.
    pub vocab_size: u32,
    /// q-gram length of the postings. 1..=8, with `vocab_size^q <= 2^64`.
    pub q: u32,
    /// Number of documents (entries in the doc table and the name index). Any u32.
    pub doc_count: u32,
    /// Number of entries in the section table. Exactly 8 in a v1 or v2 file; a newer file that
    /// an older reader may read has 8..=64 ([`pairalign_sections::MAX_SECTION_COUNT`]; the
    /// reader uses the first 8).
    pub section_count: u32,
    /// Total tokens of all documents. 0..=u32::MAX (positions are u32).
    pub token_count: u64,
    /// Number of distinct q-grams (entries of the q-gram keys and refs). 0..=token_count.
    pub qgram_count: u64,
    /// Zero in v1 and v2.
    pub reserved: [u8; 16],
}

/// One document of the doc table (32 bytes), in document-ordinal order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct DocEntry {
    /// Start of the name in the names section; equals the end of the previous document's name
    /// (0 for the first).
    pub name_offset: u64,
    /// First token of the document in the tokens section; equals the end of the previous
    /// document's tokens (0 for the first).
    pub token_start: u32,
    /// Number of tokens; may be 0. The last document's range ends at `token_count`.
    pub token_len: u32,
    /// Name length in bytes, 1..=1024; the name is valid UTF-8.
    pub name_len: u32,
    /// Global document number assigned by the database. Any u32.
    pub doc_id: u32,
    /// Duration of the recording in milliseconds. Any u32.
    pub duration_ms: u32,
    /// v2: the start time in ms of the document's first token (0 for an empty document); the
    /// times section stores the deltas after it. v1: reserved, zero.
    pub first_time_ms: u32,
}

/// Where the positions of one q-gram are (8 bytes); parallel to the q-gram keys.
///
/// Most q-grams occur once (66% of them for 10^6 Zipf documents, 78% for 10^5): their position is
/// the entry itself. Longer lists live in the postings section: in v2 as delta-coded, bit-packed
/// lists (`postings.rs`); in v1 as whichever of a sorted position array and a roaring bitmap is
/// smaller (docs/formats.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct PostingsRef {
    /// Number of positions, 1..=token_count.
    pub cardinality: u32,
    /// With cardinality 1, the position itself (below `token_count`). Otherwise the start of the
    /// list in the postings section, in units of 4 bytes (v1) or [`LIST_ALIGN`] = 8 bytes (v2):
    /// 0 for the first list, then the end of the previous one.
    pub value: u32,
}

/// One block of the v2 times section (16 bytes): the times of positions `128 b .. 128 b + 128`
/// (`b` the block's index), packed as docs/formats.md "Times (v2)" draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct TimeBlock {
    /// Start time in ms of the block's first token (position `128 b`); equals the document's
    /// `first_time_ms` when a document starts there, and is not below the previous token's time
    /// otherwise.
    pub first_ms: u32,
    /// The delta a packed value counts from: a slot's delta is `base_delta + packed value`,
    /// unless the slot is an exception. Any u32; the times may not overflow u32.
    pub base_delta: u32,
    /// Where the block's data (packed values, then exceptions) starts in the data area, in
    /// 4-byte units: 0 for the first block, then the end of the previous block's data, which is
    /// zero-padded to 4 bytes.
    pub data_start: u32,
    /// Bits per packed value, 0..=32: the packed values take `16 * bits` bytes.
    pub bits: u8,
    /// Slots whose delta is listed after the packed values rather than packed (patched frame
    /// of reference: the deltas outside `base_delta .. base_delta + 2^bits`), 0..=127.
    pub exceptions: u8,
    /// Zero.
    pub reserved: [u8; 2],
}

pub(crate) const HEADER_LEN: u64 = std::mem::size_of::<Header>() as u64;
pub(crate) const DOC_ENTRY_LEN: u64 = std::mem::size_of::<DocEntry>() as u64;
pub(crate) const POSTINGS_REF_LEN: u64 = std::mem::size_of::<PostingsRef>() as u64;
pub(crate) const TIME_BLOCK_LEN: u64 = std::mem::size_of::<TimeBlock>() as u64;

/// The section layout of a segment file: the header above, then the section table, the sections
/// and the footer that pairalign-sections lays out, writes and checks.
pub(crate) const SECTION_LAYOUT: SectionLayout = SectionLayout::new(HEADER_LEN, FOOTER_MAGIC);

/// The sections of a v1 or v2 file, in file order (the index is the section-table slot). The two
/// versions differ in the contents of `Times` and `Postings` (and in the last field of
/// [`DocEntry`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    /// `[u16; token_count]`: all documents' tokens, concatenated in ordinal order.
    Tokens = 0,
    /// Start time in ms of each token. v1: `[u32; token_count]`. v2: `[TimeBlock; blocks]` then
    /// the packed deltas (`times.rs`).
    Times = 1,
    /// `[DocEntry; doc_count]`.
    Docs = 2,
    /// UTF-8 names, concatenated in ordinal order.
    Names = 3,
    /// `[u32; doc_count]`: document ordinals sorted by name bytes.
    NameIndex = 4,
    /// `[u32; qgram_count]` or `[u64; qgram_count]` ([`key_width`]): q-gram keys, strictly
    /// ascending.
    QGramKeys = 5,
    /// `[PostingsRef; qgram_count]`, parallel to the keys.
    QGramRefs = 6,
    /// The lists of the q-grams that occur more than once, in key order. v1: `[u32]` arrays and
    /// roaring bitmaps. v2: delta-coded, bit-packed lists, each 8-byte aligned (`postings.rs`).
    Postings = 7,
}

impl Section {
    pub(crate) const ALL: [Section; V1_SECTION_COUNT] = [
        Section::Tokens,
        Section::Times,
        Section::Docs,
        Section::Names,
        Section::NameIndex,
        Section::QGramKeys,
        Section::QGramRefs,
        Section::Postings,
    ];

    /// The name used in corruption errors and in docs/formats.md.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Section::Tokens => "tokens",
            Section::Times => "times",
            Section::Docs => "doc table",
            Section::Names => "names",
            Section::NameIndex => "name index",
            Section::QGramKeys => "qgram keys",
            Section::QGramRefs => "qgram refs",
            Section::Postings => "postings",
        }
    }
}

/// `vocab_size^q` as a u128 (at most 2^128 for the accepted ranges, so it never overflows for
/// `q <= 8` and `vocab_size <= 65536`).
pub(crate) fn key_space(vocab_size: u32, q: u32) -> u128 {
    (0..q).fold(1u128, |acc, _| acc.saturating_mul(u128::from(vocab_size)))
}

/// Bytes per q-gram key: 4 when every key fits in a u32 (`vocab_size^q <= 2^32`, e.g. vocab 512
/// with q = 3), else 8. Narrow keys halve the keys section and the cache lines a binary search
/// touches.
pub(crate) fn key_width(vocab_size: u32, q: u32) -> u64 {
    if key_space(vocab_size, q) <= 1u128 << 32 {
        4
    } else {
        8
    }
}

/// Whether `(vocab_size, q)` is a valid parameter pair: both in range and every key fits in u64.
pub(crate) fn params_valid(vocab_size: u32, q: u32) -> bool {
    (1..=MAX_VOCAB).contains(&vocab_size)
        && (1..=MAX_Q).contains(&q)
        && key_space(vocab_size, q) <= 1u128 << 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_sizes_are_fixed() {
        assert_eq!(HEADER_LEN, 64);
        assert_eq!(DOC_ENTRY_LEN, 32);
        assert_eq!(POSTINGS_REF_LEN, 8);
        assert_eq!(TIME_BLOCK_LEN, 16);
        assert_eq!(
            PACKED_BLOCK_LEN,
            <bitpacking::BitPacker4x as bitpacking::BitPacker>::BLOCK_LEN
        );
    }

    #[test]
    fn placement_aligns_every_section() {
        let p = SECTION_LAYOUT
            .place_sections(&[3, 0, 5, 8, 1, 0, 2, 4])
            .expect("small lengths");
        assert_eq!(p.offsets, vec![192, 200, 200, 208, 216, 224, 224, 232]);
        assert_eq!(p.footer_offset, 240);
        assert_eq!(p.file_len, 240 + 32 + 16);
    }

    #[test]
    fn parameter_limits() {
        assert!(params_valid(65536, 4));
        assert!(!params_valid(65536, 5));
        assert!(params_valid(256, 8));
        assert!(!params_valid(257, 8));
        assert!(!params_valid(0, 1));
        assert!(!params_valid(2, 0));
        assert!(!params_valid(65537, 1));
    }

    #[test]
    fn key_width_follows_the_key_space() {
        assert_eq!(key_width(512, 3), 4);
        assert_eq!(key_width(65536, 2), 4);
        assert_eq!(key_width(65536, 3), 8);
        assert_eq!(key_width(256, 4), 4);
        assert_eq!(key_width(256, 8), 8);
    }
}
