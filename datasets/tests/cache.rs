//! Feature cache and batch loader through the public API: round trips in f32 and f16, writer
//! validation, loader determinism, coverage, paired views and crop/pad shapes, and an ignored
//! throughput measurement.
//!
//! The byte-level corruption tests (every truncation, every flipped byte, crafted tables with
//! valid checksums) live beside the format in `src/cache/tests.rs`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use pairalign_datasets::cache::{f16, BatchLoader, CacheWriter, Dtype, FeatureCache, FeatureData};
use pairalign_datasets::Error;

const N_MELS: usize = 80;

/// Deterministic log-mel-like values for clip `c`, view `v`, `frames` frames.
fn features(c: usize, v: usize, frames: usize) -> Vec<f32> {
    (0..frames * N_MELS)
        .map(|k| ((c * 7919 + v * 104_729 + k * 31) % 2000) as f32 / 100.0 - 12.0)
        .collect()
}

/// Frames of view `v` of clip `c`: views of one clip differ in length (speed changes).
fn frames_of(c: usize, v: usize) -> usize {
    20 + (c * 3 + v * 5) % 17
}

/// Writes `clips` clips of `views` views and returns the expected values.
fn write_cache(path: &Path, clips: usize, views: usize, dtype: Dtype) -> Vec<Vec<Vec<f32>>> {
    let mut w = CacheWriter::create(path, N_MELS, views, dtype).expect("create");
    let mut all = Vec::new();
    for c in 0..clips {
        let vs: Vec<Vec<f32>> = (0..views)
            .map(|v| features(c, v, frames_of(c, v)))
            .collect();
        let refs: Vec<&[f32]> = vs.iter().map(|v| v.as_slice()).collect();
        w.add_clip(&format!("utt{c:03}@{}", c * 3000), &refs)
            .expect("add");
        all.push(vs);
    }
    let info = w.finish().expect("finish");
    assert_eq!(info.clip_count, clips as u64);
    assert_eq!(info.bytes, std::fs::metadata(path).expect("stat").len());
    all
}

#[test]
fn round_trip_f32_is_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f32.feat");
    let expected = write_cache(&path, 9, 3, Dtype::F32);
    let cache = FeatureCache::open(&path).expect("open");
    assert_eq!(cache.len(), 9);
    assert_eq!(cache.views_per_clip(), 3);
    assert_eq!(cache.n_mels(), N_MELS);
    assert_eq!(cache.dtype(), Dtype::F32);
    let mut out = Vec::new();
    for (c, views) in expected.iter().enumerate() {
        assert_eq!(cache.clip_id(c), format!("utt{c:03}@{}", c * 3000));
        for (v, values) in views.iter().enumerate() {
            let f = cache.view(c, v);
            assert_eq!(f.frames, frames_of(c, v));
            assert_eq!(f.n_mels, N_MELS);
            match f.data {
                FeatureData::F32(s) => assert_eq!(s, values.as_slice()),
                FeatureData::F16(_) => panic!("stored as f32"),
            }
            f.to_f32(&mut out);
            assert_eq!(&out, values);
        }
    }
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["f32.feat"]);
}

#[test]
fn round_trip_f16_within_half_precision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f16.feat");
    let expected = write_cache(&path, 7, 2, Dtype::F16);
    let cache = FeatureCache::open(&path).expect("open");
    assert_eq!(cache.dtype(), Dtype::F16);
    let mut out = Vec::new();
    for (c, views) in expected.iter().enumerate() {
        for (v, values) in views.iter().enumerate() {
            let f = cache.view(c, v);
            assert!(matches!(f.data, FeatureData::F16(s) if s.len() == values.len()));
            f.to_f32(&mut out);
            for (got, want) in out.iter().zip(values) {
                // binary16 has an 11-bit significand: relative error <= 2^-11.
                assert!(
                    (got - want).abs() <= want.abs() * 2f32.powi(-11) + 1e-7,
                    "{got} vs {want}"
                );
                assert_eq!(*got, f16::from_f32(*want).to_f32());
            }
        }
    }
}

#[test]
fn empty_cache_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("empty.feat");
    CacheWriter::create(&path, N_MELS, 2, Dtype::F16)
        .expect("create")
        .finish()
        .expect("finish");
    let cache = FeatureCache::open(&path).expect("open");
    assert!(cache.is_empty());
    let loader = BatchLoader::new(&cache, 4, 1, None).expect("loader");
    assert_eq!(loader.epoch(0).count(), 0);
}

