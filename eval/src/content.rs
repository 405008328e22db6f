//! `eval content`: the same words said by different voices (issue 22, part 3). Every clip of a
//! set queries the clips of the **other** voices (a clip of its own voice is never a
//! candidate, however alike), ranked by a normalized edit distance between token strings; the
//! relevant candidates are those of its group (the same word or sentence). P@1, the MRR of the
//! first relevant candidate and P@10 (the share of relevant candidates among the first 10,
//! divided by 10 whatever the number of relevant ones), ties by expectation ([`GroupRankStats`]).
//! A query with no relevant candidate among the other voices is left out and counted.
//!
//! Sets: Speech Commands (group = word, voice = speaker) and a synthetic manifest rendered with
//! several voices per sentence (group = sentence, voice = engine and voice; held-out voices
//! by default), or any corpus whose utterances have transcripts ([`ContentSet::from_source`]).
//!
//! Every clip is decoded once, optionally cut to its speech ([`Silence::Trim`]:
//! [`Audio::speech_span`]), and tokenized window by window as the index does
//! ([`tokenize_recordings`]). Two ways to compare strings ([`Match`]): the whole strings
//! ([`ned`]: Levenshtein over the longer length, what `scripts/content-speech-commands.py`
//! measured), or the shorter located inside the longer ([`infix_ned`]), which forgives what
//! surrounds the words. Several silence and match modes run in one call on one decoding.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use pairalign_datasets::decode::{decode_file, DecodeOptions};
use pairalign_datasets::{Audio, SAMPLE_RATE};
use pairalign_engine::Symbol;
use pairalign_models::{Tokenizer, WINDOWS_PER_CALL, WINDOW_SAMPLES};
use rayon::prelude::*;
use serde::Serialize;

#[cfg(doc)]
use crate::metrics::{infix_ned, ned};
use crate::metrics::{infix_ned_row, ned_row, GroupRankStats};
use crate::output::{label, table, Outputs};
use crate::plot;
use crate::source::Source;
use crate::subject::{Subject, SubjectInfo};
use crate::windows::tokenize_recordings;
use crate::{Error, Result};

/// How two token strings are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    /// The whole strings: Levenshtein distance over the longer length ([`ned`]).
    Global,
    /// The shorter string located inside the longer, over the shorter's length ([`infix_ned`]).
    Infix,
}

impl Match {
    /// `global` or `infix`, as reports and the command line write it.
    pub fn name(self) -> &'static str {
        match self {
            Match::Global => "global",
            Match::Infix => "infix",
        }
    }

    /// Distances from `query` to every text.
    fn row(self, query: &[Symbol], texts: &[&[Symbol]]) -> Vec<f64> {
        match self {
            Match::Global => ned_row(query, texts),
            Match::Infix => infix_ned_row(query, texts),
        }
    }
}

/// What is done to the silence around the words before tokenizing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Silence {
    /// Tokenize the clip as it is.
    Keep,
    /// Cut leading and trailing silence by energy ([`Audio::speech_span`]).
    Trim,
}

impl Silence {
    /// `keep` or `trim`.
    pub fn name(self) -> &'static str {
        match self {
            Silence::Keep => "keep",
            Silence::Trim => "trim",
        }
    }
}

/// How content runs: every combination of the silence and match modes, one report each.
#[derive(Clone, Debug, PartialEq)]
pub struct ContentOptions {
    /// Silence modes (at least one).
    pub silences: Vec<Silence>,
    /// Match modes (at least one).
    pub matches: Vec<Match>,
    /// Only the first clips of the set, in id order.
    pub max_clips: Option<usize>,
}

impl Default for ContentOptions {
    /// Trimmed silence and whole-string matching, the best combination measured (docs/RESULTS.md,
    /// issue 22 part 3): trimming lifted P@1 on Speech Commands by 0.03 to 0.12 for each shipped
    /// tokenizer and moved held-out synthetic voices by -0.004 to +0.02; infix matching lost
    /// almost everywhere (a short string is found inside too many others).
    fn default() -> Self {
        ContentOptions {
            silences: vec![Silence::Trim],
            matches: vec![Match::Global],
            max_clips: None,
        }
    }
}

