//! Views measured against what they claim: durations, frequencies, SNRs, spectra, band edges,
//! decay times and lags are measured on the output, not read back from the parameters.

use pairalign_datasets::views::{apply, chain_seed, NoiseKind, View, ViewKind, ViewSpace};
use pairalign_datasets::{Audio, SAMPLE_RATE};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const FS: f64 = SAMPLE_RATE as f64;

fn sine(freq: f64, seconds: f64, amp: f32) -> Audio {
    let n = (seconds * FS) as usize;
    let samples = (0..n)
        .map(|i| amp * (2.0 * std::f64::consts::PI * freq * i as f64 / FS).sin() as f32)
        .collect();
    Audio::new(samples, SAMPLE_RATE)
}

/// Speech-like test signal: a few harmonics of a wandering fundamental, amplitude-modulated.
fn voice(seed: u64, seconds: f64) -> Audio {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let f0 = rng.gen_range(90.0..220.0);
    let n = (seconds * FS) as usize;
    let mut phase = 0.0f64;
    let samples = (0..n)
        .map(|i| {
            let t = i as f64 / FS;
            phase += 2.0 * std::f64::consts::PI * f0 * (1.0 + 0.1 * (3.0 * t).sin()) / FS;
            let env = 0.5 + 0.5 * (2.0 * std::f64::consts::PI * 4.0 * t).sin().abs();
            let v: f64 = (1..8).map(|h| (h as f64 * phase).sin() / h as f64).sum();
            (0.2 * env * v) as f32
        })
        .collect();
    Audio::new(samples, SAMPLE_RATE)
}

fn power(x: &[f32]) -> f64 {
    x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len().max(1) as f64
}

fn db(ratio: f64) -> f64 {
    10.0 * ratio.log10()
}

/// Frequency from rising zero crossings (linearly interpolated) within `x[from..to]`.
fn zero_crossing_hz(x: &[f32], from: usize, to: usize) -> f64 {
    let mut times = Vec::new();
    for i in from.max(1)..to.min(x.len()) {
        let (a, b) = (f64::from(x[i - 1]), f64::from(x[i]));
        if a < 0.0 && b >= 0.0 {
            times.push(i as f64 - 1.0 + a / (a - b));
        }
    }
    assert!(times.len() > 2, "too few zero crossings");
    let span = times[times.len() - 1] - times[0];
    (times.len() - 1) as f64 / span * FS
}

/// Mean power spectral density (arbitrary units) of `x` in `[lo, hi)` Hz: Welch average of
/// Hann-windowed 1024-point DFTs.
fn band_psd(x: &[f32], lo: f64, hi: f64) -> f64 {
    const N: usize = 1024;
    let k_lo = (lo / FS * N as f64).ceil() as usize;
    let k_hi = (hi / FS * N as f64).ceil() as usize;
    let w: Vec<f64> = (0..N)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N as f64).cos())
        .collect();
    let (cos, sin): (Vec<f64>, Vec<f64>) = (0..N)
        .map(|i| {
            let a = 2.0 * std::f64::consts::PI * i as f64 / N as f64;
            (a.cos(), a.sin())
        })
        .unzip();
    let mut total = 0.0;
    let mut segments = 0;
    for seg in x.chunks_exact(N).step_by(2) {
        for k in k_lo..k_hi {
            let (mut re, mut im) = (0.0, 0.0);
            for (i, &v) in seg.iter().enumerate() {
                let wv = w[i] * f64::from(v);
                re += wv * cos[k * i % N];
                im -= wv * sin[k * i % N];
            }
            total += re * re + im * im;
        }
        segments += 1;
    }
    total / (segments * (k_hi - k_lo)) as f64
}

fn apply1(audio: &Audio, view: View) -> Audio {
    apply(audio, &view, 7, &[]).expect("valid view")
}

// ---- speed ---------------------------------------------------------------------------------

