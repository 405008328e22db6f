//! The learning-rate schedule: linear warmup to the peak, then a cosine decay to a floor
//! (Loshchilov and Hutter 2017, SGDR, without restarts; warmup as in Goyal et al. 2017).

use serde::{Deserialize, Serialize};

/// Learning rate at each step of a run of `total_steps`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LrSchedule {
    /// The rate reached at the end of the warmup.
    pub peak: f64,
    /// Steps of linear warmup from `peak / warmup_steps`.
    pub warmup_steps: u64,
    /// The rate at the last step, as a fraction of `peak`.
    pub final_ratio: f64,
}

impl Default for LrSchedule {
    fn default() -> Self {
        LrSchedule {
            peak: 2e-3,
            warmup_steps: 200,
            final_ratio: 0.05,
        }
    }
}

impl LrSchedule {
    /// The rate of step `step` (0-based) of `total_steps`.
    pub fn at(&self, step: u64, total_steps: u64) -> f64 {
        if step < self.warmup_steps {
            return self.peak * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
        let floor = self.peak * self.final_ratio;
        floor + (self.peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_linearly_then_decays_to_the_floor() {
        let s = LrSchedule {
            peak: 1.0,
            warmup_steps: 10,
            final_ratio: 0.1,
        };
        assert!((s.at(0, 110) - 0.1).abs() < 1e-12);
        assert!((s.at(4, 110) - 0.5).abs() < 1e-12);
        assert!((s.at(10, 110) - 1.0).abs() < 1e-12);
        // Half way through the decay the cosine is at its middle.
        assert!((s.at(60, 110) - 0.55).abs() < 1e-12);
        assert!((s.at(110, 110) - 0.1).abs() < 1e-12);
        assert!(
            (s.at(500, 110) - 0.1).abs() < 1e-12,
            "stays at the floor past the end"
        );
        let rates: Vec<f64> = (10..=110).map(|i| s.at(i, 110)).collect();
        assert!(rates.windows(2).all(|w| w[1] <= w[0]), "decay is monotone");
    }
}
