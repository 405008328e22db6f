//! Opens a feature cache: maps it, validates every byte, and serves clip ids and view matrices
//! from the mapping without copying.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use half::f16;
use half::slice::HalfFloatSliceExt;
use memmap2::Mmap;
use pairalign_sections::{self as sections, MAX_SECTION_COUNT};

use super::format::{
    ClipEntry, Dtype, Header, Section, ViewEntry, CLIP_ENTRY_LEN, FORMAT_VERSION, HEADER_LEN,
    MAGIC, MAX_ID_BYTES, MAX_N_MELS, MAX_VIEWS, OLDEST_SUPPORTED_VERSION, SECTION_LAYOUT,
    V1_SECTION_COUNT, VIEW_ENTRY_LEN,
};
use crate::{Error, Result};

/// The values of one view, borrowed from the mapping.
#[derive(Clone, Copy, Debug)]
pub enum FeatureData<'a> {
    /// Stored as f32.
    F32(&'a [f32]),
    /// Stored as f16.
    F16(&'a [f16]),
}

/// One view of one clip: a `frames x n_mels` matrix, row-major, borrowed from the mapping.
#[derive(Clone, Copy, Debug)]
pub struct FeaturesRef<'a> {
    /// Rows (10 ms frames for the standard front end).
    pub frames: usize,
    /// Columns (mel bins).
    pub n_mels: usize,
    /// `frames * n_mels` values.
    pub data: FeatureData<'a>,
}

impl FeaturesRef<'_> {
    /// Replaces the contents of `out` with the values as f32.
    pub fn to_f32(&self, out: &mut Vec<f32>) {
        out.clear();
        out.resize(self.frames * self.n_mels, 0.0);
        self.rows_to_f32(0..self.frames, out);
    }

    /// Writes rows `rows` as f32 into `dst` (`rows.len() * n_mels` values).
    ///
    /// # Panics
    ///
    /// If `rows` is out of range or `dst` has the wrong length (caller bugs).
    pub fn rows_to_f32(&self, rows: Range<usize>, dst: &mut [f32]) {
        let values = rows.start * self.n_mels..rows.end * self.n_mels;
        match self.data {
            FeatureData::F32(s) => dst.copy_from_slice(&s[values]),
            // Vectorized (F16C) where the CPU has it.
            FeatureData::F16(s) => s[values].convert_to_f32_slice(dst),
        }
    }
}

/// A validated, memory-mapped feature cache. `Send + Sync`: every accessor takes `&self` and the
/// mapping is read-only.
pub struct FeatureCache {
    path: PathBuf,
    map: Mmap,
    n_mels: usize,
    views_per_clip: usize,
    dtype: Dtype,
    clip_count: usize,
    total_frames: u64,
    /// Byte range of each v1 section in `map`, indexed by `Section as usize`.
    sections: [Range<usize>; V1_SECTION_COUNT],
}

impl std::fmt::Debug for FeatureCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureCache")
            .field("path", &self.path)
            .field("n_mels", &self.n_mels)
            .field("views_per_clip", &self.views_per_clip)
            .field("dtype", &self.dtype)
            .field("clip_count", &self.clip_count)
            .field("bytes", &self.map.len())
            .finish()
    }
}

/// The layouts this build can read: `min(file's format_version, FORMAT_VERSION)` when the file's
/// `oldest_supported_version` allows it. Adding v2 means a variant and a `parse_v2` producing the
/// same [`FeatureCache`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    V1,
}

impl Layout {
    fn for_header(path: &Path, header: &Header) -> Result<Layout> {
        let (found, oldest_supported) = (header.format_version, header.oldest_supported_version);
        match sections::readable_version(found, oldest_supported, FORMAT_VERSION) {
            Ok(1) => Ok(Layout::V1),
            Ok(_) => Err(layout_error(
                path,
                sections::Error::UnsupportedVersion {
                    found,
                    oldest_supported,
                },
            )),
            Err(e) => Err(layout_error(path, e)),
        }
    }
}

fn corrupt(path: &Path, section: &'static str, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        section,
        reason: reason.into(),
    }
}

