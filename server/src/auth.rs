//! The bearer token that guards writes: read from a file, checked by a middleware on the routes
//! the route table marks as writes, and on reads too when the server protects them
//! (`--protect reads`).

use std::path::Path;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;
use crate::{Error, Result};

/// Reads the token from `path`: the file's content without surrounding whitespace (so a trailing
/// newline does not count). Errors when the file is unreadable or holds only whitespace.
pub fn read_token_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading the token file {}", path.display()), e))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::Config(format!(
            "the token file {} is empty",
            path.display()
        )));
    }
    Ok(token.to_string())
}

/// Middleware: lets the request through when no token is configured or when it carries
/// `Authorization: Bearer <token>` with the configured token; 401 otherwise.
pub(crate) async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = state.token.as_deref() else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(given) if same(given.as_bytes(), expected.as_bytes()) => next.run(request).await,
        _ => Error::Unauthorized.into_response(),
    }
}

/// Compares in time that depends on the lengths only, not on where the first difference is, so
/// that response times do not reveal the token byte by byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_is_trimmed_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(read_token_file(&path).ok().as_deref(), Some("s3cret"));
        std::fs::write(&path, " \n").unwrap();
        assert!(matches!(read_token_file(&path), Err(Error::Config(_))));
        assert!(matches!(
            read_token_file(&dir.path().join("missing")),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn comparison_is_exact() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"", b"a"));
    }
}
