//! `pairalign tokenize`: audio files to token strings with times, with any tokenizer.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use pairalign_datasets::decode::{decode_file, DecodeOptions};
use pairalign_datasets::SAMPLE_RATE;
use pairalign_models::{
    shipped, tokenize_windows, AnyTokenizer, Device, Tokenizer, WINDOWS_PER_CALL,
};
use serde_json::json;

/// Arguments of `pairalign tokenize`.
#[derive(clap::Args, Debug)]
pub struct TokenizeArgs {
    /// Audio files (any format the front end decodes).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// `vq`, `vq-v2`, `pairalign`, `pairalign-v2`, `pairalign-v3` (the shipped models) or a weights folder of either kind
    /// (model.safetensors and config.json, as `pairalign train` writes).
    #[arg(long, default_value = shipped::DEFAULT)]
    tokenizer: String,
    /// Window length in seconds: a file is tokenized window by window, as the index does.
    #[arg(long, default_value_t = 3.0)]
    window: f64,
    /// One JSON object per file (file, duration_ms, tokens, times_ms, tokens_per_s).
    #[arg(long)]
    json: bool,
    /// Where the model runs: `cpu`, `cuda` or `cuda:N` (a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Runs `tokenize`; a file that fails is reported and the others still run (exit code 1).
pub fn tokenize(args: TokenizeArgs) -> anyhow::Result<ExitCode> {
    if !(args.window.is_finite() && args.window >= 0.1) {
        anyhow::bail!("--window must be at least 0.1 s, got {}", args.window);
    }
    let device = parse_device(&args.device)?;
    let tokenizer = load_tokenizer_on(&args.tokenizer, &device)?;
    let window = (args.window * f64::from(SAMPLE_RATE)) as usize;
    let mut failed = 0;
    // Audio seconds tokenized and seconds spent in the tokenizer (decoding files not counted).
    let (mut audio_s, mut busy_s) = (0.0, 0.0);
    for path in &args.files {
        let result = decode_file(path, &DecodeOptions::default())
            .map_err(anyhow::Error::from)
            .and_then(|audio| {
                let started = Instant::now();
                let ts = tokenize_windows(&tokenizer, &audio.samples, window, WINDOWS_PER_CALL)?;
                busy_s += started.elapsed().as_secs_f64();
                audio_s += audio.samples.len() as f64 / f64::from(SAMPLE_RATE);
                Ok((audio.samples.len(), ts))
            });
        let (samples, ts) = match result {
            Ok(r) => r,
            Err(e) => {
                eprintln!("failed {}: {e:#}", path.display());
                failed += 1;
                continue;
            }
        };
        let duration_ms = samples as u64 * 1000 / u64::from(SAMPLE_RATE);
        let rate = ts.len() as f64 / (samples as f64 / f64::from(SAMPLE_RATE)).max(1e-9);
        if args.json {
            let line = json!({
                "file": path.display().to_string(),
                "duration_ms": duration_ms,
                "tokens": ts.tokens,
                "times_ms": ts.times_ms,
                "tokens_per_s": rate,
            });
            println!("{line}");
        } else {
            println!(
                "{}: {:.2} s, {} tokens ({rate:.1}/s)",
                path.display(),
                duration_ms as f64 / 1000.0,
                ts.len()
            );
            let shown: Vec<String> = ts
                .tokens
                .iter()
                .zip(&ts.times_ms)
                .map(|(t, ms)| format!("{t}@{ms}"))
                .collect();
            println!("  {}", shown.join(" "));
        }
    }
    eprintln!(
        "tokenized {:.1} s of audio in {busy_s:.2} s on {}: {:.0}x realtime",
        audio_s,
        args.device,
        audio_s / busy_s.max(1e-9)
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `cpu`, `cuda` or `cuda:N` (a build with the `cuda` feature, on a machine with a GPU).
pub fn parse_device(name: &str) -> anyhow::Result<Device> {
    Ok(pairalign_models::parse_device(name)?)
}

/// `vq`, `vq-v2`, `pairalign`, `pairalign-v2`, `pairalign-v3` (the shipped models) or a weights folder of either kind, on the CPU.
pub fn load_tokenizer(name: &str) -> anyhow::Result<AnyTokenizer> {
    load_tokenizer_on(name, &Device::Cpu)
}

/// [`load_tokenizer`] on `device`.
pub fn load_tokenizer_on(name: &str, device: &Device) -> anyhow::Result<AnyTokenizer> {
    let tok = AnyTokenizer::open(name, device)
        .with_context(|| format!("cannot load the tokenizer {name}"))?;
    announce(&tok);
    Ok(tok)
}

/// The tokenizer `name` (`--tokenizer`), or without one the shipped model that the database at
/// `db` records (a shipped id with the weights hash it recorded); the default,
/// pairalign-v2, for a database that does not exist yet or records no tokenizer
/// ([`pairalign_query::database_tokenizer`]). A database built with a weights folder needs that
/// folder named: an error says so.
pub fn tokenizer_for(db: &Path, name: Option<&str>) -> anyhow::Result<AnyTokenizer> {
    if let Some(name) = name {
        return load_tokenizer(name);
    }
    let tok = pairalign_query::database_tokenizer(db, &Device::Cpu)
        .map_err(|e| anyhow::anyhow!("{e} with --tokenizer"))?;
    announce(&tok);
    Ok(tok)
}

/// `tok` with queries cut at `phases` grid phases when given (`--phases`).
pub fn with_phases(tok: AnyTokenizer, phases: Option<usize>) -> anyhow::Result<AnyTokenizer> {
    match phases {
        None => Ok(tok),
        Some(n) => Ok(tok.with_query_phases(n).context("--phases")?),
    }
}

fn announce(tok: &dyn Tokenizer) {
    eprintln!(
        "tokenizer {} (weights {})",
        tok.id(),
        &tok.weights_hash()[..12.min(tok.weights_hash().len())]
    );
}