#[test]
fn writer_rejects_bad_input_and_cleans_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("w.feat");
    assert!(matches!(
        CacheWriter::create(&path, 0, 2, Dtype::F32),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        CacheWriter::create(&path, N_MELS, 0, Dtype::F32),
        Err(Error::InvalidInput(_))
    ));
    let mut w = CacheWriter::create(&path, 4, 2, Dtype::F32).expect("create");
    let ok = [0.0f32; 8];
    assert!(w.add_clip("", &[&ok, &ok]).is_err());
    assert!(w.add_clip("a", &[&ok]).is_err());
    assert!(w.add_clip("a", &[&ok, &ok[..3]]).is_err());
    assert!(w.add_clip("a", &[&ok, &[]]).is_err());
    assert!(w.add_clip(&"x".repeat(1025), &[&ok, &ok]).is_err());
    w.add_clip("a", &[&ok, &ok]).expect("valid clip");
    assert!(w.add_clip("a", &[&ok, &ok]).is_err(), "duplicate id");
    assert_eq!(w.len(), 1);
    drop(w);
    // An unfinished writer leaves nothing behind.
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
}

#[test]
fn open_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("foreign.feat");
    std::fs::write(&path, vec![7u8; 500]).expect("write");
    match FeatureCache::open(&path) {
        Err(Error::Corrupt {
            path: p, section, ..
        }) => {
            assert_eq!(p, path);
            assert_eq!(section, "header");
        }
        other => panic!("expected corrupt header, got {other:?}"),
    }
    assert!(matches!(
        FeatureCache::open(&dir.path().join("missing.feat")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn loader_is_deterministic_and_covers_every_clip_once_per_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("l.feat");
    write_cache(&path, 23, 4, Dtype::F16);
    let cache = FeatureCache::open(&path).expect("open");
    let loader = BatchLoader::new(&cache, 5, 42, Some(24)).expect("loader");
    assert_eq!(loader.batches_per_epoch(), 5);

    let e0: Vec<_> = loader.epoch(0).collect();
    let again: Vec<_> = BatchLoader::new(&cache, 5, 42, Some(24))
        .expect("loader")
        .epoch(0)
        .collect();
    assert_eq!(e0, again, "same seed and epoch, same batches");
    let e1: Vec<_> = loader.epoch(1).collect();
    assert_ne!(e0, e1, "epochs shuffle differently");
    let other_seed: Vec<_> = BatchLoader::new(&cache, 5, 43, Some(24))
        .expect("loader")
        .epoch(0)
        .collect();
    assert_ne!(e0, other_seed);

    for epoch in [e0, e1] {
        assert_eq!(
            epoch.iter().map(|b| b.len()).collect::<Vec<_>>(),
            [5, 5, 5, 5, 3]
        );
        let mut seen: Vec<usize> = epoch.iter().flat_map(|b| b.clip_indices.clone()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..23).collect::<Vec<_>>(), "every clip exactly once");
        let mut pairs = BTreeSet::new();
        for b in &epoch {
            for i in 0..b.len() {
                assert_ne!(b.views_a[i], b.views_b[i], "two different views");
                assert!(b.views_a[i] < 4 && b.views_b[i] < 4);
                pairs.insert((b.views_a[i], b.views_b[i]));
            }
        }
        assert!(pairs.len() > 4, "view pairs vary: {pairs:?}");
    }
}

#[test]
fn loader_items_hold_the_right_views() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v.feat");
    let expected = write_cache(&path, 6, 2, Dtype::F32);
    let cache = FeatureCache::open(&path).expect("open");
    // No fixed length: each batch is as long as its longest view, shorter ones zero-padded.
    let loader = BatchLoader::new(&cache, 4, 7, None).expect("loader");
    for b in loader.epoch(3) {
        let longest = b
            .clip_indices
            .iter()
            .flat_map(|&c| [frames_of(c, 0), frames_of(c, 1)])
            .max()
            .expect("non-empty");
        assert_eq!(b.frames, longest);
        assert_eq!(b.a.len(), b.len() * b.frames * N_MELS);
        assert_eq!(b.b.len(), b.a.len());
        for (i, &c) in b.clip_indices.iter().enumerate() {
            for (data, v, len) in [
                (&b.a, b.views_a[i], b.lengths_a[i]),
                (&b.b, b.views_b[i], b.lengths_b[i]),
            ] {
                assert_eq!(len, frames_of(c, v));
                let item = &data[i * b.frames * N_MELS..(i + 1) * b.frames * N_MELS];
                assert_eq!(&item[..len * N_MELS], expected[c][v].as_slice());
                assert!(
                    item[len * N_MELS..].iter().all(|&x| x == 0.0),
                    "zero padding"
                );
            }
        }
    }
}

