//! The protocol conformance suite. It runs unchanged against any edge: set `EDGEMEET_URL` to test a
//! running host (the Worker under workerd), or leave it unset to start the native server.
//! The host must be configured like `tests/fixtures/edge.toml`.

#[path = "conformance/e2ee_keys.rs"]
mod e2ee_keys;
#[path = "conformance/failover.rs"]
mod failover;
#[path = "conformance/hardening.rs"]
mod hardening;
#[path = "conformance/lobby.rs"]
mod lobby;
#[path = "conformance/recovery.rs"]
mod recovery;
#[path = "conformance/surface.rs"]
mod surface;

use std::time::Duration;

use edgemeet_tests::tokens::{self, ACME_HS256};
use edgemeet_tests::{Client, Edge, http, unique_room};
use serde_json::{Value, json};

#[tokio::test]
async fn join_leave_and_rejoin_starts_a_fresh_meeting() {
    let edge = Edge::start();
    let room = unique_room("fresh");
    let mut a = Client::room(&edge, &room).await;
    let w = a.join(json!({"profile": {"name": "Ada"}})).await;
    assert_eq!(w["participants"].as_array().unwrap().len(), 1);
    assert_eq!(w["moderator"], true, "open rooms: everyone moderates");
    let first_meeting = w["meeting_id"].as_str().unwrap().to_string();
    assert!(
        first_meeting.len() >= 32,
        "meeting ids are long random strings"
    );

    let mut b = Client::room(&edge, &room).await;
    b.join(json!({})).await;
    a.wait_for("participant_joined").await;
    a.send(json!({"type": "chat", "text": "before"})).await;
    a.send(json!({"type": "set_password", "password": "pw-1"}))
        .await;
    b.wait_for("room_locked").await;
    b.send(json!({"type": "leave"})).await;
    assert_eq!(b.expect_closed().await.0, 1000);
    a.send(json!({"type": "leave"})).await;
    a.expect_closed().await;

    let mut c = Client::room(&edge, &room).await;
    let w = c.join(json!({})).await;
    assert_ne!(
        w["meeting_id"], first_meeting,
        "a new meeting, not the old one"
    );
    assert_eq!(w["locked"], false, "the old password is gone");
    assert_eq!(w["participants"].as_array().unwrap().len(), 1);
    c.send(json!({"type": "speaker_stats"})).await;
    let stats = c.wait_for("speaker_stats").await;
    assert_eq!(
        stats["stats"][0]["speaking_ms"], 0,
        "no stats from the old meeting: {stats}"
    );
    c.expect_silence(200).await;
}

