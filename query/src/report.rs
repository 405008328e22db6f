//! The archive report (`pairalign report`): how much audio a database holds, how many tokens and
//! bytes it takes per hour and where the bytes go; and, with another tokenizer (the VQ baseline),
//! how many tokens the same recordings would take, measured on a sample of the archive's files.

use std::fmt::Write as _;
use std::path::Path;

use pairalign_datasets::decode::{decode_file, DecodeOptions};
use pairalign_engine::{Searcher, TokenizerRecord};
use pairalign_models::{tokenize_windows, Tokenizer, WINDOWS_PER_CALL, WINDOW_SAMPLES};
use serde::Serialize;

use crate::{Error, Result};

/// Where the bytes on disk go, in bytes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StorageBytes {
    /// Token strings (2 bytes a token).
    pub tokens: u64,
    /// Per-token times (4 bytes a token).
    pub times: u64,
    /// Q-gram dictionary and postings.
    pub postings: u64,
    /// Doc table, names and name index.
    pub documents: u64,
    /// The metadata catalog (`catalog/`: tantivy's files).
    pub catalog: u64,
    /// Headers, footers, padding, tombstones and the MANIFEST.
    pub other: u64,
}

/// What the database holds (deleted documents excluded from the counts, not from the bytes).
#[derive(Clone, Debug, Serialize)]
pub struct ArchiveReport {
    /// The tokenizer the database records.
    pub tokenizer: Option<TokenizerRecord>,
    /// Live documents.
    pub docs: u64,
    /// Hours of audio of the live documents.
    pub hours: f64,
    /// Tokens of the live documents.
    pub tokens: u64,
    /// Tokens per second of audio.
    pub tokens_per_s: f64,
    /// Bytes of the database folder's files.
    pub bytes: u64,
    /// `bytes / hours`.
    pub bytes_per_hour: f64,
    /// Where the bytes go.
    pub storage: StorageBytes,
    /// The same recordings under another tokenizer, when asked for.
    pub versus: Option<Comparison>,
}

/// The archive's tokens against another tokenizer's on the same files.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// The other tokenizer's id.
    pub tokenizer: String,
    /// Files re-tokenized (spread evenly over the archive).
    pub files: usize,
    /// Files that could not be read again (moved, deleted, changed format); left out.
    pub unreadable: usize,
    /// Seconds of audio in the sample.
    pub sample_s: f64,
    /// The archive's tokens for the sample files.
    pub archive_tokens: u64,
    /// The other tokenizer's tokens for the same files.
    pub other_tokens: u64,
    /// The other tokenizer's tokens per second.
    pub other_tokens_per_s: f64,
    /// How many fewer tokens the archive has: `100 * (1 - archive / other)`, in percent
    /// (negative when the archive has more).
    pub reduction_percent: f64,
    /// The whole archive's bytes per hour if it scaled with the other tokenizer's token count.
    pub other_bytes_per_hour: f64,
}

/// Counts, durations and bytes of `db`.
pub fn archive_report(db: &Searcher) -> Result<ArchiveReport> {
    let mut docs = 0u64;
    let mut tokens = 0u64;
    let mut duration_ms = 0u64;
    let mut storage = StorageBytes::default();
    let mut segment_bytes = 0u64;
    for seg in db.segments()? {
        for doc in seg.docs().filter(|d| !db.is_deleted(d.doc_id)) {
            docs += 1;
            tokens += doc.tokens.len() as u64;
            duration_ms += u64::from(doc.duration_ms);
        }
        segment_bytes += seg.byte_len();
        for (name, bytes) in seg.section_bytes() {
            match name {
                "tokens" => storage.tokens += bytes,
                "times" => storage.times += bytes,
                "qgram keys" | "qgram refs" | "postings" => storage.postings += bytes,
                _ => storage.documents += bytes,
            }
        }
    }
    let bytes = folder_bytes(db.dir())?;
    storage.catalog = pairalign_catalog::dir_bytes(&db.dir().join(pairalign_catalog::CATALOG_DIR));
    let sections = storage.tokens + storage.times + storage.postings + storage.documents;
    storage.other = bytes.saturating_sub(sections + storage.catalog);
    debug_assert!(segment_bytes >= sections);
    let hours = duration_ms as f64 / 3.6e6;
    Ok(ArchiveReport {
        tokenizer: db.tokenizer().cloned(),
        docs,
        hours,
        tokens,
        tokens_per_s: tokens as f64 / (hours * 3600.0).max(1e-9),
        bytes,
        bytes_per_hour: bytes as f64 / hours.max(1e-12),
        storage,
        versus: None,
    })
}

