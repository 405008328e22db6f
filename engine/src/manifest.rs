//! The MANIFEST: the one file that says what a database contains. Writer, serializer and reader.
//!
//! A database directory holds `MANIFEST`, `segments/*.seg` and `deletes-<generation>.roaring`.
//! Only files named by the committed MANIFEST are part of the database; anything else is a leftover
//! of an interrupted write and is removed by the next writer. The MANIFEST is replaced atomically:
//! write `MANIFEST.tmp`, fsync it, rename it over `MANIFEST`, fsync the directory. A document is
//! acknowledged only once a committed MANIFEST names the segment holding it.
//!
//! On disk it is JSON: `{"crc32": <u32>, "manifest": {...}}` where `crc32` is the CRC-32 of the
//! compact serialization of the `manifest` value with its keys sorted (serde_json's `Value` keeps
//! keys sorted, so parsing and re-serializing reproduces the bytes that were checksummed).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::durability::{note, Event};
use crate::{Error, Result};

/// File name of the manifest inside a database directory.
pub const MANIFEST_FILE: &str = "MANIFEST";
/// Version of the manifest layout written by this build.
pub const FORMAT_VERSION: u32 = 1;
/// Oldest manifest version this build can read.
pub const OLDEST_SUPPORTED_VERSION: u32 = 1;

const SECTION: &str = "manifest";

/// The tokenizer that produced a database's strings; searching or adding with another one is an
/// error (recorded by the indexer; token imports leave it empty).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenizerRecord {
    /// Stable name of the tokenizer, for example `vq-v1`.
    pub id: String,
    /// Hex digest of the weights the tokenizer ran with.
    pub weights_hash: String,
}

/// One live segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEntry {
    /// File name inside `segments/`, `seg-<number>.seg`.
    pub file: String,
    /// Documents in the segment, tombstoned ones included.
    pub doc_count: u32,
    /// Tokens in the segment, tombstoned documents included.
    pub token_count: u64,
    /// Size of the file in bytes; a different size on disk means the file is damaged.
    pub bytes: u64,
}

/// The current tombstone file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletesEntry {
    /// File name in the database directory, `deletes-<generation>.roaring`.
    pub file: String,
    /// Number of tombstoned document numbers.
    pub count: u64,
    /// CRC-32 of the file's bytes.
    pub crc32: u32,
}

/// The committed state of a database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest layout version that wrote this file.
    pub format_version: u32,
    /// Oldest reader version that can read this file.
    pub oldest_supported_version: u32,
    /// Symbols are `0..vocab_size`.
    pub vocab_size: u32,
    /// Length of the indexed q-grams.
    pub q: u32,
    /// Tokenizer the strings came from, when known.
    pub tokenizer: Option<TokenizerRecord>,
    /// Incremented by every commit.
    pub generation: u64,
    /// The document number the next added document gets.
    pub next_doc_id: u32,
    /// The number the next segment file gets.
    pub next_segment_id: u64,
    /// Live segments, oldest first.
    pub segments: Vec<SegmentEntry>,
    /// Tombstones, when any document has been deleted since the last compaction.
    pub deletes: Option<DeletesEntry>,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    crc32: u32,
    manifest: serde_json::Value,
}

impl Manifest {
    /// A manifest for a new, empty database.
    pub fn new(vocab_size: u32, q: u32) -> Self {
        Manifest {
            format_version: FORMAT_VERSION,
            oldest_supported_version: OLDEST_SUPPORTED_VERSION,
            vocab_size,
            q,
            tokenizer: None,
            generation: 0,
            next_doc_id: 0,
            next_segment_id: 1,
            segments: Vec::new(),
            deletes: None,
        }
    }

