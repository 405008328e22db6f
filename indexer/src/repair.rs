//! Checking a database and rebuilding its metadata catalog: what `pairalign check` and
//! `pairalign repair` run (issue 21).
//!
//! [`check_database`] opens the database read only (the engine checks the MANIFEST and every segment's
//! checksums as it opens them), then the catalog (every file checksummed, the counts of
//! `meta.json` checked, every stored entry read) and compares the two
//! ([`CatalogReader::cross_check`]); it reports what it checked and each problem.
//!
//! [`repair_catalog`] rebuilds the catalog from what outlives it: the database's live documents (id,
//! tokens, duration) and, for a document whose id is the path of a file that still exists (what
//! `pairalign index` writes), the file itself (hash, size, modification time, format, sample
//! rate, duration) and its sidecar JSON (title, tags). Entries of a previous catalog whose files
//! are intact are kept as they were when their token count is the database's. What cannot be
//! recovered (uploads and samples handed over in memory have no file: their title and tags were
//! only in the catalog) still gets an entry with what the database knows, and is listed. The new
//! catalog is built in a folder of its own, checked against the database, and renamed into
//! place; the previous folder is moved aside (`catalog.damaged-<unix time>`), never deleted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pairalign_engine::{DatabaseWriter, Searcher};
use serde::Serialize;

use crate::{Error, Result};
use pairalign_catalog::{
    file_stamp, hash_file, now_secs, rfc3339, Asset, AssetMetadata, Catalog, CatalogReader,
    CrossCheck, CATALOG_DIR,
};

/// Entries written per commit while rebuilding: bounds the writer's memory on large archives.
const REBUILD_BATCH: usize = 10_000;

/// What [`check_database`] found.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    /// The database folder.
    pub db: PathBuf,
    /// True when nothing is wrong.
    pub ok: bool,
    /// What was checked and found sound, one line each.
    pub checked: Vec<String>,
    /// Each problem, naming the file or document concerned.
    pub problems: Vec<String>,
    /// Remarks that are not problems (ghost entries, no catalog in a database of imported
    /// tokens) and what to do about the problems.
    pub notes: Vec<String>,
    /// How the catalog and the database compare, when both opened.
    pub cross_check: Option<CrossCheck>,
}

/// Checks the database in `db_dir` and its catalog; see the module documentation. Never fails:
/// what cannot be opened is a problem in the report.
pub fn check_database(db_dir: &Path) -> CheckReport {
    let mut report = CheckReport {
        db: db_dir.to_path_buf(),
        ok: false,
        checked: Vec::new(),
        problems: Vec::new(),
        notes: Vec::new(),
        cross_check: None,
    };
    // The full check of every segment (checksums and contents), not only what opening checks.
    let opened = Searcher::open(db_dir).and_then(|db| {
        let live = live_documents(&db)?.len();
        Ok((db, live))
    });
    let db = match opened {
        Ok((db, live)) => {
            report.checked.push(format!(
                "database: MANIFEST (generation {}) and {} segment file(s) checksummed, {live} \
                 live document(s)",
                db.manifest().generation,
                db.segment_count()
            ));
            Some((db, live))
        }
        Err(e) => {
            report.problems.push(format!("database: {e}"));
            None
        }
    };
    let catalog_dir = db_dir.join(CATALOG_DIR);
    let mut catalog_problem = false;
    match CatalogReader::open(db_dir) {
        Ok(None) => match &db {
            Some((db, live)) if db.tokenizer().is_some() && *live > 0 => {
                catalog_problem = true;
                report.problems.push(format!(
                    "catalog: {} is absent or empty while the database holds {live} document(s) \
                     indexed from audio: listings are empty and filters select nothing",
                    catalog_dir.display()
                ));
            }
            _ => report.notes.push(format!(
                "catalog: none ({} is absent or empty), as in a database of imported tokens",
                catalog_dir.display()
            )),
        },
        Ok(Some(catalog)) => {
            report.checked.push(format!(
                "catalog: {} file(s) checksummed and the counts of meta.json agree with them",
                catalog.files_verified()
            ));
            match catalog.all() {
                Ok(entries) => report
                    .checked
                    .push(format!("catalog: {} stored entr(ies) read", entries.len())),
                Err(e) => {
                    catalog_problem = true;
                    push_error(&mut report.problems, e);
                }
            }
            if let Some((db, _)) = &db {
                match catalog.cross_check(db) {
                    Ok(cross) => {
                        let problems = cross.problems();
                        if problems.is_empty() {
                            report.checked.push(format!(
                                "catalog against the database: each of the {} live document(s) \
                                 has one entry with its token count",
                                cross.live_docs
                            ));
                        }
                        if cross.ghosts > 0 {
                            report.notes.push(format!(
                                "catalog: {} entr(ies) of documents the database does not hold \
                                 (left by an interrupted write; ignored by readers)",
                                cross.ghosts
                            ));
                        }
                        catalog_problem |= !problems.is_empty();
                        report
                            .problems
                            .extend(problems.into_iter().map(|p| format!("catalog: {p}")));
                        report.cross_check = Some(cross);
                    }
                    Err(e) => {
                        catalog_problem = true;
                        push_error(&mut report.problems, e);
                    }
                }
            }
        }
        Err(e) => {
            catalog_problem = true;
            push_error(&mut report.problems, e);
        }
    }
    if catalog_problem && db.is_some() {
        report.notes.push(format!(
            "`pairalign repair --db {}` rebuilds the catalog from the database and the files' \
             sidecars (the present folder is kept beside it)",
            db_dir.display()
        ));
    }
    report.ok = report.problems.is_empty();
    report
}

