//! The data a run trains on: a feature cache given as it is, or one built once from a corpus
//! into the run's output folder (`OUT/features.feat`: 2 views per 3 s clip, the defaults of
//! `pairalign features`), so that a resumed run reads the same clips.

use std::path::{Path, PathBuf};

use pairalign_datasets::cache::{build_cache, CacheBuildOptions};
use pairalign_datasets::corpus::{read_folder, read_manifest_split, Split};
use pairalign_datasets::decode::probe_duration;

use crate::{Error, Result};

/// The cache a run builds from a corpus, in its output folder.
pub const FEATURES_FILE: &str = "features.feat";

/// What [`training_cache`] meets on its way, for a caller that reports progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheEvent<'a> {
    /// The cache an earlier run built in the output folder is used as it is.
    Reused(&'a Path),
    /// A file of the corpus could not be read; it is left out (the path and why).
    Skipped(&'a Path, &'a str),
    /// The cache is about to be built from this many utterances (a long step).
    Building {
        /// The cache file being written.
        cache: &'a Path,
        /// Utterances of the corpus.
        utterances: usize,
    },
    /// An utterance failed while the cache was built; it is left out (its id and why).
    Failed(&'a str, &'a str),
}

/// The feature cache to train on: `data` itself when it is one (a `.feat` file), else
/// `out/features.feat`, built from the corpus at `data` (a synthetic corpus's manifest.jsonl,
/// its training voices only, or a folder of audio) unless an earlier run built it already.
pub fn training_cache(
    data: &Path,
    out: &Path,
    mut on_event: impl FnMut(CacheEvent<'_>),
) -> Result<PathBuf> {
    if data.is_file() && data.extension().is_some_and(|e| e == "feat") {
        return Ok(data.to_path_buf());
    }
    let cache = out.join(FEATURES_FILE);
    if cache.is_file() {
        on_event(CacheEvent::Reused(&cache));
        return Ok(cache);
    }
    let corpus = if data.is_file() {
        read_manifest_split(data, Some(Split::Train))?
    } else if data.is_dir() {
        read_folder(data, &probe_duration)?
    } else {
        return Err(Error::NotTrainingData(data.to_path_buf()));
    };
    for (path, why) in &corpus.problems {
        on_event(CacheEvent::Skipped(path, why));
    }
    on_event(CacheEvent::Building {
        cache: &cache,
        utterances: corpus.utterances.len(),
    });
    let report = build_cache(&corpus.utterances, &cache, &CacheBuildOptions::default())?;
    for (id, why) in &report.failed {
        on_event(CacheEvent::Failed(id, why));
    }
    Ok(cache)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_is_used_as_it_is_and_other_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let feat = dir.path().join("given.feat");
        std::fs::write(&feat, b"").unwrap();
        let mut events = 0;
        let got = training_cache(&feat, dir.path(), |_| events += 1).unwrap();
        assert_eq!((got, events), (feat, 0));
        // A cache built by an earlier run is reused, whatever the data says.
        let built = dir.path().join(FEATURES_FILE);
        std::fs::write(&built, b"").unwrap();
        let mut seen = vec![];
        let got = training_cache(&dir.path().join("corpus"), dir.path(), |e| {
            seen.push(format!("{e:?}"))
        })
        .unwrap();
        assert_eq!(got, built);
        assert_eq!(seen, [format!("{:?}", CacheEvent::Reused(&built))]);
        let err =
            training_cache(&dir.path().join("nope"), &dir.path().join("run"), |_| {}).unwrap_err();
        assert!(matches!(err, Error::NotTrainingData(_)), "{err}");
        assert!(err.to_string().starts_with("--data "), "{err}");
    }
}
