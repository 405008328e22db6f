//! The VQ tokenizer end to end (CPU; CUDA too with `--features cuda`): shapes, determinism and batch
//! independence of inference, checkpoint round trips, input and weight errors. Its training
//! forward pass and losses are tested in `pairalign-train` (`train/tests/train/vq.rs`).
// The device-generic test bodies are plain `fn`s called by `test_device!`, which clippy's
// allow-unwrap-in-tests does not see as tests.
#![allow(clippy::unwrap_used)]

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use pairalign_datasets::mel::{LogMel, N_MELS};
use pairalign_models::vq::{MelNorm, CODE_FRAME_MS, CONFIG_FILE};
use pairalign_models::{Error, Tokenizer, VqConfig, VqModel, VqTokenizer};

/// A small model so that the tests stay fast.
fn tiny_config() -> VqConfig {
    VqConfig {
        channels: 32,
        encoder_layers: 2,
        decoder_layers: 1,
        codebook_size: 256,
        code_dim: 16,
        ..Default::default()
    }
}

/// Deterministic pseudo-random audio: noise plus a tone, `n` samples.
fn audio(seed: u32, n: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state as f32 / u32::MAX as f32 - 0.5) * 0.2;
            let f = 200.0 + 50.0 * seed as f32;
            noise + 0.3 * (i as f32 * f * std::f32::consts::TAU / 16_000.0).sin()
        })
        .collect()
}

/// Runs a test `fn NAME(device: &Device)` on the CPU as `NAME_cpu`, and on the first CUDA device
/// as `NAME_cuda` when built with `--features cuda` (candle's `test_device!`), where a GPU is.
macro_rules! test_device {
    ($name:ident, $cpu:ident, $cuda:ident) => {
        #[test]
        fn $cpu() {
            $name(&Device::Cpu);
        }

        /// Skipped (passes, saying so) on a machine without a GPU.
        #[cfg(feature = "cuda")]
        #[test]
        fn $cuda() {
            match Device::new_cuda(0) {
                Ok(device) => $name(&device),
                Err(e) => eprintln!(
                    "skipped: no CUDA device ({})",
                    e.to_string().lines().next().unwrap_or_default()
                ),
            }
        }
    };
}

fn tokenizer(cfg: &VqConfig) -> (VarMap, VqModel, VqTokenizer) {
    tokenizer_on(cfg, &Device::Cpu)
}

fn tokenizer_on(cfg: &VqConfig, device: &Device) -> (VarMap, VqModel, VqTokenizer) {
    let vm = VarMap::new();
    let model = VqModel::load(cfg, VarBuilder::from_varmap(&vm, DType::F32, device))
        .expect("a fresh model");
    let mel = LogMel::new();
    let mels: Vec<Vec<f32>> = (0..3).map(|s| mel.compute(&audio(s, 16_000))).collect();
    let refs: Vec<&[f32]> = mels.iter().map(Vec::as_slice).collect();
    let norm = MelNorm::from_mels(&refs, N_MELS);
    let tok = VqTokenizer::from_varmap(cfg, norm, &vm, device).expect("a tokenizer");
    (vm, model, tok)
}

