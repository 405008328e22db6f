//! Batch verification: one query against many candidates, several candidates per SIMD register.
//!
//! One candidate's columns form a dependency chain (each column needs the previous one), so a
//! single candidate leaves most of a core idle. Here `L` candidates ("lanes") advance together:
//! the state is `[u64; L]` arrays and the column step is plain array arithmetic, which LLVM turns
//! into AVX2 (`L = 4`) or AVX-512 (`L = 8`) instructions inside `#[target_feature]` functions
//! chosen at run time. Only the match-mask lookups stay scalar (one load per lane), except for
//! multi-word queries on AVX-512 (`BlockLanes::gather_avx512`).
//!
//! One-word queries (<= 64 symbols) use lanes in both modes; global queries of up to 4 words
//! (256 symbols) too, with all their blocks in each lane (`stream_blocks`); the others are
//! verified one by one (see `chunk_lanes`). Each lane streams through candidates on its own:
//! when its candidate is finished or hopeless it takes the next one (see `stream_word`), so
//! lanes never wait for one another and candidates of any length mix. Chunks of [`CHUNK`]
//! candidates run on the rayon pool, which small batches skip.

use rayon::prelude::*;

use super::kernel::{advance_block, low_bits, prefix_value, step, within, Peq};
use super::{narrow, Mode, Verifier};
use crate::Symbol;

/// Candidates per rayon task: large enough that a task (tens of microseconds) dwarfs the
/// scheduling cost, small enough to balance two to sixteen cores on batches of thousands.
const CHUNK: usize = 256;

/// Most blocks (64 query symbols each) of a query verified in lanes: the block states of a lane
/// set stay in vector registers.
const MAX_LANE_WORDS: usize = 4;

/// Columns a lane advances between checks for a finished or hopeless candidate: checking every
/// column costs more than the columns it saves.
const BLOCK: usize = 8;

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
    // Multi-word queries use lanes in global mode up to `MAX_LANE_WORDS` blocks; infix and
    // longer queries stay scalar. With a bound, 4 lanes (AVX2) of 3 or 4 blocks measured no
    // faster than the banded scalar kernel (up to 1.4x slower), which computes only the blocks
    // that meet the band.
    let lanes = L > 1
        && (peq.words == 1 || (global && peq.words <= MAX_LANE_WORDS && (L >= 8 || k.is_none())));
    let mut pending: Vec<usize> = Vec::with_capacity(texts.len());
    for (i, t) in texts.iter().enumerate() {
        let trivial = !lanes
            || m == 0
            || t.is_empty()
            || (global && k.is_some_and(|k| m.abs_diff(t.len()) > k));
        if trivial {
            out[i] = v.distance_usize(t, k).map(narrow);
        } else {
            pending.push(i);
        }
    }
    if pending.is_empty() {
        return;
    }
    match peq.words {
        1 => stream_word::<L>(peq, global, texts, &pending, k, out),
        2 => stream_blocks::<L, 2>(peq, texts, &pending, k, out),
        3 => stream_blocks::<L, 3>(peq, texts, &pending, k, out),
        _ => stream_blocks::<L, 4>(peq, texts, &pending, k, out),
    }
}