#[tokio::test]
async fn roster_and_chat_reach_the_right_people() {
    let edge = Edge::start();
    let room = unique_room("chat");
    let mut a = Client::room(&edge, &room).await;
    a.join(json!({"profile": {"name": "Ada", "email": "ada@example.org"}}))
        .await;
    let mut b = Client::room(&edge, &room).await;
    let wb = b.join(json!({"profile": {"name": "Bob"}})).await;
    let roster: Vec<&str> = wb["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(roster, ["Ada", "Bob"]);
    let joined = a.wait_for("participant_joined").await;
    assert_eq!(joined["participant"]["name"], "Bob");
    let mut c = Client::room(&edge, &room).await;
    c.join(json!({})).await;
    a.wait_for("participant_joined").await;
    b.wait_for("participant_joined").await;

    a.send(json!({"type": "chat", "text": "hello all"})).await;
    for client in [&mut a, &mut b, &mut c] {
        let msg = client.wait_for("chat").await;
        assert_eq!(
            (msg["text"].as_str(), msg.get("to")),
            (Some("hello all"), None)
        );
    }
    let bob = b.id().to_string();
    a.send(json!({"type": "chat", "text": "psst", "to": bob}))
        .await;
    assert_eq!(b.wait_for("chat").await["text"], "psst");
    assert_eq!(
        a.wait_for("chat").await["to"],
        json!(bob),
        "the sender sees its private message"
    );
    c.send(json!({"type": "ping"})).await;
    loop {
        let next = c.recv().await;
        assert_ne!(
            next["type"], "chat",
            "the third participant got nothing private: {next}"
        );
        if next["type"] == "pong" {
            break;
        }
    }

    a.send(json!({"type": "chat", "text": "x", "to": "nobody"}))
        .await;
    a.expect_error("unknown_participant").await;
    c.send(json!({"type": "leave"})).await;
    let left = a.wait_for("participant_left").await;
    assert_eq!(left["reason"], "left");
}

#[tokio::test]
async fn moderation_in_open_rooms_mute_mute_all_and_kick() {
    let edge = Edge::start();
    let room = unique_room("mod-open");
    let mut a = Client::room(&edge, &room).await;
    a.join(json!({})).await;
    let mut b = Client::room(&edge, &room).await;
    b.join(json!({})).await;
    let mut c = Client::room(&edge, &room).await;
    c.join(json!({})).await;
    let (bid, cid) = (b.id().to_string(), c.id().to_string());

    a.send(json!({"type": "mute", "target": bid, "kind": "audio"}))
        .await;
    let muted = b.wait_for("muted").await;
    assert_eq!(
        (muted["kind"].as_str(), muted["by"].as_str()),
        (Some("audio"), a.id.as_deref())
    );
    a.send(json!({"type": "mute_all", "kind": "video"})).await;
    assert_eq!(b.wait_for("muted").await["kind"], "video");
    assert_eq!(c.wait_for("muted").await["kind"], "video");

    a.send(json!({"type": "kick", "target": cid})).await;
    assert_eq!(c.wait_for("kicked").await["by"], json!(a.id()));
    assert_eq!(c.expect_closed().await.0, 4001);
    let left = b.wait_for("participant_left").await;
    assert_eq!(
        (left["id"].as_str(), left["reason"].as_str()),
        (Some(cid.as_str()), Some("kicked"))
    );
}

#[tokio::test]
async fn moderation_in_jwt_rooms_follows_the_token() {
    let edge = Edge::start();
    let room = unique_room("mod-jwt");
    let mut m = Client::tenant_room(&edge, "acme", &room).await;
    let w = m
        .join(json!({"token": tokens::acme_moderator(&room)}))
        .await;
    assert_eq!(w["moderator"], true);
    assert_eq!(w["features"], json!(["recording"]));
    assert_eq!(
        w["participants"][0]["name"], "Token User",
        "the token's name wins"
    );
    let mut u = Client::tenant_room(&edge, "acme", &room).await;
    let w = u
        .join(json!({"token": tokens::hs256(&tokens::claims("acme", &room, false), ACME_HS256)}))
        .await;
    assert_eq!(w["moderator"], false);
    let mid = m.id().to_string();

    for action in [
        json!({"type": "mute", "target": mid, "kind": "audio"}),
        json!({"type": "mute_all", "kind": "audio"}),
        json!({"type": "kick", "target": mid}),
        json!({"type": "set_password", "password": "x"}),
    ] {
        u.send(action).await;
        let err = u.expect_error("not_moderator").await;
        assert!(err["request"].is_string());
    }
    m.wait_for("participant_joined").await;
    m.wait_for("media_mode").await;
    m.expect_silence(200).await;
    let uid = u.id().to_string();
    m.send(json!({"type": "kick", "target": uid})).await;
    assert_eq!(u.wait_for("kicked").await["type"], "kicked");

    let mut anon = Client::tenant_room(&edge, "acme", &room).await;
    assert_eq!(anon.try_join(json!({})).await["code"], "token_required");
}

#[tokio::test]
async fn jwt_host_guests_wait_until_a_moderator_arrives() {
    let edge = Edge::start();
    let room = unique_room("host");
    let mut guest = Client::tenant_room(&edge, "host", &room).await;
    let answer = guest.try_join(json!({"profile": {"name": "Guest"}})).await;
    assert_eq!(
        (answer["type"].as_str(), answer["reason"].as_str()),
        (Some("waiting"), Some("host_absent"))
    );
    guest
        .send(json!({"type": "chat", "text": "let me in"}))
        .await;
    guest.expect_error("not_joined").await;

    let mut host = Client::tenant_room(&edge, "host", &room).await;
    let w = host
        .join(json!({"query": 1, "token": tokens::host_moderator(&room)}))
        .await;
    assert_eq!(w["moderator"], true);
    assert_eq!(
        w["participants"].as_array().unwrap().len(),
        1,
        "an early guest is not let in because the host came: {w}"
    );
    // The early guest knocks like everyone else: the host sees the name and decides.
    let lobby = host.wait_for("lobby").await;
    assert_eq!(lobby["knocking"][0]["name"], "Guest", "{lobby}");
    let now = guest.recv().await;
    assert_eq!(
        (now["type"].as_str(), now["reason"].as_str()),
        (Some("waiting"), Some("lobby"))
    );
    let knock = lobby["knocking"][0]["id"].clone();
    host.send(json!({"type": "admit", "target": knock})).await;
    let admitted = guest.wait_for_welcome().await;
    assert_eq!(admitted["moderator"], false);
    assert_eq!(admitted["participants"].as_array().unwrap().len(), 2);
    assert_eq!(
        host.wait_for("participant_joined").await["participant"]["name"],
        "Guest"
    );

    // With the host present, a new guest comes straight in; the token may also ride in the URL.
    let mut second = Client::tenant_room(&edge, "host", &room).await;
    assert_eq!(second.try_join(json!({})).await["type"], "welcome");
    let q = format!(
        "/api/rooms/host/{room}?jwt={}",
        tokens::host_moderator(&room)
    );
    let mut by_query = Client::connect(&edge, &q).await;
    assert_eq!(by_query.join(json!({})).await["moderator"], true);
}

#[tokio::test]
async fn a_locked_room_asks_for_the_password_and_limits_guessing() {
    let edge = Edge::start();
    let room = unique_room("locked");
    let mut a = Client::room(&edge, &room).await;
    a.join(json!({})).await;
    a.send(json!({"type": "set_password", "password": "correct horse"}))
        .await;
    assert_eq!(a.wait_for("room_locked").await["locked"], true);

    let mut b = Client::room(&edge, &room).await;
    assert_eq!(b.try_join(json!({})).await["code"], "password_required");
    for _ in 0..3 {
        assert_eq!(
            b.try_join(json!({"password": "wrong"})).await["code"],
            "password_wrong"
        );
    }
    assert_eq!(
        b.try_join(json!({"password": "correct horse"})).await["code"],
        "password_rate_limited"
    );
    // Another socket from the same address is limited too.
    let mut c = Client::room(&edge, &room).await;
    assert_eq!(
        c.try_join(json!({"password": "correct horse"})).await["code"],
        "password_rate_limited"
    );
    // The moderator hears of the guessing, and of nothing else.
    assert_eq!(a.recv().await["type"], "password_guessing");
    a.expect_silence(200).await;

    a.send(json!({"type": "set_password", "password": null}))
        .await;
    assert_eq!(a.wait_for("room_locked").await["locked"], false);
    let mut d = Client::room(&edge, &room).await;
    assert_eq!(d.join(json!({})).await["locked"], false);
}

#[tokio::test]
async fn two_talk_p2p_through_the_edge_and_three_move_to_the_media_node() {
    let edge = Edge::start();
    let room = unique_room("media");
    let mut a = Client::room(&edge, &room).await;
    assert_eq!(a.join(json!({})).await["media"]["mode"], "none");
    let mut b = Client::room(&edge, &room).await;
    let wb = b.join(json!({})).await;
    let without_standby = |mut m: serde_json::Value| {
        m.as_object_mut().map(|o| o.remove("standby"));
        m
    };
    assert_eq!(
        without_standby(wb["media"].clone()),
        json!({"mode": "p2p", "peer": a.id(), "initiator": true})
    );
    let ma = a.wait_for("media_mode").await;
    assert_eq!(
        without_standby(ma["media"].clone()),
        json!({"mode": "p2p", "peer": b.id(), "initiator": false})
    );
    if edge.is_local_native() {
        // The pair gets the room's node (the fixture's embedded one) as a standby, each with its
        // own grant.
        let (aid, bid) = (a.id().to_string(), b.id().to_string());
        let wb = json!({"media": wb["media"].clone()});
        for (who, peer, first) in [(&mut a, bid, ma.clone()), (&mut b, aid, wb)] {
            let mut m = first;
            while m["media"]["standby"].is_null() {
                m = who.wait_for("media_mode").await;
            }
            assert_eq!(m["media"]["mode"], "p2p");
            assert_eq!(m["media"]["peer"], peer.as_str());
            assert_eq!(m["media"]["standby"]["node_id"], "node-local");
            assert_eq!(
                m["media"]["standby"]["token"]
                    .as_str()
                    .map(|t| t.split('.').count()),
                Some(3)
            );
        }
    }

    let offer = json!({"sdp": {"type": "offer", "sdp": "v=0\r\n"}});
    let aid = a.id().to_string();
    b.send(json!({"type": "signal", "to": aid, "payload": offer}))
        .await;
    let got = a.wait_for("signal").await;
    assert_eq!(
        (got["from"].as_str(), &got["payload"]),
        (b.id.as_deref(), &offer)
    );

    let mut c = Client::room(&edge, &room).await;
    let wc = c.join(json!({})).await;
    assert_eq!(wc["media"]["mode"], "sfu");
    a.wait_for_mode("sfu").await;
    b.wait_for_mode("sfu").await;
    // P2P signals stop once the room is on the media node.
    b.send(json!({"type": "signal", "to": aid, "payload": offer}))
        .await;
    b.wait_for("error").await;

    c.send(json!({"type": "leave"})).await;
    // Back to P2P after the configured delay (1 s in the fixture), not at once.
    let msg = a.wait_for("participant_left").await;
    assert_eq!(msg["reason"], "left");
    let started = std::time::Instant::now();
    let back = a.wait_for("media_mode").await;
    assert_eq!(back["media"]["mode"], "p2p");
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "returned after {:?}",
        started.elapsed()
    );
    assert_eq!(b.wait_for("media_mode").await["media"]["mode"], "p2p");
}

