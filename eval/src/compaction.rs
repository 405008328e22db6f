//! `eval compaction`: how many tokens and bytes an hour of the corpus takes in the archive, for
//! each tokenizer, and the reduction against the VQ reference. The bytes are the engine's own:
//! every recording is tokenized window by window as the indexer does and added to a database
//! in a temporary folder (2 bytes a token, 4 a time, q-gram postings, the doc table), compacted
//! into one segment, and measured by `pairalign_query::archive_report` (no catalog). From a
//! feature cache, each clip's view 0 is one document. A dense subject stores one `f32` vector
//! per window (per clip from a cache) and no index: its bytes are `4 * dim` a window.

use std::time::Instant;

use pairalign_datasets::SAMPLE_RATE;
use pairalign_engine::{DatabaseConfig, DatabaseWriter, NewDoc, TokenizerRecord};
use pairalign_models::{TokenString, Tokenizer, WINDOWS_PER_CALL};
use serde::Serialize;

use crate::output::{label, num, table, Outputs};
use crate::plot;
use crate::source::{for_each_chunk, Source, MEL_FRAME_S};
use crate::subject::{Model, Subject, SubjectInfo};
use crate::windows::tokenize_recordings;
use crate::{Error, Result};

/// Recordings decoded (and documents committed) at a time.
const RECORDINGS_PER_CHUNK: usize = 64;

/// How compaction runs.
#[derive(Clone, Debug)]
pub struct CompactionOptions {
    /// Window length, seconds (the index's: 3 s).
    pub window_s: f64,
    /// Only the first recordings (clips of a cache).
    pub max_recordings: Option<usize>,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        CompactionOptions {
            window_s: pairalign_datasets::corpus::DEFAULT_WINDOW_S,
            max_recordings: None,
        }
    }
}

/// Archive size of one subject.
#[derive(Clone, Debug, Serialize)]
pub struct CompactionReport {
    /// Which subject.
    #[serde(flatten)]
    pub subject: SubjectInfo,
    /// `"compaction"`.
    pub protocol: &'static str,
    /// Whether this is the VQ reference the reductions are against.
    pub reference: bool,
    /// Recordings (documents).
    pub recordings: usize,
    /// Hours of audio.
    pub hours: f64,
    /// Tokens in the archive (`None` for a dense subject).
    pub tokens: Option<u64>,
    /// Tokens per second of audio.
    pub tokens_per_s: Option<f64>,
    /// Tokens per hour of audio.
    pub tokens_per_hour: Option<f64>,
    /// Bytes of the database (or of the vectors, for a dense subject).
    pub bytes: u64,
    /// Bytes per hour of audio.
    pub bytes_per_hour: f64,
    /// Bytes per hour in the token section (2 bytes a token).
    pub token_bytes_per_hour: Option<f64>,
    /// Bytes per hour in the times section (4 bytes a token).
    pub time_bytes_per_hour: Option<f64>,
    /// Bytes per hour in the q-gram dictionary and postings.
    pub posting_bytes_per_hour: Option<f64>,
    /// Bytes per hour in the doc table, names and the rest (headers, MANIFEST).
    pub other_bytes_per_hour: Option<f64>,
    /// `100 * (1 - tokens / VQ tokens)` per hour, in percent (negative: more tokens than VQ).
    pub archive_reduction_vs_vq: Option<f64>,
    /// The same for bytes.
    pub bytes_reduction_vs_vq: Option<f64>,
    /// Wall time (tokenizing and building the database).
    pub wall_s: f64,
}

/// Per-subject state while the corpus streams through.
enum Archive<'a> {
    Tokens {
        tokenizer: &'a dyn Tokenizer,
        db: Box<DatabaseWriter>,
        _dir: tempfile::TempDir,
    },
    Dense {
        vectors: u64,
        dim: usize,
    },
}

/// Seconds of audio and documents added, shared by all subjects.
#[derive(Default)]
struct Totals {
    seconds: f64,
    docs: usize,
}

fn doc(id: &str, ts: TokenString, duration_ms: u32) -> NewDoc {
    let last = ts.times_ms.last().copied().unwrap_or(0);
    NewDoc {
        id: id.to_string(),
        tokens: ts.tokens,
        times_ms: Some(ts.times_ms),
        duration_ms: Some(duration_ms.max(last)),
    }
}

