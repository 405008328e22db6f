//! The audio front end end to end: decoding every supported format to 16 kHz mono, the typed
//! errors for bad files, robustness on mutated bytes, streaming, decoding from memory (the same
//! audio and errors as from the file), and the log-mel definition (closed-form signals and the
//! Python reference in `fixtures/mel_reference.json`).

#![allow(clippy::unwrap_used)] // Tests unwrap: a failure is the test failing.

use std::f32::consts::PI;
use std::path::{Path, PathBuf};

use pairalign_datasets::decode::{
    decode_bytes, decode_file, probe, probe_bytes, probe_duration, probe_duration_bytes, resample,
    stream_bytes, stream_file, DecodeOptions,
};
use pairalign_datasets::mel::{self, LogMel, LOG_FLOOR, N_MELS};
use pairalign_datasets::{Error, SAMPLE_RATE};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn tone(freq: f32, rate: u32, seconds: f32, amp: f32) -> Vec<f32> {
    let n = (rate as f32 * seconds) as usize;
    (0..n)
        .map(|i| amp * (2.0 * PI * freq * i as f32 / rate as f32).sin())
        .collect()
}

/// Frequency (Hz) of the strongest DFT bin of `x` at 16 kHz, by a direct DFT with 2 Hz steps
/// between 50 Hz and 7.9 kHz over the middle of the signal (avoids codec edges).
fn peak_hz(x: &[f32]) -> f32 {
    let mid = &x[x.len() / 4..x.len() * 3 / 4];
    let mut best = (0.0f32, 0.0f32);
    let mut f = 50.0f32;
    while f < 7900.0 {
        let (mut re, mut im) = (0.0f32, 0.0f32);
        let w = 2.0 * PI * f / SAMPLE_RATE as f32;
        for (i, &s) in mid.iter().enumerate() {
            let (sn, cs) = (w * i as f32).sin_cos();
            re += s * cs;
            im += s * sn;
        }
        let p = re * re + im * im;
        if p > best.1 {
            best = (f, p);
        }
        f += if (f - 1000.0).abs() < 200.0 || (f - 440.0).abs() < 200.0 {
            2.0
        } else {
            20.0
        };
    }
    best.0
}

mod decode {
    //! Formats, downmix, resampling and streaming.
    use super::*;

