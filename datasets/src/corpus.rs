//! corpus readers (plain folders, LibriSpeech, TIMIT) and fixed-length clips.
//!
//! Being written (issue 4).
