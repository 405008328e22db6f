//! The view library: the ranges views are drawn from, drawing, and the `key=lo:hi,...` text
//! form that command lines use.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{
    NoiseKind, View, GAIN_LIMITS, PITCH_LIMITS, RT60_LIMITS, SHIFT_LIMITS, SNR_LIMITS, SPEED_LIMITS,
};
use crate::{Error, Result};

/// The kinds of view, in the order a drawn chain applies them: the talker (speed, pitch), where
/// the recording starts (shift), the room (reverb), the background (noise), the channel
/// (telephone, 8 kHz), the level (gain).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ViewKind {
    Speed,
    Pitch,
    Shift,
    Reverb,
    Noise,
    Telephone,
    RoundTrip8k,
    Gain,
}

impl ViewKind {
    /// Every kind, in chain order.
    pub const ALL: [ViewKind; 8] = [
        ViewKind::Speed,
        ViewKind::Pitch,
        ViewKind::Shift,
        ViewKind::Reverb,
        ViewKind::Noise,
        ViewKind::Telephone,
        ViewKind::RoundTrip8k,
        ViewKind::Gain,
    ];

    /// The key of this kind in the text form.
    pub fn key(self) -> &'static str {
        match self {
            ViewKind::Speed => "speed",
            ViewKind::Pitch => "pitch",
            ViewKind::Shift => "shift",
            ViewKind::Reverb => "reverb",
            ViewKind::Noise => "noise",
            ViewKind::Telephone => "telephone",
            ViewKind::RoundTrip8k => "8k",
            ViewKind::Gain => "gain",
        }
    }
}

/// Ranges to draw views from (the view library). `Default` is the issue's: every kind enabled,
/// speed 0.9-1.1, pitch ±3 semitones, SNR 10-30 dB, gain ±6 dB, shift ±100 ms, RT60 0.1-0.4 s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewSpace {
    /// Speed factor range.
    pub speed: (f64, f64),
    /// Pitch shift range, semitones.
    pub pitch_semitones: (f64, f64),
    /// Additive-noise SNR range, dB.
    pub snr_db: (f64, f64),
    /// Noise colours to draw from (uniformly; white when empty).
    pub noise_kinds: Vec<NoiseKind>,
    /// Gain range, dB.
    pub gain_db: (f64, f64),
    /// Time-shift range, ms (positive: content later).
    pub shift_ms: (f64, f64),
    /// Reverberation-time range, seconds.
    pub reverb_rt60_s: (f64, f64),
    /// Reverb wet-mix range, 0-1.
    pub reverb_wet: (f64, f64),
    /// The kinds that may appear in a drawn chain.
    pub kinds: Vec<ViewKind>,
    /// Chance that each enabled kind is in a drawn chain.
    pub p_each: f64,
}

impl Default for ViewSpace {
    fn default() -> Self {
        ViewSpace {
            speed: (0.9, 1.1),
            pitch_semitones: (-3.0, 3.0),
            snr_db: (10.0, 30.0),
            noise_kinds: vec![NoiseKind::White, NoiseKind::Pink, NoiseKind::Babble],
            gain_db: (-6.0, 6.0),
            shift_ms: (-100.0, 100.0),
            reverb_rt60_s: (0.1, 0.4),
            reverb_wet: (0.1, 0.5),
            kinds: ViewKind::ALL.to_vec(),
            p_each: 0.3,
        }
    }
}

impl ViewSpace {
    /// Draws a chain of a random subset of the enabled kinds, in [`ViewKind::ALL`] order: each
    /// kind is in with chance `p_each`; when none is, one enabled kind is drawn uniformly. Never
    /// empty (with no kind enabled it is the identity, a 0 dB gain). Parameters are uniform in
    /// their ranges.
    pub fn draw(&self, rng: &mut impl Rng) -> View {
        let enabled: Vec<ViewKind> = ViewKind::ALL
            .into_iter()
            .filter(|k| self.kinds.contains(k))
            .collect();
        let mut chosen: Vec<ViewKind> = enabled
            .iter()
            .copied()
            .filter(|_| rng.gen::<f64>() < self.p_each)
            .collect();
        if chosen.is_empty() {
            match enabled.get(rng.gen_range(0..enabled.len().max(1))) {
                Some(&k) => chosen.push(k),
                None => return View::Chain(vec![View::Gain { db: 0.0 }]),
            }
        }
        View::Chain(chosen.into_iter().map(|k| self.draw_kind(k, rng)).collect())
    }