/// Verifies the non-empty candidates `pending` (indices into `texts`) against a one-word query
/// with `L` lanes, writing each answer to `out`.
///
/// Each lane holds one candidate at its own column. The lanes advance [`BLOCK`] columns at a
/// time; a lane with fewer columns left is masked off for the rest of the block (at most
/// `BLOCK - 1` wasted columns per candidate). After each block, every lane that has finished
/// its text, or whose candidate can no longer reach the bound (see
/// [`word_global`](super::kernel::word_global) and [`infix_hopeless`]), reports and takes the
/// next pending candidate. So no lane idles while others run on, and the match masks are only
/// gathered for the columns that are computed: on an exhaustive scan with a bound most
/// candidates die after two or three blocks.
///
/// Two independent sets of lanes run interleaved: one block is a chain of dependent steps
/// (gather, then each column from the previous one, then the checks), so one set alone leaves
/// the core waiting on latencies that the other set's work fills.
///
/// Candidates are taken in input order, which keeps memory access sequential; the next ones
/// are prefetched.
#[inline(always)]
fn stream_word<const L: usize>(
    peq: &Peq,
    global: bool,
    texts: &[&[Symbol]],
    pending: &[usize],
    k: Option<usize>,
    out: &mut [Option<u32>],
) {
    let tab = &peq.table[..=peq.cap];
    let mut feed = Feed {
        texts,
        pending,
        next: 0,
    };
    let mut sets = [Lanes::<L>::new(peq.m), Lanes::<L>::new(peq.m)];
    for set in &mut sets {
        for l in 0..L {
            set.refill(l, &mut feed);
        }
    }
    while sets.iter().any(|s| s.active != 0) {
        for set in &mut sets {
            let rest: [&[Symbol]; L] = std::array::from_fn(|l| &set.text[l][set.pos[l]..]);
            gather_lanes(tab, &rest, &mut set.eqs);
        }
        for c in 0..BLOCK {
            for set in &mut sets {
                set.step(c, global, peq.last_shift());
            }
        }
        for set in &mut sets {
            let mut report = set.advance(global, k);
            while report != 0 {
                let l = report.trailing_zeros() as usize;
                report &= report - 1;
                out[set.idx[l]] = set.answer(l, global, k).map(narrow);
                set.refill(l, &mut feed);
            }
        }
    }
}

/// The candidates still to verify.
struct Feed<'t> {
    texts: &'t [&'t [Symbol]],
    pending: &'t [usize],
    next: usize,
}

impl<'t> Feed<'t> {
    /// The next candidate (its index and text) for a lane of a set of `lanes`, prefetching the
    /// text the set will take two rounds later; `None` when every candidate has been handed out.
    #[inline(always)]
    fn take(&mut self, lanes: usize) -> Option<(usize, &'t [Symbol])> {
        let &i = self.pending.get(self.next)?;
        self.next += 1;
        if let Some(&ahead) = self.pending.get(self.next + 2 * lanes) {
            prefetch(self.texts[ahead]);
        }
        Some((i, self.texts[i]))
    }
}

/// `L` lanes, each verifying one candidate against a one-word query.
struct Lanes<'t, const L: usize> {
    m: usize,
    /// Bit l: lane l holds a candidate.
    active: u32,
    /// Per lane: the candidate, its text, columns consumed.
    idx: [usize; L],
    text: [&'t [Symbol]; L],
    pos: [usize; L],
    /// Vector state: columns left (0 when idle), the column, infix bottom score and its
    /// running minimum.
    rem: [u64; L],
    pv: [u64; L],
    mv: [u64; L],
    score: [u64; L],
    best: [u64; L],
    /// Match masks of one block, column-major (`eqs[c][l]`): filled before the vector loop so
    /// that the loop itself is only vector arithmetic (with the loads inside, LLVM produced a
    /// mix of scalar code and 128-bit vectors).
    eqs: [[u64; L]; BLOCK],
}

impl<'t, const L: usize> Lanes<'t, L> {
    #[inline(always)]
    fn new(m: usize) -> Self {
        Lanes {
            m,
            active: 0,
            idx: [0; L],
            text: [&[]; L],
            pos: [0; L],
            rem: [0; L],
            pv: [!0; L],
            mv: [0; L],
            score: [m as u64; L],
            best: [m as u64; L],
            eqs: [[0; L]; BLOCK],
        }
    }

