//! The VQ tokenizer's training: the training forward pass's shapes and a few steps of its
//! objective that lower the loss (CPU; CUDA too with `--features cuda`); the loop end to end on
//! a tiny feature cache: it lowers the loss, a run stopped and resumed ends with the same bytes
//! as an uninterrupted one, the stop flag leaves a checkpoint, and a checkpoint refuses other
//! data.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use candle_core::{DType, Tensor};
use candle_nn::{Optimizer, ParamsAdamW, VarBuilder, VarMap};
use pairalign_datasets::cache::{CacheWriter, Dtype, FeatureCache};
use pairalign_datasets::mel::{LogMel, N_MELS};
use pairalign_models::vq::{MelNorm, CONFIG_FILE, WEIGHTS_FILE};
use pairalign_models::{Device, Tokenizer, VqConfig, VqModel, VqTokenizer};
use pairalign_train::vq::{ema_update, forward, loss};
use pairalign_train::{Error, VqLogRecord, VqTrainConfig, VqTrainer, LOG_FILE};

/// Speech-like test audio: a sawtooth (harmonics over the whole band) whose pitch glides and
/// depends on the clip, plus a little noise; `speed` scales the pitch for a second view.
fn audio(seed: u32, n: usize, speed: f32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut phase = 0f32;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state as f32 / u32::MAX as f32 - 0.5) * 0.002;
            let f = 120.0 + 40.0 * (seed % 7) as f32 + 60.0 * (i as f32 / 2000.0).sin();
            phase = (phase + speed * f / 16_000.0).fract();
            noise + 0.3 * (2.0 * phase - 1.0)
        })
        .collect()
}

/// A cache of `clips` clips of 0.5 s (the last ones shorter, so batches are padded), two views
/// each (two speeds).
fn tiny_cache(path: &Path, clips: u32) -> FeatureCache {
    let mel = LogMel::new();
    let mut writer = CacheWriter::create(path, N_MELS, 2, Dtype::F32).unwrap();
    for c in 0..clips {
        let n = if c + 2 >= clips { 5_000 } else { 8_000 };
        let a = mel.compute(&audio(c, n, 1.0));
        let b = mel.compute(&audio(c, n, 1.05));
        writer.add_clip(&format!("c{c}"), &[&a, &b]).unwrap();
    }
    writer.finish().unwrap();
    FeatureCache::open(path).unwrap()
}

fn tiny_config(steps: u64) -> VqTrainConfig {
    let mut cfg = VqTrainConfig {
        model: VqConfig {
            channels: 32,
            encoder_layers: 1,
            decoder_layers: 1,
            codebook_size: 256,
            code_dim: 16,
            ..Default::default()
        },
        steps,
        batch_size: 4,
        crop_frames: 40,
        seed: 3,
        checkpoint_every: 3,
        log_every: 2,
        norm_clips: 8,
        ..Default::default()
    };
    cfg.lr.warmup_steps = 2;
    cfg.lr.peak = 3e-3;
    cfg
}

fn run(trainer: &mut VqTrainer<'_>, stop: &AtomicBool) -> (Vec<VqLogRecord>, bool) {
    let mut records = vec![];
    let report = trainer.run(stop, |r| records.push(r.clone())).unwrap();
    (records, report.interrupted)
}

#[test]
fn training_lowers_the_loss_and_writes_a_tokenizer() {
    const STEPS: u64 = 80;
    let dir = tempfile::tempdir().unwrap();
    let cache = tiny_cache(&dir.path().join("c.feat"), 10);
    let out = dir.path().join("run");
    let mut trainer = VqTrainer::new(&cache, tiny_config(STEPS), &out, &Device::Cpu).unwrap();
    let (records, interrupted) = run(&mut trainer, &AtomicBool::new(false));
    assert!(!interrupted);
    assert_eq!(records.last().unwrap().step, STEPS);
    // Batches differ (and some are padded), so compare averages: the first two records
    // against the last quarter of the run.
    let mean = |rs: &[VqLogRecord]| rs.iter().map(|r| r.recon).sum::<f64>() / rs.len() as f64;
    let first = mean(&records[..2]);
    let last = mean(&records[records.len() * 3 / 4..]);
    assert!(last < 0.7 * first, "recon went from {first} to {last}");
    // Epochs advance: 10 clips in batches of 4 is 3 batches per epoch.
    assert_eq!(records.last().unwrap().epoch, (STEPS - 1) / 3);
    // The log file holds the same records.
    let logged: Vec<VqLogRecord> = std::fs::read_to_string(out.join(LOG_FILE))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(logged.len(), records.len());
    assert_eq!(logged.last().unwrap().step, STEPS);
    // The output folder is a tokenizer that gives the trainer's tokens.
    let tok = VqTokenizer::load(&out, &Device::Cpu).unwrap();
    let mut mel = Vec::new();
    cache.view(0, 0).to_f32(&mut mel);
    let mine = trainer.tokenizer().unwrap().tokenize_mels(&[&mel]).unwrap();
    assert_eq!(tok.tokenize_mels(&[&mel]).unwrap(), mine);
    assert!(!mine[0].is_empty());
}

