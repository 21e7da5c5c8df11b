//! The HTTP control API (modeled on Cloudflare Realtime SFU). See `docs/media-node-api.md`.
//! Here: routes, tokens, bodies, rooms, recording and drain; the session calls, each one
//! command to the media loop, are in `sessions.rs`.

mod livestream;
pub mod sessions;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use edgemeet_protocol::node::{
    CloseTracksRequest, ClosedResponse, NewSessionRequest, NewSessionResponse, NodeTokenClaims,
    RenegotiateRequest, SessionStateResponse, StartRecordingRequest, StartRecordingResponse,
    StopRecordingResponse, TracksRequest, TracksResponse, UpdateTracksRequest, ViewTracksRequest,
};
use serde::de::DeserializeOwned;

use crate::auth::EDGE_SUBJECT;
use crate::error::ApiError;
use crate::node::Shared;

/// Largest request body: an SDP of many m-lines plus JSON overhead.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/sessions/new", post(new_session))
        .route(
            "/v1/sessions/{sid}",
            get(session_state).delete(close_session),
        )
        .route("/v1/sessions/{sid}/tracks/new", post(tracks_new))
        .route("/v1/sessions/{sid}/renegotiate", put(renegotiate))
        .route("/v1/sessions/{sid}/tracks/close", put(tracks_close))
        .route("/v1/sessions/{sid}/tracks/update", put(tracks_update))
        .route("/v1/sessions/{sid}/tracks/view", put(tracks_view))
        .route("/v1/participants/{pid}/close", post(close_participant))
        .route("/v1/rooms/{meeting}/close", post(close_room))
        .route("/v1/rooms/{meeting}/recording/start", post(start_recording))
        .route("/v1/rooms/{meeting}/recording/stop", post(stop_recording))
        .route(
            "/v1/rooms/{meeting}/livestream/start",
            post(livestream::start),
        )
        .route(
            "/v1/rooms/{meeting}/livestream/stop",
            post(livestream::stop),
        )
        .route(
            "/v1/rooms/{meeting}/composition/scene",
            post(livestream::scene),
        )
        .route("/v1/drain", post(drain))
        .route(
            "/v1/{*rest}",
            delete(not_found)
                .get(not_found)
                .post(not_found)
                .put(not_found),
        )
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(cors))
        .with_state(shared)
}

/// Browsers call the node directly from the meeting page's origin.
async fn cors(req: Request, next: Next) -> Response {
    let preflight = req.method() == Method::OPTIONS;
    let mut resp = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    resp
}

/// A body whose failures (too large, unreadable) are JSON errors with a reason.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|r| match r.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
                _ => ApiError::BadRequest(format!("unreadable body: {}", r.body_text())),
            })
    }
}

/// A JSON body whose every failure (size, syntax, types) is a JSON error with a reason.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Reads a JSON request body; every failure is a `400` with serde's reason.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("bad JSON: {e}")))
}

fn claims(shared: &Shared, headers: &HeaderMap) -> Result<NodeTokenClaims, ApiError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    shared.verifier.verify(auth)
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "ok",
        "draining": shared.draining.load(Relaxed),
    }))
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics_total().render(&shared.gauges()),
    )
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint")
}