/// One clip of a content set.
#[derive(Clone, Debug, PartialEq)]
pub struct ContentClip {
    /// The corpus's id of the clip.
    pub id: String,
    /// What is said: clips of one group say the same words.
    pub group: String,
    /// Who says it.
    pub voice: String,
    /// The audio file.
    pub path: PathBuf,
}

/// Clips that say the same words in different voices.
#[derive(Clone, Debug, PartialEq)]
pub struct ContentSet {
    /// What the tables call the set (a folder's name, with the voice split of a manifest).
    pub name: String,
    /// The clips, in the corpus's id order.
    pub clips: Vec<ContentClip>,
}

impl ContentSet {
    /// The utterances of a corpus that have a transcript (the group) and a speaker (the voice):
    /// Speech Commands (word, speaker), a synthetic manifest (sentence, `engine/voice`),
    /// LibriSpeech. An error for a feature cache or when no utterance has a transcript.
    pub fn from_source(name: impl Into<String>, source: &Source) -> Result<ContentSet> {
        let Source::Corpus(utterances) = source else {
            return Err(Error::BadInput(
                "content needs audio with transcripts: give Speech Commands or a corpus (a \
                 synthetic manifest), not a feature cache"
                    .into(),
            ));
        };
        let clips: Vec<ContentClip> = utterances
            .iter()
            .filter_map(|u| {
                let group = u.transcript.as_deref()?.trim();
                (!group.is_empty()).then(|| ContentClip {
                    id: u.id.clone(),
                    group: group.to_string(),
                    voice: u.speaker.clone(),
                    path: u.path.clone(),
                })
            })
            .collect();
        if clips.is_empty() {
            return Err(Error::BadInput(
                "no utterance has a transcript: content compares clips that say the same words"
                    .into(),
            ));
        }
        Ok(ContentSet {
            name: name.into(),
            clips,
        })
    }

    /// Distinct groups.
    pub fn groups(&self) -> usize {
        labels(self.clips.iter().map(|c| c.group.as_str())).1
    }

    /// Distinct voices.
    pub fn voices(&self) -> usize {
        labels(self.clips.iter().map(|c| c.voice.as_str())).1
    }
}

/// Each label's number (in sorted order of the labels) and how many distinct labels there are.
fn labels<'a>(all: impl Iterator<Item = &'a str> + Clone) -> (Vec<usize>, usize) {
    let numbers: BTreeMap<&str, usize> = all
        .clone()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(i, l)| (l, i))
        .collect();
    (all.map(|l| numbers[l]).collect(), numbers.len())
}

/// The figures of one ranking of a set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ContentMetrics {
    /// Queries that have at least one relevant candidate.
    pub queries: usize,
    /// Clips left out as queries: no clip of another voice says their words.
    pub unanswerable: usize,
    /// Candidates per query (the clips of the other voices), mean.
    pub candidates: f64,
    /// Mean precision at 1.
    pub p_at_1: f64,
    /// Mean reciprocal rank of the first relevant candidate.
    pub mrr: f64,
    /// Mean share of relevant candidates among the first 10.
    pub p_at_10: f64,
    /// P@1 of a random ranking: the mean share of relevant candidates.
    pub chance_p_at_1: f64,
}

/// Ranks every clip's candidates: clip `i` (token string `strings[i]`, group `groups[i]`,
/// voice `voices[i]`) against every clip `j` with `voices[j] != voices[i]`, relevant when
/// `groups[j] == groups[i]`; distances by `matching`.
pub fn rank(
    strings: &[&[Symbol]],
    groups: &[usize],
    voices: &[usize],
    matching: Match,
) -> ContentMetrics {
    let per_query: Vec<Option<(GroupRankStats, usize, f64)>> = (0..strings.len())
        .into_par_iter()
        .map(|i| {
            let candidates: Vec<usize> = (0..strings.len())
                .filter(|&j| voices[j] != voices[i])
                .collect();
            let relevant: Vec<bool> = candidates.iter().map(|&j| groups[j] == groups[i]).collect();
            let hits = relevant.iter().filter(|&&r| r).count();
            if hits == 0 {
                return None;
            }
            let texts: Vec<&[Symbol]> = candidates.iter().map(|&j| strings[j]).collect();
            let row = matching.row(strings[i], &texts);
            let chance = hits as f64 / candidates.len() as f64;
            Some((
                GroupRankStats::of(&row, &relevant),
                candidates.len(),
                chance,
            ))
        })
        .collect();
    let answered: Vec<&(GroupRankStats, usize, f64)> = per_query.iter().flatten().collect();
    let n = answered.len().max(1) as f64;
    let mean = |f: &dyn Fn(&(GroupRankStats, usize, f64)) -> f64| {
        answered.iter().map(|q| f(q)).sum::<f64>() / n
    };
    ContentMetrics {
        queries: answered.len(),
        unanswerable: per_query.len() - answered.len(),
        candidates: mean(&|q| q.1 as f64),
        p_at_1: mean(&|q| q.0.p_at_1),
        mrr: mean(&|q| q.0.reciprocal_rank),
        p_at_10: mean(&|q| q.0.p_at_10),
        chance_p_at_1: mean(&|q| q.2),
    }
}