#[test]
fn speed_changes_duration_and_frequency_together() {
    let input = sine(440.0, 1.0, 0.5);
    for factor in [0.9, 0.95, 1.05, 1.1, 0.5, 2.0] {
        let out = apply1(&input, View::Speed { factor });
        let ratio = out.samples.len() as f64 / input.samples.len() as f64;
        assert!(
            (ratio * factor - 1.0).abs() < 0.01,
            "factor {factor}: duration ratio {ratio}"
        );
        let n = out.samples.len();
        let hz = zero_crossing_hz(&out.samples, n / 10, n * 9 / 10);
        let err = hz / (440.0 * factor) - 1.0;
        println!("speed {factor}: duration ratio {ratio:.5}, {hz:.2} Hz (error {err:+.5})");
        assert!(err.abs() < 0.005, "factor {factor}: {hz} Hz");
    }
}

// ---- pitch ---------------------------------------------------------------------------------

#[test]
fn pitch_moves_frequency_and_keeps_duration() {
    for freq in [220.0, 440.0] {
        let input = sine(freq, 1.0, 0.5);
        for semitones in [-3.0, -1.0, 2.0, 4.0, 12.0] {
            let out = apply1(&input, View::Pitch { semitones });
            assert_eq!(out.samples.len(), input.samples.len());
            let n = out.samples.len();
            let hz = zero_crossing_hz(&out.samples, n / 10, n * 9 / 10);
            let want = freq * 2f64.powf(semitones / 12.0);
            let err = hz / want - 1.0;
            println!("pitch {freq} Hz {semitones:+}: {hz:.2} Hz, want {want:.2} (error {err:+.5})");
            assert!(
                err.abs() < 0.02,
                "{freq} Hz {semitones:+}: {hz} Hz, want {want}"
            );
        }
    }
}

/// Fundamental from the autocorrelation peak between 60 and 400 Hz (parabolic interpolation).
fn autocorrelation_f0(x: &[f32]) -> f64 {
    let r = |lag: usize| -> f64 {
        x.iter()
            .zip(&x[lag..])
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum()
    };
    let (lo, hi) = ((FS / 400.0) as usize, (FS / 60.0) as usize);
    let best = (lo..=hi)
        .max_by(|&a, &b| r(a).total_cmp(&r(b)))
        .unwrap_or(lo);
    let (a, b, c) = (r(best - 1), r(best), r(best + 1));
    let offset = 0.5 * (a - c) / (a - 2.0 * b + c);
    FS / (best as f64 + offset)
}

#[test]
fn pitch_moves_a_harmonic_voice_and_keeps_its_level() {
    // Seven harmonics of 150 Hz: WSOLA has to splice a waveform with many zero crossings.
    let n = 16_000;
    let input = Audio::new(
        (0..n)
            .map(|i| {
                let t = i as f64 / FS;
                let v: f64 = (1..8)
                    .map(|h| (2.0 * std::f64::consts::PI * 150.0 * h as f64 * t).sin() / h as f64)
                    .sum();
                (0.2 * v) as f32
            })
            .collect(),
        SAMPLE_RATE,
    );
    for semitones in [-3.0, 3.0] {
        let out = apply1(&input, View::Pitch { semitones });
        let f0 = autocorrelation_f0(&out.samples[2000..14_000]);
        let want = 150.0 * 2f64.powf(semitones / 12.0);
        let level = db(power(&out.samples[2000..14_000]) / power(&input.samples[2000..14_000]));
        println!("pitch harmonic 150 Hz {semitones:+}: f0 {f0:.2} Hz, want {want:.2}, level {level:+.2} dB");
        assert!((f0 / want - 1.0).abs() < 0.02, "{semitones:+}: {f0} Hz");
        assert!(level.abs() < 1.0, "{semitones:+}: level {level} dB");
    }
}

// ---- noise ---------------------------------------------------------------------------------

