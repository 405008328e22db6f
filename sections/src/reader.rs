//! Reads and validates the section layout of a file in two steps, so that a format can check its
//! own header in between: [`SectionLayout::read_table`] authenticates the header region against the
//! footer, [`SectionTable::validate`] checks the table against the file and every section's CRC.

use crate::error::{Error, Gap, Result};
use crate::layout::{
    footer_len, FooterTail, SectionEntry, SectionLayout, FOOTER_TAIL_LEN, MAX_SECTION_COUNT,
    SECTION_ENTRY_LEN,
};

impl SectionLayout {
    /// Checks the envelope of `bytes`, a whole file whose format header gave `section_count`: the
    /// count is at most [`MAX_SECTION_COUNT`], the file holds header, table and footer, the footer
    /// ends with the format's magic, the CRC of the header and table matches, and the footer's
    /// reserved word is zero. The format header itself is opaque here; once this returns, the
    /// format may trust its fields.
    pub fn read_table<'a>(&self, bytes: &'a [u8], section_count: u32) -> Result<SectionTable<'a>> {
        if section_count > MAX_SECTION_COUNT {
            return Err(Error::TooManySections {
                count: section_count,
            });
        }
        let file_len = bytes.len() as u64;
        let region_len = self.header_region_len(section_count);
        let min_len = region_len + footer_len(section_count);
        if file_len < min_len {
            return Err(Error::Truncated { file_len, min_len });
        }
        // Both slices are in bounds: the file holds at least the region and the footer.
        let tail: FooterTail =
            bytemuck::pod_read_unaligned(&bytes[(file_len - FOOTER_TAIL_LEN) as usize..]);
        if tail.magic != self.footer_magic() {
            return Err(Error::FooterMagic);
        }
        let region = &bytes[..region_len as usize];
        let computed = crc32fast::hash(region);
        if computed != tail.header_crc {
            return Err(Error::HeaderChecksum {
                stored: tail.header_crc,
                computed,
            });
        }
        if tail.reserved != 0 {
            return Err(Error::FooterReserved);
        }
        let entries = region[self.header_len() as usize..]
            .chunks_exact(SECTION_ENTRY_LEN as usize)
            .map(bytemuck::pod_read_unaligned)
            .collect();
        Ok(SectionTable {
            layout: *self,
            bytes,
            entries,
        })
    }
}

/// The section table of a file whose header region matched its checksum: authentic, but not yet
/// checked against the file. [`SectionTable::validate`] does that.
pub struct SectionTable<'a> {
    layout: SectionLayout,
    bytes: &'a [u8],
    entries: Vec<SectionEntry>,
}

impl std::fmt::Debug for SectionTable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SectionTable")
            .field("layout", &self.layout)
            .field("file_len", &self.bytes.len())
            .field("entries", &self.entries)
            .finish()
    }
}

impl SectionTable<'_> {
    /// Checks the table against the file and returns it: the sections and the footer lie exactly
    /// where the placement rule puts them for the table's lengths and end where the file ends (so
    /// they are in bounds, aligned, in order and never overlap), every padding byte is zero (so
    /// every byte of the file is checked), and every section matches its CRC. The checks run in
    /// that order, the whole-file CRCs last. Each error names the section or gap at fault.
    pub fn validate(self) -> Result<Vec<SectionEntry>> {
        let layout = self.layout;
        let bytes = self.bytes;
        let entries = self.validate_layout()?;
        layout.check_checksums(bytes, &entries)?;
        Ok(entries)
    }

    /// [`SectionTable::validate`] without the sections' CRCs: placement, lengths and zero
    /// padding only, which reads the header region, the gaps and the footer, not the sections.
    /// A reader that defers the CRCs (to a section's first use, or a background check) calls
    /// [`SectionLayout::check_checksums`] before it trusts the sections' bytes.
    pub fn validate_layout(self) -> Result<Vec<SectionEntry>> {
        let bytes = self.bytes;
        let file_len = bytes.len() as u64;
        let lens: Vec<u64> = self.entries.iter().map(|e| e.len).collect();
        let Some(placement) = self.layout.place_sections(&lens) else {
            return Err(Error::LengthOverflow { lens, file_len });
        };
        if placement.file_len != file_len {
            return Err(Error::FileLength {
                lens,
                end: placement.file_len,
                file_len,
            });
        }
        for (index, (entry, &expected)) in self.entries.iter().zip(&placement.offsets).enumerate() {
            if entry.offset != expected {
                return Err(Error::Misplaced {
                    index,
                    offset: entry.offset,
                    len: entry.len,
                    expected,
                });
            }
        }

        // From here on every range lies inside the file: the placement ends where it ends.
        let section_count = lens.len() as u32;
        let mut gap_start = self.layout.header_region_len(section_count);
        for (index, entry) in self.entries.iter().enumerate() {
            check_zero(bytes, gap_start, entry.offset, Gap::BeforeSection(index))?;
            gap_start = entry.offset + entry.len;
        }
        check_zero(bytes, gap_start, placement.footer_offset, Gap::BeforeFooter)?;
        let crcs_end = placement.footer_offset + 4 * u64::from(section_count);
        check_zero(bytes, crcs_end, file_len - FOOTER_TAIL_LEN, Gap::InFooter)?;
        Ok(self.entries)
    }
}

