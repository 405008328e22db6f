//! Streams clips into a new feature cache file: the data section goes to disk as clips arrive
//! (memory holds only the small clip and view tables and the ids), the tables and footer are
//! written by `finish`, which then renames the temporary file into place.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use half::f16;
use half::slice::HalfFloatSliceExt;
use pairalign_sections::SectionWriter;
use serde::{Deserialize, Serialize};

use super::format::{
    ClipEntry, Dtype, Header, Section, ViewEntry, FORMAT_VERSION, MAGIC, MAX_ID_BYTES, MAX_N_MELS,
    MAX_VIEWS, OLDEST_SUPPORTED_VERSION, SECTION_LAYOUT, V1_SECTION_COUNT,
};
use crate::{Error, Result};

/// Bytes buffered before a write to the temporary file.
const WRITE_BUFFER: usize = 1 << 20;

/// What [`CacheWriter::finish`] produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheInfo {
    /// Clips in the cache.
    pub clip_count: u64,
    /// Views stored per clip.
    pub views_per_clip: u32,
    /// Mel bins per frame.
    pub n_mels: u32,
    /// Storage type of the values.
    pub dtype: Dtype,
    /// Frames of all views of all clips.
    pub total_frames: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
}

/// Writes a feature cache clip by clip.
///
/// The file is built under a temporary name beside `path` (`<name>.tmp`) and renamed to `path`
/// by [`CacheWriter::finish`] after an fsync, so a reader never sees a half-written cache under
/// the final name. Dropping the writer without finishing removes the temporary file.
pub struct CacheWriter {
    path: PathBuf,
    tmp_path: PathBuf,
    /// `None` once finished (or after a failed write). The data section is open from `create`
    /// to `finish`.
    out: Option<SectionWriter<BufWriter<File>>>,
    n_mels: u32,
    views_per_clip: u32,
    dtype: Dtype,
    clips: Vec<ClipEntry>,
    views: Vec<ViewEntry>,
    names: Vec<u8>,
    seen: HashSet<Box<str>>,
    /// Values written to the data section so far.
    data_values: u64,
    /// Scratch for f16 conversion.
    half_buf: Vec<f16>,
    /// Set once the file has been renamed into place.
    finished: bool,
}

impl std::fmt::Debug for CacheWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheWriter")
            .field("path", &self.path)
            .field("n_mels", &self.n_mels)
            .field("views_per_clip", &self.views_per_clip)
            .field("dtype", &self.dtype)
            .field("clip_count", &self.clips.len())
            .field("data_values", &self.data_values)
            .finish()
    }
}