#[test]
fn noise_is_added_at_the_requested_snr() {
    let input = voice(1, 1.0);
    let clips: Vec<Audio> = (2..6).map(|s| voice(s, 0.7)).collect();
    let babble: Vec<&Audio> = clips.iter().collect();
    for kind in [NoiseKind::White, NoiseKind::Pink, NoiseKind::Babble] {
        for snr_db in [0.0, 10.0, 17.5, 30.0] {
            let out = apply(&input, &View::Noise { kind, snr_db }, 3, &babble).expect("noise");
            let added: Vec<f32> = out
                .samples
                .iter()
                .zip(&input.samples)
                .map(|(o, i)| o - i)
                .collect();
            let measured = db(power(&input.samples) / power(&added));
            println!("{kind:?} {snr_db} dB: measured {measured:.4} dB");
            assert!(
                (measured - snr_db).abs() < 0.5,
                "{kind:?}: {measured} vs {snr_db}"
            );
        }
    }
}

/// Slope in dB per octave of the noise's PSD over 125 Hz - 4 kHz (least squares on octaves).
fn noise_slope(kind: NoiseKind) -> f64 {
    let input = sine(1000.0, 4.0, 0.1);
    let out = apply1(
        &input,
        View::Noise {
            kind,
            snr_db: -20.0,
        },
    );
    let noise: Vec<f32> = out
        .samples
        .iter()
        .zip(&input.samples)
        .map(|(o, i)| o - i)
        .collect();
    let octaves: Vec<(f64, f64)> = (0..5)
        .map(|o| {
            let lo = 125.0 * 2f64.powi(o);
            (f64::from(o), db(band_psd(&noise, lo, 2.0 * lo)))
        })
        .collect();
    slope(&octaves)
}

/// Least-squares slope of `y` against `x`.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let cov: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let var: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    cov / var
}

#[test]
fn pink_noise_falls_three_db_per_octave_and_white_is_flat() {
    let pink = noise_slope(NoiseKind::Pink);
    let white = noise_slope(NoiseKind::White);
    println!("PSD slope: pink {pink:.3} dB/octave, white {white:.3} dB/octave");
    assert!((pink + 3.0).abs() < 0.5, "pink slope {pink}");
    assert!(white.abs() < 0.5, "white slope {white}");
}

#[test]
fn babble_without_clips_falls_back_to_pink() {
    let input = voice(1, 0.5);
    let view = |kind| View::Noise { kind, snr_db: 10.0 };
    let silent = Audio::new(vec![0.0; 100], SAMPLE_RATE);
    let a = apply(&input, &view(NoiseKind::Babble), 5, &[]).expect("babble");
    let b = apply(&input, &view(NoiseKind::Pink), 5, &[]).expect("pink");
    let c = apply(&input, &view(NoiseKind::Babble), 5, &[&silent]).expect("babble");
    assert_eq!(a, b);
    assert_eq!(c, b);
}

// ---- gain ----------------------------------------------------------------------------------

#[test]
fn gain_scales_rms_by_the_decibels() {
    let input = voice(1, 0.5);
    for gain in [-20.0, -6.0, 0.0, 3.5, 12.0] {
        let out = apply1(&input, View::Gain { db: gain });
        let measured = db(power(&out.samples) / power(&input.samples));
        println!("gain {gain} dB: measured {measured:.6} dB");
        assert!((measured - gain).abs() < 0.01, "{gain}: {measured}");
    }
}

// ---- telephone -----------------------------------------------------------------------------

#[test]
fn telephone_passes_the_voice_band_only() {
    let change = |freq: f64| {
        let input = sine(freq, 1.0, 0.5);
        let out = apply1(&input, View::Telephone);
        // Skip the filter's start-up transient.
        let skip = 4000;
        db(power(&out.samples[skip..]) / power(&input.samples[skip..]))
    };
    let (low, mid, high) = (change(100.0), change(1000.0), change(6000.0));
    let (edge_lo, edge_hi) = (change(300.0), change(3400.0));
    println!(
        "telephone: 100 Hz {low:.2} dB, 300 Hz {edge_lo:.2} dB, 1 kHz {mid:.3} dB, \
         3.4 kHz {edge_hi:.2} dB, 6 kHz {high:.2} dB"
    );
    assert!(low <= -20.0, "100 Hz: {low}");
    assert!(mid.abs() <= 1.0, "1 kHz: {mid}");
    assert!(high <= -20.0, "6 kHz: {high}");
    assert!((edge_lo + 3.0).abs() < 0.5 && (edge_hi + 3.0).abs() < 0.5);
}

