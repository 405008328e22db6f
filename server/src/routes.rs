//! The route table and the handlers. [`ROUTES`] is the one list both the router and the OpenAPI
//! document are built from. Each handler unpacks the request (the extractors in
//! [`crate::request`]) and calls one method of [`AppState`] ([`crate::service`]).

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::archive::{Asset, Compaction};
use crate::audio::SpanParams;
use crate::error::error_response;
use crate::jobs::Job;
use crate::limits::{SearchPermit, UploadPermit};
use crate::request::{SearchRequest, UploadRequest};
use crate::service::{AssetPage, ListParams, SearchResults, Stats, Uploaded};
use crate::state::AppState;
use crate::{auth, console, keep_alive, limits, metrics, openapi, Error, Result};

/// An HTTP method the API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    /// GET.
    Get,
    /// POST.
    Post,
    /// DELETE.
    Delete,
}

impl Verb {
    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Delete => MethodFilter::DELETE,
        }
    }

    /// The method's name in lower case, as OpenAPI keys operations.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Delete => "delete",
        }
    }
}

/// One route of the API.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    /// The method.
    pub method: Verb,
    /// The path template, in the syntax axum and OpenAPI share (`/v1/assets/{id}`).
    pub path: &'static str,
    /// OpenAPI's `operationId`.
    pub operation_id: &'static str,
    /// A write: needs the bearer token when one is configured.
    pub write: bool,
    /// The handler for `method`.
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
    /// The OpenAPI operation object without `operationId` and security (added from the fields
    /// above).
    pub(crate) operation: fn() -> Value,
}

/// Every route the server answers.
pub const ROUTES: &[Route] = &[
    Route {
        method: Verb::Post,
        path: "/v1/search",
        operation_id: "search",
        write: false,
        handler: |m| on(m, search),
        operation: openapi::search,
    },
    Route {
        method: Verb::Post,
        path: "/v1/assets",
        operation_id: "uploadAsset",
        write: true,
        handler: |m| on(m, upload),
        operation: openapi::upload,
    },
    Route {
        method: Verb::Get,
        path: "/v1/assets",
        operation_id: "listAssets",
        write: false,
        handler: |m| on(m, list_assets),
        operation: openapi::list_assets,
    },
    Route {
        method: Verb::Get,
        path: "/v1/assets/{id}",
        operation_id: "getAsset",
        write: false,
        handler: |m| on(m, get_asset),
        operation: openapi::get_asset,
    },
    Route {
        method: Verb::Get,
        path: "/v1/assets/{id}/audio",
        operation_id: "getAssetAudio",
        write: false,
        handler: |m| on(m, asset_audio),
        operation: openapi::asset_audio,
    },
    Route {
        method: Verb::Delete,
        path: "/v1/assets/{id}",
        operation_id: "deleteAsset",
        write: true,
        handler: |m| on(m, delete_asset),
        operation: openapi::delete_asset,
    },
    Route {
        method: Verb::Post,
        path: "/v1/compact",
        operation_id: "compact",
        write: true,
        handler: |m| on(m, compact),
        operation: openapi::compact,
    },
    Route {
        method: Verb::Get,
        path: "/v1/jobs/{id}",
        operation_id: "getJob",
        write: false,
        handler: |m| on(m, get_job),
        operation: openapi::get_job,
    },
    Route {
        method: Verb::Get,
        path: "/v1/stats",
        operation_id: "stats",
        write: false,
        handler: |m| on(m, stats),
        operation: openapi::stats,
    },
    Route {
        method: Verb::Get,
        path: "/healthz",
        operation_id: "health",
        write: false,
        handler: |m| on(m, healthz),
        operation: openapi::healthz,
    },
    Route {
        method: Verb::Get,
        path: "/metrics",
        operation_id: "metrics",
        write: false,
        handler: |m| on(m, metrics_text),
        operation: openapi::metrics,
    },
    Route {
        method: Verb::Get,
        path: "/openapi.json",
        operation_id: "openapi",
        write: false,
        handler: |m| on(m, openapi_document),
        operation: openapi::openapi,
    },
];

