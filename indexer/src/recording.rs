//! One recording, decoded, made into what the archive stores: the step every way of adding audio
//! shares (the bulk indexer's workers, uploads, samples handed over by an application).

use pairalign_catalog::{now_secs, rfc3339, Asset};
use pairalign_datasets::SAMPLE_RATE;
use pairalign_engine::NewDoc;
use pairalign_models::{tokenize_windows, Tokenizer, WINDOWS_PER_CALL, WINDOW_SAMPLES};

/// A recording tokenized and ready to commit ([`crate::Store::commit`]): its engine document and
/// its catalog entry, which agree on the id and the token count.
#[derive(Clone, Debug)]
pub struct IndexedRecording {
    /// Tokens, absolute per-token times and duration, under the asset's id.
    pub doc: NewDoc,
    /// The catalog entry, with duration, token count and indexing time filled in.
    pub asset: Asset,
}

/// Why a decoded recording gives nothing to index.
#[derive(Debug, thiserror::Error)]
pub enum Unindexable {
    /// No samples at all.
    #[error("no audio frames")]
    NoAudio,
    /// Too short for the tokenizer to give a token.
    #[error("too short to give any token")]
    TooShort,
    /// The tokenizer failed.
    #[error("tokenizer failed: {0}")]
    Tokenizer(#[from] pairalign_models::Error),
}

/// Tokenizes one recording (16 kHz mono `samples`) the way the archive stores every recording
/// (3 s windows, absolute per-token times) under `asset.id`, and fills in the asset's duration,
/// token count and indexing time. Pure: nothing is written.
pub fn index_recording(
    tokenizer: &dyn Tokenizer,
    samples: &[f32],
    asset: Asset,
) -> Result<IndexedRecording, Unindexable> {
    if samples.is_empty() {
        return Err(Unindexable::NoAudio);
    }
    let ts = tokenize_windows(tokenizer, samples, WINDOW_SAMPLES, WINDOWS_PER_CALL)?;
    if ts.is_empty() {
        return Err(Unindexable::TooShort);
    }
    let duration_ms = samples.len() as u64 * 1000 / u64::from(SAMPLE_RATE);
    let asset = Asset {
        duration_s: samples.len() as f64 / f64::from(SAMPLE_RATE),
        tokens: ts.tokens.len() as u64,
        indexed_at: rfc3339(now_secs()),
        ..asset
    };
    let doc = NewDoc {
        id: asset.id.clone(),
        tokens: ts.tokens,
        times_ms: Some(ts.times_ms),
        // Bounded by the decoder's duration limit; saturate rather than wrap.
        duration_ms: Some(u32::try_from(duration_ms).unwrap_or(u32::MAX)),
    };
    Ok(IndexedRecording { doc, asset })
}
