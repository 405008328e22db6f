//! Clip -> tokens -> engine search -> hits, with the checks that keep a query comparable with the
//! archive: the same tokenizer as the one the database records, and a clip length in range.

use std::path::Path;
use std::time::Instant;

use pairalign_datasets::decode::{decode_bytes, decode_file, DecodeOptions};
use pairalign_datasets::{Audio, SAMPLE_RATE};
use pairalign_engine::{Database, EditBudget, Hit, SearchOptions};
use pairalign_models::{
    shipped, tokenize_query, AnyTokenizer, Device, TokenString, Tokenizer, WINDOWS_PER_CALL,
    WINDOW_SAMPLES,
};
use serde::Serialize;

use crate::{Error, Result};

/// Shortest clip accepted, in seconds: below it a clip gives a handful of tokens that match
/// almost anywhere.
pub const MIN_CLIP_S: f64 = 0.5;
/// Longest clip accepted, in seconds (issue 6): longer queries cost verifier time quadratic in
/// their length and are better split by the caller.
pub const MAX_CLIP_S: f64 = 60.0;

/// Edit budget for clip queries when the caller gives none, as a fraction of the query length.
/// Looser than the engine's token-query default (0.4) because the shipped VQ tokenizer (vq-v1)
/// gives views of the same speech normalized distances of 0.3 to 0.8 (speed 1.05, gain), while
/// unrelated speech sits at 0.8 to 0.92 (measured on `samples/`, 2026-11-25); a tighter budget
/// returns nothing for a real, modified clip. Tighten it when a more robust tokenizer ships.
pub const CLIP_EDIT_BUDGET: EditBudget = EditBudget::Fraction(0.9);

/// The search options for clip queries: infix mode (find the clip inside files), the engine's
/// defaults, and [`CLIP_EDIT_BUDGET`].
pub fn clip_search_options() -> SearchOptions {
    SearchOptions {
        k: Some(CLIP_EDIT_BUDGET),
        ..SearchOptions::default()
    }
}

/// Hits of one query by example and where the time went.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchOutcome {
    /// Best hits, sorted by distance (then id, then start); `id` is the file's document id.
    pub hits: Vec<Hit>,
    /// Tokens in the query string.
    pub query_tokens: usize,
    /// The absolute edit budget used (`None`: unbounded).
    pub k: Option<u32>,
    /// True when the result equals an exhaustive search.
    pub lossless: bool,
    /// Milliseconds spent tokenizing the clip.
    pub tokenize_ms: f64,
    /// Milliseconds spent in the engine's search.
    pub search_ms: f64,
    /// Milliseconds in all (tokenizing and searching; decoding excluded).
    pub took_ms: f64,
}

/// Checks that `db` was built with `tokenizer` (same id, weights hash and vocabulary); a database
/// that records no tokenizer cannot be searched with audio.
pub fn check_tokenizer(db: &Database, tokenizer: &dyn Tokenizer) -> Result<()> {
    if db.tokenizer().is_none() {
        return Err(Error::TokenizerMismatch(format!(
            "{} records no tokenizer (it holds imported tokens or nothing yet); \
             search it with token strings",
            db.dir().display()
        )));
    }
    // The same comparison (id, weights hash, vocabulary) as for adding to the database.
    pairalign_indexer::check_tokenizer(db, tokenizer).map_err(|e| match e {
        pairalign_indexer::Error::TokenizerMismatch(why) => Error::TokenizerMismatch(why),
        other => Error::Index(other),
    })
}

/// The tokenizer for the database in `dir`: the shipped model it records (`vq` or `pairalign`,
/// with the same weights hash), or [`pairalign_models::shipped::DEFAULT`] for a database that
/// does not exist yet or records no tokenizer (adding audio to one of imported tokens then fails
/// with a clear error). A database built with weights that are not shipped is
/// [`Error::TokenizerMismatch`]: name its weights folder instead.
pub fn database_tokenizer(dir: &Path, device: &Device) -> Result<AnyTokenizer> {
    let recorded = Database::open_read_only(dir)
        .ok()
        .and_then(|d| d.tokenizer().cloned());
    let Some(record) = recorded else {
        return Ok(AnyTokenizer::open(shipped::DEFAULT, device)?);
    };
    if let Ok(tok) = AnyTokenizer::open(&record.id, device) {
        if tok.weights_hash() == record.weights_hash {
            return Ok(tok);
        }
    }
    Err(Error::TokenizerMismatch(format!(
        "{} was built with tokenizer {} (weights {}), not a shipped model: give its weights \
         folder",
        dir.display(),
        record.id,
        record.weights_hash
    )))
}

