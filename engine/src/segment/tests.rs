//! Segment tests: round trips against a brute-force postings oracle, every truncation and byte
//! flip of a small file, crafted files with valid checksums but bad contents, version handling,
//! and the frozen v1 and v2 fixtures. Files are written in v2 (what builds write) and, for the
//! tests of the v1 reader, in v1 (`SegmentWriter::write_v1`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytemuck::Pod;
use pairalign_sections::{
    footer_len, FooterTail, SectionEntry, FOOTER_TAIL_LEN, SECTION_ENTRY_LEN,
};
use proptest::prelude::*;

use super::format::{
    DocEntry, Header, PostingsRef, Section, TimeBlock, HEADER_LEN, ROARING_MARKER, SECTION_LAYOUT,
    V1_SECTION_COUNT,
};
use super::*;
use crate::Error;

/// An owned document, for building `DocInput`s.
#[derive(Clone, Debug)]
struct Doc {
    name: String,
    doc_id: u32,
    tokens: Vec<Symbol>,
    times_ms: Vec<u32>,
    duration_ms: u32,
}

impl Doc {
    fn new(name: &str, doc_id: u32, tokens: &[Symbol]) -> Doc {
        Doc {
            name: name.to_owned(),
            doc_id,
            tokens: tokens.to_vec(),
            // Non-decreasing, with repeats.
            times_ms: (0..tokens.len() as u32).map(|i| i / 2 * 80 + 5).collect(),
            duration_ms: tokens.len() as u32 * 40 + 17,
        }
    }

    /// Times on a tokenizer's grid: 12.7 tokens a second from `first_ms`, so steps of 78 or 79 ms.
    fn grid(name: &str, doc_id: u32, tokens: &[Symbol], first_ms: u32) -> Doc {
        let mut doc = Doc::new(name, doc_id, tokens);
        doc.times_ms = (0..tokens.len() as u64)
            .map(|i| first_ms + (i * 10_000 / 127) as u32)
            .collect();
        doc.duration_ms = doc.times_ms.last().map_or(first_ms, |t| t + 79);
        doc
    }

    fn input(&self) -> DocInput<'_> {
        DocInput {
            name: &self.name,
            doc_id: self.doc_id,
            tokens: &self.tokens,
            times_ms: &self.times_ms,
            duration_ms: self.duration_ms,
        }
    }
}

/// A few documents: unicode names, an empty one, one shorter than q, and q-grams in every list
/// encoding (see `sample_uses_every_list_encoding`): once (inline), 2 and 3 times (arrays), and
/// 15 times (roaring, with 2 bytes of padding).
fn sample_docs() -> Vec<Doc> {
    vec![
        Doc::new("b/second.wav", 7, &[1, 2, 3, 1, 2, 3, 1, 2]),
        Doc::new("a/première.flac", 3, &[4; 17]),
        Doc::new("empty", 100, &[]),
        Doc::new("短い", 9, &[5, 6]),
        Doc::new("z", 4_000_000_000, &[9, 8, 7, 1, 2, 3, 0]),
    ]
}

/// The v2 sample: [`sample_docs`] and a document of 140 tokens on the time grid whose q-gram
/// (7, 7, 7) fills a packed block of 128 gaps and a tail; its times span two blocks, the first of
/// which holds four document starts.
fn sample_v2_docs() -> Vec<Doc> {
    let mut docs = sample_docs();
    docs.push(Doc::grid("long.wav", 11, &[7; 140], 1_000));
    docs
}

const VOCAB: u32 = 10;
const Q: u32 = 3;

/// The layouts the tests write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

const VERSIONS: [Version; 2] = [Version::V1, Version::V2];

fn write(dir: &Path, file: &str, docs: &[Doc], vocab_size: u32, q: u32) -> (PathBuf, SegmentInfo) {
    write_as(Version::V2, dir, file, docs, vocab_size, q)
}

fn write_as(
    version: Version,
    dir: &Path,
    file: &str,
    docs: &[Doc],
    vocab_size: u32,
    q: u32,
) -> (PathBuf, SegmentInfo) {
    let mut writer = SegmentWriter::new(vocab_size, q).expect("valid parameters");
    for doc in docs {
        writer.add(&doc.input()).expect("valid document");
    }
    let path = dir.join(file);
    let info = match version {
        Version::V1 => writer.write_v1(&path),
        Version::V2 => writer.write(&path),
    }
    .expect("write segment");
    (path, info)
}

/// The sample of `version`: [`sample_docs`] in v1, [`sample_v2_docs`] in v2.
fn sample_docs_of(version: Version) -> Vec<Doc> {
    match version {
        Version::V1 => sample_docs(),
        Version::V2 => sample_v2_docs(),
    }
}

fn sample_bytes_of(version: Version) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, _) = write_as(
        version,
        dir.path(),
        "s.seg",
        &sample_docs_of(version),
        VOCAB,
        Q,
    );
    std::fs::read(path).expect("read back")
}

fn sample_bytes() -> Vec<u8> {
    sample_bytes_of(Version::V2)
}

fn sample_bytes_v1() -> Vec<u8> {
    sample_bytes_of(Version::V1)
}

/// For every q-gram inside a document, the positions where it starts.
fn oracle(docs: &[Doc], vocab_size: u32, q: u32) -> BTreeMap<u64, Vec<u32>> {
    let mut map: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    let mut start = 0u32;
    for doc in docs {
        for i in 0..doc.tokens.len() {
            if i + q as usize <= doc.tokens.len() {
                let key = qgram_key(&doc.tokens[i..i + q as usize], vocab_size);
                map.entry(key).or_default().push(start + i as u32);
            }
        }
        start += doc.tokens.len() as u32;
    }
    map
}

/// Every accessor of `seg` agrees with `docs`.
fn assert_matches(seg: &Segment, docs: &[Doc], vocab_size: u32, q: u32) {
    assert_eq!(seg.vocab_size(), vocab_size);
    assert_eq!(seg.q(), q);
    assert_eq!(seg.doc_count(), docs.len());
    let all_tokens: Vec<Symbol> = docs.iter().flat_map(|d| d.tokens.clone()).collect();
    assert_eq!(seg.token_count(), all_tokens.len() as u64);
    assert_eq!(seg.tokens(), &all_tokens[..]);

    let mut start = 0u32;
    for (ord, (doc, got)) in docs.iter().zip(seg.docs()).enumerate() {
        assert_eq!(got.ord, ord);
        assert_eq!(got.name, doc.name);
        assert_eq!(got.doc_id, doc.doc_id);
        assert_eq!(got.token_start, start);
        assert_eq!(got.tokens, &doc.tokens[..]);
        assert_matches_times(&got.times_ms, &doc.times_ms);
        assert_eq!(got.duration_ms, doc.duration_ms);
        assert_eq!(seg.find(&doc.name), Some(ord));
        for i in 0..doc.tokens.len() as u32 {
            assert_eq!(
                seg.doc_at_position(start + i),
                Some(ord),
                "position {}",
                start + i
            );
        }
        start += doc.tokens.len() as u32;
    }
    assert_eq!(seg.docs().count(), docs.len());
    assert_eq!(seg.doc_at_position(start), None);
    assert_eq!(seg.doc_at_position(u32::MAX), None);
    for absent in ["", "absent", "a", "b/second.wa", "b/second.wav\0", "zz"] {
        if !docs.iter().any(|d| d.name == absent) {
            assert_eq!(seg.find(absent), None, "{absent:?}");
        }
    }

    let expected = oracle(docs, vocab_size, q);
    assert_eq!(
        seg.dict_keys(),
        expected.keys().copied().collect::<Vec<_>>()
    );
    for (&key, positions) in &expected {
        let bitmap = seg
            .postings(key)
            .expect("valid bitmap")
            .expect("q-gram present");
        assert_eq!(bitmap.iter().collect::<Vec<_>>(), *positions, "key {key}");
        assert_eq!(seg.posting_len(key), Some(positions.len() as u32));
        let mut visited = Vec::new();
        let found = seg
            .for_each_position(key, |p| visited.push(p))
            .expect("valid list");
        assert!(found);
        assert_eq!(visited, *positions, "key {key}");
    }
    for key in [0u64, 1, 999, 1 << 32, u64::MAX] {
        if !expected.contains_key(&key) {
            assert!(seg.postings(key).expect("absent is not an error").is_none());
            assert_eq!(seg.posting_len(key), None);
            let found = seg
                .for_each_position(key, |p| panic!("absent q-gram has position {p}"))
                .expect("absent is not an error");
            assert!(!found);
        }
    }
}