    pub(super) fn write_wav(
        path: &Path,
        rate: u32,
        channels: u16,
        bits: u16,
        float: bool,
        mono: &[f32],
    ) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: if float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for &s in mono {
            for _ in 0..channels {
                if float {
                    w.write_sample(s).unwrap();
                } else {
                    let max = (1i64 << (bits - 1)) - 1;
                    w.write_sample((s as f64 * max as f64).round() as i32)
                        .unwrap();
                }
            }
        }
        w.finalize().unwrap();
    }

    #[test]
    fn wav_every_sample_format_decodes_to_16k_mono() {
        let dir = tempfile::tempdir().unwrap();
        for (rate, channels, bits, float) in [
            (8_000, 1, 8, false),
            (16_000, 1, 16, false),
            (44_100, 2, 16, false),
            (48_000, 2, 24, false),
            (22_050, 1, 32, false),
            (96_000, 2, 32, true),
        ] {
            let path = dir
                .path()
                .join(format!("t_{rate}_{channels}_{bits}_{float}.wav"));
            write_wav(
                &path,
                rate,
                channels,
                bits,
                float,
                &tone(440.0, rate, 1.0, 0.5),
            );
            let info = probe(&path).unwrap();
            assert_eq!(
                (info.sample_rate, info.channels),
                (rate, channels),
                "{path:?}"
            );
            assert!(info.format.starts_with("wav/"), "{}", info.format);
            assert!((info.duration_s.unwrap() - 1.0).abs() < 1e-3);
            let audio = decode_file(&path, &DecodeOptions::default()).unwrap();
            assert_eq!(audio.sample_rate, SAMPLE_RATE);
            assert_eq!(audio.samples.len(), 16_000, "{path:?}");
            assert!((peak_hz(&audio.samples) - 440.0).abs() <= 4.0, "{path:?}");
            // Amplitude survives decoding and resampling (RMS of a 0.5 sine is 0.354).
            let mid = &audio.samples[2000..14_000];
            let rms = (mid.iter().map(|s| s * s).sum::<f32>() / mid.len() as f32).sqrt();
            assert!((rms - 0.3536).abs() < 0.01, "{path:?}: rms {rms}");
        }
    }

    #[test]
    fn stereo_downmix_is_the_mean_of_channels() {
        // Left = tone, right = -tone: the mean is silence.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("anti.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for s in tone(440.0, 16_000, 0.5, 0.5) {
            let v = (s * 32767.0) as i16;
            w.write_sample(v).unwrap();
            w.write_sample(-v).unwrap();
        }
        w.finalize().unwrap();
        let audio = decode_file(&path, &DecodeOptions::default()).unwrap();
        assert_eq!(audio.samples.len(), 8000);
        assert!(audio.samples.iter().all(|s| s.abs() < 1e-4));
    }

    #[test]
    fn encoded_fixtures_decode_with_duration_and_tone() {
        // Made by scripts/make_audio_fixtures.sh: 0.5 s of 1 kHz.
        for (name, container, rate, channels) in [
            ("tone_1k_44100_mono.flac", "flac/", 44_100, 1),
            ("tone_1k_44100_stereo.mp3", "mp3/", 44_100, 2),
            ("tone_1k_22050_mono.ogg", "ogg/", 22_050, 1),
            ("tone_1k_48000_stereo.m4a", "mp4/", 48_000, 2),
            ("tone_1k_16000_mono_alac.m4a", "mp4/", 16_000, 1),
        ] {
            let path = fixture(name);
            let info = probe(&path).unwrap();
            assert!(
                info.format.starts_with(container),
                "{name}: {}",
                info.format
            );
            assert_eq!(info.sample_rate, rate, "{name}");
            assert_eq!(info.channels, channels, "{name}");
            let audio = decode_file(&path, &DecodeOptions::default()).unwrap();
            let d = audio.duration_s();
            // Lossy codecs add up to a few frames of priming and padding.
            assert!((0.49..0.62).contains(&d), "{name}: {d} s");
            let peak = peak_hz(&audio.samples);
            assert!((peak - 1000.0).abs() <= 6.0, "{name}: peak at {peak} Hz");
        }
    }

    #[test]
    fn stream_chunks_concatenate_to_decode_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.wav");
        write_wav(&path, 44_100, 2, 16, false, &tone(300.0, 44_100, 3.0, 0.3));
        let whole = decode_file(&path, &DecodeOptions::default())
            .unwrap()
            .samples;
        let chunks: Vec<Vec<f32>> = stream_file(&path, &DecodeOptions::default(), 1000)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(chunks[..chunks.len() - 1].iter().all(|c| c.len() == 1000));
        assert_eq!(chunks.concat(), whole);
        assert_eq!(whole.len(), 48_000);
    }

    #[test]
    fn resample_keeps_a_tone_and_the_length() {
        let x = tone(1000.0, 48_000, 1.0, 0.5);
        let y = resample(&x, 48_000, 16_000).unwrap();
        assert_eq!(y.len(), 16_000);
        assert!((peak_hz(&y) - 1000.0).abs() <= 2.0);
        // A tone above the new Nyquist is removed, not aliased.
        let high = resample(&tone(12_000.0, 48_000, 1.0, 0.5), 48_000, 16_000).unwrap();
        let rms = (high[1000..15_000].iter().map(|s| s * s).sum::<f32>() / 14_000.0).sqrt();
        assert!(rms < 1e-3, "aliased energy, rms {rms}");
    }
}

mod sphere {
    //! NIST SPHERE (TIMIT) files written here byte by byte.
    use super::*;

    pub(super) fn sphere_bytes(fields: &[(&str, &str)], data: &[u8]) -> Vec<u8> {
        let mut head = String::from("NIST_1A\n   1024\n");
        for (k, v) in fields {
            head.push_str(&format!("{k} {v}\n"));
        }
        head.push_str("end_head\n");
        let mut bytes = head.into_bytes();
        bytes.resize(1024, b' ');
        bytes.extend_from_slice(data);
        bytes
    }

    pub(super) fn pcm16(x: &[f32], channels: usize, big_endian: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for &s in x {
            let v = (s * 32767.0) as i16;
            for _ in 0..channels {
                out.extend_from_slice(&if big_endian {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                });
            }
        }
        out
    }

