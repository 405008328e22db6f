//! What a request carries, unpacked by content type. A search's clip (raw or a multipart `file`
//! part) is read into memory, counted against the search body limit, and decoded from there:
//! searches write nothing to disk, so a full disk fails none. An upload's audio goes to a
//! temporary file in `<db>/uploads/` as it arrives, counted against the body limit (it is headed
//! for the archive's disk anyway). Options come from the query string, a multipart JSON part or
//! the JSON body. Anything else is 415.

use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Query, Request};
use axum::http::{header, HeaderMap, Uri};
use http_body_util::BodyExt;
use pairalign_engine::{EditBudget, Symbol};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;

use crate::archive::UploadMetadata;
use crate::state::AppState;
use crate::{Error, Result};

/// Name prefix of the temporary files in `<db>/uploads/`.
pub(crate) const UPLOAD_PREFIX: &str = ".upload-";

/// Raw audio content types, with the file extension that tells the decoder what to expect
/// (`application/octet-stream`: none, the decoder sniffs the format).
pub const AUDIO_CONTENT_TYPES: &[(&str, &str)] = &[
    ("audio/wav", "wav"),
    ("audio/x-wav", "wav"),
    ("audio/flac", "flac"),
    ("audio/mpeg", "mp3"),
    ("audio/ogg", "ogg"),
    ("application/octet-stream", ""),
];

const SEARCH_TYPES: &str = "an audio type (audio/wav, audio/x-wav, audio/flac, audio/mpeg, \
                            audio/ogg, application/octet-stream), multipart/form-data or \
                            application/json";
const UPLOAD_TYPES: &str = "an audio type (audio/wav, audio/x-wav, audio/flac, audio/mpeg, \
                            audio/ogg, application/octet-stream) or multipart/form-data";

/// Audio from a request, saved as `<db>/uploads/.upload-XXXX/upload.<ext>`; the folder is
/// removed when this is dropped. The file's own name says nothing about the client's (a
/// catalog defaults an upload's file name to it, so clients' names travel as metadata).
#[derive(Debug)]
pub(crate) struct UploadedFile {
    path: PathBuf,
    file_name: Option<String>,
    _dir: TempDir,
}

impl UploadedFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The client's file name, if it gave one.
    pub(crate) fn file_name(&self) -> Option<&str> {
        self.file_name.as_deref()
    }

    /// What error messages call the file.
    pub(crate) fn display_name(&self) -> &str {
        self.file_name().unwrap_or("the uploaded audio")
    }
}

/// Search options a client may give (query string, multipart `options` part, or beside the
/// tokens of a JSON body).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Hits to return (1 to `max_top`; default 10).
    pub top: Option<usize>,
    /// Edit budget: an integer is absolute, a number or string below 1 (`0.9`, `"0.9"`) a
    /// fraction of the query length (default 0.9 for audio, 0.4 for tokens).
    pub k: Option<Budget>,
    /// A metadata filter (the catalog's query syntax).
    pub filter: Option<String>,
}

/// An edit budget as the API takes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget(pub EditBudget);

impl<'de> Deserialize<'de> for Budget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct BudgetVisitor;

        impl Visitor<'_> for BudgetVisitor {
            type Value = Budget;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer edit budget or a fraction in [0, 1)")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Budget, E> {
                u32::try_from(v)
                    .map(|k| Budget(EditBudget::Absolute(k)))
                    .map_err(|_| E::custom(format!("k = {v} is too large")))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Budget, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("k must not be negative, got {v}")))
                    .and_then(|v| self.visit_u64(v))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Budget, E> {
                self.visit_str(&v.to_string())
            }

            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Budget, E> {
                EditBudget::parse(v).map(Budget).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(BudgetVisitor)
    }
}

/// A query by example (audio) or a token string.
#[derive(Debug)]
pub(crate) enum SearchQuery {
    Audio(Clip),
    Tokens(Vec<Symbol>),
}

/// A search's clip, as received (encoded audio of any format the front end reads).
#[derive(Debug)]
pub(crate) struct Clip {
    pub bytes: Bytes,
    /// The client's file name, if it gave one.
    pub file_name: Option<String>,
}

impl Clip {
    /// What error messages call the clip.
    pub(crate) fn display_name(&self) -> &str {
        self.file_name.as_deref().unwrap_or("the uploaded audio")
    }
}