/// A catalog error as problems: each of a damaged catalog's, or the error itself.
fn push_error(problems: &mut Vec<String>, e: impl Into<Error>) {
    match e.into() {
        Error::Catalog(pairalign_catalog::Error::CatalogDamaged {
            problems: found, ..
        }) => problems.extend(found.into_iter().map(|p| format!("catalog: {p}"))),
        other => problems.push(other.to_string()),
    }
}

/// What [`repair_catalog`] did.
#[derive(Clone, Debug, Serialize)]
pub struct RepairReport {
    /// The database folder.
    pub db: PathBuf,
    /// The new catalog folder (`<db>/catalog`).
    pub catalog: PathBuf,
    /// Where the previous catalog folder was moved; `None` when there was none.
    pub moved_aside: Option<PathBuf>,
    /// Entries written: one per live document.
    pub entries: usize,
    /// Entries kept from the previous catalog (its files intact, its token count the
    /// database's).
    pub kept: usize,
    /// Entries rebuilt from the file at the document's id and its sidecar.
    pub from_files: usize,
    /// Documents whose metadata could not all be recovered, with what was lost and why.
    pub not_recovered: Vec<NotRecovered>,
}

/// A document whose entry was rebuilt without all its metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NotRecovered {
    /// The document id.
    pub id: String,
    /// What was lost and why.
    pub reason: String,
}

/// One live document of the database.
struct LiveDocument {
    id: String,
    tokens: u64,
    duration_ms: u32,
}

fn live_documents(db: &Searcher) -> pairalign_engine::Result<Vec<LiveDocument>> {
    Ok(db
        .segments()?
        .iter()
        .flat_map(|segment| {
            segment
                .docs()
                .filter(|d| !db.is_deleted(d.doc_id))
                .map(|d| LiveDocument {
                    id: d.name.to_string(),
                    tokens: d.tokens.len() as u64,
                    duration_ms: d.duration_ms,
                })
                .collect::<Vec<_>>()
        })
        .collect())
}