/// A damaged (or too new) file as a cache error, with the section and wording cache errors have
/// always had (tests and users match on them).
fn layout_error(path: &Path, e: sections::Error) -> Error {
    use sections::Error as E;
    let name = |index: usize| Section::ALL.get(index).map(|s| s.name());
    let extension = |index: usize| name(index).unwrap_or("extension section");
    match e {
        E::UnsupportedVersion { found, .. } => Error::UnsupportedVersion {
            path: path.to_path_buf(),
            found,
            oldest: OLDEST_SUPPORTED_VERSION,
            current: FORMAT_VERSION,
        },
        E::OldestVersionOutOfRange {
            found,
            oldest_supported,
        } => corrupt(
            path,
            "header",
            format!(
                "oldest supported version {oldest_supported} is not in 1..={found} (the writer's \
                 version)"
            ),
        ),
        E::TooManySections { count } => corrupt(
            path,
            "header",
            format!("section count {count} is not in {V1_SECTION_COUNT}..={MAX_SECTION_COUNT}"),
        ),
        E::Truncated { file_len, min_len } => corrupt(
            path,
            "footer",
            format!(
                "file is {file_len} bytes, too short for the header, section table and footer \
                 ({min_len} bytes)"
            ),
        ),
        E::FooterMagic => corrupt(
            path,
            "footer",
            "bad footer magic: the file is truncated or was not finished",
        ),
        E::HeaderChecksum { .. } => corrupt(
            path,
            "header",
            "checksum mismatch in the header or section table",
        ),
        E::FooterReserved => corrupt(path, "header", "reserved bytes are not zero"),
        E::LengthOverflow { lens, file_len } | E::FileLength { lens, file_len, .. } => corrupt(
            path,
            "section table",
            format!("section lengths {lens:?} do not add up to the file length {file_len}"),
        ),
        E::Misplaced {
            index,
            offset,
            expected,
            ..
        } => corrupt(
            path,
            name(index).unwrap_or("section table"),
            format!("section {index} starts at {offset} instead of {expected}"),
        ),
        E::Padding {
            gap: sections::Gap::BeforeSection(index),
            ..
        } => corrupt(
            path,
            extension(index),
            "padding before the section is not zero",
        ),
        E::Padding {
            gap: sections::Gap::BeforeFooter,
            ..
        } => corrupt(path, "footer", "padding before the footer is not zero"),
        E::Padding {
            gap: sections::Gap::InFooter,
            ..
        } => corrupt(path, "footer", "padding bytes are not zero"),
        E::Checksum { index, .. } => corrupt(path, extension(index), "checksum mismatch"),
    }
}

