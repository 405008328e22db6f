//! `/metrics` in the Prometheus text format (version 0.0.4), written by hand: request counts by
//! route, method and status, a search latency histogram, and gauges for the archive (documents,
//! hours), the writer's queue, searches in flight and jobs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

/// Upper bounds of the search latency buckets, in seconds: the targets (p50 under 50 ms,
/// p99 under 200 ms for a 3 s clip) fall on bucket edges.
const LATENCY_BUCKETS_S: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Counters the request middleware updates.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// (route template, method, status) -> requests.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    search: Histogram,
    /// Connections answered 503 and closed because `max_connections` were open.
    connections_refused: AtomicU64,
}

#[derive(Debug, Default)]
struct Histogram {
    /// Observations at or below each bound of [`LATENCY_BUCKETS_S`] (not cumulative).
    buckets: [AtomicU64; LATENCY_BUCKETS_S.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, seconds: f64) {
        if let Some(i) = LATENCY_BUCKETS_S.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }
}

/// Gauges read when `/metrics` is asked for.
#[derive(Debug)]
pub(crate) struct Gauges {
    pub documents: u64,
    pub hours: f64,
    pub tokens: u64,
    pub writer_queue: usize,
    pub searches_in_flight: usize,
    pub searches_queued: usize,
    pub uploads_in_flight: usize,
    pub jobs: Vec<(&'static str, usize)>,
}

impl Metrics {
    /// Counts a connection refused over the cap.
    pub(crate) fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self, route: &str, method: &str, status: u16) {
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        *requests
            .entry((route.to_string(), method.to_string(), status))
            .or_default() += 1;
    }

    /// The Prometheus text.
    pub(crate) fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        family(
            &mut out,
            "pairalign_http_requests_total",
            "counter",
            "HTTP requests answered, by route template, method and status.",
        );
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for ((route, method, status), n) in &requests {
            let _ = writeln!(
                out,
                "pairalign_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        family(
            &mut out,
            "pairalign_connections_refused_total",
            "counter",
            "Connections answered 503 and closed because max_connections were open.",
        );
        let _ = writeln!(
            out,
            "pairalign_connections_refused_total {}",
            self.connections_refused.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "pairalign_search_seconds",
            "histogram",
            "Latency of successful POST /v1/search requests (body upload, decoding, tokenizing, searching).",
        );
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BUCKETS_S.iter().zip(&self.search.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "pairalign_search_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.search.count.load(Ordering::Relaxed);
        let sum = self.search.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "pairalign_search_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(out, "pairalign_search_seconds_sum {sum}");
        let _ = writeln!(out, "pairalign_search_seconds_count {count}");
        let gauges_lines: [(&str, &str, String); 7] = [
            (
                "pairalign_archive_documents",
                "Live documents in the archive (committed).",
                gauges.documents.to_string(),
            ),
            (
                "pairalign_archive_hours",
                "Hours of audio in the archive (committed).",
                gauges.hours.to_string(),
            ),
            (
                "pairalign_archive_tokens",
                "Tokens in the archive (committed).",
                gauges.tokens.to_string(),
            ),
            (
                "pairalign_writer_queue_length",
                "Writes (uploads, deletes) waiting for the writer.",
                gauges.writer_queue.to_string(),
            ),
            (
                "pairalign_searches_in_flight",
                "Searches holding a search slot.",
                gauges.searches_in_flight.to_string(),
            ),
            (
                "pairalign_searches_queued",
                "Searches waiting for a search slot.",
                gauges.searches_queued.to_string(),
            ),
            (
                "pairalign_uploads_in_flight",
                "Uploads holding an upload slot (body on its way, or waiting for its commit).",
                gauges.uploads_in_flight.to_string(),
            ),
        ];
        for (name, help, value) in gauges_lines {
            family(&mut out, name, "gauge", help);
            let _ = writeln!(out, "{name} {value}");
        }
        family(
            &mut out,
            "pairalign_jobs",
            "gauge",
            "Upload jobs remembered, by status.",
        );
        for (status, n) in &gauges.jobs {
            let _ = writeln!(out, "pairalign_jobs{{status=\"{status}\"}} {n}");
        }
        out
    }
}

/// The `# HELP` and `# TYPE` lines of a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped (the text format's rule).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Middleware: counts every request by its route template (`/v1/assets/{id}`, not the id, so the
/// number of series stays bounded; `unmatched` for unknown paths) and times successful searches.
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().as_str().to_string();
    let response = next.run(request).await;
    let status = response.status();
    state.metrics.count(&route, &method, status.as_u16());
    if route == "/v1/search" && status.is_success() {
        state
            .metrics
            .search
            .observe(started.elapsed().as_secs_f64());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_has_counters_cumulative_buckets_and_gauges() {
        let metrics = Metrics::default();
        metrics.count("/v1/search", "POST", 200);
        metrics.count("/v1/search", "POST", 200);
        metrics.count("unmatched", "GET", 404);
        metrics.search.observe(0.03);
        metrics.search.observe(0.3);
        let gauges = Gauges {
            documents: 4,
            hours: 0.5,
            tokens: 900,
            writer_queue: 2,
            searches_in_flight: 1,
            searches_queued: 3,
            uploads_in_flight: 0,
            jobs: vec![("queued", 1)],
        };
        let text = metrics.render(&gauges);
        for line in [
            "pairalign_http_requests_total{route=\"/v1/search\",method=\"POST\",status=\"200\"} 2",
            "pairalign_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
            "pairalign_search_seconds_bucket{le=\"0.05\"} 1",
            "pairalign_search_seconds_bucket{le=\"0.5\"} 2",
            "pairalign_search_seconds_bucket{le=\"+Inf\"} 2",
            "pairalign_search_seconds_count 2",
            "pairalign_archive_documents 4",
            "pairalign_writer_queue_length 2",
            "pairalign_searches_queued 3",
            "pairalign_jobs{status=\"queued\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert_eq!(escape("a\"b\\"), "a\\\"b\\\\");
    }
}
