//! the 80-bin log-mel front end (25 ms window, 10 ms hop).
//!
//! Being written (issue 4).