    #[test]
    fn timit_style_pcm_in_both_byte_orders_and_stereo() {
        let dir = tempfile::tempdir().unwrap();
        let x = tone(440.0, 16_000, 0.5, 0.5);
        for (order, channels) in [("01", 1), ("10", 1), ("01", 2)] {
            let data = pcm16(&x, channels, order == "10");
            let bytes = sphere_bytes(
                &[
                    ("database_id", "-s5 TIMIT"),
                    ("sample_count", &format!("-i {}", x.len())),
                    ("sample_rate", "-i 16000"),
                    ("channel_count", &format!("-i {channels}")),
                    ("sample_byte_format", &format!("-s2 {order}")),
                    ("sample_n_bytes", "-i 2"),
                    ("sample_sig_bits", "-i 16"),
                    ("sample_coding", "-s3 pcm"),
                ],
                &data,
            );
            let path = dir.path().join(format!("sa1_{order}_{channels}.wav"));
            std::fs::write(&path, bytes).unwrap();
            let info = probe(&path).unwrap();
            assert!(info.format.starts_with("sphere/"));
            assert_eq!((info.sample_rate, info.channels), (16_000, channels as u16));
            assert_eq!(info.duration_s, Some(0.5));
            let audio = decode_file(&path, &DecodeOptions::default()).unwrap();
            assert_eq!(audio.samples.len(), 8000);
            assert!(audio
                .samples
                .iter()
                .zip(&x)
                .all(|(a, b)| (a - b).abs() < 1e-4));
        }
    }

    #[test]
    fn ulaw_at_8k_is_resampled() {
        let dir = tempfile::tempdir().unwrap();
        // mu-law encoding of a tone by searching the expansion table (exact enough for a test).
        let table: Vec<i16> = (0..=255u8)
            .map(|b| {
                let u = !b;
                let e = (u >> 4) & 7;
                let m = i32::from(u & 15);
                let mag = (((m << 3) + 0x84) << e) - 0x84;
                (if u & 0x80 != 0 { -mag } else { mag }) as i16
            })
            .collect();
        let x = tone(1000.0, 8000, 0.5, 0.5);
        let data: Vec<u8> = x
            .iter()
            .map(|&s| {
                let v = (s * 32767.0) as i32;
                (0..=255u8)
                    .min_by_key(|&b| (i32::from(table[b as usize]) - v).abs())
                    .unwrap()
            })
            .collect();
        let bytes = sphere_bytes(
            &[
                ("sample_count", "-i 4000"),
                ("sample_rate", "-i 8000"),
                ("channel_count", "-i 1"),
                ("sample_n_bytes", "-i 1"),
                ("sample_coding", "-s4 ulaw"),
            ],
            &data,
        );
        let path = dir.path().join("u.sph");
        std::fs::write(&path, bytes).unwrap();
        let audio = decode_file(&path, &DecodeOptions::default()).unwrap();
        assert_eq!(audio.samples.len(), 8000);
        assert!((peak_hz(&audio.samples) - 1000.0).abs() <= 2.0);
    }

    #[test]
    fn shorten_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("si1027.wav");
        let bytes = sphere_bytes(
            &[
                ("sample_count", "-i 100"),
                ("sample_rate", "-i 16000"),
                ("sample_coding", "-s26 pcm,embedded-shorten-v2.00"),
            ],
            b"ajkqhdfkjh",
        );
        std::fs::write(&path, bytes).unwrap();
        let err = decode_file(&path, &DecodeOptions::default()).unwrap_err();
        assert!(matches!(err, Error::NotAudio { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("si1027.wav") && msg.contains("shorten"),
            "{msg}"
        );
    }

    #[test]
    fn truncated_data_and_undeclared_length_over_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let x = tone(440.0, 16_000, 1.0, 0.5);
        let fields = [("sample_count", "-i 16000"), ("sample_rate", "-i 16000")];
        let path = dir.path().join("cut.sph");
        std::fs::write(&path, sphere_bytes(&fields, &pcm16(&x[..8000], 1, false))).unwrap();
        let err = decode_file(&path, &DecodeOptions::default()).unwrap_err();
        assert!(matches!(err, Error::Truncated { .. }), "{err:?}");

        // No sample_count: the limit is enforced while streaming.
        let path = dir.path().join("nocount.sph");
        std::fs::write(
            &path,
            sphere_bytes(&[("sample_rate", "-i 16000")], &pcm16(&x, 1, false)),
        )
        .unwrap();
        let options = DecodeOptions {
            max_duration_s: 0.5,
        };
        let mut stream = stream_file(&path, &options, 1000).unwrap();
        let err = stream.find_map(|c| c.err()).unwrap();
        assert!(matches!(err, Error::TooLong { .. }), "{err:?}");
        assert_eq!(
            decode_file(&path, &DecodeOptions::default())
                .unwrap()
                .samples
                .len(),
            16_000
        );
    }
}

mod errors {
    //! One bad file per typed error; each message names the file.
    use super::*;

