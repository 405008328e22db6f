//! Paired-view batches from a feature cache for contrastive training (shared/DESIGN.md section
//! 1: each item is two views of one clip; the other clips of the batch are the unrelated
//! examples whose strings compete).
//!
//! Everything is deterministic from `(seed, epoch)`: the clip order, the two views of each item
//! and the crop position. A small SplitMix64 generator is used instead of `rand`'s `StdRng`
//! because its output is fixed by this file, not by a dependency's version.

use rayon::prelude::*;

use super::build::is_voice_clip;
use super::reader::FeatureCache;
use crate::{Error, Result};

/// Items per rayon task when filling a batch: large enough that a task is worth scheduling.
const ITEMS_PER_TASK: usize = 8;

/// One batch of paired views.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// The clip of each item (indices into the cache).
    pub clip_indices: Vec<usize>,
    /// The view index used for `a` and for `b`, per item; always different.
    pub views_a: Vec<usize>,
    /// See `views_a`.
    pub views_b: Vec<usize>,
    /// View a of every item: `batch x frames x n_mels`, row-major, zero-padded past
    /// `lengths_a[i]` frames.
    pub a: Vec<f32>,
    /// View b of every item, laid out like `a`.
    pub b: Vec<f32>,
    /// Frames per item in `a` and `b`.
    pub frames: usize,
    /// Mel bins per frame.
    pub n_mels: usize,
    /// Real (unpadded) frames of each item's view a, at most `frames`.
    pub lengths_a: Vec<usize>,
    /// Real frames of each item's view b.
    pub lengths_b: Vec<usize>,
    /// Whether each item's two views share one timeline (views of one clip); false for a
    /// voice clip ([`is_voice_clip`]), whose views say the same words at their own pace.
    pub same_timeline: Vec<bool>,
}

impl Batch {
    /// Items in the batch.
    pub fn len(&self) -> usize {
        self.clip_indices.len()
    }

    /// Whether the batch has no item (never the case for a yielded batch).
    pub fn is_empty(&self) -> bool {
        self.clip_indices.is_empty()
    }
}

/// Serves shuffled batches of paired views from a [`FeatureCache`]; only reads the mapping.
///
/// Per epoch, every clip appears in exactly one item; the last batch holds the remainder and may
/// be smaller than `batch_size`. With `frames: Some(n)` every view is cropped to `n` frames (a
/// window at the same relative position in both views, so that speed-changed views stay roughly
/// aligned in content) or zero-padded to `n`; with `None` the batch is as long as its longest
/// view and shorter ones are zero-padded. [`with_content_crop`](Self::with_content_crop) crops
/// the two views to one span of the clip instead.
#[derive(Debug)]
pub struct BatchLoader<'c> {
    cache: &'c FeatureCache,
    batch_size: usize,
    seed: u64,
    frames: Option<usize>,
    content_crop: bool,
}

/// One item before its features are copied.
#[derive(Clone, Copy, Debug)]
struct Item {
    clip: usize,
    view_a: usize,
    view_b: usize,
    /// Relative crop position in [0, 1).
    crop: f64,
}

