//! Regions: two media nodes in two network namespaces, one in `eu-west` and one in `na-east`. A room
//! started by a caller in Europe lands on the European node, one from America on the American one;
//! a drained node takes no new rooms while its rooms go on.
//!
//! Ignored in the plain `cargo test` run: `tests/suites/regions.sh` builds the namespaces, starts
//! the edge and both nodes in them, and runs this test inside the client's namespace with
//! `EDGEMEET_URL` (the edge), `REGIONS_EU_NODE` and `REGIONS_NODE_SECRET` set.

use std::time::{Duration, Instant};

use edgemeet_tests::client::Client;
use edgemeet_tests::edge::Edge;
use edgemeet_tests::{http, unique_room};
use serde_json::json;

/// What Cloudflare (or any proxy the edge trusts) says about a caller in Dublin or in Virginia.
const EUROPE: &[(&str, &str)] = &[
    ("CF-IPContinent", "EU"),
    ("CF-IPCountry", "IE"),
    ("CF-IPLatitude", "53.35"),
    ("CF-IPLongitude", "-6.26"),
];
const AMERICA: &[(&str, &str)] = &[
    ("CF-IPContinent", "NA"),
    ("CF-IPCountry", "US"),
    ("CF-IPLatitude", "38.9"),
    ("CF-IPLongitude", "-77.0"),
];

/// Three callers from `from` start `room`; returns them and the node the room was given.
async fn start_room(edge: &Edge, room: &str, from: &[(&str, &str)]) -> (Vec<Client>, String) {
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect_with_headers(edge, &format!("/api/rooms/{room}"), from).await;
        c.join(json!({})).await;
        clients.push(c);
    }
    let node = sfu_node(&mut clients[2]).await;
    (clients, node)
}

/// The media node the room moved to (in the welcome, or the next `media_mode` that names one).
async fn sfu_node(c: &mut Client) -> String {
    let grant = c.node_grant().await;
    grant["node_id"].as_str().expect("a node id").to_string()
}

#[tokio::test]
#[ignore = "needs network namespaces: run by tests/suites/regions.sh"]
async fn rooms_go_to_the_callers_region_and_not_to_a_draining_node() {
    let edge = Edge::start();
    let eu_node = std::env::var("REGIONS_EU_NODE").expect("REGIONS_EU_NODE (host:port)");
    let secret = std::env::var("REGIONS_NODE_SECRET").expect("REGIONS_NODE_SECRET");

    let eu_room = unique_room("dublin");
    let (mut eu_clients, node) = start_room(&edge, &eu_room, EUROPE).await;
    assert_eq!(node, "eu-1", "a room from Europe is placed in eu-west");
    let (_us_clients, node) = start_room(&edge, &unique_room("virginia"), AMERICA).await;
    assert_eq!(node, "us-1", "a room from America is placed in na-east");

    // Drain the European node; the edge learns it from the next heartbeat.
    let auth = format!("Bearer {secret}");
    let r = http::request(
        &eu_node,
        "POST",
        "/v1/drain",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ],
        br#"{"draining": true}"#,
    )
    .await;
    assert!(r.status < 300, "drain: {} {:?}", r.status, r.body);
    let deadline = Instant::now() + Duration::from_secs(20);
    let moved = loop {
        let (_c, node) = start_room(&edge, &unique_room("dublin-new"), EUROPE).await;
        if node != "eu-1" {
            break node;
        }
        assert!(
            Instant::now() < deadline,
            "the edge kept placing rooms on a draining node"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(moved, "us-1", "new European rooms go to the live node");

    // The room already on the draining node continues there: a fourth caller is sent to it.
    let mut late =
        Client::connect_with_headers(&edge, &format!("/api/rooms/{eu_room}"), EUROPE).await;
    let welcome = late.join(json!({})).await;
    let node = match welcome["media"]["node"]["node_id"].as_str() {
        Some(id) => id.to_string(),
        None => sfu_node(&mut late).await,
    };
    assert_eq!(node, "eu-1", "the existing room stays on its node");
    eu_clients[0]
        .send(json!({"type": "chat", "text": "still here"}))
        .await;
    assert_eq!(late.wait_for("chat").await["text"], "still here");
}
