//! [`Archive`]: the whole product as one value for an application to embed (a media asset
//! manager, a script, the HTTP server): a database, its metadata catalog and its tokenizer
//! together, so that adding and searching can never mix tokenizers. [`ArchiveReader`] is a
//! snapshot of what is committed, for searching from many threads while the archive is written.

use std::path::Path;
use std::sync::{Arc, Mutex};

use pairalign_datasets::decode::{decode_file, probe, resample, DecodeOptions};
use pairalign_datasets::SAMPLE_RATE;
use pairalign_engine::{Database, DeleteReport, NewDoc, SearchOptions, Symbol, TokenizerRecord};
use pairalign_indexer::{
    archive_report, check_tokenizer as check_for_adding, file_stamp, hash_file, hash_samples,
    index_paths, now_secs, open_or_create_for, rfc3339, ArchiveReport, Asset, AssetMetadata,
    CatalogReader, IndexOptions, IndexReport, Store,
};
use pairalign_models::{tokenize_windows, Device, Tokenizer, WINDOWS_PER_CALL, WINDOW_SAMPLES};
use roaring::RoaringBitmap;
use serde::Serialize;

use crate::search::{search_audio, search_bytes, search_file, SearchOutcome};
use crate::{Error, Result};

/// A tokenizer an archive can hold and share with indexing threads and readers.
pub type ArchiveTokenizer = Arc<dyn Tokenizer + Send + Sync>;

/// The length of ids derived from content hashes ([`Archive::add_upload`] without an id): 32 hex
/// digits, 128 bits of BLAKE3.
const HASH_ID_LEN: usize = 32;

/// How many segments of one size tier `add_upload` and `add_samples` let gather before merging
/// them ([`Database::merge_small`]); the same bound as the bulk indexer's compaction.
const MERGE_FACTOR: usize = 8;

