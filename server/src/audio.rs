//! `GET /v1/assets/{id}/audio`: a span of an indexed recording, as 16 kHz mono 16-bit PCM WAV,
//! so that a client can listen to a hit. The recording is found through the catalog only (the
//! asset's `path`, written by the indexer; never a path from the client), checked against the
//! size and modification time the catalog recorded, and decoded as the indexer decoded it (16
//! kHz mono: the timeline hits' `start_ms` and `end_ms` are on), up to the span's end only.

use std::path::{Path, PathBuf};

use pairalign_datasets::decode::{stream_file, DecodeOptions};
use pairalign_datasets::SAMPLE_RATE;
use serde::Deserialize;

use crate::archive::Asset;
use crate::{Error, Result};

/// Longest span one request may ask for, in milliseconds (60 s, the longest clip a search
/// takes): a reply is at most 1.9 MB.
pub const MAX_SPAN_MS: u64 = 60_000;

/// Samples per decoded chunk while seeking to the span.
const CHUNK_SAMPLES: usize = 1 << 15;

/// `GET /v1/assets/{id}/audio` query parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpanParams {
    /// Start in milliseconds from the start of the recording (default 0).
    pub start_ms: Option<u64>,
    /// End (exclusive) in milliseconds (default `start_ms` + [`MAX_SPAN_MS`]); clamped to the
    /// recording's end.
    pub end_ms: Option<u64>,
}

/// A span of a recording, in milliseconds: `start_ms..end_ms`, within the recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub start_ms: u64,
    pub end_ms: u64,
}

impl SpanParams {
    /// The span these parameters ask for in a recording of `duration_ms`: 400 when it is empty,
    /// longer than [`MAX_SPAN_MS`] or starts at or after the recording's end; an end past the
    /// recording's end is clamped to it.
    pub(crate) fn resolve(self, duration_ms: u64) -> Result<Span> {
        let start_ms = self.start_ms.unwrap_or(0);
        let end_ms = self
            .end_ms
            .unwrap_or_else(|| start_ms.saturating_add(MAX_SPAN_MS));
        if end_ms <= start_ms {
            return Err(Error::BadRequest(format!(
                "end_ms ({end_ms}) must be after start_ms ({start_ms})"
            )));
        }
        if end_ms - start_ms > MAX_SPAN_MS {
            return Err(Error::BadRequest(format!(
                "a span is at most {MAX_SPAN_MS} ms; asked for {} ms ({start_ms} to {end_ms})",
                end_ms - start_ms
            )));
        }
        if start_ms >= duration_ms {
            return Err(Error::BadRequest(format!(
                "start_ms ({start_ms}) is at or after the end of the recording ({duration_ms} ms)"
            )));
        }
        Ok(Span {
            start_ms,
            end_ms: end_ms.min(duration_ms),
        })
    }
}

/// The recording of `asset` on disk, as the catalog knows it: 404 for an upload (the server
/// keeps its tokens, not its audio), 410 when the file is gone or has changed since it was
/// indexed (another size or modification time: the hits' times may no longer match it).
pub(crate) fn recording(asset: &Asset) -> Result<PathBuf> {
    let Some(path) = asset.path.as_deref() else {
        return Err(Error::NotFound(format!(
            "asset {:?} was uploaded, and the server keeps no audio of uploads (only their \
             tokens); only indexed files can be played",
            asset.id
        )));
    };
    let path = PathBuf::from(path);
    let meta = match std::fs::metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Gone(format!(
                "the recording of asset {:?} is no longer at {} (moved or deleted since it was \
                 indexed)",
                asset.id,
                path.display()
            )))
        }
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    if !meta.is_file() {
        return Err(Error::Gone(format!(
            "{} is no longer a file (asset {:?})",
            path.display(),
            asset.id
        )));
    }
    let indexed = (asset.file_size, asset.modified_ns);
    if let (Some(size), Some(modified)) = indexed {
        let now = pairalign_archive::file_stamp(&path);
        if now != Some((size, modified)) {
            return Err(Error::Gone(format!(
                "{} has changed since it was indexed (its size or modification time differ), \
                 so the hits' times may not match it; index it again to play it",
                path.display()
            )));
        }
    }
    Ok(path)
}

/// Decodes `path` to 16 kHz mono up to the end of `span` (not further) and returns the span's
/// samples. Fewer when the file ends first (its decoded length can differ from the catalog's
/// by a few milliseconds).
pub(crate) fn decode_span(path: &Path, span: Span) -> Result<Vec<f32>> {
    let per_ms = u64::from(SAMPLE_RATE) / 1000;
    let from = usize::try_from(span.start_ms * per_ms).unwrap_or(usize::MAX);
    let to = usize::try_from(span.end_ms * per_ms).unwrap_or(usize::MAX);
    let failed = |e: pairalign_datasets::Error| {
        Error::Internal(format!(
            "decoding the recording {} again failed: {e}",
            path.display()
        ))
    };
    let stream = stream_file(path, &DecodeOptions::default(), CHUNK_SAMPLES).map_err(failed)?;
    let mut samples = Vec::with_capacity(to.saturating_sub(from));
    let mut position = 0usize;
    for chunk in stream {
        let chunk = chunk.map_err(failed)?;
        let end = position + chunk.len();
        if end > from {
            let lo = from.saturating_sub(position);
            let hi = chunk.len().min(to - position);
            samples.extend_from_slice(&chunk[lo..hi]);
        }
        position = end;
        if position >= to {
            break;
        }
    }
    Ok(samples)
}

