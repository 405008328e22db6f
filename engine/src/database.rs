//! A database is a directory of immutable segments, a MANIFEST and tombstones. [`Searcher`] is a
//! committed state of it, read only (search, find, info): any number, in any process, without a
//! lock. [`DatabaseWriter`] holds the directory's write lock (one per directory), stages
//! additions and deletions and commits them as one MANIFEST, compacts and merges; it derefs to
//! the [`Searcher`] of its last commit. The library entry point of the engine.

use std::collections::HashSet;
use std::fs::{self, File};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use roaring::RoaringBitmap;
use serde::Serialize;

use crate::durability::{note, Event};
use crate::manifest::{
    self, deletes_file_name, segment_file_name, segments_dir, DeletesEntry, Manifest, SegmentEntry,
    TokenizerRecord,
};
use crate::segment::{DocInput, DocRef, Segment, SegmentWriter};
use crate::{Error, Result, Symbol};

/// Nominal token rate of the PairAlign tokenizer (paper, section 5: 12.71 tokens per second). Used
/// only to give per-token times to imported strings that come with neither `times_ms` nor
/// `duration_ms`.
pub const NOMINAL_TOKENS_PER_SECOND: f64 = 12.7;

/// Longest document id, in bytes.
pub const MAX_ID_BYTES: usize = 1024;

const LOCK_FILE: &str = "LOCK";

/// The two settings fixed when a database is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct DatabaseConfig {
    /// Symbols are `0..vocab_size` (1 to 65,536).
    pub vocab_size: u32,
    /// Length of the indexed q-grams (1 to 8, with `vocab_size^q` below 2^64). 3 is the measured
    /// best for 12.7 tokens/s strings over 512 symbols (docs/RESULTS.md).
    pub q: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            vocab_size: 1024,
            q: 3,
        }
    }
}

impl DatabaseConfig {
    /// A configuration; call [`DatabaseConfig::check`] or let `DatabaseWriter::create` do it.
    pub fn new(vocab_size: u32, q: u32) -> Self {
        DatabaseConfig { vocab_size, q }
    }

    /// Checks the ranges documented on the fields.
    pub fn check(&self) -> Result<()> {
        // The segment writer owns the rule (it packs q-grams into u64 keys).
        SegmentWriter::new(self.vocab_size, self.q).map(|_| ())
    }
}

/// A document to add: a token string with optional timing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewDoc {
    /// Unique id of the document (1 to 1024 bytes of UTF-8), for example a file path.
    pub id: String,
    /// The token string.
    pub tokens: Vec<Symbol>,
    /// Start time of each token in ms, non-decreasing; same length as `tokens`.
    pub times_ms: Option<Vec<u32>>,
    /// Duration of the document in ms.
    pub duration_ms: Option<u32>,
}

impl NewDoc {
    /// Per-token times and duration, filling in what is missing: tokens spread evenly over
    /// `duration_ms` when only the duration is known, and at the nominal rate when neither is.
    pub fn resolved_times(&self) -> (Vec<u32>, u32) {
        let n = self.tokens.len();
        let nominal_ms = 1000.0 / NOMINAL_TOKENS_PER_SECOND;
        match (&self.times_ms, self.duration_ms) {
            (Some(times), Some(duration)) => (times.clone(), duration),
            (Some(times), None) => {
                let last = times.last().copied().unwrap_or(0);
                (
                    times.clone(),
                    last.saturating_add(nominal_ms.round() as u32),
                )
            }
            (None, duration) => {
                let duration = duration.unwrap_or((n as f64 * nominal_ms).round() as u32);
                let step = if n == 0 {
                    0.0
                } else {
                    f64::from(duration) / n as f64
                };
                let times = (0..n).map(|i| (i as f64 * step) as u32).collect();
                (times, duration)
            }
        }
    }
}

/// What `info` reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DatabaseInfo {
    /// Live segments.
    pub segments: usize,
    /// Live documents (tombstoned ones excluded).
    pub docs: u64,
    /// Tokens in live documents.
    pub tokens: u64,
    /// Bytes on disk of the MANIFEST, segments and tombstones.
    pub bytes: u64,
    /// Tombstoned documents not yet compacted away.
    pub deleted: u64,
    /// Database vocabulary size.
    pub vocab_size: u32,
    /// q-gram length.
    pub q: u32,
    /// Commit counter.
    pub generation: u64,
    /// The tokenizer recorded for this database, if any.
    pub tokenizer: Option<TokenizerRecord>,
}

/// Outcome of [`DatabaseWriter::commit`] (and `delete`, `replace`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeleteReport {
    /// Ids that were live and are now deleted.
    pub deleted: Vec<String>,
    /// Ids that were not in the database (or already deleted).
    pub missing: Vec<String>,
}

