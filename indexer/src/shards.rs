//! Sharded archives: one folder holding N databases (`shard-0000`, `shard-0001`, ...), each with
//! its own catalog, every document in the shard a stable hash of its id names ([`shard_of`]).
//! What a distributed indexer writes (the Ray bulk indexer of the Python package: workers
//! tokenize with [`crate::prepare_file`], one process writes with [`ShardWriter`]) and a
//! sharded search fans out over; `pairalign merge` makes one database of the shards when one
//! machine suffices.
//!
//! The writer keeps the guarantees of [`crate::index_paths`]: a rerun skips the files committed
//! unchanged ([`ShardWriter::plan`]), a changed file replaces its document, a copy of indexed
//! content (in any shard) is reported and skipped, and each shard commits a batch at a time, so
//! a killed writer loses at most the batches it had not committed. Recordings reach the writer
//! from other processes as bytes ([`PreparedRecording`]), which name the tokenizer that made
//! them: tokens of another tokenizer are refused.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use pairalign_catalog::{file_stamp, hash_file, Asset, AssetMetadata};
use pairalign_datasets::decode::DecodeOptions;
use pairalign_engine::{NewDoc, Symbol, TokenizerRecord};
use pairalign_models::Tokenizer;
use serde::{Deserialize, Serialize};

use crate::pipeline::{strip_path, Freshness, IndexReport, Store};
use crate::recording::{index_recording, read_recording};
use crate::walk::{find_audio_files, FileProblem};
use crate::{doc_id, open_or_create_for, Duplicate, Error, IndexedRecording, Result};

/// The file in a sharded archive's folder that says how many shards it has and how documents
/// are assigned to them.
pub const SHARDS_FILE: &str = "SHARDS.json";

/// How [`shard_of`] assigns documents, as [`SHARDS_FILE`] records it.
const ASSIGNMENT: &str = "blake3-u64le-mod";

/// The most shards an archive may have.
pub const MAX_SHARDS: usize = 4096;

/// The contents of [`SHARDS_FILE`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShardsFile {
    shards: usize,
    assignment: String,
}

/// The shard of the document `id` among `shards`: the first 8 bytes of the BLAKE3 hash of its
/// UTF-8 bytes, as a little-endian integer, modulo `shards`. Stable across machines, processes
/// and versions (changing it would move every document). `shards` must be at least 1.
pub fn shard_of(id: &str, shards: usize) -> usize {
    let hash = blake3::hash(id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    (u64::from_le_bytes(first) % shards.max(1) as u64) as usize
}

/// The folder of shard `index` in the sharded archive `dir`.
pub fn shard_dir(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("shard-{index:04}"))
}

/// The shard folders of the sharded archive `dir`, in order, as its [`SHARDS_FILE`] says.
/// Errors when `dir` is not a sharded archive (no or a damaged file) or uses another assignment.
pub fn shard_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let n = read_shards_file(dir)?.ok_or_else(|| {
        Error::InvalidOption(format!(
            "{} is not a sharded archive (it has no {SHARDS_FILE})",
            dir.display()
        ))
    })?;
    Ok((0..n).map(|i| shard_dir(dir, i)).collect())
}