    /// Puts the next pending candidate into lane `l` (column 0), or idles it.
    #[inline(always)]
    fn refill(&mut self, l: usize, feed: &mut Feed<'t>) {
        let m = self.m as u64;
        self.pos[l] = 0;
        self.pv[l] = !0;
        self.mv[l] = 0;
        self.score[l] = m;
        self.best[l] = m;
        if let Some((i, text)) = feed.take(L) {
            self.active |= 1 << l;
            self.idx[l] = i;
            self.text[l] = text;
            self.rem[l] = text.len() as u64;
        } else {
            self.active &= !(1 << l);
            self.text[l] = &[];
            self.rem[l] = 0;
        }
    }

    /// Column `c` of the block, in every lane that still has it.
    #[inline(always)]
    fn step(&mut self, c: usize, global: bool, shift: u32) {
        let top = u64::from(global);
        for l in 0..L {
            // All ones while lane l still has column c, else all zeros.
            let on = 0u64.wrapping_sub(u64::from((c as u64) < self.rem[l]));
            let (mut p, mut q) = (self.pv[l], self.mv[l]);
            let (ph, mh) = step(&mut p, &mut q, self.eqs[c][l], top);
            self.pv[l] = (p & on) | (self.pv[l] & !on);
            self.mv[l] = (q & on) | (self.mv[l] & !on);
            if !global {
                let up = (ph >> shift) & 1 & on;
                let down = (mh >> shift) & 1 & on;
                self.score[l] = self.score[l].wrapping_add(up).wrapping_sub(down);
                self.best[l] = self.best[l].min(self.score[l]);
            }
        }
    }

    /// Accounts for a block and returns the lanes that are done: finished, or hopeless under
    /// the bound. Without a branch per lane: whether a lane dies is close to a coin flip on
    /// unrelated candidates.
    #[inline(always)]
    fn advance(&mut self, global: bool, k: Option<usize>) -> u32 {
        let m = self.m;
        let mut report = 0u32;
        for l in 0..L {
            let done = self.rem[l].min(BLOCK as u64);
            self.rem[l] -= done;
            self.pos[l] += done as usize;
            let (j, n) = (self.pos[l], self.text[l].len());
            let (pv, mv) = (self.pv[l], self.mv[l]);
            let hopeless = match k {
                // The diagonal lower bound of `kernel::word_global`.
                Some(k) if global => {
                    j + m >= n && prefix_value(j, pv, mv, (j + m).saturating_sub(n)) > k
                }
                Some(k) => {
                    self.best[l] as usize > k
                        && infix_hopeless(m, j, n, pv, mv, self.score[l] as usize, k)
                }
                None => false,
            };
            report |= u32::from(self.rem[l] == 0 || hopeless) << l;
        }
        report & self.active
    }

    /// The answer of a lane that [`Lanes::advance`] reported.
    #[inline(always)]
    fn answer(&self, l: usize, global: bool, k: Option<usize>) -> Option<usize> {
        if self.rem[l] > 0 {
            None
        } else if global {
            Some(prefix_value(
                self.text[l].len(),
                self.pv[l],
                self.mv[l],
                self.m,
            ))
            .filter(|&d| within(d, k))
        } else {
            Some(self.best[l] as usize).filter(|&d| within(d, k))
        }
    }
}

/// Fills `eqs[c][l]` with the match mask of `rest[l][c]` for the columns each lane has
/// (entries past the end of a lane's text are left as they were: those columns are masked).
/// LLVM turns this into vector gathers and scatters; hand-written AVX-512 (a masked load per
/// lane, a word permutation into column order, one `vpgatherqq` per column) measured no faster.
#[inline(always)]
fn gather_lanes<const L: usize>(tab: &[u64], rest: &[&[Symbol]; L], eqs: &mut [[u64; L]; BLOCK]) {
    let cap = tab.len() - 1;
    for (l, t) in rest.iter().enumerate() {
        for (slot, &c) in eqs.iter_mut().zip(t.iter()) {
            slot[l] = tab[usize::from(c).min(cap)];
        }
    }
}