    /// Reads and validates `dir/MANIFEST`.
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotADatabase {
                    path: dir.to_path_buf(),
                })
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        Self::parse(&path, &bytes)
    }

    /// Parses and validates manifest bytes; `path` is used in error messages.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Manifest> {
        let envelope: Envelope = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt(path, SECTION, format!("not a manifest: {e}")))?;
        let canonical = serde_json::to_vec(&envelope.manifest)
            .map_err(|e| Error::corrupt(path, SECTION, e.to_string()))?;
        let crc = crc32fast::hash(&canonical);
        if crc != envelope.crc32 {
            return Err(Error::corrupt(
                path,
                SECTION,
                format!(
                    "checksum mismatch (stored {:08x}, computed {crc:08x})",
                    envelope.crc32
                ),
            ));
        }
        // Check the version before the shape, so that a newer layout gets the right error.
        let oldest = envelope
            .manifest
            .get("oldest_supported_version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| Error::corrupt(path, SECTION, "missing oldest_supported_version"))?;
        if oldest > u64::from(FORMAT_VERSION) {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found: u32::try_from(oldest).unwrap_or(u32::MAX),
                oldest: OLDEST_SUPPORTED_VERSION,
                current: FORMAT_VERSION,
            });
        }
        let manifest: Manifest = serde_json::from_value(envelope.manifest)
            .map_err(|e| Error::corrupt(path, SECTION, e.to_string()))?;
        manifest.validate(path)?;
        Ok(manifest)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let bad = |reason: String| Err(Error::corrupt(path, SECTION, reason));
        if self.format_version < OLDEST_SUPPORTED_VERSION {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found: self.format_version,
                oldest: OLDEST_SUPPORTED_VERSION,
                current: FORMAT_VERSION,
            });
        }
        if let Err(e) = crate::DatabaseConfig::new(self.vocab_size, self.q).check() {
            return bad(format!("invalid vocab_size/q: {e}"));
        }
        let mut seen = std::collections::HashSet::new();
        let mut docs: u64 = 0;
        for seg in &self.segments {
            if !is_segment_file_name(&seg.file) {
                return bad(format!(
                    "segment file name {:?} is not seg-<number>.seg",
                    seg.file
                ));
            }
            if !seen.insert(seg.file.as_str()) {
                return bad(format!("segment {} listed twice", seg.file));
            }
            docs += u64::from(seg.doc_count);
        }
        if docs > u64::from(self.next_doc_id) {
            return bad(format!(
                "{docs} documents in segments but next_doc_id is {}",
                self.next_doc_id
            ));
        }
        if let Some(deletes) = &self.deletes {
            if !is_deletes_file_name(&deletes.file) {
                return bad(format!(
                    "deletes file name {:?} is not deletes-<number>.roaring",
                    deletes.file
                ));
            }
        }
        Ok(())
    }

    /// Serializes the manifest with its checksum.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let value = serde_json::to_value(self)
            .map_err(|e| Error::InvalidInput(format!("manifest does not serialize: {e}")))?;
        let canonical =
            serde_json::to_vec(&value).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let envelope = Envelope {
            crc32: crc32fast::hash(&canonical),
            manifest: value,
        };
        let mut bytes =
            serde_json::to_vec_pretty(&envelope).map_err(|e| Error::InvalidInput(e.to_string()))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Atomically replaces `dir/MANIFEST` with this manifest: temp file, fsync, rename, fsync dir.
    pub fn commit(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
        let bytes = self.to_bytes()?;
        write_synced(&tmp, &bytes)?;
        let path = dir.join(MANIFEST_FILE);
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        note(|| Event::Renamed(tmp, path));
        sync_dir(dir)
    }
}

/// Writes `bytes` to a new file at `path` (replacing any old one) and fsyncs it.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(|e| Error::io(path, e))?;
    note(|| Event::Created(path.to_path_buf()));
    file.write_all(bytes).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))?;
    note(|| Event::FileSynced(path.to_path_buf()));
    Ok(())
}

