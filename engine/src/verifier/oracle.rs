//! Plain O(mn) dynamic programming: the reference the bit-parallel kernels are tested and
//! benchmarked against. Deliberately naive so that it is obviously right.

use crate::Symbol;

/// Levenshtein distance between `a` and `b` (unit costs for substitution, insertion, deletion).
pub fn global(a: &[Symbol], b: &[Symbol]) -> u32 {
    // One row of the DP matrix over `b`; row 0 is D[0][j] = j.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = diag + usize::from(ca != cb);
            let best = sub.min(row[j] + 1).min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = best;
        }
    }
    saturate(row[b.len()])
}

/// Semi-global distance: the minimum over all substrings `t` of `text` of
/// `global(query, t)`. The whole query must be aligned; the start and end in `text` are free.
pub fn infix(query: &[Symbol], text: &[Symbol]) -> u32 {
    // Same recurrence, but the top row is all zeros (an alignment may start anywhere in the
    // text) and the answer is the minimum of the last row (it may end anywhere).
    let mut row = vec![0usize; text.len() + 1];
    for (i, &cq) in query.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &ct) in text.iter().enumerate() {
            let sub = diag + usize::from(cq != ct);
            let best = sub.min(row[j] + 1).min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = best;
        }
    }
    saturate(row.iter().copied().min().unwrap_or(0))
}

fn saturate(x: usize) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}
