//! Who may receive a room's media and speak in it: grants revoked at a leave, sessions bound to
//! their owner, a token's identity, unknown tenants, sockets that never join, frame and socket
//! limits, avatars.

mod support;

use edgemeet_core::{Effect, Input, NodeScope};
use edgemeet_protocol::node::session_id;
use edgemeet_protocol::{ErrorCode, ServerMessage};
use serde_json::json;
use support::{Harness, welcome_id};

const NODE_SECRET: &str = "node-secret-0123456789abcdef0123456789";

/// The participants whose grants the last inputs revoked on node `n1`.
fn revoked(h: &Harness) -> Vec<String> {
    h.other
        .iter()
        .filter_map(|e| match e {
            Effect::CloseOnNode {
                node,
                scope: NodeScope::Participant(p),
                ..
            } if node.id == "n1" => Some(p.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn every_leave_and_kick_revokes_the_grant_on_the_node() {
    let mut h = Harness::new(None);
    let ids: Vec<String> = (1..=4)
        .map(|c| welcome_id(&h.join(c, json!({}))).0)
        .collect();
    h.assign_node();
    h.other.clear();
    h.send(1, json!({"type": "kick", "target": ids[3]}));
    assert_eq!(revoked(&h), [ids[3].clone()], "kicked");
    h.other.clear();
    h.send(3, json!({"type": "leave"}));
    assert_eq!(revoked(&h), [ids[2].clone()], "left");
    h.other.clear();
    h.input(Input::Closed { conn: 2 });
    assert_eq!(revoked(&h), [ids[1].clone()], "disconnected");
    // Alone: the meeting leaves the node...
    assert!(h.other.iter().any(|e| matches!(
        e,
        Effect::CloseOnNode {
            scope: NodeScope::Meeting,
            ..
        }
    )));
    // ...and the last one out is revoked there too: its grant would otherwise open sessions in a
    // dead meeting until it expires.
    h.other.clear();
    h.input(Input::Closed { conn: 1 });
    assert_eq!(revoked(&h), [ids[0].clone()], "last leave");
}

#[test]
fn a_pair_that_let_its_node_go_still_revokes_there() {
    let mut h = Harness::new(None);
    h.config.p2p_standby = false;
    let ids: Vec<String> = (1..=3)
        .map(|c| welcome_id(&h.join(c, json!({}))).0)
        .collect();
    h.assign_node();
    h.input(Input::Closed { conn: 3 });
    h.now += 5_000;
    h.input(Input::Alarm);
    // Back in P2P without a node: the grant participant 2 got in the SFU phase is still alive.
    h.other.clear();
    h.send(2, json!({"type": "leave"}));
    assert_eq!(revoked(&h), [ids[1].clone()]);
}

#[test]
fn tracks_name_only_the_senders_own_session() {
    let mut h = Harness::new(None);
    let (a, meeting) = welcome_id(&h.join(1, json!({})));
    let (b, _) = welcome_id(&h.join(2, json!({})));
    h.join(3, json!({}));
    h.assign_node();
    for c in 1..=3 {
        h.take(c);
    }
    let tracks = json!([{"name": "cam", "kind": "video", "source": "camera"}]);
    let of_a = session_id(NODE_SECRET, &meeting, &a, [1; 16]);
    h.send(
        2,
        json!({"type": "tracks", "session_id": of_a, "tracks": tracks}),
    );
    assert_eq!(h.error_code(2), ErrorCode::NotYourSession);
    for made_up in ["s1", &"a".repeat(64)] {
        h.send(
            2,
            json!({"type": "tracks", "session_id": made_up, "tracks": tracks}),
        );
        assert_eq!(h.error_code(2), ErrorCode::NotYourSession);
    }
    assert!(h.take(3).is_empty(), "nobody heard of it");
    let of_b = session_id(NODE_SECRET, &meeting, &b, [2; 16]);
    h.send(
        2,
        json!({"type": "tracks", "session_id": of_b, "tracks": tracks}),
    );
    assert!(matches!(&h.take(3)[..], [ServerMessage::Tracks(t)] if t.participant == b));
}

#[test]
fn a_tokens_identity_is_the_identity() {
    let mut h = Harness::new(Some("acme"));
    let token = h.token(
        "acme",
        json!({"name": "Token User", "email": "user@example.org"}),
        json!({}),
    );
    h.join(
        1,
        json!({"token": token, "profile": {"name": "Typed", "email": "typed@example.org"}}),
    );
    h.send(
        1,
        json!({"type": "update_profile", "profile": {"name": "Mallory", "email": "m@evil.example"}}),
    );
    let updated = h.take(1);
    let Some(ServerMessage::ParticipantUpdated { participant }) = updated.last() else {
        panic!("{updated:?}")
    };
    assert_eq!(participant.name.as_deref(), Some("Token User"));
    assert_eq!(participant.email.as_deref(), Some("user@example.org"));

    // What the token leaves out stays the participant's own.
    let only_name = h.token("acme", json!({"name": "Named"}), json!({}));
    h.join(2, json!({"token": only_name}));
    h.send(
        2,
        json!({"type": "update_profile", "profile": {"name": "Other", "email": "own@example.org"}}),
    );
    let Some(ServerMessage::ParticipantUpdated { participant }) = h.take(2).pop() else {
        panic!()
    };
    assert_eq!(participant.name.as_deref(), Some("Named"));
    assert_eq!(participant.email.as_deref(), Some("own@example.org"));

    // Without a token, as before: the participant names itself.
    let mut open = Harness::new(None);
    open.join(1, json!({"profile": {"name": "Ada"}}));
    open.send(
        1,
        json!({"type": "update_profile", "profile": {"name": "Ada L."}}),
    );
    let Some(ServerMessage::ParticipantUpdated { participant }) = open.take(1).pop() else {
        panic!()
    };
    assert_eq!(participant.name.as_deref(), Some("Ada L."));
}

#[test]
fn an_unknown_tenant_answers_like_a_bad_token() {
    let answers = |tenant: &str| {
        let mut h = Harness::new(Some(tenant));
        h.open(1);
        let before_join = h.take(1);
        let forged = h.token(tenant, json!({"moderator": true}), json!({}));
        let forged = forged.replace(
            forged.rsplit('.').next().unwrap(),
            "bm90LXRoZS1zaWduYXR1cmUtb2YtYW55LWtleS14eA",
        );
        let codes: Vec<ErrorCode> = [
            json!({}),
            json!({"token": "garbage"}),
            json!({"token": forged}),
        ]
        .into_iter()
        .map(|extra| match h.try_join(1, extra) {
            Some(ServerMessage::Error { code, .. }) => code,
            other => panic!("{tenant}: {other:?}"),
        })
        .collect();
        (before_join, codes)
    };
    let (silent, unknown) = answers("no-such-tenant");
    assert!(silent.is_empty(), "nothing before join: {silent:?}");
    assert_eq!(
        unknown,
        [
            ErrorCode::TokenRequired,
            ErrorCode::TokenInvalid,
            ErrorCode::TokenBadSignature
        ]
    );
    assert_eq!(
        answers("acme"),
        (vec![], unknown),
        "the same as a real jwt tenant"
    );
}

#[test]
fn a_token_issued_in_the_future_is_refused() {
    let mut h = Harness::new(Some("acme"));
    let now_s = h.now / 1000;
    let token = h.token("acme", json!({}), json!({"iat": now_s + 3600}));
    h.open(1);
    assert!(matches!(
        h.try_join(1, json!({"token": token})),
        Some(ServerMessage::Error {
            code: ErrorCode::TokenNotYetValid,
            ..
        })
    ));
    let fine = h.token("acme", json!({}), json!({"iat": now_s}));
    assert!(matches!(
        h.try_join(1, json!({"token": fine})),
        Some(ServerMessage::Welcome { .. })
    ));
}

#[test]
fn a_socket_that_does_not_join_in_time_is_closed() {
    let mut h = Harness::new(None);
    let opened = h.now;
    h.join(1, json!({}));
    h.open(2);
    h.open(3);
    assert!(
        h.other.iter().any(|e| *e
            == Effect::SetAlarm {
                at_ms: opened + 10_000
            }),
        "{:?}",
        h.other
    );
    // A refused join (a password is needed) gives the page another full wait.
    h.send(1, json!({"type": "set_password", "password": "pw"}));
    h.now += 6_000;
    assert!(matches!(
        h.try_join(3, json!({})),
        Some(ServerMessage::Error {
            code: ErrorCode::PasswordRequired,
            ..
        })
    ));
    h.now = opened + 10_000;
    h.input(Input::Alarm);
    assert_eq!(h.closed.get(&2).map(|c| c.0), Some(1008));
    assert!(!h.closed.contains_key(&1), "joined sockets stay");
    assert!(!h.closed.contains_key(&3), "still within its second wait");
    h.now = opened + 16_000;
    h.input(Input::Alarm);
    assert_eq!(
        h.closed.get(&3),
        Some(&(1008, "no join in time".to_string()))
    );
    h.input(Input::Alarm);
    assert!(h.room.participant_count() == 1);
}

#[test]
fn an_address_holds_a_limited_number_of_sockets_in_a_room() {
    let mut h = Harness::new(None);
    h.config.limits.room_sockets_per_address = 3;
    for conn in 1..=3 {
        h.open_from(conn, "one-address");
    }
    h.open_from(4, "one-address");
    assert_eq!(h.closed.get(&4).map(|c| c.0), Some(1008));
    h.open_from(5, "another-address");
    assert!(!h.closed.contains_key(&5));
    // A socket that goes frees its place.
    h.input(Input::Closed { conn: 1 });
    h.open_from(6, "one-address");
    assert!(!h.closed.contains_key(&6));
}

#[test]
fn frames_above_the_frame_limit_close_with_1009() {
    let mut h = Harness::new(None);
    h.config.limits.max_frame_bytes = 64 * 1024;
    h.join(1, json!({}));
    h.join(2, json!({}));
    h.take(1);
    h.send(2, json!({"type": "chat", "text": "x".repeat(20_000)}));
    assert_eq!(
        h.error_code(2),
        ErrorCode::TooLarge,
        "too large, not closed"
    );
    assert!(!h.closed.contains_key(&2));
    h.send(2, json!({"type": "chat", "text": "x".repeat(70_000)}));
    assert_eq!(
        h.closed.get(&2),
        Some(&(1009, "frame too large".to_string()))
    );
    h.input(Input::Binary {
        conn: 1,
        len: 65 * 1024,
    });
    assert_eq!(h.closed.get(&1).map(|c| c.0), Some(1009));
}

#[test]
fn avatars_are_shown_only_from_hosts_the_operator_allows() {
    let avatar = "https://img.example.org/ada.png";
    let mut h = Harness::new(None);
    let w = h.join(1, json!({"profile": {"name": "Ada", "avatar": avatar}}));
    let ServerMessage::Welcome { participants, .. } = w else {
        panic!()
    };
    assert_eq!(participants[0].avatar, None, "default: no avatars");
    assert_eq!(participants[0].name.as_deref(), Some("Ada"));

    let mut h = Harness::new(None);
    h.config.avatar_hosts = vec!["img.example.org".into()];
    h.join(1, json!({"profile": {"avatar": avatar}}));
    let w = h.join(
        2,
        json!({"profile": {"avatar": "https://tracker.example/p.gif"}}),
    );
    let ServerMessage::Welcome { participants, .. } = w else {
        panic!()
    };
    assert_eq!(participants[0].avatar.as_deref(), Some(avatar));
    assert_eq!(participants[1].avatar, None);
    h.take(1);
    h.send(
        1,
        json!({"type": "update_profile", "profile": {"avatar": "https://tracker.example/p.gif"}}),
    );
    let Some(ServerMessage::ParticipantUpdated { participant }) = h.take(2).pop() else {
        panic!()
    };
    assert_eq!(participant.avatar, None);
}
