//! The 80-bin log-mel front end: 16 kHz mono in, one 80-value row per 10 ms frame out.
//!
//! # Definition
//!
//! For samples `x` (16 kHz, `f32` in [-1, 1]):
//!
//! 1. **Framing**, no centering and no padding: frame `t` is `x[160 t .. 160 t + 400]`, for
//!    `frames = 1 + (len - 400) / 160` frames (integer division; 0 when `len < 400`). The center
//!    of frame `t` is at sample `160 t + 200`.
//! 2. **Window**: periodic Hann of length 400, `w[n] = 0.5 - 0.5 cos(2 pi n / 400)` (as
//!    `scipy.signal.get_window("hann", 400)` and librosa).
//! 3. **FFT**: the windowed frame is zero-padded to `N_FFT = 512` and transformed with a real FFT;
//!    **power spectrum** `P[k] = |X[k]|^2` for `k = 0..=256` (no 1/N scaling).
//! 4. **Mel filterbank**: 80 triangular filters from 0 to 8000 Hz on the **Slaney** mel scale
//!    (linear below 1 kHz, logarithmic above: librosa's default `htk=False`), with **Slaney area
//!    normalization** (each triangle is scaled by `2 / (f_right - f_left)`, librosa's
//!    `norm="slaney"`); this is `librosa.filters.mel(sr=16000, n_fft=512, n_mels=80)`.
//!    `M[m] = sum_k F[m, k] P[k]`.
//! 5. **Log**: natural log with a floor, `L[m] = ln(max(M[m], 1e-10))`; silence is exactly
//!    [`LOG_FLOOR`] = `ln(1e-10)` in every bin.
//!
//! The output is row-major `frames x 80`. No mean/variance normalization is applied here: the
//! tokenizers store their own statistics with their weights (shared/DESIGN.md section 6).
//! `scripts/mel_reference.py` computes the same thing with numpy and wrote the fixture
//! `tests/fixtures/mel_reference.json` that the tests compare against.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

use crate::SAMPLE_RATE;

/// Mel bins per frame.
pub const N_MELS: usize = 80;
/// Window length in samples (25 ms at 16 kHz).
pub const WIN_LENGTH: usize = 400;
/// Hop between frames in samples (10 ms at 16 kHz).
pub const HOP_LENGTH: usize = 160;
/// FFT size (the window is zero-padded to it).
pub const N_FFT: usize = 512;
/// The floor applied before the log.
pub const POWER_FLOOR: f32 = 1e-10;
/// `ln(POWER_FLOOR)` rounded to f32: the value of every bin whose energy is at or below the floor
/// (every bin, on silence).
pub const LOG_FLOOR: f32 = -23.025_85;

const N_FREQS: usize = N_FFT / 2 + 1;

/// Slaney mel scale (librosa `hz_to_mel(htk=False)`): linear below 1 kHz, log above.
pub fn hz_to_mel(hz: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / logstep
    } else {
        hz / F_SP
    }
}

