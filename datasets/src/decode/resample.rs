//! Sample-rate conversion with rubato's FFT resampler, as a stream (`StreamResampler`) and as a
//! one-shot function (`resample`).
//!
//! rubato's `FftFixedInOut` is a synchronous resampler: it converts by the exact rational ratio
//! `to / from` with a windowed anti-aliasing filter applied in the frequency domain, which is both
//! good quality and fast for the fixed ratios we meet (44.1 kHz, 48 kHz, 8 kHz -> 16 kHz). The
//! wrapper removes the resampler's fixed delay and flushes its tail, so the output is aligned with
//! the input (sample `i` of the input sits at output time `i * to / from`) and has exactly
//! `ceil(n * to / from)` samples.

use rubato::{FftFixedInOut, Resampler};

use crate::{Error, Result};

/// Lowest sample rate we accept anywhere in the front end (Hz).
pub const MIN_SAMPLE_RATE: u32 = 1_000;
/// Highest sample rate we accept anywhere in the front end (Hz).
pub const MAX_SAMPLE_RATE: u32 = 384_000;

/// Input frames per FFT block we ask rubato for; it rounds up to a multiple of `from / gcd`.
const CHUNK_IN: usize = 2048;

/// Converts `samples` (mono) from `from_rate` to `to_rate` Hz. Rates must lie in 1 kHz..=384 kHz.
/// Equal rates return a copy.
pub fn resample(samples: &[f32], from_rate: u32, to_rate: u32) -> Result<Vec<f32>> {
    let mut resampler = StreamResampler::new(from_rate, to_rate)?;
    let expected = output_len(samples.len() as u64, from_rate, to_rate);
    let mut out = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    resampler.push(samples, &mut out)?;
    resampler.finish(&mut out)?;
    Ok(out)
}

/// Number of output samples for `n` input samples: `ceil(n * to / from)`.
fn output_len(n: u64, from_rate: u32, to_rate: u32) -> u64 {
    let num = u128::from(n) * u128::from(to_rate);
    let den = u128::from(from_rate);
    u64::try_from(num.div_ceil(den)).unwrap_or(u64::MAX)
}

fn check_rate(rate: u32, what: &str) -> Result<()> {
    if (MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{what} sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE} Hz"
        )))
    }
}

/// A mono resampler fed in pieces of any length; memory stays at one FFT block.
pub(crate) struct StreamResampler {
    from_rate: u32,
    to_rate: u32,
    /// `None` when the rates are equal (pass-through).
    inner: Option<FftFixedInOut<f32>>,
    /// Input not yet processed (less than one block after each `push`).
    pending: Vec<f32>,
    /// One block of output.
    block_out: Vec<f32>,
    /// Output samples still to drop at the start (the resampler's delay).
    skip: usize,
    /// Input samples pushed so far.
    consumed: u64,
    /// Output samples emitted so far.
    emitted: u64,
}

impl std::fmt::Debug for StreamResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResampler")
            .field("from_rate", &self.from_rate)
            .field("to_rate", &self.to_rate)
            .finish_non_exhaustive()
    }
}

impl StreamResampler {
    pub(crate) fn new(from_rate: u32, to_rate: u32) -> Result<Self> {
        check_rate(from_rate, "input")?;
        check_rate(to_rate, "output")?;
        let (inner, skip, block) = if from_rate == to_rate {
            (None, 0, 0)
        } else {
            let r = FftFixedInOut::<f32>::new(from_rate as usize, to_rate as usize, CHUNK_IN, 1)
                .map_err(|e| Error::InvalidInput(format!("resampler: {e}")))?;
            let skip = r.output_delay();
            let block = r.output_frames_max();
            (Some(r), skip, block)
        };
        Ok(StreamResampler {
            from_rate,
            to_rate,
            inner,
            pending: Vec::new(),
            block_out: vec![0.0; block],
            skip,
            consumed: 0,
            emitted: 0,
        })
    }

    /// Resamples `input`, appending what is ready to `out`.
    pub(crate) fn push(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<()> {
        self.consumed += input.len() as u64;
        let Some(inner) = self.inner.as_mut() else {
            out.extend_from_slice(input);
            self.emitted += input.len() as u64;
            return Ok(());
        };
        let need = inner.input_frames_next();
        let mut rest = input;
        // Whole blocks straight from the input when nothing is pending: no copy.
        loop {
            let from_pending = !self.pending.is_empty();
            if from_pending {
                let take = (need - self.pending.len()).min(rest.len());
                self.pending.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if self.pending.len() < need {
                    break;
                }
            } else if rest.len() < need {
                self.pending.extend_from_slice(rest);
                break;
            }
            let block: &[f32] = if from_pending {
                &self.pending
            } else {
                let (b, r) = rest.split_at(need);
                rest = r;
                b
            };
            let (_, n_out) = inner
                .process_into_buffer(&[block], &mut [&mut self.block_out[..]], None)
                .map_err(|e| Error::InvalidInput(format!("resampler: {e}")))?;
            if from_pending {
                self.pending.clear();
            }
            let skip = self.skip.min(n_out);
            self.skip -= skip;
            out.extend_from_slice(&self.block_out[skip..n_out]);
            self.emitted += (n_out - skip) as u64;
        }
        Ok(())
    }

    /// Flushes the tail: after this, exactly `ceil(consumed * to / from)` samples were emitted.
    pub(crate) fn finish(&mut self, out: &mut Vec<f32>) -> Result<()> {
        let expected = output_len(self.consumed, self.from_rate, self.to_rate);
        if self.inner.is_some() {
            let zeros = vec![0.0; CHUNK_IN];
            let consumed = self.consumed;
            while self.emitted < expected {
                self.push(&zeros, out)?;
            }
            self.consumed = consumed;
        }
        if self.emitted > expected {
            let extra = (self.emitted - expected) as usize;
            out.truncate(out.len().saturating_sub(extra));
            self.emitted = expected;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_exact() {
        for (n, from) in [
            (0usize, 44_100u32),
            (1, 44_100),
            (44_100, 44_100),
            (12_345, 48_000),
            (999, 8_000),
            (77_777, 22_050),
        ] {
            let x = vec![0.25f32; n];
            let y = resample(&x, from, 16_000).unwrap();
            assert_eq!(
                y.len() as u64,
                output_len(n as u64, from, 16_000),
                "n={n} from={from}"
            );
        }
    }

    #[test]
    fn impulse_stays_in_place() {
        // An impulse at input time t must come out at output time t (the delay is removed).
        let from = 44_100;
        let mut x = vec![0.0f32; from as usize];
        x[22_050] = 1.0;
        let y = resample(&x, from, 16_000).unwrap();
        let peak = y
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap()
            .0;
        assert!((peak as i64 - 8_000).abs() <= 1, "peak at {peak}");
    }

    #[test]
    fn bad_rates_are_errors() {
        assert!(matches!(
            resample(&[0.0], 0, 16_000),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            resample(&[0.0], 44_100, 1_000_000),
            Err(Error::InvalidInput(_))
        ));
    }
}
