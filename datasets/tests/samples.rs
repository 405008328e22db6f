//! End to end over the bundled sample archive (`samples/`, made by scripts/make_samples.sh): every
//! file reads as a corpus utterance with the duration its manifest records, decodes to audible 16 kHz
//! speech, and the whole archive builds a feature cache that the paired-view loader serves. Needs
//! no speech engine: the samples are committed.

#![allow(clippy::unwrap_used)] // Tests unwrap: a failure is the test failing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pairalign_datasets::cache::{build_cache, BatchLoader, CacheBuildOptions, FeatureCache};
use pairalign_datasets::corpus::read_folder;
use pairalign_datasets::decode::{decode_file, probe_duration, DecodeOptions};
use pairalign_datasets::mel::N_MELS;
use pairalign_datasets::SAMPLE_RATE;

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

/// Manifest durations by path relative to samples/.
fn manifest_durations() -> HashMap<String, f64> {
    let text = std::fs::read_to_string(samples_dir().join("manifest.jsonl")).unwrap();
    text.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                v["path"].as_str().unwrap().to_string(),
                v["duration"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_sample_reads_decodes_and_matches_its_manifest() {
    let root = samples_dir();
    let corpus = read_folder(&root, &probe_duration).unwrap();
    assert!(corpus.problems.is_empty(), "{:?}", corpus.problems);
    let durations = manifest_durations();
    assert_eq!(corpus.utterances.len(), durations.len());
    let mut formats = std::collections::BTreeSet::new();
    for u in &corpus.utterances {
        let rel = u
            .path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let expected = durations[&rel];
        // MP3 without a gapless (LAME) header keeps the encoder delay and pads to whole 1152-sample
        // frames: up to about 0.15 s more at 16 kHz. Lossless formats are exact.
        let tolerance = if rel.ends_with(".mp3") { 0.15 } else { 0.01 };
        assert!(
            (u.duration_s - expected).abs() < tolerance,
            "{rel}: {} s vs {expected} s",
            u.duration_s
        );
        let audio = decode_file(&u.path, &DecodeOptions::default()).unwrap();
        assert_eq!(audio.sample_rate, SAMPLE_RATE);
        assert!((audio.duration_s() - expected).abs() < tolerance, "{rel}");
        let rms =
            (audio.samples.iter().map(|x| x * x).sum::<f32>() / audio.samples.len() as f32).sqrt();
        assert!(rms > 0.01, "{rel} is nearly silent (rms {rms})");
        formats.insert(u.path.extension().unwrap().to_string_lossy().to_string());
    }
    assert_eq!(
        formats.into_iter().collect::<Vec<_>>(),
        ["flac", "mp3", "ogg", "wav"]
    );
}

#[test]
fn samples_build_a_feature_cache_the_loader_serves() {
    let corpus = read_folder(&samples_dir(), &probe_duration).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("samples.feat");
    let options = CacheBuildOptions {
        seed: 5,
        ..CacheBuildOptions::default()
    };
    let report = build_cache(&corpus.utterances, &path, &options).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    // 4.3 minutes in 3 s windows (short utterances kept whole, tails dropped).
    assert!(report.clips >= 60, "{} clips", report.clips);
    let cache = FeatureCache::open(&path).unwrap();
    assert_eq!(cache.len(), report.clips);
    assert_eq!(cache.views_per_clip(), 2);
    for i in 0..cache.len() {
        for v in 0..2 {
            let view = cache.view(i, v);
            assert_eq!(view.n_mels, N_MELS);
            // 3 s at 100 frames/s, +-10% for a speed view; shorter for short clips.
            assert!(
                view.frames > 0 && view.frames <= 340,
                "clip {i} view {v}: {} frames",
                view.frames
            );
        }
    }
    // The same seed gives the same cache, byte for byte.
    let again = dir.path().join("again.feat");
    build_cache(&corpus.utterances, &again, &options).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(&again).unwrap()
    );

    let loader = BatchLoader::new(&cache, 16, 1, Some(300)).unwrap();
    let batches: Vec<_> = loader.epoch(0).collect();
    assert_eq!(
        batches.iter().map(|b| b.clip_indices.len()).sum::<usize>(),
        cache.len()
    );
    assert_eq!(batches[0].a.len(), 16 * 300 * N_MELS);
}