// ---- reverb --------------------------------------------------------------------------------

/// RT60 from the Schroeder backward integral of `h`, fitted from -5 to -25 dB (T20, ISO 3382).
fn rt60_from_impulse_response(h: &[f32]) -> f64 {
    let mut tail = 0.0;
    let mut curve = vec![0.0; h.len()];
    for i in (0..h.len()).rev() {
        tail += f64::from(h[i]) * f64::from(h[i]);
        curve[i] = tail;
    }
    let total = curve[0];
    let points: Vec<(f64, f64)> = curve
        .iter()
        .enumerate()
        .map(|(i, &e)| (i as f64 / FS, db(e / total)))
        .filter(|&(_, level)| (-25.0..=-5.0).contains(&level))
        .collect();
    -60.0 / slope(&points)
}

#[test]
fn reverb_rings_on_with_the_requested_decay_time() {
    for rt60_s in [0.1, 0.25, 0.4] {
        let mut impulse = vec![0.0f32; 16_000];
        impulse[0] = 1.0;
        let ir = apply1(
            &Audio::new(impulse, SAMPLE_RATE),
            View::Reverb { rt60_s, wet: 1.0 },
        );
        let measured = rt60_from_impulse_response(&ir.samples);
        println!("reverb RT60 {rt60_s} s: measured {measured:.4} s");
        assert!(
            (measured / rt60_s - 1.0).abs() < 0.3,
            "{rt60_s}: {measured}"
        );
    }
    // A 100 ms burst, then silence: the tail after the burst is nonzero and decays.
    let mut burst = voice(1, 1.0);
    burst.samples[1600..].iter_mut().for_each(|v| *v = 0.0);
    let out = apply1(
        &burst,
        View::Reverb {
            rt60_s: 0.3,
            wet: 0.4,
        },
    );
    let window = |from: usize| power(&out.samples[from..from + 800]);
    let (a, b, c) = (window(1600), window(3200), window(4800));
    println!("reverb tail power: {a:.3e}, {b:.3e}, {c:.3e}");
    assert!(a > 0.0 && b < a && c < b && c > 0.0);
    assert_eq!(out.samples.len(), burst.samples.len());
}

// ---- shift ---------------------------------------------------------------------------------

/// The lag (in samples, `b` later than `a` when positive) that maximises the cross-correlation.
fn peak_lag(a: &[f32], b: &[f32], max_lag: i64) -> i64 {
    let score = |lag: i64| -> f64 {
        (0..a.len() as i64)
            .filter_map(|i| {
                let j = i + lag;
                (0..b.len() as i64)
                    .contains(&j)
                    .then(|| f64::from(a[i as usize]) * f64::from(b[j as usize]))
            })
            .sum()
    };
    (-max_lag..=max_lag)
        .map(|lag| (lag, score(lag)))
        .max_by(|p, q| p.1.total_cmp(&q.1))
        .map_or(0, |p| p.0)
}

#[test]
fn shift_moves_the_content_by_the_requested_lag() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let input = Audio::new(
        (0..6000).map(|_| rng.gen_range(-0.5..0.5)).collect(),
        SAMPLE_RATE,
    );
    for ms in [-100.0, -37.5, 0.0, 12.3, 100.0] {
        let out = apply1(&input, View::Shift { ms });
        assert_eq!(out.samples.len(), input.samples.len());
        let lag = peak_lag(&input.samples, &out.samples, 1700);
        let want = ms * FS / 1000.0;
        println!("shift {ms} ms: peak at lag {lag}, want {want}");
        assert!((lag as f64 - want).abs() <= 1.0, "{ms} ms: lag {lag}");
    }
}

// ---- 8 kHz round trip ----------------------------------------------------------------------

