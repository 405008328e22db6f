//! The PairAlign tokenizer's model and inference (CPU; CUDA too with `--features cuda`):
//! teacher-forced shapes and masking, cached decoding against an uncached oracle, length bounds,
//! token times, checkpoint round trips, the weights hash, `init_from_vq` against the shipped VQ
//! encoder, and the shipped v2 tokenizers' level invariance. `throughput` (ignored; run it in
//! release) prints the x realtime of an untrained model of the shipping size. The training
//! objectives and loop are tested in `pairalign-train` (`train/tests/train/`).
// The device-generic test bodies are plain `fn`s called by `test_device!`, which clippy's
// allow-unwrap-in-tests does not see as tests.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::{VarBuilder, VarMap};
use pairalign_datasets::decode::{decode_file, DecodeOptions};
use pairalign_datasets::mel::{LogMel, N_MELS};
use pairalign_models::init::seeded_varmap;
use pairalign_models::pairalign::{
    greedy_choice, init_from_vq, Condition, PairAlignConfig, PairAlignModel, PairAlignTokenizer,
};
use pairalign_models::vq::{MelNorm, CONFIG_FILE, WEIGHTS_FILE};
use pairalign_models::{shipped, Error, Tokenizer, VqConfig, WINDOW_SAMPLES};
use sha2::{Digest, Sha256};

/// A small model so that the tests stay fast, on the paper's recipe (decoding with history,
/// the prior spread over each clip), which most tests here exercise.
fn tiny_config() -> PairAlignConfig {
    PairAlignConfig {
        encoder: VqConfig {
            channels: 32,
            encoder_layers: 2,
            decoder_layers: 1,
            codebook_size: 256,
            code_dim: 16,
            ..Default::default()
        },
        d_model: 32,
        heads: 2,
        ff_dim: 64,
        // The same prior decoding as teacher-forced, so that the oracle (a teacher-forced pass
        // per step) and the cached decoder must agree.
        decode_alignment_sigma: 0.0,
        ..PairAlignConfig::paper()
    }
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

/// Deterministic speech-like audio: a gliding sawtooth plus a little noise, `n` samples.
fn audio(seed: u32, n: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut phase = 0f32;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state as f32 / u32::MAX as f32 - 0.5) * 0.01;
            let f = 120.0 + 40.0 * (seed % 7) as f32 + 60.0 * (i as f32 / 2000.0).sin();
            phase = (phase + f / 16_000.0).fract();
            noise + 0.3 * (2.0 * phase - 1.0) * (i as f32 / 3000.0).sin().abs()
        })
        .collect()
}

/// A seeded model with `cfg` and its varmap; the norm comes from a few clips.
fn tokenizer_with(
    cfg: &PairAlignConfig,
    seed: u64,
    device: &Device,
) -> (VarMap, PairAlignTokenizer) {
    let vm = VarMap::new();
    PairAlignModel::load(cfg, seeded_varmap(&vm, seed, device)).unwrap();
    let mel = LogMel::new();
    let mels: Vec<Vec<f32>> = (0..3).map(|s| mel.compute(&audio(s, 16_000))).collect();
    let refs: Vec<&[f32]> = mels.iter().map(Vec::as_slice).collect();
    let norm = MelNorm::from_mels(&refs, N_MELS);
    let tok = PairAlignTokenizer::from_varmap(cfg, norm, &vm, device).unwrap();
    (vm, tok)
}

