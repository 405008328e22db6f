//! The `Tokenizer` trait that every tokenizer (VQ, PairAlign) implements, the [`TokenString`] it
//! produces, and the collapse of repeated frame codes into tokens with times.

use crate::Result;

/// A tokenized clip: tokens and, for each, the time in ms at which it starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenString {
    /// Token ids, each below the tokenizer's `vocab_size()`.
    pub tokens: Vec<u16>,
    /// Start time of each token in ms from the start of the clip; same length as `tokens`,
    /// non-decreasing.
    pub times_ms: Vec<u32>,
}

impl TokenString {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True when the clip produced no tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// Turns audio into token strings. A database records `id()` and `weights_hash()` so that an index
/// is only ever queried with the tokenizer that built it.
pub trait Tokenizer {
    /// Short name of the tokenizer family and version, e.g. `"vq"`.
    fn id(&self) -> &str;

    /// Hex digest of the weights file; changes whenever any weight changes.
    fn weights_hash(&self) -> &str;

    /// Number of distinct token ids; every token is below it.
    fn vocab_size(&self) -> u32;

    /// Tokenizes a batch of 16 kHz mono waveforms (`pairalign_datasets::SAMPLE_RATE`).
    fn tokenize(&self, batch: &[&[f32]]) -> Result<Vec<TokenString>>;

    /// Tokenizes a batch of cached log-mels, each row-major `frames x N_MELS`, as produced by
    /// `pairalign_datasets::mel::LogMel` (the feature cache stores the same).
    fn tokenize_mels(&self, mels: &[&[f32]]) -> Result<Vec<TokenString>>;
}

/// Collapses consecutive repeats of frame codes into tokens: one token per run, timed at the start
/// of its run. Frame `i` starts at `i * frame_ms` ms.
pub fn collapse_repeats(frame_codes: &[u16], frame_ms: u32) -> TokenString {
    let mut out = TokenString::default();
    let mut prev = None;
    for (i, &code) in frame_codes.iter().enumerate() {
        if prev != Some(code) {
            out.tokens.push(code);
            out.times_ms.push(i as u32 * frame_ms);
            prev = Some(code);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_gives_empty() {
        let ts = collapse_repeats(&[], 20);
        assert!(ts.is_empty());
        assert!(ts.times_ms.is_empty());
    }

    #[test]
    fn runs_collapse_to_their_start() {
        let ts = collapse_repeats(&[5, 5, 5, 7, 7, 5, 9], 20);
        assert_eq!(ts.tokens, vec![5, 7, 5, 9]);
        assert_eq!(ts.times_ms, vec![0, 60, 100, 120]);
    }

    #[test]
    fn no_repeats_keeps_every_frame() {
        let codes: Vec<u16> = (0..10).collect();
        let ts = collapse_repeats(&codes, 20);
        assert_eq!(ts.tokens, codes);
        assert_eq!(ts.times_ms, (0..10).map(|i| i * 20).collect::<Vec<u32>>());
    }

    #[test]
    fn one_long_run_is_one_token() {
        let ts = collapse_repeats(&[3; 50], 20);
        assert_eq!(ts.tokens, vec![3]);
        assert_eq!(ts.times_ms, vec![0]);
    }

    #[test]
    fn matches_a_naive_oracle() {
        // Pseudo-random codes over a small alphabet, so that runs of every length occur.
        let mut state = 12345u32;
        let codes: Vec<u16> = (0..500)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                ((state >> 16) % 3) as u16
            })
            .collect();
        let ts = collapse_repeats(&codes, 10);
        let mut tokens = vec![];
        let mut times = vec![];
        for i in 0..codes.len() {
            if i == 0 || codes[i] != codes[i - 1] {
                tokens.push(codes[i]);
                times.push(i as u32 * 10);
            }
        }
        assert_eq!(ts.tokens, tokens);
        assert_eq!(ts.times_ms, times);
        // Expanding the runs back gives the frame codes.
        let mut expanded = vec![];
        for (k, &tok) in ts.tokens.iter().enumerate() {
            let end = ts
                .times_ms
                .get(k + 1)
                .map_or(codes.len(), |&t| (t / 10) as usize);
            expanded.extend(std::iter::repeat_n(
                tok,
                end - (ts.times_ms[k] / 10) as usize,
            ));
        }
        assert_eq!(expanded, codes);
    }
}
