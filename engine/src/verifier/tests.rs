//! Tests of the verifier against the `oracle` dynamic program: hand-picked edge cases first,
//! then property tests over random and noisy-copy inputs in both modes, with and without a
//! bound, across the one-word / multi-word boundary and every SIMD backend this CPU has.

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::batch::{self, Backend};
use super::*;

/// D[m][j] for every column j, with a free start in the text (`free_start`, infix) or anchored
/// at 0 (global/prefix). The oracle for where matches end.
fn last_row(query: &[Symbol], text: &[Symbol], free_start: bool) -> Vec<u32> {
    let mut row: Vec<u32> = (0..=text.len() as u32)
        .map(|j| if free_start { 0 } else { j })
        .collect();
    for (i, &cq) in query.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i as u32 + 1;
        for (j, &ct) in text.iter().enumerate() {
            let best = (diag + u32::from(cq != ct))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = best;
        }
    }
    row
}

fn bounded(d: u32, k: Option<u32>) -> Option<u32> {
    Some(d).filter(|&d| k.is_none_or(|k| d <= k))
}

/// Checks `locate` in infix mode against the oracle: distance, leftmost best end, and the
/// shortest start for that end.
fn check_infix_locate(q: &[Symbol], t: &[Symbol], k: Option<u32>) {
    let v = Verifier::new(q, Mode::Infix);
    let want = oracle::infix(q, t);
    let got = v.locate(t, k);
    if bounded(want, k).is_none() {
        assert_eq!(got, None);
        return;
    }
    let h = got.expect("match within bound");
    assert_eq!(h.distance, want);
    let ends = last_row(q, t, true);
    let leftmost = ends
        .iter()
        .position(|&d| d == want)
        .expect("min is attained");
    assert_eq!(h.end, leftmost, "leftmost best end");
    assert!(h.start <= h.end);
    assert_eq!(oracle::global(q, &t[h.start..h.end]), want);
    let rq: Vec<Symbol> = q.iter().rev().copied().collect();
    let rt: Vec<Symbol> = t[..h.end].iter().rev().copied().collect();
    let shortest = last_row(&rq, &rt, false)
        .iter()
        .position(|&d| d == want)
        .expect("reached");
    assert_eq!(h.end - h.start, shortest, "shortest substring");
}

fn check_matches(q: &[Symbol], t: &[Symbol], k: u32) {
    let v = Verifier::new(q, Mode::Infix);
    let found = v.matches(t, k);
    for h in &found {
        assert!(h.distance <= k);
        assert!(h.start <= h.end && h.end <= t.len());
        assert_eq!(oracle::global(q, &t[h.start..h.end]), h.distance, "{h:?}");
    }
    for w in found.windows(2) {
        assert!(w[0].start <= w[1].start, "sorted by start");
        let (a, b) = (w[0], w[1]);
        assert!(
            a.start.max(b.start) >= a.end.min(b.end),
            "overlap {a:?} {b:?}"
        );
    }
    let best = oracle::infix(q, t);
    if best <= k {
        assert!(
            found.iter().any(|h| h.distance == best),
            "best {best} missing"
        );
    } else {
        assert!(found.is_empty());
    }
}

#[test]
fn empty_inputs() {
    let q: Vec<Symbol> = vec![3, 1, 4, 1, 5];
    let g = Verifier::new(&[], Mode::Global);
    assert_eq!(g.distance(&q, None), Some(5));
    assert_eq!(g.distance(&q, Some(4)), None);
    assert_eq!(g.distance(&[], Some(0)), Some(0));
    let i = Verifier::new(&[], Mode::Infix);
    assert_eq!(i.distance(&q, Some(0)), Some(0));
    let empty = Match {
        distance: 0,
        start: 0,
        end: 0,
    };
    assert_eq!(i.locate(&q, None), Some(empty));
    assert_eq!(i.matches(&q, 0), vec![empty]);
    for mode in [Mode::Global, Mode::Infix] {
        let v = Verifier::new(&q, mode);
        assert_eq!(v.distance(&[], None), Some(5));
        assert_eq!(v.distance(&[], Some(4)), None);
        assert_eq!(v.locate(&[], Some(5)).map(|h| h.distance), Some(5));
        assert_eq!(
            v.distances(&[&[], &q, &[]], None),
            vec![Some(5), Some(0), Some(5)]
        );
    }
}

