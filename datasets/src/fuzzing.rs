//! Entry point for coverage-guided fuzzing of the audio front end (`fuzz/`, cargo-fuzz) and for
//! replaying its corpus and crash regressions as tests: arbitrary bytes as an audio file must give
//! audio or an error, never a panic (the decoders' own panics are caught and become errors), and
//! the same bytes decoded from memory must give the same audio or the same kind of error.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::corpus::AUDIO_EXTENSIONS;
use crate::decode::{decode_bytes, decode_file, probe, probe_bytes, DecodeOptions};
use crate::Result;

/// `bytes[1..]` as an audio file whose extension `bytes[0]` picks (among the archive's audio
/// extensions and one that is none): probe it, then decode it (at most 10 minutes, so that a
/// header declaring days is refused rather than decoded); then the same through the in-memory
/// path ([`decode_bytes`], [`probe_bytes`]), which must agree with the file's.
pub fn decode(bytes: &[u8]) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let Some((&pick, body)) = bytes.split_first() else {
        return;
    };
    let ext = AUDIO_EXTENSIONS
        .get(usize::from(pick) % (AUDIO_EXTENSIONS.len() + 1))
        .copied()
        .unwrap_or("bin");
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path: PathBuf =
        std::env::temp_dir().join(format!("pairalign-fuzz-{}-{n}.{ext}", std::process::id()));
    std::fs::write(&path, body).expect("a scratch file can be written");
    let options = DecodeOptions {
        max_duration_s: 600.0,
    };
    let probed = probe(&path);
    let decoded = decode_file(&path, &options);
    let _ = std::fs::remove_file(&path);
    if let Ok(audio) = &decoded {
        assert!(audio.duration_s() <= options.max_duration_s + 1.0);
        assert!(
            audio.samples.iter().all(|s| s.is_finite()),
            "samples are finite"
        );
    }
    let body = body.to_vec();
    assert_same("probe", &probed, &probe_bytes(body.clone(), &path));
    assert_same("decode", &decoded, &decode_bytes(body, &path, &options));
}

/// The file and the in-memory paths agree: equal values, or errors of the same kind.
fn assert_same<T: PartialEq>(what: &str, file: &Result<T>, memory: &Result<T>) {
    match (file, memory) {
        (Ok(a), Ok(b)) => assert!(
            a == b,
            "{what}: the file and its bytes give different values"
        ),
        (Err(a), Err(b)) => assert_eq!(
            std::mem::discriminant(a),
            std::mem::discriminant(b),
            "{what}: file error {a}, bytes error {b}"
        ),
        (Ok(_), Err(e)) => panic!("{what}: the file reads, its bytes give {e}"),
        (Err(e), Ok(_)) => panic!("{what}: the file gives {e}, its bytes read"),
    }
}
