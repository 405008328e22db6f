//! Format-level tests of the feature cache: every truncation and every flipped byte is an error
//! naming the file and a section; crafted tables with valid checksums are rejected; versions.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bytemuck::Pod;
use pairalign_sections::{FooterTail, SectionEntry, FOOTER_TAIL_LEN, SECTION_ENTRY_LEN};

use super::format::{ClipEntry, Header, Section, ViewEntry, HEADER_LEN, V1_SECTION_COUNT};
use super::*;
use crate::Error;

/// A small cache: 3 clips x 2 views with different frame counts, n_mels 4.
fn small_cache(dir: &Path, dtype: Dtype) -> PathBuf {
    let path = dir.join("small.feat");
    let mut w = CacheWriter::create(&path, 4, 2, dtype).expect("create");
    for (c, id) in ["a", "bb", "ccc"].iter().enumerate() {
        let v0: Vec<f32> = (0..4 * (c + 1)).map(|x| x as f32 * 0.5 - 1.0).collect();
        let v1: Vec<f32> = (0..4 * (c + 2)).map(|x| -(x as f32) * 0.25).collect();
        w.add_clip(id, &[&v0, &v1]).expect("add");
    }
    w.finish().expect("finish");
    path
}

fn open_bytes(path: &Path, bytes: &[u8]) -> crate::Result<FeatureCache> {
    std::fs::write(path, bytes).expect("write");
    FeatureCache::open(path)
}

/// The section named by a corruption error, after checking that it names `path`.
fn corrupt_section(e: &Error, path: &Path) -> &'static str {
    match e {
        Error::Corrupt {
            path: p, section, ..
        } => {
            assert_eq!(p, path, "error names the wrong file: {e}");
            assert!(e.to_string().contains(&path.display().to_string()));
            section
        }
        other => panic!("expected a corruption error, got {other}"),
    }
}

fn read_record<T: Pod>(bytes: &[u8], at: usize) -> T {
    bytemuck::pod_read_unaligned(&bytes[at..at + std::mem::size_of::<T>()])
}

fn edit_record<T: Pod>(bytes: &mut [u8], at: usize, edit: impl FnOnce(&mut T)) {
    let mut r: T = read_record(bytes, at);
    edit(&mut r);
    bytes[at..at + std::mem::size_of::<T>()].copy_from_slice(bytemuck::bytes_of(&r));
}

fn table_entry(bytes: &[u8], s: Section) -> SectionEntry {
    read_record(bytes, (HEADER_LEN + SECTION_ENTRY_LEN * s as u64) as usize)
}

/// Recomputes every section CRC and the header CRC, so that only structural checks can catch an
/// edit.
fn reseal(bytes: &mut [u8]) {
    let header: Header = read_record(bytes, 0);
    let n = (header.section_count as usize).min(V1_SECTION_COUNT);
    let footer_at = bytes.len() - FOOTER_TAIL_LEN as usize - (4 * n).next_multiple_of(8);
    for i in 0..n {
        let e: SectionEntry = read_record(bytes, HEADER_LEN as usize + 16 * i);
        // A crafted entry may point outside the file: leave its checksum alone.
        let Some(section) = e
            .offset
            .checked_add(e.len)
            .and_then(|end| bytes.get(e.offset as usize..end as usize))
        else {
            continue;
        };
        let crc = crc32fast::hash(section);
        bytes[footer_at + 4 * i..footer_at + 4 * i + 4].copy_from_slice(&crc.to_le_bytes());
    }
    let region = HEADER_LEN as usize + 16 * n;
    let crc = crc32fast::hash(&bytes[..region]);
    let tail_at = bytes.len() - FOOTER_TAIL_LEN as usize;
    edit_record::<FooterTail>(bytes, tail_at, |t| t.header_crc = crc);
}

#[test]
fn feature_cache_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<FeatureCache>();
}

#[test]
fn truncation_at_every_length_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = std::fs::read(small_cache(dir.path(), Dtype::F16)).expect("read");
    let path = dir.path().join("cut.feat");
    for len in 0..good.len() {
        let e = open_bytes(&path, &good[..len]).expect_err("truncated file must not open");
        corrupt_section(&e, &path);
    }
    assert!(open_bytes(&path, &good).is_ok());
}

