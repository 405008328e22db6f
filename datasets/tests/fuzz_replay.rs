//! The short form of fuzzing the audio front end (issue 9), run by `cargo test`: the fuzz entry
//! point (`pairalign_datasets::fuzzing::decode`, the body of fuzz/fuzz_targets/audio.rs) over
//! every crash regression in fuzz/regressions/audio/ and over reproducible mutations of the
//! bundled samples' first 8 KiB. The long form, coverage-guided, is scripts/fuzz.sh.

#![allow(clippy::unwrap_used)] // Tests unwrap: a failure is the test failing.

use std::path::{Path, PathBuf};

use pairalign_datasets::corpus::AUDIO_EXTENSIONS;
use pairalign_datasets::fuzzing::decode;
use pairalign_engine::fuzzing::{mutations, regressions};

#[test]
fn front_end_survives_regressions_and_mutations() {
    for bytes in regressions("audio") {
        decode(&bytes);
    }
    let short = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/short");
    let mut samples: Vec<PathBuf> = std::fs::read_dir(short)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    samples.sort();
    for (i, sample) in samples.iter().enumerate() {
        let ext = sample.extension().unwrap().to_str().unwrap();
        let pick = AUDIO_EXTENSIONS.iter().position(|e| *e == ext).unwrap() as u8;
        let mut seed = vec![pick];
        seed.extend(std::fs::read(sample).unwrap().iter().take(8192));
        decode(&seed);
        for bytes in mutations(&seed, 40, i as u64 + 1) {
            decode(&bytes);
        }
    }
}
