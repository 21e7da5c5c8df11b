//! The media-node registry endpoints (`/api/nodes/heartbeat`, `/api/nodes/events`, with the node
//! secret as a bearer token) and calls from the edge to nodes.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use edgemeet_core::{Input, NodeInfo, NodeScope};
use edgemeet_protocol::node::{Heartbeat, NodeEvent, NodeEvents};

use crate::AppState;
use crate::hub::now_ms;
use crate::pages::api_error;

fn authorized(headers: &HeaderMap, secret: Option<&str>) -> bool {
    let Some(secret) = secret else { return false };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    given.is_some_and(|g| {
        g.len() == secret.len()
            && g.bytes()
                .zip(secret.bytes())
                .fold(0, |a, (x, y)| a | (x ^ y))
                == 0
    })
}

#[allow(clippy::result_large_err)] // the error is the response itself, built once
fn parse<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    app: &AppState,
    body: &Bytes,
) -> Result<T, Response> {
    if !authorized(headers, app.hub.config().node_secret.as_deref()) {
        return Err(api_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a node secret is required",
        ));
    }
    if body.len() > 64 * 1024 {
        return Err(api_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "at most 64 KiB",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| api_error(StatusCode::BAD_REQUEST, "invalid_message", &e.to_string()))
}

pub async fn heartbeat(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let hb: Heartbeat = match parse(&headers, &app, &body) {
        Ok(hb) => hb,
        Err(res) => return res,
    };
    tracing::debug!(node = %hb.id, region = %hb.region, sessions = hb.load.sessions, "heartbeat");
    app.registry
        .lock()
        .expect("registry lock")
        .heartbeat(hb, now_ms());
    StatusCode::NO_CONTENT.into_response()
}

pub async fn events(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let batch: NodeEvents = match parse(&headers, &app, &body) {
        Ok(b) => b,
        Err(res) => return res,
    };
    for event in batch.events {
        match event {
            NodeEvent::DominantSpeaker {
                route,
                room,
                participant,
            } => {
                app.hub.room_input(
                    &route,
                    Input::DominantSpeaker {
                        meeting_id: room,
                        participant,
                    },
                );
            }
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Calls from the edge to media nodes (close a participant's sessions, close a meeting), made in
/// the background with a few retries: a node that cannot be told reaps idle sessions itself.
#[derive(Clone)]
pub struct NodeCaller {
    http: reqwest::Client,
}

impl NodeCaller {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("an HTTP client with the process-wide rustls provider");
        Self { http }
    }

    pub fn close(&self, node: NodeInfo, meeting_id: String, scope: NodeScope, token: String) {
        let base = node.url.trim_end_matches('/');
        let url = match &scope {
            NodeScope::Participant(pid) => format!("{base}/v1/participants/{pid}/close"),
            NodeScope::Meeting => format!("{base}/v1/rooms/{meeting_id}/close"),
        };
        let http = self.http.clone();
        tokio::spawn(async move {
            for attempt in 0..3u32 {
                match http.post(&url).bearer_auth(&token).send().await {
                    Ok(res)
                        if res.status().is_success()
                            || res.status() == reqwest::StatusCode::NOT_FOUND =>
                    {
                        return;
                    }
                    Ok(res) => {
                        tracing::info!(node = %node.id, status = %res.status(), "node refused a close call")
                    }
                    Err(err) => {
                        tracing::info!(node = %node.id, error = %err.without_url(), "node unreachable for a close call")
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(250 << attempt)).await;
            }
            tracing::warn!(node = %node.id, "gave up telling the node to close sessions; it reaps idle ones");
        });
    }
}
