//! Scalar bit-parallel kernels: the match masks of a query (`Peq`), the one-word column step for
//! queries of at most 64 symbols, and Myers' block-based variant with Ukkonen's cutoff beyond.
//!
//! Notation follows Hyyrö 2003 ("A bit-vector algorithm for computing Levenshtein and Damerau
//! edit distances", section 2) and Myers 1999 ("A fast bit-vector algorithm for approximate
//! string matching based on dynamic programming", section 4): the DP matrix D has one row per
//! query symbol (i = 0..=m) and one column per text symbol (j = 0..=n); a column is stored as
//! two bit vectors of vertical deltas, `pv` (D[i][j] - D[i-1][j] = +1) and `mv` (= -1). Row 0 is
//! D[0][j] = j in global mode and 0 in infix mode, which is the only difference between the two:
//! the horizontal delta shifted in at the top is 1 or 0.
//!
//! Every kernel can start from a saved column (`j0` columns already consumed) so that the SIMD
//! batch kernels in `batch.rs` can hand a lane over to scalar code when it outlives its group.

use std::ops::ControlFlow;

use crate::Symbol;

/// Match masks of a query: bit `i % 64` of word `i / 64` of row `c` is set when `query[i] == c`.
///
/// The table is dense over `0..=cap`, where `cap` is one more than the largest symbol of the
/// query; row `cap` is all zeros and every text symbol above the largest query symbol is clamped
/// to it. A clamp and one load per column beat a hash lookup, and for the vocabularies we index
/// (hundreds to a few thousand symbols) the table stays in L1/L2.
#[derive(Clone)]
pub(crate) struct Peq {
    /// Query length.
    pub m: usize,
    /// 64-bit words per column: `ceil(m / 64)`, at least 1.
    pub words: usize,
    /// Index of the all-zero row; symbols `>= cap` map to it.
    pub cap: usize,
    /// `(cap + 1) * words` masks, symbol-major.
    pub table: Vec<u64>,
}

impl std::fmt::Debug for Peq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The table can hold 65,536 rows; printing it helps nobody.
        f.debug_struct("Peq")
            .field("m", &self.m)
            .field("words", &self.words)
            .field("rows", &(self.cap + 1))
            .finish()
    }
}

impl Peq {
    pub fn new<I>(query: I) -> Peq
    where
        I: ExactSizeIterator<Item = Symbol> + Clone,
    {
        let m = query.len();
        let words = m.div_ceil(64).max(1);
        let cap = query.clone().map(usize::from).max().map_or(0, |c| c + 1);
        let mut table = vec![0u64; (cap + 1) * words];
        for (i, c) in query.enumerate() {
            table[usize::from(c) * words + i / 64] |= 1u64 << (i % 64);
        }
        Peq {
            m,
            words,
            cap,
            table,
        }
    }

    /// Row of `c` in the table, premultiplied by `words`.
    #[inline(always)]
    pub fn row(&self, c: Symbol) -> usize {
        usize::from(c).min(self.cap) * self.words
    }

    /// Bit of the last query row within the last word: where the bottom score is read.
    #[inline(always)]
    pub fn last_shift(&self) -> u32 {
        (self.m.saturating_sub(1) % 64) as u32
    }

    /// Number of query rows covered by block `b`.
    #[inline(always)]
    pub fn height(&self, b: usize) -> usize {
        if b + 1 == self.words {
            self.m - 64 * b
        } else {
            64
        }
    }
}

/// Whether distance `d` satisfies the bound `k` (`None`: unbounded).
#[inline(always)]
pub(crate) fn within(d: usize, k: Option<usize>) -> bool {
    match k {
        None => true,
        Some(k) => d <= k,
    }
}

/// Mask of the low `i` bits, `i <= 64`.
#[inline(always)]
pub(crate) fn low_bits(i: usize) -> u64 {
    if i >= 64 {
        !0
    } else {
        (1u64 << i) - 1
    }
}

/// D[i][j] from the value at row 0 and the vertical deltas of rows `1..=i` (`i <= 64`).
#[inline(always)]
pub(crate) fn prefix_value(top: usize, pv: u64, mv: u64, i: usize) -> usize {
    let mask = low_bits(i);
    // D >= 0, so the subtraction cannot underflow.
    top + (pv & mask).count_ones() as usize - (mv & mask).count_ones() as usize
}

