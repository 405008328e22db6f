//! The byte layout of a feature cache file: constants, the header and the `#[repr(C)]` records
//! cast from the mapped bytes (datasets/README.md draws it). The section table, the placement of
//! the sections and the checksummed footer are the section layout that pairalign-sections owns;
//! this module says what the header holds and what each section means.
//!
//! Every integer and float is little-endian. Records are read by casting the mapped bytes with
//! bytemuck, which only gives the right values on a little-endian host, so the crate refuses to
//! build on a big-endian one rather than misread files.

use bytemuck::{Pod, Zeroable};
use pairalign_sections::SectionLayout;
use serde::{Deserialize, Serialize};

#[cfg(target_endian = "big")]
compile_error!(
    "the feature cache is read by casting little-endian bytes; big-endian hosts are not supported"
);

/// The format version this build writes.
pub const FORMAT_VERSION: u32 = 1;

/// The oldest format version this build can read.
pub const OLDEST_SUPPORTED_VERSION: u32 = 1;

/// First 8 bytes of every cache file.
pub(crate) const MAGIC: [u8; 8] = *b"PAFEATC\0";

/// Last 8 bytes of every cache file; a truncated file loses it.
pub(crate) const FOOTER_MAGIC: [u8; 8] = *b"PAFEAEND";

/// Longest clip id, in UTF-8 bytes.
pub(crate) const MAX_ID_BYTES: usize = 1024;

/// Largest number of mel bins.
pub(crate) const MAX_N_MELS: u32 = 1024;

/// Largest number of views per clip.
pub(crate) const MAX_VIEWS: u32 = 64;

/// Sections in a v1 file; a newer writer that keeps v1 readable may append more.
pub(crate) const V1_SECTION_COUNT: usize = 4;

/// How feature values are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// IEEE 754 binary32, 4 bytes a value: exact.
    F32,
    /// IEEE 754 binary16, 2 bytes a value: half the disk and page cache; log-mel values (roughly
    /// -20..10) keep about 3 significant digits (relative error <= 2^-11).
    F16,
}

impl Dtype {
    /// The code stored in the header.
    pub(crate) fn code(self) -> u32 {
        match self {
            Dtype::F32 => 1,
            Dtype::F16 => 2,
        }
    }

    /// The dtype of a header code; `None` for unknown codes.
    pub(crate) fn from_code(code: u32) -> Option<Dtype> {
        match code {
            1 => Some(Dtype::F32),
            2 => Some(Dtype::F16),
            _ => None,
        }
    }

    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 => 2,
        }
    }
}

/// The fixed file header at offset 0 (64 bytes), followed directly by `section_count`
/// [`pairalign_sections::SectionEntry`] records; the footer holds the CRC-32 of both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct Header {
    /// Always [`MAGIC`].
    pub magic: [u8; 8],
    /// Version of the writer that produced the file (>= 1).
    pub format_version: u32,
    /// Oldest reader version that can read the file; 1..=`format_version`.
    pub oldest_supported_version: u32,
    /// Mel bins per frame (the width of every matrix). 1..=1024.
    pub n_mels: u32,
    /// [`Dtype`] code of the data section: 1 = f32, 2 = f16.
    pub dtype: u32,
    /// Views stored for every clip. 1..=64.
    pub views_per_clip: u32,
    /// Entries in the section table. Exactly 4 in a v1 file; 4..=64
    /// ([`pairalign_sections::MAX_SECTION_COUNT`]) in a newer file that a v1 reader may read (it
    /// uses the first 4).
    pub section_count: u32,
    /// Number of clips. Any u64 that the clip table's length agrees with.
    pub clip_count: u64,
    /// Sum of the frame counts of all views of all clips.
    pub total_frames: u64,
    /// Zero in v1.
    pub reserved: [u8; 16],
}

/// One clip of the clip table (16 bytes), in clip order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct ClipEntry {
    /// Start of the id in the names section: the end of the previous clip's id (0 for the
    /// first).
    pub name_offset: u64,
    /// Id length in bytes, 1..=1024; the id is valid UTF-8. Ids are unique within a file.
    pub name_len: u32,
    /// Zero.
    pub reserved: u32,
}

/// One view of one clip (16 bytes); the view table holds `views_per_clip` of them per clip, clip
/// by clip (entry `clip * views_per_clip + view`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct ViewEntry {
    /// Start of the matrix in the data section, in values (not bytes): the end of the previous
    /// view's matrix (0 for the first).
    pub data_offset: u64,
    /// Frames (rows) of the matrix, >= 1; the matrix has `frames * n_mels` values, row-major.
    pub frames: u32,
    /// Zero.
    pub reserved: u32,
}

pub(crate) const HEADER_LEN: u64 = std::mem::size_of::<Header>() as u64;
pub(crate) const CLIP_ENTRY_LEN: u64 = std::mem::size_of::<ClipEntry>() as u64;
pub(crate) const VIEW_ENTRY_LEN: u64 = std::mem::size_of::<ViewEntry>() as u64;

/// The section layout of a cache file: the header above, then the section table, the sections
/// (each at a multiple of 8, so f32 and f16 data can be cast in place) and the footer that
/// pairalign-sections lays out, writes and checks.
pub(crate) const SECTION_LAYOUT: SectionLayout = SectionLayout::new(HEADER_LEN, FOOTER_MAGIC);

/// The sections of a v1 file, in file order (the index is the section-table slot). The data
/// comes first so that the writer can stream it before the tables are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    /// `[f32]` or `[f16]`: every view's matrix, concatenated in view-table order.
    Data = 0,
    /// `[ClipEntry; clip_count]`.
    Clips = 1,
    /// `[ViewEntry; clip_count * views_per_clip]`.
    Views = 2,
    /// UTF-8 clip ids, concatenated in clip order.
    Names = 3,
}

impl Section {
    pub(crate) const ALL: [Section; V1_SECTION_COUNT] = [
        Section::Data,
        Section::Clips,
        Section::Views,
        Section::Names,
    ];

    /// The name used in corruption errors and in datasets/README.md.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Section::Data => "data",
            Section::Clips => "clip table",
            Section::Views => "view table",
            Section::Names => "names",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_sizes_are_fixed() {
        assert_eq!(HEADER_LEN, 64);
        assert_eq!(CLIP_ENTRY_LEN, 16);
        assert_eq!(VIEW_ENTRY_LEN, 16);
    }

    #[test]
    fn placement_aligns_every_section() {
        let p = SECTION_LAYOUT
            .place_sections(&[6, 16, 32, 3])
            .expect("small lengths");
        assert_eq!(p.offsets, vec![128, 136, 152, 184]);
        assert_eq!(p.footer_offset, 192);
        assert_eq!(p.file_len, 192 + 16 + 16);
    }

    #[test]
    fn dtype_codes_round_trip() {
        for d in [Dtype::F32, Dtype::F16] {
            assert_eq!(Dtype::from_code(d.code()), Some(d));
        }
        assert_eq!(Dtype::from_code(0), None);
        assert_eq!(Dtype::from_code(3), None);
    }
}