/// Every refused token leaves the room as it was: the moderator inside hears nothing.
#[tokio::test]
async fn forged_and_wrong_tokens_are_refused_with_their_code() {
    let edge = Edge::start();
    let room = unique_room("jwt-neg");
    let mut m = Client::tenant_room(&edge, "acme", &room).await;
    m.join(json!({"token": tokens::acme_moderator(&room)}))
        .await;

    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = tokens::claims("acme", &room, true);
        f(&mut c);
        tokens::hs256(&c, ACME_HS256)
    };
    let now = tokens::now_s();
    let public_pem =
        std::fs::read(edgemeet_tests::repo_root().join("tests/fixtures/rs256-public.pem")).unwrap();
    let header_none = tokens::b64(br#"{"alg":"none","typ":"JWT"}"#);
    let body = tokens::b64(tokens::claims("acme", &room, true).to_string().as_bytes());
    let valid = tokens::acme_moderator(&room);
    let mut tampered = valid.clone();
    tampered.replace_range(valid.len() - 4.., "AAAA");

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            with(&|c| c["exp"] = json!(now - 3600)),
            "token_expired",
        ),
        (
            "nbf in the future",
            with(&|c| c["nbf"] = json!(now + 3600)),
            "token_not_yet_valid",
        ),
        (
            "issued in the future",
            with(&|c| c["iat"] = json!(now + 3600)),
            "token_not_yet_valid",
        ),
        (
            "wrong aud",
            with(&|c| c["aud"] = json!("someone-else")),
            "token_wrong_audience",
        ),
        (
            "wrong iss",
            with(&|c| c["iss"] = json!("mallory")),
            "token_wrong_issuer",
        ),
        (
            "wrong sub",
            with(&|c| c["sub"] = json!("other-tenant")),
            "token_wrong_tenant",
        ),
        (
            "room mismatch",
            with(&|c| c["room"] = json!("another-room")),
            "token_wrong_room",
        ),
        (
            "alg none",
            format!("{header_none}.{body}."),
            "token_alg_not_allowed",
        ),
        ("bad signature", tampered, "token_bad_signature"),
        (
            "wrong secret",
            tokens::hs256(
                &tokens::claims("acme", &room, true),
                "not-the-secret-0123456789abcdef0123",
            ),
            "token_bad_signature",
        ),
        (
            "RS256 from another key",
            tokens::rs256_with(
                &tokens::claims("acme", &room, true),
                Some("k1"),
                "rs256-other-private.pem",
            ),
            "token_bad_signature",
        ),
        (
            "RS256 unknown kid",
            tokens::rs256(&tokens::claims("acme", &room, true), Some("k9")),
            "token_unknown_key",
        ),
        (
            "missing claims",
            tokens::hs256(&json!({"iss": "acme-backend"}), ACME_HS256),
            "token_invalid",
        ),
        ("garbage", "not.a.jwt".into(), "token_invalid"),
        ("empty", String::new(), "token_invalid"),
    ];
    for (what, token, code) in &cases {
        let mut c = Client::tenant_room(&edge, "acme", &room).await;
        let answer = c.try_join(json!({"token": token})).await;
        assert_eq!(answer["code"], *code, "{what}: {answer}");
    }
    // HS256 signed with the RS256 public key, against a tenant that only accepts RS256.
    let confused = tokens::hs256(
        &tokens::claims("rsonly", &room, true),
        std::str::from_utf8(&public_pem).unwrap(),
    );
    let mut c = Client::tenant_room(&edge, "rsonly", &room).await;
    assert_eq!(
        c.try_join(json!({"token": confused})).await["code"],
        "token_alg_not_allowed"
    );
    // ...while a real RS256 token with the kid works there.
    let mut ok = Client::tenant_room(&edge, "rsonly", &room).await;
    ok.join(json!({"token": tokens::rs256(&tokens::claims("rsonly", &room, true), Some("k1"))}))
        .await;

    m.expect_silence(300).await;
    m.send(json!({"type": "speaker_stats"})).await;
    let stats = m.wait_for("speaker_stats").await;
    assert_eq!(
        stats["stats"].as_array().unwrap().len(),
        1,
        "nobody got in: {stats}"
    );
}