/// Measures every subject of `subjects`, and `reference` (the VQ tokenizer the reductions are
/// against) unless one of `subjects` is the same tokenizer; the reference's row comes last
/// with `reference: true`.
pub fn compaction(
    source: &Source,
    subjects: &[Subject],
    reference: Option<&Subject>,
    options: &CompactionOptions,
) -> Result<Vec<CompactionReport>> {
    let started = Instant::now();
    let same = |a: &SubjectInfo, b: &SubjectInfo| {
        a.kind == b.kind && a.tokenizer == b.tokenizer && a.weights_hash == b.weights_hash
    };
    let reference_info = reference.map(Subject::info);
    let reference_index = reference_info
        .as_ref()
        .and_then(|r| subjects.iter().position(|s| same(&s.info(), r)));
    let mut all: Vec<&Subject> = subjects.iter().collect();
    let reference_index = match (reference, reference_index) {
        (_, Some(i)) => Some(i),
        (Some(r), None) => {
            all.push(r);
            Some(all.len() - 1)
        }
        (None, None) => None,
    };
    let mut archives: Vec<Archive> = all
        .iter()
        .map(|s| match &s.model {
            Model::Tokens(t) => {
                let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
                let mut db = DatabaseWriter::create(
                    dir.path().join("db"),
                    DatabaseConfig::new(t.vocab_size(), DatabaseConfig::default().q),
                )?;
                db.set_tokenizer(TokenizerRecord {
                    id: t.id().to_string(),
                    weights_hash: t.weights_hash().to_string(),
                })?;
                Ok(Archive::Tokens {
                    tokenizer: t.as_ref(),
                    db: Box::new(db),
                    _dir: dir,
                })
            }
            Model::Dense(e) => Ok(Archive::Dense {
                vectors: 0,
                dim: e.dim(),
            }),
        })
        .collect::<Result<_>>()?;
    let mut totals = Totals::default();
    let window = (options.window_s * f64::from(SAMPLE_RATE)).round().max(1.0) as usize;
    match source {
        Source::Corpus(_) => {
            let mut recordings = source.recordings(0.0, "compaction")?;
            if let Some(max) = options.max_recordings {
                recordings.truncate(max);
            }
            for_each_chunk(&recordings, RECORDINGS_PER_CHUNK, |first, audio| {
                let refs: Vec<&[f32]> = audio.iter().map(Vec::as_slice).collect();
                let ids = &recordings[first..first + refs.len()];
                totals.docs += refs.len();
                totals.seconds +=
                    refs.iter().map(|r| r.len()).sum::<usize>() as f64 / f64::from(SAMPLE_RATE);
                for archive in &mut archives {
                    match archive {
                        Archive::Tokens { tokenizer, db, .. } => {
                            let strings =
                                tokenize_recordings(*tokenizer, &refs, window, WINDOWS_PER_CALL)?;
                            let docs: Vec<NewDoc> = strings
                                .into_iter()
                                .zip(ids.iter().zip(&refs))
                                .map(|(ts, (rec, samples))| {
                                    let ms = samples.len() as u64 * 1000 / u64::from(SAMPLE_RATE);
                                    doc(&rec.id, ts, u32::try_from(ms).unwrap_or(u32::MAX))
                                })
                                .collect();
                            db.add_tokens(&docs)?;
                        }
                        Archive::Dense { vectors, .. } => {
                            *vectors += refs
                                .iter()
                                .map(|r| r.len().div_ceil(window) as u64)
                                .sum::<u64>();
                        }
                    }
                }
                Ok(())
            })?;
        }
        Source::Cache(cache) => {
            let n = options
                .max_recordings
                .map_or(cache.len(), |m| m.min(cache.len()));
            for start in (0..n).step_by(RECORDINGS_PER_CHUNK) {
                let end = (start + RECORDINGS_PER_CHUNK).min(n);
                let mels: Vec<Vec<f32>> = (start..end)
                    .map(|i| {
                        let mut buf = Vec::new();
                        cache.view(i, 0).to_f32(&mut buf);
                        buf
                    })
                    .collect();
                let refs: Vec<&[f32]> = mels.iter().map(Vec::as_slice).collect();
                totals.docs += refs.len();
                let durations: Vec<u32> = (start..end)
                    .map(|i| (cache.frames(i, 0) as f64 * MEL_FRAME_S * 1000.0) as u32)
                    .collect();
                totals.seconds += durations.iter().map(|&d| f64::from(d)).sum::<f64>() / 1000.0;
                for archive in &mut archives {
                    match archive {
                        Archive::Tokens { tokenizer, db, .. } => {
                            let docs: Vec<NewDoc> = tokenizer
                                .tokenize_mels(&refs)?
                                .into_iter()
                                .zip(start..end)
                                .zip(&durations)
                                .map(|((ts, i), &ms)| doc(cache.clip_id(i), ts, ms))
                                .collect();
                            db.add_tokens(&docs)?;
                        }
                        Archive::Dense { vectors, .. } => *vectors += refs.len() as u64,
                    }
                }
            }
        }
    }
    if totals.docs == 0 {
        return Err(Error::BadInput("no recording to measure".into()));
    }
    let hours = totals.seconds / 3600.0;
    let per_hour = |x: f64| x / hours.max(1e-12);
    let wall_s = started.elapsed().as_secs_f64();
    let mut reports = Vec::with_capacity(all.len());
    for (i, (subject, archive)) in all.iter().zip(archives).enumerate() {
        let mut report = CompactionReport {
            subject: subject.info(),
            protocol: "compaction",
            reference: Some(i) == reference_index,
            recordings: totals.docs,
            hours,
            tokens: None,
            tokens_per_s: None,
            tokens_per_hour: None,
            bytes: 0,
            bytes_per_hour: 0.0,
            token_bytes_per_hour: None,
            time_bytes_per_hour: None,
            posting_bytes_per_hour: None,
            other_bytes_per_hour: None,
            archive_reduction_vs_vq: None,
            bytes_reduction_vs_vq: None,
            wall_s,
        };
        match archive {
            Archive::Tokens { mut db, .. } => {
                db.compact()?;
                let a = pairalign_query::archive_report(&db)?;
                let s = &a.storage;
                report.tokens = Some(a.tokens);
                report.tokens_per_s = Some(a.tokens as f64 / totals.seconds.max(1e-9));
                report.tokens_per_hour = Some(per_hour(a.tokens as f64));
                report.bytes = a.bytes;
                report.bytes_per_hour = per_hour(a.bytes as f64);
                report.token_bytes_per_hour = Some(per_hour(s.tokens as f64));
                report.time_bytes_per_hour = Some(per_hour(s.times as f64));
                report.posting_bytes_per_hour = Some(per_hour(s.postings as f64));
                report.other_bytes_per_hour =
                    Some(per_hour((s.documents + s.catalog + s.other) as f64));
            }
            Archive::Dense { vectors, dim } => {
                report.bytes = vectors * dim as u64 * 4;
                report.bytes_per_hour = per_hour(report.bytes as f64);
            }
        }
        reports.push(report);
    }
    if let Some(r) = reference_index {
        let (ref_tokens, ref_bytes) = (reports[r].tokens_per_hour, reports[r].bytes_per_hour);
        for report in &mut reports {
            let reduction = |x: f64, of: f64| 100.0 * (1.0 - x / of.max(1e-12));
            report.archive_reduction_vs_vq = report
                .tokens_per_hour
                .zip(ref_tokens)
                .map(|(x, of)| reduction(x, of));
            report.bytes_reduction_vs_vq = Some(reduction(report.bytes_per_hour, ref_bytes));
        }
    }
    Ok(reports)
}

