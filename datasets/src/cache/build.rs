//! Building a feature cache from a corpus: decode each utterance once, cut its clips, render
//! `views_per_clip` views of each clip, compute their log-mels and stream them into a
//! [`CacheWriter`]. This is the one place where audio is decoded for training; every epoch after
//! reads the cache.
//!
//! With [`CacheBuildOptions::cross_voice`], utterances that say the same transcript in different
//! voices become **voice clips**: each view is a whole utterance of another voice (itself drawn
//! through the view space), and the clip's id starts with [`VOICES_PREFIX`]. Their views say the
//! same words on different timelines; the trainer aligns them before it pairs their targets.

use std::collections::{BTreeMap, HashMap};
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
    /// Group utterances with the same transcript said by different speakers into voice clips
    /// (module docs); utterances left over (no transcript, too few voices) are cut into windows
    /// as usual.
    pub cross_voice: bool,
    /// Where the first view of a voice clip is drawn from (`None`: `view_space`, as its other
    /// views always are). The trainer aligns a voice clip's views by their spectra and carries
    /// each view's codes onto the other: a mild first view gives clean words to carry onto a
    /// hard view of another voice (and keeps the alignment from being blurred on both sides).
    pub voice_view_space: Option<ViewSpace>,
}

/// First characters of the id of a voice clip: its views are the same words said by
/// different voices, whole utterances on timelines of their own.
pub const VOICES_PREFIX: &str = "voices:";

/// Whether a clip of a cache is a voice clip (its views do not share a timeline).
pub fn is_voice_clip(id: &str) -> bool {
    id.starts_with(VOICES_PREFIX)
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
            cross_voice: false,
            voice_view_space: None,
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
    /// Voice clips among `clips` ([`CacheBuildOptions::cross_voice`]).
    pub voice_clips: usize,
    /// Wall time of the build.
    pub wall_s: f64,
}

/// A part of an utterance that a view is rendered from.
#[derive(Clone, Copy, Debug)]
struct Piece {
    utterance: usize,
    start_s: f64,
    duration_s: f64,
}

/// A clip to write: its id, seconds of audio, and the piece of each view (one piece for all
/// views of a window clip, one per view for a voice clip).
#[derive(Clone, Debug)]
struct Job {
    id: String,
    seconds: f64,
    pieces: Vec<Piece>,
}

impl Job {
    fn piece(&self, v: usize) -> Piece {
        self.pieces[v.min(self.pieces.len() - 1)]
    }
}

/// Voice clips (`views` distinct speakers each, the first utterance of each speaker in id
/// order) of every transcript said by at least `views` speakers, a transcript giving as many
/// clips as it has disjoint sets of `views` speakers; and which utterances they spoke for.
fn voice_jobs(utterances: &[Utterance], views: usize) -> (Vec<Job>, Vec<bool>) {
    let mut by_text: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, u) in utterances.iter().enumerate() {
        if let Some(text) = u
            .transcript
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            if u.duration_s > 0.0 {
                by_text.entry(text).or_default().push(i);
            }
        }
    }
    let mut used = vec![false; utterances.len()];
    let mut jobs = Vec::new();
    for list in by_text.values() {
        let mut speakers: Vec<&str> = Vec::new();
        let mut firsts: Vec<usize> = Vec::new();
        for &i in list {
            if !speakers.contains(&utterances[i].speaker.as_str()) {
                speakers.push(&utterances[i].speaker);
                firsts.push(i);
            }
        }
        for group in firsts.chunks_exact(views.max(1)) {
            let pieces: Vec<Piece> = group
                .iter()
                .map(|&i| Piece {
                    utterance: i,
                    start_s: 0.0,
                    duration_s: utterances[i].duration_s,
                })
                .collect();
            for &i in group {
                used[i] = true;
            }
            jobs.push(Job {
                id: format!("{VOICES_PREFIX}{}", utterances[group[0]].id),
                seconds: pieces.iter().map(|p| p.duration_s).sum::<f64>() / pieces.len() as f64,
                pieces,
            });
        }
    }
    // Every utterance of a transcript that made a voice clip is spoken for: repeats of one
    // voice and voices left over do not come back as windows of the same words.
    for list in by_text.values() {
        if list.iter().any(|&i| used[i]) {
            for &i in list {
                used[i] = true;
            }
        }
    }
    (jobs, used)
}

/// A clip index and the log-mel of each of its views.
type RenderedClip = (usize, Vec<Vec<f32>>);

