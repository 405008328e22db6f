//! The metadata catalog: one tantivy document per archive document, in `<db>/catalog/`. It holds
//! what a user filters and lists by (path, file name, title, tags, duration, format, sample rate,
//! content hash, indexed-at, tokens) and what a re-run needs to skip unchanged files (size,
//! modification time, content hash).
//!
//! The engine's MANIFEST stays the source of truth for which documents exist: the catalog is
//! written before the segment that holds a batch is committed, and deletes reach it after the
//! tombstones are, so a crash can leave catalog entries for documents the database does not
//! hold, never the reverse. Readers ([`CatalogReader::live`]) drop such ghosts by asking the
//! database; a re-run overwrites them (entries are replaced by id).
//!
//! Filters use tantivy's query syntax over the fields of [`FIELDS`], e.g. `tags:interview AND
//! duration:>60`; bare words search the title, the file name and the tags.
//!
//! Integrity (issue 21): tantivy trusts its files, so a damaged catalog used to answer wrongly
//! without a word or panic. Opening one, for reading or writing, now checks every file the
//! committed segments are made of (present, CRC32 equal to its footer's) and that the counts of
//! `meta.json` agree with the files; a folder holding files but no `meta.json` is damaged, not
//! "no catalog", and is never overwritten. [`CatalogReader::open_for`] also compares the entries
//! with the database's live documents ([`CatalogReader::cross_check`]). A panic of the library
//! on any call is caught here and becomes [`Error::CatalogDamaged`]. `pairalign repair` rebuilds
//! a damaged catalog (`pairalign_indexer::repair_catalog`).

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

// The engine's committed state, named apart from tantivy's `Searcher`.
use pairalign_engine::Searcher as Database;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use tantivy::collector::DocSetCollector;
use tantivy::directory::error::OpenReadError;
use tantivy::directory::MmapDirectory;
use tantivy::index::{SegmentComponent, SegmentMeta};
use tantivy::indexer::NoMergePolicy;
use tantivy::query::{Query, QueryParser, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, INDEXED, STORED,
    STRING, TEXT,
};
use tantivy::tokenizer::{LowerCaser, RawTokenizer, TextAnalyzer};
use tantivy::{
    DateTime, Directory, DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher,
    TantivyDocument, TantivyError, Term, TERMINATED,
};

use crate::{Error, Result};

/// The catalog's folder inside a database directory.
pub const CATALOG_DIR: &str = "catalog";

/// Heap of the catalog's single indexing thread (tantivy's minimum is 15 MB).
const WRITER_HEAP_BYTES: usize = 20_000_000;

/// Segments of one size class that the catalog merges into one (`Catalog::merge_size_classes`).
const MERGE_FACTOR: usize = 8;

/// Longest title accepted, in bytes.
pub const MAX_TITLE_BYTES: usize = 1024;
/// Most tags on one asset.
pub const MAX_TAGS: usize = 64;
/// Longest tag accepted, in bytes.
pub const MAX_TAG_BYTES: usize = 128;

/// The fields a filter can name, with what they hold.
pub const FIELDS: &[(&str, &str)] = &[
    (
        "id",
        "document id, exact (a file's canonical path unless given)",
    ),
    (
        "path",
        "the file's canonical path, exact; absent for uploads",
    ),
    ("file_name", "the file name, words"),
    ("title", "title from the sidecar JSON or the upload, words"),
    ("tags", "tags, exact but case-insensitive, any number"),
    (
        "duration",
        "seconds of audio, a number: duration:>60, duration:[10 TO 20]",
    ),
    ("format", "container/codec, words: format:flac, format:mp3"),
    ("sample_rate", "the file's own sample rate in Hz"),
    ("hash", "BLAKE3 of the file's bytes, hex, exact"),
    (
        "indexed_at",
        "when it was indexed, RFC 3339: indexed_at:>2026-11-01T00:00:00Z",
    ),
    ("tokens", "tokens in the document"),
];

/// What a user says about an asset: from a sidecar JSON file next to the audio
/// (`talk.wav.json` or `talk.json`) or from an upload. Unknown keys in a sidecar are ignored, so
/// sidecars written for other tools can be read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AssetMetadata {
    /// A human title, searched as words.
    #[serde(default)]
    pub title: Option<String>,
    /// Tags, matched exactly but case-insensitively (`tags:Interview` finds `interview`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// The original file name, for uploads (files indexed from disk use their own).
    #[serde(default)]
    pub file_name: Option<String>,
}

impl AssetMetadata {
    /// Checks the limits ([`MAX_TITLE_BYTES`], [`MAX_TAGS`], [`MAX_TAG_BYTES`]; no empty tag).
    pub fn check(&self) -> std::result::Result<(), String> {
        if self
            .title
            .as_ref()
            .is_some_and(|t| t.len() > MAX_TITLE_BYTES)
        {
            return Err(format!("the title is longer than {MAX_TITLE_BYTES} bytes"));
        }
        if self.tags.len() > MAX_TAGS {
            return Err(format!(
                "{} tags; at most {MAX_TAGS} are accepted",
                self.tags.len()
            ));
        }
        if let Some(tag) = self
            .tags
            .iter()
            .find(|t| t.trim().is_empty() || t.len() > MAX_TAG_BYTES)
        {
            return Err(format!(
                "tag {tag:?}: tags must be 1 to {MAX_TAG_BYTES} bytes and not blank"
            ));
        }
        Ok(())
    }

    /// Reads the sidecar of the audio file at `audio` when there is one: `<file>.json`
    /// (`talk.wav.json`) first, then `<stem>.json` (`talk.json`). Errors name the sidecar.
    pub fn from_sidecar(audio: &Path) -> std::result::Result<Option<AssetMetadata>, String> {
        let mut beside = audio.as_os_str().to_owned();
        beside.push(".json");
        let candidates = [PathBuf::from(beside), audio.with_extension("json")];
        let Some(sidecar) = candidates.iter().find(|p| p.is_file()) else {
            return Ok(None);
        };
        let text =
            std::fs::read(sidecar).map_err(|e| format!("sidecar {}: {e}", sidecar.display()))?;
        let metadata: AssetMetadata = serde_json::from_slice(&text)
            .map_err(|e| format!("sidecar {}: {e}", sidecar.display()))?;
        metadata
            .check()
            .map_err(|e| format!("sidecar {}: {e}", sidecar.display()))?;
        Ok(Some(metadata))
    }
}

