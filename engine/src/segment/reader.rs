//! Opens a segment file (v1 or v2): maps it, validates every byte, and serves documents and
//! postings from the mapping.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use memmap2::Mmap;
use pairalign_sections::{self as sections, MAX_SECTION_COUNT};
use roaring::RoaringBitmap;

use super::format::{
    key_space, key_width, params_valid, DocEntry, Header, PostingsRef, Section, DOC_ENTRY_LEN,
    FORMAT_VERSION, HEADER_LEN, LIST_ALIGN, MAGIC, MAX_NAME_BYTES, MIN_BITMAP_BYTES,
    OLDEST_SUPPORTED_VERSION, POSTINGS_REF_LEN, ROARING_MARKER, ROARING_PREFIX_WORDS,
    SECTION_LAYOUT, TIME_BLOCK_LEN, V1_SECTION_COUNT,
};
use super::postings;
use super::times::{self, PackedTimes, Times};
use crate::{Error, Result, Symbol};

/// One document of an open segment, borrowed from the mapping.
#[derive(Clone, Copy, Debug)]
pub struct DocRef<'a> {
    /// Position of the document in the segment (0..doc_count).
    pub ord: usize,
    /// Global document number assigned by the database.
    pub doc_id: u32,
    /// External id of the document.
    pub name: &'a str,
    /// Segment-global position of the document's first token.
    pub token_start: u32,
    /// The token string.
    pub tokens: &'a [Symbol],
    /// Start time of each token in ms, decoded on demand (`get`, `get_range`, `to_vec`).
    pub times_ms: Times<'a>,
    /// Duration of the recording in ms.
    pub duration_ms: u32,
}

/// A validated, memory-mapped segment. `Send + Sync`: all accessors take `&self` and the mapping
/// is read-only.
pub struct Segment {
    path: PathBuf,
    map: Mmap,
    vocab_size: u32,
    q: u32,
    doc_count: usize,
    token_count: u64,
    /// Keys are u64 (else u32): `vocab_size^q > 2^32`.
    wide_keys: bool,
    /// The layout the file is read with, which says what the times and postings sections hold.
    layout: Layout,
    /// Byte range of each v1 section in `map`, indexed by `Section as usize`.
    sections: [Range<usize>; V1_SECTION_COUNT],
    /// The section table, for the deferred checksums.
    entries: Vec<sections::SectionEntry>,
    /// The outcome of the full check (every section's checksum and every invariant the
    /// accessors rely on), run once: at open ([`Segment::open`]) or on first use
    /// ([`Segment::open_deferred`], then [`Segment::verify`]). The error as (section, reason).
    verified: OnceLock<std::result::Result<(), (&'static str, String)>>,
    /// Every document number must be below this (the MANIFEST's next number), checked by
    /// [`Segment::verify`]; `u32::MAX` until the database sets it.
    doc_id_bound: std::sync::atomic::AtomicU32,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment")
            .field("path", &self.path)
            .field("vocab_size", &self.vocab_size)
            .field("q", &self.q)
            .field("doc_count", &self.doc_count)
            .field("token_count", &self.token_count)
            .field("bytes", &self.map.len())
            .finish()
    }
}

/// The layouts this build can read. A file is read with the newest layout that both its writer
/// and this build know: `min(file's format_version, FORMAT_VERSION)`, which the file's
/// `oldest_supported_version` allows when it is at most `FORMAT_VERSION`. Both have the same
/// eight sections; they differ in what the times and postings sections hold (and in the last
/// field of the doc table), which [`Segment`]'s accessors and the full check dispatch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// `[u32]` times; position arrays and roaring bitmaps.
    V1,
    /// Block-packed times; delta-coded, bit-packed lists.
    V2,
}

impl Layout {
    fn for_header(path: &Path, header: &Header) -> Result<Layout> {
        let (found, oldest_supported) = (header.format_version, header.oldest_supported_version);
        match sections::readable_version(found, oldest_supported, FORMAT_VERSION) {
            Ok(1) => Ok(Layout::V1),
            Ok(2) => Ok(Layout::V2),
            Ok(_) => Err(layout_error(
                path,
                sections::Error::UnsupportedVersion {
                    found,
                    oldest_supported,
                },
            )),
            Err(e) => Err(layout_error(path, e)),
        }
    }
}

impl Segment {
    /// Maps and validates the segment at `path`: sizes, magics, versions, section placement,
    /// every checksum, and every invariant the accessors rely on. A damaged, truncated or foreign
    /// file gives `Error::Corrupt` naming the file and section (or `UnsupportedVersion`), never a
    /// panic. Inline positions, position arrays and v2 lists are checked here; v1 roaring
    /// bitmaps when they are looked up.
    ///
    /// # Safety
    ///
    /// This function is safe to call, but it memory-maps the file: if another process modifies
    /// or truncates the file while the `Segment` is alive, reads may see changed bytes or fault
    /// (SIGBUS). Segments are immutable by contract: the database writes each one once under a
    /// fresh name, never rewrites it, and only unlinks it (which leaves existing mappings
    /// intact); nothing else may write to `segments/*.seg`.
    pub fn open(path: &Path) -> Result<Segment> {
        let segment = Segment::open_deferred(path)?;
        segment.verify()?;
        Ok(segment)
    }

