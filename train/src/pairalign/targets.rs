//! VQ-derived targets (issue 8, training component 1): a clip's 50 Hz VQ frame codes compacted
//! deterministically into a string at the target token rate, each token timed at the start of
//! its segment (the paper's), or the commonest code of each cell of a fixed grid (the shipped
//! models').

use pairalign_models::vq::CODE_FRAME_MS;
use pairalign_models::{PairAlignConfig, TokenString};

/// A run of equal frame codes.
#[derive(Clone, Copy, Debug)]
struct Run {
    code: u16,
    start: usize,
    len: usize,
}

/// The target string of a clip from its VQ frame codes (`CODE_FRAME_MS` = 20 ms each), at
/// `token_rate` tokens per second of the clip.
///
/// Method: collapse repeats into runs (the VQ tokenizer's ~36 tokens/s on speech), then, while
/// there are more runs than `n = max(1, round(frames * 0.02 s * token_rate))`, remove the
/// shortest run (the earliest among equals): its frames join the longer of its two neighbours
/// (the left one among equals, the only one at an edge), which keeps its code; if the removal
/// leaves two neighbours with the same code side by side, they become one run. Short runs are
/// the frames whose codes the VQ encoder is least sure of (transitions, noise); what survives is
/// the code that held longest in each segment. The result has `n` tokens, or one fewer when the
/// last removal joined two equal neighbours, or fewer when the clip has fewer runs than `n`.
///
/// Each token's time is the start of its segment in ms, so the times are strictly increasing,
/// start at 0 and lie within the clip. `O(runs^2)`: about 110 runs in a 3 s window.
pub fn vq_targets(frame_codes: &[u16], token_rate: f64) -> TokenString {
    let mut runs = runs_of(frame_codes);
    let target = target_count(frame_codes.len(), token_rate);
    while runs.len() > target {
        // The shortest run, the earliest among equals.
        let Some(k) = (0..runs.len()).min_by_key(|&k| (runs[k].len, k)) else {
            break;
        };
        let into_left = match (k.checked_sub(1), runs.get(k + 1)) {
            (Some(l), Some(right)) => runs[l].len >= right.len,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let removed = runs.remove(k);
        if into_left {
            runs[k - 1].len += removed.len;
        } else {
            runs[k].len += removed.len;
            runs[k].start = removed.start;
        }
        // The neighbours of the removed run are now at k - 1 and k.
        if k >= 1 && k < runs.len() && runs[k - 1].code == runs[k].code {
            let right = runs.remove(k);
            runs[k - 1].len += right.len;
        }
    }
    TokenString {
        tokens: runs.iter().map(|r| r.code).collect(),
        times_ms: runs
            .iter()
            .map(|r| r.start as u32 * CODE_FRAME_MS)
            .collect(),
    }
}

/// Grid targets (`grid_targets` in the config): one token per cell of the fixed token grid,
/// `1 / token_rate` s wide from the clip's start, for every cell whose centre lies in the clip
/// (as [`pairalign_models::PairAlignConfig::grid_centres`] places a model's tokens at
/// offset 0.5): the code held by most of the cell's frames (a frame belongs to the cell its
/// middle falls in; among equally frequent codes the one nearest the cell's centre, then the
/// earliest). A code may repeat from cell to cell. The `k`-th token is the code at the `k`-th grid point,
/// not the `k`-th segment of the clip, so a decoder placed on the grid can predict it from the
/// audio there without knowing what came before, and the same audio gets the same target in
/// any window (up to the cells its window cuts). Each token is timed at its cell's start.
pub fn grid_targets(frame_codes: &[u16], token_rate: f64) -> TokenString {
    let period = 1000.0 / (f64::from(CODE_FRAME_MS) * token_rate);
    let frames = frame_codes.len();
    let mut out = TokenString::default();
    if !(period.is_finite() && period > 0.0) {
        return out;
    }
    let mut k = 0usize;
    while (k as f64 + 0.5) * period < frames as f64 {
        let (lo, hi) = (k as f64 * period, (k + 1) as f64 * period);
        let centre = (k as f64 + 0.5) * period;
        let cell: Vec<usize> = (0..frames)
            .skip((lo - 0.5).max(0.0).floor() as usize)
            .take_while(|&f| (f as f64 + 0.5) < hi)
            .filter(|&f| (f as f64 + 0.5) >= lo)
            .collect();
        // (count, -distance of its nearest frame to the centre, -first frame) per code.
        let mut best: Option<(usize, f64, usize, u16)> = None;
        for &f in &cell {
            let code = frame_codes[f];
            if best.is_some_and(|b| b.3 == code) {
                continue;
            }
            let of_code = cell.iter().filter(|&&g| frame_codes[g] == code);
            let count = of_code.clone().count();
            let near = of_code
                .map(|&g| (g as f64 + 0.5 - centre).abs())
                .fold(f64::INFINITY, f64::min);
            let better = match best {
                None => true,
                Some((c, d, first, _)) => {
                    (count, -near, std::cmp::Reverse(f)) > (c, -d, std::cmp::Reverse(first))
                }
            };
            if better {
                best = Some((count, near, f, code));
            }
        }
        if let Some((_, _, _, code)) = best {
            out.tokens.push(code);
            out.times_ms
                .push((lo * f64::from(CODE_FRAME_MS)).round() as u32);
        }
        k += 1;
    }
    out
}

/// The runs of equal codes.
fn runs_of(frame_codes: &[u16]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (i, &code) in frame_codes.iter().enumerate() {
        match runs.last_mut() {
            Some(run) if run.code == code => run.len += 1,
            _ => runs.push(Run {
                code,
                start: i,
                len: 1,
            }),
        }
    }
    runs
}

/// Tokens a clip of `frames` 50 Hz frames should have at `token_rate`: at least 1 for a
/// non-empty clip.
fn target_count(frames: usize, token_rate: f64) -> usize {
    if frames == 0 {
        return 0;
    }
    let n = frames as f64 * f64::from(CODE_FRAME_MS) / 1000.0 * token_rate;
    (n.round() as usize).max(1)
}

/// The VQ-derived string of a clip's 50 Hz frame codes under `cfg`: [`grid_targets`] with
/// `cfg.grid_targets`, else [`vq_targets`] at `cfg.token_rate`.
pub fn vq_segments(cfg: &PairAlignConfig, frame_codes: &[u16]) -> TokenString {
    if cfg.grid_targets {
        grid_targets(frame_codes, cfg.token_rate)
    } else {
        vq_targets(frame_codes, cfg.token_rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pairalign_models::collapse_repeats;

    /// Expands a target string back to frames (each token held until the next one starts).
    fn expand(ts: &TokenString, frames: usize) -> Vec<u16> {
        let mut out = Vec::with_capacity(frames);
        for (k, &tok) in ts.tokens.iter().enumerate() {
            let start = (ts.times_ms[k] / CODE_FRAME_MS) as usize;
            let end = ts
                .times_ms
                .get(k + 1)
                .map_or(frames, |&t| (t / CODE_FRAME_MS) as usize);
            out.extend(std::iter::repeat_n(tok, end - start));
            assert!(end > start);
        }
        out
    }

    #[test]
    fn empty_and_already_short_inputs() {
        assert!(vq_targets(&[], 12.7).is_empty());
        // 150 frames (3 s) of 5 runs: fewer than 38 already, so the runs are kept.
        let codes: Vec<u16> = (0..150).map(|i| (i / 30) as u16).collect();
        assert_eq!(
            vq_targets(&codes, 12.7),
            collapse_repeats(&codes, CODE_FRAME_MS)
        );
        // One frame gives one token.
        assert_eq!(vq_targets(&[9], 12.7).tokens, vec![9]);
    }

    /// Runs 1x4, 2x1, 3x2, 4x5, 5x1, 1x3 (16 frames).
    const SIX_RUNS: [u16; 16] = [1, 1, 1, 1, 2, 3, 3, 4, 4, 4, 4, 4, 5, 1, 1, 1];

    #[test]
    fn shortest_runs_go_first_into_the_longer_neighbour() {
        // Runs: 1x4, 2x1, 3x2, 4x5, 5x1, 1x3 (16 frames); at 12.7/s a 0.32 s clip wants
        // 4 tokens: the two single-frame runs go (2 into 1, 5 into 4).
        let codes = SIX_RUNS;
        let ts = vq_targets(&codes, 12.7);
        assert_eq!(ts.tokens, vec![1, 3, 4, 1]);
        assert_eq!(ts.times_ms, vec![0, 100, 140, 260]);
        // At 6/s, 2 tokens: then 3x2 goes into the longer 4 (6 frames against 1's 5), which
        // starts where 3 did, and the last 1x3 into 4 too.
        let ts = vq_targets(&codes, 6.0);
        assert_eq!(ts.tokens, vec![1, 4]);
        assert_eq!(ts.times_ms, vec![0, 100]);
    }

    #[test]
    fn equal_neighbours_merge() {
        // 7 7 | 8 | 7 7 7 | 9 9 9 9: removing 8 joins the two 7 runs.
        let codes = [7, 7, 8, 7, 7, 7, 9, 9, 9, 9];
        // 0.2 s at 10/s: 2 tokens.
        let ts = vq_targets(&codes, 10.0);
        assert_eq!(ts.tokens, vec![7, 9]);
        assert_eq!(ts.times_ms, vec![0, 120]);
    }

    #[test]
    fn pseudo_random_codes_hit_the_rate_and_stay_consistent() {
        let mut state = 99u32;
        for frames in [1usize, 7, 50, 150, 151, 1000] {
            let codes: Vec<u16> = (0..frames)
                .map(|_| {
                    state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    ((state >> 16) % 6) as u16
                })
                .collect();
            let ts = vq_targets(&codes, 12.7);
            let want = target_count(frames, 12.7);
            let runs = collapse_repeats(&codes, CODE_FRAME_MS).len();
            assert!(
                ts.len() == want.min(runs) || ts.len() + 1 == want,
                "{frames} frames: {} tokens, want {want}",
                ts.len()
            );
            assert_eq!(ts.times_ms[0], 0);
            assert!(ts.times_ms.windows(2).all(|w| w[0] < w[1]));
            assert!(ts.tokens.windows(2).all(|w| w[0] != w[1]));
            assert_eq!(expand(&ts, frames).len(), frames);
            assert_eq!(vq_targets(&codes, 12.7), ts, "deterministic");
        }
    }

    /// The plain definition: frames by the cell their middle falls in, the commonest code,
    /// ties to the frame nearest the centre, then the earliest.
    fn grid_oracle(codes: &[u16], rate: f64) -> Vec<u16> {
        let period = 50.0 / rate;
        let cells = (0..)
            .take_while(|&k| (k as f64 + 0.5) * period < codes.len() as f64)
            .count();
        (0..cells)
            .map(|k| {
                let centre = (k as f64 + 0.5) * period;
                let cell: Vec<usize> = (0..codes.len())
                    .filter(|&f| ((f as f64 + 0.5) / period).floor() as usize == k)
                    .collect();
                let count = |c: u16| cell.iter().filter(|&&f| codes[f] == c).count();
                let top = cell.iter().map(|&f| count(codes[f])).max().unwrap();
                let mut tied: Vec<usize> = cell
                    .iter()
                    .copied()
                    .filter(|&f| count(codes[f]) == top)
                    .collect();
                tied.sort_by(|&a, &b| {
                    let d = |f: usize| (f as f64 + 0.5 - centre).abs();
                    d(a).total_cmp(&d(b)).then(a.cmp(&b))
                });
                codes[tied[0]]
            })
            .collect()
    }

    #[test]
    fn grid_targets_take_the_commonest_code_of_each_cell() {
        // 12.7 tokens/s: a cell is 3.94 frames; 150 frames (3 s) hold 38 cells.
        let codes: Vec<u16> = (0..150u32).map(|f| ((f * 7 + f / 5) % 4) as u16).collect();
        let t = grid_targets(&codes, 12.7);
        assert_eq!(t.len(), 38);
        assert_eq!(t.tokens, grid_oracle(&codes, 12.7));
        for (k, &ms) in t.times_ms.iter().enumerate() {
            assert_eq!(ms, (k as f64 * 1000.0 / 12.7).round() as u32);
        }
        // Runs of one code give that code in every cell they cover, repeats included.
        let runs: Vec<u16> = (0..100).map(|f| if f < 60 { 3 } else { 9 }).collect();
        let t = grid_targets(&runs, 12.7);
        assert_eq!(t.len(), 25);
        assert!(t.tokens[..15].iter().all(|&c| c == 3));
        assert!(t.tokens[16..].iter().all(|&c| c == 9));
        // Pseudo-random codes at several rates against the oracle; nothing for no frames.
        let mut state = 12345u32;
        let noisy: Vec<u16> = (0..301)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                ((state >> 16) % 5) as u16
            })
            .collect();
        for rate in [5.0, 12.7, 25.0, 50.0] {
            assert_eq!(
                grid_targets(&noisy, rate).tokens,
                grid_oracle(&noisy, rate),
                "{rate}"
            );
        }
        assert!(grid_targets(&[], 12.7).is_empty());
    }
}