/// One catalog entry: everything known about a document besides its tokens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    /// The document id (a file's canonical path, or the id an upload was given).
    pub id: String,
    /// Where the audio was read from; `None` for uploads and samples handed over in memory.
    pub path: Option<String>,
    /// The file name (of the path, or as uploaded).
    pub file_name: Option<String>,
    /// Title from the sidecar or the upload.
    pub title: Option<String>,
    /// Tags from the sidecar or the upload, as given.
    pub tags: Vec<String>,
    /// Seconds of audio.
    pub duration_s: f64,
    /// `container/codec` as the decoder names it (`wav/pcm_s16le`), when read from a file.
    pub format: Option<String>,
    /// The file's own sample rate in Hz (before resampling to 16 kHz).
    pub sample_rate: Option<u32>,
    /// BLAKE3 of the file's bytes (of the samples, for audio handed over in memory), hex.
    pub content_hash: String,
    /// Tokens in the document.
    pub tokens: u64,
    /// When it was indexed (UTC, RFC 3339).
    pub indexed_at: String,
    /// File size in bytes when indexed (for re-runs: an unchanged size and modification time
    /// skip the file without reading it).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub file_size: Option<u64>,
    /// Modification time when indexed, nanoseconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub modified_ns: Option<i64>,
}

/// BLAKE3 of a file's bytes, hex, read in a stream.
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(path)?)?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// BLAKE3 of samples handed over in memory (their little-endian bytes), hex.
pub fn hash_samples(samples: &[f32]) -> String {
    let mut hasher = blake3::Hasher::new();
    for chunk in samples.chunks(4096) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
        hasher.update(&bytes);
    }
    hasher.finalize().to_hex().to_string()
}

/// A file's size and modification time (nanoseconds since the epoch), for the cheap unchanged
/// check of re-runs.
pub fn file_stamp(path: &Path) -> Option<(u64, i64)> {
    let meta = std::fs::metadata(path).ok()?;
    let modified = meta.modified().ok()?;
    let ns = match modified.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).ok()?,
        Err(e) => -i64::try_from(e.duration().as_nanos()).ok()?,
    };
    Some((meta.len(), ns))
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-12-01T23:06:07Z`), by the civil-from-days
/// algorithm (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Now, as seconds since the epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The schema's fields.
#[derive(Clone, Copy, Debug)]
struct Fields {
    id: Field,
    path: Field,
    file_name: Field,
    title: Field,
    tags: Field,
    duration: Field,
    format: Field,
    sample_rate: Field,
    hash: Field,
    indexed_at: Field,
    tokens: Field,
    file_size: Field,
    modified_ns: Field,
}

/// This version's schema. `id` is a fast field so that a filter resolves to ids without reading
/// stored documents; catalogs written before it was (by the version of 2026-12-01) still open,
/// see [`schema_with`].
fn schema() -> (Schema, Fields) {
    schema_with(true)
}

/// The schema with or without `id` as a fast field (the only difference from the first catalogs).
fn schema_with(fast_id: bool) -> (Schema, Fields) {
    let mut b = Schema::builder();
    let id_options = if fast_id {
        STRING | STORED | FAST
    } else {
        STRING | STORED
    };
    let tag_options = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("tag")
                .set_index_option(IndexRecordOption::Basic),
        )
        .set_stored();
    let fields = Fields {
        id: b.add_text_field("id", id_options),
        path: b.add_text_field("path", STRING | STORED),
        file_name: b.add_text_field("file_name", TEXT | STORED),
        title: b.add_text_field("title", TEXT | STORED),
        tags: b.add_text_field("tags", tag_options),
        duration: b.add_f64_field("duration", INDEXED | STORED | FAST),
        format: b.add_text_field("format", TEXT | STORED),
        sample_rate: b.add_u64_field("sample_rate", INDEXED | STORED | FAST),
        hash: b.add_text_field("hash", STRING | STORED),
        indexed_at: b.add_date_field("indexed_at", INDEXED | STORED | FAST),
        tokens: b.add_u64_field("tokens", INDEXED | STORED | FAST),
        file_size: b.add_u64_field("file_size", STORED),
        modified_ns: b.add_i64_field("modified_ns", STORED),
    };
    (b.build(), fields)
}

fn catalog_error(dir: &Path, e: impl std::fmt::Display) -> Error {
    Error::Catalog(format!("{}: {e}", dir.display()))
}

/// The catalog in `dir` is damaged: [`Error::CatalogDamaged`] with these problems.
fn damaged(dir: &Path, problems: Vec<String>) -> Error {
    Error::CatalogDamaged {
        catalog: dir.to_path_buf(),
        db: dir
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        problems,
    }
}

/// Longest part of a library message quoted in an error: tantivy quotes the whole `meta.json`
/// when it does not parse.
const MAX_QUOTED_CHARS: usize = 300;

fn quoted(e: impl std::fmt::Display) -> String {
    let text = e.to_string();
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

/// An error of tantivy while opening the catalog: damage, unless it is the system's (I/O,
/// locks), which a rebuild would not cure.
fn open_error(dir: &Path, e: TantivyError) -> Error {
    match e {
        TantivyError::IoError(_)
        | TantivyError::LockFailure(..)
        | TantivyError::OpenDirectoryError(_)
        | TantivyError::SystemError(_) => catalog_error(dir, e),
        other => damaged(dir, vec![format!("it does not open: {}", quoted(other))]),
    }
}

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string())
}

/// Runs `f`, turning a panic into [`Error::CatalogDamaged`]: tantivy trusts its files and
/// panics on some damaged ones (`mid > len`, `unknown compressor id`, `support only up to
/// u16::MAX field ids` in the probes of issue 21), which must not take a server down. Nothing
/// `f` touches is used after a panic but the error (a writer is marked unusable: see
/// [`Catalog`]), hence `AssertUnwindSafe`.
fn guarded<T>(dir: &Path, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        Err(damaged(
            dir,
            vec![format!(
                "the catalog library panicked while {what}: {}",
                quoted(panic_message(payload.as_ref()))
            )],
        ))
    })
}

/// Refuses a catalog folder that holds files but no `meta.json`: without it tantivy sees no
/// index, readers would list nothing and a writer would create an empty catalog over the
/// entries. Files whose name starts with a dot are tantivy's bookkeeping (locks,
/// `.managed.json`) and hold no entries: a folder with only those, or none, is no catalog.
fn refuse_files_without_meta(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(catalog_error(dir, e)),
    };
    let mut files: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    if files.is_empty() {
        return Ok(());
    }
    files.sort();
    Err(damaged(
        dir,
        vec![format!(
            "{} is missing while the folder holds {} other file(s) ({}...)",
            dir.join(META_FILE).display(),
            files.len(),
            files[0]
        )],
    ))
}

