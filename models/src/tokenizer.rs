//! The `Tokenizer` trait that every tokenizer (VQ, PairAlign) implements, the [`TokenString`] it
//! produces, and the collapse of repeated frame codes into tokens with times.

use crate::Result;

/// Length of the windows that the index and query by example cut recordings into: 3 s at 16 kHz
/// (shared/DESIGN.md section 3). A query must be tokenized exactly like the archive, so both the
/// indexer and the query crate use this constant.
pub const WINDOW_SAMPLES: usize = 3 * pairalign_datasets::SAMPLE_RATE as usize;

/// Windows per tokenizer call when the indexer and the query crate run [`tokenize_windows`]:
/// enough to keep the batched inference busy, few enough to bound its memory.
pub const WINDOWS_PER_CALL: usize = 32;

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

    /// Hex digest of the weights file; changes whenever any weight changes, and also whenever
    /// anything else that changes the strings does (a PairAlign model's decoding fields when
    /// not at their defaults, an anchored model's whole config and VQ model): a database
    /// records it and refuses another.
    fn weights_hash(&self) -> &str;

    /// Number of distinct token ids; every token is below it.
    fn vocab_size(&self) -> u32;

    /// Tokenizes a batch of 16 kHz mono waveforms (`pairalign_datasets::SAMPLE_RATE`).
    fn tokenize(&self, batch: &[&[f32]]) -> Result<Vec<TokenString>>;

    /// Tokenizes a batch of cached log-mels, each row-major `frames x N_MELS`, as produced by
    /// `pairalign_datasets::mel::LogMel` (the feature cache stores the same).
    fn tokenize_mels(&self, mels: &[&[f32]]) -> Result<Vec<TokenString>>;

    /// The strings a query clip may take: `[variant][clip]`, the first variant being
    /// [`Tokenizer::tokenize_mels`]'s. A search takes the best match over the variants. One
    /// variant (the default) for a tokenizer whose strings follow the audio; a PairAlign
    /// model with `grid_phases` gives one per phase of its token grid.
    fn tokenize_mels_variants(&self, mels: &[&[f32]]) -> Result<Vec<Vec<TokenString>>> {
        Ok(vec![self.tokenize_mels(mels)?])
    }

    /// [`Tokenizer::tokenize_mels_variants`] of a batch of 16 kHz waveforms.
    fn tokenize_variants(&self, batch: &[&[f32]]) -> Result<Vec<Vec<TokenString>>> {
        Ok(vec![self.tokenize(batch)?])
    }
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

/// Tokenizes a recording of any length the way the index does (shared/DESIGN.md section 3):
/// cut into consecutive windows of `window_samples` (the last one shorter), tokenize the windows
/// in batches of `batch`, and concatenate their strings with each token's time made absolute.
pub fn tokenize_windows(
    tokenizer: &dyn Tokenizer,
    samples: &[f32],
    window_samples: usize,
    batch: usize,
) -> Result<TokenString> {
    let mut strings = window_strings(tokenizer, samples, window_samples, batch, false)?;
    Ok(strings.swap_remove(0))
}

/// Every string a search tries for a query clip: the clip windowed as [`tokenize_windows`]
/// does, in each of the tokenizer's [`Tokenizer::tokenize_variants`] (a PairAlign model's grid
/// phases). The first is [`tokenize_windows`]'s.
pub fn tokenize_query(
    tokenizer: &dyn Tokenizer,
    samples: &[f32],
    window_samples: usize,
    batch: usize,
) -> Result<Vec<TokenString>> {
    window_strings(tokenizer, samples, window_samples, batch, true)
}

