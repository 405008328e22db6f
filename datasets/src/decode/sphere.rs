//! A reader for NIST SPHERE files (TIMIT and other LDC corpora): the header, then 16-bit PCM in
//! either byte order, or 8-bit mu-law. Shorten-compressed files are refused with an error that
//! names the file.
//!
//! Layout (NIST SPHERE 2.x documentation, `sphere_2.6a/doc`): the file opens with the ASCII lines
//! `NIST_1A\n` and `   1024\n` (the header size in bytes, usually 1024), then `key -type value`
//! lines (`-i` integer, `-r` real, `-sN` string of N bytes) up to `end_head`; the header is padded
//! to its size and the samples follow, interleaved by channel.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{check_header, Input};
use crate::{Error, Result};

/// The first line of every SPHERE file.
pub(crate) const MAGIC: &[u8; 8] = b"NIST_1A\n";
/// Headers above this size are refused (a real header is 1024 bytes; bounds crafted input).
const MAX_HEADER: usize = 1 << 16;
/// Frames per block handed to the caller.
const BLOCK_FRAMES: usize = 4096;

/// Sample encodings we read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    /// Signed 16-bit PCM, little-endian (`sample_byte_format 01`).
    Pcm16Le,
    /// Signed 16-bit PCM, big-endian (`sample_byte_format 10`).
    Pcm16Be,
    /// 8-bit mu-law (ITU-T G.711).
    Ulaw,
}

/// What the header says.
#[derive(Clone, Debug)]
pub(crate) struct SphereHeader {
    pub header_size: u64,
    pub sample_rate: u32,
    pub channels: u16,
    /// Frames (samples per channel), when declared.
    pub sample_count: Option<u64>,
    pub coding: Coding,
}

impl SphereHeader {
    pub(crate) fn bytes_per_sample(&self) -> usize {
        match self.coding {
            Coding::Pcm16Le | Coding::Pcm16Be => 2,
            Coding::Ulaw => 1,
        }
    }

    pub(crate) fn format_name(&self) -> &'static str {
        match self.coding {
            Coding::Pcm16Le => "sphere/pcm_s16le",
            Coding::Pcm16Be => "sphere/pcm_s16be",
            Coding::Ulaw => "sphere/ulaw",
        }
    }
}

fn not_audio(path: &Path, reason: impl Into<String>) -> Error {
    Error::NotAudio {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads and validates the header of the SPHERE file `file` (positioned at its start).
pub(crate) fn read_header(path: &Path, file: &mut impl Read) -> Result<SphereHeader> {
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    if got < 16 {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            reason: "SPHERE header ends before its size line".into(),
        });
    }
    if &head[..8] != MAGIC {
        return Err(not_audio(path, "not a NIST SPHERE file"));
    }
    let size_line = std::str::from_utf8(&head[8..16]).unwrap_or("");
    let header_size: usize = size_line.trim().parse().map_err(|_| {
        not_audio(
            path,
            format!("SPHERE header size {size_line:?} is not a number"),
        )
    })?;
    if !(16..=MAX_HEADER).contains(&header_size) {
        return Err(not_audio(
            path,
            format!("SPHERE header size {header_size} is out of range"),
        ));
    }
    let mut rest = vec![0u8; header_size - 16];
    file.read_exact(&mut rest).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::Truncated {
            path: path.to_path_buf(),
            reason: format!("file ends inside the {header_size}-byte SPHERE header"),
        },
        _ => Error::io(path, e),
    })?;
    let text = String::from_utf8_lossy(&rest);

    let (mut rate, mut channels, mut count) = (None, None, None);
    let (mut n_bytes, mut byte_format, mut coding) = (None, None, None::<String>);
    let mut ended = false;
    for line in text.lines() {
        let line = line.trim();
        if line == "end_head" {
            ended = true;
            break;
        }
        let mut parts = line.splitn(3, char::is_whitespace);
        let (Some(key), Some(ty), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let value = value.trim();
        let int = || -> Option<i64> { ty.starts_with("-i").then(|| value.parse().ok()).flatten() };
        match key {
            "sample_rate" => rate = int().or_else(|| value.parse::<f64>().ok().map(|r| r as i64)),
            "channel_count" => channels = int(),
            "sample_count" => count = int(),
            "sample_n_bytes" => n_bytes = int(),
            "sample_byte_format" => byte_format = Some(value.to_string()),
            "sample_coding" => coding = Some(value.to_string()),
            _ => {}
        }
    }
    if !ended {
        return Err(not_audio(path, "SPHERE header has no end_head line"));
    }
    let coding = coding.unwrap_or_else(|| "pcm".into());
    if coding.contains("shorten") {
        return Err(not_audio(
            path,
            format!(
                "shorten-compressed SPHERE (sample_coding {coding}) is not supported; \
                 decompress it first, e.g. `sph2pipe -f wav`"
            ),
        ));
    }
    let coding = match (coding.as_str(), n_bytes, byte_format.as_deref()) {
        ("pcm", Some(2) | None, Some("01") | None) => Coding::Pcm16Le,
        ("pcm", Some(2) | None, Some("10")) => Coding::Pcm16Be,
        ("ulaw" | "mu-law", Some(1) | None, _) => Coding::Ulaw,
        (c, n, b) => {
            return Err(not_audio(
                path,
                format!(
                    "unsupported SPHERE sample format: sample_coding {c}, sample_n_bytes {}, \
                     sample_byte_format {}",
                    n.map_or("-".into(), |n| n.to_string()),
                    b.unwrap_or("-")
                ),
            ))
        }
    };
    let rate = rate.ok_or_else(|| not_audio(path, "SPHERE header has no sample_rate"))?;
    let channels = channels.unwrap_or(1);
    let rate = u32::try_from(rate.max(0)).unwrap_or(u32::MAX);
    let channels = u16::try_from(channels.max(0)).unwrap_or(u16::MAX);
    check_header(path, rate, channels)?;
    Ok(SphereHeader {
        header_size: header_size as u64,
        sample_rate: rate,
        channels,
        sample_count: count.and_then(|c| u64::try_from(c).ok()),
        coding,
    })
}