/// The file tantivy keeps the committed state in.
const META_FILE: &str = "meta.json";

/// Checks every file the committed segments are made of: present, footer readable and of a
/// version this tantivy reads, CRC32 of the content equal to the footer's (tantivy writes one
/// per file; a CRC32 catches every single-bit error). `Index::validate_checksum` does the same
/// only for the files `.managed.json` lists and says nothing of missing ones, so a damaged
/// `.managed.json` would skip every file. Returns the number of files checked and the problems,
/// each naming its file.
fn file_problems(dir: &Path, index: &Index, metas: &[SegmentMeta]) -> (usize, Vec<String>) {
    let directory = index.directory();
    let mut checked = 0;
    let mut problems = Vec::new();
    for meta in metas {
        for &component in SegmentComponent::iterator() {
            let needed = match component {
                SegmentComponent::TempStore => false,
                SegmentComponent::Delete => meta.delete_opstamp().is_some(),
                _ => true,
            };
            if !needed {
                continue;
            }
            let file = meta.relative_path(component);
            let shown = dir.join(&file);
            checked += 1;
            let verdict = directory
                .open_read(&file)
                .and_then(|_| directory.validate_checksum(&file));
            match verdict {
                Ok(true) => {}
                Ok(false) => problems.push(format!("{}: checksum mismatch", shown.display())),
                Err(OpenReadError::FileDoesNotExist(_)) => {
                    problems.push(format!("{}: missing", shown.display()));
                }
                Err(e) => problems.push(format!("{}: {}", shown.display(), quoted(e))),
            }
        }
    }
    (checked, problems)
}

/// Checks the counts `meta.json` records against the (checksummed) files: documents per
/// segment against the token column and the field norms, deletes against the delete file.
/// `meta.json` has no checksum, and a digit changed in it would otherwise hide documents (a
/// smaller count), read past the end (a larger one) or bring deleted entries back (a count of 0
/// deletes makes tantivy skip the delete file).
fn count_problems(dir: &Path, fields: Fields, searcher: &Searcher) -> Vec<String> {
    let meta_file = dir.join(META_FILE);
    let mut problems = Vec::new();
    for segment in searcher.segment_readers() {
        let id = segment.segment_id().uuid_string();
        let max_doc = segment.max_doc();
        let column_docs = segment
            .fast_fields()
            .u64("tokens")
            .map(|c| c.num_docs())
            .map_err(quoted);
        let norm_docs = segment
            .get_fieldnorms_reader(fields.title)
            .map(|n| n.num_docs())
            .map_err(quoted);
        for (extension, docs) in [("fast", column_docs), ("fieldnorm", norm_docs)] {
            let file = dir.join(format!("{id}.{extension}"));
            match docs {
                Ok(docs) if docs == max_doc => {}
                Ok(docs) => problems.push(format!(
                    "{}: segment {id} has {max_doc} documents, {} holds {docs}",
                    meta_file.display(),
                    file.display()
                )),
                Err(e) => problems.push(format!("{}: {e}", file.display())),
            }
        }
        // tantivy reads the delete file only when meta.json counts deletes.
        let consistent = match (segment.delete_opstamp(), segment.alive_bitset()) {
            (None, None) => true,
            (Some(_), Some(alive)) => alive.bitset().max_value() == max_doc,
            _ => false,
        };
        if !consistent {
            problems.push(format!(
                "{}: the deletes recorded for segment {id} do not match its delete file",
                meta_file.display()
            ));
        }
    }
    problems
}

/// The segments (id and delete opstamp) a searcher or a `meta.json` names.
fn segment_keys<'a>(
    keys: impl Iterator<Item = (tantivy::index::SegmentId, Option<u64>)> + 'a,
) -> std::collections::BTreeSet<(String, Option<u64>)> {
    keys.map(|(id, opstamp)| (id.uuid_string(), opstamp))
        .collect()
}

/// Whether `meta.json` now names other segments than `checked` (false when it does not read).
fn meta_changed(
    index: &Index,
    checked: &std::collections::BTreeSet<(String, Option<u64>)>,
) -> bool {
    index.searchable_segment_metas().is_ok_and(|metas| {
        segment_keys(metas.iter().map(|m| (m.id(), m.delete_opstamp()))) != *checked
    })
}

/// How the catalog's entries and the database's live documents compare
/// ([`CatalogReader::cross_check`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CrossCheck {
    /// Live documents in the database.
    pub live_docs: u64,
    /// Catalog entries (replaced and removed ones excluded).
    pub entries: u64,
    /// Entries of documents the database does not hold: left by a crash between the catalog's
    /// commit and the database's (see the module documentation); readers ignore them.
    pub ghosts: u64,
    /// Live documents without an entry, in database order. Only counted when the database
    /// records a tokenizer: the documents of a database of imported tokens have no metadata.
    pub missing: Vec<String>,
    /// Live documents whose entry records another token count: (id, the catalog's count, the
    /// database's).
    pub token_mismatches: Vec<(String, u64, u64)>,
    /// Live documents with more than one entry.
    pub duplicates: Vec<String>,
}

impl CrossCheck {
    /// What disagrees, one line per kind of problem, each naming the first document concerned;
    /// empty when the catalog describes every live document once and rightly.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(first) = self.missing.first() {
            problems.push(format!(
                "{} live document(s) of the database have no entry, the first {first:?}",
                self.missing.len()
            ));
        }
        if let Some((id, catalog, db)) = self.token_mismatches.first() {
            problems.push(format!(
                "{} entr(ies) record another token count than the database, the first {id:?} \
                 ({catalog} tokens in the catalog, {db} in the database)",
                self.token_mismatches.len()
            ));
        }
        if let Some(first) = self.duplicates.first() {
            problems.push(format!(
                "{} live document(s) have more than one entry, the first {first:?}",
                self.duplicates.len()
            ));
        }
        problems
    }
}

/// Read access to the catalog as of its last commit (or the last [`Catalog`] write, for the
/// writer's own reader). Cheap to clone; shareable between threads.
#[derive(Clone)]
pub struct CatalogReader {
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// Whether `id` is a fast field (false for catalogs from before it was).
    fast_id: bool,
    /// Files whose checksum was verified when the catalog was opened.
    files_verified: usize,
}

impl std::fmt::Debug for CatalogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogReader")
            .field("dir", &self.dir)
            .finish()
    }
}

/// Times the files of a catalog are checked again when a writer's commit replaced them while
/// they were being checked (a reader takes no lock).
const OPEN_ATTEMPTS: usize = 5;

