//! Google Speech Commands: `<word>/<speaker>_nohash_<n>.wav`, one word per 1 s clip, the folder
//! naming the word and the file name's first field the speaker (P. Warden, "Speech Commands: A
//! Dataset for Limited-Vocabulary Speech Recognition", arXiv:1804.03209, section "Format").

use std::path::Path;

use super::{is_audio, probe_all, walk, Corpus, Probe, Utterance};
use crate::Result;

/// The folder of noise recordings that comes with the dataset; it holds no word.
const BACKGROUND_NOISE: &str = "_background_noise_";

/// Reads a Speech Commands tree. Id: `<word>/<file stem>`; speaker: the part of the stem
/// before `_nohash_`; transcript: the word (the folder's name). Audio directly in `root`, in
/// deeper folders or in `_background_noise_` is ignored; a file of a word folder whose name
/// lacks `_nohash_` is reported and skipped.
pub fn read_speech_commands(root: &Path, probe: &Probe<'_>) -> Result<Corpus> {
    let mut corpus = Corpus::default();
    let mut found = Vec::new();
    walk(root, &mut corpus, |path, corpus| {
        if !is_audio(path) {
            return;
        }
        let Ok(rel) = path.strip_prefix(root) else {
            return;
        };
        let parts: Vec<&str> = rel
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .collect();
        let [word, name] = parts.as_slice() else {
            return;
        };
        if *word == BACKGROUND_NOISE {
            return;
        }
        let stem = Path::new(name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(name);
        let Some((speaker, _)) = stem.split_once("_nohash_").filter(|(s, _)| !s.is_empty()) else {
            corpus.problems.push((
                path.to_path_buf(),
                "not named <speaker>_nohash_<n>: skipped".into(),
            ));
            return;
        };
        found.push(Utterance {
            id: format!("{word}/{stem}"),
            speaker: speaker.to_owned(),
            path: path.to_path_buf(),
            duration_s: 0.0,
            transcript: Some((*word).to_owned()),
            words: Vec::new(),
            phones: Vec::new(),
        });
    })?;
    probe_all(found, probe, &mut corpus);
    Ok(corpus)
}