/// Whether no column after `j` of an `n`-symbol text can end an infix match of a one-word
/// query within `k`, given column `j` (`pv`, `mv`, bottom score `score` = D[m][j]).
///
/// A path that ends at (m, j') with j' > j crosses column j at some row i and then covers
/// m - i query rows with at most n - j text columns, so it costs at least
/// D[i][j] + max(0, r - i) with r = m - (n - j). For i <= r that is at least D[r][j] (D moves by
/// at most one per row); for i >= r, D[i][j] >= max(D[r][j] - (i - r), D[m][j] - (m - i)),
/// whose minimum over i is ceil((D[r][j] + D[m][j] - (m - r)) / 2). Paths that start after
/// column j cost at least r + 1 > D[r][j] (D[r][j] <= r in infix mode).
#[inline(always)]
fn infix_hopeless(m: usize, j: usize, n: usize, pv: u64, mv: u64, score: usize, k: usize) -> bool {
    let left = n - j;
    if left >= m {
        // r <= 0: D[0][j] = 0 gives no bound.
        return false;
    }
    let r = m - left;
    let at_r = prefix_value(0, pv, mv, r);
    // (at_r + score - left) / 2 > k, rounded up, without underflow.
    at_r + score > 2 * k + left
}

/// [`stream_word`] for a global query of `N` blocks (Myers 1999's block-based algorithm in each
/// lane). Every lane computes all `N` blocks of each column: the band of the scalar kernel
/// (`kernel::blocks_global`) would differ between lanes, and the vector step is cheap enough
/// that lanes which die early (refilled) save more than a band would.
#[inline(always)]
fn stream_blocks<const L: usize, const N: usize>(
    peq: &Peq,
    texts: &[&[Symbol]],
    pending: &[usize],
    k: Option<usize>,
    out: &mut [Option<u32>],
) {
    let words = peq.words;
    // Exactly the masks of symbols 0..=cap, so `BlockLanes::gather` cannot go out of bounds.
    let tab = &peq.table[..(peq.cap + 1) * words];
    assert!(words == N);
    let mut feed = Feed {
        texts,
        pending,
        next: 0,
    };
    let mut sets = [
        BlockLanes::<L, N>::new(peq.m),
        BlockLanes::<L, N>::new(peq.m),
    ];
    for set in &mut sets {
        for l in 0..L {
            set.refill(l, &mut feed);
        }
    }
    while sets.iter().any(|s| s.active != 0) {
        for set in &mut sets {
            set.gather(tab, peq.cap);
        }
        for c in 0..BLOCK {
            for set in &mut sets {
                set.step(c);
            }
        }
        for set in &mut sets {
            let mut report = set.advance(k);
            while report != 0 {
                let l = report.trailing_zeros() as usize;
                report &= report - 1;
                out[set.idx[l]] = set.answer(l, k).map(narrow);
                set.refill(l, &mut feed);
            }
        }
    }
}

/// `L` lanes, each verifying one candidate against a global query of `N` blocks.
struct BlockLanes<'t, const L: usize, const N: usize> {
    m: usize,
    /// Bit l: lane l holds a candidate.
    active: u32,
    /// Per lane: the candidate, its text, columns consumed.
    idx: [usize; L],
    text: [&'t [Symbol]; L],
    pos: [usize; L],
    /// Columns left (0 when idle) and the column's blocks (`pv[b][l]`).
    rem: [u64; L],
    pv: [[u64; L]; N],
    mv: [[u64; L]; N],
    /// Match masks of one block of columns: `eqs[c][b][l]`.
    eqs: [[[u64; L]; N]; BLOCK],
}

impl<'t, const L: usize, const N: usize> BlockLanes<'t, L, N> {
    #[inline(always)]
    fn new(m: usize) -> Self {
        BlockLanes {
            m,
            active: 0,
            idx: [0; L],
            text: [&[]; L],
            pos: [0; L],
            rem: [0; L],
            pv: [[!0; L]; N],
            mv: [[0; L]; N],
            eqs: [[[0; L]; N]; BLOCK],
        }
    }

