//! The media-node endpoints (`/api/nodes/heartbeat`, `/api/nodes/events`: the core checks them,
//! `edgemeet_core::http::node_api`) and the edge's calls to nodes (the core's policy,
//! `edgemeet_core::node_call`, on reqwest and tokio).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use edgemeet_core::http::{Reply, node_api};
use edgemeet_core::node_call::{self, Failure, NodeCall};
use edgemeet_core::{LivestreamCall, NodeInfo, NodeScope, RecordStart};

use crate::AppState;
use crate::http::{response, text};
use crate::hub::now_ms;

pub fn heartbeat(app: &AppState, headers: &HeaderMap, body: &[u8]) -> Reply {
    let config = app.hub.config();
    let hb = match node_api::heartbeat(config, text(headers, "authorization"), body) {
        Ok(hb) => hb,
        Err(refusal) => return refusal,
    };
    tracing::debug!(node = %hb.id, region = %hb.region, sessions = hb.load.sessions, "heartbeat");
    let drained = app
        .registry
        .lock()
        .expect("registry lock")
        .heartbeat(hb, now_ms());
    app.hub.move_rooms(drained);
    Reply::no_content()
}

/// Each event goes to its room; events for rooms not running here are dropped.
pub fn events(app: &AppState, headers: &HeaderMap, body: &[u8]) -> Reply {
    let config = app.hub.config();
    let events = match node_api::events(config, text(headers, "authorization"), body) {
        Ok(events) => events,
        Err(refusal) => return refusal,
    };
    for event in events {
        let route = node_api::route_of(&event).to_string();
        app.hub.room_input(&route, node_api::input(event));
    }
    Reply::no_content()
}

/// The same endpoints on the embedded node's loopback listener.
pub async fn heartbeat_route(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    response(heartbeat(&app, &headers, &body))
}

pub async fn events_route(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    response(events(&app, &headers, &body))
}

/// Calls from the edge to media nodes (close a participant's sessions, close a meeting, start and
/// stop recordings), made in the background by the core's policy.
#[derive(Clone)]
pub struct NodeCaller {
    http: reqwest::Client,
    /// Where the edge itself reaches a node whose public URL is not absolute (the embedded node's
    /// `/node` is for browsers on this origin).
    local: Arc<Mutex<HashMap<String, String>>>,
}

impl NodeCaller {
    pub fn new() -> Self {
        // No timeout here: the core's policy times each try (`node_call::TIMEOUT`).
        let http = reqwest::Client::builder()
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

    pub fn base(&self, node: &NodeInfo) -> String {
        let local = self
            .local
            .lock()
            .expect("node caller lock")
            .get(&node.id)
            .cloned();
        local.unwrap_or_else(|| node_call::base(node).to_string())
    }

    pub fn close(&self, node: NodeInfo, meeting_id: String, scope: NodeScope, token: String) {
        let call = node_call::close(&self.base(&node), &meeting_id, &scope, token);
        let caller = self.clone();
        tokio::spawn(async move {
            if caller.send(&node, &call).await.is_err() {
                tracing::warn!(node = %node.id, "gave up telling the node to close sessions; it reaps idle ones");
            }
        });
    }

    pub fn record(
        &self,
        node: &NodeInfo,
        meeting_id: String,
        token: String,
        start: Option<RecordStart>,
    ) -> node_call::RecordCall {
        node_call::record(&self.base(node), meeting_id, token, start)
    }

    pub fn livestream(
        &self,
        node: &NodeInfo,
        meeting_id: String,
        token: String,
        call: LivestreamCall,
    ) -> node_call::LiveCall {
        node_call::livestream(&self.base(node), meeting_id, token, call)
    }

    /// Check a node after a page reported it (`node_call::probe`): whether it answers.
    pub async fn probe(&self, node: &NodeInfo) -> bool {
        let url = node_call::probe_url(&self.base(node));
        let get = || {
            let req = self.http.get(&url);
            async move {
                let res = req.send().await.map_err(|e| e.without_url().to_string())?;
                Ok(res.status().as_u16())
            }
        };
        let alive = node_call::probe(get, tokio::time::sleep).await;
        tracing::info!(node = %node.id, alive, "checked a media node a page reported");
        alive
    }

    /// Make a call by the core's policy; logs why it gave up, never the URL or token.
    pub async fn send(&self, node: &NodeInfo, call: &NodeCall) -> Result<Vec<u8>, Failure> {
        let post = |call: &NodeCall| {
            let mut req = self.http.post(&call.url).bearer_auth(&call.token);
            if let Some(body) = &call.body {
                req = req
                    .header("content-type", "application/json")
                    .body(body.clone());
            }
            async move {
                let res = req.send().await.map_err(|e| e.without_url().to_string())?;
                let status = res.status().as_u16();
                Ok((
                    status,
                    res.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
                ))
            }
        };
        let answer = node_call::send(call, post, tokio::time::sleep).await;
        if let Err(failure) = &answer {
            tracing::info!(node = %node.id, ?failure, "node call failed");
        }
        answer
    }
}
