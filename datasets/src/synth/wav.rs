//! WAV files of synthesis: reading what an engine wrote, resampling it to 16 kHz, and writing the
//! 16 kHz mono 16-bit files that the manifest lists.

use std::path::Path;

use crate::{Audio, Error, Result, SAMPLE_RATE};

/// Reads a PCM WAV file (integer or float samples, channels averaged to mono).
pub fn read(path: &Path) -> Result<Audio> {
    let not_audio = |e: hound::Error| match e {
        hound::Error::IoError(e) => Error::io(path, e),
        other => Error::NotAudio {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    };
    let mut reader = hound::WavReader::open(path).map_err(not_audio)?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|s| s as f32 * scale))
                .collect::<Result<_, _>>()
        }
    }
    .map_err(not_audio)?;
    let samples = interleaved
        .chunks(channels)
        .map(|frame| frame.iter().sum::<f32>() / frame.len() as f32)
        .collect();
    Ok(Audio::new(samples, spec.sample_rate))
}

/// Writes `audio` (which must be at 16 kHz) as mono 16-bit PCM. hound writes no timestamps, so
/// the same samples always give the same bytes.
pub fn write_16k(path: &Path, audio: &Audio) -> Result<()> {
    if audio.sample_rate != SAMPLE_RATE {
        return Err(Error::InvalidInput(format!(
            "{}: writing {} Hz audio as a 16 kHz file",
            path.display(),
            audio.sample_rate
        )));
    }
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let io_or = |e: hound::Error| match e {
        hound::Error::IoError(e) => Error::io(path, e),
        other => Error::io(path, std::io::Error::other(other.to_string())),
    };
    let mut writer = hound::WavWriter::create(path, spec).map_err(io_or)?;
    for &s in &audio.samples {
        writer.write_sample(to_i16(s)).map_err(io_or)?;
    }
    writer.finalize().map_err(io_or)
}

fn to_i16(s: f32) -> i16 {
    (s.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// Resamples engine output to 16 kHz with the front end's resampler (`decode::resample`: rubato's
/// FFT resampler, exact rational ratio, delay removed, deterministic).
pub fn to_16k(audio: &Audio) -> Result<Audio> {
    if audio.sample_rate == SAMPLE_RATE || audio.samples.is_empty() {
        return Ok(Audio::new(audio.samples.clone(), SAMPLE_RATE));
    }
    let samples = crate::decode::resample(&audio.samples, audio.sample_rate, SAMPLE_RATE)?;
    Ok(Audio::new(samples, SAMPLE_RATE))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 440 Hz tone at 22.05 kHz keeps its length, its level and (within half a sample) its
    /// timing at 16 kHz.
    #[test]
    fn resampled_tone_matches_the_oracle() {
        let tone = |rate: u32, n: usize| -> Vec<f32> {
            (0..n)
                .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin() * 0.5)
                .collect()
        };
        let input = Audio::new(tone(22_050, 22_050), 22_050);
        let out = to_16k(&input).expect("resample");
        assert_eq!(out.samples.len(), 16_000);
        let expected = tone(16_000, 16_000);
        // Away from the edges, where the zero padding rings.
        let err = out.samples[1_000..15_000]
            .iter()
            .zip(&expected[1_000..15_000])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
        let level = rms(&out.samples[1_000..15_000]) / rms(&expected[1_000..15_000]);
        assert!((level - 1.0).abs() < 0.01, "level ratio {level}");
        // 0.05 at 440 Hz and amplitude 0.5 is a time offset of about half a 16 kHz sample.
        assert!(err < 0.05, "max error {err}");
    }
}
