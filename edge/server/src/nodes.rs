//! The media-node registry endpoints (`/api/nodes/heartbeat`, `/api/nodes/events`, with the node
//! secret as a bearer token) and calls from the edge to nodes.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use edgemeet_core::{Input, NodeInfo, NodeScope, RecordStart};

use edgemeet_protocol::node::{Heartbeat, NodeEvent, NodeEvents, StartRecordingResponse};

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

/// Calls from the edge to media nodes (close a participant's sessions, close a meeting, start and
/// stop recordings), made in the background with a few retries.
#[derive(Clone)]
pub struct NodeCaller {
    http: reqwest::Client,
    /// Where the edge itself reaches a node whose public URL is not absolute (the embedded node's
    /// `/node` is for browsers on this origin).
    local: Arc<Mutex<HashMap<String, String>>>,
}

impl NodeCaller {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("an HTTP client with the process-wide rustls provider");
        Self {
            http,
            local: Default::default(),
        }
    }

    /// The edge reaches node `id` at `base` (the embedded node's loopback listener).
    pub fn set_local(&self, id: &str, base: String) {
        self.local
            .lock()
            .expect("node caller lock")
            .insert(id.to_string(), base);
    }

    fn base(&self, node: &NodeInfo) -> String {
        let local = self
            .local
            .lock()
            .expect("node caller lock")
            .get(&node.id)
            .cloned();
        local.unwrap_or_else(|| node.url.trim_end_matches('/').to_string())
    }

    pub fn close(&self, node: NodeInfo, meeting_id: String, scope: NodeScope, token: String) {
        let base = self.base(&node);
        let url = match &scope {
            NodeScope::Participant(pid) => format!("{base}/v1/participants/{pid}/close"),
            NodeScope::Meeting => format!("{base}/v1/rooms/{meeting_id}/close"),
        };
        let caller = self.clone();
        tokio::spawn(async move {
            if caller.post(&node, &url, &token, None).await.is_none() {
                tracing::warn!(node = %node.id, "gave up telling the node to close sessions; it reaps idle ones");
            }
        });
    }

    /// Start (with the Dropbox grant) or stop a meeting's recording; `None` when the node refused
    /// or could not be reached. A start's answer carries the recorder's delivery-status token
    /// (`StartRecordingResponse::status_token`), when the node gave one.
    pub async fn record(
        &self,
        node: &NodeInfo,
        meeting_id: &str,
        token: &str,
        start: Option<RecordStart>,
    ) -> Option<Recorded> {
        let base = self.base(node);
        let starting = start.is_some();
        let (url, body) = match start {
            Some(start) => (
                format!("{base}/v1/rooms/{meeting_id}/recording/start"),
                Some(match start.dropbox {
                    Some(grant) => serde_json::json!({"dropbox": grant}),
                    None => serde_json::json!({}),
                }),
            ),
            None => (format!("{base}/v1/rooms/{meeting_id}/recording/stop"), None),
        };
        let answer = self.post(node, &url, token, body).await?;
        let status_token = if starting {
            serde_json::from_slice::<StartRecordingResponse>(&answer)
                .ok()
                .and_then(|a| a.status_token)
        } else {
            None
        };
        Some(Recorded { status_token })
    }

    /// POST with a few tries; the answer's body on success (empty for a 404: nothing to act
    /// on), `None` when the node refused or could not be reached.
    async fn post(
        &self,
        node: &NodeInfo,
        url: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> Option<Bytes> {
        for attempt in 0..3u32 {
            let mut req = self.http.post(url).bearer_auth(token);
            if let Some(body) = &body {
                req = req.json(body);
            }
            match req.send().await {
                Ok(res) if res.status() == reqwest::StatusCode::NOT_FOUND => {
                    return Some(Bytes::new());
                }
                Ok(res) if res.status().is_success() => {
                    // A node's answers are small; one that cannot be read counts as done.
                    return Some(res.bytes().await.unwrap_or_default());
                }
                // The node understood and said no: retrying will not change its mind.
                Ok(res) if res.status().is_client_error() => {
                    tracing::info!(node = %node.id, status = %res.status(), "node refused a call");
                    return None;
                }
                Ok(res) => {
                    tracing::info!(node = %node.id, status = %res.status(), "node failed a call")
                }
                Err(err) => {
                    tracing::info!(node = %node.id, error = %err.without_url(), "node unreachable")
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(250 << attempt)).await;
        }
        None
    }
}

/// A recording call the node took.
pub struct Recorded {
    /// The recorder's delivery-status capability (a start's answer only): never logged.
    pub status_token: Option<String>,
}