/// Inverse of [`hz_to_mel`].
pub fn mel_to_hz(mel: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (logstep * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// Center frequency in Hz of mel bin `m` (the peak of its triangle).
pub fn mel_center_hz(m: usize) -> f64 {
    let top = hz_to_mel(f64::from(SAMPLE_RATE) / 2.0);
    mel_to_hz(top * (m + 1) as f64 / (N_MELS + 1) as f64)
}

/// One triangle, stored sparsely: weights for FFT bins `start..start + weights.len()`.
#[derive(Clone, Debug)]
struct Filter {
    start: usize,
    weights: Vec<f32>,
}

/// The log-mel computer: window, filterbank and FFT plan made once; `compute` is allocation-free
/// apart from its output.
pub struct LogMel {
    window: Vec<f32>,
    filters: Vec<Filter>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl std::fmt::Debug for LogMel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogMel")
            .field("n_mels", &N_MELS)
            .finish_non_exhaustive()
    }
}

impl Default for LogMel {
    fn default() -> Self {
        Self::new()
    }
}

impl LogMel {
    /// Precomputes the window, the filterbank and the FFT plan.
    pub fn new() -> Self {
        let window = (0..WIN_LENGTH)
            .map(|n| {
                let phase = 2.0 * std::f64::consts::PI * n as f64 / WIN_LENGTH as f64;
                (0.5 - 0.5 * phase.cos()) as f32
            })
            .collect();
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
        LogMel {
            window,
            filters: filterbank(),
            fft,
        }
    }

    /// Frames produced for `n_samples` samples: `1 + (n - 400) / 160`, or 0 below 400.
    pub fn frames(&self, n_samples: usize) -> usize {
        frames(n_samples)
    }

    /// Log-mel of `samples`, row-major `frames x N_MELS`.
    pub fn compute(&self, samples: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; frames(samples.len()) * N_MELS];
        self.compute_into(samples, &mut out);
        out
    }

    /// Writes the log-mel of `samples` into `out[..frames * N_MELS]` and returns the frame count.
    ///
    /// # Panics
    /// If `out` is shorter than `self.frames(samples.len()) * N_MELS` (a caller bug, not input).
    pub fn compute_into(&self, samples: &[f32], out: &mut [f32]) -> usize {
        let n_frames = frames(samples.len());
        assert!(
            out.len() >= n_frames * N_MELS,
            "log-mel output buffer holds {} values, {} needed",
            out.len(),
            n_frames * N_MELS
        );
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0f32; N_FREQS];
        for (t, row) in out.chunks_exact_mut(N_MELS).take(n_frames).enumerate() {
            let frame = &samples[t * HOP_LENGTH..t * HOP_LENGTH + WIN_LENGTH];
            for ((dst, &x), &w) in input.iter_mut().zip(frame).zip(&self.window) {
                *dst = x * w;
            }
            input[WIN_LENGTH..].fill(0.0);
            // Lengths are fixed by construction, so the FFT cannot fail.
            if self
                .fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .is_err()
            {
                row.fill(LOG_FLOOR);
                continue;
            }
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for (dst, filter) in row.iter_mut().zip(&self.filters) {
                let bins = &power[filter.start..filter.start + filter.weights.len()];
                let energy: f32 = bins.iter().zip(&filter.weights).map(|(p, w)| p * w).sum();
                // The floor is applied as a constant so that silence is exactly LOG_FLOOR.
                *dst = if energy > POWER_FLOOR {
                    energy.ln()
                } else {
                    LOG_FLOOR
                };
            }
        }
        n_frames
    }
}

fn frames(n_samples: usize) -> usize {
    if n_samples < WIN_LENGTH {
        0
    } else {
        1 + (n_samples - WIN_LENGTH) / HOP_LENGTH
    }
}

/// librosa.filters.mel(sr=16000, n_fft=512, n_mels=80, fmin=0, fmax=8000, htk=False,
/// norm="slaney"), computed in f64 and stored sparsely.
fn filterbank() -> Vec<Filter> {
    let sr = f64::from(SAMPLE_RATE);
    let fft_freqs: Vec<f64> = (0..N_FREQS).map(|k| k as f64 * sr / N_FFT as f64).collect();
    let top = hz_to_mel(sr / 2.0);
    let mel_f: Vec<f64> = (0..N_MELS + 2)
        .map(|i| mel_to_hz(top * i as f64 / (N_MELS + 1) as f64))
        .collect();
    (0..N_MELS)
        .map(|m| {
            let (left, center, right) = (mel_f[m], mel_f[m + 1], mel_f[m + 2]);
            let enorm = 2.0 / (right - left);
            let dense: Vec<f32> = fft_freqs
                .iter()
                .map(|&f| {
                    let lower = (f - left) / (center - left);
                    let upper = (right - f) / (right - center);
                    (lower.min(upper).max(0.0) * enorm) as f32
                })
                .collect();
            let start = dense.iter().position(|&w| w > 0.0).unwrap_or(0);
            let end = dense
                .iter()
                .rposition(|&w| w > 0.0)
                .map_or(start, |e| e + 1);
            Filter {
                start,
                weights: dense[start..end].to_vec(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_count() {
        let mel = LogMel::new();
        assert_eq!(mel.frames(0), 0);
        assert_eq!(mel.frames(399), 0);
        assert_eq!(mel.frames(400), 1);
        assert_eq!(mel.frames(559), 1);
        assert_eq!(mel.frames(560), 2);
        assert_eq!(mel.frames(16_000), 98);
    }

    #[test]
    fn log_floor_constant_matches() {
        assert!((POWER_FLOOR.ln() - LOG_FLOOR).abs() < 1e-5);
    }

    #[test]
    fn mel_scale_round_trips() {
        for hz in [0.0, 100.0, 999.0, 1000.0, 3000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-6);
        }
    }

    #[test]
    fn every_filter_has_weights() {
        assert!(filterbank().iter().all(|f| !f.weights.is_empty()));
    }
}
