//! the memory-mapped feature cache (log-mel per clip) and the paired-view batch loader.
//!
//! Being written (issue 4).
