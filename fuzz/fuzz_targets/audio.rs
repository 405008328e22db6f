//! Arbitrary bytes as an audio file (see `pairalign_datasets::fuzzing::decode`).
#![no_main]

use std::sync::Once;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The front end catches the decoders' panics and turns them into errors; libfuzzer-sys's
    // panic hook would abort before that, so the default hook comes back. A panic that escapes
    // still reaches libfuzzer-sys's catch and is reported as a crash.
    static DEFAULT_HOOK: Once = Once::new();
    DEFAULT_HOOK.call_once(|| {
        let _ = std::panic::take_hook();
    });
    pairalign_datasets::fuzzing::decode(data)
});
