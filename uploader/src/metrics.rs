//! Progress counters, `/metrics` (Prometheus text format), `/healthz` and `/readyz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

/// Live counters, shared by the worker and the HTTP server.
#[derive(Debug, Default)]
pub struct Metrics {
    pub(crate) bytes_uploaded: AtomicU64,
    pub(crate) files_uploaded: AtomicU64,
    pub(crate) recordings_uploaded: AtomicU64,
    pub(crate) recordings_purged: AtomicU64,
    pub(crate) recordings_failed: AtomicU64,
    pub(crate) objects_purged: AtomicU64,
    pub(crate) queue_length: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) polls: AtomicU64,
    pub(crate) ready: AtomicBool,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub bytes_uploaded: u64,
    pub files_uploaded: u64,
    pub recordings_uploaded: u64,
    pub recordings_purged: u64,
    pub recordings_failed: u64,
    pub objects_purged: u64,
    pub queue_length: u64,
    pub errors: u64,
    pub polls: u64,
    pub ready: bool,
}

impl Metrics {
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            bytes_uploaded: self.bytes_uploaded.load(Relaxed),
            files_uploaded: self.files_uploaded.load(Relaxed),
            recordings_uploaded: self.recordings_uploaded.load(Relaxed),
            recordings_purged: self.recordings_purged.load(Relaxed),
            recordings_failed: self.recordings_failed.load(Relaxed),
            objects_purged: self.objects_purged.load(Relaxed),
            queue_length: self.queue_length.load(Relaxed),
            errors: self.errors.load(Relaxed),
            polls: self.polls.load(Relaxed),
            ready: self.ready.load(Relaxed),
        }
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let s = self.snapshot();
        let rows: [(&str, &str, &str, u64); 9] = [
            (
                "edgemeet_uploader_bytes_uploaded_total",
                "counter",
                "Bytes sent to the destination, resent ones included.",
                s.bytes_uploaded,
            ),
            (
                "edgemeet_uploader_files_uploaded_total",
                "counter",
                "Files committed at the destination.",
                s.files_uploaded,
            ),
            (
                "edgemeet_uploader_recordings_uploaded_total",
                "counter",
                "Recordings uploaded and deleted from storage.",
                s.recordings_uploaded,
            ),
            (
                "edgemeet_uploader_recordings_purged_total",
                "counter",
                "Recordings deleted by the retention sweep.",
                s.recordings_purged,
            ),
            (
                "edgemeet_uploader_recordings_failed_total",
                "counter",
                "Recordings that cannot be delivered (revoked grant, bad manifest, ...).",
                s.recordings_failed,
            ),
            (
                "edgemeet_uploader_objects_purged_total",
                "counter",
                "Objects deleted by the retention sweep.",
                s.objects_purged,
            ),
            (
                "edgemeet_uploader_queue_length",
                "gauge",
                "Finished recordings being delivered or waiting to retry.",
                s.queue_length,
            ),
            (
                "edgemeet_uploader_errors_total",
                "counter",
                "Failed polls and failed delivery attempts.",
                s.errors,
            ),
            (
                "edgemeet_uploader_polls_total",
                "counter",
                "Completed polls of the bucket.",
                s.polls,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, v) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            ));
        }
        out
    }
}

/// `/metrics`, `/healthz` (process alive), `/readyz` (the bucket answered the last poll).
pub fn router(metrics: Arc<Metrics>) -> Router {
    let m1 = metrics.clone();
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = m1.clone();
                async move { ([("content-type", "text/plain; version=0.0.4")], m.render()) }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let m = metrics.clone();
                async move {
                    if m.ready.load(Relaxed) {
                        (StatusCode::OK, "ready").into_response()
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "storage not reachable yet")
                            .into_response()
                    }
                }
            }),
        )
}