#[tokio::test]
async fn bad_input_gets_an_error_and_changes_nothing() {
    let edge = Edge::start();
    let room = unique_room("bad");
    let mut a = Client::room(&edge, &room).await;
    a.join(json!({})).await;
    let mut b = Client::room(&edge, &room).await;
    b.join(json!({})).await;
    a.wait_for("participant_joined").await;
    a.wait_for("media_mode").await;

    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "bad_json"),
        ("[1,2]".into(), "not_an_object"),
        (json!({"v": 1, "type": "teleport"}).to_string(), "unknown_type"),
        (json!({"v": 99, "type": "ping"}).to_string(), "unsupported_version"),
        (json!({"type": "ping"}).to_string(), "unsupported_version"),
        (json!({"v": 1, "type": "chat", "text": 42}).to_string(), "invalid_message"),
        (json!({"v": 1, "type": "mute", "target": [], "kind": "audio"}).to_string(), "invalid_message"),
        (json!({"v": 1, "type": "chat", "text": "x".repeat(20_000)}).to_string(), "too_large"),
        (json!({"v": 1, "type": "chat", "text": "y".repeat(5_000)}).to_string(), "chat_too_long"),
        (json!({"v": 1, "type": "update_profile", "profile": {"avatar": "http://insecure.example/a.png"}}).to_string(), "invalid_profile"),
        (json!({"v": 1, "type": "join"}).to_string(), "already_joined"),
    ];
    for (text, code) in &cases {
        b.send_raw(text).await;
        b.expect_error(code).await;
    }
    b.send_binary(vec![1, 2, 3]).await;
    b.expect_error("binary_not_supported").await;
    a.expect_silence(300).await;

    // Still a working room.
    b.send(json!({"type": "chat", "text": "still here"})).await;
    assert_eq!(a.wait_for("chat").await["text"], "still here");

    // A flood closes the flooder with a reason; the other participant only sees it leave.
    let mut f = Client::room(&edge, &room).await;
    f.join(json!({})).await;
    a.wait_for("participant_joined").await;
    for _ in 0..400 {
        f.send(json!({"type": "ping"})).await;
    }
    let (code, reason) = f.expect_closed().await;
    assert_eq!((code, reason.as_str()), (1008, "message flood"));
    let left = a.wait_for("participant_left").await;
    assert_eq!(left["reason"], "disconnected");
    b.wait_for("participant_left").await;
    b.send(json!({"type": "chat", "text": "after the flood"}))
        .await;
    assert_eq!(a.wait_for("chat").await["text"], "after the flood");
}

