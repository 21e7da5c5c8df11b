//! Shared setup of the integration tests: a node in-process on 127.0.0.1, token helpers.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgemeet_media_node::{MediaNode, MediaNodeHandle, NodeConfig};
use edgemeet_testsupport::node_client::{ClientOptions, TestClient, token};

pub const SECRET: &str = "integration-test-secret-0123456789";
pub const NODE_ID: &str = "node-test";

pub struct Node {
    pub handle: MediaNodeHandle,
    pub base: String,
}

/// A node on 127.0.0.1 with an ephemeral API port and the tests' secret.
pub fn config() -> NodeConfig {
    NodeConfig {
        id: NODE_ID.into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        secret: SECRET.into(),
        ..NodeConfig::default()
    }
}

pub async fn start_with(cfg: NodeConfig) -> Node {
    let handle = MediaNode::start(cfg).await.expect("node starts");
    let base = format!("http://{}", handle.local_addr().unwrap());
    Node { handle, base }
}

pub async fn start() -> Node {
    start_with(config()).await
}

pub fn tok(room: &str, sub: &str) -> String {
    token(SECRET, NODE_ID, room, sub, 60)
}

/// A test client's options: keeps what it receives, sends silent audio.
fn options() -> ClientOptions {
    ClientOptions {
        keep_packets: true,
        audio_level: 127,
        on_packet: None,
    }
}

pub async fn client(node: &Node, room: &str, participant: &str, tag: u8) -> TestClient {
    TestClient::connect(&node.base, &tok(room, participant), tag, options())
        .await
        .expect("client connects")
}

/// A client without a session yet: its `publish` opens one (with pulls, see `pull_on_open`).
pub async fn unopened(node: &Node, room: &str, participant: &str, tag: u8) -> TestClient {
    TestClient::build(&node.base, &tok(room, participant), tag, options())
        .await
        .expect("client builds")
}

/// Polls `f` every 50 ms until it holds or `within` passes.
pub async fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

/// A raw HTTP call: (status, JSON body or Null).
pub async fn http(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> (u16, serde_json::Value) {
    edgemeet_testsupport::node_client::init_crypto();
    let c = reqwest::Client::new();
    let mut rq = c
        .request(method, url)
        .header("content-type", "application/json");
    if let Some(t) = token {
        rq = rq.bearer_auth(t);
    }
    if let Some(b) = body {
        rq = rq.body(b);
    }
    let r = rq.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// A stub edge that keeps the events a node reports.
pub async fn stub_edge() -> (Arc<Mutex<Vec<edgemeet_protocol::node::NodeEvent>>>, String) {
    use axum::extract::State;
    type Seen = Arc<Mutex<Vec<edgemeet_protocol::node::NodeEvent>>>;
    async fn events(
        State(s): State<Seen>,
        axum::Json(ev): axum::Json<edgemeet_protocol::node::NodeEvents>,
    ) {
        s.lock().unwrap().extend(ev.events);
    }
    async fn heartbeat() {}
    let seen = Seen::default();
    let app = axum::Router::new()
        .route("/api/nodes/events", axum::routing::post(events))
        .route("/api/nodes/heartbeat", axum::routing::post(heartbeat))
        .with_state(seen.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (seen, url)
}

/// A participant pushing audio and simulcast video, connected.
pub async fn publisher(node: &Node, room: &str, participant: &str, tag: u8) -> TestClient {
    let mut c = TestClient::connect(
        &node.base,
        &tok(room, participant),
        tag,
        ClientOptions::default(),
    )
    .await
    .unwrap();
    c.publish(true, true, false).await.unwrap();
    c.wait_connected(Duration::from_secs(10)).await.unwrap();
    c
}

/// A counter of the node's `/metrics` (0 when absent).
pub async fn counter(node: &Node, name: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", node.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// A participant pushing audio and simulcast video whose keyframes carry their size, as a
/// 640x360 camera's layers: q 90, h 180, f 360 pixels high.
pub async fn sized_publisher(node: &Node, room: &str, participant: &str, tag: u8) -> TestClient {
    let mut c = client(node, room, participant, tag).await;
    c.layer_heights = Some(vec![90, 180, 360]);
    c.layer_pkts = Some(vec![1, 1, 2]);
    c.publish(true, true, true)
        .await
        .expect("publish simulcast");
    c
}
