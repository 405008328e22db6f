//! Load test of `pairalign serve` on loopback (issue 9): many concurrent clients for a fixed time,
//! mixing query-by-example searches (90%) and uploads (10%), against a copy of an indexed archive.
//! Reports requests per status, p50/p99 latency per kind, throughput, the server's peak RSS, and
//! whether every search answered during the run agrees with the one answered before it: the
//! source hit found before the load (file, start, end, distance) must be in every answer, while
//! uploads are indexed and their small segments merged (the server's tiered merges), and while a
//! full compaction (`POST /v1/compact`, once, `PAIRALIGN_LOAD_COMPACT_AT` seconds into the load)
//! rewrites the whole archive.
//!
//! Failures: any status other than 200 (search), 201/202 (upload) and 503 (the documented
//! backpressure: a full search queue, all upload slots busy, a full writer queue), and any
//! connection error. A client that gets 503 waits for `Retry-After` and goes on.
//!
//! Data: the archive in `PAIRALIGN_LOAD_DB` (built with `pairalign index`; it is copied to a
//! temporary folder first, so the original is left as it was) or, when unset, the bundled samples
//! indexed into a temporary database. Query clips are 3 s excerpts of files of the first half
//! of the catalog, played 5% faster and 3 dB louder; uploads are files of the second half (10 s
//! excerpts of longer ones), slowed by 5% and with noise at 25 dB SNR drawn per upload (new content each
//! time). Settings: `PAIRALIGN_LOAD_CLIENTS` (200), `PAIRALIGN_LOAD_SECONDS` (60),
//! `PAIRALIGN_LOAD_UPLOAD_SHARE` (0.1), `PAIRALIGN_LOAD_QUERIES` (64 distinct clips),
//! `PAIRALIGN_LOAD_UPLOADS` (1,000 distinct upload bodies; when spent, clients only search),
//! `PAIRALIGN_LOAD_SEED` (1), `PAIRALIGN_LOAD_COMPACT_AT` (half the load's seconds; negative:
//! no compaction), `PAIRALIGN_BIN` (default: the workspace's target/release/pairalign).
//!
//! Run: `scripts/load-test.sh [DB]` (builds the release binary, then this bench). Prints a table
//! and one JSON line; exits non-zero when a request failed or an answer changed.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pairalign_archive::{Archive, ArchiveReader, Asset, AssetMetadata};
use pairalign_benches::{env_or, percentile};
use pairalign_datasets::decode::{decode_file, DecodeOptions};
use pairalign_datasets::views::{apply, ViewSpace};
use pairalign_datasets::{Audio, SAMPLE_RATE};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn wav_bytes(audio: &Audio) -> Result<Vec<u8>, BoxError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: audio.sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut bytes = Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut bytes, spec)?;
    for &s in &audio.samples {
        writer.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16)?;
    }
    writer.finalize()?;
    Ok(bytes.into_inner())
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// A 3 s query clip and the answer the server gave for it before the load.
struct Query {
    body: Vec<u8>,
    source: String,
    expected: Option<Value>,
}

/// The identity of a hit: what must not change while the archive changes around it.
fn hit_key(hit: &Value) -> Value {
    serde_json::json!([hit["id"], hit["start_ms"], hit["end_ms"], hit["distance"]])
}

/// Cuts `count` clips of `seconds` from random files of `files`, each through a view drawn from
/// `view` with its own seed. A file shorter than `seconds` is skipped, or, when `whole` is set,
/// taken whole.
fn clips(
    files: &[Asset],
    count: usize,
    seconds: f64,
    whole: bool,
    view: &str,
    rng: &mut StdRng,
) -> Result<Vec<(Vec<u8>, String)>, BoxError> {
    let mut space = ViewSpace::parse(view)?;
    space.p_each = 1.0;
    let window = (seconds * f64::from(SAMPLE_RATE)) as usize;
    let mut out = Vec::with_capacity(count);
    let mut tries = 0;
    while out.len() < count {
        tries += 1;
        if tries > count * 20 {
            return Err(format!("too few files of more than {seconds} s").into());
        }
        let asset = &files[rng.gen_range(0..files.len())];
        let Some(path) = &asset.path else { continue };
        let audio = decode_file(Path::new(path), &DecodeOptions::default())?;
        if audio.samples.len() <= window && !whole {
            continue;
        }
        let window = window.min(audio.samples.len());
        let from = rng.gen_range(0..=audio.samples.len() - window);
        let excerpt = Audio::new(audio.samples[from..from + window].to_vec(), SAMPLE_RATE);
        let drawn = space.draw(rng);
        let clip = apply(&excerpt, &drawn, rng.gen(), &[])?;
        out.push((wav_bytes(&clip)?, asset.id.clone()));
    }
    Ok(out)
}

