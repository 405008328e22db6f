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

    /// D[i][j] given D[0][j] = `top`, or `None` when row `i` lies below the active blocks
    /// (so D[i][j] exceeds the bound).
    pub fn value_at(&self, top: usize, i: usize) -> Option<usize> {
        if i == 0 {
            return Some(top);
        }
        let b = (i - 1) / 64;
        if b > self.y {
            return None;
        }
        let base = if b == 0 { top } else { self.score[b - 1] };
        Some(prefix_value(base, self.pv[b], self.mv[b], i - 64 * b))
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

/// Global distance for a multi-word query continuing from `st` at column `j0`; see
/// [`word_global`] for the diagonal cutoff.
pub(crate) fn blocks_global(
    peq: &Peq,
    rest: &[Symbol],
    j0: usize,
    n: usize,
    st: &mut Blocks,
    k: Option<usize>,
) -> Option<usize> {
    let m = peq.m;
    let mut dead = false;
    if let Some(k) = k {
        blocks_scan(
            peq,
            rest.iter().copied(),
            j0,
            true,
            Some(k),
            st,
            |j, _, st| {
                if j % 8 == 0 && j + m >= n {
                    match st.value_at(j, j + m - n) {
                        Some(d) if d <= k => {}
                        _ => {
                            dead = true;
                            return ControlFlow::Break(());
                        }
                    }
                }
                ControlFlow::Continue(())
            },
        );
    } else {
        blocks_scan(peq, rest.iter().copied(), j0, true, None, st, |_, _, _| {
            ControlFlow::Continue(())
        });
    }
    if dead {
        return None;
    }
    st.bottom().filter(|&d| within(d, k))
}
