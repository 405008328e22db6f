//! Tokenizer throughput on the CPU, in "x realtime" (seconds of audio per second of wall time,
//! all cores): the shipped VQ tokenizer (`models/weights/vq-v1`) from 16 kHz waveforms to
//! collapsed tokens, as the indexer calls it (batches of 32 windows of 3 s).
//!
//! Data model: 6 minutes of speech-like audio (`pairalign_benches::speech_like`, a pulse train
//! through changing formants with pauses) cut into 120 windows of 3 s. Rows:
//! - `tokenize`: `Tokenizer::tokenize` on batches of 32 windows: log-mel on rayon, then one
//!   model call per core (`CLIPS_PER_CALL` windows at most) side by side.
//! - `one call`: the same batches through one model call each (`frame_codes` on all 32, after
//!   a single-threaded log-mel): what batching alone gives, the baseline for the ratio.
//! - `log-mel`: the front end alone (rayon), `encoder`: the model alone (split as `tokenize`).
//! - `pairalign`: `Tokenizer::tokenize` of a PairAlign tokenizer of the shipping size on the
//!   same batches (the vq-v1 encoder, the default decoder; untrained until pairalign-v1 ships,
//!   so its decoder runs to the length bound, about 16.7 tokens/s instead of 12.7: a
//!   pessimistic figure), side by side with `tokenize`, and the ratio.
//!
//! Run: `cargo bench -p pairalign-benches --bench tokenizer`
//! After criterion's figures it prints a table of x realtime per row (best of 3) and the ratio.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pairalign_benches::{best_of_3, speech_like};
use pairalign_datasets::mel::LogMel;
use pairalign_datasets::SAMPLE_RATE;
use pairalign_models::pairalign::PairAlignConfig;
use pairalign_models::{shipped, Device, PairAlignTokenizer, Tokenizer};
use rayon::prelude::*;

const WINDOWS: usize = 120;
const WINDOW_S: usize = 3;
const BATCH: usize = 32;

fn bench_tokenizer(c: &mut Criterion) {
    let tok = shipped::vq(&Device::Cpu).expect("the shipped VQ weights");
    let audio = speech_like((WINDOWS * WINDOW_S) as f64, SAMPLE_RATE, 7);
    let windows: Vec<&[f32]> = audio
        .chunks_exact(WINDOW_S * SAMPLE_RATE as usize)
        .collect();
    let seconds = (windows.len() * WINDOW_S) as f64;
    let mel = LogMel::new();
    let mels: Vec<Vec<f32>> = windows.par_iter().map(|w| mel.compute(w)).collect();
    let mel_refs: Vec<&[f32]> = mels.iter().map(Vec::as_slice).collect();

    let tokenize = || {
        for batch in windows.chunks(BATCH) {
            tok.tokenize(batch).expect("tokenize");
        }
    };
    let one_call = || {
        for batch in windows.chunks(BATCH) {
            let m: Vec<Vec<f32>> = batch.iter().map(|w| mel.compute(w)).collect();
            let r: Vec<&[f32]> = m.iter().map(Vec::as_slice).collect();
            tok.frame_codes(&r).expect("frame codes");
        }
    };
    let log_mel = || {
        let m: Vec<Vec<f32>> = windows.par_iter().map(|w| mel.compute(w)).collect();
        std::hint::black_box(m);
    };
    let encoder = || {
        for batch in mel_refs.chunks(BATCH) {
            tok.tokenize_mels(batch).expect("tokenize mels");
        }
    };

    let pairalign = PairAlignTokenizer::init_from_vq(
        &PairAlignConfig::from_vq(tok.config()),
        &tok,
        1,
        &Device::Cpu,
    )
    .expect("a PairAlign tokenizer on the vq-v1 encoder");
    let pairalign_tokenize = || {
        for batch in windows.chunks(BATCH) {
            pairalign.tokenize(batch).expect("tokenize");
        }
    };

    let mut group = c.benchmark_group("tokenizer");
    group.throughput(Throughput::Elements(seconds as u64));
    group.sample_size(10);
    group.bench_function("tokenize", |b| b.iter(tokenize));
    group.bench_function("one_call", |b| b.iter(one_call));
    group.bench_function("pairalign", |b| b.iter(pairalign_tokenize));
    group.finish();

    let rows = [
        ("tokenize", best_of_3(tokenize)),
        ("one call", best_of_3(one_call)),
        ("log-mel", best_of_3(log_mel)),
        ("encoder", best_of_3(encoder)),
        ("pairalign", best_of_3(pairalign_tokenize)),
    ];
    println!(
        "\nVQ tokenizer (vq-v1, {} threads), {seconds:.0} s of audio in {WINDOWS} windows of {WINDOW_S} s, batches of {BATCH}:",
        rayon::current_num_threads()
    );
    for (name, d) in &rows {
        println!(
            "  {name:<9} {:>7.0}x realtime ({:.3} s)",
            seconds / d.as_secs_f64(),
            d.as_secs_f64()
        );
    }
    println!(
        "  tokenize / one call: {:.2}x",
        rows[1].1.as_secs_f64() / rows[0].1.as_secs_f64()
    );
    println!(
        "  pairalign / vq tokenize: {:.2}x the speed",
        rows[0].1.as_secs_f64() / rows[4].1.as_secs_f64()
    );
}

criterion_group!(benches, bench_tokenizer);
criterion_main!(benches);