/// A database opened for reading and writing with the tokenizer it records and its catalog.
///
/// ```no_run
/// use pairalign_query::{clip_search_options, Archive, AssetMetadata};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut archive = Archive::open("assets.db")?; // created on first use, pairalign-v1
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
    /// records, or for a new database the default one (pairalign-v1;
    /// [`crate::database_tokenizer`]).
    pub fn open(dir: impl AsRef<Path>) -> Result<Archive> {
        let tokenizer = crate::database_tokenizer(dir.as_ref(), &Device::Cpu)?;
        Archive::open_with(dir, Arc::new(tokenizer))
    }

    /// Opens the database in `dir` (creating it when missing) with `tokenizer`; errors when the
    /// database records another tokenizer, and when its catalog is damaged or disagrees with
    /// its documents ([`pairalign_indexer::Error::CatalogDamaged`]: `pairalign repair` rebuilds
    /// it).
    pub fn open_with(dir: impl AsRef<Path>, tokenizer: ArchiveTokenizer) -> Result<Archive> {
        let store = open_or_create_for(dir, tokenizer.as_ref())?;
        // The readers this archive hands out share its catalog: check it once, here.
        store.catalog.reader().verify_against(&store.db)?;
        Ok(Archive { store, tokenizer })
    }

    /// The database underneath, for the engine's own calls.
    pub fn database(&self) -> &Database {
        &self.store.db
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &ArchiveTokenizer {
        &self.tokenizer
    }

    /// A snapshot of what is committed now, for searching and reading from other threads while
    /// this archive goes on writing. Cheap: shares the mapped segments.
    pub fn reader(&self) -> ArchiveReader {
        ArchiveReader {
            db: Arc::new(self.store.db.snapshot()),
            catalog: Some(self.store.catalog.reader().clone()),
            tokenizer: self.tokenizer.clone(),
            selections: Arc::default(),
        }
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
        check_for_adding(&self.store.db, self.tokenizer.as_ref())?;
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
        check_for_adding(&self.store.db, self.tokenizer.as_ref())?;
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
        let live = |a: &Asset| self.store.db.contains(&a.id);
        if let Some(copy) = self
            .store
            .catalog
            .reader()
            .by_hash(hash)?
            .iter()
            .find(|a| live(a))
        {
            return Err(Error::Duplicate {
                of: copy.id.clone(),
            });
        }
        let id = id.map_or_else(|| hash[..HASH_ID_LEN].to_string(), str::to_string);
        if id.is_empty() {
            return Err(Error::InvalidMetadata("an empty id".into()));
        }
        if self.store.db.contains(&id) {
            return Err(Error::IdTaken(id));
        }
        Ok(id)
    }

    /// Tokenizes 16 kHz `samples` and commits them with `asset` (its counts and time filled in).
    fn add_tokenized(&mut self, samples: &[f32], asset: Asset) -> Result<Asset> {
        if samples.is_empty() {
            return Err(Error::Decode(pairalign_datasets::Error::InvalidInput(
                "no audio frames".into(),
            )));
        }
        let ts = tokenize_windows(
            self.tokenizer.as_ref(),
            samples,
            WINDOW_SAMPLES,
            WINDOWS_PER_CALL,
        )?;
        if ts.is_empty() {
            return Err(Error::Decode(pairalign_datasets::Error::InvalidInput(
                "too short to give any token".into(),
            )));
        }
        if self.store.db.tokenizer().is_none() {
            self.store.db.set_tokenizer(TokenizerRecord {
                id: self.tokenizer.id().to_string(),
                weights_hash: self.tokenizer.weights_hash().to_string(),
            })?;
        }
        let duration_ms = samples.len() as u64 * 1000 / u64::from(SAMPLE_RATE);
        let asset = Asset {
            duration_s: samples.len() as f64 / f64::from(SAMPLE_RATE),
            tokens: ts.tokens.len() as u64,
            indexed_at: rfc3339(now_secs()),
            ..asset
        };
        let doc = NewDoc {
            id: asset.id.clone(),
            tokens: ts.tokens,
            times_ms: Some(ts.times_ms),
            duration_ms: Some(u32::try_from(duration_ms).unwrap_or(u32::MAX)),
        };
        self.store.db.validate(&doc)?;
        // The catalog first: a crash between the two leaves an entry the readers ignore.
        self.store.catalog.upsert(std::slice::from_ref(&asset))?;
        self.store.db.add_tokens(&[doc])?;
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
        self.reader()
            .search_audio(samples, sample_rate, options, filter)
    }

    /// Where the clip in the audio file at `path` occurs in the archive.
    pub fn search_file(
        &self,
        path: impl AsRef<Path>,
        options: &SearchOptions,
        filter: Option<&str>,
    ) -> Result<SearchOutcome> {
        self.reader().search_file(path, options, filter)
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
        self.reader().search_bytes(bytes, name, options, filter)
    }

    /// Searches with a token string directly (the engine's search).
    pub fn search_tokens(
        &self,
        tokens: &[Symbol],
        options: &SearchOptions,
        filter: Option<&str>,
    ) -> Result<pairalign_engine::SearchOutcome> {
        self.reader().search_tokens(tokens, options, filter)
    }

    /// The catalog entry of a live document.
    pub fn asset(&self, id: &str) -> Result<Option<Asset>> {
        self.reader().asset(id)
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

/// One page of a catalog listing.
#[derive(Clone, Debug, Serialize)]
pub struct AssetPage {
    /// Live documents matching the filter, over all pages.
    pub total: usize,
    /// This page, sorted by id.
    pub assets: Vec<Asset>,
}

/// A read-only snapshot of an archive: the committed database, its catalog and the tokenizer.
/// Clone it freely and search from any number of threads; a writer's commits do not change what
/// it sees (take a new one with [`Archive::reader`]). Catalog entries of documents outside the
/// snapshot are ignored.
#[derive(Clone)]
pub struct ArchiveReader {
    db: Arc<Database>,
    catalog: Option<CatalogReader>,
    tokenizer: ArchiveTokenizer,
    /// The documents of the last filters used, shared by clones: resolving a broad filter over
    /// 100,000 documents takes tens of milliseconds, and an application tends to repeat a few.
    selections: Arc<Mutex<SelectionCache>>,
}

/// The most recently used filters' selections, newest last.
#[derive(Default)]
struct SelectionCache(Vec<(String, Arc<RoaringBitmap>)>);

impl SelectionCache {
    /// Filters remembered per reader.
    const SIZE: usize = 16;

    fn get(&mut self, filter: &str) -> Option<Arc<RoaringBitmap>> {
        let i = self.0.iter().position(|(f, _)| f == filter)?;
        let entry = self.0.remove(i);
        let selection = Arc::clone(&entry.1);
        self.0.push(entry);
        Some(selection)
    }

    fn put(&mut self, filter: &str, selection: &Arc<RoaringBitmap>) {
        if self.0.len() == Self::SIZE {
            self.0.remove(0);
        }
        self.0.push((filter.to_string(), Arc::clone(selection)));
    }
}

impl std::fmt::Debug for ArchiveReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveReader")
            .field("db", &self.db.dir())
            .field("generation", &self.db.manifest().generation)
            .finish()
    }
}

