//! What the reader finds wrong with a sectioned file. The variants carry numbers, not a path or
//! section names: each format maps them into its own error, naming the file and its sections.

use crate::layout::MAX_SECTION_COUNT;

/// A damaged, truncated, crafted or too new file, found by [`crate::readable_version`],
/// [`crate::SectionLayout::read_table`] or [`crate::SectionTable::validate`]. Sections are named by
/// their index in the table.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The file needs a newer reader: its oldest supported version is above the reader's.
    #[error("format version {found} needs a reader of version {oldest_supported} or newer")]
    UnsupportedVersion {
        /// The file's format version.
        found: u32,
        /// The oldest reader version the file allows.
        oldest_supported: u32,
    },
    /// The file's oldest supported version is not in 1..=its format version.
    #[error(
        "oldest supported version {oldest_supported} is not in 1..={found} (the writer's version)"
    )]
    OldestVersionOutOfRange {
        /// The file's format version.
        found: u32,
        /// The oldest reader version the file states.
        oldest_supported: u32,
    },
    /// The header's section count is above [`MAX_SECTION_COUNT`]; the table is not read.
    #[error("section count {count} exceeds {MAX_SECTION_COUNT}")]
    TooManySections {
        /// The count the format header gave.
        count: u32,
    },
    /// The file cannot hold the header, the section table and the footer.
    #[error(
        "file is {file_len} bytes, shorter than header, section table and footer ({min_len} bytes)"
    )]
    Truncated {
        /// Length of the file.
        file_len: u64,
        /// Length of header, section table and footer together.
        min_len: u64,
    },
    /// The last 8 bytes are not the format's footer magic: the file is truncated or was not
    /// completely written.
    #[error("bad footer magic: the file is truncated or was not completely written")]
    FooterMagic,
    /// The CRC of the header and section table does not match the footer's.
    #[error("header checksum mismatch (stored {stored:08x}, computed {computed:08x})")]
    HeaderChecksum {
        /// The CRC in the footer.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
    /// The reserved word of the footer tail is not zero.
    #[error("reserved field of the footer is not zero")]
    FooterReserved,
    /// The section lengths add up to more than 2^64 bytes.
    #[error("section lengths {lens:?} overflow (the file is {file_len} bytes)")]
    LengthOverflow {
        /// The lengths in the table.
        lens: Vec<u64>,
        /// Length of the file.
        file_len: u64,
    },
    /// The placement of the table's lengths ends elsewhere than the file.
    #[error(
        "sections of lengths {lens:?} and the footer end at byte {end}, but the file is {file_len} \
         bytes"
    )]
    FileLength {
        /// The lengths in the table.
        lens: Vec<u64>,
        /// Where the footer would end.
        end: u64,
        /// Length of the file.
        file_len: u64,
    },
    /// A section is not where the placement rule puts it.
    #[error("section {index} at offset {offset} (length {len}), expected offset {expected}")]
    Misplaced {
        /// The section's index in the table.
        index: usize,
        /// The offset in the table.
        offset: u64,
        /// The length in the table.
        len: u64,
        /// The offset the placement rule gives.
        expected: u64,
    },
    /// A padding byte is not zero.
    #[error("byte {at} {gap} is not zero")]
    Padding {
        /// Offset of the first non-zero byte.
        at: u64,
        /// Which padding it is in.
        gap: Gap,
    },
    /// A section's bytes do not match its CRC in the footer.
    #[error("section {index}: checksum mismatch (stored {stored:08x}, computed {computed:08x})")]
    Checksum {
        /// The section's index in the table.
        index: usize,
        /// The CRC in the footer.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
}

/// The zero padding of a sectioned file, for [`Error::Padding`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gap {
    /// Between the previous section (or the section table) and section `.0`.
    BeforeSection(usize),
    /// Between the last section and the footer.
    BeforeFooter,
    /// After the section CRCs, inside the footer.
    InFooter,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Gap::BeforeSection(index) => write!(f, "before section {index}"),
            Gap::BeforeFooter => f.write_str("before the footer"),
            Gap::InFooter => f.write_str("after the section checksums"),
        }
    }
}

/// The result of reading a sectioned file.
pub type Result<T> = std::result::Result<T, Error>;
