//! Decoding audio files to 16 kHz mono: every format symphonia reads (WAV, FLAC, MP3, Ogg Vorbis,
//! AAC and ALAC in MP4/M4A), NIST SPHERE with our own reader, downmix (mean of channels), rubato
//! resampling, and streaming so that a 10-hour file is decoded in bounded memory.
//!
//! [`stream_file`] is the primitive: it opens a file, checks its header and yields 16 kHz mono
//! chunks; [`decode_file`] collects a stream; [`probe`] reads headers only. Each has a twin for
//! encoded bytes already in memory ([`stream_bytes`], [`decode_bytes`], [`probe_bytes`],
//! [`probe_duration_bytes`]: a search body need not be spooled to disk), read by the same code
//! through one `Input` (a file or a cursor). Every failure is a typed [`Error`] naming the file
//! (or the name given to the bytes); no input makes this module panic (a panic inside a
//! third-party decoder is caught and reported as [`Error::Corrupt`]).

mod resample;
mod sphere;

use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use resample::StreamResampler;
pub use resample::{resample, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
use sphere::SphereReader;
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{Decoder, DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::{Audio, Error, Result, SAMPLE_RATE};

/// How files are decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodeOptions {
    /// Longest recording accepted, in seconds; longer files give [`Error::TooLong`]. Default: 12
    /// hours.
    pub max_duration_s: f64,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_duration_s: 12.0 * 3600.0,
        }
    }
}

/// What a file's headers say.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioInfo {
    /// `container/codec`, e.g. `wav/pcm_s16le`, `flac/flac`, `mp3/mp3`, `ogg/vorbis`, `mp4/aac`,
    /// `sphere/pcm_s16le`.
    pub format: String,
    /// Samples per second per channel, as stored.
    pub sample_rate: u32,
    /// Channel count, as stored.
    pub channels: u16,
    /// Declared duration, when the headers give one.
    pub duration_s: Option<f64>,
}

/// Checks a declared rate and channel count: the typed errors for zero channels and absurd rates.
pub(crate) fn check_header(path: &Path, rate: u32, channels: u16) -> Result<()> {
    if channels == 0 {
        return Err(Error::NoChannels {
            path: path.to_path_buf(),
        });
    }
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
        return Err(Error::BadSampleRate {
            path: path.to_path_buf(),
            rate: u64::from(rate),
        });
    }
    Ok(())
}

/// Encoded audio held in memory: any owner of bytes (`Vec<u8>`, `Arc<[u8]>`, `bytes::Bytes`),
/// shared rather than copied between a probe and a decode.
type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// Where encoded audio comes from: a file, or bytes in memory under a name that errors use (and
/// whose extension, like a file's, is symphonia's format hint).
#[derive(Clone)]
enum Encoded<'a> {
    File(&'a Path),
    Memory { name: &'a Path, bytes: SharedBytes },
}

impl Encoded<'_> {
    /// What errors call the audio.
    fn name(&self) -> &Path {
        match self {
            Encoded::File(path) => path,
            Encoded::Memory { name, .. } => name,
        }
    }

    /// A reader positioned at the first byte.
    fn open(&self) -> Result<Input> {
        match self {
            Encoded::File(path) => Ok(Input::File(
                File::open(path).map_err(|e| Error::io(path, e))?,
            )),
            Encoded::Memory { bytes, .. } => {
                Ok(Input::Memory(Cursor::new(MemoryBytes(bytes.clone()))))
            }
        }
    }
}

/// The bytes the decoders read: an open file, or a cursor over bytes in memory. Both are seekable
/// with a known length, so symphonia reads them the same way.
pub(crate) enum Input {
    File(File),
    Memory(Cursor<MemoryBytes>),
}

/// [`SharedBytes`] as `AsRef<[u8]>`, which `Cursor` needs for `Read` and `Seek`.
#[derive(Clone)]
pub(crate) struct MemoryBytes(SharedBytes);