impl<'c> BatchLoader<'c> {
    /// A loader over `cache`. Errors with `InvalidInput` if `batch_size` or `frames` is 0, or the
    /// cache holds fewer than 2 views per clip (an item needs two different views).
    pub fn new(
        cache: &'c FeatureCache,
        batch_size: usize,
        seed: u64,
        frames: Option<usize>,
    ) -> Result<BatchLoader<'c>> {
        if batch_size == 0 {
            return Err(Error::InvalidInput("batch size must be at least 1".into()));
        }
        if frames == Some(0) {
            return Err(Error::InvalidInput("frames must be at least 1".into()));
        }
        if cache.views_per_clip() < 2 {
            return Err(Error::InvalidInput(format!(
                "{}: paired batches need at least 2 views per clip, the cache has {}",
                cache.path().display(),
                cache.views_per_clip()
            )));
        }
        Ok(BatchLoader {
            cache,
            batch_size,
            seed,
            frames,
            content_crop: false,
        })
    }

    /// With `on`, a cropped item's two views hold the same span of the clip: the longer view is
    /// cropped to `frames` and the shorter one to the same share of its length at the same
    /// relative start, so a view played 10% faster keeps 10% fewer frames. Without it (the
    /// default, as pairalign-v1 and -v2 were trained) both views keep `frames` frames from the
    /// same relative position, and where their speeds differ the windows' ends miss each other
    /// by up to a tenth of the window (300 ms at the 3 s crop), although the targets of one view
    /// are trained as the other's. A clip whose views both fit is kept whole either way.
    pub fn with_content_crop(mut self, on: bool) -> Self {
        self.content_crop = on;
        self
    }

    /// Batches per epoch (the last one may be partial).
    pub fn batches_per_epoch(&self) -> usize {
        self.cache.len().div_ceil(self.batch_size)
    }

    /// The batches of epoch `epoch`, in order. The same `(seed, epoch)` always gives the same
    /// batches; different epochs shuffle differently.
    pub fn epoch(&self, epoch: u64) -> impl Iterator<Item = Batch> + '_ {
        let mut rng = SplitMix64::new(mix(self.seed, epoch));
        let mut order: Vec<usize> = (0..self.cache.len()).collect();
        // Fisher-Yates.
        for i in (1..order.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        let views = self.cache.views_per_clip() as u64;
        let items: Vec<Item> = order
            .into_iter()
            .map(|clip| {
                let view_a = rng.below(views);
                // A different view, uniformly among the other V - 1.
                let view_b = (view_a + 1 + rng.below(views - 1)) % views;
                Item {
                    clip,
                    view_a: view_a as usize,
                    view_b: view_b as usize,
                    crop: rng.unit(),
                }
            })
            .collect();
        let batch_size = self.batch_size;
        (0..items.len().div_ceil(batch_size)).map(move |k| {
            let end = ((k + 1) * batch_size).min(items.len());
            self.assemble(&items[k * batch_size..end])
        })
    }

    fn assemble(&self, items: &[Item]) -> Batch {
        let cache = self.cache;
        let n_mels = cache.n_mels();
        let frames = self.frames.unwrap_or_else(|| {
            items
                .iter()
                .map(|it| {
                    cache
                        .frames(it.clip, it.view_a)
                        .max(cache.frames(it.clip, it.view_b))
                })
                .max()
                .unwrap_or(0)
        });
        let item_len = frames * n_mels;
        let mut a = vec![0.0f32; items.len() * item_len];
        let mut b = vec![0.0f32; items.len() * item_len];
        let mut lengths_a = vec![0usize; items.len()];
        let mut lengths_b = vec![0usize; items.len()];
        let chunk = ITEMS_PER_TASK * item_len.max(1);
        a.par_chunks_mut(chunk)
            .zip(b.par_chunks_mut(chunk))
            .zip(lengths_a.par_chunks_mut(ITEMS_PER_TASK))
            .zip(lengths_b.par_chunks_mut(ITEMS_PER_TASK))
            .zip(items.par_chunks(ITEMS_PER_TASK))
            .for_each(|((((a, b), la), lb), items)| {
                for (k, it) in items.iter().enumerate() {
                    let dst = k * item_len..(k + 1) * item_len;
                    let (wa, wb) = crop_windows(
                        cache.frames(it.clip, it.view_a),
                        cache.frames(it.clip, it.view_b),
                        frames,
                        it.crop,
                        self.content_crop,
                    );
                    la[k] = copy_view(cache, it.clip, it.view_a, wa, &mut a[dst.clone()]);
                    lb[k] = copy_view(cache, it.clip, it.view_b, wb, &mut b[dst]);
                }
            });
        Batch {
            clip_indices: items.iter().map(|it| it.clip).collect(),
            views_a: items.iter().map(|it| it.view_a).collect(),
            views_b: items.iter().map(|it| it.view_b).collect(),
            a,
            b,
            frames,
            n_mels,
            lengths_a,
            lengths_b,
            same_timeline: items
                .iter()
                .map(|it| !is_voice_clip(cache.clip_id(it.clip)))
                .collect(),
        }
    }
}

