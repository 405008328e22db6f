//! What the indexer's test files share: a small deterministic tokenizer whose token strings are
//! known, archives of WAV files made for it, and catalog listings.

#![allow(dead_code)] // Each test file uses its part.

use std::path::{Path, PathBuf};

use pairalign_datasets::{Audio, SAMPLE_RATE};
use pairalign_models::{TokenString, Tokenizer};

/// Two tokens per window: the window's length in tenths of a second and its loudness level
/// (0 to 9), at 0 and 100 ms into the window.
pub struct Levels {
    pub hash: &'static str,
}

impl Tokenizer for Levels {
    fn id(&self) -> &str {
        "levels"
    }
    fn weights_hash(&self) -> &str {
        self.hash
    }
    fn vocab_size(&self) -> u32 {
        64
    }
    fn tokenize(&self, batch: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
        Ok(batch
            .iter()
            .map(|w| {
                let peak = w.iter().fold(0f32, |m, s| m.max(s.abs()));
                TokenString {
                    tokens: vec![(w.len() / 1600) as u16, (peak * 9.0).round() as u16],
                    times_ms: vec![0, 100],
                }
            })
            .collect())
    }
    fn tokenize_mels(&self, _: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
        Ok(Vec::new())
    }
}

pub const LEVELS: Levels = Levels { hash: "aaaa" };

/// Writes a file of `seconds` whose loudness is `level / 9` in window `i` for `levels[i]`.
pub fn write_levels(path: &Path, levels: &[u16], last_window_s: f64) {
    let mut samples = Vec::new();
    for (i, &level) in levels.iter().enumerate() {
        let len = if i + 1 == levels.len() {
            (last_window_s * f64::from(SAMPLE_RATE)) as usize
        } else {
            3 * SAMPLE_RATE as usize
        };
        let amp = f32::from(level) / 9.0;
        samples.extend((0..len).map(|j| if j % 2 == 0 { amp } else { -amp }));
    }
    pairalign_datasets::synth::write_wav_16k(path, &Audio::new(samples, SAMPLE_RATE)).unwrap();
}

pub fn archive(dir: &Path, files: usize) -> PathBuf {
    let root = dir.join("archive");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    for i in 0..files {
        let sub = if i % 2 == 0 { "" } else { "sub" };
        let levels = [(i % 9) as u16 + 1, 5, 9];
        write_levels(&root.join(sub).join(format!("f{i:02}.wav")), &levels, 1.5);
    }
    root
}

/// The catalog's entries, sorted by id, without the time they were written (a rebuilt entry is
/// written at the repair).
pub fn listing(db: &Path) -> Vec<pairalign_indexer::Asset> {
    let mut all = pairalign_catalog::CatalogReader::open(db)
        .unwrap()
        .unwrap()
        .all()
        .unwrap();
    for asset in &mut all {
        asset.indexed_at.clear();
    }
    all.sort_by(|a, b| a.id.cmp(&b.id));
    all
}
