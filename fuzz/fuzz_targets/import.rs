//! Arbitrary bytes as a token JSONL file (see `pairalign_engine::fuzzing::import`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pairalign_engine::fuzzing::import(data));
