//! Synthetic speech: the sentence generator, the voice split, missing engines, and a tiny render
//! checked against its manifest and against a second render with the same seed. The render tests
//! need espeak-ng or flite (scripts/setup.sh installs both) and skip with a message without them.

use std::collections::HashSet;
use std::path::Path;

use pairalign_datasets::synth::{
    available_voices, read_manifest, render, sentences, split_voices, Split, SynthOptions, Voice,
    MANIFEST, MAX_WORDS, MIN_WORDS,
};
use pairalign_datasets::Error;

fn engines(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The engines of the default options that are installed here.
fn installed_engines() -> Vec<String> {
    SynthOptions::default()
        .engines
        .into_iter()
        .filter(|e| available_voices(std::slice::from_ref(e)).is_ok())
        .collect()
}

#[test]
fn sentences_are_distinct_deterministic_and_of_bounded_length() {
    let a = sentences(42, 20_000);
    assert_eq!(a.len(), 20_000);
    let distinct: HashSet<&String> = a.iter().collect();
    assert_eq!(distinct.len(), 20_000);
    assert_eq!(a, sentences(42, 20_000));
    assert_eq!(
        a[..100],
        sentences(42, 100)[..],
        "a prefix does not depend on n"
    );
    assert_ne!(a[..100], sentences(43, 100)[..]);
    for s in &a {
        let words = s.split_whitespace().count();
        assert!(
            (MIN_WORDS..=MAX_WORDS).contains(&words),
            "{words} words: {s}"
        );
        assert!(s.ends_with(['.', '?', '!']), "{s}");
    }
    // Varied: many different first words and lengths.
    let firsts: HashSet<&str> = a.iter().filter_map(|s| s.split(' ').next()).collect();
    let lengths: HashSet<usize> = a.iter().map(|s| s.split_whitespace().count()).collect();
    assert!(firsts.len() >= 30, "{} first words", firsts.len());
    assert!(lengths.len() >= 10, "{} lengths", lengths.len());
}

fn fake_voices() -> Vec<Voice> {
    let mut voices: Vec<Voice> = (0..40)
        .map(|i| Voice::new("espeak-ng", &format!("en-us+v{i}")))
        .collect();
    voices.extend(["awb", "kal", "kal16", "rms", "slt"].map(|n| Voice::new("flite", n)));
    voices.push(Voice::new("piper", "only"));
    voices
}

#[test]
fn voice_split_is_disjoint_complete_per_engine_and_deterministic() {
    let voices = fake_voices();
    let split = split_voices(&voices, 7, 0.2);
    let train: HashSet<&Voice> = split.train.iter().collect();
    assert!(split.heldout.iter().all(|v| !train.contains(v)));
    assert_eq!(split.train.len() + split.heldout.len(), voices.len());
    let heldout_of = |engine: &str| split.heldout.iter().filter(|v| v.engine == engine).count();
    assert_eq!(heldout_of("espeak-ng"), 8);
    assert_eq!(heldout_of("flite"), 1);
    assert_eq!(
        heldout_of("piper"),
        0,
        "an engine's only voice stays in train"
    );
    assert_eq!(split, split_voices(&voices, 7, 0.2));
    let mut shuffled = voices.clone();
    shuffled.reverse();
    assert_eq!(
        split,
        split_voices(&shuffled, 7, 0.2),
        "input order does not matter"
    );
    assert_ne!(split.heldout, split_voices(&voices, 8, 0.2).heldout);
    assert!(split_voices(&voices, 7, 0.0).heldout.is_empty());
}

#[test]
fn unknown_engine_is_a_missing_engine_with_an_install_hint() {
    let err = available_voices(&engines(&["no-such-engine"])).expect_err("unknown engine");
    assert!(
        matches!(&err, Error::MissingEngine { engine, hint }
        if engine == "no-such-engine" && hint.contains("scripts/setup.sh")),
        "{err}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let options = SynthOptions {
        out: dir.path().to_path_buf(),
        hours: 0.001,
        engines: engines(&["no-such-engine"]),
        ..SynthOptions::default()
    };
    let err = render(&options, |_| {}).expect_err("nothing to render with");
    assert!(
        matches!(&err, Error::MissingEngine { hint, .. } if hint.contains("scripts/setup.sh")),
        "{err}"
    );
    assert!(!dir.path().join(MANIFEST).exists());
}

#[test]
fn installed_engines_have_at_least_30_voices() {
    let installed = installed_engines();
    if installed.len() < 2 {
        eprintln!("skipping: espeak-ng and flite are not both installed (run scripts/setup.sh)");
        return;
    }
    let voices = available_voices(&installed).expect("voices");
    assert!(voices.len() >= 30, "{} voices", voices.len());
    let engines: HashSet<&str> = voices.iter().map(|v| v.engine.as_str()).collect();
    assert!(engines.len() >= 2);
    assert!(
        voices.contains(&Voice::new("espeak-ng", "en-us+f3")),
        "{voices:?}"
    );
}

fn tiny_render(out: &Path, requested: Vec<String>) -> pairalign_datasets::synth::SynthReport {
    let options = SynthOptions {
        out: out.to_path_buf(),
        hours: 0.006,
        seed: 11,
        engines: requested,
        jobs: 2,
        ..SynthOptions::default()
    };
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let report = render(&options, |p| {
        assert!(p.done <= p.planned);
        calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
    .expect("render");
    assert_eq!(calls.into_inner(), report.utterances);
    report
}

#[test]
fn tiny_render_matches_its_manifest_and_repeats_byte_for_byte() {
    let installed = installed_engines();
    if installed.is_empty() {
        eprintln!("skipping: neither espeak-ng nor flite is installed (run scripts/setup.sh)");
        return;
    }
    let mut requested = installed.clone();
    requested.push("no-such-engine".to_string());
    let (a, b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let report = tiny_render(a.path(), requested.clone());
    assert_eq!(report.skipped_engines.len(), 1);
    assert_eq!(report.skipped_engines[0].0, "no-such-engine");
    assert!(report.utterances >= 3, "{report:?}");
    assert!((report.seconds - 0.006 * 3600.0).abs() < 12.0, "{report:?}");

    let entries = read_manifest(&a.path().join(MANIFEST)).expect("manifest");
    assert_eq!(entries.len(), report.utterances);
    let heldout: HashSet<&String> = report.voices_heldout.iter().collect();
    for e in &entries {
        let reader = hound::WavReader::open(a.path().join(&e.path)).expect("wav");
        let spec = reader.spec();
        assert_eq!(
            (spec.sample_rate, spec.channels, spec.bits_per_sample),
            (16_000, 1, 16)
        );
        assert_eq!(reader.duration() as f64 / 16_000.0, e.duration, "{}", e.id);
        assert!(e.duration > 0.5, "{e:?}");
        let id = format!("{}:{}", e.engine, e.voice);
        assert_eq!(heldout.contains(&id), e.split == Split::Heldout, "{id}");
        assert!(installed.contains(&e.engine));
    }

    tiny_render(b.path(), requested);
    let bytes = |dir: &Path, rel: &str| std::fs::read(dir.join(rel)).expect("read");
    assert_eq!(bytes(a.path(), MANIFEST), bytes(b.path(), MANIFEST));
    for e in &entries {
        assert!(
            bytes(a.path(), &e.path) == bytes(b.path(), &e.path),
            "{} differs",
            e.path
        );
    }
}

#[test]
fn k_voices_per_sentence_render_each_sentence_with_k_distinct_held_out_voices() {
    let installed = installed_engines();
    if installed.is_empty() {
        eprintln!("skipping: neither espeak-ng nor flite is installed (run scripts/setup.sh)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let k = 3;
    let options = SynthOptions {
        out: dir.path().to_path_buf(),
        hours: 0.005,
        seed: 4,
        engines: installed,
        jobs: 2,
        voices_per_sentence: k,
        only: Some(Split::Heldout),
        ..SynthOptions::default()
    };
    let report = render(&options, |_| {}).expect("render");
    let entries = read_manifest(&dir.path().join(MANIFEST)).expect("manifest");
    assert_eq!(entries.len(), report.utterances);
    assert_eq!(report.sentences * k, report.utterances, "{report:?}");
    assert!(report.sentences >= 2, "{report:?}");
    let texts: HashSet<&str> = entries.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts.len(), report.sentences);
    for text in texts {
        let said: Vec<_> = entries.iter().filter(|e| e.text == text).collect();
        assert_eq!(said.len(), k, "{text}");
        let voices: HashSet<(&str, &str)> = said
            .iter()
            .map(|e| (e.engine.as_str(), e.voice.as_str()))
            .collect();
        assert_eq!(voices.len(), k, "{text}: {voices:?}");
        assert!(said.iter().all(|e| e.split == Split::Heldout), "{said:?}");
    }
}
