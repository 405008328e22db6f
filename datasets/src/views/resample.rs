//! Band-limited resampling by windowed-sinc interpolation (speed, pitch, 8 kHz round trip).
//!
//! The kernel is a Kaiser-windowed sinc (J. O. Smith, "Digital Audio Resampling Home Page",
//! bandlimited interpolation), tabulated once per call and read with linear interpolation. The
//! kernel is symmetric around the output instant, so resampling adds no delay.

/// Zero crossings of the sinc on each side of the centre.
const ZERO_CROSSINGS: usize = 32;
/// Table entries per zero crossing; linear interpolation between them keeps the table error
/// below about -100 dB.
const TABLE_RESOLUTION: usize = 512;
/// Kaiser window shape: about 90 dB of stop-band attenuation.
const KAISER_BETA: f64 = 9.0;
/// Cut-off as a fraction of the lower of the two Nyquist frequencies, leaving room for the
/// transition band below Nyquist.
const ROLLOFF: f64 = 0.92;

/// Phases of the polyphase filter bank per input sample; output instants between two phases
/// blend the two filters linearly.
const PHASES: usize = 256;

/// Resamples `x` so that output sample `j` is the band-limited value of `x` at input time
/// `j * step` (in input samples), for `j < out_len`. `step > 1` shortens the signal (speeds it up,
/// raising its pitch); `step = 2` halves the sample rate. Samples outside `x` count as zero.
pub(crate) fn resample(x: &[f32], step: f64, out_len: usize) -> Vec<f32> {
    if x.is_empty() || !(step.is_finite() && step > 0.0) {
        return vec![0.0; out_len];
    }
    // Cut-off in cycles per input sample; below the output Nyquist when decimating.
    let fc = 0.5 * ROLLOFF * (1.0 / step).min(1.0);
    let half = (ZERO_CROSSINGS as f64 / (2.0 * fc)).ceil() as usize + 1;
    let taps = 2 * half + 1;
    let bank = filter_bank(fc, half);

    // Input padded so that every window `base - half ..= base + half` lies inside.
    let last_t = (out_len.saturating_sub(1)) as f64 * step;
    let mut padded = vec![0.0f32; half];
    padded.extend_from_slice(x);
    padded.resize(padded.len().max(last_t.floor() as usize + taps + 1), 0.0);

    (0..out_len)
        .map(|j| {
            let t = j as f64 * step;
            let base = t.floor();
            let pos = (t - base) * PHASES as f64;
            let p = (pos as usize).min(PHASES - 1);
            let blend = (pos - p as f64) as f32;
            let window = &padded[base as usize..base as usize + taps];
            let a = dot(window, &bank[p * taps..(p + 1) * taps]);
            if blend == 0.0 {
                return a;
            }
            let b = dot(window, &bank[(p + 1) * taps..(p + 2) * taps]);
            a + blend * (b - a)
        })
        .collect()
}

/// `PHASES + 1` filters of `2 * half + 1` taps: row `p`, tap `m` weighs input `base + m - half`
/// for an output at `base + p / PHASES`.
fn filter_bank(fc: f64, half: usize) -> Vec<f32> {
    let table = kernel_table();
    let taps = 2 * half + 1;
    let scale = 2.0 * fc;
    let mut bank = Vec::with_capacity((PHASES + 1) * taps);
    for p in 0..=PHASES {
        let frac = p as f64 / PHASES as f64;
        for m in 0..taps {
            let d = frac - (m as f64 - half as f64);
            let pos = d.abs() * scale * TABLE_RESOLUTION as f64;
            let k = pos as usize;
            let h = if k + 1 < table.len() {
                let f = pos - k as f64;
                table[k] + (table[k + 1] - table[k]) * f
            } else {
                0.0
            };
            bank.push((h * scale) as f32);
        }
    }
    bank
}

/// Dot product with eight independent partial sums, so that the compiler can vectorise it.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `sinc(u) * kaiser(u / ZERO_CROSSINGS)` for `u` in `[0, ZERO_CROSSINGS]`, plus one guard entry.
fn kernel_table() -> Vec<f64> {
    let n = ZERO_CROSSINGS * TABLE_RESOLUTION;
    let norm = bessel_i0(KAISER_BETA);
    (0..=n + 1)
        .map(|k| {
            if k >= n {
                return 0.0;
            }
            let u = k as f64 / TABLE_RESOLUTION as f64;
            let r = u / ZERO_CROSSINGS as f64;
            let window = bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / norm;
            let sinc = if k == 0 {
                1.0
            } else {
                let a = std::f64::consts::PI * u;
                a.sin() / a
            };
            sinc * window
        })
        .collect()
}

/// Modified Bessel function of the first kind, order zero, by its power series.
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..64 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_step_is_identity_for_band_limited_input() {
        let x: Vec<f32> = (0..2000).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        let y = resample(&x, 1.0, x.len());
        for i in 100..1900 {
            assert!((x[i] - y[i]).abs() < 1e-3, "{i}: {} vs {}", x[i], y[i]);
        }
    }

    #[test]
    fn dc_gain_is_one_when_decimating_and_interpolating() {
        let x = vec![0.25f32; 4000];
        for step in [0.5, 0.9, 1.1, 2.0] {
            let y = resample(&x, step, (4000.0 / step) as usize);
            let mid = y[y.len() / 2];
            assert!((mid - 0.25).abs() < 1e-3, "step {step}: {mid}");
        }
    }
}
