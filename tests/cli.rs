//! End-to-end tests of the `pairalign` binary: the interfaces other tools depend on
//! (import-tokens, search --json, info --json, delete, compact, synth-tokens, tokenize, train vq,
//! eval retrieval) and their exit codes.

#![allow(clippy::unwrap_used)] // Tests unwrap: a failure is the test failing.

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{json_lines, kill_after, pairalign, path};
use serde_json::Value;

mod common;

/// Runs `pairalign search --db DB ARGS... --json`, requires success, returns one value per query.
fn search_json(db: &Path, args: &[&str]) -> Vec<Value> {
    let mut full = vec!["search", "--db", path(db)];
    full.extend_from_slice(args);
    full.push("--json");
    let out = pairalign(&full);
    assert!(
        out.status.success(),
        "{full:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&out)
}

/// Runs `pairalign synth-tokens --out OUT ARGS...` and requires success.
fn synth_tokens(out: &Path, args: &[&str]) {
    let mut full = vec!["synth-tokens", "--out", path(out)];
    full.extend_from_slice(args);
    let result = pairalign(&full);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
}

#[test]
fn import_search_info_delete_compact() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let file = dir.path().join("t.jsonl");
    std::fs::write(
        &file,
        concat!(
            "{\"id\": \"a\", \"tokens\": [3, 17, 17, 4, 8, 9], \"times_ms\": [0, 80, 160, 240, 320, 400], \"duration_ms\": 480}\n",
            "{\"id\": \"b\", \"tokens\": [5, 3, 17, 4, 8]}\n",
            "{\"id\": \"a\", \"tokens\": [1]}\n",
            "{\"id\": \"c\", \"tokens\": [2000]}\n",
            "{oops\n",
        ),
    )
    .unwrap();
    let out = pairalign(&[
        "import-tokens",
        "--db",
        path(&db),
        path(&file),
        "--vocab",
        "64",
        "--q",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1), "some lines failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in [":3:", ":4:", ":5:"] {
        assert!(stderr.contains(line), "stderr names line {line}: {stderr}");
    }

    let results = search_json(&db, &["--tokens", "3 17 4 8", "--k", "1"]);
    assert_eq!(results.len(), 1);
    let hits = results[0]["hits"].as_array().unwrap();
    assert!(results[0]["took_ms"].as_f64().unwrap() >= 0.0);
    let found: Vec<(&str, u64)> = hits
        .iter()
        .map(|h| (h["id"].as_str().unwrap(), h["distance"].as_u64().unwrap()))
        .collect();
    assert_eq!(found, [("b", 0), ("a", 1)]);
    let a = &hits[1];
    for key in ["start", "end", "start_ms", "end_ms", "norm_distance"] {
        assert!(a.get(key).is_some(), "hit has {key}");
    }
    // Times come from the document's times_ms (80 ms apart); the end of the document is its duration.
    assert_eq!(
        a["start_ms"].as_u64().unwrap(),
        80 * a["start"].as_u64().unwrap()
    );
    assert_eq!(a["end"], 5);
    assert_eq!(a["end_ms"], 400);
    assert_eq!(a["norm_distance"], 0.25);

    // A fraction below 1 is relative to the query length: 0.2 * 4 = 0 edits.
    let results = search_json(&db, &["--tokens", "3 17 4 8", "--k", "0.2"]);
    assert_eq!(results[0]["hits"].as_array().unwrap().len(), 1);

    // `--k none`: the nearest documents however far, exactly, best first (every live document
    // competes, one hit each); a budget finds none of them for this query.
    let far = ["--tokens", "40 41 42 43 44 45"];
    let bounded = search_json(&db, &[far[0], far[1], "--k", "2"]);
    assert!(bounded[0]["hits"].as_array().unwrap().is_empty());
    let results = search_json(&db, &[far[0], far[1], "--k", "none", "--top", "5"]);
    let hits = results[0]["hits"].as_array().unwrap();
    let mut ids: Vec<&str> = hits.iter().map(|h| h["id"].as_str().unwrap()).collect();
    let distances: Vec<u64> = hits
        .iter()
        .map(|h| h["distance"].as_u64().unwrap())
        .collect();
    assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");
    assert!(distances.iter().all(|&d| d > 2), "{distances:?}");
    ids.sort_unstable();
    assert_eq!(ids, ["a", "b"], "both live documents, once each");

    // Without --json: one line per hit, for people.
    let out = pairalign(&[
        "search",
        "--db",
        path(&db),
        "--tokens",
        "3 17 4 8",
        "--k",
        "1",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 hit(s)"), "{text}");
    assert!(
        text.contains("   1. b  ") && text.contains("distance 0 (0.00)"),
        "{text}"
    );

    let queries = dir.path().join("q.jsonl");
    std::fs::write(
        &queries,
        "{\"id\": \"q1\", \"tokens\": [5, 3]}\n{\"id\": \"q2\", \"tokens\": [8, 9]}\n",
    )
    .unwrap();
    let results = search_json(&db, &["--tokens-file", path(&queries), "--k", "0"]);
    assert_eq!(results.len(), 2);
    assert_eq!(results[1]["query"], "q2");
    assert_eq!(results[1]["hits"][0]["id"], "a");

    let out = pairalign(&["info", "--db", path(&db), "--json"]);
    let info = &json_lines(&out)[0];
    assert_eq!(
        (
            info["segments"].as_u64(),
            info["docs"].as_u64(),
            info["tokens"].as_u64()
        ),
        (Some(1), Some(2), Some(11))
    );
    assert!(info["bytes"].as_u64().unwrap() > 0);

    let out = pairalign(&["delete", "--db", path(&db), "a", "zzz"]);
    assert_eq!(out.status.code(), Some(1), "a missing id is reported");
    let out = pairalign(&["compact", "--db", path(&db)]);
    assert!(out.status.success());
    let out = pairalign(&["info", "--db", path(&db), "--json"]);
    assert_eq!(json_lines(&out)[0]["docs"], 1);
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing");
    let out = pairalign(&["search", "--db", path(&missing), "--tokens", "1 2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a PairAlign database"));
    // Grid phases are for clips; token queries are searched as given.
    let out = pairalign(&[
        "search",
        "--db",
        path(&missing),
        "--tokens",
        "1 2",
        "--phases",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--phases applies to a clip"));

    let db = dir.path().join("db");
    let file = dir.path().join("t.jsonl");
    std::fs::write(&file, "{\"id\": \"a\", \"tokens\": [1, 2, 3]}\n").unwrap();
    assert!(
        pairalign(&["import-tokens", "--db", path(&db), path(&file)])
            .status
            .success()
    );
    for (args, message) in [
        (vec!["--tokens", "1 x"], "not a symbol"),
        (vec!["--tokens", "1 2", "--k=-3"], "k must be"),
        (vec!["--tokens", "1 2", "--k", "1.5"], "k must be"),
        (vec!["--tokens", ""], "no tokens"),
    ] {
        let mut full = vec!["search", "--db", path(&db)];
        full.extend(args);
        let out = pairalign(&full);
        assert_eq!(out.status.code(), Some(2), "{full:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{full:?}: {stderr}");
        assert!(!stderr.contains("panicked"));
    }
}

#[test]
fn synthetic_archive_finds_its_queries() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = dir.path().join("db");
    synth_tokens(
        &data,
        &[
            "--docs",
            "300",
            "--len",
            "200",
            "--queries",
            "5",
            "--noise",
            "0.1",
        ],
    );
    let out = pairalign(&[
        "import-tokens",
        "--db",
        path(&db),
        path(&data.join("archive.jsonl")),
        "--vocab",
        "512",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let queries = data.join("queries.jsonl");
    for result in search_json(&db, &["--tokens-file", path(&queries)]) {
        // Query ids say where the query was cut from: q<i>-from-<doc>-at-<start>.
        let query = result["query"].as_str().unwrap();
        let source = query
            .split("-from-")
            .nth(1)
            .unwrap()
            .split("-at-")
            .next()
            .unwrap();
        assert_eq!(result["hits"][0]["id"], source, "{result}");
    }
}

#[test]
fn synth_reports_missing_engines_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = pairalign(&[
        "synth",
        "--out",
        path(dir.path()),
        "--hours",
        "0.001",
        "--engines",
        "no-such-engine",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not installed") && stderr.contains("scripts/setup.sh"),
        "{stderr}"
    );
}

/// SIGKILL during an import loses at most the batch being written: the database opens, holds
/// whole batches only, and importing the file again completes it.
#[test]
fn killed_import_keeps_whole_batches_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = dir.path().join("db");
    synth_tokens(&data, &["--docs", "60000", "--len", "40", "--queries", "1"]);
    let archive = data.join("archive.jsonl");
    let mut killed_while_running = 0;
    for delay_ms in [150u64, 300, 600] {
        let args = [
            "import-tokens",
            "--db",
            path(&db),
            "--vocab",
            "512",
            "--batch-docs",
            "2000",
            path(&archive),
        ];
        killed_while_running += usize::from(kill_after(&args, delay_ms));
        // On a loaded machine the first kill can land before the database exists.
        if !db.join("MANIFEST").exists() {
            continue;
        }
        let out = pairalign(&["info", "--db", path(&db), "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let docs = json_lines(&out)[0]["docs"].as_u64().unwrap();
        assert_eq!(docs % 2000, 0, "only whole batches are visible, got {docs}");
    }
    // Re-importing completes the archive; ids already there are reported, not duplicated.
    let out = pairalign(&[
        "import-tokens",
        "--db",
        path(&db),
        "--batch-docs",
        "2000",
        path(&archive),
    ]);
    assert!(out.status.code() == Some(0) || out.status.code() == Some(1));
    let out = pairalign(&["info", "--db", path(&db), "--json"]);
    assert_eq!(json_lines(&out)[0]["docs"], 60000);
    let hits = search_json(&db, &["--tokens-file", path(&data.join("queries.jsonl"))]);
    assert!(!hits[0]["hits"].as_array().unwrap().is_empty());
    eprintln!("{killed_while_running} of 3 kills landed while the import was running");
}

/// A database in `dir/db` of `docs` synthetic documents of 40 tokens (vocabulary 512), imported
/// with `import-tokens` and the extra `args`.
fn imported(dir: &Path, docs: usize, args: &[&str]) -> PathBuf {
    let data = dir.join("data");
    let db = dir.join("db");
    let docs = docs.to_string();
    synth_tokens(&data, &["--docs", &docs, "--len", "40", "--queries", "1"]);
    let archive = data.join("archive.jsonl");
    let mut full = vec!["import-tokens", "--db", path(&db), "--vocab", "512"];
    full.extend_from_slice(args);
    full.push(path(&archive));
    let out = pairalign(&full);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    db
}

/// `--batch-tokens` commits a segment every that many tokens: 1,000 documents of 40 tokens in
/// batches of at most 8,000 tokens are 5 segments, all searchable.
#[test]
fn import_batches_by_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let db = imported(dir.path(), 1000, &["--batch-tokens", "8000"]);
    let out = pairalign(&["info", "--db", path(&db), "--json"]);
    let info = &json_lines(&out)[0];
    assert_eq!(
        (info["docs"].as_u64(), info["segments"].as_u64()),
        (Some(1000), Some(5))
    );
}

/// Opening a database reads its MANIFEST and segment headers only; the sections are checked in
/// the background and before their first use. A segment damaged inside a section: a search
/// fails naming the file, `check` finds it, and `serve --verify` refuses to start.
#[test]
fn a_damaged_section_is_found_at_first_use_and_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let db = imported(dir.path(), 200, &[]);
    let segment = std::fs::read_dir(db.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    // A byte of the token section (it starts after the header and the section table).
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[1000] ^= 0x55;
    std::fs::write(&segment, &bytes).unwrap();
    let name = segment.file_name().unwrap().to_string_lossy().into_owned();

    let out = pairalign(&["search", "--db", path(&db), "--tokens", "1 2 3 4 5"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&name) && stderr.contains("corrupt"),
        "{stderr}"
    );

    let out = pairalign(&["check", "--db", path(&db)]);
    assert_eq!(out.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains(&name), "{all}");

    let out = pairalign(&[
        "serve",
        "--db",
        path(&db),
        "--verify",
        "--addr",
        "127.0.0.1:0",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("did not pass its check") && stderr.contains(&name),
        "{stderr}"
    );
}

/// The sample files of every format, from the bundled sample archive.
fn sample_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/short");
    [
        "flite_kal.wav",
        "flite_slt.flac",
        "espeak-ng_en-029_m1.mp3",
        "flite_rms.ogg",
    ]
    .iter()
    .map(|f| root.join(f))
    .collect()
}

#[test]
fn tokenize_prints_tokens_with_times_and_skips_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.wav");
    std::fs::write(&bad, b"RIFF\x10\x00\x00\x00WAVEfmt garbage").unwrap();
    let files = sample_files();
    let mut args = vec!["tokenize", "--json"];
    args.extend(files.iter().map(|f| path(f)));
    args.push(path(&bad));
    let out = pairalign(&args);
    assert_eq!(out.status.code(), Some(1), "a failed file sets exit code 1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.wav"), "{stderr}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), files.len(), "every good file is printed");
    for (line, file) in lines.iter().zip(&files) {
        assert_eq!(line["file"], path(file));
        let duration = line["duration_ms"].as_u64().unwrap();
        let tokens = line["tokens"].as_array().unwrap();
        let times: Vec<u64> = line["times_ms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap())
            .collect();
        assert!(duration > 500, "{file:?}");
        assert!(!tokens.is_empty());
        assert_eq!(tokens.len(), times.len());
        assert!(tokens.iter().all(|t| t.as_u64().unwrap() < 1024));
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "times are sorted");
        assert!(*times.last().unwrap() < duration);
        let rate = line["tokens_per_s"].as_f64().unwrap();
        let expect = tokens.len() as f64 / (duration as f64 / 1000.0);
        assert!((rate - expect).abs() / expect < 0.01, "{rate} vs {expect}");
    }
    // The summary on stderr: the good files' audio and the tokenizer's speed.
    let audio_s: f64 = lines
        .iter()
        .map(|l| l["duration_ms"].as_f64().unwrap() / 1000.0)
        .sum();
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("tokenized "))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        summary.contains(&format!("{audio_s:.1} s of audio")),
        "{summary} vs {audio_s}"
    );
    assert!(
        summary.contains("on cpu") && summary.ends_with("x realtime"),
        "{summary}"
    );
    // Deterministic: the same files give the same tokens.
    let again = json_lines(&pairalign(&args));
    assert_eq!(again, lines);
    // A device this build or machine lacks is a clear error, before any file is read.
    for (device, says) in [
        ("cuda", "cannot open CUDA device 0"),
        ("cuda:x", "device must be cpu, cuda or cuda:N"),
    ] {
        let out = pairalign(&["tokenize", "--device", device, path(&files[0])]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if cfg!(feature = "cuda") && device == "cuda" && out.status.success() {
            continue; // a GPU is here
        }
        assert_eq!(out.status.code(), Some(2), "{device}: {stderr}");
        assert!(stderr.contains(says), "{device}: {stderr}");
    }
}

/// A small model config so that training in a test takes seconds.
const TINY_TRAIN_CONFIG: &str = r#"{"model": {"channels": 32, "encoder_layers": 1,
    "decoder_layers": 1, "codebook_size": 256, "code_dim": 16}, "batch_size": 4,
    "crop_frames": 100, "norm_clips": 16, "log_every": 1, "checkpoint_every": 2}"#;

/// A feature cache of the short samples (1 s clips, 2 views), the tiny config, and the run
/// folder to train into, all under `dir`.
fn tiny_training_setup(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/short");
    let cache = dir.join("f.feat");
    let out = pairalign(&[
        "features",
        path(&samples),
        "--out",
        path(&cache),
        "--window",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = dir.join("tiny.json");
    std::fs::write(&config, TINY_TRAIN_CONFIG).unwrap();
    (cache, config, dir.join("run"))
}

#[test]
fn train_vq_resumes_refuses_clobbering_and_its_output_tokenizes_and_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, config, run) = tiny_training_setup(dir.path());
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "vq", "--data", path(&cache), "--out", path(&run)];
        args.extend_from_slice(extra);
        pairalign(&args)
    };
    let out = train(&["--config", path(&config), "--steps", "3", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = &json_lines(&out)[0];
    assert_eq!(report["step"], 3);
    assert_eq!(report["interrupted"], false);
    let log = std::fs::read_to_string(run.join("train.jsonl")).unwrap();
    assert_eq!(
        log.lines().count(),
        3,
        "one record per step with log_every 1"
    );
    assert!(run.join("model.safetensors").is_file());

    // A second fresh run into the same folder is refused; --resume extends it.
    let out = train(&["--config", path(&config), "--steps", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));
    let out = train(&["--resume", "--steps", "5", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_lines(&out)[0]["step"], 5);
    let log = std::fs::read_to_string(run.join("train.jsonl")).unwrap();
    let steps: Vec<u64> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, [1, 2, 3, 4, 5]);

    // The trained folder is a tokenizer.
    let file = &sample_files()[0];
    let out = pairalign(&["tokenize", "--tokenizer", path(&run), "--json", path(file)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(json_lines(&out)[0]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t.as_u64().unwrap() < 256));

    // And it evaluates, with the dense baseline of the same weights beside it.
    let dense = format!("dense:{}", path(&run));
    let out = pairalign(&[
        "eval",
        "retrieval",
        "--cache",
        path(&cache),
        "--tokenizer",
        path(&run),
        "--tokenizer",
        &dense,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["kind"], "tokens");
    let p1 = lines[0]["p_at_1"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p1));
    assert!(lines[0]["clips"].as_u64().unwrap() >= 2);
    assert_eq!(lines[1]["kind"], "dense");
}

/// A tiny PairAlign run config; the encoder comes from `--init`.
const TINY_PAIRALIGN_CONFIG: &str = r#"{"model": {"d_model": 32, "heads": 2, "ff_dim": 64,
    "layers": 1}, "batch_size": 4, "crop_frames": 100, "log_every": 1, "checkpoint_every": 2,
    "contrast_clips": 2}"#;

