//! [`Archive`]: a database, its catalog and its tokenizer opened for reading and writing.

use std::path::Path;
use std::sync::Arc;

use pairalign_catalog::{file_stamp, hash_file, hash_samples, Asset, AssetMetadata};
use pairalign_datasets::decode::{decode_file, probe, DecodeOptions};
use pairalign_engine::{DeleteReport, SearchOptions, Searcher, Symbol};
use pairalign_indexer::{
    index_paths, index_recording, open_or_create_for, IndexOptions, IndexReport, Store, Unindexable,
};
use pairalign_models::Device;
use pairalign_query::{
    archive_report, to_16k, ArchiveReader, ArchiveReport, ArchiveTokenizer, SearchOutcome,
};

use crate::{Error, Result};

/// The length of ids derived from content hashes ([`Archive::add_upload`] without an id): 32 hex
/// digits, 128 bits of BLAKE3.
const HASH_ID_LEN: usize = 32;

/// How many segments of one size tier `add_upload` and `add_samples` let gather before merging
/// them ([`pairalign_engine::DatabaseWriter::merge_small`]); the same bound as the bulk indexer's compaction.
const MERGE_FACTOR: usize = 8;

/// A database opened for reading and writing with the tokenizer it records and its catalog.
///
/// ```no_run
/// use pairalign_archive::{clip_search_options, Archive, AssetMetadata};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut archive = Archive::open("assets.db")?; // created on first use, pairalign-v3
/// let tags = AssetMetadata { tags: vec!["interview".into()], ..AssetMetadata::default() };
/// archive.add_file("recordings/interview-0412.flac", &tags)?;
/// let options = clip_search_options();
/// let hits = archive.search_file("clip.wav", &options, Some("tags:interview"))?.hits;
/// for hit in &hits {
///     println!("{} {}..{} ms, distance {}", hit.id, hit.start_ms, hit.end_ms, hit.distance);
/// }
/// archive.delete(&["/archive/recordings/old.wav"])?;
/// println!("{:.1} h indexed", archive.stats()?.hours);
/// # Ok(())
/// # }
/// ```
pub struct Archive {
    store: Store,
    tokenizer: ArchiveTokenizer,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("db", &self.store.db.dir())
            .field("tokenizer", &self.tokenizer.id())
            .finish()
    }
}

impl Archive {
    /// Opens the database in `dir` (creating it when missing) with the shipped tokenizer it
    /// records, or for a new database the default one (pairalign-v3;
    /// [`pairalign_query::database_tokenizer`]).
    pub fn open(dir: impl AsRef<Path>) -> Result<Archive> {
        let tokenizer = pairalign_query::database_tokenizer(dir.as_ref(), &Device::Cpu)?;
        Archive::open_with(dir, Arc::new(tokenizer))
    }

    /// Opens the database in `dir` (creating it when missing) with `tokenizer`; errors when the
    /// database records another tokenizer, and when its catalog is damaged or disagrees with
    /// its documents ([`pairalign_catalog::Error::CatalogDamaged`]: `pairalign repair` rebuilds
    /// it).
    pub fn open_with(dir: impl AsRef<Path>, tokenizer: ArchiveTokenizer) -> Result<Archive> {
        let store = open_or_create_for(dir, tokenizer.as_ref())?;
        // The readers this archive hands out share its catalog: check it once, here.
        store.catalog.reader().verify_against(&store.db)?;
        Ok(Archive { store, tokenizer })
    }

