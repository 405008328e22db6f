//! The byte layout every sectioned file shares: the `#[repr(C)]` section-table entry and footer
//! tail, cast with bytemuck, and the placement rule that the writer and the reader both follow.

use bytemuck::{Pod, Zeroable};

/// Bound on a file's section count, checked before a section table is sized from it.
pub const MAX_SECTION_COUNT: u32 = 64;

/// Longest format header a [`SectionLayout`] accepts; far above any real one (64 bytes), and low
/// enough that the header region's length can never overflow.
const MAX_HEADER_LEN: u64 = 1 << 20;

/// One entry of the section table (16 bytes): where a section lies in the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct SectionEntry {
    /// Byte offset from the start of the file; a multiple of 8, and exactly where
    /// [`SectionLayout::place_sections`] puts the section.
    pub offset: u64,
    /// Length in bytes; any u64 that the file holds (the format bounds it further, e.g. to a
    /// multiple of its element size).
    pub len: u64,
}

impl SectionEntry {
    /// The section's bytes as a range of the file. Only meaningful for an entry that
    /// [`crate::SectionTable::validate`] accepted: then it lies inside the file, so neither the
    /// sum nor the conversions can overflow.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset as usize..self.offset.saturating_add(self.len) as usize
    }
}

/// The last 16 bytes of the file. The per-section CRCs (`section_count` little-endian u32,
/// zero-padded to a multiple of 8 bytes) come right before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct FooterTail {
    /// CRC-32 (IEEE, crc32fast) of the format header and the section table.
    pub header_crc: u32,
    /// Zero.
    pub reserved: u32,
    /// Always the format's footer magic ([`SectionLayout::footer_magic`]); a truncated file loses
    /// it.
    pub magic: [u8; 8],
}

/// Bytes of one [`SectionEntry`].
pub const SECTION_ENTRY_LEN: u64 = std::mem::size_of::<SectionEntry>() as u64;

/// Bytes of the [`FooterTail`].
pub const FOOTER_TAIL_LEN: u64 = std::mem::size_of::<FooterTail>() as u64;

/// The section layout of one format's files: everything around and between its sections (the
/// section table, the alignment padding and the checksummed footer), set by the two things a
/// format chooses, the length of its header (which starts with the format's own magic and is opaque
/// here) and the magic that ends its files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionLayout {
    header_len: u64,
    footer_magic: [u8; 8],
}

impl SectionLayout {
    /// The layout of a format whose header is `header_len` bytes and whose files end with
    /// `footer_magic`. Meant for a `const`, where a bad length fails the build.
    ///
    /// # Panics
    ///
    /// If `header_len` exceeds 1 MiB (a programming error, not a property of a file).
    pub const fn new(header_len: u64, footer_magic: [u8; 8]) -> SectionLayout {
        assert!(
            header_len <= MAX_HEADER_LEN,
            "a format header is at most 1 MiB"
        );
        SectionLayout {
            header_len,
            footer_magic,
        }
    }

    /// Bytes of the format header at offset 0.
    pub const fn header_len(&self) -> u64 {
        self.header_len
    }

    /// The last 8 bytes of every file of the format.
    pub const fn footer_magic(&self) -> [u8; 8] {
        self.footer_magic
    }

    /// Length of the header plus a section table of `section_count` entries.
    pub const fn header_region_len(&self, section_count: u32) -> u64 {
        // At most 2^20 + 16 * (2^32 - 1): no overflow.
        self.header_len + SECTION_ENTRY_LEN * section_count as u64
    }

    /// The placement rule shared by writer and reader: sections follow the section table in
    /// table order, each at the next multiple of 8 (so that any element type up to 8 bytes can
    /// be cast in place), the gaps filled with zeros; the footer follows the last section at the
    /// next multiple of 8. `None` if there are more than `u32::MAX` sections or the lengths
    /// overflow u64.
    pub fn place_sections(&self, lens: &[u64]) -> Option<Placement> {
        let section_count = u32::try_from(lens.len()).ok()?;
        let mut pos = self.header_region_len(section_count);
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
}

/// Where everything lies in a file with sections of given lengths
/// ([`SectionLayout::place_sections`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Offset of each section, in table order.
    pub offsets: Vec<u64>,
    /// Offset of the footer (the section CRCs).
    pub footer_offset: u64,
    /// Total file length.
    pub file_len: u64,
}

/// Rounds up to a multiple of 8; `None` on overflow.
pub fn align8(x: u64) -> Option<u64> {
    x.checked_add(7).map(|v| v & !7)
}

