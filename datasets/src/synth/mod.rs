//! Synthetic multi-voice speech (shared/DESIGN.md section 7): a generated text corpus rendered by
//! espeak-ng, flite and Piper voices with per-utterance rate and pitch, voices split into train
//! and held-out, written as 16 kHz WAV files and a `manifest.jsonl`; the same seed gives the same
//! bytes. A sentence may be rendered by several distinct voices
//! ([`SynthOptions::voices_per_sentence`]): the same words in different voices, for measuring
//! content across voices (`pairalign eval content`).
//!
//! Layout of an output folder:
//!
//! ```text
//! OUT/manifest.jsonl          one ManifestEntry per line, in id order
//! OUT/wav/0000/utt0000000.wav 16 kHz mono 16-bit PCM, 1,000 files per folder
//! ```

mod engines;
mod text;
mod voices;
mod wav;

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use self::engines::{Engine, Prosody, ENGINE_NAMES, INSTALL_HINT};
use self::text::Mixer;
pub use self::text::{sentences, MAX_WORDS, MIN_WORDS};
pub use self::voices::{split_voices, Voice, VoiceSplit};
pub use self::wav::{read as read_wav, to_16k, write_16k as write_wav_16k};
use crate::{Error, Result, SAMPLE_RATE};

/// File name of the manifest inside the output folder.
pub const MANIFEST: &str = "manifest.jsonl";
/// espeak-ng rates (words per minute) drawn per utterance, inclusive.
pub const RATE_RANGE: (u32, u32) = (140, 200);
/// espeak-ng pitches (0-99) drawn per utterance, inclusive.
pub const PITCH_RANGE: (u32, u32) = (30, 70);
/// The most voices [`SynthOptions::voices_per_sentence`] may ask for.
pub const MAX_VOICES_PER_SENTENCE: usize = 64;

/// What to render.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthOptions {
    /// Output folder (created if needed); receives `manifest.jsonl` and `wav/`.
    pub out: PathBuf,
    /// Target hours of audio; utterances are planned from an estimate of their length, so the
    /// rendered total is close to, not exactly, this.
    pub hours: f64,
    /// Seed of the text, the voice of each utterance, its prosody and the voice split.
    pub seed: u64,
    /// Seed of the sentences alone, when set: the voice split and the draws of voices and
    /// prosody still follow `seed`, so held-out voices of a training corpus (`seed`) can say
    /// sentences that corpus does not hold (an evaluation set of content across voices).
    pub text_seed: Option<u64>,
    /// Engines to use (`espeak-ng`, `flite`, `piper`); missing ones are skipped and reported.
    pub engines: Vec<String>,
    /// Fraction of each engine's voices held out, in `[0, 1)`.
    pub heldout_fraction: f64,
    /// Utterances rendered in parallel; 0 means one per core.
    pub jobs: usize,
    /// Distinct voices that speak each sentence, all on the same side of the voice split (at
    /// least 1). Its utterances are consecutive in the manifest; 1 renders what earlier
    /// versions rendered for a seed.
    pub voices_per_sentence: usize,
    /// Render only the voices of this side of the split (the split itself does not change);
    /// `None`: both sides.
    pub only: Option<Split>,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            out: PathBuf::from("synth"),
            hours: 1.0,
            seed: 0,
            text_seed: None,
            engines: vec!["espeak-ng".to_string(), "flite".to_string()],
            heldout_fraction: 0.2,
            jobs: 0,
            voices_per_sentence: 1,
            only: None,
        }
    }
}

/// Progress, reported after every utterance.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SynthProgress {
    /// Utterances written so far.
    pub done: usize,
    /// Utterances planned in all.
    pub planned: usize,
    /// Seconds of audio written so far.
    pub seconds: f64,
}

/// What a render produced.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SynthReport {
    /// Utterances written.
    pub utterances: usize,
    /// Distinct sentences among them (`utterances / voices_per_sentence`).
    pub sentences: usize,
    /// Seconds of audio written.
    pub seconds: f64,
    /// Ids (`engine:name`) of the voices whose utterances are marked `train`.
    pub voices_train: Vec<String>,
    /// Ids of the held-out voices.
    pub voices_heldout: Vec<String>,
    /// Wall-clock seconds the render took.
    pub wall_s: f64,
    /// Requested engines that were not used, with the reason.
    pub skipped_engines: Vec<(String, String)>,
}

/// Which side of the voice split an utterance is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Spoken by a training voice.
    Train,
    /// Spoken by a held-out voice.
    Heldout,
}

