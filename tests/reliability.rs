//! Crash safety (issue 9): SIGKILL at random moments while indexing, deleting, compacting and
//! serving uploads. After every kill the database opens, every file acknowledged as committed
//! before the kill is there exactly once, the catalog lists exactly the live documents, and a
//! resumed run completes the rest.
//!
//! Each loop goes on until `PAIRALIGN_CRASH_KILLS` kills (default 10) landed while the process was
//! still running; the long form in docs/RELIABILITY.md sets 100. Delays are drawn uniformly over
//! the measured length of an uninterrupted run, from a seed printed by the test
//! (`PAIRALIGN_CRASH_SEED` replays one).

#![allow(clippy::unwrap_used)] // Tests unwrap: a failure is the test failing.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{pairalign, path, run_killed, stderr};
use pairalign_datasets::synth::write_wav_16k;
use pairalign_datasets::{Audio, SAMPLE_RATE};
use pairalign_engine::Database;
use serde_json::Value;

mod common;

/// Files in the archive the loops index.
const FILES: usize = 240;

fn kills() -> usize {
    std::env::var("PAIRALIGN_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

/// xorshift64*: reproducible delays without a dependency.
struct Rng(u64);

impl Rng {
    fn from_env(test: &str) -> Rng {
        let seed = std::env::var("PAIRALIGN_CRASH_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("{test}: PAIRALIGN_CRASH_SEED={seed}");
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` distinct recordings of 0.5 to 1.5 s (chirps in noise) under `dir`, their content drawn from
/// `seed`; their document ids.
fn archive(dir: &Path, n: usize, seed: u64) -> BTreeSet<String> {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let len = SAMPLE_RATE as usize / 2 + (rng.unit() * SAMPLE_RATE as f64) as usize;
            let (f0, f1) = (100.0 + rng.unit() * 900.0, 100.0 + rng.unit() * 900.0);
            let mut phase = 0.0f64;
            let samples = (0..len)
                .map(|t| {
                    let x = t as f64 / len as f64;
                    phase += std::f64::consts::TAU * (f0 + (f1 - f0) * x) / SAMPLE_RATE as f64;
                    (0.4 * phase.sin() + 0.05 * (rng.unit() - 0.5)) as f32
                })
                .collect();
            let file = dir.join(format!("rec-{i:04}.wav"));
            write_wav_16k(&file, &Audio::new(samples, SAMPLE_RATE)).unwrap();
            pairalign_indexer::doc_id(&file).unwrap()
        })
        .collect()
}

/// The ids of the live documents, read as a searcher would (panics when the database does not
/// open), checking that none is there twice and that the catalog lists exactly these.
fn live(db: &Path) -> BTreeSet<String> {
    let database = Database::open_read_only(db)
        .unwrap_or_else(|e| panic!("the database opens after a kill: {e}"));
    let mut ids = BTreeSet::new();
    for segment in database.segments() {
        for doc in segment.docs() {
            if !database.is_deleted(doc.doc_id) {
                assert!(ids.insert(doc.name.to_string()), "{} twice", doc.name);
            }
        }
    }
    let page = pairalign_query::list_assets(&database, None, 0, usize::MAX)
        .unwrap_or_else(|e| panic!("the catalog opens after a kill: {e}"));
    let listed: BTreeSet<String> = page.assets.iter().map(|a| a.id.clone()).collect();
    assert_eq!(listed, ids, "the catalog lists the live documents, no more");
    assert_eq!(page.total, ids.len());
    ids
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn index_args(db: &Path, audio: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = strings(&[
        "index",
        "--db",
        path(db),
        "--jobs",
        "1",
        "--batch-files",
        "8",
    ]);
    args.extend(strings(extra));
    args.push(path(audio).to_string());
    args
}

/// Indexes `audio` into `db` to the end and returns the wall time.
fn index_all(db: &Path, audio: &Path, extra: &[&str]) -> Duration {
    let started = Instant::now();
    let out = pairalign(
        &index_args(db, audio, extra)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    started.elapsed()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Kills until `kills()` landed while the process ran (at most three times as many tries).
fn until_enough_kills(mut attempt: impl FnMut(usize) -> bool) -> usize {
    let wanted = kills();
    let mut landed = 0;
    let mut tries = 0;
    while landed < wanted && tries < 3 * wanted {
        landed += usize::from(attempt(tries));
        tries += 1;
    }
    assert!(
        landed >= wanted.min(1),
        "no kill landed while the process ran in {tries} tries"
    );
    eprintln!("{landed} of {tries} kills landed while the process ran");
    landed
}

/// The indexer killed at random moments of its runs (walk, tokenizing, segment writes, commits,
/// the final merge): nothing acknowledged is lost, nothing is there twice, and re-runs complete
/// the archive.
#[test]
fn killed_indexer_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let audio = dir.path().join("audio");
    let expected = archive(&audio, FILES, 1);
    let full = index_all(&dir.path().join("reference"), &audio, &[]);
    assert_eq!(live(&dir.path().join("reference")), expected);
    let skip_only = index_all(&dir.path().join("reference"), &audio, &[]);
    let mut rng = Rng::from_env("killed_indexer_loses_nothing_acknowledged");
    let mut cycle = 0;
    let mut acked = BTreeSet::new();
    until_enough_kills(|_| {
        let db = dir.path().join(format!("db-{cycle}"));
        let present = if db.join("MANIFEST").exists() {
            live(&db).len()
        } else {
            0
        };
        // Re-runs skip what is there: aim the kill inside what is left to do.
        let left = (FILES - present) as f64 / FILES as f64;
        let span = skip_only.as_secs_f64() + (full - skip_only).as_secs_f64() * left;
        let delay = Duration::from_secs_f64(span * 1.1 * rng.unit());
        let killed = run_killed(&index_args(&db, &audio, &["--events", "--quiet"]), delay);
        for line in &killed.lines {
            for id in line["committed"].as_array().into_iter().flatten() {
                acked.insert(id.as_str().unwrap().to_string());
            }
        }
        if db.join("MANIFEST").exists() {
            let ids = live(&db);
            assert!(ids.is_subset(&expected));
            let lost: Vec<_> = acked.difference(&ids).collect();
            assert!(lost.is_empty(), "acknowledged, then lost: {lost:?}");
            if ids == expected {
                cycle += 1;
                acked.clear();
            }
        } else {
            assert!(acked.is_empty(), "acknowledged without a database");
        }
        killed.running
    });
    let db = dir.path().join(format!("db-{cycle}"));
    index_all(&db, &audio, &[]);
    assert_eq!(live(&db), expected);
}

/// A database of the archive with one segment per 8 files (no merge), for the delete and
/// compaction loops; returns it with the time a full run took.
fn segmented_reference(dir: &Path) -> (PathBuf, BTreeSet<String>) {
    let audio = dir.join("audio");
    let expected = archive(&audio, FILES, 1);
    let reference = dir.join("reference");
    index_all(&reference, &audio, &["--no-compact"]);
    assert_eq!(live(&reference), expected);
    (reference, expected)
}

/// `pairalign delete` of half the archive killed at random moments: the delete is all or nothing,
/// the catalog never lists a deleted document, and running it again finishes it.
#[test]
fn killed_delete_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (reference, expected) = segmented_reference(dir.path());
    let doomed: Vec<String> = expected.iter().step_by(2).cloned().collect();
    let after: BTreeSet<String> = expected
        .difference(&doomed.iter().cloned().collect())
        .cloned()
        .collect();
    let delete_args = |db: &Path| {
        let mut args = strings(&["delete", "--db", path(db)]);
        args.extend(doomed.iter().cloned());
        args
    };
    let timed = dir.path().join("timed");
    copy_dir(&reference, &timed);
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_pairalign"))
        .args(delete_args(&timed))
        .output()
        .unwrap();
    let span = started.elapsed().as_secs_f64();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(live(&timed), after);
    let mut rng = Rng::from_env("killed_delete_is_all_or_nothing");
    until_enough_kills(|i| {
        let db = dir.path().join(format!("db-{i}"));
        copy_dir(&reference, &db);
        let killed = run_killed(
            &delete_args(&db),
            Duration::from_secs_f64(span * 1.1 * rng.unit()),
        );
        let ids = live(&db);
        assert!(
            ids == expected || ids == after,
            "a delete was applied in part"
        );
        Command::new(env!("CARGO_BIN_EXE_pairalign"))
            .args(delete_args(&db))
            .output()
            .unwrap();
        assert_eq!(live(&db), after);
        std::fs::remove_dir_all(&db).unwrap();
        killed.running
    });
}

/// `pairalign compact` killed at random moments: the live documents never change, and running it
/// again leaves one segment.
#[test]
fn killed_compaction_changes_nothing_visible() {
    let dir = tempfile::tempdir().unwrap();
    let (reference, expected) = segmented_reference(dir.path());
    // Tombstones too, so that the merge drops documents.
    let doomed: Vec<String> = expected.iter().step_by(3).cloned().collect();
    let out = Command::new(env!("CARGO_BIN_EXE_pairalign"))
        .args(["delete", "--db", path(&reference)])
        .args(&doomed)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let expected = live(&reference);
    let segments = |db: &Path| Database::open_read_only(db).unwrap().segments().len();
    assert!(segments(&reference) > 1);
    let timed = dir.path().join("timed");
    copy_dir(&reference, &timed);
    let started = Instant::now();
    let out = pairalign(&["compact", "--db", path(&timed)]);
    let span = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(segments(&timed), 1);
    let mut rng = Rng::from_env("killed_compaction_changes_nothing_visible");
    until_enough_kills(|i| {
        let db = dir.path().join(format!("db-{i}"));
        copy_dir(&reference, &db);
        let args = strings(&["compact", "--db", path(&db)]);
        let killed = run_killed(&args, Duration::from_secs_f64(span * 1.1 * rng.unit()));
        assert_eq!(live(&db), expected);
        let out = pairalign(&["compact", "--db", path(&db)]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(live(&db), expected);
        assert_eq!(segments(&db), 1);
        std::fs::remove_dir_all(&db).unwrap();
        killed.running
    });
}

/// A running `pairalign serve` and where it listens.
struct Served {
    child: std::process::Child,
    base: String,
}

/// A failing test must not leave its server running.
impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(db: &Path) -> Served {
    serve_with(db, &[])
}

fn serve_with(db: &Path, extra: &[&str]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pairalign"))
        .args(["serve", "--db", path(db), "--addr", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("serve says where it listens").unwrap();
        if let Some(rest) = line.split("http://").nth(1) {
            break format!("http://{}", rest.split_whitespace().next().unwrap());
        }
    };
    // Keep draining stderr so that the server never blocks on it.
    std::thread::spawn(move || lines.for_each(drop));
    Served { child, base }
}

/// Uploads `files` from `clients` threads until the server dies; the ids it answered 201 for.
fn upload_all(base: &str, files: &[PathBuf], clients: usize) -> BTreeSet<String> {
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let next = Arc::new(Mutex::new(0usize));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (acked, next, base, files) = (
                acked.clone(),
                next.clone(),
                base.to_string(),
                files.to_vec(),
            );
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                loop {
                    let i = {
                        let mut next = next.lock().unwrap();
                        *next += 1;
                        *next - 1
                    };
                    let Some(file) = files.get(i) else { break };
                    let id = file.file_stem().unwrap().to_str().unwrap().to_string();
                    let response = client
                        .post(format!("{base}/v1/assets?id={id}"))
                        .header("content-type", "audio/wav")
                        .body(std::fs::read(file).unwrap())
                        .send();
                    match response {
                        Ok(r) if r.status().as_u16() == 201 => {
                            acked.lock().unwrap().insert(id);
                        }
                        Ok(r) if r.status().as_u16() == 503 => {} // backpressure: retry later
                        Ok(r) => panic!("{id}: {} {}", r.status(), r.text().unwrap_or_default()),
                        Err(_) => break, // the server is gone
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    acked
}

/// `pairalign serve` killed with uploads in flight: every upload answered 201 is there exactly
/// once after a restart, and uploading the rest completes the archive.
#[test]
fn killed_server_keeps_acknowledged_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let audio = dir.path().join("audio");
    archive(&audio, 64, 2);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&audio)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let uploads: BTreeSet<String> = files
        .iter()
        .map(|f| f.file_stem().unwrap().to_str().unwrap().to_string())
        .collect();
    // An archive to start from: one file indexed, so that the database records the tokenizer.
    let reference = dir.path().join("reference");
    let seed = dir.path().join("seed");
    archive(&seed, 1, 4);
    index_all(&reference, &seed, &[]);
    let base_ids = live(&reference);
    let timed = dir.path().join("timed");
    copy_dir(&reference, &timed);
    let mut server = serve(&timed);
    let started = Instant::now();
    let acked = upload_all(&server.base, &files, 4);
    let span = started.elapsed().as_secs_f64();
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert_eq!(acked, uploads);
    let mut rng = Rng::from_env("killed_server_keeps_acknowledged_uploads");
    until_enough_kills(|i| {
        let db = dir.path().join(format!("db-{i}"));
        copy_dir(&reference, &db);
        let mut server = serve(&db);
        let base = server.base.clone();
        let files_in = files.clone();
        let uploading = std::thread::spawn(move || upload_all(&base, &files_in, 4));
        std::thread::sleep(Duration::from_secs_f64(span * 1.1 * rng.unit()));
        let running = server.child.try_wait().unwrap().is_none();
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        let acked = uploading.join().unwrap();
        let ids = live(&db);
        let lost: Vec<_> = acked
            .iter()
            .filter(|id| !ids.contains(id.as_str()))
            .collect();
        assert!(lost.is_empty(), "answered 201, then lost: {lost:?}");
        // Restart and upload what is missing.
        let missing: Vec<PathBuf> = files
            .iter()
            .filter(|f| !ids.contains(f.file_stem().unwrap().to_str().unwrap()))
            .cloned()
            .collect();
        let mut server = serve(&db);
        let again = upload_all(&server.base, &missing, 2);
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        assert_eq!(again.len(), missing.len());
        let expected: BTreeSet<String> = base_ids.union(&uploads).cloned().collect();
        assert_eq!(live(&db), expected);
        std::fs::remove_dir_all(&db).unwrap();
        running
    });
}

/// Sends `request` as is on a new connection and returns the reply's status (0 when the server
/// closed the connection without one).
fn raw_status(addr: &str, request: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The server may answer (413, 431) and close before reading all of it.
    let _ = stream.write_all(request);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let head = String::from_utf8_lossy(&reply);
    head.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

fn http(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        request.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Malformed requests of every kind the issue lists, 10,000 of them (`PAIRALIGN_MALFORMED`
/// changes the count): each gets its 4xx, the server keeps serving, and its resident memory after
/// them is within 16 MiB of what it was after a warm-up of 1,000.
#[test]
fn malformed_requests_get_4xx_and_leak_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let audio = dir.path().join("audio");
    archive(&audio, 4, 3);
    let db = dir.path().join("db");
    index_all(&db, &audio, &[]);
    let server = serve_with(&db, &["--max-body-mib", "1", "--timeout", "2"]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let json = [("content-type", "application/json")];
    let multipart = [("content-type", "multipart/form-data; boundary=XyZ")];
    let truncated_multipart =
        b"--XyZ\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF";
    let huge_header = "x".repeat(1 << 20);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "bad JSON",
            http("POST", "/v1/search", &json, b"{\"tokens\": [1, 2,"),
            400,
        ),
        (
            "JSON that is not UTF-8",
            http(
                "POST",
                "/v1/search",
                &json,
                b"{\"tokens\": [1, 2, 3], \"filter\": \"\xff\xfe\"}",
            ),
            400,
        ),
        (
            "wrong content type",
            http(
                "POST",
                "/v1/search",
                &[("content-type", "text/plain")],
                b"hello",
            ),
            415,
        ),
        (
            "no content type",
            http("POST", "/v1/search", &[], b"hello"),
            415,
        ),
        (
            "truncated multipart",
            http("POST", "/v1/search", &multipart, truncated_multipart),
            400,
        ),
        (
            "undecodable audio",
            http(
                "POST",
                "/v1/search",
                &[("content-type", "audio/wav")],
                b"RIFF0000WAVEjunk",
            ),
            422,
        ),
        (
            "negative top",
            http(
                "POST",
                "/v1/search",
                &json,
                b"{\"tokens\": [1, 2, 3], \"top\": -1}",
            ),
            400,
        ),
        (
            "absurd top",
            http(
                "POST",
                "/v1/search",
                &json,
                b"{\"tokens\": [1, 2, 3], \"top\": 1e300}",
            ),
            400,
        ),
        (
            "negative limit",
            http("GET", "/v1/assets?limit=-5", &[], b""),
            400,
        ),
        (
            "absurd offset",
            http("GET", "/v1/assets?offset=99999999999999999999999", &[], b""),
            400,
        ),
        (
            "query not UTF-8",
            http("GET", "/v1/assets?filter=%FF%FE", &[], b""),
            400,
        ),
        (
            "path-like asset id",
            http("GET", "/v1/assets/..%2F..%2Fetc%2Fpasswd", &[], b""),
            404,
        ),
        (
            "path-like delete",
            http("DELETE", "/v1/assets/%2E%2E", &[], b""),
            404,
        ),
        ("unknown route", http("GET", "/v2/nothing", &[], b""), 404),
        ("wrong method", http("DELETE", "/healthz", &[], b""), 405),
        ("not HTTP", b"HELLO THERE\r\n\r\n".to_vec(), 400),
        (
            "body over the limit",
            http(
                "POST",
                "/v1/search",
                &[("content-type", "audio/wav")],
                &vec![0u8; (1 << 20) + 1],
            ),
            413,
        ),
    ];
    let rare: Vec<(&str, Vec<u8>, u16)> = vec![(
        "huge header",
        http("GET", "/healthz", &[("x-filler", &huge_header)], b""),
        431,
    )];
    let mut sent = 0usize;
    let mut send = |n: usize| {
        for i in 0..n {
            let (what, request, expected) = if i % 500 == 499 {
                &rare[0]
            } else {
                &cases[i % cases.len()]
            };
            let status = raw_status(&addr, request);
            assert_eq!(status, *expected, "{what}");
            sent += 1;
        }
    };
    send(1_000);
    let pid = server.child.id();
    let before = rss_kib(pid);
    let n: usize = std::env::var("PAIRALIGN_MALFORMED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    send(n);
    let after = rss_kib(pid);
    eprintln!(
        "server RSS {before} KiB after the warm-up, {after} KiB after {n} more malformed requests"
    );
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    // A body that never finishes gets 408 after --timeout.
    let started = Instant::now();
    let slow = {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        let head = "POST /v1/search HTTP/1.1\r\nhost: localhost\r\ncontent-type: audio/wav\r\ncontent-length: 100000\r\n\r\nRIFF";
        stream.write_all(head.as_bytes()).unwrap();
        let mut reply = Vec::new();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let _ = stream.read_to_end(&mut reply);
        String::from_utf8_lossy(&reply).into_owned()
    };
    assert!(slow.starts_with("HTTP/1.1 408"), "{slow}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let healthz = raw_status(&addr, &http("GET", "/healthz", &[], b""));
    assert_eq!(
        healthz, 200,
        "the server keeps serving after {sent} bad requests"
    );
    drop(server);
}

/// Ids are strings, never paths: an upload whose id looks like a path outside the database is
/// stored under that id, found by it, deleted by it, and writes nothing outside the database.
#[test]
fn path_like_ids_stay_ids() {
    let dir = tempfile::tempdir().unwrap();
    let audio = dir.path().join("audio");
    archive(&audio, 1, 5);
    let db = dir.path().join("inner").join("db");
    let mut server = serve(&db);
    let client = reqwest::blocking::Client::new();
    let wav = std::fs::read(audio.join("rec-0000.wav")).unwrap();
    for id in [
        "../../escaped.wav",
        "/etc/passwd",
        "segments/seg-00000001.seg",
        "MANIFEST",
    ] {
        let encoded: String = id
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let response = client
            .post(format!("{}/v1/assets?id={encoded}", server.base))
            .header("content-type", "audio/wav")
            .body(wav.clone())
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 201, "{id}");
        let asset: Value = response.json().unwrap();
        assert_eq!(asset["id"], id);
        for (method, status) in [(reqwest::Method::GET, 200), (reqwest::Method::DELETE, 204)] {
            let url = format!("{}/v1/assets/{encoded}", server.base);
            let response = client.request(method.clone(), url).send().unwrap();
            assert_eq!(response.status().as_u16(), status, "{method} {id}");
        }
    }
    assert!(!dir.path().join("escaped.wav").exists());
    assert!(!dir.path().join("inner/escaped.wav").exists());
    // The database still opens and holds nothing: the MANIFEST and segments are its own.
    assert!(live(&db).is_empty());
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}