impl CatalogReader {
    /// Opens the catalog of the database in `db_dir` for reading; `None` when the database has
    /// none (it holds imported tokens, or was created before the catalog existed): the folder
    /// is absent or holds no file but tantivy's dot files. Every file of the committed
    /// segments is checksummed and the counts of `meta.json` checked ([`Error::CatalogDamaged`]
    /// names what is wrong; a folder with files but no `meta.json` is damaged). Does not
    /// compare the entries with the database: [`CatalogReader::open_for`] does.
    pub fn open(db_dir: &Path) -> Result<Option<CatalogReader>> {
        Self::open_dir(db_dir.join(CATALOG_DIR))
    }

    /// [`CatalogReader::open`] of the catalog folder `dir` itself.
    pub fn open_dir(dir: PathBuf) -> Result<Option<CatalogReader>> {
        if !dir.join(META_FILE).exists() {
            refuse_files_without_meta(&dir)?;
            return Ok(None);
        }
        guarded(&dir, "opening it", || {
            let directory = MmapDirectory::open(&dir).map_err(|e| catalog_error(&dir, e))?;
            let index = Index::open(directory).map_err(|e| open_error(&dir, e))?;
            Self::with_index(dir.clone(), index)
        })
        .map(Some)
    }

    /// [`CatalogReader::open`] for the database `db`, also checking that every live document of
    /// `db` has exactly one entry, with its token count ([`CatalogReader::cross_check`]): what
    /// searching and listing open, so that a damaged catalog is an error rather than a wrong
    /// selection. Entries of documents `db` does not hold are allowed (readers drop them).
    pub fn open_for(db: &Database) -> Result<Option<CatalogReader>> {
        let Some(catalog) = Self::open(db.dir())? else {
            return Ok(None);
        };
        catalog.verify_against(db)?;
        Ok(Some(catalog))
    }

    /// [`CatalogReader::cross_check`], as an [`Error::CatalogDamaged`] when anything disagrees.
    pub fn verify_against(&self, db: &Database) -> Result<CrossCheck> {
        let check = self.cross_check(db)?;
        let problems = check.problems();
        if problems.is_empty() {
            Ok(check)
        } else {
            Err(damaged(&self.dir, problems))
        }
    }

    /// Compares the entries with the live documents of `db`: each live document should have
    /// exactly one entry with its id and token count. Reads the id dictionary and the token
    /// column, not the stored entries: one hash lookup per entry, 5 ms for 10,000 documents
    /// (the checksums of [`CatalogReader::open`] took 1 ms more than tantivy's own open of
    /// that 3.6 MB catalog; dev profile, warm page cache, 2026-12).
    pub fn cross_check(&self, db: &Database) -> Result<CrossCheck> {
        guarded(&self.dir, "comparing it with the database", || {
            self.cross_check_unguarded(db)
        })
    }

    fn cross_check_unguarded(&self, db: &Database) -> Result<CrossCheck> {
        let mut live: HashMap<&str, (u32, u64)> = HashMap::new();
        for segment in db.segments()? {
            for doc in segment.docs().filter(|d| !db.is_deleted(d.doc_id)) {
                live.insert(doc.name, (doc.doc_id, doc.tokens.len() as u64));
            }
        }
        let mut check = CrossCheck {
            live_docs: live.len() as u64,
            ..CrossCheck::default()
        };
        let mut described = RoaringBitmap::new();
        let error = |e: TantivyError| catalog_error(&self.dir, e);
        let io_error = |e: std::io::Error| catalog_error(&self.dir, e);
        let searcher = self.reader.searcher();
        for segment in searcher.segment_readers() {
            let ids = segment.inverted_index(self.fields.id).map_err(error)?;
            let tokens = segment.fast_fields().u64("tokens").map_err(error)?;
            let mut terms = ids.terms().stream().map_err(io_error)?;
            while terms.advance() {
                let id = std::str::from_utf8(terms.key()).ok();
                let mut postings = ids
                    .read_postings_from_terminfo(terms.value(), IndexRecordOption::Basic)
                    .map_err(io_error)?;
                let mut doc = postings.doc();
                while doc != TERMINATED {
                    if !segment.is_deleted(doc) {
                        check.entries += 1;
                        match id.and_then(|id| Some((id, live.get(id)?))) {
                            None => check.ghosts += 1,
                            Some((id, &(doc_id, count))) => {
                                if !described.insert(doc_id) {
                                    check.duplicates.push(id.to_string());
                                }
                                let recorded = tokens.first(doc).unwrap_or(0);
                                if recorded != count {
                                    check
                                        .token_mismatches
                                        .push((id.to_string(), recorded, count));
                                }
                            }
                        }
                    }
                    doc = postings.advance();
                }
            }
        }
        if db.tokenizer().is_some() && described.len() < check.live_docs {
            for segment in db.segments()? {
                check.missing.extend(
                    segment
                        .docs()
                        .filter(|d| !db.is_deleted(d.doc_id) && !described.contains(d.doc_id))
                        .map(|d| d.name.to_string()),
                );
            }
        }
        Ok(check)
    }

    /// Files whose checksum was verified when the catalog was opened.
    pub fn files_verified(&self) -> usize {
        self.files_verified
    }

    /// Entries (replaced and removed ones excluded), ghosts included.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether the catalog holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks the schema, then opens the committed segments after verifying their files and
    /// counts (see [`CatalogReader::open`]).
    fn with_index(dir: PathBuf, index: Index) -> Result<CatalogReader> {
        let (expected, fields) = schema();
        let fast_id = if index.schema() == expected {
            true
        } else if index.schema() == schema_with(false).0 {
            false
        } else {
            return Err(catalog_error(
                &dir,
                "the catalog's schema is not one this version reads (a newer version's catalog, \
                 or a damaged meta.json); rebuild it with `pairalign repair` or by re-indexing",
            ));
        };
        index.tokenizers().register(
            "tag",
            TextAnalyzer::builder(RawTokenizer::default())
                .filter(LowerCaser)
                .build(),
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            // A reader takes no lock: a writer's commit may remove the files of the segments it
            // replaced between reading meta.json and checking or opening them. Check again when
            // meta.json changed meanwhile.
            let retry = attempt < OPEN_ATTEMPTS;
            let metas = index
                .searchable_segment_metas()
                .map_err(|e| open_error(&dir, e))?;
            let keys = segment_keys(metas.iter().map(|m| (m.id(), m.delete_opstamp())));
            // The files first: tantivy trusts them when it opens a segment (one damaged length
            // asked for a 36 PB allocation, which aborts the process).
            let (files_verified, problems) = file_problems(&dir, &index, &metas);
            if !problems.is_empty() {
                if retry && meta_changed(&index, &keys) {
                    continue;
                }
                return Err(damaged(&dir, problems));
            }
            let reader: IndexReader = match index
                .reader_builder()
                .reload_policy(ReloadPolicy::Manual)
                .try_into()
            {
                Ok(reader) => reader,
                Err(_) if retry && meta_changed(&index, &keys) => continue,
                Err(e) => return Err(open_error(&dir, e)),
            };
            let searcher = reader.searcher();
            let opened = segment_keys(
                searcher
                    .segment_readers()
                    .iter()
                    .map(|r| (r.segment_id(), r.delete_opstamp())),
            );
            if opened != keys {
                // A commit between reading meta.json and opening the reader.
                if retry {
                    continue;
                }
                return Err(catalog_error(
                    &dir,
                    "the catalog kept changing while it was opened; try again",
                ));
            }
            let problems = count_problems(&dir, fields, &searcher);
            if !problems.is_empty() {
                return Err(damaged(&dir, problems));
            }
            return Ok(CatalogReader {
                dir,
                index,
                reader,
                fields,
                fast_id,
                files_verified,
            });
        }
    }