    pub(super) fn wav_bytes(rate: u32, channels: u16, seconds: f32) -> Vec<u8> {
        let mut cursor = std::io::Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
        for s in tone(440.0, rate, seconds, 0.5) {
            for _ in 0..channels {
                w.write_sample((s * 32767.0) as i16).unwrap();
            }
        }
        w.finalize().unwrap();
        cursor.into_inner()
    }

    /// The error of decoding `bytes` as the file `name`; decoding them from memory under that
    /// name gives the same kind of error, and both messages name it.
    fn decode_error(name: &str, bytes: &[u8], options: &DecodeOptions) -> Error {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = decode_file(&path, options).unwrap_err();
        assert!(err.to_string().contains(name), "{err} does not name {name}");
        let memory = decode_bytes(bytes.to_vec(), Path::new(name), options).unwrap_err();
        assert_eq!(
            std::mem::discriminant(&memory),
            std::mem::discriminant(&err),
            "file: {err}; memory: {memory}"
        );
        assert!(memory.to_string().contains(name), "{memory}");
        err
    }

    #[test]
    fn empty_file() {
        let err = decode_error("empty.wav", b"", &DecodeOptions::default());
        assert!(matches!(err, Error::Empty { .. }), "{err:?}");
        // A valid header with no frames is empty too.
        let err = decode_error(
            "noframes.wav",
            &wav_bytes(16_000, 1, 0.0),
            &DecodeOptions::default(),
        );
        assert!(matches!(err, Error::Empty { .. }), "{err:?}");
    }

    #[test]
    fn truncated_file() {
        let bytes = wav_bytes(16_000, 1, 1.0);
        let err = decode_error(
            "cut_data.wav",
            &bytes[..bytes.len() / 2],
            &DecodeOptions::default(),
        );
        assert!(matches!(err, Error::Truncated { .. }), "{err:?}");
        let err = decode_error("cut_header.wav", &bytes[..20], &DecodeOptions::default());
        assert!(
            matches!(err, Error::Truncated { .. } | Error::NotAudio { .. }),
            "{err:?}"
        );
        let flac = std::fs::read(fixture("tone_1k_44100_mono.flac")).unwrap();
        let err = decode_error(
            "cut.flac",
            &flac[..flac.len() / 2],
            &DecodeOptions::default(),
        );
        assert!(matches!(err, Error::Truncated { .. }), "{err:?}");
    }

    #[test]
    fn not_audio() {
        let err = decode_error(
            "notes.mp3",
            b"these are my notes, not an mp3 file\n",
            &DecodeOptions::default(),
        );
        assert!(matches!(err, Error::NotAudio { .. }), "{err:?}");
    }

    #[test]
    fn zero_channels() {
        let mut bytes = wav_bytes(16_000, 1, 0.1);
        bytes[22..24].copy_from_slice(&0u16.to_le_bytes());
        let err = decode_error("nochan.wav", &bytes, &DecodeOptions::default());
        assert!(matches!(err, Error::NoChannels { .. }), "{err:?}");
    }

    #[test]
    fn absurd_sample_rate() {
        for rate in [0u32, 500, 384_001, 4_000_000_000] {
            let mut bytes = wav_bytes(16_000, 1, 0.1);
            bytes[24..28].copy_from_slice(&rate.to_le_bytes());
            let err = decode_error("rate.wav", &bytes, &DecodeOptions::default());
            assert!(
                matches!(err, Error::BadSampleRate { rate: r, .. } if r == u64::from(rate)),
                "{err:?}"
            );
        }
    }

    #[test]
    fn longer_than_the_limit() {
        let options = DecodeOptions {
            max_duration_s: 0.5,
        };
        let err = decode_error("long.wav", &wav_bytes(16_000, 1, 1.0), &options);
        assert!(matches!(err, Error::TooLong { .. }), "{err:?}");
        // The declared duration is checked before any audio is decoded.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.wav");
        std::fs::write(&path, wav_bytes(16_000, 1, 1.0)).unwrap();
        assert!(matches!(
            stream_file(&path, &options, 100),
            Err(Error::TooLong { .. })
        ));
    }

