//! `pairalign train vq` and `pairalign train pairalign`: argument handling around
//! `pairalign_models::train::{VqTrainer, PairAlignTrainer}`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use pairalign_datasets::cache::{build_cache, CacheBuildOptions, FeatureCache};
use pairalign_datasets::corpus::{read_folder, read_manifest_split, Split};
use pairalign_datasets::decode::probe_duration;
use pairalign_models::train::{
    LogRecord, PairAlignLogRecord, PairAlignTrainConfig, PairAlignTrainer, VqTrainConfig, VqTrainer,
};
use pairalign_models::{shipped, AnyTokenizer, Device, Tokenizer, VqTokenizer};

/// Arguments of `pairalign train vq`.
#[derive(clap::Args, Debug)]
pub struct TrainVqArgs {
    /// Training data: a feature cache (`pairalign features`), a synthetic corpus's
    /// manifest.jsonl (its training voices only) or a folder of audio. A corpus is turned into
    /// `OUT/features.feat` first (2 views per 3 s clip), once.
    #[arg(long)]
    data: PathBuf,
    /// Output folder: checkpoint/, train.jsonl, and the trained tokenizer (model.safetensors,
    /// config.json) at the end.
    #[arg(long)]
    out: PathBuf,
    /// A JSON file with the run's config (fields of VqTrainConfig; missing ones take defaults).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Optimizer steps of the whole run.
    #[arg(long)]
    steps: Option<u64>,
    /// Clips per step (each in two views).
    #[arg(long)]
    batch: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Seed of the initial weights and of the batch order.
    #[arg(long)]
    seed: Option<u64>,
    /// Steps between checkpoints.
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Steps between log lines.
    #[arg(long)]
    log_every: Option<u64>,
    /// Start from this trained PairAlign tokenizer's weights (a weights folder, or `pairalign`
    /// for the shipped one) instead of the VQ encoder and new decoder: fine-tuning. --init
    /// still names the VQ tokenizer of the targets.
    #[arg(long)]
    warm_start: Option<String>,
    /// Continue the run in OUT from its checkpoint (its config is kept; --steps may extend it).
    #[arg(long)]
    resume: bool,
    /// Where to train: cpu, cuda or cuda:N (CUDA needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print the final report as JSON.
    #[arg(long)]
    json: bool,
}

/// A flag that Ctrl-C (or SIGTERM) sets: the loop stops after the current step with a
/// checkpoint; a second one exits at once.
fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::Relaxed) {
            eprintln!("\nsecond interrupt: exiting without a checkpoint");
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: saving a checkpoint after this step (Ctrl-C again to abort)");
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(stop)
}

/// Runs `train vq`; Ctrl-C (or SIGTERM) stops after the current step with a checkpoint.
pub fn train_vq(args: TrainVqArgs) -> anyhow::Result<ExitCode> {
    let stop = stop_flag()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let cache_path = training_cache(&args.data, &args.out)?;
    let cache = FeatureCache::open(&cache_path)?;
    let device = crate::tokenize::parse_device(&args.device)?;
    let mut trainer = if args.resume {
        if args.config.is_some() || args.batch.is_some() || args.lr.is_some() || args.seed.is_some()
        {
            bail!("--resume keeps the run's config: only --steps may change");
        }
        VqTrainer::resume(&cache, &args.out, args.steps, &device)?
    } else {
        if pairalign_models::train::checkpoint::find(&args.out).is_some() {
            bail!(
                "{} already holds a checkpoint: pass --resume to continue it, or another --out",
                args.out.display()
            );
        }
        VqTrainer::new(&cache, config(&args)?, &args.out, &device)?
    };
    let cfg = trainer.config().clone();
    eprintln!(
        "training vq on {} ({} clips): {} steps of {} clips x 2 views, from step {}",
        cache_path.display(),
        cache.len(),
        cfg.steps,
        cfg.batch_size,
        trainer.step()
    );
    let report = trainer.run(&stop, |r| eprintln!("{}", log_line(r)))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else if report.interrupted {
        println!(
            "stopped at step {}; checkpoint in {} (continue with --resume)",
            report.step,
            report.checkpoint.display()
        );
    } else {
        println!(
            "trained {} steps in {:.0} s; tokenizer written to {}",
            report.step,
            report.wall_s,
            args.out.display()
        );
    }
    Ok(if report.interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// The run config: defaults, then the --config file, then the flags.
fn config(args: &TrainVqArgs) -> anyhow::Result<VqTrainConfig> {
    let mut cfg = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?
        }
        None => VqTrainConfig::default(),
    };
    if let Some(v) = args.steps {
        cfg.steps = v;
    }
    if let Some(v) = args.batch {
        cfg.batch_size = v;
    }
    if let Some(v) = args.lr {
        cfg.lr.peak = v;
    }
    if let Some(v) = args.seed {
        cfg.seed = v;
    }
    if let Some(v) = args.checkpoint_every {
        cfg.checkpoint_every = v;
    }
    if let Some(v) = args.log_every {
        cfg.log_every = v;
    }
    Ok(cfg)
}

