//! `pairalign check` and `pairalign repair`: argument handling and output around
//! `pairalign_indexer::{check_database, repair_catalog}`.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `pairalign check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Database directory.
    #[arg(long)]
    db: PathBuf,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs `check`: exit code 0 when all is well, 1 when something is wrong (each problem printed).
pub fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let report = pairalign_indexer::check_database(&args.db);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for line in &report.checked {
            println!("ok       {line}");
        }
        for line in &report.notes {
            println!("note     {line}");
        }
        for line in &report.problems {
            println!("PROBLEM  {line}");
        }
        println!(
            "{}: {}",
            args.db.display(),
            match report.problems.len() {
                0 => "all is well".to_string(),
                n => format!("{n} problem(s)"),
            }
        );
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Arguments of `pairalign repair`.
#[derive(clap::Args, Debug)]
pub struct RepairArgs {
    /// Database directory (its writer lock is taken: stop `serve` and `index` first).
    #[arg(long)]
    db: PathBuf,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs `repair`: exit code 0 when the catalog was rebuilt (documents whose metadata could not
/// all be recovered are listed), 2 on an error (the present catalog is left in place).
pub fn repair(args: RepairArgs) -> anyhow::Result<ExitCode> {
    let report = pairalign_indexer::repair_catalog(&args.db)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    for lost in &report.not_recovered {
        println!("{}: {}", lost.id, lost.reason);
    }
    if let Some(aside) = &report.moved_aside {
        println!("the previous catalog was moved to {}", aside.display());
    }
    println!(
        "rebuilt {}: {} entries ({} kept from the previous catalog, {} from files and \
         sidecars, {} not recovered)",
        report.catalog.display(),
        report.entries,
        report.kept,
        report.from_files,
        report.not_recovered.len()
    );
    Ok(ExitCode::SUCCESS)
}