#[test]
fn default_model_is_small() {
    let vm = VarMap::new();
    VqModel::load(
        &VqConfig::default(),
        VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let params: usize = vm.all_vars().iter().map(|v| v.elem_count()).sum();
    assert!(
        (500_000..2_000_000).contains(&params),
        "{params} parameters"
    );
}

test_device!(encode_shapes, encode_shapes_cpu, encode_shapes_cuda);
fn encode_shapes(device: &Device) {
    let (_, model, _) = tokenizer_on(&tiny_config(), device);
    for t in [100, 101] {
        let mel = Tensor::randn(0f32, 1.0, (2, t, N_MELS), device).unwrap();
        let codes = model.encode(&mel, None).unwrap();
        assert_eq!(codes.dims(), &[2, t.div_ceil(2)]);
        assert!(codes
            .flatten_all()
            .unwrap()
            .to_vec1::<u32>()
            .unwrap()
            .iter()
            .all(|&c| c < 256));
    }
}

test_device!(
    tokens_are_deterministic_in_range_and_timed,
    tokens_are_deterministic_in_range_and_timed_cpu,
    tokens_are_deterministic_in_range_and_timed_cuda
);
fn tokens_are_deterministic_in_range_and_timed(device: &Device) {
    let (_, _, tok) = tokenizer_on(&tiny_config(), device);
    let clips: Vec<Vec<f32>> = (0..4)
        .map(|s| audio(s, 8_000 + 1_000 * s as usize))
        .collect();
    let refs: Vec<&[f32]> = clips.iter().map(Vec::as_slice).collect();
    let a = tok.tokenize(&refs).unwrap();
    let b = tok.tokenize(&refs).unwrap();
    assert_eq!(a, b);
    let mel = LogMel::new();
    for (ts, clip) in a.iter().zip(&clips) {
        assert!(!ts.is_empty());
        assert_eq!(ts.tokens.len(), ts.times_ms.len());
        assert_eq!(ts.times_ms[0], 0);
        assert!(ts.times_ms.windows(2).all(|w| w[0] < w[1]));
        assert!(ts.times_ms.iter().all(|t| t % CODE_FRAME_MS == 0));
        let frames = mel.frames(clip.len()).div_ceil(2) as u32;
        assert!(*ts.times_ms.last().unwrap() < frames * CODE_FRAME_MS);
        assert!(ts.tokens.iter().all(|&c| u32::from(c) < tok.vocab_size()));
        assert!(
            ts.tokens.windows(2).all(|w| w[0] != w[1]),
            "repeats are collapsed"
        );
    }
    // A clip gets the same tokens alone as in a padded batch.
    for (i, clip) in refs.iter().enumerate() {
        assert_eq!(tok.tokenize(&[clip]).unwrap()[0], a[i], "clip {i}");
    }
}

#[test]
fn empty_and_short_inputs() {
    let (_, _, tok) = tokenizer(&tiny_config());
    assert!(tok.tokenize(&[]).unwrap().is_empty());
    let out = tok.tokenize(&[&[], &[0.0; 100], &audio(1, 4_000)]).unwrap();
    assert!(out[0].is_empty() && out[1].is_empty());
    assert!(!out[2].is_empty());
    let err = tok.tokenize_mels(&[&[0.0; 81]]).unwrap_err();
    assert!(matches!(err, Error::BadInput(_)), "{err}");
}

test_device!(
    save_then_load_gives_identical_tokens,
    save_then_load_gives_identical_tokens_cpu,
    save_then_load_gives_identical_tokens_cuda
);
fn save_then_load_gives_identical_tokens(device: &Device) {
    let (_, _, tok) = tokenizer_on(&tiny_config(), device);
    let dir = tempfile::tempdir().unwrap();
    tok.save(dir.path()).unwrap();
    let loaded = VqTokenizer::load(dir.path(), device).unwrap();
    assert_eq!(loaded.id(), "vq");
    assert_eq!(loaded.weights_hash(), tok.weights_hash());
    assert_eq!(loaded.weights_hash().len(), 64);
    assert_eq!(loaded.norm(), tok.norm());
    let clips: Vec<Vec<f32>> = (0..3).map(|s| audio(10 + s, 12_000)).collect();
    let refs: Vec<&[f32]> = clips.iter().map(Vec::as_slice).collect();
    assert_eq!(
        loaded.tokenize(&refs).unwrap(),
        tok.tokenize(&refs).unwrap()
    );
    // Saving again writes the same bytes.
    let dir2 = tempfile::tempdir().unwrap();
    loaded.save(dir2.path()).unwrap();
    let read = |d: &std::path::Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert_eq!(read(dir.path()), read(dir2.path()));
}

#[test]
fn different_weights_have_different_hashes() {
    let (_, _, a) = tokenizer(&tiny_config());
    let (_, _, b) = tokenizer(&tiny_config());
    assert_ne!(a.weights_hash(), b.weights_hash());
}

#[test]
fn load_reports_missing_files_and_mismatched_weights() {
    let dir = tempfile::tempdir().unwrap();
    let err = VqTokenizer::load(dir.path().join("nope"), &Device::Cpu).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");

    let (_, _, tok) = tokenizer(&tiny_config());
    tok.save(dir.path()).unwrap();
    let path = dir.path().join(CONFIG_FILE);
    let json = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, json.replace("\"code_dim\": 16", "\"code_dim\": 24")).unwrap();
    let err = VqTokenizer::load(dir.path(), &Device::Cpu).unwrap_err();
    assert!(matches!(err, Error::WeightsMismatch { .. }), "{err}");

    std::fs::write(
        &path,
        json.replace("\"codebook_size\": 256", "\"codebook_size\": 100"),
    )
    .unwrap();
    let err = VqTokenizer::load(dir.path(), &Device::Cpu).unwrap_err();
    assert!(matches!(err, Error::BadConfig(_)), "{err}");
}
