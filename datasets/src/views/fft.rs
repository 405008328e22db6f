//! A radix-2 complex FFT and the overlap-add convolution built on it (reverb, pink noise).
//!
//! Written here rather than pulled in: the views need one power-of-two transform, and a
//! dependency-free one keeps the output bit-stable across library upgrades.

use std::f64::consts::PI;

/// A complex number as `(re, im)`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Complex {
    pub re: f64,
    pub im: f64,
}

impl Complex {
    fn mul(self, o: Complex) -> Complex {
        Complex {
            re: self.re * o.re - self.im * o.im,
            im: self.re * o.im + self.im * o.re,
        }
    }
}

/// A planned in-place transform of one power-of-two size (iterative Cooley-Tukey).
#[derive(Debug)]
pub(crate) struct Fft {
    n: usize,
    /// `exp(-2 pi i k / n)` for `k < n / 2`.
    twiddles: Vec<Complex>,
}

impl Fft {
    /// A plan for size `n`, which must be a power of two (callers use `next_power_of_two`).
    pub fn new(n: usize) -> Fft {
        debug_assert!(n.is_power_of_two());
        let twiddles = (0..n / 2)
            .map(|k| {
                let a = -2.0 * PI * k as f64 / n as f64;
                Complex {
                    re: a.cos(),
                    im: a.sin(),
                }
            })
            .collect();
        Fft { n, twiddles }
    }

    /// Forward transform (no scaling).
    pub fn forward(&self, x: &mut [Complex]) {
        self.run(x, false);
    }

    /// Inverse transform, scaled by `1 / n` so that `inverse(forward(x)) == x`.
    pub fn inverse(&self, x: &mut [Complex]) {
        self.run(x, true);
        let s = 1.0 / self.n as f64;
        for v in x.iter_mut() {
            v.re *= s;
            v.im *= s;
        }
    }

    fn run(&self, x: &mut [Complex], inverse: bool) {
        let n = self.n;
        if x.len() != n || n < 2 {
            return;
        }
        let bits = n.trailing_zeros();
        for i in 0..n {
            let j = i.reverse_bits() >> (usize::BITS - bits);
            if j > i {
                x.swap(i, j);
            }
        }
        let mut len = 2;
        while len <= n {
            let half = len / 2;
            let stride = n / len;
            for start in (0..n).step_by(len) {
                for k in 0..half {
                    let mut w = self.twiddles[k * stride];
                    if inverse {
                        w.im = -w.im;
                    }
                    let a = x[start + k];
                    let b = x[start + k + half].mul(w);
                    x[start + k] = Complex {
                        re: a.re + b.re,
                        im: a.im + b.im,
                    };
                    x[start + k + half] = Complex {
                        re: a.re - b.re,
                        im: a.im - b.im,
                    };
                }
            }
            len *= 2;
        }
    }
}

/// Full linear convolution `x * h` (length `x.len() + h.len() - 1`) by overlap-add.
///
/// Two real blocks ride in one complex transform (one in the real part, one in the imaginary
/// part): `h` is real, so the two results come back separated in the real and imaginary parts.
pub(crate) fn convolve(x: &[f32], h: &[f32]) -> Vec<f32> {
    if x.is_empty() || h.is_empty() {
        return Vec::new();
    }
    let out_len = x.len() + h.len() - 1;
    let size = (2 * h.len()).next_power_of_two().max(1024);
    let block = size - h.len() + 1;
    let fft = Fft::new(size);
    let mut hf = vec![Complex::default(); size];
    for (c, &v) in hf.iter_mut().zip(h) {
        c.re = f64::from(v);
    }
    fft.forward(&mut hf);

    let mut out = vec![0.0f64; out_len];
    let mut buf = vec![Complex::default(); size];
    let blocks: Vec<usize> = (0..x.len()).step_by(block).collect();
    for pair in blocks.chunks(2) {
        buf.iter_mut().for_each(|c| *c = Complex::default());
        for (lane, &start) in pair.iter().enumerate() {
            let end = (start + block).min(x.len());
            for (c, &v) in buf.iter_mut().zip(&x[start..end]) {
                if lane == 0 {
                    c.re = f64::from(v);
                } else {
                    c.im = f64::from(v);
                }
            }
        }
        fft.forward(&mut buf);
        for (c, w) in buf.iter_mut().zip(&hf) {
            *c = c.mul(*w);
        }
        fft.inverse(&mut buf);
        for (lane, &start) in pair.iter().enumerate() {
            for (o, c) in out[start..].iter_mut().zip(&buf) {
                *o += if lane == 0 { c.re } else { c.im };
            }
        }
    }
    out.into_iter().map(|v| v as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(x: &[f32], h: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0f64; x.len() + h.len() - 1];
        for (i, &a) in x.iter().enumerate() {
            for (j, &b) in h.iter().enumerate() {
                out[i + j] += f64::from(a) * f64::from(b);
            }
        }
        out.into_iter().map(|v| v as f32).collect()
    }

    #[test]
    fn overlap_add_matches_direct_convolution() {
        let mut s = 1u32;
        let mut next = || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for (nx, nh) in [(1, 1), (5, 3), (3000, 700), (5000, 1), (100, 2000)] {
            let x: Vec<f32> = (0..nx).map(|_| next()).collect();
            let h: Vec<f32> = (0..nh).map(|_| next()).collect();
            let a = convolve(&x, &h);
            let b = direct(&x, &h);
            assert_eq!(a.len(), b.len());
            for (p, q) in a.iter().zip(&b) {
                assert!((p - q).abs() < 1e-4, "{nx}x{nh}: {p} vs {q}");
            }
        }
    }

    #[test]
    fn inverse_undoes_forward() {
        let fft = Fft::new(64);
        let orig: Vec<Complex> = (0..64)
            .map(|i| Complex {
                re: (i as f64 * 0.3).sin(),
                im: (i as f64).cos(),
            })
            .collect();
        let mut x = orig.clone();
        fft.forward(&mut x);
        fft.inverse(&mut x);
        for (a, b) in x.iter().zip(&orig) {
            assert!((a.re - b.re).abs() < 1e-12 && (a.im - b.im).abs() < 1e-12);
        }
    }
}