#[test]
fn extreme_symbols() {
    let q: Vec<Symbol> = vec![u16::MAX, 0, u16::MAX - 1, u16::MAX];
    let t: Vec<Symbol> = vec![7, u16::MAX, 0, u16::MAX, 9];
    for mode in [Mode::Global, Mode::Infix] {
        let v = Verifier::new(&q, mode);
        let want = match mode {
            Mode::Global => oracle::global(&q, &t),
            Mode::Infix => oracle::infix(&q, &t),
        };
        assert_eq!(v.distance(&t, None), Some(want));
    }
}

#[test]
fn word_boundaries() {
    let mut rng = StdRng::seed_from_u64(7);
    for m in [1, 63, 64, 65, 127, 128, 129, 200] {
        let q: Vec<Symbol> = (0..m).map(|_| rng.gen_range(0..8)).collect();
        let t = noisy_copy(&mut rng, &q, 0.2, 8);
        for mode in [Mode::Global, Mode::Infix] {
            let v = Verifier::new(&q, mode);
            let want = match mode {
                Mode::Global => oracle::global(&q, &t),
                Mode::Infix => oracle::infix(&q, &t),
            };
            for k in [
                None,
                Some(0),
                Some(want.saturating_sub(1)),
                Some(want),
                Some(want + 5),
            ] {
                assert_eq!(
                    v.distance(&t, k),
                    bounded(want, k),
                    "m={m} {mode:?} k={k:?}"
                );
            }
        }
        check_infix_locate(&q, &t, None);
    }
}

#[test]
fn matches_finds_each_copy() {
    let q: Vec<Symbol> = (100..140).collect();
    let mut t: Vec<Symbol> = vec![1; 50];
    t.extend(&q);
    t.extend(vec![2; 70]);
    let mut near = q.clone();
    near[10] = 3;
    near.remove(20);
    t.extend(&near);
    t.extend(vec![4; 30]);
    let found = Verifier::new(&q, Mode::Infix).matches(&t, 4);
    let spans: Vec<(u32, usize, usize)> =
        found.iter().map(|h| (h.distance, h.start, h.end)).collect();
    assert_eq!(spans, vec![(0, 50, 90), (2, 160, 199)]);
}

#[test]
fn batch_uses_rayon_chunks() {
    let mut rng = StdRng::seed_from_u64(11);
    let q: Vec<Symbol> = (0..38).map(|_| rng.gen_range(0..512)).collect();
    let texts: Vec<Vec<Symbol>> = (0..1000)
        .map(|i| {
            if i % 2 == 0 {
                noisy_copy(&mut rng, &q, 0.2, 512)
            } else {
                (0..rng.gen_range(30..46))
                    .map(|_| rng.gen_range(0..512))
                    .collect()
            }
        })
        .collect();
    let refs: Vec<&[Symbol]> = texts.iter().map(|t| t.as_slice()).collect();
    for mode in [Mode::Global, Mode::Infix] {
        let v = Verifier::new(&q, mode);
        for k in [None, Some(11)] {
            let want: Vec<_> = refs.iter().map(|t| v.distance(t, k)).collect();
            assert_eq!(v.distances(&refs, k), want);
        }
    }
}

/// Copies `src` with each position substituted, deleted or followed by an insertion at
/// `rate` / 3 each.
fn noisy_copy(rng: &mut StdRng, src: &[Symbol], rate: f64, alphabet: u16) -> Vec<Symbol> {
    let mut out = Vec::with_capacity(src.len() + 8);
    for &c in src {
        let r: f64 = rng.gen();
        if r < rate / 3.0 {
            out.push(rng.gen_range(0..alphabet));
        } else if r < 2.0 * rate / 3.0 {
            // deleted
        } else {
            out.push(c);
            if r < rate {
                out.push(rng.gen_range(0..alphabet));
            }
        }
    }
    out
}

/// An alphabet `base..base + size`: small to large, sometimes at the top of the `u16` range.
fn alphabet() -> impl Strategy<Value = (Symbol, Symbol)> {
    (
        prop_oneof![Just(2u16), Just(4), Just(16), Just(512), Just(4096)],
        any::<bool>(),
    )
        .prop_map(|(size, high)| (if high { u16::MAX - (size - 1) } else { 0 }, size))
}