#[test]
fn flipping_any_byte_is_detected_and_names_its_section() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = std::fs::read(small_cache(dir.path(), Dtype::F32)).expect("read");
    let path = dir.path().join("flip.feat");
    let mut named = BTreeSet::new();
    for at in 0..good.len() {
        let mut bytes = good.clone();
        bytes[at] ^= 0x5A;
        match open_bytes(&path, &bytes) {
            Ok(_) => panic!("flipping byte {at} went unnoticed"),
            Err(Error::UnsupportedVersion { .. }) => {}
            Err(e) => {
                let section = corrupt_section(&e, &path);
                named.insert(section);
                // A flip inside a section's bytes is reported as that section.
                for s in Section::ALL {
                    let entry = table_entry(&good, s);
                    if (entry.offset..entry.offset + entry.len).contains(&(at as u64)) {
                        assert_eq!(section, s.name(), "byte {at}");
                    }
                }
            }
        }
    }
    for s in Section::ALL {
        assert!(named.contains(s.name()), "no flip named {}", s.name());
    }
    assert!(named.contains("header") && named.contains("footer"));
}

#[test]
fn resealing_an_untampered_file_keeps_it_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bytes = std::fs::read(small_cache(dir.path(), Dtype::F16)).expect("read");
    reseal(&mut bytes);
    assert!(open_bytes(&dir.path().join("x.feat"), &bytes).is_ok());
}

/// Applies `edit` to a fresh small cache, reseals it, and returns the section of the error.
fn tampered(edit: impl FnOnce(&mut Vec<u8>)) -> &'static str {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bytes = std::fs::read(small_cache(dir.path(), Dtype::F32)).expect("read");
    edit(&mut bytes);
    reseal(&mut bytes);
    let path = dir.path().join("t.feat");
    let e = open_bytes(&path, &bytes).expect_err("tampered file must not open");
    corrupt_section(&e, &path)
}

