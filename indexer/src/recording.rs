//! One recording, decoded, made into what the archive stores: the step every way of adding audio
//! shares (the bulk indexer's workers, uploads, samples handed over by an application).

use std::path::Path;

use pairalign_catalog::{now_secs, rfc3339, Asset, AssetMetadata};
use pairalign_datasets::decode::{decode_file, probe, DecodeOptions};
use pairalign_datasets::{Audio, SAMPLE_RATE};
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

/// Reads what the document of the file at `path` needs besides its tokens: its sidecar metadata
/// (`run`'s tags added, `run`'s title where the sidecar gives none), its headers and its samples
/// (16 kHz mono), and builds its catalog entry under `id` with the content `hash` and `stamp`
/// (size, modification time) given. Errors with the reason the file cannot be indexed.
pub fn read_recording(
    path: &Path,
    id: &str,
    hash: String,
    stamp: Option<(u64, i64)>,
    run: &AssetMetadata,
    decode: &DecodeOptions,
) -> Result<(Audio, Asset), String> {
    let mut metadata = AssetMetadata::from_sidecar(path)?.unwrap_or_default();
    metadata.title = metadata.title.or_else(|| run.title.clone());
    for tag in &run.tags {
        if !metadata.tags.contains(tag) {
            metadata.tags.push(tag.clone());
        }
    }
    let info = probe(path).map_err(|e| e.to_string())?;
    let audio = decode_file(path, decode).map_err(|e| e.to_string())?;
    let asset = Asset {
        id: id.to_string(),
        path: Some(id.to_string()),
        file_name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        title: metadata.title,
        tags: metadata.tags,
        duration_s: 0.0,
        format: Some(info.format),
        sample_rate: Some(info.sample_rate),
        content_hash: hash,
        tokens: 0,
        indexed_at: rfc3339(now_secs()),
        file_size: stamp.map(|s| s.0),
        modified_ns: stamp.map(|s| s.1),
    };
    Ok((audio, asset))
}