    fn draw_kind(&self, kind: ViewKind, rng: &mut impl Rng) -> View {
        match kind {
            ViewKind::Speed => View::Speed {
                factor: uniform(rng, self.speed),
            },
            ViewKind::Pitch => View::Pitch {
                semitones: uniform(rng, self.pitch_semitones),
            },
            ViewKind::Shift => View::Shift {
                ms: uniform(rng, self.shift_ms),
            },
            ViewKind::Reverb => View::Reverb {
                rt60_s: uniform(rng, self.reverb_rt60_s),
                wet: uniform(rng, self.reverb_wet),
            },
            ViewKind::Noise => {
                let i = rng.gen_range(0..self.noise_kinds.len().max(1));
                View::Noise {
                    kind: self.noise_kinds.get(i).copied().unwrap_or(NoiseKind::White),
                    snr_db: uniform(rng, self.snr_db),
                }
            }
            ViewKind::Telephone => View::Telephone,
            ViewKind::RoundTrip8k => View::RoundTrip8k,
            ViewKind::Gain => View::Gain {
                db: uniform(rng, self.gain_db),
            },
        }
    }

    /// Parses the text form, comma-separated items that each enable one kind:
    ///
    /// - `speed=LO:HI` or `speed=X` (fixed); `noise=LO:HI` (SNR dB) or `noise=X`;
    ///   `reverb=LO:HI` (RT60 s) or `reverb=X`;
    /// - `pitch=LO:HI` or `pitch=X` (meaning `-X:X`); the same for `gain` (dB) and `shift` (ms);
    /// - a bare `speed`, `pitch`, `noise`, `reverb`, `gain` or `shift` takes the default range;
    /// - `telephone` and `8k` take no value;
    ///
    /// and settings: `noise-kinds=white+pink+babble`, `wet=LO:HI` or `wet=X`, `p=P` (chance of
    /// each kind). `default` alone is [`ViewSpace::default`]. Ranges of kinds not named keep
    /// their defaults. Example: `noise=10:30,speed=0.9:1.1,gain=-6:6,shift=100`.
    pub fn parse(text: &str) -> Result<ViewSpace> {
        let text = text.trim();
        if text == "default" {
            return Ok(ViewSpace::default());
        }
        let mut space = ViewSpace {
            kinds: Vec::new(),
            ..ViewSpace::default()
        };
        let mut seen: Vec<&str> = Vec::new();
        for item in text.split(',').map(str::trim) {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (item, None),
            };
            if key.is_empty() {
                return Err(bad(text, "an empty item"));
            }
            if seen.contains(&key) {
                return Err(bad(text, &format!("`{key}` given twice")));
            }
            seen.push(key);
            if let Some(kind) = ViewKind::ALL.into_iter().find(|k| k.key() == key) {
                space.kinds.push(kind);
                space.set_range(kind, value)?;
                continue;
            }
            let value = value.ok_or_else(|| bad(text, &format!("`{key}` needs a value")))?;
            match key {
                "noise-kinds" => {
                    space.noise_kinds = value
                        .split('+')
                        .map(|name| match name.trim() {
                            "white" => Ok(NoiseKind::White),
                            "pink" => Ok(NoiseKind::Pink),
                            "babble" => Ok(NoiseKind::Babble),
                            other => Err(bad(
                                text,
                                &format!("unknown noise kind `{other}` (white, pink, babble)"),
                            )),
                        })
                        .collect::<Result<_>>()?;
                }
                "wet" => space.reverb_wet = range(value, false, "wet", (0.0, 1.0))?,
                "p" => {
                    let p = number(value, "p")?;
                    if !(0.0..=1.0).contains(&p) {
                        return Err(bad(text, &format!("p {p} is outside 0..=1")));
                    }
                    space.p_each = p;
                }
                _ => {
                    return Err(bad(
                        text,
                        &format!(
                            "unknown key `{key}` (speed, pitch, shift, reverb, noise, telephone, \
                             8k, gain, noise-kinds, wet, p, default)"
                        ),
                    ))
                }
            }
        }
        if space.kinds.is_empty() {
            return Err(bad(text, "no view enabled"));
        }
        // `kinds` is a set: keep it in chain order so that equal spaces compare equal.
        space
            .kinds
            .sort_by_key(|k| ViewKind::ALL.iter().position(|a| a == k));
        Ok(space)
    }

    fn set_range(&mut self, kind: ViewKind, value: Option<&str>) -> Result<()> {
        let Some(value) = value else {
            return Ok(());
        };
        let key = kind.key();
        match kind {
            ViewKind::Speed => self.speed = range(value, false, key, SPEED_LIMITS)?,
            ViewKind::Pitch => self.pitch_semitones = range(value, true, key, PITCH_LIMITS)?,
            ViewKind::Shift => self.shift_ms = range(value, true, key, SHIFT_LIMITS)?,
            ViewKind::Reverb => self.reverb_rt60_s = range(value, false, key, RT60_LIMITS)?,
            ViewKind::Noise => self.snr_db = range(value, false, key, SNR_LIMITS)?,
            ViewKind::Gain => self.gain_db = range(value, true, key, GAIN_LIMITS)?,
            ViewKind::Telephone | ViewKind::RoundTrip8k => {
                return Err(Error::InvalidInput(format!(
                    "view space: `{key}` takes no value, got `{value}`"
                )))
            }
        }
        Ok(())
    }
}