    /// The entry with this id, if any.
    pub fn get(&self, id: &str) -> Result<Option<Asset>> {
        let term = Term::from_field_text(self.fields.id, id);
        let query = TermQuery::new(term, IndexRecordOption::Basic);
        Ok(self.run(&query)?.into_iter().next())
    }

    /// Entries whose content hash is `hash`.
    pub fn by_hash(&self, hash: &str) -> Result<Vec<Asset>> {
        let term = Term::from_field_text(self.fields.hash, hash);
        self.run(&TermQuery::new(term, IndexRecordOption::Basic))
    }

    /// Entries matching `filter` (tantivy query syntax over [`FIELDS`]; words without a field
    /// search the title, the file name and the tags; terms are joined by AND unless `OR` is
    /// written). Errors with [`Error::Filter`] for a filter that does not parse.
    pub fn select(&self, filter: &str) -> Result<Vec<Asset>> {
        let query = self.parse(filter)?;
        self.run(query.as_ref())
    }

    /// The ids of the entries matching `filter` (as [`CatalogReader::select`], order
    /// unspecified), read from the id column rather than the stored documents: what a filtered
    /// search needs, at a few microseconds per match instead of a stored-document read each.
    pub fn select_ids(&self, filter: &str) -> Result<Vec<String>> {
        let query = self.parse(filter)?;
        guarded(&self.dir, "selecting ids", || {
            self.select_ids_unguarded(query.as_ref())
        })
    }

    fn select_ids_unguarded(&self, query: &dyn Query) -> Result<Vec<String>> {
        if !self.fast_id {
            return Ok(self.run(query)?.into_iter().map(|a| a.id).collect());
        }
        let searcher = self.reader.searcher();
        let error = |e: tantivy::TantivyError| catalog_error(&self.dir, e);
        let io_error = |e: std::io::Error| catalog_error(&self.dir, e);
        let mut by_segment: Vec<Vec<u32>> = vec![Vec::new(); searcher.segment_readers().len()];
        for address in searcher.search(query, &DocSetCollector).map_err(error)? {
            by_segment[address.segment_ord as usize].push(address.doc_id);
        }
        let mut ids = Vec::new();
        for (segment, docs) in by_segment.iter().enumerate() {
            if docs.is_empty() {
                continue;
            }
            let column = searcher
                .segment_reader(segment as u32)
                .fast_fields()
                .str("id")
                .map_err(error)?
                .ok_or_else(|| catalog_error(&self.dir, "a segment without its id column"))?;
            // Term ordinals resolved in order: one pass over the dictionary's blocks, where one
            // lookup per ordinal would decode a block each.
            let mut ords: Vec<u64> = docs
                .iter()
                .filter_map(|&doc| column.term_ords(doc).next())
                .collect();
            ords.sort_unstable();
            ords.dedup();
            column
                .dictionary()
                .sorted_ords_to_term_cb(ords.into_iter(), |bytes| {
                    ids.push(String::from_utf8_lossy(bytes).into_owned());
                    Ok(())
                })
                .map_err(io_error)?;
        }
        Ok(ids)
    }

    /// Every entry.
    pub fn all(&self) -> Result<Vec<Asset>> {
        self.run(&tantivy::query::AllQuery)
    }

    fn parse(&self, filter: &str) -> Result<Box<dyn Query>> {
        // Measured before the parser sees it: tantivy's parser backtracks (time doubles per
        // nesting level) and recurses (2,000 levels overflow the stack).
        crate::filter::check(filter, &crate::filter::FilterLimits::default())?;
        let f = self.fields;
        let mut parser = QueryParser::for_index(&self.index, vec![f.title, f.file_name, f.tags]);
        parser.set_conjunction_by_default();
        parser
            .parse_query(filter)
            .map_err(|e| Error::Filter(format!("{filter:?}: {e}")))
    }

    /// The matching entries (order unspecified).
    fn run(&self, query: &dyn Query) -> Result<Vec<Asset>> {
        guarded(&self.dir, "reading entries", || self.run_unguarded(query))
    }

    fn run_unguarded(&self, query: &dyn Query) -> Result<Vec<Asset>> {
        let searcher = self.reader.searcher();
        let addresses = searcher
            .search(query, &DocSetCollector)
            .map_err(|e| catalog_error(&self.dir, e))?;
        let mut assets = Vec::with_capacity(addresses.len());
        for address in addresses {
            let doc: TantivyDocument = searcher
                .doc(address)
                .map_err(|e| catalog_error(&self.dir, e))?;
            assets.push(self.asset(&doc));
        }
        Ok(assets)
    }

    fn asset(&self, doc: &TantivyDocument) -> Asset {
        let f = self.fields;
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let u64_of = |field| doc.get_first(field).and_then(|v| v.as_u64());
        Asset {
            id: text(f.id).unwrap_or_default(),
            path: text(f.path),
            file_name: text(f.file_name),
            title: text(f.title),
            tags: doc
                .get_all(f.tags)
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            duration_s: doc
                .get_first(f.duration)
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0),
            format: text(f.format),
            sample_rate: u64_of(f.sample_rate).and_then(|r| u32::try_from(r).ok()),
            content_hash: text(f.hash).unwrap_or_default(),
            tokens: u64_of(f.tokens).unwrap_or(0),
            indexed_at: rfc3339(
                doc.get_first(f.indexed_at)
                    .and_then(|v| v.as_datetime())
                    .map_or(0, |d| d.into_timestamp_secs()),
            ),
            file_size: u64_of(f.file_size),
            modified_ns: doc.get_first(f.modified_ns).and_then(|v| v.as_i64()),
        }
    }

    /// Bytes on disk of the catalog's files.
    pub fn bytes(&self) -> u64 {
        dir_bytes(&self.dir)
    }
}