/// Every way of reading a document's times agrees with them.
fn assert_matches_times(got: &Times<'_>, times: &[u32]) {
    assert_eq!(got.len(), times.len());
    assert_eq!(got.is_empty(), times.is_empty());
    assert_eq!(got.to_vec(), times);
    for (i, &t) in times.iter().enumerate() {
        assert_eq!(got.get(i), Some(t), "time {i}");
    }
    assert_eq!(got.get(times.len()), None);
    assert_eq!(got.get(usize::MAX), None);
    let n = times.len();
    for range in [0..n, 0..0, n..n, n / 3..n - n / 4, 1.min(n)..n] {
        assert_eq!(
            got.get_range(range.clone()).as_deref(),
            times.get(range.clone()),
            "{range:?}"
        );
    }
    assert_eq!(got.get_range(0..n + 1), None);
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = n.min(1)..0;
    assert_eq!(
        got.get_range(backwards.clone()).as_deref(),
        times.get(backwards)
    );
}

#[test]
fn segment_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Segment>();
    assert_send_sync::<SegmentWriter>();
}

#[test]
fn qgram_key_is_the_base_vocab_number() {
    assert_eq!(qgram_key(&[1, 2, 3], 10), 123);
    assert_eq!(qgram_key(&[], 10), 0);
    assert_eq!(qgram_key(&[511, 0, 1], 512), 511 * 512 * 512 + 1);
    assert_eq!(qgram_key(&[u16::MAX; 4], 1 << 16), u64::MAX);
}

#[test]
fn round_trip_matches_oracle() {
    let dir = tempfile::tempdir().expect("tempdir");
    for version in VERSIONS {
        let docs = sample_docs_of(version);
        let tokens: u64 = docs.iter().map(|d| d.tokens.len() as u64).sum();
        let file = format!("{version:?}.seg");
        let (path, info) = write_as(version, dir.path(), &file, &docs, VOCAB, Q);
        assert_eq!(info.doc_count, docs.len() as u32);
        assert_eq!(info.token_count, tokens);
        assert_eq!(info.bytes, std::fs::metadata(&path).expect("stat").len());
        let seg = Segment::open(&path).expect("open");
        assert_eq!(seg.path(), path);
        assert_eq!(seg.byte_len(), info.bytes);
        assert_matches(&seg, &docs, VOCAB, Q);
        let sections = seg.section_bytes();
        assert_eq!(sections.len(), 8);
        assert_eq!(sections[0], ("tokens", tokens * 2), "u16 per token");
        let times = match version {
            Version::V1 => {
                assert_eq!(seg.format_version(), 1);
                tokens * 4
            }
            // Two blocks: the first holds the small documents' steps of 80 ms and the long
            // document's of 78 or 79 ms (2 bits from 78) and their 16 steps of 0 ms (exceptions,
            // 2 bytes each); the second only grid steps (1 bit).
            Version::V2 => {
                assert_eq!(seg.format_version(), 2);
                2 * 16 + (16 * 2 + 16 * 2) + 16
            }
        };
        assert_eq!(sections[1], ("times", times), "{version:?}");
        let total: u64 = sections.iter().map(|&(_, b)| b).sum();
        assert!(total < seg.byte_len(), "header and footer come on top");
    }
}

#[test]
fn round_trip_with_full_u16_vocabulary_and_wide_keys() {
    // vocab 65536, q = 4: keys use all 64 bits (pairs path of the writer, not the packed one).
    let dir = tempfile::tempdir().expect("tempdir");
    let docs = vec![
        Doc::new(
            "x",
            1,
            &[u16::MAX, u16::MAX, u16::MAX, u16::MAX, 0, u16::MAX],
        ),
        // 21 positions of one key: a roaring list.
        Doc::new("y", 2, &[0; 24]),
    ];
    let (path, _) = write(dir.path(), "w.seg", &docs, 1 << 16, 4);
    let seg = Segment::open(&path).expect("open");
    assert_matches(&seg, &docs, 1 << 16, 4);
    assert_eq!(seg.posting_len(u64::MAX), Some(1));
}

#[test]
fn round_trip_q1_and_empty_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let docs = sample_docs();
    let (path, _) = write(dir.path(), "q1.seg", &docs, VOCAB, 1);
    assert_matches(&Segment::open(&path).expect("open"), &docs, VOCAB, 1);

    let (path, info) = write(dir.path(), "empty.seg", &[], VOCAB, Q);
    assert_eq!(info.doc_count, 0);
    let seg = Segment::open(&path).expect("open");
    assert_matches(&seg, &[], VOCAB, Q);
}

#[test]
fn writer_rejects_bad_parameters() {
    for (vocab, q) in [(0, 3), (65537, 1), (10, 0), (10, 9), (65536, 5), (257, 8)] {
        assert!(
            matches!(SegmentWriter::new(vocab, q), Err(Error::InvalidInput(_))),
            "vocab {vocab} q {q}"
        );
    }
    assert!(SegmentWriter::new(256, 8).is_ok());
    assert!(SegmentWriter::new(1 << 16, 4).is_ok());
}

#[test]
fn writer_rejects_bad_documents_without_changing_state() {
    let mut w = SegmentWriter::new(VOCAB, Q).expect("valid");
    w.add(&Doc::new("taken", 1, &[1, 2, 3]).input())
        .expect("valid");
    let long_name = "n".repeat(1025);
    let mut decreasing = Doc::new("dec", 2, &[1, 2, 3]);
    decreasing.times_ms = vec![10, 30, 20];
    let mut short_times = Doc::new("short", 2, &[1, 2, 3]);
    short_times.times_ms.pop();
    let bad = [
        (Doc::new("", 2, &[1]), "empty name"),
        (Doc::new(&long_name, 2, &[1]), "long name"),
        (decreasing, "decreasing times"),
        (short_times, "times length"),
    ];
    for (doc, what) in &bad {
        assert!(
            matches!(w.add(&doc.input()), Err(Error::InvalidInput(_))),
            "{what}"
        );
    }
    assert!(matches!(
        w.add(&Doc::new("oov", 2, &[1, 10, 2]).input()),
        Err(Error::SymbolOutOfVocabulary {
            symbol: 10,
            position: 1,
            vocab_size: VOCAB
        })
    ));
    assert!(
        matches!(w.add(&Doc::new("taken", 2, &[]).input()), Err(Error::DuplicateId(n)) if n == "taken")
    );
    assert_eq!((w.doc_count(), w.token_count()), (1, 3));
    assert!(w.add(&Doc::new(&"n".repeat(1024), 2, &[9]).input()).is_ok());
    assert_eq!((w.doc_count(), w.token_count()), (2, 4));
}

#[test]
fn write_refuses_an_existing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("exists.seg");
    std::fs::write(&path, b"keep me").expect("write");
    let w = SegmentWriter::new(VOCAB, Q).expect("valid");
    assert!(matches!(w.write(&path), Err(Error::Io { .. })));
    assert_eq!(std::fs::read(&path).expect("read"), b"keep me");
}

// ---- damaged files ----

/// Writes `bytes` to `path` and opens it.
fn open_bytes(path: &Path, bytes: &[u8]) -> crate::Result<Segment> {
    // Replacing the file is ~20x faster than truncating it in place (ext4 flushes data of a
    // file truncated to zero on close), which matters for the every-byte loops.
    let _ = std::fs::remove_file(path);
    std::fs::write(path, bytes).expect("write test file");
    Segment::open(path)
}

/// The file the error names, and the section for corruption errors.
fn error_location(e: &Error) -> (&Path, Option<&'static str>) {
    match e {
        Error::Corrupt { path, section, .. } => (path, Some(section)),
        Error::UnsupportedVersion { path, .. } | Error::Io { path, .. } => (path, None),
        other => panic!("unexpected error kind: {other}"),
    }
}

fn read_record<T: Pod>(bytes: &[u8], at: usize) -> T {
    bytemuck::pod_read_unaligned(&bytes[at..at + std::mem::size_of::<T>()])
}

fn edit_record<T: Pod>(bytes: &mut [u8], at: usize, edit: impl FnOnce(&mut T)) {
    let mut record: T = read_record(bytes, at);
    edit(&mut record);
    bytes[at..at + std::mem::size_of::<T>()].copy_from_slice(bytemuck::bytes_of(&record));
}

fn table_entry(bytes: &[u8], section: Section) -> SectionEntry {
    read_record(
        bytes,
        (HEADER_LEN + SECTION_ENTRY_LEN * section as u64) as usize,
    )
}