/// One column of Hyyrö's algorithm for a single word. `top` is the horizontal delta entering
/// row 0 (1 in global mode, 0 in infix mode). Returns the horizontal deltas (`ph`, `mh`) of the
/// new column before the shift, so bit `m - 1` tells how the bottom score moved.
#[inline(always)]
pub(crate) fn step(pv: &mut u64, mv: &mut u64, eq: u64, top: u64) -> (u64, u64) {
    let xv = eq | *mv;
    let xh = ((eq & *pv).wrapping_add(*pv) ^ *pv) | eq;
    let ph = *mv | !(xh | *pv);
    let mh = *pv & xh;
    let phs = (ph << 1) | top;
    let mhs = mh << 1;
    *pv = mhs | !(xv | phs);
    *mv = phs & xv;
    (ph, mh)
}

/// Myers' `advance_block` (1999, figure 9) with the incoming horizontal delta as two bits
/// (`hp_in` for +1, `hm_in` for -1) so that it has no branches. Returns the outgoing delta read
/// at bit `out_shift` (63 for inner blocks, the last query row for the last block).
#[inline(always)]
pub(crate) fn advance_block(
    pv: &mut u64,
    mv: &mut u64,
    eq: u64,
    hp_in: u64,
    hm_in: u64,
    out_shift: u32,
) -> (u64, u64) {
    let xv = eq | *mv;
    // A -1 entering from above acts like a match in row 0 of this block.
    let eq = eq | hm_in;
    let xh = ((eq & *pv).wrapping_add(*pv) ^ *pv) | eq;
    let ph = *mv | !(xh | *pv);
    let mh = *pv & xh;
    let hp_out = (ph >> out_shift) & 1;
    let hm_out = (mh >> out_shift) & 1;
    let ph = (ph << 1) | hp_in;
    let mh = (mh << 1) | hm_in;
    *pv = mh | !(xv | ph);
    *mv = ph & xv;
    (hp_out, hm_out)
}

/// Global distance for a one-word query, continuing from column `j0` (state `pv`, `mv`) over
/// `rest`, where the whole text has `n` symbols. With a bound, stops as soon as the cell on the
/// diagonal that ends in D[m][n] exceeds `k`: along a path from (i, j) to (m, n) the cost is at
/// least D[i][j] + |(m - i) - (n - j)|, and because D changes by at most one per row that
/// minimum over i is attained on that diagonal (Ukkonen 1985).
#[inline(always)]
pub(crate) fn word_global(
    peq: &Peq,
    rest: &[Symbol],
    j0: usize,
    n: usize,
    mut pv: u64,
    mut mv: u64,
    k: Option<usize>,
) -> Option<usize> {
    let m = peq.m;
    let tab = &peq.table[..];
    match k {
        None => {
            for &c in rest {
                step(&mut pv, &mut mv, tab[peq.row(c)], 1);
            }
            Some(prefix_value(n, pv, mv, m))
        }
        Some(k) => {
            let mut j = j0;
            // Checking every column costs more than the columns it saves.
            for chunk in rest.chunks(8) {
                for &c in chunk {
                    step(&mut pv, &mut mv, tab[peq.row(c)], 1);
                }
                j += chunk.len();
                if j + m >= n && prefix_value(j, pv, mv, j + m - n) > k {
                    return None;
                }
            }
            // At j = n the diagonal cell is D[m][n] itself, already checked above unless
            // `rest` was empty.
            let d = prefix_value(n, pv, mv, m);
            (d <= k).then_some(d)
        }
    }
}

/// Runs a one-word query over `rest` from column `j0`, calling `f(j, D[m][j])` after every
/// column `j` (1-based: `j` text symbols consumed). `score` is D[m][j0]. `top` is 1 for
/// global/prefix mode, 0 for infix mode. Stops when `f` breaks.
// The saved column (`j0`, `pv`, `mv`, `score`) is passed flat: these calls sit in hot loops and
// the values live in registers.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn word_scan<I, F>(
    peq: &Peq,
    rest: I,
    j0: usize,
    top: u64,
    mut pv: u64,
    mut mv: u64,
    mut score: usize,
    mut f: F,
) where
    I: Iterator<Item = Symbol>,
    F: FnMut(usize, usize) -> ControlFlow<()>,
{
    let tab = &peq.table[..];
    let shift = peq.last_shift();
    let mut j = j0;
    for c in rest {
        let (ph, mh) = step(&mut pv, &mut mv, tab[peq.row(c)], top);
        score = score + ((ph >> shift) & 1) as usize - ((mh >> shift) & 1) as usize;
        j += 1;
        if f(j, score).is_break() {
            return;
        }
    }
}