/// Length of the footer of a file with `section_count` sections: the CRCs padded to 8 bytes,
/// then the [`FooterTail`].
pub const fn footer_len(section_count: u32) -> u64 {
    // At most 4 * (2^32 - 1) + 7 + 16: no overflow.
    ((4 * section_count as u64 + 7) & !7) + FOOTER_TAIL_LEN
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A header that is not a multiple of 8, unlike both formats' 64 bytes.
    const LAYOUT: SectionLayout = SectionLayout::new(20, *b"TESTEND\0");

    #[test]
    fn record_sizes_are_fixed() {
        assert_eq!(SECTION_ENTRY_LEN, 16);
        assert_eq!(FOOTER_TAIL_LEN, 16);
    }

    #[test]
    fn placement_aligns_every_section() {
        // Header region 20 + 3 * 16 = 68 bytes.
        let p = LAYOUT.place_sections(&[3, 0, 9]).expect("small lengths");
        assert_eq!(p.offsets, vec![72, 80, 80]);
        assert_eq!(p.footer_offset, 96);
        assert_eq!(p.file_len, 96 + 16 + 16);
        assert!(LAYOUT.place_sections(&[u64::MAX, 1]).is_none());
        assert!(LAYOUT.place_sections(&[u64::MAX - 50]).is_none());
    }

    #[test]
    fn footer_len_pads_the_checksums() {
        assert_eq!(footer_len(0), 16);
        assert_eq!(footer_len(1), 24);
        assert_eq!(footer_len(2), 24);
        assert_eq!(footer_len(3), 32);
        assert_eq!(footer_len(u32::MAX), 4 * u64::from(u32::MAX) + 4 + 16);
    }

    #[test]
    fn align8_rounds_up() {
        assert_eq!(align8(0), Some(0));
        assert_eq!(align8(1), Some(8));
        assert_eq!(align8(8), Some(8));
        assert_eq!(align8(u64::MAX - 7), Some(u64::MAX - 7));
        assert_eq!(align8(u64::MAX - 6), None);
    }

    /// The placement computed in u128, where nothing overflows: the oracle.
    fn oracle(header_len: u64, lens: &[u64]) -> Option<(Vec<u64>, u64, u64)> {
        let up = |x: u128| x.div_ceil(8) * 8;
        let n = lens.len() as u128;
        let mut pos = u128::from(header_len) + 16 * n;
        let mut offsets = Vec::new();
        for &len in lens {
            pos = up(pos);
            offsets.push(u64::try_from(pos).ok()?);
            pos += u128::from(len);
        }
        let footer = up(pos);
        let end = footer + up(4 * n) + 16;
        Some((
            offsets,
            u64::try_from(footer).ok()?,
            u64::try_from(end).ok()?,
        ))
    }

    fn lens() -> impl Strategy<Value = Vec<u64>> {
        let len = prop_oneof![
            4 => 0u64..100,
            1 => any::<u64>(),
            1 => (u64::MAX / 4)..u64::MAX / 2,
        ];
        proptest::collection::vec(len, 0..12)
    }

    proptest! {
        #[test]
        fn placement_matches_the_oracle(header_len in 0u64..200, lens in lens()) {
            let layout = SectionLayout::new(header_len, *b"TESTEND\0");
            let placed = layout
                .place_sections(&lens)
                .map(|p| (p.offsets, p.footer_offset, p.file_len));
            prop_assert_eq!(placed, oracle(header_len, &lens));
        }

        #[test]
        fn sections_are_aligned_ordered_and_never_overlap(
            header_len in 0u64..200,
            lens in proptest::collection::vec(0u64..1 << 40, 0..20),
        ) {
            let layout = SectionLayout::new(header_len, *b"TESTEND\0");
            let n = lens.len() as u32;
            let p = layout.place_sections(&lens).expect("small lengths cannot overflow");
            let mut end = layout.header_region_len(n);
            for (&offset, &len) in p.offsets.iter().zip(&lens) {
                prop_assert_eq!(offset % 8, 0);
                prop_assert!(offset >= end, "overlap at {offset}");
                prop_assert!(offset - end < 8, "gap of {} bytes", offset - end);
                end = offset + len;
            }
            prop_assert_eq!(p.footer_offset % 8, 0);
            prop_assert!(p.footer_offset >= end && p.footer_offset - end < 8);
            prop_assert_eq!(p.file_len, p.footer_offset + footer_len(n));
            prop_assert_eq!(p.file_len % 8, 0);
        }
    }
}
