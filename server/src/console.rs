//! The search console (issue 26): a single page at `GET /` for people who want to listen rather
//! than read JSON. Its three files (`server/console/`: `index.html`, `app.js`, `style.css`) are
//! compiled into the binary and need nothing from the network; the page uses the HTTP API like
//! any client (search, assets, the audio of a span, stats, uploads with the bearer token it is
//! given). The files are open even when reads are protected: they hold no data.
//!
//! Every file goes out with a strict Content-Security-Policy (this origin only; `blob:` audio for
//! the spans the page fetches with the token, `data:` images for the empty favicon), `nosniff`,
//! and an `ETag` of its content with `Cache-Control: no-cache`, so a browser revalidates and gets
//! 304 until the server is upgraded.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

/// One static file of the console.
#[derive(Debug)]
struct StaticFile {
    /// The path it is served at.
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
    /// FNV-1a of `body`, computed at compile time.
    hash: u64,
}

const fn file(path: &'static str, content_type: &'static str, body: &'static str) -> StaticFile {
    StaticFile {
        path,
        content_type,
        body,
        hash: fnv1a(body.as_bytes()),
    }
}

/// The page.
const INDEX: StaticFile = file(
    "/",
    "text/html; charset=utf-8",
    include_str!("../console/index.html"),
);
/// Its script.
const SCRIPT: StaticFile = file(
    "/console/app.js",
    "text/javascript; charset=utf-8",
    include_str!("../console/app.js"),
);
/// Its style sheet.
const STYLE: StaticFile = file(
    "/console/style.css",
    "text/css; charset=utf-8",
    include_str!("../console/style.css"),
);

/// The policy: scripts, styles, requests and frames from this origin only; audio from this origin
/// or from `blob:` URLs the page makes of spans it fetched (with the token when reads are
/// protected); no plugins, no `<base>`, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The console's routes (no token check: the files hold no data).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            INDEX.path,
            get(|h: HeaderMap| async move { serve(&INDEX, &h) }),
        )
        .route(
            SCRIPT.path,
            get(|h: HeaderMap| async move { serve(&SCRIPT, &h) }),
        )
        .route(
            STYLE.path,
            get(|h: HeaderMap| async move { serve(&STYLE, &h) }),
        )
}

/// `file`, or 304 when the request's `If-None-Match` names its current ETag.
fn serve(file: &StaticFile, request: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}\"", file.hash);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut headers = HeaderMap::new();
    let mut set = |name: HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set(header::ETAG, &etag);
    set(header::CACHE_CONTROL, "no-cache");
    set(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "no-referrer");
    set(
        HeaderName::from_static("permissions-policy"),
        "microphone=(self), camera=(), geolocation=()",
    );
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    set(header::CONTENT_TYPE, file.content_type);
    (headers, file.body).into_response()
}

/// 64-bit FNV-1a (Fowler, Noll, Vo; the offset basis and prime of the published parameters):
/// enough to tell two versions of a file apart in an ETag.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_have_their_type_policy_and_etag_and_revalidate_with_304() {
        for file in [&INDEX, &SCRIPT, &STYLE] {
            let response = serve(file, &HeaderMap::new());
            assert_eq!(response.status(), StatusCode::OK, "{}", file.path);
            let headers = response.headers();
            assert_eq!(headers[header::CONTENT_TYPE], file.content_type);
            assert_eq!(
                headers[header::CONTENT_SECURITY_POLICY],
                CONTENT_SECURITY_POLICY
            );
            let etag = headers[header::ETAG].clone();
            let mut request = HeaderMap::new();
            request.insert(header::IF_NONE_MATCH, etag);
            assert_eq!(serve(file, &request).status(), StatusCode::NOT_MODIFIED);
            request.insert(
                header::IF_NONE_MATCH,
                HeaderValue::from_static("\"0000000000000000\""),
            );
            assert_eq!(serve(file, &request).status(), StatusCode::OK);
        }
    }

    /// The page loads only its own two files (the policy would block anything else, but a
    /// reference to another origin would be a bug): no `http:` or `https:` URL in any file, no
    /// inline script or style.
    #[test]
    fn the_page_refers_to_nothing_outside_the_server() {
        for file in [&INDEX, &SCRIPT, &STYLE] {
            // The SVG namespace is a name the DOM needs, not a location.
            let body = file.body.replace("'http://www.w3.org/2000/svg'", "");
            for scheme in ["http://", "https://", "//cdn", "@import", "url("] {
                assert!(!body.contains(scheme), "{} has {scheme}", file.path);
            }
        }
        assert!(INDEX.body.contains(&format!("src=\"{}\"", SCRIPT.path)));
        assert!(INDEX.body.contains(&format!("href=\"{}\"", STYLE.path)));
        assert!(!INDEX.body.contains("<script>"), "inline script");
        assert!(!INDEX.body.contains("style="), "inline style");
        // An attribute ` on<letters>=` is an inline event handler.
        let inline_handler = INDEX.body.match_indices(" on").any(|(at, _)| {
            let rest = &INDEX.body[at + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        });
        assert!(!inline_handler, "inline event handler");
    }

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
