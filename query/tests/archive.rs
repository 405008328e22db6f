//! The embedding API end to end on the bundled samples: add files and samples, search clips
//! given at 16 kHz and at 44.1 kHz, delete, stats.

#![allow(clippy::unwrap_used)] // Tests unwrap: a failure is the test failing.

use std::path::{Path, PathBuf};

use pairalign_datasets::decode::{decode_file, resample, DecodeOptions};
use pairalign_datasets::SAMPLE_RATE;
use pairalign_query::{clip_search_options, Archive, Error};

fn sample(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../samples")
        .join(rel)
}

#[test]
fn add_search_delete_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let mut archive = Archive::open(dir.path().join("db")).unwrap();
    let report = archive.add_file(sample("long")).unwrap();
    assert_eq!((report.indexed, report.skipped), (4, 0));
    assert_eq!(
        archive.add_file(sample("long")).unwrap().skipped,
        4,
        "idempotent"
    );

    // A recording handed over as samples, at 44.1 kHz.
    let short = decode_file(&sample("short/flite_kal.wav"), &DecodeOptions::default()).unwrap();
    let at_44k = resample(&short.samples, SAMPLE_RATE, 44_100).unwrap();
    archive.add_samples("asset-17", &at_44k, 44_100).unwrap();
    assert!(
        archive.add_samples("asset-17", &at_44k, 44_100).is_err(),
        "ids are unique"
    );
    let stats = archive.stats().unwrap();
    assert_eq!(stats.docs, 5);
    assert!(stats.hours > 0.03 && stats.tokens > 0);

    // A clean 3 s excerpt from 20 s into one file, at 16 kHz and at 44.1 kHz.
    let source = sample("long/long_espeak-ng_en-us_m3.wav");
    let audio = decode_file(&source, &DecodeOptions::default()).unwrap();
    let clip = &audio.samples[20 * 16_000..23 * 16_000];
    let id = std::fs::canonicalize(&source)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let options = clip_search_options();
    let hits = archive
        .search_audio(clip, SAMPLE_RATE, &options)
        .unwrap()
        .hits;
    assert_eq!(hits[0].id, id);
    assert!(hits[0].start_ms.abs_diff(20_000) <= 300, "{:?}", hits[0]);
    let clip_44k = resample(clip, SAMPLE_RATE, 44_100).unwrap();
    let hits = archive
        .search_audio(&clip_44k, 44_100, &options)
        .unwrap()
        .hits;
    assert_eq!(hits[0].id, id, "a clip at another rate is resampled first");
    // The recording added as samples is found too.
    let hits = archive
        .search_audio(&short.samples, SAMPLE_RATE, &options)
        .unwrap()
        .hits;
    assert_eq!(hits[0].id, "asset-17");

    // Deleted documents are no longer found.
    let deleted = archive.delete(&[id.as_str()]).unwrap();
    assert_eq!(deleted.deleted, vec![id.clone()]);
    let hits = archive
        .search_audio(clip, SAMPLE_RATE, &options)
        .unwrap()
        .hits;
    assert!(hits.iter().all(|h| h.id != id));
    assert_eq!(archive.stats().unwrap().docs, 4);

    // Bad input is an error, not a panic.
    assert!(matches!(
        archive.search_audio(clip, 0, &options),
        Err(Error::Decode(_))
    ));
    assert!(matches!(
        archive.search_audio(&clip[..1_000], SAMPLE_RATE, &options),
        Err(Error::ClipLength { .. })
    ));
}