impl FeatureCache {
    /// Maps and validates the cache at `path`: size, magics, versions, parameters, section
    /// placement, every checksum, and every offset and length the accessors use. A damaged,
    /// truncated or foreign file gives `Error::Corrupt` naming the file and section (or
    /// `UnsupportedVersion`), never a panic.
    ///
    /// Validation reads the whole file once (the data checksum): about a second per few GB.
    ///
    /// # Safety
    ///
    /// This function is safe to call, but it memory-maps the file: if another process modifies
    /// or truncates the file while the `FeatureCache` is alive, reads may see changed bytes or
    /// fault (SIGBUS). Caches are immutable by contract: [`super::CacheWriter`] builds a new
    /// file under a temporary name and renames it into place, so rewriting a cache replaces the
    /// directory entry and leaves existing mappings intact; nothing may write into a finished
    /// cache file.
    pub fn open(path: &Path) -> Result<FeatureCache> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len < HEADER_LEN {
            return Err(corrupt(
                path,
                "header",
                format!("file is {len} bytes, shorter than the {HEADER_LEN}-byte header"),
            ));
        }
        // SAFETY: the mapping is read-only, and finished cache files are never modified or
        // truncated (the contract in the `# Safety` section above), so the bytes behind the
        // slices the accessors hand out cannot change or disappear while `map` lives. Every read
        // goes through bounds that `parse_v1` validated against the mapped length.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let header: Header = bytemuck::pod_read_unaligned(&map[..HEADER_LEN as usize]);
        if header.magic != MAGIC {
            return Err(corrupt(
                path,
                "header",
                "bad magic: not a PairAlign feature cache",
            ));
        }
        match Layout::for_header(path, &header)? {
            Layout::V1 => parse_v1(path, map, &header),
        }
    }

    /// The file this cache was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of clips.
    pub fn len(&self) -> usize {
        self.clip_count
    }

    /// Whether the cache holds no clip.
    pub fn is_empty(&self) -> bool {
        self.clip_count == 0
    }

    /// Mel bins per frame.
    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    /// Views stored per clip.
    pub fn views_per_clip(&self) -> usize {
        self.views_per_clip
    }

    /// Storage type of the values.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Frames of all views of all clips.
    pub fn total_frames(&self) -> u64 {
        self.total_frames
    }

    /// Size of the file in bytes.
    pub fn byte_len(&self) -> u64 {
        self.map.len() as u64
    }

    fn section_bytes(&self, section: Section) -> &[u8] {
        &self.map[self.sections[section as usize].clone()]
    }

    fn clip_entries(&self) -> &[ClipEntry] {
        bytemuck::cast_slice(self.section_bytes(Section::Clips))
    }

    fn view_entries(&self) -> &[ViewEntry] {
        bytemuck::cast_slice(self.section_bytes(Section::Views))
    }

    /// The id of clip `i`.
    ///
    /// # Panics
    ///
    /// If `i >= len()` (a caller bug).
    pub fn clip_id(&self, i: usize) -> &str {
        let e = self.clip_entries()[i];
        let start = e.name_offset as usize;
        let bytes = &self.section_bytes(Section::Names)[start..start + e.name_len as usize];
        // Validated as UTF-8 on open.
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    /// Frames of view `v` of clip `i`.
    ///
    /// # Panics
    ///
    /// If `i >= len()` or `v >= views_per_clip()` (caller bugs).
    pub fn frames(&self, i: usize, v: usize) -> usize {
        self.view_entry(i, v).frames as usize
    }

    fn view_entry(&self, i: usize, v: usize) -> ViewEntry {
        assert!(
            i < self.clip_count && v < self.views_per_clip,
            "clip {i} view {v} out of range ({} clips x {} views)",
            self.clip_count,
            self.views_per_clip
        );
        self.view_entries()[i * self.views_per_clip + v]
    }

    /// View `v` of clip `i`, borrowed from the mapping.
    ///
    /// # Panics
    ///
    /// If `i >= len()` or `v >= views_per_clip()` (caller bugs).
    pub fn view(&self, i: usize, v: usize) -> FeaturesRef<'_> {
        let e = self.view_entry(i, v);
        let frames = e.frames as usize;
        let values = e.data_offset as usize..e.data_offset as usize + frames * self.n_mels;
        let bytes = self.section_bytes(Section::Data);
        // The data section starts at a multiple of 8 in a page-aligned mapping and its length
        // is a multiple of the value size (checked on open), so the casts cannot fail.
        let data = match self.dtype {
            Dtype::F32 => FeatureData::F32(&bytemuck::cast_slice::<u8, f32>(bytes)[values]),
            Dtype::F16 => FeatureData::F16(&bytemuck::cast_slice::<u8, f16>(bytes)[values]),
        };
        FeaturesRef {
            frames,
            n_mels: self.n_mels,
            data,
        }
    }
}

