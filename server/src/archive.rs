//! The adapter over `pairalign-archive`'s API: the one place that knows how the archive is
//! opened, written and read. [`Writable`] is the writer's (one per server, it holds the
//! database's write lock); [`Snapshot`] is a committed, read-only state (an `ArchiveReader` and
//! its report) that searches and GETs use from any thread while the writer goes on.

use std::path::Path;

use pairalign_archive::{
    Archive, ArchiveReader, ArchiveReport, AssetMetadata, AssetPage, SearchOutcome,
};
pub use pairalign_archive::{ArchiveTokenizer as SharedTokenizer, Asset};
use pairalign_engine::{SearchOptions, Symbol};
use serde::{Deserialize, Serialize};

use crate::request::Clip;
use crate::{Error, Result};

/// What a client says about an upload: the catalog's metadata and, optionally, the id.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadMetadata {
    /// The asset id to use; default: derived from the content hash.
    pub id: Option<String>,
    /// A title.
    pub title: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The original file name.
    pub file_name: Option<String>,
}

impl UploadMetadata {
    fn catalog(&self) -> AssetMetadata {
        AssetMetadata {
            title: self.title.clone(),
            tags: self.tags.clone(),
            file_name: self.file_name.clone(),
        }
    }
}

/// The archive opened for writing.
#[derive(Debug)]
pub(crate) struct Writable {
    archive: Archive,
}

impl Writable {
    /// Opens (creating when missing) the archive in `dir` with `tokenizer`.
    pub(crate) fn open(dir: &Path, tokenizer: SharedTokenizer) -> Result<Writable> {
        Ok(Writable {
            archive: Archive::open_with(dir, tokenizer)?,
        })
    }

    /// A snapshot of what is committed now.
    pub(crate) fn snapshot(&self) -> Result<Snapshot> {
        let reader = self.archive.reader();
        let stats = reader.stats()?;
        Ok(Snapshot { reader, stats })
    }

    /// Decodes, tokenizes and commits the audio file at `path` as one asset. `name` stands for
    /// the file in error messages.
    pub(crate) fn upload(
        &mut self,
        path: &Path,
        metadata: &UploadMetadata,
        name: &str,
    ) -> Result<Asset> {
        self.archive
            .add_upload(metadata.id.as_deref(), path, &metadata.catalog())
            .map_err(|e| Error::from_archive(e, Some(path), name))
    }

    /// Deletes the asset `id`; false when there is none.
    pub(crate) fn delete(&mut self, id: &str) -> Result<bool> {
        Ok(!self.archive.delete(&[id])?.deleted.is_empty())
    }

    /// Merges every segment into one, dropping deleted documents, and commits.
    pub(crate) fn compact(&mut self) -> Result<Compaction> {
        let started = std::time::Instant::now();
        let shape = |archive: &Archive| {
            let reader = archive.reader();
            // The MANIFEST's record of each segment: no segment needs reading for this.
            let segments = &reader.database().manifest().segments;
            let bytes = segments.iter().map(|s| s.bytes).sum::<u64>();
            let docs = segments.iter().map(|s| s.doc_count as usize).sum::<usize>();
            (segments.len(), bytes, docs)
        };
        let (segments_before, bytes_before, _) = shape(&self.archive);
        self.archive.compact()?;
        // No tombstone outlives a full compaction: every document left is live.
        let (segments_after, bytes_after, docs) = shape(&self.archive);
        Ok(Compaction {
            segments_before,
            segments_after,
            docs,
            bytes_before,
            bytes_after,
            took_ms: started.elapsed().as_secs_f64() * 1e3,
        })
    }
}

/// What a compaction did (`POST /v1/compact`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Compaction {
    /// Segments before it.
    pub segments_before: usize,
    /// Segments after it: 1, or 0 for an archive with no live document.
    pub segments_after: usize,
    /// Live documents (unchanged by a compaction).
    pub docs: usize,
    /// Bytes of segment files before it.
    pub bytes_before: u64,
    /// Bytes of segment files after it.
    pub bytes_after: u64,
    /// Milliseconds the merge and its commit took.
    pub took_ms: f64,
}

/// A committed state of the archive, cheap to clone and safe to share.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    reader: ArchiveReader,
    /// The report, computed once per snapshot rather than per `/v1/stats` or `/metrics`.
    stats: ArchiveReport,
}

impl Snapshot {
    /// Searches for the clip held in memory (a request body), decoded from there.
    pub(crate) fn search_clip(
        &self,
        clip: Clip,
        options: &SearchOptions,
        filter: Option<&str>,
    ) -> Result<SearchOutcome> {
        let name = clip.display_name().to_string();
        match self.reader.search_bytes(clip.bytes, &name, options, filter) {
            // A new archive records its tokenizer with its first document: until then the
            // query crate cannot compare tokenizers, and there is nothing to find anyway.
            Err(pairalign_query::Error::TokenizerMismatch(_)) if self.is_new() => {
                Ok(SearchOutcome {
                    hits: Vec::new(),
                    query_tokens: 0,
                    k: None,
                    lossless: true,
                    tokenize_ms: 0.0,
                    search_ms: 0.0,
                    took_ms: 0.0,
                })
            }
            other => other.map_err(|e| Error::from_archive(e, None, &name)),
        }
    }

    /// No document was ever added and no tokenizer is recorded.
    fn is_new(&self) -> bool {
        let db = self.reader.database();
        db.segment_count() == 0 && db.tokenizer().is_none()
    }

    /// Searches with a token string.
    pub(crate) fn search_tokens(
        &self,
        tokens: &[Symbol],
        options: &SearchOptions,
        filter: Option<&str>,
    ) -> Result<pairalign_engine::SearchOutcome> {
        Ok(self.reader.search_tokens(tokens, options, filter)?)
    }

    /// The asset `id`, if the snapshot holds it.
    pub(crate) fn asset(&self, id: &str) -> Result<Option<Asset>> {
        Ok(self.reader.asset(id)?)
    }

    /// Assets matching `filter`, sorted by id: the total and `limit` of them from `offset`.
    pub(crate) fn assets(
        &self,
        filter: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<AssetPage> {
        Ok(self.reader.assets(filter, offset, limit)?)
    }

    /// Documents, hours, tokens and bytes at the time of the snapshot.
    pub(crate) fn stats(&self) -> &ArchiveReport {
        &self.stats
    }
}
