//! Merging databases: the live documents of several shard databases (indexed apart, for example
//! on several machines) and their catalog entries, copied into one database, when one machine
//! can hold the archive (`pairalign merge --db OUT SHARD...`, issue 25).
//!
//! Every shard is opened and checked in full before anything is written, and all must agree on
//! the vocabulary, the q-gram length and the tokenizer (a database keeps the tokenizer it
//! records). Documents are copied in batches, each one catalog write and then one atomic engine
//! commit, as indexing does: a killed merge keeps the batches it committed, and a rerun skips
//! every document the output already holds with the same tokens. A document id that the output
//! (or an earlier shard) holds with other tokens is a conflict: the first copy stays, the other
//! is reported and not copied.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pairalign_catalog::{Asset, Catalog, CatalogReader};
use pairalign_engine::{DatabaseConfig, DatabaseWriter, NewDoc, Searcher, Symbol};
use serde::Serialize;

use crate::{Error, Result};

/// How to merge.
#[derive(Clone, Debug)]
pub struct MergeOptions {
    /// Tokens copied per commit (a killed merge loses at most one batch).
    pub batch_tokens: u64,
}

impl Default for MergeOptions {
    fn default() -> Self {
        MergeOptions {
            batch_tokens: 20_000_000,
        }
    }
}

/// Where a merge is, after each commit.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MergeProgress {
    /// Live documents in all shards.
    pub docs_total: usize,
    /// Documents looked at so far (copied, already present or in conflict).
    pub docs_done: usize,
}

/// A document left out because the output already held its id with other tokens.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MergeConflict {
    /// The document id.
    pub id: String,
    /// The shard whose copy was left out.
    pub shard: PathBuf,
}

/// What a merge did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MergeReport {
    /// Shards read.
    pub shards: usize,
    /// Documents copied.
    pub added: usize,
    /// Tokens copied.
    pub tokens: u64,
    /// Documents the output already held with the same tokens (a rerun, or the same document
    /// in two shards).
    pub already_present: usize,
    /// Documents whose id the output already held with other tokens: not copied.
    pub conflicts: Vec<MergeConflict>,
    /// Catalog entries copied with the documents (a database of imported tokens has none).
    pub catalog_entries: usize,
}

/// Copies the live documents of `shards` (and their catalog entries) into the database in `out`,
/// created when missing. Errors before writing anything when a shard cannot be opened or fails
/// its full check, when the shards (or the output) disagree on vocabulary, q-gram length or
/// tokenizer, or when `out` is one of the shards.
pub fn merge_databases<P: AsRef<Path>>(
    out: &Path,
    shards: &[P],
    options: &MergeOptions,
    mut progress: impl FnMut(&MergeProgress),
) -> Result<MergeReport> {
    if shards.is_empty() {
        return Err(Error::InvalidOption("no shard databases to merge".into()));
    }
    if options.batch_tokens == 0 {
        return Err(Error::InvalidOption(
            "the merge batch must be at least one token".into(),
        ));
    }
    let out_canonical = std::fs::canonicalize(out).ok();
    let mut opened = Vec::with_capacity(shards.len());
    for shard in shards {
        let shard = shard.as_ref();
        if out_canonical.is_some() && std::fs::canonicalize(shard).ok() == out_canonical {
            return Err(Error::InvalidOption(format!(
                "{} is both the output and a shard",
                shard.display()
            )));
        }
        let db = Searcher::open(shard)?;
        db.verify()?;
        let catalog = CatalogReader::open(shard)?;
        opened.push((shard.to_path_buf(), db, catalog));
    }
    let (first_dir, first, _) = &opened[0];
    let config = first.config();
    let tokenizer = first.tokenizer().cloned();
    for (dir, db, _) in &opened[1..] {
        if db.config() != config {
            return Err(Error::InvalidOption(format!(
                "{} has vocabulary {} and q {}, {} has vocabulary {} and q {}: databases merge \
                 only with the same settings",
                dir.display(),
                db.config().vocab_size,
                db.config().q,
                first_dir.display(),
                config.vocab_size,
                config.q
            )));
        }
        if db.tokenizer() != tokenizer.as_ref() {
            return Err(pairalign_engine::Error::TokenizerMismatch(format!(
                "{} was built with {}, {} with {}: databases merge only with the same tokenizer",
                dir.display(),
                describe(db.tokenizer()),
                first_dir.display(),
                describe(tokenizer.as_ref())
            ))
            .into());
        }
    }
    let mut db = DatabaseWriter::open_or_create(out, config)?;
    check_output(&db, config, tokenizer.as_ref())?;
    if let (Some(record), None) = (&tokenizer, db.tokenizer()) {
        db.set_tokenizer(record.clone())?;
    }
    let mut catalog = Catalog::open_or_create(out)?;

    let mut report = MergeReport {
        shards: opened.len(),
        ..MergeReport::default()
    };
    let mut state = MergeProgress {
        docs_total: opened
            .iter()
            .map(|(_, db, _)| db.info().map(|i| i.docs as usize).unwrap_or(0))
            .sum(),
        docs_done: 0,
    };
    for (dir, shard, shard_catalog) in &opened {
        let mut batch = Batch::default();
        for doc in shard.live_docs()? {
            state.docs_done += 1;
            match held(&db, &batch, &doc.id)? {
                Some(tokens) if tokens == doc.tokens => report.already_present += 1,
                Some(_) => report.conflicts.push(MergeConflict {
                    id: doc.id,
                    shard: dir.clone(),
                }),
                None => {
                    let asset = match shard_catalog {
                        Some(c) => c.get(&doc.id)?,
                        None => None,
                    };
                    batch.push(doc, asset);
                    if batch.tokens >= options.batch_tokens {
                        batch.commit(&mut db, &mut catalog, &mut report)?;
                        progress(&state);
                    }
                }
            }
        }
        batch.commit(&mut db, &mut catalog, &mut report)?;
        progress(&state);
    }
    Ok(report)
}

