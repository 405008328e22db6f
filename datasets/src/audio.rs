//! `Audio`: mono PCM samples at a known rate, the currency of the front end, and where its
//! speech starts and ends (energy-based trimming of leading and trailing silence).

use std::ops::Range;

/// Sample rate of everything after decoding (shared/DESIGN.md section 3).
pub const SAMPLE_RATE: u32 = 16_000;

/// Length of the frames whose energy [`Audio::speech_span`] measures, ms (a speech analysis
/// frame, as the log-mel's 25 ms window).
pub const TRIM_FRAME_MS: u32 = 25;
/// Step between those frames, ms (the log-mel's 10 ms hop).
pub const TRIM_HOP_MS: u32 = 10;
/// A frame is silent when it is this many dB below the loudest frame...
pub const TRIM_BELOW_PEAK_DB: f64 = 35.0;
/// ...or less than this many dB above the clip's noise floor (its 10th-percentile frame), so
/// that a noisy recording's background does not count as speech.
pub const TRIM_ABOVE_FLOOR_DB: f64 = 10.0;
/// Audio kept on either side of the first and last loud frames, ms: soft onsets and releases
/// (fricatives, final stops) are quieter than the vowels that set the threshold.
pub const TRIM_MARGIN_MS: u32 = 100;

/// Mono audio as `f32` samples in [-1, 1].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Audio {
    /// The samples.
    pub samples: Vec<f32>,
    /// Samples per second.
    pub sample_rate: u32,
}

impl Audio {
    /// Audio at `sample_rate`.
    pub fn new(samples: Vec<f32>, sample_rate: u32) -> Self {
        Audio {
            samples,
            sample_rate,
        }
    }

    /// Duration in seconds.
    pub fn duration_s(&self) -> f64 {
        if self.sample_rate == 0 {
            return 0.0;
        }
        self.samples.len() as f64 / f64::from(self.sample_rate)
    }

    /// Duration in whole milliseconds (rounded down).
    pub fn duration_ms(&self) -> u32 {
        (self.duration_s() * 1000.0) as u32
    }

    /// The samples from the first to the last frame that is not silent, with
    /// [`TRIM_MARGIN_MS`] on either side: leading and trailing silence cut off by energy. A
    /// frame ([`TRIM_FRAME_MS`] every [`TRIM_HOP_MS`]) is loud when its energy is within
    /// [`TRIM_BELOW_PEAK_DB`] of the loudest frame's and at least [`TRIM_ABOVE_FLOOR_DB`] above
    /// the 10th-percentile frame's. The whole clip when it is shorter than a frame or all of
    /// one level (digital silence, a steady tone).
    pub fn speech_span(&self) -> Range<usize> {
        let rate = self.sample_rate as usize;
        let frame = (rate * TRIM_FRAME_MS as usize / 1000).max(1);
        let hop = (rate * TRIM_HOP_MS as usize / 1000).max(1);
        let whole = 0..self.samples.len();
        if self.samples.len() < frame {
            return whole;
        }
        let energy_db: Vec<f64> = (0..=(self.samples.len() - frame) / hop)
            .map(|f| {
                let x = &self.samples[f * hop..f * hop + frame];
                let power =
                    x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / frame as f64;
                10.0 * (power + 1e-12).log10()
            })
            .collect();
        let mut sorted = energy_db.clone();
        sorted.sort_by(f64::total_cmp);
        let peak = sorted[sorted.len() - 1];
        let floor = sorted[(sorted.len() - 1) / 10];
        if peak - floor < TRIM_ABOVE_FLOOR_DB {
            return whole;
        }
        let threshold = (peak - TRIM_BELOW_PEAK_DB).max(floor + TRIM_ABOVE_FLOOR_DB);
        let loud = |e: &f64| *e >= threshold;
        let (Some(first), Some(last)) = (
            energy_db.iter().position(loud),
            energy_db.iter().rposition(loud),
        ) else {
            return whole;
        };
        let margin = rate * TRIM_MARGIN_MS as usize / 1000;
        let start = (first * hop).saturating_sub(margin);
        let end = (last * hop + frame + margin).min(self.samples.len());
        start..end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `lead` s of noise at `noise` amplitude, `tone` s of a 440 Hz tone at 0.5, `tail` s of noise.
    fn clip(lead: f64, tone: f64, tail: f64, noise: f32) -> Audio {
        let rate = SAMPLE_RATE as usize;
        let n = |s: f64| (s * rate as f64) as usize;
        let mut state = 1u32;
        let mut hiss = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            noise * ((state >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0)
        };
        let mut samples: Vec<f32> = (0..n(lead)).map(|_| hiss()).collect();
        samples
            .extend((0..n(tone)).map(|i| {
                0.5 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin()
            }));
        samples.extend((0..n(tail)).map(|_| hiss()));
        Audio::new(samples, SAMPLE_RATE)
    }

    #[test]
    fn speech_span_cuts_leading_and_trailing_silence_with_a_margin() {
        let rate = SAMPLE_RATE as usize;
        for noise in [0.0, 0.001, 0.01] {
            let audio = clip(0.4, 0.3, 0.3, noise);
            let span = audio.speech_span();
            let margin = rate * TRIM_MARGIN_MS as usize / 1000;
            let (tone_start, tone_end) = (rate * 4 / 10, rate * 7 / 10);
            // The margin, give or take a frame at either end.
            let frame = rate * TRIM_FRAME_MS as usize / 1000;
            assert!(
                span.start + margin <= tone_start && span.start + margin + frame >= tone_start,
                "noise {noise}: {span:?}"
            );
            assert!(
                span.end >= tone_end + margin && span.end <= tone_end + margin + frame,
                "noise {noise}: {span:?}"
            );
        }
    }

    #[test]
    fn speech_span_keeps_clips_it_cannot_judge_whole() {
        // Silence, a steady tone, shorter than a frame, empty.
        for audio in [
            Audio::new(vec![0.0; 16_000], SAMPLE_RATE),
            clip(0.0, 1.0, 0.0, 0.0),
            Audio::new(vec![0.5; 100], SAMPLE_RATE),
            Audio::default(),
        ] {
            assert_eq!(audio.speech_span(), 0..audio.samples.len());
        }
        // Loud noise (10 dB below the tone's level): its background stays trimmed.
        let noisy = clip(0.5, 0.5, 0.5, 0.15);
        let span = noisy.speech_span();
        assert!(span.start > 0 && span.end < noisy.samples.len(), "{span:?}");
    }
}
