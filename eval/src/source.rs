//! Where the evaluation audio comes from: a feature cache of paired views (`pairalign
//! features`), or a corpus the datasets crate reads (a folder, LibriSpeech, TIMIT, the synthetic
//! manifest, Speech Commands). Retrieval and consistency need clips in two views: a cache has
//! them; from a corpus they are rendered into a temporary cache the same way `pairalign
//! features` does. Sweep, locate and compaction need recordings: a corpus's files, optionally
//! joined per speaker into longer recordings (`join_s`) when its utterances are short; content
//! needs utterances with transcripts.

use std::path::{Path, PathBuf};

use pairalign_datasets::cache::{
    build_cache, CacheBuildOptions, CacheBuildReport, Dtype, FeatureCache,
};
use pairalign_datasets::corpus::{
    read_folder, read_librispeech, read_manifest_split, read_speech_commands, read_timit, Split,
    Utterance, DEFAULT_WINDOW_S,
};
use pairalign_datasets::decode::{decode_file, probe_duration, DecodeOptions};
use pairalign_datasets::views::ViewSpace;
use rayon::prelude::*;

use crate::{Error, Result};

/// The view library of the protocols unless the caller gives another (issue 7): noise at 10-30
/// dB SNR, speed 0.9-1.1, gain within ±6 dB, shift within ±100 ms.
pub const DEFAULT_VIEW_SPACE: &str = "noise=10:30,speed=0.9:1.1,gain=6,shift=100";

/// Duration of one log-mel frame in seconds (10 ms hop).
pub const MEL_FRAME_S: f64 = 0.01;

/// How the path given to [`Source::open`] is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// A folder is a folder corpus, a `.jsonl` file a synthetic manifest, any other file a
    /// feature cache.
    Auto,
    /// A feature cache (`pairalign features`).
    Cache,
    /// Any folder of audio, recursively.
    Folder,
    /// LibriSpeech: `<speaker>/<chapter>/*.flac` with `*.trans.txt`.
    Librispeech,
    /// TIMIT: `TRAIN|TEST/<dialect>/<speaker>/*.WAV`.
    Timit,
    /// Speech Commands: `<word>/<speaker>_nohash_<n>.wav` (the word is the transcript).
    SpeechCommands,
    /// The `manifest.jsonl` written by `pairalign synth`.
    Manifest,
}

/// The evaluation data.
#[derive(Debug)]
pub enum Source {
    /// A feature cache of clips in several views.
    Cache(FeatureCache),
    /// Utterances of a corpus, sorted by id.
    Corpus(Vec<Utterance>),
}

/// What [`Source::open`] skipped: the path and why.
pub type Problems = Vec<(PathBuf, String)>;

impl Source {
    /// Opens `path` as `layout` says; `split` selects the training or held-out voices of a
    /// synthetic manifest (an error for other layouts). Corpus entries that cannot be read are
    /// skipped and returned as problems.
    pub fn open(path: &Path, layout: Layout, split: Option<Split>) -> Result<(Source, Problems)> {
        let layout = match layout {
            Layout::Auto if path.is_dir() => Layout::Folder,
            Layout::Auto if path.extension().is_some_and(|e| e == "jsonl") => Layout::Manifest,
            Layout::Auto => Layout::Cache,
            other => other,
        };
        if split.is_some() && layout != Layout::Manifest {
            return Err(Error::BadInput(
                "a voice split needs a synthetic manifest (only it has voice splits)".into(),
            ));
        }
        let corpus = match layout {
            Layout::Cache => return Ok((Source::Cache(FeatureCache::open(path)?), Vec::new())),
            Layout::Folder => read_folder(path, &probe_duration)?,
            Layout::Librispeech => read_librispeech(path, &probe_duration)?,
            Layout::Timit => read_timit(path, &probe_duration)?,
            Layout::SpeechCommands => read_speech_commands(path, &probe_duration)?,
            Layout::Manifest | Layout::Auto => read_manifest_split(path, split)?,
        };
        if corpus.utterances.is_empty() {
            return Err(Error::BadInput(format!(
                "{} holds no utterance to evaluate on",
                path.display()
            )));
        }
        Ok((Source::Corpus(corpus.utterances), corpus.problems))
    }

