//! Livestream calls (edge only, for the room's own token): start with an RTMP URL and stream key,
//! scene updates, stop. See `docs/media-node-api.md`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use edgemeet_protocol::node::{
    CompositionScene, StartLivestreamRequest, StartLivestreamResponse, StopLivestreamResponse,
};

use super::{JsonBody, RawBody, edge_claims_for};
use crate::error::ApiError;
use crate::node::Shared;

pub async fn start(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(meeting): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<StartLivestreamResponse>, ApiError> {
    let claims = edge_claims_for(&shared, &headers, &meeting)?;
    // Not serde's own message: it could quote the stream key.
    let req: StartLivestreamRequest = serde_json::from_slice(&body).map_err(|_| {
        ApiError::BadRequest(
            "bad JSON: expected {\"url\": \"rtmp://...\", \"streamKey\", \"scene\"?}".into(),
        )
    })?;
    shared
        .compositions
        .start_livestream(&shared.media, &meeting, &claims.route, req)
        .await
        .map(Json)
}

pub async fn scene(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(meeting): Path<String>,
    JsonBody(scene): JsonBody<CompositionScene>,
) -> Result<Json<serde_json::Value>, ApiError> {
    edge_claims_for(&shared, &headers, &meeting)?;
    shared.compositions.set_scene(&meeting, &scene)?;
    Ok(Json(serde_json::json!({})))
}

pub async fn stop(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(meeting): Path<String>,
) -> Result<Json<StopLivestreamResponse>, ApiError> {
    edge_claims_for(&shared, &headers, &meeting)?;
    shared
        .compositions
        .stop_livestream(&shared.media, &meeting)
        .await
        .map(Json)
}
