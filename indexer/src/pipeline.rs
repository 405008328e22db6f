//! The indexing pipeline: files -> 16 kHz mono -> window-by-window tokens with absolute times ->
//! one engine document per file -> one segment per batch of files.
//!
//! Files are processed in groups of 4 per thread on a rayon pool, each file decoded and tokenized
//! by one task and its samples dropped as soon as it is tokenized, so at most one group of decoded
//! recordings is in memory (a worker waiting inside the tokenizer may steal another file of the
//! group, so the bound is the group, not one file per thread); only token strings wait for the
//! commit. A batch is committed with `DatabaseWriter::replace`, which is all or
//! nothing, as soon as it holds `batch_files` files or `batch_seconds` of audio: a killed run loses
//! at most that batch.
//!
//! Re-runs skip what is already indexed, by path and by content: a file whose id (canonical
//! path) the database holds is skipped when its size and modification time are those the catalog
//! recorded, or else when its content hash (BLAKE3) is; a changed file is re-indexed in place of
//! the old document. A new path whose content is already indexed under a path that still exists
//! is a duplicate: reported and skipped, so that a copy does not show up twice in every result.
//!
//! Every document gets a catalog entry ([`pairalign_catalog::Catalog`]) with its metadata; the entries of a
//! batch are committed just before the batch's segment (see the catalog module for why that
//! order).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use pairalign_datasets::decode::DecodeOptions;
use pairalign_engine::{
    DatabaseConfig, DatabaseWriter, DeleteReport, NewDoc, Searcher, TokenizerRecord,
};
use pairalign_models::Tokenizer;
use rayon::prelude::*;
use serde::Serialize;

use pairalign_catalog::{file_stamp, hash_file, Asset, AssetMetadata, Catalog};

use crate::recording::{index_recording, read_recording, IndexedRecording};
use crate::walk::{find_audio_files, FileProblem};
use crate::{Error, Result};

/// How an indexing run goes.
#[derive(Clone, Debug)]
pub struct IndexOptions {
    /// Threads for decoding and tokenizing; 0 uses one per core.
    pub jobs: usize,
    /// A batch (one segment, one commit) closes when it holds this many files...
    pub batch_files: usize,
    /// ...or this many seconds of audio, whichever comes first. Smaller batches lose less to a
    /// crash but make more segments.
    pub batch_seconds: f64,
    /// Decoder limits (longest file accepted).
    pub decode: DecodeOptions,
    /// After a run that committed something and was not stopped, merge all segments into one
    /// when the database has more than this many (`None`: never). Each batch is a segment, and
    /// searching 342 small segments was 1.5x slower than one merged segment, whose files were
    /// also 30% smaller (docs/RESULTS.md, issue 6); a tiered merge policy would rewrite less.
    pub compact_above: Option<usize>,
    /// Metadata for every file of the run: its tags are added to those of each file's sidecar
    /// and its title is used where the sidecar gives none.
    pub metadata: AssetMetadata,
    /// When another thread sets this (a Ctrl-C handler), the run stops after the files in flight,
    /// commits what it has and returns a report with `interrupted` set.
    pub stop: Option<Arc<AtomicBool>>,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            jobs: 0,
            batch_files: 32,
            batch_seconds: 1800.0,
            decode: DecodeOptions::default(),
            stop: None,
            compact_above: Some(8),
            metadata: AssetMetadata::default(),
        }
    }
}

/// Where a run stands; passed to the progress callback after every group of files and every
/// commit.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Progress {
    /// Audio files found by the walk.
    pub files_total: usize,
    /// Files dealt with so far: indexed, skipped or failed.
    pub files_done: usize,
    /// Files tokenized in this run (committed or waiting in the current batch).
    pub indexed: usize,
    /// Files committed in this run.
    pub committed: usize,
    /// Files skipped because the database already holds them.
    pub skipped: usize,
    /// Files that could not be indexed.
    pub failed: usize,
    /// Seconds of audio tokenized in this run.
    pub audio_s: f64,
    /// Seconds since the run started.
    pub wall_s: f64,
    /// Ids of the files committed since the previous callback: durable by the time the callback
    /// runs, so a caller may acknowledge them (`pairalign index --events`).
    pub committed_ids: Vec<String>,
}