/// The feature cache to train on: `data` itself when it is one, else `out/features.feat`, built
/// from the corpus at `data` unless it is already there.
fn training_cache(data: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    if data.is_file() && data.extension().is_some_and(|e| e == "feat") {
        return Ok(data.to_path_buf());
    }
    let cache = out.join("features.feat");
    if cache.is_file() {
        eprintln!("using the feature cache {} built earlier", cache.display());
        return Ok(cache);
    }
    let corpus = if data.is_file() {
        read_manifest_split(data, Some(Split::Train))?
    } else if data.is_dir() {
        read_folder(data, &probe_duration)?
    } else {
        bail!(
            "--data {}: not a feature cache (.feat), a manifest.jsonl or a folder",
            data.display()
        );
    };
    for (path, why) in &corpus.problems {
        eprintln!("skipped {}: {why}", path.display());
    }
    eprintln!(
        "building the feature cache {} from {} utterances",
        cache.display(),
        corpus.utterances.len()
    );
    let report = build_cache(&corpus.utterances, &cache, &CacheBuildOptions::default())?;
    for (id, why) in &report.failed {
        eprintln!("failed {id}: {why}");
    }
    Ok(cache)
}

/// One human-readable log line.
fn log_line(r: &LogRecord) -> String {
    let eta = (r.steps - r.step) as f64 / r.steps_per_s.max(1e-9);
    format!(
        "step {}/{} epoch {} loss {:.4} recon {:.4} commit {:.4} ppl {:.1} used {} dead {} \
         |g| {:.2} lr {:.2e} {:.2} steps/s eta {:.0} min",
        r.step,
        r.steps,
        r.epoch,
        r.loss,
        r.recon,
        r.commit,
        r.perplexity,
        r.used_codes,
        r.dead_codes,
        r.grad_norm,
        r.lr,
        r.steps_per_s,
        eta / 60.0
    )
}

/// A training component of PairAlign, as named by `--without`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Component {
    /// 1. VQ-derived targets (EMA-teacher targets from the start).
    VqTargets,
    /// 2. EMA-teacher targets (VQ-derived targets throughout).
    EmaTeacher,
    /// 3. Cross-paired teacher forcing (each view on its own target).
    CrossPaired,
    /// 4. Anti-bypass corruption of the teacher-forced prefix.
    AntiBypass,
    /// 5. Likelihood contrast.
    Contrast,
    /// 6. The length loss (the length bounds of decoding stay).
    LengthControl,
    /// 7. Timing recovery (the timing head is not trained).
    Timing,
}

