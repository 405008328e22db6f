//! Verifier against its peers, per candidate, on the same inputs in one process.
//!
//! Data model ("realistic tokens", see `pairalign_benches`): Zipf(1) symbols over a vocabulary
//! of 512. Each case is one query and a batch of candidates, half noisy copies of the query
//! (about 20% substitutions, insertions and deletions) and half unrelated random strings:
//!
//! | case            | mode   | query | candidates               | bound k        |
//! |-----------------|--------|-------|--------------------------|----------------|
//! | global_38x38    | global | 38    | 10,000 of about 38       | none, 11 (30%) |
//! | infix_38x1000   | infix  | 38    | 2,000 of 1,000           | none, 11       |
//! | global_200x200  | global | 200   | 4,000 of about 200       | none, 60       |
//! | exhaustive_*    | both   | 38    | 1,000,000 of 38          | see below      |
//!
//! The exhaustive cases model a scan of a whole archive: one candidate in 1,000 is a noisy copy
//! of the query, the rest are unrelated; global with k = 15 and unbounded, infix with k = 15.
//! Only our batch path runs them (at 1 and 2 threads): they measure the SIMD lanes' throughput,
//! and the peers are already compared on `global_38x38`.
//!
//! Peers: `rapidfuzz` (cached `levenshtein::BatchComparator`, with `score_cutoff` when bounded)
//! on the `u16` symbols and on the query-remapped `u8` form (the query's distinct symbols map to
//! 1..=255, every other symbol to 0, which keeps distances exact); `editdistancek` (global, on
//! `u8`); `bio::pattern_matching::myers` (infix, on `u8`, query <= 64). Peers and our scalar path
//! run on the calling thread; our batch path (`Verifier::distances`, SIMD lanes across
//! candidates) runs on a 1-thread and a 2-thread rayon pool. Every peer's answers are checked
//! against ours before timing. At the end a table gives ns per candidate and the ratios.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-verifier cargo bench -p pairalign-benches --bench verifier`
//! (criterion settings are short: the whole run takes a few minutes).

use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bio::pattern_matching::myers::Myers;
use criterion::{Criterion, Throughput};
use pairalign_benches::{embed_copy, noisy_copy, Zipf};
use pairalign_engine::verifier::{Mode, Verifier};
use pairalign_engine::Symbol;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rapidfuzz::distance::levenshtein;

struct Case {
    name: String,
    mode: Mode,
    query: Vec<Symbol>,
    texts: Vec<Vec<Symbol>>,
    k: Option<u32>,
    /// Only our batch path (the exhaustive cases).
    ours_only: bool,
}

/// Maps the query's distinct symbols to 1..=255 and everything else to 0.
struct Remap {
    table: HashMap<Symbol, u8>,
}

impl Remap {
    fn new(query: &[Symbol]) -> Option<Remap> {
        let mut table = HashMap::new();
        for &c in query {
            let next = table.len() + 1;
            if next > 255 && !table.contains_key(&c) {
                return None;
            }
            table.entry(c).or_insert(next as u8);
        }
        Some(Remap { table })
    }

    fn apply(&self, s: &[Symbol]) -> Vec<u8> {
        s.iter()
            .map(|c| self.table.get(c).copied().unwrap_or(0))
            .collect()
    }
}