/// A committed state of a database, for reading only: one MANIFEST, its mapped segments and its
/// tombstones. Cheap to clone (the segments are shared); it does not change when a writer
/// commits (open a new one, or take the writer's [`DatabaseWriter::searcher`]).
#[derive(Clone, Debug)]
pub struct Searcher {
    dir: PathBuf,
    manifest: Manifest,
    pub(crate) segments: Vec<Arc<Segment>>,
    pub(crate) deletes: RoaringBitmap,
}

/// The one writer of a database directory: holds its write lock, stages additions
/// ([`DatabaseWriter::stage_add`]) and deletions ([`DatabaseWriter::stage_delete`]) and
/// commits them as one MANIFEST ([`DatabaseWriter::commit`]); compacts and merges. Derefs to
/// the [`Searcher`] of its last commit.
#[derive(Debug)]
pub struct DatabaseWriter {
    committed: Searcher,
    /// The directory's `LOCK`, held while the writer lives.
    _lock: File,
    staged_deletes: Vec<String>,
    staged_docs: Vec<NewDoc>,
    /// Most tokens one segment gets ([`MAX_SEGMENT_TOKENS`], lower in tests).
    segment_token_limit: u64,
}

/// Most tokens in one segment: a segment addresses its tokens with `u32` (about 94,000 hours at
/// 12.7 tokens a second). A larger batch, or a compaction of more, is written as several
/// segments in the same commit.
pub const MAX_SEGMENT_TOKENS: u64 = u32::MAX as u64;

impl Deref for DatabaseWriter {
    type Target = Searcher;

    fn deref(&self) -> &Searcher {
        &self.committed
    }
}

impl Searcher {
    /// Opens the committed state of the database in `dir` for searching. Takes no lock, so it
    /// works while a writer runs (and keeps its snapshot while the writer commits).
    pub fn open(dir: impl AsRef<Path>) -> Result<Searcher> {
        let dir = dir.as_ref();
        // A writer may commit and remove old segments between reading the MANIFEST and mapping
        // them; retry with the newer MANIFEST when that happens.
        let mut attempts = 0;
        loop {
            let manifest = Manifest::read(dir)?;
            let generation = manifest.generation;
            match Self::load(dir, manifest) {
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound
                        && attempts < 5
                        && Manifest::read(dir).map(|m| m.generation).ok() != Some(generation) =>
                {
                    attempts += 1;
                }
                other => return other,
            }
        }
    }

    fn load(dir: &Path, manifest: Manifest) -> Result<Searcher> {
        let seg_dir = segments_dir(dir);
        let mut segments = Vec::with_capacity(manifest.segments.len());
        for entry in &manifest.segments {
            let path = seg_dir.join(&entry.file);
            let segment = Segment::open_deferred(&path)?;
            check_segment_against_manifest(&segment, entry, &manifest, &path)?;
            segments.push(Arc::new(segment));
        }
        let deletes = match &manifest.deletes {
            None => RoaringBitmap::new(),
            Some(entry) => read_deletes(&dir.join(&entry.file), entry)?,
        };
        // The sections' checksums and contents are checked in the background, so that opening
        // costs what the MANIFEST and the headers cost; the first use of a segment waits for its
        // check (or runs it) and a damaged one is an error then (`Searcher::verified`). Only
        // once the open has succeeded, and through a weak reference: a check still queued when
        // the snapshot is dropped does not run, so it does not keep reading a mapping whose
        // file the caller may go on to replace or cut (reading a cut mapping is SIGBUS).
        for segment in &segments {
            let segment = Arc::downgrade(segment);
            rayon::spawn(move || {
                if let Some(segment) = segment.upgrade() {
                    let _ = segment.verify();
                }
            });
        }
        Ok(Searcher {
            dir: dir.to_path_buf(),
            manifest,
            segments,
            deletes,
        })
    }

    /// The database directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Vocabulary size and q.
    pub fn config(&self) -> DatabaseConfig {
        DatabaseConfig::new(self.manifest.vocab_size, self.manifest.q)
    }

    /// The committed manifest this snapshot reflects.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The live segments, oldest first, each checked in full (checksums and contents:
    /// [`Segment::verify`]; done once per segment, in the background after open, so this waits
    /// at most for what is not done yet). A damaged segment is `Error::Corrupt` naming the file
    /// and the section.
    pub fn segments(&self) -> Result<&[Arc<Segment>]> {
        self.verified()
    }

    /// How many segments the snapshot has (no check needed).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Checks every segment in full now ([`Searcher::segments`]); `pairalign check` and a
    /// server started with `--verify` call it before serving.
    pub fn verify(&self) -> Result<()> {
        self.verified().map(|_| ())
    }