    #[test]
    fn wav_streamed_to_a_pipe_reads_to_the_end() {
        // Regression: the 0xFFFFFFFF size placeholders declare ~37 h at 16 kHz mono, which must
        // not trip the duration limit or the truncation check.
        let mut bytes = wav_bytes(16_000, 1, 1.0);
        bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        bytes[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipe.wav");
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(probe(&path).unwrap().duration_s, None);
        let audio = decode_file(&path, &DecodeOptions::default()).unwrap();
        assert_eq!(audio.samples.len(), 16_000);
    }

    #[test]
    fn missing_file_is_io() {
        let err =
            decode_file(Path::new("/nonexistent/x.wav"), &DecodeOptions::default()).unwrap_err();
        assert!(matches!(err, Error::Io { .. }) && err.to_string().contains("x.wav"));
    }

    #[test]
    fn mutated_and_random_bytes_never_panic() {
        // Every result is Ok or a typed error; a panic fails the test. Seeds are fixed.
        let mut seeds: Vec<(&str, Vec<u8>)> = vec![("wav", wav_bytes(22_050, 2, 0.2))];
        for name in [
            "tone_1k_44100_mono.flac",
            "tone_1k_44100_stereo.mp3",
            "tone_1k_22050_mono.ogg",
            "tone_1k_48000_stereo.m4a",
            "tone_1k_16000_mono_alac.m4a",
        ] {
            let ext = name.rsplit('.').next().unwrap();
            seeds.push((ext, std::fs::read(fixture(name)).unwrap()));
        }
        let mut sph =
            b"NIST_1A\n   1024\nsample_rate -i 16000\nsample_count -i 800\nend_head\n".to_vec();
        sph.resize(1024 + 1600, 7);
        seeds.push(("sph", sph));
        let dir = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(4);
        let (mut ok, mut err) = (0, 0);
        for case in 0..360 {
            let (ext, seed) = &seeds[case % seeds.len()];
            let mut bytes = seed.clone();
            match case % 4 {
                0 => {
                    for _ in 0..rng.gen_range(1..20) {
                        let i = rng.gen_range(0..bytes.len());
                        bytes[i] = rng.gen();
                    }
                }
                1 => {
                    // Mutate the header region, where lengths and rates live.
                    for _ in 0..rng.gen_range(1..6) {
                        let i = rng.gen_range(0..bytes.len().min(128));
                        bytes[i] = rng.gen();
                    }
                }
                2 => bytes.truncate(rng.gen_range(0..bytes.len())),
                _ => {
                    let n = rng.gen_range(0..4096);
                    bytes = (0..n).map(|_| rng.gen()).collect();
                    if rng.gen_bool(0.5) && bytes.len() >= 4 {
                        bytes[..4].copy_from_slice(&seed[..4]);
                    }
                }
            }
            let path = dir.path().join(format!("fuzz{case}.{ext}"));
            std::fs::write(&path, &bytes).unwrap();
            let _ = probe(&path);
            let _ = probe_bytes(bytes.clone(), &path);
            let file = decode_file(&path, &DecodeOptions::default());
            let memory = decode_bytes(bytes, &path, &DecodeOptions::default());
            match (file, memory) {
                (Ok(a), Ok(b)) => {
                    assert!(a == b, "case {case}: memory decodes differently");
                    ok += 1;
                }
                (Err(e), Err(m)) => {
                    assert!(e.to_string().contains(&format!("fuzz{case}")), "{e}");
                    assert_eq!(
                        std::mem::discriminant(&e),
                        std::mem::discriminant(&m),
                        "case {case}: file {e}, memory {m}"
                    );
                    err += 1;
                }
                (a, b) => panic!("case {case}: file {:?}, memory {:?}", a.err(), b.err()),
            }
        }
        assert_eq!(ok + err, 360);
    }
}

mod memory {
    //! Decoding bytes held in memory (a search body) gives exactly what decoding the same bytes
    //! as a file gives: the oracle is `decode_file` on every bundled format.
    use super::*;

