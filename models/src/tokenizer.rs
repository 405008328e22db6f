//! The `Tokenizer` trait that every tokenizer (VQ, PairAlign) implements, the [`TokenString`] it
//! produces, and the collapse of repeated frame codes into tokens with times.

use std::collections::BTreeMap;

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

    /// At how many window phases a query clip is tokenized ([`tokenize_phases`]) so that one of
    /// its strings matches the index, where the clip lies anywhere relative to the index's
    /// windows. 1 (the default) for a tokenizer whose string of a stretch of audio barely
    /// depends on where the window around it starts, like the frame-synchronous VQ tokenizer;
    /// more for one that decodes each window as a whole, like PairAlign.
    fn query_phases(&self) -> usize {
        1
    }

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
    let mut phases = tokenize_phases(tokenizer, samples, window_samples, 1, batch)?;
    Ok(phases.pop().unwrap_or_default())
}

/// A query clip tokenized as the index would tokenize it at `phases` different places relative
/// to the index's windows: phase `p` cuts the clip at `p * window_samples / phases` samples,
/// tokenizes the part before the cut as one (short) window, as if the clip started that far
/// before the end of an indexed window, and the rest window by window from the cut. Phase 0 is
/// [`tokenize_windows`]; phases whose cut is not inside the clip are left out, so the result
/// holds 1 to `phases` strings. For a tokenizer whose strings depend on where a window starts
/// ([`Tokenizer::query_phases`]), one of the phases is within `window_samples / phases / 2` of
/// the alignment of an excerpt cut anywhere from an indexed recording.
pub fn tokenize_phases(
    tokenizer: &dyn Tokenizer,
    samples: &[f32],
    window_samples: usize,
    phases: usize,
    batch: usize,
) -> Result<Vec<TokenString>> {
    phase_strings(tokenizer, samples, window_samples, phases, batch, false)
}

/// Every string a search tries for a query clip: [`tokenize_phases`] at the tokenizer's
/// [`Tokenizer::query_phases`], each phase in each of its
/// [`Tokenizer::tokenize_variants`] (a PairAlign model's grid phases), phase by phase. The
/// first is [`tokenize_windows`]'s.
pub fn tokenize_query(
    tokenizer: &dyn Tokenizer,
    samples: &[f32],
    window_samples: usize,
    batch: usize,
) -> Result<Vec<TokenString>> {
    let phases = tokenizer.query_phases();
    phase_strings(tokenizer, samples, window_samples, phases, batch, true)
}

/// [`tokenize_phases`], with each phase in every variant when `variants`.
fn phase_strings(
    tokenizer: &dyn Tokenizer,
    samples: &[f32],
    window_samples: usize,
    phases: usize,
    batch: usize,
    variants: bool,
) -> Result<Vec<TokenString>> {
    let window_samples = window_samples.max(1);
    let phases = phases.max(1);
    // (phase, offset in samples, audio) of every window of every phase.
    let mut pieces: Vec<(usize, usize, &[f32])> = Vec::new();
    for phase in 0..phases {
        let cut = phase * window_samples / phases;
        if phase > 0 && cut >= samples.len() {
            continue;
        }
        if cut > 0 {
            pieces.push((phase, 0, &samples[..cut]));
        }
        for (k, window) in samples[cut..].chunks(window_samples).enumerate() {
            pieces.push((phase, cut + k * window_samples, window));
        }
    }
    // (phase, variant) -> its string; the windows of a phase arrive in order.
    let mut out: BTreeMap<(usize, usize), TokenString> = BTreeMap::new();
    for group in pieces.chunks(batch.max(1)) {
        let audio: Vec<&[f32]> = group.iter().map(|&(_, _, a)| a).collect();
        let strings = if variants {
            tokenizer.tokenize_variants(&audio)?
        } else {
            vec![tokenizer.tokenize(&audio)?]
        };
        for (variant, strings) in strings.into_iter().enumerate() {
            for (&(phase, offset, _), ts) in group.iter().zip(strings) {
                let string = out.entry((phase, variant)).or_default();
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
        return Ok(vec![TokenString::default()]);
    }
    Ok(out.into_values().collect())
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

    #[test]
    fn phases_cut_the_clip_before_windowing_the_rest() {
        // 4 s; sample value = index of its tenth of a second.
        let samples: Vec<f32> = (0..64_000).map(|i| (i / 1600) as f32).collect();
        for batch in [1, 3, 32] {
            let strings = tokenize_phases(&Probe, &samples, 48_000, 4, batch).unwrap();
            let tokens: Vec<Vec<u16>> = strings.iter().map(|s| s.tokens.clone()).collect();
            assert_eq!(
                tokens,
                [
                    vec![30, 0, 10, 30],
                    vec![7, 0, 30, 7, 2, 37],
                    vec![15, 0, 25, 15],
                    vec![22, 0, 17, 22],
                ],
                "batch {batch}"
            );
            assert_eq!(strings[1].times_ms, [0, 50, 750, 800, 3750, 3800]);
            assert_eq!(
                strings[0],
                tokenize_windows(&Probe, &samples, 48_000, batch).unwrap()
            );
        }
        // A cut at or past the end of a short clip is no phase.
        let short = &samples[..16_000];
        assert_eq!(
            tokenize_phases(&Probe, short, 48_000, 4, 8).unwrap().len(),
            2
        );
        assert_eq!(
            tokenize_phases(&Probe, &samples[..12_000], 48_000, 4, 8)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            tokenize_phases(&Probe, &[], 48_000, 4, 8).unwrap(),
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