    /// Puts the next pending candidate into lane `l` (column 0), or idles it.
    #[inline(always)]
    fn refill(&mut self, l: usize, feed: &mut Feed<'t>) {
        self.pos[l] = 0;
        for b in 0..N {
            self.pv[b][l] = !0;
            self.mv[b][l] = 0;
        }
        if let Some((i, text)) = feed.take(L) {
            self.active |= 1 << l;
            self.idx[l] = i;
            self.text[l] = text;
            self.rem[l] = text.len() as u64;
        } else {
            self.active &= !(1 << l);
            self.text[l] = &[];
            self.rem[l] = 0;
        }
    }

    /// Fills `eqs` for the next block of columns (entries past the end of a lane's text are
    /// left as they were: those columns are masked). `tab` holds exactly `(cap + 1) * N`
    /// masks.
    #[inline(always)]
    fn gather(&mut self, tab: &[u64], cap: usize) {
        #[cfg(target_arch = "x86_64")]
        if L == 8
            && N <= 4
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
        {
            // SAFETY: the features were just detected (a cached flag: cheap once per block of
            // columns), and `L` and `N` are as required.
            unsafe { self.gather_avx512(tab, cap) };
            return;
        }
        for l in 0..L {
            let rest = &self.text[l][self.pos[l]..];
            for (slot, &c) in self.eqs.iter_mut().zip(rest.iter()) {
                let row = usize::from(c).min(cap) * N;
                let masks = &tab[row..row + N];
                for b in 0..N {
                    slot[b][l] = masks[b];
                }
            }
        }
    }

    /// [`BlockLanes::gather`] for 8 lanes and at most 4 blocks: each lane's `N` masks are one
    /// (masked) 256-bit load, and two rounds of permutes turn the 8 lanes' rows into one
    /// vector per block. LLVM's version loads and stores each mask on its own, which cost as
    /// much as the column steps.
    ///
    /// # Safety
    ///
    /// The CPU has AVX-512F and AVX-512VL; `L == 8`, `N <= 4`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl")]
    #[inline]
    unsafe fn gather_avx512(&mut self, tab: &[u64], cap: usize) {
        use std::arch::x86_64::*;
        debug_assert!(L == 8 && N <= 4);
        // Row offsets: a lane past the end of its text reads the all-zero row `cap` (those
        // columns are masked anyway).
        let mut rows = [[cap * N; 8]; BLOCK];
        for (l, (text, &pos)) in self.text.iter().zip(&self.pos).enumerate().take(8) {
            for (c, &sym) in text[pos..].iter().take(BLOCK).enumerate() {
                rows[c][l] = usize::from(sym).min(cap) * N;
            }
        }
        let keep: __mmask8 = (1u8 << N) - 1;
        // Index vectors of the two transpose rounds (`_mm512_permutex2var_epi64`: 0..8 from
        // the first operand, 8..16 from the second).
        let pick_lo = _mm512_setr_epi64(0, 4, 8, 12, 1, 5, 9, 13);
        let pick_hi = _mm512_setr_epi64(2, 6, 10, 14, 3, 7, 11, 15);
        let join_lo = _mm512_setr_epi64(0, 1, 2, 3, 8, 9, 10, 11);
        let join_hi = _mm512_setr_epi64(4, 5, 6, 7, 12, 13, 14, 15);
        let base = tab.as_ptr();
        for (c, rows) in rows.iter().enumerate() {
            // SAFETY: every row offset is `r * N` with `r <= cap`, and `tab` holds
            // `(cap + 1) * N` masks, so the `N` unmasked words are in bounds; masked-off words
            // are never accessed (no fault).
            let y: [__m256i; 8] = std::array::from_fn(|l| unsafe {
                _mm256_maskz_loadu_epi64(keep, base.add(rows[l]).cast())
            });
            // a[i] = lanes 2i (low half) and 2i + 1 (high half), blocks 0..4 each.
            let a: [__m512i; 4] = std::array::from_fn(|i| {
                _mm512_inserti64x4::<1>(_mm512_castsi256_si512(y[2 * i]), y[2 * i + 1])
            });
            // Lanes 0..4 (from a[0], a[1]) and 4..8 (a[2], a[3]): blocks 0, 1 and 2, 3.
            let b01 = _mm512_permutex2var_epi64(a[0], pick_lo, a[1]);
            let b23 = _mm512_permutex2var_epi64(a[0], pick_hi, a[1]);
            let c01 = _mm512_permutex2var_epi64(a[2], pick_lo, a[3]);
            let c23 = _mm512_permutex2var_epi64(a[2], pick_hi, a[3]);
            let z = [
                _mm512_permutex2var_epi64(b01, join_lo, c01),
                _mm512_permutex2var_epi64(b01, join_hi, c01),
                _mm512_permutex2var_epi64(b23, join_lo, c23),
                _mm512_permutex2var_epi64(b23, join_hi, c23),
            ];
            for (b, z) in z.iter().enumerate().take(N) {
                // SAFETY: `eqs[c][b]` is `[u64; L]` with L == 8: 64 bytes, unaligned store.
                unsafe { _mm512_storeu_si512(self.eqs[c][b].as_mut_ptr().cast(), *z) };
            }
        }
    }