/// What a run did. Times are wall-clock seconds; `decode_s` and `tokenize_s` are summed over the
/// worker threads (they overlap), so compare them with each other, not with `wall_s`.
#[derive(Clone, Debug, Serialize)]
pub struct IndexReport {
    /// Audio files found by the walk.
    pub files_found: usize,
    /// Files indexed and committed in this run.
    pub indexed: usize,
    /// Files skipped because they were already indexed unchanged (or named twice).
    pub skipped: usize,
    /// Files indexed again because their content changed since they were indexed (included in
    /// `indexed`).
    pub replaced: usize,
    /// Files skipped because the same content is indexed under another path.
    pub duplicates: Vec<Duplicate>,
    /// Files and walk entries that could not be indexed, with the reason.
    pub failed: Vec<FileProblem>,
    /// Segments committed.
    pub batches: usize,
    /// Seconds of audio indexed.
    pub audio_s: f64,
    /// Tokens written.
    pub tokens: u64,
    /// Wall time of the whole run.
    pub wall_s: f64,
    /// `audio_s / wall_s`: how many times faster than real time.
    pub realtime: f64,
    /// Time spent walking the folders.
    pub walk_s: f64,
    /// Thread time spent decoding (and resampling).
    pub decode_s: f64,
    /// Thread time spent tokenizing.
    pub tokenize_s: f64,
    /// Wall time spent writing and committing segments.
    pub storage_s: f64,
    /// The tokenizer the database records.
    pub tokenizer: TokenizerRecord,
    /// True when the run was stopped through [`IndexOptions::stop`] before the end.
    pub interrupted: bool,
    /// True when the run ended by merging the segments ([`IndexOptions::compact_above`]); its
    /// time is in `storage_s`.
    pub compacted: bool,
}

impl IndexReport {
    /// The report of a run that has done nothing yet, with `tokenizer`.
    pub fn empty(tokenizer: TokenizerRecord) -> IndexReport {
        IndexReport {
            files_found: 0,
            indexed: 0,
            skipped: 0,
            replaced: 0,
            duplicates: Vec::new(),
            failed: Vec::new(),
            batches: 0,
            audio_s: 0.0,
            tokens: 0,
            wall_s: 0.0,
            realtime: 0.0,
            walk_s: 0.0,
            decode_s: 0.0,
            tokenize_s: 0.0,
            storage_s: 0.0,
            tokenizer,
            interrupted: false,
            compacted: false,
        }
    }
}

/// A file left out because its content is already indexed under another id.
#[derive(Clone, Debug, Serialize)]
pub struct Duplicate {
    /// The file left out.
    pub path: std::path::PathBuf,
    /// The id of the document with the same content.
    pub of: String,
}

/// The document id of a file: its canonical absolute path (symbolic links resolved), as UTF-8.
/// Canonical so that the same file reached from another working directory, through a link or
/// named twice is recognized on a re-run and indexed once. Fails (with a reason) when the file
/// is gone or its path is not UTF-8.
pub fn doc_id(path: &Path) -> std::result::Result<String, String> {
    let canonical = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
    canonical
        .into_os_string()
        .into_string()
        .map_err(|p| format!("path {p:?} is not UTF-8 (document ids are UTF-8)"))
}

/// Checks that `tokenizer` may add to `db` ([`pairalign_engine::Searcher::accepts_tokenizer`]).
fn check_tokenizer(db: &Searcher, tokenizer: &dyn Tokenizer) -> Result<()> {
    Ok(db.accepts_tokenizer(
        tokenizer.id(),
        tokenizer.weights_hash(),
        tokenizer.vocab_size(),
    )?)
}

/// A database and its metadata catalog, opened for writing: what indexing writes to. Derefs to
/// the database for reading.
#[derive(Debug)]
pub struct Store {
    /// The token database (segments, MANIFEST, tombstones).
    pub db: DatabaseWriter,
    /// The metadata catalog in `<db>/catalog/`.
    pub catalog: Catalog,
}

/// Whether a file needs indexing ([`Store::freshness`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Freshness {
    /// Indexed with the size and modification time the file has now: nothing to do.
    Current,
    /// Indexed, but the file's size or modification time changed: its content may have; the
    /// catalog entry it was indexed with.
    Changed(Box<Asset>),
    /// Not indexed.
    New,
}

impl std::ops::Deref for Store {
    type Target = DatabaseWriter;

    fn deref(&self) -> &DatabaseWriter {
        &self.db
    }
}

