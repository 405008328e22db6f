//! `pairalign eval`: tokenizer figures on a feature cache of paired views.

use std::path::PathBuf;
use std::process::ExitCode;

use pairalign_datasets::cache::FeatureCache;
use pairalign_eval::{evaluate_tokens, evaluate_vq, DenseReport, TokenizerReport};
use serde_json::json;

/// Arguments of `pairalign eval retrieval`.
#[derive(clap::Args, Debug)]
pub struct RetrievalArgs {
    /// A feature cache with 2 views per clip (`pairalign features --views 2`), e.g. of the
    /// held-out voices (`--split heldout`).
    #[arg(long)]
    cache: PathBuf,
    /// `vq`, `pairalign` (shipped) or a weights folder of either kind; repeat to compare several
    /// (the dense baseline is reported for VQ tokenizers).
    #[arg(long, default_value = "vq")]
    tokenizer: Vec<String>,
    /// Only the first N clips.
    #[arg(long)]
    max_clips: Option<usize>,
    /// One JSON object per tokenizer and one for the dense baseline of each.
    #[arg(long)]
    json: bool,
}

/// Runs `eval retrieval`.
pub fn retrieval(args: RetrievalArgs) -> anyhow::Result<ExitCode> {
    let cache = FeatureCache::open(&args.cache)?;
    for name in &args.tokenizer {
        let tokenizer = crate::tokenize::load_tokenizer(name)?;
        let (report, dense) = match tokenizer.as_vq() {
            Some(vq) => {
                let (report, dense) = evaluate_vq(vq, &cache, args.max_clips)?;
                (report, Some(dense))
            }
            None => (
                evaluate_tokens(&tokenizer, &cache, args.max_clips, None)?,
                None,
            ),
        };
        if args.json {
            println!(
                "{}",
                json!({"name": name, "kind": "tokens", "report": report})
            );
            if let Some(dense) = &dense {
                println!(
                    "{}",
                    json!({"name": name, "kind": "dense", "report": dense})
                );
            }
        } else {
            print_tokens(name, &report);
            if let Some(dense) = &dense {
                print_dense(name, dense);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_tokens(name: &str, r: &TokenizerReport) {
    println!(
        "{name} ({}, {} clips, {:.2} h per view)",
        r.tokenizer,
        r.clips,
        r.seconds / 3600.0
    );
    if let Some(hz) = r.frame_rate_hz {
        println!("  frame rate            {hz:.1} /s");
    }
    println!("  token rate            {:.2} /s", r.tokens_per_s);
    println!(
        "  perplexity            {:.1} ({:.1}% of the vocabulary used)",
        r.perplexity,
        100.0 * r.vocab_used
    );
    println!(
        "  NED views / unrelated {:.3} / {:.3} (medians {:.3} / {:.3})",
        r.ned_views.mean, r.ned_unrelated.mean, r.ned_views.median, r.ned_unrelated.median
    );
    println!(
        "  retrieval             P@1 {:.3}  MRR {:.3}  R@10 {:.3}",
        r.retrieval.p_at_1, r.retrieval.mrr, r.retrieval.recall_at_10
    );
}

fn print_dense(name: &str, d: &DenseReport) {
    println!("{name} dense baseline ({}, dim {})", d.embedding, d.dim);
    println!(
        "  cosine views / unrelated {:.3} / {:.3}",
        d.cos_views.mean, d.cos_unrelated.mean
    );
    println!(
        "  retrieval             P@1 {:.3}  MRR {:.3}  R@10 {:.3}",
        d.retrieval.p_at_1, d.retrieval.mrr, d.retrieval.recall_at_10
    );
}