/// Re-tokenizes up to `sample` files of the archive (spread evenly; the document ids are file
/// paths, as `pairalign index` writes them) with `other`, and compares token counts on them.
pub fn compare(
    db: &Searcher,
    report: &ArchiveReport,
    other: &dyn Tokenizer,
    sample: usize,
) -> Result<Comparison> {
    let live: Vec<(String, u64)> = db
        .segments()?
        .iter()
        .flat_map(|seg| {
            seg.docs()
                .filter(|d| !db.is_deleted(d.doc_id))
                .map(|d| (d.name.to_string(), d.tokens.len() as u64))
                .collect::<Vec<_>>()
        })
        .collect();
    if live.is_empty() || sample == 0 {
        return Err(Error::InvalidOption(
            "the comparison needs a non-empty archive and a sample of at least 1 file".into(),
        ));
    }
    let step = live.len().div_ceil(sample.min(live.len()));
    let (mut files, mut unreadable) = (0, 0);
    let (mut sample_s, mut archive_tokens, mut other_tokens) = (0.0, 0u64, 0u64);
    for (id, tokens) in live.iter().step_by(step) {
        let Ok(audio) = decode_file(Path::new(id), &DecodeOptions::default()) else {
            unreadable += 1;
            continue;
        };
        let ts = tokenize_windows(other, &audio.samples, WINDOW_SAMPLES, WINDOWS_PER_CALL)
            .map_err(|e| Error::InvalidOption(format!("{}: {e}", other.id())))?;
        files += 1;
        sample_s += audio.duration_s();
        archive_tokens += tokens;
        other_tokens += ts.len() as u64;
    }
    if files == 0 {
        return Err(Error::InvalidOption(format!(
            "none of the {unreadable} sampled files could be read again: the comparison needs \
             the indexed recordings at their paths"
        )));
    }
    let ratio = archive_tokens as f64 / (other_tokens as f64).max(1.0);
    Ok(Comparison {
        tokenizer: other.id().to_string(),
        files,
        unreadable,
        sample_s,
        archive_tokens,
        other_tokens,
        other_tokens_per_s: other_tokens as f64 / sample_s.max(1e-9),
        reduction_percent: 100.0 * (1.0 - ratio),
        other_bytes_per_hour: report.bytes_per_hour / ratio.max(1e-12),
    })
}

/// Bytes of the files in `dir` and its subfolders. A file that disappears while they are
/// counted (a writer's temporary file, renamed or removed meanwhile) counts 0.
fn folder_bytes(dir: &Path) -> Result<u64> {
    let vanished = |e: &walkdir::Error| {
        e.io_error()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    };
    let mut total = 0;
    for entry in walkdir::WalkDir::new(dir) {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if vanished(&e) => continue,
            Err(e) => return Err(Error::InvalidOption(format!("{}: {e}", dir.display()))),
        };
        if entry.file_type().is_file() {
            total += match entry.metadata() {
                Ok(meta) => meta.len(),
                Err(e) if vanished(&e) => 0,
                Err(e) => return Err(Error::InvalidOption(format!("{}: {e}", dir.display()))),
            };
        }
    }
    Ok(total)
}

/// An SVG bar chart of tokens per hour and kilobytes per hour, for the archive and (when
/// compared) the other tokenizer, with the reduction written above.
pub fn svg(report: &ArchiveReport) -> String {
    let name = report
        .tokenizer
        .as_ref()
        .map_or("archive".to_string(), |t| format!("archive ({})", t.id));
    let mut groups = vec![(
        "tokens per hour",
        vec![(name.clone(), report.tokens_per_s * 3600.0)],
    )];
    groups.push((
        "kB on disk per hour",
        vec![(name, report.bytes_per_hour / 1e3)],
    ));
    if let Some(v) = &report.versus {
        groups[0]
            .1
            .push((v.tokenizer.clone(), v.other_tokens_per_s * 3600.0));
        groups[1]
            .1
            .push((v.tokenizer.clone(), v.other_bytes_per_hour / 1e3));
    }
    let (width, height, top, bar_w, gap) = (640.0, 360.0, 70.0, 90.0, 30.0);
    let colors = ["#2b6cb0", "#a0aec0"];
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="13">"#
    );
    let title = match &report.versus {
        Some(v) => format!(
            "{:.1} h of audio: {:.1}% fewer tokens than {}",
            report.hours, v.reduction_percent, v.tokenizer
        ),
        None => format!("{:.1} h of audio, {} documents", report.hours, report.docs),
    };
    let _ = writeln!(
        out,
        r#"<text x="20" y="30" font-size="16" font-weight="bold">{}</text>"#,
        escape(&title)
    );
    let plot_h = height - top - 60.0;
    for (g, (label, bars)) in groups.iter().enumerate() {
        let max = bars.iter().map(|b| b.1).fold(0.0f64, f64::max).max(1e-9);
        let x0 = 40.0 + g as f64 * (width / 2.0);
        for (i, (bar, value)) in bars.iter().enumerate() {
            let h = plot_h * value / max;
            let x = x0 + i as f64 * (bar_w + gap);
            let y = top + plot_h - h;
            let _ = writeln!(
                out,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar_w}" height="{h:.1}" fill="{}"/>"#,
                colors[i % colors.len()]
            );
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{value:.0}</text>"#,
                x + bar_w / 2.0,
                y - 6.0
            );
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"#,
                x + bar_w / 2.0,
                top + plot_h + 18.0,
                escape(bar)
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-weight="bold">{}</text>"#,
            x0,
            top + plot_h + 42.0,
            escape(label)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Text escaped for SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