impl Store {
    /// Opens an existing database for writing, and its catalog (created when missing: a
    /// database of imported tokens gets an empty one).
    pub fn open(dir: impl AsRef<Path>) -> Result<Store> {
        let dir = dir.as_ref();
        let db = DatabaseWriter::open(dir)?;
        let catalog = Catalog::open_or_create(dir)?;
        Ok(Store { db, catalog })
    }

    /// Deletes documents by id: tombstones first (the acknowledgement), then catalog entries.
    /// Once the tombstones are committed the delete has happened, so a catalog that cannot
    /// follow (a full disk) does not turn it into an error: its entries stay behind as ghosts,
    /// which readers drop (the module documentation of the catalog) and the next write of the
    /// same id or `pairalign repair` replaces.
    pub fn delete<S: AsRef<str>>(&mut self, ids: &[S]) -> Result<DeleteReport> {
        let report = self.db.delete(ids)?;
        // Ghosts are harmless; an error here would call a committed delete a failure.
        let _ = self.catalog.remove(&report.deleted);
        Ok(report)
    }

    /// Checks that `tokenizer` may add to this database ([`pairalign_engine::Searcher::accepts_tokenizer`]) and
    /// records it there when the database records none yet.
    pub fn record_tokenizer(&mut self, tokenizer: &dyn Tokenizer) -> Result<TokenizerRecord> {
        check_tokenizer(&self.db, tokenizer)?;
        let record = TokenizerRecord {
            id: tokenizer.id().to_string(),
            weights_hash: tokenizer.weights_hash().to_string(),
        };
        if self.db.tokenizer().is_none() {
            self.db.set_tokenizer(record.clone())?;
        }
        Ok(record)
    }

    /// Whether the file whose document id is `id` and whose size and modification time are now
    /// `stamp` needs indexing: [`Freshness::Current`] when this database holds `id` with the
    /// stamp its catalog recorded (or holds it from before the catalog existed: nothing to
    /// compare with), [`Freshness::Changed`] with the entry to compare contents with when it
    /// holds `id` otherwise, [`Freshness::New`] when it does not hold `id`.
    pub fn freshness(&self, id: &str, stamp: Option<(u64, i64)>) -> Result<Freshness> {
        if !self.db.contains(id)? {
            return Ok(Freshness::New);
        }
        Ok(match self.catalog.reader().get(id)? {
            None => Freshness::Current,
            Some(asset) if stamp.is_some() && stamp == asset.file_size.zip(asset.modified_ns) => {
                Freshness::Current
            }
            Some(asset) => Freshness::Changed(Box::new(asset)),
        })
    }

    /// The live document, other than `id`, whose content hash is `hash` and whose file (when it
    /// has one) still exists: a file with this content is a copy of it. A document whose file is
    /// gone was moved, and its content is indexed again under the new path.
    pub fn indexed_copy(&self, id: &str, hash: &str) -> Result<Option<String>> {
        Ok(self
            .catalog
            .reader()
            .by_hash(hash)?
            .into_iter()
            .map(|a| Ok((self.db.contains(&a.id)?, a)))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .find(|(live, a)| {
                a.id != id && *live && a.path.as_ref().is_none_or(|p| Path::new(p).exists())
            })
            .map(|(_, a)| a.id))
    }

    /// Commits indexed recordings: their catalog entries (and `other_assets`: new stamps of
    /// unchanged files) first, then, in one engine commit, the tombstones of the live documents
    /// they replace (`replacing`: ids whose files changed) and one segment with the new
    /// documents. The catalog goes first so that a crash can leave an entry for a document the
    /// database does not hold (readers ignore it), never a document without its entry; the
    /// engine commit is atomic, so a changed file is found as its old or its new version, never
    /// neither.
    pub fn commit(
        &mut self,
        recordings: Vec<IndexedRecording>,
        other_assets: Vec<Asset>,
        replacing: &[String],
    ) -> Result<DeleteReport> {
        let (docs, mut assets): (Vec<NewDoc>, Vec<Asset>) =
            recordings.into_iter().map(|r| (r.doc, r.asset)).unzip();
        assets.extend(other_assets);
        if !assets.is_empty() {
            self.catalog.upsert(&assets)?;
        }
        Ok(self.db.replace(replacing, &docs)?)
    }
}

