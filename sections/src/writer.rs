//! Streams a sectioned file: zeros where the header region goes, then the sections in table order
//! with their CRCs, then the footer, and finally the header and section table at offset 0.

use std::io::{self, Seek, SeekFrom, Write};

use crate::layout::{FooterTail, SectionEntry, SectionLayout, MAX_SECTION_COUNT};

/// Writes the sections of one file in table order, each padded to the next multiple of 8 and
/// checksummed as it is written, then the footer and the header region ([`SectionWriter::finish`]).
///
/// Sections are written with [`begin_section`](SectionWriter::begin_section),
/// [`write_all`](SectionWriter::write_all) and [`end_section`](SectionWriter::end_section). A
/// section whose bytes are written through another handle is [`skip`](SectionWriter::skip)ped and
/// its CRC given with [`set_checksum`](SectionWriter::set_checksum). Misuse (a section too many,
/// a missing CRC) is an `InvalidInput` error, not a panic.
pub struct SectionWriter<W> {
    inner: W,
    layout: SectionLayout,
    section_count: u32,
    /// Bytes written or skipped so far: the offset of the next byte.
    pos: u64,
    entries: Vec<SectionEntry>,
    /// `None` for a skipped section until its CRC is set.
    checksums: Vec<Option<u32>>,
    open: Option<OpenSection>,
}

/// The section being written.
struct OpenSection {
    offset: u64,
    /// `None` once bytes were skipped: the caller supplies the CRC.
    crc: Option<crc32fast::Hasher>,
}

impl<W> std::fmt::Debug for SectionWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SectionWriter")
            .field("layout", &self.layout)
            .field("section_count", &self.section_count)
            .field("pos", &self.pos)
            .field("entries", &self.entries)
            .field("open", &self.open.as_ref().map(|s| s.offset))
            .finish()
    }
}

