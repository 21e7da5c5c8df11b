//! The node reports to the edge: heartbeats with its load, and dominant-speaker changes from
//! audio levels. A stub edge on 127.0.0.1 records what arrives.

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use common::*;
use edgemeet_protocol::node::{Heartbeat, NodeEvent, NodeEvents};
use edgemeet_testsupport::node_client::{ClientOptions, TestClient};

#[derive(Default)]
struct Seen {
    heartbeats: Vec<Heartbeat>,
    events: Vec<NodeEvent>,
    auth: Vec<String>,
}

type Edge = Arc<Mutex<Seen>>;

async fn heartbeat(State(s): State<Edge>, h: HeaderMap, Json(hb): Json<Heartbeat>) {
    let mut s = s.lock().unwrap();
    s.auth
        .push(h["authorization"].to_str().unwrap().to_string());
    s.heartbeats.push(hb);
}

async fn events(State(s): State<Edge>, h: HeaderMap, Json(ev): Json<NodeEvents>) {
    let mut s = s.lock().unwrap();
    s.auth
        .push(h["authorization"].to_str().unwrap().to_string());
    s.events.extend(ev.events);
}

async fn stub_edge() -> (Edge, String) {
    let seen = Edge::default();
    let app = axum::Router::new()
        .route("/api/nodes/heartbeat", post(heartbeat))
        .route("/api/nodes/events", post(events))
        .with_state(seen.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (seen, url)
}

async fn speaker(node: &Node, who: &str, tag: u8, level: u8) -> TestClient {
    let mut c = TestClient::connect(
        &node.base,
        &tok("meet-s", who),
        tag,
        ClientOptions {
            keep_packets: false,
            audio_level: level,
            on_packet: None,
        },
    )
    .await
    .unwrap();
    c.publish(true, false, false).await.unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_and_dominant_speaker_reach_the_edge() {
    let (seen, edge_url) = stub_edge().await;
    let mut cfg = config();
    cfg.edge_url = Some(edge_url);
    cfg.heartbeat_secs = 1;
    cfg.region = "eu-test".into();
    cfg.lat = Some(48.8);
    cfg.lon = Some(2.3);
    let node = start_with(cfg).await;
    let loud = speaker(&node, "p-loud", 1, 10).await;
    let quiet = speaker(&node, "p-quiet", 2, 100).await;
    let stops = [
        loud.start_sending(30, 1, 100),
        quiet.start_sending(30, 1, 100),
    ];
    let got = eventually(Duration::from_secs(10), || {
        seen.lock().unwrap().events.iter().any(|e| {
            matches!(e, NodeEvent::DominantSpeaker { participant, room, route }
                if participant == "p-loud" && room == "meet-s" && route == "route-meet-s")
        })
    })
    .await;
    for s in &stops {
        s.store(true, Relaxed);
    }
    assert!(
        got,
        "dominant speaker reported: {:?}",
        seen.lock().unwrap().events
    );
    assert!(
        eventually(Duration::from_secs(5), || seen
            .lock()
            .unwrap()
            .heartbeats
            .iter()
            .any(|h| h.load.sessions == 2))
        .await
    );
    {
        let s = seen.lock().unwrap();
        let hb = s.heartbeats.last().unwrap();
        assert_eq!((hb.id.as_str(), hb.region.as_str()), (NODE_ID, "eu-test"));
        assert_eq!((hb.lat, hb.lon), (Some(48.8), Some(2.3)));
        assert!(hb.url.starts_with("http://127.0.0.1:"));
        assert!(s.auth.iter().all(|a| a == &format!("Bearer {SECRET}")));
        assert!(!s.events.iter().any(
        |e| matches!(e, NodeEvent::DominantSpeaker { participant, .. } if participant == "p-quiet")
    ));
    }
    node.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_edge_does_not_disturb_the_node() {
    // Nothing listens there: reports fail and are retried, the API keeps answering.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let mut cfg = config();
    cfg.edge_url = Some(dead);
    cfg.heartbeat_secs = 1;
    let node = start_with(cfg).await;
    let c = speaker(&node, "p1", 1, 10).await;
    let stop = c.start_sending(30, 1, 100);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (st, _) = http(
        reqwest::Method::GET,
        &format!("{}/healthz", node.base),
        None,
        None,
    )
    .await;
    assert_eq!(st, 200);
    stop.store(true, Relaxed);
    node.handle.shutdown().await;
}