/// Recomputes every checksum in the footer from the (possibly tampered) header, section table
/// and sections, so that a test reaches the semantic checks behind them.
fn reseal(bytes: &mut [u8]) {
    let header: Header = read_record(bytes, 0);
    let n = if (8..=64).contains(&header.section_count) {
        header.section_count
    } else {
        V1_SECTION_COUNT as u32
    };
    let len = bytes.len() as u64;
    let footer_offset = len - footer_len(n);
    for i in 0..u64::from(n) {
        let e: SectionEntry = read_record(bytes, (HEADER_LEN + SECTION_ENTRY_LEN * i) as usize);
        let end = e.offset.saturating_add(e.len);
        if end <= len {
            let crc = crc32fast::hash(&bytes[e.offset as usize..end as usize]);
            let at = (footer_offset + 4 * i) as usize;
            bytes[at..at + 4].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let header_crc = crc32fast::hash(&bytes[..SECTION_LAYOUT.header_region_len(n) as usize]);
    edit_record(
        bytes,
        (len - FOOTER_TAIL_LEN) as usize,
        |t: &mut FooterTail| t.header_crc = header_crc,
    );
}

#[test]
fn truncation_at_every_length_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.seg");
    for version in VERSIONS {
        let bytes = sample_bytes_of(version);
        for len in 0..bytes.len() {
            let err = open_bytes(&path, &bytes[..len]).expect_err("a truncated file must not open");
            assert_eq!(
                error_location(&err).0,
                path,
                "{version:?} length {len}: {err}"
            );
        }
    }
}

#[test]
fn flipping_any_byte_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f.seg");
    for version in VERSIONS {
        let bytes = sample_bytes_of(version);
        for mask in [0xFF, 0x01] {
            for at in 0..bytes.len() {
                let mut damaged = bytes.clone();
                damaged[at] ^= mask;
                let err = open_bytes(&path, &damaged).expect_err("a damaged file must not open");
                let (named, section) = error_location(&err);
                assert_eq!(named, path);
                // Only the version fields may yield UnsupportedVersion (a flipped version is
                // indistinguishable from a file written by another version).
                assert!(
                    section.is_some() || (8..16).contains(&at),
                    "{version:?} offset {at} mask {mask:#x}: {err}"
                );
            }
        }
    }
}

/// Opens a tampered and resealed copy of the sample segment of `version` and returns the
/// error's section.
fn tampered_of(version: Version, edit: impl FnOnce(&mut Vec<u8>)) -> &'static str {
    let mut bytes = sample_bytes_of(version);
    edit(&mut bytes);
    reseal(&mut bytes);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.seg");
    match open_bytes(&path, &bytes) {
        Ok(_) => panic!("tampered file opened"),
        Err(Error::Corrupt {
            path: p, section, ..
        }) => {
            assert_eq!(p, path);
            section
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
    }
}

#[test]
fn resealing_an_untampered_file_keeps_it_valid() {
    for version in VERSIONS {
        let mut bytes = sample_bytes_of(version);
        let original = bytes.clone();
        reseal(&mut bytes);
        assert_eq!(bytes, original);
    }
}

#[test]
fn crafted_header_and_table_are_rejected() {
    for version in VERSIONS {
        crafted_header_and_table_are_rejected_in(version);
    }
}

fn crafted_header_and_table_are_rejected_in(version: Version) {
    let header = |edit: fn(&mut Header)| tampered_of(version, |b| edit_record(b, 0, edit));
    assert_eq!(header(|h| h.doc_count = u32::MAX), "doc table");
    assert_eq!(header(|h| h.token_count = u64::MAX), "header");
    assert_eq!(header(|h| h.token_count += 1), "tokens");
    assert_eq!(header(|h| h.qgram_count = u64::MAX / 2), "header");
    assert_eq!(header(|h| h.qgram_count -= 1), "qgram keys");
    assert_eq!(header(|h| h.vocab_size = 0), "header");
    assert_eq!(header(|h| h.q = 9), "header");
    assert_eq!(header(|h| h.vocab_size = 5), "tokens");
    assert_eq!(header(|h| h.reserved[3] = 1), "header");
    assert_eq!(header(|h| h.section_count = 1_000_000), "header");

    let table = |section: Section, edit: fn(&mut SectionEntry)| {
        tampered_of(version, |b| {
            edit_record(
                b,
                (HEADER_LEN + SECTION_ENTRY_LEN * section as u64) as usize,
                edit,
            )
        })
    };
    assert_eq!(
        table(Section::Postings, |e| e.offset = u64::MAX - 3),
        "section table"
    );
    assert_eq!(table(Section::Names, |e| e.offset += 8), "section table");
    assert_eq!(table(Section::Times, |e| e.offset -= 4), "section table");
    assert_eq!(
        table(Section::Tokens, |e| e.len = u64::MAX),
        "section table"
    );
    assert_eq!(
        table(Section::Postings, |e| e.len += 1_000_000),
        "section table"
    );
}

#[test]
fn crafted_sections_are_rejected() {
    // What the two layouts share.
    for version in VERSIONS {
        crafted_sections_are_rejected_in(version);
    }
    // v1 times are plain u32s, and the doc table's last field is reserved.
    assert_eq!(
        section_record(Section::Times, 2, |t: &mut u32| *t = 0),
        "times"
    );
    assert_eq!(
        section_record(Section::Docs, 2, |d: &mut DocEntry| d.first_time_ms = 1),
        "doc table"
    );
}

fn crafted_sections_are_rejected_in(version: Version) {
    assert_eq!(
        section_record_of(version, Section::Tokens, 3, |s: &mut u16| *s = VOCAB as u16),
        "tokens"
    );
    assert_eq!(
        section_record_of(version, Section::Docs, 1, |d: &mut DocEntry| d
            .token_start +=
            1),
        "doc table"
    );
    assert_eq!(
        section_record_of(version, Section::Docs, 1, |d: &mut DocEntry| d.token_len =
            u32::MAX),
        "doc table"
    );
    assert_eq!(
        section_record_of(version, Section::Docs, 4, |d: &mut DocEntry| d.token_len -=
            1),
        "doc table"
    );
    assert_eq!(
        section_record_of(version, Section::Docs, 0, |d: &mut DocEntry| d.name_len = 0),
        "doc table"
    );
    assert_eq!(
        section_record_of(version, Section::Docs, 4, |d: &mut DocEntry| d.name_len =
            1024),
        "doc table"
    );
    assert_eq!(
        section_record_of(version, Section::Docs, 2, |d: &mut DocEntry| d
            .name_offset =
            u64::MAX),
        "doc table"
    );
    // Byte 27 is the last byte of "a/première.flac"; 0xFF is never valid UTF-8.
    assert_eq!(
        section_record_of(version, Section::Names, 27, |b: &mut u8| *b = 0xFF),
        "names"
    );
    assert_eq!(
        section_record_of(version, Section::NameIndex, 0, |o: &mut u32| *o = 5),
        "name index"
    );
    assert_eq!(
        section_record_of(version, Section::NameIndex, 0, |o: &mut u32| *o = 0),
        "name index"
    );
}

/// Overwrites record `index` (of type `T`) of `section` in a copy of the v1 sample, reseals it
/// and returns the section of the open error.
fn section_record<T: Pod>(
    section: Section,
    index: usize,
    edit: impl FnOnce(&mut T),
) -> &'static str {
    section_record_of(Version::V1, section, index, edit)
}

/// [`section_record`] in the sample of `version`.
fn section_record_of<T: Pod>(
    version: Version,
    section: Section,
    index: usize,
    edit: impl FnOnce(&mut T),
) -> &'static str {
    tampered_of(version, |b| {
        let e = table_entry(b, section);
        edit_record(
            b,
            e.offset as usize + index * std::mem::size_of::<T>(),
            edit,
        );
    })
}

/// The v1 sample's q-gram keys (VOCAB 10, Q 3) and how `sample_docs` lays out their lists.
const SAMPLE_KEYS: [u32; 8] = [123, 230, 231, 312, 444, 712, 871, 987];
/// Index of the roaring list (key 444) and the word where it starts.
const ROARING_ENTRY: usize = 4;
const ROARING_WORD: usize = 7;

#[test]
fn sample_uses_every_list_encoding() {
    let bytes = sample_bytes_v1();
    let keys = table_entry(&bytes, Section::QGramKeys);
    let refs = table_entry(&bytes, Section::QGramRefs);
    let postings = table_entry(&bytes, Section::Postings);
    let stored_keys: Vec<u32> = (0..keys.len as usize / 4)
        .map(|i| read_record(&bytes, keys.offset as usize + 4 * i))
        .collect();
    assert_eq!(stored_keys, SAMPLE_KEYS, "narrow (u32) keys");
    let refs: Vec<PostingsRef> = (0..refs.len as usize / 8)
        .map(|i| read_record(&bytes, refs.offset as usize + 8 * i))
        .collect();
    let word = |i: usize| read_record::<u32>(&bytes, postings.offset as usize + 4 * i);
    let pair = |r: &PostingsRef| (r.cardinality, r.value);
    let refs: Vec<(u32, u32)> = refs.iter().map(pair).collect();
    // 123: array at word 0; 230: inline; 231, 312: arrays; 444: roaring; the rest inline.
    assert_eq!(
        refs,
        [
            (3, 0),
            (1, 31),
            (2, 3),
            (2, 5),
            (15, 7),
            (1, 29),
            (1, 28),
            (1, 27)
        ]
    );
    assert_eq!((0..3).map(word).collect::<Vec<_>>(), [0, 3, 30]);
    assert_eq!(word(ROARING_WORD), ROARING_MARKER);
    // 8 + 8 + 2 * 15 bytes of bitmap, padded to 12 words.
    assert_eq!(word(ROARING_WORD + 1), 46);
    assert_eq!(postings.len, 4 * (ROARING_WORD as u64 + 2 + 12));
}