    /// Clips in two views for retrieval and consistency: the first `options.max_clips` clips of
    /// a cache (its own views; `options` otherwise unused), or of a corpus cut into windows of
    /// `options.window_s` (shorter utterances whole) with two views drawn from
    /// `options.view_space` by `options.seed`, rendered into a temporary cache.
    pub fn paired_views(&self, options: &ViewOptions) -> Result<PairedViews> {
        let (cache, temp, built) = match self {
            Source::Cache(cache) => (FeatureCache::open(cache.path())?, None, None),
            Source::Corpus(utterances) => {
                let temp = tempfile::tempdir().map_err(|e| Error::Io {
                    path: std::env::temp_dir(),
                    source: e,
                })?;
                let path = temp.path().join("views.feat");
                let build = CacheBuildOptions {
                    views_per_clip: 2,
                    view_space: options.view_space.clone(),
                    seed: options.seed,
                    dtype: Dtype::F16,
                    window_s: options.window_s,
                    max_clips: options.max_clips,
                    ..CacheBuildOptions::default()
                };
                let report = build_cache(utterances, &path, &build)?;
                (FeatureCache::open(&path)?, Some(temp), Some(report))
            }
        };
        if cache.views_per_clip() < 2 {
            return Err(Error::BadInput(format!(
                "{} has {} view per clip; the protocol needs 2",
                cache.path().display(),
                cache.views_per_clip()
            )));
        }
        let clips = options
            .max_clips
            .map_or(cache.len(), |m| m.min(cache.len()));
        if clips < 2 {
            return Err(Error::BadInput(format!(
                "{clips} clips: the protocol needs at least 2"
            )));
        }
        Ok(PairedViews {
            cache,
            clips,
            built,
            _temp: temp,
        })
    }

    /// The corpus's recordings, utterances of one speaker joined in id order into recordings of
    /// at least `join_s` seconds when `join_s > 0` (the last of a speaker may be shorter). An
    /// error for a feature cache, which holds no recordings.
    pub fn recordings(&self, join_s: f64, protocol: &str) -> Result<Vec<Recording>> {
        let Source::Corpus(utterances) = self else {
            return Err(Error::BadInput(format!(
                "{protocol} needs recordings: give a corpus (a folder, LibriSpeech, TIMIT or a \
                 synthetic manifest), not a feature cache"
            )));
        };
        if join_s <= 0.0 {
            return Ok(utterances
                .iter()
                .map(|u| Recording {
                    id: u.id.clone(),
                    speaker: u.speaker.clone(),
                    parts: vec![u.path.clone()],
                    duration_s: u.duration_s,
                })
                .collect());
        }
        let mut speakers: Vec<&str> = Vec::new();
        for u in utterances {
            if !speakers.contains(&u.speaker.as_str()) {
                speakers.push(&u.speaker);
            }
        }
        let mut out = Vec::new();
        for speaker in speakers {
            let mut current: Option<Recording> = None;
            for u in utterances.iter().filter(|u| u.speaker == speaker) {
                let rec = current.get_or_insert_with(|| Recording {
                    id: format!("{}+", u.id),
                    speaker: u.speaker.clone(),
                    parts: Vec::new(),
                    duration_s: 0.0,
                });
                rec.parts.push(u.path.clone());
                rec.duration_s += u.duration_s;
                if rec.duration_s >= join_s {
                    out.extend(current.take());
                }
            }
            out.extend(current);
        }
        Ok(out)
    }
}

/// How [`Source::paired_views`] renders views from a corpus.
#[derive(Clone, Debug)]
pub struct ViewOptions {
    /// The view library.
    pub view_space: ViewSpace,
    /// Seed of the views.
    pub seed: u64,
    /// Clip length, seconds.
    pub window_s: f64,
    /// Only the first clips.
    pub max_clips: Option<usize>,
}

impl Default for ViewOptions {
    fn default() -> Self {
        ViewOptions {
            view_space: default_view_space(),
            seed: 0,
            window_s: DEFAULT_WINDOW_S,
            max_clips: None,
        }
    }
}

/// [`DEFAULT_VIEW_SPACE`] parsed.
pub fn default_view_space() -> ViewSpace {
    ViewSpace::parse(DEFAULT_VIEW_SPACE).unwrap_or_default()
}

/// Clips in two views, as log-mels (a cache, temporary when rendered from a corpus).
#[derive(Debug)]
pub struct PairedViews {
    cache: FeatureCache,
    clips: usize,
    built: Option<CacheBuildReport>,
    _temp: Option<tempfile::TempDir>,
}