    /// Every audio file bundled with the repository: the sample archive (short and long) and the
    /// encoded fixtures.
    fn bundled() -> Vec<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["../samples/short", "../samples/long", "tests/fixtures"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e != "json") {
                    files.push(path);
                }
            }
        }
        files.sort();
        files
    }

    /// SPHERE (both byte orders, stereo, mu-law) and WAV (8, 24 and float samples) written here,
    /// the formats with no bundled file.
    fn written(dir: &Path) -> Vec<PathBuf> {
        let x = tone(440.0, 16_000, 0.5, 0.5);
        let mut files = Vec::new();
        for (name, order, channels, coding) in [
            ("le.sph", "01", 1, "pcm"),
            ("be.sph", "10", 1, "pcm"),
            ("stereo.wav", "01", 2, "pcm"),
            ("ulaw.sph", "01", 1, "ulaw"),
        ] {
            let (data, bytes_per_sample) = if coding == "ulaw" {
                // Any bytes are valid mu-law.
                ((0..8000u32).map(|i| (i * 37 % 256) as u8).collect(), "1")
            } else {
                (super::sphere::pcm16(&x, channels, order == "10"), "2")
            };
            let bytes = super::sphere::sphere_bytes(
                &[
                    ("sample_count", "-i 8000"),
                    ("sample_rate", "-i 16000"),
                    ("channel_count", &format!("-i {channels}")),
                    ("sample_byte_format", &format!("-s2 {order}")),
                    ("sample_n_bytes", &format!("-i {bytes_per_sample}")),
                    ("sample_coding", &format!("-s{} {coding}", coding.len())),
                ],
                &data,
            );
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            files.push(path);
        }
        for (rate, channels, bits, float) in [(8_000, 1, 8, false), (44_100, 2, 24, false)] {
            let path = dir.join(format!("w{rate}_{bits}.wav"));
            super::decode::write_wav(&path, rate, channels, bits, float, &x);
            files.push(path);
        }
        let path = dir.join("float.wav");
        super::decode::write_wav(&path, 48_000, 1, 32, true, &tone(440.0, 48_000, 0.5, 0.5));
        files.push(path);
        files
    }

    #[test]
    fn every_format_decodes_from_memory_exactly_as_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = bundled().into_iter().chain(written(dir.path())).collect();
        let mut extensions = std::collections::BTreeSet::new();
        for path in &files {
            let bytes = std::fs::read(path).unwrap();
            let options = DecodeOptions::default();
            let file = decode_file(path, &options).unwrap();
            let memory = decode_bytes(bytes.clone(), path, &options).unwrap();
            assert_eq!(memory.sample_rate, SAMPLE_RATE);
            assert!(memory == file, "{}: different samples", path.display());
            assert_eq!(
                probe_bytes(bytes.clone(), path).unwrap(),
                probe(path).unwrap(),
                "{}",
                path.display()
            );
            assert_eq!(
                probe_duration_bytes(bytes.clone(), path).unwrap(),
                probe_duration(path).unwrap(),
                "{}",
                path.display()
            );
            let chunks: Vec<Vec<f32>> = stream_bytes(bytes.clone(), path, &options, 4000)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(chunks.concat() == file.samples, "{}", path.display());
            // The format comes from the bytes: a name without the right extension (or none)
            // decodes the same.
            let anonymous = decode_bytes(bytes, Path::new("request body"), &options).unwrap();
            assert!(anonymous == file, "{}: depends on the name", path.display());
            extensions.insert(path.extension().unwrap().to_string_lossy().to_string());
        }
        assert_eq!(
            extensions.into_iter().collect::<Vec<_>>(),
            ["flac", "m4a", "mp3", "ogg", "sph", "wav"]
        );
    }

    /// Cuts, header damage and garbage: the bytes give the same kind of error as the file (or,
    /// for a cut that still decodes, the same audio), naming what the caller called them.
    #[test]
    fn damaged_bytes_give_the_errors_of_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut seeds: Vec<PathBuf> = bundled()
            .into_iter()
            .filter(|p| !p.to_string_lossy().contains("/long/"))
            .collect();
        seeds.extend(written(dir.path()));
        let mut rng = StdRng::seed_from_u64(21);
        let mut errors = std::collections::BTreeSet::new();
        for (i, seed) in seeds.iter().enumerate() {
            let whole = std::fs::read(seed).unwrap();
            let n = whole.len();
            let mut cases: Vec<Vec<u8>> = [0, 1, 4, 11, 16, 44, 200, 1100, n / 3, n - 1]
                .into_iter()
                .filter(|&cut| cut < n)
                .map(|cut| whole[..cut].to_vec())
                .collect();
            let mut header = whole.clone();
            for _ in 0..4 {
                let at = rng.gen_range(0..n.min(64));
                header[at] = rng.gen();
            }
            cases.push(header);
            cases.push((0..rng.gen_range(1..3000)).map(|_| rng.gen()).collect());
            for (j, bytes) in cases.into_iter().enumerate() {
                let name = format!(
                    "case{i}_{j}.{}",
                    seed.extension().unwrap().to_string_lossy()
                );
                let path = dir.path().join(&name);
                std::fs::write(&path, &bytes).unwrap();
                let options = DecodeOptions::default();
                let probed = (probe(&path), probe_bytes(bytes.clone(), &path));
                match probed {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "{name}"),
                    (Err(a), Err(b)) => assert_eq!(
                        std::mem::discriminant(&a),
                        std::mem::discriminant(&b),
                        "{name}: probe: file {a}, memory {b}"
                    ),
                    (a, b) => panic!("{name}: probe: file {a:?}, memory {b:?}"),
                }
                let memory = decode_bytes(bytes, Path::new(&name), &options);
                match (decode_file(&path, &options), memory) {
                    (Ok(a), Ok(b)) => assert!(a == b, "{name}: different samples"),
                    (Err(a), Err(b)) => {
                        assert_eq!(
                            std::mem::discriminant(&a),
                            std::mem::discriminant(&b),
                            "{name}: file {a}, memory {b}"
                        );
                        assert!(b.to_string().contains(&name), "{b}");
                        errors.insert(
                            format!("{b:?}")
                                .split([' ', '{'])
                                .next()
                                .unwrap()
                                .to_string(),
                        );
                    }
                    (a, b) => panic!("{name}: file {:?}, memory {:?}", a.err(), b.err()),
                }
            }
        }
        // The cuts reach every kind of damage the decoders report.
        for kind in ["Empty", "NotAudio", "Truncated"] {
            assert!(errors.contains(kind), "no {kind} among {errors:?}");
        }
    }

    #[test]
    fn sphere_errors_and_limits_from_memory() {
        let x = tone(440.0, 16_000, 1.0, 0.5);
        let shorten = super::sphere::sphere_bytes(
            &[
                ("sample_count", "-i 100"),
                ("sample_rate", "-i 16000"),
                ("sample_coding", "-s26 pcm,embedded-shorten-v2.00"),
            ],
            b"ajkqhdfkjh",
        );
        let err =
            decode_bytes(shorten, Path::new("si1027.wav"), &DecodeOptions::default()).unwrap_err();
        assert!(matches!(err, Error::NotAudio { .. }), "{err:?}");
        assert!(err.to_string().contains("si1027.wav") && err.to_string().contains("shorten"));

        let fields = [("sample_count", "-i 16000"), ("sample_rate", "-i 16000")];
        let cut = super::sphere::sphere_bytes(&fields, &super::sphere::pcm16(&x[..8000], 1, false));
        let err = decode_bytes(cut, Path::new("cut.sph"), &DecodeOptions::default()).unwrap_err();
        assert!(matches!(err, Error::Truncated { .. }), "{err:?}");

        // No sample_count: the limit is enforced while streaming, as for a file.
        let nocount = super::sphere::sphere_bytes(
            &[("sample_rate", "-i 16000")],
            &super::sphere::pcm16(&x, 1, false),
        );
        let short = DecodeOptions {
            max_duration_s: 0.5,
        };
        let mut stream =
            stream_bytes(nocount.clone(), Path::new("nocount.sph"), &short, 1000).unwrap();
        let err = stream.find_map(|c| c.err()).unwrap();
        assert!(matches!(err, Error::TooLong { .. }), "{err:?}");
        let err = decode_bytes(nocount.clone(), Path::new("nocount.sph"), &short).unwrap_err();
        assert!(matches!(err, Error::TooLong { .. }), "{err:?}");
        assert_eq!(
            probe_bytes(nocount.clone(), Path::new("n.sph"))
                .unwrap()
                .duration_s,
            None
        );
        assert_eq!(
            probe_duration_bytes(nocount.clone(), Path::new("n.sph")).unwrap(),
            1.0
        );
        let audio = decode_bytes(nocount, Path::new("n.sph"), &DecodeOptions::default()).unwrap();
        assert_eq!(audio.samples.len(), 16_000);
    }

    /// Callers hand over the bytes they hold without copying them: shared and static buffers
    /// are accepted as they are.
    #[test]
    fn shared_and_static_buffers_are_accepted() {
        let wav = super::errors::wav_bytes(16_000, 1, 0.5);
        let options = DecodeOptions::default();
        let owned = decode_bytes(wav.clone(), Path::new("a.wav"), &options).unwrap();
        let shared: std::sync::Arc<[u8]> = wav.clone().into();
        assert!(decode_bytes(shared, Path::new("a.wav"), &options).unwrap() == owned);
        let leaked: &'static [u8] = Box::leak(wav.into_boxed_slice());
        assert!(decode_bytes(leaked, Path::new("a.wav"), &options).unwrap() == owned);
        let err = decode_bytes(Vec::new(), Path::new("empty body"), &options).unwrap_err();
        assert!(matches!(err, Error::Empty { .. }), "{err:?}");
        assert!(err.to_string().contains("empty body"), "{err}");
    }
}