/// The server under test: killed if the bench stops early.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(bin: &Path, db: &Path) -> Result<Server, BoxError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(bin)
            .args(["serve", "--db"])
            .arg(db)
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::blocking::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while client
            .get(format!("{}/healthz", server.url))
            .send()
            .is_err()
        {
            if Instant::now() > deadline {
                return Err("the server did not answer /healthz within 120 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// Peak resident memory of the server process, in KiB (`VmHWM`).
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// SIGTERM, then the exit status: the server commits what is pending and exits 0.
    fn stop(mut self) -> Result<std::process::ExitStatus, BoxError> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        Ok(self.child.wait()?)
    }
}

/// What one request did.
struct Outcome {
    kind: &'static str,
    /// When the request was sent.
    sent: Instant,
    status: u16,
    ms: f64,
    /// For a 200 search: whether the expected hit was in the answer.
    consistent: Option<bool>,
    failure: Option<String>,
}

/// What the clients share.
struct Load {
    client: reqwest::Client,
    url: String,
    queries: Vec<Query>,
    /// Upload bodies not sent yet.
    uploads: Mutex<Vec<Vec<u8>>>,
    upload_share: f64,
    deadline: Instant,
    outcomes: Mutex<Vec<Outcome>>,
}

async fn client_loop(load: Arc<Load>, seed: u64) {
    let Load {
        client,
        url,
        queries,
        ..
    } = &*load;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut n = 0u64;
    while Instant::now() < load.deadline {
        n += 1;
        let upload = if rng.gen_bool(load.upload_share) {
            load.uploads.lock().map(|mut u| u.pop()).unwrap_or(None)
        } else {
            None
        };
        let t = Instant::now();
        let (kind, query, sent) = match upload {
            Some(body) => {
                let request = client
                    .post(format!("{url}/v1/assets?id=load-{seed}-{n}&tags=load-test"))
                    .header("content-type", "audio/wav")
                    .body(body);
                ("upload", None, request.send().await)
            }
            None => {
                let query = &queries[rng.gen_range(0..queries.len())];
                let request = client
                    .post(format!("{url}/v1/search"))
                    .header("content-type", "audio/wav")
                    .body(query.body.clone());
                ("search", Some(query), request.send().await)
            }
        };
        let mut outcome = Outcome {
            kind,
            sent: t,
            status: 0,
            ms: 0.0,
            consistent: None,
            failure: None,
        };
        let mut retry_after = None;
        match sent {
            Err(e) => {
                // The whole chain: "error sending request" alone does not say what broke.
                let mut message = format!("{kind}: {e}");
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    message.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                outcome.failure = Some(message);
            }
            Ok(response) => {
                outcome.status = response.status().as_u16();
                retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let body = response.text().await.unwrap_or_default();
                let ok = match (kind, outcome.status) {
                    ("search", 200) => {
                        let answer: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                        if let Some(expected) = query.and_then(|q| q.expected.as_ref()) {
                            let found = answer["hits"]
                                .as_array()
                                .is_some_and(|hits| hits.iter().any(|h| &hit_key(h) == expected));
                            outcome.consistent = Some(found);
                        }
                        true
                    }
                    ("upload", 201 | 202) | (_, 503) => true,
                    _ => false,
                };
                if !ok {
                    outcome.failure = Some(format!(
                        "{kind}: {} {}",
                        outcome.status,
                        body.chars().take(200).collect::<String>()
                    ));
                }
            }
        }
        outcome.ms = t.elapsed().as_secs_f64() * 1e3;
        let backoff = (outcome.status == 503).then(|| retry_after.unwrap_or(1));
        if let Ok(mut outcomes) = load.outcomes.lock() {
            outcomes.push(outcome);
        }
        if let Some(seconds) = backoff {
            // Jittered, so that the clients refused together do not come back together.
            let ms = seconds * 1000 / 2 + rng.gen_range(0..seconds * 1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
}

/// The mid-load compaction: when it was sent, when its reply came, and the reply.
struct Compacted {
    started: Instant,
    ended: Instant,
    reply: Value,
}

/// Sends `POST /v1/compact` at `at`; an error unless it is answered 200.
async fn compact(client: reqwest::Client, url: String, at: Instant) -> Result<Compacted, String> {
    tokio::time::sleep_until(at.into()).await;
    let started = Instant::now();
    let response = client
        .post(format!("{url}/v1/compact"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    let ended = Instant::now();
    if status != reqwest::StatusCode::OK {
        return Err(format!("{status}: {body}"));
    }
    let reply = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    Ok(Compacted {
        started,
        ended,
        reply,
    })
}

fn main() -> Result<(), BoxError> {
    let clients: usize = env_or("PAIRALIGN_LOAD_CLIENTS", 200);
    let seconds: f64 = env_or("PAIRALIGN_LOAD_SECONDS", 60.0);
    let share: f64 = env_or("PAIRALIGN_LOAD_UPLOAD_SHARE", 0.1);
    let query_count: usize = env_or("PAIRALIGN_LOAD_QUERIES", 64);
    let upload_count: usize = env_or("PAIRALIGN_LOAD_UPLOADS", 1000);
    let seed: u64 = env_or("PAIRALIGN_LOAD_SEED", 1);
    let compact_at: f64 = env_or("PAIRALIGN_LOAD_COMPACT_AT", seconds / 2.0);
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin: PathBuf = std::env::var_os("PAIRALIGN_BIN")
        .map_or_else(|| workspace.join("target/release/pairalign"), PathBuf::from);
    if !bin.exists() {
        return Err(format!(
            "{} is missing: `cargo build --release` first, or set PAIRALIGN_BIN",
            bin.display()
        )
        .into());
    }

    // The archive under test, copied so that the uploads do not land in the original.
    let temp = tempfile::tempdir()?;
    let db = temp.path().join("db");
    let tokenizer = Arc::new(pairalign_models::shipped::vq(
        &pairalign_models::Device::Cpu,
    )?);
    match std::env::var("PAIRALIGN_LOAD_DB") {
        Ok(dir) => copy_dir(Path::new(&dir), &db)?,
        Err(_) => {
            let mut archive = Archive::open_with(&db, tokenizer.clone())?;
            archive.add_file(workspace.join("samples"), &AssetMetadata::default())?;
        }
    }
    let reader = ArchiveReader::open_with(&db, tokenizer)?;
    let before = reader.stats()?;
    let segments_before = reader.database().segment_count();
    let mut files = reader.assets(Some("duration:>3.5"), 0, usize::MAX)?.assets;
    drop(reader);
    if files.len() < 2 {
        return Err("the archive needs at least two files of 3.5 s or more".into());
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let second_half = files.split_off(files.len() / 2);
    let t = Instant::now();
    let mut queries: Vec<Query> = clips(
        &files,
        query_count,
        3.0,
        false,
        "speed=1.05,gain=3:3",
        &mut rng,
    )?
    .into_iter()
    .map(|(body, source)| Query {
        body,
        source,
        expected: None,
    })
    .collect();
    let upload_seconds = 10.0;
    let uploads: Vec<Vec<u8>> = clips(
        &second_half,
        upload_count,
        upload_seconds,
        true,
        "speed=0.95,noise=25:25",
        &mut rng,
    )?
    .into_iter()
    .map(|(body, _)| body)
    .collect();
    eprintln!(
        "prepared {} query clips and {} uploads of up to {upload_seconds:.0} s in {:.1} s",
        queries.len(),
        uploads.len(),
        t.elapsed().as_secs_f64()
    );

    let server = Server::start(&bin, &db)?;
    // The answers before the load: the reference every answer during it is held to.
    let blocking = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let search_once = |body: &[u8]| -> Result<Value, BoxError> {
        let response = blocking
            .post(format!("{}/v1/search", server.url))
            .header("content-type", "audio/wav")
            .body(body.to_vec())
            .send()?;
        let status = response.status();
        let text = response.text()?;
        if status != 200 {
            return Err(format!("search before the load: {status} {text}").into());
        }
        Ok(serde_json::from_str(&text)?)
    };
    let mut source_first = 0;
    for query in &mut queries {
        let answer = search_once(&query.body)?;
        let top = answer["hits"].as_array().and_then(|h| h.first()).cloned();
        if top
            .as_ref()
            .is_some_and(|h| h["id"] == query.source.as_str())
        {
            source_first += 1;
        }
        query.expected = top.as_ref().map(hit_key);
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(clients)
        .build()?;
    let started = Instant::now();
    let load = Arc::new(Load {
        client,
        url: server.url.clone(),
        queries,
        uploads: Mutex::new(uploads),
        upload_share: share,
        deadline: started + Duration::from_secs_f64(seconds),
        outcomes: Mutex::default(),
    });
    let compaction = runtime.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|i| tokio::spawn(client_loop(Arc::clone(&load), seed * 1_000_003 + i as u64)))
            .collect();
        let compaction = (compact_at >= 0.0).then(|| {
            tokio::spawn(compact(
                load.client.clone(),
                load.url.clone(),
                started + Duration::from_secs_f64(compact_at),
            ))
        });
        for task in tasks {
            let _ = task.await;
        }
        match compaction {
            Some(task) => Some(task.await.unwrap_or_else(|e| Err(e.to_string()))),
            None => None,
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let peak_rss_kib = server.peak_rss_kib();

    // After the load: every query again, one at a time.
    let mut consistent_after = 0;
    for query in &load.queries {
        let answer = search_once(&query.body)?;
        let found = answer["hits"].as_array().is_some_and(|hits| {
            hits.iter()
                .any(|h| Some(hit_key(h)) == query.expected.clone())
        });
        consistent_after += usize::from(found || query.expected.is_none());
    }
    let stats: Value = blocking
        .get(format!("{}/v1/stats", server.url))
        .send()?
        .json()?;
    let exit = server.stop()?;

    let queries = &load.queries;
    let outcomes = load.outcomes.lock().map_err(|_| "a client task panicked")?;
    let mut by_status: BTreeMap<(String, u16), usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let (mut checked, mut inconsistent) = (0usize, 0usize);
    // Searches answered while the compaction ran (sent before it ended, answered after it began).
    let (mut checked_compacting, mut inconsistent_compacting) = (0usize, 0usize);
    let compacting = match &compaction {
        Some(Ok(c)) => Some((c.started, c.ended)),
        _ => None,
    };
    let mut ms: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for o in outcomes.iter() {
        *by_status.entry((o.kind.to_string(), o.status)).or_default() += 1;
        if let Some(f) = &o.failure {
            failures.push(f.clone());
        }
        if let Some(c) = o.consistent {
            checked += 1;
            inconsistent += usize::from(!c);
            let answered = o.sent + Duration::from_secs_f64(o.ms / 1e3);
            if compacting.is_some_and(|(from, to)| o.sent < to && answered > from) {
                checked_compacting += 1;
                inconsistent_compacting += usize::from(!c);
            }
        }
        if o.failure.is_none() && o.status != 503 {
            ms.entry(o.kind).or_default().push(o.ms);
        }
    }
    for v in ms.values_mut() {
        v.sort_by(f64::total_cmp);
    }
    let count = |kind: &str, status: u16| {
        by_status
            .get(&(kind.to_string(), status))
            .copied()
            .unwrap_or(0)
    };
    let uploaded = count("upload", 201) + count("upload", 202);
    let docs_after = stats["docs"].as_u64().unwrap_or(0);
    let reopened = segments_on_disk(&db)?;

    println!(
        "archive: {} documents, {:.1} h, {segments_before} segment(s); {clients} clients for \
         {elapsed:.0} s, {:.0}% uploads; {} query clips (source first before the load: \
         {source_first}), server {}",
        before.docs,
        before.hours,
        share * 100.0,
        queries.len(),
        bin.display()
    );
    println!("{:<8} {:>6} {:>9}", "kind", "status", "requests");
    for ((kind, status), n) in &by_status {
        println!("{kind:<8} {status:>6} {n:>9}");
    }
    println!(
        "{:<8} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "ms", "answered", "p50", "p90", "p99", "max"
    );
    for (kind, v) in &ms {
        println!(
            "{kind:<8} {:>9} {:>8.0} {:>8.0} {:>8.0} {:>8.0}",
            v.len(),
            percentile(v, 50.0),
            percentile(v, 90.0),
            percentile(v, 99.0),
            percentile(v, 100.0)
        );
    }
    let searches = ms.get("search").map_or(0, Vec::len);
    println!(
        "throughput: {:.1} searches/s, {:.2} uploads/s; failed: {}; answers missing the hit \
         found before the load: {inconsistent}/{checked} during, {}/{} after",
        searches as f64 / elapsed,
        uploaded as f64 / elapsed,
        failures.len(),
        queries.len() - consistent_after,
        queries.len()
    );
    println!(
        "documents: {} before + {uploaded} uploaded = {} (server says {docs_after}); segments \
         {segments_before} -> {reopened}; peak RSS {} KiB; server exit {exit}",
        before.docs,
        before.docs + uploaded as u64,
        peak_rss_kib.map_or_else(|| "?".to_string(), |k| k.to_string()),
    );
    match &compaction {
        Some(Ok(c)) => println!(
            "compaction at {compact_at:.0} s: {} ({:.1} s); searches answered while it ran: \
             {checked_compacting}, missing the hit: {inconsistent_compacting}",
            c.reply,
            c.ended.duration_since(c.started).as_secs_f64()
        ),
        Some(Err(e)) => println!("compaction at {compact_at:.0} s failed: {e}"),
        None => println!("no compaction"),
    }
    for f in failures.iter().take(10) {
        println!("failure: {f}");
    }
    let json = serde_json::json!({
        "bench": "load",
        "clients": clients,
        "seconds": elapsed,
        "upload_share": share,
        "archive_docs": before.docs,
        "archive_hours": before.hours,
        "requests": by_status.iter().map(|((k, s), n)| serde_json::json!({"kind": k, "status": s, "count": n})).collect::<Vec<_>>(),
        "latency_ms": ms.iter().map(|(k, v)| (k.to_string(), serde_json::json!({
            "p50": percentile(v, 50.0), "p90": percentile(v, 90.0),
            "p99": percentile(v, 99.0), "max": percentile(v, 100.0), "count": v.len()}))).collect::<BTreeMap<_, _>>(),
        "searches_per_s": searches as f64 / elapsed,
        "uploads_per_s": uploaded as f64 / elapsed,
        "failed": failures.len(),
        "inconsistent_during": inconsistent,
        "checked_during": checked,
        "inconsistent_after": queries.len() - consistent_after,
        "docs_after": docs_after,
        "segments_before": segments_before,
        "segments_after": reopened,
        "peak_rss_kib": peak_rss_kib,
        "compaction": match &compaction {
            Some(Ok(c)) => serde_json::json!({
                "at_s": compact_at,
                "seconds": c.ended.duration_since(c.started).as_secs_f64(),
                "reply": c.reply,
                "searches_during": checked_compacting,
                "inconsistent_during": inconsistent_compacting,
            }),
            Some(Err(e)) => serde_json::json!({"error": e}),
            None => Value::Null,
        },
        "server_exit_ok": exit.success(),
    });
    println!("{json}");
    let ok = failures.is_empty()
        && !matches!(compaction, Some(Err(_)))
        && inconsistent == 0
        && consistent_after == queries.len()
        && docs_after == before.docs + uploaded as u64
        && exit.success();
    if !ok {
        return Err("the load test failed: see above".into());
    }
    Ok(())
}

/// Segments of the database after the server stopped.
fn segments_on_disk(db: &Path) -> Result<usize, BoxError> {
    Ok(pairalign_engine::Searcher::open(db)?.segment_count())
}
