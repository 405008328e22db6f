//! decoding audio files to 16 kHz mono: symphonia formats, NIST SPHERE, downmix, rubato resampling, streaming.
//!
//! Being written (issue 4).
