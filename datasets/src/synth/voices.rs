//! Voices (engine + voice name + variant) and their deterministic split into train and held-out.

use serde::{Deserialize, Serialize};

use super::text::Mixer;

/// One synthetic speaker: an engine and the name that engine knows the voice by.
///
/// Rate and pitch are varied per utterance and are not part of a voice.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Voice {
    /// `espeak-ng`, `flite` or `piper`.
    pub engine: String,
    /// The engine's name for the voice, e.g. `en-us+f3` (espeak-ng language + variant), `slt`
    /// (flite) or `en_US-joe-medium` (piper model file stem).
    pub name: String,
}

impl Voice {
    /// A voice of `engine` called `name`.
    pub fn new(engine: &str, name: &str) -> Self {
        Voice {
            engine: engine.to_string(),
            name: name.to_string(),
        }
    }

    /// `engine:name`, unique across engines.
    pub fn id(&self) -> String {
        format!("{}:{}", self.engine, self.name)
    }
}

/// Voices partitioned into those rendered for training and those kept for evaluation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VoiceSplit {
    /// Voices whose utterances are marked `train`, sorted.
    pub train: Vec<Voice>,
    /// Voices whose utterances are marked `heldout`, sorted; disjoint from `train`.
    pub heldout: Vec<Voice>,
}

impl VoiceSplit {
    /// True if `voice` is held out.
    pub fn is_heldout(&self, voice: &Voice) -> bool {
        self.heldout.binary_search(voice).is_ok()
    }
}

/// Splits `voices` into train and held-out, deterministically from `seed`.
///
/// The split is made per engine, so that each engine with at least two voices keeps at least one
/// in each part: `round(heldout_fraction * n)` voices of an engine with `n` voices are held out,
/// clamped to `1..=n-1`. A voice's rank is a hash of the seed and its id, not of its position, so
/// adding or removing one installed voice does not reshuffle the others.
pub fn split_voices(voices: &[Voice], seed: u64, heldout_fraction: f64) -> VoiceSplit {
    let mut sorted: Vec<Voice> = voices.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut split = VoiceSplit::default();
    let mut start = 0;
    while start < sorted.len() {
        let engine = &sorted[start].engine;
        let end = start
            + sorted[start..]
                .iter()
                .take_while(|v| &v.engine == engine)
                .count();
        let mut ranked: Vec<(u64, &Voice)> = sorted[start..end]
            .iter()
            .map(|v| (Mixer::new(seed, fnv1a(v.id().as_bytes())).next_u64(), v))
            .collect();
        ranked.sort();
        let n = ranked.len();
        let mut k = (heldout_fraction * n as f64).round() as usize;
        if heldout_fraction > 0.0 && n >= 2 {
            k = k.clamp(1, n - 1);
        } else {
            k = k.min(n.saturating_sub(1));
        }
        split
            .heldout
            .extend(ranked[..k].iter().map(|(_, v)| (*v).clone()));
        split
            .train
            .extend(ranked[k..].iter().map(|(_, v)| (*v).clone()));
        start = end;
    }
    split.train.sort();
    split.heldout.sort();
    split
}

/// FNV-1a, 64 bit (Fowler, Noll, Vo): a stable hash of a voice id.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_voice_engine_stays_in_train() {
        let voices = vec![Voice::new("piper", "a"), Voice::new("flite", "x")];
        let split = split_voices(&voices, 3, 0.2);
        assert_eq!(split.train.len(), 2);
        assert!(split.heldout.is_empty());
    }
}
