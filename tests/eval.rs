//! `pairalign eval` end to end on the bundled samples with the shipped VQ tokenizer: every
//! protocol runs, prints one JSON object per tokenizer with its documented keys, and writes
//! results.json, results.md and its plots with `--out`. Small limits keep each run to seconds;
//! the protocols' correctness is tested in `eval/tests/protocol.rs`.

#![allow(clippy::unwrap_used)] // Tests unwrap: a failure is the test failing.

use std::path::{Path, PathBuf};

use common::{json_lines, pairalign, path, stderr};
use serde_json::Value;

mod common;

fn samples(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(sub)
}

/// Runs `pairalign eval ARGS... --json --out OUT`, requires success, checks the files written,
/// and returns the JSON objects.
fn eval(args: &[&str], out: &Path, plots: &[&str]) -> Vec<Value> {
    let mut full = vec!["eval"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--json", "--out", path(out)]);
    let result = pairalign(&full);
    assert!(result.status.success(), "{full:?}: {}", stderr(&result));
    let lines = json_lines(&result);
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(
        written.as_array().unwrap(),
        &lines,
        "results.json holds what --json printed"
    );
    let table = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(table.starts_with("| tokenizer |"), "{table}");
    for plot in plots {
        let svg = std::fs::read_to_string(out.join(plot)).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }
    lines
}

fn has_keys(object: &Value, keys: &[&str]) {
    for key in [
        "name",
        "tokenizer",
        "kind",
        "weights_hash",
        "protocol",
        "wall_s",
    ]
    .iter()
    .chain(keys)
    {
        assert!(object.get(key).is_some(), "{key} missing in {object}");
    }
}

#[test]
fn retrieval_and_consistency_on_the_samples_with_the_dense_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = samples("short");
    let common = [
        "--corpus",
        path(&corpus),
        "--tokenizer",
        "vq",
        "--tokenizer",
        "dense",
        "--tokenizer",
        "vq-targets@10",
        "--max-clips",
        "12",
        "--seed",
        "3",
    ];
    let mut args = vec!["retrieval"];
    args.extend_from_slice(&common);
    let lines = eval(&args, &dir.path().join("r"), &["retrieval.svg"]);
    assert_eq!(lines.len(), 3);
    has_keys(
        &lines[0],
        &[
            "clips",
            "tokens_per_s",
            "p_at_1",
            "mrr",
            "map",
            "recall_at_10",
        ],
    );
    assert_eq!(lines[0]["protocol"], "retrieval");
    assert_eq!(lines[0]["clips"], 12);
    assert_eq!(lines[0]["score"], "ned");
    assert_eq!(lines[1]["kind"], "dense");
    assert_eq!(lines[1]["tokenizer"], "dense:vq");
    assert_eq!(lines[1]["tokens_per_s"], Value::Null);
    // VQ's codes compacted as PairAlign's targets: at most 10 tokens per second of each clip
    // (one fewer when a removal joins equal neighbours), far fewer than VQ's collapsed runs.
    assert_eq!(lines[2]["tokenizer"], "vq-targets@10");
    let compacted = lines[2]["tokens_per_s"].as_f64().unwrap();
    assert!((8.0..=10.05).contains(&compacted), "{compacted}");
    assert!(compacted < 0.5 * lines[0]["tokens_per_s"].as_f64().unwrap());
    // mAP equals MRR with one relevant item per query.
    let (map, mrr) = (
        lines[0]["map"].as_f64().unwrap(),
        lines[0]["mrr"].as_f64().unwrap(),
    );
    assert!((map - mrr).abs() < 1e-9);

    let mut args = vec!["consistency"];
    args.extend_from_slice(&common);
    let lines = eval(&args, &dir.path().join("c"), &["consistency.svg"]);
    has_keys(
        &lines[0],
        &[
            "ned_views",
            "ned_unrelated",
            "ned_views_median",
            "tokens_per_s",
            "length_diff_views",
            "perplexity",
            "separation",
        ],
    );
    let (views, unrelated) = (
        lines[0]["ned_views"].as_f64().unwrap(),
        lines[0]["ned_unrelated"].as_f64().unwrap(),
    );
    assert!(views < unrelated, "views {views} unrelated {unrelated}");
    assert_eq!(lines[0]["frame_rate_hz"], 50.0);
    assert!(lines[1]["cos_views"].as_f64().is_some());
}

#[test]
fn compaction_sweep_and_locate_on_the_samples() {
    let dir = tempfile::tempdir().unwrap();
    let short = samples("short");
    let lines = eval(
        &["compaction", "--corpus", path(&short), "--tokenizer", "vq"],
        &dir.path().join("k"),
        &["compaction.svg"],
    );
    assert_eq!(lines.len(), 1, "the shipped vq is its own reference");
    has_keys(
        &lines[0],
        &[
            "tokens_per_hour",
            "bytes_per_hour",
            "archive_reduction_vs_vq",
        ],
    );
    assert_eq!(lines[0]["reference"], true);
    assert_eq!(lines[0]["archive_reduction_vs_vq"], 0.0);
    assert_eq!(lines[0]["recordings"], 16);

    let long = samples("long");
    let lines = eval(
        &[
            "sweep",
            "--corpus",
            path(&long),
            "--sweeps",
            "2",
            "--max-shift",
            "0.5",
        ],
        &dir.path().join("s"),
        &["sweep.svg"],
    );
    has_keys(
        &lines[0],
        &[
            "shift_ms",
            "distance",
            "edit_distance",
            "tokens",
            "overlap",
            "length_cv",
        ],
    );
    assert_eq!(lines[0]["sweeps"], 2);
    assert_eq!(lines[0]["shift_ms"].as_array().unwrap().len(), 6);
    assert_eq!(lines[0]["distance"][0], 0.0);

    let lines = eval(
        &[
            "locate",
            "--corpus",
            path(&long),
            "--queries",
            "4",
            "--view-space",
            "gain=3",
        ],
        &dir.path().join("l"),
        &["locate.svg"],
    );
    has_keys(
        &lines[0],
        &[
            "found_first",
            "start_error_ms_median",
            "start_error_ms_p90",
            "queries",
        ],
    );
    assert_eq!(
        (
            lines[0]["queries"].as_u64(),
            lines[0]["recordings"].as_u64()
        ),
        (Some(4), Some(4))
    );
}

#[test]
fn protocols_that_need_audio_refuse_a_feature_cache_and_bad_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("f.feat");
    let out = pairalign(&[
        "features",
        path(&samples("short")),
        "--out",
        path(&cache),
        "--max-clips",
        "4",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = pairalign(&["eval", "sweep", "--corpus", path(&cache)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a feature cache"),
        "{}",
        stderr(&out)
    );
    // A cache is enough for compaction: one document per clip.
    let out = pairalign(&["eval", "compaction", "--corpus", path(&cache), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["recordings"], 4);
    let out = pairalign(&[
        "eval",
        "retrieval",
        "--corpus",
        path(&dir.path().join("missing.feat")),
    ]);
    assert_eq!(out.status.code(), Some(2));
}
