//! The adapter over `pairalign-query`'s archive API: the one place that knows how the archive is
//! opened, written and read. [`Writable`] is the writer's (one per server, it holds the
//! database's write lock); [`Snapshot`] is a committed, read-only state that searches and GETs
//! use from any thread while the writer goes on.
//!
//! Interim version, against the API on main before the metadata catalog: a snapshot is a
//! `Database::open_read_only` of the last commit; assets carry the engine's fields only (id,
//! duration, tokens); filters are refused (400) because there is no catalog to run them on.

use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pairalign_datasets::decode::{decode_file, DecodeOptions};
use pairalign_datasets::SAMPLE_RATE;
use pairalign_engine::{Database, SearchOptions, Symbol};
use pairalign_indexer::{archive_report, ArchiveReport};
use pairalign_models::{TokenString, Tokenizer};
use pairalign_query::{Archive, SearchOutcome};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A tokenizer the server shares between its writer and its searches.
pub type SharedTokenizer = Arc<dyn Tokenizer + Send + Sync>;

/// One asset of the archive as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Asset {
    /// The asset's id (a file's canonical path for indexed files; given or derived from the
    /// content for uploads).
    pub id: String,
    /// Seconds of audio.
    pub duration_s: f64,
    /// Tokens in its string.
    pub tokens: usize,
}

/// What a client says about an upload.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadMetadata {
    /// The asset id to use; default: derived from the content, so the same audio uploaded twice
    /// is a conflict rather than a duplicate.
    pub id: Option<String>,
    /// A title.
    pub title: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The original file name.
    pub file_name: Option<String>,
}

/// The archive opened for writing.
pub(crate) struct Writable {
    archive: Archive,
    dir: PathBuf,
    tokenizer: SharedTokenizer,
}

impl std::fmt::Debug for Writable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writable").field("dir", &self.dir).finish()
    }
}

impl Writable {
    /// Opens (creating when missing) the archive in `dir` with `tokenizer`.
    pub(crate) fn open(dir: &Path, tokenizer: SharedTokenizer) -> Result<Writable> {
        let archive = Archive::open_with(dir, Box::new(Shared(Arc::clone(&tokenizer))))?;
        Ok(Writable {
            archive,
            dir: dir.to_path_buf(),
            tokenizer,
        })
    }

    /// A snapshot of what is committed now.
    pub(crate) fn snapshot(&self) -> Result<Snapshot> {
        let db = Database::open_read_only(&self.dir).map_err(pairalign_query::Error::from)?;
        let stats = archive_report(&db).map_err(pairalign_query::Error::from)?;
        Ok(Snapshot {
            db: Arc::new(db),
            tokenizer: Arc::clone(&self.tokenizer),
            stats: Arc::new(stats),
        })
    }

    /// Decodes, tokenizes and commits the audio file at `path` as one asset. `name` stands for
    /// the file in error messages.
    pub(crate) fn upload(
        &mut self,
        path: &Path,
        metadata: &UploadMetadata,
        name: &str,
    ) -> Result<Asset> {
        let in_archive = |e: pairalign_query::Error| Error::from_archive(e, Some(path), name);
        let audio = decode_file(path, &DecodeOptions::default())
            .map_err(|e| in_archive(pairalign_query::Error::Decode(e)))?;
        let id = match &metadata.id {
            Some(id) => id.clone(),
            None => content_id(path)?,
        };
        self.archive
            .add_samples(&id, &audio.samples, SAMPLE_RATE)
            .map_err(in_archive)?;
        let (s, ord) = self
            .archive
            .database()
            .find(&id)
            .ok_or_else(|| Error::Internal(format!("{id} is missing after its commit")))?;
        Ok(asset(&self.archive.database().segments()[s], ord))
    }

    /// Deletes the asset `id`; false when there is none.
    pub(crate) fn delete(&mut self, id: &str) -> Result<bool> {
        Ok(!self.archive.delete(&[id])?.deleted.is_empty())
    }
}