#[tokio::test]
async fn invalid_room_names_are_reported_on_the_socket() {
    let edge = Edge::start();
    let mut c = Client::connect(&edge, "/api/rooms/.hidden").await;
    let msg = c.recv().await;
    assert_eq!(msg["code"], "invalid_room_name");
    let mut t = Client::connect(&edge, "/api/rooms/No%20Tenant/room").await;
    assert_eq!(t.recv().await["code"], "invalid_room_name");
}

/// Nobody can list tenants by trying names: an unknown tenant is silent until `join`, and then
/// answers exactly as a real jwt tenant answers a missing, malformed or forged token.
#[tokio::test]
async fn an_unknown_tenant_looks_like_a_bad_token() {
    let edge = Edge::start();
    let room = unique_room("tenants");
    let answers = |tenant: &'static str| {
        let (edge, room) = (&edge, room.clone());
        async move {
            let mut c = Client::tenant_room(edge, tenant, &room).await;
            c.expect_silence(300).await;
            let mut forged = tokens::claims(tenant, &room, true);
            forged["iss"] = json!("acme-backend");
            let forged = tokens::hs256(&forged, "a-key-nobody-configured-0123456789abcdef");
            let mut codes = Vec::new();
            for extra in [
                json!({}),
                json!({"token": "not.a.jwt"}),
                json!({"token": forged}),
            ] {
                let answer = c.try_join(extra).await;
                codes.push(answer["code"].as_str().unwrap_or("none").to_string());
            }
            codes
        }
    };
    let unknown = answers("no-such-tenant").await;
    assert_eq!(
        unknown,
        ["token_required", "token_invalid", "token_bad_signature"]
    );
    assert_eq!(answers("acme").await, unknown);
}

