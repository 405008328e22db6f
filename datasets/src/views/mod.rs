//! Content-preserving views (augmentations) of 16 kHz mono audio: speed, pitch, additive noise,
//! gain, telephone band, reverb, time shift, 8 kHz round trip, and chains of these
//! (shared/DESIGN.md section 7). The tokenizer is trained so that two views of one clip give
//! nearly the same token string.
//!
//! A [`View`] holds concrete parameters; a [`ViewSpace`] holds the ranges they are drawn from.
//! [`apply`] is deterministic given its seed. Views do not clip: gain or noise may leave samples
//! outside [-1, 1], which the log-mel front end handles; clip before writing 16-bit PCM.

mod fft;
mod filter;
mod noise;
mod resample;
mod reverb;
mod space;
mod stretch;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use self::filter::{TELEPHONE_HIGH_HZ, TELEPHONE_LOW_HZ};
pub use self::noise::BABBLE_TALKERS;
pub use self::space::{ViewKind, ViewSpace};
use crate::{Audio, Error, Result, SAMPLE_RATE};

/// Allowed speed factors.
pub const SPEED_LIMITS: (f64, f64) = (0.5, 2.0);
/// Allowed pitch shifts, semitones (one octave either way).
pub const PITCH_LIMITS: (f64, f64) = (-12.0, 12.0);
/// Allowed signal-to-noise ratios, dB.
pub const SNR_LIMITS: (f64, f64) = (-30.0, 100.0);
/// Allowed gains, dB.
pub const GAIN_LIMITS: (f64, f64) = (-60.0, 60.0);
/// Allowed reverberation times, seconds.
pub const RT60_LIMITS: (f64, f64) = (0.01, 2.0);
/// Allowed time shifts, milliseconds.
pub const SHIFT_LIMITS: (f64, f64) = (-1000.0, 1000.0);
/// Deepest nesting of [`View::Chain`] accepted (guards the stack against crafted input).
pub const MAX_CHAIN_DEPTH: usize = 8;

/// One view; parameters are concrete (already drawn).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum View {
    /// Play faster (`factor > 1`) or slower by resampling: duration and pitch change together;
    /// the output has `len / factor` samples.
    Speed { factor: f64 },
    /// Move the pitch by `semitones`, keeping the duration.
    Pitch { semitones: f64 },
    /// Add noise at `snr_db` (signal power over added-noise power, over the whole clip).
    Noise { kind: NoiseKind, snr_db: f64 },
    /// Scale by `db` decibels.
    Gain { db: f64 },
    /// Band-pass to 300-3400 Hz.
    Telephone,
    /// Convolve with a synthetic room of reverberation time `rt60_s`, mixed `wet` (0 = dry only,
    /// 1 = reverberant only).
    Reverb { rt60_s: f64, wet: f64 },
    /// Move the content by `ms` milliseconds (positive: content later, silence first), keeping
    /// the length.
    Shift { ms: f64 },
    /// Down-sample to 8 kHz and back.
    RoundTrip8k,
    /// The views in order; part `i` is applied with seed [`chain_seed`]`(seed, i)`.
    Chain(Vec<View>),
}

/// The colour of additive noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NoiseKind {
    /// Flat spectrum (Gaussian).
    White,
    /// 1/f spectrum, -3 dB per octave.
    Pink,
    /// Other talkers: the `babble` clips passed to [`apply`]. With no clip that has any energy it
    /// falls back to pink noise.
    Babble,
}