/// A committed state of the archive, cheap to clone and safe to share.
#[derive(Clone)]
pub(crate) struct Snapshot {
    db: Arc<Database>,
    tokenizer: SharedTokenizer,
    stats: Arc<ArchiveReport>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("generation", &self.db.manifest().generation)
            .finish()
    }
}

impl Snapshot {
    /// Searches for the clip in the audio file at `path` (`name` stands for it in messages).
    pub(crate) fn search_file(
        &self,
        path: &Path,
        name: &str,
        options: &SearchOptions,
        filter: Option<&str>,
    ) -> Result<SearchOutcome> {
        no_filter(filter)?;
        pairalign_query::search_file(&self.db, self.tokenizer.as_ref(), path, options)
            .map_err(|e| Error::from_archive(e, Some(path), name))
    }

    /// Searches with a token string.
    pub(crate) fn search_tokens(
        &self,
        tokens: &[Symbol],
        options: &SearchOptions,
        filter: Option<&str>,
    ) -> Result<pairalign_engine::SearchOutcome> {
        no_filter(filter)?;
        self.db
            .search_tokens(tokens, options)
            .map_err(|e| pairalign_query::Error::from(e).into())
    }

    /// The asset `id`, if the snapshot holds it.
    pub(crate) fn asset(&self, id: &str) -> Result<Option<Asset>> {
        Ok(self
            .db
            .find(id)
            .map(|(s, ord)| asset(&self.db.segments()[s], ord)))
    }

    /// Assets matching `filter`, in id order: the total and those from `offset`, at most `limit`.
    pub(crate) fn assets(
        &self,
        filter: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<(u64, Vec<Asset>)> {
        no_filter(filter)?;
        let mut live: Vec<(&str, &pairalign_engine::segment::Segment, usize)> = Vec::new();
        for segment in self.db.segments() {
            for doc in segment.docs() {
                if !self.db.is_deleted(doc.doc_id) {
                    live.push((doc.name, segment, doc.ord));
                }
            }
        }
        live.sort_unstable_by_key(|(id, _, _)| *id);
        let page = live
            .iter()
            .skip(offset)
            .take(limit)
            .map(|(_, segment, ord)| asset(segment, *ord))
            .collect();
        Ok((live.len() as u64, page))
    }

    /// Documents, hours, tokens and bytes at the time of the snapshot.
    pub(crate) fn stats(&self) -> &ArchiveReport {
        &self.stats
    }
}

fn asset(segment: &pairalign_engine::segment::Segment, ord: usize) -> Asset {
    let doc = segment.doc(ord);
    Asset {
        id: doc.name.to_string(),
        duration_s: f64::from(doc.duration_ms) / 1000.0,
        tokens: doc.tokens.len(),
    }
}

fn no_filter(filter: Option<&str>) -> Result<()> {
    match filter {
        Some(_) => Err(Error::BadRequest(
            "filters need the metadata catalog, which this archive does not have yet".into(),
        )),
        None => Ok(()),
    }
}

/// An id derived from the file's bytes, so that the same content uploaded twice gets the same
/// id (and the second upload is a conflict).
fn content_id(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading the upload", e))?;
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write(&bytes);
    Ok(format!("upload-{:016x}", hasher.finish()))
}

/// The archive takes its tokenizer boxed; this shares the server's.
struct Shared(SharedTokenizer);

impl Tokenizer for Shared {
    fn id(&self) -> &str {
        self.0.id()
    }
    fn weights_hash(&self) -> &str {
        self.0.weights_hash()
    }
    fn vocab_size(&self) -> u32 {
        self.0.vocab_size()
    }
    fn tokenize(&self, batch: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
        self.0.tokenize(batch)
    }
    fn tokenize_mels(&self, mels: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
        self.0.tokenize_mels(mels)
    }
}