/// Rebuilds the catalog of the database in `db_dir`; see the module documentation. Takes the
/// database's write lock (fails while another writer, `pairalign index` or `serve`, holds it).
/// The rebuilt catalog is checked against the database before it replaces the present one; a
/// failure before that leaves the present catalog in place (and a `catalog.rebuild-*` folder
/// that may be removed).
pub fn repair_catalog(db_dir: &Path) -> Result<RepairReport> {
    let db = DatabaseWriter::open(db_dir)?;
    let catalog_dir = db_dir.join(CATALOG_DIR);
    let previous = salvageable(db_dir);
    let indexed_at = rfc3339(now_secs());
    let mut report = RepairReport {
        db: db_dir.to_path_buf(),
        catalog: catalog_dir.clone(),
        moved_aside: None,
        entries: 0,
        kept: 0,
        from_files: 0,
        not_recovered: Vec::new(),
    };
    let mut entries = Vec::new();
    for doc in live_documents(&db)? {
        if let Some(asset) = previous.get(&doc.id).filter(|a| a.tokens == doc.tokens) {
            entries.push(asset.clone());
            report.kept += 1;
            continue;
        }
        let known = Asset {
            id: doc.id.clone(),
            path: None,
            file_name: None,
            title: None,
            tags: Vec::new(),
            duration_s: f64::from(doc.duration_ms) / 1000.0,
            format: None,
            sample_rate: None,
            content_hash: String::new(),
            tokens: doc.tokens,
            indexed_at: indexed_at.clone(),
            file_size: None,
            modified_ns: None,
        };
        let path = Path::new(&doc.id);
        if !(path.is_absolute() && path.is_file()) {
            report.not_recovered.push(NotRecovered {
                id: doc.id,
                reason: "not recovered: title/tags lost (no file at the id: an upload, or a \
                         file since removed; file name, format and hash lost too)"
                    .to_string(),
            });
            entries.push(known);
            continue;
        }
        let (asset, lost) = from_file(path, known);
        if let Some(reason) = lost {
            report.not_recovered.push(NotRecovered {
                id: asset.id.clone(),
                reason,
            });
        } else {
            report.from_files += 1;
        }
        entries.push(asset);
    }
    report.entries = entries.len();

    let stamp = now_secs();
    let building = db_dir.join(format!("catalog.rebuild-{stamp}-{}", std::process::id()));
    {
        let mut catalog = Catalog::create_in(&building)?;
        for batch in entries.chunks(REBUILD_BATCH) {
            catalog.upsert(batch)?;
        }
    }
    let rebuilt = CatalogReader::open_dir(building.clone())?.ok_or_else(|| {
        pairalign_catalog::Error::Catalog(format!(
            "{}: the rebuilt catalog is empty",
            building.display()
        ))
    })?;
    rebuilt.verify_against(&db)?;
    drop(rebuilt);

    if catalog_dir.exists() {
        let aside = unused(db_dir, &format!("catalog.damaged-{stamp}"));
        rename(&catalog_dir, &aside)?;
        report.moved_aside = Some(aside);
    }
    rename(&building, &catalog_dir)?;
    sync_dir(db_dir)?;
    Ok(report)
}

/// The entries of the present catalog that can be trusted: it opens (every file checksummed,
/// counts consistent) and each id has one entry. Empty otherwise.
fn salvageable(db_dir: &Path) -> HashMap<String, Asset> {
    let Ok(Some(previous)) = CatalogReader::open(db_dir) else {
        return HashMap::new();
    };
    let Ok(all) = previous.all() else {
        return HashMap::new();
    };
    let mut by_id: HashMap<String, Option<Asset>> = HashMap::new();
    for asset in all {
        by_id
            .entry(asset.id.clone())
            .and_modify(|seen| *seen = None)
            .or_insert(Some(asset));
    }
    by_id
        .into_iter()
        .filter_map(|(id, asset)| Some((id, asset?)))
        .collect()
}

/// `known` completed from the file at `path` and its sidecar, with what could not be read.
fn from_file(path: &Path, known: Asset) -> (Asset, Option<String>) {
    let mut lost = Vec::new();
    let mut asset = Asset {
        path: Some(known.id.clone()),
        file_name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        ..known
    };
    match hash_file(path) {
        Ok(hash) => asset.content_hash = hash,
        Err(e) => lost.push(format!("hash (cannot read the file: {e})")),
    }
    if let Some((size, modified_ns)) = file_stamp(path) {
        asset.file_size = Some(size);
        asset.modified_ns = Some(modified_ns);
    }
    match pairalign_datasets::decode::probe(path) {
        Ok(info) => {
            asset.format = Some(info.format);
            asset.sample_rate = Some(info.sample_rate);
            if let Some(seconds) = info.duration_s {
                asset.duration_s = seconds;
            }
        }
        Err(e) => lost.push(format!("format and sample rate ({e})")),
    }
    match AssetMetadata::from_sidecar(path) {
        Ok(Some(metadata)) => {
            asset.title = metadata.title;
            asset.tags = metadata.tags;
        }
        Ok(None) => {}
        Err(e) => lost.push(format!("title and tags ({e})")),
    }
    let lost = (!lost.is_empty()).then(|| format!("not recovered: {}", lost.join("; ")));
    (asset, lost)
}

/// `<db_dir>/<name>`, or `<name>-2`, `-3`... when taken.
fn unused(db_dir: &Path, name: &str) -> PathBuf {
    let mut candidate = db_dir.join(name);
    let mut n = 1;
    while candidate.exists() {
        n += 1;
        candidate = db_dir.join(format!("{name}-{n}"));
    }
    candidate
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| {
        pairalign_catalog::Error::Catalog(format!(
            "cannot move {} to {}: {e}",
            from.display(),
            to.display()
        ))
        .into()
    })
}

/// Makes the renames durable (the database folder's entries).
fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| {
            pairalign_catalog::Error::Catalog(format!("cannot sync {}: {e}", dir.display())).into()
        })
}
