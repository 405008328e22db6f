//! How a media asset manager embeds PairAlign Search: keep an archive beside the assets, add
//! each asset when it is ingested, and answer "where else does this clip occur?".
//!
//! Run: `cargo run --release -p pairalign-archive --example media_asset_manager -- [ASSET_DIR]`
//! (default: the bundled `samples/`). It indexes the folder into a temporary archive, cuts a 3 s
//! clip out of the longest asset, searches for it, deletes that asset, and prints the stats.

use std::path::PathBuf;

use pairalign_archive::{clip_search_options, Archive, AssetMetadata};
use pairalign_datasets::decode::{decode_file, DecodeOptions};
use pairalign_datasets::SAMPLE_RATE;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let assets = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples"));
    let dir = tempfile::tempdir()?;
    let mut archive = Archive::open(dir.path().join("assets.db"))?;

    // Ingest: one call per asset or folder, with tags for all of them (sidecar JSON files add
    // titles and tags per file); bad files are reported, not fatal.
    let ingest = AssetMetadata {
        tags: vec!["ingest-2026-12".into()],
        ..AssetMetadata::default()
    };
    let report = archive.add_file(&assets, &ingest)?;
    println!(
        "ingested {} assets ({:.1} min of audio, {:.0}x realtime), {} failed",
        report.indexed,
        report.audio_s / 60.0,
        report.realtime,
        report.failed.len()
    );

    // The editor selects 3 s of the longest asset and asks where else it occurs.
    let longest = archive
        .database()
        .segments()?
        .iter()
        .flat_map(|s| {
            s.docs()
                .map(|d| (d.duration_ms, d.name.to_string()))
                .collect::<Vec<_>>()
        })
        .max()
        .ok_or("no assets")?;
    let audio = decode_file(longest.1.as_ref(), &DecodeOptions::default())?;
    let start = audio.samples.len() / 3;
    let clip = &audio.samples[start..start + 3 * SAMPLE_RATE as usize];
    // Restricted to this ingest's assets longer than 10 s (a metadata filter).
    let outcome = archive.search_audio(
        clip,
        SAMPLE_RATE,
        &clip_search_options(),
        Some("tags:ingest-2026-12 AND duration:>10"),
    )?;
    println!(
        "clip from {} at {:.1} s: {} hits in {:.1} ms",
        longest.1,
        start as f64 / f64::from(SAMPLE_RATE),
        outcome.hits.len(),
        outcome.took_ms
    );
    for hit in outcome.hits.iter().take(3) {
        println!(
            "  {}  {:.2}-{:.2} s  distance {} ({:.2})",
            hit.id,
            f64::from(hit.start_ms) / 1e3,
            f64::from(hit.end_ms) / 1e3,
            hit.distance,
            hit.norm_distance
        );
    }

    // The asset is retired.
    archive.delete(&[longest.1.as_str()])?;
    let stats = archive.stats()?;
    println!(
        "{} assets, {:.2} h, {:.1} tokens/s, {:.0} kB on disk",
        stats.docs,
        stats.hours,
        stats.tokens_per_s,
        stats.bytes as f64 / 1e3
    );
    Ok(())
}