/// The clip's windows tokenized in batches and concatenated, one string per variant when
/// `variants` (else just [`Tokenizer::tokenize`]'s); never empty.
fn window_strings(
    tokenizer: &dyn Tokenizer,
    samples: &[f32],
    window_samples: usize,
    batch: usize,
    variants: bool,
) -> Result<Vec<TokenString>> {
    let window_samples = window_samples.max(1);
    // (offset in samples, audio) of every window.
    let pieces: Vec<(usize, &[f32])> = samples
        .chunks(window_samples)
        .enumerate()
        .map(|(k, window)| (k * window_samples, window))
        .collect();
    let mut out: Vec<TokenString> = Vec::new();
    for group in pieces.chunks(batch.max(1)) {
        let audio: Vec<&[f32]> = group.iter().map(|&(_, a)| a).collect();
        let strings = if variants {
            tokenizer.tokenize_variants(&audio)?
        } else {
            vec![tokenizer.tokenize(&audio)?]
        };
        if out.len() < strings.len() {
            out.resize_with(strings.len(), TokenString::default);
        }
        for (string, strings) in out.iter_mut().zip(strings) {
            for (&(offset, _), ts) in group.iter().zip(strings) {
                let offset_ms = offset as u64 * 1000 / u64::from(pairalign_datasets::SAMPLE_RATE);
                string.tokens.extend(ts.tokens);
                string.times_ms.extend(
                    ts.times_ms
                        .iter()
                        .map(|&t| u32::try_from(u64::from(t) + offset_ms).unwrap_or(u32::MAX)),
                );
            }
        }
    }
    if out.is_empty() {
        out.push(TokenString::default());
    }
    Ok(out)
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

    /// A tokenizer whose tokens are the window's length in ms / 100 and its first sample, at
    /// times 0 and 50 ms: enough to see windows, order and offsets.
    struct Probe;

    impl Tokenizer for Probe {
        fn id(&self) -> &str {
            "probe"
        }
        fn weights_hash(&self) -> &str {
            ""
        }
        fn vocab_size(&self) -> u32 {
            u32::from(u16::MAX)
        }
        fn tokenize(&self, batch: &[&[f32]]) -> Result<Vec<TokenString>> {
            Ok(batch
                .iter()
                .map(|w| TokenString {
                    tokens: vec![(w.len() / 1600) as u16, w[0] as u16],
                    times_ms: vec![0, 50],
                })
                .collect())
        }
        fn tokenize_mels(&self, _: &[&[f32]]) -> Result<Vec<TokenString>> {
            Ok(vec![])
        }
    }

    #[test]
    fn windows_are_concatenated_with_absolute_times() {
        // 7.5 s at 16 kHz; sample value = index of its second, so a window's first sample says
        // where it starts.
        let samples: Vec<f32> = (0..120_000).map(|i| (i / 16_000) as f32).collect();
        for batch in [1, 2, 5] {
            let ts = tokenize_windows(&Probe, &samples, 48_000, batch).unwrap();
            assert_eq!(ts.tokens, vec![30, 0, 30, 3, 15, 6], "batch {batch}");
            assert_eq!(
                ts.times_ms,
                vec![0, 50, 3000, 3050, 6000, 6050],
                "batch {batch}"
            );
        }
        assert!(tokenize_windows(&Probe, &[], 48_000, 4).unwrap().is_empty());
    }

    /// [`Probe`] with a second variant: every token plus 100.
    struct Moved;

    impl Tokenizer for Moved {
        fn id(&self) -> &str {
            "moved"
        }
        fn weights_hash(&self) -> &str {
            ""
        }
        fn vocab_size(&self) -> u32 {
            u32::from(u16::MAX)
        }
        fn tokenize(&self, batch: &[&[f32]]) -> Result<Vec<TokenString>> {
            Probe.tokenize(batch)
        }
        fn tokenize_mels(&self, _: &[&[f32]]) -> Result<Vec<TokenString>> {
            Ok(vec![])
        }
        fn tokenize_variants(&self, batch: &[&[f32]]) -> Result<Vec<Vec<TokenString>>> {
            let plain = Probe.tokenize(batch)?;
            let moved = plain
                .iter()
                .map(|ts| TokenString {
                    tokens: ts.tokens.iter().map(|t| t + 100).collect(),
                    times_ms: ts.times_ms.clone(),
                })
                .collect();
            Ok(vec![plain, moved])
        }
    }

    #[test]
    fn a_query_is_windowed_once_per_variant() {
        let samples: Vec<f32> = (0..120_000).map(|i| (i / 16_000) as f32).collect();
        for batch in [1, 2, 5] {
            let strings = tokenize_query(&Moved, &samples, 48_000, batch).unwrap();
            assert_eq!(strings.len(), 2);
            assert_eq!(
                strings[0],
                tokenize_windows(&Probe, &samples, 48_000, batch).unwrap()
            );
            assert_eq!(strings[1].tokens, vec![130, 100, 130, 103, 115, 106]);
            assert_eq!(strings[1].times_ms, strings[0].times_ms);
            assert_eq!(
                tokenize_query(&Probe, &samples, 48_000, batch)
                    .unwrap()
                    .len(),
                1
            );
        }
        assert_eq!(
            tokenize_query(&Moved, &[], 48_000, 4).unwrap(),
            [TokenString::default()]
        );
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