/// `samples` (mono, in [-1, 1]; clipped beyond) as a WAV file: RIFF, one `fmt ` chunk (PCM,
/// one channel, `sample_rate`, 16 bits) and the `data` chunk, little-endian (the canonical
/// layout of Microsoft's RIFF WAVE specification).
pub(crate) fn wav(samples: &[f32], sample_rate: u32) -> Vec<u8> {
    // Spans are at most MAX_SPAN_MS long, far below the 4 GiB a RIFF size can count.
    let data_bytes = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36u32.saturating_add(data_bytes)).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // channels
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_bytes.to_le_bytes());
    for &sample in samples {
        let value = (sample.clamp(-1.0, 1.0) * f32::from(i16::MAX)).round() as i16;
        out.extend_from_slice(&value.to_le_bytes());
    }
    out
}

/// The recording's duration in whole milliseconds, as the catalog has it.
pub(crate) fn duration_ms(asset: &Asset) -> u64 {
    (asset.duration_s.max(0.0) * 1000.0).round() as u64
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use pairalign_datasets::decode::{decode_bytes, decode_file};
    use pairalign_datasets::synth::write_wav_16k;
    use pairalign_datasets::Audio;

    use super::*;

    fn span(start_ms: Option<u64>, end_ms: Option<u64>, duration_ms: u64) -> Result<Span> {
        SpanParams { start_ms, end_ms }.resolve(duration_ms)
    }

    #[test]
    fn spans_are_checked_and_clamped_to_the_recording() {
        let ok = |start_ms, end_ms| Span { start_ms, end_ms };
        assert_eq!(
            span(Some(1000), Some(4000), 90_000).unwrap(),
            ok(1000, 4000)
        );
        assert_eq!(span(None, None, 90_000).unwrap(), ok(0, 60_000));
        assert_eq!(span(None, None, 5_000).unwrap(), ok(0, 5_000));
        assert_eq!(span(Some(4000), None, 5_000).unwrap(), ok(4000, 5_000));
        assert_eq!(
            span(Some(4000), Some(9000), 5_000).unwrap(),
            ok(4000, 5_000)
        );
        for (start, end, duration) in [
            (Some(4000), Some(4000), 90_000),
            (Some(4000), Some(3000), 90_000),
            (Some(0), Some(MAX_SPAN_MS + 1), 90_000),
            (Some(5000), Some(6000), 5_000),
            (Some(u64::MAX), None, 5_000),
        ] {
            let error = span(start, end, duration).unwrap_err();
            assert!(matches!(error, Error::BadRequest(_)), "{start:?} {end:?}");
        }
    }

    /// The WAV written is what the project's own decoder reads back: same rate and length, each
    /// sample within two 16-bit steps.
    #[test]
    fn wav_round_trips_through_the_decoder() {
        let samples: Vec<f32> = (0..16_000).map(|i| (i as f32 * 0.01).sin() * 0.8).collect();
        let bytes = wav(&samples, SAMPLE_RATE);
        assert_eq!(bytes.len(), 44 + 2 * samples.len());
        let back = decode_bytes(bytes, Path::new("span.wav"), &DecodeOptions::default()).unwrap();
        assert_eq!(back.sample_rate, SAMPLE_RATE);
        assert_eq!(back.samples.len(), samples.len());
        for (a, b) in samples.iter().zip(&back.samples) {
            // Written as round(s * 32767), read as i / 32768.
            assert!((a - b).abs() <= 2.0 / 32_768.0, "{a} {b}");
        }
    }

    /// A span cut while streaming equals the same span of the whole decoded file.
    #[test]
    fn decoded_span_equals_the_slice_of_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tone.wav");
        let samples: Vec<f32> = (0..5 * 16_000)
            .map(|i| ((i % 97) as f32 / 97.0) - 0.5)
            .collect();
        write_wav_16k(&path, &Audio::new(samples, SAMPLE_RATE)).unwrap();
        let whole = decode_file(&path, &DecodeOptions::default())
            .unwrap()
            .samples;
        for (start_ms, end_ms) in [(0, 1000), (1234, 3456), (4500, 5000), (2047, 2049)] {
            let cut = decode_span(&path, Span { start_ms, end_ms }).unwrap();
            let (from, to) = (start_ms as usize * 16, end_ms as usize * 16);
            assert_eq!(cut, whole[from..to], "{start_ms}..{end_ms}");
        }
        // Past the end: what there is.
        let cut = decode_span(
            &path,
            Span {
                start_ms: 4900,
                end_ms: 6000,
            },
        )
        .unwrap();
        assert_eq!(cut, whole[4900 * 16..]);
    }
}
