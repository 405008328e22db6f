//! The server's error type, and how each variant becomes an HTTP status with the JSON body
//! `{"error": {"code": "...", "message": "..."}}`.

use std::path::Path;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Result alias used across the server crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a request or the server itself can fail with. [`Error::status`] and
/// [`Error::code`] say how a variant is answered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed: bad JSON, unknown or out-of-range options, a missing multipart
    /// part, a bad filter, bad metadata or id, a clip outside 0.5 to 60 s (400 `bad_request`).
    #[error("{0}")]
    BadRequest(String),
    /// A write came without the configured bearer token, or with another one (401
    /// `unauthorized`).
    #[error("this call needs the header `Authorization: Bearer <token>` with the server's token")]
    Unauthorized,
    /// No route, asset or job of that name (404 `not_found`; the router's own 404 uses
    /// `no_route`).
    #[error("{0}")]
    NotFound(String),
    /// The recording behind an asset is no longer what was indexed: its file was moved, deleted
    /// or changed since (410 `gone`).
    #[error("{0}")]
    Gone(String),
    /// The body is larger than [`crate::Limits::max_body_bytes`] (413 `payload_too_large`).
    #[error("the body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit: u64,
    },
    /// The route does not take this content type (415 `unsupported_media_type`).
    #[error("unsupported content type {found:?}; this route takes {expected}")]
    UnsupportedMediaType {
        /// The request's content type (empty when missing).
        found: String,
        /// What the route takes.
        expected: &'static str,
    },
    /// The audio in the body cannot be decoded: not audio, damaged, empty (422
    /// `undecodable_audio`).
    #[error("{0}")]
    UndecodableAudio(String),
    /// The upload's id is taken or its content is already in the archive (409 `conflict`).
    #[error("{0}")]
    Conflict(String),
    /// The archive was built with another tokenizer than the server's, or holds imported tokens
    /// only, so audio cannot be compared with it (409 `tokenizer_mismatch`).
    #[error("{0}")]
    TokenizerMismatch(String),
    /// Every search slot is busy or the writer's queue is full; try again shortly (503
    /// `overloaded`, with `Retry-After`).
    #[error("{0}")]
    Overloaded(String),
    /// The server is shutting down and takes no more writes (503 `shutting_down`).
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The request took longer than [`crate::Limits::request_timeout`] (408 `timeout`). A write
    /// already queued still completes.
    #[error("the request took longer than {} s", .0.as_secs_f64())]
    Timeout(Duration),
    /// The archive failed in another way (database I/O, corruption, tokenizer failure) (500
    /// `internal`; 507 `insufficient_storage` when the disk is full).
    #[error("{0}")]
    Archive(pairalign_archive::Error),
    /// An I/O call on the server's own files (the uploads folder, the token file) or sockets
    /// failed (500 `internal`).
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The server's configuration is unusable (a limit of 0, an empty token) (500 `internal`
    /// when it ever reaches a request; `build` returns it first).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A worker thread or task ended unexpectedly (500 `internal`).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Gone(_) => StatusCode::GONE,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::UndecodableAudio(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Conflict(_) | Error::TokenizerMismatch(_) => StatusCode::CONFLICT,
            Error::Overloaded(_) | Error::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Error::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Error::Archive(_) | Error::Io { .. } if self.is_out_of_space() => {
                StatusCode::INSUFFICIENT_STORAGE
            }
            Error::Archive(_) | Error::Io { .. } | Error::Config(_) | Error::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The machine-readable `code` of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "bad_request",
            Error::Unauthorized => "unauthorized",
            Error::NotFound(_) => "not_found",
            Error::Gone(_) => "gone",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::UnsupportedMediaType { .. } => "unsupported_media_type",
            Error::UndecodableAudio(_) => "undecodable_audio",
            Error::Conflict(_) => "conflict",
            Error::TokenizerMismatch(_) => "tokenizer_mismatch",
            Error::Overloaded(_) => "overloaded",
            Error::ShuttingDown => "shutting_down",
            Error::Timeout(_) => "timeout",
            Error::Archive(_) | Error::Io { .. } if self.is_out_of_space() => {
                "insufficient_storage"
            }
            Error::Archive(_) | Error::Io { .. } | Error::Config(_) | Error::Internal(_) => {
                "internal"
            }
        }
    }

    /// A write failed for want of disk space (ENOSPC anywhere in the chain of causes; some
    /// layers keep only the message): 507, which a client can act on, rather than 500. Nothing
    /// was committed.
    fn is_out_of_space(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::StorageFull {
                    return true;
                }
            }
            cause = e.source();
        }
        self.to_string().contains("No space left on device")
    }

    /// The archive's error for a request whose audio sat in the temporary file `temp`: the
    /// variant that gives it the right status, with the temporary path replaced by `name` (the
    /// client's file name or "the uploaded audio") so that messages speak of what the client
    /// sent.
    pub(crate) fn from_archive(
        error: impl Into<pairalign_archive::Error>,
        temp: Option<&Path>,
        name: &str,
    ) -> Self {
        use pairalign_archive::Error as Q;
        let error = error.into();
        let message = match temp {
            Some(temp) => error.to_string().replace(&temp.display().to_string(), name),
            None => error.to_string(),
        };
        match error {
            Q::ClipLength { .. } | Q::Filter(_) | Q::InvalidMetadata(_) => {
                Error::BadRequest(message)
            }
            Q::IdTaken(_) | Q::Duplicate { .. } => Error::Conflict(message),
            Q::Decode(_) => Error::UndecodableAudio(message),
            Q::TokenizerMismatch(_) => Error::TokenizerMismatch(message),
            Q::Engine(e) => match e {
                pairalign_engine::Error::InvalidInput(_)
                | pairalign_engine::Error::SymbolOutOfVocabulary { .. } => {
                    Error::BadRequest(message)
                }
                pairalign_engine::Error::DuplicateId(_) => Error::Conflict(message),
                pairalign_engine::Error::NotFound(_) => Error::NotFound(message),
                other => Error::Archive(Q::Engine(other)),
            },
            other => Error::Archive(other),
        }
    }
}

