//! The edge's HTTP surface, the same on every host (both answer from `edgemeet_core::http`):
//! the headers on every answer, `405`s and `404`s, the names API's limit, the media nodes'
//! endpoints (secret, size, event routes), and room names that do not decode.

use edgemeet_tests::{Client, Edge, http};
use serde_json::json;

/// `tests/fixtures/edge.toml`.
const NODE_SECRET: &str = "conformance-node-secret-0123456789abcdef";

const SECURITY_HEADERS: [&str; 5] = [
    "referrer-policy",
    "x-content-type-options",
    "x-frame-options",
    "permissions-policy",
    "content-security-policy",
];

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let edge = Edge::start();
    let hp = edge.host_port();
    for (method, path, status) in [
        ("GET", "/", 200),
        ("GET", "/SomeRoom", 200),
        ("GET", "/acme/SomeRoom", 200),
        ("GET", "/healthz", 200),
        ("GET", "/api/names/random", 200),
        ("GET", "/api/config", 200),
        ("GET", "/assets/no-such-file.js", 404),
        ("GET", "/a/b/c", 404),
        ("GET", "/api/nope", 404),
        ("POST", "/", 405),
        ("GET", "/api/nodes/events", 405),
    ] {
        let r = http::request(&hp, method, path, &[], b"").await;
        assert_eq!(r.status, status, "{method} {path}");
        for h in SECURITY_HEADERS {
            assert!(r.header(h).is_some(), "{method} {path}: no {h}");
        }
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
        if status == 404 {
            assert_eq!(r.json()["error"]["code"], "not_found", "{method} {path}");
        }
    }
}

#[tokio::test]
async fn other_methods_are_told_which_ones_a_path_takes() {
    let edge = Edge::start();
    let hp = edge.host_port();
    for (method, path, allow) in [
        ("POST", "/", "GET,HEAD"),
        ("PUT", "/SomeRoom", "GET,HEAD"),
        ("POST", "/api/config", "GET,HEAD"),
        ("POST", "/api/rooms/x", "GET,HEAD"),
        ("GET", "/api/names/check", "POST"),
        ("GET", "/api/nodes/heartbeat", "POST"),
        ("DELETE", "/healthz", "GET,HEAD"),
    ] {
        let r = http::request(&hp, method, path, &[], b"").await;
        assert_eq!(r.status, 405, "{method} {path}");
        let allowed: Vec<String> = r
            .header("allow")
            .unwrap_or_default()
            .split(',')
            .map(|m| m.trim().to_string())
            .collect();
        assert_eq!(allowed.join(","), allow, "{method} {path}");
        assert!(r.body.is_empty(), "{method} {path}");
    }
}

/// `/metrics` is not a room page: it is the metrics of a host that has them and was given a
/// token (none in the fixture), and nothing anywhere else.
#[tokio::test]
async fn metrics_are_not_served_without_a_token() {
    let edge = Edge::start();
    let r = http::get(&edge.host_port(), "/metrics").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_name_check_is_at_most_4096_bytes() {
    let edge = Edge::start();
    let body = json!({"name": "x".repeat(5000)}).to_string();
    let r = http::request(
        &edge.host_port(),
        "POST",
        "/api/names/check",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"]["code"], "too_large");
}

async fn node_post(
    edge: &Edge,
    path: &str,
    secret: Option<&str>,
    body: &[u8],
) -> http::RawResponse {
    let auth = secret.map(|s| format!("Bearer {s}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    http::request(&edge.host_port(), "POST", path, &headers, body).await
}

fn speaker_event(route: &str) -> Vec<u8> {
    json!({"node_id": "conformance-node", "events": [
        {"type": "dominant_speaker", "route": route, "room": "m1", "participant": "p1"}]})
    .to_string()
    .into_bytes()
}

/// A route names a room object on the Worker: a node may only send the routes the edge gave it
/// (its keyed hashes), on every host. One it cannot have been given refuses the batch.
#[tokio::test]
async fn node_events_for_a_route_the_edge_never_made_are_refused() {
    let edge = Edge::start();
    let secret = Some(NODE_SECRET);
    for bad in [
        "../registry",
        "global",
        "0123456789ABCDEF0123456789ABCDEF",
        "0123456789abcdef0123456789abcdef0",
        "",
    ] {
        let r = node_post(&edge, "/api/nodes/events", secret, &speaker_event(bad)).await;
        assert_eq!(r.status, 400, "{bad:?}");
        assert_eq!(r.json()["error"]["code"], "invalid_message", "{bad:?}");
    }
    // A route of the right form with no room running: taken, and creates nothing.
    let idle = "0123456789abcdef0123456789abcdef";
    let r = node_post(&edge, "/api/nodes/events", secret, &speaker_event(idle)).await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn node_endpoints_need_the_secret_and_small_bodies() {
    let edge = Edge::start();
    let event = speaker_event("0123456789abcdef0123456789abcdef");
    for path in ["/api/nodes/events", "/api/nodes/heartbeat"] {
        for secret in [None, Some("wrong-secret"), Some("")] {
            let r = node_post(&edge, path, secret, &event).await;
            assert_eq!(r.status, 401, "{path} {secret:?}");
            assert_eq!(r.json()["error"]["code"], "unauthorized");
        }
        let big = vec![b' '; 64 * 1024 + 1];
        let r = node_post(&edge, path, Some(NODE_SECRET), &big).await;
        assert_eq!(r.status, 413, "{path}");
        assert_eq!(r.json()["error"]["code"], "too_large");
        let r = node_post(&edge, path, Some(NODE_SECRET), b"{nope").await;
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.json()["error"]["code"], "invalid_message");
    }
}

/// A room name that is not UTF-8 once decoded is refused on the socket like any other bad name
/// (not with an HTTP error before the upgrade: every name upgrades the same way).
#[tokio::test]
async fn undecodable_room_names_are_reported_on_the_socket() {
    let edge = Edge::start();
    for path in [
        "/api/rooms/%ff",
        "/api/rooms/%C3%28/room",
        "/api/rooms/acme/%ff",
    ] {
        let mut c = Client::connect(&edge, path).await;
        assert_eq!(c.recv().await["code"], "invalid_room_name", "{path}");
    }
}