impl CacheWriter {
    /// Starts a cache at `path` with `views_per_clip` views (1..=64) of `n_mels` bins (1..=1024)
    /// per clip, stored as `dtype`. An existing file at `path` is replaced only when `finish`
    /// succeeds.
    pub fn create(
        path: &Path,
        n_mels: usize,
        views_per_clip: usize,
        dtype: Dtype,
    ) -> Result<CacheWriter> {
        if n_mels == 0 || n_mels > MAX_N_MELS as usize {
            return Err(Error::InvalidInput(format!(
                "n_mels must be 1..={MAX_N_MELS}, got {n_mels}"
            )));
        }
        if views_per_clip == 0 || views_per_clip > MAX_VIEWS as usize {
            return Err(Error::InvalidInput(format!(
                "views_per_clip must be 1..={MAX_VIEWS}, got {views_per_clip}"
            )));
        }
        let mut tmp_name = path
            .file_name()
            .ok_or_else(|| Error::InvalidInput(format!("{}: not a file path", path.display())))?
            .to_os_string();
        tmp_name.push(".tmp");
        let tmp_path = path.with_file_name(tmp_name);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp_path)
            .map_err(|e| Error::io(&tmp_path, e))?;
        // The header region is zeros until `finish` writes it, so that an interrupted write can
        // never pass for a cache. The data comes first so that it streams out as clips arrive.
        let mut out = SectionWriter::new(
            BufWriter::with_capacity(WRITE_BUFFER, file),
            SECTION_LAYOUT,
            V1_SECTION_COUNT as u32,
        )
        .map_err(|e| Error::io(&tmp_path, e))?;
        debug_assert_eq!(out.next_section(), Section::Data as usize);
        out.begin_section().map_err(|e| Error::io(&tmp_path, e))?;
        Ok(CacheWriter {
            path: path.to_path_buf(),
            tmp_path,
            out: Some(out),
            n_mels: n_mels as u32,
            views_per_clip: views_per_clip as u32,
            dtype,
            clips: Vec::new(),
            views: Vec::new(),
            names: Vec::new(),
            seen: HashSet::new(),
            data_values: 0,
            half_buf: Vec::new(),
            finished: false,
        })
    }

    /// Clips added so far.
    pub fn len(&self) -> usize {
        self.clips.len()
    }

    /// Whether no clip was added yet.
    pub fn is_empty(&self) -> bool {
        self.clips.is_empty()
    }

    /// Appends a clip: its id (1..=1024 bytes of UTF-8, unique in the cache) and exactly
    /// `views_per_clip` matrices, each `frames * n_mels` values row-major with `frames >= 1`
    /// (frames may differ between views). Bad input gives `InvalidInput` and leaves the writer
    /// unchanged; an I/O error leaves it unusable.
    pub fn add_clip(&mut self, id: &str, views: &[&[f32]]) -> Result<()> {
        if id.is_empty() || id.len() > MAX_ID_BYTES {
            return Err(Error::InvalidInput(format!(
                "clip id must be 1..={MAX_ID_BYTES} bytes, got {}",
                id.len()
            )));
        }
        if views.len() != self.views_per_clip as usize {
            return Err(Error::InvalidInput(format!(
                "clip {id:?}: {} views, the cache holds {} per clip",
                views.len(),
                self.views_per_clip
            )));
        }
        let n_mels = self.n_mels as usize;
        for (v, values) in views.iter().enumerate() {
            if values.is_empty() || values.len() % n_mels != 0 {
                return Err(Error::InvalidInput(format!(
                    "clip {id:?} view {v}: {} values is not a positive multiple of n_mels {n_mels}",
                    values.len()
                )));
            }
            if values.len() / n_mels > u32::MAX as usize {
                return Err(Error::InvalidInput(format!(
                    "clip {id:?} view {v}: more than 2^32 - 1 frames"
                )));
            }
        }
        if self.seen.contains(id) {
            return Err(Error::InvalidInput(format!(
                "clip id {id:?} appears twice in the cache"
            )));
        }
        let Some(out) = self.out.as_mut() else {
            return Err(Error::InvalidInput(
                "the cache writer failed earlier and cannot take more clips".into(),
            ));
        };
        for values in views {
            let bytes: &[u8] = match self.dtype {
                Dtype::F32 => bytemuck::cast_slice(values),
                Dtype::F16 => {
                    self.half_buf.resize(values.len(), f16::ZERO);
                    // Vectorized (F16C) where the CPU has it.
                    self.half_buf.convert_from_f32_slice(values);
                    bytemuck::cast_slice(&self.half_buf)
                }
            };
            if let Err(e) = out.write_all(bytes) {
                self.out = None;
                return Err(Error::io(&self.tmp_path, e));
            }
            self.views.push(ViewEntry {
                data_offset: self.data_values,
                frames: (values.len() / n_mels) as u32,
                reserved: 0,
            });
            self.data_values += values.len() as u64;
        }
        self.seen.insert(id.into());
        self.clips.push(ClipEntry {
            name_offset: self.names.len() as u64,
            name_len: id.len() as u32,
            reserved: 0,
        });
        self.names.extend_from_slice(id.as_bytes());
        Ok(())
    }

    /// Writes the tables and footer, fsyncs, and renames the file to its final path.
    pub fn finish(mut self) -> Result<CacheInfo> {
        let Some(out) = self.out.take() else {
            return Err(Error::InvalidInput(
                "the cache writer failed earlier and cannot be finished".into(),
            ));
        };
        let bytes = self
            .write_tail(out)
            .map_err(|e| Error::io(&self.tmp_path, e))?;
        std::fs::rename(&self.tmp_path, &self.path).map_err(|e| Error::io(&self.path, e))?;
        self.finished = true;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Best effort: makes the rename durable where directories can be opened (Unix).
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(CacheInfo {
            clip_count: self.clips.len() as u64,
            views_per_clip: self.views_per_clip,
            n_mels: self.n_mels,
            dtype: self.dtype,
            total_frames: self.views.iter().map(|v| u64::from(v.frames)).sum(),
            bytes,
        })
    }

    fn write_tail(&self, mut out: SectionWriter<BufWriter<File>>) -> std::io::Result<u64> {
        out.end_section()?;
        let tables: [(Section, &[u8]); 3] = [
            (Section::Clips, bytemuck::cast_slice(&self.clips)),
            (Section::Views, bytemuck::cast_slice(&self.views)),
            (Section::Names, &self.names),
        ];
        for (section, bytes) in tables {
            debug_assert_eq!(out.next_section(), section as usize);
            out.begin_section()?;
            out.write_all(bytes)?;
            out.end_section()?;
        }
        let header = Header {
            magic: MAGIC,
            format_version: FORMAT_VERSION,
            oldest_supported_version: OLDEST_SUPPORTED_VERSION,
            n_mels: self.n_mels,
            dtype: self.dtype.code(),
            views_per_clip: self.views_per_clip,
            section_count: V1_SECTION_COUNT as u32,
            clip_count: self.clips.len() as u64,
            total_frames: self.views.iter().map(|v| u64::from(v.frames)).sum(),
            reserved: [0; 16],
        };
        let (out, file_len) = out.finish(bytemuck::bytes_of(&header))?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(file_len)
    }
}

impl Drop for CacheWriter {
    fn drop(&mut self) {
        if !self.finished {
            // Unfinished or failed write: the temporary file is garbage.
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}