/// Bytes of the files in `dir` (not recursive: tantivy keeps its files flat).
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The catalog opened for writing by the database's writer (the engine's directory lock makes
/// it the only one).
pub struct Catalog {
    reader: CatalogReader,
    writer: IndexWriter,
    /// Set when a write panicked inside tantivy: the writer's state is unknown, so every later
    /// write is refused (reopening the catalog checks its files again).
    poisoned: bool,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("dir", &self.reader.dir)
            .finish()
    }
}

impl Catalog {
    /// Opens the catalog of the database in `db_dir`, creating it when missing (the folder is
    /// absent or holds only tantivy's dot files). Its files are checked as
    /// [`CatalogReader::open`] checks them; a folder with files but no `meta.json` is
    /// [`Error::CatalogDamaged`], never overwritten with a new catalog.
    pub fn open_or_create(db_dir: &Path) -> Result<Catalog> {
        let dir = db_dir.join(CATALOG_DIR);
        if !dir.join(META_FILE).exists() {
            refuse_files_without_meta(&dir)?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| catalog_error(&dir, e))?;
        let directory = MmapDirectory::open(&dir).map_err(|e| catalog_error(&dir, e))?;
        Self::with_directory(dir, directory)
    }

    /// Creates a new, empty catalog in the folder `dir`, which must not exist (`pairalign
    /// repair` builds the new catalog beside the damaged one).
    pub fn create_in(dir: &Path) -> Result<Catalog> {
        std::fs::create_dir(dir).map_err(|e| catalog_error(dir, e))?;
        let directory = MmapDirectory::open(dir).map_err(|e| catalog_error(dir, e))?;
        Self::with_directory(dir.to_path_buf(), directory)
    }

    /// [`Catalog::open_or_create`] over any tantivy directory (`dir` names it in messages): the
    /// power-loss test runs the catalog over one that forgets what was never synced.
    pub(crate) fn with_directory(dir: PathBuf, directory: impl Directory) -> Result<Catalog> {
        guarded(&dir.clone(), "opening it for writing", move || {
            Self::with_directory_unguarded(dir, directory)
        })
    }

    fn with_directory_unguarded(dir: PathBuf, directory: impl Directory) -> Result<Catalog> {
        // An existing catalog keeps its schema (`with_index` checks it is one this version reads).
        let index = if Index::exists(&directory).map_err(|e| catalog_error(&dir, e))? {
            Index::open(directory).map_err(|e| open_error(&dir, e))?
        } else {
            Index::create(directory, schema().0, tantivy::IndexSettings::default())
                .map_err(|e| catalog_error(&dir, e))?
        };
        // Checked before the writer's first step, which deletes the files meta.json does not
        // name: with a damaged meta.json that could be all of them.
        let reader = CatalogReader::with_index(dir.clone(), index)?;
        let writer: IndexWriter = reader
            .index
            .writer_with_num_threads(1, WRITER_HEAP_BYTES)
            .map_err(|e| catalog_error(&dir, e))?;
        // Merges run in `commit`, in this thread (see `merge_size_classes`).
        writer.set_merge_policy(Box::new(NoMergePolicy));
        // A writer killed inside a commit leaves files that meta.json does not name. Most carry
        // a random segment id, but a delete file is named `{segment}.{opstamp}.del` and opstamps
        // restart from the committed one, so the next commit that deletes from that segment
        // would fail on the leftover with `FileAlreadyExists`: collect them before any write.
        writer
            .garbage_collect_files()
            .wait()
            .map_err(|e| catalog_error(&dir, e))?;
        Ok(Catalog {
            reader,
            writer,
            poisoned: false,
        })
    }

    /// Runs a write, refusing it after an earlier one panicked and turning a panic into
    /// [`Error::CatalogDamaged`] (see [`guarded`]).
    fn write<T>(&mut self, what: &str, f: impl FnOnce(&mut Catalog) -> Result<T>) -> Result<T> {
        let dir = self.reader.dir.clone();
        if self.poisoned {
            return Err(damaged(
                &dir,
                vec!["an earlier write panicked inside the catalog library; reopen it".into()],
            ));
        }
        let result = guarded(&dir, what, || f(self));
        if matches!(result, Err(Error::CatalogDamaged { .. })) {
            self.poisoned = true;
        }
        result
    }

    /// Read access as of the last write.
    pub fn reader(&self) -> &CatalogReader {
        &self.reader
    }

    /// Adds or replaces (by id) these entries and commits.
    pub fn upsert(&mut self, assets: &[Asset]) -> Result<()> {
        if assets.is_empty() {
            return Ok(());
        }
        self.write("adding entries", |catalog| catalog.upsert_unguarded(assets))
    }

    fn upsert_unguarded(&mut self, assets: &[Asset]) -> Result<()> {
        let f = self.reader.fields;
        for asset in assets {
            self.writer
                .delete_term(Term::from_field_text(f.id, &asset.id));
            let mut doc = TantivyDocument::default();
            doc.add_text(f.id, &asset.id);
            let optional = [
                (f.path, &asset.path),
                (f.file_name, &asset.file_name),
                (f.title, &asset.title),
                (f.format, &asset.format),
            ];
            for (field, value) in optional {
                if let Some(v) = value {
                    doc.add_text(field, v);
                }
            }
            for tag in &asset.tags {
                doc.add_text(f.tags, tag);
            }
            doc.add_f64(f.duration, asset.duration_s);
            if let Some(rate) = asset.sample_rate {
                doc.add_u64(f.sample_rate, u64::from(rate));
            }
            doc.add_text(f.hash, &asset.content_hash);
            doc.add_date(
                f.indexed_at,
                DateTime::from_timestamp_secs(parse_rfc3339_secs(&asset.indexed_at)),
            );
            doc.add_u64(f.tokens, asset.tokens);
            if let Some(size) = asset.file_size {
                doc.add_u64(f.file_size, size);
            }
            if let Some(ns) = asset.modified_ns {
                doc.add_i64(f.modified_ns, ns);
            }
            self.writer
                .add_document(doc)
                .map_err(|e| catalog_error(&self.reader.dir, e))?;
        }
        self.commit()
    }

    /// Removes the entries with these ids (missing ones are ignored) and commits.
    pub fn remove<S: AsRef<str>>(&mut self, ids: &[S]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write("removing entries", |catalog| catalog.remove_unguarded(ids))
    }

