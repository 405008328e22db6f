//! Corpus readers on tiny fake layouts written to temp dirs (plain folder, LibriSpeech, TIMIT,
//! Speech Commands, synthetic manifest), and the clip tail rule.

use std::fs;
use std::path::{Path, PathBuf};

use pairalign_datasets::corpus::{
    clips, read_folder, read_librispeech, read_manifest, read_manifest_split, read_speech_commands,
    read_timit, Split, Utterance, DEFAULT_WINDOW_S,
};
use pairalign_datasets::{Error, Result};

/// Writes a 16 kHz mono 16-bit WAV of `seconds`.
fn write_wav(path: &Path, seconds: f64) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    for i in 0..(seconds * 16_000.0).round() as usize {
        w.write_sample(((i % 100) as i16 - 50) * 100)
            .expect("sample");
    }
    w.finalize().expect("finalize");
}

/// Writes `bytes` zero bytes (a stand-in audio file for probes that use the size).
fn write_blob(path: &Path, bytes: usize) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, vec![0u8; bytes]).expect("write");
}

/// Fake probe: RIFF WAV files through their header (hound), anything else by size as 16-bit
/// 16 kHz mono (32,000 bytes a second).
fn fake_probe(path: &Path) -> Result<f64> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.starts_with(b"RIFF") {
        let r = hound::WavReader::new(&bytes[..]).map_err(|e| Error::NotAudio {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        return Ok(f64::from(r.duration()) / f64::from(r.spec().sample_rate));
    }
    Ok(bytes.len() as f64 / 32_000.0)
}

fn ids(utterances: &[Utterance]) -> Vec<&str> {
    utterances.iter().map(|u| u.id.as_str()).collect()
}

/// Whether permissions fail to stop reads here (running as root).
fn is_root() -> bool {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("probe");
    fs::write(&p, b"x").expect("write");
    set_mode(&p, 0o000);
    let readable = fs::read(&p).is_ok();
    set_mode(&p, 0o644);
    readable
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn folder_reads_every_audio_file_sorted_with_ids_and_speakers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("audio");
    write_wav(&root.join("bob/take2.wav"), 0.5);
    write_wav(&root.join("alice/take1.wav"), 1.25);
    write_wav(&root.join("alice/deep/x.WAV"), 0.25);
    write_blob(&root.join("carol/song.flac"), 32_000);
    write_blob(&root.join("carol/notes.txt"), 10);
    write_wav(&root.join("top.wav"), 0.125);

    let corpus = read_folder(&root, &fake_probe).expect("read");
    assert_eq!(corpus.problems, vec![]);
    assert_eq!(
        ids(&corpus.utterances),
        [
            "alice/deep/x",
            "alice/take1",
            "bob/take2",
            "carol/song",
            "top"
        ]
    );
    let u = &corpus.utterances[1];
    assert_eq!(u.speaker, "alice");
    assert_eq!(u.path, root.join("alice/take1.wav"));
    assert!((u.duration_s - 1.25).abs() < 1e-9);
    assert_eq!(corpus.utterances[0].speaker, "deep");
    assert!((corpus.utterances[3].duration_s - 1.0).abs() < 1e-9);
    assert_eq!(corpus.utterances[4].speaker, "audio");
    assert_eq!(u.transcript, None);
}

#[test]
fn folder_reports_loops_dangling_links_unreadable_entries_and_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("audio");
    write_wav(&root.join("s1/a.wav"), 0.5);
    write_blob(&root.join("s1/a.flac"), 100);
    // A directory symlink back to its ancestor: a loop.
    std::os::unix::fs::symlink(&root, root.join("s1/loop")).expect("symlink");
    // A link to nothing.
    std::os::unix::fs::symlink(root.join("missing.wav"), root.join("s1/dangling.wav"))
        .expect("symlink");
    // A file the probe cannot read (unless we are root), and one it cannot parse.
    write_wav(&root.join("s2/locked.wav"), 0.5);
    set_mode(&root.join("s2/locked.wav"), 0o000);
    fs::write(root.join("s2/bad.wav"), b"RIFF garbage").expect("write");

    let corpus = read_folder(&root, &fake_probe).expect("a broken entry is not fatal");
    set_mode(&root.join("s2/locked.wav"), 0o644);
    let problem = |needle: &str| {
        corpus
            .problems
            .iter()
            .any(|(p, why)| p.to_string_lossy().contains(needle) || why.contains(needle))
    };
    assert!(
        corpus
            .problems
            .iter()
            .any(|(p, why)| p.ends_with("s1/loop") && why.starts_with("symlink loop")),
        "{:?}",
        corpus.problems
    );
    assert!(problem("dangling.wav"), "{:?}", corpus.problems);
    assert!(problem("bad.wav"), "{:?}", corpus.problems);
    assert!(problem("duplicate id \"s1/a\""), "{:?}", corpus.problems);
    let mut expected = vec!["s1/a"];
    if is_root() {
        expected.push("s2/locked");
    } else {
        assert!(problem("locked.wav"), "{:?}", corpus.problems);
    }
    assert_eq!(ids(&corpus.utterances), expected);
    // The first path in order wins a duplicate id.
    assert_eq!(corpus.utterances[0].path, root.join("s1/a.flac"));
}