/// The shard count [`SHARDS_FILE`] records, or `None` when `dir` has none.
fn read_shards_file(dir: &Path) -> Result<Option<usize>> {
    let path = dir.join(SHARDS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::InvalidOption(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let file: ShardsFile = serde_json::from_str(&text)
        .map_err(|e| Error::InvalidOption(format!("{} is damaged: {e}", path.display())))?;
    if file.assignment != ASSIGNMENT || !(1..=MAX_SHARDS).contains(&file.shards) {
        return Err(Error::InvalidOption(format!(
            "{} records {} shards assigned by {:?}; this version reads 1 to {MAX_SHARDS} shards \
             assigned by {ASSIGNMENT:?}",
            path.display(),
            file.shards,
            file.assignment
        )));
    }
    Ok(Some(file.shards))
}

/// A recording a worker tokenized ([`PreparedRecording::from_file`]), as it travels to the writer: its
/// catalog entry, tokens, per-token times and duration, and the tokenizer that made the tokens.
/// [`PreparedRecording::to_bytes`] and [`PreparedRecording::from_bytes`] give it a stable form
/// (JSON) for any transport.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreparedRecording {
    /// The tokenizer that made `tokens`.
    pub tokenizer: TokenizerRecord,
    /// The catalog entry (its id is the document's).
    pub asset: Asset,
    /// Tokens.
    pub tokens: Vec<Symbol>,
    /// Start of each token in ms.
    pub times_ms: Vec<u32>,
    /// Duration of the recording in ms.
    pub duration_ms: Option<u32>,
    /// Seconds the worker spent hashing and decoding, and tokenizing (for the report).
    #[serde(default)]
    pub decode_s: f64,
    #[serde(default)]
    pub tokenize_s: f64,
}

impl PreparedRecording {
    /// `recording` made by `tokenizer`, as it travels.
    pub fn new(tokenizer: &dyn Tokenizer, recording: IndexedRecording) -> PreparedRecording {
        PreparedRecording {
            tokenizer: TokenizerRecord {
                id: tokenizer.id().to_string(),
                weights_hash: tokenizer.weights_hash().to_string(),
            },
            asset: recording.asset,
            tokens: recording.doc.tokens,
            times_ms: recording.doc.times_ms.unwrap_or_default(),
            duration_ms: recording.doc.duration_ms,
            decode_s: 0.0,
            tokenize_s: 0.0,
        }
    }

    /// Hashes, decodes and tokenizes the file at `path` into a document under `id` with its
    /// catalog entry, as the bulk indexer does for a new file ([`read_recording`],
    /// [`index_recording`]), timing both stages; pure: nothing is written. What a worker of a
    /// distributed indexer runs; the writer then decides ([`ShardWriter::add`]) whether it is
    /// new, changed or a copy. `run`'s tags are added to the sidecar's, its title used where the
    /// sidecar gives none. Errors with the reason the file cannot be indexed, without the path
    /// in front.
    pub fn from_file(
        tokenizer: &dyn Tokenizer,
        path: &Path,
        id: &str,
        run: &AssetMetadata,
        decode: &DecodeOptions,
    ) -> std::result::Result<PreparedRecording, String> {
        let t = Instant::now();
        let stamp = file_stamp(path);
        let hash = hash_file(path).map_err(|e| format!("cannot read: {e}"))?;
        let (audio, asset) = read_recording(path, id, hash, stamp, run, decode)
            .map_err(|reason| strip_path(path, reason))?;
        let decode_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let recording =
            index_recording(tokenizer, &audio.samples, asset).map_err(|e| e.to_string())?;
        Ok(PreparedRecording {
            decode_s,
            tokenize_s: t.elapsed().as_secs_f64(),
            ..PreparedRecording::new(tokenizer, recording)
        })
    }

    /// The bytes it travels as (JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain data to a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads the bytes [`PreparedRecording::to_bytes`] made; errors for anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<PreparedRecording> {
        let recording: PreparedRecording = serde_json::from_slice(bytes)
            .map_err(|e| Error::InvalidOption(format!("not a prepared recording: {e}")))?;
        if recording.times_ms.len() != recording.tokens.len()
            || recording.asset.tokens != recording.tokens.len() as u64
        {
            return Err(Error::InvalidOption(format!(
                "prepared recording {:?}: {} tokens, {} times, {} in its catalog entry",
                recording.asset.id,
                recording.tokens.len(),
                recording.times_ms.len(),
                recording.asset.tokens
            )));
        }
        Ok(recording)
    }

    /// The document and catalog entry to commit.
    fn into_indexed(self) -> IndexedRecording {
        IndexedRecording {
            doc: NewDoc {
                id: self.asset.id.clone(),
                tokens: self.tokens,
                times_ms: Some(self.times_ms),
                duration_ms: self.duration_ms,
            },
            asset: self.asset,
        }
    }
}

/// A file the writer wants tokenized ([`ShardWriter::plan`]).
#[derive(Clone, Debug, Serialize)]
pub struct PlannedFile {
    /// The file as found by the walk.
    pub path: PathBuf,
    /// Its document id (canonical path).
    pub id: String,
    /// The shard its document goes to.
    pub shard: usize,
}

