//! Voice clips in the feature cache (issue 22, part 4): utterances that say one transcript in
//! different voices become clips whose views are those voices, whole, and the loader says their
//! views do not share a timeline; everything else is cut into windows as before.

#![allow(clippy::unwrap_used)] // Tests unwrap: a failure is the test failing.

use std::path::{Path, PathBuf};

use pairalign_datasets::cache::{
    build_cache, is_voice_clip, BatchLoader, CacheBuildOptions, FeatureCache, VOICES_PREFIX,
};
use pairalign_datasets::corpus::Utterance;
use pairalign_datasets::mel::LogMel;
use pairalign_datasets::synth::write_wav_16k;
use pairalign_datasets::views::ViewSpace;
use pairalign_datasets::{Audio, SAMPLE_RATE};

/// A tone of `seconds` at `hz`, written to `dir/id.wav`, as an utterance of `speaker`.
fn utterance(dir: &Path, id: &str, speaker: &str, text: Option<&str>, seconds: f64) -> Utterance {
    let hz = 180.0 + 40.0 * speaker.len() as f64;
    let n = (seconds * f64::from(SAMPLE_RATE)) as usize;
    let samples = (0..n)
        .map(|i| (0.3 * (i as f64 * hz * std::f64::consts::TAU / 16000.0).sin()) as f32)
        .collect();
    let path: PathBuf = dir.join(format!("{id}.wav"));
    write_wav_16k(&path, &Audio::new(samples, SAMPLE_RATE)).unwrap();
    Utterance {
        id: id.to_string(),
        speaker: speaker.to_string(),
        path,
        duration_s: seconds,
        transcript: text.map(str::to_string),
        words: Vec::new(),
        phones: Vec::new(),
    }
}

#[test]
fn one_transcript_in_several_voices_becomes_voice_clips() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let utterances = vec![
        // "one": three voices, one of them twice: one clip of two voices; the rest of the
        // transcript is spoken for (no windows of the same words).
        utterance(d, "u0", "ann", Some("one"), 1.2),
        utterance(d, "u1", "bob", Some("one"), 1.5),
        utterance(d, "u2", "ann", Some("one "), 1.1),
        utterance(d, "u3", "carla", Some("one"), 0.9),
        // "two": two voices, one clip.
        utterance(d, "u4", "bob", Some("two"), 2.0),
        utterance(d, "u5", "carla", Some("two"), 2.6),
        // "three": one voice only, and no transcript: windows as usual.
        utterance(d, "u6", "ann", Some("three"), 1.0),
        utterance(d, "u7", "dee", None, 6.5),
    ];
    let options = CacheBuildOptions {
        views_per_clip: 2,
        view_space: ViewSpace {
            kinds: Vec::new(),
            ..ViewSpace::default()
        },
        cross_voice: true,
        ..CacheBuildOptions::default()
    };
    let path = d.join("voices.feat");
    let report = build_cache(&utterances, &path, &options).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!((report.clips, report.voice_clips), (5, 2));
    let cache = FeatureCache::open(&path).unwrap();
    let ids: Vec<&str> = (0..cache.len()).map(|i| cache.clip_id(i)).collect();
    assert_eq!(
        ids,
        [
            format!("{VOICES_PREFIX}u0").as_str(),
            &format!("{VOICES_PREFIX}u4"),
            "u6@0",
            "u7@0",
            "u7@3000"
        ]
    );
    // A voice clip's views are its voices' whole utterances (100 frames a second).
    let frames = |c: usize| (cache.frames(c, 0), cache.frames(c, 1));
    let near = |got: usize, seconds: f64| (got as f64 - seconds * 100.0).abs() <= 3.0;
    let (a, b) = frames(0);
    assert!(near(a, 1.2) && near(b, 1.5), "{a} {b}");
    let (a, b) = frames(1);
    assert!(near(a, 2.0) && near(b, 2.6), "{a} {b}");
    // A window clip's views are one piece of audio (no view change here: the same frames).
    let (a, b) = frames(3);
    assert!(near(a, 3.0) && near(b, 3.0), "{a} {b}");
    // Without the option the same corpus is windows only.
    let plain = d.join("plain.feat");
    let report = build_cache(
        &utterances,
        &plain,
        &CacheBuildOptions {
            cross_voice: false,
            ..options.clone()
        },
    )
    .unwrap();
    assert_eq!((report.clips, report.voice_clips), (9, 0));
    let plain = FeatureCache::open(&plain).unwrap();
    assert!((0..plain.len()).all(|i| !is_voice_clip(plain.clip_id(i))));

    // The loader marks voice clips' items as not sharing a timeline.
    let loader = BatchLoader::new(&cache, 5, 1, Some(300)).unwrap();
    let batch = loader.epoch(0).next().unwrap();
    for (item, &clip) in batch.clip_indices.iter().enumerate() {
        assert_eq!(batch.same_timeline[item], clip >= 2, "clip {clip}");
    }
}

#[test]
fn voice_clips_may_take_a_view_space_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let utterances = vec![
        utterance(d, "u0", "ann", Some("one"), 1.2),
        utterance(d, "u1", "bob", Some("one"), 1.5),
        utterance(d, "u2", "carla", None, 3.2),
    ];
    // Every view 12 dB quieter, except a voice clip's first, left as it is.
    let options = CacheBuildOptions {
        views_per_clip: 2,
        view_space: ViewSpace::parse("gain=-12:-12,p=1").unwrap(),
        voice_view_space: Some(ViewSpace {
            kinds: Vec::new(),
            ..ViewSpace::default()
        }),
        cross_voice: true,
        ..CacheBuildOptions::default()
    };
    let path = d.join("v.feat");
    let report = build_cache(&utterances, &path, &options).unwrap();
    assert_eq!((report.clips, report.voice_clips), (2, 1));
    let cache = FeatureCache::open(&path).unwrap();
    let mel = LogMel::new();
    // Mean log-mel of a view against that of its audio as it was: about 0 for the voice clip's
    // first view, clearly below for the others (12 dB quieter).
    let drop = |clip: usize, view: usize, audio: &Utterance, seconds: Option<f64>| -> f32 {
        let mut got = Vec::new();
        cache.view(clip, view).to_f32(&mut got);
        let decoded =
            pairalign_datasets::decode::decode_file(&audio.path, &Default::default()).unwrap();
        let n = seconds.map_or(decoded.samples.len(), |s| (s * 16000.0) as usize);
        let clean = mel.compute(&decoded.samples[..n]);
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        mean(&clean) - mean(&got)
    };
    let voice = drop(0, 0, &utterances[0], None);
    let other_voice = drop(0, 1, &utterances[1], None);
    let window = drop(1, 0, &utterances[2], Some(3.0));
    assert!(voice.abs() < 0.05, "voice clip changed by {voice}");
    assert!(
        other_voice > 1.0,
        "its second view changed by {other_voice}"
    );
    assert!(window > 1.0, "window clip changed by {window}");
}
