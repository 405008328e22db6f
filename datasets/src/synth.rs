//! synthetic multi-voice speech: text corpus, espeak-ng / flite / piper voices, train and held-out splits.
//!
//! Being written (issue 4).