/// Sets one element of a weight in `vm` (e.g. the EOS bias of the LM head).
fn set_element(vm: &VarMap, name: &str, index: usize, value: f32) {
    let data = vm.data().lock().unwrap();
    let var = &data[name];
    let mut v: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
    v[index] = value;
    let t = Tensor::from_vec(v, var.shape(), var.device()).unwrap();
    var.set(&t).unwrap();
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

/// The condition of `mels` (each `frames x N_MELS`) as the tokenizer computes it.
fn condition(tok: &PairAlignTokenizer, mels: &[&[f32]]) -> Condition {
    let (x, lens) = tok.normalized_batch(mels).unwrap();
    tok.model().encode(&x.unwrap(), Some(&lens)).unwrap()
}

/// `[B, L]` decoder input: BOS, then each row's tokens, right-padded with PAD.
fn teacher_input(cfg: &PairAlignConfig, rows: &[Vec<u32>], device: &Device) -> Tensor {
    let l = 1 + rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = vec![cfg.pad(); rows.len() * l];
    for (row, tokens) in ids.chunks_exact_mut(l).zip(rows) {
        row[0] = cfg.bos();
        row[1..=tokens.len()].copy_from_slice(tokens);
    }
    Tensor::from_vec(ids, (rows.len(), l), device).unwrap()
}

#[test]
fn default_model_is_small() {
    let vm = VarMap::new();
    PairAlignModel::load(
        &PairAlignConfig::default(),
        VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let params: usize = vm.all_vars().iter().map(|v| v.elem_count()).sum();
    // Well under the 20 MB of f32 weights.
    assert!(
        (500_000..5_000_000).contains(&params),
        "{params} parameters"
    );
}

test_device!(
    teacher_forward_shapes_and_masking,
    teacher_forward_shapes_and_masking_cpu,
    teacher_forward_shapes_and_masking_cuda
);
fn teacher_forward_shapes_and_masking(device: &Device) {
    let cfg = tiny_config();
    let (_, tok) = tokenizer_with(&cfg, 1, device);
    let mel = LogMel::new();
    let mels: Vec<Vec<f32>> = [24_000, 9_000, 16_000]
        .iter()
        .enumerate()
        .map(|(s, &n)| mel.compute(&audio(s as u32, n)))
        .collect();
    let refs: Vec<&[f32]> = mels.iter().map(Vec::as_slice).collect();
    let cond = condition(&tok, &refs);
    let t2 = (mels[0].len() / N_MELS).div_ceil(2);
    assert_eq!(cond.states.dims(), &[3, t2, cfg.d_model]);
    let rows: Vec<Vec<u32>> = vec![vec![5, 9, 11, 2], vec![7], vec![1, 2, 3]];
    let input = teacher_input(&cfg, &rows, device);
    let out = tok.model().forward_teacher(&cond, &input).unwrap();
    assert_eq!(out.logits.dims(), &[3, 5, cfg.vocab_size()]);
    assert_eq!(out.times.dims(), &[3, 5]);
    let times: Vec<Vec<f32>> = out.times.to_vec2().unwrap();
    assert!(times.iter().flatten().all(|t| (0.0..=1.0).contains(t)));
    // Each row alone: padding in the condition (frames past its length) and in the tokens
    // (positions past its end) changes none of its logits.
    for (b, (mel, tokens)) in refs.iter().zip(&rows).enumerate() {
        let alone = condition(&tok, &[mel]);
        let input = teacher_input(&cfg, std::slice::from_ref(tokens), device);
        let single = tok.model().forward_teacher(&alone, &input).unwrap();
        let l = tokens.len() + 1;
        let batched = out.logits.i((b..b + 1, ..l)).unwrap();
        let diff = max_diff(&batched, &single.logits);
        assert!(diff < 1e-4, "row {b}: logits differ by {diff}");
        let diff = max_diff(&out.times.i((b..b + 1, ..l)).unwrap(), &single.times);
        assert!(diff < 1e-5, "row {b}: times differ by {diff}");
    }
    // The wrong number of rows is an error, not a broadcast.
    let err = tok
        .model()
        .forward_teacher(&cond, &input.narrow(0, 0, 2).unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::BadInput(_)), "{err}");
}

/// Decodes row by row without a cache: the whole teacher-forced forward over the prefix at each
/// step, the same greedy choice on its last position.
fn oracle_decode(
    model: &PairAlignModel,
    cond: &Condition,
    bounds: &[(usize, usize)],
) -> Vec<(Vec<u32>, Vec<f32>)> {
    let cfg = model.config();
    let device = cond.states.device();
    (0..cond.len())
        .map(|b| {
            let row = cond.select(&[b]).unwrap();
            let mut tokens: Vec<u32> = vec![];
            loop {
                let input = teacher_input(cfg, std::slice::from_ref(&tokens), device);
                let out = model.forward_teacher(&row, &input).unwrap();
                let logits: Vec<f32> = out.logits.i((0, tokens.len())).unwrap().to_vec1().unwrap();
                let choice = greedy_choice(
                    cfg,
                    &logits,
                    tokens.len(),
                    tokens.last().copied(),
                    bounds[b],
                );
                if choice == cfg.eos() {
                    let times: Vec<f32> = out.times.i(0).unwrap().to_vec1().unwrap();
                    return (tokens, times[1..].to_vec());
                }
                tokens.push(choice);
            }
        })
        .collect()
}

test_device!(
    cached_decoding_matches_the_uncached_oracle,
    cached_decoding_matches_the_uncached_oracle_cpu,
    cached_decoding_matches_the_uncached_oracle_cuda
);
fn cached_decoding_matches_the_uncached_oracle(device: &Device) {
    check_cached_against_oracle(&tiny_config(), device);
    // The local switches: the cache keeps only the last `decoder_context` positions, the
    // teacher-forced pass masks the rest.
    check_cached_against_oracle(&local_config(), device);
}

/// [`tiny_config`] with every locality switch on (the grid prior, which the oracle's
/// `forward_teacher` needs).
fn local_config() -> PairAlignConfig {
    PairAlignConfig {
        cond_window: 3,
        decoder_context: 2,
        absolute_positions: false,
        ..tiny_config()
    }
}

fn check_cached_against_oracle(cfg: &PairAlignConfig, device: &Device) {
    let cfg = cfg.clone();
    let eos_bias = "decoder.lm_head.bias";
    // Three EOS biases: neutral, likely (rows stop between their bounds) and certain.
    for (seed, bias) in [(2u64, None), (3, Some(2.0f32)), (4, Some(50.0))] {
        let vm = VarMap::new();
        PairAlignModel::load(&cfg, seeded_varmap(&vm, seed, device)).unwrap();
        if let Some(bias) = bias {
            set_element(&vm, eos_bias, cfg.eos() as usize, bias);
        }
        let tok =
            PairAlignTokenizer::from_varmap(&cfg, MelNorm::identity(N_MELS), &vm, device).unwrap();
        let mel = LogMel::new();
        let mels: Vec<Vec<f32>> = [48_000, 20_000, 6_000, 33_000]
            .iter()
            .enumerate()
            .map(|(s, &n)| mel.compute(&audio(seed as u32 * 10 + s as u32, n)))
            .collect();
        let refs: Vec<&[f32]> = mels.iter().map(Vec::as_slice).collect();
        let cond = condition(&tok, &refs);
        // The config's bounds, and wide ones so that EOS is free to come anywhere.
        let config_bounds: Vec<(usize, usize)> =
            cond.lens.iter().map(|&n| cfg.length_bounds(n)).collect();
        let wide = vec![(1, 30), (0, 12), (3, 5), (1, 63)];
        for bounds in [config_bounds, wide] {
            let cached = tok.model().decode_greedy_bounded(&cond, &bounds).unwrap();
            let oracle = oracle_decode(tok.model(), &cond, &bounds);
            for (b, (dec, (tokens, times))) in cached.iter().zip(&oracle).enumerate() {
                let got: Vec<u32> = dec.tokens.iter().map(|&t| u32::from(t)).collect();
                assert_eq!(&got, tokens, "seed {seed}, row {b}, bounds {bounds:?}");
                assert_eq!(dec.times.len(), times.len());
                for (x, y) in dec.times.iter().zip(times) {
                    assert!((x - y).abs() < 1e-4, "row {b}: time {x} against {y}");
                }
                let (min, max) = bounds[b];
                assert!((min..=max).contains(&dec.tokens.len()), "row {b}");
            }
        }
    }
}

#[test]
fn a_local_condition_is_the_same_wherever_the_audio_starts() {
    // The same 2 s of audio alone and after 0.6 s of other audio (60 mel frames, 30 condition
    // frames): with a banded condition and no absolute positions, the condition of a frame
    // away from the edges does not depend on the offset; with positions it does.
    let mel = LogMel::new();
    let clip = audio(3, 32_000);
    let mut shifted = audio(8, 9_600);
    shifted.extend_from_slice(&clip);
    let (a, b) = (mel.compute(&clip), mel.compute(&shifted));
    for (cfg, local) in [(local_config(), true), (tiny_config(), false)] {
        let (_, tok) = tokenizer_with(&cfg, 5, &Device::Cpu);
        let ca = condition(&tok, &[&a]);
        let cb = condition(&tok, &[&b]);
        // Frames 20..80 of the clip: far from its edges (the encoder's receptive field and
        // one band of 3 frames are well under 20).
        let middle_a = ca.states.i((0, 20..80)).unwrap();
        let middle_b = cb.states.i((0, 50..110)).unwrap();
        let diff = max_diff(&middle_a, &middle_b);
        if local {
            assert!(diff < 1e-4, "local condition moved with the offset: {diff}");
        } else {
            assert!(
                diff > 1e-2,
                "absolute positions should tell offsets apart: {diff}"
            );
        }
    }
    // A padded batch under a banded condition stays finite (a padding frame past the band of
    // every valid frame once saw no key at all: NaN).
    let (_, tok) = tokenizer_with(&local_config(), 5, &Device::Cpu);
    let short = mel.compute(&audio(4, 4_000));
    let cond = condition(&tok, &[&b, &short]);
    let states: Vec<f32> = cond.states.flatten_all().unwrap().to_vec1().unwrap();
    assert!(states.iter().all(|x| x.is_finite()));
}

test_device!(
    length_bounds_hold_and_times_are_monotone_within_the_clip,
    length_bounds_hold_and_times_are_monotone_within_the_clip_cpu,
    length_bounds_hold_and_times_are_monotone_within_the_clip_cuda
);
fn length_bounds_hold_and_times_are_monotone_within_the_clip(device: &Device) {
    let cfg = tiny_config();
    let mel = LogMel::new();
    // From 30 ms to 7 s: the longest are cut into 3 s windows.
    let lengths = [480, 800, 4_000, 16_000, 47_000, 48_000, 60_000, 112_000];
    let clips: Vec<Vec<f32>> = lengths
        .iter()
        .enumerate()
        .map(|(s, &n)| audio(s as u32, n))
        .collect();
    let refs: Vec<&[f32]> = clips.iter().map(Vec::as_slice).collect();
    // Each window's bounds; the clip's are their sums.
    let bounds = |n_samples: usize| -> (usize, usize) {
        let frames = mel.frames(n_samples);
        let mut sum = (0, 0);
        let mut left = frames;
        while left > 0 {
            let piece = left.min(cfg.window_frames);
            let (lo, hi) = cfg.length_bounds(piece.div_ceil(2));
            sum = (sum.0 + lo, sum.1 + hi);
            left -= piece;
        }
        sum
    };
    // EOS bias: neutral, then certain (every window at its minimum), then impossible (every
    // window at its maximum).
    for bias in [None, Some(100.0f32), Some(-100.0)] {
        let (vm, tok) = tokenizer_with(&cfg, 5, device);
        let tok = match bias {
            Some(b) => {
                set_element(&vm, "decoder.lm_head.bias", cfg.eos() as usize, b);
                PairAlignTokenizer::from_varmap(&cfg, tok.norm().clone(), &vm, device).unwrap()
            }
            None => tok,
        };
        let out = tok.tokenize(&refs).unwrap();
        for ((ts, clip), &n) in out.iter().zip(&clips).zip(&lengths) {
            let (lo, hi) = bounds(n);
            match bias {
                Some(b) if b > 0.0 => assert_eq!(ts.len(), lo, "{n} samples"),
                Some(_) => assert_eq!(ts.len(), hi, "{n} samples"),
                None => assert!((lo..=hi).contains(&ts.len()), "{n} samples: {}", ts.len()),
            }
            assert_eq!(ts.tokens.len(), ts.times_ms.len());
            assert!(ts.tokens.iter().all(|&t| u32::from(t) < tok.vocab_size()));
            assert!(
                ts.times_ms.windows(2).all(|w| w[0] <= w[1]),
                "{:?}",
                ts.times_ms
            );
            let duration_ms = (clip.len() * 1000 / 16_000) as u32;
            assert!(ts.times_ms.iter().all(|&t| t < duration_ms), "{n} samples");
        }
        // Empty and sub-frame clips give nothing; the batch order is kept.
        let out = tok.tokenize(&[&[], &[0.1; 300], &clips[2]]).unwrap();
        assert!(out[0].is_empty() && out[1].is_empty());
        assert_eq!(out[2], tok.tokenize(&[&clips[2]]).unwrap()[0]);
    }
}

#[test]
fn a_clip_gets_the_same_tokens_alone_and_in_a_batch() {
    let (_, tok) = tokenizer_with(&tiny_config(), 6, &Device::Cpu);
    let clips: Vec<Vec<f32>> = (0..6)
        .map(|s| audio(s, 12_000 + 7_000 * s as usize))
        .collect();
    let refs: Vec<&[f32]> = clips.iter().map(Vec::as_slice).collect();
    let all = tok.tokenize(&refs).unwrap();
    assert_eq!(all, tok.tokenize(&refs).unwrap(), "deterministic");
    for (i, clip) in refs.iter().enumerate() {
        assert_eq!(tok.tokenize(&[clip]).unwrap()[0], all[i], "clip {i}");
    }
}

test_device!(
    save_then_load_gives_identical_tokens,
    save_then_load_gives_identical_tokens_cpu,
    save_then_load_gives_identical_tokens_cuda
);
fn save_then_load_gives_identical_tokens(device: &Device) {
    // Decoding at the default prior width: the weights hash is then the file's SHA-256.
    let cfg = PairAlignConfig {
        decode_alignment_sigma: PairAlignConfig::default().decode_alignment_sigma,
        ..tiny_config()
    };
    let (_, tok) = tokenizer_with(&cfg, 7, device);
    assert_eq!(tok.id(), "pairalign");
    assert_eq!(tok.vocab_size(), 256);
    let dir = tempfile::tempdir().unwrap();
    tok.save(dir.path()).unwrap();
    let bytes = std::fs::read(dir.path().join(WEIGHTS_FILE)).unwrap();
    let hash: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(tok.weights_hash(), hash);
    let loaded = PairAlignTokenizer::load(dir.path(), device).unwrap();
    assert_eq!(loaded.weights_hash(), tok.weights_hash());
    assert_eq!(loaded.config(), tok.config());
    assert_eq!(loaded.norm(), tok.norm());
    let clips: Vec<Vec<f32>> = (0..3).map(|s| audio(20 + s, 30_000)).collect();
    let refs: Vec<&[f32]> = clips.iter().map(Vec::as_slice).collect();
    assert_eq!(
        loaded.tokenize(&refs).unwrap(),
        tok.tokenize(&refs).unwrap()
    );
    let dir2 = tempfile::tempdir().unwrap();
    loaded.save(dir2.path()).unwrap();
    assert_eq!(
        std::fs::read(dir2.path().join(WEIGHTS_FILE)).unwrap(),
        bytes
    );
}

/// Editing a decoding field of `config.json` (the prior's width, the rate, a bound) changes
/// the strings, so it changes the weights hash a database checks; training-only fields do
/// not. The shipped pairalign-v1 keeps the hash of its weights file, which
/// every database indexed with it recorded.
#[test]
fn decoding_fields_are_in_the_weights_hash() {
    let cfg = PairAlignConfig {
        decode_alignment_sigma: PairAlignConfig::default().decode_alignment_sigma,
        ..tiny_config()
    };
    let (_, tok) = tokenizer_with(&cfg, 9, &Device::Cpu);
    let dir = tempfile::tempdir().unwrap();
    tok.save(dir.path()).unwrap();
    let path = dir.path().join(CONFIG_FILE);
    let json = std::fs::read_to_string(&path).unwrap();
    let hash_with = |from: &str, to: &str| {
        assert!(json.contains(from), "{from} not in {json}");
        std::fs::write(&path, json.replace(from, to)).unwrap();
        PairAlignTokenizer::load(dir.path(), &Device::Cpu)
            .unwrap()
            .weights_hash()
            .to_string()
    };
    let base = hash_with("", "");
    assert_eq!(base, tok.weights_hash());
    let clip = audio(3, 48_000);
    let strings = |from: &str, to: &str| {
        std::fs::write(&path, json.replace(from, to)).unwrap();
        PairAlignTokenizer::load(dir.path(), &Device::Cpu)
            .unwrap()
            .tokenize(&[&clip])
            .unwrap()
    };
    let base_strings = strings("", "");
    let mut changed_strings = 0;
    for (from, to) in [
        (
            "\"decode_alignment_sigma\": 0.03",
            "\"decode_alignment_sigma\": 0.05",
        ),
        ("\"token_rate\": 12.7", "\"token_rate\": 15.0"),
        ("\"length_tolerance\": 0.3", "\"length_tolerance\": 0.1"),
        ("\"window_frames\": 300", "\"window_frames\": 200"),
        ("\"decoder_context\": 0", "\"decoder_context\": 3"),
    ] {
        assert_ne!(hash_with(from, to), base, "{to}");
        changed_strings += usize::from(strings(from, to) != base_strings);
    }
    // The fields are in the hash because they change strings (most do on one clip).
    assert!(changed_strings >= 3, "{changed_strings}");
    for (from, to) in [
        ("\"contrast_weight\": 0.5", "\"contrast_weight\": 0.7"),
        ("\"alignment_sigma\": 0.1", "\"alignment_sigma\": 0.2"),
    ] {
        assert_eq!(hash_with(from, to), base, "{to}");
    }
    // The fixed grid changes every string; the number of query phases does not change the
    // database's.
    let grid = hash_with("\"grid_phases\": 0", "\"grid_phases\": 4");
    assert_ne!(grid, base);
    assert_eq!(hash_with("\"grid_phases\": 0", "\"grid_phases\": 8"), grid);
    if shipped::PAIRALIGN_SHIPPED {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(shipped::PAIRALIGN_DIR);
        let file: String = Sha256::digest(std::fs::read(dir.join(WEIGHTS_FILE)).unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        // pairalign-v1 decodes on the fixed grid, locally and without decoding history, so
        // its hash covers its decoding fields (not the file's SHA-256 alone), and a copy
        // decoding with history is another tokenizer.
        let v1 = shipped::pairalign(&Device::Cpu).unwrap();
        assert_ne!(v1.weights_hash(), file);
        let on_disk = PairAlignTokenizer::load(&dir, &Device::Cpu).unwrap();
        assert_eq!(on_disk.weights_hash(), v1.weights_hash());
        let copy = tempfile::tempdir().unwrap();
        std::fs::copy(dir.join(WEIGHTS_FILE), copy.path().join(WEIGHTS_FILE)).unwrap();
        let config = std::fs::read_to_string(dir.join(CONFIG_FILE)).unwrap();
        for field in [
            "\"grid_phases\": 4,",
            "\"decode_history\": false",
            "\"cond_window\": 12,",
        ] {
            assert!(config.contains(field), "{field}");
        }
        std::fs::write(
            copy.path().join(CONFIG_FILE),
            config.replace("\"decode_history\": false", "\"decode_history\": true"),
        )
        .unwrap();
        let with_history = PairAlignTokenizer::load(copy.path(), &Device::Cpu).unwrap();
        assert_ne!(with_history.weights_hash(), v1.weights_hash());
    }
}

/// Without decoding history (`decode_history` false) a local model's token depends on the
/// audio near its grid point only: two clips that differ in their first second and agree
/// after it get the same tokens wherever the condition, the prior and the decoder's context
/// cannot reach back into the first second. With history a token follows the codes chosen
/// before it as well; the switch is part of the weights hash.
#[test]
fn decoding_without_history_is_local() {
    let local = PairAlignConfig {
        cond_window: 8,
        decoder_context: 2,
        absolute_positions: false,
        decode_alignment_sigma: 0.02,
        grid_phases: 1,
        decode_history: false,
        ..tiny_config()
    };
    let (vm, free) = tokenizer_with(&local, 5, &Device::Cpu);
    let a = audio(1, 48_000);
    let mut b = a.clone();
    b[..16_000].copy_from_slice(&audio(2, 16_000));
    let mel = LogMel::new();
    let (ma, mb) = (mel.compute(&a), mel.compute(&b));
    let s = free.tokenize_mels(&[&ma, &mb]).unwrap();
    assert_eq!((s[0].len(), s[1].len()), (38, 38));
    assert_ne!(
        s[0].tokens[..10],
        s[1].tokens[..10],
        "the first second differs"
    );
    // Position 24's centre is 1.93 s in: more than 0.9 s past the change, beyond the
    // condition's window (8 frames a layer), the prior (0.02 of the clip) and two layers of
    // two earlier positions.
    assert_eq!(s[0].tokens[24..], s[1].tokens[24..]);
    // The same weights with history: another hash, and never a code twice in a row.
    let with_history = PairAlignConfig {
        decode_history: true,
        ..local.clone()
    };
    let tok =
        PairAlignTokenizer::from_varmap(&with_history, free.norm().clone(), &vm, &Device::Cpu)
            .unwrap();
    assert_ne!(tok.weights_hash(), free.weights_hash());
    let h = tok.tokenize_mels(&[&ma]).unwrap().remove(0);
    assert_eq!(h.len(), 38);
    assert!(
        h.tokens.windows(2).all(|w| w[0] != w[1]),
        "with history a code never repeats"
    );
}

#[test]
fn grid_phases_decode_on_a_fixed_grid_and_give_one_query_variant_each() {
    let clip = audio(4, 48_000);
    let mel = LogMel::new().compute(&clip);
    let (_, free) = tokenizer_with(&tiny_config(), 9, &Device::Cpu);
    let cfg = PairAlignConfig {
        grid_phases: 4,
        ..tiny_config()
    };
    let (_, fixed) = tokenizer_with(&cfg, 9, &Device::Cpu);
    // One token every 1 / token_rate s, the first half a period in: 38 in a 3 s window (150
    // condition frames), 39 when the grid starts at the window's start.
    let period = 50.0 / cfg.token_rate;
    let centres = cfg.grid_centres(150, 0.5);
    assert_eq!(centres.len(), 38);
    for (k, c) in centres.iter().enumerate() {
        assert!((c - (k as f64 + 0.5) * period).abs() < 1e-9);
    }
    assert_eq!(cfg.grid_centres(150, 0.0).len(), 39);
    assert_eq!(cfg.grid_centres(10_000, 0.5).len(), cfg.max_tokens - 1);

    // At offset 0.5 the fixed grid puts the prior where the trained grid does, so the two
    // decodings agree token for token until the free one chooses EOS (or the fixed one runs
    // out of grid points).
    let a = free.tokenize_mels(&[&mel]).unwrap().remove(0);
    let b = fixed.tokenize_mels(&[&mel]).unwrap().remove(0);
    assert_eq!(b.len(), 38);
    let common = a.len().min(b.len());
    assert!(common > 10, "{common}");
    assert_eq!(a.tokens[..common], b.tokens[..common]);

    // The query variants: the database's string first, then the grid moved by 1/4, 2/4, 3/4.
    // (The clip's log-mel is a little under 300 frames: 149 condition frames.)
    let frames = (mel.len() / N_MELS).div_ceil(2);
    let variants = fixed.tokenize_mels_variants(&[&mel]).unwrap();
    assert_eq!(variants.len(), 4);
    assert_eq!(variants[0][0], b);
    for (v, offset) in variants.iter().zip([0.5, 0.75, 0.0, 0.25]) {
        assert_eq!(
            v[0].len(),
            cfg.grid_centres(frames, offset).len(),
            "{offset}"
        );
    }
    assert!(variants[1][0] != variants[0][0] || variants[2][0] != variants[0][0]);
    // A grid token's time is where its grid cell starts, half a period before its centre
    // (0 for a centre within half a period of the start): the database's first token at 0,
    // then one every 1 / token_rate s, whatever the timing head says.
    let cell_ms = 1000.0 / cfg.token_rate;
    for (v, offset) in variants.iter().zip([0.5, 0.75, 0.0, 0.25]) {
        let s = &v[0];
        assert_eq!(s.times_ms.len(), s.len());
        for (k, &t) in s.times_ms.iter().enumerate() {
            let want = ((k as f64 + offset - 0.5) * cell_ms).max(0.0);
            assert!(
                (f64::from(t) - want).abs() <= 0.5,
                "{offset} {k}: {t} vs {want}"
            );
        }
    }
    // In a batch with a longer clip (two windows) every clip gets the strings it gets alone.
    let long = LogMel::new().compute(&audio(5, 80_000));
    let both = fixed.tokenize_mels_variants(&[&mel, &long]).unwrap();
    let long_alone = fixed.tokenize_mels_variants(&[&long]).unwrap();
    for v in 0..4 {
        assert_eq!(both[v][0], variants[v][0]);
        assert_eq!(both[v][1], long_alone[v][0]);
    }
    // Its second window's grid starts again at the window's start, 3 s in.
    let long_db = &long_alone[0][0];
    assert_eq!(long_db.times_ms[..2], [0, 79]);
    assert_eq!(long_db.times_ms[38..40], [3000, 3079]);
    // Without grid phases there is one variant, the string itself.
    let one = free.tokenize_mels_variants(&[&mel]).unwrap();
    assert_eq!(one, vec![vec![a.clone()]]);

    // The phase count is a query-time setting: at 2 phases the variants are the 4 phases'
    // offsets 0.5 and 0.0, a file's string is unchanged, and so is the weights hash.
    let hash = fixed.weights_hash().to_string();
    let two = fixed.with_grid_phases(2).unwrap();
    assert_eq!(two.weights_hash(), hash);
    assert_eq!(two.tokenize_mels(&[&mel]).unwrap().remove(0), b);
    let halves = two.tokenize_mels_variants(&[&mel]).unwrap();
    assert_eq!(halves, vec![variants[0].clone(), variants[2].clone()]);
    let one = two.with_grid_phases(1).unwrap();
    assert_eq!(one.tokenize_mels_variants(&[&mel]).unwrap(), vec![vec![b]]);
    let err = one.with_grid_phases(0).unwrap_err();
    assert!(err.to_string().contains("1..=16"), "{err}");
    let (_, again) = tokenizer_with(&cfg, 9, &Device::Cpu);
    let err = again.with_grid_phases(17).unwrap_err();
    assert!(err.to_string().contains("1..=16"), "{err}");
    let err = free.with_grid_phases(2).unwrap_err();
    assert!(err.to_string().contains("no fixed token grid"), "{err}");
}

/// A checkpoint written before the model config had a version (format 1, as pairalign-v1
/// and v2 ship) reads with the paper's defaults for what it leaves out, and the same weights
/// hash; it may name a retired recipe's field only with the value that kept it off.
#[test]
fn a_version_1_checkpoint_reads_and_retired_recipes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, tok) = tokenizer_with(&tiny_config(), 9, &Device::Cpu);
    tok.save(dir.path()).unwrap();
    let path = dir.path().join(CONFIG_FILE);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["format_version"], 2);
    assert_eq!(json["model"]["format_version"], 2);
    let write = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut old = json.clone();
        old["format_version"] = 1.into();
        let model = old["model"].as_object_mut().unwrap();
        model.remove("format_version");
        // Left out: a version-1 reader takes the paper's defaults for them.
        model.remove("decode_history");
        model.remove("grid_targets");
        edit(&mut old);
        std::fs::write(&path, serde_json::to_string_pretty(&old).unwrap()).unwrap();
        PairAlignTokenizer::load(dir.path(), &Device::Cpu)
    };
    let old = write(&|_| {}).unwrap();
    assert_eq!(old.weights_hash(), tok.weights_hash());
    assert_eq!(old.config(), tok.config());
    let off = write(&|v| {
        v["model"]["query_phases"] = 1.into();
        v["model"]["anchors"] = "grid".into();
        v["model"]["draft_tokens"] = false.into();
    })
    .unwrap();
    assert_eq!(off.weights_hash(), tok.weights_hash());
    for (field, value) in [
        ("query_phases", serde_json::json!(6)),
        ("anchors", serde_json::json!("vq-runs")),
        ("target_passes", serde_json::json!(3)),
    ] {
        let err = write(&|v| v["model"][field] = value.clone()).unwrap_err();
        assert!(err.to_string().contains("retired"), "{field}: {err}");
    }
    // The shipped v1 config (format 1, every field named) opens with its recorded hash.
    if shipped::PAIRALIGN_SHIPPED {
        let v1 = shipped::pairalign(&Device::Cpu).unwrap();
        assert!(!v1.config().decode_history && v1.config().grid_phases == 4);
    }
}