/// The frames kept of two views of `len_a` and `len_b` frames for a batch of `frames` frames
/// and relative crop position `crop` in [0, 1): `(start, len)` of each. Without `content`, each
/// view independently keeps at most `frames` frames at the relative position; with it, the
/// views keep one span of the clip ([`BatchLoader::with_content_crop`]).
fn crop_windows(
    len_a: usize,
    len_b: usize,
    frames: usize,
    crop: f64,
    content: bool,
) -> ((usize, usize), (usize, usize)) {
    let own = |total: usize| {
        let len = total.min(frames);
        (((total - len) as f64 * crop) as usize, len)
    };
    if !content || len_a.max(len_b) <= frames || len_a.min(len_b) == 0 {
        return (own(len_a), own(len_b));
    }
    let (long, short) = (len_a.max(len_b), len_a.min(len_b));
    let (long_start, long_len) = own(long);
    let ratio = short as f64 / long as f64;
    let short_len = ((long_len as f64 * ratio).round() as usize).clamp(1, short);
    let short_start = ((long_start as f64 * ratio).round() as usize).min(short - short_len);
    if len_a >= len_b {
        ((long_start, long_len), (short_start, short_len))
    } else {
        ((short_start, short_len), (long_start, long_len))
    }
}

/// Copies frames `start..start + len` of view `v` of `clip` into `dst` (at least
/// `len * n_mels`, already zeroed); returns `len`.
fn copy_view(
    cache: &FeatureCache,
    clip: usize,
    v: usize,
    (start, len): (usize, usize),
    dst: &mut [f32],
) -> usize {
    let view = cache.view(clip, v);
    view.rows_to_f32(start..start + len, &mut dst[..len * view.n_mels]);
    len
}

/// Combines seed and epoch into one generator seed.
fn mix(seed: u64, epoch: u64) -> u64 {
    SplitMix64::new(seed ^ epoch.wrapping_mul(0xD6E8_FEB8_6659_FD93)).next_u64()
}

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", OOPSLA
/// 2014; constants from Vigna's reference implementation).
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n >= 1), by Lemire's multiply-shift; the bias is below n / 2^64.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::crop_windows;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn windows_stay_inside_their_views(
            len_a in 0usize..2000,
            len_b in 0usize..2000,
            frames in 1usize..700,
            crop in 0.0f64..1.0,
            content: bool,
        ) {
            let (a, b) = crop_windows(len_a, len_b, frames, crop, content);
            for ((start, len), total) in [(a, len_a), (b, len_b)] {
                prop_assert!(start + len <= total);
                prop_assert!(len <= frames);
                prop_assert_eq!(len == 0, total == 0);
            }
        }

        #[test]
        fn content_windows_hold_one_span_of_the_clip(
            long in 2usize..2000,
            speed in 0.8f64..1.0,
            frames in 20usize..700,
            crop in 0.0f64..1.0,
            swap: bool,
        ) {
            let short = ((long as f64 * speed).round() as usize).max(1);
            let (len_a, len_b) = if swap { (short, long) } else { (long, short) };
            let (a, b) = crop_windows(len_a, len_b, frames, crop, true);
            let ((ls, ll), (ss, sl)) = if swap { (b, a) } else { (a, b) };
            if long <= frames {
                prop_assert_eq!((ls, ll, ss, sl), (0, long, 0, short), "both whole");
            } else {
                prop_assert_eq!(ll, frames, "the longer view fills the window");
                // Start and end as shares of each view agree to within a frame of the shorter.
                let tol = 1.0 / short as f64 + 1e-9;
                let share = |x: usize, n: usize| x as f64 / n as f64;
                prop_assert!((share(ls, long) - share(ss, short)).abs() <= tol);
                prop_assert!((share(ls + ll, long) - share(ss + sl, short)).abs() <= tol);
            }
            // Without content crop both keep up to `frames` from the same relative position.
            let (a, b) = crop_windows(len_a, len_b, frames, crop, false);
            prop_assert_eq!(a.1, len_a.min(frames));
            prop_assert_eq!(b.1, len_b.min(frames));
        }
    }
}
