//! Renders synthetic speech with `pairalign_datasets::synth::render` and prints the report as
//! JSON; a stand-in for `pairalign synth` until the CLI is wired, and the rendering-speed check:
//!
//! ```text
//! cargo run --release -p pairalign-datasets --example synth_render -- \
//!     --out /tmp/synth --hours 0.05 --seed 1 --jobs 2 [--engines espeak-ng,flite,piper] \
//!     [--voices-per-sentence K]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use pairalign_datasets::synth::{render, SynthOptions};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let mut options = SynthOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--out" => options.out = PathBuf::from(value),
            "--hours" => options.hours = value.parse().context("--hours")?,
            "--seed" => options.seed = value.parse().context("--seed")?,
            "--jobs" => options.jobs = value.parse().context("--jobs")?,
            "--heldout" => options.heldout_fraction = value.parse().context("--heldout")?,
            "--engines" => options.engines = value.split(',').map(str::to_string).collect(),
            "--voices-per-sentence" => {
                options.voices_per_sentence = value.parse().context("--voices-per-sentence")?
            }
            other => bail!("unknown flag {other}"),
        }
    }
    let report = render(&options, |p| {
        if p.done % 50 == 0 || p.done == p.planned {
            eprintln!(
                "{}/{} utterances, {:.0} s of audio",
                p.done, p.planned, p.seconds
            );
        }
    })?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}
