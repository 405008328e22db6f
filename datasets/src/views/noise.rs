//! Noise sources for additive noise: white, pink and babble, and mixing at a given SNR.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::fft::{convolve, Complex, Fft};

/// Length of the pink-noise shaping filter: 128 ms at 16 kHz, fine enough for a 1/f slope down
/// to about 30 Hz.
const PINK_TAPS: usize = 2048;
/// Below this frequency pink noise stays flat instead of growing without bound.
const PINK_FLOOR_HZ: f64 = 20.0;
/// Babble is the sum of at most this many other talkers (a cafeteria, not a stadium).
pub const BABBLE_TALKERS: usize = 5;

/// Unit-variance Gaussian white noise (Box-Muller on a ChaCha8 stream).
pub(crate) fn white(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]: ln is finite
        let u2: f64 = rng.gen();
        let r = (-2.0 * u1.ln()).sqrt();
        let a = 2.0 * std::f64::consts::PI * u2;
        out.push((r * a.cos()) as f32);
        out.push((r * a.sin()) as f32);
    }
    out.truncate(n);
    out
}

/// Pink (1/f power, -3 dB per octave) noise: white noise through a linear-phase FIR filter whose
/// magnitude is `1 / sqrt(f)`, designed by frequency sampling with a Hann window.
pub(crate) fn pink(rng: &mut ChaCha8Rng, n: usize, fs: f64) -> Vec<f32> {
    if n == 0 {
        return Vec::new();
    }
    let fft = Fft::new(PINK_TAPS);
    let mut spectrum: Vec<Complex> = (0..PINK_TAPS)
        .map(|k| {
            let bin = k.min(PINK_TAPS - k);
            let f = bin as f64 * fs / PINK_TAPS as f64;
            let re = if bin == 0 {
                0.0
            } else {
                1.0 / f.max(PINK_FLOOR_HZ).sqrt()
            };
            Complex { re, im: 0.0 }
        })
        .collect();
    fft.inverse(&mut spectrum);
    // Zero-phase response centred at 0: rotate to the middle and taper.
    let taps: Vec<f32> = (0..PINK_TAPS)
        .map(|i| {
            let v = spectrum[(i + PINK_TAPS / 2) % PINK_TAPS].re;
            let a = 2.0 * std::f64::consts::PI * i as f64 / PINK_TAPS as f64;
            (v * (0.5 - 0.5 * a.cos())) as f32
        })
        .collect();
    // Filter n + taps - 1 white samples and keep the part where the filter is fully loaded.
    let w = white(rng, n + PINK_TAPS - 1);
    let full = convolve(&w, &taps);
    full[PINK_TAPS - 1..PINK_TAPS - 1 + n].to_vec()
}

/// Babble: up to [`BABBLE_TALKERS`] of `clips`, each at unit RMS, looped from a random offset to
/// `n` samples, summed. `None` when no clip has any energy.
pub(crate) fn babble(rng: &mut ChaCha8Rng, n: usize, clips: &[&[f32]]) -> Option<Vec<f32>> {
    let mut voiced: Vec<(&[f32], f64)> = clips
        .iter()
        .map(|c| (*c, power(c)))
        .filter(|(_, p)| *p > 0.0 && p.is_finite())
        .collect();
    if voiced.is_empty() {
        return None;
    }
    voiced.shuffle(rng);
    let mut out = vec![0.0f32; n];
    for (clip, p) in voiced.into_iter().take(BABBLE_TALKERS) {
        let g = (1.0 / p.sqrt()) as f32;
        let offset = rng.gen_range(0..clip.len());
        for (i, o) in out.iter_mut().enumerate() {
            *o += g * clip[(offset + i) % clip.len()];
        }
    }
    Some(out)
}

/// Mean square of `x` in `f64`.
pub(crate) fn power(x: &[f32]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len() as f64
}

/// `x + g * noise` with `g` chosen so that `power(x) / power(g * noise)` is `snr_db`. A silent
/// `x` (or silent noise) is returned unchanged: no noise level has that SNR.
pub(crate) fn mix_at_snr(x: &[f32], noise: &[f32], snr_db: f64) -> Vec<f32> {
    let ps = power(x);
    let pn = power(noise);
    if ps == 0.0 || pn == 0.0 || !ps.is_finite() || !pn.is_finite() {
        return x.to_vec();
    }
    let g = (ps / (pn * 10f64.powf(snr_db / 10.0))).sqrt() as f32;
    x.iter().zip(noise).map(|(&s, &v)| s + g * v).collect()
}