#[test]
fn crafted_qgram_sections_are_rejected() {
    let key = |i: usize, k: u32| section_record(Section::QGramKeys, i, move |x: &mut u32| *x = k);
    assert_eq!(key(0, 5000), "qgram keys");
    assert_eq!(key(1, 0), "qgram keys");
    assert_eq!(key(1, 123), "qgram keys");
    assert_eq!(key(7, 1000), "qgram keys"); // vocab_size^q
    assert_eq!(key(7, u32::MAX), "qgram keys");

    let edit_ref =
        |i: usize, edit: fn(&mut PostingsRef)| section_record(Section::QGramRefs, i, edit);
    // Cardinalities.
    assert_eq!(edit_ref(0, |r| r.cardinality = 0), "qgram refs");
    assert_eq!(edit_ref(0, |r| r.cardinality = u32::MAX), "qgram refs");
    assert_eq!(edit_ref(1, |r| r.cardinality = 0), "qgram refs");
    // An array one shorter: the next list no longer starts where the ref says.
    assert_eq!(edit_ref(0, |r| r.cardinality -= 1), "qgram refs");
    // An array one longer takes the next list's first position, which is not ascending.
    assert_eq!(edit_ref(0, |r| r.cardinality += 1), "postings");
    // A roaring list's cardinality is not read at open, but the sum no longer matches.
    assert_eq!(
        edit_ref(ROARING_ENTRY, |r| r.cardinality += 1),
        "qgram refs"
    );
    assert_eq!(
        edit_ref(ROARING_ENTRY, |r| r.cardinality -= 1),
        "qgram refs"
    );
    // An inline position turned into a list reference.
    assert_eq!(edit_ref(1, |r| r.cardinality = 2), "qgram refs");
    // Inline positions out of range.
    assert_eq!(edit_ref(1, |r| r.value = 34), "qgram refs");
    assert_eq!(edit_ref(7, |r| r.value = u32::MAX), "qgram refs");
    // List offsets.
    assert_eq!(edit_ref(2, |r| r.value = u32::MAX), "qgram refs");
    assert_eq!(edit_ref(2, |r| r.value += 1), "qgram refs");
    assert_eq!(edit_ref(0, |r| r.value = 1), "qgram refs");
    assert_eq!(edit_ref(ROARING_ENTRY, |r| r.value = 5), "qgram refs");

    let word = |i: usize, w: u32| section_record(Section::Postings, i, move |x: &mut u32| *x = w);
    // Array positions unsorted, repeated, out of range.
    assert_eq!(word(0, 4), "postings");
    assert_eq!(word(1, 0), "postings");
    assert_eq!(word(2, 3), "postings");
    assert_eq!(word(2, 34), "postings");
    assert_eq!(word(2, u32::MAX - 1), "postings");
    assert_eq!(word(4, 1), "postings"); // [1, 1]
                                        // An array whose first word is the marker is read as a (too short) roaring list.
    assert_eq!(word(3, ROARING_MARKER), "postings");
    // Roaring prefix: marker removed (an unsorted array), lengths too short or past the end.
    assert_eq!(word(ROARING_WORD, 0), "postings");
    assert_eq!(word(ROARING_WORD + 1, 0), "postings");
    assert_eq!(word(ROARING_WORD + 1, 7), "postings");
    assert_eq!(word(ROARING_WORD + 1, 49), "postings");
    assert_eq!(word(ROARING_WORD + 1, u32::MAX), "postings");
    // A shorter length leaves words that no list uses.
    assert_eq!(word(ROARING_WORD + 1, 42), "postings");
    // The 2 bytes after the 46-byte bitmap are padding and must be zero.
    let padding_at = 4 * (ROARING_WORD + 2) + 46;
    for at in [padding_at, padding_at + 1] {
        assert_eq!(
            section_record(Section::Postings, at, |b: &mut u8| *b = 1),
            "postings"
        );
    }
}

/// The v2 sample's time blocks: the file offset of block `b`'s record and of its data.
fn time_block_at(bytes: &[u8], b: usize) -> (usize, usize) {
    let times = table_entry(bytes, Section::Times).offset as usize;
    let at = times + 16 * b;
    let block: TimeBlock = read_record(bytes, at);
    // Two blocks in the v2 sample.
    (at, times + 2 * 16 + 4 * block.data_start as usize)
}

/// Unpacks block `b` of the v2 sample's times, lets `edit` change its 128 values, and packs them
/// back with the same width.
fn edit_time_values(bytes: &mut [u8], b: usize, edit: impl FnOnce(&mut [u32; 128])) {
    use bitpacking::{BitPacker, BitPacker4x};
    let (at, packed) = time_block_at(bytes, b);
    let block: TimeBlock = read_record(bytes, at);
    let len = 16 * block.bits as usize;
    let packer = BitPacker4x::new();
    let mut values = [0u32; 128];
    packer.decompress(&bytes[packed..packed + len], &mut values, block.bits);
    edit(&mut values);
    packer.compress(&values, &mut bytes[packed..packed + len], block.bits);
}

#[test]
fn crafted_v2_times_are_rejected() {
    let block = |b: usize, edit: fn(&mut TimeBlock)| {
        tampered_of(Version::V2, |bytes| {
            let (at, _) = time_block_at(bytes, b);
            edit_record(bytes, at, edit);
        })
    };
    // Widths, the packed area's bookkeeping, and the time a block starts at.
    assert_eq!(block(0, |t| t.bits = 33), "times");
    assert_eq!(block(0, |t| t.bits = 6), "times");
    assert_eq!(block(1, |t| t.data_start = 0), "times");
    assert_eq!(block(1, |t| t.data_start = u32::MAX), "times");
    assert_eq!(block(0, |t| t.exceptions = 1), "times");
    assert_eq!(block(1, |t| t.reserved[0] = 1), "times");
    // Block 0 starts the first document, whose first time is 5 ms.
    assert_eq!(block(0, |t| t.first_ms = 6), "times");
    // Block 1 starts inside the long document: below the time before it, or overflowing after.
    assert_eq!(block(1, |t| t.first_ms = 0), "times");
    assert_eq!(block(1, |t| t.first_ms = u32::MAX), "times");
    assert_eq!(block(0, |t| t.base_delta = u32::MAX), "times");

    // Block 0's exceptions (its 16 steps of 0 ms, at slots 1, 3, .., 32) follow its 2-bit packed
    // values: a slot byte and a varint each. A slot that holds no delta (the block's first, the
    // long document's first), one that also has a packed value, slots out of order or past the
    // block, a varint cut short.
    let exception = |edit: fn(&mut [u8])| {
        tampered_of(Version::V2, |bytes| {
            let (at, data) = time_block_at(bytes, 0);
            let block: TimeBlock = read_record(bytes, at);
            assert_eq!((block.bits, block.exceptions), (2, 16));
            edit(&mut bytes[data + 32..data + 32 + 32]);
        })
    };
    assert_eq!(exception(|e| e[0] = 0), "times");
    assert_eq!(exception(|e| e[30] = 34), "times");
    assert_eq!(exception(|e| e[30] = 33), "times");
    assert_eq!(exception(|e| e[2] = e[0]), "times");
    assert_eq!(exception(|e| e[30] = 128), "times");
    assert_eq!(exception(|e| e[31] = 0x80), "times");

    let values = |b: usize, edit: fn(&mut [u32; 128])| {
        tampered_of(Version::V2, |bytes| edit_time_values(bytes, b, edit))
    };
    // Slots that hold no delta: a block's first position, a document's first (position 8,
    // "a/première.flac"; position 34, "long.wav"), past the last token (position 174).
    assert_eq!(values(0, |v| v[0] = 1), "times");
    assert_eq!(values(0, |v| v[8] = 1), "times");
    assert_eq!(values(0, |v| v[34] = 1), "times");
    assert_eq!(values(1, |v| v[46] = 1), "times");
    assert_eq!(values(1, |v| v[127] = 1), "times");

    let doc = |ord: usize, edit: fn(&mut DocEntry)| {
        section_record_of(Version::V2, Section::Docs, ord, edit)
    };
    // An empty document's first time, and a first time that overflows with the deltas after it.
    assert_eq!(doc(2, |d| d.first_time_ms = 1), "times");
    assert_eq!(doc(5, |d| d.first_time_ms = u32::MAX - 100), "times");
}

