//! `pairalign excerpt`: cut a clip out of a recording and optionally modify it with views, to
//! make a query by example (and to try how far a tokenizer carries a modified clip).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use pairalign_datasets::decode::{decode_file, DecodeOptions};
use pairalign_datasets::synth::write_wav_16k;
use pairalign_datasets::views::{apply, ViewSpace};
use pairalign_datasets::{Audio, SAMPLE_RATE};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;

/// Arguments of `pairalign excerpt`.
#[derive(clap::Args, Debug)]
pub struct ExcerptArgs {
    /// The recording (any format the front end decodes).
    file: PathBuf,
    /// Start of the excerpt in seconds.
    #[arg(long, default_value_t = 0.0)]
    start: f64,
    /// Length of the excerpt in seconds.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Views applied to the excerpt, every one named (fixed values or ranges drawn from the
    /// seed), e.g. "speed=1.05,gain=3:3" or "noise=20,speed=1.05,gain=-6:-6".
    #[arg(long)]
    view: Option<String>,
    /// Seed of the views' random parts (noise, values drawn from ranges).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The 16 kHz mono WAV to write.
    #[arg(long)]
    out: PathBuf,
    /// Print what was written as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `excerpt`.
pub fn excerpt(args: ExcerptArgs) -> anyhow::Result<ExitCode> {
    if !(args.start.is_finite() && args.start >= 0.0) {
        bail!("--start must be a time in seconds >= 0, got {}", args.start);
    }
    if !(args.duration.is_finite() && args.duration > 0.0) {
        bail!("--duration must be positive, got {}", args.duration);
    }
    let audio = decode_file(&args.file, &DecodeOptions::default())?;
    let rate = f64::from(SAMPLE_RATE);
    let total_s = audio.samples.len() as f64 / rate;
    let first = (args.start * rate).round() as usize;
    let last = ((args.start + args.duration) * rate).round() as usize;
    if last > audio.samples.len() {
        bail!(
            "{}: the excerpt {:.2}-{:.2} s ends after the recording ({total_s:.2} s)",
            args.file.display(),
            args.start,
            args.start + args.duration
        );
    }
    let mut clip = Audio::new(audio.samples[first..last].to_vec(), SAMPLE_RATE);
    let mut applied = None;
    if let Some(spec) = &args.view {
        let mut space = ViewSpace::parse(spec)?;
        // Every named view, not a random subset of them.
        space.p_each = 1.0;
        let view = space.draw(&mut StdRng::seed_from_u64(args.seed));
        clip = apply(&clip, &view, args.seed, &[])?;
        applied = Some(format!("{view:?}"));
    }
    write_wav_16k(&args.out, &clip)?;
    let seconds = clip.samples.len() as f64 / rate;
    if args.json {
        let line = json!({
            "file": args.file.display().to_string(),
            "start_s": args.start,
            "duration_s": args.duration,
            "view": applied,
            "out": args.out.display().to_string(),
            "out_duration_s": seconds,
        });
        println!("{line}");
    } else {
        println!(
            "{} {:.2}-{:.2} s{} -> {} ({seconds:.2} s)",
            args.file.display(),
            args.start,
            args.start + args.duration,
            applied.map(|v| format!(", {v}")).unwrap_or_default(),
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
