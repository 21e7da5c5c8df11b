//! Hardening rules, on every host: frames and sockets, origins, sessions that are one's own, a
//! token's identity, avatars, password guessing told to moderators.

use std::time::Duration;

use edgemeet_protocol::node::session_id;
use edgemeet_tests::raw_ws::{Frame, OP_TEXT, RawWs};
use edgemeet_tests::tokens::{self, ACME_HS256};
use edgemeet_tests::{Client, Edge, http, unique_room};
use serde_json::{Value, json};

/// `tests/fixtures/edge.toml`.
const NODE_SECRET: &str = "conformance-node-secret-0123456789abcdef";
const MAX_FRAME_BYTES: usize = 64 * 1024;
const JOIN_TIMEOUT: Duration = Duration::from_millis(3000);
const ROOM_SOCKETS_PER_ADDRESS: usize = 20;

/// A raw socket in `room`, joined (its welcome read).
async fn raw_joined(edge: &Edge, room: &str) -> RawWs {
    let mut ws = RawWs::connect(edge, &format!("/api/rooms/{room}"), &[], None)
        .await
        .expect("upgraded");
    ws.send_text(r#"{"v":1,"type":"join"}"#).await;
    loop {
        match ws.next_frame(Duration::from_secs(5)).await {
            Some(Frame::Text(t)) if t.contains("\"welcome\"") => return ws,
            Some(Frame::Text(_)) => {}
            other => panic!("no welcome: {other:?}"),
        }
    }
}

#[tokio::test]
async fn bad_frames_close_with_their_code_and_the_connection_ends() {
    let edge = Edge::start();
    let room = unique_room("frames");
    let mut a = Client::room(&edge, &room).await;
    a.join(json!({})).await;

    // Larger than the frame limit: 1009, then the TCP connection is closed; the room goes on.
    let mut big = raw_joined(&edge, &room).await;
    a.wait_for("participant_joined").await;
    let chat = json!({"v": 1, "type": "chat", "text": "x".repeat(MAX_FRAME_BYTES)}).to_string();
    big.send_text(&chat).await;
    assert_eq!(big.expect_close(Duration::from_secs(5)).await.0, 1009);
    assert!(
        big.answer_close_and_see_it_end(1009, Duration::from_secs(5))
            .await
    );
    assert_eq!(
        a.wait_for("participant_left").await["reason"],
        "disconnected"
    );

    // Text that is not UTF-8: 1007 where the edge sees the frame's bytes (the native host). On
    // Cloudflare the runtime decodes text frames before the Worker sees them, replacing invalid
    // bytes with U+FFFD: what reaches the room is valid text.
    let mut bad = raw_joined(&edge, &room).await;
    a.wait_for("participant_joined").await;
    bad.send_frame(
        OP_TEXT,
        b"{\"v\":1,\"type\":\"chat\",\"text\":\"\xff\xfe\"}",
    )
    .await;
    if edge.is_local_native() {
        assert_eq!(bad.expect_close(Duration::from_secs(5)).await.0, 1007);
        assert!(
            bad.answer_close_and_see_it_end(1007, Duration::from_secs(5))
                .await
        );
        assert_eq!(
            a.wait_for("participant_left").await["reason"],
            "disconnected"
        );
    } else {
        assert_eq!(a.wait_for("chat").await["text"], "\u{fffd}\u{fffd}");
        bad.send_close(1000).await;
        a.wait_for("participant_left").await;
    }

    // A close from the page is answered, and the connection ends.
    let mut leaving = raw_joined(&edge, &room).await;
    leaving.send_close(1000).await;
    let (code, _) = leaving.expect_close(Duration::from_secs(5)).await;
    assert!(code == 1000 || code == 1005, "answered with {code}");
    assert!(leaving.closed_by_server(Duration::from_secs(5)).await);

    // Alone in its room, an oversized frame is still 1009 (not "too slow").
    let mut alone = raw_joined(&edge, &unique_room("alone")).await;
    alone.send_text(&chat).await;
    assert_eq!(alone.expect_close(Duration::from_secs(5)).await.0, 1009);
    assert!(
        alone
            .answer_close_and_see_it_end(1009, Duration::from_secs(5))
            .await
    );

    a.send(json!({"type": "chat", "text": "still here"})).await;
    assert_eq!(a.wait_for("chat").await["text"], "still here");
}

#[tokio::test]
async fn a_socket_that_does_not_join_in_time_is_closed() {
    let edge = Edge::start();
    let mut idle = Client::room(&edge, &unique_room("idle")).await;
    let started = std::time::Instant::now();
    let (code, _) = idle.expect_closed().await;
    assert_eq!(code, 1008);
    let took = started.elapsed();
    assert!(
        took >= JOIN_TIMEOUT - Duration::from_millis(300) && took < JOIN_TIMEOUT * 2,
        "closed after {took:?}"
    );
}

#[tokio::test]
async fn one_address_holds_a_limited_number_of_sockets_in_a_room() {
    let edge = Edge::start();
    let room = unique_room("many");
    let mut held = Vec::new();
    for _ in 0..ROOM_SOCKETS_PER_ADDRESS {
        let mut c = Client::room(&edge, &room).await;
        c.join(json!({})).await;
        held.push(c);
    }
    let mut over = Client::room(&edge, &room).await;
    let (code, reason) = over.expect_closed().await;
    assert_eq!(code, 1008, "{reason}");
    // Another room is another count.
    let mut elsewhere = Client::room(&edge, &unique_room("other")).await;
    elsewhere.join(json!({})).await;
    for c in held {
        c.close().await;
    }
}

#[tokio::test]
async fn room_sockets_only_from_the_edges_own_pages() {
    let edge = Edge::start();
    let path = format!("/api/rooms/{}", unique_room("origin"));
    let refused = RawWs::connect(&edge, &path, &[("Origin", "https://evil.example")], None).await;
    assert_eq!(refused.err().map(|r| r.status), Some(403));
    let own = edge.base.clone();
    let mut ok = RawWs::connect(&edge, &path, &[("Origin", &own)], None)
        .await
        .expect("the edge's own page may connect");
    ok.send_text(r#"{"v":1,"type":"ping"}"#).await;
    assert!(matches!(
        ok.next_frame(Duration::from_secs(5)).await,
        Some(Frame::Text(t)) if t.contains("pong")
    ));
}

/// A media node the room can be given where the host has none of its own (the Worker under
/// workerd): a heartbeat with the node secret. Far away and busy, so a native edge's embedded
/// node stays the better choice. Nothing listens at its address: the edge's calls to it (closing
/// sessions at a leave) fail at once, as for a node that went away, and the edge signs its grants.
async fn a_node_for_rooms(edge: &Edge) {
    let hb = json!({"id": "conformance-far-node", "region": "oc-sydney", "url": "http://127.0.0.1:9",
        "lat": -33.87, "lon": 151.21, "load": {"sessions": 500, "tracks": 0, "bitrate_bps": 0, "cpu": 0.9}});
    let res = http::request(
        &edge.host_port(),
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

#[tokio::test]
async fn a_participant_announces_only_its_own_node_session() {
    let edge = Edge::start();
    a_node_for_rooms(&edge).await;
    let room = unique_room("own-session");
    let mut people = Vec::new();
    for _ in 0..3 {
        let mut c = Client::room(&edge, &room).await;
        c.join(json!({})).await;
        people.push(c);
    }
    let meeting = {
        let c = &mut people[2];
        c.node_grant().await;
        let mut probe = Client::room(&edge, &room).await;
        let w = probe.join(json!({})).await;
        w["meeting_id"].as_str().unwrap().to_string()
    };
    let (a, b) = (people[0].id().to_string(), people[1].id().to_string());
    let tracks = json!([{"name": "video", "kind": "video", "source": "camera"}]);
    let of_a = session_id(NODE_SECRET, &meeting, &a, [3; 16]);
    people[1]
        .send(json!({"type": "tracks", "session_id": of_a, "tracks": tracks}))
        .await;
    assert_eq!(
        people[1].wait_for("error").await["code"],
        "not_your_session"
    );
    let of_b = session_id(NODE_SECRET, &meeting, &b, [4; 16]);
    people[1]
        .send(json!({"type": "tracks", "session_id": of_b, "tracks": tracks}))
        .await;
    let announced = people[0].wait_for("tracks").await;
    assert_eq!(
        (
            announced["participant"].as_str(),
            announced["session_id"].as_str()
        ),
        (Some(b.as_str()), Some(of_b.as_str()))
    );
}

#[tokio::test]
async fn a_tokens_identity_stays_through_profile_updates() {
    let edge = Edge::start();
    let room = unique_room("identity");
    let mut m = Client::tenant_room(&edge, "acme", &room).await;
    m.join(json!({"token": tokens::acme_moderator(&room)}))
        .await;
    m.send(json!({"type": "update_profile", "profile": {"name": "Mallory", "email": "m@evil.example"}}))
        .await;
    let updated = m.wait_for("participant_updated").await;
    assert_eq!(updated["participant"]["name"], "Token User");
    assert_eq!(updated["participant"]["email"], "user@example.org");
    // Without a token, a participant still names itself.
    let mut open = Client::room(&edge, &room).await;
    open.join(json!({"profile": {"name": "Ada"}})).await;
    open.send(json!({"type": "update_profile", "profile": {"name": "Ada L."}}))
        .await;
    assert_eq!(
        open.wait_for("participant_updated").await["participant"]["name"],
        "Ada L."
    );
    let _ = ACME_HS256;
}

#[tokio::test]
async fn avatars_are_not_shown_unless_the_operator_allows_their_host() {
    let edge = Edge::start();
    let room = unique_room("avatar");
    let mut a = Client::room(&edge, &room).await;
    let w = a
        .join(json!({"profile": {"name": "Ada", "avatar": "https://tracker.example/ada.png"}}))
        .await;
    assert_eq!(w["participants"][0]["avatar"], Value::Null);
    assert_eq!(w["participants"][0]["name"], "Ada");
    let page = http::get(&edge.host_port(), &format!("/{room}")).await;
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("img-src 'self' data: blob:;"),
        "no https: images: {csp}"
    );
}

#[tokio::test]
async fn moderators_hear_that_someone_guesses_the_password() {
    let edge = Edge::start();
    let room = unique_room("guessing");
    let mut a = Client::room(&edge, &room).await;
    a.join(json!({})).await;
    a.send(json!({"type": "set_password", "password": "correct horse"}))
        .await;
    a.wait_for("room_locked").await;
    for i in 0..3 {
        let mut g = Client::room(&edge, &room).await;
        let answer = g.try_join(json!({"password": format!("guess-{i}")})).await;
        assert_eq!(answer["code"], "password_wrong");
    }
    let told = a.wait_for("password_guessing").await;
    assert_eq!(
        (
            told["wrong_guesses"].as_u64(),
            told["addresses"].as_u64(),
            told["limited"].as_bool()
        ),
        (Some(3), Some(1), Some(false)),
        "{told}"
    );
}