/// No response before joining tells an active room from an unused name.
#[tokio::test]
async fn no_room_existence_oracle_before_joining() {
    let edge = Edge::start();
    let active = unique_room("active");
    let unused = unique_room("unused");
    let mut a = Client::room(&edge, &active).await;
    a.join(json!({})).await;
    let mut t = Client::tenant_room(&edge, "acme", &active).await;
    t.join(json!({"token": tokens::acme_moderator(&active)}))
        .await;
    let hp = edge.host_port();
    // A room with its lobby on (and someone knocking) looks like an unused name too.
    let with_lobby = unique_room("lobby");
    let mut l = Client::room(&edge, &with_lobby).await;
    l.join(json!({})).await;
    l.send(json!({"type": "set_lobby", "enabled": true})).await;
    l.wait_for("lobby").await;
    let mut knocking = Client::room(&edge, &with_lobby).await;
    assert_eq!(knocking.try_join(json!({})).await["type"], "waiting");

    for (x, y) in [
        (format!("/{active}"), format!("/{unused}")),
        (format!("/acme/{active}"), format!("/acme/{unused}")),
        (
            format!("/{}", active.to_uppercase()),
            format!("/{}", unused.to_uppercase()),
        ),
        (format!("/{with_lobby}"), format!("/{unused}")),
    ] {
        let (rx, ry) = (http::get(&hp, &x).await, http::get(&hp, &y).await);
        assert_eq!(rx.status, 200);
        assert_eq!(
            (rx.status, rx.stable_headers(), &rx.body),
            (ry.status, ry.stable_headers(), &ry.body),
            "{x} vs {y}"
        );
        assert_eq!(
            rx.header("referrer-policy"),
            Some("no-referrer"),
            "room names must not leak via Referer"
        );
    }
    // The WebSocket handshake and the silence before join are the same too.
    let handshake = |room: String| {
        let hp = hp.clone();
        async move {
            let headers = [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ];
            let path = format!("/api/rooms/{room}");
            let fut = http::request(&hp, "GET", &path, &headers, b"");
            // The server keeps the upgraded socket open: read only the head.
            tokio::time::timeout(Duration::from_millis(800), fut)
                .await
                .ok()
        }
    };
    let (hx, hy) = (
        handshake(active.clone()).await,
        handshake(unused.clone()).await,
    );
    let hl = handshake(with_lobby.clone()).await;
    let hy = hy.map(|r| (r.status, r.stable_headers()));
    assert_eq!(hx.map(|r| (r.status, r.stable_headers())), hy);
    assert_eq!(hl.map(|r| (r.status, r.stable_headers())), hy);
    for room in [&active, &with_lobby] {
        let mut probe = Client::room(&edge, room).await;
        probe.expect_silence(300).await;
    }
    assert!(
        http::get(&hp, "/api/rooms").await.status >= 400,
        "no room listing"
    );
}

#[tokio::test]
async fn names_api_generates_and_checks_names() {
    let edge = Edge::start();
    let hp = edge.host_port();
    let r = http::get(&hp, "/api/names/random").await;
    assert_eq!(r.status, 200);
    let name = r.json()["name"].as_str().unwrap().to_string();
    assert_eq!(name.split('-').count(), 5, "{name}");
    assert_ne!(
        http::get(&hp, "/api/names/random").await.json()["name"],
        json!(name)
    );
    let check = |n: &str| {
        let body = json!({"name": n}).to_string();
        let hp = hp.clone();
        async move {
            http::request(
                &hp,
                "POST",
                "/api/names/check",
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            )
            .await
            .json()
        }
    };
    let weak = check("standup").await;
    assert_eq!(weak["strong"], false);
    assert!(weak["warning"].as_str().is_some_and(|w| !w.is_empty()));
    assert_eq!(check(&name).await["strong"], true);
    assert_eq!(
        check("0b7e4c5a-9f2d-4e61-8a3b-7c1d2e3f4a5b").await["strong"],
        true
    );
    let bad = http::request(&hp, "POST", "/api/names/check", &[], b"{nope").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["code"], "invalid_message");
}