/// The file offset where the v2 sample's list of `key` starts, and its cardinality.
fn v2_list_at(bytes: &[u8], key: u32) -> (usize, u32) {
    let keys = table_entry(bytes, Section::QGramKeys);
    let refs = table_entry(bytes, Section::QGramRefs);
    let postings = table_entry(bytes, Section::Postings);
    let i = (0..keys.len as usize / 4)
        .position(|i| read_record::<u32>(bytes, keys.offset as usize + 4 * i) == key)
        .expect("key present");
    let r: PostingsRef = read_record(bytes, refs.offset as usize + 8 * i);
    (
        postings.offset as usize + 8 * r.value as usize,
        r.cardinality,
    )
}

/// The v2 sample's keys with a list: 123 (3 positions), 231 and 312 (2), 444 (15, all gaps in
/// varints) and 777 (138: a packed block of 128 gaps, then 9 varints).
const V2_LIST_KEYS: [u32; 5] = [123, 231, 312, 444, 777];

#[test]
fn v2_sample_uses_every_list_shape() {
    let bytes = sample_bytes();
    let postings = table_entry(&bytes, Section::Postings);
    let mut end = postings.offset as usize;
    for (key, cardinality) in V2_LIST_KEYS.into_iter().zip([3, 2, 2, 15, 138]) {
        let (at, n) = v2_list_at(&bytes, key);
        assert_eq!(n, cardinality, "key {key}");
        assert_eq!(at, end, "lists are contiguous in key order");
        end = at + super::postings::check(&bytes[at..], n, 174).expect("valid list");
    }
    assert_eq!(end as u64, postings.offset + postings.len);
    // 777: first position 34, then the block's width byte: gaps of 1, stored as 0 in 0 bits.
    let (at, _) = v2_list_at(&bytes, 777);
    assert_eq!(&bytes[at..at + 2], [34, 0]);
}

#[test]
fn crafted_v2_postings_are_rejected() {
    let list = |key: u32, edit: fn(&mut [u8])| {
        tampered_of(Version::V2, |bytes| {
            let (at, _) = v2_list_at(bytes, key);
            edit(&mut bytes[at..]);
        })
    };
    // The block's width above 32, or wider than stored (the list then runs into the next).
    assert_eq!(list(777, |l| l[1] = 33), "postings");
    assert_eq!(list(777, |l| l[1] = 1), "postings");
    // A first position at the token count, one that runs past 5 bytes, one above u32.
    assert_eq!(
        list(444, |l| l[..2].copy_from_slice(&[0xAE, 0x01])),
        "postings"
    );
    assert_eq!(list(123, |l| l[..6].fill(0xFF)), "postings");
    assert_eq!(
        list(123, |l| l[..5]
            .copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0x1F])),
        "postings"
    );
    // A gap that wraps around (positions no longer ascend) or runs past the token count.
    assert_eq!(
        list(231, |l| l[1..6]
            .copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0x0F])),
        "postings"
    );
    // (444: first position 8, then 14 gaps of 1, stored as 0: bytes 1 to 14, then 1 byte of
    // padding.)
    assert_eq!(
        list(444, |l| l[14..16].copy_from_slice(&[0xFF, 0x01])),
        "postings"
    );
    // Non-zero padding after a list.
    assert_eq!(list(312, |l| l[7] = 1), "postings");

    let edit_ref = |key: u32, edit: fn(&mut PostingsRef)| {
        tampered_of(Version::V2, |bytes| {
            let keys = table_entry(bytes, Section::QGramKeys);
            let refs = table_entry(bytes, Section::QGramRefs);
            let i = (0..keys.len as usize / 4)
                .position(|i| read_record::<u32>(bytes, keys.offset as usize + 4 * i) == key)
                .expect("key present");
            edit_record(bytes, refs.offset as usize + 8 * i, edit);
        })
    };
    // List starts that are not where the previous list ended, or past the section.
    assert_eq!(edit_ref(231, |r| r.value += 1), "qgram refs");
    assert_eq!(edit_ref(123, |r| r.value = 1), "qgram refs");
    assert_eq!(edit_ref(777, |r| r.value = u32::MAX), "qgram refs");
    // Cardinalities that read more or fewer positions than the list holds.
    assert_ne!(edit_ref(777, |r| r.cardinality += 1), "");
    assert_ne!(edit_ref(777, |r| r.cardinality -= 1), "");
    assert_ne!(edit_ref(444, |r| r.cardinality = 2), "");
}

#[test]
fn unsorted_keys_are_rejected() {
    for version in VERSIONS {
        let section = tampered_of(version, |b| {
            let at = table_entry(b, Section::QGramKeys).offset as usize;
            let first: u32 = read_record(b, at);
            let second: u32 = read_record(b, at + 4);
            edit_record(b, at, |x: &mut u32| *x = second);
            edit_record(b, at + 4, |x: &mut u32| *x = first);
        });
        assert_eq!(section, "qgram keys");
    }
}

#[test]
fn damaged_bitmaps_fail_on_lookup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.seg");
    let pristine = sample_bytes_v1();
    let postings = table_entry(&pristine, Section::Postings);
    let bitmap_at = postings.offset as usize + 4 * (ROARING_WORD + 2);
    let victim = u64::from(SAMPLE_KEYS[ROARING_ENTRY]);
    let expect_corrupt = |seg: &Segment, what: &str| {
        match seg.postings(victim) {
            Err(Error::Corrupt {
                section, path: p, ..
            }) => assert_eq!(
                (section, p.as_path()),
                ("postings", path.as_path()),
                "{what}"
            ),
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        }
        let result = seg.for_each_position(victim, |p| panic!("{what}: visited {p}"));
        assert!(
            matches!(
                result,
                Err(Error::Corrupt {
                    section: "postings",
                    ..
                })
            ),
            "{what}: {result:?}"
        );
    };

    // Garbage over the bitmap: the file opens (bitmaps are checked lazily), the lookup fails,
    // the other q-grams still work.
    let mut bytes = pristine.clone();
    bytes[bitmap_at..bitmap_at + 46].fill(0xAB);
    reseal(&mut bytes);
    let seg = open_bytes(&path, &bytes).expect("bitmaps are checked on lookup");
    expect_corrupt(&seg, "garbage");
    for key in SAMPLE_KEYS.iter().filter(|&&k| u64::from(k) != victim) {
        assert!(seg.postings(u64::from(*key)).expect("intact").is_some());
        assert!(seg
            .for_each_position(u64::from(*key), |_| {})
            .expect("intact"));
    }
    drop(seg);

    // A well-formed-looking bitmap whose first value is moved past the token count (or out of
    // order, which roaring rejects).
    let value_at = bitmap_at + 16; // cookie, count, one description, one offset
    for value in [60_000u16, u16::MAX, 34] {
        let mut bytes = pristine.clone();
        bytes[value_at..value_at + 2].copy_from_slice(&value.to_le_bytes());
        reseal(&mut bytes);
        let seg = open_bytes(&path, &bytes).expect("opens");
        expect_corrupt(&seg, &format!("first value {value}"));
        drop(seg);
    }
    // The last value moved past the token count: still ascending, so only the range check
    // catches it.
    let mut bytes = pristine.clone();
    bytes[value_at + 28..value_at + 30].copy_from_slice(&34u16.to_le_bytes());
    reseal(&mut bytes);
    expect_corrupt(&open_bytes(&path, &bytes).expect("opens"), "last value 34");

    // Container keys out of order: two containers, descriptions swapped.
    let mut two = roaring::RoaringBitmap::new();
    two.insert(1);
    two.insert(70_000);
    let mut serialized = Vec::new();
    two.serialize_into(&mut serialized).expect("serialize");
    serialized.swap(8, 12);
    serialized.swap(9, 13);
    serialized.swap(10, 14);
    serialized.swap(11, 15);
    assert!(super::reader::decode_bitmap(&serialized, 2, 100_000).is_err());
}

#[test]
fn every_tamper_with_valid_checksums_is_an_error_or_a_consistent_segment() {
    for version in VERSIONS {
        every_tamper_is_an_error_or_consistent_in(version);
    }
}

