//! Buffers documents, builds the positional q-gram postings and serializes a segment file: v2
//! (packed times and postings, `times.rs` and `postings.rs`), or v1 for the tests of the v1
//! reader.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use pairalign_sections::SectionWriter;
use rayon::slice::ParallelSliceMut;
use serde::{Deserialize, Serialize};

use super::format::{
    key_width, params_valid, DocEntry, Header, PostingsRef, Section, FORMAT_VERSION, LIST_ALIGN,
    MAGIC, MAX_NAME_BYTES, POSTINGS_REF_LEN, SECTION_LAYOUT, V1_SECTION_COUNT,
    WRITTEN_OLDEST_SUPPORTED_VERSION,
};
#[cfg(test)]
use super::format::{ROARING_MARKER, ROARING_PREFIX_WORDS};
use super::{postings, qgram_key, times};
use crate::durability::{note, Event};
use crate::{Error, Result, Symbol};

/// The layout a writer produces: v2, which is all that builds write; v1 only in the tests of the
/// v1 reader (its corruption tests and its frozen fixture).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    #[cfg(test)]
    V1,
    V2,
}

/// Input document for the writer.
#[derive(Clone, Copy, Debug)]
pub struct DocInput<'a> {
    /// External id of the document: UTF-8, 1..=1024 bytes, unique within the segment.
    pub name: &'a str,
    /// Global document number assigned by the database (used by tombstones).
    pub doc_id: u32,
    /// The token string; every symbol below the writer's `vocab_size`. May be empty.
    pub tokens: &'a [Symbol],
    /// Start time of each token in ms: as many as `tokens`, non-decreasing.
    pub times_ms: &'a [u32],
    /// Duration of the recording in ms.
    pub duration_ms: u32,
}

/// What [`SegmentWriter::write`] produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentInfo {
    /// Documents in the segment.
    pub doc_count: u32,
    /// Tokens in the segment (all documents).
    pub token_count: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
}

/// Collects documents in memory and writes them as one immutable segment file.
pub struct SegmentWriter {
    vocab_size: u32,
    q: u32,
    tokens: Vec<Symbol>,
    times_ms: Vec<u32>,
    docs: Vec<DocEntry>,
    names: Vec<u8>,
    seen_names: HashSet<Box<str>>,
}

impl std::fmt::Debug for SegmentWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentWriter")
            .field("vocab_size", &self.vocab_size)
            .field("q", &self.q)
            .field("doc_count", &self.docs.len())
            .field("token_count", &self.tokens.len())
            .finish()
    }
}

impl SegmentWriter {
    /// A writer for a database with `vocab_size` symbols and q-grams of length `q`.
    ///
    /// Errors with `InvalidInput` if q is 0, > 8, or vocab_size^q overflows u64 (more than 2^64
    /// distinct keys), or vocab_size is 0 or > 65536.
    pub fn new(vocab_size: u32, q: u32) -> Result<SegmentWriter> {
        if !params_valid(vocab_size, q) {
            return Err(Error::InvalidInput(format!(
                "vocab_size {vocab_size} and q {q}: need 1 <= vocab_size <= 65536, 1 <= q <= 8 \
                 and vocab_size^q <= 2^64"
            )));
        }
        Ok(SegmentWriter {
            vocab_size,
            q,
            tokens: Vec::new(),
            times_ms: Vec::new(),
            docs: Vec::new(),
            names: Vec::new(),
            seen_names: HashSet::new(),
        })
    }