    fn remove_unguarded<S: AsRef<str>>(&mut self, ids: &[S]) -> Result<()> {
        for id in ids {
            self.writer
                .delete_term(Term::from_field_text(self.reader.fields.id, id.as_ref()));
        }
        self.commit()
    }

    fn commit(&mut self) -> Result<()> {
        let dir = &self.reader.dir;
        self.writer.commit().map_err(|e| catalog_error(dir, e))?;
        self.merge_size_classes()?;
        self.reader
            .reader
            .reload()
            .map_err(|e| catalog_error(&self.reader.dir, e))
    }

    /// Merges every size class of segments (documents in `[8^n, 8^(n+1))`) that holds
    /// [`MERGE_FACTOR`] segments or more, and waits for it: a commit makes a segment, so without
    /// merges a server taking one upload at a time would make one per upload. Tantivy's own
    /// background merges are off because a merge ending (and deleting the segments it merged)
    /// while `reload` was opening the segments of the previous meta made the reload fail with
    /// `FileDoesNotExist` (concurrent uploads in tests/reliability.rs); here nothing reloads
    /// while a merge runs. Amortized, each entry is rewritten once per size class.
    fn merge_size_classes(&mut self) -> Result<()> {
        let dir = &self.reader.dir;
        let metas = self
            .reader
            .index
            .searchable_segment_metas()
            .map_err(|e| catalog_error(dir, e))?;
        let mut classes: std::collections::BTreeMap<u32, Vec<tantivy::index::SegmentId>> =
            std::collections::BTreeMap::new();
        for meta in metas {
            let class = meta.num_docs().max(1).ilog(MERGE_FACTOR as u32);
            classes.entry(class).or_default().push(meta.id());
        }
        for ids in classes.values().filter(|ids| ids.len() >= MERGE_FACTOR) {
            self.writer
                .merge(ids)
                .wait()
                .map_err(|e| catalog_error(dir, e))?;
        }
        Ok(())
    }
}

