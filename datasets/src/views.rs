//! content-preserving views (augmentations): speed, pitch, noise, gain, telephone band, reverb, shift, 8 kHz round trip.
//!
//! Being written (issue 4).
