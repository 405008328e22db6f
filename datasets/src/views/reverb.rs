//! A small synthetic room: exponentially decaying Gaussian noise as the impulse response (the
//! late-reverberation model of J.-M. Jot and A. Chaigne, AES 1991), mixed with the dry signal.

use rand_chacha::ChaCha8Rng;

use super::fft::convolve;
use super::noise::white;

/// `ln(1000)`: amplitude falls by 60 dB (a factor of 1000) over RT60.
const LN_1000: f64 = 6.907_755_278_982_137;

/// The impulse response: `rt60_s * fs` samples of noise under `exp(-ln(1000) t / rt60)`,
/// scaled to unit energy so that the wet path keeps a broadband signal's level.
pub(crate) fn impulse_response(rng: &mut ChaCha8Rng, rt60_s: f64, fs: f64) -> Vec<f32> {
    let len = ((rt60_s * fs).ceil() as usize).max(1);
    let mut h = white(rng, len);
    for (i, v) in h.iter_mut().enumerate() {
        *v *= (-LN_1000 * i as f64 / (rt60_s * fs)).exp() as f32;
    }
    let energy: f64 = h.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    if energy > 0.0 {
        let g = (1.0 / energy.sqrt()) as f32;
        h.iter_mut().for_each(|v| *v *= g);
    }
    h
}

/// `(1 - wet) * x + wet * (x * h)`, cut to the length of `x` (the tail past the clip is dropped).
pub(crate) fn reverberate(x: &[f32], h: &[f32], wet: f64) -> Vec<f32> {
    let wet_signal = convolve(x, h);
    let (dry_g, wet_g) = ((1.0 - wet) as f32, wet as f32);
    x.iter()
        .zip(&wet_signal)
        .map(|(&d, &w)| dry_g * d + wet_g * w)
        .collect()
}