#[test]
fn round_trip_8k_keeps_the_narrow_band_and_drops_the_rest() {
    let low = sine(1000.0, 1.0, 0.5);
    let out = apply1(&low, View::RoundTrip8k);
    assert_eq!(out.samples.len(), low.samples.len());
    let dot: f64 = low
        .samples
        .iter()
        .zip(&out.samples)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum();
    let n = low.samples.len() as f64;
    let corr = dot / (n * (power(&low.samples) * power(&out.samples)).sqrt());
    let high = sine(6000.0, 1.0, 0.5);
    let out_high = apply1(&high, View::RoundTrip8k);
    let drop = db(power(&out_high.samples) / power(&high.samples));
    // Away from the clip edges, where the sine's abrupt start and end are broadband clicks.
    let middle = db(power(&out_high.samples[2000..14_000]) / power(&high.samples[2000..14_000]));
    println!(
        "8 kHz round trip: 1 kHz correlation {corr:.6}, 6 kHz {drop:.1} dB ({middle:.1} dB \
         away from the edges)"
    );
    assert!(middle <= -60.0, "6 kHz away from the edges: {middle} dB");
    assert!(corr > 0.99, "1 kHz correlation {corr}");
    assert!(drop <= -30.0, "6 kHz: {drop} dB");
}

// ---- chains and determinism ----------------------------------------------------------------

#[test]
fn chain_equals_its_parts_in_order() {
    let input = voice(1, 0.6);
    let clip = voice(4, 0.3);
    let parts = vec![
        View::Speed { factor: 1.07 },
        View::Reverb {
            rt60_s: 0.2,
            wet: 0.3,
        },
        View::Noise {
            kind: NoiseKind::Babble,
            snr_db: 15.0,
        },
        View::Noise {
            kind: NoiseKind::White,
            snr_db: 25.0,
        },
        View::Telephone,
        View::Gain { db: -3.0 },
    ];
    let seed = 42;
    let chained = apply(&input, &View::Chain(parts.clone()), seed, &[&clip]).expect("chain");
    let mut by_hand = input.clone();
    for (i, part) in parts.iter().enumerate() {
        by_hand = apply(&by_hand, part, chain_seed(seed, i), &[&clip]).expect("part");
    }
    assert_eq!(chained, by_hand);
    assert_eq!(
        apply(&input, &View::Chain(vec![]), seed, &[]).expect("empty chain"),
        input
    );
}

#[test]
fn same_seed_same_output_different_seed_different_noise() {
    let input = voice(1, 0.5);
    for view in [
        View::Noise {
            kind: NoiseKind::White,
            snr_db: 10.0,
        },
        View::Noise {
            kind: NoiseKind::Pink,
            snr_db: 10.0,
        },
        View::Reverb {
            rt60_s: 0.3,
            wet: 0.5,
        },
    ] {
        let a = apply(&input, &view, 1, &[]).expect("view");
        let b = apply(&input, &view, 1, &[]).expect("view");
        let c = apply(&input, &view, 2, &[]).expect("view");
        assert_eq!(a, b);
        assert_ne!(a, c, "{view:?}");
    }
    // Two noise views in one chain draw independent noise.
    assert_ne!(chain_seed(5, 0), chain_seed(5, 1));
}

// ---- errors and edge cases -----------------------------------------------------------------

#[test]
fn bad_parameters_and_rates_are_errors() {
    let input = voice(1, 0.1);
    let bad = [
        View::Speed { factor: 0.4 },
        View::Speed { factor: 2.5 },
        View::Speed { factor: f64::NAN },
        View::Pitch { semitones: 13.0 },
        View::Noise {
            kind: NoiseKind::White,
            snr_db: f64::NAN,
        },
        View::Gain { db: f64::INFINITY },
        View::Reverb {
            rt60_s: 0.0,
            wet: 0.5,
        },
        View::Reverb {
            rt60_s: 0.2,
            wet: 1.5,
        },
        View::Shift { ms: 5000.0 },
        View::Chain(vec![View::Telephone, View::Gain { db: 100.0 }]),
    ];
    for view in &bad {
        assert!(apply(&input, view, 0, &[]).is_err(), "{view:?}");
        // Parameters are checked even when there is nothing to process.
        assert!(apply(&Audio::new(vec![], SAMPLE_RATE), view, 0, &[]).is_err());
    }
    let mut deep = View::Telephone;
    for _ in 0..100 {
        deep = View::Chain(vec![deep]);
    }
    assert!(apply(&input, &deep, 0, &[]).is_err());

    let at_8k = Audio::new(vec![0.1; 800], 8000);
    assert!(apply(&at_8k, &View::Telephone, 0, &[]).is_err());
    assert!(apply(&at_8k, &View::RoundTrip8k, 0, &[]).is_err());
    assert!(apply(&at_8k, &View::Gain { db: 3.0 }, 0, &[]).is_ok());
    let babble_view = View::Noise {
        kind: NoiseKind::Babble,
        snr_db: 10.0,
    };
    assert!(apply(&input, &babble_view, 0, &[&at_8k]).is_err());
}