fn every_tamper_is_an_error_or_consistent_in(version: Version) {
    // Crafted input must never panic or read out of bounds, whatever byte is changed.
    let bytes = sample_bytes_of(version);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.seg");
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for at in 0..bytes.len() {
        for _ in 0..2 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut damaged = bytes.clone();
            damaged[at] ^= (state as u8) | 1;
            reseal(&mut damaged);
            if let Ok(seg) = open_bytes(&path, &damaged) {
                for doc in seg.docs() {
                    assert_eq!(seg.find(doc.name), Some(doc.ord));
                    for p in doc.token_start..doc.token_start + doc.tokens.len() as u32 {
                        assert_eq!(seg.doc_at_position(p), Some(doc.ord));
                    }
                    // Times decode, one per token, never decreasing, the same one by one.
                    let times = doc.times_ms.to_vec();
                    assert_eq!(times.len(), doc.tokens.len(), "{version:?} offset {at}");
                    assert!(
                        times.windows(2).all(|w| w[0] <= w[1]),
                        "{version:?} offset {at}"
                    );
                    assert_matches_times(&doc.times_ms, &times);
                }
                for key in seg.dict_keys() {
                    let bitmap = seg.postings(key);
                    let mut visited = Vec::new();
                    let found = seg.for_each_position(key, |p| visited.push(p));
                    // Both views agree, and whatever a valid-looking list holds is in range.
                    match (bitmap, found) {
                        (Ok(Some(b)), Ok(true)) => {
                            assert_eq!(b.iter().collect::<Vec<_>>(), visited);
                            assert_eq!(seg.posting_len(key), Some(visited.len() as u32));
                            assert!(visited.iter().all(|&p| u64::from(p) < seg.token_count()));
                        }
                        (Err(_), Err(_)) => {}
                        other => panic!("postings and for_each_position disagree: {other:?}"),
                    }
                }
            }
        }
    }
}

#[test]
fn versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v.seg");
    let with_header = |edit: fn(&mut Header)| {
        let mut bytes = sample_bytes();
        edit_record(&mut bytes, 0, edit);
        reseal(&mut bytes);
        open_bytes(&path, &bytes)
    };
    assert_eq!((FORMAT_VERSION, OLDEST_SUPPORTED_VERSION), (2, 1));
    let header: Header = read_record(&sample_bytes(), 0);
    assert_eq!(
        (header.format_version, header.oldest_supported_version),
        (2, 2),
        "v2 files declare that v1 readers cannot read them"
    );
    // What a v1 build (FORMAT_VERSION 1) makes of a v2 file under the version rule: refused, as
    // UnsupportedVersion ("format version 2 is not supported (this build reads versions 1 to
    // 1)").
    assert_eq!(
        pairalign_sections::readable_version(2, 2, 1),
        Err(pairalign_sections::Error::UnsupportedVersion {
            found: 2,
            oldest_supported: 2
        })
    );
    let err = with_header(|h| h.oldest_supported_version = FORMAT_VERSION + 1).expect_err("future");
    assert!(
        matches!(&err, Error::UnsupportedVersion { path: p, found: 2, .. } if *p == path),
        "{err}"
    );
    let err = with_header(|h| {
        h.format_version = FORMAT_VERSION + 1;
        h.oldest_supported_version = FORMAT_VERSION + 1;
    })
    .expect_err("future");
    assert!(
        matches!(err, Error::UnsupportedVersion { found: 3, .. }),
        "{err}"
    );
    assert!(matches!(
        with_header(|h| h.format_version = 0),
        Err(Error::Corrupt {
            section: "header",
            ..
        })
    ));
    // A newer writer that declares itself readable by v2 is read as v2.
    let seg =
        with_header(|h| h.format_version = FORMAT_VERSION + 1).expect("v2-compatible newer file");
    assert_matches(&seg, &sample_v2_docs(), VOCAB, Q);
    // Both layouts are read.
    let v1 = open_bytes(&path, &sample_bytes_v1()).expect("v1 file");
    assert_eq!(v1.format_version(), 1);
    assert_matches(&v1, &sample_docs(), VOCAB, Q);
}

// ---- property test ----