/// Opens the database in `dir` for writing, creating it with the tokenizer's vocabulary (and the
/// default q) when missing, checks the tokenizer ([`pairalign_engine::Searcher::accepts_tokenizer`]), and opens (or
/// creates) its catalog.
pub fn open_or_create_for(dir: impl AsRef<Path>, tokenizer: &dyn Tokenizer) -> Result<Store> {
    let dir = dir.as_ref();
    let config = DatabaseConfig::new(tokenizer.vocab_size(), DatabaseConfig::default().q);
    let db = DatabaseWriter::open_or_create(dir, config)?;
    check_tokenizer(&db, tokenizer)?;
    let catalog = Catalog::open_or_create(dir)?;
    Ok(Store { db, catalog })
}

/// Indexes the audio files under `paths` into `db` with `tokenizer`, one document per file (id:
/// [`doc_id`]), committing a segment per batch, and records each in `catalog` with its metadata
/// (a sidecar JSON next to the file gives title and tags: [`AssetMetadata::from_sidecar`]).
/// Records the tokenizer in the database on first use. Files already indexed are skipped (see
/// the module documentation); a file that cannot be decoded or tokenized, or whose sidecar is
/// broken, is listed in [`IndexReport::failed`] and the run goes on. Errors only for what stops
/// the whole run: another tokenizer, a database or catalog failure, bad options.
pub fn index_paths<P: AsRef<Path>>(
    store: &mut Store,
    tokenizer: &(dyn Tokenizer + Sync),
    paths: &[P],
    options: &IndexOptions,
    mut progress: impl FnMut(&Progress) + Send,
) -> Result<IndexReport> {
    if options.batch_files == 0 || options.batch_seconds.is_nan() || options.batch_seconds <= 0.0 {
        return Err(Error::InvalidOption(format!(
            "batch limits must be positive, got {} files and {} s",
            options.batch_files, options.batch_seconds
        )));
    }
    let record = store.record_tokenizer(tokenizer)?;
    let started = Instant::now();
    let found = find_audio_files(paths);
    let mut run = Run {
        store,
        tokenizer,
        options,
        started,
        progress: Progress {
            files_total: found.files.len(),
            ..Progress::default()
        },
        report: IndexReport {
            files_found: found.files.len(),
            failed: found.problems,
            walk_s: started.elapsed().as_secs_f64(),
            ..IndexReport::empty(record)
        },
        pending: Vec::new(),
        pending_assets: Vec::new(),
        replacing: Vec::new(),
        pending_audio_s: 0.0,
        seen: std::collections::HashSet::new(),
        seen_hashes: std::collections::HashMap::new(),
    };
    run.progress.failed = run.report.failed.len();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.jobs)
        .build()?;
    // Inside the pool, so that the tokenizer's own parallel work also stays within `jobs` threads.
    pool.install(|| run.all(&found.files, &mut progress))?;
    let mut report = run.report;
    let too_many = options
        .compact_above
        .is_some_and(|limit| store.db.segment_count() > limit);
    if report.batches > 0 && !report.interrupted && too_many {
        let t = Instant::now();
        store.db.compact()?;
        report.storage_s += t.elapsed().as_secs_f64();
        report.compacted = true;
    }
    report.wall_s = started.elapsed().as_secs_f64();
    report.realtime = report.audio_s / report.wall_s.max(1e-9);
    Ok(report)
}

/// `reason` without the `<path>: ` that decoder errors start with (reports name the path
/// separately).
pub(crate) fn strip_path(path: &Path, reason: String) -> String {
    let prefix = format!("{}: ", path.display());
    match reason.strip_prefix(&prefix) {
        Some(rest) => rest.to_string(),
        None => reason,
    }
}

/// What a worker made of one file.
enum FileResult {
    /// Tokenized, with its catalog entry.
    Tokenized(IndexedRecording),
    /// Already indexed with this content; the catalog entry with the file's new size and
    /// modification time, so that the next run skips it without reading it.
    Unchanged(Asset),
    /// The same content is indexed under this other id.
    Duplicate(String),
}

/// One file's outcome from a worker, with its stage times.
struct FileOutcome {
    result: std::result::Result<FileResult, String>,
    decode_s: f64,
    tokenize_s: f64,
}

/// A file to hand to a worker.
struct Candidate<'p> {
    path: &'p Path,
    id: String,
    /// Size and modification time now.
    stamp: Option<(u64, i64)>,
    /// The catalog entry of the live document with this id, when there is one: the file is
    /// being checked for changes.
    existing: Option<Asset>,
}