/// What [`ShardWriter::plan`] found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Plan {
    /// Files to tokenize, in walk order.
    pub files: Vec<PlannedFile>,
    /// Audio files found.
    pub files_found: usize,
    /// Files already indexed unchanged (or named twice): nothing to do.
    pub skipped: usize,
    /// Walk entries and files that cannot be indexed, with the reason.
    pub failed: Vec<FileProblem>,
    /// Seconds spent walking and checking.
    pub walk_s: f64,
}

/// What [`ShardWriter::add`] did with a recording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Added {
    /// Buffered for its shard's next commit (new, or replacing a changed file's document).
    Pending,
    /// Its document is indexed with the same content: only its catalog stamp is updated.
    Unchanged,
    /// Its content is indexed under this other id (in any shard, or earlier in this run).
    Duplicate(String),
}

/// One shard's recordings waiting for their commit.
#[derive(Default)]
struct Pending {
    recordings: Vec<IndexedRecording>,
    /// New stamps of unchanged files.
    assets: Vec<Asset>,
    /// Ids of live documents the recordings replace.
    replacing: Vec<String>,
    audio_s: f64,
}

/// The one writer of a sharded archive: opens (or creates) its shards with a tokenizer, plans
/// which files need tokenizing, and commits the recordings that workers tokenized, a batch per
/// shard at a time. Holds every shard's write lock until dropped.
pub struct ShardWriter {
    dir: PathBuf,
    stores: Vec<Store>,
    record: TokenizerRecord,
    batch_files: usize,
    batch_seconds: f64,
    pending: Vec<Pending>,
    /// Content hashes added in this run, with their ids.
    seen_hashes: HashMap<String, String>,
    report: IndexReport,
    started: Instant,
}

impl std::fmt::Debug for ShardWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardWriter")
            .field("dir", &self.dir)
            .field("shards", &self.stores.len())
            .field("tokenizer", &self.record)
            .finish()
    }
}

impl ShardWriter {
    /// Opens the sharded archive in `dir` for writing with `tokenizer`, creating it with
    /// `shards` shards when missing (`shards` 0: the count it has; an error for a new one).
    /// Errors when it has another shard count (documents would move), when a shard records
    /// another tokenizer, and for a folder that holds a plain database. A batch (one segment per
    /// shard) is committed when it holds `batch_files` files or `batch_seconds` of audio.
    pub fn open_or_create(
        dir: impl AsRef<Path>,
        shards: usize,
        tokenizer: &dyn Tokenizer,
        batch_files: usize,
        batch_seconds: f64,
    ) -> Result<ShardWriter> {
        let dir = dir.as_ref();
        if batch_files == 0 || batch_seconds.is_nan() || batch_seconds <= 0.0 {
            return Err(Error::InvalidOption(format!(
                "batch limits must be positive, got {batch_files} files and {batch_seconds} s"
            )));
        }
        if shards > MAX_SHARDS {
            return Err(Error::InvalidOption(format!(
                "{shards} shards: at most {MAX_SHARDS}"
            )));
        }
        let shards = match (read_shards_file(dir)?, shards) {
            (Some(have), 0) => have,
            (Some(have), asked) if have == asked => have,
            (Some(have), asked) => {
                return Err(Error::InvalidOption(format!(
                    "{} has {have} shards, not {asked}: a document's shard depends on the count \
                     (pairalign merge makes one database of them)",
                    dir.display()
                )))
            }
            (None, 0) => {
                return Err(Error::InvalidOption(format!(
                    "{} is not a sharded archive; give the number of shards to create one",
                    dir.display()
                )))
            }
            (None, asked) => {
                if dir.join("MANIFEST").exists() {
                    return Err(Error::InvalidOption(format!(
                        "{} holds a database, not a sharded archive",
                        dir.display()
                    )));
                }
                create_shards_file(dir, asked)?;
                asked
            }
        };
        let mut stores = Vec::with_capacity(shards);
        let mut record = None;
        for index in 0..shards {
            let mut store = open_or_create_for(shard_dir(dir, index), tokenizer)?;
            record = Some(store.record_tokenizer(tokenizer)?);
            stores.push(store);
        }
        let record = record.ok_or_else(|| Error::InvalidOption("no shards".into()))?;
        Ok(ShardWriter {
            dir: dir.to_path_buf(),
            pending: (0..shards).map(|_| Pending::default()).collect(),
            stores,
            batch_files,
            batch_seconds,
            seen_hashes: HashMap::new(),
            report: IndexReport::empty(record.clone()),
            record,
            started: Instant::now(),
        })
    }