/// Writes the text form [`ViewSpace::parse`] reads; `parse` gives the space back (ranges of
/// kinds that are not enabled are not written and come back as defaults).
impl fmt::Display for ViewSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items: Vec<String> = Vec::new();
        let pair = |(lo, hi): (f64, f64)| format!("{lo}:{hi}");
        for kind in ViewKind::ALL.into_iter().filter(|k| self.kinds.contains(k)) {
            let key = kind.key();
            match kind {
                ViewKind::Speed => items.push(format!("{key}={}", pair(self.speed))),
                ViewKind::Pitch => items.push(format!("{key}={}", pair(self.pitch_semitones))),
                ViewKind::Shift => items.push(format!("{key}={}", pair(self.shift_ms))),
                ViewKind::Reverb => {
                    items.push(format!("{key}={}", pair(self.reverb_rt60_s)));
                    items.push(format!("wet={}", pair(self.reverb_wet)));
                }
                ViewKind::Noise => {
                    items.push(format!("{key}={}", pair(self.snr_db)));
                    let kinds: Vec<&str> = self
                        .noise_kinds
                        .iter()
                        .map(|k| match k {
                            NoiseKind::White => "white",
                            NoiseKind::Pink => "pink",
                            NoiseKind::Babble => "babble",
                        })
                        .collect();
                    if !kinds.is_empty() {
                        items.push(format!("noise-kinds={}", kinds.join("+")));
                    }
                }
                ViewKind::Gain => items.push(format!("{key}={}", pair(self.gain_db))),
                ViewKind::Telephone | ViewKind::RoundTrip8k => items.push(key.to_string()),
            }
        }
        items.push(format!("p={}", self.p_each));
        f.write_str(&items.join(","))
    }
}

/// Uniform in `[lo, hi]`; never panics, whatever the range holds.
fn uniform(rng: &mut impl Rng, (lo, hi): (f64, f64)) -> f64 {
    lo + (hi - lo) * rng.gen::<f64>()
}

fn bad(text: &str, why: &str) -> Error {
    Error::InvalidInput(format!("view space `{text}`: {why}"))
}

fn number(s: &str, key: &str) -> Result<f64> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(Error::InvalidInput(format!(
            "view space: `{key}` needs a number, got `{s}`"
        ))),
    }
}

/// `LO:HI`, or `X` meaning `-X:X` when `symmetric` and `X:X` otherwise; checked against `limits`.
fn range(value: &str, symmetric: bool, key: &str, (min, max): (f64, f64)) -> Result<(f64, f64)> {
    let (lo, hi) = match value.split_once(':') {
        Some((a, b)) => (number(a, key)?, number(b, key)?),
        None => {
            let x = number(value, key)?;
            if symmetric {
                (-x.abs(), x.abs())
            } else {
                (x, x)
            }
        }
    };
    if lo > hi || lo < min || hi > max {
        return Err(Error::InvalidInput(format!(
            "view space: `{key}={value}` must be LO:HI with {min} <= LO <= HI <= {max}"
        )));
    }
    Ok((lo, hi))
}