/// The state of one indexing run.
struct Run<'a> {
    store: &'a mut Store,
    tokenizer: &'a (dyn Tokenizer + Sync),
    options: &'a IndexOptions,
    started: Instant,
    progress: Progress,
    report: IndexReport,
    /// Tokenized files of the batch not yet committed, and catalog entries to update (new
    /// stamps of unchanged files).
    pending: Vec<IndexedRecording>,
    pending_assets: Vec<Asset>,
    /// Ids of live documents the pending batch replaces (their files changed).
    replacing: Vec<String>,
    pending_audio_s: f64,
    /// Ids met in this run, so that a file named twice is indexed once.
    seen: std::collections::HashSet<String>,
    /// Content hashes tokenized in this run, with their ids: a copy within the run is a
    /// duplicate too.
    seen_hashes: std::collections::HashMap<String, String>,
}

impl Run<'_> {
    fn all(
        &mut self,
        files: &[std::path::PathBuf],
        progress: &mut impl FnMut(&Progress),
    ) -> Result<()> {
        // Groups of a few files per thread keep every thread busy between the serial steps (skip
        // checks, commits) while bounding how many decoded recordings exist at once.
        let group_len = rayon::current_num_threads().max(1) * 4;
        // The walk is done: tell the caller the total before the first file.
        self.tick(progress);
        let mut next = 0;
        while next < files.len() {
            if self.stop_requested() {
                self.report.interrupted = true;
                break;
            }
            let mut group = Vec::with_capacity(group_len);
            while group.len() < group_len && next < files.len() {
                let path = &files[next];
                next += 1;
                match self.candidate(path)? {
                    Err(reason) => self.fail(path, reason),
                    Ok(None) => self.skip(),
                    Ok(Some(candidate)) => group.push(candidate),
                }
            }
            let outcomes: Vec<FileOutcome> = group.par_iter().map(|c| self.process(c)).collect();
            for (candidate, outcome) in group.iter().zip(outcomes) {
                let path = candidate.path;
                self.report.decode_s += outcome.decode_s;
                self.report.tokenize_s += outcome.tokenize_s;
                match outcome.result {
                    Err(reason) => self.fail(path, reason),
                    Ok(FileResult::Unchanged(asset)) => {
                        self.skip();
                        self.pending_assets.push(asset);
                    }
                    Ok(FileResult::Duplicate(of)) => self.duplicate(path, of),
                    Ok(FileResult::Tokenized(file)) => {
                        if let Some(of) = self.seen_hashes.get(&file.asset.content_hash) {
                            let of = of.clone();
                            self.duplicate(path, of);
                        } else if let Err(e) = if candidate.existing.is_some() {
                            self.store.db.validate_content(&file.doc)
                        } else {
                            self.store.db.validate(&file.doc)
                        } {
                            self.fail(path, e.to_string());
                        } else {
                            self.seen_hashes
                                .insert(file.asset.content_hash.clone(), file.doc.id.clone());
                            if candidate.existing.is_some() {
                                self.replacing.push(file.doc.id.clone());
                            }
                            self.progress.indexed += 1;
                            self.progress.audio_s += file.asset.duration_s;
                            self.pending_audio_s += file.asset.duration_s;
                            self.pending.push(file);
                            if self.pending.len() >= self.options.batch_files
                                || self.pending_audio_s >= self.options.batch_seconds
                            {
                                self.commit()?;
                            }
                        }
                    }
                }
            }
            self.tick(progress);
        }
        self.commit()?;
        self.tick(progress);
        Ok(())
    }

    /// Whether `path` needs a worker: `Ok(None)` when it is already indexed unchanged (same
    /// size and modification time as recorded) or named twice, `Err` with a reason when it
    /// cannot be indexed.
    fn candidate<'p>(
        &mut self,
        path: &'p Path,
    ) -> Result<std::result::Result<Option<Candidate<'p>>, String>> {
        let id = match doc_id(path) {
            Ok(id) => id,
            Err(reason) => return Ok(Err(reason)),
        };
        if !self.seen.insert(id.clone()) {
            return Ok(Ok(None));
        }
        let stamp = file_stamp(path);
        let existing = match self.store.freshness(&id, stamp)? {
            Freshness::Current => return Ok(Ok(None)),
            Freshness::Changed(asset) => Some(*asset),
            Freshness::New => None,
        };
        Ok(Ok(Some(Candidate {
            path,
            id,
            stamp,
            existing,
        })))
    }

    fn skip(&mut self) {
        self.report.skipped += 1;
        self.progress.skipped += 1;
    }

    fn duplicate(&mut self, path: &Path, of: String) {
        self.report.duplicates.push(Duplicate {
            path: path.to_path_buf(),
            of,
        });
        self.progress.skipped += 1;
    }

    fn stop_requested(&self) -> bool {
        self.options
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }

    fn tick(&mut self, progress: &mut impl FnMut(&Progress)) {
        self.progress.files_done =
            self.progress.indexed + self.progress.skipped + self.progress.failed;
        self.progress.wall_s = self.started.elapsed().as_secs_f64();
        progress(&self.progress);
        self.progress.committed_ids.clear();
    }

    fn fail(&mut self, path: &Path, reason: String) {
        let reason = strip_path(path, reason);
        self.report.failed.push(FileProblem {
            path: path.to_path_buf(),
            reason,
        });
        self.progress.failed += 1;
    }

    /// Hashes, decodes and tokenizes one file (on a worker thread).
    fn process(&self, candidate: &Candidate<'_>) -> FileOutcome {
        let t = Instant::now();
        let prepared = self.prepare(candidate);
        let decode_s = t.elapsed().as_secs_f64();
        let (audio, asset) = match prepared {
            Ok(Ok(ready)) => ready,
            Ok(Err(done)) => {
                return FileOutcome {
                    result: Ok(done),
                    decode_s,
                    tokenize_s: 0.0,
                }
            }
            Err(reason) => {
                return FileOutcome {
                    result: Err(reason),
                    decode_s,
                    tokenize_s: 0.0,
                }
            }
        };
        let t = Instant::now();
        let result = index_recording(self.tokenizer, &audio.samples, asset)
            .map(FileResult::Tokenized)
            .map_err(|e| e.to_string());
        FileOutcome {
            result,
            decode_s,
            tokenize_s: t.elapsed().as_secs_f64(),
        }
    }

    /// Reads what a worker needs besides the tokens: the content hash (and, from it, whether
    /// the file is unchanged or a copy), the sidecar metadata, the headers, and the decoded
    /// samples. `Ok(Err(..))` when the file needs no tokenizing.
    #[allow(clippy::type_complexity)]
    fn prepare(
        &self,
        candidate: &Candidate<'_>,
    ) -> std::result::Result<
        std::result::Result<(pairalign_datasets::Audio, Asset), FileResult>,
        String,
    > {
        let path = candidate.path;
        let hash = hash_file(path).map_err(|e| format!("cannot read: {e}"))?;
        match &candidate.existing {
            Some(old) if old.content_hash == hash => {
                return Ok(Err(FileResult::Unchanged(Asset {
                    file_size: candidate.stamp.map(|s| s.0),
                    modified_ns: candidate.stamp.map(|s| s.1),
                    ..old.clone()
                })))
            }
            Some(_) => {}
            None => {
                if let Some(of) = self
                    .store
                    .indexed_copy(&candidate.id, &hash)
                    .map_err(|e| e.to_string())?
                {
                    return Ok(Err(FileResult::Duplicate(of)));
                }
            }
        }
        read_recording(
            path,
            &candidate.id,
            hash,
            candidate.stamp,
            &self.options.metadata,
            &self.options.decode,
        )
        .map(Ok)
    }

    /// Commits the pending batch as one segment (nothing to do when it is empty), with the
    /// tombstones of the documents it replaces, after its catalog entries ([`Store::commit`]).
    fn commit(&mut self) -> Result<()> {
        if self.pending.is_empty() && self.pending_assets.is_empty() {
            return Ok(());
        }
        let t = Instant::now();
        let batch = std::mem::take(&mut self.pending);
        let (indexed, tokens) = (batch.len(), batch.iter().map(|r| r.doc.tokens.len() as u64));
        let tokens: u64 = tokens.sum();
        let ids: Vec<String> = batch.iter().map(|r| r.doc.id.clone()).collect();
        let assets = std::mem::take(&mut self.pending_assets);
        let replaced = self.store.commit(batch, assets, &self.replacing)?;
        self.replacing.clear();
        self.report.storage_s += t.elapsed().as_secs_f64();
        if indexed == 0 {
            // Only new stamps of unchanged files.
            return Ok(());
        }
        self.report.replaced += replaced.deleted.len();
        self.report.batches += 1;
        self.report.indexed += indexed;
        self.report.audio_s += self.pending_audio_s;
        self.report.tokens += tokens;
        self.progress.committed += indexed;
        self.progress.committed_ids.extend(ids);
        self.pending_audio_s = 0.0;
        Ok(())
    }
}