#[test]
fn load_reports_missing_files_and_mismatched_weights() {
    let dir = tempfile::tempdir().unwrap();
    let err = PairAlignTokenizer::load(dir.path().join("nope"), &Device::Cpu).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    let (_, tok) = tokenizer_with(&tiny_config(), 8, &Device::Cpu);
    tok.save(dir.path()).unwrap();
    let path = dir.path().join(CONFIG_FILE);
    let json = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, json.replace("\"d_model\": 32", "\"d_model\": 64")).unwrap();
    let err = PairAlignTokenizer::load(dir.path(), &Device::Cpu).unwrap_err();
    assert!(matches!(err, Error::WeightsMismatch { .. }), "{err}");
    std::fs::write(&path, json.replace("\"heads\": 2", "\"heads\": 3")).unwrap();
    let err = PairAlignTokenizer::load(dir.path(), &Device::Cpu).unwrap_err();
    assert!(matches!(err, Error::BadConfig(_)), "{err}");
    std::fs::write(&path, &json).unwrap();
    std::fs::write(dir.path().join(WEIGHTS_FILE), b"garbage").unwrap();
    let err = PairAlignTokenizer::load(dir.path(), &Device::Cpu).unwrap_err();
    assert!(matches!(err, Error::WeightsMismatch { .. }), "{err}");
    let err = tok.tokenize_mels(&[&[0.0; 81]]).unwrap_err();
    assert!(matches!(err, Error::BadInput(_)), "{err}");
}