#[test]
fn loader_crops_and_pads_to_a_fixed_length() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.feat");
    let expected = write_cache(&path, 10, 2, Dtype::F32);
    let cache = FeatureCache::open(&path).expect("open");
    for frames in [1, 25, 30, 64] {
        let loader = BatchLoader::new(&cache, 3, 9, Some(frames)).expect("loader");
        for b in loader.epoch(0) {
            assert_eq!(b.frames, frames);
            assert_eq!(b.a.len(), b.len() * frames * N_MELS);
            for (i, &c) in b.clip_indices.iter().enumerate() {
                for (data, v, len) in [
                    (&b.a, b.views_a[i], b.lengths_a[i]),
                    (&b.b, b.views_b[i], b.lengths_b[i]),
                ] {
                    let total = frames_of(c, v);
                    assert_eq!(len, total.min(frames));
                    let item = &data[i * frames * N_MELS..(i + 1) * frames * N_MELS];
                    // The kept rows are a contiguous window of the stored view.
                    let kept = &item[..len * N_MELS];
                    let found = (0..=total - len)
                        .any(|s| &expected[c][v][s * N_MELS..(s + len) * N_MELS] == kept);
                    assert!(found, "clip {c} view {v}: rows are not a window");
                    assert!(item[len * N_MELS..].iter().all(|&x| x == 0.0));
                }
            }
        }
    }
}

#[test]
fn loader_rejects_bad_parameters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = dir.path().join("one.feat");
    let mut w = CacheWriter::create(&one, N_MELS, 1, Dtype::F16).expect("create");
    w.add_clip("a", &[&features(0, 0, 3)]).expect("add");
    w.finish().expect("finish");
    let cache = FeatureCache::open(&one).expect("open");
    assert!(BatchLoader::new(&cache, 4, 0, None).is_err(), "one view");
    let two = dir.path().join("two.feat");
    write_cache(&two, 2, 2, Dtype::F16);
    let cache = FeatureCache::open(&two).expect("open");
    assert!(BatchLoader::new(&cache, 0, 0, None).is_err());
    assert!(BatchLoader::new(&cache, 4, 0, Some(0)).is_err());
}

/// Loader throughput on a training-sized cache: 20,000 clips x 2 views x 300 frames x 80 mels,
/// f16 (1.9 GB), batch 64, fixed 300 frames. Run with
/// `cargo test -p pairalign-datasets --release --test cache -- --ignored --nocapture`
/// (`PAIRALIGN_BENCH_CLIPS` overrides the clip count).
#[test]
#[ignore = "writes a 1.9 GB cache; run by hand to measure"]
fn measure_loader_throughput() {
    let clips: usize = std::env::var("PAIRALIGN_BENCH_CLIPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let frames = 300;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let path = dir.path().join("bench.feat");
    let t = Instant::now();
    let mut w = CacheWriter::create(&path, N_MELS, 2, Dtype::F16).expect("create");
    let v0 = features(1, 0, frames);
    let v1 = features(2, 1, frames);
    for c in 0..clips {
        w.add_clip(&format!("clip{c}"), &[&v0, &v1]).expect("add");
    }
    let info = w.finish().expect("finish");
    let write_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let cache = FeatureCache::open(&path).expect("open");
    let open_s = t.elapsed().as_secs_f64();
    let loader = BatchLoader::new(&cache, 64, 1, Some(frames)).expect("loader");
    for epoch in 0..2 {
        let t = Instant::now();
        let mut batches = 0usize;
        let mut items = 0usize;
        let mut checksum = 0f64;
        for b in loader.epoch(epoch) {
            batches += 1;
            items += b.len();
            checksum += f64::from(b.a[0]) + f64::from(b.b[b.b.len() - 1]);
        }
        let s = t.elapsed().as_secs_f64();
        assert_eq!(items, clips);
        println!(
            "epoch {epoch}: {batches} batches in {s:.2} s: {:.1} batches/s, {:.0} clips/s \
             ({:.2} GB/s of f32 out) [checksum {checksum:.1}]",
            batches as f64 / s,
            items as f64 / s,
            (items * 2 * frames * N_MELS * 4) as f64 / s / 1e9
        );
    }
    println!(
        "cache: {} clips, {:.2} GB; write {write_s:.1} s ({:.0} MB/s), open+validate {open_s:.2} s",
        info.clip_count,
        info.bytes as f64 / 1e9,
        info.bytes as f64 / write_s / 1e6
    );
}

/// A cache written by format version 1, kept so that later versions prove they still read it.
const CACHE_V1_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/cache-v1.feat"
);

/// The fixture's contents: 3 clips x 2 views of 4 mel bins, 3 to 5 frames, f16.
fn fixture_clip(c: usize, v: usize) -> Vec<f32> {
    let frames = 3 + (c + v) % 3;
    (0..frames * 4)
        .map(|k| (c * 100 + v * 10 + k) as f32 / 8.0 - 20.0)
        .collect()
}

