//! pairalign-sections: the section layout shared by PairAlign's binary file formats (the engine's
//! segment files and the training feature cache).
//!
//! A sectioned file is, in order and little-endian throughout:
//!
//! ```text
//! +--------------------+  0
//! | format header      |  header_len bytes, owned by the format (magic, version, counts)
//! +--------------------+
//! | section table      |  section_count x SectionEntry { offset: u64, len: u64 }
//! +--------------------+
//! | section 0          |  at the next multiple of 8, gap zero-filled
//! | ...                |
//! | section n-1        |  at the next multiple of 8, gap zero-filled
//! +--------------------+  next multiple of 8
//! | section CRCs       |  section_count x u32 (CRC-32, IEEE), zero-padded to a multiple of 8
//! | FooterTail         |  header_crc: u32, reserved: u32 = 0, magic: [u8; 8]
//! +--------------------+  file length
//! ```
//!
//! `header_crc` covers the format header and the section table. Every byte of the file is
//! either checked by a CRC or is zero padding that the reader checks, so any damage is found.
//!
//! The crate owns the placement rule ([`SectionLayout::place_sections`]), the streaming
//! [`SectionWriter`], the validating reader ([`SectionLayout::read_table`], then
//! [`SectionTable::validate`]) and the version rule ([`readable_version`]). A format keeps its
//! header, its records and what each section means, and maps this crate's [`Error`] into its own
//! error type, naming its file and its sections.

mod error;
mod layout;
mod reader;
mod version;
mod writer;

pub use error::{Error, Gap, Result};
pub use layout::{
    align8, footer_len, FooterTail, Placement, SectionEntry, SectionLayout, FOOTER_TAIL_LEN,
    MAX_SECTION_COUNT, SECTION_ENTRY_LEN,
};
pub use reader::SectionTable;
pub use version::readable_version;
pub use writer::SectionWriter;

#[cfg(target_endian = "big")]
compile_error!(
    "sectioned files are read by casting little-endian bytes; big-endian hosts are not supported"
);
