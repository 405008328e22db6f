//! Token import from JSON Lines: one document per line,
//! `{"id": "<string>", "tokens": [u16, ...], "times_ms": [u32, ...], "duration_ms": u32}` with
//! `times_ms` and `duration_ms` optional. Problems are reported with their line number; good lines
//! are imported unless the import is strict.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::database::{DatabaseWriter, NewDoc, Searcher};
use crate::{Error, Result, Symbol};

/// One line of a token file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenLine {
    /// Document id.
    pub id: String,
    /// The token string.
    pub tokens: Vec<Symbol>,
    /// Per-token start times in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times_ms: Option<Vec<u32>>,
    /// Duration in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u32>,
}

impl From<TokenLine> for NewDoc {
    fn from(line: TokenLine) -> Self {
        NewDoc {
            id: line.id,
            tokens: line.tokens,
            times_ms: line.times_ms,
            duration_ms: line.duration_ms,
        }
    }
}

/// Import settings.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Import nothing if any line has a problem.
    pub strict: bool,
    /// A segment is committed every this many documents...
    pub batch_docs: usize,
    /// ...or this many tokens, whichever comes first (bounds memory for large files).
    pub batch_tokens: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            strict: false,
            batch_docs: 1_000_000,
            batch_tokens: 50_000_000,
        }
    }
}

/// A line that was not imported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineProblem {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Non-empty lines read.
    pub lines: usize,
    /// Documents imported.
    pub imported: usize,
    /// Tokens imported.
    pub tokens: u64,
    /// Lines that were skipped, with the reason.
    pub problems: Vec<LineProblem>,
}

/// Parses one line into a document, checking it against the database and the ids seen so far.
fn check_line(
    db: &Searcher,
    text: &str,
    seen: &HashSet<String>,
) -> std::result::Result<NewDoc, String> {
    let line: TokenLine = serde_json::from_str(text).map_err(|e| format!("malformed line: {e}"))?;
    let doc = NewDoc::from(line);
    if seen.contains(&doc.id) {
        return Err(Error::DuplicateId(doc.id).to_string() + " (earlier in this file)");
    }
    db.validate(&doc).map_err(|e| e.to_string())?;
    Ok(doc)
}

/// Imports a JSONL token file into `db`, committing a segment every batch (so memory stays
/// bounded). I/O errors abort; bad lines are reported in the returned report. When `strict`, a
/// first pass checks every line and nothing is written if any line has a problem.
pub fn import_jsonl(
    db: &mut DatabaseWriter,
    path: &Path,
    options: &ImportOptions,
) -> Result<ImportReport> {
    if options.strict {
        let report = import_pass(db, path, options, false)?;
        if !report.problems.is_empty() {
            return Ok(report);
        }
    }
    import_pass(db, path, options, true)
}

fn import_pass(
    db: &mut DatabaseWriter,
    path: &Path,
    options: &ImportOptions,
    write: bool,
) -> Result<ImportReport> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::new(file);
    let mut report = ImportReport::default();
    // Ids of this file, for duplicates within it (the database catches earlier imports).
    let mut seen = HashSet::new();
    let mut batch: Vec<NewDoc> = Vec::new();
    let mut batch_tokens = 0usize;
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        number += 1;
        let checked = match std::str::from_utf8(&buf) {
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => check_line(db, text, &seen),
            Err(e) => Err(format!("not UTF-8: {e}")),
        };
        report.lines += 1;
        let doc = match checked {
            Ok(doc) => doc,
            Err(message) => {
                report.problems.push(LineProblem {
                    line: number,
                    message,
                });
                continue;
            }
        };
        seen.insert(doc.id.clone());
        if write {
            batch_tokens += doc.tokens.len();
            batch.push(doc);
            if batch.len() >= options.batch_docs || batch_tokens >= options.batch_tokens {
                flush(db, &mut batch, &mut report)?;
                batch_tokens = 0;
            }
        }
    }
    flush(db, &mut batch, &mut report)?;
    Ok(report)
}

fn flush(
    db: &mut DatabaseWriter,
    batch: &mut Vec<NewDoc>,
    report: &mut ImportReport,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    db.add_tokens(batch)?;
    report.imported += batch.len();
    report.tokens += batch.iter().map(|d| d.tokens.len() as u64).sum::<u64>();
    batch.clear();
    Ok(())
}
