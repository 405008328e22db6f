//! Building a feature cache from a corpus: decode each utterance once, cut its clips, render
//! `views_per_clip` views of each clip, compute their log-mels and stream them into a
//! [`CacheWriter`]. This is the one place where audio is decoded for training; every epoch after
//! reads the cache.

use std::path::Path;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use super::{CacheWriter, Dtype};
use crate::corpus::{clips, Utterance, DEFAULT_WINDOW_S};
use crate::decode::{decode_file, DecodeOptions};
use crate::mel::{LogMel, N_MELS};
use crate::views::{apply, View, ViewSpace};

use crate::{Audio, Error, Result, SAMPLE_RATE};

/// How to build a cache.
#[derive(Clone, Debug)]
pub struct CacheBuildOptions {
    /// Views rendered per clip (at least 2 for paired training).
    pub views_per_clip: usize,
    /// Where the views are drawn from.
    pub view_space: ViewSpace,
    /// Seed of the views: the same seed gives the same cache.
    pub seed: u64,
    /// Storage type of the features.
    pub dtype: Dtype,
    /// Clip length in seconds.
    pub window_s: f64,
    /// Clip hop in seconds (`None`: the window, no overlap).
    pub hop_s: Option<f64>,
    /// Stop after this many clips.
    pub max_clips: Option<usize>,
    /// Decoding limits.
    pub decode: DecodeOptions,
}

impl Default for CacheBuildOptions {
    fn default() -> Self {
        CacheBuildOptions {
            views_per_clip: 2,
            view_space: ViewSpace::default(),
            seed: 0,
            dtype: Dtype::F16,
            window_s: DEFAULT_WINDOW_S,
            hop_s: None,
            max_clips: None,
            decode: DecodeOptions::default(),
        }
    }
}

/// What a build did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CacheBuildReport {
    /// Clips written.
    pub clips: usize,
    /// Seconds of (unaugmented) clip audio.
    pub seconds: f64,
    /// Utterances that failed to decode, with the reason; their clips are skipped.
    pub failed: Vec<(String, String)>,
    /// Clips skipped because a view was shorter than one log-mel frame (25 ms).
    pub too_short: usize,
    /// Wall time of the build.
    pub wall_s: f64,
}

/// A clip index and the log-mel of each of its views.
type RenderedClip = (usize, Vec<Vec<f32>>);

/// The seed of view `v` of clip `c`: independent streams per clip and view.
fn view_seed(seed: u64, clip: usize, v: usize) -> u64 {
    seed ^ (clip as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (v as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
}

/// Builds the cache at `out` from `utterances`. Utterances that fail to decode are reported and
/// skipped; an I/O error on the cache itself aborts.
pub fn build_cache(
    utterances: &[Utterance],
    out: &Path,
    options: &CacheBuildOptions,
) -> Result<CacheBuildReport> {
    if options.views_per_clip < 1 {
        return Err(Error::InvalidInput(
            "views_per_clip must be at least 1".into(),
        ));
    }
    let started = Instant::now();
    let mut all = clips(utterances, options.window_s, options.hop_s)?;
    if let Some(max) = options.max_clips {
        all.truncate(max);
    }
    let mel = LogMel::new();
    let mut writer = CacheWriter::create(out, N_MELS, options.views_per_clip, options.dtype)?;
    let mut report = CacheBuildReport::default();
    // Utterances in parallel, written in order, a bounded number in flight.
    let mut by_utterance: Vec<(usize, Vec<usize>)> = Vec::new();
    for (c, clip) in all.iter().enumerate() {
        match by_utterance.last_mut() {
            Some((u, list)) if *u == clip.utterance => list.push(c),
            _ => by_utterance.push((clip.utterance, vec![c])),
        }
    }
    for group in by_utterance.chunks(64) {
        let rendered: Vec<Result<Vec<RenderedClip>>> = group
            .par_iter()
            .map(|(u, clip_ids)| {
                let audio = decode_file(&utterances[*u].path, &options.decode)?;
                clip_ids
                    .iter()
                    .map(|&c| {
                        let clip = &all[c];
                        let start = (clip.start_s * f64::from(SAMPLE_RATE)).round() as usize;
                        let len = (clip.duration_s * f64::from(SAMPLE_RATE)).round() as usize;
                        let end = (start + len).min(audio.samples.len());
                        let piece =
                            Audio::new(audio.samples[start.min(end)..end].to_vec(), SAMPLE_RATE);
                        let mut rng = ChaCha8Rng::seed_from_u64(view_seed(options.seed, c, 0));
                        let views = (0..options.views_per_clip)
                            .map(|v| {
                                let view: View = options.view_space.draw(&mut rng);
                                let viewed =
                                    apply(&piece, &view, view_seed(options.seed, c, v + 1), &[])?;
                                Ok(mel.compute(&viewed.samples))
                            })
                            .collect::<Result<Vec<_>>>()?;
                        Ok((c, views))
                    })
                    .collect()
            })
            .collect();
        for ((u, _), result) in group.iter().zip(rendered) {
            match result {
                Ok(clips_views) => {
                    for (c, views) in clips_views {
                        if views.iter().any(Vec::is_empty) {
                            report.too_short += 1;
                            continue;
                        }
                        let refs: Vec<&[f32]> = views.iter().map(Vec::as_slice).collect();
                        writer.add_clip(&all[c].id, &refs)?;
                        report.clips += 1;
                        report.seconds += all[c].duration_s;
                    }
                }
                Err(e) => report
                    .failed
                    .push((utterances[*u].id.clone(), e.to_string())),
            }
        }
    }
    writer.finish()?;
    report.wall_s = started.elapsed().as_secs_f64();
    Ok(report)
}