#[test]
fn crafted_offsets_with_valid_checksums_are_rejected() {
    let clips_at = |b: &[u8]| table_entry(b, Section::Clips).offset as usize;
    let views_at = |b: &[u8]| table_entry(b, Section::Views).offset as usize;
    let clip = std::mem::size_of::<ClipEntry>();
    let view = std::mem::size_of::<ViewEntry>();

    // Header parameters.
    assert_eq!(
        tampered(|b| edit_record::<Header>(b, 0, |h| h.n_mels = 0)),
        "header"
    );
    assert_eq!(
        tampered(|b| edit_record::<Header>(b, 0, |h| h.n_mels = 8)),
        "view table"
    );
    assert_eq!(
        tampered(|b| edit_record::<Header>(b, 0, |h| h.dtype = 7)),
        "header"
    );
    assert_eq!(
        tampered(|b| edit_record::<Header>(b, 0, |h| h.dtype = 2)),
        "data"
    );
    assert_eq!(
        tampered(|b| edit_record::<Header>(b, 0, |h| h.views_per_clip = 0)),
        "header"
    );
    assert_eq!(
        tampered(|b| edit_record::<Header>(b, 0, |h| h.views_per_clip = 3)),
        "view table"
    );
    assert_eq!(
        tampered(|b| edit_record::<Header>(b, 0, |h| h.clip_count = 4)),
        "clip table"
    );
    assert_eq!(
        tampered(|b| edit_record::<Header>(b, 0, |h| h.clip_count = u64::MAX)),
        "clip table"
    );
    assert_eq!(
        tampered(|b| edit_record::<Header>(b, 0, |h| h.total_frames += 1)),
        "header"
    );
    assert_eq!(
        tampered(|b| edit_record::<Header>(b, 0, |h| h.section_count = 3)),
        "header"
    );
    assert_eq!(
        tampered(|b| edit_record::<Header>(b, 0, |h| h.section_count = 65)),
        "header"
    );
    assert_eq!(
        tampered(|b| edit_record::<Header>(b, 0, |h| h.reserved[3] = 1)),
        "header"
    );

    // Section table: offsets and lengths that do not follow the placement rule.
    let entry_at = |s: Section| (HEADER_LEN + SECTION_ENTRY_LEN * s as u64) as usize;
    assert_eq!(
        tampered(|b| edit_record::<SectionEntry>(b, entry_at(Section::Names), |e| e.offset += 8)),
        "names"
    );
    assert_eq!(
        tampered(|b| edit_record::<SectionEntry>(b, entry_at(Section::Data), |e| e.len = u64::MAX)),
        "section table"
    );
    assert_eq!(
        tampered(|b| edit_record::<SectionEntry>(b, entry_at(Section::Clips), |e| e.len += 16)),
        "section table"
    );

    // Clip table: ids outside the names section, overlapping, empty, too long, not UTF-8.
    assert_eq!(
        tampered(|b| {
            let at = clips_at(b) + clip;
            edit_record::<ClipEntry>(b, at, |c| c.name_offset = 1 << 40)
        }),
        "clip table"
    );
    assert_eq!(
        tampered(|b| {
            let at = clips_at(b) + 2 * clip;
            edit_record::<ClipEntry>(b, at, |c| c.name_len = 1000)
        }),
        "clip table"
    );
    assert_eq!(
        tampered(|b| {
            let at = clips_at(b);
            edit_record::<ClipEntry>(b, at, |c| c.name_len = 0)
        }),
        "clip table"
    );
    assert_eq!(
        tampered(|b| {
            let at = clips_at(b);
            edit_record::<ClipEntry>(b, at, |c| c.reserved = 1)
        }),
        "clip table"
    );
    assert_eq!(
        tampered(|b| {
            let at = table_entry(b, Section::Names).offset as usize;
            b[at] = 0xFF;
        }),
        "names"
    );

    // View table: data outside the section, overlapping views, zero frames.
    assert_eq!(
        tampered(|b| {
            let at = views_at(b) + 5 * view;
            edit_record::<ViewEntry>(b, at, |v| v.frames = u32::MAX)
        }),
        "view table"
    );
    assert_eq!(
        tampered(|b| {
            let at = views_at(b) + 5 * view;
            edit_record::<ViewEntry>(b, at, |v| v.frames -= 1)
        }),
        "data"
    );
    assert_eq!(
        tampered(|b| {
            let at = views_at(b) + view;
            edit_record::<ViewEntry>(b, at, |v| v.data_offset = 0)
        }),
        "view table"
    );
    assert_eq!(
        tampered(|b| {
            let at = views_at(b) + 3 * view;
            edit_record::<ViewEntry>(b, at, |v| v.data_offset = u64::MAX)
        }),
        "view table"
    );
    assert_eq!(
        tampered(|b| {
            let at = views_at(b);
            edit_record::<ViewEntry>(b, at, |v| v.frames = 0)
        }),
        "view table"
    );
}

#[test]
fn versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = std::fs::read(small_cache(dir.path(), Dtype::F16)).expect("read");
    let path = dir.path().join("v.feat");
    let with = |edit: fn(&mut Header)| {
        let mut b = good.clone();
        edit_record::<Header>(&mut b, 0, edit);
        reseal(&mut b);
        open_bytes(&path, &b)
    };
    // A newer writer that keeps v1 readable is read as v1.
    assert!(with(|h| h.format_version = FORMAT_VERSION + 1).is_ok());
    // A newer writer that drops v1 is refused as unsupported, not corrupt.
    match with(|h| {
        h.format_version = FORMAT_VERSION + 1;
        h.oldest_supported_version = FORMAT_VERSION + 1;
    }) {
        Err(Error::UnsupportedVersion { found, .. }) => assert_eq!(found, FORMAT_VERSION + 1),
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    let e = with(|h| h.oldest_supported_version = 0).expect_err("version 0");
    assert_eq!(corrupt_section(&e, &path), "header");
    assert_eq!(V1_SECTION_COUNT, 4);
}