/// One line of `manifest.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// `uttNNNNNNN`, the utterance number.
    pub id: String,
    /// What was spoken.
    pub text: String,
    /// The engine name.
    pub engine: String,
    /// The voice name within the engine.
    pub voice: String,
    /// Speaking rate, words per minute.
    pub rate: u32,
    /// espeak-ng pitch 0-99; `null` for engines without a pitch control.
    pub pitch: Option<u32>,
    /// Duration of the WAV file in seconds (samples / 16000).
    pub duration: f64,
    /// `train` or `heldout`.
    pub split: Split,
    /// The WAV file, relative to the output folder, with `/` separators.
    pub path: String,
}

/// The voices of `engines`, sorted; `MissingEngine` if any of them is not installed.
pub fn available_voices(engines: &[String]) -> Result<Vec<Voice>> {
    let mut voices = Vec::new();
    for name in engines {
        voices.extend(Engine::from_name(name)?.voices()?);
    }
    voices.sort();
    voices.dedup();
    Ok(voices)
}

/// One utterance to render.
#[derive(Clone, Debug)]
struct Planned {
    index: usize,
    text: String,
    voice: usize,
    prosody: Prosody,
}

/// Renders `options.hours` of speech into `options.out`, calling `progress` after each utterance.
///
/// Requested engines that are not installed are skipped and listed in the report; if none is
/// installed the result is `MissingEngine`.
pub fn render(
    options: &SynthOptions,
    progress: impl Fn(SynthProgress) + Sync,
) -> Result<SynthReport> {
    let started = Instant::now();
    validate(options)?;
    let mut voices = Vec::new();
    let mut missing = Vec::new();
    let mut engines: Vec<String> = options.engines.clone();
    engines.dedup();
    for name in &engines {
        match Engine::from_name(name).and_then(Engine::voices) {
            Ok(found) => voices.extend(found),
            Err(Error::MissingEngine { engine, hint }) => missing.push((engine, hint)),
            Err(e) => return Err(e),
        }
    }
    if voices.is_empty() {
        let (engine, hint) = if missing.len() == 1 {
            missing.remove(0)
        } else {
            let why: Vec<String> = missing
                .iter()
                .map(|(engine, hint)| {
                    let why = hint.replace(INSTALL_HINT, "");
                    format!("{engine}: {}", why.trim_end_matches([';', ' ']))
                })
                .collect();
            (
                engines.join(","),
                format!(
                    "none of them is installed ({}); {INSTALL_HINT}",
                    why.join("; ")
                ),
            )
        };
        return Err(Error::MissingEngine { engine, hint });
    }
    let skipped: Vec<(String, String)> = missing
        .into_iter()
        .map(|(engine, hint)| {
            (
                engine.clone(),
                Error::MissingEngine { engine, hint }.to_string(),
            )
        })
        .collect();
    voices.sort();
    voices.dedup();
    let split = split_voices(&voices, options.seed, options.heldout_fraction);
    let plan = plan(options, &voices, &split)?;

    let out = &options.out;
    let scratch = out.join(".scratch");
    for dir in [out.clone(), scratch.clone()] {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    for folder in 0..plan.len().div_ceil(1000) {
        let dir = out.join(format!("wav/{folder:04}"));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }

    let done = AtomicUsize::new(0);
    let samples_done = AtomicU64::new(0);
    let render_one = |p: &Planned| -> Result<ManifestEntry> {
        let voice = &voices[p.voice];
        let engine = Engine::from_name(&voice.engine)?;
        let id = format!("utt{:07}", p.index);
        let raw = engine.speak(
            voice,
            &p.text,
            p.prosody,
            &scratch.join(format!("{id}.wav")),
        )?;
        let audio = to_16k(&raw)?;
        let path = format!("wav/{:04}/{id}.wav", p.index / 1000);
        write_wav_16k(&out.join(&path), &audio)?;
        let n = audio.samples.len() as u64;
        let total = samples_done.fetch_add(n, Ordering::Relaxed) + n;
        let count = done.fetch_add(1, Ordering::Relaxed) + 1;
        progress(SynthProgress {
            done: count,
            planned: plan.len(),
            seconds: total as f64 / f64::from(SAMPLE_RATE),
        });
        Ok(ManifestEntry {
            id,
            text: p.text.clone(),
            engine: voice.engine.clone(),
            voice: voice.name.clone(),
            rate: p.prosody.rate,
            pitch: p.prosody.pitch,
            duration: audio.duration_s(),
            split: if split.is_heldout(voice) {
                Split::Heldout
            } else {
                Split::Train
            },
            path,
        })
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.jobs)
        .build()
        .map_err(|e| Error::InvalidInput(format!("cannot start {} jobs: {e}", options.jobs)))?;
    let entries: Vec<ManifestEntry> =
        pool.install(|| plan.par_iter().map(render_one).collect::<Result<_>>())?;
    write_manifest(&out.join(MANIFEST), &entries)?;
    // Best effort: the folder is empty unless an engine failed mid-render.
    let _ = std::fs::remove_dir(&scratch);

    let sentences = entries
        .iter()
        .map(|e| e.text.as_str())
        .collect::<std::collections::HashSet<_>>()
        .len();
    Ok(SynthReport {
        utterances: entries.len(),
        sentences,
        seconds: entries.iter().map(|e| e.duration).sum(),
        voices_train: split.train.iter().map(Voice::id).collect(),
        voices_heldout: split.heldout.iter().map(Voice::id).collect(),
        wall_s: started.elapsed().as_secs_f64(),
        skipped_engines: skipped,
    })
}

fn validate(options: &SynthOptions) -> Result<()> {
    if !(options.hours.is_finite() && options.hours > 0.0 && options.hours <= 100_000.0) {
        return Err(Error::InvalidInput(format!(
            "hours must be in (0, 100000], got {}",
            options.hours
        )));
    }
    if !(0.0..1.0).contains(&options.heldout_fraction) {
        return Err(Error::InvalidInput(format!(
            "heldout_fraction must be in [0, 1), got {}",
            options.heldout_fraction
        )));
    }
    if !(1..=MAX_VOICES_PER_SENTENCE).contains(&options.voices_per_sentence) {
        return Err(Error::InvalidInput(format!(
            "voices_per_sentence must be in 1..={MAX_VOICES_PER_SENTENCE}, got {}",
            options.voices_per_sentence
        )));
    }
    if options.engines.is_empty() {
        return Err(Error::InvalidInput(format!(
            "no engines requested; choose from {}",
            ENGINE_NAMES.join(", ")
        )));
    }
    Ok(())
}

/// Chooses text, voices and prosody for each sentence until the estimated duration reaches the
/// target, then lists one utterance per voice of the sentence. The first voice of a sentence is
/// drawn from every voice (or from the side `options.only` names); the others, distinct, from
/// the voices on the first one's side of `split`, so that a held-out sentence is spoken by
/// held-out voices only. Each draw takes an engine first (see [`draw_voice`]), then one of its
/// voices. Sentence `s` draws from the stream `s + 1` of the seed, so with one voice per
/// sentence the plan is the one earlier versions made.
fn plan(options: &SynthOptions, voices: &[Voice], split: &VoiceSplit) -> Result<Vec<Planned>> {
    let per_sentence = options.voices_per_sentence.max(1);
    let heldout: Vec<bool> = voices.iter().map(|v| split.is_heldout(v)).collect();
    let first_pool: Vec<usize> = (0..voices.len())
        .filter(|&v| {
            options
                .only
                .is_none_or(|side| (side == Split::Heldout) == heldout[v])
        })
        .collect();
    let side_name = |h: bool| if h { "held-out" } else { "training" };
    if first_pool.is_empty() {
        return Err(Error::InvalidInput(format!(
            "no {} voice to render with (held-out fraction {})",
            side_name(options.only == Some(Split::Heldout)),
            options.heldout_fraction
        )));
    }
    for side in [false, true] {
        let n = first_pool.iter().filter(|&&v| heldout[v] == side).count();
        if n > 0 && n < per_sentence {
            return Err(Error::InvalidInput(format!(
                "{per_sentence} voices per sentence, but only {n} {} voices",
                side_name(side)
            )));
        }
    }

    let target_s = options.hours * 3600.0;
    let mut estimated = 0.0;
    let mut plan = Vec::new();
    let mut texts = text::SentenceStream::new(options.text_seed.unwrap_or(options.seed));
    let mut sentence = 0u64;
    while estimated < target_s {
        let Some(text) = texts.next() else { break };
        sentence += 1;
        let mut r = Mixer::new(options.seed, sentence);
        let mut pool = first_pool.clone();
        for _ in 0..per_sentence {
            let voice = draw_voice(&mut r, voices, &pool);
            let rate = r.range(RATE_RANGE.0, RATE_RANGE.1);
            let pitch = r.range(PITCH_RANGE.0, PITCH_RANGE.1);
            let pitch = (voices[voice].engine == "espeak-ng").then_some(pitch);
            // Words at `rate` per minute plus the engines' leading and trailing silence; the
            // two constants are a least-squares fit to 480 rendered utterances (espeak-ng and
            // flite).
            estimated +=
                0.86 * text.split_whitespace().count() as f64 * 60.0 / f64::from(rate) + 0.38;
            plan.push(Planned {
                index: plan.len(),
                text: text.clone(),
                voice,
                prosody: Prosody { rate, pitch },
            });
            pool.retain(|&v| v != voice && heldout[v] == heldout[voice]);
        }
    }
    Ok(plan)
}

/// One voice of `pool` (indices into `voices`, ascending, not empty). An engine is drawn first,
/// with probability halfway between uniform over the pool's engines and proportional to its
/// voice count in the pool, so that an engine with a few voices (flite) is not drowned by one
/// with a hundred (espeak-ng); then one of its voices uniformly.
fn draw_voice(r: &mut Mixer, voices: &[Voice], pool: &[usize]) -> usize {
    let mut by_engine: Vec<(&str, Vec<usize>)> = Vec::new();
    for &i in pool {
        match by_engine.last_mut() {
            Some((engine, members)) if *engine == voices[i].engine => members.push(i),
            _ => by_engine.push((&voices[i].engine, vec![i])),
        }
    }
    let engines = by_engine.len() as f64;
    let total = pool.len() as f64;
    // Weights in parts per million, cumulative.
    let mut cumulative = Vec::with_capacity(by_engine.len());
    let mut acc = 0u64;
    for (_, members) in &by_engine {
        acc += (500_000.0 * (1.0 / engines + members.len() as f64 / total)).round() as u64;
        cumulative.push(acc);
    }
    let draw = r.next_u64() % acc.max(1);
    let engine = cumulative.iter().position(|&c| draw < c).unwrap_or(0);
    let members = &by_engine[engine].1;
    members[r.below(members.len())]
}

/// Writes the manifest, one JSON object per line.
pub fn write_manifest(path: &Path, entries: &[ManifestEntry]) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = BufWriter::new(file);
    for entry in entries {
        let line = serde_json::to_string(entry)
            .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
        writeln!(w, "{line}").map_err(|e| Error::io(path, e))?;
    }
    w.flush().map_err(|e| Error::io(path, e))
}