#[test]
fn empty_audio_gives_empty_audio() {
    let empty = Audio::new(vec![], SAMPLE_RATE);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let space = ViewSpace::default();
    for _ in 0..50 {
        let view = space.draw(&mut rng);
        let out = apply(&empty, &view, 1, &[]).expect("empty");
        assert!(out.samples.is_empty(), "{view:?}");
    }
}

// ---- the view space ------------------------------------------------------------------------

fn within(v: f64, (lo, hi): (f64, f64)) -> bool {
    v >= lo && v <= hi
}

#[test]
fn drawn_views_stay_in_range_and_follow_the_rng() {
    let space = ViewSpace::default();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut seen_kinds = std::collections::HashSet::new();
    for _ in 0..2000 {
        let View::Chain(parts) = space.draw(&mut rng) else {
            panic!("draw gives a chain");
        };
        assert!(!parts.is_empty());
        for part in parts {
            seen_kinds.insert(part.name());
            match part {
                View::Speed { factor } => assert!(within(factor, space.speed)),
                View::Pitch { semitones } => assert!(within(semitones, space.pitch_semitones)),
                View::Noise { snr_db, .. } => assert!(within(snr_db, space.snr_db)),
                View::Gain { db } => assert!(within(db, space.gain_db)),
                View::Shift { ms } => assert!(within(ms, space.shift_ms)),
                View::Reverb { rt60_s, wet } => {
                    assert!(within(rt60_s, space.reverb_rt60_s));
                    assert!(within(wet, space.reverb_wet));
                }
                View::Telephone | View::RoundTrip8k => {}
                View::Chain(_) => panic!("nested chain"),
            }
        }
    }
    assert_eq!(seen_kinds.len(), 8);
    let draws = |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..20).map(|_| space.draw(&mut rng)).collect::<Vec<_>>()
    };
    assert_eq!(draws(1), draws(1));
    assert_ne!(draws(1), draws(2));

    let only_gain = ViewSpace::parse("gain=2:3,p=0").expect("parse");
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for _ in 0..20 {
        let View::Chain(parts) = only_gain.draw(&mut rng) else {
            panic!("draw gives a chain");
        };
        assert!(matches!(parts.as_slice(), [View::Gain { db }] if within(*db, (2.0, 3.0))));
    }
}

#[test]
fn view_space_text_round_trips_and_rejects_bad_strings() {
    let space = ViewSpace::parse("noise=10:30,speed=0.9:1.1,gain=-6:6,shift=100").expect("parse");
    assert_eq!(space.shift_ms, (-100.0, 100.0));
    assert_eq!(space.speed, (0.9, 1.1));
    assert_eq!(
        space.kinds,
        vec![
            ViewKind::Speed,
            ViewKind::Shift,
            ViewKind::Noise,
            ViewKind::Gain
        ]
    );
    for text in [
        "default",
        "noise=10:30,speed=0.9:1.1,gain=-6:6,shift=100",
        "telephone,8k,reverb=0.15:0.35,wet=0.2,p=0.75",
        "pitch=2.5,noise=5,noise-kinds=babble+white",
        "speed",
    ] {
        let parsed = ViewSpace::parse(text).expect(text);
        let again = ViewSpace::parse(&parsed.to_string()).expect("display parses");
        assert_eq!(again, parsed, "{text} -> {parsed}");
    }
    assert_eq!(
        ViewSpace::parse(&ViewSpace::default().to_string()).expect("default"),
        ViewSpace::default()
    );
    for bad in [
        "",
        ",",
        "speed=0.3:1.1",
        "speed=1.1:0.9",
        "speed=abc",
        "noise=nan",
        "gain=1:2:3",
        "foo=1",
        "telephone=3",
        "speed=1,speed=1",
        "p=2",
        "p=0.5",
        "noise-kinds=red",
        "wet",
        "shift=2000",
    ] {
        let err = ViewSpace::parse(bad);
        assert!(err.is_err(), "`{bad}` parsed as {err:?}");
    }
}

