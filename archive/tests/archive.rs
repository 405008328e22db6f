//! The embedding API end to end on the bundled samples: add files (with sidecar and run
//! metadata) and samples, search clips given at 16 kHz and at 44.1 kHz with and without metadata
//! filters, uploads and their duplicate and id checks, snapshots, delete, stats.

#![allow(clippy::unwrap_used)] // Tests unwrap: a failure is the test failing.

use std::path::{Path, PathBuf};

use pairalign_archive::{clip_search_options, Archive, AssetMetadata, Error};
use pairalign_datasets::decode::{decode_file, resample, DecodeOptions};
use pairalign_datasets::SAMPLE_RATE;

fn sample(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../samples")
        .join(rel)
}

fn canonical(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

fn tags(tags: &[&str]) -> AssetMetadata {
    AssetMetadata {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..AssetMetadata::default()
    }
}

#[test]
fn add_search_filter_delete_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    // A copy of samples/long with a sidecar for one file.
    let long = dir.path().join("long");
    std::fs::create_dir(&long).unwrap();
    for entry in std::fs::read_dir(sample("long")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), long.join(entry.file_name())).unwrap();
    }
    std::fs::write(
        long.join("long_espeak-ng_en-us_m3.json"),
        r#"{"title": "Board meeting, March", "tags": ["interview"]}"#,
    )
    .unwrap();
    let source = long.join("long_espeak-ng_en-us_m3.wav");
    let id = canonical(&source);

    let mut archive = Archive::open(dir.path().join("db")).unwrap();
    let report = archive.add_file(&long, &tags(&["radio"])).unwrap();
    assert_eq!((report.indexed, report.skipped), (4, 0));
    assert_eq!(
        archive
            .add_file(&long, &AssetMetadata::default())
            .unwrap()
            .skipped,
        4,
        "idempotent"
    );
    let asset = archive.asset(&id).unwrap().unwrap();
    assert_eq!(asset.title.as_deref(), Some("Board meeting, March"));
    assert_eq!(
        asset.tags,
        ["interview", "radio"],
        "sidecar tags, then the run's"
    );
    assert_eq!(asset.format.as_deref(), Some("wav/pcm_s16le"));
    assert!(asset.duration_s > 20.0 && asset.tokens > 0);
    assert_eq!(
        asset.content_hash,
        pairalign_catalog::hash_file(&source).unwrap()
    );

    // A recording handed over as samples, at 44.1 kHz.
    let short = decode_file(&sample("short/flite_kal.wav"), &DecodeOptions::default()).unwrap();
    let at_44k = resample(&short.samples, SAMPLE_RATE, 44_100).unwrap();
    let added = archive
        .add_samples("asset-17", &at_44k, 44_100, &tags(&["music"]))
        .unwrap();
    assert_eq!(
        (added.id.as_str(), added.sample_rate),
        ("asset-17", Some(44_100))
    );
    assert!(matches!(
        archive.add_samples("asset-18", &at_44k, 44_100, &AssetMetadata::default()),
        Err(Error::Duplicate { of }) if of == "asset-17"
    ));
    let stats = archive.stats().unwrap();
    assert_eq!(stats.docs, 5);
    assert!(stats.hours > 0.03 && stats.tokens > 0 && stats.storage.catalog > 0);

    // A clean 3 s excerpt from 20 s into one file, at 16 kHz and at 44.1 kHz.
    let audio = decode_file(&source, &DecodeOptions::default()).unwrap();
    let clip = &audio.samples[20 * 16_000..23 * 16_000];
    let options = clip_search_options();
    let hits = archive
        .search_audio(clip, SAMPLE_RATE, &options, None)
        .unwrap()
        .hits;
    assert_eq!(hits[0].id, id);
    assert!(hits[0].start_ms.abs_diff(20_000) <= 300, "{:?}", hits[0]);
    let clip_44k = resample(clip, SAMPLE_RATE, 44_100).unwrap();
    let hits = archive
        .search_audio(&clip_44k, 44_100, &options, None)
        .unwrap()
        .hits;
    assert_eq!(hits[0].id, id, "a clip at another rate is resampled first");
    // The recording added as samples is found too.
    let hits = archive
        .search_audio(&short.samples, SAMPLE_RATE, &options, None)
        .unwrap()
        .hits;
    assert_eq!(hits[0].id, "asset-17");

    // Filters restrict the candidates before verification.
    let only = |filter| {
        archive
            .search_audio(clip, SAMPLE_RATE, &options, Some(filter))
            .unwrap()
            .hits
    };
    assert_eq!(only("tags:interview")[0].id, id);
    assert!(only("tags:music").iter().all(|h| h.id == "asset-17"));
    assert!(only("tags:radio AND NOT tags:interview")
        .iter()
        .all(|h| h.id != id && h.id != "asset-17"));
    assert!(only("duration:<1").is_empty());
    let reader = archive.reader();
    let page = reader.assets(Some("tags:radio"), 0, 2).unwrap();
    assert_eq!((page.total, page.assets.len()), (4, 2));
    // A reader resolves a filter once; its clones share what it resolved.
    let radio = reader.select("tags:radio").unwrap();
    assert_eq!(radio.len(), 4);
    assert!(std::sync::Arc::ptr_eq(
        &radio,
        &reader.clone().select("tags:radio").unwrap()
    ));
    assert_eq!(reader.assets(None, 4, 10).unwrap().assets.len(), 1);
    assert!(matches!(
        archive.search_audio(clip, SAMPLE_RATE, &options, Some("tags:(")),
        Err(Error::Filter(_))
    ));

    // Deleted documents are no longer found; a snapshot taken before still sees them.
    let deleted = archive.delete(&[id.as_str()]).unwrap();
    assert_eq!(deleted.deleted, vec![id.clone()]);
    let hits = archive
        .search_audio(clip, SAMPLE_RATE, &options, None)
        .unwrap()
        .hits;
    assert!(hits.iter().all(|h| h.id != id));
    assert_eq!(archive.stats().unwrap().docs, 4);
    assert!(archive.asset(&id).unwrap().is_none());
    let before = reader
        .search_audio(clip, SAMPLE_RATE, &options, None)
        .unwrap();
    assert_eq!(
        before.hits[0].id, id,
        "a snapshot sees what was committed when it was taken"
    );

    // Bad input is an error, not a panic.
    assert!(matches!(
        archive.search_audio(clip, 0, &options, None),
        Err(Error::Decode(_))
    ));
    assert!(matches!(
        archive.search_audio(&clip[..1_000], SAMPLE_RATE, &options, None),
        Err(Error::ClipLength { .. })
    ));
    let too_many = AssetMetadata {
        tags: vec!["t".into(); 65],
        ..AssetMetadata::default()
    };
    assert!(matches!(
        archive.add_file(&long, &too_many),
        Err(Error::InvalidMetadata(_))
    ));
}

