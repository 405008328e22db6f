//! LibriSpeech: `<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`, with one
//! `<speaker>-<chapter>.trans.txt` per chapter whose lines are `<utt id> <TRANSCRIPT>`
//! (Panayotov et al., "LibriSpeech: an ASR corpus based on public domain audio books", ICASSP
//! 2015; the layout of the openslr.org/12 archives).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{is_audio, probe_all, walk, Corpus, Probe, Utterance};
use crate::Result;

/// Reads a LibriSpeech tree. `root` may be one subset (`train-clean-100/`) or a folder holding
/// several; the walk is recursive. Id: the file stem (`84-121123-0000`); speaker: its first
/// field. Audio without a transcript line is kept with `transcript: None` and reported; a
/// transcript line without audio is reported. Files that do not follow the naming are ignored.
pub fn read_librispeech(root: &Path, probe: &Probe<'_>) -> Result<Corpus> {
    let mut corpus = Corpus::default();
    let mut found = Vec::new();
    // id -> (transcript, the .trans.txt file it came from)
    let mut transcripts: BTreeMap<String, (String, PathBuf)> = BTreeMap::new();
    walk(root, &mut corpus, |path, corpus| {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        if name.ends_with(".trans.txt") {
            read_transcripts(path, &mut transcripts, corpus);
            return;
        }
        if !is_audio(path) {
            return;
        }
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            return;
        };
        let Some(speaker) = utterance_speaker(stem) else {
            return;
        };
        found.push(Utterance {
            id: stem.to_owned(),
            speaker: speaker.to_owned(),
            path: path.to_path_buf(),
            duration_s: 0.0,
            transcript: None,
            words: Vec::new(),
            phones: Vec::new(),
        });
    })?;
    for u in &mut found {
        match transcripts.remove(&u.id) {
            Some((text, _)) => u.transcript = Some(text),
            None => corpus.problems.push((
                u.path.clone(),
                "no transcript line for this utterance".into(),
            )),
        }
    }
    for (id, (_, trans)) in transcripts {
        corpus
            .problems
            .push((trans, format!("transcript for {id} but no audio file")));
    }
    probe_all(found, probe, &mut corpus);
    Ok(corpus)
}

/// The speaker of a `<speaker>-<chapter>-<utt>` stem (three non-empty digit fields).
fn utterance_speaker(stem: &str) -> Option<&str> {
    let fields: Vec<&str> = stem.split('-').collect();
    let digits = |f: &&str| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit());
    (fields.len() == 3 && fields.iter().all(digits)).then_some(fields[0])
}

fn read_transcripts(
    path: &Path,
    transcripts: &mut BTreeMap<String, (String, PathBuf)>,
    corpus: &mut Corpus,
) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            corpus
                .problems
                .push((path.to_path_buf(), format!("cannot read transcripts: {e}")));
            return;
        }
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((id, words)) = line.split_once(char::is_whitespace) else {
            corpus.problems.push((
                path.to_path_buf(),
                format!("line {}: no transcript after the id", n + 1),
            ));
            continue;
        };
        let entry = (words.trim().to_owned(), path.to_path_buf());
        if transcripts.insert(id.to_owned(), entry).is_some() {
            corpus.problems.push((
                path.to_path_buf(),
                format!(
                    "line {}: second transcript for {id} (the last one is kept)",
                    n + 1
                ),
            ));
        }
    }
}