impl AsRef<[u8]> for MemoryBytes {
    fn as_ref(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

impl Input {
    /// Length in bytes.
    fn len(&self) -> std::io::Result<u64> {
        match self {
            Input::File(f) => Ok(f.metadata()?.len()),
            Input::Memory(c) => Ok(c.get_ref().as_ref().len() as u64),
        }
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Input::File(f) => f.read(buf),
            Input::Memory(c) => c.read(buf),
        }
    }
}

impl Seek for Input {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        match self {
            Input::File(f) => f.seek(pos),
            Input::Memory(c) => c.seek(pos),
        }
    }
}

impl MediaSource for Input {
    fn is_seekable(&self) -> bool {
        match self {
            Input::File(f) => f.is_seekable(),
            Input::Memory(c) => c.is_seekable(),
        }
    }

    fn byte_len(&self) -> Option<u64> {
        match self {
            Input::File(f) => f.byte_len(),
            Input::Memory(c) => c.byte_len(),
        }
    }
}

/// Encoded bytes given by a caller, under `name`.
fn in_memory<'a>(bytes: impl AsRef<[u8]> + Send + Sync + 'static, name: &'a Path) -> Encoded<'a> {
    Encoded::Memory {
        name,
        bytes: Arc::new(bytes),
    }
}

/// Reads metadata from the headers only (SPHERE, WAV, FLAC, MP4 read no audio; MP3 without a
/// Xing/Info header has no declared duration).
pub fn probe(path: &Path) -> Result<AudioInfo> {
    probe_encoded(&Encoded::File(path))
}

/// [`probe`] for a file's bytes already in memory; errors call the audio `name` (e.g. the file
/// name a client gave), whose extension is the format hint a file's extension is.
pub fn probe_bytes(
    bytes: impl AsRef<[u8]> + Send + Sync + 'static,
    name: &Path,
) -> Result<AudioInfo> {
    probe_encoded(&in_memory(bytes, name))
}

fn probe_encoded(encoded: &Encoded<'_>) -> Result<AudioInfo> {
    let path = encoded.name();
    match open_source(encoded)? {
        Source::Sphere(r) => Ok(AudioInfo {
            format: r.header.format_name().into(),
            sample_rate: r.header.sample_rate,
            channels: r.header.channels,
            duration_s: r
                .header
                .sample_count
                .map(|n| n as f64 / f64::from(r.header.sample_rate)),
        }),
        Source::Symphonia(mut s) => {
            // Some codecs (AAC in MP4) declare no channel layout: decode one packet to learn it.
            if s.info.channels == 0 {
                s.next_block(path)?;
                s.info.channels = s.last_channels.ok_or_else(|| Error::Empty {
                    path: path.to_path_buf(),
                })?;
            }
            Ok(s.info)
        }
    }
}

/// Duration in seconds: from the headers when they declare it, otherwise by decoding the file at
/// its own rate (streaming, bounded memory). The probe corpus readers take
/// (`corpus::read_folder(root, &decode::probe_duration)`).
pub fn probe_duration(path: &Path) -> Result<f64> {
    probe_duration_encoded(&Encoded::File(path))
}

/// [`probe_duration`] for a file's bytes already in memory, called `name` in errors.
pub fn probe_duration_bytes(
    bytes: impl AsRef<[u8]> + Send + Sync + 'static,
    name: &Path,
) -> Result<f64> {
    probe_duration_encoded(&in_memory(bytes, name))
}

fn probe_duration_encoded(encoded: &Encoded<'_>) -> Result<f64> {
    if let Some(seconds) = probe_encoded(encoded)?.duration_s {
        return Ok(seconds);
    }
    let stream = open_stream(encoded, &DecodeOptions::default(), 1 << 16, None)?;
    let rate = f64::from(stream.source_rate());
    let mut frames = 0usize;
    for chunk in stream {
        frames += chunk?.len();
    }
    Ok(frames as f64 / rate)
}

/// Decodes the whole file to 16 kHz mono.
pub fn decode_file(path: &Path, options: &DecodeOptions) -> Result<Audio> {
    collect(open_stream(
        &Encoded::File(path),
        options,
        1 << 16,
        Some(SAMPLE_RATE),
    )?)
}

