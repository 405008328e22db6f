//! End-to-end tests of the product path (issue 6): `pairalign index` over the bundled sample
//! archive with the shipped tokenizer, query by example with a modified view of an excerpt
//! through the CLI and the query library, idempotent re-runs, bad files, tokenizer checks, and
//! a SIGKILLed indexer that resumes.

#![allow(clippy::unwrap_used)] // Tests unwrap: a failure is the test failing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{kill_after, pairalign, path, stderr};
use pairalign_datasets::decode::{decode_file, DecodeOptions};
use pairalign_datasets::views::{self, NoiseKind, View};
use pairalign_datasets::{Audio, SAMPLE_RATE};
use pairalign_engine::{SearchOptions, Searcher};
use pairalign_models::Tokenizer;
use serde_json::Value;

mod common;

/// The single JSON object a `--json` command printed.
fn json(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().expect("a JSON line");
    serde_json::from_str(line).expect("valid JSON")
}

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

/// `pairalign index PATHS --db DB --json EXTRA...`.
fn index(db: &Path, paths: &[&Path], extra: &[&str]) -> Output {
    let mut args = vec!["index", "--db", path(db), "--json"];
    args.extend(paths.iter().map(|p| path(p)));
    args.extend_from_slice(extra);
    pairalign(&args)
}

