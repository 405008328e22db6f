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

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tantivy::collector::DocSetCollector;
use tantivy::directory::MmapDirectory;
use tantivy::indexer::NoMergePolicy;
use tantivy::query::{Query, QueryParser, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, INDEXED, STORED,
    STRING, TEXT,
};
use tantivy::tokenizer::{LowerCaser, RawTokenizer, TextAnalyzer};
use tantivy::{
    DateTime, Directory, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term,
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
}

impl std::fmt::Debug for CatalogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogReader")
            .field("dir", &self.dir)
            .finish()
    }
}

impl CatalogReader {
    /// Opens the catalog of the database in `db_dir` for reading; `None` when the database has
    /// none (it holds imported tokens, or was created before the catalog existed).
    pub fn open(db_dir: &Path) -> Result<Option<CatalogReader>> {
        let dir = db_dir.join(CATALOG_DIR);
        if !dir.join("meta.json").exists() {
            return Ok(None);
        }
        let directory = MmapDirectory::open(&dir).map_err(|e| catalog_error(&dir, e))?;
        let index = Index::open(directory).map_err(|e| catalog_error(&dir, e))?;
        Self::with_index(dir, index).map(Some)
    }

    fn with_index(dir: PathBuf, index: Index) -> Result<CatalogReader> {
        let (expected, fields) = schema();
        let fast_id = if index.schema() == expected {
            true
        } else if index.schema() == schema_with(false).0 {
            false
        } else {
            return Err(catalog_error(
                &dir,
                "the catalog's schema is not this version's; rebuild it by re-indexing",
            ));
        };
        index.tokenizers().register(
            "tag",
            TextAnalyzer::builder(RawTokenizer::default())
                .filter(LowerCaser)
                .build(),
        );
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| catalog_error(&dir, e))?;
        Ok(CatalogReader {
            dir,
            index,
            reader,
            fields,
            fast_id,
        })
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
        if !self.fast_id {
            return Ok(self
                .run(query.as_ref())?
                .into_iter()
                .map(|a| a.id)
                .collect());
        }
        let searcher = self.reader.searcher();
        let error = |e: tantivy::TantivyError| catalog_error(&self.dir, e);
        let io_error = |e: std::io::Error| catalog_error(&self.dir, e);
        let mut by_segment: Vec<Vec<u32>> = vec![Vec::new(); searcher.segment_readers().len()];
        for address in searcher
            .search(query.as_ref(), &DocSetCollector)
            .map_err(error)?
        {
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
        let f = self.fields;
        let mut parser = QueryParser::for_index(&self.index, vec![f.title, f.file_name, f.tags]);
        parser.set_conjunction_by_default();
        parser
            .parse_query(filter)
            .map_err(|e| Error::Filter(format!("{filter:?}: {e}")))
    }

    /// The matching entries (order unspecified).
    fn run(&self, query: &dyn Query) -> Result<Vec<Asset>> {
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
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("dir", &self.reader.dir)
            .finish()
    }
}

impl Catalog {
    /// Opens the catalog of the database in `db_dir`, creating it when missing.
    pub fn open_or_create(db_dir: &Path) -> Result<Catalog> {
        let dir = db_dir.join(CATALOG_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| catalog_error(&dir, e))?;
        let directory = MmapDirectory::open(&dir).map_err(|e| catalog_error(&dir, e))?;
        Self::with_directory(dir, directory)
    }

    /// [`Catalog::open_or_create`] over any tantivy directory (`dir` names it in messages): the
    /// power-loss test runs the catalog over one that forgets what was never synced.
    pub(crate) fn with_directory(dir: PathBuf, directory: impl Directory) -> Result<Catalog> {
        // An existing catalog keeps its schema (`with_index` checks it is one this version reads).
        let index = if Index::exists(&directory).map_err(|e| catalog_error(&dir, e))? {
            Index::open(directory)
        } else {
            Index::create(directory, schema().0, tantivy::IndexSettings::default())
        }
        .map_err(|e| catalog_error(&dir, e))?;
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
        Ok(Catalog { reader, writer })
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
