//! The datasets crate's error type. Every failure that concerns a file names it.

use std::path::{Path, PathBuf};

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong between an audio file and its features.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system I/O call on `path` failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file has no bytes (or no audio frames).
    #[error("{}: empty file (no audio)", path.display())]
    Empty { path: PathBuf },
    /// The file is not audio in a format we read, or its codec is unsupported.
    #[error("{}: not a supported audio file: {reason}", path.display())]
    NotAudio { path: PathBuf, reason: String },
    /// The file starts as audio but its stream ends early or is damaged.
    #[error("{}: truncated or damaged audio: {reason}", path.display())]
    Truncated { path: PathBuf, reason: String },
    /// The stream declares zero channels.
    #[error("{}: the audio has zero channels", path.display())]
    NoChannels { path: PathBuf },
    /// The stream declares a sample rate outside 1 kHz to 384 kHz.
    #[error("{}: absurd sample rate {rate} Hz", path.display())]
    BadSampleRate { path: PathBuf, rate: u64 },
    /// The recording is longer than the configured limit.
    #[error("{}: {seconds:.0} s is longer than the limit of {limit:.0} s", path.display())]
    TooLong {
        path: PathBuf,
        seconds: f64,
        limit: f64,
    },
    /// A derived file (feature cache, manifest) is damaged: `section` names the part.
    #[error("{}: corrupt {section}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        section: &'static str,
        reason: String,
    },
    /// A speech engine needed for synthesis is not installed.
    #[error("speech engine {engine} is not installed: {hint}")]
    MissingEngine { engine: String, hint: String },
    /// A speech engine ran but failed.
    #[error("speech engine {engine} failed: {reason}")]
    Engine { engine: String, reason: String },
    /// A caller-supplied value is out of range or inconsistent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A derived file (feature cache) was written by a format version this build cannot read.
    #[error(
        "{}: format version {found} is not readable by this build (reads {oldest}..={current})",
        path.display()
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        oldest: u32,
        current: u32,
    },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}