async fn new_session(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<NewSessionResponse>, ApiError> {
    let c = claims(&shared, &headers)?;
    if c.sub == EDGE_SUBJECT {
        return Err(ApiError::Forbidden("an edge token cannot open a session"));
    }
    let mut req: NewSessionRequest = if body.iter().all(u8::is_ascii_whitespace) {
        NewSessionRequest::default()
    } else {
        parse_json(&body)?
    };
    if let Some(offer) = &req.session_description {
        // Refuse garbage before a connection (and a port) exists for it.
        crate::sdp::parse(&offer.sdp).map_err(ApiError::bad_sdp)?;
    }
    // Session and push in one call: the offer pushes these tracks, as `tracks/new` would.
    let push = match req.tracks.take() {
        None => None,
        Some(tracks) => {
            let Some(offer) = req.session_description.take() else {
                return Err(ApiError::BadRequest(
                    "pushing tracks needs the client's offer".into(),
                ));
            };
            Some(TracksRequest {
                session_description: Some(offer),
                tracks,
            })
        }
    };
    sessions::new_session(&shared, c, req, push).await
}

async fn session_state(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(sid): Path<String>,
) -> Result<Json<SessionStateResponse>, ApiError> {
    let c = claims(&shared, &headers)?;
    sessions::session_state(&shared.media, &c, sid).await
}

async fn tracks_new(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(sid): Path<String>,
    JsonBody(req): JsonBody<TracksRequest>,
) -> Result<Json<TracksResponse>, ApiError> {
    let c = claims(&shared, &headers)?;
    sessions::tracks_new(&shared, &c, sid, req).await
}

async fn renegotiate(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(sid): Path<String>,
    JsonBody(req): JsonBody<RenegotiateRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let c = claims(&shared, &headers)?;
    sessions::renegotiate(&shared.media, &c, sid, req).await
}

async fn tracks_close(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(sid): Path<String>,
    JsonBody(req): JsonBody<CloseTracksRequest>,
) -> Result<Json<TracksResponse>, ApiError> {
    let c = claims(&shared, &headers)?;
    sessions::tracks_close(&shared, &c, sid, req).await
}

async fn tracks_update(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(sid): Path<String>,
    JsonBody(req): JsonBody<UpdateTracksRequest>,
) -> Result<Json<TracksResponse>, ApiError> {
    let c = claims(&shared, &headers)?;
    sessions::tracks_update(&shared, &c, sid, req).await
}

async fn tracks_view(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(sid): Path<String>,
    JsonBody(req): JsonBody<ViewTracksRequest>,
) -> Result<Json<TracksResponse>, ApiError> {
    let c = claims(&shared, &headers)?;
    sessions::tracks_view(&shared, &c, sid, req).await
}

async fn close_session(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(sid): Path<String>,
) -> Result<Json<ClosedResponse>, ApiError> {
    let c = claims(&shared, &headers)?;
    sessions::close_session(&shared.media, &c, sid).await
}

fn edge_claims(shared: &Shared, headers: &HeaderMap) -> Result<NodeTokenClaims, ApiError> {
    let c = claims(shared, headers)?;
    if c.sub != EDGE_SUBJECT {
        return Err(ApiError::Forbidden("only the edge may do this"));
    }
    Ok(c)
}

async fn close_participant(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(pid): Path<String>,
) -> Result<Json<ClosedResponse>, ApiError> {
    let c = edge_claims(&shared, &headers)?;
    // First refuse the grant, then close what it opened: nothing new can slip in between.
    shared.verifier.revoke(&c.room, &pid, c.exp);
    shared.metrics.grants_revoked.fetch_add(1, Relaxed);
    let n = sessions::close_where(&shared.media, &c.room, Some(pid.as_str())).await?;
    Ok(Json(ClosedResponse { closed_sessions: n }))
}

async fn close_room(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(meeting): Path<String>,
) -> Result<Json<ClosedResponse>, ApiError> {
    let c = edge_claims(&shared, &headers)?;
    if c.room != meeting {
        return Err(ApiError::Forbidden("token is for another room"));
    }
    // The room ends: its recording is finalized (its composed file, then the others, then the
    // manifest) before the media stops.
    shared
        .compositions
        .stop_recording(&shared.media, &meeting)
        .await;
    if shared.recordings.is_recording(&meeting)
        && let Err(e) = shared.recordings.stop(&meeting).await
    {
        tracing::warn!(error = %e, "recording not finalized at room close");
    }
    // And its livestream ends.
    if shared.compositions.is_live(&meeting)
        && let Err(e) = shared
            .compositions
            .stop_livestream(&shared.media, &meeting)
            .await
    {
        tracing::warn!(error = %e, "livestream not ended cleanly at room close");
    }
    let n = sessions::close_where(&shared.media, &meeting, None).await?;
    Ok(Json(ClosedResponse { closed_sessions: n }))
}

/// The edge's token for this very meeting.
pub(crate) fn edge_claims_for(
    shared: &Shared,
    headers: &HeaderMap,
    meeting: &str,
) -> Result<NodeTokenClaims, ApiError> {
    let c = edge_claims(shared, headers)?;
    if c.room != meeting {
        return Err(ApiError::Forbidden("token is for another room"));
    }
    Ok(c)
}

async fn start_recording(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(meeting): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<StartRecordingResponse>, ApiError> {
    let claims = edge_claims_for(&shared, &headers, &meeting)?;
    let req: StartRecordingRequest = if body.iter().all(u8::is_ascii_whitespace) {
        StartRecordingRequest::default()
    } else {
        // Not `parse_json`: serde's message could quote the token.
        serde_json::from_slice(&body).map_err(|_| {
            ApiError::BadRequest(
                "bad JSON: expected {\"dropbox\": {\"accessToken\", \"refreshToken\"?, \"appKey\"}}"
                    .into(),
            )
        })?
    };
    let (composite, scene) = (req.composite, req.scene.unwrap_or_default());
    if !req.per_person && !composite {
        return Err(ApiError::BadRequest(
            "perPerson: false records nothing without composite: true".into(),
        ));
    }
    // The recorder asked for one composed video: with no composer free it is refused as a whole
    // (429), and the edge moves the room to a node with one, rather than record without it.
    if composite && shared.compositions.is_full() {
        return Err(ApiError::TooMany(
            "this node runs as many compositions as its CPU allows",
        ));
    }
    let started = shared
        .recordings
        .start(
            &shared,
            &meeting,
            req.dropbox,
            req.continue_from,
            req.per_person,
        )
        .await?;
    // One composed MP4 of the meeting beside the per-person files, if asked: a failure here
    // leaves the per-person recording running.
    if composite
        && let Some(file) = shared.recordings.streamed_mp4(&meeting, "meeting.mp4")
        && let Err(e) = shared
            .compositions
            .start_recording(&shared.media, &meeting, &claims.route, file, &scene)
            .await
    {
        tracing::warn!(recording = %started.recording_id, error = %e, "composite recording not started");
    }
    Ok(Json(started))
}

async fn stop_recording(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(meeting): Path<String>,
) -> Result<Json<StopRecordingResponse>, ApiError> {
    edge_claims_for(&shared, &headers, &meeting)?;
    // The composed file first: its last bytes reach storage before the manifest lists it.
    shared
        .compositions
        .stop_recording(&shared.media, &meeting)
        .await;
    shared.recordings.stop(&meeting).await.map(Json)
}

#[derive(serde::Deserialize)]
struct DrainRequest {
    draining: bool,
    /// Also move the node's rooms to other nodes now (pages switch with no gap), instead of
    /// letting them run out here.
    #[serde(default)]
    migrate: bool,
}

/// Operator switch, authenticated with the node secret itself (as the node's reports are).
async fn drain(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<DrainRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(given.as_bytes(), shared.cfg.secret.as_bytes()) {
        return Err(ApiError::Unauthorized("drain needs the node secret"));
    }
    let migrate = req.draining && req.migrate;
    shared.draining.store(req.draining, Relaxed);
    shared.migrate.store(migrate, Relaxed);
    shared.report_now.notify_one();
    tracing::info!(draining = req.draining, migrate, "drain mode changed");
    Ok(Json(
        serde_json::json!({ "draining": req.draining, "migrate": migrate }),
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