/// Query lengths 0..300, weighted towards the one-word kernel.
fn query_len() -> impl Strategy<Value = usize> {
    prop_oneof![0usize..=70, 0usize..300]
}

/// A query and a text over one alphabet; the text is random, a noisy copy of the query, or a
/// noisy copy between random flanks (so infix mode has something to find).
fn pair() -> impl Strategy<Value = (Vec<Symbol>, Vec<Symbol>)> {
    (alphabet(), query_len(), 0u8..3, 0.0f64..0.5, any::<u64>()).prop_map(
        |((base, size), m, shape, rate, seed)| {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut word = |len: usize| -> Vec<Symbol> {
                (0..len).map(|_| base + rng.gen_range(0..size)).collect()
            };
            let q = word(m);
            let t = match shape {
                0 => word(m.min(299) + (seed as usize % 20)),
                _ => {
                    let mut rng = StdRng::seed_from_u64(seed ^ 1);
                    let copy: Vec<Symbol> = noisy_copy(&mut rng, &q, rate, size)
                        .into_iter()
                        .map(|c| if c < base { base + c } else { c })
                        .collect();
                    if shape == 1 {
                        copy
                    } else {
                        let (a, b) = (rng.gen_range(0..60), rng.gen_range(0..60));
                        let mut t: Vec<Symbol> =
                            (0..a).map(|_| base + rng.gen_range(0..size)).collect();
                        t.extend(copy);
                        t.extend((0..b).map(|_| base + rng.gen_range(0..size)));
                        t.truncate(300);
                        t
                    }
                }
            };
            (q, t)
        },
    )
}

/// A bound relative to the true distance `d`: none, just below, at, just above, or arbitrary.
fn pick_k(sel: u8, d: u32, any: u32) -> Option<u32> {
    match sel {
        0 => None,
        1 => Some(d.saturating_sub(1)),
        2 => Some(d),
        3 => Some(d + 1),
        _ => Some(any),
    }
}

proptest! {
    #[test]
    fn distance_equals_oracle((q, t) in pair(), sel in 0u8..5, any in 0u32..120) {
        let g = oracle::global(&q, &t);
        let k = pick_k(sel, g, any);
        prop_assert_eq!(Verifier::new(&q, Mode::Global).distance(&t, k), bounded(g, k));
        let i = oracle::infix(&q, &t);
        let k = pick_k(sel, i, any);
        prop_assert_eq!(Verifier::new(&q, Mode::Infix).distance(&t, k), bounded(i, k));
    }

    #[test]
    fn locate_is_consistent((q, t) in pair(), sel in 0u8..5, any in 0u32..120) {
        let g = oracle::global(&q, &t);
        let k = pick_k(sel, g, any);
        let want = bounded(g, k).map(|d| Match { distance: d, start: 0, end: t.len() });
        prop_assert_eq!(Verifier::new(&q, Mode::Global).locate(&t, k), want);
        let i = oracle::infix(&q, &t);
        check_infix_locate(&q, &t, pick_k(sel, i, any));
    }

    #[test]
    fn matches_are_verified((q, t) in pair(), (_, t2) in pair(), sel in 0u8..5, any in 0u32..60) {
        // Two texts back to back: often two occurrences.
        let mut long = t.clone();
        long.extend(&t2);
        long.extend(&t);
        let i = oracle::infix(&q, &long);
        let k = pick_k(sel, i, any).unwrap_or(i);
        check_matches(&q, &long, k);
    }

    #[test]
    fn batch_equals_scalar(
        (q, _) in pair(),
        // Up to 60 texts: more than the 16 lanes of the AVX-512 kernel, so lanes are refilled.
        texts in prop::collection::vec(pair(), 0..60),
        global in any::<bool>(),
        k in prop::option::of(0u32..120),
    ) {
        let mode = if global { Mode::Global } else { Mode::Infix };
        let v = Verifier::new(&q, mode);
        // Mix in noisy copies of this query so that bounds are sometimes met.
        let texts: Vec<Vec<Symbol>> = texts
            .into_iter()
            .enumerate()
            .map(|(n, (q2, t))| if n % 3 == 0 { q2 } else if n % 3 == 1 { q.iter().copied().chain(t).take(300).collect() } else { t })
            .collect();
        let refs: Vec<&[Symbol]> = texts.iter().map(|t| t.as_slice()).collect();
        let want: Vec<_> = refs.iter().map(|t| v.distance(t, k)).collect();
        for backend in backends() {
            prop_assert_eq!(batch::distances_with(&v, &refs, k.map(widen), backend), want.clone(), "{:?}", backend);
        }
    }
}

