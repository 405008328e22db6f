//! [`Archive`]: the whole product as one value for an application to embed (a media asset
//! manager, a script): a database and its tokenizer together, so that adding and searching can
//! never mix tokenizers.

use std::path::Path;

use pairalign_datasets::decode::resample;
use pairalign_datasets::SAMPLE_RATE;
use pairalign_engine::{Database, DeleteReport, NewDoc, SearchOptions, Symbol, TokenizerRecord};
use pairalign_indexer::{
    archive_report, check_tokenizer as check_for_adding, index_paths, open_or_create_for,
    ArchiveReport, IndexOptions, IndexReport,
};
use pairalign_models::{tokenize_windows, Device, Tokenizer, WINDOWS_PER_CALL, WINDOW_SAMPLES};

use crate::search::{search_audio, search_file, SearchOutcome};
use crate::{Error, Result};

/// A tokenizer an archive can hold and share with indexing threads.
pub type ArchiveTokenizer = Box<dyn Tokenizer + Send + Sync>;

/// A database opened for reading and writing with the tokenizer it records.
///
/// ```no_run
/// use pairalign_query::{clip_search_options, Archive};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut archive = Archive::open("assets.db")?; // created on first use, shipped VQ tokenizer
/// archive.add_file("recordings/interview-0412.flac")?;
/// let hits = archive.search_file("clip.wav", &clip_search_options())?.hits;
/// for hit in &hits {
///     println!("{} {}..{} ms, distance {}", hit.id, hit.start_ms, hit.end_ms, hit.distance);
/// }
/// archive.delete(&["/archive/recordings/old.wav"])?;
/// println!("{:.1} h indexed", archive.stats()?.hours);
/// # Ok(())
/// # }
/// ```
pub struct Archive {
    db: Database,
    tokenizer: ArchiveTokenizer,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("db", &self.db.dir())
            .field("tokenizer", &self.tokenizer.id())
            .finish()
    }
}

impl Archive {
    /// Opens the database in `dir` (creating it when missing) with the shipped VQ tokenizer.
    pub fn open(dir: impl AsRef<Path>) -> Result<Archive> {
        let tokenizer = pairalign_models::shipped::vq(&Device::Cpu)?;
        Archive::open_with(dir, Box::new(tokenizer))
    }

    /// Opens the database in `dir` (creating it when missing) with `tokenizer`; errors when the
    /// database records another tokenizer.
    pub fn open_with(dir: impl AsRef<Path>, tokenizer: ArchiveTokenizer) -> Result<Archive> {
        let db = open_or_create_for(dir, tokenizer.as_ref())?;
        Ok(Archive { db, tokenizer })
    }

    /// The database underneath, for the engine's own calls.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Indexes the audio file or folder at `path` (one document per file, its id the file's
    /// canonical path; files already indexed are skipped; bad files are listed in the report).
    pub fn add_file(&mut self, path: impl AsRef<Path>) -> Result<IndexReport> {
        Ok(index_paths(
            &mut self.db,
            self.tokenizer.as_ref(),
            &[path.as_ref()],
            &IndexOptions::default(),
            |_| {},
        )?)
    }

    /// Adds a recording given as samples (mono, any rate) under `id`, committed before it
    /// returns. Errors when `id` is taken.
    pub fn add_samples(&mut self, id: &str, samples: &[f32], sample_rate: u32) -> Result<()> {
        check_for_adding(&self.db, self.tokenizer.as_ref())?;
        let samples = to_16k(samples, sample_rate)?;
        let ts = tokenize_windows(
            self.tokenizer.as_ref(),
            &samples,
            WINDOW_SAMPLES,
            WINDOWS_PER_CALL,
        )?;
        if self.db.tokenizer().is_none() {
            self.db.set_tokenizer(TokenizerRecord {
                id: self.tokenizer.id().to_string(),
                weights_hash: self.tokenizer.weights_hash().to_string(),
            })?;
        }
        let duration_ms =
            u32::try_from(samples.len() as u64 * 1000 / u64::from(SAMPLE_RATE)).unwrap_or(u32::MAX);
        self.db.add_tokens(&[NewDoc {
            id: id.to_string(),
            tokens: ts.tokens,
            times_ms: Some(ts.times_ms),
            duration_ms: Some(duration_ms),
        }])?;
        Ok(())
    }

    /// Where the clip given as samples (mono, any rate, 0.5 to 60 s) occurs in the archive.
    pub fn search_audio(
        &self,
        samples: &[f32],
        sample_rate: u32,
        options: &SearchOptions,
    ) -> Result<SearchOutcome> {
        let samples = to_16k(samples, sample_rate)?;
        search_audio(&self.db, self.tokenizer.as_ref(), &samples, options)
    }

    /// Where the clip in the audio file at `path` occurs in the archive.
    pub fn search_file(
        &self,
        path: impl AsRef<Path>,
        options: &SearchOptions,
    ) -> Result<SearchOutcome> {
        search_file(&self.db, self.tokenizer.as_ref(), path.as_ref(), options)
    }

    /// Searches with a token string directly (the engine's search).
    pub fn search_tokens(
        &self,
        tokens: &[Symbol],
        options: &SearchOptions,
    ) -> Result<pairalign_engine::SearchOutcome> {
        Ok(self.db.search_tokens(tokens, options)?)
    }

    /// Deletes documents by id (tombstones, committed before it returns).
    pub fn delete<S: AsRef<str>>(&mut self, ids: &[S]) -> Result<DeleteReport> {
        Ok(self.db.delete(ids)?)
    }

    /// Documents, hours, tokens and bytes (`pairalign report` without a comparison).
    pub fn stats(&self) -> Result<ArchiveReport> {
        Ok(archive_report(&self.db)?)
    }
}

/// `samples` at 16 kHz (resampled when given at another rate).
fn to_16k(samples: &[f32], sample_rate: u32) -> Result<std::borrow::Cow<'_, [f32]>> {
    if sample_rate == SAMPLE_RATE {
        return Ok(std::borrow::Cow::Borrowed(samples));
    }
    if sample_rate == 0 {
        return Err(Error::Decode(pairalign_datasets::Error::InvalidInput(
            "a sample rate of 0 Hz".into(),
        )));
    }
    Ok(std::borrow::Cow::Owned(resample(
        samples,
        sample_rate,
        SAMPLE_RATE,
    )?))
}
