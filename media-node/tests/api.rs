//! The control API refuses what it must (bad tokens, other rooms, malformed input) with a 4xx
//! and a JSON reason, creates nothing, and keeps serving everyone else.

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::*;
use edgemeet_testsupport::node_client::{remote_track_id, token};
use reqwest::Method;

fn url(node: &Node, path: &str) -> String {
    format!("{}{}", node.base, path)
}

fn assert_reason(st: u16, body: &serde_json::Value, want: u16, what: &str) {
    assert_eq!(st, want, "{what}: {body}");
    let code = body["errorCode"].as_str().unwrap_or_default();
    let reason = body["errorDescription"].as_str().unwrap_or_default();
    assert!(
        !code.is_empty() && !reason.is_empty(),
        "{what}: no reason in {body}"
    );
}

fn sessions_gauge(node: &Node) -> String {
    node.handle
        .metrics_text()
        .lines()
        .find(|l| l.starts_with("edgemeet_node_sessions "))
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_a_valid_token_are_refused_and_create_nothing() {
    let node = start().await;
    let new = url(&node, "/v1/sessions/new");
    let body = Some(b"{}".to_vec());
    let cases = [
        (None, "no token"),
        (Some("not-a-jwt".to_string()), "garbage"),
        (
            Some(token(
                "another-secret-of-enough-length",
                NODE_ID,
                "m",
                "p",
                60,
            )),
            "bad signature",
        ),
        (
            Some(token(SECRET, "other-node", "m", "p", 60)),
            "wrong audience",
        ),
        (Some(token(SECRET, NODE_ID, "m", "p", -120)), "expired"),
    ];
    for (t, what) in cases {
        let (st, b) = http(Method::POST, &new, t.as_deref(), body.clone()).await;
        assert_reason(st, &b, 401, what);
    }
    // An edge token opens no session.
    let (st, b) = http(Method::POST, &new, Some(&tok("m", "edge")), body.clone()).await;
    assert_reason(st, &b, 403, "edge token");
    assert_eq!(sessions_gauge(&node), "edgemeet_node_sessions 0");
    // CORS preflight answers for any origin.
    let r = reqwest::Client::new()
        .request(Method::OPTIONS, &new)
        .header("origin", "https://meet.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(
        r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    node.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_rooms_tracks_and_sessions_are_refused() {
    let node = start().await;
    let mut a = client(&node, "room-a", "pa", 1).await;
    a.publish(true, true, false).await.unwrap();
    let stop = a.start_sending(30, 1, 500);
    let intruder = client(&node, "room-b", "px", 2).await;
    // Pulling room-a's track from room-b: refused, nothing added to the intruder's session.
    let err = intruder
        .pull(&[(a.session_id.clone(), "video".into())], None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("403"), "{err}");
    let (st, state) = http(
        Method::GET,
        &url(&node, &format!("/v1/sessions/{}", intruder.session_id)),
        Some(&intruder.token),
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(state["tracks"].as_array().unwrap().len(), 0, "{state}");
    // Using room-a's session with a room-b token, or another participant's token: refused.
    let a_path = url(&node, &format!("/v1/sessions/{}", a.session_id));
    let (st, b) = http(Method::GET, &a_path, Some(&intruder.token), None).await;
    assert_reason(st, &b, 403, "other room's session");
    let (st, b) = http(Method::DELETE, &a_path, Some(&tok("room-a", "pz")), None).await;
    assert_reason(st, &b, 403, "other participant's session");
    // Participants cannot act as the edge; the edge cannot close another room.
    let (st, b) = http(
        Method::POST,
        &url(&node, "/v1/rooms/room-a/close"),
        Some(&tok("room-a", "pa")),
        None,
    )
    .await;
    assert_reason(st, &b, 403, "participant closing the room");
    let (st, b) = http(
        Method::POST,
        &url(&node, "/v1/rooms/room-a/close"),
        Some(&tok("room-b", "edge")),
        None,
    )
    .await;
    assert_reason(st, &b, 403, "edge token of another room");
    // A pull by someone of the same room works, and room-a is untouched.
    let b = client(&node, "room-a", "pb", 3).await;
    b.pull(&[(a.session_id.clone(), "video".into())], None)
        .await
        .unwrap();
    let vid = remote_track_id(&a.session_id, "video");
    assert!(eventually(Duration::from_secs(15), || b.packets(&vid).len() > 5).await);
    stop.store(true, Relaxed);
    node.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_4xx_with_a_reason_and_the_node_carries_on() {
    let node = start().await;
    let t = tok("m1", "p1");
    let new = url(&node, "/v1/sessions/new");
    let bad_sdp = serde_json::json!({"sessionDescription": {"type": "offer", "sdp": "hello"}});
    let (st, b) = http(
        Method::POST,
        &new,
        Some(&t),
        Some(bad_sdp.to_string().into()),
    )
    .await;
    assert_reason(st, &b, 400, "bad SDP");
    let half_sdp = serde_json::json!({"sessionDescription": {"type": "offer", "sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"}});
    let (st, b) = http(
        Method::POST,
        &new,
        Some(&t),
        Some(half_sdp.to_string().into()),
    )
    .await;
    assert_reason(st, &b, 400, "SDP webrtc-rs refuses");
    let (st, b) = http(Method::POST, &new, Some(&t), Some(b"{not json".to_vec())).await;
    assert_reason(st, &b, 400, "bad JSON");
    let wrong_type = serde_json::json!({"sessionDescription": {"type": 7, "sdp": []}});
    let (st, b) = http(
        Method::POST,
        &new,
        Some(&t),
        Some(wrong_type.to_string().into()),
    )
    .await;
    assert_reason(st, &b, 400, "wrong types");
    // One participant cannot open sessions without end.
    let many = tok("m-many", "p1");
    for _ in 0..4 {
        let (st, _) = http(Method::POST, &new, Some(&many), Some(b"{}".to_vec())).await;
        assert_eq!(st, 200);
    }
    let (st, b) = http(Method::POST, &new, Some(&many), Some(b"{}".to_vec())).await;
    assert_reason(st, &b, 429, "session cap");
    let edge = tok("m-many", "edge");
    let (st, _) = http(
        Method::POST,
        &url(&node, "/v1/rooms/m-many/close"),
        Some(&edge),
        None,
    )
    .await;
    assert_eq!(st, 200);
    // Session and push in one call: a refused push opens no session.
    let local = serde_json::json!([{"location": "local", "mid": "5", "trackName": "a"}]);
    let sdp = serde_json::json!({"type": "offer", "sdp": "v=0\r\n"});
    for (body, what) in [
        (serde_json::json!({"tracks": local}), "push without offer"),
        (
            serde_json::json!({"sessionDescription": sdp, "tracks": [{"location": "remote", "trackName": "v", "sessionId": "x"}]}),
            "pull in sessions/new",
        ),
        (
            serde_json::json!({"sessionDescription": sdp, "tracks": local}),
            "mid not in offer",
        ),
        (
            serde_json::json!({"sessionDescription": sdp, "tracks": []}),
            "no tracks",
        ),
    ] {
        let (st, b) = http(Method::POST, &new, Some(&t), Some(body.to_string().into())).await;
        assert_reason(st, &b, 400, what);
    }
    let huge = vec![b' '; 2 * 1024 * 1024];
    let (st, b) = http(Method::POST, &new, Some(&t), Some(huge)).await;
    assert_reason(st, &b, 413, "huge body");
    assert_eq!(sessions_gauge(&node), "edgemeet_node_sessions 0");

    let unknown = url(
        &node,
        "/v1/sessions/00000000000000000000000000000000/tracks/new",
    );
    let body = serde_json::json!({"tracks": [{"location": "remote", "trackName": "video", "sessionId": "x"}]});
    let (st, b) = http(
        Method::POST,
        &unknown,
        Some(&t),
        Some(body.to_string().into()),
    )
    .await;
    assert_reason(st, &b, 404, "unknown session");
    let (st, b) = http(Method::GET, &url(&node, "/v1/nope"), Some(&t), None).await;
    assert_reason(st, &b, 404, "unknown endpoint");

    // A real session: bad track requests against it change nothing.
    let c = client(&node, "m1", "p1", 1).await;
    let tracks = url(&node, &format!("/v1/sessions/{}/tracks/new", c.session_id));
    for (body, want, what) in [
        (serde_json::json!({"tracks": []}), 400, "no tracks"),
        (
            serde_json::json!({"tracks": [{"location": "local", "mid": "0", "trackName": "a"}]}),
            400,
            "push without offer",
        ),
        (
            serde_json::json!({"tracks": [{"location": "remote", "trackName": "bad name!", "sessionId": "x"}]}),
            400,
            "bad track name",
        ),
        (
            serde_json::json!({"tracks": [{"location": "remote", "trackName": "v"}]}),
            400,
            "pull without session id",
        ),
        (
            serde_json::json!({"sessionDescription": {"type": "offer", "sdp": "v=0\r\n"}, "tracks": [{"location": "local", "mid": "5", "trackName": "a"}]}),
            400,
            "mid not in offer",
        ),
    ] {
        let (st, b) = http(
            Method::POST,
            &tracks,
            Some(&c.token),
            Some(body.to_string().into()),
        )
        .await;
        assert_reason(st, &b, want, what);
    }
    let reneg = url(&node, &format!("/v1/sessions/{}/renegotiate", c.session_id));
    let answer = serde_json::json!({"sessionDescription": {"type": "answer", "sdp": "v=0\r\n"}});
    let (st, b) = http(
        Method::PUT,
        &reneg,
        Some(&c.token),
        Some(answer.to_string().into()),
    )
    .await;
    assert_reason(st, &b, 409, "answer without an offer");
    let (st, state) = http(
        Method::GET,
        &url(&node, &format!("/v1/sessions/{}", c.session_id)),
        Some(&c.token),
        None,
    )
    .await;
    assert_eq!(
        (st, state["tracks"].as_array().map(Vec::len)),
        (200, Some(0))
    );

    // The node still works for a real exchange.
    let mut a = client(&node, "m1", "p2", 2).await;
    a.publish(true, false, false).await.unwrap();
    let stop = a.start_sending(30, 1, 100);
    c.pull(&[(a.session_id.clone(), "audio".into())], None)
        .await
        .unwrap();
    let aud = remote_track_id(&a.session_id, "audio");
    assert!(eventually(Duration::from_secs(15), || c.packets(&aud).len() > 10).await);
    stop.store(true, Relaxed);
    let (st, h) = http(Method::GET, &url(&node, "/healthz"), None, None).await;
    assert_eq!((st, h["status"].as_str()), (200, Some("ok")));
    node.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_session_that_sends_no_media_is_kept() {
    let mut cfg = config();
    cfg.idle_timeout_secs = 1;
    let node = start_with(cfg).await;
    // Connected, tracks pushed, nothing sent: a P2P pair's standby session.
    let mut c = unopened(&node, "m-standby", "p1", 1).await;
    c.publish(true, true, false).await.expect("push");
    c.wait_connected(Duration::from_secs(10))
        .await
        .expect("connected");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let path = url(&node, &format!("/v1/sessions/{}", c.session_id));
    let (st, state) = http(Method::GET, &path, Some(&c.token), None).await;
    assert_eq!(st, 200, "kept past the idle timeout: {state}");
    assert!(
        node.handle
            .metrics_text()
            .contains("edgemeet_node_sessions_reaped_total 0")
    );
    node.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sessions_are_reaped_and_draining_refuses_new_rooms() {
    let mut cfg = config();
    cfg.idle_timeout_secs = 1;
    let node = start_with(cfg).await;
    let c = client(&node, "m1", "p1", 1).await;
    let path = url(&node, &format!("/v1/sessions/{}", c.session_id));
    let reaped = eventually(Duration::from_secs(6), || {
        node.handle
            .metrics_text()
            .contains("edgemeet_node_sessions 0")
    })
    .await;
    assert!(reaped, "idle session reaped");
    let (st, _) = http(Method::GET, &path, Some(&c.token), None).await;
    assert_eq!(st, 404);

    // Drain: the operator switch needs the node secret; then new rooms are refused.
    let drain = url(&node, "/v1/drain");
    let on = Some(br#"{"draining": true}"#.to_vec());
    let (st, _) = http(Method::POST, &drain, Some("wrong"), on.clone()).await;
    assert_eq!(st, 401);
    let (st, _) = http(Method::POST, &drain, Some(SECRET), on).await;
    assert_eq!(st, 200);
    assert!(node.handle.is_draining());
    let (st, b) = http(
        Method::POST,
        &url(&node, "/v1/sessions/new"),
        Some(&tok("m2", "p1")),
        Some(b"{}".to_vec()),
    )
    .await;
    assert_reason(st, &b, 503, "draining");
    node.handle.shutdown().await;
}

/// (ip, port) of every host candidate in an SDP.
fn candidates(sdp: &str) -> Vec<(String, u16)> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.get(4)?.to_string(), f.get(5)?.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_at_session_creation_is_answered_on_one_port_of_the_range_and_public_ip() {
    let mut cfg = config();
    cfg.udp_port_min = 42710;
    cfg.udp_port_max = 42713;
    cfg.public_ip = Some("127.0.0.5".parse().unwrap());
    let node = start_with(cfg).await;
    let mut ports = Vec::new();
    for i in 0..2 {
        let c = client(&node, "m1", &format!("p{i}"), 1).await;
        c.pc.add_transceiver_from_kind(
            rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Audio,
            Some(rtc::rtp_transceiver::RTCRtpTransceiverInit {
                direction: rtc::rtp_transceiver::RTCRtpTransceiverDirection::Recvonly,
                streams: vec![],
                send_encodings: vec![],
            }),
        )
        .await
        .unwrap();
        let offer = c.pc.create_offer(None).await.unwrap();
        c.pc.set_local_description(offer).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sdp = c.pc.local_description().await.unwrap().sdp;
        let body = serde_json::json!({"sessionDescription": {"type": "offer", "sdp": sdp}});
        let (st, resp) = http(
            Method::POST,
            &url(&node, "/v1/sessions/new"),
            Some(&c.token),
            Some(body.to_string().into()),
        )
        .await;
        assert_eq!(st, 200, "{resp}");
        assert_eq!(resp["sessionDescription"]["type"], "answer");
        let cands = candidates(resp["sessionDescription"]["sdp"].as_str().unwrap());
        assert!(!cands.is_empty(), "{resp}");
        for (ip, port) in cands {
            assert_eq!(ip, "127.0.0.5", "announced public IP");
            assert!((42710..=42713).contains(&port), "port {port} in range");
            ports.push(port);
        }
    }
    ports.dedup();
    // The media loop owns one socket: every session on one port, of the range.
    assert_eq!(ports.len(), 1, "one port for every session: {ports:?}");
    node.handle.shutdown().await;
}
