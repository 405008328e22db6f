//! End-to-end tests of the `pairalign` binary: the interfaces other tools depend on
//! (import-tokens, search --json, info --json, delete, compact, synth-tokens) and their exit codes.

#![allow(clippy::unwrap_used)] // Tests unwrap: a failure is the test failing.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn pairalign(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pairalign"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

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

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
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
        let mut child = Command::new(env!("CARGO_BIN_EXE_pairalign"))
            .args([
                "import-tokens",
                "--db",
                path(&db),
                "--vocab",
                "512",
                "--batch-docs",
                "2000",
                path(&archive),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        killed_while_running += usize::from(child.try_wait().unwrap().is_none());
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
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
