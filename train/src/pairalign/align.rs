//! Targets across voices (issue 22, part 4): the views of a voice clip
//! ([`pairalign_datasets::cache::VOICES_PREFIX`]) say the same words at their own pace, so a
//! view's frame codes cannot be laid on the other view's grid as they are. They are carried
//! over by dynamic time warping: both views become cepstra with their means removed (what a
//! voice's fixed spectral tilt and level add cancels), DTW finds the cheapest monotone
//! alignment of their 20 ms code frames, and each frame of the view that is decoded takes the
//! code of the other view's frame it is aligned with. Trained under that condition, the model
//! is asked to say, in one voice, what the VQ tokenizer heard in another: the codes a voice
//! alone decides cannot be predicted and lose, the ones the words decide win.

/// Cepstral coefficients per frame the alignment compares (1..=N_CEPS; c0, the frame's level,
/// is left out).
pub const N_CEPS: usize = 13;

/// One code frame's alignment features.
pub type Cepstrum = [f32; N_CEPS];

/// The alignment features of a view: for each of its `code_frames` 20 ms code frames, the
/// DCT-II of the mean of its two 10 ms log-mel frames (`mel`: frames x `n_mels`, row-major),
/// coefficients 1..=[`N_CEPS`], each minus its mean over the view.
pub fn cepstra(mel: &[f32], n_mels: usize, code_frames: usize) -> Vec<Cepstrum> {
    let frames = mel.len().checked_div(n_mels).unwrap_or(0);
    let basis: Vec<Vec<f32>> = (1..=N_CEPS)
        .map(|k| {
            (0..n_mels)
                .map(|m| {
                    (std::f64::consts::PI * k as f64 * (m as f64 + 0.5) / n_mels as f64).cos()
                        as f32
                })
                .collect()
        })
        .collect();
    let mut out: Vec<Cepstrum> = (0..code_frames)
        .map(|j| {
            let rows: Vec<usize> = [2 * j, 2 * j + 1]
                .into_iter()
                .filter(|&f| f < frames)
                .collect();
            let mut c = [0.0f32; N_CEPS];
            if rows.is_empty() {
                return c;
            }
            for (k, b) in basis.iter().enumerate() {
                let mut sum = 0.0f32;
                for &f in &rows {
                    let frame = &mel[f * n_mels..(f + 1) * n_mels];
                    sum += frame.iter().zip(b).map(|(x, w)| x * w).sum::<f32>();
                }
                c[k] = sum / rows.len() as f32;
            }
            c
        })
        .collect();
    if !out.is_empty() {
        for k in 0..N_CEPS {
            let mean = out.iter().map(|c| c[k]).sum::<f32>() / out.len() as f32;
            for c in &mut out {
                c[k] -= mean;
            }
        }
    }
    out
}

/// The DTW alignment of `a` and `b` of least total Euclidean distance: pairs `(i, j)` from
/// `(0, 0)` to `(a.len() - 1, b.len() - 1)`, each step advancing `i`, `j` or both by one (every
/// frame of both is matched at least once). Ties prefer the diagonal, then advancing `i`.
/// Empty when either is empty.
pub fn dtw_path(a: &[Cepstrum], b: &[Cepstrum]) -> Vec<(usize, usize)> {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return Vec::new();
    }
    let dist = |i: usize, j: usize| -> f32 {
        a[i].iter()
            .zip(&b[j])
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt()
    };
    // Accumulated costs, row-major n x m.
    let mut acc = vec![f32::INFINITY; n * m];
    for i in 0..n {
        for j in 0..m {
            let best = if i == 0 && j == 0 {
                0.0
            } else {
                let diag = if i > 0 && j > 0 {
                    acc[(i - 1) * m + j - 1]
                } else {
                    f32::INFINITY
                };
                let up = if i > 0 {
                    acc[(i - 1) * m + j]
                } else {
                    f32::INFINITY
                };
                let left = if j > 0 {
                    acc[i * m + j - 1]
                } else {
                    f32::INFINITY
                };
                diag.min(up).min(left)
            };
            acc[i * m + j] = best + dist(i, j);
        }
    }
    let mut path = vec![(n - 1, m - 1)];
    let (mut i, mut j) = (n - 1, m - 1);
    while i > 0 || j > 0 {
        let cost = |i: usize, j: usize| acc[i * m + j];
        (i, j) = if i == 0 {
            (0, j - 1)
        } else if j == 0 {
            (i - 1, 0)
        } else {
            let (d, u, l) = (cost(i - 1, j - 1), cost(i - 1, j), cost(i, j - 1));
            if d <= u && d <= l {
                (i - 1, j - 1)
            } else if u <= l {
                (i - 1, j)
            } else {
                (i, j - 1)
            }
        };
        path.push((i, j));
    }
    path.reverse();
    path
}

