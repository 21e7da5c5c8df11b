//! Automatic E2EE through the room: key blobs reach the one participant they name, nobody else,
//! and never someone who left or was kicked.

mod support;

use support::{Harness, welcome_id};

use edgemeet_protocol::{ErrorCode, ServerMessage};
use serde_json::json;

const BLOB: &str = "AXNlYWxlZC1mb3ItYm9i";

fn three() -> (Harness, [String; 3]) {
    let mut h = Harness::new(None);
    let (a, _) = welcome_id(&h.join(1, json!({})));
    let (b, _) = welcome_id(&h.join(2, json!({})));
    let (c, _) = welcome_id(&h.join(3, json!({})));
    for conn in 1..=3 {
        h.take(conn);
    }
    (h, [a, b, c])
}

fn blobs(h: &mut Harness, conn: u64) -> Vec<(String, String)> {
    h.take(conn)
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::E2eeKey { from, blob } => Some((from, blob.as_str().to_string())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_key_blob_reaches_only_the_participant_it_names() {
    let (mut h, [a, b, _]) = three();
    h.send(1, json!({"type": "e2ee_key", "to": b, "blob": BLOB}));
    assert_eq!(blobs(&mut h, 2), [(a.clone(), BLOB.to_string())]);
    assert!(h.take(1).is_empty(), "no echo to the sender");
    assert!(h.take(3).is_empty(), "the third sees nothing");
}

#[test]
fn blobs_to_nobody_to_oneself_or_malformed_are_refused_and_go_nowhere() {
    let (mut h, [a, _, _]) = three();
    h.send(1, json!({"type": "e2ee_key", "to": "nobody", "blob": BLOB}));
    assert_eq!(h.error_code(1), ErrorCode::UnknownParticipant);
    h.send(1, json!({"type": "e2ee_key", "to": a, "blob": BLOB}));
    assert_eq!(h.error_code(1), ErrorCode::UnknownParticipant);
    h.send(
        1,
        json!({"type": "e2ee_key", "to": a, "blob": "has spaces"}),
    );
    assert_eq!(h.error_code(1), ErrorCode::InvalidMessage);
    h.send(
        1,
        json!({"type": "e2ee_key", "to": a, "blob": "A".repeat(1025)}),
    );
    assert_eq!(h.error_code(1), ErrorCode::InvalidMessage);
    for conn in 2..=3 {
        assert!(h.take(conn).is_empty(), "conn {conn} saw something");
    }
}

#[test]
fn nothing_reaches_a_kicked_or_departed_participant() {
    let (mut h, [_, b, c]) = three();
    h.send(1, json!({"type": "kick", "target": c}));
    h.take(1);
    h.take(2);
    h.take(3);
    h.send(1, json!({"type": "e2ee_key", "to": c, "blob": BLOB}));
    assert_eq!(h.error_code(1), ErrorCode::UnknownParticipant);
    assert!(h.take(3).is_empty(), "the kicked socket got a blob");

    h.send(2, json!({"type": "leave"}));
    h.take(1);
    h.send(1, json!({"type": "e2ee_key", "to": b, "blob": BLOB}));
    assert_eq!(h.error_code(1), ErrorCode::UnknownParticipant);
    assert!(h.take(2).is_empty(), "the departed socket got a blob");
}

#[test]
fn a_socket_that_has_not_joined_can_neither_send_nor_receive_blobs() {
    let (mut h, [a, _, _]) = three();
    h.open(9);
    h.send(9, json!({"type": "e2ee_key", "to": a, "blob": BLOB}));
    assert_eq!(h.error_code(9), ErrorCode::NotJoined);
    assert!(h.take(1).is_empty());
}