impl ArchiveReader {
    /// Opens the database in `dir` read only (no lock: works while another process writes it),
    /// with `tokenizer` for clip queries. Errors when the catalog is damaged or disagrees with
    /// the documents ([`CatalogReader::open_for`]).
    pub fn open_with(dir: impl AsRef<Path>, tokenizer: ArchiveTokenizer) -> Result<ArchiveReader> {
        let dir = dir.as_ref();
        let db = Database::open_read_only(dir)?;
        let catalog = CatalogReader::open_for(&db)?;
        Ok(ArchiveReader {
            db: Arc::new(db),
            catalog,
            tokenizer,
            selections: Arc::default(),
        })
    }

    /// The database snapshot.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The document numbers that `filter` selects among the snapshot's live documents, for
    /// [`SearchOptions::only`]. Errors with [`Error::Filter`] for a filter that does not parse
    /// and for a database without a catalog. The last 16 filters' selections are remembered
    /// (per reader and its clones: a reader's database does not change).
    pub fn select(&self, filter: &str) -> Result<Arc<RoaringBitmap>> {
        let cached = self.selections.lock().ok().and_then(|mut c| c.get(filter));
        if let Some(selection) = cached {
            return Ok(selection);
        }
        let selection = select_with(&self.db, self.catalog.as_ref(), filter)?;
        if let Ok(mut cache) = self.selections.lock() {
            cache.put(filter, &selection);
        }
        Ok(selection)
    }

    fn restricted(&self, options: &SearchOptions, filter: Option<&str>) -> Result<SearchOptions> {
        let mut options = options.clone();
        if let Some(filter) = filter {
            options.only = Some(self.select(filter)?);
        }
        Ok(options)
    }

    /// Where the clip given as samples (mono, any rate, 0.5 to 60 s) occurs, among the
    /// documents that `filter` selects (all when `None`).
    pub fn search_audio(
        &self,
        samples: &[f32],
        sample_rate: u32,
        options: &SearchOptions,
        filter: Option<&str>,
    ) -> Result<SearchOutcome> {
        let options = self.restricted(options, filter)?;
        let samples = to_16k(samples, sample_rate)?;
        search_audio(&self.db, self.tokenizer.as_ref(), &samples, &options)
    }

    /// Where the clip in the audio file at `path` occurs.
    pub fn search_file(
        &self,
        path: impl AsRef<Path>,
        options: &SearchOptions,
        filter: Option<&str>,
    ) -> Result<SearchOutcome> {
        let options = self.restricted(options, filter)?;
        search_file(&self.db, self.tokenizer.as_ref(), path.as_ref(), &options)
    }

    /// Where the clip whose encoded bytes are in memory occurs; errors call it `name`.
    pub fn search_bytes(
        &self,
        bytes: impl AsRef<[u8]> + Send + Sync + 'static,
        name: impl AsRef<Path>,
        options: &SearchOptions,
        filter: Option<&str>,
    ) -> Result<SearchOutcome> {
        let options = self.restricted(options, filter)?;
        search_bytes(
            &self.db,
            self.tokenizer.as_ref(),
            bytes,
            name.as_ref(),
            &options,
        )
    }

    /// Searches with a token string directly (the engine's search).
    pub fn search_tokens(
        &self,
        tokens: &[Symbol],
        options: &SearchOptions,
        filter: Option<&str>,
    ) -> Result<pairalign_engine::SearchOutcome> {
        let options = self.restricted(options, filter)?;
        Ok(self.db.search_tokens(tokens, &options)?)
    }

    /// The catalog entry of a live document (`None` when the snapshot has no such document or
    /// the database has no catalog).
    pub fn asset(&self, id: &str) -> Result<Option<Asset>> {
        match &self.catalog {
            Some(catalog) if self.db.contains(id) => Ok(catalog.get(id)?),
            _ => Ok(None),
        }
    }