    /// Maps the segment at `path` and checks what costs no more than the header region: sizes,
    /// magics, versions, the header's checksum, section placement and lengths, zero padding.
    /// The sections' checksums and contents are checked by [`Segment::verify`], which every
    /// reader of the contents must call first (the database's `Searcher` does, once per segment,
    /// in the background after open and before any use): until it has passed, the accessors may
    /// not be called. Opening is then independent of the segment's size.
    pub fn open_deferred(path: &Path) -> Result<Segment> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len < HEADER_LEN {
            return Err(Error::corrupt(
                path,
                "header",
                format!("file is {len} bytes, shorter than the {HEADER_LEN}-byte header"),
            ));
        }
        // SAFETY: the mapping is read-only, and segment files are never modified or truncated
        // after they are written (the contract in the `# Safety` section above), so the bytes
        // behind the slices the accessors hand out cannot change or disappear while `map` lives.
        // Every read goes through bounds that `parse` validated against the mapped length.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let header: Header = bytemuck::pod_read_unaligned(&map[..HEADER_LEN as usize]);
        if header.magic != MAGIC {
            return Err(Error::corrupt(
                path,
                "header",
                "bad magic: not a PairAlign segment file",
            ));
        }
        let layout = Layout::for_header(path, &header)?;
        parse(path, map, &header, layout)
    }

    /// The full check, once (later calls return its outcome): every section against its
    /// checksum, then every invariant the accessors rely on. A damaged segment is
    /// `Error::Corrupt` naming the file and the section.
    pub fn verify(&self) -> Result<()> {
        self.verified
            .get_or_init(|| {
                SECTION_LAYOUT
                    .check_checksums(&self.map, &self.entries)
                    .map_err(|e| layout_error(&self.path, e))
                    .and_then(|()| validate_contents(self))
                    .and_then(|()| self.check_doc_id_bound())
                    .map_err(|e| match e {
                        Error::Corrupt {
                            section, reason, ..
                        } => (section, reason),
                        other => ("segment", other.to_string()),
                    })
            })
            .clone()
            .map_err(|(section, reason)| Error::corrupt(&self.path, section, reason))
    }

    /// Makes [`Segment::verify`] also require every document number below `bound` (the
    /// database's MANIFEST assigns numbers from a counter; a number at or above it is a
    /// segment that does not belong to this MANIFEST). Call before the first `verify`.
    pub fn require_doc_ids_below(&self, bound: u32) {
        self.doc_id_bound
            .store(bound, std::sync::atomic::Ordering::Relaxed);
    }

    fn check_doc_id_bound(&self) -> Result<()> {
        let bound = self.doc_id_bound.load(std::sync::atomic::Ordering::Relaxed);
        match self.docs().find(|d| d.doc_id >= bound) {
            Some(doc) => Err(Error::corrupt(
                &self.path,
                "manifest entry",
                format!(
                    "a document number is {} in the file but below next_doc_id {bound} in the \
                     MANIFEST",
                    doc.doc_id
                ),
            )),
            None => Ok(()),
        }
    }

    /// Whether [`Segment::verify`] has run and passed.
    pub fn is_verified(&self) -> bool {
        matches!(self.verified.get(), Some(Ok(())))
    }

    /// Bytes of each section by name (`tokens`, `times`, `doc table`, `names`, `name index`,
    /// `qgram keys`, `qgram refs`, `postings`), in file order; the header, section table, padding
    /// and footer make up the rest of [`Segment::byte_len`].
    pub fn section_bytes(&self) -> Vec<(&'static str, u64)> {
        Section::ALL
            .iter()
            .map(|&s| (s.name(), self.sections[s as usize].len() as u64))
            .collect()
    }

    /// The file this segment was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of symbols in the vocabulary; every token is below it.
    pub fn vocab_size(&self) -> u32 {
        self.vocab_size
    }

    /// Length of the indexed q-grams.
    pub fn q(&self) -> u32 {
        self.q
    }

    /// Number of documents.
    pub fn doc_count(&self) -> usize {
        self.doc_count
    }

    /// Number of tokens of all documents.
    pub fn token_count(&self) -> u64 {
        self.token_count
    }

    /// Size of the file in bytes.
    pub fn byte_len(&self) -> u64 {
        self.map.len() as u64
    }

    /// All documents' tokens, concatenated in ordinal order (positions index this slice).
    pub fn tokens(&self) -> &[Symbol] {
        self.section(Section::Tokens)
    }

    /// The format version the file is read as (1 or 2).
    pub fn format_version(&self) -> u32 {
        match self.layout {
            Layout::V1 => 1,
            Layout::V2 => 2,
        }
    }

    /// The document with ordinal `ord`.
    ///
    /// # Panics
    ///
    /// If `ord >= doc_count()` (a caller bug).
    pub fn doc(&self, ord: usize) -> DocRef<'_> {
        let entries = self.doc_entries();
        assert!(
            ord < entries.len(),
            "document ordinal {ord} out of range (doc_count {})",
            entries.len()
        );
        let e = entries[ord];
        let tokens = e.token_start as usize..e.token_start as usize + e.token_len as usize;
        let times_ms = match self.layout {
            Layout::V1 => Times::plain(
                self.section::<u32>(Section::Times)
                    .get(tokens.clone())
                    .unwrap_or_default(),
            ),
            Layout::V2 => match self.packed_times() {
                Some(table) => Times::packed(table, tokens.start, tokens.len(), e.first_time_ms),
                None => Times::plain(&[]),
            },
        };
        DocRef {
            ord,
            doc_id: e.doc_id,
            name: std::str::from_utf8(self.name_bytes(&e)).unwrap_or_default(),
            token_start: e.token_start,
            tokens: self.tokens().get(tokens).unwrap_or_default(),
            times_ms,
            duration_ms: e.duration_ms,
        }
    }

    /// The tokens of document `ord` alone: the hot path of exhaustive verification, which must not
    /// pay for the name's UTF-8 check that [`Segment::doc`] does. Empty if `ord` is out of range.
    pub fn doc_tokens(&self, ord: usize) -> &[Symbol] {
        self.doc_entries()
            .get(ord)
            .and_then(|e| {
                let start = e.token_start as usize;
                self.tokens().get(start..start + e.token_len as usize)
            })
            .unwrap_or_default()
    }

    /// Where document `ord`'s tokens lie in the segment, `(first token, token count, document
    /// number)`, without the name's UTF-8 check that [`Segment::doc`] does; `None` if `ord` is out
    /// of range.
    pub fn doc_span(&self, ord: usize) -> Option<(u32, u32, u32)> {
        self.doc_entries()
            .get(ord)
            .map(|e| (e.token_start, e.token_len, e.doc_id))
    }

    /// The document number of document `ord` (`u32::MAX` if out of range).
    pub fn doc_id(&self, ord: usize) -> u32 {
        self.doc_entries().get(ord).map_or(u32::MAX, |e| e.doc_id)
    }

    /// All documents in ordinal order.
    pub fn docs(&self) -> impl Iterator<Item = DocRef<'_>> {
        (0..self.doc_count).map(move |ord| self.doc(ord))
    }

    /// Ordinal of the document named `name`, by binary search over the name index.
    pub fn find(&self, name: &str) -> Option<usize> {
        let entries = self.doc_entries();
        let index: &[u32] = self.section(Section::NameIndex);
        let key = |ord: &u32| {
            entries
                .get(*ord as usize)
                .map(|e| self.name_bytes(e))
                .unwrap_or_default()
        };
        index
            .binary_search_by(|ord| key(ord).cmp(name.as_bytes()))
            .ok()
            .map(|i| index[i] as usize)
    }

    /// Ordinal of the document whose token range contains `pos`; `None` past the last token.
    pub fn doc_at_position(&self, pos: u32) -> Option<usize> {
        let entries = self.doc_entries();
        // Ranges are contiguous, so the last document starting at or before `pos` contains it
        // (an empty document there would be followed by one with the same start).
        let ord = entries
            .partition_point(|e| e.token_start <= pos)
            .checked_sub(1)?;
        let e = entries[ord];
        (pos - e.token_start < e.token_len).then_some(ord)
    }

    /// [`Segment::doc_at_position`] for ascending positions: searches forward from ordinal
    /// `first` (a galloping search, cheap when `pos` is near it), and from the start when `pos`
    /// lies before document `first`.
    pub fn doc_at_position_from(&self, pos: u32, first: usize) -> Option<usize> {
        let entries = self.doc_entries();
        let rest = entries.get(first..).unwrap_or_default();
        if rest.first().is_none_or(|e| e.token_start > pos) {
            return self.doc_at_position(pos);
        }
        let mut bound = 1;
        while bound < rest.len() && rest[bound].token_start <= pos {
            bound *= 2;
        }
        let lo = bound / 2;
        let hi = bound.min(rest.len());
        let ord = first + lo + rest[lo..hi].partition_point(|e| e.token_start <= pos) - 1;
        let e = entries[ord];
        (pos - e.token_start < e.token_len).then_some(ord)
    }

    /// Positions where the q-gram with `key` starts, or `None` if it does not occur. A v1
    /// roaring list is deserialized and checked now; a damaged one is `Error::Corrupt` for the
    /// `postings` section.
    pub fn postings(&self, key: u64) -> Result<Option<RoaringBitmap>> {
        let Some((r, list)) = self.list(key) else {
            return Ok(None);
        };
        let bitmap = match list {
            List::Inline(position) => Ok(RoaringBitmap::from_iter([position])),
            // Sorted at open, so this only fails on a bug; still no panic.
            List::Array(positions) => RoaringBitmap::from_sorted_iter(positions.iter().copied())
                .map_err(|e| e.to_string()),
            List::Roaring(bytes) => decode_bitmap(bytes, r.cardinality, self.token_count),
            List::Packed(bytes) => {
                let mut positions = Vec::with_capacity(r.cardinality as usize);
                postings::for_each(bytes, r.cardinality, |p| positions.push(p))
                    .map_err(|e| e.to_string())
                    .and_then(|_| {
                        RoaringBitmap::from_sorted_iter(positions).map_err(|e| e.to_string())
                    })
            }
        };
        bitmap
            .map(Some)
            .map_err(|reason| self.corrupt_list(key, reason))
    }

    /// Calls `f` with each position where the q-gram with `key` starts, in ascending order, and
    /// returns whether it occurs. Allocates nothing unless the list is a v1 roaring bitmap (a
    /// dense list, hundreds of positions or more), which is deserialized and checked first: a
    /// damaged one is `Error::Corrupt` for the `postings` section and `f` is not called. A v2
    /// list is decoded a block of 128 at a time into a stack buffer (checked at open, so it
    /// cannot fail; it would be `Error::Corrupt` too).
    #[inline]
    pub fn for_each_position(&self, key: u64, mut f: impl FnMut(u32)) -> Result<bool> {
        let Some((r, list)) = self.list(key) else {
            return Ok(false);
        };
        match list {
            List::Inline(position) => f(position),
            List::Array(positions) => positions.iter().copied().for_each(f),
            List::Roaring(bytes) => decode_bitmap(bytes, r.cardinality, self.token_count)
                .map_err(|reason| self.corrupt_list(key, reason))?
                .iter()
                .for_each(f),
            List::Packed(bytes) => {
                postings::for_each(bytes, r.cardinality, f)
                    .map_err(|e| self.corrupt_list(key, e.to_string()))?;
            }
        }
        Ok(true)
    }

    /// Number of positions of the q-gram with `key`, from the dictionary (no postings read).
    pub fn posting_len(&self, key: u64) -> Option<u32> {
        self.dict_index(key)
            .and_then(|i| self.refs().get(i))
            .map(|r| r.cardinality)
    }

    /// Every key of the q-gram dictionary, in order (tests compare it with an oracle).
    #[cfg(test)]
    pub(super) fn dict_keys(&self) -> Vec<u64> {
        if self.wide_keys {
            self.section::<u64>(Section::QGramKeys).to_vec()
        } else {
            let keys: &[u32] = self.section(Section::QGramKeys);
            keys.iter().map(|&k| u64::from(k)).collect()
        }
    }

    /// Index of `key` in the keys section, by binary search.
    fn dict_index(&self, key: u64) -> Option<usize> {
        if self.wide_keys {
            let keys: &[u64] = self.section(Section::QGramKeys);
            keys.binary_search(&key).ok()
        } else {
            let keys: &[u32] = self.section(Section::QGramKeys);
            keys.binary_search(&u32::try_from(key).ok()?).ok()
        }
    }

    fn refs(&self) -> &[PostingsRef] {
        self.section(Section::QGramRefs)
    }

    /// The ref and the list of `key`. `open` checked every ref against the postings section, so
    /// the empty fallbacks never happen; they only keep this path free of panics.
    fn list(&self, key: u64) -> Option<(PostingsRef, List<'_>)> {
        let r = *self.refs().get(self.dict_index(key)?)?;
        if r.cardinality == 1 {
            return Some((r, List::Inline(r.value)));
        }
        if self.layout == Layout::V2 {
            let bytes: &[u8] = self.section(Section::Postings);
            let start = r.value as usize * LIST_ALIGN as usize;
            return Some((r, List::Packed(bytes.get(start..).unwrap_or_default())));
        }
        let words: &[u32] = self.section(Section::Postings);
        let start = r.value as usize;
        let list = if words.get(start) == Some(&ROARING_MARKER) {
            let len = words.get(start + 1).copied().unwrap_or_default() as usize;
            let body = ROARING_PREFIX_WORDS as usize;
            let bytes: &[u8] = words
                .get(start + body..start + body + len.div_ceil(4))
                .map(bytemuck::cast_slice)
                .unwrap_or_default();
            List::Roaring(bytes.get(..len).unwrap_or_default())
        } else {
            List::Array(
                words
                    .get(start..start + r.cardinality as usize)
                    .unwrap_or_default(),
            )
        };
        Some((r, list))
    }

    fn corrupt_list(&self, key: u64, reason: String) -> Error {
        Error::corrupt(
            &self.path,
            "postings",
            format!("list of q-gram key {key}: {reason}"),
        )
    }

    fn doc_entries(&self) -> &[DocEntry] {
        self.section(Section::Docs)
    }

    /// The v2 times section's block table and packed area (lengths checked at open).
    fn packed_times(&self) -> Option<PackedTimes<'_>> {
        PackedTimes::new(
            self.section(Section::Times),
            times::block_count(self.token_count) as usize,
        )
    }

    fn name_bytes(&self, e: &DocEntry) -> &[u8] {
        let names: &[u8] = self.section(Section::Names);
        let start = e.name_offset as usize;
        names
            .get(start..start + e.name_len as usize)
            .unwrap_or_default()
    }

    /// A section as a typed slice. `open` checked size and alignment, so the fallback to an empty
    /// slice never happens; it only keeps this path free of panics.
    fn section<T: bytemuck::Pod>(&self, section: Section) -> &[T] {
        let bytes = self
            .map
            .get(self.sections[section as usize].clone())
            .unwrap_or_default();
        bytemuck::try_cast_slice(bytes).unwrap_or_default()
    }
}

