//! The browser client's files (read from `web_dir`) and `/metrics`. What the page and every
//! other endpoint answer is the core's (`edgemeet_core::http`), dispatched in `http.rs`.

use std::path::{Path as FsPath, PathBuf};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use edgemeet_core::http::{self, Reply};

use crate::AppState;

/// The meeting page, read once at start.
#[derive(Clone)]
pub struct Web {
    pub dir: PathBuf,
    pub index: Bytes,
}

impl Web {
    pub fn load(dir: &FsPath) -> std::io::Result<Self> {
        Ok(Self {
            dir: dir.to_path_buf(),
            index: std::fs::read(dir.join("index.html"))?.into(),
        })
    }
}

/// A file under `assets/` (its path checked by the core's route table: plain names only).
pub async fn asset(app: &AppState, file: &str) -> Reply {
    match tokio::fs::read(app.web.dir.join("assets").join(file)).await {
        Ok(bytes) => Reply::file(file, bytes),
        Err(_) => http::not_found(),
    }
}

/// `/metrics` on the main listener: only with the configured bearer token; without one
/// configured it does not exist here (see `metrics.listen`).
pub async fn metrics(app: &AppState, headers: &HeaderMap) -> Response {
    let Some(token) = app.metrics_token.as_deref() else {
        return crate::http::response(http::not_found());
    };
    let given = crate::http::text(headers, "authorization");
    if !http::bearer_ok(given, Some(token)) {
        return crate::http::response(http::metrics_unauthorized());
    }
    metrics_open(State(app.clone())).await
}

/// Prometheus text format: counts only. The embedded node's follow the edge's.
pub async fn metrics_open(State(app): State<AppState>) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    let m = &app.hub.metrics;
    let nodes = app.registry.lock().expect("registry lock").len();
    let rows = [
        (
            "edgemeet_rooms_active",
            "gauge",
            "Rooms with at least one socket.",
            app.hub.active_rooms() as u64,
        ),
        (
            "edgemeet_rooms_created_total",
            "counter",
            "Rooms created.",
            m.rooms_created.load(Relaxed),
        ),
        (
            "edgemeet_sockets",
            "gauge",
            "Open room sockets.",
            m.sockets.load(Relaxed),
        ),
        (
            "edgemeet_frames_in_total",
            "counter",
            "Text frames received from browsers.",
            m.frames_in.load(Relaxed),
        ),
        (
            "edgemeet_frames_out_total",
            "counter",
            "Frames queued to browsers.",
            m.frames_out.load(Relaxed),
        ),
        (
            "edgemeet_slow_sockets_dropped_total",
            "counter",
            "Sockets closed because their queue overflowed.",
            m.slow_sockets_dropped.load(Relaxed),
        ),
        (
            "edgemeet_media_nodes_known",
            "gauge",
            "Media nodes in the registry.",
            nodes as u64,
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, value) in rows {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    }
    if let Some(node) = app.node_router.get() {
        use tower::ServiceExt;
        let req = Request::get("/metrics").body(axum::body::Body::empty());
        if let Ok(req) = req
            && let Ok(res) = node.clone().oneshot(req).await
            && let Ok(body) = axum::body::to_bytes(res.into_body(), 1 << 20).await
        {
            out.push_str(&String::from_utf8_lossy(&body));
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
