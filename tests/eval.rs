//! `pairalign eval` end to end on the bundled samples with the shipped VQ tokenizer: every
//! protocol runs, prints one JSON object per tokenizer with its documented keys, and writes
//! results.json, results.md and its plots with `--out`. Small limits keep each run to seconds;
//! the protocols' correctness is tested in `eval/tests/protocol.rs`. `eval content` runs on a
//! few Speech Commands clips (../shared/data/real-speech, skipped without it) and on a tiny
//! synthetic corpus with two voices per sentence (skipped without espeak-ng).

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

const CONTENT_KEYS: &[&str] = &[
    "set",
    "silence",
    "match",
    "clips",
    "groups",
    "voices",
    "seconds_per_clip",
    "tokens_per_clip",
    "queries",
    "unanswerable",
    "candidates",
    "p_at_1",
    "mrr",
    "p_at_10",
    "chance_p_at_1",
];

/// Checks the reports of `eval content` on `clips` clips of `groups` groups, one per silence
/// and match mode in `modes`.
fn check_content(reports: &[Value], clips: u64, groups: u64, modes: &[(&str, &str)]) {
    assert_eq!(reports.len(), modes.len(), "{reports:?}");
    for (r, (silence, matching)) in reports.iter().zip(modes) {
        has_keys(r, CONTENT_KEYS);
        assert_eq!(r["protocol"], "content");
        assert_eq!(
            (r["silence"].as_str(), r["match"].as_str()),
            (Some(*silence), Some(*matching))
        );
        assert_eq!(
            (r["clips"].as_u64(), r["groups"].as_u64()),
            (Some(clips), Some(groups))
        );
        assert!(r["voices"].as_u64().unwrap() >= 2, "{r}");
        assert_eq!(
            r["unanswerable"], 0,
            "every clip's words are said by another voice"
        );
        assert_eq!(r["queries"].as_u64(), Some(clips));
        for key in ["p_at_1", "mrr", "p_at_10", "chance_p_at_1"] {
            let v = r[key].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{key} {v}");
        }
        assert!(r["tokens_per_clip"].as_f64().unwrap() > 0.0, "{r}");
    }
}

#[test]
fn content_on_a_few_speech_commands_clips() {
    let shared =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/real-speech/speech-commands-20");
    if !shared.is_dir() {
        eprintln!("skipping: no {} (the real-speech set)", shared.display());
        return;
    }
    // Two words, three clips each, from different speakers where the set has them.
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("sc");
    for word in ["yes", "no"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(shared.join(word))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        std::fs::create_dir_all(set.join(word)).unwrap();
        for file in files.iter().take(3) {
            std::fs::copy(file, set.join(word).join(file.file_name().unwrap())).unwrap();
        }
    }
    let reports = eval(
        &[
            "content",
            "--speech-commands",
            path(&set),
            "--match",
            "global,infix",
            "--silence",
            "keep,trim",
        ],
        &dir.path().join("out"),
        &["content.svg"],
    );
    check_content(
        &reports,
        6,
        2,
        &[
            ("keep", "global"),
            ("keep", "infix"),
            ("trim", "global"),
            ("trim", "infix"),
        ],
    );
    assert_eq!(reports[0]["set"], "sc");
    let keep = reports[0]["seconds_per_clip"].as_f64().unwrap();
    let trim = reports[2]["seconds_per_clip"].as_f64().unwrap();
    assert!(trim < keep && keep <= 1.0, "trimmed {trim} s of {keep} s");
}

#[test]
fn content_on_a_synthetic_corpus_with_two_voices_per_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("two-voices");
    let out = pairalign(&[
        "synth",
        "--out",
        path(&corpus),
        "--hours",
        "0.003",
        "--engines",
        "espeak-ng",
        "--voices-per-sentence",
        "2",
        "--only",
        "heldout",
        "--json",
    ]);
    if !out.status.success() && stderr(&out).contains("scripts/setup.sh") {
        eprintln!("skipping: espeak-ng is not installed (run scripts/setup.sh)");
        return;
    }
    assert!(out.status.success(), "{}", stderr(&out));
    let rendered = &json_lines(&out)[0];
    let (utterances, sentences) = (
        rendered["utterances"].as_u64().unwrap(),
        rendered["sentences"].as_u64().unwrap(),
    );
    assert_eq!(utterances, 2 * sentences, "{rendered}");
    assert!(sentences >= 2, "{rendered}");
    let reports = eval(
        &[
            "content",
            "--corpus",
            path(&corpus.join("manifest.jsonl")),
            "--tokenizer",
            "vq",
        ],
        &dir.path().join("out"),
        &["content.svg"],
    );
    // The default: trimmed silence, whole strings; the held-out voices.
    check_content(&reports, utterances, sentences, &[("trim", "global")]);
    assert_eq!(reports[0]["set"], "two-voices held-out");
    // The training voices of this corpus: none.
    let out = pairalign(&[
        "eval",
        "content",
        "--corpus",
        path(&corpus.join("manifest.jsonl")),
        "--voices",
        "train",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
