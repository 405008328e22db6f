//! `pairalign train vq` and `pairalign train pairalign`: the flags, the Ctrl-C handler and the
//! printing around `pairalign_train` (the feature cache, the run config, the trainers).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use pairalign_datasets::cache::FeatureCache;
use pairalign_models::{shipped, AnyTokenizer, Device, Tokenizer, VqTokenizer};
use pairalign_train::{
    checkpoint, pairalign_config, training_cache, vq_config, CacheEvent, Component, Overrides,
    PairAlignLogRecord, PairAlignTrainer, RunConfig, Trainer, Training, VqLogRecord, VqTrainer,
};

/// The flags both trainers take.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Training data: a feature cache (`pairalign features`), a synthetic corpus's
    /// manifest.jsonl (its training voices only) or a folder of audio. A corpus is turned into
    /// `OUT/features.feat` first (2 views per 3 s clip), once.
    #[arg(long)]
    data: PathBuf,
    /// Output folder: checkpoint/, train.jsonl (and init-vq/, the VQ tokenizer a PairAlign run
    /// starts from), and the trained tokenizer (model.safetensors, config.json) at the end.
    #[arg(long)]
    out: PathBuf,
    /// A JSON file with the run's config (fields of VqTrainConfig or PairAlignTrainConfig, the
    /// PairAlign components under `model.components`; missing ones take defaults).
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

impl RunArgs {
    /// What the flags change in the run config.
    fn overrides(&self) -> Overrides {
        Overrides {
            steps: self.steps,
            batch_size: self.batch,
            lr: self.lr,
            seed: self.seed,
            checkpoint_every: self.checkpoint_every,
            log_every: self.log_every,
        }
    }

    /// An error when `--resume` comes with a flag that would change the run (`extra`: the
    /// trainer's own such flags).
    fn check_resume(&self, extra: bool) -> anyhow::Result<()> {
        if self.config.is_some() || self.overrides().change_the_run() || extra {
            bail!("--resume keeps the run's config: only --steps may change");
        }
        Ok(())
    }

    /// An error when a fresh run would overwrite a run's checkpoint.
    fn check_fresh(&self) -> anyhow::Result<()> {
        if checkpoint::find(&self.out).is_some() {
            bail!(
                "{} already holds a checkpoint: pass --resume to continue it, or another --out",
                self.out.display()
            );
        }
        Ok(())
    }
}

/// Arguments of `pairalign train vq`.
#[derive(clap::Args, Debug)]
pub struct TrainVqArgs {
    #[command(flatten)]
    run: RunArgs,
}

/// Arguments of `pairalign train pairalign`.
#[derive(clap::Args, Debug)]
pub struct TrainPairAlignArgs {
    /// The VQ tokenizer whose encoder and normalization the model starts from: a weights
    /// folder, or `vq` for the shipped vq-v1 (also when the default folder is missing).
    #[arg(long, default_value = shipped::VQ_DIR)]
    init: String,
    #[command(flatten)]
    run: RunArgs,
    /// Switch a training component off (repeatable), for ablations.
    #[arg(long, value_enum)]
    without: Vec<Component>,
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

/// What both trainers set up before their run: the stop flag, the output folder, the feature
/// cache (built from a corpus first when needed) and the device.
struct Prepared {
    stop: Arc<AtomicBool>,
    cache_path: PathBuf,
    cache: FeatureCache,
    device: Device,
}

fn prepare(run: &RunArgs) -> anyhow::Result<Prepared> {
    let stop = stop_flag()?;
    std::fs::create_dir_all(&run.out)
        .with_context(|| format!("cannot create {}", run.out.display()))?;
    let cache_path = training_cache(&run.data, &run.out, |event| match event {
        CacheEvent::Reused(cache) => {
            eprintln!("using the feature cache {} built earlier", cache.display())
        }
        CacheEvent::Skipped(path, why) => eprintln!("skipped {}: {why}", path.display()),
        CacheEvent::Building { cache, utterances } => eprintln!(
            "building the feature cache {} from {utterances} utterances",
            cache.display()
        ),
        CacheEvent::Failed(id, why) => eprintln!("failed {id}: {why}"),
    })?;
    let cache = FeatureCache::open(&cache_path)?;
    let device = crate::tokenize::parse_device(&run.device)?;
    Ok(Prepared {
        stop,
        cache_path,
        cache,
        device,
    })
}

/// Runs `trainer` (`name`: `vq` or `pairalign`), printing each log record with `log_line` and
/// the report at the end; exit code 130 when stopped by Ctrl-C.
fn train<T: Training>(
    run: &RunArgs,
    name: &str,
    prepared: &Prepared,
    mut trainer: Trainer<'_, T>,
    log_line: fn(&T::Record) -> String,
) -> anyhow::Result<ExitCode> {
    let settings = trainer.config().settings();
    eprintln!(
        "training {name} on {} ({} clips): {} steps of {} clips x 2 views, from step {}",
        prepared.cache_path.display(),
        prepared.cache.len(),
        settings.steps,
        settings.batch_size,
        trainer.step()
    );
    let report = trainer.run(&prepared.stop, |r| eprintln!("{}", log_line(r)))?;
    if run.json {
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
            run.out.display()
        );
    }
    Ok(if report.interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs `train vq`; Ctrl-C (or SIGTERM) stops after the current step with a checkpoint.
pub fn train_vq(args: TrainVqArgs) -> anyhow::Result<ExitCode> {
    let run = &args.run;
    let prepared = prepare(run)?;
    let (cache, device) = (&prepared.cache, &prepared.device);
    let trainer = if run.resume {
        run.check_resume(false)?;
        VqTrainer::resume(cache, &run.out, run.steps, device)?
    } else {
        run.check_fresh()?;
        let cfg = vq_config(run.config.as_deref(), &run.overrides())?;
        VqTrainer::new(cache, cfg, &run.out, device)?
    };
    train(run, "vq", &prepared, trainer, vq_log_line)
}

/// Runs `train pairalign`; Ctrl-C (or SIGTERM) stops after the current step with a checkpoint.
pub fn train_pairalign(args: TrainPairAlignArgs) -> anyhow::Result<ExitCode> {
    let run = &args.run;
    let prepared = prepare(run)?;
    let (cache, device) = (&prepared.cache, &prepared.device);
    let trainer = if run.resume {
        run.check_resume(!args.without.is_empty() || run.warm_start.is_some())?;
        PairAlignTrainer::resume(cache, &run.out, run.steps, device)?
    } else {
        run.check_fresh()?;
        let init = init_vq(&args.init, device)?;
        let cfg = pairalign_config(
            run.config.as_deref(),
            init.config(),
            &run.overrides(),
            &args.without,
        )?;
        let mut trainer = PairAlignTrainer::new(cache, cfg, init, &run.out, device)?;
        if let Some(from) = &run.warm_start {
            let from = AnyTokenizer::open(from, device)?;
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
    train(run, "pairalign", &prepared, trainer, pairalign_log_line)
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

/// One human-readable log line of a VQ run.
fn vq_log_line(r: &VqLogRecord) -> String {
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