#[test]
fn uploads_get_ids_and_refuse_copies_and_bad_audio() {
    let dir = tempfile::tempdir().unwrap();
    let mut archive = Archive::open(dir.path().join("db")).unwrap();
    let file = sample("short/flite_slt.flac");
    let meta = AssetMetadata {
        title: Some("Slt".into()),
        tags: vec!["demo".into()],
        file_name: Some("slt-original.flac".into()),
    };
    let asset = archive.add_upload(None, &file, &meta).unwrap();
    assert_eq!(asset.id.len(), 32, "derived from the content hash");
    assert!(asset.content_hash.starts_with(&asset.id));
    assert_eq!(
        asset.path, None,
        "an upload's temporary path is not recorded"
    );
    assert_eq!(asset.file_name.as_deref(), Some("slt-original.flac"));
    assert_eq!(asset.format.as_deref(), Some("flac/flac"));
    assert!(matches!(
        archive.add_upload(Some("again"), &file, &meta),
        Err(Error::Duplicate { of }) if of == asset.id
    ));
    let other = sample("short/flite_awb.flac");
    assert!(matches!(
        archive.add_upload(Some(&asset.id), &other, &meta),
        Err(Error::IdTaken(_))
    ));
    let named = archive
        .add_upload(Some("awb"), &other, &AssetMetadata::default())
        .unwrap();
    assert_eq!(named.id, "awb");
    let junk = dir.path().join("junk.wav");
    std::fs::write(&junk, b"RIFF not really").unwrap();
    assert!(matches!(
        archive.add_upload(None, &junk, &meta),
        Err(Error::Decode(_))
    ));
    // After a delete the same content can come back.
    archive.delete(&[asset.id.as_str()]).unwrap();
    assert_eq!(archive.add_upload(None, &file, &meta).unwrap().id, asset.id);
    assert_eq!(
        archive.reader().assets(Some("demo"), 0, 10).unwrap().total,
        1
    );
}

#[test]
fn many_recordings_merge_into_few_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut archive = Archive::open(dir.path().join("db")).unwrap();
    let long = sample("long/long_espeak-ng_en-us_m3.wav");
    let audio = decode_file(&long, &DecodeOptions::default())
        .unwrap()
        .samples;
    let clip = SAMPLE_RATE as usize * 2;
    let count = 24;
    let step = (audio.len() - clip) / count;
    for i in 0..count {
        let samples = &audio[i * step..i * step + clip];
        let id = format!("rec{i}");
        archive
            .add_samples(&id, samples, SAMPLE_RATE, &AssetMetadata::default())
            .unwrap();
        // One segment per recording, merged by size tier: never 8 in the smallest tier.
        assert!(archive.database().segment_count() < 8, "after {id}");
    }
    drop(archive);
    let archive = Archive::open(dir.path().join("db")).unwrap();
    assert_eq!(archive.stats().unwrap().docs, count as u64);
    let options = clip_search_options();
    for i in [0, 11, count - 1] {
        let hits = archive
            .search_audio(
                &audio[i * step..i * step + clip],
                SAMPLE_RATE,
                &options,
                None,
            )
            .unwrap()
            .hits;
        assert_eq!(
            hits[0].id,
            format!("rec{i}"),
            "the merged segments keep rec{i}"
        );
    }
}
