//! The retrieval protocol can tell good tokenizers from bad: an oracle (a clip's own id as its
//! tokens) scores perfectly, a tokenizer that says the same for every clip scores chance, and
//! caches the protocol cannot run on are errors.

#![allow(clippy::unwrap_used)] // Tests unwrap: a failure is the test failing.

use std::path::Path;

use pairalign_datasets::cache::{CacheWriter, Dtype, FeatureCache};
use pairalign_eval::{evaluate_tokens, Error};
use pairalign_models::{TokenString, Tokenizer};

const N_MELS: usize = 4;

/// A cache of `clips` clips whose every mel value is the clip number (both views alike, so the
/// oracle can read the clip back), `views` views each.
fn cache(path: &Path, clips: usize, views: usize) -> FeatureCache {
    let mut writer = CacheWriter::create(path, N_MELS, views, Dtype::F32).unwrap();
    for c in 0..clips {
        let frames = 10 + c % 3;
        let mel = vec![c as f32; frames * N_MELS];
        let refs: Vec<&[f32]> = (0..views).map(|_| mel.as_slice()).collect();
        writer.add_clip(&format!("c{c}"), &refs).unwrap();
    }
    writer.finish().unwrap();
    FeatureCache::open(path).unwrap()
}

/// A tokenizer given by a function of a clip's cached log-mel.
struct FnTokenizer(&'static str, fn(&[f32]) -> Vec<u16>);

impl Tokenizer for FnTokenizer {
    fn id(&self) -> &str {
        self.0
    }
    fn weights_hash(&self) -> &str {
        "-"
    }
    fn vocab_size(&self) -> u32 {
        16
    }
    fn tokenize(&self, _: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
        unreachable!("the protocol reads cached log-mels")
    }
    fn tokenize_mels(&self, mels: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
        Ok(mels
            .iter()
            .map(|m| {
                let tokens = (self.1)(m);
                TokenString {
                    times_ms: (0..tokens.len() as u32).map(|i| 20 * i).collect(),
                    tokens,
                }
            })
            .collect())
    }
}

/// Tokens that name the clip: its number in base 16, one token per digit.
const ORACLE: FnTokenizer = FnTokenizer("oracle", |m| {
    let c = m[0] as u32;
    (0..3).map(|d| ((c >> (4 * d)) & 15) as u16).collect()
});
/// The same string for every clip.
const CONSTANT: FnTokenizer = FnTokenizer("constant", |_| vec![1, 2, 3]);

#[test]
fn an_oracle_scores_perfectly_and_a_constant_tokenizer_scores_chance() {
    let dir = tempfile::tempdir().unwrap();
    let n = 100;
    let cache = cache(&dir.path().join("c.feat"), n, 2);
    let oracle = evaluate_tokens(&ORACLE, &cache, None, None).unwrap();
    assert_eq!(oracle.clips, n);
    assert_eq!(oracle.retrieval.p_at_1, 1.0);
    assert_eq!(oracle.retrieval.mrr, 1.0);
    assert_eq!(oracle.ned_views.mean, 0.0);
    assert!(oracle.ned_unrelated.mean > 0.3);
    let constant = evaluate_tokens(&CONSTANT, &cache, None, None).unwrap();
    assert!((constant.retrieval.p_at_1 - 1.0 / n as f64).abs() < 1e-12);
    assert!((constant.retrieval.recall_at_10 - 10.0 / n as f64).abs() < 1e-12);
    assert_eq!(constant.ned_unrelated.mean, 0.0);
    assert!((constant.perplexity - 3.0).abs() < 1e-9);
    // 3 tokens per clip of 10-12 frames (0.10-0.12 s).
    let seconds: f64 = (0..n).map(|c| (10 + c % 3) as f64 * 0.01).sum();
    assert!((constant.tokens_per_s - 3.0 * n as f64 / seconds).abs() < 1e-9);
    // A limit takes the first clips only.
    let some = evaluate_tokens(&ORACLE, &cache, Some(7), None).unwrap();
    assert_eq!(some.clips, 7);
    assert_eq!(some.retrieval.candidates, 7);
}

#[test]
fn caches_the_protocol_cannot_run_on_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let one_view = cache(&dir.path().join("one.feat"), 10, 1);
    let err = evaluate_tokens(&ORACLE, &one_view, None, None).unwrap_err();
    assert!(matches!(err, Error::BadInput(_)), "{err}");
    assert!(err.to_string().contains("needs 2"), "{err}");
    let one_clip = cache(&dir.path().join("two.feat"), 1, 2);
    let err = evaluate_tokens(&ORACLE, &one_clip, None, None).unwrap_err();
    assert!(err.to_string().contains("at least 2"), "{err}");
}