    /// The database underneath, for the engine's own calls.
    pub fn database(&self) -> &Searcher {
        &self.store.db
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &ArchiveTokenizer {
        &self.tokenizer
    }

    /// A snapshot of what is committed now, for searching and reading from other threads while
    /// this archive goes on writing. Cheap: shares the mapped segments.
    pub fn reader(&self) -> ArchiveReader {
        ArchiveReader::new(
            self.store.db.searcher(),
            Some(self.store.catalog.reader().clone()),
            self.tokenizer.clone(),
        )
    }

    /// Indexes the audio file or folder at `path` (one document per file, its id the file's
    /// canonical path; files already indexed are skipped, changed ones re-indexed; bad files
    /// are listed in the report). `metadata` applies to every file: its tags are added to those
    /// of the file's sidecar, and its title is used where the sidecar gives none.
    pub fn add_file(
        &mut self,
        path: impl AsRef<Path>,
        metadata: &AssetMetadata,
    ) -> Result<IndexReport> {
        metadata.check().map_err(Error::InvalidMetadata)?;
        let options = IndexOptions {
            metadata: metadata.clone(),
            ..IndexOptions::default()
        };
        Ok(index_paths(
            &mut self.store,
            self.tokenizer.as_ref(),
            &[path.as_ref()],
            &options,
            |_| {},
        )?)
    }

    /// Indexes one audio file under `id` (by default `id` is derived from the content hash) and
    /// commits it before returning; the file's path is not recorded (an upload: the caller may
    /// remove the file afterwards). Errors when the file cannot be decoded ([`Error::Decode`]),
    /// when `id` is taken ([`Error::IdTaken`]) and when the same content is already indexed
    /// ([`Error::Duplicate`]).
    pub fn add_upload(
        &mut self,
        id: Option<&str>,
        path: &Path,
        metadata: &AssetMetadata,
    ) -> Result<Asset> {
        metadata.check().map_err(Error::InvalidMetadata)?;
        let t = self.tokenizer.as_ref();
        (self.store.db).accepts_tokenizer(t.id(), t.weights_hash(), t.vocab_size())?;
        let hash = hash_file(path).map_err(|e| {
            Error::Decode(pairalign_datasets::Error::Io {
                path: path.to_path_buf(),
                source: e,
            })
        })?;
        let id = self.new_id(id, &hash)?;
        let info = probe(path)?;
        let audio = decode_file(path, &DecodeOptions::default())?;
        let asset = Asset {
            id: id.clone(),
            path: None,
            file_name: metadata
                .file_name
                .clone()
                .or_else(|| path.file_name().map(|n| n.to_string_lossy().into_owned())),
            title: metadata.title.clone(),
            tags: metadata.tags.clone(),
            duration_s: 0.0,
            format: Some(info.format),
            sample_rate: Some(info.sample_rate),
            content_hash: hash,
            tokens: 0,
            indexed_at: String::new(),
            file_size: file_stamp(path).map(|s| s.0),
            modified_ns: None,
        };
        self.add_tokenized(&audio.samples, asset)
    }

    /// Adds a recording given as samples (mono, any rate) under `id`, committed before it
    /// returns. Errors when `id` is taken ([`Error::IdTaken`]) or the same samples are indexed
    /// ([`Error::Duplicate`]).
    pub fn add_samples(
        &mut self,
        id: &str,
        samples: &[f32],
        sample_rate: u32,
        metadata: &AssetMetadata,
    ) -> Result<Asset> {
        metadata.check().map_err(Error::InvalidMetadata)?;
        let t = self.tokenizer.as_ref();
        (self.store.db).accepts_tokenizer(t.id(), t.weights_hash(), t.vocab_size())?;
        let hash = hash_samples(samples);
        let id = self.new_id(Some(id), &hash)?;
        let samples = to_16k(samples, sample_rate)?;
        let asset = Asset {
            id,
            path: None,
            file_name: metadata.file_name.clone(),
            title: metadata.title.clone(),
            tags: metadata.tags.clone(),
            duration_s: 0.0,
            format: None,
            sample_rate: Some(sample_rate),
            content_hash: hash,
            tokens: 0,
            indexed_at: String::new(),
            file_size: None,
            modified_ns: None,
        };
        self.add_tokenized(&samples, asset)
    }

    /// The id a new asset gets: `id`, or the start of its content hash; errors when the id is
    /// taken or the content is already indexed.
    fn new_id(&self, id: Option<&str>, hash: &str) -> Result<String> {
        for copy in self.store.catalog.reader().by_hash(hash)? {
            if self.store.db.contains(&copy.id)? {
                return Err(Error::Duplicate { of: copy.id });
            }
        }
        let id = id.map_or_else(|| hash[..HASH_ID_LEN].to_string(), str::to_string);
        if id.is_empty() {
            return Err(Error::InvalidMetadata("an empty id".into()));
        }
        if self.store.db.contains(&id)? {
            return Err(Error::IdTaken(id));
        }
        Ok(id)
    }

    /// Tokenizes 16 kHz `samples` ([`index_recording`], as the bulk indexer does) and commits
    /// them with `asset` (its counts and time filled in).
    fn add_tokenized(&mut self, samples: &[f32], asset: Asset) -> Result<Asset> {
        let recording =
            index_recording(self.tokenizer.as_ref(), samples, asset).map_err(|e| match e {
                Unindexable::Tokenizer(e) => Error::Tokenize(e),
                other => Error::Decode(pairalign_datasets::Error::InvalidInput(other.to_string())),
            })?;
        self.store.record_tokenizer(self.tokenizer.as_ref())?;
        self.store.db.validate(&recording.doc)?;
        let asset = recording.asset.clone();
        self.store.commit(vec![recording], Vec::new(), &[])?;
        // One small segment per recording: merge them by size tier so that a long run of
        // uploads does not leave thousands of segments for every search to visit. The recording
        // is committed whatever the merge does; a merge that fails leaves the committed state as
        // it was and is tried again after the next recording.
        let _ = self.store.db.merge_small(MERGE_FACTOR);
        Ok(asset)
    }

    /// Where the clip given as samples (mono, any rate, 0.5 to 60 s) occurs in the archive,
    /// among the documents that `filter` selects (all when `None`).
    pub fn search_audio(
        &self,
        samples: &[f32],
        sample_rate: u32,
        options: &SearchOptions,
        filter: Option<&str>,
    ) -> Result<SearchOutcome> {
        Ok(self
            .reader()
            .search_audio(samples, sample_rate, options, filter)?)
    }

    /// Where the clip in the audio file at `path` occurs in the archive.
    pub fn search_file(
        &self,
        path: impl AsRef<Path>,
        options: &SearchOptions,
        filter: Option<&str>,
    ) -> Result<SearchOutcome> {
        Ok(self.reader().search_file(path, options, filter)?)
    }

    /// Where the clip whose encoded bytes are in memory (a request body: any format the front
    /// end reads) occurs in the archive; errors call it `name`. Nothing is written to disk.
    pub fn search_bytes(
        &self,
        bytes: impl AsRef<[u8]> + Send + Sync + 'static,
        name: impl AsRef<Path>,
        options: &SearchOptions,
        filter: Option<&str>,
    ) -> Result<SearchOutcome> {
        Ok(self.reader().search_bytes(bytes, name, options, filter)?)
    }

    /// Searches with a token string directly (the engine's search).
    pub fn search_tokens(
        &self,
        tokens: &[Symbol],
        options: &SearchOptions,
        filter: Option<&str>,
    ) -> Result<pairalign_engine::SearchOutcome> {
        Ok(self.reader().search_tokens(tokens, options, filter)?)
    }

    /// The catalog entry of a live document.
    pub fn asset(&self, id: &str) -> Result<Option<Asset>> {
        Ok(self.reader().asset(id)?)
    }

    /// Deletes documents by id (tombstones and catalog entries, committed before it returns).
    pub fn delete<S: AsRef<str>>(&mut self, ids: &[S]) -> Result<DeleteReport> {
        Ok(self.store.delete(ids)?)
    }

    /// Merges all segments into one, dropping deleted documents.
    pub fn compact(&mut self) -> Result<()> {
        Ok(self.store.db.compact()?)
    }

    /// Documents, hours, tokens and bytes (`pairalign report` without a comparison).
    pub fn stats(&self) -> Result<ArchiveReport> {
        Ok(archive_report(&self.store.db)?)
    }
}
