//! Element-wise ops that candle's CPU backend runs slowly.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use crate::Result;

/// `sqrt(2 / pi)`, of the tanh approximation of GELU.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

/// GELU in its tanh approximation, as candle's `Tensor::gelu` (every model here was trained
/// with it). candle's CPU kernel calls `tanhf` once per element, and that was about a third of
/// tokenizing a query (`perf` on benches/benches/query_latency.rs, 2026-12-07: `tanhf` and the
/// `expm1f` it calls, 19% of the whole bench). On the CPU, for an `f32` tensor that tracks no
/// gradient (inference), this is one pass of `x / (1 + exp(-2u))` instead, which is
/// `0.5 x (1 + tanh u)` with `u = sqrt(2/pi) (x + 0.044715 x^3)` rewritten to need one `expf`:
/// within 1e-6 of candle's (tested). Elsewhere (training, which needs the backward pass, and
/// the GPU, which has a fused kernel) it is candle's op.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    if x.track_op() || !x.device().is_cpu() || x.dtype() != candle_core::DType::F32 {
        return Ok(x.gelu()?);
    }
    Ok(x.contiguous()?.apply_op1_no_bwd(&TanhGelu)?)
}

/// One element of [`gelu`]'s CPU pass. Where `exp(-2u)` overflows (`x` below about -10) the
/// result is `x / inf`, -0, as candle's `0.5 x (1 + tanh u)` with `tanh u = -1`.
fn gelu_one(x: f32) -> f32 {
    let u = SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x);
    x / (1.0 + (-2.0 * u).exp())
}

struct TanhGelu;

impl CustomOp1 for TanhGelu {
    fn name(&self) -> &'static str {
        "tanh-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(data), Some((from, to))) = (s, l.contiguous_offsets()) else {
            candle_core::bail!("tanh-gelu takes a contiguous f32 tensor")
        };
        let out: Vec<f32> = data[from..to].iter().map(|&x| gelu_one(x)).collect();
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn gelu_matches_candles_op() {
        let mut xs: Vec<f32> = (-40_000..=40_000).map(|i| i as f32 / 2_000.0).collect();
        xs.extend([
            -1e30,
            -1e4,
            -100.0,
            -9.7,
            9.7,
            100.0,
            1e4,
            1e30,
            f32::MIN_POSITIVE,
            -0.0,
        ]);
        let x = Tensor::new(xs.as_slice(), &Device::Cpu).unwrap();
        let ours: Vec<f32> = gelu(&x).unwrap().to_vec1().unwrap();
        let theirs: Vec<f32> = x.gelu().unwrap().to_vec1().unwrap();
        for ((&x, &a), &b) in xs.iter().zip(&ours).zip(&theirs) {
            let tol = 1e-6 * b.abs().max(1.0);
            assert!((a - b).abs() <= tol, "gelu({x}): {a} against candle's {b}");
        }
        // gelu(+inf) = +inf; gelu(-inf) is -inf * 0, NaN in both.
        let inf = Tensor::new(&[f32::INFINITY, f32::NEG_INFINITY], &Device::Cpu).unwrap();
        let out: Vec<f32> = gelu(&inf).unwrap().to_vec1().unwrap();
        let theirs: Vec<f32> = inf.gelu().unwrap().to_vec1().unwrap();
        assert_eq!(out[0], f32::INFINITY);
        assert_eq!(
            out[1].is_nan(),
            theirs[1].is_nan(),
            "{out:?} against {theirs:?}"
        );
        // A strided view is made contiguous first.
        let m = Tensor::new(&[[1f32, -2.0], [3.0, -4.0]], &Device::Cpu)
            .unwrap()
            .t()
            .unwrap();
        let ours: Vec<Vec<f32>> = gelu(&m).unwrap().to_vec2().unwrap();
        let theirs: Vec<Vec<f32>> = m.gelu().unwrap().to_vec2().unwrap();
        for (a, b) in ours.iter().flatten().zip(theirs.iter().flatten()) {
            assert!((a - b).abs() <= 1e-6, "{ours:?} against {theirs:?}");
        }
    }

    #[test]
    fn gelu_keeps_the_gradient_in_training() {
        let v = Var::new(&[-1f32, 0.5, 2.0], &Device::Cpu).unwrap();
        let y = gelu(v.as_tensor()).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        let g: Vec<f32> = grads
            .get(v.as_tensor())
            .expect("a gradient")
            .to_vec1()
            .unwrap();
        // d/dx gelu at 0.5 is about 0.867; at 2 about 1.086; at -1 about -0.083.
        for (got, want) in g.iter().zip([-0.083f32, 0.867, 1.086]) {
            assert!((got - want).abs() < 2e-3, "{g:?}");
        }
    }
}