/// State of the block-based kernel for one column.
#[derive(Clone, Debug)]
pub(crate) struct Blocks {
    pv: Vec<u64>,
    mv: Vec<u64>,
    /// D at the bottom row of each block; exact for blocks `0..=y`.
    score: Vec<usize>,
    /// Last active block. Every cell below it is known to exceed the bound `k` (Myers 1999,
    /// section 4.2, after Ukkonen 1985), so it is neither computed nor stored.
    y: usize,
}

impl Blocks {
    /// Column 0 (D[i][0] = i), with only the blocks that can hold a value `<= k` active.
    pub fn new(peq: &Peq, k: Option<usize>) -> Blocks {
        let last = peq.words - 1;
        let y = k.map_or(last, |k| (k / 64).min(last));
        Blocks {
            pv: vec![!0; peq.words],
            mv: vec![0; peq.words],
            score: (0..peq.words).map(|b| (64 * (b + 1)).min(peq.m)).collect(),
            y,
        }
    }

    /// D at the last query row, or `None` when it is known to exceed the bound.
    pub fn bottom(&self) -> Option<usize> {
        (self.y + 1 == self.score.len()).then(|| self.score[self.y])
    }
}

/// Runs the block-based kernel over `rest` from column `j0`, calling `f(j, bottom, state)`
/// after every column, where `bottom` is D[m][j] or `None` when it exceeds `k`. `global`
/// selects row 0 = j (global/prefix) or 0 (infix).
#[inline(always)]
pub(crate) fn blocks_scan<I, F>(
    peq: &Peq,
    rest: I,
    j0: usize,
    global: bool,
    k: Option<usize>,
    st: &mut Blocks,
    mut f: F,
) where
    I: Iterator<Item = Symbol>,
    F: FnMut(usize, Option<usize>, &Blocks) -> ControlFlow<()>,
{
    let tab = &peq.table[..];
    let last = peq.words - 1;
    let last_shift = peq.last_shift();
    let top = u64::from(global);
    let mut j = j0;
    for c in rest {
        let row = peq.row(c);
        let eqs = &tab[row..row + peq.words];
        let (mut hp, mut hm) = (top, 0u64);
        // Four parallel arrays are indexed by block; an iterator chain would hide that.
        #[allow(clippy::needless_range_loop)]
        for b in 0..=st.y {
            let shift = if b == last { last_shift } else { 63 };
            (hp, hm) = advance_block(&mut st.pv[b], &mut st.mv[b], eqs[b], hp, hm, shift);
            st.score[b] = st.score[b] + hp as usize - hm as usize;
        }
        if let Some(k) = k {
            let y = st.y;
            if y < last {
                // Block y + 1 can only hold a value <= k if its first cell does, and that cell
                // is reached either diagonally from the previous bottom of block y or from the
                // new bottom of block y (its left neighbour is known to exceed k).
                let new = st.score[y];
                let old = new + hm as usize - hp as usize;
                let cost = usize::from(eqs[y + 1] & 1 == 0);
                if new < k || old + cost <= k {
                    let b = y + 1;
                    st.y = b;
                    st.pv[b] = !0;
                    st.mv[b] = 0;
                    // An upper bound on the unknown previous column, which is enough: the
                    // cells it feeds are either exact or still above k.
                    st.score[b] = old + peq.height(b);
                    let shift = if b == last { last_shift } else { 63 };
                    let (p, q) = advance_block(&mut st.pv[b], &mut st.mv[b], eqs[b], hp, hm, shift);
                    st.score[b] = st.score[b] + p as usize - q as usize;
                }
            }
            // Every cell of block y is at least its bottom minus (height - 1).
            while st.y > 0 && st.score[st.y] >= k + peq.height(st.y) {
                st.y -= 1;
            }
        }
        j += 1;
        let bottom = st.bottom().filter(|&d| within(d, k));
        if f(j, bottom, st).is_break() {
            return;
        }
    }
}

/// Most blocks a band segment keeps in registers (queries of up to 512 symbols); wider bands
/// run the same loop over slices.
const MAX_FIXED: usize = 8;