/// Seconds since the epoch of an RFC 3339 UTC time written by [`rfc3339`]; 0 for anything else.
fn parse_rfc3339_secs(text: &str) -> i64 {
    let parse = || -> Option<i64> {
        let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
        let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
        let (y, m, day) = (d.next()??, d.next()??, d.next()??);
        let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
        let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
        // days_from_civil (H. Hinnant), the inverse of `rfc3339`.
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
    };
    parse().unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    pub(crate) fn asset(id: &str, tags: &[&str], duration_s: f64, hash: &str) -> Asset {
        Asset {
            id: id.to_string(),
            path: Some(id.to_string()),
            file_name: Some(format!("{id}.wav")),
            title: Some(format!("Title of {id}")),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            duration_s,
            format: Some("wav/pcm_s16le".into()),
            sample_rate: Some(44_100),
            content_hash: hash.to_string(),
            tokens: 100,
            indexed_at: "2026-12-01T10:00:00Z".into(),
            file_size: Some(1234),
            modified_ns: Some(-5),
        }
    }

    fn ids(mut assets: Vec<Asset>) -> Vec<String> {
        let mut ids: Vec<String> = assets.drain(..).map(|a| a.id).collect();
        ids.sort();
        ids
    }

    /// Issue 21: 109 single-bit flips made tantivy panic (`mid > len`, `unknown compressor
    /// id`); a panic at the catalog's boundary is an error naming the catalog and the repair.
    #[test]
    fn a_panic_in_the_library_is_a_damaged_catalog() {
        let e = guarded::<()>(Path::new("/srv/db/catalog"), "reading entries", || {
            panic!("mid > len")
        })
        .unwrap_err();
        let message = e.to_string();
        assert!(matches!(e, Error::CatalogDamaged { .. }), "{message}");
        for part in [
            "/srv/db/catalog",
            "panicked while reading entries: mid > len",
            "`pairalign repair --db /srv/db`",
        ] {
            assert!(message.contains(part), "{message}");
        }
    }

    #[test]
    fn dates_round_trip() {
        for secs in [
            0,
            59,
            86_399,
            951_782_400,
            1_796_166_367,
            4_102_444_800,
            -86_400,
        ] {
            assert_eq!(
                parse_rfc3339_secs(&rfc3339(secs)),
                secs,
                "{}",
                rfc3339(secs)
            );
        }
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    /// `select_ids` (the id column) agrees with `select` (the stored documents) on `filters`.
    fn assert_ids_agree(r: &CatalogReader, filters: &[&str]) {
        for filter in filters {
            let mut fast = r.select_ids(filter).unwrap();
            fast.sort();
            assert_eq!(fast, ids(r.select(filter).unwrap()), "{filter}");
        }
    }

    const FILTERS: [&str; 5] = [
        "tags:interview",
        "duration:>60",
        "tags:music OR tags:radio",
        "title:of",
        "tags:none",
    ];

    /// One commit per entry (a server taking uploads one at a time) keeps few segments: each
    /// size class is merged when it holds MERGE_FACTOR of them, and no entry is lost.
    /// A writer killed after writing a commit's files but before replacing meta.json (simulated
    /// by putting the previous meta.json back) leaves a delete file whose name the next commit
    /// reuses; reopening collects it, and the replayed write lands exactly once.
    #[test]
    fn a_commit_killed_before_its_meta_is_replayed_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let meta = dir.path().join(CATALOG_DIR).join("meta.json");
        let first = asset("a", &["old"], 1.0, "h1");
        let second = asset("a", &["new"], 2.0, "h2");
        Catalog::open_or_create(dir.path())
            .unwrap()
            .upsert(&[first, asset("b", &[], 1.0, "h3")])
            .unwrap();
        let committed = std::fs::read(&meta).unwrap();
        Catalog::open_or_create(dir.path())
            .unwrap()
            .upsert(std::slice::from_ref(&second))
            .unwrap();
        let leftovers = |dir: &Path| {
            std::fs::read_dir(dir.join(CATALOG_DIR))
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".del"))
                .count()
        };
        assert_eq!(leftovers(dir.path()), 1, "the replacing commit deletes");
        std::fs::write(&meta, committed).unwrap();

        let mut catalog = Catalog::open_or_create(dir.path()).unwrap();
        assert_eq!(catalog.reader().get("a").unwrap().unwrap().tags, ["old"]);
        assert_eq!(
            leftovers(dir.path()),
            0,
            "the uncommitted delete file is collected"
        );
        catalog.upsert(std::slice::from_ref(&second)).unwrap();
        assert_eq!(ids(catalog.reader().all().unwrap()), ["a", "b"]);
        assert_eq!(catalog.reader().get("a").unwrap().unwrap().tags, ["new"]);
    }

    #[test]
    fn commits_one_at_a_time_are_merged_by_size_class() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open_or_create(dir.path()).unwrap();
        for i in 0..100 {
            let id = format!("a{i:03}");
            catalog
                .upsert(&[asset(&id, &["t"], 1.0, &format!("h{i}"))])
                .unwrap();
        }
        catalog.remove(&["a007"]).unwrap();
        let segments = catalog.reader().index.searchable_segment_metas().unwrap();
        // 100 = 1*64 + 4*8 + 4*1: at most MERGE_FACTOR - 1 segments per class.
        assert!(
            segments.len() < 3 * (MERGE_FACTOR - 1),
            "{} segments",
            segments.len()
        );
        let r = catalog.reader();
        assert_eq!(r.select("tags:t").unwrap().len(), 99);
        assert!(r.get("a007").unwrap().is_none());
        assert!(r.get("a099").unwrap().is_some());
        let files = std::fs::read_dir(dir.path().join(CATALOG_DIR))
            .unwrap()
            .count();
        assert!(
            files < 200,
            "merged segments' files are removed ({files} files)"
        );
    }

    #[test]
    fn filters_select_what_they_say() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open_or_create(dir.path()).unwrap();
        catalog
            .upsert(&[
                asset("a", &["Interview", "radio"], 30.0, "h1"),
                asset("b", &["interview"], 90.0, "h2"),
                asset("c", &["music"], 120.0, "h3"),
            ])
            .unwrap();
        let r = catalog.reader();
        assert_eq!(ids(r.select("tags:interview").unwrap()), ["a", "b"]);
        assert_eq!(
            ids(r.select("tags:INTERVIEW AND duration:>60").unwrap()),
            ["b"]
        );
        assert_eq!(ids(r.select("duration:[100 TO 200]").unwrap()), ["c"]);
        assert_eq!(
            ids(r.select("tags:music OR tags:radio").unwrap()),
            ["a", "c"]
        );
        assert_eq!(
            ids(r.select("format:wav AND sample_rate:44100").unwrap()),
            ["a", "b", "c"]
        );
        assert_eq!(
            ids(r.select("indexed_at:>2026-11-01T00:00:00Z").unwrap()),
            ["a", "b", "c"]
        );
        assert_eq!(ids(r.select("title:of AND c").unwrap()), ["c"]);
        assert_ids_agree(r, &FILTERS);
        assert!(matches!(r.select("tags:(").unwrap_err(), Error::Filter(_)));
        assert!(matches!(
            r.select_ids("tags:(").unwrap_err(),
            Error::Filter(_)
        ));
        assert!(matches!(
            r.select("nosuchfield:x").unwrap_err(),
            Error::Filter(_)
        ));

        // Replaced by id, removed by id; the stored entry reads back as written.
        catalog
            .upsert(&[asset("a", &["archive"], 31.0, "h1")])
            .unwrap();
        catalog.remove(&["c", "never-there"]).unwrap();
        let r = catalog.reader();
        assert_eq!(ids(r.all().unwrap()), ["a", "b"]);
        assert_eq!(
            r.get("a").unwrap(),
            Some(asset("a", &["archive"], 31.0, "h1"))
        );
        assert_eq!(ids(r.by_hash("h2").unwrap()), ["b"]);
        assert!(r.get("c").unwrap().is_none());
        assert_ids_agree(r, &FILTERS);

        // Another process sees the committed catalog.
        drop(catalog);
        let again = CatalogReader::open(dir.path()).unwrap().unwrap();
        assert_eq!(ids(again.select("tags:interview").unwrap()), ["b"]);
        assert!(again.bytes() > 0);
        assert!(CatalogReader::open(&dir.path().join("none"))
            .unwrap()
            .is_none());
    }

    /// A catalog written before `id` was a fast field opens, takes writes and filters the same.
    #[test]
    fn catalogs_without_the_id_column_still_work() {
        let dir = tempfile::tempdir().unwrap();
        let catalog_dir = dir.path().join(CATALOG_DIR);
        std::fs::create_dir_all(&catalog_dir).unwrap();
        Index::create_in_dir(&catalog_dir, schema_with(false).0).unwrap();
        let mut catalog = Catalog::open_or_create(dir.path()).unwrap();
        assert!(!catalog.reader().fast_id);
        catalog
            .upsert(&[
                asset("a", &["interview", "radio"], 30.0, "h1"),
                asset("b", &["interview"], 90.0, "h2"),
                asset("c", &["music"], 120.0, "h3"),
            ])
            .unwrap();
        assert_ids_agree(catalog.reader(), &FILTERS);
        drop(catalog);
        let again = CatalogReader::open(dir.path()).unwrap().unwrap();
        assert_eq!(again.select_ids("duration:>60").unwrap().len(), 2);

        // Another schema altogether is refused with a clear error.
        let other = tempfile::tempdir().unwrap();
        let other_dir = other.path().join(CATALOG_DIR);
        std::fs::create_dir_all(&other_dir).unwrap();
        let mut b = Schema::builder();
        b.add_text_field("id", STRING | STORED);
        Index::create_in_dir(&other_dir, b.build()).unwrap();
        let e = CatalogReader::open(other.path()).unwrap_err();
        assert!(e.to_string().contains("re-indexing"), "{e}");
    }

    #[test]
    fn metadata_limits_and_sidecars() {
        let dir = tempfile::tempdir().unwrap();
        let audio = dir.path().join("talk.wav");
        assert_eq!(AssetMetadata::from_sidecar(&audio).unwrap(), None);
        std::fs::write(
            dir.path().join("talk.json"),
            r#"{"title": "T", "tags": ["x"], "other": 1}"#,
        )
        .unwrap();
        let m = AssetMetadata::from_sidecar(&audio).unwrap().unwrap();
        assert_eq!(
            (m.title.as_deref(), m.tags.as_slice()),
            (Some("T"), &["x".to_string()][..])
        );
        // `talk.wav.json` wins over `talk.json`; a broken sidecar is an error naming it.
        std::fs::write(dir.path().join("talk.wav.json"), "{not json").unwrap();
        let err = AssetMetadata::from_sidecar(&audio).unwrap_err();
        assert!(err.contains("talk.wav.json"), "{err}");
        let many = AssetMetadata {
            tags: vec!["t".into(); MAX_TAGS + 1],
            ..AssetMetadata::default()
        };
        assert!(many.check().is_err());
        let blank = AssetMetadata {
            tags: vec![" ".into()],
            ..AssetMetadata::default()
        };
        assert!(blank.check().is_err());
    }
}