fn cases() -> Vec<Case> {
    let zipf = Zipf::tokens();
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut out = Vec::new();
    let mut add =
        |name: &str, mode: Mode, m: usize, count: usize, len: usize, ks: [Option<u32>; 2]| {
            let query = zipf.string(&mut rng, m);
            let texts: Vec<Vec<Symbol>> = (0..count)
                .map(|i| match (mode, i % 2) {
                    (Mode::Global, 0) => noisy_copy(&mut rng, &query, 0.2, &zipf),
                    (Mode::Infix, 0) => embed_copy(&mut rng, &query, len, 0.2, &zipf),
                    _ => zipf.string(&mut rng, len),
                })
                .collect();
            for k in ks {
                let suffix = k.map_or("unbounded".to_string(), |k| format!("k{k}"));
                out.push(Case {
                    name: format!("{name}_{suffix}"),
                    mode,
                    query: query.clone(),
                    texts: texts.clone(),
                    k,
                    ours_only: false,
                });
            }
        };
    add(
        "global_38x38",
        Mode::Global,
        38,
        10_000,
        38,
        [None, Some(11)],
    );
    add(
        "infix_38x1000",
        Mode::Infix,
        38,
        2_000,
        1000,
        [None, Some(11)],
    );
    add(
        "global_200x200",
        Mode::Global,
        200,
        4_000,
        200,
        [None, Some(60)],
    );
    let query = zipf.string(&mut rng, 38);
    let texts: Vec<Vec<Symbol>> = (0..1_000_000)
        .map(|i| {
            if i % 1000 == 0 {
                noisy_copy(&mut rng, &query, 0.2, &zipf)
            } else {
                zipf.string(&mut rng, 38)
            }
        })
        .collect();
    for (name, mode, k) in [
        ("exhaustive_38x38_global_k15", Mode::Global, Some(15)),
        ("exhaustive_38x38_global_unbounded", Mode::Global, None),
        ("exhaustive_38x38_infix_k15", Mode::Infix, Some(15)),
    ] {
        out.push(Case {
            name: name.to_string(),
            mode,
            query: query.clone(),
            texts: texts.clone(),
            k,
            ours_only: true,
        });
    }
    out
}

type Runner<'a> = Box<dyn Fn() -> usize + 'a>;

/// Our variants and the peers for one case, each returning a checksum of its answers.
fn contenders<'a>(
    case: &'a Case,
    verifier: &'a Verifier,
    refs: &'a [&'a [Symbol]],
    remapped: &'a Option<(Vec<u8>, Vec<Vec<u8>>)>,
    pools: &'a [rayon::ThreadPool; 2],
) -> Vec<(&'static str, Runner<'a>)> {
    let k = case.k;
    let sum = |v: &[Option<u32>]| v.iter().map(|d| d.map_or(1 << 20, |d| d as usize)).sum();
    let mut out: Vec<(&'static str, Runner<'a>)> = vec![
        (
            "ours_batch_1t",
            Box::new(move || pools[0].install(|| sum(&verifier.distances(refs, k)))),
        ),
        (
            "ours_batch_2t",
            Box::new(move || pools[1].install(|| sum(&verifier.distances(refs, k)))),
        ),
        (
            "ours_batch_nosimd_1t",
            Box::new(move || pools[0].install(|| sum(&verifier.distances_scalar(refs, k)))),
        ),
        (
            "ours_scalar",
            Box::new(move || {
                refs.iter()
                    .map(|t| verifier.distance(t, k).map_or(1 << 20, |d| d as usize))
                    .sum()
            }),
        ),
    ];
    if case.ours_only {
        out.truncate(2);
        return out;
    }
    let to_sum = |d: Option<usize>| d.map_or(1 << 20, |d| d);
    let bounded = move |d: usize| k.map_or(Some(d), |k| (d <= k as usize).then_some(d));
    if case.mode == Mode::Global {
        let cmp16 = levenshtein::BatchComparator::new(case.query.iter().copied());
        out.push((
            "rapidfuzz_u16",
            Box::new(move || {
                refs.iter()
                    .map(|t| match k {
                        None => cmp16.distance(t.iter().copied()),
                        Some(k) => to_sum(cmp16.distance_with_args(
                            t.iter().copied(),
                            &levenshtein::Args::default().score_cutoff(k as usize),
                        )),
                    })
                    .sum()
            }),
        ));
        if let Some((q8, t8)) = remapped {
            let cmp8 = levenshtein::BatchComparator::new(q8.iter().copied());
            out.push((
                "rapidfuzz_u8",
                Box::new(move || {
                    t8.iter()
                        .map(|t| match k {
                            None => cmp8.distance(t.iter().copied()),
                            Some(k) => to_sum(cmp8.distance_with_args(
                                t.iter().copied(),
                                &levenshtein::Args::default().score_cutoff(k as usize),
                            )),
                        })
                        .sum()
                }),
            ));
            out.push((
                "editdistancek_u8",
                Box::new(move || {
                    t8.iter()
                        .map(|t| match k {
                            None => editdistancek::edit_distance(q8, t),
                            Some(k) => {
                                to_sum(editdistancek::edit_distance_bounded(q8, t, k as usize))
                            }
                        })
                        .sum()
                }),
            ));
        }
    } else if let Some((q8, t8)) = remapped {
        if q8.len() <= 64 {
            let myers = Myers::<u64>::new(q8.iter().copied());
            out.push((
                "bio_myers_u8",
                Box::new(move || {
                    t8.iter()
                        .map(|t| to_sum(bounded(myers.distance(t) as usize)))
                        .sum()
                }),
            ));
        }
    }
    out
}