/// Searches `db` for the 16 kHz mono clip `samples_16k`: tokenized window by window like the
/// index, then `Database::search_tokens` with `options` (infix mode by default: the clip is found
/// inside files). A tokenizer whose strings depend on where a window starts
/// ([`Tokenizer::query_phases`] above 1), or one that gives a query several strings
/// ([`Tokenizer::tokenize_variants`]: a PairAlign model's grid phases), has the clip searched
/// once per phase and string ([`pairalign_models::tokenize_query`]); the hits of all are ranked
/// together by normalized distance, and of hits that overlap in a file only the best is kept. Errors for a clip outside
/// [`MIN_CLIP_S`]..=[`MAX_CLIP_S`] and for a tokenizer other than the database's.
pub fn search_audio(
    db: &Database,
    tokenizer: &dyn Tokenizer,
    samples_16k: &[f32],
    options: &SearchOptions,
) -> Result<SearchOutcome> {
    check_tokenizer(db, tokenizer)?;
    let seconds = samples_16k.len() as f64 / f64::from(SAMPLE_RATE);
    if !(MIN_CLIP_S..=MAX_CLIP_S).contains(&seconds) {
        return Err(Error::ClipLength {
            seconds,
            min: MIN_CLIP_S,
            max: MAX_CLIP_S,
        });
    }
    let started = Instant::now();
    let phases = tokenize_query(tokenizer, samples_16k, WINDOW_SAMPLES, WINDOWS_PER_CALL)?;
    let tokenize_ms = started.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let mut outcomes = Vec::with_capacity(phases.len());
    for phase in &phases {
        outcomes.push(db.search_tokens(&phase.tokens, options)?);
    }
    let search_ms = t.elapsed().as_secs_f64() * 1e3;
    // Phase 0 is the clip windowed like a file: its length and budget are the ones reported.
    let k = outcomes.first().and_then(|o| o.k);
    let lossless = outcomes.iter().all(|o| o.lossless);
    let hits = if outcomes.len() == 1 {
        outcomes.pop().map(|o| o.hits).unwrap_or_default()
    } else {
        best_of_phases(
            outcomes.into_iter().flat_map(|o| o.hits).collect(),
            options.top,
        )
    };
    Ok(SearchOutcome {
        hits,
        query_tokens: phases.first().map_or(0, TokenString::len),
        k,
        lossless,
        tokenize_ms,
        search_ms,
        took_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

/// The hits of several phases of one query, best first by normalized distance (the phases'
/// strings differ in length), then distance, id and start; a hit overlapping a better one in
/// the same file is dropped; at most `top`.
fn best_of_phases(mut hits: Vec<Hit>, top: usize) -> Vec<Hit> {
    hits.sort_by(|a, b| {
        a.norm_distance
            .total_cmp(&b.norm_distance)
            .then(a.distance.cmp(&b.distance))
            .then_with(|| a.id.cmp(&b.id))
            .then(a.start.cmp(&b.start))
    });
    let mut kept: Vec<Hit> = Vec::with_capacity(top.min(hits.len()));
    for hit in hits {
        if kept.len() >= top {
            break;
        }
        let overlaps = kept
            .iter()
            .any(|k| k.doc_id == hit.doc_id && k.start < hit.end && hit.start < k.end);
        if !overlaps {
            kept.push(hit);
        }
    }
    kept
}

/// Decodes the clip file at `path` (any format the front end reads) and runs [`search_audio`].
pub fn search_file(
    db: &Database,
    tokenizer: &dyn Tokenizer,
    path: &Path,
    options: &SearchOptions,
) -> Result<SearchOutcome> {
    let audio = decode_clip(|decode| decode_file(path, decode))?;
    search_audio(db, tokenizer, &audio.samples, options)
}

/// Decodes a clip file's bytes held in memory (a search request's body: nothing is written to
/// disk) and runs [`search_audio`], as [`search_file`] does for a file. Errors call the clip
/// `name` (e.g. the file name the client gave).
pub fn search_bytes(
    db: &Database,
    tokenizer: &dyn Tokenizer,
    bytes: impl AsRef<[u8]> + Send + Sync + 'static,
    name: &Path,
    options: &SearchOptions,
) -> Result<SearchOutcome> {
    let audio = decode_clip(|decode| decode_bytes(bytes, name, decode))?;
    search_audio(db, tokenizer, &audio.samples, options)
}

/// Runs `decode` with a duration limit just over [`MAX_CLIP_S`]: a longer clip is refused
/// anyway, so decoding stops early (at its header when it declares its length) and the error is
/// [`Error::ClipLength`].
fn decode_clip(
    decode: impl FnOnce(&DecodeOptions) -> pairalign_datasets::Result<Audio>,
) -> Result<Audio> {
    let options = DecodeOptions {
        max_duration_s: MAX_CLIP_S + 1.0,
    };
    decode(&options).map_err(|e| match e {
        pairalign_datasets::Error::TooLong { seconds, .. } => Error::ClipLength {
            seconds,
            min: MIN_CLIP_S,
            max: MAX_CLIP_S,
        },
        other => Error::Decode(other),
    })
}

#[cfg(test)]
mod tests {
    use pairalign_engine::{DatabaseConfig, NewDoc, TokenizerRecord};
    use pairalign_models::TokenString;

    use super::*;

    /// One token per window: its length in tenths of a second.
    struct Lengths(&'static str);

    impl Tokenizer for Lengths {
        fn id(&self) -> &str {
            "lengths"
        }
        fn weights_hash(&self) -> &str {
            self.0
        }
        fn vocab_size(&self) -> u32 {
            64
        }
        fn tokenize(&self, batch: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
            Ok(batch
                .iter()
                .map(|w| TokenString {
                    tokens: vec![(w.len() / 1600) as u16],
                    times_ms: vec![0],
                })
                .collect())
        }
        fn tokenize_mels(&self, _: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
            Ok(Vec::new())
        }
    }

    /// [`Lengths`] with hash `"h"`, its queries tokenized at `phases` window phases and, when
    /// `moved`, in a second variant: every token plus 20.
    struct Phased {
        phases: usize,
        moved: bool,
    }

    impl Tokenizer for Phased {
        fn id(&self) -> &str {
            "lengths"
        }
        fn weights_hash(&self) -> &str {
            "h"
        }
        fn vocab_size(&self) -> u32 {
            64
        }
        fn tokenize(&self, batch: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
            Lengths("h").tokenize(batch)
        }
        fn tokenize_mels(&self, _: &[&[f32]]) -> pairalign_models::Result<Vec<TokenString>> {
            Ok(Vec::new())
        }
        fn query_phases(&self) -> usize {
            self.phases
        }
        fn tokenize_variants(
            &self,
            batch: &[&[f32]],
        ) -> pairalign_models::Result<Vec<Vec<TokenString>>> {
            let plain = self.tokenize(batch)?;
            if !self.moved {
                return Ok(vec![plain]);
            }
            let moved = plain
                .iter()
                .map(|ts| TokenString {
                    tokens: ts.tokens.iter().map(|t| t + 20).collect(),
                    times_ms: ts.times_ms.clone(),
                })
                .collect();
            Ok(vec![plain, moved])
        }
    }

    fn database(dir: &Path, record: Option<&str>) -> Database {
        let mut db = Database::create(dir, DatabaseConfig::new(64, 3)).unwrap();
        if let Some(hash) = record {
            db.set_tokenizer(TokenizerRecord {
                id: "lengths".into(),
                weights_hash: hash.into(),
            })
            .unwrap();
        }
        db.add_tokens(&[NewDoc {
            id: "doc".into(),
            tokens: vec![30, 30, 30, 12, 7],
            times_ms: Some(vec![0, 3000, 6000, 9000, 12000]),
            duration_ms: Some(13_000),
        }])
        .unwrap();
        db
    }

    #[test]
    fn a_clip_is_tokenized_window_by_window_and_found_inside_documents() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(dir.path(), Some("h"));
        // 7.2 s: windows of 3, 3 and 1.2 s -> tokens 30, 30, 12.
        let clip = vec![0.0; 115_200];
        let outcome = search_audio(&db, &Lengths("h"), &clip, &clip_search_options()).unwrap();
        assert_eq!(outcome.query_tokens, 3);
        let hit = &outcome.hits[0];
        assert_eq!((hit.id.as_str(), hit.distance), ("doc", 0));
        assert_eq!((hit.start_ms, hit.end_ms), (3000, 12000));
    }

    /// A 2 s clip cut 1 s into an indexed window: the index holds its audio as the tails and
    /// heads of windows ([10, 10] here), which only the phase cut at 1 s reproduces.
    #[test]
    fn a_window_dependent_tokenizer_is_searched_at_every_phase() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = database(dir.path(), Some("h"));
        db.add_tokens(&[NewDoc {
            id: "straddled".into(),
            tokens: vec![30, 10, 10, 30],
            times_ms: Some(vec![0, 3000, 4000, 5000]),
            duration_ms: Some(8000),
        }])
        .unwrap();
        let clip = vec![0.0; 32_000];
        let exact = SearchOptions {
            k: Some(EditBudget::Absolute(0)),
            ..clip_search_options()
        };
        assert!(search_audio(
            &db,
            &Phased {
                phases: 1,
                moved: false
            },
            &clip,
            &exact
        )
        .unwrap()
        .hits
        .is_empty());
        let outcome = search_audio(
            &db,
            &Phased {
                phases: 3,
                moved: false,
            },
            &clip,
            &exact,
        )
        .unwrap();
        assert_eq!(
            outcome.query_tokens, 1,
            "phase 0 is the clip windowed like a file"
        );
        let found: Vec<_> = outcome
            .hits
            .iter()
            .map(|h| (h.id.as_str(), h.start, h.end, h.start_ms, h.distance))
            .collect();
        assert_eq!(found, [("straddled", 1, 3, 3000, 0)]);

        // With a looser budget the phases' hits are ranked together: the exact one first, and
        // none overlapping another in the same file.
        let loose = SearchOptions {
            k: Some(EditBudget::Absolute(1)),
            top: 50,
            ..clip_search_options()
        };
        let hits = search_audio(
            &db,
            &Phased {
                phases: 3,
                moved: false,
            },
            &clip,
            &loose,
        )
        .unwrap()
        .hits;
        assert_eq!((hits[0].id.as_str(), hits[0].start), ("straddled", 1));
        assert!(hits
            .windows(2)
            .all(|w| w[0].norm_distance <= w[1].norm_distance));
        for (i, a) in hits.iter().enumerate() {
            assert!(a.distance <= 1);
            for b in &hits[i + 1..] {
                let apart = a.doc_id != b.doc_id || a.end <= b.start || b.end <= a.start;
                assert!(apart, "{a:?} overlaps {b:?}");
            }
        }
    }

    /// A 6 s clip ([30, 30]) whose second variant ([50, 50]) is what a second file holds:
    /// found only when the variants are searched too.
    #[test]
    fn every_query_variant_is_searched() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = database(dir.path(), Some("h"));
        db.add_tokens(&[NewDoc {
            id: "second".into(),
            tokens: vec![1, 50, 50, 1],
            times_ms: Some(vec![0, 3000, 6000, 9000]),
            duration_ms: Some(12_000),
        }])
        .unwrap();
        let clip = vec![0.0; 96_000];
        let exact = SearchOptions {
            k: Some(EditBudget::Absolute(0)),
            ..clip_search_options()
        };
        let ids = |t: &dyn Tokenizer| -> Vec<String> {
            let mut ids: Vec<String> = search_audio(&db, t, &clip, &exact)
                .unwrap()
                .hits
                .into_iter()
                .map(|h| h.id)
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(&Lengths("h")), ["doc"]);
        let two = Phased {
            phases: 1,
            moved: true,
        };
        assert_eq!(ids(&two), ["doc", "second"]);
        let outcome = search_audio(&db, &two, &clip, &exact).unwrap();
        assert_eq!(outcome.query_tokens, 2);
        let second = outcome.hits.iter().find(|h| h.id == "second").unwrap();
        assert_eq!((second.start_ms, second.end_ms), (3000, 9000));
    }

    #[test]
    fn clip_length_and_tokenizer_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir.path().join("a"), Some("h"));
        let opts = clip_search_options();
        for len in [7_999, 60 * 16_000 + 1] {
            let err = search_audio(&db, &Lengths("h"), &vec![0.0; len], &opts).unwrap_err();
            assert!(matches!(err, Error::ClipLength { .. }), "{err}");
        }
        assert!(search_audio(&db, &Lengths("h"), &[0.0; 8_000], &opts).is_ok());
        let err = search_audio(&db, &Lengths("other"), &[0.0; 16_000], &opts).unwrap_err();
        assert!(matches!(err, Error::TokenizerMismatch(_)), "{err}");
        let imported = database(&dir.path().join("b"), None);
        let err = search_audio(&imported, &Lengths("h"), &[0.0; 16_000], &opts).unwrap_err();
        assert!(matches!(err, Error::TokenizerMismatch(_)), "{err}");
    }

    #[test]
    fn an_undecodable_clip_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir.path().join("db"), Some("h"));
        let clip = dir.path().join("clip.wav");
        std::fs::write(&clip, b"not audio").unwrap();
        let err = search_file(&db, &Lengths("h"), &clip, &clip_search_options()).unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err}");
        let err = search_bytes(
            &db,
            &Lengths("h"),
            b"not audio".to_vec(),
            Path::new("body.wav"),
            &clip_search_options(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err}");
        assert!(err.to_string().contains("body.wav"), "{err}");
    }

    /// 16-bit mono WAV bytes of `seconds` of a tone at 16 kHz.
    fn wav(seconds: f64) -> Vec<u8> {
        let n = (seconds * 16_000.0) as usize;
        let mut bytes = Vec::with_capacity(44 + 2 * n);
        let data = (2 * n) as u32;
        bytes.extend_from_slice(b"RIFF");
        bytes.extend_from_slice(&(36 + data).to_le_bytes());
        bytes.extend_from_slice(b"WAVEfmt ");
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
        bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
        bytes.extend_from_slice(&16_000u32.to_le_bytes());
        bytes.extend_from_slice(&32_000u32.to_le_bytes()); // bytes per second
        bytes.extend_from_slice(&2u16.to_le_bytes()); // block align
        bytes.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&data.to_le_bytes());
        for i in 0..n {
            let s = (0.3 * (i as f64 * 0.07).sin() * 32_767.0) as i16;
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        bytes
    }

    /// A clip in memory is searched exactly as the same clip in a file, and one over the limit
    /// is refused from its header as a clip length, not decoded.
    #[test]
    fn a_clip_in_memory_searches_like_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir.path().join("db"), Some("h"));
        let opts = clip_search_options();
        // 7.2 s: tokens 30, 30, 12, found in "doc" as in the test above.
        let bytes = wav(7.2);
        let clip = dir.path().join("clip.wav");
        std::fs::write(&clip, &bytes).unwrap();
        let from_file = search_file(&db, &Lengths("h"), &clip, &opts).unwrap();
        let from_bytes =
            search_bytes(&db, &Lengths("h"), bytes, Path::new("clip.wav"), &opts).unwrap();
        assert_eq!(from_file.query_tokens, 3);
        assert_eq!(from_file.hits[0].id, "doc");
        assert_eq!(from_bytes.hits, from_file.hits);
        assert_eq!(from_bytes.query_tokens, from_file.query_tokens);

        // 2 hours declared in the header: refused before any sample is decoded.
        let mut long = wav(0.1);
        let declared = 2 * 3600 * 32_000u32;
        long[4..8].copy_from_slice(&(36 + declared).to_le_bytes());
        long[40..44].copy_from_slice(&declared.to_le_bytes());
        let err = search_bytes(&db, &Lengths("h"), long, Path::new("long.wav"), &opts).unwrap_err();
        assert!(
            matches!(err, Error::ClipLength { seconds, .. } if seconds > 7000.0),
            "{err}"
        );
    }

    /// A new or record-less database gets the default tokenizer, one that records a shipped
    /// model gets that model, and one built with other weights is an error that says so.
    #[test]
    fn database_tokenizer_follows_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let cpu = Device::Cpu;
        let new = database_tokenizer(&dir.path().join("none"), &cpu).unwrap();
        assert_eq!(new.id(), shipped::DEFAULT);
        let bare = database(&dir.path().join("bare"), None);
        assert_eq!(
            database_tokenizer(bare.dir(), &cpu).unwrap().id(),
            shipped::DEFAULT
        );

        let vq = AnyTokenizer::open("vq", &cpu).unwrap();
        let recorded = |id: &str, hash: &str| {
            let path = dir.path().join(format!("{id}-{}", &hash[..4]));
            let mut db = Database::create(&path, DatabaseConfig::new(512, 3)).unwrap();
            db.set_tokenizer(TokenizerRecord {
                id: id.into(),
                weights_hash: hash.into(),
            })
            .unwrap();
            path
        };
        let tok = database_tokenizer(&recorded("vq", vq.weights_hash()), &cpu).unwrap();
        assert_eq!((tok.id(), tok.weights_hash()), ("vq", vq.weights_hash()));
        // The v2 models are found by the id a database records, and are not v1.
        for name in ["vq-v2", "pairalign-v2"] {
            let v2 = AnyTokenizer::open(name, &cpu).unwrap();
            assert_eq!(v2.id(), name);
            let tok = database_tokenizer(&recorded(name, v2.weights_hash()), &cpu).unwrap();
            assert_eq!((tok.id(), tok.weights_hash()), (name, v2.weights_hash()));
        }
        assert_ne!(
            AnyTokenizer::open("vq-v2", &cpu).unwrap().weights_hash(),
            vq.weights_hash()
        );

        let err = database_tokenizer(&recorded("vq", "0123abcd"), &cpu).unwrap_err();
        assert!(matches!(err, Error::TokenizerMismatch(_)), "{err}");
        assert!(err.to_string().contains("not a shipped model"), "{err}");
        let err = database_tokenizer(&recorded("lengths", "feedbeef"), &cpu).unwrap_err();
        assert!(err.to_string().contains("lengths"), "{err}");
    }
}
