//! Automatic E2EE's key blobs (`e2ee_key`) on any host: relayed unread to the one participant
//! named, refused when malformed or addressed to nobody present, never delivered after a kick.

use std::time::Duration;

use edgemeet_tests::client::Event;
use edgemeet_tests::{Client, Edge, unique_room};
use serde_json::{Value, json};

const BLOB: &str = "AgEjRWeJq83vASNFZ4mrze8BI0VniavN7wEjRWeJq83v";

#[tokio::test]
async fn key_blobs_reach_only_their_recipient_and_nobody_after_a_kick() {
    let edge = Edge::start();
    let room = unique_room("e2ee-keys");
    let mut a = Client::room(&edge, &room).await;
    a.join(json!({})).await;
    let mut b = Client::room(&edge, &room).await;
    b.join(json!({})).await;
    let mut c = Client::room(&edge, &room).await;
    c.join(json!({})).await;
    a.wait_for("participant_joined").await;
    a.wait_for("participant_joined").await;
    b.wait_for("participant_joined").await;
    let (aid, bid, cid) = (a.id().to_string(), b.id().to_string(), c.id().to_string());

    a.send(json!({"type": "e2ee_key", "to": bid, "blob": BLOB}))
        .await;
    let got = b.wait_for("e2ee_key").await;
    assert_eq!(
        (got["from"].as_str(), got["blob"].as_str()),
        (Some(aid.as_str()), Some(BLOB))
    );
    no_key_blob(&mut c, 300).await;
    no_key_blob(&mut a, 100).await;

    for (msg, code) in [
        (
            json!({"type": "e2ee_key", "to": bid, "blob": "not base64url!"}),
            "invalid_message",
        ),
        (
            json!({"type": "e2ee_key", "to": bid, "blob": "A".repeat(1025)}),
            "invalid_message",
        ),
        (json!({"type": "e2ee_key", "to": bid}), "invalid_message"),
        (
            json!({"type": "e2ee_key", "to": "nobody-here", "blob": BLOB}),
            "unknown_participant",
        ),
        (
            json!({"type": "e2ee_key", "to": aid, "blob": BLOB}),
            "unknown_participant",
        ),
    ] {
        a.send(msg).await;
        assert_eq!(next_error(&mut a).await["code"], code);
    }
    no_key_blob(&mut b, 200).await;

    // A kicked participant gets no key sealed after its kick: the edge no longer knows its id.
    a.send(json!({"type": "kick", "target": cid})).await;
    c.wait_for("kicked").await;
    b.wait_for("participant_left").await;
    a.wait_for("participant_left").await;
    b.send(json!({"type": "e2ee_key", "to": cid, "blob": BLOB}))
        .await;
    assert_eq!(next_error(&mut b).await["code"], "unknown_participant");
}

/// No key blob arrives for `ms` (other messages may: a host without a media node says
/// `no_media_node` to a room of three, and media modes change).
async fn no_key_blob(c: &mut Client, ms: u64) {
    let until = tokio::time::Instant::now() + Duration::from_millis(ms);
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        match c.next_event_within(left).await {
            None => return,
            Some(Event::Message(m)) => assert_ne!(m["type"], "e2ee_key", "got {m}"),
            Some(closed) => panic!("{closed:?}"),
        }
    }
}

/// The next error other than `no_media_node` (which a host without a node may send any time).
async fn next_error(c: &mut Client) -> Value {
    loop {
        let m = c.recv().await;
        assert_ne!(m["type"], "e2ee_key", "got {m}");
        if m["type"] == "error" && m["code"] != "no_media_node" {
            return m;
        }
    }
}