    /// The segments once every one has passed its full check (in parallel for those not done).
    pub(crate) fn verified(&self) -> Result<&[Arc<Segment>]> {
        if self.segments.iter().all(|s| s.is_verified()) {
            return Ok(&self.segments);
        }
        self.segments.par_iter().try_for_each(|s| s.verify())?;
        Ok(&self.segments)
    }

    /// Whether document number `doc_id` is tombstoned.
    pub fn is_deleted(&self, doc_id: u32) -> bool {
        self.deletes.contains(doc_id)
    }

    /// The tokenizer recorded for this database.
    pub fn tokenizer(&self) -> Option<&TokenizerRecord> {
        self.manifest.tokenizer.as_ref()
    }

    /// Checks that a tokenizer (its `id`, `weights_hash` and `vocab_size`) may add to or search
    /// this database: the database records this tokenizer, or records none and holds no
    /// documents yet; and its symbols fit the database's vocabulary. Errors with
    /// [`Error::TokenizerMismatch`], saying which.
    pub fn accepts_tokenizer(&self, id: &str, weights_hash: &str, vocab_size: u32) -> Result<()> {
        match self.tokenizer() {
            Some(rec) if rec.id == id && rec.weights_hash == weights_hash => {}
            Some(rec) => {
                let (dir, old, old_hash) = (self.dir.display(), &rec.id, &rec.weights_hash);
                return Err(Error::TokenizerMismatch(format!(
                    "{dir} was built with tokenizer {old} (weights {old_hash}), \
                     not {id} (weights {weights_hash})"
                )));
            }
            None if !self.segments.is_empty() => {
                return Err(Error::TokenizerMismatch(format!(
                    "{} holds documents that no tokenizer recorded (imported tokens); \
                     index audio into a new database",
                    self.dir.display()
                )))
            }
            None => {}
        }
        let vocab = self.manifest.vocab_size;
        if vocab_size > vocab {
            return Err(Error::TokenizerMismatch(format!(
                "tokenizer {id} has {vocab_size} symbols but {} was created for {vocab}",
                self.dir.display()
            )));
        }
        Ok(())
    }

    /// Finds a live document by id: (segment index, ordinal in the segment).
    pub fn find(&self, id: &str) -> Result<Option<(usize, usize)>> {
        // Newest first: after a delete and re-add, the live copy is in a newer segment.
        Ok(self
            .verified()?
            .iter()
            .enumerate()
            .rev()
            .find_map(|(s, seg)| {
                let ord = seg.find(id)?;
                (!self.deletes.contains(seg.doc(ord).doc_id)).then_some((s, ord))
            }))
    }