/// The seed of view `v` of clip `c`: independent streams per clip and view.
fn view_seed(seed: u64, clip: usize, v: usize) -> u64 {
    seed ^ (clip as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (v as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
}

/// The samples of `piece` of `audio` (clamped to the audio).
fn cut_piece(audio: &Audio, piece: &Piece) -> Audio {
    let start = (piece.start_s * f64::from(SAMPLE_RATE)).round() as usize;
    let len = (piece.duration_s * f64::from(SAMPLE_RATE)).round() as usize;
    let end = (start + len).min(audio.samples.len());
    Audio::new(audio.samples[start.min(end)..end].to_vec(), SAMPLE_RATE)
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
    let (mut jobs, spoken_for) = if options.cross_voice {
        voice_jobs(utterances, options.views_per_clip)
    } else {
        (Vec::new(), vec![false; utterances.len()])
    };
    for clip in clips(utterances, options.window_s, options.hop_s)? {
        if spoken_for[clip.utterance] {
            continue;
        }
        jobs.push(Job {
            id: clip.id,
            seconds: clip.duration_s,
            pieces: vec![Piece {
                utterance: clip.utterance,
                start_s: clip.start_s,
                duration_s: clip.duration_s,
            }],
        });
    }
    if let Some(max) = options.max_clips {
        jobs.truncate(max);
    }
    let mel = LogMel::new();
    let mut writer = CacheWriter::create(out, N_MELS, options.views_per_clip, options.dtype)?;
    let mut report = CacheBuildReport::default();
    // Work units decode their utterances once: a voice clip alone, or the windows of one
    // utterance together. Units run in parallel and are written in order, a bounded number in
    // flight.
    let mut units: Vec<Vec<usize>> = Vec::new();
    for (c, job) in jobs.iter().enumerate() {
        match units.last_mut() {
            Some(unit)
                if job.pieces.len() == 1
                    && jobs[unit[0]].pieces.len() == 1
                    && jobs[unit[0]].pieces[0].utterance == job.pieces[0].utterance =>
            {
                unit.push(c)
            }
            _ => units.push(vec![c]),
        }
    }
    for group in units.chunks(64) {
        let rendered: Vec<std::result::Result<Vec<RenderedClip>, (usize, Error)>> = group
            .par_iter()
            .map(|unit| {
                let mut decoded: HashMap<usize, Audio> = HashMap::new();
                unit.iter()
                    .map(|&c| {
                        let job = &jobs[c];
                        let mut rng = ChaCha8Rng::seed_from_u64(view_seed(options.seed, c, 0));
                        let views = (0..options.views_per_clip)
                            .map(|v| {
                                let piece = job.piece(v);
                                let audio = match decoded.entry(piece.utterance) {
                                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                                    std::collections::hash_map::Entry::Vacant(e) => e.insert(
                                        decode_file(
                                            &utterances[piece.utterance].path,
                                            &options.decode,
                                        )
                                        .map_err(|e| (piece.utterance, e))?,
                                    ),
                                };
                                let cut = cut_piece(audio, &piece);
                                let space = match &options.voice_view_space {
                                    Some(space) if v == 0 && is_voice_clip(&job.id) => space,
                                    _ => &options.view_space,
                                };
                                let view: View = space.draw(&mut rng);
                                let viewed =
                                    apply(&cut, &view, view_seed(options.seed, c, v + 1), &[])
                                        .map_err(|e| (piece.utterance, e))?;
                                Ok(mel.compute(&viewed.samples))
                            })
                            .collect::<std::result::Result<Vec<_>, (usize, Error)>>()?;
                        Ok((c, views))
                    })
                    .collect()
            })
            .collect();
        for result in rendered {
            match result {
                Ok(clips_views) => {
                    for (c, views) in clips_views {
                        if views.iter().any(Vec::is_empty) {
                            report.too_short += 1;
                            continue;
                        }
                        let refs: Vec<&[f32]> = views.iter().map(Vec::as_slice).collect();
                        writer.add_clip(&jobs[c].id, &refs)?;
                        report.clips += 1;
                        report.seconds += jobs[c].seconds;
                        report.voice_clips += usize::from(is_voice_clip(&jobs[c].id));
                    }
                }
                Err((u, e)) => report
                    .failed
                    .push((utterances[u].id.clone(), e.to_string())),
            }
        }
    }
    writer.finish()?;
    report.wall_s = started.elapsed().as_secs_f64();
    Ok(report)
}