#[test]
fn stopped_and_resumed_run_ends_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tiny_cache(&dir.path().join("c.feat"), 10);
    let straight = dir.path().join("straight");
    let mut t = VqTrainer::new(&cache, tiny_config(8), &straight, &Device::Cpu).unwrap();
    let (straight_log, _) = run(&mut t, &AtomicBool::new(false));

    // Stopped before its first step: a checkpoint at step 0, no final tokenizer.
    let resumed = dir.path().join("resumed");
    let mut t = VqTrainer::new(&cache, tiny_config(8), &resumed, &Device::Cpu).unwrap();
    let (records, interrupted) = run(&mut t, &AtomicBool::new(true));
    assert!(interrupted && records.is_empty());
    assert!(
        !resumed.join(WEIGHTS_FILE).exists(),
        "no final tokenizer when stopped"
    );
    assert!(resumed.join("checkpoint/optimizer.safetensors").is_file());

    // Resumed in a new trainer, stopped again after step 4 (mid-epoch, between checkpoints:
    // the stop saves its own), then resumed to the end.
    let mut t = VqTrainer::resume(&cache, &resumed, None, &Device::Cpu).unwrap();
    assert_eq!(t.step(), 0);
    let stop = AtomicBool::new(false);
    let report = t
        .run(&stop, |r| {
            if r.step == 4 {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        })
        .unwrap();
    assert!(report.interrupted);
    assert_eq!(report.step, 4);
    let mut t = VqTrainer::resume(&cache, &resumed, None, &Device::Cpu).unwrap();
    assert_eq!(t.step(), 4);
    run(&mut t, &AtomicBool::new(false));
    for file in [WEIGHTS_FILE, CONFIG_FILE] {
        assert_eq!(
            std::fs::read(straight.join(file)).unwrap(),
            std::fs::read(resumed.join(file)).unwrap(),
            "{file} differs between the straight and the resumed run"
        );
    }
    // The resumed run's log is the straight run's (timings aside).
    let logged = |run: &Path| -> Vec<(u64, u64, u64)> {
        std::fs::read_to_string(run.join(LOG_FILE))
            .unwrap()
            .lines()
            .map(|l| {
                let r: VqLogRecord = serde_json::from_str(l).unwrap();
                (r.step, r.loss.to_bits(), r.perplexity.to_bits())
            })
            .collect()
    };
    assert_eq!(logged(&resumed), logged(&straight));
    assert_eq!(logged(&straight).len(), straight_log.len());
}

#[test]
fn resume_refuses_other_data_and_missing_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tiny_cache(&dir.path().join("c.feat"), 10);
    let other = tiny_cache(&dir.path().join("o.feat"), 9);
    let out = dir.path().join("run");
    assert!(matches!(
        VqTrainer::resume(&cache, &out, None, &Device::Cpu),
        Err(Error::BadCheckpoint(_))
    ));
    let mut t = VqTrainer::new(&cache, tiny_config(2), &out, &Device::Cpu).unwrap();
    run(&mut t, &AtomicBool::new(false));
    let err = VqTrainer::resume(&other, &out, None, &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("other data"), "{err}");
    // A damaged optimizer state is an error, not a silent fresh start.
    std::fs::write(out.join("checkpoint/optimizer.safetensors"), b"garbage").unwrap();
    assert!(matches!(
        VqTrainer::resume(&cache, &out, None, &Device::Cpu),
        Err(Error::BadCheckpoint(_))
    ));
}