impl SectionLayout {
    /// Checks every section of `bytes` against its CRC in the footer; `entries` are the table
    /// that [`SectionTable::validate_layout`] returned for these bytes (so every range and the
    /// footer lie inside them). The first section whose CRC differs is the error.
    pub fn check_checksums(&self, bytes: &[u8], entries: &[SectionEntry]) -> Result<()> {
        let lens: Vec<u64> = entries.iter().map(|e| e.len).collect();
        let file_len = bytes.len() as u64;
        let placement = self
            .place_sections(&lens)
            .filter(|p| p.file_len == file_len)
            .ok_or(Error::LengthOverflow {
                lens: lens.clone(),
                file_len,
            })?;
        let crcs_start = placement.footer_offset as usize;
        let crcs = bytes
            .get(crcs_start..crcs_start + 4 * entries.len())
            .ok_or(Error::LengthOverflow { lens, file_len })?;
        for (index, (entry, stored)) in entries.iter().zip(crcs.chunks_exact(4)).enumerate() {
            let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
            let section = bytes.get(entry.range()).ok_or(Error::LengthOverflow {
                lens: entries.iter().map(|e| e.len).collect(),
                file_len,
            })?;
            let computed = crc32fast::hash(section);
            if stored != computed {
                return Err(Error::Checksum {
                    index,
                    stored,
                    computed,
                });
            }
        }
        Ok(())
    }
}

