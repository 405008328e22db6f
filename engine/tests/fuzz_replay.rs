//! The short form of fuzzing (issue 9), run by `cargo test`: the fuzz entry points
//! (`pairalign_engine::fuzzing`, the bodies of fuzz/fuzz_targets/) over every crash regression in
//! fuzz/regressions/<target>/ and over reproducible mutations of valid inputs. The long form,
//! coverage-guided, is scripts/fuzz.sh.

#![allow(clippy::unwrap_used)] // Tests unwrap: a failure is the test failing.

use std::path::{Path, PathBuf};

use pairalign_engine::fuzzing::{self, mutations, regressions};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn check(target: &str, seeds: &[Vec<u8>], per_seed: usize, run: fn(&[u8])) {
    for bytes in regressions(target) {
        run(&bytes);
    }
    for (i, seed) in seeds.iter().enumerate() {
        run(seed);
        for bytes in mutations(seed, per_seed, 0x9e37_79b9 + i as u64) {
            run(&bytes);
        }
    }
}

#[test]
fn segment_reader_survives_mutations() {
    let seeds = [
        "tests/fixtures/segment-v1.seg",
        "tests/fixtures/segment-v2.seg",
        "tests/fixtures/db-v1/segments/seg-00000001.seg",
    ]
    .map(|f| std::fs::read(repo().join(f)).unwrap());
    check("segment", &seeds, 300, fuzzing::segment);
}

#[test]
fn manifest_parser_survives_mutations() {
    let seeds = [std::fs::read(repo().join("tests/fixtures/db-v1/MANIFEST")).unwrap()];
    check("manifest", &seeds, 3000, fuzzing::manifest);
}

#[test]
fn token_importer_survives_mutations() {
    let seeds = [br#"{"id": "a", "tokens": [1, 2, 3, 4, 5, 6]}
{"id": "b", "tokens": [7, 8, 9], "times_ms": [0, 80, 160], "duration_ms": 240}
"#
    .to_vec()];
    check("import", &seeds, 300, fuzzing::import);
}
