//! A P2P pair whose direct path does not recover (ICE restarts included) moves to the room's node
//! when either page says `direct_failed`, and stays there while those two are the room; a new
//! pair tries P2P again. Deterministic: the clock is the test's.

mod support;

use edgemeet_core::Input;
use edgemeet_core::room::Mode;
use edgemeet_protocol::server::MediaMode;
use edgemeet_protocol::{ErrorCode, ServerMessage};
use serde_json::json;
use support::Harness;

fn moved_to_node(msgs: &[ServerMessage]) -> bool {
    msgs.iter().any(|m| {
        matches!(
            m,
            ServerMessage::MediaMode {
                media: MediaMode::Sfu { node: Some(_) }
            }
        )
    })
}

/// A pair in P2P with its standby node, inboxes emptied.
fn pair() -> Harness {
    let mut h = Harness::new(None);
    h.join(1, json!({}));
    h.join(2, json!({}));
    h.assign_node();
    h.take(1);
    h.take(2);
    assert!(matches!(h.room.mode(), Some(Mode::P2p { .. })));
    h
}

#[test]
fn a_failed_direct_path_moves_the_pair_to_the_node_at_once() {
    let mut h = pair();
    h.send(2, json!({"type": "direct_failed"}));
    assert_eq!(h.room.mode(), Some(&Mode::Sfu));
    assert!(moved_to_node(&h.take(1)), "the peer moves too");
    assert!(moved_to_node(&h.take(2)));
    // The other page's report, crossing the move, changes nothing and is no error.
    h.send(1, json!({"type": "direct_failed"}));
    assert!(h.take(1).is_empty());
    assert_eq!(h.room.mode(), Some(&Mode::Sfu));
    // No return to P2P for this pair, however long they stay.
    h.now += 6_000;
    h.input(Input::Alarm);
    assert_eq!(h.room.mode(), Some(&Mode::Sfu));
}

#[test]
fn the_pair_stays_on_the_node_after_a_third_leaves_and_a_new_pair_tries_p2p_again() {
    let mut h = pair();
    h.send(1, json!({"type": "direct_failed"}));
    h.join(3, json!({}));
    h.input(Input::Closed { conn: 3 });
    h.now += 6_000;
    h.input(Input::Alarm);
    assert_eq!(h.room.mode(), Some(&Mode::Sfu), "the failed pair again");
    // One of the failed pair leaves and someone new comes: P2P is worth a try.
    h.join(4, json!({}));
    h.input(Input::Closed { conn: 2 });
    h.now += 6_000;
    h.input(Input::Alarm);
    assert!(matches!(h.room.mode(), Some(Mode::P2p { .. })));
}

#[test]
fn only_a_page_of_the_pair_can_say_it_and_only_in_p2p() {
    let mut h = Harness::new(None);
    h.join(1, json!({}));
    h.send(1, json!({"type": "direct_failed"}));
    assert_eq!(h.error_code(1), ErrorCode::NotInP2p, "alone");
    h.join(2, json!({}));
    h.assign_node();
    h.join(3, json!({}));
    h.take(1);
    h.send(1, json!({"type": "direct_failed"}));
    assert_eq!(h.error_code(1), ErrorCode::NotInP2p, "three on the node");
}