mod logmel {
    //! The log-mel definition of `mel.rs` on closed-form signals and against the Python reference.
    use super::*;

    fn mean_row(mel: &[f32]) -> Vec<f32> {
        let frames = mel.len() / N_MELS;
        (0..N_MELS)
            .map(|m| (0..frames).map(|t| mel[t * N_MELS + m]).sum::<f32>() / frames as f32)
            .collect()
    }

    #[test]
    fn a_sine_peaks_in_the_bin_with_the_nearest_center() {
        let lm = LogMel::new();
        let centers: Vec<f64> = (0..N_MELS).map(mel::mel_center_hz).collect();
        for f in [250.0f32, 440.0, 1000.0, 1800.0, 3100.0, 5200.0, 7000.0] {
            let row = mean_row(&lm.compute(&tone(f, 16_000, 0.5, 0.5)));
            let peak = (0..N_MELS)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap();
            let nearest = (0..N_MELS)
                .min_by(|&a, &b| {
                    (centers[a] - f as f64)
                        .abs()
                        .total_cmp(&(centers[b] - f as f64).abs())
                })
                .unwrap();
            assert_eq!(
                peak, nearest,
                "{f} Hz: peak in bin {peak} ({:.0} Hz)",
                centers[peak]
            );
        }
    }