#[test]
fn train_pairalign_starts_from_a_vq_run_resumes_and_switches_components_off() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, config, vq_run) = tiny_training_setup(dir.path());
    let out = pairalign(&[
        "train",
        "vq",
        "--data",
        path(&cache),
        "--out",
        path(&vq_run),
        "--config",
        path(&config),
        "--steps",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pa_config = dir.path().join("pa.json");
    std::fs::write(&pa_config, TINY_PAIRALIGN_CONFIG).unwrap();
    let run = dir.path().join("pa");
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "pairalign",
            "--data",
            path(&cache),
            "--out",
            path(&run),
        ];
        args.extend_from_slice(extra);
        pairalign(&args)
    };
    let out = train(&[
        "--init",
        path(&vq_run),
        "--config",
        path(&pa_config),
        "--steps",
        "2",
        "--without",
        "contrast",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_lines(&out)[0]["step"], 2);
    let records: Vec<Value> = std::fs::read_to_string(run.join("train.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    // Every loss term has its own field; the switched-off one is null.
    for key in ["teacher_forcing", "length", "timing", "bypass_gap"] {
        assert!(records[1][key].is_number(), "{key}: {}", records[1]);
    }
    assert!(records[1]["contrast"].is_null());
    // The run's config records the switch and the init's encoder.
    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model"]["components"]["contrast"], false);
    assert_eq!(cfg["model"]["encoder"]["channels"], 32);
    // Resume keeps the config and extends the run.
    let out = train(&["--resume", "--without", "timing"]);
    assert_eq!(out.status.code(), Some(2));
    let out = train(&["--resume", "--steps", "3", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_lines(&out)[0]["step"], 3);

    // The run folder is a PairAlign tokenizer, detected from its config, in every command.
    let files = sample_files();
    let out = pairalign(&[
        "tokenize",
        "--tokenizer",
        path(&run),
        "--json",
        path(&files[0]),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("tokenizer pairalign"));
    let line = &json_lines(&out)[0];
    let tokens = line["tokens"].as_array().unwrap();
    assert!(!tokens.is_empty());
    assert!(tokens.iter().all(|t| t.as_u64().unwrap() < 256));
    assert_eq!(tokens.len(), line["times_ms"].as_array().unwrap().len());
    let db = dir.path().join("pa.db");
    let out = pairalign(&[
        "index",
        path(&files[0]),
        path(&files[1]),
        "--db",
        path(&db),
        "--tokenizer",
        path(&run),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = &json_lines(&pairalign(&["info", "--db", path(&db), "--json"]))[0];
    assert_eq!(info["docs"], 2);
    assert_eq!(info["tokenizer"]["id"], "pairalign");
    let out = pairalign(&[
        "search",
        "--db",
        path(&db),
        path(&files[0]),
        "--tokenizer",
        path(&run),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The database records the PairAlign tokenizer: the VQ one is refused.
    let out = pairalign(&["search", "--db", path(&db), path(&files[0]), "--json"]);
    assert_eq!(out.status.code(), Some(2));
    // It evaluates (no dense baseline: that is the VQ encoder's).
    let out = pairalign(&[
        "eval",
        "retrieval",
        "--cache",
        path(&cache),
        "--tokenizer",
        path(&run),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["tokenizer"], "pairalign");
    assert_eq!(lines[0]["kind"], "tokens");

    // A VQ folder that does not match the config is an error, not a panic.
    let out = pairalign(&[
        "train",
        "pairalign",
        "--data",
        path(&cache),
        "--out",
        path(&dir.path().join("bad")),
        "--init",
        path(&dir.path().join("nope")),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn tokenizer_names_select_the_shipped_models() {
    let file = &sample_files()[0];
    let out = pairalign(&["tokenize", "--tokenizer", "vq", "--json", path(file)]);
    assert!(out.status.success());
    let vq_stdout = out.stdout;
    let out = pairalign(&["tokenize", "--tokenizer", "pairalign", "--json", path(file)]);
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/weights/pairalign-v1/model.safetensors")
        .is_file();
    if shipped {
        assert!(out.status.success());
        assert_ne!(vq_stdout, out.stdout);
        // The default tokenizer is pairalign-v3: the same strings without --tokenizer, and
        // neither v1's nor v2's.
        let named = |name: &str| {
            let out = pairalign(&["tokenize", "--tokenizer", name, "--json", path(file)]);
            assert!(out.status.success(), "{name}");
            out.stdout
        };
        let default = pairalign(&["tokenize", "--json", path(file)]);
        assert!(default.status.success());
        assert_eq!(default.stdout, named("pairalign-v3"));
        assert_ne!(default.stdout, named("pairalign-v2"));
        assert_ne!(default.stdout, out.stdout);
    } else {
        // Not shipped yet: a clear error that says so, in every command.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("not shipped"), "{stderr}");
        assert!(stderr.contains("models/weights/pairalign-v1"), "{stderr}");
        let db = tempfile::tempdir().unwrap();
        let out = pairalign(&[
            "index",
            path(file),
            "--db",
            path(&db.path().join("db")),
            "--tokenizer",
            "pairalign",
        ]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("not shipped"));
    }
    let out = pairalign(&["tokenize", "--tokenizer", "no-such-model", path(file)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such folder"));
}

#[cfg(unix)]
#[test]
fn interrupted_training_saves_a_checkpoint_and_resumes() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let (cache, config, run) = tiny_training_setup(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_pairalign"))
        .args(["train", "vq", "--data", path(&cache), "--out", path(&run)])
        .args([
            "--config",
            path(&config),
            "--steps",
            "100000",
            "--checkpoint-every",
            "100000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the second log line, then interrupt.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = 0;
    for line in lines.by_ref() {
        if line.unwrap().starts_with("step ") {
            seen += 1;
            if seen == 2 {
                break;
            }
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(130), "{rest:?}");
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("checkpoint/trainer.json")).unwrap(),
    )
    .unwrap();
    let step = state["step"].as_u64().unwrap();
    assert!(step >= 2, "the checkpoint is at the step reached, not at 0");
    let out = pairalign(&[
        "train",
        "vq",
        "--data",
        path(&cache),
        "--out",
        path(&run),
        "--resume",
        "--steps",
        &(step + 1).to_string(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_lines(&out)[0]["step"].as_u64().unwrap(), step + 1);
}

#[test]
fn excerpt_cuts_and_modifies_a_clip_and_rejects_bad_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/long/long_flite_slt.flac");
    let out = dir.path().join("clip.wav");
    let run = |extra: &[&str]| {
        let mut args = vec!["excerpt", path(&source), "--out", path(&out), "--json"];
        args.extend_from_slice(extra);
        pairalign(&args)
    };
    let plain = run(&["--start", "10", "--duration", "3"]);
    assert!(
        plain.status.success(),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let report = &json_lines(&plain)[0];
    assert!((report["out_duration_s"].as_f64().unwrap() - 3.0).abs() < 1e-3);
    assert!(report["view"].is_null());
    let plain_bytes = std::fs::read(&out).unwrap();
    // Speed 1.25 shortens the clip by that factor; the same seed gives the same file.
    let fast = run(&[
        "--start",
        "10",
        "--view",
        "speed=1.25,noise=20",
        "--seed",
        "3",
    ]);
    assert!(
        fast.status.success(),
        "{}",
        String::from_utf8_lossy(&fast.stderr)
    );
    let seconds = json_lines(&fast)[0]["out_duration_s"].as_f64().unwrap();
    assert!((seconds - 3.0 / 1.25).abs() < 0.01, "{seconds}");
    let first = std::fs::read(&out).unwrap();
    assert_ne!(first, plain_bytes);
    run(&[
        "--start",
        "10",
        "--view",
        "speed=1.25,noise=20",
        "--seed",
        "3",
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), first);
    for bad in [
        &["--start", "500"][..],
        &["--duration", "0"],
        &["--start", "-1"],
        &["--view", "bogus=1"],
    ] {
        let result = run(bad);
        assert_eq!(result.status.code(), Some(2), "{bad:?}");
        assert!(
            String::from_utf8_lossy(&result.stderr).contains("error:"),
            "{bad:?}"
        );
    }
}

/// `merge` copies shard databases into one (exit 0), finds everything present on a rerun, and
/// exits 1 listing the ids another shard holds with other tokens.
#[test]
fn merge_copies_shards_reruns_and_reports_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let a = imported(&dir.path().join("a"), 100, &[]);
    // The same ids with other tokens: another seed.
    let b_dir = dir.path().join("b");
    let data = b_dir.join("data");
    synth_tokens(
        &data,
        &[
            "--docs",
            "100",
            "--len",
            "40",
            "--queries",
            "1",
            "--seed",
            "9",
        ],
    );
    let b = b_dir.join("db");
    let out = pairalign(&[
        "import-tokens",
        "--db",
        path(&b),
        "--vocab",
        "512",
        path(&data.join("archive.jsonl")),
    ]);
    assert!(out.status.success());
    let merged = dir.path().join("merged");

    let out = pairalign(&["merge", "--db", path(&merged), path(&a), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["added"].as_u64(), Some(100));

    let out = pairalign(&["merge", "--db", path(&merged), path(&a), path(&b)]);
    assert_eq!(out.status.code(), Some(1), "conflicts are exit code 1");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("CONFLICT ").count(), 100, "{text}");
    assert!(text.contains("0 document(s) copied"), "{text}");
    assert!(text.contains("100 already present"), "{text}");
    let out = pairalign(&["info", "--db", path(&merged), "--json"]);
    assert_eq!(json_lines(&out)[0]["docs"].as_u64(), Some(100));

    // A shard that is not a database: exit code 2, nothing created.
    let elsewhere = dir.path().join("elsewhere");
    let out = pairalign(&[
        "merge",
        "--db",
        path(&elsewhere),
        path(&dir.path().join("none")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!elsewhere.exists());
}
