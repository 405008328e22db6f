//! Batch verification: one query against many candidates, several candidates per SIMD register.
//!
//! One candidate's columns form a dependency chain (each column needs the previous one), so a
//! single candidate leaves most of a core idle. Here `L` candidates ("lanes") advance together:
//! the state is `[u64; L]` arrays and the column step is plain array arithmetic, which LLVM turns
//! into AVX2 (`L = 4`) or AVX-512 (`L = 8`) instructions inside `#[target_feature]` functions
//! chosen at run time. Only the match-mask lookups stay scalar (one load per lane).
//!
//! Only one-word queries (<= 64 symbols) use lanes; longer ones are verified one by one (see
//! `chunk_lanes`). A group of lanes runs up to its shortest candidate, then each lane is finished by the scalar
//! kernels from the saved column. Candidates are sorted by length within a chunk so that groups
//! are nearly uniform. Chunks of [`CHUNK`] candidates run on the rayon pool, which small
//! batches skip.

use std::ops::ControlFlow;

use rayon::prelude::*;

use super::kernel::{prefix_value, step, within, word_global, word_scan, Peq};
use super::{narrow, Mode, Verifier};
use crate::Symbol;

/// Candidates per rayon task: large enough that a task (tens of microseconds) dwarfs the
/// scheduling cost, small enough to balance two to sixteen cores on batches of thousands.
const CHUNK: usize = 256;

/// How often (in columns) a bounded global group checks whether all its lanes are hopeless.
const CHECK_EVERY: usize = 8;

/// Verifies `texts` with `backend`, which must be one `Backend::detect` could return.
pub(super) fn distances_with(
    v: &Verifier,
    texts: &[&[Symbol]],
    k: Option<usize>,
    backend: Backend,
) -> Vec<Option<u32>> {
    let mut out = vec![None; texts.len()];
    if texts.len() <= CHUNK {
        run_chunk(v, backend, texts, k, &mut out);
    } else {
        out.par_chunks_mut(CHUNK)
            .zip(texts.par_chunks(CHUNK))
            .for_each(|(out, texts)| run_chunk(v, backend, texts, k, out));
    }
    out
}

/// The widest vector unit this CPU offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Backend {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Backend {
    pub(super) fn detect() -> Backend {
        #[cfg(target_arch = "x86_64")]
        {
            let base = is_x86_feature_detected!("popcnt")
                && is_x86_feature_detected!("bmi1")
                && is_x86_feature_detected!("bmi2");
            if base
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl")
            {
                return Backend::Avx512;
            }
            if base && is_x86_feature_detected!("avx2") {
                return Backend::Avx2;
            }
        }
        Backend::Scalar
    }
}