/// The codes of view `a` (`codes_a`, one per frame of `a`) carried onto the `b_len` frames of
/// view `b` along `path` (from [`dtw_path`]): frame `j` of `b` takes the code of the middle one
/// of the frames of `a` the path matches with it. Empty when the path is.
pub fn warp_codes(codes_a: &[u16], path: &[(usize, usize)], b_len: usize) -> Vec<u16> {
    if path.is_empty() || codes_a.is_empty() {
        return Vec::new();
    }
    let mut first = vec![usize::MAX; b_len];
    let mut last = vec![0usize; b_len];
    for &(i, j) in path {
        if j < b_len {
            first[j] = first[j].min(i);
            last[j] = last[j].max(i);
        }
    }
    let top = codes_a.len() - 1;
    (0..b_len)
        .map(|j| {
            let i = if first[j] == usize::MAX {
                // Not on the path (b_len larger than the path's b): the last frame of a.
                top
            } else {
                (first[j] + last[j]) / 2
            };
            codes_a[i.min(top)]
        })
        .collect()
}

/// The codes of two views carried onto each other along one alignment of their log-mels
/// (`mel_a`, `mel_b`: frames x `n_mels`; `codes_a`, `codes_b`: one per 20 ms code frame):
/// `(a's codes on b's frames, b's codes on a's frames)`, [`warp_codes`] both ways over the one
/// [`dtw_path`] (its pairs swapped for the way back).
pub fn carry_across(
    codes_a: &[u16],
    codes_b: &[u16],
    mel_a: &[f32],
    mel_b: &[f32],
    n_mels: usize,
) -> (Vec<u16>, Vec<u16>) {
    let path = dtw_path(
        &cepstra(mel_a, n_mels, codes_a.len()),
        &cepstra(mel_b, n_mels, codes_b.len()),
    );
    let back: Vec<(usize, usize)> = path.iter().map(|&(i, j)| (j, i)).collect();
    (
        warp_codes(codes_a, &path, codes_b.len()),
        warp_codes(codes_b, &back, codes_a.len()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The cost of the cheapest monotone path by plain recursion over all paths (small sizes).
    fn brute_cost(a: &[Cepstrum], b: &[Cepstrum], i: usize, j: usize) -> f32 {
        let d = a[i]
            .iter()
            .zip(&b[j])
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt();
        if i == 0 && j == 0 {
            return d;
        }
        let mut best = f32::INFINITY;
        if i > 0 {
            best = best.min(brute_cost(a, b, i - 1, j));
        }
        if j > 0 {
            best = best.min(brute_cost(a, b, i, j - 1));
        }
        if i > 0 && j > 0 {
            best = best.min(brute_cost(a, b, i - 1, j - 1));
        }
        best + d
    }

    fn random_frames(n: usize, rng: &mut ChaCha8Rng) -> Vec<Cepstrum> {
        (0..n)
            .map(|_| {
                let mut c = [0.0; N_CEPS];
                for x in &mut c {
                    *x = rng.gen_range(-1.0..1.0);
                }
                c
            })
            .collect()
    }

    #[test]
    fn the_path_is_monotone_complete_and_as_cheap_as_any() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..40 {
            let (n, m) = (rng.gen_range(1..8), rng.gen_range(1..8));
            let (a, b) = (random_frames(n, &mut rng), random_frames(m, &mut rng));
            let path = dtw_path(&a, &b);
            assert_eq!(path.first(), Some(&(0, 0)));
            assert_eq!(path.last(), Some(&(n - 1, m - 1)));
            for w in path.windows(2) {
                let (di, dj) = (w[1].0 - w[0].0, w[1].1 - w[0].1);
                assert!((di, dj) == (1, 0) || (di, dj) == (0, 1) || (di, dj) == (1, 1));
            }
            let cost: f32 = path
                .iter()
                .map(|&(i, j)| {
                    a[i].iter()
                        .zip(&b[j])
                        .map(|(x, y)| (x - y) * (x - y))
                        .sum::<f32>()
                        .sqrt()
                })
                .sum();
            let best = brute_cost(&a, &b, n - 1, m - 1);
            assert!((cost - best).abs() <= 1e-4 * best.max(1.0), "{cost} {best}");
        }
        assert!(dtw_path(&[], &random_frames(3, &mut rng)).is_empty());
    }

    #[test]
    fn a_stretched_view_gets_its_own_codes_back() {
        // View b says a's frames at its own pace: each frame of a held 1 to 3 frames. The
        // codes carried from a onto b are a's code of the frame b holds.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let a = random_frames(40, &mut rng);
        let codes_a: Vec<u16> = (0..40).collect();
        let mut b = Vec::new();
        let mut truth = Vec::new();
        for (i, f) in a.iter().enumerate() {
            for _ in 0..rng.gen_range(1..=3) {
                b.push(*f);
                truth.push(codes_a[i]);
            }
        }
        let warped = warp_codes(&codes_a, &dtw_path(&a, &b), b.len());
        assert_eq!(warped, truth);
    }

    #[test]
    fn a_slower_louder_voice_takes_the_codes_of_what_it_says() {
        // View b: every 10 ms frame of a said twice as long, 9 dB louder, with another tilt.
        // A code frame (20 ms) of b is one 10 ms frame of a, inside a's code frame j / 2.
        let n_mels = 16;
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        // Distinct spectra ("phones") that hold for 2 to 5 frames; `phone[f]` says which one
        // frame f of a holds.
        let mut mel_a = Vec::new();
        let mut phone = Vec::new();
        for run in 0u16.. {
            if phone.len() >= 120 {
                break;
            }
            let frame: Vec<f32> = (0..n_mels).map(|_| rng.gen_range(-6.0..6.0)).collect();
            for _ in 0..rng.gen_range(2..=5) {
                mel_a.extend(&frame);
                phone.push(run);
            }
        }
        mel_a.truncate(120 * n_mels);
        phone.truncate(120);
        let mut mel_b = Vec::new();
        for frame in mel_a.chunks(n_mels) {
            for _ in 0..2 {
                mel_b.extend(
                    frame
                        .iter()
                        .enumerate()
                        .map(|(m, x)| x + 2.0 - 0.1 * m as f32),
                );
            }
        }
        // a's code frame i (its 10 ms frames 2i and 2i + 1) has the code of the phone at 2i.
        let codes_a: Vec<u16> = (0..60).map(|i| phone[2 * i]).collect();
        // b's code frame j is a's 10 ms frame j.
        let codes_b: Vec<u16> = phone.clone();
        let (onto, back) = carry_across(&codes_a, &codes_b, &mel_a, &mel_b, n_mels);
        assert_eq!((onto.len(), back.len()), (120, 60));
        // The way back: a's code frame i (its frames 2i, 2i + 1) takes b's code of one of
        // them, the phone at 2i or at 2i + 1.
        assert!(back
            .iter()
            .enumerate()
            .all(|(i, &c)| c == phone[2 * i] || c == phone[2 * i + 1]));
        // b's code frame j is a's 10 ms frame j: the code of what is said there. Misses are
        // frames at a phone's edge, where a's code frame straddles two phones.
        let right = onto.iter().zip(&phone).filter(|(a, b)| a == b).count();
        assert!(right >= 100, "{right} of 120: {onto:?} {phone:?}");
    }

    #[test]
    fn cepstra_ignore_level_and_a_fixed_tilt() {
        let n_mels = 8;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mel: Vec<f32> = (0..20 * n_mels).map(|_| rng.gen_range(-5.0..5.0)).collect();
        // The same frames 6 dB (log) louder with a fixed tilt across bins.
        let tilted: Vec<f32> = mel
            .iter()
            .enumerate()
            .map(|(i, x)| x + 1.4 + 0.3 * (i % n_mels) as f32)
            .collect();
        let (a, b) = (cepstra(&mel, n_mels, 10), cepstra(&tilted, n_mels, 10));
        assert_eq!(a.len(), 10);
        for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
            assert!((x - y).abs() < 1e-3, "{x} {y}");
        }
        // Means removed: every coefficient sums to zero over the view.
        for k in 0..N_CEPS {
            assert!(a.iter().map(|c| c[k]).sum::<f32>().abs() < 1e-3);
        }
        // A code frame past the mels (an odd frame count) has features of what is there.
        assert_eq!(cepstra(&mel[..3 * n_mels], n_mels, 2).len(), 2);
    }
}