fn misuse(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

impl<W: Write + Seek> SectionWriter<W> {
    /// Starts a file of `layout` with `section_count` sections at the current position of
    /// `inner`, which must be the start of an empty file: writes zeros where the header and the
    /// section table go, so that an interrupted write never passes for a finished file.
    pub fn new(mut inner: W, layout: SectionLayout, section_count: u32) -> io::Result<Self> {
        if section_count > MAX_SECTION_COUNT {
            return Err(misuse(format!(
                "{section_count} sections, more than {MAX_SECTION_COUNT}"
            )));
        }
        let region_len = layout.header_region_len(section_count);
        inner.write_all(&vec![0u8; region_len as usize])?;
        Ok(SectionWriter {
            inner,
            layout,
            section_count,
            pos: region_len,
            entries: Vec::with_capacity(section_count as usize),
            checksums: Vec::with_capacity(section_count as usize),
            open: None,
        })
    }

    /// Offset of the next byte.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Table index of the section that the next [`SectionWriter::begin_section`] opens (the
    /// number of sections begun so far, the open one included).
    pub fn next_section(&self) -> usize {
        self.entries.len() + usize::from(self.open.is_some())
    }

    /// Pads with zeros to the next multiple of 8 and opens the next section there; returns its
    /// offset.
    pub fn begin_section(&mut self) -> io::Result<u64> {
        if self.open.is_some() {
            return Err(misuse("a section is already open".into()));
        }
        if self.entries.len() >= self.section_count as usize {
            return Err(misuse(format!(
                "all {} sections are written",
                self.section_count
            )));
        }
        self.pad()?;
        self.open = Some(OpenSection {
            offset: self.pos,
            crc: Some(crc32fast::Hasher::new()),
        });
        Ok(self.pos)
    }

    /// Appends `bytes` to the open section and its CRC.
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(open) = self.open.as_mut() else {
            return Err(misuse("no section is open".into()));
        };
        self.inner.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        if let Some(crc) = open.crc.as_mut() {
            crc.update(bytes);
        }
        Ok(())
    }

    /// Moves past `len` bytes of the open section that the caller writes through another handle
    /// (they read as zeros until then). The section's CRC must then be given with
    /// [`SectionWriter::set_checksum`].
    pub fn skip(&mut self, len: u64) -> io::Result<()> {
        let Some(open) = self.open.as_mut() else {
            return Err(misuse("no section is open".into()));
        };
        open.crc = None;
        if len > 0 {
            let delta = i64::try_from(len).map_err(io::Error::other)?;
            self.inner.seek(SeekFrom::Current(delta))?;
            self.pos += len;
        }
        Ok(())
    }

    /// Closes the open section and returns its table entry.
    pub fn end_section(&mut self) -> io::Result<SectionEntry> {
        let Some(open) = self.open.take() else {
            return Err(misuse("no section is open".into()));
        };
        let entry = SectionEntry {
            offset: open.offset,
            len: self.pos - open.offset,
        };
        self.entries.push(entry);
        self.checksums
            .push(open.crc.map(crc32fast::Hasher::finalize));
        Ok(entry)
    }

    /// Sets the CRC-32 of section `index`, one that was [`skip`](SectionWriter::skip)ped.
    pub fn set_checksum(&mut self, index: usize, crc: u32) -> io::Result<()> {
        let Some(slot) = self.checksums.get_mut(index) else {
            return Err(misuse(format!("section {index} is not written yet")));
        };
        *slot = Some(crc);
        Ok(())
    }

    /// Writes the footer, then `header` (the format header, `layout.header_len()` bytes) and the
    /// section table at offset 0. Returns `inner`, positioned after the header region and not
    /// flushed or synced, and the file length. Checks that every section lies where the placement
    /// rule puts it, which is what the reader checks.
    pub fn finish(mut self, header: &[u8]) -> io::Result<(W, u64)> {
        if self.open.is_some() {
            return Err(misuse("a section is still open".into()));
        }
        if self.entries.len() != self.section_count as usize {
            return Err(misuse(format!(
                "{} of {} sections written",
                self.entries.len(),
                self.section_count
            )));
        }
        if header.len() as u64 != self.layout.header_len() {
            return Err(misuse(format!(
                "header of {} bytes, the layout has {}",
                header.len(),
                self.layout.header_len()
            )));
        }
        let mut crcs = Vec::with_capacity(self.checksums.len());
        for (index, crc) in self.checksums.iter().enumerate() {
            let crc = crc.ok_or_else(|| misuse(format!("section {index} has no checksum")))?;
            crcs.push(crc);
        }

        let lens: Vec<u64> = self.entries.iter().map(|e| e.len).collect();
        let placement = self
            .layout
            .place_sections(&lens)
            .ok_or_else(|| io::Error::other("file larger than 2^64 bytes"))?;
        if self.entries.iter().map(|e| e.offset).ne(placement.offsets) {
            return Err(io::Error::other(
                "section placement disagrees with the format rule (a bug)",
            ));
        }

        self.pad()?;
        for crc in crcs {
            self.put(&crc.to_le_bytes())?;
        }
        self.pad()?;
        let mut header_region =
            Vec::with_capacity(self.layout.header_region_len(self.section_count) as usize);
        header_region.extend_from_slice(header);
        header_region.extend_from_slice(bytemuck::cast_slice(&self.entries));
        let tail = FooterTail {
            header_crc: crc32fast::hash(&header_region),
            reserved: 0,
            magic: self.layout.footer_magic(),
        };
        self.put(bytemuck::bytes_of(&tail))?;
        if self.pos != placement.file_len {
            return Err(io::Error::other(
                "file length disagrees with the format rule (a bug)",
            ));
        }

        let mut inner = self.inner;
        inner.seek(SeekFrom::Start(0))?;
        inner.write_all(&header_region)?;
        Ok((inner, placement.file_len))
    }

    /// Writes bytes outside any section.
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Pads with zeros to the next multiple of 8.
    fn pad(&mut self) -> io::Result<()> {
        let pad = (8 - self.pos % 8) % 8;
        self.put(&[0u8; 8][..pad as usize])
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use proptest::prelude::*;

    use super::*;
    use crate::layout::footer_len;

    const LAYOUT: SectionLayout = SectionLayout::new(16, *b"TESTEND\0");

    fn writer(section_count: u32) -> SectionWriter<Cursor<Vec<u8>>> {
        SectionWriter::new(Cursor::new(Vec::new()), LAYOUT, section_count).expect("writer")
    }

    /// The file built by hand from the format description: the oracle for the writer.
    fn by_hand(header: &[u8], sections: &[Vec<u8>]) -> Vec<u8> {
        let n = sections.len();
        let mut body = vec![0u8; 16 + 16 * n];
        let mut table = Vec::new();
        for s in sections {
            body.resize(body.len().next_multiple_of(8), 0);
            table.extend_from_slice(&(body.len() as u64).to_le_bytes());
            table.extend_from_slice(&(s.len() as u64).to_le_bytes());
            body.extend_from_slice(s);
        }
        body.resize(body.len().next_multiple_of(8), 0);
        for s in sections {
            body.extend_from_slice(&crc32fast::hash(s).to_le_bytes());
        }
        body.resize(body.len().next_multiple_of(8), 0);
        let mut region = header.to_vec();
        region.extend_from_slice(&table);
        body.extend_from_slice(&crc32fast::hash(&region).to_le_bytes());
        body.extend_from_slice(&[0; 4]);
        body.extend_from_slice(b"TESTEND\0");
        body[..region.len()].copy_from_slice(&region);
        body
    }

    proptest! {
        #[test]
        fn writes_what_the_format_describes(
            header in proptest::collection::vec(any::<u8>(), 16),
            sections in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..30), 0..6),
        ) {
            let mut out = writer(sections.len() as u32);
            for s in &sections {
                let offset = out.begin_section().expect("begin");
                prop_assert_eq!(offset % 8, 0);
                // In two pieces: the CRC runs over the whole section.
                out.write_all(&s[..s.len() / 2]).expect("write");
                out.write_all(&s[s.len() / 2..]).expect("write");
                let entry = out.end_section().expect("end");
                prop_assert_eq!(entry, SectionEntry { offset, len: s.len() as u64 });
            }
            let (cursor, len) = out.finish(&header).expect("finish");
            let bytes = cursor.into_inner();
            prop_assert_eq!(len, bytes.len() as u64);
            prop_assert_eq!(bytes, by_hand(&header, &sections));
        }
    }

    #[test]
    fn a_skipped_section_takes_its_checksum_from_the_caller() {
        let mut out = writer(2);
        out.begin_section().expect("begin");
        let offset = out.position();
        out.skip(5).expect("skip");
        out.end_section().expect("end");
        out.begin_section().expect("begin");
        out.write_all(b"xyz").expect("write");
        out.end_section().expect("end");
        out.set_checksum(0, crc32fast::hash(b"hello"))
            .expect("section 0 exists");
        let header = [7u8; 16];
        let (mut cursor, len) = out.finish(&header).expect("finish");
        // The other handle's write.
        cursor.get_mut()[offset as usize..offset as usize + 5].copy_from_slice(b"hello");
        let bytes = cursor.into_inner();
        assert_eq!(
            bytes,
            by_hand(&header, &[b"hello".to_vec(), b"xyz".to_vec()])
        );
        // Header region 48, "hello" at 48, "xyz" at 56, footer at 64.
        assert_eq!(offset, 48);
        assert_eq!(len, 64 + footer_len(2));
    }

    fn writer_error(f: impl FnOnce() -> io::Result<()>) -> io::ErrorKind {
        f().expect_err("misuse must be an error").kind()
    }

    #[test]
    fn misuse_is_an_error_not_a_panic() {
        let header = [0u8; 16];
        let kinds = [
            writer_error(|| writer(1).write_all(b"x")),
            writer_error(|| writer(1).skip(1)),
            writer_error(|| writer(1).end_section().map(|_| ())),
            writer_error(|| writer(1).set_checksum(0, 0)),
            writer_error(|| writer(1).finish(&header).map(|_| ())),
            writer_error(|| {
                let mut out = writer(1);
                out.begin_section()?;
                out.begin_section().map(|_| ())
            }),
            writer_error(|| {
                let mut out = writer(1);
                out.begin_section()?;
                out.finish(&header).map(|_| ())
            }),
            writer_error(|| {
                let mut out = writer(1);
                out.begin_section()?;
                out.end_section()?;
                out.begin_section().map(|_| ())
            }),
            writer_error(|| writer(0).finish(&[0u8; 15]).map(|_| ())),
            // A skipped section without its checksum.
            writer_error(|| {
                let mut out = writer(1);
                out.begin_section()?;
                out.skip(5)?;
                out.end_section()?;
                out.finish(&header).map(|_| ())
            }),
            writer_error(|| {
                SectionWriter::new(Cursor::new(Vec::new()), LAYOUT, MAX_SECTION_COUNT + 1)
                    .map(|_| ())
            }),
        ];
        assert!(kinds.iter().all(|&k| k == io::ErrorKind::InvalidInput));
    }
}