/// Decodes a whole file's bytes already in memory to 16 kHz mono, exactly as [`decode_file`]
/// decodes the file: for a search body, which then needs no disk. Errors call the audio `name`
/// (e.g. the file name a client gave); its extension is the format hint a file's extension is
/// (the format is found from the bytes themselves either way).
pub fn decode_bytes(
    bytes: impl AsRef<[u8]> + Send + Sync + 'static,
    name: &Path,
    options: &DecodeOptions,
) -> Result<Audio> {
    collect(open_stream(
        &in_memory(bytes, name),
        options,
        1 << 16,
        Some(SAMPLE_RATE),
    )?)
}

/// Decodes the whole file to mono at the file's own sample rate (no resampling): for callers that
/// resample themselves, and for measuring the decoders alone.
pub fn decode_file_native(path: &Path, options: &DecodeOptions) -> Result<Audio> {
    collect(open_stream(&Encoded::File(path), options, 1 << 16, None)?)
}

fn collect(stream: AudioStream) -> Result<Audio> {
    let rate = stream.output_rate;
    let mut samples = Vec::new();
    if let Some(frames) = stream.declared_frames {
        let n = frames as f64 * f64::from(rate) / f64::from(stream.source_rate);
        // Headers can lie (crafted files): reserve at most 2^24 samples up front.
        samples.reserve((n as usize).min(1 << 24) + 1);
    }
    for chunk in stream {
        samples.extend_from_slice(&chunk?);
    }
    Ok(Audio::new(samples, rate))
}

/// Opens `path` for streaming: the iterator yields 16 kHz mono chunks of `chunk_samples` samples
/// (the last one shorter). Memory stays at a few chunks whatever the file's length.
///
/// Errors found in the headers (not audio, zero channels, absurd rate, declared duration over
/// `options.max_duration_s`, no frames declared) are returned here; errors found while decoding
/// (truncation, a duration over the limit that was not declared) come as an `Err` item, after
/// which the stream ends.
pub fn stream_file(
    path: &Path,
    options: &DecodeOptions,
    chunk_samples: usize,
) -> Result<AudioStream> {
    open_stream(
        &Encoded::File(path),
        options,
        chunk_samples,
        Some(SAMPLE_RATE),
    )
}

/// [`stream_file`] over a file's bytes already in memory, called `name` in errors.
pub fn stream_bytes(
    bytes: impl AsRef<[u8]> + Send + Sync + 'static,
    name: &Path,
    options: &DecodeOptions,
    chunk_samples: usize,
) -> Result<AudioStream> {
    open_stream(
        &in_memory(bytes, name),
        options,
        chunk_samples,
        Some(SAMPLE_RATE),
    )
}

/// A stream at `to_rate`, or at the file's rate when `None`.
fn open_stream(
    encoded: &Encoded<'_>,
    options: &DecodeOptions,
    chunk_samples: usize,
    to_rate: Option<u32>,
) -> Result<AudioStream> {
    if chunk_samples == 0 {
        return Err(Error::InvalidInput("chunk_samples must be positive".into()));
    }
    let path = encoded.name();
    let source = open_source(encoded)?;
    let (rate, declared) = match &source {
        Source::Sphere(r) => (r.header.sample_rate, r.header.sample_count),
        Source::Symphonia(s) => (s.info.sample_rate, s.declared_frames),
    };
    let limit = options.max_duration_s;
    if let Some(frames) = declared {
        let seconds = frames as f64 / f64::from(rate);
        if seconds > limit {
            return Err(Error::TooLong {
                path: path.to_path_buf(),
                seconds,
                limit,
            });
        }
        if frames == 0 {
            return Err(Error::Empty {
                path: path.to_path_buf(),
            });
        }
    }
    let output_rate = to_rate.unwrap_or(rate);
    Ok(AudioStream {
        path: path.to_path_buf(),
        source,
        resampler: StreamResampler::new(rate, output_rate)?,
        source_rate: rate,
        output_rate,
        declared_frames: declared,
        limit_s: limit,
        frames_read: 0,
        out: Vec::new(),
        out_pos: 0,
        chunk_samples,
        finished: false,
        failed: false,
    })
}

