//! TIMIT: `TRAIN|TEST/<dialect DR1..DR8>/<speaker>/<utt>.WAV` (NIST SPHERE) with `<utt>.WRD`
//! and `<utt>.PHN` alignments (`<start sample> <end sample> <label>` per line, 16 kHz) and
//! `<utt>.TXT` (`<start> <end> <sentence>`) (Garofolo et al., "TIMIT Acoustic-Phonetic
//! Continuous Speech Corpus", LDC93S1, 1993, documentation file `timit.txt`).

use std::path::{Path, PathBuf};

use super::folder::audio_utterance;
use super::{probe_all, walk, Corpus, Probe, Segment};
use crate::SAMPLE_RATE;

/// Reads a TIMIT tree (upper- or lower-case names). Id: the path relative to `root` without
/// extension (`TRAIN/DR1/FCJF0/SA1`: utterance names repeat across speakers); speaker: the
/// parent directory (`FCJF0`). Alignments are converted from samples to seconds. A missing or
/// malformed `.WRD`/`.PHN`/`.TXT` is reported, and the utterance is kept without it.
pub fn read_timit(root: &Path, probe: &Probe<'_>) -> crate::Result<super::Corpus> {
    let mut corpus = Corpus::default();
    let mut found = Vec::new();
    walk(root, &mut corpus, |path, corpus| {
        let Some(mut utterance) = audio_utterance(root, path, corpus) else {
            return;
        };
        utterance.words = read_alignment(path, "WRD", corpus);
        utterance.phones = read_alignment(path, "PHN", corpus);
        utterance.transcript =
            read_sibling(path, "TXT", corpus).and_then(|(p, text)| match parse_transcript(&text) {
                Some(t) => Some(t),
                None => {
                    corpus
                        .problems
                        .push((p, "expected `<start> <end> <sentence>`".into()));
                    None
                }
            });
        found.push(utterance);
    })?;
    probe_all(found, probe, &mut corpus);
    Ok(corpus)
}

/// The sibling of `audio` with extension `ext` (tried as written, then lower case) and its text;
/// a missing or unreadable sibling is reported.
fn read_sibling(audio: &Path, ext: &str, corpus: &mut Corpus) -> Option<(PathBuf, String)> {
    let candidates = [
        audio.with_extension(ext),
        audio.with_extension(ext.to_ascii_lowercase()),
    ];
    let Some(path) = candidates.into_iter().find(|p| p.is_file()) else {
        corpus
            .problems
            .push((audio.to_path_buf(), format!("no .{ext} file beside it")));
        return None;
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Some((path, text)),
        Err(e) => {
            corpus.problems.push((path, format!("cannot read: {e}")));
            None
        }
    }
}

fn read_alignment(audio: &Path, ext: &str, corpus: &mut Corpus) -> Vec<Segment> {
    let Some((path, text)) = read_sibling(audio, ext, corpus) else {
        return Vec::new();
    };
    match parse_alignment(&text) {
        Ok(segments) => segments,
        Err(reason) => {
            corpus.problems.push((path, reason));
            Vec::new()
        }
    }
}

/// Parses `<start sample> <end sample> <label>` lines into segments in seconds.
fn parse_alignment(text: &str) -> Result<Vec<Segment>, String> {
    let rate = f64::from(SAMPLE_RATE);
    let mut segments = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let bad = || {
            format!(
                "line {}: expected `<start sample> <end sample> <label>`",
                n + 1
            )
        };
        let [start, end, label] = fields[..] else {
            return Err(bad());
        };
        let (Ok(start), Ok(end)) = (start.parse::<u64>(), end.parse::<u64>()) else {
            return Err(bad());
        };
        if end < start {
            return Err(format!(
                "line {}: ends at sample {end} before it starts at {start}",
                n + 1
            ));
        }
        segments.push(Segment {
            start_s: start as f64 / rate,
            end_s: end as f64 / rate,
            label: label.to_owned(),
        });
    }
    Ok(segments)
}

/// The sentence of a `.TXT` file: `<start> <end> <sentence>`.
fn parse_transcript(text: &str) -> Option<String> {
    let mut rest = text.trim();
    for _ in 0..2 {
        let (number, tail) = rest.split_once(char::is_whitespace)?;
        number.parse::<u64>().ok()?;
        rest = tail.trim_start();
    }
    Some(rest.trim().to_owned()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_in_samples_becomes_seconds() {
        let s = parse_alignment("0 3050 h#\n3050 4559 sh\n\n").expect("valid");
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].label, "sh");
        assert!((s[1].start_s - 3050.0 / 16000.0).abs() < 1e-12);
        assert!((s[1].end_s - 4559.0 / 16000.0).abs() < 1e-12);
        assert!(parse_alignment("0 10").is_err());
        assert!(parse_alignment("10 0 x").is_err());
        assert!(parse_alignment("a b c").is_err());
    }

    #[test]
    fn transcript_drops_the_sample_range() {
        assert_eq!(
            parse_transcript("0 46797 She had your dark suit in greasy wash water all year.\n")
                .as_deref(),
            Some("She had your dark suit in greasy wash water all year.")
        );
        assert_eq!(parse_transcript("She had"), None);
        assert_eq!(parse_transcript("0 5"), None);
    }
}