fn main() {
    let out_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("criterion");
    let mut criterion = Criterion::default()
        .output_directory(&out_dir)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    let pools = [1, 2].map(|n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .expect("rayon pool")
    });

    let cases = cases();
    let mut table: Vec<(String, usize, Vec<&'static str>)> = Vec::new();
    for case in &cases {
        let verifier = Verifier::new(&case.query, case.mode);
        let refs: Vec<&[Symbol]> = case.texts.iter().map(|t| t.as_slice()).collect();
        let remapped = Remap::new(&case.query).map(|r| {
            (
                r.apply(&case.query),
                case.texts.iter().map(|t| r.apply(t)).collect(),
            )
        });
        let runners = contenders(case, &verifier, &refs, &remapped, &pools);

        // Everyone must agree before anyone is timed.
        let want = runners[0].1();
        for (name, run) in &runners {
            assert_eq!(run(), want, "{} disagrees on {}", name, case.name);
        }

        let mut group = criterion.benchmark_group(&case.name);
        group.throughput(Throughput::Elements(case.texts.len() as u64));
        for (name, run) in &runners {
            group.bench_function(*name, |b| b.iter(|| black_box(run())));
        }
        group.finish();
        table.push((
            case.name.clone(),
            case.texts.len(),
            runners.iter().map(|(name, _)| *name).collect(),
        ));
    }
    criterion.final_summary();
    print_table(&out_dir, &table);
}

/// Median time per iteration from criterion's estimates, in ns.
fn median_ns(out_dir: &Path, group: &str, name: &str) -> Option<f64> {
    let path = out_dir
        .join(group)
        .join(name)
        .join("new")
        .join("estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn print_table(out_dir: &Path, table: &[(String, usize, Vec<&'static str>)]) {
    println!("\nns per candidate (criterion median / batch size)");
    for (group, count, names) in table {
        let per: Vec<(&str, f64)> = names
            .iter()
            .filter_map(|&n| median_ns(out_dir, group, n).map(|t| (n, t / *count as f64)))
            .collect();
        println!("\n{group} ({count} candidates)");
        for (name, ns) in &per {
            println!("  {name:<22} {ns:>10.1} ns");
        }
        let peers: Vec<&(&str, f64)> = per.iter().filter(|(n, _)| !n.starts_with("ours")).collect();
        let Some(best) = peers.iter().min_by(|a, b| a.1.total_cmp(&b.1)) else {
            continue;
        };
        for (ours, t) in per.iter().filter(|(n, _)| n.starts_with("ours")) {
            println!(
                "  {ours:<22} vs best peer {:<16} ours/peer {:>5.2}  peer/ours {:>5.2}",
                best.0,
                t / best.1,
                best.1 / t
            );
        }
        for (peer, t) in &peers {
            if let Some((_, ours)) = per.iter().find(|(n, _)| *n == "ours_batch_1t") {
                println!(
                    "  ours_batch_1t vs {peer:<18} ours/peer {:>5.2}  peer/ours {:>5.2}",
                    ours / t,
                    t / ours
                );
            }
        }
    }
}