/// Fsyncs a directory so that renames and creations inside it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let handle = File::open(dir).map_err(|e| Error::io(dir, e))?;
    handle.sync_all().map_err(|e| Error::io(dir, e))?;
    note(|| Event::DirSynced(dir.to_path_buf()));
    Ok(())
}

pub(crate) fn segment_file_name(number: u64) -> String {
    format!("seg-{number:08}.seg")
}

pub(crate) fn deletes_file_name(generation: u64) -> String {
    format!("deletes-{generation:08}.roaring")
}

fn numbered(name: &str, prefix: &str, suffix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(suffix))
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

pub(crate) fn is_segment_file_name(name: &str) -> bool {
    numbered(name, "seg-", ".seg")
}

pub(crate) fn is_deletes_file_name(name: &str) -> bool {
    numbered(name, "deletes-", ".roaring")
}

/// The `segments/` directory of a database.
pub(crate) fn segments_dir(dir: &Path) -> PathBuf {
    dir.join("segments")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let mut m = Manifest::new(512, 3);
        m.generation = 7;
        m.next_doc_id = 10;
        m.next_segment_id = 3;
        m.segments.push(SegmentEntry {
            file: segment_file_name(1),
            doc_count: 4,
            token_count: 100,
            bytes: 4096,
        });
        m.deletes = Some(DeletesEntry {
            file: deletes_file_name(7),
            count: 1,
            crc32: 5,
        });
        m
    }

    #[test]
    fn round_trip() {
        let m = sample();
        let bytes = m.to_bytes().expect("serialize");
        let back = Manifest::parse(Path::new("MANIFEST"), &bytes).expect("parse");
        assert_eq!(m, back);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().to_bytes().expect("serialize");
        // The last byte is a newline; dropping it leaves valid JSON.
        for len in 0..bytes.len() - 1 {
            let err = Manifest::parse(Path::new("db/MANIFEST"), &bytes[..len])
                .expect_err("a truncated manifest must not parse");
            assert!(err.to_string().contains("db/MANIFEST"), "{err}");
        }
    }

    #[test]
    fn every_changed_byte_is_an_error_or_harmless_whitespace() {
        let good = sample();
        let bytes = good.to_bytes().expect("serialize");
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x20, 0xFF] {
                let mut bad = bytes.clone();
                bad[i] ^= flip;
                // A flip may turn whitespace into other whitespace; anything that still parses
                // must then be exactly the same manifest.
                if let Ok(parsed) = Manifest::parse(Path::new("MANIFEST"), &bad) {
                    assert_eq!(
                        parsed, good,
                        "byte {i} flipped with {flip:#x} changed the manifest"
                    );
                }
            }
        }
    }

    #[test]
    fn newer_version_is_unsupported() {
        let mut m = sample();
        m.format_version = FORMAT_VERSION + 1;
        m.oldest_supported_version = FORMAT_VERSION + 1;
        let bytes = m.to_bytes().expect("serialize");
        match Manifest::parse(Path::new("MANIFEST"), &bytes) {
            Err(Error::UnsupportedVersion { found, .. }) => assert_eq!(found, FORMAT_VERSION + 1),
            other => panic!("expected UnsupportedVersion, got {other:?}"),
        }
    }

    #[test]
    fn inconsistent_values_are_corrupt() {
        let mut m = sample();
        m.next_doc_id = 2;
        assert!(matches!(
            Manifest::parse(Path::new("M"), &m.to_bytes().expect("ser")),
            Err(Error::Corrupt { .. })
        ));
        let mut m = sample();
        m.segments[0].file = "../escape.seg".into();
        assert!(matches!(
            Manifest::parse(Path::new("M"), &m.to_bytes().expect("ser")),
            Err(Error::Corrupt { .. })
        ));
        let mut m = sample();
        m.q = 0;
        assert!(matches!(
            Manifest::parse(Path::new("M"), &m.to_bytes().expect("ser")),
            Err(Error::Corrupt { .. })
        ));
    }
}