/// Content figures of one tokenizer under one silence and match mode.
#[derive(Clone, Debug, Serialize)]
pub struct ContentReport {
    /// Which subject.
    #[serde(flatten)]
    pub subject: SubjectInfo,
    /// `"content"`.
    pub protocol: &'static str,
    /// The set's name ([`ContentSet::name`]).
    pub set: String,
    /// `keep` or `trim` ([`Silence`]).
    pub silence: &'static str,
    /// `global` or `infix` ([`Match`]).
    #[serde(rename = "match")]
    pub matching: &'static str,
    /// Clips in the set (each one a query unless unanswerable).
    pub clips: usize,
    /// Distinct groups (words or sentences).
    pub groups: usize,
    /// Distinct voices.
    pub voices: usize,
    /// Seconds of audio per clip tokenized (after trimming), mean.
    pub seconds_per_clip: f64,
    /// Tokens per clip, mean.
    pub tokens_per_clip: f64,
    /// The ranking's figures.
    #[serde(flatten)]
    pub metrics: ContentMetrics,
    /// Wall time: tokenizing (once per silence mode) and ranking, and a share of decoding.
    pub wall_s: f64,
}

/// Runs content for every token subject of `subjects` (a dense one is skipped: it has no
/// strings) on `set`, one report per subject, silence mode and match mode, in that order.
pub fn content(
    set: &ContentSet,
    subjects: &[Subject],
    options: &ContentOptions,
) -> Result<Vec<ContentReport>> {
    let tokenizers: Vec<(&Subject, &dyn Tokenizer)> = subjects
        .iter()
        .filter_map(|s| s.tokenizer().map(|t| (s, t)))
        .collect();
    if tokenizers.is_empty() {
        return Err(Error::BadInput(
            "content compares token strings: give at least one tokenizer".into(),
        ));
    }
    if options.silences.is_empty() || options.matches.is_empty() {
        return Err(Error::BadInput(
            "content needs at least one silence mode and one match mode".into(),
        ));
    }
    let clips = &set.clips[..options
        .max_clips
        .map_or(set.clips.len(), |m| m.min(set.clips.len()))];
    let (groups, group_count) = labels(clips.iter().map(|c| c.group.as_str()));
    let (voices, voice_count) = labels(clips.iter().map(|c| c.voice.as_str()));
    if voice_count < 2 {
        return Err(Error::BadInput(format!(
            "{} clips of {voice_count} voice: content needs at least 2 voices",
            clips.len()
        )));
    }
    let decoding = Instant::now();
    let audio: Vec<Audio> = clips
        .par_iter()
        .map(|c| decode_file(&c.path, &DecodeOptions::default()))
        .collect::<std::result::Result<_, _>>()?;
    let decode_s = decoding.elapsed().as_secs_f64() / tokenizers.len() as f64;

    let mut reports = Vec::new();
    for (subject, tokenizer) in tokenizers {
        for &silence in &options.silences {
            let started = Instant::now();
            let spoken: Vec<&[f32]> = audio
                .iter()
                .map(|a| match silence {
                    Silence::Keep => &a.samples[..],
                    Silence::Trim => &a.samples[a.speech_span()],
                })
                .collect();
            let strings =
                tokenize_recordings(tokenizer, &spoken, WINDOW_SAMPLES, WINDOWS_PER_CALL)?;
            let tokenize_s = started.elapsed().as_secs_f64();
            let refs: Vec<&[Symbol]> = strings.iter().map(|s| s.tokens.as_slice()).collect();
            let n = clips.len().max(1) as f64;
            let seconds_per_clip =
                spoken.iter().map(|s| s.len()).sum::<usize>() as f64 / f64::from(SAMPLE_RATE) / n;
            let tokens_per_clip = refs.iter().map(|s| s.len()).sum::<usize>() as f64 / n;
            for (m, &matching) in options.matches.iter().enumerate() {
                let ranking = Instant::now();
                let metrics = rank(&refs, &groups, &voices, matching);
                // Decoding and tokenizing are counted with the first match mode.
                let before = if m == 0 { decode_s + tokenize_s } else { 0.0 };
                reports.push(ContentReport {
                    subject: subject.info(),
                    protocol: "content",
                    set: set.name.clone(),
                    silence: silence.name(),
                    matching: matching.name(),
                    clips: clips.len(),
                    groups: group_count,
                    voices: voice_count,
                    seconds_per_clip,
                    tokens_per_clip,
                    metrics,
                    wall_s: before + ranking.elapsed().as_secs_f64(),
                });
            }
        }
    }
    Ok(reports)
}