    /// The archive's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many shards it has.
    pub fn shards(&self) -> usize {
        self.stores.len()
    }

    /// The tokenizer every shard records.
    pub fn tokenizer(&self) -> &TokenizerRecord {
        &self.record
    }

    /// Walks `paths` for audio files and returns those that need tokenizing: each with its id
    /// and shard, once, unless its shard holds it with the size and modification time it has
    /// now ([`Store::freshness`]). Files that cannot be named (gone, not UTF-8) are in
    /// `failed`; they are also added to the run's report.
    pub fn plan<P: AsRef<Path>>(&mut self, paths: &[P]) -> Result<Plan> {
        let started = Instant::now();
        let found = find_audio_files(paths);
        let mut plan = Plan {
            files_found: found.files.len(),
            failed: found.problems,
            ..Plan::default()
        };
        let mut seen = HashSet::new();
        for path in found.files {
            let id = match doc_id(&path) {
                Ok(id) => id,
                Err(reason) => {
                    plan.failed.push(FileProblem { path, reason });
                    continue;
                }
            };
            if !seen.insert(id.clone()) {
                plan.skipped += 1;
                continue;
            }
            let shard = shard_of(&id, self.shards());
            if self.stores[shard].freshness(&id, file_stamp(&path))? == Freshness::Current {
                plan.skipped += 1;
                continue;
            }
            plan.files.push(PlannedFile { path, id, shard });
        }
        plan.walk_s = started.elapsed().as_secs_f64();
        self.report.files_found += plan.files_found;
        self.report.skipped += plan.skipped;
        self.report.failed.extend(plan.failed.iter().cloned());
        self.report.walk_s += plan.walk_s;
        Ok(plan)
    }

    /// Adds a recording a worker prepared: buffered for its shard (committed with the shard's
    /// batch) when new or changed; only its new stamp recorded when its document holds the same
    /// content; reported and left out when its content is indexed under another id whose file
    /// still exists, in any shard or earlier in this run. Errors when it was made by another
    /// tokenizer, when it is not a valid document (a symbol outside the vocabulary), and when a
    /// commit fails.
    pub fn add(&mut self, recording: PreparedRecording) -> Result<Added> {
        if recording.tokenizer != self.record {
            return Err(pairalign_engine::Error::TokenizerMismatch(format!(
                "{:?} was tokenized with {} ({}), the archive records {} ({})",
                recording.asset.id,
                recording.tokenizer.id,
                recording.tokenizer.weights_hash,
                self.record.id,
                self.record.weights_hash
            ))
            .into());
        }
        self.report.decode_s += recording.decode_s;
        self.report.tokenize_s += recording.tokenize_s;
        let recording = recording.into_indexed();
        let id = recording.doc.id.clone();
        let hash = recording.asset.content_hash.clone();
        let shard = shard_of(&id, self.shards());
        let store = &self.stores[shard];
        let replacing = match store.freshness(&id, None)? {
            Freshness::Changed(old) if old.content_hash == hash => {
                self.report.skipped += 1;
                self.pending[shard].assets.push(Asset {
                    file_size: recording.asset.file_size,
                    modified_ns: recording.asset.modified_ns,
                    ..*old
                });
                return Ok(Added::Unchanged);
            }
            Freshness::Changed(_) => true,
            // Indexed before the catalog existed: nothing to compare with; replace it.
            Freshness::Current => true,
            Freshness::New => false,
        };
        if !replacing {
            let copy = match self.seen_hashes.get(&hash) {
                Some(of) if *of != id => Some(of.clone()),
                _ => self.indexed_copy(&id, &hash)?,
            };
            if let Some(of) = copy {
                self.report.duplicates.push(Duplicate {
                    path: recording.asset.path.clone().unwrap_or_default().into(),
                    of: of.clone(),
                });
                return Ok(Added::Duplicate(of));
            }
        }
        if replacing {
            self.stores[shard].db.validate_content(&recording.doc)?;
        } else {
            self.stores[shard].db.validate(&recording.doc)?;
        }
        self.seen_hashes.insert(hash, id.clone());
        let pending = &mut self.pending[shard];
        pending.audio_s += recording.asset.duration_s;
        if replacing {
            pending.replacing.push(id);
        }
        pending.recordings.push(recording);
        if pending.recordings.len() >= self.batch_files || pending.audio_s >= self.batch_seconds {
            self.commit(shard)?;
        }
        Ok(Added::Pending)
    }