/// Documents waiting for the next commit.
#[derive(Default)]
struct Batch {
    docs: Vec<NewDoc>,
    assets: Vec<Asset>,
    /// Index in `docs` by id.
    ids: HashMap<String, usize>,
    tokens: u64,
}

impl Batch {
    fn push(&mut self, doc: NewDoc, asset: Option<Asset>) {
        self.tokens += doc.tokens.len() as u64;
        self.ids.insert(doc.id.clone(), self.docs.len());
        self.docs.push(doc);
        self.assets.extend(asset);
    }

    /// The catalog entries first, then one engine commit (the order indexing commits in: a
    /// crash leaves at most entries without documents, which readers ignore).
    fn commit(
        &mut self,
        db: &mut DatabaseWriter,
        catalog: &mut Catalog,
        report: &mut MergeReport,
    ) -> Result<()> {
        if self.docs.is_empty() {
            return Ok(());
        }
        if !self.assets.is_empty() {
            catalog.upsert(&self.assets)?;
        }
        db.add_tokens(&self.docs)?;
        report.added += self.docs.len();
        report.tokens += self.tokens;
        report.catalog_entries += self.assets.len();
        *self = Batch::default();
        Ok(())
    }
}

/// The tokens the output holds (committed or waiting in `batch`) under `id`, if any.
fn held(db: &DatabaseWriter, batch: &Batch, id: &str) -> Result<Option<Vec<Symbol>>> {
    if let Some(&i) = batch.ids.get(id) {
        return Ok(Some(batch.docs[i].tokens.clone()));
    }
    Ok(db
        .find(id)?
        .map(|(s, ord)| {
            db.segments()
                .map(|segments| segments[s].doc_tokens(ord).to_vec())
        })
        .transpose()?)
}

/// The output must have the shards' settings and may record no other tokenizer.
fn check_output(
    db: &DatabaseWriter,
    config: DatabaseConfig,
    tokenizer: Option<&pairalign_engine::TokenizerRecord>,
) -> Result<()> {
    if db.config() != config {
        return Err(Error::InvalidOption(format!(
            "{} has vocabulary {} and q {}, the shards {} and {}",
            db.dir().display(),
            db.config().vocab_size,
            db.config().q,
            config.vocab_size,
            config.q
        )));
    }
    match tokenizer {
        Some(record) => {
            db.accepts_tokenizer(&record.id, &record.weights_hash, config.vocab_size)?;
        }
        None if db.tokenizer().is_some() => {
            return Err(pairalign_engine::Error::TokenizerMismatch(format!(
                "{} records tokenizer {}, the shards hold imported tokens",
                db.dir().display(),
                describe(db.tokenizer())
            ))
            .into());
        }
        None => {}
    }
    Ok(())
}

fn describe(record: Option<&pairalign_engine::TokenizerRecord>) -> String {
    record.map_or_else(
        || "no recorded tokenizer (imported tokens)".to_string(),
        |r| format!("tokenizer {} (weights {})", r.id, r.weights_hash),
    )
}