/// Global distance for a multi-word query (Myers 1999's blocks), or `None` when it exceeds `k`.
///
/// Only the blocks that meet the diagonal band are computed. Every cell (i, j) on an optimal
/// path to (m, n) costs at least |i - j| to reach and |(m - i) - (n - j)| to leave, so with a
/// bound k the path stays in the rows `j + lo ..= j + hi` with `lo = max(-k, m - n - k)` and
/// `hi = min(k, m - n + k)` (Ukkonen 1985). Blocks above the band are dropped and blocks below
/// it are started as the band moves down; the missing neighbours are replaced by upper bounds
/// (a +1 horizontal delta entering the top block, +1 vertical deltas in a block's first
/// column), so every computed cell is at least its true value and exact on such a path.
///
/// The active range changes at columns known in advance, so the text is split into segments
/// of constant range, each run with the block states in registers (`segment`). With a bound
/// the kernel stops when the cell on the diagonal ending in (m, n) exceeds k (see
/// [`word_global`]): computed values stay within one of each other down a column, so the
/// argument holds for the upper bounds too.
pub(crate) fn blocks_global(peq: &Peq, text: &[Symbol], k: Option<usize>) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("popcnt") {
        // SAFETY: the only feature it enables was just detected.
        return unsafe { blocks_global_popcnt(peq, text, k) };
    }
    band_global(peq, text, k)
}

/// [`band_global`] with a popcount instruction, which the band checks use every 8 columns.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn blocks_global_popcnt(peq: &Peq, text: &[Symbol], k: Option<usize>) -> Option<usize> {
    band_global(peq, text, k)
}

#[inline(always)]
fn band_global(peq: &Peq, text: &[Symbol], k: Option<usize>) -> Option<usize> {
    let (m, n, words) = (peq.m, text.len(), peq.words);
    // Also what makes the band non-empty at every column.
    if m == 0 || !within(m.abs_diff(n), k) {
        return (m == 0 && within(n, k)).then_some(n);
    }
    let band = Band::new(m, n, k);
    let mut stack = [[!0u64; MAX_FIXED], [0u64; MAX_FIXED]];
    let mut heap;
    let (pv, mv): (&mut [u64], &mut [u64]) = if words <= MAX_FIXED {
        let [pv, mv] = &mut stack;
        (&mut pv[..words], &mut mv[..words])
    } else {
        heap = (vec![!0u64; words], vec![0u64; words]);
        (&mut heap.0[..], &mut heap.1[..])
    };
    let tab = &peq.table[..(peq.cap + 1) * words];
    let cols = Columns {
        tab,
        words,
        cap: peq.cap,
    };
    // First active block and D[64 * lo][j] - j (its top row, which gains one per column once
    // the blocks above it are dropped).
    let mut lo = 0;
    let mut base = 0isize;
    let mut j = 0;
    while j < n {
        let (first, last) = band.blocks(j + 1);
        for b in lo..first {
            base += vertical(pv[b], mv[b], 64);
        }
        lo = first;
        let end = band.segment_end(lo, last, words).clamp(j + 1, n);
        let check = k.map(|k| Check { k, m, n, base });
        let (pv, mv) = (&mut pv[lo..=last], &mut mv[lo..=last]);
        let seg = &text[j..end];
        let alive = match last + 1 - lo {
            1 => segment::<1>(&cols, seg, j, lo, pv, mv, check),
            2 => segment::<2>(&cols, seg, j, lo, pv, mv, check),
            3 => segment::<3>(&cols, seg, j, lo, pv, mv, check),
            4 => segment::<4>(&cols, seg, j, lo, pv, mv, check),
            5 => segment::<5>(&cols, seg, j, lo, pv, mv, check),
            6 => segment::<6>(&cols, seg, j, lo, pv, mv, check),
            7 => segment::<7>(&cols, seg, j, lo, pv, mv, check),
            8 => segment::<8>(&cols, seg, j, lo, pv, mv, check),
            _ => run_columns(&cols, seg, j, lo, pv, mv, check),
        };
        if !alive {
            return None;
        }
        j = end;
    }
    // The band always ends in the last block (row m is in it at column n).
    let d = (lo..words).fold(n as isize + base, |d, b| {
        d + vertical(pv[b], mv[b], peq.height(b))
    });
    let d = usize::try_from(d).unwrap_or(0);
    within(d, k).then_some(d)
}

/// The diagonal band of [`blocks_global`] as row offsets from the column.
struct Band {
    m: usize,
    lo: isize,
    hi: isize,
}

impl Band {
    fn new(m: usize, n: usize, k: Option<usize>) -> Band {
        // Slices of `Symbol` are shorter than `isize::MAX / 2`, so these cannot overflow; no
        // path leaves the rows j - n ..= j + m, so a larger k changes nothing.
        let k = k.unwrap_or(usize::MAX).min(m + n) as isize;
        let s = m as isize - n as isize;
        Band {
            m,
            lo: (-k).max(s - k),
            hi: k.min(s + k),
        }
    }

    /// First and last block meeting the band at column `j >= 1`.
    fn blocks(&self, j: usize) -> (usize, usize) {
        let block = |d: isize| ((j as isize + d).clamp(1, self.m as isize) as usize - 1) / 64;
        (block(self.lo), block(self.hi))
    }

