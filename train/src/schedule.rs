//! The schedules of a run: the learning rate, a linear warmup to the peak, then a cosine decay
//! to a floor (Loshchilov and Hutter 2017, SGDR, without restarts; warmup as in Goyal et al.
//! 2017); and PairAlign's component schedules, the share of EMA-teacher targets and the ramp of
//! the corruption rates.

use pairalign_models::pairalign::Components;
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

/// Share of the targets at `step` of `steps` that come from the EMA teacher rather than from
/// the VQ codes (component 2): 0 until `teacher_start`, rising linearly to 1 at `teacher_end` (a
/// step past `teacher_start` when they are equal), capped at `teacher_max_share`. 0 when the EMA
/// teacher is off; 1 when it is on and VQ-derived targets are off (the teacher then starts from
/// the initial model).
pub fn teacher_share(c: &Components, step: u64, steps: u64) -> f64 {
    if !c.ema_teacher {
        return 0.0;
    }
    if !c.vq_targets {
        return 1.0;
    }
    let at = step as f64 / steps.max(1) as f64;
    let share = if at < c.teacher_start {
        0.0
    } else if at >= c.teacher_end {
        1.0
    } else {
        (at - c.teacher_start) / (c.teacher_end - c.teacher_start)
    };
    share.min(c.teacher_max_share)
}

/// Factor of the corruption rates at `step` of `steps` (component 4): rising linearly from 0 to
/// 1 over the first `corrupt_warmup` of the run; 0 when anti-bypass is off.
pub fn corruption_scale(c: &Components, step: u64, steps: u64) -> f64 {
    if !c.anti_bypass {
        return 0.0;
    }
    let warmup = c.corrupt_warmup * steps.max(1) as f64;
    if warmup <= 0.0 {
        1.0
    } else {
        (step as f64 / warmup).min(1.0)
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

    #[test]
    fn component_schedules_ramp_and_follow_the_switches() {
        let mut c = Components::paper();
        // teacher_start 0.3, teacher_end 0.6, corrupt_warmup 0.2 of 1000 steps.
        assert_eq!(teacher_share(&c, 0, 1000), 0.0);
        assert_eq!(teacher_share(&c, 299, 1000), 0.0);
        assert!((teacher_share(&c, 450, 1000) - 0.5).abs() < 1e-12);
        assert_eq!(teacher_share(&c, 600, 1000), 1.0);
        assert_eq!(corruption_scale(&c, 0, 1000), 0.0);
        assert!((corruption_scale(&c, 100, 1000) - 0.5).abs() < 1e-12);
        assert_eq!(corruption_scale(&c, 900, 1000), 1.0);
        c.teacher_max_share = 0.4;
        assert!((teacher_share(&c, 400, 1000) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(teacher_share(&c, 450, 1000), 0.4);
        assert_eq!(teacher_share(&c, 900, 1000), 0.4);
        c.vq_targets = false;
        assert_eq!(teacher_share(&c, 0, 1000), 1.0);
        c.ema_teacher = false;
        assert_eq!(teacher_share(&c, 900, 1000), 0.0);
        c.corrupt_warmup = 0.0;
        assert_eq!(corruption_scale(&c, 0, 1000), 1.0);
        c.anti_bypass = false;
        assert_eq!(corruption_scale(&c, 900, 1000), 0.0);
    }
}
