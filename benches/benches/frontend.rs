//! Front-end throughput: decode, resample to 16 kHz, 80-bin log-mel, and the three together, in
//! "x realtime" (seconds of audio per second of one core).
//!
//! Data model: 3 minutes of speech-like audio generated here (a glottal pulse train at 90-230 Hz
//! shaped by three formant resonators that change every 120-300 ms, with pauses and a little
//! noise), as a 44.1 kHz stereo 16-bit WAV (hound), and, when `ffmpeg` is installed, the same
//! audio as FLAC and as a 128 kb/s MP3. Stages: `decode` (`decode_file_native`: container, codec
//! and downmix at 44.1 kHz), `resample` (44.1 -> 16 kHz, mono), `logmel` (`LogMel::compute` on 16
//! kHz), `total` (`decode_file` + `LogMel::compute`). Everything runs on one thread.
//!
//! Run: `cargo bench -p pairalign-benches --bench frontend`
//! After criterion's figures it prints a table of x realtime per stage and format (best of 3).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pairalign_datasets::decode::{decode_file, decode_file_native, resample, DecodeOptions};
use pairalign_datasets::mel::LogMel;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const RATE: u32 = 44_100;
const SECONDS: f64 = 180.0;

/// Deterministic speech-like signal (see the module comment).
fn speech_like(seconds: f64, rate: u32, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = (seconds * f64::from(rate)) as usize;
    let mut out = Vec::with_capacity(n);
    let dt = 1.0 / f64::from(rate);
    // Two-pole resonators, one per formant: y = x + a1 y1 + a2 y2.
    let mut state = [[0.0f64; 2]; 3];
    let mut coefs = [[0.0f64; 2]; 3];
    let (mut seg_left, mut voiced, mut f0, mut phase) = (0usize, true, 120.0f64, 0.0f64);
    for _ in 0..n {
        if seg_left == 0 {
            seg_left = (rng.gen_range(0.12..0.3) * f64::from(rate)) as usize;
            voiced = rng.gen_bool(0.8);
            f0 = rng.gen_range(90.0..230.0);
            let formants = [
                rng.gen_range(300.0..900.0),
                rng.gen_range(900.0..2500.0),
                rng.gen_range(2500.0..3500.0),
            ];
            for (c, f) in coefs.iter_mut().zip(formants) {
                let r = (-std::f64::consts::PI * 80.0 * dt).exp();
                *c = [
                    2.0 * r * (2.0 * std::f64::consts::PI * f * dt).cos(),
                    -r * r,
                ];
            }
        }
        seg_left -= 1;
        phase += f0 * dt;
        let excitation = if voiced && phase >= 1.0 {
            phase -= 1.0;
            1.0
        } else {
            if phase >= 1.0 {
                phase -= 1.0;
            }
            0.0
        } + rng.gen_range(-0.02..0.02);
        let mut y = 0.0;
        for (s, c) in state.iter_mut().zip(&coefs) {
            let v = excitation + c[0] * s[0] + c[1] * s[1];
            s[1] = s[0];
            s[0] = v;
            y += v;
        }
        out.push(y);
    }
    let peak = out.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-9);
    out.iter().map(|v| (0.8 * v / peak) as f32).collect()
}

fn write_inputs(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let left = speech_like(SECONDS, RATE, 1);
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let wav = dir.join("speech.wav");
    let mut w = hound::WavWriter::create(&wav, spec).expect("create wav");
    for (i, s) in left.iter().enumerate() {
        let l = (s * 32767.0) as i16;
        let r = (0.9 * left[i.saturating_sub(7)] * 32767.0) as i16;
        w.write_sample(l).expect("write");
        w.write_sample(r).expect("write");
    }
    w.finalize().expect("finalize wav");
    let mut inputs = vec![("wav", wav.clone())];
    for (name, args) in [
        ("flac", &["-c:a", "flac"][..]),
        ("mp3", &["-c:a", "libmp3lame", "-b:a", "128k"][..]),
    ] {
        let out = dir.join(format!("speech.{name}"));
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(&wav)
            .args(args)
            .arg(&out)
            .status();
        match status {
            Ok(s) if s.success() => inputs.push((name, out)),
            _ => eprintln!("ffmpeg unavailable: skipping {name}"),
        }
    }
    inputs
}

fn best_of_3(mut f: impl FnMut()) -> Duration {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn bench_frontend(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let inputs = write_inputs(dir.path());
    let options = DecodeOptions::default();
    let mel = LogMel::new();
    let mut table = Vec::new();
    for (format, path) in &inputs {
        let native = decode_file_native(path, &options).expect("decode");
        let at16k = resample(&native.samples, native.sample_rate, 16_000).expect("resample");
        let seconds = native.duration_s();
        let mut group = c.benchmark_group(format!("frontend/{format}"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(4))
            .warm_up_time(Duration::from_secs(1));
        // One element = one millisecond of audio: criterion's "Kelem/s" reads as x realtime.
        group.throughput(Throughput::Elements((seconds * 1000.0) as u64));
        group.bench_function("decode", |b| {
            b.iter(|| decode_file_native(path, &options).expect("decode"))
        });
        group.bench_function("resample", |b| {
            b.iter(|| resample(&native.samples, native.sample_rate, 16_000).expect("resample"))
        });
        group.bench_function("logmel", |b| b.iter(|| mel.compute(&at16k)));
        group.bench_function("total", |b| {
            b.iter(|| mel.compute(&decode_file(path, &options).expect("decode").samples))
        });
        group.finish();
        let stages = [
            best_of_3(|| drop(decode_file_native(path, &options))),
            best_of_3(|| drop(resample(&native.samples, native.sample_rate, 16_000))),
            best_of_3(|| drop(mel.compute(&at16k))),
            best_of_3(|| drop(decode_file(path, &options).map(|a| mel.compute(&a.samples)))),
        ];
        table.push((*format, seconds, stages.map(|d| seconds / d.as_secs_f64())));
    }
    println!(
        "\nx realtime, one thread ({SECONDS} s of 44.1 kHz stereo speech-like audio; best of 3)"
    );
    println!(
        "{:<6} {:>10} {:>10} {:>10} {:>10}",
        "format", "decode", "resample", "logmel", "total"
    );
    for (format, _, x) in table {
        println!(
            "{format:<6} {:>10.0} {:>10.0} {:>10.0} {:>10.0}",
            x[0], x[1], x[2], x[3]
        );
    }
}

criterion_group!(benches, bench_frontend);
criterion_main!(benches);