/// 16 kHz mono chunks of one file; see [`stream_file`].
#[derive(Debug)]
pub struct AudioStream {
    path: PathBuf,
    source: Source,
    resampler: StreamResampler,
    source_rate: u32,
    output_rate: u32,
    declared_frames: Option<u64>,
    limit_s: f64,
    /// Frames (per channel) decoded so far, at the source rate.
    frames_read: u64,
    /// Resampled output not yet handed out, from `out_pos`.
    out: Vec<f32>,
    out_pos: usize,
    chunk_samples: usize,
    /// The source is exhausted and the resampler flushed.
    finished: bool,
    /// An error was returned; the stream yields nothing more.
    failed: bool,
}

impl AudioStream {
    /// The file's sample rate before resampling.
    pub fn source_rate(&self) -> u32 {
        self.source_rate
    }

    /// Frames the headers declare, at the source rate, when they do.
    pub fn declared_frames(&self) -> Option<u64> {
        self.declared_frames
    }

    fn fill(&mut self) -> Result<()> {
        // Drop what was handed out so the buffer stays at about one chunk.
        if self.out_pos > 0 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        while !self.finished && self.out.len() < self.chunk_samples {
            match self.source.next_block(&self.path)? {
                Some(block) => {
                    self.frames_read += block.len() as u64;
                    let seconds = self.frames_read as f64 / f64::from(self.source_rate);
                    if seconds > self.limit_s {
                        return Err(Error::TooLong {
                            path: self.path.clone(),
                            seconds,
                            limit: self.limit_s,
                        });
                    }
                    self.resampler.push(&block, &mut self.out)?;
                }
                None => {
                    self.finished = true;
                    if self.frames_read == 0 {
                        return Err(Error::Empty {
                            path: self.path.clone(),
                        });
                    }
                    // A declared length is exact for PCM and FLAC; lossy codecs may drop a
                    // packet's worth of padding, hence the slack.
                    if let Some(declared) = self.declared_frames {
                        let slack = (declared / 100).max(4096);
                        if self.frames_read + slack < declared {
                            return Err(Error::Truncated {
                                path: self.path.clone(),
                                reason: format!(
                                    "decoded {} of {} declared frames",
                                    self.frames_read, declared
                                ),
                            });
                        }
                    }
                    self.resampler.finish(&mut self.out)?;
                }
            }
        }
        Ok(())
    }
}

impl Iterator for AudioStream {
    type Item = Result<Vec<f32>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if let Err(e) = self.fill() {
            self.failed = true;
            return Some(Err(e));
        }
        let available = self.out.len() - self.out_pos;
        if available == 0 {
            return None;
        }
        let n = available.min(self.chunk_samples);
        let chunk = self.out[self.out_pos..self.out_pos + n].to_vec();
        self.out_pos += n;
        Some(Ok(chunk))
    }
}

/// A file being read: our SPHERE reader or a symphonia format reader and decoder.
#[derive(Debug)]
enum Source {
    Sphere(SphereReader),
    Symphonia(Box<SymphoniaSource>),
}

impl Source {
    fn next_block(&mut self, path: &Path) -> Result<Option<Vec<f32>>> {
        match self {
            Source::Sphere(r) => r.next_block(),
            Source::Symphonia(s) => s.next_block(path),
        }
    }
}

/// Opens the file (or bytes), sniffs SPHERE and RIFF headers ourselves and hands the rest to
/// symphonia.
fn open_source(encoded: &Encoded<'_>) -> Result<Source> {
    let path = encoded.name();
    let mut file = encoded.open()?;
    let len = file.len().map_err(|e| Error::io(path, e))?;
    if len == 0 {
        return Err(Error::Empty {
            path: path.to_path_buf(),
        });
    }
    let mut magic = [0u8; 64];
    let mut got = 0;
    while got < magic.len() {
        match file.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    let magic = &magic[..got];
    // Symphonia and our SPHERE reader want to own an input positioned at 0.
    file.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io(path, e))?;
    if magic.starts_with(sphere::MAGIC) {
        return Ok(Source::Sphere(SphereReader::open(path, file)?));
    }
    let unknown_length = check_riff(path, magic)?;
    let container = container_name(magic);
    let mut source = guarded(path, || SymphoniaSource::open(path, file, container))?;
    if unknown_length {
        // A WAV written to a pipe: its sizes are placeholders, so read to the end of the file.
        source.declared_frames = None;
        source.info.duration_s = None;
    }
    Ok(Source::Symphonia(Box::new(source)))
}