/// `bytes[start..end]` is all zeros, else the error for its first non-zero byte.
fn check_zero(bytes: &[u8], start: u64, end: u64, gap: Gap) -> Result<()> {
    let padding = &bytes[start as usize..end as usize];
    match padding.iter().position(|&b| b != 0) {
        Some(i) => Err(Error::Padding {
            at: start + i as u64,
            gap,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use proptest::prelude::*;

    use super::*;
    use crate::layout::align8;
    use crate::writer::SectionWriter;

    const HEADER_LEN: u64 = 24;
    const LAYOUT: SectionLayout = SectionLayout::new(HEADER_LEN, *b"TESTEND\0");

    /// A file with `sections` as its sections and an arbitrary header, from the writer.
    fn file(sections: &[Vec<u8>]) -> Vec<u8> {
        let mut out = SectionWriter::new(Cursor::new(Vec::new()), LAYOUT, sections.len() as u32)
            .expect("writer");
        for s in sections {
            out.begin_section().expect("begin");
            out.write_all(s).expect("write");
            out.end_section().expect("end");
        }
        let header: Vec<u8> = (0..HEADER_LEN as u8)
            .map(|b| b.wrapping_mul(37) | 1)
            .collect();
        let (cursor, len) = out.finish(&header).expect("finish");
        let bytes = cursor.into_inner();
        assert_eq!(len, bytes.len() as u64);
        bytes
    }

    fn open(bytes: &[u8], section_count: u32) -> Result<Vec<SectionEntry>> {
        LAYOUT.read_table(bytes, section_count)?.validate()
    }

    fn sample() -> Vec<Vec<u8>> {
        vec![
            b"abc".to_vec(),
            Vec::new(),
            (1..=13).collect(),
            vec![0xFF; 8],
            b"z".to_vec(),
        ]
    }

    fn read_entry(bytes: &[u8], index: usize) -> SectionEntry {
        let at = (HEADER_LEN + SECTION_ENTRY_LEN * index as u64) as usize;
        bytemuck::pod_read_unaligned(&bytes[at..at + SECTION_ENTRY_LEN as usize])
    }

    fn write_entry(bytes: &mut [u8], index: usize, entry: SectionEntry) {
        let at = (HEADER_LEN + SECTION_ENTRY_LEN * index as u64) as usize;
        bytes[at..at + SECTION_ENTRY_LEN as usize].copy_from_slice(bytemuck::bytes_of(&entry));
    }

    /// Recomputes the header CRC, so that a test reaches the checks behind it.
    fn reseal(bytes: &mut [u8], section_count: u32) {
        let crc = crc32fast::hash(&bytes[..LAYOUT.header_region_len(section_count) as usize]);
        let at = bytes.len() - FOOTER_TAIL_LEN as usize;
        bytes[at..at + 4].copy_from_slice(&crc.to_le_bytes());
    }

    /// What damage to byte `at` of a valid file must be reported as: the oracle, from the
    /// placement alone.
    fn expected_error(
        bytes: &[u8],
        at: usize,
        section_count: u32,
    ) -> std::mem::Discriminant<Error> {
        let at = at as u64;
        let n = section_count as usize;
        let file_len = bytes.len() as u64;
        let entries: Vec<SectionEntry> = (0..n).map(|i| read_entry(bytes, i)).collect();
        let footer_offset = file_len - footer_len(section_count);
        let kind = if at < LAYOUT.header_region_len(section_count) {
            Error::HeaderChecksum {
                stored: 0,
                computed: 0,
            }
        } else if at >= file_len - 8 {
            Error::FooterMagic
        } else if at >= file_len - 12 {
            Error::FooterReserved
        } else if at >= file_len - 16 {
            Error::HeaderChecksum {
                stored: 0,
                computed: 0,
            }
        } else if let Some(index) = entries
            .iter()
            .position(|e| (e.offset..e.offset + e.len).contains(&at))
        {
            Error::Checksum {
                index,
                stored: 0,
                computed: 0,
            }
        } else if (footer_offset..footer_offset + 4 * n as u64).contains(&at) {
            Error::Checksum {
                index: ((at - footer_offset) / 4) as usize,
                stored: 0,
                computed: 0,
            }
        } else {
            Error::Padding {
                at,
                gap: Gap::InFooter,
            }
        };
        std::mem::discriminant(&kind)
    }

    #[test]
    fn a_written_file_validates_and_holds_its_sections() {
        let sections = sample();
        let bytes = file(&sections);
        let entries = open(&bytes, 5).expect("valid file");
        for (entry, section) in entries.iter().zip(&sections) {
            assert_eq!(&bytes[entry.range()], &section[..]);
        }
        assert_eq!(
            entries.iter().map(|e| e.offset).collect::<Vec<_>>(),
            [104, 112, 112, 128, 136]
        );
    }

    #[test]
    fn every_flipped_byte_is_refused_with_the_error_of_its_place() {
        let bytes = file(&sample());
        for mask in [0x01, 0x80, 0xFF] {
            for at in 0..bytes.len() {
                let mut damaged = bytes.clone();
                damaged[at] ^= mask;
                let err = open(&damaged, 5).expect_err("damage must be found");
                assert_eq!(
                    std::mem::discriminant(&err),
                    expected_error(&bytes, at, 5),
                    "byte {at} mask {mask:#x}: {err}"
                );
                match err {
                    Error::Checksum { index, .. } => {
                        let e = read_entry(&bytes, index);
                        let crc_at = bytes.len() as u64 - footer_len(5) + 4 * index as u64;
                        assert!(
                            (e.offset..e.offset + e.len).contains(&(at as u64))
                                || (crc_at..crc_at + 4).contains(&(at as u64)),
                            "byte {at} blamed on section {index}"
                        );
                    }
                    Error::Padding { at: found, .. } => assert_eq!(found, at as u64),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = file(&sample());
        for len in 0..bytes.len() {
            let err = open(&bytes[..len], 5).expect_err("a truncated file must not open");
            assert!(
                matches!(err, Error::Truncated { .. } | Error::FooterMagic),
                "length {len}: {err}"
            );
        }
    }

    #[test]
    fn a_wrong_section_count_is_refused() {
        let bytes = file(&sample());
        for count in (0..5).chain(6..=MAX_SECTION_COUNT + 1) {
            assert!(open(&bytes, count).is_err(), "count {count}");
        }
        assert_eq!(
            open(&bytes, MAX_SECTION_COUNT + 1),
            Err(Error::TooManySections {
                count: MAX_SECTION_COUNT + 1
            })
        );
    }

    #[test]
    fn crafted_tables_with_valid_checksums_are_refused() {
        let bytes = file(&sample());
        let crafted = |index: usize, edit: fn(&mut SectionEntry)| {
            let mut b = bytes.clone();
            let mut e = read_entry(&b, index);
            edit(&mut e);
            write_entry(&mut b, index, e);
            reseal(&mut b, 5);
            open(&b, 5).expect_err("crafted table must not validate")
        };
        assert_eq!(
            crafted(0, |e| e.len = u64::MAX),
            Error::LengthOverflow {
                lens: vec![u64::MAX, 0, 13, 8, 1],
                file_len: bytes.len() as u64
            }
        );
        assert_eq!(
            crafted(4, |e| e.len += 8),
            Error::FileLength {
                lens: vec![3, 0, 13, 8, 9],
                end: bytes.len() as u64 + 8,
                file_len: bytes.len() as u64
            }
        );
        // Moved onto its neighbour: the lengths still add up, the offset does not.
        assert_eq!(
            crafted(3, |e| e.offset -= 8),
            Error::Misplaced {
                index: 3,
                offset: 120,
                len: 8,
                expected: 128
            }
        );
        assert!(matches!(
            crafted(2, |e| e.offset = u64::MAX - 3),
            Error::Misplaced { index: 2, .. }
        ));
        // Shorter by one byte at the same place: that byte becomes padding, which is not zero.
        assert_eq!(
            crafted(2, |e| e.len -= 1),
            Error::Padding {
                at: 112 + 12,
                gap: Gap::BeforeSection(3)
            }
        );
    }

    #[test]
    fn a_file_without_sections_validates() {
        let bytes = file(&[]);
        assert_eq!(bytes.len() as u64, align8(HEADER_LEN).expect("small") + 16);
        assert_eq!(open(&bytes, 0), Ok(Vec::new()));
    }

    proptest! {
        /// Random files: any one damaged byte or any shorter length is refused, never a panic,
        /// and the undamaged file gives back its sections.
        #[test]
        fn damaged_random_files_are_refused(
            sections in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..6),
            at in any::<prop::sample::Index>(),
            mask in 1u8..=255,
            cut in any::<prop::sample::Index>(),
        ) {
            let bytes = file(&sections);
            let n = sections.len() as u32;
            let entries = open(&bytes, n).expect("valid file");
            for (entry, section) in entries.iter().zip(&sections) {
                prop_assert_eq!(&bytes[entry.range()], &section[..]);
            }
            let at = at.index(bytes.len());
            let mut damaged = bytes.clone();
            damaged[at] ^= mask;
            let err = open(&damaged, n).expect_err("damage must be found");
            prop_assert_eq!(std::mem::discriminant(&err), expected_error(&bytes, at, n));
            prop_assert!(open(&bytes[..cut.index(bytes.len())], n).is_err());
        }

        /// Arbitrary bytes and counts: an error or a table, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            count in 0u32..80,
        ) {
            let _ = open(&bytes, count);
        }
    }
}