#[test]
fn folder_with_an_unreadable_root_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = read_folder(&dir.path().join("nope"), &fake_probe).expect_err("missing root");
    assert!(e.to_string().contains("nope"), "{e}");
}

#[test]
fn unreadable_directory_is_reported_unless_root() {
    if is_root() {
        // chmod does not stop root; the dangling-link case above covers unreadable entries.
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("audio");
    write_wav(&root.join("ok/a.wav"), 0.1);
    write_wav(&root.join("closed/b.wav"), 0.1);
    set_mode(&root.join("closed"), 0o000);
    let corpus = read_folder(&root, &fake_probe).expect("read");
    set_mode(&root.join("closed"), 0o755);
    assert_eq!(ids(&corpus.utterances), ["ok/a"]);
    assert!(corpus.problems.iter().any(|(p, _)| p.ends_with("closed")));
}

#[test]
fn librispeech_layout_with_transcripts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("train-clean-100");
    let chapter = root.join("84/121123");
    write_blob(&chapter.join("84-121123-0001.flac"), 64_000);
    write_blob(&chapter.join("84-121123-0000.flac"), 32_000);
    write_blob(&chapter.join("84-121123-0002.flac"), 16_000);
    fs::write(
        chapter.join("84-121123.trans.txt"),
        "84-121123-0000 GO DO YOU HEAR\n84-121123-0001 BUT IN LESS THAN FIVE MINUTES\n\
         84-121123-0009 NO SUCH FILE\n",
    )
    .expect("write");
    let other = root.join("1272/128104");
    write_blob(&other.join("1272-128104-0000.flac"), 8_000);
    fs::write(
        other.join("1272-128104.trans.txt"),
        "1272-128104-0000 MISTER QUILTER IS THE APOSTLE\n",
    )
    .expect("write");
    write_blob(&root.join("README.flac"), 10);

    let corpus = read_librispeech(&root, &fake_probe).expect("read");
    assert_eq!(
        ids(&corpus.utterances),
        [
            "1272-128104-0000",
            "84-121123-0000",
            "84-121123-0001",
            "84-121123-0002"
        ]
    );
    let u = &corpus.utterances[1];
    assert_eq!(u.speaker, "84");
    assert_eq!(u.transcript.as_deref(), Some("GO DO YOU HEAR"));
    assert!((u.duration_s - 1.0).abs() < 1e-9);
    assert_eq!(corpus.utterances[0].speaker, "1272");
    assert_eq!(corpus.utterances[3].transcript, None);
    let mut why: Vec<&str> = corpus.problems.iter().map(|(_, w)| w.as_str()).collect();
    why.sort();
    assert_eq!(
        why,
        [
            "no transcript line for this utterance",
            "transcript for 84-121123-0009 but no audio file"
        ]
    );
}

#[test]
fn speech_commands_layout_gives_word_and_speaker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_blob(&root.join("yes/0a7c2a8d_nohash_0.wav"), 32_000);
    write_blob(&root.join("yes/0a7c2a8d_nohash_1.wav"), 32_000);
    write_blob(&root.join("no/9f2d_nohash_0.wav"), 16_000);
    write_blob(&root.join("no/stray.wav"), 16_000);
    write_blob(&root.join("_background_noise_/white_noise.wav"), 64_000);
    write_blob(&root.join("loose_nohash_0.wav"), 16_000);
    write_blob(&root.join("yes/deeper/x_nohash_0.wav"), 16_000);
    fs::write(root.join("LICENSE"), "CC BY 4.0").expect("write");

    let corpus = read_speech_commands(root, &fake_probe).expect("read");
    let got: Vec<(&str, &str, Option<&str>)> = corpus
        .utterances
        .iter()
        .map(|u| (u.id.as_str(), u.speaker.as_str(), u.transcript.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("no/9f2d_nohash_0", "9f2d", Some("no")),
            ("yes/0a7c2a8d_nohash_0", "0a7c2a8d", Some("yes")),
            ("yes/0a7c2a8d_nohash_1", "0a7c2a8d", Some("yes")),
        ]
    );
    assert!((corpus.utterances[1].duration_s - 1.0).abs() < 1e-9);
    assert_eq!(corpus.problems.len(), 1, "{:?}", corpus.problems);
    assert!(corpus.problems[0].0.ends_with("no/stray.wav"));
}