#[test]
fn init_from_vq_loads_the_shipped_encoder() {
    let device = Device::Cpu;
    let vq = shipped::vq(&device).unwrap();
    let cfg = PairAlignConfig::from_vq(vq.config());
    let vm = VarMap::new();
    let model = PairAlignModel::load(&cfg, seeded_varmap(&vm, 9, &device)).unwrap();
    let copied = init_from_vq(&cfg, &vm, &vq).unwrap();
    assert_eq!(
        copied,
        vq.weights()
            .keys()
            .filter(|k| k.starts_with("encoder."))
            .count()
    );
    let mel = LogMel::new();
    let m = mel.compute(&audio(3, 20_000));
    let frames = m.len() / N_MELS;
    let x = Tensor::from_vec(m, (1, frames, N_MELS), &device).unwrap();
    let ours = model.encoder.forward(&x, None).unwrap();
    let theirs = vq.model().encoder.forward(&x, None).unwrap();
    // The copy's weights are `Var`s, so its GELU is candle's (differentiable); the shipped
    // model's is the one-pass CPU kernel of `pairalign_models::ops::gelu`, within 1e-6 a value.
    let diff = max_diff(&ours, &theirs);
    assert!(diff <= 1e-4, "{diff}");
    // The tokenizer built on it carries the VQ normalization.
    let tok = PairAlignTokenizer::from_varmap(&cfg, vq.norm().clone(), &vm, &device).unwrap();
    assert_eq!(
        tok.weights()["encoder.proj.weight"]
            .to_vec2::<f32>()
            .unwrap(),
        vq.weights()["encoder.proj.weight"]
            .to_vec2::<f32>()
            .unwrap()
    );
    // Another encoder config is refused.
    let err = init_from_vq(&tiny_config(), &vm, &vq).unwrap_err();
    assert!(matches!(err, Error::BadConfig(_)), "{err}");
}