fn docs(db: &Path) -> u64 {
    let out = pairalign(&["info", "--db", path(db), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    json(&out)["docs"].as_u64().unwrap()
}

/// A 3 s excerpt of `source` starting at `start_s`, with `view` applied.
fn excerpt(source: &Path, start_s: f64, view: &View) -> Audio {
    let audio = decode_file(source, &DecodeOptions::default()).unwrap();
    let from = (start_s * f64::from(SAMPLE_RATE)) as usize;
    let excerpt = Audio::new(
        audio.samples[from..from + 3 * SAMPLE_RATE as usize].to_vec(),
        SAMPLE_RATE,
    );
    views::apply(&excerpt, view, 7, &[]).unwrap()
}

/// The modified view of issue 6: noise at 20 dB SNR, speed 1.05, gain -6 dB.
fn issue_view() -> View {
    View::Chain(vec![
        View::Noise {
            kind: NoiseKind::White,
            snr_db: 20.0,
        },
        View::Speed { factor: 1.05 },
        View::Gain { db: -6.0 },
    ])
}

/// Writes `view` of the excerpt of `file` at `start_s` as a WAV clip, searches it through the
/// CLI (`search --db DB CLIP --json`) and the library (`search_audio`, `search_file`), and
/// requires the source file first with a start within 300 ms.
fn assert_found(db: &Path, dir: &Path, file: &str, start_s: f64, view: &View) {
    let source = samples().join(file);
    let id = std::fs::canonicalize(&source).unwrap();
    let audio = excerpt(&source, start_s, view);
    let clip = dir.join(format!("clip-{}.wav", file.replace('/', "_")));
    pairalign_datasets::synth::write_wav_16k(&clip, &audio).unwrap();
    let true_ms = start_s * 1000.0;

    let out = pairalign(&["search", "--db", path(db), path(&clip), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let result = json(&out);
    let top = &result["hits"][0];
    assert_eq!(top["id"], path(&id), "{file} {view:?}: {result}");
    let start = top["start_ms"].as_f64().unwrap();
    assert!((start - true_ms).abs() <= 300.0, "{file}: {result}");
    assert!(top["end_ms"].as_f64().unwrap() > start);
    assert!(top["distance"].is_u64() && top["norm_distance"].is_f64());
    eprintln!("{file} at {true_ms} ms, {view:?}: {top}");

    // The library searches with the shipped tokenizer the database records.
    let db = Searcher::open(db).unwrap();
    let record = db.tokenizer().unwrap().clone();
    let tokenizer =
        pairalign_models::AnyTokenizer::open(&record.id, &pairalign_models::Device::Cpu).unwrap();
    assert_eq!(tokenizer.weights_hash(), record.weights_hash);
    let options = pairalign_query::clip_search_options();
    let outcome = pairalign_query::search_audio(&db, &tokenizer, &audio.samples, &options).unwrap();
    let hit = &outcome.hits[0];
    assert_eq!(hit.id, path(&id));
    assert!(
        (f64::from(hit.start_ms) - true_ms).abs() <= 300.0,
        "{hit:?}"
    );
    let from_file = pairalign_query::search_file(&db, &tokenizer, &clip, &options).unwrap();
    assert_eq!(from_file.hits[0].id, hit.id);
    assert_eq!(from_file.hits[0].start_ms, hit.start_ms);
}

/// Index the sample archive with vq-v1 (`--tokenizer vq`, the comparison tokenizer), re-index it
/// without naming one (nothing added, the database's tokenizer kept), then find excerpts of long
/// files: the source file first, the start within 300 ms, through the CLI and the library. The
/// views here are the ones vq-v1 survives with a margin (measured normalized distance 0.03 to
/// 0.45 against 0.8 or more for other speech); the full view of issue 6, with the default
/// tokenizer, is [`issue_view_finds_the_source`].
#[test]
fn query_by_example_finds_the_source_through_cli_and_library() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let out = index(
        &db,
        &[&samples().join("long")],
        &["--tag", "long", "--tokenizer", "vq"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["indexed"], 4);
    let out = index(&db, &[&samples()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(
        (&report["indexed"], &report["skipped"]),
        (&16.into(), &4.into()),
        "{report}"
    );
    assert_eq!(report["failed"].as_array().unwrap().len(), 0);
    assert!(report["audio_s"].as_f64().unwrap() > 40.0, "{report}");
    assert_eq!(report["tokenizer"]["id"], "vq");

    // Idempotent: a second run, also naming a subfolder again, adds nothing.
    let out = index(&db, &[&samples(), &samples().join("long")], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["indexed"], 0, "{report}");
    assert_eq!(report["skipped"], 24, "{report}");
    assert_eq!(docs(&db), 20);

    let cases = [
        (
            "long/long_espeak-ng_en-us_m3.wav",
            20.0,
            View::Gain { db: 0.0 },
        ),
        (
            "long/long_flite_slt.flac",
            12.5,
            View::Speed { factor: 1.05 },
        ),
        ("long/long_flite_rms.ogg", 12.5, View::Gain { db: 3.0 }),
    ];
    for (file, start_s, view) in &cases {
        assert_found(&db, dir.path(), file, *start_s, view);
    }

    // Metadata: the catalog lists what the filter selects, and a filtered search only returns
    // documents it selects.
    let out = pairalign(&[
        "assets",
        "--db",
        path(&db),
        "--filter",
        "tags:long",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = json(&out);
    assert_eq!(page["total"], 4, "{page}");
    let first = &page["assets"][0];
    assert!(first["duration_s"].as_f64().unwrap() > 20.0, "{first}");
    assert!(
        first["content_hash"].as_str().unwrap().len() == 64,
        "{first}"
    );
    let clip = dir.path().join("clip-long_long_espeak-ng_en-us_m3.wav.wav");
    let source = std::fs::canonicalize(samples().join("long/long_espeak-ng_en-us_m3.wav")).unwrap();
    let search = |filter: &str| {
        let out = pairalign(&[
            "search",
            "--db",
            path(&db),
            path(&clip),
            "--json",
            "--filter",
            filter,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        json(&out)["hits"].as_array().unwrap().clone()
    };
    assert_eq!(search("tags:long")[0]["id"], path(&source));
    // A VQ query is one string: `--phases 1` is the same search, more is a clear error.
    let phases = |n: &str| {
        pairalign(&[
            "search",
            "--db",
            path(&db),
            path(&clip),
            "--json",
            "--phases",
            n,
        ])
    };
    let out = phases("1");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["hits"][0]["id"], path(&source));
    let out = phases("2");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--phases"), "{}", stderr(&out));
    let out = pairalign(&[
        "search",
        "--db",
        path(&db),
        path(&clip),
        "--filter",
        "tags:(",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad filter"), "{}", stderr(&out));

    // Clips outside 0.5 to 60 s are a clear error.
    let short = dir.path().join("short.wav");
    pairalign_datasets::synth::write_wav_16k(&short, &Audio::new(vec![0.1; 4000], SAMPLE_RATE))
        .unwrap();
    let out = pairalign(&["search", "--db", path(&db), path(&short)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("0.5 s to 60 s"), "{}", stderr(&out));
    let tokenizer = pairalign_models::shipped::vq(&pairalign_models::Device::Cpu).unwrap();
    let err = pairalign_query::search_audio(
        &Searcher::open(&db).unwrap(),
        &tokenizer,
        &vec![0.0; 61 * SAMPLE_RATE as usize],
        &SearchOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, pairalign_query::Error::ClipLength { .. }),
        "{err}"
    );
}

/// The excerpts of issue 6's acceptance case: a 3 s stretch of each long sample file.
const ISSUE_EXCERPTS: [(&str, f64); 4] = [
    ("long/long_espeak-ng_en-us_m3.wav", 20.0),
    ("long/long_flite_slt.flac", 12.5),
    ("long/long_flite_rms.ogg", 31.0),
    ("long/long_espeak-ng_en-gb_f2.mp3", 5.0),
];

/// Issue 6's acceptance case with the default tokenizer (pairalign-v1, recorded by a new
/// database indexed without `--tokenizer`): noise at 20 dB SNR, speed 1.05 and gain -6 dB on a
/// 3 s excerpt of each long sample file finds its source first with the start within 300 ms,
/// through the CLI and the library (measured 2026-12-05: start errors 24-283 ms). vq-v1 fails
/// it: white noise at 20 dB alone takes its normalized distance to the source to 0.85-0.92, the
/// level of unrelated speech (measured 2026-11-25).
#[test]
fn issue_view_finds_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let out = index(&db, &[&samples()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        json(&out)["tokenizer"]["id"],
        pairalign_models::shipped::DEFAULT
    );
    assert_eq!(pairalign_models::shipped::DEFAULT, "pairalign-v3");
    for (file, start_s) in ISSUE_EXCERPTS {
        assert_found(&db, dir.path(), file, start_s, &issue_view());
    }
}

/// A corrupt and an empty file among good ones: reported with path and reason, skipped, exit
/// code 1; everything else is indexed.
#[test]
fn bad_files_are_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    std::fs::create_dir_all(archive.join("nested")).unwrap();
    for name in [
        "flite_kal.wav",
        "flite_slt.flac",
        "espeak-ng_en-029_m1.mp3",
        "flite_rms.ogg",
    ] {
        std::fs::copy(
            samples().join("short").join(name),
            archive.join("nested").join(name),
        )
        .unwrap();
    }
    std::fs::write(
        archive.join("broken.wav"),
        b"RIFF\x10\x00\x00\x00WAVEfmt garbage",
    )
    .unwrap();
    std::fs::write(archive.join("empty.flac"), b"").unwrap();
    std::fs::write(archive.join("notes.txt"), b"not audio, not looked at").unwrap();
    let db = dir.path().join("db");
    let out = index(&db, &[&archive], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["indexed"], 4, "{report}");
    let failed: Vec<String> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(failed.len(), 2, "{report}");
    assert!(failed.iter().any(|p| p.ends_with("broken.wav")));
    assert!(failed.iter().any(|p| p.ends_with("empty.flac")));
    assert!(stderr(&out).contains("broken.wav"), "{}", stderr(&out));
    assert_eq!(docs(&db), 4);
}

/// A database of imported tokens records no tokenizer: indexing audio into it or searching it
/// with a clip is a clear error (exit code 2), not a silent mix of two tokenizers' strings.
#[test]
fn another_tokenizer_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let tokens = dir.path().join("tokens.jsonl");
    std::fs::write(&tokens, "{\"id\": \"a\", \"tokens\": [1, 2, 3, 4, 5]}\n").unwrap();
    let out = pairalign(&[
        "import-tokens",
        "--db",
        path(&db),
        "--vocab",
        "512",
        path(&tokens),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = index(&db, &[&samples().join("short")], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("tokenizer"), "{}", stderr(&out));
    let clip = samples().join("short/flite_kal.wav");
    let out = pairalign(&["search", "--db", path(&db), path(&clip)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("tokenizer"), "{}", stderr(&out));
    assert_eq!(docs(&db), 1);
}

/// SIGKILL during indexing loses at most the batch being written: the database opens, holds
/// whole batches only, and indexing again completes it without duplicates.
#[test]
fn killed_indexer_keeps_whole_batches_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let mut killed_while_running = 0;
    for delay_ms in [400u64, 900, 1500] {
        let root = samples();
        let args = [
            "index",
            "--db",
            path(&db),
            "--jobs",
            "1",
            "--batch-files",
            "2",
            "--quiet",
            path(&root),
        ];
        killed_while_running += usize::from(kill_after(&args, delay_ms));
        if db.join("MANIFEST").exists() {
            let n = docs(&db);
            assert_eq!(n % 2, 0, "only whole batches are visible, got {n}");
        }
    }
    let out = index(&db, &[&samples()], &["--batch-files", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(
        report["indexed"].as_u64().unwrap() + report["skipped"].as_u64().unwrap(),
        20,
        "{report}"
    );
    assert_eq!(docs(&db), 20);
    let again = json(&index(&db, &[&samples()], &[]));
    assert_eq!(again["skipped"], 20, "{again}");
    eprintln!("{killed_while_running} of 3 kills landed while the indexer was running");
}

/// Ctrl-C (SIGINT) stops the indexer after the files in flight: it commits them, says so in the
/// summary and exits with 130; a re-run completes the archive.
#[test]
fn interrupted_indexer_commits_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let child = Command::new(env!("CARGO_BIN_EXE_pairalign"))
        .args([
            "index",
            "--db",
            path(&db),
            "--jobs",
            "1",
            "--batch-files",
            "2",
            "--json",
        ])
        .arg(samples())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Interrupt once the database exists, i.e. the run has started.
    for _ in 0..200 {
        if db.join("MANIFEST").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let report = json(&out);
    match out.status.code() {
        Some(130) => assert_eq!(report["interrupted"], true, "{report}"),
        // The run may have finished before the signal arrived on a fast machine.
        Some(0) => assert_eq!(report["indexed"], 20, "{report}"),
        other => panic!("exit code {other:?}: {report}"),
    }
    let committed = docs(&db);
    assert_eq!(committed, report["indexed"].as_u64().unwrap(), "{report}");
    let out = index(&db, &[&samples()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["indexed"].as_u64().unwrap(), 20 - committed);
    assert_eq!(docs(&db), 20);
}

/// `pairalign report` on the samples indexed with the default tokenizer (pairalign-v1): counts
/// agree with the index run, the storage split adds up, against vq-v1 the archive has at least
/// issue 8's 55% fewer tokens, and against its own tokenizer the reduction is exactly 0.
#[test]
fn report_counts_bytes_and_compares_with_vq() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let out = index(&db, &[&samples()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let indexed = json(&out);
    let plot = dir.path().join("report.svg");
    let out = pairalign(&[
        "report",
        "--db",
        path(&db),
        "--vs",
        "vq",
        "--plot",
        path(&plot),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = json(&out);
    assert_eq!(r["docs"], 20);
    let tokens = r["tokens"].as_u64().unwrap();
    assert_eq!(tokens, indexed["tokens"].as_u64().unwrap());
    let hours = r["hours"].as_f64().unwrap();
    assert!((hours * 3600.0 - indexed["audio_s"].as_f64().unwrap()).abs() < 1.0);
    let rate = r["tokens_per_s"].as_f64().unwrap();
    assert!((rate - tokens as f64 / (hours * 3600.0)).abs() < 1e-9);
    let storage = &r["storage"];
    assert_eq!(storage["tokens"].as_u64().unwrap(), 2 * tokens);
    // Segment format v2 packs the times: far below v1's 4 bytes a token, never nothing.
    let times = storage["times"].as_u64().unwrap();
    assert!(
        times > 0 && times < 4 * tokens,
        "{times} bytes of times for {tokens} tokens"
    );
    assert!(storage["catalog"].as_u64().unwrap() > 0);
    let parts: u64 = [
        "tokens",
        "times",
        "postings",
        "documents",
        "catalog",
        "other",
    ]
    .iter()
    .map(|k| storage[k].as_u64().unwrap())
    .sum();
    assert_eq!(parts, r["bytes"].as_u64().unwrap());
    let versus = &r["versus"];
    assert_eq!(versus["tokenizer"], "vq");
    assert_eq!(versus["files"], 20);
    assert_eq!(versus["archive_tokens"].as_u64().unwrap(), tokens);
    let other = versus["other_tokens"].as_u64().unwrap();
    let reduction = versus["reduction_percent"].as_f64().unwrap();
    assert!(
        (reduction - 100.0 * (1.0 - tokens as f64 / other as f64)).abs() < 1e-9,
        "{versus}"
    );
    assert!(reduction >= 55.0, "{versus}");
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("fewer tokens than vq"),
        "{svg}"
    );
    let out = pairalign(&["report", "--db", path(&db), "--vs", "pairalign", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let versus = &json(&out)["versus"];
    assert_eq!(
        versus["other_tokens"].as_u64().unwrap(),
        tokens,
        "same tokenizer, same tokens: {versus}"
    );
    assert_eq!(versus["reduction_percent"].as_f64().unwrap(), 0.0);
    // No database there: a clear error, exit code 2.
    let out = pairalign(&["report", "--db", path(&dir.path().join("none"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("error:"), "{}", stderr(&out));
}

/// Without `--tokenizer`, `search` and a second `index` use the shipped model the database
/// records; a database built with a weights folder needs that folder named.
#[test]
fn commands_default_to_the_tokenizer_the_database_records() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    for name in ["flite_kal.wav", "flite_slt.flac"] {
        std::fs::copy(samples().join("short").join(name), archive.join(name)).unwrap();
    }
    let clip = archive.join("flite_kal.wav");
    let db = dir.path().join("db");
    let out = index(&db, &[&archive], &["--tokenizer", "vq"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = pairalign(&["search", "--db", path(&db), path(&clip), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("tokenizer vq "), "{}", stderr(&out));
    let first = &json(&out)["hits"][0]["id"];
    assert!(
        first.as_str().unwrap().ends_with("flite_kal.wav"),
        "{first}"
    );
    // Indexing again without --tokenizer adds nothing and keeps the database's tokenizer.
    let out = index(&db, &[&archive], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(docs(&db), 2);

    // The same weights decoding otherwise (no fixed grid) are another tokenizer: a database
    // built with that folder must name it.
    let folder = dir.path().join("pairalign-free");
    std::fs::create_dir_all(&folder).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/weights/pairalign-v1");
    std::fs::copy(
        shipped.join("model.safetensors"),
        folder.join("model.safetensors"),
    )
    .unwrap();
    let config = std::fs::read_to_string(shipped.join("config.json")).unwrap();
    std::fs::write(
        folder.join("config.json"),
        config.replace("\"grid_phases\": 4,", ""),
    )
    .unwrap();
    let other = dir.path().join("other");
    let out = index(&other, &[&archive], &["--tokenizer", path(&folder)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = pairalign(&["search", "--db", path(&other), path(&clip)]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not a shipped model"),
        "{}",
        stderr(&out)
    );
    let out = pairalign(&[
        "search",
        "--db",
        path(&other),
        path(&clip),
        "--tokenizer",
        path(&folder),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}