/// The seed that part `index` of a [`View::Chain`] applied with `seed` gets (SplitMix64 mixing,
/// so that two noise views in one chain draw independent noise).
pub fn chain_seed(seed: u64, index: usize) -> u64 {
    splitmix64(seed ^ splitmix64(index as u64 + 1))
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Applies `view` to `audio`. `babble` supplies other clips for babble noise (may be empty: then
/// Babble falls back to pink noise). Deterministic given `seed`.
///
/// Every view keeps the length except `Speed`. Empty audio gives empty audio. Errors
/// ([`Error::InvalidInput`]) for a parameter outside its limits (the `*_LIMITS` constants), a
/// sample rate other than 16 kHz (`Gain` and `Speed` work at any rate), and babble clips at
/// another rate than `audio`.
pub fn apply(audio: &Audio, view: &View, seed: u64, babble: &[&Audio]) -> Result<Audio> {
    view.validate()?;
    apply_valid(audio, view, seed, babble)
}

fn apply_valid(audio: &Audio, view: &View, seed: u64, babble: &[&Audio]) -> Result<Audio> {
    let rate = audio.sample_rate;
    let fs = f64::from(rate);
    let needs_16k = !matches!(
        view,
        View::Gain { .. } | View::Speed { .. } | View::Chain(_)
    );
    if needs_16k && rate != SAMPLE_RATE {
        return Err(Error::InvalidInput(format!(
            "view {} needs {SAMPLE_RATE} Hz audio, got {rate} Hz",
            view.name()
        )));
    }
    let x = &audio.samples;
    if x.is_empty() && !matches!(view, View::Chain(_)) {
        return Ok(Audio::new(Vec::new(), rate));
    }
    let samples = match view {
        View::Speed { factor } => {
            let out_len = ((x.len() as f64 / factor).round() as usize).max(1);
            resample::resample(x, *factor, out_len)
        }
        View::Pitch { semitones } => {
            // Speed up by the pitch ratio (pitch and duration change together), then stretch
            // back to the original duration.
            let ratio = (semitones / 12.0).exp2();
            let fast_len = ((x.len() as f64 / ratio).round() as usize).max(1);
            let fast = resample::resample(x, ratio, fast_len);
            stretch::stretch(&fast, x.len())
        }
        View::Noise { kind, snr_db } => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let noise = match kind {
                NoiseKind::White => noise::white(&mut rng, x.len()),
                NoiseKind::Pink => noise::pink(&mut rng, x.len(), fs),
                NoiseKind::Babble => {
                    if let Some(bad) = babble.iter().find(|b| b.sample_rate != rate) {
                        return Err(Error::InvalidInput(format!(
                            "babble clip at {} Hz, the audio is at {rate} Hz",
                            bad.sample_rate
                        )));
                    }
                    let clips: Vec<&[f32]> = babble.iter().map(|b| b.samples.as_slice()).collect();
                    match noise::babble(&mut rng, x.len(), &clips) {
                        Some(n) => n,
                        None => noise::pink(&mut rng, x.len(), fs),
                    }
                }
            };
            noise::mix_at_snr(x, &noise, *snr_db)
        }
        View::Gain { db } => {
            let g = 10f64.powf(db / 20.0) as f32;
            x.iter().map(|&v| v * g).collect()
        }
        View::Telephone => filter::telephone(x, fs),
        View::Reverb { rt60_s, wet } => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let h = reverb::impulse_response(&mut rng, *rt60_s, fs);
            reverb::reverberate(x, &h, *wet)
        }
        View::Shift { ms } => {
            let lag = (ms * fs / 1000.0).round() as i64;
            let n = x.len();
            let k = (lag.unsigned_abs() as usize).min(n);
            let mut out = vec![0.0f32; n];
            if lag >= 0 {
                out[k..].copy_from_slice(&x[..n - k]);
            } else {
                out[..n - k].copy_from_slice(&x[k..]);
            }
            out
        }
        View::RoundTrip8k => {
            let step = fs / 8000.0;
            let low_len = (x.len() as f64 / step).ceil() as usize;
            let low = resample::resample(x, step, low_len);
            resample::resample(&low, 1.0 / step, x.len())
        }
        View::Chain(parts) => {
            let mut current = audio.clone();
            for (i, part) in parts.iter().enumerate() {
                current = apply_valid(&current, part, chain_seed(seed, i), babble)?;
            }
            return Ok(current);
        }
    };
    Ok(Audio::new(samples, rate))
}

impl View {
    /// A short name for messages and logs.
    pub fn name(&self) -> &'static str {
        match self {
            View::Speed { .. } => "speed",
            View::Pitch { .. } => "pitch",
            View::Noise { .. } => "noise",
            View::Gain { .. } => "gain",
            View::Telephone => "telephone",
            View::Reverb { .. } => "reverb",
            View::Shift { .. } => "shift",
            View::RoundTrip8k => "8k",
            View::Chain(_) => "chain",
        }
    }

    /// Checks every parameter against its limits (what [`apply`] does first).
    pub fn validate(&self) -> Result<()> {
        self.validate_at(0)
    }

    fn validate_at(&self, depth: usize) -> Result<()> {
        match self {
            View::Speed { factor } => check("speed factor", *factor, SPEED_LIMITS),
            View::Pitch { semitones } => check("pitch semitones", *semitones, PITCH_LIMITS),
            View::Noise { snr_db, .. } => check("noise SNR dB", *snr_db, SNR_LIMITS),
            View::Gain { db } => check("gain dB", *db, GAIN_LIMITS),
            View::Telephone | View::RoundTrip8k => Ok(()),
            View::Reverb { rt60_s, wet } => {
                check("reverb RT60 s", *rt60_s, RT60_LIMITS)?;
                check("reverb wet", *wet, (0.0, 1.0))
            }
            View::Shift { ms } => check("shift ms", *ms, SHIFT_LIMITS),
            View::Chain(parts) => {
                if depth >= MAX_CHAIN_DEPTH {
                    return Err(Error::InvalidInput(format!(
                        "view chains nest deeper than {MAX_CHAIN_DEPTH}"
                    )));
                }
                parts.iter().try_for_each(|p| p.validate_at(depth + 1))
            }
        }
    }
}

fn check(what: &str, v: f64, (lo, hi): (f64, f64)) -> Result<()> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{what} {v} is outside {lo}..={hi}"
        )))
    }
}