    /// Validates the doc (symbols < vocab, times len == tokens len and non-decreasing, name
    /// 1..=1024 bytes, no duplicate name within the segment, total tokens fit in u32) and buffers
    /// it. Returns `InvalidInput`/`SymbolOutOfVocabulary`/`DuplicateId` on bad docs without
    /// changing the writer.
    pub fn add(&mut self, doc: &DocInput) -> Result<()> {
        let name_len = doc.name.len();
        if name_len == 0 || name_len > MAX_NAME_BYTES {
            return Err(Error::InvalidInput(format!(
                "document name must be 1..={MAX_NAME_BYTES} bytes, got {name_len}"
            )));
        }
        if doc.times_ms.len() != doc.tokens.len() {
            return Err(Error::InvalidInput(format!(
                "document {:?}: {} times for {} tokens",
                doc.name,
                doc.times_ms.len(),
                doc.tokens.len()
            )));
        }
        if let Some(i) = doc.times_ms.windows(2).position(|w| w[1] < w[0]) {
            return Err(Error::InvalidInput(format!(
                "document {:?}: times decrease at token {} ({} ms after {} ms)",
                doc.name,
                i + 1,
                doc.times_ms[i + 1],
                doc.times_ms[i]
            )));
        }
        if let Some(position) = doc
            .tokens
            .iter()
            .position(|&s| u32::from(s) >= self.vocab_size)
        {
            return Err(Error::SymbolOutOfVocabulary {
                symbol: doc.tokens[position],
                position,
                vocab_size: self.vocab_size,
            });
        }
        let token_start = u32::try_from(self.tokens.len()).ok();
        let token_len = u32::try_from(doc.tokens.len()).ok();
        let (Some(token_start), Some(token_len)) = (token_start, token_len) else {
            return Err(Error::InvalidInput(too_many_tokens(
                self.tokens.len(),
                doc.tokens.len(),
            )));
        };
        if token_start.checked_add(token_len).is_none() {
            return Err(Error::InvalidInput(too_many_tokens(
                self.tokens.len(),
                doc.tokens.len(),
            )));
        }
        if self.docs.len() >= u32::MAX as usize {
            return Err(Error::InvalidInput(
                "a segment holds at most 2^32 - 1 documents".into(),
            ));
        }
        if self.seen_names.contains(doc.name) {
            return Err(Error::DuplicateId(doc.name.to_owned()));
        }

        self.seen_names.insert(doc.name.into());
        self.docs.push(DocEntry {
            name_offset: self.names.len() as u64,
            token_start,
            token_len,
            name_len: name_len as u32,
            doc_id: doc.doc_id,
            duration_ms: doc.duration_ms,
            first_time_ms: doc.times_ms.first().copied().unwrap_or(0),
        });
        self.names.extend_from_slice(doc.name.as_bytes());
        self.tokens.extend_from_slice(doc.tokens);
        self.times_ms.extend_from_slice(doc.times_ms);
        Ok(())
    }

    /// Documents buffered so far.
    pub fn doc_count(&self) -> usize {
        self.docs.len()
    }

    /// Tokens buffered so far (all documents).
    pub fn token_count(&self) -> u64 {
        self.tokens.len() as u64
    }

    /// Builds postings and writes the file at `path` (create_new; write; fsync the file). Does not
    /// rename or fsync the directory: the caller (database) handles commit. On error the partial
    /// file is removed.
    pub fn write(self, path: &Path) -> Result<SegmentInfo> {
        self.write_version(path, Version::V2)
    }

    /// [`SegmentWriter::write`] in the v1 layout, for the tests of the v1 reader.
    #[cfg(test)]
    pub(crate) fn write_v1(self, path: &Path) -> Result<SegmentInfo> {
        self.write_version(path, Version::V1)
    }