/// Reads a manifest written by [`write_manifest`].
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestEntry>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut entries = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let entry = serde_json::from_str(&line).map_err(|e| Error::Corrupt {
            path: path.to_path_buf(),
            section: "manifest line",
            reason: format!("line {}: {e}", n + 1),
        })?;
        entries.push(entry);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn voices() -> Vec<Voice> {
        let mut voices: Vec<Voice> = (0..30)
            .map(|i| Voice::new("espeak-ng", &format!("en-us+v{i:02}")))
            .collect();
        voices.extend(["awb", "kal", "kal16", "rms", "slt"].map(|n| Voice::new("flite", n)));
        voices.sort();
        voices
    }

    fn options(voices_per_sentence: usize, only: Option<Split>) -> SynthOptions {
        SynthOptions {
            hours: 0.2,
            seed: 5,
            voices_per_sentence,
            only,
            ..SynthOptions::default()
        }
    }

    /// The planner as it was before sentences could have several voices: the oracle that one
    /// voice per sentence still gives the same corpus for a seed.
    fn plan_before_voices_per_sentence(options: &SynthOptions, voices: &[Voice]) -> Vec<Planned> {
        let mut by_engine: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, v) in voices.iter().enumerate() {
            match by_engine.last_mut() {
                Some((engine, members)) if *engine == v.engine => members.push(i),
                _ => by_engine.push((v.engine.clone(), vec![i])),
            }
        }
        let engines = by_engine.len() as f64;
        let total = voices.len() as f64;
        let mut cumulative = Vec::with_capacity(by_engine.len());
        let mut acc = 0u64;
        for (_, members) in &by_engine {
            acc += (500_000.0 * (1.0 / engines + members.len() as f64 / total)).round() as u64;
            cumulative.push(acc);
        }
        let target_s = options.hours * 3600.0;
        let mut estimated = 0.0;
        let mut plan = Vec::new();
        let mut texts = text::SentenceStream::new(options.seed);
        while estimated < target_s {
            let index = plan.len();
            let mut r = Mixer::new(options.seed, index as u64 + 1);
            let draw = r.next_u64() % acc;
            let engine = cumulative.iter().position(|&c| draw < c).unwrap_or(0);
            let members = &by_engine[engine].1;
            let voice = members[r.below(members.len())];
            let rate = r.range(RATE_RANGE.0, RATE_RANGE.1);
            let pitch = r.range(PITCH_RANGE.0, PITCH_RANGE.1);
            let pitch = (voices[voice].engine == "espeak-ng").then_some(pitch);
            let Some(text) = texts.next() else { break };
            estimated +=
                0.86 * text.split_whitespace().count() as f64 * 60.0 / f64::from(rate) + 0.38;
            plan.push(Planned {
                index,
                text,
                voice,
                prosody: Prosody { rate, pitch },
            });
        }
        plan
    }

    fn summary(plan: &[Planned]) -> Vec<(usize, String, usize, Prosody)> {
        plan.iter()
            .map(|p| (p.index, p.text.clone(), p.voice, p.prosody))
            .collect()
    }

    #[test]
    fn one_voice_per_sentence_plans_what_earlier_versions_planned() {
        let voices = voices();
        let split = split_voices(&voices, 5, 0.2);
        let options = options(1, None);
        let plan = plan(&options, &voices, &split).unwrap();
        assert!(plan.len() > 100, "{}", plan.len());
        assert_eq!(
            summary(&plan),
            summary(&plan_before_voices_per_sentence(&options, &voices))
        );
    }

    #[test]
    fn each_sentence_has_k_distinct_voices_on_one_side_of_the_split() {
        let voices = voices();
        let split = split_voices(&voices, 5, 0.2);
        for (k, only) in [
            (3, None),
            (4, Some(Split::Heldout)),
            (2, Some(Split::Train)),
        ] {
            let plan = plan(&options(k, only), &voices, &split).unwrap();
            assert_eq!(plan.len() % k, 0, "whole sentences only");
            let mut sides = HashSet::new();
            for sentence in plan.chunks(k) {
                let text = &sentence[0].text;
                assert!(sentence.iter().all(|p| &p.text == text));
                assert_eq!(plan.iter().filter(|p| &p.text == text).count(), k);
                let distinct: HashSet<usize> = sentence.iter().map(|p| p.voice).collect();
                assert_eq!(distinct.len(), k, "{text}");
                let heldout: HashSet<bool> = sentence
                    .iter()
                    .map(|p| split.is_heldout(&voices[p.voice]))
                    .collect();
                assert_eq!(heldout.len(), 1, "{text}: voices on both sides");
                sides.extend(heldout);
            }
            match only {
                Some(side) => assert_eq!(sides, HashSet::from([side == Split::Heldout])),
                None => assert_eq!(sides.len(), 2, "both sides get sentences"),
            }
            assert!(plan.iter().enumerate().all(|(i, p)| p.index == i));
        }
    }

    /// A text seed changes the sentences only: the same voices and prosody say other texts.
    #[test]
    fn a_text_seed_changes_the_sentences_and_nothing_else() {
        let voices = voices();
        let split = split_voices(&voices, 5, 0.2);
        let base = options(4, Some(Split::Heldout));
        let same = plan(&base, &voices, &split).unwrap();
        let other = SynthOptions {
            text_seed: Some(105),
            ..base.clone()
        };
        let moved = plan(&other, &voices, &split).unwrap();
        let n = same.len().min(moved.len());
        assert!(n > 40, "{n}");
        let voices_of = |p: &[Planned]| {
            p[..n]
                .iter()
                .map(|p| (p.voice, p.prosody))
                .collect::<Vec<_>>()
        };
        assert_eq!(voices_of(&same), voices_of(&moved));
        let texts: HashSet<&str> = same.iter().map(|p| p.text.as_str()).collect();
        let shared = moved
            .iter()
            .filter(|p| texts.contains(p.text.as_str()))
            .count();
        assert!(
            shared * 10 < moved.len(),
            "{shared} of {} texts shared",
            moved.len()
        );
        // Its own seed as the text seed is the corpus without one.
        let explicit = SynthOptions {
            text_seed: Some(5),
            ..base.clone()
        };
        assert_eq!(
            summary(&plan(&explicit, &voices, &split).unwrap()),
            summary(&same)
        );
    }

    #[test]
    fn too_few_voices_for_k_is_an_error() {
        let voices = voices();
        let split = split_voices(&voices, 5, 0.2);
        // 7 held-out voices (6 espeak-ng, 1 flite).
        assert_eq!(split.heldout.len(), 7);
        assert!(plan(&options(7, Some(Split::Heldout)), &voices, &split).is_ok());
        let err = plan(&options(8, Some(Split::Heldout)), &voices, &split).unwrap_err();
        assert!(err.to_string().contains("only 7 held-out voices"), "{err}");
        let none_held_out = split_voices(&voices, 5, 0.0);
        let err = plan(&options(1, Some(Split::Heldout)), &voices, &none_held_out).unwrap_err();
        assert!(err.to_string().contains("no held-out voice"), "{err}");
    }
}