/// The markdown table and a bar chart of P@1, MRR and P@10.
pub fn outputs(reports: &[ContentReport]) -> Outputs {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                label(&r.subject),
                r.set.clone(),
                r.silence.to_string(),
                r.matching.to_string(),
                r.metrics.queries.to_string(),
                r.voices.to_string(),
                r.groups.to_string(),
                format!("{:.2}", r.seconds_per_clip),
                format!("{:.1}", r.tokens_per_clip),
                format!("**{:.3}**", r.metrics.p_at_1),
                format!("{:.3}", r.metrics.mrr),
                format!("{:.3}", r.metrics.p_at_10),
                format!("{:.3}", r.metrics.chance_p_at_1),
                format!("{:.0}", r.wall_s),
            ]
        })
        .collect();
    let names: Vec<String> = reports
        .iter()
        .map(|r| format!("{} {} {}", label(&r.subject), r.silence, r.matching))
        .collect();
    let metric = |name: &str, f: fn(&ContentReport) -> f64| {
        (
            name.to_string(),
            reports.iter().map(|r| Some(f(r))).collect(),
        )
    };
    let chart = plot::bars(
        &format!(
            "Content across voices: {} clips of {}, other voices only",
            reports.first().map_or(0, |r| r.clips),
            reports.first().map_or("", |r| r.set.as_str())
        ),
        &names,
        &[
            metric("P@1", |r| r.metrics.p_at_1),
            metric("MRR", |r| r.metrics.mrr),
            metric("P@10", |r| r.metrics.p_at_10),
        ],
    );
    Outputs {
        json: Outputs::json_of(reports),
        markdown: table(
            &[
                "tokenizer",
                "set",
                "silence",
                "match",
                "queries",
                "voices",
                "groups",
                "s/clip",
                "tokens/clip",
                "P@1",
                "MRR",
                "P@10",
                "chance P@1",
                "wall s",
            ],
            &rows,
        ),
        plots: vec![("content.svg".into(), chart)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_number_in_sorted_order() {
        let (numbers, count) = labels(["b", "a", "b", "c"].into_iter());
        assert_eq!((numbers, count), (vec![1, 0, 1, 2], 3));
    }

    #[test]
    fn ranking_by_hand() {
        // Groups x and y, voices 0, 1, 2. Query 0 (x, voice 0) has candidates 2, 3, 4 (clip 1
        // is its own voice): distances 0.5 (x), 0 (y), 1 (x): P@1 0, first relevant at rank
        // 2, P@10 2/10.
        let strings: Vec<Vec<Symbol>> =
            vec![vec![1, 2], vec![1, 2], vec![1, 3], vec![1, 2], vec![4, 5]];
        let refs: Vec<&[Symbol]> = strings.iter().map(Vec::as_slice).collect();
        let groups = [0, 1, 0, 1, 0];
        let voices = [0, 0, 1, 2, 2];
        let m = rank(&refs, &groups, &voices, Match::Global);
        // Per query (P@1, RR, P@10, chance):
        // 0: cands 2 (x, .5), 3 (y, 0), 4 (x, 1): 0, 1/2, .2, 2/3
        // 1: y; cands 2 (x, .5), 3 (y, 0), 4 (x, 1): 1, 1, .1, 1/3
        // 2: x, voice 1; cands 0 (x, .5), 1 (y, .5), 3 (y, .5), 4 (x, 1): tie of three with
        //    one relevant at the top: 1/3, (1 + 1/2 + 1/3) / 3, .2, 1/2
        // 3: y, voice 2; cands 0 (x, 0), 1 (y, 0), 2 (x, .5): tie of two: 1/2, 3/4, .1, 1/3
        // 4: x, voice 2; cands 0 (x, 1), 1 (y, 1), 2 (x, 1): all tied, two of three relevant:
        //    2/3, 2/3 + 1/3 * 1/2, .2, 2/3
        let p1 = (0.0 + 1.0 + 1.0 / 3.0 + 0.5 + 2.0 / 3.0) / 5.0;
        let rr = (0.5 + 1.0 + (1.0 + 0.5 + 1.0 / 3.0) / 3.0 + 0.75 + 5.0 / 6.0) / 5.0;
        let p10 = (0.2 + 0.1 + 0.2 + 0.1 + 0.2) / 5.0;
        let chance = (2.0 / 3.0 + 1.0 / 3.0 + 0.5 + 1.0 / 3.0 + 2.0 / 3.0) / 5.0;
        assert_eq!((m.queries, m.unanswerable), (5, 0));
        assert!((m.candidates - (3.0 + 3.0 + 4.0 + 3.0 + 3.0) / 5.0).abs() < 1e-12);
        for (got, want) in [
            (m.p_at_1, p1),
            (m.mrr, rr),
            (m.p_at_10, p10),
            (m.chance_p_at_1, chance),
        ] {
            assert!((got - want).abs() < 1e-12, "{m:?}");
        }
    }

    #[test]
    fn a_clip_of_the_same_voice_is_never_a_candidate() {
        // Every voice says both words; its own clips are identical to the query whatever the
        // word, another voice's clips share nothing. Were a same-voice clip a candidate, the
        // identical clip of the other word would come first and P@1 would be 0.
        let strings: Vec<Vec<Symbol>> =
            vec![vec![1, 1, 1], vec![1, 1, 1], vec![2, 2, 2], vec![2, 2, 2]];
        let refs: Vec<&[Symbol]> = strings.iter().map(Vec::as_slice).collect();
        let groups = [0, 1, 0, 1];
        let voices = [0, 0, 1, 1];
        for matching in [Match::Global, Match::Infix] {
            let m = rank(&refs, &groups, &voices, matching);
            // Candidates are the other voice's two clips, both at distance 1: chance.
            assert_eq!(m.candidates, 2.0);
            assert!((m.p_at_1 - 0.5).abs() < 1e-12, "{m:?}");
            assert_eq!(m.chance_p_at_1, 0.5);
        }
        // A word said by one voice only has nothing to be found: left out.
        let m = rank(&refs[..3], &[0, 1, 0], &[0, 0, 1], Match::Global);
        assert_eq!((m.queries, m.unanswerable), (2, 1));
    }

    #[test]
    fn infix_forgives_what_surrounds_the_words() {
        // Voice 0 says x with silence (0) around it; voice 1 says x tightly and y, which
        // shares the silence's length.
        let strings: Vec<Vec<Symbol>> = vec![
            vec![0, 0, 0, 7, 8, 9, 0, 0, 0],
            vec![7, 8, 9],
            vec![0, 0, 0, 5, 0, 0, 0, 0, 0],
        ];
        let refs: Vec<&[Symbol]> = strings.iter().map(Vec::as_slice).collect();
        let (groups, voices) = ([0, 0, 1], [0, 1, 1]);
        assert_eq!(rank(&refs, &groups, &voices, Match::Global).p_at_1, 0.5);
        assert_eq!(rank(&refs, &groups, &voices, Match::Infix).p_at_1, 1.0);
    }
}