/// Every backend this CPU can run.
fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Scalar];
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("bmi2") {
            all.push(Backend::Avx2);
        }
        if Backend::detect() == Backend::Avx512 {
            all.push(Backend::Avx512);
        }
    }
    all
}

/// Multi-word global queries: the banded scalar kernel (`kernel::blocks_global`) and the lane
/// kernel (`batch::stream_blocks`) against the oracle, beyond 8 blocks too (the band's slice
/// loop), with bounds that cut the band at every width.
#[test]
fn multi_word_global_band() {
    let mut rng = StdRng::seed_from_u64(23);
    for m in [65, 100, 128, 129, 200, 256, 257, 300, 513, 600, 1100] {
        let q: Vec<Symbol> = (0..m).map(|_| rng.gen_range(0..16)).collect();
        let v = Verifier::new(&q, Mode::Global);
        let mut texts = vec![
            q.clone(),
            noisy_copy(&mut rng, &q, 0.1, 16),
            noisy_copy(&mut rng, &q, 0.4, 16),
        ];
        texts.push((0..m + 7).map(|_| rng.gen_range(0..16)).collect());
        texts.push(q[..m / 2].to_vec());
        let refs: Vec<&[Symbol]> = texts.iter().map(|t| t.as_slice()).collect();
        let wants: Vec<u32> = refs.iter().map(|t| oracle::global(&q, t)).collect();
        for (t, &want) in refs.iter().zip(&wants) {
            for k in [
                None,
                Some(0),
                Some(5),
                Some(want.saturating_sub(1)),
                Some(want),
                Some(want + 3),
                Some(10_000),
            ] {
                assert_eq!(
                    v.distance(t, k),
                    bounded(want, k),
                    "m={m} n={} k={k:?}",
                    t.len()
                );
            }
        }
        for k in [None, Some(5), Some(m as u32 / 4), Some(10_000)] {
            let want: Vec<_> = wants.iter().map(|&d| bounded(d, k)).collect();
            for backend in backends() {
                let got = batch::distances_with(&v, &refs, k.map(widen), backend);
                assert_eq!(got, want, "m={m} k={k:?} {backend:?}");
            }
        }
    }
}

proptest! {
    #[test]
    fn multi_word_batch_equals_oracle(
        m in 65usize..300,
        alphabet in prop_oneof![Just(4u16), Just(64), Just(512)],
        // More candidates than two sets of 8 lanes, so lanes are refilled.
        count in 17usize..48,
        k in prop_oneof![Just(None), (0u32..12).prop_map(Some), (40u32..200).prop_map(Some)],
        seed in any::<u64>(),
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let q: Vec<Symbol> = (0..m).map(|_| rng.gen_range(0..alphabet)).collect();
        let texts: Vec<Vec<Symbol>> = (0..count)
            .map(|i| match i % 4 {
                0 => noisy_copy(&mut rng, &q, 0.05, alphabet),
                1 => noisy_copy(&mut rng, &q, 0.3, alphabet),
                2 => (0..rng.gen_range(0..320)).map(|_| rng.gen_range(0..alphabet)).collect(),
                _ => q[..rng.gen_range(0..m)].to_vec(),
            })
            .collect();
        let refs: Vec<&[Symbol]> = texts.iter().map(|t| t.as_slice()).collect();
        let v = Verifier::new(&q, Mode::Global);
        let want: Vec<_> = refs.iter().map(|t| bounded(oracle::global(&q, t), k)).collect();
        let scalar: Vec<_> = refs.iter().map(|t| v.distance(t, k)).collect();
        prop_assert_eq!(&scalar, &want);
        for backend in backends() {
            let got = batch::distances_with(&v, &refs, k.map(widen), backend);
            prop_assert_eq!(got, want.clone(), "{:?}", backend);
        }
    }
}