/// Streams the samples of a SPHERE file as mono blocks at the file's rate.
pub(crate) struct SphereReader {
    path: PathBuf,
    reader: BufReader<Input>,
    pub header: SphereHeader,
    buf: Vec<u8>,
    /// Frames still expected according to `sample_count` (`None`: read to the end of file).
    remaining: Option<u64>,
}

impl std::fmt::Debug for SphereReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SphereReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SphereReader {
    pub(crate) fn open(path: &Path, mut file: Input) -> Result<Self> {
        let header = read_header(path, &mut file)?;
        file.seek(SeekFrom::Start(header.header_size))
            .map_err(|e| Error::io(path, e))?;
        let frame_bytes = header.bytes_per_sample() * usize::from(header.channels);
        Ok(SphereReader {
            path: path.to_path_buf(),
            reader: BufReader::new(file),
            remaining: header.sample_count,
            buf: vec![0; BLOCK_FRAMES * frame_bytes],
            header,
        })
    }

    /// The next block of mono samples; `None` at the end.
    pub(crate) fn next_block(&mut self) -> Result<Option<Vec<f32>>> {
        let channels = usize::from(self.header.channels);
        let frame_bytes = self.header.bytes_per_sample() * channels;
        let want_frames = match self.remaining {
            Some(0) => return Ok(None),
            Some(r) => usize::try_from(r).unwrap_or(usize::MAX).min(BLOCK_FRAMES),
            None => BLOCK_FRAMES,
        };
        let want = want_frames * frame_bytes;
        let mut got = 0;
        while got < want {
            match self.reader.read(&mut self.buf[got..want]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&self.path, e)),
            }
        }
        let frames = got / frame_bytes;
        if let Some(r) = self.remaining.as_mut() {
            if frames < want_frames {
                return Err(Error::Truncated {
                    path: self.path.clone(),
                    reason: format!(
                        "SPHERE data ends {} frames before sample_count",
                        *r - frames as u64
                    ),
                });
            }
            *r -= frames as u64;
        }
        if frames == 0 {
            return Ok(None);
        }
        let bytes = &self.buf[..frames * frame_bytes];
        let scale = 1.0 / channels as f32;
        let mut out = Vec::with_capacity(frames);
        match self.header.coding {
            Coding::Pcm16Le | Coding::Pcm16Be => {
                let le = self.header.coding == Coding::Pcm16Le;
                for frame in bytes.chunks_exact(frame_bytes) {
                    let mut sum = 0.0f32;
                    for s in frame.chunks_exact(2) {
                        let v = if le {
                            i16::from_le_bytes([s[0], s[1]])
                        } else {
                            i16::from_be_bytes([s[0], s[1]])
                        };
                        sum += f32::from(v) / 32_768.0;
                    }
                    out.push(sum * scale);
                }
            }
            Coding::Ulaw => {
                for frame in bytes.chunks_exact(frame_bytes) {
                    let sum: f32 = frame
                        .iter()
                        .map(|&b| f32::from(ulaw_to_i16(b)) / 32_768.0)
                        .sum();
                    out.push(sum * scale);
                }
            }
        }
        Ok(Some(out))
    }
}

/// G.711 mu-law expansion (ITU-T G.711, table 2a), to 16-bit linear.
pub(crate) fn ulaw_to_i16(byte: u8) -> i16 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        assert_eq!(ulaw_to_i16(0xff), 0);
        assert_eq!(ulaw_to_i16(0x7f), 0);
        assert_eq!(ulaw_to_i16(0x80), 32_124);
        assert_eq!(ulaw_to_i16(0x00), -32_124);
    }
}