// ---- never panic ---------------------------------------------------------------------------

fn any_view() -> impl Strategy<Value = View> {
    let kind = prop_oneof![
        Just(NoiseKind::White),
        Just(NoiseKind::Pink),
        Just(NoiseKind::Babble)
    ];
    let leaf = prop_oneof![
        (0.5f64..=2.0).prop_map(|factor| View::Speed { factor }),
        (-12.0f64..=12.0).prop_map(|semitones| View::Pitch { semitones }),
        (kind, -30.0f64..=100.0).prop_map(|(kind, snr_db)| View::Noise { kind, snr_db }),
        (-60.0f64..=60.0).prop_map(|db| View::Gain { db }),
        Just(View::Telephone),
        (0.01f64..=2.0, 0.0f64..=1.0).prop_map(|(rt60_s, wet)| View::Reverb { rt60_s, wet }),
        (-1000.0f64..=1000.0).prop_map(|ms| View::Shift { ms }),
        Just(View::RoundTrip8k),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(View::Chain)
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]
    #[test]
    fn random_views_never_panic_and_stay_finite(
        samples in prop::collection::vec(-1.0f32..=1.0, 0..4000),
        babble in prop::collection::vec(-1.0f32..=1.0, 0..300),
        view in any_view(),
        seed in any::<u64>(),
    ) {
        let audio = Audio::new(samples, SAMPLE_RATE);
        let clip = Audio::new(babble, SAMPLE_RATE);
        let out = apply(&audio, &view, seed, &[&clip]).expect("valid view");
        prop_assert!(out.samples.iter().all(|v| v.is_finite()));
        prop_assert_eq!(out.sample_rate, SAMPLE_RATE);
    }
}

// ---- speed in x realtime -------------------------------------------------------------------

/// `cargo test --release -p pairalign-datasets --test views -- --ignored --nocapture`
#[test]
#[ignore = "timing; run with --release --ignored --nocapture"]
fn views_x_realtime() {
    let input = voice(1, 10.0);
    let clips: Vec<Audio> = (2..6).map(|s| voice(s, 3.0)).collect();
    let babble: Vec<&Audio> = clips.iter().collect();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let drawn = ViewSpace {
        p_each: 0.5,
        ..ViewSpace::default()
    }
    .draw(&mut rng);
    let views = [
        View::Speed { factor: 1.1 },
        View::Pitch { semitones: 2.0 },
        View::Noise {
            kind: NoiseKind::White,
            snr_db: 20.0,
        },
        View::Noise {
            kind: NoiseKind::Pink,
            snr_db: 20.0,
        },
        View::Noise {
            kind: NoiseKind::Babble,
            snr_db: 20.0,
        },
        View::Gain { db: 3.0 },
        View::Telephone,
        View::Reverb {
            rt60_s: 0.4,
            wet: 0.3,
        },
        View::Shift { ms: 50.0 },
        View::RoundTrip8k,
        drawn,
    ];
    for view in &views {
        let start = std::time::Instant::now();
        let reps = 5;
        for seed in 0..reps {
            let out = apply(&input, view, seed, &babble).expect("view");
            std::hint::black_box(out);
        }
        let per = start.elapsed().as_secs_f64() / reps as f64;
        let name: String = format!("{view:?}").chars().take(48).collect();
        println!(
            "{name:>48}: {:8.2} ms per 10 s, {:8.0} x realtime",
            per * 1000.0,
            input.duration_s() / per
        );
    }
}
