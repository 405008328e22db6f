//! The speech engines we drive as child processes: espeak-ng, flite and (where installed) Piper.
//! Each can be probed, list its voices and speak one sentence into a WAV file.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::voices::Voice;
use super::wav;
use crate::{Audio, Error, Result};

/// What a user should do when an engine is missing.
pub const INSTALL_HINT: &str =
    "run scripts/setup.sh (it installs espeak-ng and flite; `scripts/setup.sh --piper` adds Piper)";

/// Names accepted in `SynthOptions::engines`.
pub const ENGINE_NAMES: [&str; 3] = ["espeak-ng", "flite", "piper"];

/// espeak-ng variants (files in `espeak-ng-data/voices/!v`) that sound like ordinary speakers:
/// the numbered male and female variants and the Klatt formant voices. The novelty ones (whisper,
/// croak, robots, announcer) are left out.
const ESPEAK_VARIANTS: [&str; 17] = [
    "", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
    "klatt3", "klatt4",
];

/// flite's built-in voices worth using; `awb_time` only speaks the time of day.
const FLITE_VOICES: [&str; 5] = ["awb", "kal", "kal16", "rms", "slt"];

/// Where `scripts/setup.sh --piper` puts Piper and its voices; overridden by `PAIRALIGN_PIPER`
/// (the `piper` executable) and `PAIRALIGN_PIPER_VOICES` (a folder of `*.onnx` + `*.onnx.json`).
const PIPER_HOME: &str = "/opt/pairalign-piper";

/// Per-utterance prosody.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prosody {
    /// Speaking rate in words per minute (espeak-ng `-s`); flite and Piper stretch durations by
    /// `175 / rate`, 175 being espeak-ng's default rate.
    pub rate: u32,
    /// espeak-ng pitch 0-99 (`-p`); `None` for engines without a pitch control.
    pub pitch: Option<u32>,
}

/// A speech engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Engine {
    /// espeak-ng, formant synthesis, many languages and variants.
    EspeakNg,
    /// CMU flite, diphone and clustergen voices.
    Flite,
    /// Piper, VITS neural voices run by onnxruntime.
    Piper,
}

impl Engine {
    /// The engine called `name`; an unknown name is reported as a missing engine.
    pub fn from_name(name: &str) -> Result<Engine> {
        match name {
            "espeak-ng" | "espeak" => Ok(Engine::EspeakNg),
            "flite" => Ok(Engine::Flite),
            "piper" => Ok(Engine::Piper),
            _ => Err(Error::MissingEngine {
                engine: name.to_string(),
                hint: format!(
                    "unknown engine; known engines are {}; {INSTALL_HINT}",
                    ENGINE_NAMES.join(", ")
                ),
            }),
        }
    }

    /// The name used in manifests and options.
    pub fn name(self) -> &'static str {
        match self {
            Engine::EspeakNg => "espeak-ng",
            Engine::Flite => "flite",
            Engine::Piper => "piper",
        }
    }

    fn missing(self, why: &str) -> Error {
        Error::MissingEngine {
            engine: self.name().to_string(),
            hint: format!("{why}; {INSTALL_HINT}"),
        }
    }

    /// The voices this engine has installed, sorted; `MissingEngine` if the engine does not run.
    pub fn voices(self) -> Result<Vec<Voice>> {
        let mut voices = match self {
            Engine::EspeakNg => espeak_voices()?,
            Engine::Flite => flite_voices()?,
            Engine::Piper => piper_voices()?,
        };
        voices.sort();
        voices.dedup();
        if voices.is_empty() {
            return Err(self.missing("it runs but has no English voices installed"));
        }
        Ok(voices)
    }

    /// Speaks `text` with `voice`, using `scratch` for the engine's own WAV file (removed after).
    pub fn speak(
        self,
        voice: &Voice,
        text: &str,
        prosody: Prosody,
        scratch: &Path,
    ) -> Result<Audio> {
        let scratch_arg = scratch.to_string_lossy().into_owned();
        let stretch = format!("{:.3}", 175.0 / f64::from(prosody.rate.max(1)));
        match self {
            Engine::EspeakNg => {
                let mut args = vec![
                    "-v".to_string(),
                    voice.name.clone(),
                    "-s".to_string(),
                    prosody.rate.to_string(),
                ];
                if let Some(pitch) = prosody.pitch {
                    args.extend(["-p".to_string(), pitch.to_string()]);
                }
                args.extend(["-w".to_string(), scratch_arg, text.to_string()]);
                run(self, "espeak-ng", &args, None)?;
            }
            Engine::Flite => {
                let args = [
                    "-voice".to_string(),
                    voice.name.clone(),
                    "--setf".to_string(),
                    format!("duration_stretch={stretch}"),
                    "-t".to_string(),
                    text.to_string(),
                    "-o".to_string(),
                    scratch_arg,
                ];
                run(self, "flite", &args, None)?;
            }
            Engine::Piper => {
                let model = piper_voice_dir().join(format!("{}.onnx", voice.name));
                // Zero noise makes VITS deterministic: the same seed gives the same bytes, as for
                // the other engines, at some cost in naturalness.
                let args = [
                    "-m".to_string(),
                    model.to_string_lossy().into_owned(),
                    "-f".to_string(),
                    scratch_arg,
                    "--length-scale".to_string(),
                    stretch,
                    "--noise-scale".to_string(),
                    "0".to_string(),
                    "--noise-w-scale".to_string(),
                    "0".to_string(),
                ];
                run(self, &piper_program(), &args, Some(text))?;
            }
        }
        let audio = wav::read(scratch);
        std::fs::remove_file(scratch).map_err(|e| Error::io(scratch, e))?;
        let audio = audio?;
        if audio.samples.is_empty() {
            return Err(Error::Engine {
                engine: self.name().to_string(),
                reason: format!("voice {} produced no audio for {text:?}", voice.name),
            });
        }
        Ok(audio)
    }
}