/// The positions of one q-gram, where the format keeps them.
enum List<'a> {
    /// The only position, held in the ref.
    Inline(u32),
    /// v1: strictly ascending positions below `token_count` (checked at open).
    Array(&'a [u32]),
    /// v1: a serialized roaring bitmap (checked when read).
    Roaring(&'a [u8]),
    /// v2: the postings section from the list's start on (checked at open).
    Packed(&'a [u8]),
}

/// Checks what the header region vouches for in a file read with `layout` (a v1 or v2 file, or a
/// newer one compatible with either) and builds the [`Segment`].
fn parse(path: &Path, map: Mmap, header: &Header, layout: Layout) -> Result<Segment> {
    let corrupt = |section: &'static str, reason: String| Error::corrupt(path, section, reason);
    let bytes: &[u8] = &map;

    // The section count, before the table is sized from it.
    let section_count = header.section_count;
    let count_ok = if header.format_version <= FORMAT_VERSION {
        section_count as usize == V1_SECTION_COUNT
    } else {
        (V1_SECTION_COUNT as u32..=MAX_SECTION_COUNT).contains(&section_count)
    };
    if !count_ok {
        return Err(corrupt(
            "header",
            format!("section count {section_count} is not valid for this version"),
        ));
    }
    // The file's envelope: length, footer magic, and the checksum that vouches for the header and
    // the section table, before any header field below is trusted.
    let table = SECTION_LAYOUT
        .read_table(bytes, section_count)
        .map_err(|e| layout_error(path, e))?;
    if header.format_version <= FORMAT_VERSION && header.reserved != [0; 16] {
        return Err(corrupt("header", "reserved bytes are not zero".into()));
    }
    if !params_valid(header.vocab_size, header.q) {
        return Err(corrupt(
            "header",
            format!(
                "vocab_size {} with q {} is out of range",
                header.vocab_size, header.q
            ),
        ));
    }
    if header.token_count > u64::from(u32::MAX) {
        return Err(corrupt(
            "header",
            format!("token count {} exceeds 2^32 - 1", header.token_count),
        ));
    }

    // Section placement recomputed from the lengths (so sections are in bounds, aligned, in order
    // and non-overlapping, and with the footer they cover the file exactly), zero padding (so
    // every byte is checked) and checksums, before any section content is interpreted.
    let table = table.validate_layout().map_err(|e| layout_error(path, e))?;

    // Element sizes against the header's counts. Every q-gram has a position, so a larger
    // qgram_count is corrupt (and this bound keeps the products below from overflowing).
    let token_count = header.token_count;
    let doc_count = u64::from(header.doc_count);
    if header.qgram_count > token_count {
        return Err(corrupt(
            "header",
            format!(
                "{} q-grams but only {token_count} tokens",
                header.qgram_count
            ),
        ));
    }
    let time_blocks = times::block_count(token_count);
    let expected_lens = [
        (Section::Tokens, Some(token_count * 2)),
        (
            Section::Times,
            match layout {
                Layout::V1 => Some(token_count * 4),
                Layout::V2 => None,
            },
        ),
        (Section::Docs, Some(doc_count * DOC_ENTRY_LEN)),
        (Section::Names, None),
        (Section::NameIndex, Some(doc_count * 4)),
        (
            Section::QGramKeys,
            Some(header.qgram_count * key_width(header.vocab_size, header.q)),
        ),
        (
            Section::QGramRefs,
            Some(header.qgram_count * POSTINGS_REF_LEN),
        ),
        (Section::Postings, None),
    ];
    let mut sections: [Range<usize>; V1_SECTION_COUNT] = Default::default();
    for (section, expected) in expected_lens {
        let entry = table[section as usize];
        if let Some(expected) = expected.filter(|&e| e != entry.len) {
            return Err(corrupt(
                section.name(),
                format!(
                    "length {} bytes does not match the header's counts (expected {expected})",
                    entry.len
                ),
            ));
        }
        sections[section as usize] = entry.range();
    }
    if layout == Layout::V2 {
        // The lengths the counts do not fix: the times' block table must fit (each block's data
        // is padded to 4 bytes), and lists are 8-byte aligned; the rest is checked by `verify`.
        let times = table[Section::Times as usize].len;
        if times < time_blocks * TIME_BLOCK_LEN || times % 4 != 0 {
            return Err(corrupt(
                Section::Times.name(),
                format!(
                    "length {times} bytes is not {} bytes of block table for {time_blocks} blocks \
                     plus a multiple of 4",
                    time_blocks * TIME_BLOCK_LEN
                ),
            ));
        }
        let postings = table[Section::Postings as usize].len;
        if postings % LIST_ALIGN != 0 {
            return Err(corrupt(
                Section::Postings.name(),
                format!("length {postings} bytes is not a multiple of {LIST_ALIGN}"),
            ));
        }
    }

    let segment = Segment {
        path: path.to_path_buf(),
        vocab_size: header.vocab_size,
        q: header.q,
        doc_count: header.doc_count as usize,
        token_count,
        wide_keys: key_width(header.vocab_size, header.q) == 8,
        layout,
        sections,
        entries: table,
        verified: OnceLock::new(),
        doc_id_bound: std::sync::atomic::AtomicU32::new(u32::MAX),
        map,
    };
    Ok(segment)
}

/// A damaged (or too new) file as a segment error, with the section and wording segment errors
/// have always had (tests and users match on them).
fn layout_error(path: &Path, e: sections::Error) -> Error {
    use sections::Error as E;
    let checksum = |stored: u32, computed: u32| {
        format!("checksum mismatch (stored {stored:08x}, computed {computed:08x})")
    };
    let (section, reason) = match e {
        E::UnsupportedVersion { found, .. } => {
            return Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found,
                oldest: OLDEST_SUPPORTED_VERSION,
                current: FORMAT_VERSION,
            }
        }
        E::OldestVersionOutOfRange {
            found,
            oldest_supported,
        } => (
            "header",
            format!(
                "oldest supported version {oldest_supported} is not in 1..={found} (the writer's \
                 version)"
            ),
        ),
        E::TooManySections { count } => (
            "header",
            format!("section count {count} is not valid for this version"),
        ),
        E::Truncated { file_len, min_len } => (
            "footer",
            format!("file is {file_len} bytes, shorter than header, section table and footer ({min_len} bytes): truncated"),
        ),
        E::FooterMagic => (
            "footer",
            "bad footer magic: the file is truncated or was not completely written".into(),
        ),
        E::HeaderChecksum { stored, computed } => ("header", checksum(stored, computed)),
        E::FooterReserved => ("footer", "reserved field is not zero".into()),
        E::LengthOverflow { .. } => ("section table", "section lengths overflow".into()),
        E::FileLength { end, file_len, .. } => (
            "section table",
            format!("sections and footer end at byte {end}, but the file is {file_len} bytes"),
        ),
        E::Misplaced {
            index,
            offset,
            len,
            expected,
        } => (
            "section table",
            format!("section {index} at offset {offset} (length {len}), expected offset {expected}"),
        ),
        E::Padding { at, .. } => ("padding", format!("byte {at} between sections is not zero")),
        E::Checksum {
            index,
            stored,
            computed,
        } => (
            Section::ALL
                .get(index)
                .map_or("extension section", |s| s.name()),
            checksum(stored, computed),
        ),
    };
    Error::corrupt(path, section, reason)
}

/// Casts one section, failing (rather than falling back to empty) if the bytes do not fit the
/// element type.
fn cast<T: bytemuck::Pod>(seg: &Segment, section: Section) -> Result<&[T]> {
    let range = seg.sections[section as usize].clone();
    seg.map
        .get(range)
        .and_then(|b| bytemuck::try_cast_slice(b).ok())
        .ok_or_else(|| {
            Error::corrupt(
                &seg.path,
                section.name(),
                "section is misaligned or not a whole number of elements",
            )
        })
}

/// Semantic invariants of the sections (after their checksums matched).
fn validate_contents(seg: &Segment) -> Result<()> {
    let corrupt =
        |section: Section, reason: String| Error::corrupt(&seg.path, section.name(), reason);
    let tokens: &[Symbol] = cast(seg, Section::Tokens)?;
    let docs: &[DocEntry] = cast(seg, Section::Docs)?;
    let names: &[u8] = cast(seg, Section::Names)?;
    let name_index: &[u32] = cast(seg, Section::NameIndex)?;
    let refs: &[PostingsRef] = cast(seg, Section::QGramRefs)?;
    // v1: the times are u32s and the lists whole words.
    let (times, words): (&[u32], &[u32]) = match seg.layout {
        Layout::V1 => (cast(seg, Section::Times)?, cast(seg, Section::Postings)?),
        Layout::V2 => (&[], &[]),
    };

    if seg.vocab_size < 1 << 16 {
        if let Some(i) = tokens.iter().position(|&s| u32::from(s) >= seg.vocab_size) {
            return Err(corrupt(
                Section::Tokens,
                format!(
                    "symbol {} at position {i} is not below vocab_size {}",
                    tokens[i], seg.vocab_size
                ),
            ));
        }
    }

    let q = u64::from(seg.q);
    let mut next_token = 0u64;
    let mut next_name = 0u64;
    let mut indexable = 0u64;
    for (ord, d) in docs.iter().enumerate() {
        let doc_err = |reason: String| corrupt(Section::Docs, format!("document {ord}: {reason}"));
        if u64::from(d.token_start) != next_token {
            return Err(doc_err(format!(
                "tokens start at {}, expected {next_token}",
                d.token_start
            )));
        }
        let token_end = next_token + u64::from(d.token_len);
        if token_end > seg.token_count {
            return Err(doc_err(format!(
                "tokens end at {token_end}, past the token count {}",
                seg.token_count
            )));
        }
        if d.name_offset != next_name {
            return Err(doc_err(format!(
                "name starts at {}, expected {next_name}",
                d.name_offset
            )));
        }
        if d.name_len == 0 || d.name_len as usize > MAX_NAME_BYTES {
            return Err(doc_err(format!(
                "name length {} is not in 1..={MAX_NAME_BYTES}",
                d.name_len
            )));
        }
        let name_end = next_name + u64::from(d.name_len);
        let Some(name) = names.get(next_name as usize..name_end as usize) else {
            return Err(doc_err(format!(
                "name ends at {name_end}, past the names section ({} bytes)",
                names.len()
            )));
        };
        if let Err(e) = std::str::from_utf8(name) {
            return Err(corrupt(
                Section::Names,
                format!("name of document {ord} is not UTF-8: {e}"),
            ));
        }
        if seg.layout == Layout::V1 {
            if d.first_time_ms != 0 {
                return Err(doc_err("reserved field is not zero".into()));
            }
            let doc_times = &times[next_token as usize..token_end as usize];
            if let Some(i) = doc_times.windows(2).position(|w| w[1] < w[0]) {
                return Err(corrupt(
                    Section::Times,
                    format!(
                        "times of document {ord} decrease at token {}",
                        next_token + i as u64 + 1
                    ),
                ));
            }
        }
        indexable += (u64::from(d.token_len) + 1).saturating_sub(q);
        next_token = token_end;
        next_name = name_end;
    }
    if next_token != seg.token_count {
        return Err(corrupt(
            Section::Docs,
            format!(
                "documents cover {next_token} tokens, the header says {}",
                seg.token_count
            ),
        ));
    }
    if next_name != names.len() as u64 {
        return Err(corrupt(
            Section::Names,
            format!(
                "documents use {next_name} name bytes, the section has {}",
                names.len()
            ),
        ));
    }
    if seg.layout == Layout::V2 {
        times::check(seg.section(Section::Times), seg.token_count, docs)
            .map_err(|reason| corrupt(Section::Times, reason))?;
    }

    // Strictly increasing names imply distinct ordinals: with every ordinal in range, the index is
    // a permutation, and names are unique.
    let mut prev: Option<&[u8]> = None;
    for (i, &ord) in name_index.iter().enumerate() {
        let Some(d) = docs.get(ord as usize) else {
            return Err(corrupt(
                Section::NameIndex,
                format!(
                    "entry {i} names document {ord}, past doc_count {}",
                    docs.len()
                ),
            ));
        };
        let name = &names[d.name_offset as usize..(d.name_offset + u64::from(d.name_len)) as usize];
        if prev.is_some_and(|p| p >= name) {
            return Err(corrupt(
                Section::NameIndex,
                format!("entry {i} is not strictly after the previous one by name"),
            ));
        }
        prev = Some(name);
    }

    let keys_result = if seg.wide_keys {
        check_keys(cast::<u64>(seg, Section::QGramKeys)?, seg.vocab_size, seg.q)
    } else {
        check_keys(cast::<u32>(seg, Section::QGramKeys)?, seg.vocab_size, seg.q)
    };
    keys_result.map_err(|reason| corrupt(Section::QGramKeys, reason))?;

    // Every list in the postings section is referenced once, in order, and covers it exactly;
    // arrays and v2 lists are sorted and in range, so lookups can hand them out unchecked. A
    // list's start counts in words (v1) or 8-byte units (v2).
    let postings_bytes: &[u8] = seg.section(Section::Postings);
    let mut next_word = 0u64;
    let mut positions = 0u64;
    for (i, r) in refs.iter().enumerate() {
        let ref_err = |reason: String| corrupt(Section::QGramRefs, format!("entry {i}: {reason}"));
        let list_err = |reason: String| {
            corrupt(
                Section::Postings,
                format!("list at word {next_word} (q-gram entry {i}): {reason}"),
            )
        };
        let cardinality = u64::from(r.cardinality);
        if cardinality == 0 || cardinality > seg.token_count {
            return Err(ref_err(format!(
                "cardinality {cardinality} is not in 1..=token_count"
            )));
        }
        positions += cardinality;
        if cardinality == 1 {
            if u64::from(r.value) >= seg.token_count {
                return Err(ref_err(format!(
                    "inline position {} is not below the token count {}",
                    r.value, seg.token_count
                )));
            }
            continue;
        }
        if u64::from(r.value) != next_word {
            let unit = match seg.layout {
                Layout::V1 => "word",
                Layout::V2 => "8-byte unit",
            };
            return Err(ref_err(format!(
                "list starts at {unit} {}, expected {next_word}",
                r.value
            )));
        }
        if seg.layout == Layout::V2 {
            let start = next_word * LIST_ALIGN;
            let Some(list) = postings_bytes.get(start as usize..) else {
                return Err(ref_err(format!(
                    "list starts at byte {start}, past the postings section ({} bytes)",
                    postings_bytes.len()
                )));
            };
            let len = postings::check(list, r.cardinality, seg.token_count).map_err(list_err)?;
            next_word += len as u64 / LIST_ALIGN;
            continue;
        }
        let start = next_word as usize;
        let Some(&first) = words.get(start) else {
            return Err(ref_err(format!(
                "list starts at word {start}, past the postings section ({} words)",
                words.len()
            )));
        };
        let end = if first == ROARING_MARKER {
            let Some(&len) = words.get(start + 1) else {
                return Err(list_err("bitmap length past the section".into()));
            };
            if len < MIN_BITMAP_BYTES {
                return Err(list_err(format!(
                    "bitmap length {len} is below {MIN_BITMAP_BYTES}"
                )));
            }
            let body = start + ROARING_PREFIX_WORDS as usize;
            let end = body as u64 + u64::from(len).div_ceil(4);
            let Some(body) = words.get(body..end as usize) else {
                return Err(list_err(format!(
                    "bitmap of {len} bytes ends past the section ({} words)",
                    words.len()
                )));
            };
            let padding = &bytemuck::cast_slice::<u32, u8>(body)[len as usize..];
            if padding.iter().any(|&b| b != 0) {
                return Err(list_err("padding after the bitmap is not zero".into()));
            }
            end
        } else {
            let end = next_word + cardinality;
            let Some(list) = words.get(start..end as usize) else {
                return Err(list_err(format!(
                    "{cardinality} positions end past the section ({} words)",
                    words.len()
                )));
            };
            if let Some(j) = list.windows(2).position(|w| w[0] >= w[1]) {
                return Err(list_err(format!(
                    "positions are not strictly ascending at index {}",
                    j + 1
                )));
            }
            let last = list.last().copied().unwrap_or_default();
            if u64::from(last) >= seg.token_count {
                return Err(list_err(format!(
                    "position {last} is not below the token count {}",
                    seg.token_count
                )));
            }
            end
        };
        next_word = end;
    }
    let units = match seg.layout {
        Layout::V1 => words.len() as u64,
        Layout::V2 => postings_bytes.len() as u64 / LIST_ALIGN,
    };
    if next_word != units {
        return Err(corrupt(
            Section::Postings,
            format!("the lists use {next_word} units, the section has {units}"),
        ));
    }
    if positions != indexable {
        return Err(corrupt(
            Section::QGramRefs,
            format!("postings hold {positions} positions, the documents have {indexable} q-grams"),
        ));
    }
    Ok(())
}

/// Keys strictly ascending (hence unique) and below `vocab_size^q`.
fn check_keys<K: Copy + Ord + Into<u64>>(
    keys: &[K],
    vocab_size: u32,
    q: u32,
) -> std::result::Result<(), String> {
    if let Some(i) = keys.windows(2).position(|w| w[0] >= w[1]) {
        return Err(format!(
            "key {} at entry {} is not greater than the previous key {}",
            keys[i + 1].into(),
            i + 1,
            keys[i].into()
        ));
    }
    let space = key_space(vocab_size, q);
    match keys.last() {
        Some(&last) if u128::from(last.into()) >= space => Err(format!(
            "key {} is not below vocab_size^q = {space}",
            last.into()
        )),
        _ => Ok(()),
    }
}

/// Deserializes one bitmap (roaring portable format) and checks it against its postings ref.
/// roaring checks each container but not that container keys ascend, so that is checked here
/// from the container descriptions
/// (<https://github.com/RoaringBitmap/RoaringFormatSpec#general-layout>).
pub(super) fn decode_bitmap(
    bytes: &[u8],
    cardinality: u32,
    token_count: u64,
) -> std::result::Result<RoaringBitmap, String> {
    const SERIAL_COOKIE_NO_RUNCONTAINER: u32 = 12346;
    const SERIAL_COOKIE: u16 = 12347;
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let cookie = u32_at(0).ok_or("shorter than a bitmap header")?;
    let (containers, descriptions_at) = if cookie == SERIAL_COOKIE_NO_RUNCONTAINER {
        let size = u32_at(4).ok_or("shorter than a bitmap header")? as usize;
        (size, 8)
    } else if cookie as u16 == SERIAL_COOKIE {
        let size = (cookie >> 16) as usize + 1;
        (size, 4 + size.div_ceil(8))
    } else {
        return Err(format!("unknown cookie {cookie:#x}"));
    };
    if containers > 1 << 16 {
        return Err(format!("{containers} containers, more than 2^16"));
    }
    let descriptions = bytes
        .get(descriptions_at..descriptions_at + 4 * containers)
        .ok_or("container descriptions past the end")?;
    let keys = descriptions
        .chunks_exact(4)
        .map(|d| u16::from_le_bytes([d[0], d[1]]));
    if keys.clone().zip(keys.skip(1)).any(|(a, b)| a >= b) {
        return Err("container keys are not ascending".into());
    }
    let mut reader = bytes;
    let bitmap = RoaringBitmap::deserialize_from(&mut reader).map_err(|e| e.to_string())?;
    if !reader.is_empty() {
        return Err(format!("{} bytes left after the bitmap", reader.len()));
    }
    if bitmap.len() != u64::from(cardinality) {
        return Err(format!(
            "{} positions, the q-gram refs say {cardinality}",
            bitmap.len()
        ));
    }
    if bitmap.max().is_some_and(|m| u64::from(m) >= token_count) {
        return Err(format!(
            "position {:?} past the token count {token_count}",
            bitmap.max()
        ));
    }
    Ok(bitmap)
}
