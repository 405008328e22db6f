//! `pairalign report`: what an archive holds and what it costs per hour, against VQ.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use pairalign_engine::Searcher;
use pairalign_query::{archive_report, compare, svg};

/// Arguments of `pairalign report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Database directory.
    #[arg(long)]
    db: PathBuf,
    /// Compare with another tokenizer (`vq`, `vq-v2`, `pairalign`, `pairalign-v2`, `pairalign-v3` or a weights folder) by re-tokenizing a
    /// sample of the archive's files (they must still be at their indexed paths).
    #[arg(long)]
    vs: Option<String>,
    /// Files re-tokenized for --vs, spread evenly over the archive.
    #[arg(long, default_value_t = 50)]
    sample: usize,
    /// Write an SVG bar chart (tokens and bytes per hour) here.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs `report`.
pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let db = Searcher::open(&args.db)?;
    let mut report = archive_report(&db)?;
    if let Some(name) = &args.vs {
        let other = crate::tokenize::load_tokenizer(name)?;
        report.versus = Some(compare(&db, &report, &other, args.sample)?);
    }
    if let Some(path) = &args.plot {
        std::fs::write(path, svg(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let tokenizer = report
        .tokenizer
        .as_ref()
        .map_or("none recorded".to_string(), |t| {
            format!(
                "{} ({})",
                t.id,
                &t.weights_hash[..12.min(t.weights_hash.len())]
            )
        });
    println!("archive     {}", args.db.display());
    println!("tokenizer   {tokenizer}");
    println!("documents   {}", report.docs);
    println!("audio       {:.2} h", report.hours);
    println!(
        "tokens      {} ({:.2} per second)",
        report.tokens, report.tokens_per_s
    );
    println!(
        "on disk     {} ({} per hour)",
        size(report.bytes as f64),
        size(report.bytes_per_hour)
    );
    let s = &report.storage;
    println!(
        "  tokens {}, times {}, postings {}, documents {}, catalog {}, other {}",
        size(s.tokens as f64),
        size(s.times as f64),
        size(s.postings as f64),
        size(s.documents as f64),
        size(s.catalog as f64),
        size(s.other as f64)
    );
    if let Some(v) = &report.versus {
        println!(
            "vs {}      {:.2} tokens per second on {} files ({:.2} h{}): the archive has {:.1}% fewer \
             tokens; at that rate it would take {} per hour",
            v.tokenizer,
            v.other_tokens_per_s,
            v.files,
            v.sample_s / 3600.0,
            if v.unreadable > 0 {
                format!(", {} unreadable", v.unreadable)
            } else {
                String::new()
            },
            v.reduction_percent,
            size(v.other_bytes_per_hour)
        );
    }
    if let Some(path) = &args.plot {
        println!("plot        {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Bytes as kB below a megabyte, MB above.
fn size(bytes: f64) -> String {
    if bytes < 1e6 {
        format!("{:.1} kB", bytes / 1e3)
    } else {
        format!("{:.1} MB", bytes / 1e6)
    }
}
