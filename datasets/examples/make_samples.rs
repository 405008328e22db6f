//! Renders the bundled sample archive's audio (run by scripts/make_samples.sh, which then
//! converts it to FLAC, MP3 and Ogg Vorbis): short utterances from `synth::render`, one voice
//! each, and long files of several sentences by one voice with the start and end of each.
//!
//! ```text
//! cargo run -p pairalign-datasets --example make_samples -- STAGE_DIR MANIFEST_OUT
//! ```
//! Prints one `staged.wav<TAB>relative/destination.ext` line per file to convert.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use pairalign_datasets::synth::{
    read_manifest, render, sentences, to_16k, write_wav_16k, Engine, Prosody, SynthOptions, Voice,
    MANIFEST,
};
use pairalign_datasets::{Audio, SAMPLE_RATE};
use serde::Serialize;

const SEED: u64 = 2024;
const FORMATS: [&str; 4] = ["wav", "flac", "mp3", "ogg"];
const SHORT_FILES: usize = 16;
const GAP_S: f64 = 0.5;

#[derive(Serialize)]
struct Segment {
    start: f64,
    end: f64,
    text: String,
}

#[derive(Serialize)]
struct SampleEntry {
    path: String,
    format: &'static str,
    engine: String,
    voice: String,
    rate: u32,
    pitch: Option<u32>,
    /// Of the 16 kHz source; lossy encoders may pad a few milliseconds.
    duration: f64,
    text: String,
    /// For the long files: where each sentence starts and ends, seconds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    segments: Vec<Segment>,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [stage, manifest_out] = args.as_slice() else {
        anyhow::bail!("usage: make_samples STAGE_DIR MANIFEST_OUT");
    };
    let stage = PathBuf::from(stage);
    let mut entries = Vec::new();

    // Short utterances: a render, then the first utterance of each of 16 distinct voices.
    let options = SynthOptions {
        out: stage.join("render"),
        hours: 0.05,
        seed: SEED,
        engines: vec!["espeak-ng".into(), "flite".into()],
        jobs: 2,
        ..SynthOptions::default()
    };
    render(&options, |_| {}).context("render")?;
    let rendered = read_manifest(&options.out.join(MANIFEST))?;
    // The first utterance of each voice; every flite voice (there are few), then espeak-ng ones.
    let mut used = HashSet::new();
    let firsts: Vec<_> = rendered
        .into_iter()
        .filter(|e| used.insert((e.engine.clone(), e.voice.clone())))
        .collect();
    let flite = firsts
        .iter()
        .filter(|e| e.engine == "flite")
        .take(SHORT_FILES / 2);
    let mut chosen: Vec<_> = flite.cloned().collect();
    let espeak = firsts.iter().filter(|e| e.engine != "flite");
    chosen.extend(espeak.take(SHORT_FILES - chosen.len()).cloned());
    chosen.sort_by(|a, b| a.id.cmp(&b.id));
    for e in chosen {
        let format = FORMATS[entries.len() % FORMATS.len()];
        let name = format!("{}_{}", e.engine, e.voice.replace('+', "_"));
        println!(
            "{}\tshort/{name}.{format}",
            options.out.join(&e.path).display()
        );
        entries.push(SampleEntry {
            path: format!("short/{name}.{format}"),
            format,
            engine: e.engine,
            voice: e.voice,
            rate: e.rate,
            pitch: e.pitch,
            duration: e.duration,
            text: e.text,
            segments: Vec::new(),
        });
    }

    // Long files: 12 sentences by one voice, half-second gaps, one file per format.
    let long_voices = [
        (Voice::new("espeak-ng", "en-us+m3"), Some(45)),
        (Voice::new("flite", "slt"), None),
        (Voice::new("espeak-ng", "en-gb+f2"), Some(55)),
        (Voice::new("flite", "rms"), None),
    ];
    let texts = sentences(SEED + 1, 12 * long_voices.len());
    for (k, ((voice, pitch), format)) in long_voices.iter().zip(FORMATS).enumerate() {
        let engine = Engine::from_name(&voice.engine)?;
        let prosody = Prosody {
            rate: 165,
            pitch: *pitch,
        };
        let mut samples = Vec::new();
        let mut segments = Vec::new();
        for text in &texts[12 * k..12 * (k + 1)] {
            let scratch = stage.join(format!("long{k}.scratch.wav"));
            let audio = to_16k(&engine.speak(voice, text, prosody, &scratch)?)?;
            let start = samples.len() as f64 / f64::from(SAMPLE_RATE);
            samples.extend_from_slice(&audio.samples);
            let end = samples.len() as f64 / f64::from(SAMPLE_RATE);
            segments.push(Segment {
                start,
                end,
                text: text.clone(),
            });
            samples.resize(
                samples.len() + (GAP_S * f64::from(SAMPLE_RATE)) as usize,
                0.0,
            );
        }
        let audio = Audio::new(samples, SAMPLE_RATE);
        let name = format!("long_{}_{}", voice.engine, voice.name.replace('+', "_"));
        let staged = stage.join(format!("{name}.wav"));
        write_wav_16k(&staged, &audio)?;
        println!("{}\tlong/{name}.{format}", staged.display());
        entries.push(SampleEntry {
            path: format!("long/{name}.{format}"),
            format,
            engine: voice.engine.clone(),
            voice: voice.name.clone(),
            rate: prosody.rate,
            pitch: prosody.pitch,
            duration: audio.duration_s(),
            text: segments
                .iter()
                .map(|s| s.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            segments,
        });
    }

    let mut lines = String::new();
    for e in &entries {
        lines.push_str(&serde_json::to_string(e)?);
        lines.push('\n');
    }
    std::fs::write(Path::new(manifest_out), lines).context("writing the samples manifest")?;
    Ok(())
}