    /// Records a file a worker could not index (the run goes on).
    pub fn fail(&mut self, path: impl Into<PathBuf>, reason: impl Into<String>) {
        self.report.failed.push(FileProblem {
            path: path.into(),
            reason: reason.into(),
        });
    }

    /// The live document, other than `id`, in any shard, with the content `hash` and a file
    /// that still exists.
    fn indexed_copy(&self, id: &str, hash: &str) -> Result<Option<String>> {
        for store in &self.stores {
            if let Some(of) = store.indexed_copy(id, hash)? {
                return Ok(Some(of));
            }
        }
        Ok(None)
    }

    /// Commits what every shard holds (a segment each), and returns the run's report so far.
    pub fn flush(&mut self) -> Result<IndexReport> {
        for shard in 0..self.shards() {
            self.commit(shard)?;
        }
        let mut report = self.report.clone();
        report.wall_s = self.started.elapsed().as_secs_f64();
        report.realtime = report.audio_s / report.wall_s.max(1e-9);
        Ok(report)
    }

    /// Commits everything, then merges the segments of each shard that has more than
    /// `compact_above` (as [`crate::IndexOptions::compact_above`]), and returns the run's report.
    pub fn finish(mut self, compact_above: Option<usize>) -> Result<IndexReport> {
        self.flush()?;
        let t = Instant::now();
        if self.report.batches > 0 {
            for store in &mut self.stores {
                if compact_above.is_some_and(|limit| store.db.segment_count() > limit) {
                    store.db.compact()?;
                    self.report.compacted = true;
                }
            }
        }
        self.report.storage_s += t.elapsed().as_secs_f64();
        self.flush()
    }

    /// Commits shard `shard`'s pending batch ([`Store::commit`]); nothing when it is empty.
    fn commit(&mut self, shard: usize) -> Result<()> {
        let pending = std::mem::take(&mut self.pending[shard]);
        if pending.recordings.is_empty() && pending.assets.is_empty() {
            return Ok(());
        }
        let t = Instant::now();
        let indexed = pending.recordings.len();
        let tokens: u64 = pending
            .recordings
            .iter()
            .map(|r| r.doc.tokens.len() as u64)
            .sum();
        let replaced =
            self.stores[shard].commit(pending.recordings, pending.assets, &pending.replacing)?;
        self.report.storage_s += t.elapsed().as_secs_f64();
        if indexed > 0 {
            self.report.batches += 1;
            self.report.indexed += indexed;
            self.report.replaced += replaced.deleted.len();
            self.report.audio_s += pending.audio_s;
            self.report.tokens += tokens;
        }
        Ok(())
    }
}

/// Writes [`SHARDS_FILE`] for `shards` shards in `dir` (created when missing), atomically.
fn create_shards_file(dir: &Path, shards: usize) -> Result<()> {
    let io = |e: std::io::Error| {
        Error::InvalidOption(format!(
            "cannot create {}: {e}",
            dir.join(SHARDS_FILE).display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let text = serde_json::to_string_pretty(&ShardsFile {
        shards,
        assignment: ASSIGNMENT.into(),
    })
    .unwrap_or_default();
    let temp = dir.join(format!("{SHARDS_FILE}.tmp"));
    std::fs::write(&temp, text + "\n").map_err(io)?;
    std::fs::rename(&temp, dir.join(SHARDS_FILE)).map_err(io)
}
