//! CPU against CUDA: the shipped tokenizers give the same outputs on an NVIDIA GPU as on the
//! CPU, up to float rounding: the VQ encoder's outputs and codes, PairAlign's condition and
//! its strings (every grid phase). Each test says "skipped" and passes where no CUDA device
//! opens: a build without `--features cuda` (the default), or a machine without a GPU. Run on
//! a GPU machine with
//!   CUDA_COMPUTE_CAP=90 cargo test --release --features cuda -p pairalign-models --test cuda
// Test helpers unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use pairalign_datasets::decode::{decode_file, DecodeOptions};
use pairalign_datasets::mel::LogMel;
use pairalign_models::{shipped, Device, Tokenizer, WINDOW_SAMPLES};

/// The first CUDA device, or `None` (with a line on stderr) where there is none.
fn cuda() -> Option<Device> {
    match Device::new_cuda(0) {
        Ok(device) => Some(device),
        Err(e) => {
            eprintln!(
                "skipped: no CUDA device ({})",
                e.to_string().lines().next().unwrap_or_default()
            );
            None
        }
    }
}

/// Log-mels of every 3 s window of the bundled long recordings' first 30 s (40 windows).
fn windows() -> Vec<Vec<f32>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/long");
    let mut paths: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let mel = LogMel::new();
    let mut out = vec![];
    for path in paths {
        let audio = decode_file(&path, &DecodeOptions::default()).unwrap();
        for w in audio.samples.chunks(WINDOW_SAMPLES).take(10) {
            out.push(mel.compute(w));
        }
    }
    assert!(out.len() >= 20, "{} windows", out.len());
    out
}

/// Largest difference between two equally long float sequences, relative to the largest
/// magnitude in `a` (at least 1).
fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(1f32, |m, x| m.max(x.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// Levenshtein distance over the longer length (0: equal).
fn normalized_edit_distance(a: &[u16], b: &[u16]) -> f64 {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = (prev[j + 1] + 1)
                .min(cur[j] + 1)
                .min(prev[j] + usize::from(x != y));
        }
        prev = cur;
    }
    prev[b.len()] as f64 / a.len().max(b.len()).max(1) as f64
}

#[test]
fn the_vq_tokenizer_gives_the_same_codes_on_cuda() {
    let Some(gpu) = cuda() else { return };
    let (cpu_tok, gpu_tok) = (
        shipped::vq(&Device::Cpu).unwrap(),
        shipped::vq(&gpu).unwrap(),
    );
    let mels = windows();
    let refs: Vec<&[f32]> = mels.iter().map(Vec::as_slice).collect();
    let (a, b) = (
        cpu_tok.pooled_embeddings(&refs).unwrap(),
        gpu_tok.pooled_embeddings(&refs).unwrap(),
    );
    for (x, y) in a.iter().zip(&b) {
        assert!(max_rel_diff(x, y) < 1e-3, "{}", max_rel_diff(x, y));
    }
    // A frame whose two nearest codes are a rounding error apart may take either: allow a few.
    let (a, b) = (
        cpu_tok.frame_codes(&refs).unwrap(),
        gpu_tok.frame_codes(&refs).unwrap(),
    );
    let frames: usize = a.iter().map(Vec::len).sum();
    let same: usize = a
        .iter()
        .zip(&b)
        .map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).filter(|(p, q)| p == q).count()
        })
        .sum();
    assert!(same as f64 >= 0.995 * frames as f64, "{same} of {frames}");
    let (a, b) = (
        cpu_tok.tokenize_mels(&refs).unwrap(),
        gpu_tok.tokenize_mels(&refs).unwrap(),
    );
    let mean: f64 = a
        .iter()
        .zip(&b)
        .map(|(x, y)| normalized_edit_distance(&x.tokens, &y.tokens))
        .sum::<f64>()
        / a.len() as f64;
    assert!(mean < 0.01, "{mean}");
}

#[test]
fn the_pairalign_tokenizer_gives_the_same_strings_on_cuda() {
    let Some(gpu) = cuda() else { return };
    let (cpu_tok, gpu_tok) = (
        shipped::pairalign(&Device::Cpu).unwrap(),
        shipped::pairalign(&gpu).unwrap(),
    );
    let mels = windows();
    let refs: Vec<&[f32]> = mels.iter().map(Vec::as_slice).collect();
    // The condition the decoder reads.
    let cond = |tok: &pairalign_models::PairAlignTokenizer| {
        let (x, lens) = tok.normalized_batch(&refs).unwrap();
        let c = tok.model().encode(&x.unwrap(), Some(&lens)).unwrap();
        c.states.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    let d = max_rel_diff(&cond(&cpu_tok), &cond(&gpu_tok));
    assert!(d < 1e-3, "{d}");
    // Greedy decoding: a near tie may go the other way and change what follows, so the
    // strings must agree nearly everywhere rather than bit for bit; every phase, and the
    // database's times, which come from the grid.
    let (a, b) = (
        cpu_tok.tokenize_mels_variants(&refs).unwrap(),
        gpu_tok.tokenize_mels_variants(&refs).unwrap(),
    );
    assert_eq!(a.len(), cpu_tok.config().grid_phases.max(1));
    assert_eq!(a.len(), b.len());
    let (mut sum, mut n, mut identical) = (0.0, 0usize, 0usize);
    for (va, vb) in a.iter().zip(&b) {
        for (x, y) in va.iter().zip(vb) {
            sum += normalized_edit_distance(&x.tokens, &y.tokens);
            identical += usize::from(x.tokens == y.tokens);
            n += 1;
        }
    }
    assert!(sum / (n as f64) < 0.03, "mean distance {}", sum / n as f64);
    assert!(identical as f64 >= 0.8 * n as f64, "{identical} of {n}");
    assert_eq!(a[0].len(), refs.len());
    for (x, y) in a[0].iter().zip(&b[0]) {
        if x.tokens.len() == y.tokens.len() {
            assert_eq!(x.times_ms, y.times_ms);
        }
    }
}