fn arb_docs() -> impl Strategy<Value = (u32, u32, Vec<Doc>)> {
    (1u32..20, 1u32..5).prop_flat_map(|(vocab, q)| {
        let doc = (
            // Up to 40 tokens, so that small vocabularies give roaring lists (13+ positions).
            proptest::collection::vec(0..vocab as u16, 0..40),
            proptest::collection::vec(0u32..50, 40),
            any::<u32>(),
            "[a-zé]{0,6}",
        );
        (Just(vocab), Just(q), proptest::collection::vec(doc, 0..6)).prop_map(|(vocab, q, raw)| {
            let docs = raw
                .into_iter()
                .enumerate()
                .map(|(i, (tokens, steps, doc_id, suffix))| {
                    let mut t = 0;
                    Doc {
                        name: format!("{suffix}#{i}"),
                        doc_id,
                        times_ms: steps[..tokens.len()]
                            .iter()
                            .map(|s| {
                                t += s;
                                t
                            })
                            .collect(),
                        tokens,
                        duration_ms: t,
                    }
                })
                .collect();
            (vocab, q, docs)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn round_trip_random_documents((vocab, q, docs) in arb_docs()) {
        let dir = tempfile::tempdir().expect("tempdir");
        for version in VERSIONS {
            let (path, _) = write_as(version, dir.path(), &format!("{version:?}.seg"), &docs, vocab, q);
            let seg = Segment::open(&path).expect("open");
            assert_matches(&seg, &docs, vocab, q);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// The writer's hand-rolled bitmap serialization equals roaring's own, and roaring reads it.
    #[test]
    fn serialize_positions_matches_roaring(
        set in proptest::collection::btree_set(
            prop_oneof![0u32..70_000, 65_000u32..140_000, any::<u32>()], 0..9000)
    ) {
        let positions: Vec<u32> = set.into_iter().collect();
        let mut ours = Vec::new();
        super::writer::serialize_positions(&positions, &mut ours);
        let bitmap = roaring::RoaringBitmap::from_sorted_iter(positions.iter().copied()).expect("sorted");
        let mut theirs = Vec::new();
        bitmap.serialize_into(&mut theirs).expect("serialize");
        prop_assert_eq!(&ours, &theirs);
        prop_assert!(super::reader::decode_bitmap(&ours, positions.len() as u32, 1 << 32).is_ok()
            || positions.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// A postings list is whichever of an array and a roaring bitmap takes fewer words, and
    /// decodes to the same positions.
    #[test]
    fn encode_list_picks_the_smaller_encoding(
        set in proptest::collection::btree_set(
            prop_oneof![0u32..300, 0u32..200_000, any::<u32>()], 2..6000)
    ) {
        let positions: Vec<u32> = set.into_iter().collect();
        let mut bytes = Vec::new();
        super::writer::encode_list(&positions, &mut bytes);
        prop_assert_eq!(bytes.len() % 4, 0);
        let words: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let mut bitmap = Vec::new();
        super::writer::serialize_positions(&positions, &mut bitmap);
        let roaring_words = 2 + bitmap.len().div_ceil(4);
        if words[0] == ROARING_MARKER {
            prop_assert!(roaring_words < positions.len());
            prop_assert_eq!(words.len(), roaring_words);
            prop_assert_eq!(words[1] as usize, bitmap.len());
            prop_assert_eq!(&bytes[8..8 + bitmap.len()], &bitmap[..]);
            prop_assert!(bytes[8 + bitmap.len()..].iter().all(|&b| b == 0));
            let decoded = super::reader::decode_bitmap(&bitmap, positions.len() as u32, 1 << 32)
                .expect("valid bitmap");
            prop_assert_eq!(decoded.iter().collect::<Vec<_>>(), positions);
        } else {
            prop_assert!(roaring_words >= positions.len());
            prop_assert_eq!(words, positions);
        }
    }
}

#[test]
fn serialize_positions_bitmap_container() {
    // More than 4096 positions in one container: the bitmap container.
    let positions: Vec<u32> = (0..10_000).map(|i| 70_000 + 3 * i).collect();
    let mut ours = Vec::new();
    super::writer::serialize_positions(&positions, &mut ours);
    let mut theirs = Vec::new();
    roaring::RoaringBitmap::from_sorted_iter(positions.iter().copied())
        .expect("sorted")
        .serialize_into(&mut theirs)
        .expect("serialize");
    assert_eq!(ours, theirs);
}

// ---- frozen v1 fixture ----

/// A committed v1 file; every later build must keep reading it (tantivy `compat_tests.rs`).
fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/segment-v1.seg")
}

/// The contents of the fixture. Never change this: it describes a file already on disk.
fn fixture_docs() -> Vec<Doc> {
    vec![
        Doc::new("fixture/alpha.wav", 0, &[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]),
        Doc::new("fixture/ß-ü.ogg", 1, &[]),
        Doc::new("fixture/beta.wav", 2, &[8, 9, 7, 9, 3, 2, 3, 8, 4, 6]),
        // q-gram 77 at 15 positions: a roaring list beside the inline positions and arrays.
        Doc::new("fixture/gamma.wav", 3, &[7; 16]),
    ]
}

#[test]
fn frozen_v1_fixture_still_opens() {
    let path = fixture_path();
    let seg = Segment::open(&path).expect("the v1 fixture must keep opening");
    let header: Header = read_record(&std::fs::read(&path).expect("read"), 0);
    assert_eq!(
        (header.format_version, header.oldest_supported_version),
        (1, 1)
    );
    assert_matches(&seg, &fixture_docs(), 10, 2);
}

/// The v1 writer (kept for the tests) still produces the fixture byte for byte: the layout code
/// is shared with the feature cache since issue 24, and the v1 tests must keep testing the files
/// that v1 builds wrote.
#[test]
fn writer_reproduces_the_v1_fixture_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, _) = write_as(
        Version::V1,
        dir.path(),
        "fixture.seg",
        &fixture_docs(),
        10,
        2,
    );
    let written = std::fs::read(path).expect("read back");
    let frozen = std::fs::read(fixture_path()).expect("read fixture");
    assert_eq!(written, frozen);
}

/// Regenerates `tests/fixtures/segment-v1.seg`. Run only when introducing the fixture of a new
/// version (then copy this test for it); never to "fix" a failing compatibility test:
/// `cargo test -p pairalign-engine segment::tests::regenerate_v1_fixture -- --ignored`.
#[test]
#[ignore = "rewrites a committed fixture"]
fn regenerate_v1_fixture() {
    let path = fixture_path();
    let _ = std::fs::remove_file(&path);
    std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
    let mut writer = SegmentWriter::new(10, 2).expect("valid");
    for doc in fixture_docs() {
        writer.add(&doc.input()).expect("valid");
    }
    let info = writer.write_v1(&path).expect("write fixture");
    assert!(info.bytes < 4096);
}

// ---- frozen v2 fixture ----

/// A committed v2 file; every later build must keep reading it.
fn fixture_v2_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/segment-v2.seg")
}

/// The contents of the v2 fixture. Never change this: it describes a file already on disk.
fn fixture_v2_docs() -> Vec<Doc> {
    let mut docs = fixture_docs();
    // 150 tokens on the time grid from 1 s, across the boundary of the two time blocks (the
    // first block also starts four documents); q-gram 77 at 154 positions: a packed block of
    // 128 gaps and 25 varint gaps, beside inline positions and short lists.
    let tokens: Vec<Symbol> = (0..150u16)
        .map(|i| if i < 140 { 7 } else { i % 10 })
        .collect();
    docs.push(Doc::grid("fixture/delta.wav", 4, &tokens, 1_000));
    docs
}

#[test]
fn frozen_v2_fixture_still_opens() {
    let path = fixture_v2_path();
    let seg = Segment::open(&path).expect("the v2 fixture must keep opening");
    let header: Header = read_record(&std::fs::read(&path).expect("read"), 0);
    assert_eq!(
        (header.format_version, header.oldest_supported_version),
        (2, 2)
    );
    assert_eq!(seg.format_version(), 2);
    assert_matches(&seg, &fixture_v2_docs(), 10, 2);
    assert_eq!(seg.posting_len(77), Some(154));
}

/// The writer produces the v2 fixture byte for byte (while v2 is what it writes).
#[test]
fn writer_reproduces_the_v2_fixture_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, _) = write(dir.path(), "fixture.seg", &fixture_v2_docs(), 10, 2);
    let written = std::fs::read(path).expect("read back");
    let frozen = std::fs::read(fixture_v2_path()).expect("read fixture");
    assert_eq!(written, frozen);
}

/// Regenerates `tests/fixtures/segment-v2.seg`, like [`regenerate_v1_fixture`]:
/// `cargo test -p pairalign-engine segment::tests::regenerate_v2_fixture -- --ignored`.
#[test]
#[ignore = "rewrites a committed fixture"]
fn regenerate_v2_fixture() {
    let path = fixture_v2_path();
    let _ = std::fs::remove_file(&path);
    let dir = tempfile::tempdir().expect("tempdir");
    let (written, info) = write(dir.path(), "fixture.seg", &fixture_v2_docs(), 10, 2);
    std::fs::copy(written, &path).expect("copy fixture");
    assert!(info.bytes < 4096);
}

// ---- ad-hoc build measurement ----

/// Peak resident memory of this process, from /proc (Linux only; 0 elsewhere).
fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

/// Builds and opens a segment of 10^6 documents x 38 tokens (vocab 512, q = 3: a 3 s clip at
/// 12.7 tokens/s), with uniform tokens (every q-gram nearly unique: the worst case for postings)
/// and with Zipf(1) tokens (closer to a real tokenizer), and prints times and bytes per token.
/// `cargo test --release -p pairalign-engine --lib segment::tests::measure_build -- --ignored --nocapture`
/// (`DIST=uniform` or `DIST=zipf` runs one of the two; `DOCS=100000` sets the document count).
#[test]
#[ignore = "ad-hoc measurement; takes about a minute in release"]
fn measure_build_1m_docs_38_tokens() {
    use rand::{Rng, SeedableRng};
    let docs: usize = std::env::var("DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    const LEN: usize = 38;
    const VOCAB: u32 = 512;
    let zipf_cdf: Vec<f64> = {
        let w: Vec<f64> = (1..=VOCAB).map(|r| 1.0 / f64::from(r)).collect();
        let total: f64 = w.iter().sum();
        w.iter()
            .scan(0.0, |acc, x| {
                *acc += x / total;
                Some(*acc)
            })
            .collect()
    };
    for dist in ["uniform", "zipf"]
        .into_iter()
        .filter(|d| std::env::var("DIST").map_or(true, |v| v == *d))
    {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let tokens: Vec<Symbol> = (0..docs * LEN)
            .map(|_| match dist {
                "uniform" => rng.gen_range(0..VOCAB) as u16,
                _ => zipf_cdf
                    .partition_point(|&c| c < rng.gen::<f64>())
                    .min(VOCAB as usize - 1) as u16,
            })
            .collect();
        let times: Vec<u32> = (0..LEN as u32).map(|i| i * 79).collect();
        let names: Vec<String> = (0..docs).map(|i| format!("archive/{:07}.wav", i)).collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.seg");

        let t = std::time::Instant::now();
        let mut w = SegmentWriter::new(VOCAB, 3).expect("valid");
        for (i, name) in names.iter().enumerate() {
            w.add(&DocInput {
                name,
                doc_id: i as u32,
                tokens: &tokens[i * LEN..(i + 1) * LEN],
                times_ms: &times,
                duration_ms: 3000,
            })
            .expect("valid");
        }
        let add_s = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let info = w.write(&path).expect("write");
        let write_s = t.elapsed().as_secs_f64();
        let peak_after_write = peak_rss_mib();
        let t = std::time::Instant::now();
        let seg = Segment::open(&path).expect("open");
        let open_s = t.elapsed().as_secs_f64();

        let mut bytes =
            vec![0u8; SECTION_LAYOUT.header_region_len(V1_SECTION_COUNT as u32) as usize];
        std::io::Read::read_exact(&mut std::fs::File::open(&path).expect("open"), &mut bytes)
            .expect("read");
        let n = info.token_count as f64;
        let per_token = |s: Section| table_entry(&bytes, s).len as f64 / n;
        let qgrams = table_entry(&bytes, Section::QGramRefs).len / 8;
        let t = std::time::Instant::now();
        let mut looked = 0u64;
        for i in (0..docs * LEN - 2).step_by(997) {
            let key = qgram_key(&tokens[i..i + 3], VOCAB);
            looked += seg.postings(key).expect("valid").map_or(0, |b| b.len());
        }
        let lookup_s = t.elapsed().as_secs_f64();
        eprintln!(
            "{dist}: {} docs, {} tokens, {qgrams} distinct q-grams; add {add_s:.2}s, write {write_s:.2}s \
             (incl. postings build and fsync), open+validate {open_s:.2}s; file {} MB = {:.2} B/token: \
             tokens {:.2}, times {:.2}, doc table {:.2}, names {:.2}, name index {:.2}, keys {:.2}, refs {:.2}, \
             postings {:.2}; {} lookups {lookup_s:.3}s ({looked} positions); peak RSS so far {} MiB",
            info.doc_count,
            info.token_count,
            info.bytes / 1_000_000,
            info.bytes as f64 / n,
            per_token(Section::Tokens),
            per_token(Section::Times),
            per_token(Section::Docs),
            per_token(Section::Names),
            per_token(Section::NameIndex),
            per_token(Section::QGramKeys),
            per_token(Section::QGramRefs),
            per_token(Section::Postings),
            (docs * LEN - 2).div_ceil(997),
            peak_after_write,
        );
        lookup_microbench(&seg);
    }
}

/// Time to iterate the postings of 100,000 keys drawn uniformly from the dictionary (mostly
/// short lists) and of 100,000 keys drawn by frequency (q-grams at random positions: long lists
/// weigh more), through `postings` and through `for_each_position`; best of three rounds.
fn lookup_microbench(seg: &Segment) {
    use rand::{Rng, SeedableRng};
    const LOOKUPS: usize = 100_000;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let dict = seg.dict_keys();
    let q = seg.q() as usize;
    let uniform: Vec<u64> = (0..LOOKUPS)
        .map(|_| dict[rng.gen_range(0..dict.len())])
        .collect();
    let tokens = seg.tokens();
    let by_frequency: Vec<u64> = std::iter::repeat_with(|| {
        let doc = seg.doc(rng.gen_range(0..seg.doc_count()));
        if doc.tokens.len() < q {
            return None;
        }
        let i = doc.token_start as usize + rng.gen_range(0..=doc.tokens.len() - q);
        Some(qgram_key(&tokens[i..i + q], seg.vocab_size()))
    })
    .flatten()
    .take(LOOKUPS)
    .collect();
    let best_of_3 = |f: &dyn Fn() -> u64| {
        (0..3)
            .map(|_| {
                let t = std::time::Instant::now();
                let sum = std::hint::black_box(f());
                (t.elapsed().as_secs_f64() * 1e9 / LOOKUPS as f64, sum)
            })
            .fold((f64::MAX, 0), |a, b| if b.0 < a.0 { b } else { a })
    };
    for (what, keys) in [("uniform keys", &uniform), ("by frequency", &by_frequency)] {
        let (bitmap_ns, sum) = best_of_3(&|| {
            keys.iter()
                .map(|&k| {
                    seg.postings(k)
                        .expect("valid")
                        .map_or(0, |b| b.iter().map(u64::from).sum::<u64>())
                })
                .sum()
        });
        let (each_ns, each_sum) = best_of_3(&|| {
            keys.iter()
                .map(|&k| {
                    let mut sum = 0u64;
                    seg.for_each_position(k, |p| sum += u64::from(p))
                        .expect("valid");
                    sum
                })
                .sum()
        });
        assert_eq!(each_sum, sum);
        let (len_ns, _) = best_of_3(&|| {
            keys.iter()
                .map(|&k| u64::from(seg.posting_len(k).unwrap_or(0)))
                .sum()
        });
        eprintln!(
            "  lookups, {what}: postings+iterate {bitmap_ns:.0} ns/key, for_each_position \
             {each_ns:.0} ns/key, posting_len {len_ns:.0} ns/key (position sum {sum})"
        );
    }
}

// ---- v1 against v2 on real tokens ----

/// Rewrites the live documents of the database at `PA_SEGMENT_DB` (the scale bench's 50 h
/// archive, say: real pairalign-v2 tokens and times) as one v1 and one v2 segment, and prints
/// for each the bytes per hour by section (hours at the nominal 12.7 tokens/s), and the time to
/// decode: `for_each_position` over every q-gram of the dictionary (each list read whole, as
/// the search's hot loop reads it), the same over keys drawn by frequency, every document's
/// times, and the time of one token per document; best of five rounds each. `PA_LOOKUPS` sets
/// the number of keys drawn by frequency (default 200,000).
/// `PA_SEGMENT_DB=/work/exp/scale/50h cargo test --release -p pairalign-engine --lib
/// segment::tests::measure_formats_on_a_database -- --ignored --nocapture`
#[test]
#[ignore = "ad-hoc measurement on a database given by PA_SEGMENT_DB; run in release"]
fn measure_formats_on_a_database() {
    use rand::{Rng, SeedableRng};
    let Ok(db) = std::env::var("PA_SEGMENT_DB") else {
        eprintln!("set PA_SEGMENT_DB to a database directory");
        return;
    };
    let searcher = crate::Searcher::open(&db).expect("open the database");
    let mut docs = Vec::new();
    let (mut vocab, mut q) = (0, 0);
    for segment in searcher.segments().expect("segments verify") {
        (vocab, q) = (segment.vocab_size(), segment.q());
        for d in segment.docs().filter(|d| !searcher.is_deleted(d.doc_id)) {
            docs.push(Doc {
                name: d.name.to_string(),
                doc_id: d.doc_id,
                tokens: d.tokens.to_vec(),
                times_ms: d.times_ms.to_vec(),
                duration_ms: d.duration_ms,
            });
        }
    }
    let tokens: usize = docs.iter().map(|d| d.tokens.len()).sum();
    let hours = tokens as f64 / (12.7 * 3600.0);
    eprintln!(
        "{db}: {} documents, {tokens} tokens = {hours:.1} h at 12.7 tokens/s, vocab {vocab}, q {q}",
        docs.len()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let segments: Vec<(Version, Segment)> = VERSIONS
        .into_iter()
        .map(|version| {
            let file = format!("{version:?}.seg");
            let t = std::time::Instant::now();
            let (path, _) = write_as(version, dir.path(), &file, &docs, vocab, q);
            let write_s = t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            let seg = Segment::open(&path).expect("open");
            eprintln!(
                "{version:?}: write {write_s:.2} s, open and full check {:.2} s",
                t.elapsed().as_secs_f64()
            );
            (version, seg)
        })
        .collect();
    for (version, seg) in &segments {
        let sections = seg.section_bytes();
        let per_hour = |b: u64| b as f64 / hours / 1000.0;
        let listed: Vec<String> = sections
            .iter()
            .map(|(name, b)| format!("{name} {:.1}", per_hour(*b)))
            .collect();
        eprintln!(
            "{version:?}: {:.1} KB per hour: {}",
            per_hour(seg.byte_len()),
            listed.join(", ")
        );
    }

    let keys = segments[0].1.dict_keys();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let lookups: usize = std::env::var("PA_LOOKUPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let by_frequency: Vec<u64> = (0..lookups)
        .filter_map(|_| {
            let d = &docs[rng.gen_range(0..docs.len())];
            let len = d.tokens.len().checked_sub(q as usize)?;
            let i = rng.gen_range(0..=len);
            Some(qgram_key(&d.tokens[i..i + q as usize], vocab))
        })
        .collect();
    let best_of_5 = |f: &dyn Fn() -> u64| {
        (0..5)
            .map(|_| {
                let t = std::time::Instant::now();
                let sum = std::hint::black_box(f());
                (t.elapsed().as_secs_f64(), sum)
            })
            .fold((f64::MAX, 0), |a, b| if b.0 < a.0 { b } else { a })
    };
    let mut sums = Vec::new();
    for (version, seg) in &segments {
        let each = |keys: &[u64]| {
            keys.iter()
                .map(|&k| {
                    let mut sum = 0u64;
                    seg.for_each_position(k, |p| sum += u64::from(p))
                        .expect("valid");
                    sum
                })
                .sum::<u64>()
        };
        let (all_s, all_sum) = best_of_5(&|| each(&keys));
        // Lists of a packed block or more against shorter ones (v1: arrays, roaring from a few
        // hundred positions; v2: all gaps varints).
        let (long, short): (Vec<u64>, Vec<u64>) = keys
            .iter()
            .partition(|&&k| seg.posting_len(k).unwrap_or(0) > 128);
        let count = |keys: &[u64]| -> u64 {
            keys.iter()
                .map(|&k| u64::from(seg.posting_len(k).unwrap_or(0)))
                .sum()
        };
        let (short_s, _) = best_of_5(&|| each(&short));
        let (long_s, _) = best_of_5(&|| each(&long));
        let (freq_s, freq_sum) = best_of_5(&|| each(&by_frequency));
        let positions: u64 = keys
            .iter()
            .map(|&k| u64::from(seg.posting_len(k).unwrap_or(0)))
            .sum();
        let (times_s, times_sum) = best_of_5(&|| {
            seg.docs()
                .map(|d| {
                    d.times_ms
                        .to_vec()
                        .iter()
                        .map(|&t| u64::from(t))
                        .sum::<u64>()
                })
                .sum()
        });
        let (one_s, one_sum) = best_of_5(&|| {
            seg.docs()
                .map(|d| u64::from(d.times_ms.get(d.times_ms.len() * 2 / 3).unwrap_or(0)))
                .sum()
        });
        sums.push((all_sum, freq_sum, times_sum, one_sum));
        eprintln!(
            "{version:?}: for_each_position over all {} keys ({positions} positions): {:.2} ms = \
             {:.2} ns per position (lists of 2 to 128: {:.2} ns, longer: {:.2} ns); over {} keys \
             by frequency: {:.1} ms = {:.0} ns per key; every document's times: {:.2} ms = {:.2} \
             ns per token; one time per document: {:.0} ns",
            keys.len(),
            all_s * 1e3,
            all_s * 1e9 / positions as f64,
            short_s * 1e9 / count(&short) as f64,
            long_s * 1e9 / count(&long) as f64,
            by_frequency.len(),
            freq_s * 1e3,
            freq_s * 1e9 / by_frequency.len() as f64,
            times_s * 1e3,
            times_s * 1e9 / tokens as f64,
            one_s * 1e9 / docs.len() as f64,
        );
    }
    assert_eq!(
        sums[0], sums[1],
        "both layouts decode the same positions and times"
    );
}