/// `POST /v1/search`, unpacked.
#[derive(Debug)]
pub(crate) struct SearchRequest {
    pub query: SearchQuery,
    pub params: SearchParams,
}

/// The JSON body of a token search.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenSearch {
    tokens: Vec<Symbol>,
    top: Option<usize>,
    k: Option<Budget>,
    filter: Option<String>,
}

impl FromRequest<AppState> for SearchRequest {
    type Rejection = Error;

    async fn from_request(request: Request, state: &AppState) -> Result<Self> {
        let limit = state.limits.search_body_limit();
        check_length(request.headers(), limit)?;
        let kind = media_type(request.headers());
        if audio_extension(&kind).is_some() {
            let params = query_params(request.uri())?;
            let bytes = read_body(request.into_body(), limit).await?;
            return Ok(SearchRequest {
                query: SearchQuery::Audio(Clip {
                    bytes: Bytes::from(bytes),
                    file_name: None,
                }),
                params,
            });
        }
        match kind.as_str() {
            "application/json" => {
                let bytes = read_body(request.into_body(), limit).await?;
                let body: TokenSearch = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::BadRequest(format!("the JSON body: {e}")))?;
                Ok(SearchRequest {
                    query: SearchQuery::Tokens(body.tokens),
                    params: SearchParams {
                        top: body.top,
                        k: body.k,
                        filter: body.filter,
                    },
                })
            }
            "multipart/form-data" => {
                let mut parts = multipart(request, state, Keep::InMemory).await?;
                let (Some(Received::Memory(clip)), options) =
                    (parts.file.take(), parts.json.take())
                else {
                    return Err(Error::BadRequest(
                        "the multipart body needs a `file` part with the clip".into(),
                    ));
                };
                let params = match options {
                    Some(json) => serde_json::from_slice(&json)
                        .map_err(|e| Error::BadRequest(format!("the `options` part: {e}")))?,
                    None => SearchParams::default(),
                };
                Ok(SearchRequest {
                    query: SearchQuery::Audio(clip),
                    params,
                })
            }
            _ => Err(unsupported(kind, SEARCH_TYPES)),
        }
    }
}

/// `POST /v1/assets`, unpacked.
#[derive(Debug)]
pub(crate) struct UploadRequest {
    pub file: UploadedFile,
    pub metadata: UploadMetadata,
}

/// Metadata in the query string of a raw audio upload (`tags` comma-separated).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    id: Option<String>,
    title: Option<String>,
    tags: Option<String>,
    file_name: Option<String>,
}

impl FromRequest<AppState> for UploadRequest {
    type Rejection = Error;

    async fn from_request(request: Request, state: &AppState) -> Result<Self> {
        check_length(request.headers(), state.limits.max_body_bytes)?;
        let kind = media_type(request.headers());
        if let Some(extension) = audio_extension(&kind) {
            let query: UploadQuery = Query::try_from_uri(request.uri())
                .map_err(|e| Error::BadRequest(e.body_text()))?
                .0;
            let metadata = UploadMetadata {
                id: query.id,
                title: query.title,
                tags: query
                    .tags
                    .map(|t| {
                        t.split(',')
                            .map(str::trim)
                            .filter(|t| !t.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
                file_name: query.file_name,
            };
            let extension = metadata
                .file_name
                .as_deref()
                .and_then(known_extension)
                .unwrap_or(extension);
            let file = save_body(
                request.into_body(),
                state,
                extension,
                metadata.file_name.clone(),
            )
            .await?;
            return Ok(UploadRequest { file, metadata });
        }
        if kind != "multipart/form-data" {
            return Err(unsupported(kind, UPLOAD_TYPES));
        }
        let mut parts = multipart(request, state, Keep::OnDisk).await?;
        let Some(Received::File(file)) = parts.file.take() else {
            return Err(Error::BadRequest(
                "the multipart body needs a `file` part with the audio".into(),
            ));
        };
        let mut metadata: UploadMetadata = match parts.json.take() {
            Some(json) => serde_json::from_slice(&json)
                .map_err(|e| Error::BadRequest(format!("the `metadata` part: {e}")))?,
            None => UploadMetadata::default(),
        };
        if metadata.file_name.is_none() {
            metadata.file_name = file.file_name().map(String::from);
        }
        Ok(UploadRequest { file, metadata })
    }
}

/// The essence of the request's content type, lower case (`audio/wav` of
/// `Audio/WAV; rate=16000`); empty when missing.
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

fn audio_extension(media_type: &str) -> Option<&'static str> {
    AUDIO_CONTENT_TYPES
        .iter()
        .find(|(t, _)| *t == media_type)
        .map(|(_, ext)| *ext)
}

/// The extension of `file_name` when the decoder knows it.
fn known_extension(file_name: &str) -> Option<&'static str> {
    let ext = Path::new(file_name)
        .extension()?
        .to_str()?
        .to_ascii_lowercase();
    pairalign_datasets::corpus::AUDIO_EXTENSIONS
        .iter()
        .find(|known| **known == ext)
        .copied()
}

fn unsupported(found: String, expected: &'static str) -> Error {
    Error::UnsupportedMediaType { found, expected }
}

/// 413 before reading anything when the declared length is over the limit.
fn check_length(headers: &HeaderMap, limit: u64) -> Result<()> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit => Err(Error::PayloadTooLarge { limit }),
        _ => Ok(()),
    }
}

