//! `Audio`: mono PCM samples at a known rate, the currency of the front end.

/// Sample rate of everything after decoding (shared/DESIGN.md section 3).
pub const SAMPLE_RATE: u32 = 16_000;

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
}