/// The bundled short samples, in name order.
fn short_sample_paths() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/short");
    let mut paths: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
}

/// Throughput of an untrained model of the shipping size on 3 s windows (the shipped VQ
/// encoder, default decoder; 2 cores on the project machines). Not asserted: run with
/// `cargo test --release -p pairalign-models --test pairalign -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let device = Device::Cpu;
    let vq = shipped::vq(&device).unwrap();
    let cfg = PairAlignConfig::from_vq(vq.config());
    let tok = PairAlignTokenizer::init_from_vq(&cfg, &vq, 10, &device).unwrap();
    let clips: Vec<Vec<f32>> = (0..64).map(|s| audio(s, WINDOW_SAMPLES)).collect();
    let refs: Vec<&[f32]> = clips.iter().map(Vec::as_slice).collect();
    let mel = LogMel::new();
    let mels: Vec<Vec<f32>> = clips.iter().map(|c| mel.compute(c)).collect();
    let mel_refs: Vec<&[f32]> = mels.iter().map(Vec::as_slice).collect();
    tok.tokenize(&refs[..4]).unwrap();
    let audio_s = clips.len() as f64 * 3.0;
    for round in 0..3 {
        let started = Instant::now();
        let out = tok.tokenize(&refs).unwrap();
        let wall = started.elapsed().as_secs_f64();
        let started = Instant::now();
        tok.tokenize_mels(&mel_refs).unwrap();
        let wall_mels = started.elapsed().as_secs_f64();
        let started = Instant::now();
        vq.tokenize(&refs).unwrap();
        let wall_vq = started.elapsed().as_secs_f64();
        let tokens: usize = out.iter().map(|t| t.len()).sum();
        println!(
            "round {round}: {:.0}x realtime from audio, {:.0}x from mels, {:.1} tokens/s; \
             VQ {:.0}x; {} threads",
            audio_s / wall,
            audio_s / wall_mels,
            tokens as f64 / audio_s,
            audio_s / wall_vq,
            rayon::current_num_threads()
        );
    }
}