    #[test]
    fn silence_is_the_log_floor_everywhere() {
        let lm = LogMel::new();
        let out = lm.compute(&vec![0.0; 16_000]);
        assert_eq!(out.len(), 98 * N_MELS);
        assert!(out.iter().all(|&v| v == LOG_FLOOR));
    }

    #[test]
    fn doubling_the_gain_adds_ln_4() {
        let lm = LogMel::new();
        let mut rng = StdRng::seed_from_u64(7);
        let x: Vec<f32> = (0..8000).map(|_| rng.gen_range(-0.2..0.2)).collect();
        let x2: Vec<f32> = x.iter().map(|s| 2.0 * s).collect();
        let (a, b) = (lm.compute(&x), lm.compute(&x2));
        for (u, v) in a.iter().zip(&b) {
            assert!((v - u - 4f32.ln()).abs() < 1e-4, "{u} -> {v}");
        }
    }

    #[test]
    fn compute_into_matches_compute_and_frame_count() {
        let lm = LogMel::new();
        let x = tone(700.0, 16_000, 0.123, 0.3);
        let mut buf = vec![f32::NAN; 200 * N_MELS];
        let frames = lm.compute_into(&x, &mut buf);
        assert_eq!(frames, 1 + (x.len() - 400) / 160);
        assert_eq!(&buf[..frames * N_MELS], &lm.compute(&x)[..]);
        assert!(lm.compute(&x[..399]).is_empty());
    }

    #[test]
    fn matches_the_numpy_reference() {
        // Tolerance: 1e-4 in natural-log units (0.01% in power): f32 FFT against f64 numpy and
        // values rounded to 6 decimals in the fixture; the measured maximum is 1.5e-5.
        let text = std::fs::read_to_string(fixture("mel_reference.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let signal: Vec<f32> = json["signal"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let expected: Vec<f32> = json["log_mel"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let got = LogMel::new().compute(&signal);
        assert_eq!(got.len(), expected.len());
        assert_eq!(
            got.len() / N_MELS,
            json["frames"].as_u64().unwrap() as usize
        );
        let worst = got
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        eprintln!("max |rust - numpy| = {worst}");
        assert!(worst < 1e-4, "max |rust - numpy| = {worst}");
    }
}

mod long_files {
    //! Bounded memory on a long file (ignored by default: it decodes 10 hours of audio).
    use super::*;

    fn peak_rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Run: `cargo test -p pairalign-datasets --release --test frontend ten_hours -- --ignored`
    #[test]
    #[ignore]
    fn ten_hours_stream_in_bounded_memory() {
        // A sparse 10-hour 8 kHz mu-law SPHERE file (288 MB on disk, 2.3 GB as 16 kHz f32).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ten_hours.sph");
        let frames: u64 = 10 * 3600 * 8000;
        let mut head = format!(
            "NIST_1A\n   1024\nsample_count -i {frames}\nsample_rate -i 8000\nchannel_count -i 1\n\
             sample_n_bytes -i 1\nsample_coding -s4 ulaw\nend_head\n"
        )
        .into_bytes();
        head.resize(1024, b' ');
        std::fs::write(&path, &head).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1024 + frames)
            .unwrap();
        let before = peak_rss_kib();
        let mut total = 0u64;
        for chunk in stream_file(&path, &DecodeOptions::default(), 16_000).unwrap() {
            total += chunk.unwrap().len() as u64;
        }
        let grown_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
        assert_eq!(total, 2 * frames);
        assert!(grown_mib < 64, "peak memory grew by {grown_mib} MiB");
        eprintln!("10 h streamed; peak RSS grew by {grown_mib} MiB");
    }
}