impl PairedViews {
    /// Clips used.
    pub fn clips(&self) -> usize {
        self.clips
    }

    /// Log-mels of view `v` of every clip used, as f32.
    pub fn mels(&self, v: usize) -> Vec<Vec<f32>> {
        (0..self.clips)
            .into_par_iter()
            .map(|i| {
                let mut buf = Vec::new();
                self.cache.view(i, v).to_f32(&mut buf);
                buf
            })
            .collect()
    }

    /// Seconds of audio in view `v`, summed over the clips.
    pub fn seconds(&self, v: usize) -> f64 {
        (0..self.clips)
            .map(|i| self.cache.frames(i, v))
            .sum::<usize>() as f64
            * MEL_FRAME_S
    }

    /// The build report when the views were rendered from a corpus.
    pub fn built(&self) -> Option<&CacheBuildReport> {
        self.built.as_ref()
    }
}

/// A recording: one file, or utterances of one speaker played one after the other.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    /// The first utterance's id, with `+` when utterances were joined.
    pub id: String,
    /// Who speaks.
    pub speaker: String,
    /// The files, in order.
    pub parts: Vec<PathBuf>,
    /// Duration in seconds (from the corpus's probe).
    pub duration_s: f64,
}

impl Recording {
    /// Decodes the parts (16 kHz mono) and concatenates them.
    pub fn load(&self) -> Result<Vec<f32>> {
        let mut samples = Vec::new();
        for part in &self.parts {
            samples.extend(decode_file(part, &DecodeOptions::default())?.samples);
        }
        Ok(samples)
    }
}

/// Decodes `recordings` `chunk` at a time (in parallel within a chunk) and calls `f` with the
/// index of each chunk's first recording and the samples of each of its recordings, so that
/// memory holds one chunk.
pub fn for_each_chunk(
    recordings: &[Recording],
    chunk: usize,
    mut f: impl FnMut(usize, Vec<Vec<f32>>) -> Result<()>,
) -> Result<()> {
    for (c, group) in recordings.chunks(chunk.max(1)).enumerate() {
        let audio: Vec<Vec<f32>> = group
            .par_iter()
            .map(Recording::load)
            .collect::<Result<_>>()?;
        f(c * chunk.max(1), audio)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utterance(id: &str, speaker: &str, duration_s: f64) -> Utterance {
        Utterance {
            id: id.into(),
            speaker: speaker.into(),
            path: PathBuf::from(format!("{id}.wav")),
            duration_s,
            transcript: None,
            words: vec![],
            phones: vec![],
        }
    }

    #[test]
    fn utterances_are_joined_per_speaker_in_id_order() {
        let source = Source::Corpus(vec![
            utterance("a1", "x", 4.0),
            utterance("a2", "y", 5.0),
            utterance("a3", "x", 4.0),
            utterance("a4", "x", 4.0),
            utterance("a5", "y", 2.0),
        ]);
        let plain = source.recordings(0.0, "sweep").unwrap();
        assert_eq!(plain.len(), 5);
        let joined = source.recordings(7.0, "sweep").unwrap();
        let summary: Vec<(&str, usize, f64)> = joined
            .iter()
            .map(|r| (r.id.as_str(), r.parts.len(), r.duration_s))
            .collect();
        assert_eq!(
            summary,
            vec![("a1+", 2, 8.0), ("a4+", 1, 4.0), ("a2+", 2, 7.0)]
        );
        assert_eq!(
            joined[0].parts,
            vec![PathBuf::from("a1.wav"), PathBuf::from("a3.wav")]
        );
    }

    #[test]
    fn a_cache_has_no_recordings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.feat");
        let mut w =
            pairalign_datasets::cache::CacheWriter::create(&path, 2, 2, Dtype::F32).unwrap();
        w.add_clip("c", &[&[0.0; 4], &[0.0; 4]]).unwrap();
        w.finish().unwrap();
        let (source, _) = Source::open(&path, Layout::Auto, None).unwrap();
        let err = source.recordings(0.0, "sweep").unwrap_err();
        assert!(err.to_string().contains("sweep needs recordings"), "{err}");
        // One clip cannot rank anything.
        let err = source.paired_views(&ViewOptions::default()).unwrap_err();
        assert!(err.to_string().contains("at least 2"), "{err}");
    }
}
