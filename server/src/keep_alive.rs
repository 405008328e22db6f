//! Keep-alive after a reply that left the request body unread.
//!
//! Some replies come before the request body is read: a 503 when every upload slot is taken, a
//! 401 without the token, a 413 from the declared length, a 408. hyper then drains what has
//! already arrived and, when more is still coming, closes the connection after the reply; but it
//! decides that after writing the reply's head, so the reply does not say `Connection: close`.
//! A client that pools connections (reqwest, browsers) puts the connection back in its pool and
//! sends its next request into a closed socket: "error sending request" on a request the server
//! never saw (the load test's failed searches, docs/RELIABILITY.md). [`close_if_body_unread`]
//! says it in the reply, so the client opens a new connection instead.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

/// Middleware: answers `Connection: close` when the handler replied without reading the request
/// body to its end. Requests without a body, and those whose body was read, keep the connection.
pub(crate) async fn close_if_body_unread(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let read = Arc::new(AtomicBool::new(false));
    let body = Body::new(Watched {
        inner: body,
        read: Arc::clone(&read),
    });
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if !read.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A request body that records when it has been read to its end.
struct Watched {
    inner: Body,
    read: Arc<AtomicBool>,
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => self.inner.is_end_stream(),
            Poll::Ready(Some(Err(_))) | Poll::Pending => false,
        };
        if ended {
            self.read.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::routing::post;
    use axum::Router;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    /// A route that reads the body only when asked to (`/read`), like a handler that answers
    /// 503 before reading an upload.
    fn app() -> Router {
        Router::new()
            .route(
                "/read",
                post(|body: Body| async move {
                    let bytes = body.collect().await.map(|c| c.to_bytes().len());
                    format!("{bytes:?}")
                }),
            )
            .route("/ignore", post(|| async { "ignored" }))
            .layer(axum::middleware::from_fn(close_if_body_unread))
    }

    async fn connection(path: &str, body: Body) -> Option<HeaderValue> {
        let request = Request::post(path).body(body).unwrap_or_default();
        let response = app().oneshot(request).await.unwrap_or_default();
        response.headers().get(header::CONNECTION).cloned()
    }

    fn streamed(chunks: usize) -> Body {
        let chunks = (0..chunks).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(b"abc")));
        Body::from_stream(futures_util::stream::iter(chunks))
    }

    #[tokio::test]
    async fn an_unread_body_closes_the_connection_and_a_read_one_does_not() {
        let close = Some(HeaderValue::from_static("close"));
        assert_eq!(connection("/ignore", Body::from("abc")).await, close);
        assert_eq!(connection("/ignore", streamed(3)).await, close);
        assert_eq!(connection("/read", Body::from("abc")).await, None);
        assert_eq!(connection("/read", streamed(3)).await, None);
        // No body: nothing to leave unread.
        assert_eq!(connection("/ignore", Body::empty()).await, None);
    }
}
