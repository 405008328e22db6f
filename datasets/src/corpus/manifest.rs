//! The synthetic corpus's `manifest.jsonl`: one JSON object per line describing one rendered
//! utterance (written by the synthesizer, shared/DESIGN.md section 7).

use std::path::Path;

use super::{finish, Corpus, Utterance};
// The synthesizer owns the line format; reading it here keeps one definition.
pub use crate::synth::{ManifestEntry, Split};
use crate::{Error, Result};

/// Reads a synthetic corpus from its `manifest.jsonl` (no probing: the manifest has durations).
/// Speaker: `<engine>/<voice>`; transcript: the text; path: resolved against the manifest's
/// folder. Malformed lines, negative or non-finite durations are reported in `problems`; only an
/// unreadable manifest is an error. Use [`ManifestEntry`] with serde for the other fields.
pub fn read_manifest(path: &Path) -> Result<Corpus> {
    read_manifest_split(path, None)
}

/// Like [`read_manifest`], keeping only the utterances of `split` when it is given (training
/// voices, or the held-out voices that evaluation uses).
pub fn read_manifest_split(path: &Path, split: Option<Split>) -> Result<Corpus> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let folder = path.parent().unwrap_or(Path::new(""));
    let mut corpus = Corpus::default();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let entry: ManifestEntry = match serde_json::from_str(line) {
            Ok(e) => e,
            Err(e) => {
                corpus
                    .problems
                    .push((path.to_path_buf(), format!("line {}: {e}", n + 1)));
                continue;
            }
        };
        if !entry.duration.is_finite() || entry.duration < 0.0 {
            corpus.problems.push((
                path.to_path_buf(),
                format!("line {}: invalid duration {}", n + 1, entry.duration),
            ));
            continue;
        }
        if split.is_some_and(|want| entry.split != want) {
            continue;
        }
        corpus.utterances.push(Utterance {
            speaker: format!("{}/{}", entry.engine, entry.voice),
            path: folder.join(&entry.path),
            duration_s: entry.duration,
            transcript: Some(entry.text),
            id: entry.id,
            words: Vec::new(),
            phones: Vec::new(),
        });
    }
    finish(&mut corpus);
    Ok(corpus)
}
