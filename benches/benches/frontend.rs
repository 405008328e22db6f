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
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pairalign_benches::{best_of_3, speech_like};
use pairalign_datasets::decode::{decode_file, decode_file_native, resample, DecodeOptions};
use pairalign_datasets::mel::LogMel;

const RATE: u32 = 44_100;
const SECONDS: f64 = 180.0;

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