    /// The live documents' catalog entries that `filter` selects (all when `None`), sorted by
    /// id, `limit` of them from `offset`.
    pub fn assets(&self, filter: Option<&str>, offset: usize, limit: usize) -> Result<AssetPage> {
        assets_with(&self.db, self.catalog.as_ref(), filter, offset, limit)
    }

    /// Documents, hours, tokens and bytes.
    pub fn stats(&self) -> Result<ArchiveReport> {
        Ok(archive_report(&self.db)?)
    }
}

/// The document numbers of `db`'s live documents that `filter` selects in its catalog, for
/// [`SearchOptions::only`] (the CLI's `--filter`). Errors with [`Error::Filter`] for a filter
/// that does not parse and for a database without a catalog.
pub fn select_documents(db: &Database, filter: &str) -> Result<Arc<RoaringBitmap>> {
    let catalog = CatalogReader::open_for(db)?;
    select_with(db, catalog.as_ref(), filter)
}

/// The catalog entries of `db`'s live documents that `filter` selects (all when `None`), sorted
/// by id, `limit` of them from `offset` (`pairalign assets`).
pub fn list_assets(
    db: &Database,
    filter: Option<&str>,
    offset: usize,
    limit: usize,
) -> Result<AssetPage> {
    let catalog = CatalogReader::open_for(db)?;
    assets_with(db, catalog.as_ref(), filter, offset, limit)
}

fn assets_with(
    db: &Database,
    catalog: Option<&CatalogReader>,
    filter: Option<&str>,
    offset: usize,
    limit: usize,
) -> Result<AssetPage> {
    let mut assets = match (filter, catalog) {
        (Some(filter), _) => matching(db, catalog, filter)?,
        (None, Some(catalog)) => catalog.all()?,
        (None, None) => Vec::new(),
    };
    assets.retain(|a| db.contains(&a.id));
    assets.sort_by(|a, b| a.id.cmp(&b.id));
    let total = assets.len();
    let assets = assets.into_iter().skip(offset).take(limit).collect();
    Ok(AssetPage { total, assets })
}

fn select_with(
    db: &Database,
    catalog: Option<&CatalogReader>,
    filter: &str,
) -> Result<Arc<RoaringBitmap>> {
    let catalog = catalog.ok_or_else(|| no_catalog(db))?;
    let ids = catalog.select_ids(filter).map_err(filter_error)?;
    let mut only = RoaringBitmap::new();
    for id in ids {
        if let Some((s, ord)) = db.find(&id) {
            only.insert(db.segments()[s].doc(ord).doc_id);
        }
    }
    Ok(Arc::new(only))
}

fn matching(db: &Database, catalog: Option<&CatalogReader>, filter: &str) -> Result<Vec<Asset>> {
    let catalog = catalog.ok_or_else(|| no_catalog(db))?;
    catalog.select(filter).map_err(filter_error)
}

fn no_catalog(db: &Database) -> Error {
    Error::Filter(format!(
        "{} has no metadata catalog (imported tokens); filters need one",
        db.dir().display()
    ))
}

fn filter_error(e: pairalign_indexer::Error) -> Error {
    match e {
        pairalign_indexer::Error::Filter(why) => Error::Filter(why),
        other => Error::Index(other),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn selection(docs: &[u32]) -> Arc<RoaringBitmap> {
        Arc::new(docs.iter().copied().collect())
    }

    /// The cache hands back what was put, keeps the 16 most recently used filters and forgets
    /// the least recently used one first.
    #[test]
    fn selection_cache_keeps_the_most_recently_used() {
        let mut cache = SelectionCache::default();
        let first = selection(&[1, 2]);
        cache.put("tags:a", &first);
        assert!(Arc::ptr_eq(&cache.get("tags:a").unwrap(), &first));
        assert!(cache.get("tags:b").is_none());
        for i in 0..SelectionCache::SIZE - 1 {
            cache.put(&format!("f{i}"), &selection(&[i as u32]));
        }
        // Full: using "tags:a" makes "f0" the least recently used, so the next put drops it.
        assert!(cache.get("tags:a").is_some());
        cache.put("g", &selection(&[]));
        assert!(cache.get("f0").is_none());
        assert!(cache.get("tags:a").is_some());
        assert_eq!(cache.get("f1").unwrap().iter().collect::<Vec<_>>(), [1]);
        assert_eq!(cache.0.len(), SelectionCache::SIZE);
    }
}
