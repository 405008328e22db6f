//! [`ArchiveReader`]: a read-only snapshot of an archive (the committed database, its catalog and
//! the tokenizer) to search and list from any number of threads; and the catalog helpers the
//! CLI uses on a bare database ([`select_documents`], [`list_assets`]).

use std::path::Path;
use std::sync::{Arc, Mutex};

use pairalign_catalog::{Asset, CatalogReader};
use pairalign_datasets::decode::resample;
use pairalign_datasets::SAMPLE_RATE;
use pairalign_engine::{SearchOptions, Searcher, Symbol};
use pairalign_models::Tokenizer;
use roaring::RoaringBitmap;
use serde::Serialize;

use crate::report::{archive_report, ArchiveReport};
use crate::search::{
    search_audio, search_bytes, search_clip, search_file, ClipQuery, SearchOutcome,
};
use crate::{Error, Result};

/// A tokenizer an archive can hold and share with indexing threads and readers.
pub type ArchiveTokenizer = Arc<dyn Tokenizer + Send + Sync>;

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
    db: Arc<Searcher>,
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
    /// A reader over the snapshot `db` with its `catalog` (`None` for a database of imported
    /// tokens, which has none), searching clips with `tokenizer`. The writer's facade
    /// (`pairalign_archive::Archive::reader`) builds its snapshots with this.
    pub fn new(
        db: Searcher,
        catalog: Option<CatalogReader>,
        tokenizer: ArchiveTokenizer,
    ) -> ArchiveReader {
        ArchiveReader {
            db: Arc::new(db),
            catalog,
            tokenizer,
            selections: Arc::default(),
        }
    }

    /// Opens the database in `dir` read only (no lock: works while another process writes it),
    /// with `tokenizer` for clip queries. Errors when the catalog is damaged or disagrees with
    /// the documents ([`CatalogReader::open_for`]).
    pub fn open_with(dir: impl AsRef<Path>, tokenizer: ArchiveTokenizer) -> Result<ArchiveReader> {
        let dir = dir.as_ref();
        let db = Searcher::open(dir)?;
        let catalog = CatalogReader::open_for(&db)?;
        Ok(ArchiveReader {
            db: Arc::new(db),
            catalog,
            tokenizer,
            selections: Arc::default(),
        })
    }

    /// The tokenizer clip queries are tokenized with.
    pub fn tokenizer(&self) -> &ArchiveTokenizer {
        &self.tokenizer
    }

    /// The database snapshot.
    pub fn database(&self) -> &Searcher {
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

    /// Where a clip tokenized elsewhere ([`crate::tokenize_clip`]) occurs: what a shard of an
    /// archive answers, the clip tokenized once for all shards ([`crate::search_clip`]).
    pub fn search_clip(
        &self,
        query: &ClipQuery,
        options: &SearchOptions,
        filter: Option<&str>,
    ) -> Result<SearchOutcome> {
        let options = self.restricted(options, filter)?;
        search_clip(&self.db, query, &options)
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
            Some(catalog) if self.db.contains(id)? => Ok(catalog.get(id)?),
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
        archive_report(&self.db)
    }
}

/// The document numbers of `db`'s live documents that `filter` selects in its catalog, for
/// [`SearchOptions::only`] (the CLI's `--filter`). Errors with [`Error::Filter`] for a filter
/// that does not parse and for a database without a catalog.
pub fn select_documents(db: &Searcher, filter: &str) -> Result<Arc<RoaringBitmap>> {
    let catalog = CatalogReader::open_for(db)?;
    select_with(db, catalog.as_ref(), filter)
}

/// The catalog entries of `db`'s live documents that `filter` selects (all when `None`), sorted
/// by id, `limit` of them from `offset` (`pairalign assets`).
pub fn list_assets(
    db: &Searcher,
    filter: Option<&str>,
    offset: usize,
    limit: usize,
) -> Result<AssetPage> {
    let catalog = CatalogReader::open_for(db)?;
    assets_with(db, catalog.as_ref(), filter, offset, limit)
}

fn assets_with(
    db: &Searcher,
    catalog: Option<&CatalogReader>,
    filter: Option<&str>,
    offset: usize,
    limit: usize,
) -> Result<AssetPage> {
    let assets = match (filter, catalog) {
        (Some(filter), _) => matching(db, catalog, filter)?,
        (None, Some(catalog)) => catalog.all()?,
        (None, None) => Vec::new(),
    };
    let mut live = Vec::with_capacity(assets.len());
    for asset in assets {
        if db.contains(&asset.id)? {
            live.push(asset);
        }
    }
    let mut assets = live;
    assets.sort_by(|a, b| a.id.cmp(&b.id));
    let total = assets.len();
    let assets = assets.into_iter().skip(offset).take(limit).collect();
    Ok(AssetPage { total, assets })
}

fn select_with(
    db: &Searcher,
    catalog: Option<&CatalogReader>,
    filter: &str,
) -> Result<Arc<RoaringBitmap>> {
    let catalog = catalog.ok_or_else(|| no_catalog(db))?;
    let ids = catalog.select_ids(filter)?;
    let mut only = RoaringBitmap::new();
    for id in ids {
        if let Some((s, ord)) = db.find(&id)? {
            only.insert(db.segments()?[s].doc(ord).doc_id);
        }
    }
    Ok(Arc::new(only))
}

fn matching(db: &Searcher, catalog: Option<&CatalogReader>, filter: &str) -> Result<Vec<Asset>> {
    let catalog = catalog.ok_or_else(|| no_catalog(db))?;
    Ok(catalog.select(filter)?)
}

fn no_catalog(db: &Searcher) -> Error {
    Error::Filter(format!(
        "{} has no metadata catalog (imported tokens); filters need one",
        db.dir().display()
    ))
}

/// `samples` at 16 kHz (resampled when given at another rate).
pub fn to_16k(samples: &[f32], sample_rate: u32) -> Result<std::borrow::Cow<'_, [f32]>> {
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