#[test]
fn micro_batches_average_to_the_whole_batch_gradient() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tiny_cache(&dir.path().join("c.feat"), 10);
    let weights_after_one_step = |parts: usize| {
        let mut cfg = tiny_config(1);
        // Every clip is longer than the crop, so no part has padding and the average of the
        // parts' mean losses is the whole batch's mean loss.
        cfg.crop_frames = 20;
        cfg.micro_batches = parts;
        cfg.log_every = 1;
        let out = dir.path().join(format!("parts{parts}"));
        let mut t = VqTrainer::new(&cache, cfg, &out, &Device::Cpu).unwrap();
        let (records, _) = run(&mut t, &AtomicBool::new(false));
        let weights =
            candle_core::safetensors::load(out.join(WEIGHTS_FILE), &candle_core::Device::Cpu)
                .unwrap();
        (records[0].clone(), weights)
    };
    let (record, one) = weights_after_one_step(1);
    for parts in [2, 3] {
        let (r, split) = weights_after_one_step(parts);
        // Adam's update hardly depends on the gradient's scale, so check the gradient itself
        // through its norm, and the losses.
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-4 * a.abs().max(1e-6);
        assert!(
            close(record.grad_norm, r.grad_norm),
            "{parts} parts: |g| {} vs {}",
            r.grad_norm,
            record.grad_norm
        );
        assert!(
            close(record.loss, r.loss),
            "{parts} parts: loss {} vs {}",
            r.loss,
            record.loss
        );
        assert!(
            close(record.recon, r.recon),
            "{parts} parts: recon {} vs {}",
            r.recon,
            record.recon
        );
        for (name, t) in &one {
            let diff = (t - &split[name])
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff < 1e-4, "{parts} parts: {name} differs by {diff}");
        }
    }
}

/// A small model so that the objective's tests stay fast.
fn tiny_model() -> VqConfig {
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
fn tone(seed: u32, n: usize) -> Vec<f32> {
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

test_device!(forward_shapes, forward_shapes_cpu, forward_shapes_cuda);
fn forward_shapes(device: &Device) {
    let cfg = tiny_model();
    let vm = VarMap::new();
    let model = VqModel::load(&cfg, VarBuilder::from_varmap(&vm, DType::F32, device)).unwrap();
    for t in [100, 101] {
        let mel = Tensor::randn(0f32, 1.0, (2, t, N_MELS), device).unwrap();
        let out = forward(&model, &mel, None).unwrap();
        assert_eq!(out.recon.dims(), &[2, t, N_MELS]);
        assert_eq!(out.z.dims(), &[2, t.div_ceil(2), 16]);
        assert_eq!(out.codes.dims(), &[2, t.div_ceil(2)]);
        assert_eq!(out.commit_loss.dims(), &[] as &[usize]);
        assert_eq!(
            model.encode(&mel, None).unwrap().to_vec2::<u32>().unwrap(),
            out.codes.to_vec2::<u32>().unwrap()
        );
    }
}

test_device!(
    a_few_training_steps_lower_the_loss,
    a_few_training_steps_lower_the_loss_cpu,
    a_few_training_steps_lower_the_loss_cuda
);
fn a_few_training_steps_lower_the_loss(device: &Device) {
    let cfg = tiny_model();
    let vm = VarMap::new();
    let model = VqModel::load(&cfg, VarBuilder::from_varmap(&vm, DType::F32, device)).unwrap();
    // Gradients train everything but the codebook, which moves by EMA.
    let vars = {
        let data = vm.data().lock().unwrap();
        data.iter()
            .filter(|(k, _)| !k.starts_with("codebook."))
            .map(|(_, v)| v.clone())
            .collect()
    };
    let mut opt = candle_nn::AdamW::new(
        vars,
        ParamsAdamW {
            lr: 3e-3,
            ..Default::default()
        },
    )
    .unwrap();
    let mel = LogMel::new();
    let mels: Vec<f32> = (0..4).flat_map(|s| mel.compute(&tone(s, 8_160))).collect();
    let t = mel.frames(8_160);
    let raw: Vec<&[f32]> = mels.chunks(t * N_MELS).collect();
    let norm = MelNorm::from_mels(&raw, N_MELS);
    let normed: Vec<f32> = mels
        .chunks_exact(N_MELS)
        .flat_map(|row| {
            row.iter()
                .zip(&norm.mean)
                .zip(&norm.std)
                .map(|((x, m), s)| (x - m) / s)
        })
        .collect();
    let batch = Tensor::from_vec(normed, (4, t, N_MELS), device).unwrap();
    let mut losses = vec![];
    for _ in 0..30 {
        let out = forward(&model, &batch, None).unwrap();
        let loss = loss(&cfg, &batch, &out).unwrap();
        losses.push(loss.to_scalar::<f32>().unwrap());
        opt.backward_step(&loss).unwrap();
        let (b, t2, d) = out.z.dims3().unwrap();
        let z = out.z.reshape((b * t2, d)).unwrap();
        let codes = out.codes.flatten_all().unwrap();
        let stats = ema_update(&model.codebook, &cfg, &z, &codes).unwrap();
        assert!(stats.used_codes >= 1 && stats.perplexity >= 1.0);
    }
    let first = losses[0];
    let last = losses[losses.len() - 3..].iter().sum::<f32>() / 3.0;
    assert!(
        last < 0.75 * first,
        "loss went from {first} to {last}: {losses:?}"
    );
    // Better than predicting the mean, whose reconstruction MSE on normalized mels is 1.
    assert!(last < 0.9, "loss went from {first} to {last}: {losses:?}");
}
