//! Pages and the names API. `GET /{room}` is the same page for every name: nothing before joining
//! tells an active room from an unused name.

use std::path::{Component, Path as FsPath, PathBuf};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use edgemeet_core::names;
use rand_core::OsRng;
use serde::Deserialize;
use serde_json::json;

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

pub async fn index(State(app): State<AppState>) -> Response {
    html(app.web.index.clone())
}

/// `/{room}` and `/{tenant}/{room}`: the same bytes as `/`, whatever the name.
pub async fn room_page(State(app): State<AppState>, _: Path<Vec<(String, String)>>) -> Response {
    html(app.web.index.clone())
}

fn html(body: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub async fn asset(State(app): State<AppState>, Path(path): Path<String>) -> Response {
    let rel = FsPath::new(&path);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return not_found();
    }
    let full = app.web.dir.join("assets").join(rel);
    let Ok(bytes) = tokio::fs::read(&full).await else {
        return not_found();
    };
    let mime = edgemeet_core::web::content_type(&path);
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        bytes,
    )
        .into_response()
}

pub fn not_found() -> Response {
    api_error(StatusCode::NOT_FOUND, "not_found", "no such file")
}

pub fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

pub async fn random_name() -> Response {
    axum::Json(json!({"name": names::generate(&mut OsRng)})).into_response()
}

#[derive(Deserialize)]
struct CheckRequest {
    name: String,
}

pub async fn check_name(body: Bytes) -> Response {
    if body.len() > 4096 {
        return api_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "send at most 4096 bytes",
        );
    }
    match serde_json::from_slice::<CheckRequest>(&body) {
        Ok(req) => axum::Json(names::check(&req.name)).into_response(),
        Err(e) => api_error(
            StatusCode::BAD_REQUEST,
            "invalid_message",
            &format!("expected {{\"name\": \"...\"}}: {e}"),
        ),
    }
}

/// Headers on every response (the embedded node's `/node/*` too): no referrer (room names are in
/// URLs), a tight CSP, no sniffing.
pub async fn security_headers(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, "referrer-policy", "no-referrer");
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(
        h,
        "permissions-policy",
        "camera=(self), microphone=(self), display-capture=(self), interest-cohort=()",
    );
    // A handler's own policy stays (the recording-status page's is stricter: `default-src 'none'`).
    h.entry("content-security-policy")
        .or_insert_with(|| app.csp.clone());
    res
}

/// In front of the embedded node's router: its `/metrics` is served with the edge's own.
pub async fn hide_node_metrics(req: Request, next: Next) -> Response {
    if req.uri().path() == "/metrics" {
        return not_found();
    }
    next.run(req).await
}

pub async fn healthz() -> &'static str {
    "ok"
}

/// `/metrics` on the main listener: only with the configured bearer token; without one
/// configured it does not exist here (see `metrics.listen`).
pub async fn metrics(State(app): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let Some(token) = app.metrics_token.as_deref() else {
        return not_found();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = given.is_some_and(|g| {
        g.len() == token.len()
            && g.bytes()
                .zip(token.bytes())
                .fold(0, |a, (x, y)| a | (x ^ y))
                == 0
    });
    if !ok {
        let mut res = api_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "metrics need the configured bearer token",
        );
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return res;
    }
    metrics_open(State(app)).await
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

pub async fn fallback() -> Response {
    not_found()
}
