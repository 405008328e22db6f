//! Tokenizing many recordings window by window exactly as the index does
//! (`pairalign_models::tokenize_windows`: consecutive windows, the last one shorter, absolute
//! per-token times), but with the windows of several recordings in one tokenizer call, so that
//! a corpus of short utterances still fills the batches.

use pairalign_datasets::SAMPLE_RATE;
use pairalign_models::{TokenString, Tokenizer};

/// Token strings of `recordings` (16 kHz samples each), window by window, `batch` windows per
/// tokenizer call. Equal to `tokenize_windows` on each recording alone.
pub fn tokenize_recordings(
    tokenizer: &dyn Tokenizer,
    recordings: &[&[f32]],
    window_samples: usize,
    batch: usize,
) -> pairalign_models::Result<Vec<TokenString>> {
    let window_samples = window_samples.max(1);
    // (recording, window index, samples) in order.
    let windows: Vec<(usize, usize, &[f32])> = recordings
        .iter()
        .enumerate()
        .flat_map(|(r, samples)| {
            samples
                .chunks(window_samples)
                .enumerate()
                .map(move |(w, s)| (r, w, s))
        })
        .collect();
    let mut out = vec![TokenString::default(); recordings.len()];
    for group in windows.chunks(batch.max(1)) {
        let batch: Vec<&[f32]> = group.iter().map(|w| w.2).collect();
        for (&(r, w, _), ts) in group.iter().zip(tokenizer.tokenize(&batch)?) {
            let offset_ms = w as u64 * window_samples as u64 * 1000 / u64::from(SAMPLE_RATE);
            out[r].tokens.extend(ts.tokens);
            out[r].times_ms.extend(
                ts.times_ms
                    .iter()
                    .map(|&t| u32::try_from(u64::from(t) + offset_ms).unwrap_or(u32::MAX)),
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use pairalign_models::tokenize_windows;

    use super::*;

    /// Tokens: the window's length in tenths of a second and its first sample.
    struct Probe;

    impl Tokenizer for Probe {
        fn id(&self) -> &str {
            "probe"
        }
        fn weights_hash(&self) -> &str {
            ""
        }
        fn vocab_size(&self) -> u32 {
            1000
        }
        fn tokenize(&self, batch: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
            Ok(batch
                .iter()
                .map(|w| TokenString {
                    tokens: vec![(w.len() / 1600) as u16, w[0] as u16],
                    times_ms: vec![0, 70],
                })
                .collect())
        }
        fn tokenize_mels(&self, _: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
            Ok(vec![])
        }
    }

    #[test]
    fn equals_tokenize_windows_on_each_recording() {
        let recordings: Vec<Vec<f32>> = [0usize, 5_000, 48_000, 100_000, 16_000]
            .iter()
            .enumerate()
            .map(|(r, &n)| (0..n).map(|i| (r * 100 + i / 16_000) as f32).collect())
            .collect();
        let refs: Vec<&[f32]> = recordings.iter().map(Vec::as_slice).collect();
        for batch in [1, 2, 3, 32] {
            let all = tokenize_recordings(&Probe, &refs, 48_000, batch).unwrap();
            for (r, ts) in refs.iter().zip(&all) {
                assert_eq!(*ts, tokenize_windows(&Probe, r, 48_000, 4).unwrap());
            }
        }
    }
}