#[test]
#[ignore = "regenerates the frozen fixture; run only when adding a new format version"]
fn regenerate_cache_v1_fixture() {
    let mut w = CacheWriter::create(Path::new(CACHE_V1_FIXTURE), 4, 2, Dtype::F16).expect("create");
    for c in 0..3 {
        let views: Vec<Vec<f32>> = (0..2).map(|v| fixture_clip(c, v)).collect();
        let refs: Vec<&[f32]> = views.iter().map(Vec::as_slice).collect();
        w.add_clip(&format!("clip{c}@0"), &refs).expect("add");
    }
    w.finish().expect("finish");
}

/// The writer still produces the fixture byte for byte: the layout code is shared with the
/// segment format since issue 24, and that move must not change a single byte of new files.
#[test]
fn writer_reproduces_the_v1_fixture_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fixture.feat");
    let mut w = CacheWriter::create(&path, 4, 2, Dtype::F16).expect("create");
    for c in 0..3 {
        let views: Vec<Vec<f32>> = (0..2).map(|v| fixture_clip(c, v)).collect();
        let refs: Vec<&[f32]> = views.iter().map(Vec::as_slice).collect();
        w.add_clip(&format!("clip{c}@0"), &refs).expect("add");
    }
    w.finish().expect("finish");
    let written = std::fs::read(&path).expect("read back");
    let frozen = std::fs::read(CACHE_V1_FIXTURE).expect("read fixture");
    assert_eq!(written, frozen);
}

#[test]
fn frozen_cache_v1_fixture_still_opens() {
    let cache = FeatureCache::open(Path::new(CACHE_V1_FIXTURE)).expect("open the v1 fixture");
    assert_eq!(
        (cache.len(), cache.views_per_clip(), cache.n_mels()),
        (3, 2, 4)
    );
    let mut values = Vec::new();
    for c in 0..3 {
        assert_eq!(cache.clip_id(c), format!("clip{c}@0"));
        for v in 0..2 {
            cache.view(c, v).to_f32(&mut values);
            // Values are multiples of 1/8 within f16's exact range.
            assert_eq!(values, fixture_clip(c, v), "clip {c} view {v}");
        }
    }
}

/// A view played `speed` times faster: frame `j` holds what the clip has at time `j * speed`
/// (every mel bin set to that time, in frames).
fn timed_view(clip_frames: usize, speed: f64) -> Vec<f32> {
    let frames = (clip_frames as f64 / speed).round() as usize;
    (0..frames)
        .flat_map(|j| std::iter::repeat_n((j as f64 * speed) as f32, N_MELS))
        .collect()
}

#[test]
fn content_crop_keeps_one_span_of_the_clip_in_views_of_different_speed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("speed.feat");
    let mut w = CacheWriter::create(&path, N_MELS, 2, Dtype::F32).expect("create");
    for (c, speed) in [0.9, 0.95, 1.05, 1.1].into_iter().enumerate() {
        let views = [timed_view(900, 1.0), timed_view(900, speed)];
        w.add_clip(&format!("clip{c}"), &[&views[0], &views[1]])
            .expect("add");
    }
    w.finish().expect("finish");
    let cache = FeatureCache::open(&path).expect("open");
    let frames = 300;
    // Clip time at the first and last kept frame of each item's two views.
    let ends = |content: bool| -> Vec<[(f32, f32); 2]> {
        let loader = BatchLoader::new(&cache, 4, 5, Some(frames))
            .expect("loader")
            .with_content_crop(content);
        (0..8)
            .flat_map(|epoch| loader.epoch(epoch).collect::<Vec<_>>())
            .flat_map(|b| {
                (0..b.len())
                    .map(|i| {
                        let at = |data: &[f32], len: usize| {
                            let item = &data[i * frames * N_MELS..];
                            (item[0], item[(len - 1) * N_MELS])
                        };
                        [at(&b.a, b.lengths_a[i]), at(&b.b, b.lengths_b[i])]
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let worst = |items: &[[(f32, f32); 2]]| {
        items
            .iter()
            .map(|[a, b]| (a.0 - b.0).abs().max((a.1 - b.1).abs()))
            .fold(0.0f32, f32::max)
    };
    let content = ends(true);
    assert_eq!(content.len(), 32);
    // Within two frames of clip time (rounding of a 1.1-speed view's start and length).
    assert!(worst(&content) <= 2.5, "content crop: {}", worst(&content));
    // The default crop's windows miss each other's ends by up to a tenth of the window.
    assert!(
        worst(&ends(false)) > 10.0,
        "default crop: {}",
        worst(&ends(false))
    );
}