fn query_params(uri: &Uri) -> Result<SearchParams> {
    Ok(Query::try_from_uri(uri)
        .map_err(|e| Error::BadRequest(e.body_text()))?
        .0)
}

/// The whole body, at most `limit` bytes (413 beyond).
async fn read_body(mut body: Body, limit: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::BadRequest(format!("reading the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if (bytes.len() + data.len()) as u64 > limit {
                return Err(Error::PayloadTooLarge { limit });
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

/// A temporary file in `<db>/uploads/` being written, counted against the body limit.
struct Spool {
    file: tokio::fs::File,
    path: PathBuf,
    dir: TempDir,
    written: u64,
    limit: u64,
}

impl Spool {
    fn create(state: &AppState, extension: &str) -> Result<Spool> {
        let failed = |e| Error::io(format!("creating a file in {}", state.uploads.display()), e);
        let dir = tempfile::Builder::new()
            .prefix(UPLOAD_PREFIX)
            .tempdir_in(&state.uploads)
            .map_err(failed)?;
        let path = match extension {
            "" => dir.path().join("upload"),
            ext => dir.path().join(format!("upload.{ext}")),
        };
        let file = std::fs::File::create_new(&path).map_err(failed)?;
        Ok(Spool {
            file: tokio::fs::File::from_std(file),
            path,
            dir,
            written: 0,
            limit: state.limits.max_body_bytes,
        })
    }

    async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.written += chunk.len() as u64;
        if self.written > self.limit {
            return Err(Error::PayloadTooLarge { limit: self.limit });
        }
        self.file
            .write_all(chunk)
            .await
            .map_err(|e| Error::io("writing the upload", e))
    }

    async fn finish(mut self, file_name: Option<String>) -> Result<UploadedFile> {
        self.file
            .flush()
            .await
            .map_err(|e| Error::io("writing the upload", e))?;
        Ok(UploadedFile {
            path: self.path,
            file_name,
            _dir: self.dir,
        })
    }
}

async fn save_body(
    mut body: Body,
    state: &AppState,
    extension: &str,
    file_name: Option<String>,
) -> Result<UploadedFile> {
    let mut spool = Spool::create(state, extension)?;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::BadRequest(format!("reading the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            spool.write(&data).await?;
        }
    }
    spool.finish(file_name).await
}

/// The parts of a multipart body: `file` (kept as [`Keep`] says) and one JSON part (`options`
/// for searches, `metadata` for uploads).
#[derive(Debug, Default)]
struct Parts {
    file: Option<Received>,
    json: Option<Vec<u8>>,
}

/// Where a multipart body's `file` part goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keep {
    /// Into memory (a search's clip), within the search body limit.
    InMemory,
    /// Into a temporary file in `<db>/uploads/` (an upload), within the body limit.
    OnDisk,
}

/// A multipart `file` part as kept.
#[derive(Debug)]
enum Received {
    Memory(Clip),
    File(UploadedFile),
}

async fn multipart(request: Request, state: &AppState, keep: Keep) -> Result<Parts> {
    let limit = match keep {
        Keep::InMemory => state.limits.search_body_limit(),
        Keep::OnDisk => state.limits.max_body_bytes,
    };
    let bad = |e: axum::extract::multipart::MultipartError| match e.status().as_u16() {
        413 => Error::PayloadTooLarge { limit },
        _ => Error::BadRequest(format!("the multipart body: {}", e.body_text())),
    };
    let mut form = Multipart::from_request(request, state)
        .await
        .map_err(|e| Error::BadRequest(e.body_text()))?;
    let mut parts = Parts::default();
    let mut total = 0u64;
    while let Some(mut field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "file" if parts.file.is_none() => {
                // Only the last path component of the client's name, and only as metadata.
                let file_name = field
                    .file_name()
                    .and_then(|n| n.rsplit(['/', '\\']).next())
                    .filter(|n| !n.is_empty())
                    .map(String::from);
                let extension = file_name
                    .as_deref()
                    .and_then(known_extension)
                    .or_else(|| field.content_type().and_then(audio_extension))
                    .unwrap_or("");
                if keep == Keep::InMemory {
                    let mut bytes = Vec::new();
                    while let Some(chunk) = field.chunk().await.map_err(bad)? {
                        total += chunk.len() as u64;
                        if total > limit {
                            return Err(Error::PayloadTooLarge { limit });
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    parts.file = Some(Received::Memory(Clip {
                        bytes: Bytes::from(bytes),
                        file_name,
                    }));
                    continue;
                }
                let mut spool = Spool::create(state, extension)?;
                spool.written = total;
                while let Some(chunk) = field.chunk().await.map_err(bad)? {
                    spool.write(&chunk).await?;
                }
                total = spool.written;
                parts.file = Some(Received::File(spool.finish(file_name).await?));
            }
            "options" | "metadata" if parts.json.is_none() => {
                let mut json = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(bad)? {
                    total += chunk.len() as u64;
                    if total > limit {
                        return Err(Error::PayloadTooLarge { limit });
                    }
                    json.extend_from_slice(&chunk);
                }
                parts.json = Some(json);
            }
            _ => {
                return Err(Error::BadRequest(format!(
                    "unexpected multipart part {name:?} (or a part given twice); the parts are \
                     `file` and `options` (search) or `metadata` (upload)"
                )))
            }
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse_from_json_and_query_strings() {
        let parse = |json: &str| serde_json::from_str::<SearchParams>(json).map(|p| p.k);
        assert_eq!(
            parse(r#"{"k": 5}"#).unwrap(),
            Some(Budget(EditBudget::Absolute(5)))
        );
        assert_eq!(
            parse(r#"{"k": "0.9"}"#).unwrap(),
            Some(Budget(EditBudget::Fraction(0.9)))
        );
        assert_eq!(
            parse(r#"{"k": 0.25}"#).unwrap(),
            Some(Budget(EditBudget::Fraction(0.25)))
        );
        assert!(parse(r#"{"k": -1}"#).is_err());
        assert!(parse(r#"{"k": 1.5}"#).is_err());
        assert!(parse(r#"{"k": "lots"}"#).is_err());
        assert!(parse(r#"{"top": 3, "kk": 1}"#).is_err(), "unknown fields");

        let uri: Uri = "/v1/search?top=3&k=0.5&filter=tags:x".parse().unwrap();
        let params = query_params(&uri).unwrap();
        assert_eq!(params.top, Some(3));
        assert_eq!(params.k, Some(Budget(EditBudget::Fraction(0.5))));
        assert_eq!(params.filter.as_deref(), Some("tags:x"));
        let uri: Uri = "/v1/search?k=12".parse().unwrap();
        assert_eq!(
            query_params(&uri).unwrap().k,
            Some(Budget(EditBudget::Absolute(12)))
        );
        let uri: Uri = "/v1/search?top=many".parse().unwrap();
        assert!(matches!(query_params(&uri), Err(Error::BadRequest(_))));
    }

    #[test]
    fn content_types_are_recognized_with_parameters_and_any_case() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "Audio/WAV; rate=16000".parse().unwrap(),
        );
        assert_eq!(audio_extension(&media_type(&headers)), Some("wav"));
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(audio_extension(&media_type(&headers)), None);
        assert_eq!(known_extension("take 3.FLAC"), Some("flac"));
        assert_eq!(known_extension("notes.txt"), None);
    }
}