impl From<pairalign_archive::Error> for Error {
    fn from(error: pairalign_archive::Error) -> Self {
        Error::from_archive(error, None, "")
    }
}

impl From<pairalign_query::Error> for Error {
    fn from(error: pairalign_query::Error) -> Self {
        Error::from_archive(error, None, "")
    }
}

/// The JSON body of every error reply.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// `code` and `message` of an error reply (also used by failed jobs).
#[derive(Clone, Debug, Serialize)]
pub struct ErrorDetail {
    /// Machine-readable: `bad_request`, `unauthorized`, `not_found`, `gone`, `no_route`,
    /// `method_not_allowed`, `payload_too_large`, `unsupported_media_type`,
    /// `undecodable_audio`, `conflict`, `tokenizer_mismatch`, `timeout`, `overloaded`,
    /// `shutting_down`, `insufficient_storage`, `internal`.
    pub code: String,
    /// For people.
    pub message: String,
}

impl From<&Error> for ErrorDetail {
    fn from(error: &Error) -> Self {
        ErrorDetail {
            code: error.code().to_string(),
            message: error.to_string(),
        }
    }
}

/// The JSON error reply with `status`, `code` and `message`.
pub(crate) fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_string(),
            message,
        },
    };
    (status, axum::Json(body)).into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let mut response = error_response(self.status(), self.code(), self.to_string());
        match self {
            Error::Overloaded(_) | Error::ShuttingDown => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Error::Unauthorized => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_errors_get_the_status_of_their_kind() {
        use pairalign_archive::Error as Q;
        let clip = Q::ClipLength {
            seconds: 0.1,
            min: 0.5,
            max: 60.0,
        };
        assert_eq!(Error::from(clip).status(), StatusCode::BAD_REQUEST);
        let temp = Path::new("/db/uploads/.upload-x.wav");
        let decode = Q::Decode(pairalign_datasets::Error::Empty {
            path: temp.to_path_buf(),
        });
        let error = Error::from_archive(decode, Some(temp), "clip.wav");
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(error.to_string().contains("clip.wav"), "{error}");
        assert!(!error.to_string().contains("uploads"), "{error}");
        let duplicate = Q::Duplicate { of: "a".into() };
        assert_eq!(Error::from(duplicate).status(), StatusCode::CONFLICT);
        assert_eq!(Error::from(Q::IdTaken("a".into())).code(), "conflict");
        assert_eq!(Error::from(Q::Filter("x:".into())).code(), "bad_request");
        let bad = Q::Engine(pairalign_engine::Error::InvalidInput("no tokens".into()));
        assert_eq!(Error::from(bad).code(), "bad_request");
        let mismatch = Q::TokenizerMismatch("other".into());
        assert_eq!(Error::from(mismatch).code(), "tokenizer_mismatch");
        let io = Q::Engine(pairalign_engine::Error::io(
            "/db/MANIFEST",
            std::io::Error::other("disk"),
        ));
        assert_eq!(Error::from(io).status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