fn parse_v1(path: &Path, map: Mmap, header: &Header) -> Result<FeatureCache> {
    if !(V1_SECTION_COUNT as u32..=MAX_SECTION_COUNT).contains(&header.section_count) {
        return Err(corrupt(
            path,
            "header",
            format!(
                "section count {} is not in {V1_SECTION_COUNT}..={MAX_SECTION_COUNT}",
                header.section_count
            ),
        ));
    }
    // The file's envelope: length, footer magic, and the checksum that vouches for the header and
    // the section table, before any header field below is trusted.
    let table = SECTION_LAYOUT
        .read_table(&map, header.section_count)
        .map_err(|e| layout_error(path, e))?;
    if header.reserved != [0; 16] {
        return Err(corrupt(path, "header", "reserved bytes are not zero"));
    }
    if !(1..=MAX_N_MELS).contains(&header.n_mels) {
        return Err(corrupt(
            path,
            "header",
            format!("n_mels {} is not in 1..={MAX_N_MELS}", header.n_mels),
        ));
    }
    if !(1..=MAX_VIEWS).contains(&header.views_per_clip) {
        return Err(corrupt(
            path,
            "header",
            format!(
                "views per clip {} is not in 1..={MAX_VIEWS}",
                header.views_per_clip
            ),
        ));
    }
    let Some(dtype) = Dtype::from_code(header.dtype) else {
        return Err(corrupt(
            path,
            "header",
            format!("unknown dtype code {} (1 = f32, 2 = f16)", header.dtype),
        ));
    };

    // Placement, zero padding and every checksum, before any section content is interpreted.
    let table = table.validate().map_err(|e| layout_error(path, e))?;

    let sections = Section::ALL.map(|s| table[s as usize].range());

    // Clip table.
    let clip_count = header.clip_count;
    let clips_len = table[Section::Clips as usize].len;
    if clip_count.checked_mul(CLIP_ENTRY_LEN) != Some(clips_len) {
        return Err(corrupt(
            path,
            "clip table",
            format!("{clips_len} bytes for {clip_count} clips of {CLIP_ENTRY_LEN} bytes"),
        ));
    }
    let clip_count = clip_count as usize;
    let views_per_clip = header.views_per_clip as usize;
    let views_len = table[Section::Views as usize].len;
    if (clip_count as u64)
        .checked_mul(u64::from(header.views_per_clip))
        .and_then(|n| n.checked_mul(VIEW_ENTRY_LEN))
        != Some(views_len)
    {
        return Err(corrupt(
            path,
            "view table",
            format!(
                "{views_len} bytes for {clip_count} clips x {views_per_clip} views of \
                 {VIEW_ENTRY_LEN} bytes"
            ),
        ));
    }
    let clips: &[ClipEntry] =
        bytemuck::try_cast_slice(&map[sections[Section::Clips as usize].clone()])
            .map_err(|e| corrupt(path, "clip table", format!("misaligned: {e}")))?;
    let names = &map[sections[Section::Names as usize].clone()];
    let mut name_end = 0u64;
    for (i, c) in clips.iter().enumerate() {
        if c.name_offset != name_end || c.reserved != 0 {
            return Err(corrupt(
                path,
                "clip table",
                format!(
                    "clip {i}: id starts at {} instead of {name_end}",
                    c.name_offset
                ),
            ));
        }
        if c.name_len == 0 || c.name_len as usize > MAX_ID_BYTES {
            return Err(corrupt(
                path,
                "clip table",
                format!(
                    "clip {i}: id length {} is not in 1..={MAX_ID_BYTES}",
                    c.name_len
                ),
            ));
        }
        name_end += u64::from(c.name_len);
        if name_end > names.len() as u64 {
            return Err(corrupt(
                path,
                "clip table",
                format!(
                    "clip {i}: id runs past the names section ({} bytes)",
                    names.len()
                ),
            ));
        }
        if std::str::from_utf8(&names[c.name_offset as usize..name_end as usize]).is_err() {
            return Err(corrupt(path, "names", format!("clip {i}: id is not UTF-8")));
        }
    }
    if name_end != names.len() as u64 {
        return Err(corrupt(
            path,
            "names",
            format!("{} bytes but the ids use {name_end}", names.len()),
        ));
    }

    // View table and data.
    let views: &[ViewEntry] =
        bytemuck::try_cast_slice(&map[sections[Section::Views as usize].clone()])
            .map_err(|e| corrupt(path, "view table", format!("misaligned: {e}")))?;
    let n_mels = u64::from(header.n_mels);
    let data_len = table[Section::Data as usize].len;
    let value_size = dtype.size() as u64;
    if !data_len.is_multiple_of(value_size) {
        return Err(corrupt(
            path,
            "data",
            format!("{data_len} bytes is not a multiple of the {value_size}-byte value"),
        ));
    }
    let data_values = data_len / value_size;
    let mut value_end = 0u64;
    let mut total_frames = 0u64;
    for (k, v) in views.iter().enumerate() {
        let (i, j) = (k / views_per_clip.max(1), k % views_per_clip.max(1));
        if v.data_offset != value_end || v.reserved != 0 || v.frames == 0 {
            return Err(corrupt(
                path,
                "view table",
                format!(
                    "clip {i} view {j}: starts at value {} (expected {value_end}) with {} \
                     frames (need >= 1)",
                    v.data_offset, v.frames
                ),
            ));
        }
        // frames < 2^32 and n_mels <= 1024, so the product fits; the sum is bounded below.
        value_end += u64::from(v.frames) * n_mels;
        total_frames += u64::from(v.frames);
        if value_end > data_values {
            return Err(corrupt(
                path,
                "view table",
                format!("clip {i} view {j}: runs past the data section ({data_values} values)"),
            ));
        }
    }
    if value_end != data_values {
        return Err(corrupt(
            path,
            "data",
            format!("{data_values} values but the views use {value_end}"),
        ));
    }
    if total_frames != header.total_frames {
        return Err(corrupt(
            path,
            "header",
            format!(
                "total frames {} but the views hold {total_frames}",
                header.total_frames
            ),
        ));
    }
    // The casts in `view` need the data aligned to the value size.
    let data_ptr = map[sections[Section::Data as usize].clone()].as_ptr();
    if !(data_ptr as usize).is_multiple_of(4) {
        return Err(corrupt(
            path,
            "data",
            "section is not 4-byte aligned in memory",
        ));
    }

    Ok(FeatureCache {
        path: path.to_path_buf(),
        map,
        n_mels: n_mels as usize,
        views_per_clip,
        dtype,
        clip_count,
        total_frames,
        sections,
    })
}