/// Typed errors for WAV headers that symphonia would only call "malformed": zero channels and
/// absurd rates in the `fmt ` chunk (when it is the first chunk, as writers put it). Returns
/// whether the `data` chunk's size is the placeholder 0xFFFFFFFF of a WAV written to a pipe.
fn check_riff(path: &Path, magic: &[u8]) -> Result<bool> {
    if magic.len() < 36
        || &magic[0..4] != b"RIFF"
        || &magic[8..12] != b"WAVE"
        || &magic[12..16] != b"fmt "
    {
        return Ok(false);
    }
    let le32 = |i: usize| u32::from_le_bytes([magic[i], magic[i + 1], magic[i + 2], magic[i + 3]]);
    let channels = u16::from_le_bytes([magic[22], magic[23]]);
    check_header(path, le32(24), channels)?;
    // Walk the chunks that fit in the bytes we have, looking for `data`.
    let mut at = 12usize;
    while at <= magic.len().saturating_sub(8) {
        let size = le32(at + 4) as usize;
        if &magic[at..at + 4] == b"data" {
            return Ok(size == u32::MAX as usize);
        }
        at = at.saturating_add(8).saturating_add(size + (size & 1));
    }
    Ok(false)
}

fn container_name(magic: &[u8]) -> &'static str {
    if magic.starts_with(b"RIFF") {
        "wav"
    } else if magic.starts_with(b"fLaC") {
        "flac"
    } else if magic.starts_with(b"OggS") {
        "ogg"
    } else if magic.len() >= 8 && &magic[4..8] == b"ftyp" {
        "mp4"
    } else if magic.starts_with(b"FORM") {
        "aiff"
    } else if magic.starts_with(b"ID3")
        || (magic.len() >= 2 && magic[0] == 0xff && magic[1] & 0xe0 == 0xe0)
    {
        "mp3"
    } else {
        "unknown"
    }
}

/// Runs a call into symphonia, turning a panic (seen on crafted input) into an error.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Error::Corrupt {
            path: path.to_path_buf(),
            section: "audio stream",
            reason: format!("the decoder failed: {what}"),
        })
    })
}

/// Maps a symphonia error met while opening the file.
fn open_error(path: &Path, e: SymError) -> Error {
    let path = path.to_path_buf();
    match e {
        SymError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::Truncated {
                path,
                reason: "file ends inside the header".into(),
            }
        }
        SymError::IoError(io) => Error::Io { path, source: io },
        SymError::DecodeError(m) => Error::NotAudio {
            path,
            reason: format!("malformed header: {m}"),
        },
        SymError::Unsupported(m) => Error::NotAudio {
            path,
            reason: format!("unsupported: {m}"),
        },
        other => Error::NotAudio {
            path,
            reason: other.to_string(),
        },
    }
}

struct SymphoniaSource {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track_id: u32,
    info: AudioInfo,
    declared_frames: Option<u64>,
    samples: Option<SampleBuffer<f32>>,
    /// Packets the codec rejected (skipped, as players do) and the first reason.
    bad_packets: u64,
    first_bad: Option<String>,
    /// Channel count of the last decoded packet.
    last_channels: Option<u16>,
    done: bool,
}