#[test]
fn timit_layout_with_alignments_in_seconds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("TIMIT");
    let spk = root.join("TRAIN/DR1/FCJF0");
    // The probe is fake, so the .WAV content need not be SPHERE.
    write_blob(&spk.join("SA1.WAV"), 46_797 * 2);
    fs::write(
        spk.join("SA1.TXT"),
        "0 46797 She had your dark suit in greasy wash water all year.\n",
    )
    .expect("write");
    fs::write(spk.join("SA1.WRD"), "3050 5723 she\n5723 10337 had\n").expect("write");
    fs::write(
        spk.join("SA1.PHN"),
        "0 3050 h#\n3050 4559 sh\n4559 5723 ix\n",
    )
    .expect("write");
    let test = root.join("TEST/DR8/MJLN0");
    write_blob(&test.join("SX9.WAV"), 32_000);
    fs::write(test.join("SX9.WRD"), "0 1600 one\n").expect("write");
    fs::write(test.join("SX9.PHN"), "0 oops\n").expect("write");
    fs::write(test.join("SX9.TXT"), "0 16000 One.\n").expect("write");

    let corpus = read_timit(&root, &fake_probe).expect("read");
    assert_eq!(
        ids(&corpus.utterances),
        ["TEST/DR8/MJLN0/SX9", "TRAIN/DR1/FCJF0/SA1"]
    );
    let u = &corpus.utterances[1];
    assert_eq!(u.speaker, "FCJF0");
    assert_eq!(
        u.transcript.as_deref(),
        Some("She had your dark suit in greasy wash water all year.")
    );
    assert_eq!(u.words.len(), 2);
    assert_eq!(u.words[1].label, "had");
    assert!((u.words[1].start_s - 5723.0 / 16_000.0).abs() < 1e-12);
    assert!((u.words[1].end_s - 10337.0 / 16_000.0).abs() < 1e-12);
    assert_eq!(u.phones.len(), 3);
    assert_eq!(u.phones[0].label, "h#");
    assert!((u.duration_s - 46_797.0 / 16_000.0).abs() < 1e-9);
    // The malformed .PHN is reported; the utterance stays, without phones.
    let sx9 = &corpus.utterances[0];
    assert!(sx9.phones.is_empty());
    assert_eq!(sx9.words.len(), 1);
    assert_eq!(corpus.problems.len(), 1, "{:?}", corpus.problems);
    assert!(corpus.problems[0].0.ends_with("SX9.PHN"));
}

#[test]
fn manifest_entries_become_utterances() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("synth/manifest.jsonl");
    fs::create_dir_all(manifest.parent().expect("parent")).expect("mkdir");
    fs::write(
        &manifest,
        concat!(
            r#"{"id":"u2","text":"hello there","engine":"espeak-ng","voice":"en-us","rate":160,"pitch":50,"duration":1.5,"split":"train","path":"wav/u2.wav"}"#,
            "\n",
            r#"{"id":"u1","text":"good day","engine":"flite","voice":"slt","rate":170,"pitch":null,"duration":2.25,"split":"heldout","path":"wav/u1.wav"}"#,
            "\n\n{not json}\n",
            r#"{"id":"u3","text":"x","engine":"flite","voice":"slt","rate":170,"pitch":null,"duration":-1,"split":"train","path":"u3.wav"}"#,
            "\n"
        ),
    )
    .expect("write");
    let corpus = read_manifest(&manifest).expect("read");
    assert_eq!(ids(&corpus.utterances), ["u1", "u2"]);
    let u = &corpus.utterances[0];
    assert_eq!(u.speaker, "flite/slt");
    assert_eq!(u.transcript.as_deref(), Some("good day"));
    assert_eq!(u.path, dir.path().join("synth/wav/u1.wav"));
    assert!((u.duration_s - 2.25).abs() < 1e-12);
    assert_eq!(corpus.problems.len(), 2, "{:?}", corpus.problems);
    assert!(corpus.problems[0].1.starts_with("line 4:"));
    assert!(corpus.problems[1].1.starts_with("line 5:"));
    assert!(read_manifest(&dir.path().join("none.jsonl")).is_err());
    let train = read_manifest_split(&manifest, Some(Split::Train)).expect("read train");
    assert_eq!(ids(&train.utterances), ["u2"]);
    let heldout = read_manifest_split(&manifest, Some(Split::Heldout)).expect("read heldout");
    assert_eq!(ids(&heldout.utterances), ["u1"]);
    assert_eq!(
        heldout.problems.len(),
        2,
        "bad lines are reported whatever the split"
    );
}

