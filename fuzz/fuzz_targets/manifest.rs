//! Arbitrary bytes as a manifest file (see `pairalign_engine::fuzzing::manifest`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pairalign_engine::fuzzing::manifest(data));