/// Levenshtein distance of `a` and `b` over the longer length (0 for two empty strings).
fn normalized_edit_distance(a: &[u16], b: &[u16]) -> f64 {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(x != y));
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()] as f64 / a.len().max(b.len()).max(1) as f64
}

/// The bundled samples' audio, each brought to a peak of -21 dBFS, so that 20 dB louder does
/// not clip.
fn quiet_samples() -> Vec<Vec<f32>> {
    short_sample_paths()
        .iter()
        .map(|path| {
            let audio = decode_file(path, &DecodeOptions::default()).unwrap();
            let peak = audio.samples.iter().fold(0f32, |m, s| m.max(s.abs()));
            let scale = 10f32.powf(-21.0 / 20.0) / peak;
            audio.samples.iter().map(|s| s * scale).collect()
        })
        .collect()
}

/// The strings of `audio`'s 3 s windows, joined (as the index tokenizes a file).
fn file_tokens(tok: &dyn Tokenizer, audio: &[f32]) -> Vec<u16> {
    let windows: Vec<&[f32]> = audio.chunks(WINDOW_SAMPLES).collect();
    tok.tokenize(&windows)
        .unwrap()
        .into_iter()
        .flat_map(|s| s.tokens)
        .collect()
}

/// Issue 22, part 1: tokens of a clip and of the same clip at any gain within +-20 dB (no
/// clipping) are identical or within a normalized edit distance of 0.02, for the shipped
/// tokenizers with the level-normalizing front end (vq-v2, pairalign-v2, pairalign-v3). vq-v1,
/// without it, is far from that: the test can fail.
#[test]
fn the_shipped_v2_tokenizers_ignore_the_level() {
    let device = Device::Cpu;
    let mut subjects: Vec<(&str, Box<dyn Tokenizer>)> =
        vec![("vq-v2", Box::new(shipped::vq_v2(&device).unwrap()))];
    if shipped::PAIRALIGN_V2_SHIPPED {
        subjects.push((
            "pairalign-v2",
            Box::new(shipped::pairalign_v2(&device).unwrap()),
        ));
    }
    if shipped::PAIRALIGN_V3_SHIPPED {
        subjects.push((
            "pairalign-v3",
            Box::new(shipped::pairalign_v3(&device).unwrap()),
        ));
    }
    let gains_db = [-20.0f32, -12.0, -6.0, -3.0, 3.0, 6.0, 12.0, 20.0];
    let samples = quiet_samples();
    for (name, tok) in &subjects {
        let mut worst = 0f64;
        for (n, audio) in samples.iter().enumerate() {
            let reference = file_tokens(tok.as_ref(), audio);
            for db in gains_db {
                let g = 10f32.powf(db / 20.0);
                let louder: Vec<f32> = audio.iter().map(|s| s * g).collect();
                let ned = normalized_edit_distance(&reference, &file_tokens(tok.as_ref(), &louder));
                assert!(ned <= 0.02, "{name}, sample {n}, {db} dB: NED {ned:.3}");
                worst = worst.max(ned);
            }
        }
        eprintln!(
            "{name}: largest NED over {} samples and {} gains: {worst:.4}",
            samples.len(),
            gains_db.len()
        );
    }
    // Without the level front end the tokens move with the level.
    let v1 = shipped::vq(&device).unwrap();
    let audio = &samples[0];
    let quieter: Vec<f32> = audio.iter().map(|s| s * 10f32.powf(-12.0 / 20.0)).collect();
    let ned = normalized_edit_distance(&file_tokens(&v1, audio), &file_tokens(&v1, &quieter));
    assert!(ned > 0.1, "vq-v1 at -12 dB: NED {ned:.3}");
}
