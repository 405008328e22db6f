//! Any folder of audio files.

use std::path::Path;

use super::{is_audio, probe_all, relative_id, walk, Corpus, Probe, Utterance};
use crate::Result;

/// Extensions recognized as audio, compared ASCII case-insensitively (TIMIT writes `.WAV`).
pub const AUDIO_EXTENSIONS: &[&str] = &["wav", "flac", "mp3", "ogg", "oga", "m4a", "aac", "sph"];

/// Reads every audio file under `root`, recursively, following symlinks.
///
/// Id: the path relative to `root` without its extension, '/'-separated (`spk1/take2`);
/// speaker: the name of the file's parent directory (the root's own name for files directly in
/// it). Symlink loops, unreadable directories, dangling links, files whose name is not UTF-8,
/// failed probes and repeated ids (`a.wav` beside `a.flac`) are reported in `problems`, not
/// fatal; only an unreadable `root` is an error.
pub fn read_folder(root: &Path, probe: &Probe<'_>) -> Result<Corpus> {
    let mut corpus = Corpus::default();
    let mut found = Vec::new();
    walk(root, &mut corpus, |path, corpus| {
        found.extend(audio_utterance(root, path, corpus));
    })?;
    probe_all(found, probe, &mut corpus);
    Ok(corpus)
}

/// The utterance of an audio file under `root` in a plain layout: id is the path relative to
/// `root` without extension, speaker the parent directory's name, no duration yet. `None` for a
/// file that is not audio, or whose name is not UTF-8 (reported in `problems`). TIMIT builds on it.
pub(super) fn audio_utterance(root: &Path, path: &Path, corpus: &mut Corpus) -> Option<Utterance> {
    if !is_audio(path) {
        return None;
    }
    let Some(id) = relative_id(root, path) else {
        corpus
            .problems
            .push((path.to_path_buf(), "file name is not UTF-8: skipped".into()));
        return None;
    };
    let speaker = path
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Some(Utterance {
        id,
        speaker,
        path: path.to_path_buf(),
        duration_s: 0.0,
        transcript: None,
        words: Vec::new(),
        phones: Vec::new(),
    })
}