    fn write_version(self, path: &Path, version: Version) -> Result<SegmentInfo> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        note(|| Event::Created(path.to_path_buf()));
        match self.write_to(file, path, version) {
            Ok(info) => {
                note(|| Event::FileSynced(path.to_path_buf()));
                Ok(info)
            }
            Err(e) => {
                // Best effort: a half-written file must not block a retry (create_new).
                if std::fs::remove_file(path).is_ok() {
                    note(|| Event::Removed(path.to_path_buf()));
                }
                Err(Error::io(path, e))
            }
        }
    }

    fn write_to(self, file: File, path: &Path, version: Version) -> std::io::Result<SegmentInfo> {
        let doc_table: std::borrow::Cow<'_, [DocEntry]> = match version {
            // v1's doc table has a reserved zero where v2 keeps the first time.
            #[cfg(test)]
            Version::V1 => self
                .docs
                .iter()
                .map(|d| DocEntry {
                    first_time_ms: 0,
                    ..*d
                })
                .collect(),
            Version::V2 => std::borrow::Cow::Borrowed(&self.docs),
        };
        let doc_count = self.docs.len() as u32;
        let token_count = self.tokens.len() as u64;
        let name_index = self.name_index();
        let grams = self.sorted_qgrams();
        let qgram_count = count_runs(&grams);

        // Sections in table order (`Section` is the slot), each checksummed as it streams out;
        // the header region is written last, by `finish`.
        let mut out = SectionWriter::new(
            BufWriter::with_capacity(1 << 20, file),
            SECTION_LAYOUT,
            V1_SECTION_COUNT as u32,
        )?;
        let packed_times;
        let times: [&[u8]; 2] = match version {
            #[cfg(test)]
            Version::V1 => [bytemuck::cast_slice(&self.times_ms), &[]],
            Version::V2 => {
                packed_times = times::encode(&self.times_ms, &self.docs);
                [bytemuck::cast_slice(&packed_times.0), &packed_times.1]
            }
        };
        let plain: [(Section, &[&[u8]]); 5] = [
            (Section::Tokens, &[bytemuck::cast_slice(&self.tokens)]),
            (Section::Times, &times),
            (Section::Docs, &[bytemuck::cast_slice(&doc_table)]),
            (Section::Names, &[&self.names]),
            (Section::NameIndex, &[bytemuck::cast_slice(&name_index)]),
        ];
        for (section, parts) in plain {
            debug_assert_eq!(out.next_section(), section as usize);
            out.begin_section()?;
            for bytes in parts {
                out.write_all(bytes)?;
            }
            out.end_section()?;
        }

        // Keys first, straight from the sorted q-grams.
        debug_assert_eq!(out.next_section(), Section::QGramKeys as usize);
        out.begin_section()?;
        let wide_keys = key_width(self.vocab_size, self.q) == 8;
        let mut buf = Vec::with_capacity(1 << 20);
        for (key, _) in grams.runs() {
            if wide_keys {
                buf.extend_from_slice(&key.to_le_bytes());
            } else {
                buf.extend_from_slice(&(key as u32).to_le_bytes());
            }
            if buf.len() >= 1 << 20 {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        out.write_all(&buf)?;
        buf.clear();
        out.end_section()?;

        // The refs' length is known now but their values only as the lists are encoded: their
        // bytes are skipped here and filled in through a second handle (with its own file
        // offset) while the postings stream out, so they are never all held in memory.
        debug_assert_eq!(out.next_section(), Section::QGramRefs as usize);
        let refs_offset = out.begin_section()?;
        out.skip(qgram_count * POSTINGS_REF_LEN)?;
        out.end_section()?;
        let mut refs_out =
            BufWriter::with_capacity(1 << 20, OpenOptions::new().write(true).open(path)?);
        refs_out.seek(SeekFrom::Start(refs_offset))?;
        let mut refs_crc = crc32fast::Hasher::new();

        debug_assert_eq!(out.next_section(), Section::Postings as usize);
        out.begin_section()?;
        let mut refs = Vec::with_capacity(REFS_BATCH);
        let mut positions = Vec::new();
        // List offsets count in units: v1 lists are whole 4-byte words, v2 lists 8-byte aligned.
        let unit = match version {
            #[cfg(test)]
            Version::V1 => 4,
            Version::V2 => LIST_ALIGN as usize,
        };
        let mut postings_units = 0u64;
        for (_, run) in grams.runs() {
            positions.clear();
            positions.extend(run);
            let cardinality = positions.len() as u32;
            let value = if let [position] = positions[..] {
                position
            } else {
                let before = buf.len();
                match version {
                    #[cfg(test)]
                    Version::V1 => encode_list(&positions, &mut buf),
                    Version::V2 => postings::encode(&positions, &mut buf),
                }
                let start = postings_units;
                postings_units += ((buf.len() - before) / unit) as u64;
                // A list of n positions takes at most n units (v1: roaring is only chosen when
                // smaller than the array; v2: `LIST_ALIGN`) and positions are u32, so offsets
                // fit; checked anyway.
                u32::try_from(start)
                    .map_err(|_| std::io::Error::other("postings section longer than 2^32 units"))?
            };
            refs.push(PostingsRef { cardinality, value });
            if refs.len() == REFS_BATCH {
                let bytes: &[u8] = bytemuck::cast_slice(&refs);
                refs_out.write_all(bytes)?;
                refs_crc.update(bytes);
                refs.clear();
            }
            // Most lists are a few bytes: write and checksum them in large batches.
            if buf.len() >= 1 << 20 {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        out.write_all(&buf)?;
        drop(grams);
        out.end_section()?;
        let bytes: &[u8] = bytemuck::cast_slice(&refs);
        refs_out.write_all(bytes)?;
        refs_crc.update(bytes);
        refs_out.flush()?;
        out.set_checksum(Section::QGramRefs as usize, refs_crc.finalize())?;

        let (format_version, oldest_supported_version) = match version {
            #[cfg(test)]
            Version::V1 => (1, 1),
            Version::V2 => (FORMAT_VERSION, WRITTEN_OLDEST_SUPPORTED_VERSION),
        };
        let header = Header {
            magic: MAGIC,
            format_version,
            oldest_supported_version,
            vocab_size: self.vocab_size,
            q: self.q,
            doc_count,
            section_count: V1_SECTION_COUNT as u32,
            token_count,
            qgram_count,
            reserved: [0; 16],
        };
        let (inner, file_len) = out.finish(bytemuck::bytes_of(&header))?;
        let file = inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(SegmentInfo {
            doc_count,
            token_count,
            bytes: file_len,
        })
    }

    /// Document ordinals sorted by name bytes (names are unique, so the order is strict).
    fn name_index(&self) -> Vec<u32> {
        let name = |ord: u32| {
            let d = &self.docs[ord as usize];
            &self.names[d.name_offset as usize..d.name_offset as usize + d.name_len as usize]
        };
        let mut index: Vec<u32> = (0..self.docs.len() as u32).collect();
        index.par_sort_unstable_by(|&a, &b| name(a).cmp(name(b)));
        index
    }

    /// Every (key, start position) of every q-gram inside a document, sorted by key then
    /// position. Sorting one flat array is robust to the key distribution: with a near-uniform
    /// distribution almost every q-gram is distinct and a map of vectors would allocate once per
    /// position.
    fn sorted_qgrams(&self) -> QGrams {
        let q = self.q as usize;
        let indexed: usize = self
            .docs
            .iter()
            .map(|d| (d.token_len as usize + 1).saturating_sub(q))
            .sum();
        let each = |f: &mut dyn FnMut(u64, u32)| {
            for d in &self.docs {
                let start = d.token_start as usize;
                let doc = &self.tokens[start..start + d.token_len as usize];
                for (i, gram) in doc.windows(q).enumerate() {
                    f(qgram_key(gram, self.vocab_size), (start + i) as u32);
                }
            }
        };
        if super::format::key_space(self.vocab_size, self.q) <= 1u128 << 32 {
            // Key and position packed in one u64: half the memory and a faster sort.
            let mut packed = Vec::with_capacity(indexed);
            each(&mut |key, pos| packed.push(key << 32 | u64::from(pos)));
            packed.par_sort_unstable();
            QGrams::Packed(packed)
        } else {
            let mut pairs = Vec::with_capacity(indexed);
            each(&mut |key, pos| pairs.push((key, pos)));
            pairs.par_sort_unstable();
            QGrams::Pairs(pairs)
        }
    }
}

/// Appends the v1 postings-section encoding of strictly ascending positions (two or more), a whole
/// number of 4-byte words: the positions as little-endian u32, or, when it takes fewer words, the
/// roaring marker, the bitmap's byte length and the bitmap, zero-padded to 4 bytes. Ties go to
/// the array, which is faster to read.
#[cfg(test)]
pub(super) fn encode_list(positions: &[u32], out: &mut Vec<u8>) {
    let array_words = positions.len() as u64;
    let bitmap_len = serialized_bitmap_len(positions);
    if ROARING_PREFIX_WORDS + bitmap_len.div_ceil(4) < array_words {
        out.extend_from_slice(&ROARING_MARKER.to_le_bytes());
        // A bitmap of u32 values is at most 8 + 2^16 * (8 + 8192) bytes, far below 2^32.
        out.extend_from_slice(&(bitmap_len as u32).to_le_bytes());
        let before = out.len();
        serialize_positions(positions, out);
        debug_assert_eq!((out.len() - before) as u64, bitmap_len);
        out.resize(out.len().next_multiple_of(4), 0);
    } else {
        for &p in positions {
            out.extend_from_slice(&p.to_le_bytes());
        }
    }
}

/// Length of [`serialize_positions`]'s output, without producing it.
#[cfg(test)]
fn serialized_bitmap_len(positions: &[u32]) -> u64 {
    positions
        .chunk_by(|a, b| a >> 16 == b >> 16)
        .map(|c| {
            8 + if c.len() <= 4096 {
                2 * c.len() as u64
            } else {
                8192
            }
        })
        .sum::<u64>()
        + 8
}

/// Serializes strictly ascending positions as a roaring bitmap in the portable format without run
/// containers (<https://github.com/RoaringBitmap/RoaringFormatSpec>): cookie 12346, container
/// count, (key, cardinality - 1) per container, a u32 offset per container, then each container:
/// sorted u16 values when it holds at most 4096, else a 2^16-bit bitmap. This is byte for byte
/// what `RoaringBitmap::serialize_into` writes for the same set (tested), without building the
/// bitmap: most q-grams have a handful of positions, and one allocation per q-gram dominated the
/// build.
#[cfg(test)]
pub(super) fn serialize_positions(positions: &[u32], out: &mut Vec<u8>) {
    const SERIAL_COOKIE_NO_RUNCONTAINER: u32 = 12346;
    const ARRAY_LIMIT: usize = 4096;
    let containers = positions.chunk_by(|a, b| a >> 16 == b >> 16);
    let count = containers.clone().count();
    out.extend_from_slice(&SERIAL_COOKIE_NO_RUNCONTAINER.to_le_bytes());
    out.extend_from_slice(&(count as u32).to_le_bytes());
    for c in containers.clone() {
        out.extend_from_slice(&((c[0] >> 16) as u16).to_le_bytes());
        out.extend_from_slice(&((c.len() - 1) as u16).to_le_bytes());
    }
    let mut offset = 8 + 8 * count;
    for c in containers.clone() {
        out.extend_from_slice(&(offset as u32).to_le_bytes());
        offset += if c.len() <= ARRAY_LIMIT {
            2 * c.len()
        } else {
            8192
        };
    }
    for c in containers {
        if c.len() <= ARRAY_LIMIT {
            for &p in c {
                out.extend_from_slice(&(p as u16).to_le_bytes());
            }
        } else {
            let mut bits = [0u64; 1024];
            for &p in c {
                let low = (p & 0xFFFF) as usize;
                bits[low / 64] |= 1 << (low % 64);
            }
            for word in bits {
                out.extend_from_slice(&word.to_le_bytes());
            }
        }
    }
}

/// Postings refs buffered before they are written (1 MiB).
const REFS_BATCH: usize = 1 << 17;

fn too_many_tokens(have: usize, adding: usize) -> String {
    format!("a segment holds at most 2^32 - 1 tokens; it has {have} and the document adds {adding}")
}

/// Sorted (key, position) pairs in one of two representations.
enum QGrams {
    /// `key << 32 | position`, when every key fits in 32 bits.
    Packed(Vec<u64>),
    Pairs(Vec<(u64, u32)>),
}

impl QGrams {
    fn key_pos(&self, i: usize) -> (u64, u32) {
        match self {
            QGrams::Packed(v) => (v[i] >> 32, v[i] as u32),
            QGrams::Pairs(v) => v[i],
        }
    }

    fn len(&self) -> usize {
        match self {
            QGrams::Packed(v) => v.len(),
            QGrams::Pairs(v) => v.len(),
        }
    }

    /// Each distinct key with its positions (ascending).
    fn runs(&self) -> impl Iterator<Item = (u64, impl Iterator<Item = u32> + '_)> + '_ {
        let mut i = 0;
        std::iter::from_fn(move || {
            if i >= self.len() {
                return None;
            }
            let (key, _) = self.key_pos(i);
            let start = i;
            while i < self.len() && self.key_pos(i).0 == key {
                i += 1;
            }
            Some((key, (start..i).map(move |j| self.key_pos(j).1)))
        })
    }
}

fn count_runs(grams: &QGrams) -> u64 {
    (0..grams.len())
        .filter(|&i| i == 0 || grams.key_pos(i).0 != grams.key_pos(i - 1).0)
        .count() as u64
}
