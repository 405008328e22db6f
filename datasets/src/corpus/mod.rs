//! Corpus readers and fixed-length clips: turns the layouts users have (any folder of audio,
//! LibriSpeech, TIMIT, Speech Commands, our synthetic corpus's `manifest.jsonl`) into
//! [`Utterance`]s, and cuts utterances into the windows a tokenizer sees (shared/DESIGN.md
//! sections 3 and 7).
//!
//! Readers never decode audio: durations come from a caller-supplied probe (the crate's decoder
//! in production, a fake in tests). A file that cannot be read or probed does not fail the whole
//! corpus: it is reported in [`Corpus::problems`] and skipped.

mod clips;
mod folder;
mod librispeech;
mod manifest;
mod speech_commands;
mod timit;

use std::path::{Path, PathBuf};

use rayon::prelude::*;

pub use clips::{clips, Clip, DEFAULT_WINDOW_S};
pub use folder::{read_folder, AUDIO_EXTENSIONS};
pub use librispeech::read_librispeech;
pub use manifest::{read_manifest, read_manifest_split, ManifestEntry, Split};
pub use speech_commands::read_speech_commands;

pub use timit::read_timit;

use crate::Result;

/// Returns the duration in seconds of the audio file at a path.
pub type Probe<'a> = dyn Fn(&Path) -> Result<f64> + Sync + 'a;

/// A time-aligned label (a word or a phone) inside an utterance.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// Start, seconds from the start of the utterance.
    pub start_s: f64,
    /// End, seconds; >= `start_s`.
    pub end_s: f64,
    /// The word or phone symbol as the corpus writes it.
    pub label: String,
}

/// One recording of a corpus.
#[derive(Clone, Debug, PartialEq)]
pub struct Utterance {
    /// Unique within the corpus; readers sort by it.
    pub id: String,
    /// Who (or which voice) speaks.
    pub speaker: String,
    /// The audio file.
    pub path: PathBuf,
    /// Duration in seconds.
    pub duration_s: f64,
    /// What is said, where the corpus has it.
    pub transcript: Option<String>,
    /// Word alignment, where the corpus has it (TIMIT), in time order.
    pub words: Vec<Segment>,
    /// Phone alignment, where the corpus has it (TIMIT), in time order.
    pub phones: Vec<Segment>,
}

/// What a reader found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Corpus {
    /// The utterances, sorted by id.
    pub utterances: Vec<Utterance>,
    /// Entries that were skipped or are incomplete, with the reason: unreadable files and
    /// directories, symlink loops, failed probes, missing transcripts, malformed lines.
    pub problems: Vec<(PathBuf, String)>,
}

/// Probes utterances found by walking (duration still 0) in parallel; failures become problems.
/// Sorts by id and reports duplicate ids (the first path in id order wins).
fn probe_all(found: Vec<Utterance>, probe: &Probe<'_>, corpus: &mut Corpus) {
    let probed: Vec<std::result::Result<Utterance, (PathBuf, String)>> = found
        .into_par_iter()
        .map(|mut u| match probe(&u.path) {
            Ok(d) if d.is_finite() && d >= 0.0 => {
                u.duration_s = d;
                Ok(u)
            }
            Ok(d) => Err((u.path, format!("probe returned an invalid duration {d}"))),
            Err(e) => Err((u.path, format!("cannot probe: {e}"))),
        })
        .collect();
    for p in probed {
        match p {
            Ok(u) => corpus.utterances.push(u),
            Err(problem) => corpus.problems.push(problem),
        }
    }
    finish(corpus);
}

/// Sorts utterances by id (then path) and drops repeated ids with a problem.
fn finish(corpus: &mut Corpus) {
    corpus
        .utterances
        .sort_by(|a, b| a.id.cmp(&b.id).then_with(|| a.path.cmp(&b.path)));
    let mut kept: Vec<Utterance> = Vec::with_capacity(corpus.utterances.len());
    for u in corpus.utterances.drain(..) {
        if let Some(prev) = kept.last().filter(|p| p.id == u.id) {
            corpus.problems.push((
                u.path.clone(),
                format!(
                    "duplicate id {:?} (also {}): skipped",
                    u.id,
                    prev.path.display()
                ),
            ));
        } else {
            kept.push(u);
        }
    }
    corpus.utterances = kept;
}

/// Whether `path` has one of the audio extensions (ASCII case-insensitive).
fn is_audio(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| AUDIO_EXTENSIONS.iter().any(|a| a.eq_ignore_ascii_case(e)))
}

/// A '/'-separated id: `path` relative to `root`, without extension. `None` if a component is
/// not UTF-8.
fn relative_id(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?.with_extension("");
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

/// Walks `root` recursively following symlinks, in file-name order, calling `visit` for each
/// file; errors (symlink loops, unreadable directories, dangling links) become problems. Fails
/// only when `root` itself cannot be read.
fn walk(root: &Path, corpus: &mut Corpus, mut visit: impl FnMut(&Path, &mut Corpus)) -> Result<()> {
    std::fs::read_dir(root).map_err(|e| crate::Error::io(root, e))?;
    for entry in walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
    {
        match entry {
            Ok(e) if e.file_type().is_file() => visit(e.path(), corpus),
            Ok(_) => {}
            Err(e) => {
                corpus.problems.push(walk_problem(&e, root));
            }
        }
    }
    Ok(())
}

/// The path and a readable reason for an entry a directory walk under `root` could not visit
/// (unreadable folder, symlink loop, vanished file).
pub fn walk_problem(e: &walkdir::Error, root: &Path) -> (PathBuf, String) {
    let path = e.path().unwrap_or(root).to_path_buf();
    let reason = if e.loop_ancestor().is_some() {
        format!("symlink loop: {e}")
    } else {
        e.to_string()
    };
    (path, reason)
}