    /// Column `c` of the block, in every lane that still has it.
    #[inline(always)]
    fn step(&mut self, c: usize) {
        let on: [u64; L] =
            std::array::from_fn(|l| 0u64.wrapping_sub(u64::from((c as u64) < self.rem[l])));
        let mut hp = [1u64; L];
        let mut hm = [0u64; L];
        for b in 0..N {
            for l in 0..L {
                let (mut p, mut q) = (self.pv[b][l], self.mv[b][l]);
                (hp[l], hm[l]) = advance_block(&mut p, &mut q, self.eqs[c][b][l], hp[l], hm[l], 63);
                self.pv[b][l] = (p & on[l]) | (self.pv[b][l] & !on[l]);
                self.mv[b][l] = (q & on[l]) | (self.mv[b][l] & !on[l]);
            }
        }
    }

    /// D[i][j] of lane `l` at its current column `j` (`i <= m`).
    #[inline(always)]
    fn value(&self, l: usize, i: usize) -> usize {
        let mut d = self.pos[l];
        for b in 0..N {
            let h = i.saturating_sub(64 * b).min(64);
            d += (self.pv[b][l] & low_bits(h)).count_ones() as usize;
            d -= (self.mv[b][l] & low_bits(h)).count_ones() as usize;
        }
        d
    }

    /// Accounts for a block and returns the lanes that are done: finished, or hopeless under
    /// the bound (the diagonal cutoff of `kernel::word_global`).
    #[inline(always)]
    fn advance(&mut self, k: Option<usize>) -> u32 {
        let m = self.m;
        let mut report = 0u32;
        for l in 0..L {
            let done = self.rem[l].min(BLOCK as u64);
            self.rem[l] -= done;
            self.pos[l] += done as usize;
            let (j, n) = (self.pos[l], self.text[l].len());
            let hopeless = match k {
                Some(k) => j + m >= n && self.value(l, (j + m).saturating_sub(n)) > k,
                None => false,
            };
            report |= u32::from(self.rem[l] == 0 || hopeless) << l;
        }
        report & self.active
    }

    /// The answer of a lane that [`BlockLanes::advance`] reported.
    #[inline(always)]
    fn answer(&self, l: usize, k: Option<usize>) -> Option<usize> {
        if self.rem[l] > 0 {
            None
        } else {
            Some(self.value(l, self.m)).filter(|&d| within(d, k))
        }
    }
}

/// Hints the cache to fetch the start of `t`, which a lane is about to read.
#[inline(always)]
fn prefetch(t: &[Symbol]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of the x86_64 baseline, and a prefetch never faults, whatever
        // the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(t.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = t;
}