impl std::fmt::Debug for SymphoniaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymphoniaSource")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl SymphoniaSource {
    fn open(path: &Path, file: Input, container: &str) -> Result<Self> {
        let mss = MediaSourceStream::new(Box::new(file), MediaSourceStreamOptions::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let probed = symphonia::default::get_probe()
            .format(
                &hint,
                mss,
                // Gapless: trim the encoder delay and padding that MP3 (LAME) and AAC declare, so
                // durations and times match the source audio.
                &FormatOptions {
                    enable_gapless: true,
                    ..FormatOptions::default()
                },
                &MetadataOptions::default(),
            )
            .map_err(|e| open_error(path, e))?;
        let format = probed.format;
        let track = format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or_else(|| Error::NotAudio {
                path: path.to_path_buf(),
                reason: "no audio track".into(),
            })?;
        let params = &track.codec_params;
        let channels = params.channels.map(|c| c.count()).unwrap_or(0);
        let channels = u16::try_from(channels).unwrap_or(u16::MAX);
        let rate = params.sample_rate.ok_or_else(|| Error::NotAudio {
            path: path.to_path_buf(),
            reason: "the stream declares no sample rate".into(),
        })?;
        // Some codecs (AAC, Vorbis) only learn the layout from the first packet; a missing layout
        // is not "zero channels" unless the container said so.
        check_header(
            path,
            rate,
            channels.max(u16::from(params.channels.is_none())),
        )?;
        let codec = symphonia::default::get_codecs()
            .get_codec(params.codec)
            .map(|d| d.short_name)
            .unwrap_or("unknown");
        let declared_frames = params.n_frames;
        let info = AudioInfo {
            format: format!("{container}/{codec}"),
            sample_rate: rate,
            channels,
            duration_s: declared_frames.map(|n| n as f64 / f64::from(rate)),
        };
        let decoder = symphonia::default::get_codecs()
            .make(params, &DecoderOptions::default())
            .map_err(|e| open_error(path, e))?;
        let track_id = track.id;
        Ok(SymphoniaSource {
            format,
            decoder,
            track_id,
            info,
            declared_frames,
            samples: None,
            bad_packets: 0,
            first_bad: None,
            last_channels: None,
            done: false,
        })
    }

    fn next_block(&mut self, path: &Path) -> Result<Option<Vec<f32>>> {
        if self.done {
            return Ok(None);
        }
        guarded(path, || self.next_block_inner(path)).inspect_err(|_| self.done = true)
    }

    fn next_block_inner(&mut self, path: &Path) -> Result<Option<Vec<f32>>> {
        loop {
            let packet = match self.format.next_packet() {
                Ok(p) => p,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return self.end(path);
                }
                // A new chained stream (Ogg): we read the first one only.
                Err(SymError::ResetRequired) => return self.end(path),
                Err(SymError::IoError(e)) => return Err(Error::io(path, e)),
                Err(e) => {
                    return Err(Error::Truncated {
                        path: path.to_path_buf(),
                        reason: e.to_string(),
                    })
                }
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(d) => d,
                Err(SymError::DecodeError(m)) => {
                    self.bad_packets += 1;
                    self.first_bad.get_or_insert_with(|| m.to_string());
                    continue;
                }
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return self.end(path);
                }
                Err(e) => {
                    return Err(Error::Truncated {
                        path: path.to_path_buf(),
                        reason: e.to_string(),
                    })
                }
            };
            let spec = *decoded.spec();
            let channels = spec.channels.count();
            if channels == 0 {
                return Err(Error::NoChannels {
                    path: path.to_path_buf(),
                });
            }
            self.last_channels = Some(u16::try_from(channels).unwrap_or(u16::MAX));
            let frames = decoded.frames();
            if frames == 0 {
                continue;
            }
            let needed = decoded.capacity().max(frames) as u64;
            let buf = match self.samples.as_mut() {
                Some(b) if b.capacity() >= frames * channels => b,
                _ => self.samples.insert(SampleBuffer::new(needed, spec)),
            };
            buf.copy_interleaved_ref(decoded);
            let interleaved = buf.samples();
            let mono = if channels == 1 {
                interleaved.to_vec()
            } else {
                let scale = 1.0 / channels as f32;
                interleaved
                    .chunks_exact(channels)
                    .map(|f| f.iter().sum::<f32>() * scale)
                    .collect()
            };
            return Ok(Some(mono));
        }
    }

    /// End of stream: fine unless every packet was rejected.
    fn end(&mut self, path: &Path) -> Result<Option<Vec<f32>>> {
        self.done = true;
        if self.bad_packets > 0 && self.samples.is_none() {
            return Err(Error::Truncated {
                path: path.to_path_buf(),
                reason: format!(
                    "no packet could be decoded ({} rejected, first: {})",
                    self.bad_packets,
                    self.first_bad.as_deref().unwrap_or("-")
                ),
            });
        }
        Ok(None)
    }
}
