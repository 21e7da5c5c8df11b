//! Membership ends media: once the edge closes a participant (leave, kick), the node refuses that
//! participant's grants, for new sessions and for every call on old ones; other participants go
//! on. Sessions ids name their owner, and a room's sessions are capped by configuration.

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use common::*;
use edgemeet_protocol::node::session_belongs_to;
use edgemeet_testsupport::node_client::remote_track_id;
use reqwest::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_participants_grant_opens_nothing_any_more() {
    let node = start().await;
    let mut a = client(&node, "m1", "pa", 1).await;
    a.publish(true, true, false).await.unwrap();
    let stop = a.start_sending(30, 1, 500);
    // The kicked one: a raw client that keeps its grant.
    let kicked = client(&node, "m1", "pk", 2).await;
    kicked
        .pull(&[(a.session_id.clone(), "video".into())], None)
        .await
        .unwrap();
    let grant = kicked.token.clone();
    assert!(session_belongs_to(SECRET, &a.session_id, "m1", "pa"));
    assert!(!session_belongs_to(SECRET, &a.session_id, "m1", "pk"));

    let kicked_at = Instant::now();
    let (st, body) = http(
        Method::POST,
        &format!("{}/v1/participants/pk/close", node.base),
        Some(&tok("m1", "edge")),
        None,
    )
    .await;
    assert_eq!((st, body["closedSessions"].as_u64()), (200, Some(1)));

    // Within a second of the kick: no new session, no pull, nothing on the old session.
    let new = format!("{}/v1/sessions/new", node.base);
    let (st, body) = http(Method::POST, &new, Some(&grant), Some(b"{}".to_vec())).await;
    assert_eq!(st, 401, "{body}");
    assert!(
        body["errorDescription"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let pull = format!("{}/v1/sessions/{}/tracks/new", node.base, kicked.session_id);
    let req = serde_json::json!({"tracks": [{"location": "remote", "trackName": "video", "sessionId": a.session_id}]});
    let (st, _) = http(
        Method::POST,
        &pull,
        Some(&grant),
        Some(req.to_string().into_bytes()),
    )
    .await;
    assert_eq!(st, 401);
    let state = format!("{}/v1/sessions/{}", node.base, kicked.session_id);
    assert_eq!(http(Method::GET, &state, Some(&grant), None).await.0, 401);
    assert!(kicked_at.elapsed() < Duration::from_secs(1));
    assert!(
        node.handle
            .metrics_text()
            .contains("edgemeet_node_grants_revoked 1\n")
    );

    // The same participant id in another meeting, and the others in this one, go on.
    let elsewhere = client(&node, "m2", "pk", 3).await;
    assert!(session_belongs_to(
        SECRET,
        &elsewhere.session_id,
        "m2",
        "pk"
    ));
    let b = client(&node, "m1", "pb", 4).await;
    b.pull(&[(a.session_id.clone(), "video".into())], None)
        .await
        .unwrap();
    let vid = remote_track_id(&a.session_id, "video");
    assert!(eventually(Duration::from_secs(15), || b.packets(&vid).len() > 5).await);
    stop.store(true, Relaxed);
    node.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_sessions_are_capped_by_configuration() {
    let mut cfg = config();
    cfg.max_sessions_per_room = 2;
    let node = start_with(cfg).await;
    let new = format!("{}/v1/sessions/new", node.base);
    for p in ["p1", "p2"] {
        let (st, _) = http(Method::POST, &new, Some(&tok("m", p)), Some(b"{}".to_vec())).await;
        assert_eq!(st, 200);
    }
    let (st, body) = http(
        Method::POST,
        &new,
        Some(&tok("m", "p3")),
        Some(b"{}".to_vec()),
    )
    .await;
    assert_eq!(st, 429, "{body}");
    let (st, _) = http(
        Method::POST,
        &new,
        Some(&tok("other", "p3")),
        Some(b"{}".to_vec()),
    )
    .await;
    assert_eq!(st, 200, "another room has its own cap");
    node.handle.shutdown().await;
}
