//! Entry point for coverage-guided fuzzing of the audio front end (`fuzz/`, cargo-fuzz) and for
//! replaying its corpus and crash regressions as tests: arbitrary bytes as an audio file must give
//! audio or an error, never a panic (the decoders' own panics are caught and become errors).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::corpus::AUDIO_EXTENSIONS;
use crate::decode::{decode_file, probe, DecodeOptions};

/// `bytes[1..]` as an audio file whose extension `bytes[0]` picks (among the archive's audio
/// extensions and one that is none): probe it, then decode it (at most 10 minutes, so that a
/// header declaring days is refused rather than decoded).
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
    let _ = probe(&path);
    if let Ok(audio) = decode_file(&path, &options) {
        assert!(audio.duration_s() <= options.max_duration_s + 1.0);
        assert!(
            audio.samples.iter().all(|s| s.is_finite()),
            "samples are finite"
        );
    }
    let _ = std::fs::remove_file(&path);
}