/// The router: [`ROUTES`] with the token check on writes (and on reads when they are
/// protected), the console's static files (open: they hold no data), JSON errors for what the
/// router itself rejects, the request timeout and the metrics.
pub(crate) fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for route in ROUTES {
        let mut handler = (route.handler)(route.method.filter());
        let open_always = matches!(route.path, "/healthz" | "/openapi.json");
        if route.write || (state.protect_reads && !open_always) {
            handler = handler.route_layer(middleware::from_fn_with_state(
                state.clone(),
                auth::require_token,
            ));
        }
        router = router.route(route.path, handler);
    }
    let router = router.merge(console::routes());
    let body_limit = usize::try_from(state.limits.max_body_bytes).unwrap_or(usize::MAX);
    router
        .fallback(no_route)
        // Innermost first: the query-string check, the timeout, then JSON errors (so a 408 is
        // JSON), then the metrics (so they count every reply), then `Connection: close` on any
        // reply that left the body unread.
        .layer(middleware::from_fn(utf8_query))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limits::timeout,
        ))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(keep_alive::close_if_body_unread))
        .with_state(state)
}

async fn search(
    State(app): State<AppState>,
    permit: SearchPermit,
    request: SearchRequest,
) -> Result<Json<SearchResults>> {
    Ok(Json(app.search(permit, request).await?))
}

async fn upload(
    State(app): State<AppState>,
    permit: UploadPermit,
    request: UploadRequest,
) -> Result<Response> {
    Ok(match app.upload(permit, request).await? {
        Uploaded::Committed(asset) => {
            let location = format!("/v1/assets/{}", encode_segment(&asset.id));
            with_location(StatusCode::CREATED, &location, Json(asset))
        }
        Uploaded::Queued(job) => {
            let location = format!("/v1/jobs/{}", job.id);
            with_location(StatusCode::ACCEPTED, &location, Json(job))
        }
    })
}

async fn list_assets(
    State(app): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Json<AssetPage>> {
    Ok(Json(app.assets(params).await?))
}

async fn get_asset(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<Asset>> {
    Ok(Json(app.asset(id).await?))
}

async fn asset_audio(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<SpanParams>,
    permit: SearchPermit,
) -> Result<Response> {
    let audio = app.asset_audio(permit, id, params).await?;
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("audio/wav")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::HeaderName::from_static("x-span-start-ms"),
            HeaderValue::from(audio.span.start_ms),
        ),
        (
            header::HeaderName::from_static("x-span-end-ms"),
            HeaderValue::from(audio.span.end_ms),
        ),
    ];
    Ok((headers, audio.wav).into_response())
}

async fn delete_asset(State(app): State<AppState>, Path(id): Path<String>) -> Result<StatusCode> {
    app.delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn compact(State(app): State<AppState>) -> Result<Json<Compaction>> {
    Ok(Json(app.compact().await?))
}

async fn get_job(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<Job>> {
    Ok(Json(app.job(&id)?))
}

async fn stats(State(app): State<AppState>) -> Json<Stats> {
    Json(app.stats())
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn metrics_text(State(app): State<AppState>) -> Response {
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type)], app.metrics_text()).into_response()
}

async fn openapi_document() -> Json<Value> {
    Json(openapi::document())
}

/// Rejects a query string that does not percent-decode to UTF-8 with 400, where the extractors
/// would read it with U+FFFD in place of the bad bytes and answer for another query.
async fn utf8_query(request: Request, next: Next) -> Response {
    if let Some(query) = request.uri().query() {
        if std::str::from_utf8(&percent_decode(query)).is_err() {
            return Error::BadRequest("the query string is not UTF-8 once percent-decoded".into())
                .into_response();
        }
    }
    next.run(request).await
}

/// The bytes `text` percent-decodes to (`%` not followed by two hex digits stays as it is).
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

async fn no_route(request: Request) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "no_route",
        format!(
            "no route {} {}; GET /openapi.json lists them",
            request.method(),
            request.uri().path()
        ),
    )
}

fn with_location(status: StatusCode, location: &str, body: impl IntoResponse) -> Response {
    let mut response = (status, body).into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// `id` as one path segment (ids of indexed files are paths: their `/` must be encoded).
fn encode_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Middleware: turns the error replies axum writes itself (405, a malformed path or query string)
/// into the JSON error body every other error has.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = match (text.trim(), status) {
        ("", StatusCode::METHOD_NOT_ALLOWED) => {
            let allow = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            format!("method not allowed; this route takes {allow}")
        }
        ("", s) => s.canonical_reason().unwrap_or("error").to_string(),
        (text, _) => text.to_string(),
    };
    let mut replaced = error_response(status, code, message);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replaced.headers_mut().insert(name, value.clone());
        }
    }
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_encoded_as_one_segment() {
        assert_eq!(encode_segment("/a b/c.wav"), "%2Fa%20b%2Fc.wav");
        assert_eq!(encode_segment("upload-12ab"), "upload-12ab");
    }

    #[test]
    fn every_route_is_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for route in ROUTES {
            assert!(seen.insert((route.method, route.path)), "{route:?}");
            assert!(route.path.starts_with('/'));
        }
    }
}