    /// Every live document, oldest segment first, as it would be added again (id, tokens,
    /// times, duration): what copying documents into another database reads. Lazy, one document
    /// at a time; every segment is checked in full first.
    pub fn live_docs(&self) -> Result<impl Iterator<Item = NewDoc> + '_> {
        let segments = self.verified()?;
        Ok(segments.iter().flat_map(move |segment| {
            segment
                .docs()
                .filter(move |doc| !self.deletes.contains(doc.doc_id))
                .map(|doc| NewDoc {
                    id: doc.name.to_string(),
                    tokens: doc.tokens.to_vec(),
                    times_ms: Some(doc.times_ms.to_vec()),
                    duration_ms: Some(doc.duration_ms),
                })
        }))
    }

    /// Whether a live document has this id.
    pub fn contains(&self, id: &str) -> Result<bool> {
        Ok(self.find(id)?.is_some())
    }

    /// Checks one document against the database without adding it: id length, symbols in the
    /// vocabulary, times consistent, id not already live.
    pub fn validate(&self, doc: &NewDoc) -> Result<()> {
        self.validate_content(doc)?;
        if self.contains(&doc.id)? {
            return Err(Error::DuplicateId(doc.id.clone()));
        }
        Ok(())
    }

    /// [`Searcher::validate`] without the id check: for a document that will replace a live
    /// one (deleted, then added again).
    pub fn validate_content(&self, doc: &NewDoc) -> Result<()> {
        if doc.id.is_empty() || doc.id.len() > MAX_ID_BYTES {
            return Err(Error::InvalidInput(format!(
                "id must be 1 to {MAX_ID_BYTES} bytes, got {}",
                doc.id.len()
            )));
        }
        check_vocabulary(&doc.tokens, self.manifest.vocab_size)?;
        if let Some(times) = &doc.times_ms {
            if times.len() != doc.tokens.len() {
                return Err(Error::InvalidInput(format!(
                    "times_ms has {} entries but tokens has {}",
                    times.len(),
                    doc.tokens.len()
                )));
            }
            if let Some(i) = times.windows(2).position(|w| w[1] < w[0]) {
                return Err(Error::InvalidInput(format!(
                    "times_ms decreases at index {}",
                    i + 1
                )));
            }
            if let (Some(&last), Some(duration)) = (times.last(), doc.duration_ms) {
                if last > duration {
                    return Err(Error::InvalidInput(format!(
                        "times_ms ends at {last} ms, after duration_ms {duration}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The MANIFEST generation this snapshot was opened at (every commit increments it):
    /// compare with [`crate::manifest::Manifest::read`]'s to know whether a newer state is
    /// committed.
    pub fn generation(&self) -> u64 {
        self.manifest.generation
    }

    /// Counts and sizes.
    pub fn info(&self) -> Result<DatabaseInfo> {
        let mut docs = 0u64;
        let mut tokens = 0u64;
        let mut bytes = 0u64;
        // Counted in the segments: a merge of the newest segments drops the documents it
        // tombstoned but leaves their numbers in the tombstone file until a full compaction.
        let mut deleted = 0u64;
        for segment in self.verified()? {
            bytes += segment.byte_len();
            for ord in 0..segment.doc_count() {
                if self.deletes.contains(segment.doc_id(ord)) {
                    deleted += 1;
                } else {
                    docs += 1;
                    tokens += segment.doc_tokens(ord).len() as u64;
                }
            }
        }
        let manifest_path = self.dir.join(manifest::MANIFEST_FILE);
        bytes += fs::metadata(&manifest_path)
            .map_err(|e| Error::io(&manifest_path, e))?
            .len();
        if let Some(entry) = &self.manifest.deletes {
            let path = self.dir.join(&entry.file);
            bytes += fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
        }
        Ok(DatabaseInfo {
            segments: self.segments.len(),
            docs,
            tokens,
            bytes,
            deleted,
            vocab_size: self.manifest.vocab_size,
            q: self.manifest.q,
            generation: self.manifest.generation,
            tokenizer: self.manifest.tokenizer.clone(),
        })
    }
}

impl DatabaseWriter {
    /// Creates a new, empty database in `dir` (created if missing; must not hold a database).
    pub fn create(dir: impl AsRef<Path>, config: DatabaseConfig) -> Result<DatabaseWriter> {
        let dir = dir.as_ref();
        config.check()?;
        fs::create_dir_all(segments_dir(dir)).map_err(|e| Error::io(dir, e))?;
        let lock = lock(dir)?;
        if dir.join(manifest::MANIFEST_FILE).exists() {
            return Err(Error::AlreadyExists {
                path: dir.to_path_buf(),
            });
        }
        let manifest = Manifest::new(config.vocab_size, config.q);
        manifest.commit(dir)?;
        manifest::sync_dir(dir)?;
        // The directory's own entry: without this a power loss could lose the new database.
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        manifest::sync_dir(parent)?;
        Ok(DatabaseWriter {
            committed: Searcher {
                dir: dir.to_path_buf(),
                manifest,
                segments: Vec::new(),
                deletes: RoaringBitmap::new(),
            },
            _lock: lock,
            staged_deletes: Vec::new(),
            staged_docs: Vec::new(),
            segment_token_limit: MAX_SEGMENT_TOKENS,
        })
    }

    /// Opens an existing database for reading and writing, taking its write lock, and removes
    /// leftovers of interrupted writes (files the MANIFEST does not name).
    pub fn open(dir: impl AsRef<Path>) -> Result<DatabaseWriter> {
        let dir = dir.as_ref();
        let manifest = Manifest::read(dir)?;
        let lock = lock(dir)?;
        // Re-read under the lock: a writer may have committed between the two reads.
        let manifest = Manifest::read(dir).unwrap_or(manifest);
        let db = DatabaseWriter {
            committed: Searcher::load(dir, manifest)?,
            _lock: lock,
            staged_deletes: Vec::new(),
            staged_docs: Vec::new(),
            segment_token_limit: MAX_SEGMENT_TOKENS,
        };
        db.remove_unreferenced_files()?;
        Ok(db)
    }

    /// Opens the database at `dir` if it exists, else creates it with `config`.
    pub fn open_or_create(dir: impl AsRef<Path>, config: DatabaseConfig) -> Result<DatabaseWriter> {
        let dir = dir.as_ref();
        if dir.join(manifest::MANIFEST_FILE).exists() {
            Self::open(dir)
        } else {
            Self::create(dir, config)
        }
    }

    /// The committed state as a [`Searcher`], sharing its mapped segments (cheap: no file is
    /// read). A server's writer hands these to its searchers after each commit: they see only
    /// committed data and keep working while the writer commits, compacts or deletes.
    pub fn searcher(&self) -> Searcher {
        self.committed.clone()
    }

    /// Records the tokenizer; fails if a different one is already recorded.
    pub fn set_tokenizer(&mut self, tokenizer: TokenizerRecord) -> Result<()> {
        match &self.committed.manifest.tokenizer {
            Some(existing) if *existing == tokenizer => Ok(()),
            Some(existing) => Err(Error::InvalidInput(format!(
                "database was built with tokenizer {} ({}), not {} ({})",
                existing.id, existing.weights_hash, tokenizer.id, tokenizer.weights_hash
            ))),
            None => {
                let mut next = self.committed.manifest.clone();
                next.tokenizer = Some(tokenizer);
                self.commit_manifest(next, Vec::new())
            }
        }
    }

    /// Adds documents as one new segment and commits (with anything staged before). All or
    /// nothing: if any document is invalid (see [`Searcher::validate`]) or ids repeat within
    /// the batch, nothing is added.
    pub fn add_tokens(&mut self, docs: &[NewDoc]) -> Result<()> {
        self.stage_add(docs)?;
        self.commit().map(|_| ())
    }

    /// Tombstones the live documents with these ids and commits (with anything staged before).
    pub fn delete<S: AsRef<str>>(&mut self, ids: &[S]) -> Result<DeleteReport> {
        self.stage_delete(ids);
        self.commit()
    }

    /// Stages documents to add at the next [`DatabaseWriter::commit`]. All or nothing: each
    /// document must be valid ([`Searcher::validate_content`]), its id not repeated among the
    /// staged ones, and not live unless staged for deletion (a replacement). Nothing is visible
    /// to searchers, nor durable, before the commit.
    pub fn stage_add(&mut self, docs: &[NewDoc]) -> Result<()> {
        let mut ids: HashSet<&str> = self.staged_docs.iter().map(|d| d.id.as_str()).collect();
        for doc in docs {
            self.validate_content(doc)?;
            let replaced = self.staged_deletes.contains(&doc.id);
            if !ids.insert(doc.id.as_str()) || (!replaced && self.contains(&doc.id)?) {
                return Err(Error::DuplicateId(doc.id.clone()));
            }
        }
        self.staged_docs.extend_from_slice(docs);
        Ok(())
    }

    /// Stages the live documents with these ids for deletion at the next
    /// [`DatabaseWriter::commit`] (which reports which were live).
    pub fn stage_delete<S: AsRef<str>>(&mut self, ids: &[S]) {
        self.staged_deletes
            .extend(ids.iter().map(|id| id.as_ref().to_string()));
    }

    /// Drops what is staged.
    pub fn rollback(&mut self) {
        self.staged_deletes.clear();
        self.staged_docs.clear();
    }

    /// Commits what is staged as one MANIFEST: the staged deletions' tombstones and one segment
    /// with the staged documents. A searcher (or a crash) sees the state before or the state
    /// after, never the old documents gone without the new ones. Nothing staged: nothing
    /// written. What is staged is dropped whether the commit succeeds or not.
    pub fn commit(&mut self) -> Result<DeleteReport> {
        let delete = std::mem::take(&mut self.staged_deletes);
        let docs = std::mem::take(&mut self.staged_docs);
        self.apply(&delete, &docs)
    }

    /// Stages deletions of `delete` and additions of `docs` and commits them together: a
    /// document of `docs` may take the id of a live one only when that id is in `delete` (a
    /// changed file indexed again).
    pub fn replace<S: AsRef<str>>(
        &mut self,
        delete: &[S],
        docs: &[NewDoc],
    ) -> Result<DeleteReport> {
        self.stage_delete(delete);
        if let Err(e) = self.stage_add(docs) {
            self.rollback();
            return Err(e);
        }
        self.commit()
    }

    /// The commit itself: tombstones for the live documents among `delete`, one segment for
    /// `docs`, one MANIFEST.
    fn apply<S: AsRef<str>>(&mut self, delete: &[S], docs: &[NewDoc]) -> Result<DeleteReport> {
        let mut report = DeleteReport::default();
        let mut deletes = self.committed.deletes.clone();
        for id in delete {
            let id = id.as_ref();
            match self.find(id)? {
                Some((s, ord)) if deletes.insert(self.committed.segments[s].doc(ord).doc_id) => {
                    report.deleted.push(id.to_string())
                }
                _ => report.missing.push(id.to_string()),
            }
        }
        let mut ids = HashSet::with_capacity(docs.len());
        for doc in docs {
            self.validate_content(doc)?;
            let replaced = report.deleted.contains(&doc.id);
            if !ids.insert(doc.id.as_str()) || (!replaced && self.contains(&doc.id)?) {
                return Err(Error::DuplicateId(doc.id.clone()));
            }
        }
        if report.deleted.is_empty() && docs.is_empty() {
            return Ok(report);
        }
        let mut next = self.committed.manifest.clone();
        let segments = if docs.is_empty() {
            Vec::new()
        } else {
            let first_id = next.next_doc_id;
            let count = u32::try_from(docs.len())
                .ok()
                .filter(|n| first_id.checked_add(*n).is_some())
                .ok_or_else(|| Error::InvalidInput("too many documents for one database".into()))?;
            let resolved: Vec<(Vec<u32>, u32)> = docs.iter().map(NewDoc::resolved_times).collect();
            let inputs = docs
                .iter()
                .zip(&resolved)
                .enumerate()
                .map(|(i, (doc, t))| DocInput {
                    name: &doc.id,
                    doc_id: first_id + i as u32,
                    tokens: &doc.tokens,
                    times_ms: &t.0,
                    duration_ms: t.1,
                });
            let written = self.write_segments(inputs, &mut next)?;
            next.next_doc_id = first_id + count;
            written
        };
        if !report.deleted.is_empty() {
            // Named after the generation the commit below assigns, so the name is always new.
            next.deletes = Some(write_deletes(
                &self.committed.dir,
                next.generation + 1,
                &deletes,
            )?);
        }
        let garbage = self.unreferenced_after(&next);
        self.commit_manifest(next, garbage)?;
        self.committed
            .segments
            .extend(segments.into_iter().map(Arc::new));
        self.committed.deletes = deletes;
        Ok(report)
    }

    /// Merges all segments into one, dropping tombstoned documents, and commits. Document numbers
    /// and ids are kept.
    pub fn compact(&mut self) -> Result<()> {
        if self.committed.segments.len() <= 1 && self.committed.deletes.is_empty() {
            return Ok(());
        }
        self.merge_from(0)
    }

    /// Merges the newest small segments when [`tiered_merge_start`] says so (at least `factor`
    /// of them in the same size tier) and commits; returns how many segments were merged (0:
    /// none). A writer that commits one small segment per document (the server's uploads) calls
    /// it after each commit: the segment count then grows with the logarithm of the archive,
    /// and each document is rewritten a few times per tier rather than at every compaction.
    pub fn merge_small(&mut self, factor: usize) -> Result<usize> {
        let sizes: Vec<u64> = self
            .committed
            .manifest
            .segments
            .iter()
            .map(|e| e.bytes)
            .collect();
        match tiered_merge_start(&sizes, factor) {
            Some(from) => {
                self.merge_from(from)?;
                Ok(sizes.len() - from)
            }
            None => Ok(0),
        }
    }

    /// Rewrites the segments from `from` on as one, without their tombstoned documents, and
    /// commits. From 0 the tombstones go too (no live segment refers to them any more); from
    /// later they stay, since older segments may hold the documents they name.
    fn merge_from(&mut self, from: usize) -> Result<()> {
        self.verified()?;
        let everything = from == 0;
        let mut next = self.committed.manifest.clone();
        next.segments.truncate(from);
        if everything {
            next.deletes = None;
        }
        let old_files = self.unreferenced_after(&next);
        let deletes = &self.committed.deletes;
        let inputs = self.committed.segments[from..].iter().flat_map(|segment| {
            segment
                .docs()
                .filter(|doc| !deletes.contains(doc.doc_id))
                .map(|doc| MergedDoc {
                    times_ms: doc.times_ms.to_vec(),
                    doc,
                })
        });
        let merged = self.write_segments(inputs, &mut next)?;
        self.commit_manifest(next, old_files)?;
        self.committed.segments.truncate(from);
        self.committed
            .segments
            .extend(merged.into_iter().map(Arc::new));
        if everything {
            self.committed.deletes = RoaringBitmap::new();
        }
        Ok(())
    }

    /// Writes `docs` as new segments recorded in `next`: one, or as many as keep each below the
    /// segment token limit ([`MAX_SEGMENT_TOKENS`]; a segment addresses its tokens with `u32`).
    /// No segment for no documents.
    fn write_segments(
        &self,
        docs: impl IntoIterator<Item = impl ToDocInput>,
        next: &mut Manifest,
    ) -> Result<Vec<Segment>> {
        let mut written = Vec::new();
        let mut writer = SegmentWriter::new(next.vocab_size, next.q)?;
        let mut tokens = 0u64;
        for doc in docs {
            let doc = doc.to_input();
            let len = doc.tokens.len() as u64;
            if writer.doc_count() > 0 && tokens + len > self.segment_token_limit {
                let full =
                    std::mem::replace(&mut writer, SegmentWriter::new(next.vocab_size, next.q)?);
                written.push(self.write_segment(full, next)?);
                tokens = 0;
            }
            writer.add(&doc)?;
            tokens += len;
        }
        if writer.doc_count() > 0 {
            written.push(self.write_segment(writer, next)?);
        }
        Ok(written)
    }

    /// Lowers the segment token limit ([`MAX_SEGMENT_TOKENS`]) so that tests can see segments
    /// split without writing billions of tokens.
    #[doc(hidden)]
    pub fn set_segment_token_limit(&mut self, limit: u64) {
        self.segment_token_limit = limit.clamp(1, MAX_SEGMENT_TOKENS);
    }

    /// Writes a new segment file named from `next.next_segment_id` and records it in `next`.
    fn write_segment(&self, writer: SegmentWriter, next: &mut Manifest) -> Result<Segment> {
        let seg_dir = segments_dir(&self.committed.dir);
        let file = segment_file_name(next.next_segment_id);
        let path = seg_dir.join(&file);
        // A leftover of a crashed writer may hold the name; it was never committed.
        if path.exists() {
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            note(|| Event::Removed(path.clone()));
        }
        let info = writer.write(&path)?;
        manifest::sync_dir(&seg_dir)?;
        next.next_segment_id += 1;
        next.segments.push(SegmentEntry {
            file,
            doc_count: info.doc_count,
            token_count: info.token_count,
            bytes: info.bytes,
        });
        Segment::open(&path)
    }

    /// Commits `next` as the new MANIFEST, then removes `garbage` (files no longer referenced).
    fn commit_manifest(&mut self, mut next: Manifest, garbage: Vec<PathBuf>) -> Result<()> {
        next.generation += 1;
        next.commit(&self.committed.dir)?;
        self.committed.manifest = next;
        for path in garbage {
            remove_unreferenced(path);
        }
        Ok(())
    }

    /// Files of the current state that `next` no longer references.
    fn unreferenced_after(&self, next: &Manifest) -> Vec<PathBuf> {
        let seg_dir = segments_dir(&self.committed.dir);
        let mut garbage: Vec<PathBuf> = self
            .manifest
            .segments
            .iter()
            .filter(|e| !next.segments.iter().any(|n| n.file == e.file))
            .map(|e| seg_dir.join(&e.file))
            .collect();
        if let Some(d) = &self.committed.manifest.deletes {
            if next.deletes.as_ref().map(|n| &n.file) != Some(&d.file) {
                garbage.push(self.committed.dir.join(&d.file));
            }
        }
        garbage
    }

    /// Removes segment and tombstone files that the committed MANIFEST does not name, and a stale
    /// `MANIFEST.tmp`: what an interrupted writer leaves behind.
    fn remove_unreferenced_files(&self) -> Result<()> {
        let seg_dir = segments_dir(&self.committed.dir);
        let live: HashSet<&str> = self
            .manifest
            .segments
            .iter()
            .map(|e| e.file.as_str())
            .collect();
        if let Ok(entries) = fs::read_dir(&seg_dir) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if (manifest::is_segment_file_name(&name) || name.ends_with(".tmp"))
                    && !live.contains(name.as_ref())
                {
                    remove_unreferenced(entry.path());
                }
            }
        }
        let live_deletes = self
            .committed
            .manifest
            .deletes
            .as_ref()
            .map(|d| d.file.as_str());
        let entries =
            fs::read_dir(&self.committed.dir).map_err(|e| Error::io(&self.committed.dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let stale_deletes =
                manifest::is_deletes_file_name(&name) && Some(name.as_ref()) != live_deletes;
            if stale_deletes || name == "MANIFEST.tmp" {
                remove_unreferenced(entry.path());
            }
        }
        Ok(())
    }
}

/// Segments up to this size share the lowest tier of [`tiered_merge_start`].
pub const MERGE_TIER_BYTES: u64 = 1 << 20;

/// The size-tiered merge policy (the log merge policy of Lucene and of LSM stores): a segment's
/// tier is `floor(log_factor(bytes / MERGE_TIER_BYTES))` (0 up to 1 MiB). Going back from the
/// newest segment, the run of segments whose tier is at most the newest one's is merged when it
/// holds at least `factor` segments; the result is the index in `sizes` (oldest first) where the
/// run starts. Older, larger segments are left alone, so a merge rewrites at most about `factor`
/// times the newest tier's size, and the count stays below `factor` per tier.
pub fn tiered_merge_start(sizes: &[u64], factor: usize) -> Option<usize> {
    let factor = factor.max(2);
    let tier = |bytes: u64| {
        let mut tier = 0u32;
        let mut bound = MERGE_TIER_BYTES;
        while bytes > bound {
            tier += 1;
            bound = bound.saturating_mul(factor as u64);
        }
        tier
    };
    let newest = tier(*sizes.last()?);
    let from = sizes
        .iter()
        .rposition(|&bytes| tier(bytes) > newest)
        .map_or(0, |older| older + 1);
    (sizes.len() - from >= factor).then_some(from)
}

/// Removes a file the committed MANIFEST does not name. Best effort: one that cannot be removed
/// now is removed by the next open (`remove_unreferenced_files`).
fn remove_unreferenced(path: PathBuf) {
    if fs::remove_file(&path).is_ok() {
        note(|| Event::Removed(path));
    }
}

fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(Error::Locked {
            path: dir.to_path_buf(),
        }),
        Err(fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

fn check_segment_against_manifest(
    segment: &Segment,
    entry: &SegmentEntry,
    manifest: &Manifest,
    path: &Path,
) -> Result<()> {
    let mismatch = |what: &str, file: String, recorded: String| {
        Err(Error::corrupt(
            path,
            "manifest entry",
            format!("{what} is {file} in the file but {recorded} in the MANIFEST"),
        ))
    };
    if segment.byte_len() != entry.bytes {
        return mismatch(
            "size",
            segment.byte_len().to_string(),
            entry.bytes.to_string(),
        );
    }
    if segment.doc_count() as u64 != u64::from(entry.doc_count) {
        return mismatch(
            "doc count",
            segment.doc_count().to_string(),
            entry.doc_count.to_string(),
        );
    }
    if segment.vocab_size() != manifest.vocab_size || segment.q() != manifest.q {
        return mismatch(
            "vocab_size/q",
            format!("{}/{}", segment.vocab_size(), segment.q()),
            format!("{}/{}", manifest.vocab_size, manifest.q),
        );
    }
    // Every document number below the MANIFEST's next one: checked with the contents, once the
    // doc table is known to be sound (`Segment::verify`).
    segment.require_doc_ids_below(manifest.next_doc_id);
    Ok(())
}

/// A document on its way into a new segment ([`DatabaseWriter::write_segments`]): one the caller
/// added, or one of a segment being merged.
trait ToDocInput {
    fn to_input(&self) -> DocInput<'_>;
}

impl ToDocInput for DocInput<'_> {
    fn to_input(&self) -> DocInput<'_> {
        *self
    }
}

/// A document of a segment being merged, with its times decoded (a v2 segment keeps them packed,
/// the writer takes a slice).
struct MergedDoc<'a> {
    doc: DocRef<'a>,
    times_ms: Vec<u32>,
}

impl ToDocInput for MergedDoc<'_> {
    fn to_input(&self) -> DocInput<'_> {
        DocInput {
            name: self.doc.name,
            doc_id: self.doc.doc_id,
            tokens: self.doc.tokens,
            times_ms: &self.times_ms,
            duration_ms: self.doc.duration_ms,
        }
    }
}

fn write_deletes(dir: &Path, generation: u64, deletes: &RoaringBitmap) -> Result<DeletesEntry> {
    let file = deletes_file_name(generation);
    let path = dir.join(&file);
    let mut bytes = Vec::with_capacity(deletes.serialized_size());
    deletes
        .serialize_into(&mut bytes)
        .map_err(|e| Error::io(&path, e))?;
    manifest::write_synced(&path, &bytes)?;
    manifest::sync_dir(dir)?;
    Ok(DeletesEntry {
        file,
        count: deletes.len(),
        crc32: crc32fast::hash(&bytes),
    })
}

fn read_deletes(path: &Path, entry: &DeletesEntry) -> Result<RoaringBitmap> {
    const SECTION: &str = "deletes";
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    let crc = crc32fast::hash(&bytes);
    if crc != entry.crc32 {
        return Err(Error::corrupt(
            path,
            SECTION,
            format!(
                "checksum mismatch (MANIFEST says {:08x}, file has {crc:08x})",
                entry.crc32
            ),
        ));
    }
    let bitmap = RoaringBitmap::deserialize_from(&bytes[..])
        .map_err(|e| Error::corrupt(path, SECTION, e.to_string()))?;
    if bitmap.len() != entry.count {
        return Err(Error::corrupt(
            path,
            SECTION,
            format!(
                "{} tombstones but the MANIFEST says {}",
                bitmap.len(),
                entry.count
            ),
        ));
    }
    Ok(bitmap)
}

/// [`Error::SymbolOutOfVocabulary`] for the first symbol of `tokens` not below `vocab_size`: a
/// document or a query with such a symbol cannot be held or matched.
pub(crate) fn check_vocabulary(tokens: &[Symbol], vocab_size: u32) -> Result<()> {
    match tokens
        .iter()
        .enumerate()
        .find(|(_, &s)| u32::from(s) >= vocab_size)
    {
        Some((position, &symbol)) => Err(Error::SymbolOutOfVocabulary {
            symbol,
            position,
            vocab_size,
        }),
        None => Ok(()),
    }
}
