//! The byte layout of a feature cache file: constants, the `#[repr(C)]` records cast from the
//! mapped bytes, and the placement rule shared by the writer and the reader (datasets/README.md
//! draws it).
//!
//! Every integer and float is little-endian. Records are read by casting the mapped bytes with
//! bytemuck, which only gives the right values on a little-endian host, so the crate refuses to
//! build on a big-endian one rather than misread files.

use bytemuck::{Pod, Zeroable};
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

/// Bound on `section_count` before the section table is sized from it.
pub(crate) const MAX_SECTION_COUNT: u32 = 64;

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
/// [`SectionEntry`] records; the footer holds the CRC-32 of both.
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
    /// Entries in the section table. Exactly 4 in a v1 file; 4..=64 in a newer file that a v1
    /// reader may read (it uses the first 4).
    pub section_count: u32,
    /// Number of clips. Any u64 that the clip table's length agrees with.
    pub clip_count: u64,
    /// Sum of the frame counts of all views of all clips.
    pub total_frames: u64,
    /// Zero in v1.
    pub reserved: [u8; 16],
}

/// One entry of the section table: where a section lies in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct SectionEntry {
    /// Byte offset from the start of the file; exactly where [`place_sections`] puts it.
    pub offset: u64,
    /// Length in bytes; a multiple of the section's element size.
    pub len: u64,
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

/// The last 16 bytes of the file. The per-section CRCs (`section_count` little-endian u32,
/// zero-padded to a multiple of 8 bytes) come right before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct FooterTail {
    /// CRC-32 (IEEE, crc32fast) of the header and the section table.
    pub header_crc: u32,
    /// Zero.
    pub reserved: u32,
    /// Always [`FOOTER_MAGIC`].
    pub magic: [u8; 8],
}

pub(crate) const HEADER_LEN: u64 = std::mem::size_of::<Header>() as u64;
pub(crate) const SECTION_ENTRY_LEN: u64 = std::mem::size_of::<SectionEntry>() as u64;
pub(crate) const CLIP_ENTRY_LEN: u64 = std::mem::size_of::<ClipEntry>() as u64;
pub(crate) const VIEW_ENTRY_LEN: u64 = std::mem::size_of::<ViewEntry>() as u64;
pub(crate) const FOOTER_TAIL_LEN: u64 = std::mem::size_of::<FooterTail>() as u64;

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

/// Rounds up to a multiple of 8; `None` on overflow.
pub(crate) fn align8(x: u64) -> Option<u64> {
    x.checked_add(7).map(|v| v & !7)
}

/// Where everything lies in a file with sections of the given lengths.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Placement {
    /// Offset of each section.
    pub offsets: Vec<u64>,
    /// Offset of the footer (the section CRCs).
    pub footer_offset: u64,
    /// Total file length.
    pub file_len: u64,
}

/// Length of the header plus the section table.
pub(crate) fn header_region_len(section_count: u64) -> u64 {
    HEADER_LEN + SECTION_ENTRY_LEN * section_count
}

/// Length of the footer: the CRCs padded to 8 bytes, then the tail.
pub(crate) fn footer_len(section_count: u64) -> u64 {
    ((4 * section_count + 7) & !7) + FOOTER_TAIL_LEN
}

/// The placement rule shared by writer and reader: sections follow the section table in table
/// order, each at the next multiple of 8 (so f32 and f16 data can be cast in place), the gaps
/// filled with zeros; the footer follows the last section at the next multiple of 8. `None` if
/// the lengths overflow u64.
pub(crate) fn place_sections(lens: &[u64]) -> Option<Placement> {
    let section_count = lens.len() as u64;
    let mut pos = header_region_len(section_count);
    let mut offsets = Vec::with_capacity(lens.len());
    for &len in lens {
        pos = align8(pos)?;
        offsets.push(pos);
        pos = pos.checked_add(len)?;
    }
    let footer_offset = align8(pos)?;
    let file_len = footer_offset.checked_add(footer_len(section_count))?;
    Some(Placement {
        offsets,
        footer_offset,
        file_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_sizes_are_fixed() {
        assert_eq!(HEADER_LEN, 64);
        assert_eq!(SECTION_ENTRY_LEN, 16);
        assert_eq!(CLIP_ENTRY_LEN, 16);
        assert_eq!(VIEW_ENTRY_LEN, 16);
        assert_eq!(FOOTER_TAIL_LEN, 16);
    }

    #[test]
    fn placement_aligns_every_section() {
        let p = place_sections(&[6, 16, 32, 3]).expect("small lengths");
        assert_eq!(p.offsets, vec![128, 136, 152, 184]);
        assert_eq!(p.footer_offset, 192);
        assert_eq!(p.file_len, 192 + 16 + 16);
        assert!(place_sections(&[u64::MAX, 1]).is_none());
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
