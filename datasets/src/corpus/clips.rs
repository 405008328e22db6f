//! Fixed-length clips: the windows of utterances that the tokenizer trains on (3 s, no overlap by
//! default, shared/DESIGN.md section 3).

use super::Utterance;
use crate::{Error, Result};

/// Window length of the published setup: 3 s speech clips (PairAlign paper, section on
/// experiments; shared/DESIGN.md section 1).
pub const DEFAULT_WINDOW_S: f64 = 3.0;

/// Slack for floating-point durations: a window that overruns the utterance by less than this
/// still counts as full (6.0 s holds two 3 s windows even if the probe says 5.9999999).
const EPS_S: f64 = 1e-6;

/// A window of one utterance.
#[derive(Clone, Debug, PartialEq)]
pub struct Clip {
    /// Index of the utterance in the slice given to [`clips`].
    pub utterance: usize,
    /// `<utterance id>@<start in ms>`, unique when utterance ids are.
    pub id: String,
    /// Start, seconds into the utterance.
    pub start_s: f64,
    /// Length in seconds: the window, or the whole utterance when `short`.
    pub duration_s: f64,
    /// The utterance is shorter than one window and is kept whole as this one clip.
    pub short: bool,
}

/// Cuts every utterance into windows of `window_s` seconds starting every `hop_s` seconds
/// (default: `window_s`, no overlap), in utterance order.
///
/// The tail rule: only full windows are cut, starting at 0, hop, 2 hop, ... while the window
/// ends inside the utterance. What is left after the last full window (shorter than a window,
/// or the gaps when hop > window) is **dropped**. An utterance shorter than one window has no
/// full window; it is **kept whole** as a single clip with `short: true` (training pads or crops
/// it). Utterances of zero duration give no clip.
///
/// A window or hop that is not a positive finite number is `Error::InvalidInput` (they often come
/// from a command line).
pub fn clips(utterances: &[Utterance], window_s: f64, hop_s: Option<f64>) -> Result<Vec<Clip>> {
    let hop_s = hop_s.unwrap_or(window_s);
    if !(window_s.is_finite() && window_s > 0.0 && hop_s.is_finite() && hop_s > 0.0) {
        return Err(Error::InvalidInput(format!(
            "window ({window_s} s) and hop ({hop_s} s) must be positive and finite"
        )));
    }
    let mut out = Vec::new();
    for (index, u) in utterances.iter().enumerate() {
        if u.duration_s.is_nan() || u.duration_s <= 0.0 {
            continue;
        }
        if u.duration_s + EPS_S < window_s {
            out.push(Clip {
                utterance: index,
                id: format!("{}@0", u.id),
                start_s: 0.0,
                duration_s: u.duration_s,
                short: true,
            });
            continue;
        }
        for k in 0u64.. {
            // Multiplying instead of accumulating keeps starts exact multiples of the hop.
            let start_s = k as f64 * hop_s;
            if start_s + window_s > u.duration_s + EPS_S {
                break;
            }
            out.push(Clip {
                utterance: index,
                id: format!("{}@{}", u.id, (start_s * 1000.0).round() as u64),
                start_s,
                duration_s: window_s,
                short: false,
            });
        }
    }
    Ok(out)
}
