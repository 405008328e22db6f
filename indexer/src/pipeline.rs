//! The indexing pipeline: files -> 16 kHz mono -> window-by-window tokens with absolute times ->
//! one engine document per file -> one segment per batch of files.
//!
//! Files are processed in groups of 4 per thread on a rayon pool, each file decoded and tokenized
//! by one task and its samples dropped as soon as it is tokenized, so at most one group of decoded
//! recordings is in memory (a worker waiting inside the tokenizer may steal another file of the
//! group, so the bound is the group, not one file per thread); only token strings wait for the
//! commit. A batch is committed with `Database::add_tokens`, which is all or
//! nothing, as soon as it holds `batch_files` files or `batch_seconds` of audio: a killed run loses
//! at most that batch, and a re-run skips every file whose id the database already holds.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use pairalign_datasets::decode::{decode_file, DecodeOptions};
use pairalign_datasets::SAMPLE_RATE;
use pairalign_engine::{Database, DatabaseConfig, NewDoc, TokenizerRecord};
use pairalign_models::{tokenize_windows, Tokenizer, WINDOWS_PER_CALL, WINDOW_SAMPLES};
use rayon::prelude::*;
use serde::Serialize;

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
}

/// What a run did. Times are wall-clock seconds; `decode_s` and `tokenize_s` are summed over the
/// worker threads (they overlap), so compare them with each other, not with `wall_s`.
#[derive(Clone, Debug, Serialize)]
pub struct IndexReport {
    /// Audio files found by the walk.
    pub files_found: usize,
    /// Files indexed and committed in this run.
    pub indexed: usize,
    /// Files skipped because their id was already in the database (or named twice).
    pub skipped: usize,
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

/// Checks that `tokenizer` may add to or search `db`: the database records this tokenizer (same
/// id and weights hash), or records none and holds no documents yet; and its tokens fit the
/// database's vocabulary.
pub fn check_tokenizer(db: &Database, tokenizer: &dyn Tokenizer) -> Result<()> {
    match db.tokenizer() {
        Some(rec) if rec.id == tokenizer.id() && rec.weights_hash == tokenizer.weights_hash() => {}
        Some(rec) => {
            return Err(Error::TokenizerMismatch(format!(
                "{} was built with tokenizer {} (weights {}), not {} (weights {})",
                db.dir().display(),
                rec.id,
                rec.weights_hash,
                tokenizer.id(),
                tokenizer.weights_hash()
            )))
        }
        None if !db.segments().is_empty() => {
            return Err(Error::TokenizerMismatch(format!(
                "{} holds documents that no tokenizer recorded (imported tokens); \
                 index audio into a new database",
                db.dir().display()
            )))
        }
        None => {}
    }
    let vocab = db.config().vocab_size;
    if tokenizer.vocab_size() > vocab {
        return Err(Error::TokenizerMismatch(format!(
            "tokenizer {} has {} symbols but {} was created for {vocab}",
            tokenizer.id(),
            tokenizer.vocab_size(),
            db.dir().display()
        )));
    }
    Ok(())
}

/// Opens the database in `dir` for writing, creating it with the tokenizer's vocabulary (and the
/// default q) when missing, and checks the tokenizer with [`check_tokenizer`].
pub fn open_or_create_for(dir: impl AsRef<Path>, tokenizer: &dyn Tokenizer) -> Result<Database> {
    let config = DatabaseConfig::new(tokenizer.vocab_size(), DatabaseConfig::default().q);
    let db = Database::open_or_create(dir, config)?;
    check_tokenizer(&db, tokenizer)?;
    Ok(db)
}

/// Indexes the audio files under `paths` into `db` with `tokenizer`, one document per file (id:
/// [`doc_id`]), committing a segment per batch. Records the tokenizer in the database on first
/// use. Files already in the database are skipped; a file that cannot be decoded or tokenized is
/// listed in [`IndexReport::failed`] and the run goes on. Errors only for what stops the whole
/// run: another tokenizer, a database failure, bad options.
pub fn index_paths<P: AsRef<Path>>(
    db: &mut Database,
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
    check_tokenizer(db, tokenizer)?;
    let record = TokenizerRecord {
        id: tokenizer.id().to_string(),
        weights_hash: tokenizer.weights_hash().to_string(),
    };
    if db.tokenizer().is_none() {
        db.set_tokenizer(record.clone())?;
    }
    let started = Instant::now();
    let found = find_audio_files(paths);
    let mut run = Run {
        db,
        tokenizer,
        options,
        started,
        progress: Progress {
            files_total: found.files.len(),
            ..Progress::default()
        },
        report: IndexReport {
            files_found: found.files.len(),
            indexed: 0,
            skipped: 0,
            failed: found.problems,
            batches: 0,
            audio_s: 0.0,
            tokens: 0,
            wall_s: 0.0,
            realtime: 0.0,
            walk_s: started.elapsed().as_secs_f64(),
            decode_s: 0.0,
            tokenize_s: 0.0,
            storage_s: 0.0,
            tokenizer: record,
            interrupted: false,
            compacted: false,
        },
        pending: Vec::new(),
        pending_audio_s: 0.0,
        seen: std::collections::HashSet::new(),
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
        .is_some_and(|limit| db.segments().len() > limit);
    if report.batches > 0 && !report.interrupted && too_many {
        let t = Instant::now();
        db.compact()?;
        report.storage_s += t.elapsed().as_secs_f64();
        report.compacted = true;
    }
    report.wall_s = started.elapsed().as_secs_f64();
    report.realtime = report.audio_s / report.wall_s.max(1e-9);
    Ok(report)
}

/// A file ready to be committed.
struct Tokenized {
    doc: NewDoc,
    audio_s: f64,
}

/// One file's outcome from a worker, with its stage times.
struct FileOutcome {
    result: std::result::Result<Tokenized, String>,
    decode_s: f64,
    tokenize_s: f64,
}

/// The state of one indexing run.
struct Run<'a> {
    db: &'a mut Database,
    tokenizer: &'a (dyn Tokenizer + Sync),
    options: &'a IndexOptions,
    started: Instant,
    progress: Progress,
    report: IndexReport,
    /// Tokenized files of the batch not yet committed.
    pending: Vec<NewDoc>,
    pending_audio_s: f64,
    /// Ids met in this run, so that a file named twice is indexed once.
    seen: std::collections::HashSet<String>,
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
                match doc_id(path) {
                    Err(reason) => self.fail(path, reason),
                    Ok(id) if self.db.contains(&id) || !self.seen.insert(id.clone()) => {
                        self.report.skipped += 1;
                        self.progress.skipped += 1;
                    }
                    Ok(id) => group.push((path, id)),
                }
            }
            let outcomes: Vec<FileOutcome> = group
                .par_iter()
                .map(|(path, id)| self.process(path, id))
                .collect();
            for ((path, _), outcome) in group.iter().zip(outcomes) {
                self.report.decode_s += outcome.decode_s;
                self.report.tokenize_s += outcome.tokenize_s;
                match outcome.result {
                    Err(reason) => self.fail(path, reason),
                    Ok(file) => match self.db.validate(&file.doc) {
                        Err(e) => self.fail(path, e.to_string()),
                        Ok(()) => {
                            self.progress.indexed += 1;
                            self.progress.audio_s += file.audio_s;
                            self.pending_audio_s += file.audio_s;
                            self.pending.push(file.doc);
                            if self.pending.len() >= self.options.batch_files
                                || self.pending_audio_s >= self.options.batch_seconds
                            {
                                self.commit()?;
                            }
                        }
                    },
                }
            }
            self.tick(progress);
        }
        self.commit()?;
        self.tick(progress);
        Ok(())
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
    }

    fn fail(&mut self, path: &Path, reason: String) {
        // Decoder errors start with the path; the report names it separately.
        let prefix = format!("{}: ", path.display());
        let reason = reason
            .strip_prefix(&prefix)
            .map_or(reason.clone(), str::to_string);
        self.report.failed.push(FileProblem {
            path: path.to_path_buf(),
            reason,
        });
        self.progress.failed += 1;
    }

    /// Decodes and tokenizes one file (on a worker thread).
    fn process(&self, path: &Path, id: &str) -> FileOutcome {
        let t = Instant::now();
        let audio = decode_file(path, &self.options.decode);
        let decode_s = t.elapsed().as_secs_f64();
        let audio = match audio {
            Ok(a) if a.samples.is_empty() => Err("no audio frames".to_string()),
            Ok(a) => Ok(a),
            Err(e) => Err(e.to_string()),
        };
        let audio = match audio {
            Ok(a) => a,
            Err(reason) => {
                return FileOutcome {
                    result: Err(reason),
                    decode_s,
                    tokenize_s: 0.0,
                }
            }
        };
        let t = Instant::now();
        let tokens = tokenize_windows(
            self.tokenizer,
            &audio.samples,
            WINDOW_SAMPLES,
            WINDOWS_PER_CALL,
        );
        let tokenize_s = t.elapsed().as_secs_f64();
        let samples = audio.samples.len() as u64;
        let result = match tokens {
            Err(e) => Err(format!("tokenizer failed: {e}")),
            Ok(ts) if ts.is_empty() => Err("too short to give any token".to_string()),
            Ok(ts) => {
                let duration_ms = samples * 1000 / u64::from(SAMPLE_RATE);
                Ok(Tokenized {
                    doc: NewDoc {
                        id: id.to_string(),
                        tokens: ts.tokens,
                        times_ms: Some(ts.times_ms),
                        // Bounded by the decoder's duration limit; saturate rather than wrap.
                        duration_ms: Some(u32::try_from(duration_ms).unwrap_or(u32::MAX)),
                    },
                    audio_s: samples as f64 / f64::from(SAMPLE_RATE),
                })
            }
        };
        FileOutcome {
            result,
            decode_s,
            tokenize_s,
        }
    }

    /// Commits the pending batch as one segment (nothing to do when it is empty).
    fn commit(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let t = Instant::now();
        self.db.add_tokens(&self.pending)?;
        self.report.storage_s += t.elapsed().as_secs_f64();
        self.report.batches += 1;
        self.report.indexed += self.pending.len();
        self.report.audio_s += self.pending_audio_s;
        self.report.tokens += self
            .pending
            .iter()
            .map(|d| d.tokens.len() as u64)
            .sum::<u64>();
        self.progress.committed += self.pending.len();
        self.pending.clear();
        self.pending_audio_s = 0.0;
        Ok(())
    }
}