/// The markdown table and a bar chart of tokens and kilobytes per hour.
pub fn outputs(reports: &[CompactionReport]) -> Outputs {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let mut name = label(&r.subject);
            if r.reference {
                name.push_str(" (reference)");
            }
            vec![
                name,
                format!("{:.2}", r.hours),
                num(r.tokens_per_s, 2),
                num(r.tokens_per_hour, 0),
                format!("{:.1}", r.bytes_per_hour / 1e3),
                match (
                    r.token_bytes_per_hour,
                    r.time_bytes_per_hour,
                    r.posting_bytes_per_hour,
                    r.other_bytes_per_hour,
                ) {
                    (Some(t), Some(m), Some(p), Some(o)) => format!(
                        "{:.1} / {:.1} / {:.1} / {:.1}",
                        t / 1e3,
                        m / 1e3,
                        p / 1e3,
                        o / 1e3
                    ),
                    _ => "vectors only".into(),
                },
                r.archive_reduction_vs_vq
                    .map_or("—".into(), |v| format!("**{v:.1}%**")),
                r.bytes_reduction_vs_vq
                    .map_or("—".into(), |v| format!("{v:.1}%")),
            ]
        })
        .collect();
    let markdown = table(
        &[
            "tokenizer",
            "hours",
            "tokens/s",
            "tokens/hour",
            "kB/hour",
            "kB/hour: tokens / times / postings / other",
            "tokens vs VQ",
            "bytes vs VQ",
        ],
        &rows,
    );
    let names: Vec<String> = reports.iter().map(|r| label(&r.subject)).collect();
    let chart = plot::bars(
        &format!(
            "Archive per hour of audio ({:.2} h measured)",
            reports.first().map_or(0.0, |r| r.hours)
        ),
        &names,
        &[
            (
                "tokens per hour".into(),
                reports.iter().map(|r| r.tokens_per_hour).collect(),
            ),
            (
                "kB per hour".into(),
                reports
                    .iter()
                    .map(|r| Some(r.bytes_per_hour / 1e3))
                    .collect(),
            ),
        ],
    );
    Outputs {
        json: Outputs::json_of(reports),
        markdown,
        plots: vec![("compaction.svg".into(), chart)],
    }
}