fn run_chunk(
    v: &Verifier,
    backend: Backend,
    texts: &[&[Symbol]],
    k: Option<usize>,
    out: &mut [Option<u32>],
) {
    match backend {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Backend::detect` found every feature these functions enable.
        Backend::Avx512 => unsafe { chunk_avx512(v, texts, k, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Backend::Avx2 => unsafe { chunk_avx2(v, texts, k, out) },
        Backend::Scalar => chunk_lanes::<1>(v, texts, k, out),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,popcnt,bmi1,bmi2")]
unsafe fn chunk_avx512(
    v: &Verifier,
    texts: &[&[Symbol]],
    k: Option<usize>,
    out: &mut [Option<u32>],
) {
    chunk_lanes::<8>(v, texts, k, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt,bmi1,bmi2")]
unsafe fn chunk_avx2(v: &Verifier, texts: &[&[Symbol]], k: Option<usize>, out: &mut [Option<u32>]) {
    chunk_lanes::<4>(v, texts, k, out);
}

#[inline(always)]
fn chunk_lanes<const L: usize>(
    v: &Verifier,
    texts: &[&[Symbol]],
    k: Option<usize>,
    out: &mut [Option<u32>],
) {
    let peq = &v.fwd;
    let m = peq.m;
    let global = v.mode == Mode::Global;
    let mut pending: Vec<usize> = Vec::with_capacity(texts.len());
    for (i, t) in texts.iter().enumerate() {
        // Multi-word queries stay scalar: a lane-parallel block kernel (all blocks, no
        // cutoff) measured no faster than the scalar one unbounded and 1.6x slower with a
        // bound, where the scalar kernel skips the blocks that cannot reach k.
        let trivial = L == 1
            || peq.words > 1
            || m == 0
            || t.is_empty()
            || (global && k.is_some_and(|k| m.abs_diff(t.len()) > k));
        if trivial {
            out[i] = v.distance_usize(t, k).map(narrow);
        } else {
            pending.push(i);
        }
    }
    sort_by_len(&mut pending, texts);
    // Match masks of a group, column-major (`eqs[j][l]`): filled by plain loads before the
    // vector loop so that the loop itself is only vector arithmetic (with the loads inside,
    // LLVM produced a mix of scalar code and 128-bit vectors: 74 ns instead of 48 ns per
    // 38-symbol candidate).
    let mut eqs: Vec<[u64; L]> = Vec::new();
    let mut groups = pending.chunks_exact(L);
    for group in &mut groups {
        let lanes: [&[Symbol]; L] = std::array::from_fn(|l| texts[group[l]]);
        let res = group_word(peq, global, lanes, k, &mut eqs);
        for (&i, d) in group.iter().zip(res) {
            out[i] = d.map(narrow);
        }
    }
    for &i in groups.remainder() {
        out[i] = v.distance_usize(texts[i], k).map(narrow);
    }
}

/// Sorts candidate indices by text length, so that the lanes of a group end close together.
/// A counting sort: lengths in a chunk span a small range, and a comparison sort of 256
/// indices costs as much as verifying a tenth of them.
fn sort_by_len(pending: &mut Vec<usize>, texts: &[&[Symbol]]) {
    let len = |i: usize| texts[i].len();
    let (Some(lo), Some(hi)) = (
        pending.iter().map(|&i| len(i)).min(),
        pending.iter().map(|&i| len(i)).max(),
    ) else {
        return;
    };
    if hi - lo > 4 * pending.len() + 64 {
        pending.sort_unstable_by_key(|&i| len(i));
        return;
    }
    let mut starts = vec![0usize; hi - lo + 2];
    for &i in pending.iter() {
        starts[len(i) - lo + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let mut sorted = vec![0usize; pending.len()];
    for &i in pending.iter() {
        let slot = &mut starts[len(i) - lo];
        sorted[*slot] = i;
        *slot += 1;
    }
    *pending = sorted;
}

/// `L` non-empty candidates against a one-word query.
#[inline(always)]
fn group_word<const L: usize>(
    peq: &Peq,
    global: bool,
    lanes: [&[Symbol]; L],
    k: Option<usize>,
    eqs: &mut Vec<[u64; L]>,
) -> [Option<usize>; L] {
    let m = peq.m;
    let cap = peq.cap;
    // Slicing to the known length lets the clamped lookups below skip bounds checks.
    let tab = &peq.table[..=cap];
    let top = u64::from(global);
    let shift = peq.last_shift();
    let common = lanes.iter().map(|t| t.len()).min().unwrap_or(0);
    eqs.clear();
    eqs.resize(common, [0; L]);
    for (l, t) in lanes.iter().enumerate() {
        for (slot, &c) in eqs.iter_mut().zip(t.iter()) {
            slot[l] = tab[usize::from(c).min(cap)];
        }
    }

    let mut pv = [!0u64; L];
    let mut mv = [0u64; L];
    // Infix only: D[m][j] and its running minimum.
    let mut score = [m as u64; L];
    let mut best = [m as u64; L];
    let mut dead = [false; L];
    let mut j = 0;
    while j < common {
        let stop = (j + CHECK_EVERY).min(common);
        for eq in &eqs[j..stop] {
            for l in 0..L {
                let (ph, mh) = step(&mut pv[l], &mut mv[l], eq[l], top);
                if !global {
                    score[l] = score[l] + ((ph >> shift) & 1) - ((mh >> shift) & 1);
                    best[l] = best[l].min(score[l]);
                }
            }
        }
        j = stop;
        if let (true, Some(k)) = (global, k) {
            // The diagonal lower bound of `word_global`, per lane.
            let mut all_dead = true;
            for l in 0..L {
                let n = lanes[l].len();
                if j + m >= n && prefix_value(j, pv[l], mv[l], j + m - n) > k {
                    dead[l] = true;
                }
                all_dead &= dead[l];
            }
            if all_dead {
                return [None; L];
            }
        }
    }

    std::array::from_fn(|l| {
        let t = lanes[l];
        let rest = &t[common..];
        if dead[l] {
            None
        } else if global {
            word_global(peq, rest, common, t.len(), pv[l], mv[l], k)
        } else {
            let mut b = best[l] as usize;
            word_scan(
                peq,
                rest.iter().copied(),
                common,
                0,
                pv[l],
                mv[l],
                score[l] as usize,
                |_, s| {
                    b = b.min(s);
                    ControlFlow::Continue(())
                },
            );
            Some(b).filter(|&d| within(d, k))
        }
    })
}
