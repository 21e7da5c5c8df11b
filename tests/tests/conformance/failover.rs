//! Rooms leave a media node that dies: a node that stops heartbeating is dead to the edge after
//! `node_stale_after_ms` (3 s); every page of a room on it hears `node_moved` and then a
//! `media_mode` with a grant for another node. A page's report of a node that is not the room's
//! is refused. Stand-in nodes (heartbeats only) listen nowhere, as in `hardening.rs`.

use std::time::{Duration, Instant};

use edgemeet_tests::{Client, Edge, http, unique_room};
use serde_json::{Value, json};

const NODE_SECRET: &str = "conformance-node-secret-0123456789abcdef";

/// A heartbeat of a stand-in node with no load: the cheapest choice for a room whose callers'
/// location is unknown (ids starting with `0` win ties).
async fn beat(host_port: &str, id: &str, sessions: u32) {
    let hb = json!({"id": id, "region": "zz-test", "url": "http://127.0.0.1:9",
        "load": {"sessions": sessions, "tracks": 0, "bitrate_bps": 0, "cpu": 0.0}});
    let res = http::request(
        host_port,
        "POST",
        "/api/nodes/heartbeat",
        &[
            ("Authorization", &format!("Bearer {NODE_SECRET}")),
            ("Content-Type", "application/json"),
        ],
        hb.to_string().as_bytes(),
    )
    .await;
    assert_eq!(res.status, 204);
}

/// Skip messages until `node_moved`; the messages up to the next `media_mode` with a grant.
async fn moved(c: &mut Client) -> (Value, Value) {
    let note = c.wait_for("node_moved").await;
    loop {
        let msg = c.wait_for("media_mode").await;
        if msg["media"]["node"].is_object() {
            return (note, msg["media"]["node"].clone());
        }
    }
}

#[tokio::test]
async fn a_node_that_stops_heartbeating_moves_its_rooms_within_4_s() {
    let edge = Edge::start();
    let tag = unique_room("n");
    let (dying, staying) = (format!("0-dies-{tag}"), format!("0-stays-{tag}"));
    beat(&edge.host_port(), &dying, 0).await;
    // The dying node's only heartbeat: it is stale 3 s after this.
    let silent_since = Instant::now();
    beat(&edge.host_port(), &staying, 1).await;
    let room = unique_room("node-dies");
    let mut people = Vec::new();
    for _ in 0..3 {
        let mut c = Client::room(&edge, &room).await;
        c.join(json!({})).await;
        people.push(c);
    }
    for c in &mut people {
        assert_eq!(c.node_grant().await["node_id"], dying.as_str());
    }
    // From now on only the other node beats (every 500 ms).
    let keep = {
        let (host_port, staying) = (edge.host_port(), staying.clone());
        tokio::spawn(async move {
            loop {
                beat(&host_port, &staying, 1).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    for c in &mut people {
        let (note, grant) = tokio::time::timeout(Duration::from_secs(8), moved(c))
            .await
            .expect("moved within 8 s");
        assert_eq!(note["reason"], "node_lost");
        assert_ne!(grant["node_id"], dying.as_str(), "another node: {grant}");
        assert!(grant["token"].as_str().is_some_and(|t| !t.is_empty()));
    }
    let took = silent_since.elapsed();
    println!(
        "node silent: every page told to move {} ms after its last heartbeat",
        took.as_millis()
    );
    assert!(
        took >= Duration::from_millis(2500),
        "not before the node is stale: {took:?}"
    );
    keep.abort();
}

#[tokio::test]
async fn a_report_of_a_node_that_is_not_the_rooms_is_refused() {
    let edge = Edge::start();
    let tag = unique_room("n");
    let node = format!("0-report-{tag}");
    beat(&edge.host_port(), &node, 0).await;
    let room = unique_room("node-report");
    let mut people = Vec::new();
    for _ in 0..3 {
        let mut c = Client::room(&edge, &room).await;
        c.join(json!({})).await;
        people.push(c);
    }
    people[2].node_grant().await;
    people[2]
        .send(json!({"type": "node_unreachable", "node_id": "some-other-node"}))
        .await;
    people[2].expect_error("unknown_node").await;
    // Malformed: the node id is missing.
    people[2].send(json!({"type": "node_unreachable"})).await;
    people[2].expect_error("invalid_message").await;
}