    /// Last column with the same active blocks `first..=last`: the band's edges move down one
    /// row per column, so the next change is when one of them enters the next block.
    fn segment_end(&self, first: usize, last: usize, words: usize) -> usize {
        let mut end = isize::MAX;
        if first + 1 < words {
            end = end.min(64 * (first as isize + 1) - self.lo);
        }
        if last + 1 < words {
            end = end.min(64 * (last as isize + 1) - self.hi);
        }
        usize::try_from(end).unwrap_or(0)
    }
}

/// The match masks as the band kernel reads them.
struct Columns<'a> {
    /// Exactly `(cap + 1) * words` masks.
    tab: &'a [u64],
    words: usize,
    cap: usize,
}

/// The diagonal cutoff of [`blocks_global`].
#[derive(Clone, Copy)]
struct Check {
    k: usize,
    m: usize,
    n: usize,
    /// D[64 * lo][j] - j for the segment's first block `lo`.
    base: isize,
}

impl Check {
    /// Whether the cell on the diagonal ending in (m, n) exceeds k at column `j`, given the
    /// states of blocks `lo..lo + pv.len()`.
    #[inline(always)]
    fn hopeless(&self, j: usize, lo: usize, pv: &[u64], mv: &[u64]) -> bool {
        if j + self.m < self.n {
            return false;
        }
        // In the band, so in the active blocks (or their top row).
        let i = j + self.m - self.n;
        debug_assert!(i >= 64 * lo && i <= 64 * (lo + pv.len()));
        let mut d = j as isize + self.base;
        for (b, (&p, &q)) in pv.iter().zip(mv).enumerate() {
            d += vertical(p, q, i.saturating_sub(64 * (lo + b)).min(64));
        }
        d > self.k as isize
    }
}

/// Sum of the vertical deltas in the low `h` rows of a block.
#[inline(always)]
fn vertical(pv: u64, mv: u64, h: usize) -> isize {
    let mask = low_bits(h);
    (pv & mask).count_ones() as isize - (mv & mask).count_ones() as isize
}

/// [`run_columns`] with the `N` block states copied into locals, which LLVM keeps in
/// registers once the loop over blocks is unrolled.
#[inline(always)]
fn segment<const N: usize>(
    cols: &Columns<'_>,
    text: &[Symbol],
    j0: usize,
    lo: usize,
    pv: &mut [u64],
    mv: &mut [u64],
    check: Option<Check>,
) -> bool {
    let mut p: [u64; N] = std::array::from_fn(|b| pv[b]);
    let mut q: [u64; N] = std::array::from_fn(|b| mv[b]);
    let alive = run_columns(cols, text, j0, lo, &mut p, &mut q, check);
    pv.copy_from_slice(&p);
    mv.copy_from_slice(&q);
    alive
}

/// Advances blocks `lo..lo + pv.len()` over `text` (columns `j0 + 1..`), the top one with a +1
/// entering from above. Returns false when `check` finds the text hopeless.
#[inline(always)]
fn run_columns(
    cols: &Columns<'_>,
    text: &[Symbol],
    j0: usize,
    lo: usize,
    pv: &mut [u64],
    mv: &mut [u64],
    check: Option<Check>,
) -> bool {
    let width = pv.len().min(mv.len());
    let (tab, words, cap) = (cols.tab, cols.words, cols.cap);
    // Every load below is at `c * words + lo + b` with `c <= cap` and `b < width`.
    assert!(lo + width <= words && (cap + 1) * words <= tab.len());
    let column = |pv: &mut [u64], mv: &mut [u64], c: Symbol| {
        let row = usize::from(c).min(cap) * words + lo;
        let (mut hp, mut hm) = (1u64, 0u64);
        for b in 0..width {
            // SAFETY: row + b <= cap * words + lo + width - 1 < (cap + 1) * words <= tab.len(),
            // asserted above.
            let eq = unsafe { *tab.get_unchecked(row + b) };
            (hp, hm) = advance_block(&mut pv[b], &mut mv[b], eq, hp, hm, 63);
        }
    };
    match check {
        None => {
            for &c in text {
                column(pv, mv, c);
            }
        }
        Some(check) => {
            let mut j = j0;
            // Checking every column costs more than the columns it saves.
            for chunk in text.chunks(8) {
                for &c in chunk {
                    column(pv, mv, c);
                }
                j += chunk.len();
                if check.hopeless(j, lo, pv, mv) {
                    return false;
                }
            }
        }
    }
    true
}
