//! Automatic E2EE's key blobs (`e2ee_key`) on any host: relayed unread to the one participant
//! named, refused when malformed or addressed to nobody present, never delivered after a kick.

use edgemeet_tests::{Client, Edge, unique_room};
use serde_json::json;

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
    c.expect_silence(300).await;
    a.expect_silence(100).await;

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
        a.expect_error(code).await;
    }
    b.expect_silence(200).await;

    // A kicked participant gets no key sealed after its kick: the edge no longer knows its id.
    a.send(json!({"type": "kick", "target": cid})).await;
    c.wait_for("kicked").await;
    b.wait_for("participant_left").await;
    a.wait_for("participant_left").await;
    b.send(json!({"type": "e2ee_key", "to": cid, "blob": BLOB}))
        .await;
    b.expect_error("unknown_participant").await;
}
