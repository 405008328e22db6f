//! `pairalign serve`: the HTTP API (`pairalign-server`) over one archive, until Ctrl-C or
//! SIGTERM; queued writes are committed before it exits.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pairalign_server::{read_token_file, Limits, Server};

use crate::tokenize::{tokenizer_for, with_phases};

/// Arguments of `pairalign serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Database directory (created when missing).
    #[arg(long)]
    db: PathBuf,
    /// Address to listen on. The default is the loopback interface only; to serve other
    /// machines give e.g. 0.0.0.0:7700, and a --token-file.
    #[arg(long, default_value = "127.0.0.1:7700")]
    addr: SocketAddr,
    /// A file holding the bearer token that writes (uploads, deletes) must carry as
    /// `Authorization: Bearer <token>`; reads stay open (see --protect). Without it writes are
    /// open.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// What the token guards: `writes` (uploads, deletes, compaction), or `reads` too
    /// (searches, asset listings with the server's paths and hashes, the audio of spans, jobs,
    /// stats, metrics; /healthz, /openapi.json and the console's page stay open). `reads` needs
    /// --token-file.
    #[arg(long, value_enum, default_value_t = Protect::Writes)]
    protect: Protect,
    /// `vq`, `vq-v2`, `pairalign`, `pairalign-v2`, `pairalign-v3` (the shipped models) or a weights folder of either kind; must be the
    /// tokenizer the database was built with. Default: the shipped model the database
    /// records, or pairalign-v3 (the default) for a new database.
    #[arg(long)]
    tokenizer: Option<String>,
    /// The grid phases a query clip is tokenized at (PairAlign tokenizers) [default: the
    /// model's, 4 for the shipped ones]; 2 halves the search (see `pairalign search --help`).
    #[arg(long)]
    phases: Option<usize>,
    /// Largest request body, in MiB (larger: 413).
    #[arg(long, default_value_t = Limits::default().max_body_bytes >> 20)]
    max_body_mib: u64,
    /// Longest time for one request, body upload included, in seconds (longer: 408).
    #[arg(long, default_value_t = Limits::default().request_timeout.as_secs())]
    timeout: u64,
    /// Searches running at once (more wait in the queue) [default: twice the number of cores].
    #[arg(long)]
    max_searches: Option<usize>,
    /// Searches waiting for a slot, first come first served (one more: 503 at once; 0: no
    /// queue).
    #[arg(long, default_value_t = Limits::default().search_queue)]
    search_queue: usize,
    /// Longest wait in the search queue, in seconds (then 503).
    #[arg(long, default_value_t = Limits::default().search_queue_wait.as_secs_f64())]
    search_queue_wait: f64,
    /// Uploads receiving their body or waiting for their commit at once (one more: 503).
    #[arg(long, default_value_t = Limits::default().max_concurrent_uploads)]
    max_uploads: usize,
    /// Uploads of at most this many seconds of audio are committed before the reply (201);
    /// longer ones are queued as jobs (202).
    #[arg(long, default_value_t = Limits::default().sync_upload_max_s)]
    sync_upload_s: f64,
    /// Longest wait for a request's headers, in seconds; also how long an idle keep-alive
    /// connection stays open.
    #[arg(long, default_value_t = Limits::default().header_timeout.as_secs_f64())]
    header_timeout: f64,
    /// Connections open at once (one more: 503 and closed).
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// On Ctrl-C or SIGTERM, seconds that requests in flight get to finish before their
    /// connections are closed (queued writes are committed either way).
    #[arg(long, default_value_t = Limits::default().shutdown_grace.as_secs_f64())]
    shutdown_grace: f64,
    /// Check every segment in full (checksums and contents, as `pairalign check` does) before
    /// listening, and refuse to start on a damaged one. Without it the server starts at once and
    /// checks the segments in the background; a damaged one fails the requests that read it.
    #[arg(long)]
    verify: bool,
}

/// What `--token-file`'s token guards.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protect {
    /// Uploads, deletes and compaction.
    Writes,
    /// Every route but /healthz and /openapi.json.
    Reads,
}

fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).map_err(|e| anyhow::anyhow!("--{flag} {value}: {e}"))
}

/// Runs `serve`: exit code 0 after a shutdown on Ctrl-C or SIGTERM.
pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let token = args
        .token_file
        .as_deref()
        .map(read_token_file)
        .transpose()?;
    let defaults = Limits::default();
    let limits = Limits {
        max_body_bytes: args.max_body_mib << 20,
        request_timeout: Duration::from_secs(args.timeout),
        max_concurrent_searches: args
            .max_searches
            .unwrap_or(defaults.max_concurrent_searches),
        search_queue: args.search_queue,
        search_queue_wait: seconds("search-queue-wait", args.search_queue_wait)?,
        max_concurrent_uploads: args.max_uploads,
        sync_upload_max_s: args.sync_upload_s,
        header_timeout: seconds("header-timeout", args.header_timeout)?,
        max_connections: args.max_connections,
        shutdown_grace: seconds("shutdown-grace", args.shutdown_grace)?,
        ..defaults
    };
    if args.verify && args.db.join("MANIFEST").exists() {
        pairalign_engine::Searcher::open(&args.db)
            .and_then(|db| db.verify())
            .with_context(|| format!("{} did not pass its check", args.db.display()))?;
    }
    let tokenizer = with_phases(
        tokenizer_for(&args.db, args.tokenizer.as_deref())?,
        args.phases,
    )?;
    if !args.addr.ip().is_loopback() && token.is_none() {
        eprintln!(
            "warning: serving {} without --token-file: anyone who reaches it can add and delete",
            args.addr
        );
    }
    if args.protect == Protect::Reads && token.is_none() {
        anyhow::bail!("--protect reads needs --token-file");
    }
    let open_writes = token.is_none();
    let server = Server::builder()
        .token(token)
        .protect_reads(args.protect == Protect::Reads)
        .limits(limits)
        .build(&args.db, Arc::new(tokenizer))?;
    let listener =
        TcpListener::bind(args.addr).with_context(|| format!("cannot listen on {}", args.addr))?;
    eprintln!(
        "serving {} on http://{} ({}); Ctrl-C stops",
        args.db.display(),
        listener.local_addr()?,
        match (open_writes, args.protect) {
            (true, _) => "writes open",
            (false, Protect::Writes) => "writes need the token",
            (false, Protect::Reads) => "reads and writes need the token",
        }
    );
    server.run(listener)?;
    eprintln!("stopped; queued writes are committed");
    Ok(ExitCode::SUCCESS)
}