/// Runs `program args` (feeding `stdin` if given) and returns its stdout; a program that is not
/// found is a missing engine, a non-zero exit an engine failure with its stderr.
fn run(engine: Engine, program: &str, args: &[String], stdin: Option<&str>) -> Result<String> {
    use std::io::Write;
    use std::process::Stdio;

    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| match e.kind() {
        ErrorKind::NotFound => engine.missing(&format!("`{program}` is not on PATH")),
        _ => Error::Engine {
            engine: engine.name().to_string(),
            reason: format!("cannot start `{program}`: {e}"),
        },
    })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(|e| Error::Engine {
            engine: engine.name().to_string(),
            reason: format!("writing to `{program}`: {e}"),
        })?;
    }
    let output = child.wait_with_output().map_err(|e| Error::Engine {
        engine: engine.name().to_string(),
        reason: format!("waiting for `{program}`: {e}"),
    })?;
    if !output.status.success() {
        return Err(Error::Engine {
            engine: engine.name().to_string(),
            reason: format!(
                "`{program} {}` exited with {}: {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// English espeak-ng languages (`espeak-ng --voices=en`, MBROLA voices excluded since they need
/// the separate mbrola program) crossed with [`ESPEAK_VARIANTS`] that are installed.
fn espeak_voices() -> Result<Vec<Voice>> {
    let engine = Engine::EspeakNg;
    let languages = run(engine, "espeak-ng", &["--voices=en".to_string()], None)?;
    let variants = run(engine, "espeak-ng", &["--voices=variant".to_string()], None)?;
    let installed_variants: Vec<&str> = variants
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(4))
        .filter_map(|file| file.strip_prefix("!v/"))
        .collect();
    let mut bases: Vec<&str> = languages
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (language, file) = (*cols.get(1)?, *cols.get(4)?);
            let usable =
                language.starts_with("en") && !file.starts_with("mb/") && !file.starts_with("!v/");
            usable.then_some(language)
        })
        .collect();
    bases.sort_unstable();
    bases.dedup();
    let mut voices = Vec::new();
    for base in bases {
        for variant in ESPEAK_VARIANTS {
            if variant.is_empty() {
                voices.push(Voice::new(engine.name(), base));
            } else if installed_variants.contains(&variant) {
                voices.push(Voice::new(engine.name(), &format!("{base}+{variant}")));
            }
        }
    }
    Ok(voices)
}

/// The [`FLITE_VOICES`] that `flite -lv` lists.
fn flite_voices() -> Result<Vec<Voice>> {
    let listed = run(Engine::Flite, "flite", &["-lv".to_string()], None)?;
    let listed: Vec<&str> = listed
        .trim()
        .strip_prefix("Voices available:")
        .unwrap_or("")
        .split_whitespace()
        .collect();
    Ok(FLITE_VOICES
        .iter()
        .filter(|v| listed.contains(v))
        .map(|v| Voice::new("flite", v))
        .collect())
}

fn piper_program() -> String {
    if let Some(program) = std::env::var_os("PAIRALIGN_PIPER") {
        return program.to_string_lossy().into_owned();
    }
    let bundled = Path::new(PIPER_HOME).join("bin/piper");
    if bundled.is_file() {
        bundled.to_string_lossy().into_owned()
    } else {
        "piper".to_string()
    }
}

fn piper_voice_dir() -> PathBuf {
    std::env::var_os("PAIRALIGN_PIPER_VOICES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(PIPER_HOME).join("voices"))
}

/// Every `NAME.onnx` with its `NAME.onnx.json` in the Piper voice folder, once `piper` runs.
fn piper_voices() -> Result<Vec<Voice>> {
    let engine = Engine::Piper;
    run(engine, &piper_program(), &["--help".to_string()], None)?;
    let dir = piper_voice_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(engine.missing(&format!("no voice folder {}", dir.display())))
        }
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mut voices = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(&dir, e))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(stem) = name.strip_suffix(".onnx") {
            if dir.join(format!("{name}.json")).is_file() {
                voices.push(Voice::new(engine.name(), stem));
            }
        }
    }
    Ok(voices)
}