fn utt(id: &str, duration_s: f64) -> Utterance {
    Utterance {
        id: id.into(),
        speaker: "s".into(),
        path: PathBuf::from(format!("{id}.wav")),
        duration_s,
        transcript: None,
        words: vec![],
        phones: vec![],
    }
}

/// (utterance, start_ms, duration_ms, short) of each clip.
fn shape(utts: &[Utterance], window: f64, hop: Option<f64>) -> Vec<(usize, u64, u64, bool)> {
    clips(utts, window, hop)
        .expect("valid window and hop")
        .iter()
        .map(|c| {
            let start_ms = (c.start_s * 1000.0).round() as u64;
            assert_eq!(c.id, format!("{}@{start_ms}", utts[c.utterance].id));
            (
                c.utterance,
                start_ms,
                (c.duration_s * 1000.0).round() as u64,
                c.short,
            )
        })
        .collect()
}

#[test]
fn clips_cover_the_edge_cases() {
    let w = DEFAULT_WINDOW_S;
    // Exactly one window.
    assert_eq!(shape(&[utt("a", 3.0)], w, None), [(0, 0, 3000, false)]);
    // Shorter than the window: kept whole and marked short.
    assert_eq!(shape(&[utt("a", 1.2)], w, None), [(0, 0, 1200, true)]);
    // A tail after full windows is dropped.
    assert_eq!(
        shape(&[utt("a", 7.5)], w, None),
        [(0, 0, 3000, false), (0, 3000, 3000, false)]
    );
    // A duration that misses the window by rounding noise still holds it.
    assert_eq!(shape(&[utt("a", 6.0 - 1e-9)], w, None).len(), 2);
    // Hop < window: overlapping windows.
    assert_eq!(
        shape(&[utt("a", 4.0)], w, Some(0.5)),
        [
            (0, 0, 3000, false),
            (0, 500, 3000, false),
            (0, 1000, 3000, false)
        ]
    );
    // Hop > window: gaps between windows, the tail dropped.
    assert_eq!(
        shape(&[utt("a", 10.0)], w, Some(4.0)),
        [(0, 0, 3000, false), (0, 4000, 3000, false)]
    );
    // Hop 0.1 s over 3.3 s: 4 windows with exact millisecond ids (no drift).
    let c = clips(&[utt("a", 3.3)], w, Some(0.1)).unwrap();
    assert_eq!(
        c.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["a@0", "a@100", "a@200", "a@300"]
    );
    // Zero-length utterances give nothing; indices point into the input.
    assert_eq!(
        shape(&[utt("z", 0.0), utt("b", 3.5)], w, None),
        [(1, 0, 3000, false)]
    );
}

#[test]
fn clips_reject_bad_windows_and_hops() {
    for (window, hop) in [
        (3.0, Some(0.0)),
        (0.0, None),
        (-1.0, None),
        (f64::NAN, None),
        (3.0, Some(f64::INFINITY)),
    ] {
        let err = clips(&[utt("a", 3.0)], window, hop).unwrap_err();
        assert!(err.to_string().contains("must be positive"), "{err}");
    }
}

/// Regression: the corpus reader refused every flite line of a real synth manifest (pitch null).
#[test]
fn reads_what_the_synthesizer_writes() {
    use pairalign_datasets::synth::{write_manifest, ManifestEntry, Split};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("manifest.jsonl");
    let entry = |id: &str, engine: &str, pitch: Option<u32>, split: Split| ManifestEntry {
        id: id.into(),
        text: "a sentence".into(),
        engine: engine.into(),
        voice: "v".into(),
        rate: 160,
        pitch,
        duration: 2.5,
        split,
        path: format!("wav/{id}.wav"),
    };
    write_manifest(
        &path,
        &[
            entry("u1", "flite", None, Split::Train),
            entry("u2", "espeak-ng", Some(50), Split::Heldout),
        ],
    )
    .expect("write");
    let corpus = read_manifest(&path).expect("read");
    assert!(corpus.problems.is_empty(), "{:?}", corpus.problems);
    assert_eq!(corpus.utterances.len(), 2);
    assert_eq!(corpus.utterances[0].speaker, "flite/v");
}
