//! The telephone band: 300-3400 Hz (ITU-T G.712 channel) as cascaded biquads.
//!
//! Each edge is a 4th-order Butterworth filter: two biquads from R. Bristow-Johnson's "Audio EQ
//! Cookbook" with the Butterworth pole Qs `1 / (2 cos(pi/8))` and `1 / (2 cos(3 pi/8))`. The
//! cookbook's bilinear transform is pre-warped at the edge, so the edges sit exactly at 300 Hz and
//! 3400 Hz, and the warping steepens the low-pass towards Nyquist.

use std::f64::consts::PI;

/// Lower edge of the telephone band, Hz.
pub const TELEPHONE_LOW_HZ: f64 = 300.0;
/// Upper edge of the telephone band, Hz.
pub const TELEPHONE_HIGH_HZ: f64 = 3400.0;
/// Pole Qs of a 4th-order Butterworth filter.
const BUTTERWORTH_4_Q: [f64; 2] = [0.541_196_100_146_197, 1.306_562_964_876_376_5];

/// One second-order section, run as transposed direct form II in `f64`.
#[derive(Clone, Copy, Debug)]
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
}

impl Biquad {
    fn low_pass(f0: f64, q: f64, fs: f64) -> Biquad {
        let w0 = 2.0 * PI * f0 / fs;
        let (s, c) = w0.sin_cos();
        let alpha = s / (2.0 * q);
        let a0 = 1.0 + alpha;
        Biquad {
            b: [(1.0 - c) / 2.0 / a0, (1.0 - c) / a0, (1.0 - c) / 2.0 / a0],
            a: [-2.0 * c / a0, (1.0 - alpha) / a0],
        }
    }

    fn high_pass(f0: f64, q: f64, fs: f64) -> Biquad {
        let w0 = 2.0 * PI * f0 / fs;
        let (s, c) = w0.sin_cos();
        let alpha = s / (2.0 * q);
        let a0 = 1.0 + alpha;
        Biquad {
            b: [(1.0 + c) / 2.0 / a0, -(1.0 + c) / a0, (1.0 + c) / 2.0 / a0],
            a: [-2.0 * c / a0, (1.0 - alpha) / a0],
        }
    }

    fn run(&self, x: &mut [f64]) {
        let (mut z1, mut z2) = (0.0, 0.0);
        for v in x.iter_mut() {
            let y = self.b[0] * *v + z1;
            z1 = self.b[1] * *v - self.a[0] * y + z2;
            z2 = self.b[2] * *v - self.a[1] * y;
            *v = y;
        }
    }
}

/// Band-passes `x` (at `fs` Hz) to the telephone band.
pub(crate) fn telephone(x: &[f32], fs: f64) -> Vec<f32> {
    let mut y: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    for q in BUTTERWORTH_4_Q {
        Biquad::high_pass(TELEPHONE_LOW_HZ, q, fs).run(&mut y);
        Biquad::low_pass(TELEPHONE_HIGH_HZ, q, fs).run(&mut y);
    }
    y.into_iter().map(|v| v as f32).collect()
}
