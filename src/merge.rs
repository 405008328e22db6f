//! `pairalign merge`: argument handling and output around `pairalign_indexer::merge_databases`.

use std::path::PathBuf;
use std::process::ExitCode;

use pairalign_indexer::{merge_databases, MergeOptions};

/// Arguments of `pairalign merge`.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// Output database directory (created when missing; an existing one gains the documents it
    /// does not hold yet).
    #[arg(long)]
    db: PathBuf,
    /// Shard databases to copy from (same vocabulary, q and tokenizer), in order: where two
    /// shards hold one id with different tokens, the first copy stays.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// Tokens per commit (a killed merge keeps what it committed; a rerun goes on from there).
    #[arg(long, default_value_t = MergeOptions::default().batch_tokens)]
    batch_tokens: u64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs `merge`: exit code 0 when every document is in the output, 1 when some were left out
/// as conflicts (each printed), 2 on an error (nothing written when a shard is unreadable or
/// the databases do not match).
pub fn merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let options = MergeOptions {
        batch_tokens: args.batch_tokens,
    };
    let report = merge_databases(&args.db, &args.shards, &options, |p| {
        eprintln!("merge: {} of {} documents", p.docs_done, p.docs_total);
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for conflict in &report.conflicts {
            println!(
                "CONFLICT {}: {} holds it with other tokens than the output; not copied",
                conflict.id,
                conflict.shard.display()
            );
        }
        println!(
            "{}: {} shard(s), {} document(s) copied ({} tokens, {} catalog entries), {} already \
             present, {} conflict(s)",
            args.db.display(),
            report.shards,
            report.added,
            report.tokens,
            report.catalog_entries,
            report.already_present,
            report.conflicts.len()
        );
    }
    Ok(if report.conflicts.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