/// Arguments of `pairalign train pairalign`.
#[derive(clap::Args, Debug)]
pub struct TrainPairAlignArgs {
    /// The VQ tokenizer whose encoder and normalization the model starts from: a weights
    /// folder, or `vq` for the shipped vq-v1 (also when the default folder is missing).
    #[arg(long, default_value = shipped::VQ_DIR)]
    init: String,
    /// Training data: a feature cache (`pairalign features`), a synthetic corpus's
    /// manifest.jsonl (its training voices only) or a folder of audio. A corpus is turned into
    /// `OUT/features.feat` first (2 views per 3 s clip), once.
    #[arg(long)]
    data: PathBuf,
    /// Output folder: checkpoint/, init-vq/, train.jsonl, and the trained tokenizer
    /// (model.safetensors, config.json) at the end.
    #[arg(long)]
    out: PathBuf,
    /// A JSON file with the run's config (fields of PairAlignTrainConfig, the components under
    /// `model.components`; missing ones take defaults).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Switch a training component off (repeatable), for ablations.
    #[arg(long, value_enum)]
    without: Vec<Component>,
    /// Optimizer steps of the whole run.
    #[arg(long)]
    steps: Option<u64>,
    /// Clips per step (each in two views).
    #[arg(long)]
    batch: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Seed of the new weights, of the batch order and of every random draw.
    #[arg(long)]
    seed: Option<u64>,
    /// Steps between checkpoints.
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Steps between log lines.
    #[arg(long)]
    log_every: Option<u64>,
    /// Start from this trained PairAlign tokenizer's weights (a weights folder, or `pairalign`
    /// for the shipped one) instead of the VQ encoder and new decoder: fine-tuning. --init
    /// still names the VQ tokenizer of the targets.
    #[arg(long)]
    warm_start: Option<String>,
    /// Continue the run in OUT from its checkpoint (its config is kept; --steps may extend it).
    #[arg(long)]
    resume: bool,
    /// Where to train: cpu, cuda or cuda:N (CUDA needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print the final report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `train pairalign`; Ctrl-C (or SIGTERM) stops after the current step with a checkpoint.
pub fn train_pairalign(args: TrainPairAlignArgs) -> anyhow::Result<ExitCode> {
    let stop = stop_flag()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let cache_path = training_cache(&args.data, &args.out)?;
    let cache = FeatureCache::open(&cache_path)?;
    let device = crate::tokenize::parse_device(&args.device)?;
    let mut trainer = if args.resume {
        if args.config.is_some()
            || args.batch.is_some()
            || args.lr.is_some()
            || args.seed.is_some()
            || !args.without.is_empty()
            || args.warm_start.is_some()
        {
            bail!("--resume keeps the run's config: only --steps may change");
        }
        PairAlignTrainer::resume(&cache, &args.out, args.steps, &device)?
    } else {
        if pairalign_models::train::checkpoint::find(&args.out).is_some() {
            bail!(
                "{} already holds a checkpoint: pass --resume to continue it, or another --out",
                args.out.display()
            );
        }
        let init = init_vq(&args.init, &device)?;
        let cfg = pairalign_config(&args, &init)?;
        let mut trainer = PairAlignTrainer::new(&cache, cfg, init, &args.out, &device)?;
        if let Some(from) = &args.warm_start {
            let from = AnyTokenizer::open(from, &device)?;
            let Some(from) = from.as_pairalign() else {
                bail!(
                    "--warm-start needs a PairAlign tokenizer, {} is not one",
                    from.id()
                );
            };
            trainer.warm_start(from)?;
        }
        trainer
    };
    let cfg = trainer.config().clone();
    eprintln!(
        "training pairalign on {} ({} clips): {} steps of {} clips x 2 views, from step {}",
        cache_path.display(),
        cache.len(),
        cfg.steps,
        cfg.batch_size,
        trainer.step()
    );
    let report = trainer.run(&stop, |r| eprintln!("{}", pairalign_log_line(r)))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else if report.interrupted {
        println!(
            "stopped at step {}; checkpoint in {} (continue with --resume)",
            report.step,
            report.checkpoint.display()
        );
    } else {
        println!(
            "trained {} steps in {:.0} s; tokenizer written to {}",
            report.step,
            report.wall_s,
            args.out.display()
        );
    }
    Ok(if report.interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// The VQ tokenizer named by `--init`: `vq` (or the shipped folder when it is not on disk,
/// e.g. outside the repository) is the compiled-in vq-v1.
fn init_vq(name: &str, device: &Device) -> anyhow::Result<VqTokenizer> {
    let path = Path::new(name);
    let tok = if name == "vq" || (name == shipped::VQ_DIR && !path.is_dir()) {
        shipped::vq(device)?
    } else {
        VqTokenizer::load(path, device)
            .with_context(|| format!("--init {name}: cannot load the VQ tokenizer"))?
    };
    Ok(tok)
}

/// The run config: defaults over the init's encoder, then the --config file, then the flags.
fn pairalign_config(
    args: &TrainPairAlignArgs,
    init: &VqTokenizer,
) -> anyhow::Result<PairAlignTrainConfig> {
    let mut cfg = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let value: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
            let own_encoder = value.pointer("/model/encoder").is_some();
            let mut cfg: PairAlignTrainConfig =
                serde_json::from_value(value).with_context(|| format!("{}", path.display()))?;
            // The encoder is the init's unless the file says otherwise.
            if !own_encoder {
                cfg.model.encoder = init.config().clone();
            }
            cfg
        }
        None => PairAlignTrainConfig {
            model: pairalign_models::PairAlignConfig::from_vq(init.config()),
            ..Default::default()
        },
    };
    if let Some(v) = args.steps {
        cfg.steps = v;
    }
    if let Some(v) = args.batch {
        cfg.batch_size = v;
    }
    if let Some(v) = args.lr {
        cfg.lr.peak = v;
    }
    if let Some(v) = args.seed {
        cfg.seed = v;
    }
    if let Some(v) = args.checkpoint_every {
        cfg.checkpoint_every = v;
    }
    if let Some(v) = args.log_every {
        cfg.log_every = v;
    }
    let c = &mut cfg.model.components;
    for off in &args.without {
        match off {
            Component::VqTargets => c.vq_targets = false,
            Component::EmaTeacher => c.ema_teacher = false,
            Component::CrossPaired => c.cross_paired = false,
            Component::AntiBypass => c.anti_bypass = false,
            Component::Contrast => c.contrast = false,
            Component::LengthControl => c.length_control = false,
            Component::Timing => c.timing = false,
        }
    }
    Ok(cfg)
}

/// One human-readable log line of a PairAlign run.
fn pairalign_log_line(r: &PairAlignLogRecord) -> String {
    let eta = (r.steps - r.step) as f64 / r.steps_per_s.max(1e-9);
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
    format!(
        "step {}/{} epoch {} loss {:.4} tf {:.4} contrast {} length {} timing {} ({} ms) \
         rate {:.2}/{} bypass {} teacher {:.2} corrupt {:.2} |g| {:.2} lr {:.2e} \
         {:.2} steps/s eta {:.0} min",
        r.step,
        r.steps,
        r.epoch,
        r.loss,
        r.teacher_forcing,
        opt(r.contrast),
        opt(r.length),
        opt(r.timing),
        r.timing_ms
            .map_or_else(|| "-".to_string(), |v| format!("{v:.0}")),
        r.target_rate,
        r.expected_rate
            .map_or_else(|| "-".to_string(), |v| format!("{v:.2}")),
        opt(r.bypass_gap),
        r.teacher_share,
        r.corruption,
        r.grad_norm,
        r.lr,
        r.steps_per_s,
        eta / 60.0
    )
}
