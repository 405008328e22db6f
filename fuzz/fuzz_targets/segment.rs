//! Arbitrary bytes as a segment file (see `pairalign_engine::fuzzing::segment`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pairalign_engine::fuzzing::segment(data));
