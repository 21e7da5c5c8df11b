//! Rooms survive their media node: the registry calls a node dead 3 s after its last heartbeat
//! (or when the edge's check after a page's report fails) and names the rooms on it; each room
//! asks for another node, tells its pages `node_moved`, hands them grants for the new node, and
//! starts its recording again there. Draining with `migrate` moves rooms the same way.
//! Deterministic: the clock is the test's.

mod support;

use edgemeet_core::registry::{NodeMove, STALE_AFTER_MS};
use edgemeet_core::{Effect, Input, Location, Need, NodeInfo, NodeScope, Registry};
use edgemeet_protocol::node::{Heartbeat, NodeLoad};
use edgemeet_protocol::server::{MediaMode, MoveReason};
use edgemeet_protocol::{ErrorCode, ServerMessage};
use serde_json::json;
use support::{Harness, welcome_id};

fn hb(id: &str, region: &str, sessions: u32) -> Heartbeat {
    Heartbeat {
        id: id.into(),
        region: region.into(),
        url: format!("http://{id}.example"),
        load: NodeLoad {
            sessions,
            ..Default::default()
        },
        draining: false,
        migrate: false,
        lat: None,
        lon: None,
    }
}

fn eu() -> Location {
    Location {
        region: Some("eu-west".into()),
        ..Default::default()
    }
}

fn node(id: &str) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        url: format!("http://{id}.example"),
        region: "eu-west".into(),
    }
}

/// Three people in a room on node `n1`, their inboxes emptied.
fn room_of_three_on_n1() -> (Harness, Vec<String>) {
    let mut h = Harness::new(None);
    let mut ids = Vec::new();
    for conn in 1..=3 {
        ids.push(welcome_id(&h.join(conn, json!({}))).0);
    }
    h.input(Input::NodeAssigned(Some(node("n1"))));
    for conn in 1..=3 {
        h.take(conn);
    }
    h.other.clear();
    (h, ids)
}

fn node_of(msg: &ServerMessage) -> Option<String> {
    match msg {
        ServerMessage::MediaMode {
            media: MediaMode::Sfu { node: Some(g) },
        } => Some(g.node_id.clone()),
        _ => None,
    }
}

#[test]
fn a_node_silent_for_3_s_is_lost_and_names_its_rooms() {
    let mut r = Registry::new(STALE_AFTER_MS);
    r.heartbeat(hb("eu-1", "eu-west", 0), 0);
    r.heartbeat(hb("eu-2", "eu-west", 5), 0);
    assert_eq!(
        r.place("room-a", Some(&eu()), Need::Media, 0).unwrap().id,
        "eu-1"
    );
    assert_eq!(
        r.place("room-b", Some(&eu()), Need::Media, 0).unwrap().id,
        "eu-1"
    );
    assert_eq!(r.next_sweep_at(), Some(3_000));
    // eu-2 keeps beating each second; eu-1 is silent from 0.
    for t in [1_000, 2_000, 2_999] {
        r.heartbeat(hb("eu-2", "eu-west", 5), t);
        assert_eq!(r.sweep(t), vec![], "at {t} ms nothing is stale yet");
    }
    r.heartbeat(hb("eu-2", "eu-west", 5), 3_000);
    let lost = r.sweep(3_000);
    assert_eq!(
        lost,
        vec![NodeMove {
            node_id: "eu-1".into(),
            reason: MoveReason::NodeLost,
            routes: vec!["room-a".into(), "room-b".into()],
        }]
    );
    assert_eq!(r.sweep(3_500), vec![], "a node is lost once");
    // The best other node of the region takes its rooms.
    assert_eq!(
        r.place("room-a", Some(&eu()), Need::Media, 3_000)
            .unwrap()
            .id,
        "eu-2"
    );
}

#[test]
fn rooms_go_to_the_same_region_first_then_the_nearest_one() {
    let mut r = Registry::default();
    r.heartbeat(hb("eu-1", "eu-west", 0), 0);
    r.heartbeat(hb("eu-2", "eu-west", 40), 0);
    r.heartbeat(hb("na-1", "na-east", 0), 0);
    r.place("room", Some(&eu()), Need::Media, 0);
    r.mark_lost("eu-1").expect("eu-1 held the room");
    assert_eq!(r.select(Some(&eu()), Need::Media, 100).unwrap().id, "eu-2");
    r.mark_lost("eu-2");
    assert_eq!(r.select(Some(&eu()), Need::Media, 100).unwrap().id, "na-1");
    // A lost node that beats again is a choice again.
    r.heartbeat(hb("eu-1", "eu-west", 0), 200);
    assert_eq!(r.select(Some(&eu()), Need::Media, 200).unwrap().id, "eu-1");
}

#[test]
fn an_ended_room_is_not_moved() {
    let mut r = Registry::default();
    r.heartbeat(hb("n", "eu-west", 0), 0);
    r.place("gone", None, Need::Media, 0);
    r.place("here", None, Need::Media, 0);
    r.release("gone");
    assert_eq!(r.mark_lost("n").unwrap().routes, vec!["here".to_string()]);
}

#[test]
fn a_room_whose_node_died_moves_and_every_page_hears_it() {
    let (mut h, _) = room_of_three_on_n1();
    // The room published on n1; a newcomer must not be told to pull those sessions after the move.
    h.input(Input::MoveOffNode {
        node_id: "n1".into(),
        reason: MoveReason::NodeLost,
    });
    assert!(
        matches!(h.other.as_slice(), [Effect::RequestNode { .. }, ..]),
        "asks for another node: {:?}",
        h.other
    );
    for conn in 1..=3 {
        assert_eq!(h.take(conn), vec![], "nothing to say until a node is found");
    }
    h.input(Input::NodeAssigned(Some(node("n2"))));
    for conn in 1..=3 {
        let msgs = h.take(conn);
        assert_eq!(
            msgs.first(),
            Some(&ServerMessage::NodeMoved {
                reason: MoveReason::NodeLost
            })
        );
        assert_eq!(msgs.get(1).and_then(node_of).as_deref(), Some("n2"));
    }
    // A move for a node the room is no longer on changes nothing.
    h.other.clear();
    h.input(Input::MoveOffNode {
        node_id: "n1".into(),
        reason: MoveReason::NodeLost,
    });
    assert!(h.other.is_empty());
    for conn in 1..=3 {
        assert_eq!(h.take(conn), vec![]);
    }
}

#[test]
fn tracks_published_on_the_dead_node_are_not_offered_after_the_move() {
    let (mut h, ids) = room_of_three_on_n1();
    let meeting = h.room.meeting_id().unwrap().to_string();
    let session = session_of(&h, &meeting, &ids[0]);
    h.send(
        1,
        json!({"type": "tracks", "session_id": session, "tracks": [{"name": "v", "kind": "video"}]}),
    );
    // The others were told of the session.
    assert!(
        h.take(2)
            .iter()
            .any(|m| matches!(m, ServerMessage::Tracks(_)))
    );
    h.input(Input::MoveOffNode {
        node_id: "n1".into(),
        reason: MoveReason::NodeLost,
    });
    h.input(Input::NodeAssigned(Some(node("n2"))));
    match h.join(10, json!({})) {
        ServerMessage::Welcome { tracks, .. } => assert_eq!(tracks, vec![]),
        other => panic!("{other:?}"),
    }
}

/// A node session id as the node makes them, for `participant` (the edge checks its signature).
fn session_of(h: &Harness, meeting: &str, participant: &str) -> String {
    edgemeet_protocol::node::session_id(
        h.config.node_secret.as_deref().unwrap(),
        meeting,
        participant,
        [7; 16],
    )
}

#[test]
fn a_pages_report_makes_the_edge_check_the_node_at_most_every_2_s() {
    let (mut h, _) = room_of_three_on_n1();
    h.send(1, json!({"type": "node_unreachable", "node_id": "n1"}));
    h.send(2, json!({"type": "node_unreachable", "node_id": "n1"}));
    let probes = |h: &Harness| {
        h.other
            .iter()
            .filter(|e| matches!(e, Effect::ProbeNode { node } if node.id == "n1"))
            .count()
    };
    assert_eq!(probes(&h), 1, "two reports, one check");
    assert_eq!(h.take(1), vec![]);
    h.now += 2_000;
    h.send(3, json!({"type": "node_unreachable", "node_id": "n1"}));
    assert_eq!(probes(&h), 2);
    // A report about another node (one the room left, or never had) is refused.
    h.send(
        1,
        json!({"type": "node_unreachable", "node_id": "elsewhere"}),
    );
    assert_eq!(h.error_code(1), ErrorCode::UnknownNode);
    assert_eq!(probes(&h), 2);
}

#[test]
fn a_report_from_a_room_without_a_node_is_refused() {
    let mut h = Harness::new(None);
    h.join(1, json!({}));
    h.send(1, json!({"type": "node_unreachable", "node_id": "n1"}));
    assert_eq!(h.error_code(1), ErrorCode::NotInSfu);
    assert!(
        h.other
            .iter()
            .all(|e| !matches!(e, Effect::ProbeNode { .. }))
    );
}

#[test]
fn a_recording_goes_on_as_a_further_file_on_the_new_node() {
    let (mut h, ids) = room_of_three_on_n1();
    let grant = json!({"access_token": "sl.token", "refresh_token": "refresh", "app_key": "app"});
    h.send(1, json!({"type": "start_recording", "dropbox": grant}));
    let starts = |h: &Harness| -> Vec<(String, bool)> {
        h.other
            .iter()
            .filter_map(|e| match e {
                Effect::RecordOnNode {
                    node,
                    start: Some(s),
                    ..
                } => Some((node.id.clone(), s.dropbox.is_some())),
                _ => None,
            })
            .collect()
    };
    assert_eq!(starts(&h), vec![("n1".to_string(), true)]);
    h.input(Input::MoveOffNode {
        node_id: "n1".into(),
        reason: MoveReason::NodeLost,
    });
    h.input(Input::NodeAssigned(Some(node("n2"))));
    assert_eq!(
        starts(&h),
        vec![("n1".to_string(), true), ("n2".to_string(), true)],
        "started again on n2, with the recorder's Dropbox grant"
    );
    // The recorder hears the new file's status link too.
    let meeting = h.room.meeting_id().unwrap().to_string();
    h.take(1);
    h.input(Input::RecordingStarted {
        meeting_id: meeting,
        recorder: ids[0].clone(),
        status_token: edgemeet_core::StatusToken("0123456789abcdef0123456789abcdef".into()),
        recording_id: None,
    });
    assert!(matches!(
        h.take(1).as_slice(),
        [ServerMessage::RecordingStatusLink { .. }]
    ));
}

#[test]
fn draining_with_migrate_moves_rooms_and_a_leave_still_reaches_the_old_node() {
    let mut r = Registry::default();
    r.heartbeat(hb("n1", "eu-west", 0), 0);
    r.heartbeat(hb("n2", "eu-west", 9), 0);
    r.place("room", Some(&eu()), Need::Media, 0);
    let mut drained = hb("n1", "eu-west", 0);
    drained.draining = true;
    assert_eq!(
        r.heartbeat(drained.clone(), 500),
        None,
        "drain alone keeps rooms"
    );
    drained.migrate = true;
    let moved = r
        .heartbeat(drained.clone(), 1_000)
        .expect("migrate gives rooms up");
    assert_eq!(
        (moved.reason, moved.routes),
        (MoveReason::Drain, vec!["room".to_string()])
    );
    assert_eq!(r.heartbeat(drained, 2_000), None, "once");

    let (mut h, ids) = room_of_three_on_n1();
    h.input(Input::MoveOffNode {
        node_id: "n1".into(),
        reason: MoveReason::Drain,
    });
    h.input(Input::NodeAssigned(Some(node("n2"))));
    assert_eq!(
        h.take(2).first(),
        Some(&ServerMessage::NodeMoved {
            reason: MoveReason::Drain
        })
    );
    // The drained node still holds the pages' old sessions for a moment: a leave revokes there
    // too.
    h.other.clear();
    h.send(3, json!({"type": "leave"}));
    let mut closed: Vec<String> = h
        .other
        .iter()
        .filter_map(|e| match e {
            Effect::CloseOnNode {
                node,
                scope: NodeScope::Participant(p),
                ..
            } if p == &ids[2] => Some(node.id.clone()),
            _ => None,
        })
        .collect();
    closed.sort();
    assert_eq!(closed, vec!["n1".to_string(), "n2".to_string()]);
}

/// The room's alarm as the host holds it (the last `SetAlarm`).
fn alarm(h: &Harness) -> Option<u64> {
    h.other.iter().rev().find_map(|e| match e {
        Effect::SetAlarm { at_ms } => Some(*at_ms),
        Effect::ClearAlarm => Some(u64::MAX),
        _ => None,
    })
}

fn node_requests(h: &Harness) -> usize {
    h.other
        .iter()
        .filter(|e| matches!(e, Effect::RequestNode { .. }))
        .count()
}

#[test]
fn with_no_node_free_the_room_asks_again_with_backoff_until_one_takes_it() {
    let (mut h, ids) = room_of_three_on_n1();
    let grant = json!({"access_token": "sl.token", "refresh_token": "refresh", "app_key": "app"});
    h.send(1, json!({"type": "start_recording", "dropbox": grant}));
    for conn in 1..=3 {
        h.take(conn);
    }
    h.input(Input::MoveOffNode {
        node_id: "n1".into(),
        reason: MoveReason::NodeLost,
    });
    h.input(Input::NodeAssigned(None));
    // Said once, plainly; the recording is not given up.
    for conn in 1..=3 {
        let msgs = h.take(conn);
        assert!(
            matches!(
                msgs.as_slice(),
                [ServerMessage::Error {
                    code: ErrorCode::NoMediaNode,
                    ..
                }]
            ),
            "{msgs:?}"
        );
    }
    // Asked again after 0.5, 1, 2, 4, 4, 4 s: each refusal doubles the wait, up to 4 s; the
    // pages hear nothing more meanwhile.
    let mut waits = Vec::new();
    for _ in 0..6 {
        let at = alarm(&h).expect("an alarm for the next try");
        waits.push(at - h.now);
        h.now = at;
        // The pages keep talking (their sockets are not silent).
        for conn in 1..=3 {
            h.input(Input::Heard { conn, at_ms: at });
        }
        let before = node_requests(&h);
        h.input(Input::Alarm);
        assert_eq!(node_requests(&h), before + 1, "asks the host again");
        h.input(Input::NodeAssigned(None));
        for conn in 1..=3 {
            assert_eq!(h.take(conn), vec![]);
        }
    }
    assert_eq!(waits, vec![500, 1000, 2000, 4000, 4000, 4000]);
    // An early alarm (another deadline) asks nothing before its time.
    let before = node_requests(&h);
    h.now += 100;
    h.input(Input::Alarm);
    assert_eq!(node_requests(&h), before);
    // A node registers: the next try takes it; the pages move there, the recording goes on.
    h.now = alarm(&h).unwrap();
    h.input(Input::Alarm);
    h.input(Input::NodeAssigned(Some(node("n2"))));
    for conn in 1..=3 {
        let msgs = h.take(conn);
        assert_eq!(
            msgs.first(),
            Some(&ServerMessage::NodeMoved {
                reason: MoveReason::NodeLost
            }),
            "{msgs:?}"
        );
        assert_eq!(msgs.get(1).and_then(node_of).as_deref(), Some("n2"));
    }
    assert!(h.other.iter().any(|e| matches!(e,
        Effect::RecordOnNode { node, start: Some(_), .. } if node.id == "n2")));
    // No more tries once it has a node.
    let before = node_requests(&h);
    h.now += 60_000;
    h.input(Input::Alarm);
    assert_eq!(node_requests(&h), before);
    let _ = ids;
}

#[test]
fn a_room_that_never_had_a_node_waits_for_one_too() {
    let mut h = Harness::new(None);
    for conn in 1..=3 {
        h.join(conn, json!({}));
    }
    h.input(Input::NodeAssigned(None));
    assert_eq!(h.error_code(1), ErrorCode::NoMediaNode);
    h.send(1, json!({"type": "refresh_node_grant"}));
    assert_eq!(h.error_code(1), ErrorCode::NoMediaNode);
    h.now = alarm(&h).expect("asks again");
    h.input(Input::Alarm);
    h.input(Input::NodeAssigned(Some(node("n2"))));
    let msgs = h.take(1);
    assert!(
        msgs.iter().any(|m| node_of(m).as_deref() == Some("n2")),
        "{msgs:?}"
    );
    assert!(
        !msgs
            .iter()
            .any(|m| matches!(m, ServerMessage::NodeMoved { .. }))
    );
}

#[test]
fn a_room_restored_from_its_snapshot_carries_its_recording_over_to_the_new_node() {
    let (mut h, ids) = room_of_three_on_n1();
    let grant = json!({"access_token": "sl.token-kept-in-memory", "refresh_token": "refresh", "app_key": "app"});
    h.send(1, json!({"type": "start_recording", "dropbox": grant}));
    let meeting = h.room.meeting_id().unwrap().to_string();
    let old = "00112233445566778899aabbccddeeff";
    h.input(Input::RecordingStarted {
        meeting_id: meeting,
        recorder: ids[0].clone(),
        status_token: edgemeet_core::StatusToken("0123456789abcdef0123456789abcdef".into()),
        recording_id: Some(old.into()),
    });
    // The Worker's room hibernates: what survives is the stored snapshot, without the grant.
    let snapshot = serde_json::to_string(&h.room).unwrap();
    assert!(
        !snapshot.contains("sl.token-kept-in-memory"),
        "no grant at rest"
    );
    h.room = serde_json::from_str(&snapshot).unwrap();
    h.other.clear();
    h.input(Input::MoveOffNode {
        node_id: "n1".into(),
        reason: MoveReason::NodeLost,
    });
    h.input(Input::NodeAssigned(Some(node("n2"))));
    let starts: Vec<_> = h
        .other
        .iter()
        .filter_map(|e| match e {
            Effect::RecordOnNode {
                node,
                start: Some(s),
                ..
            } => Some((
                node.id.clone(),
                s.dropbox.is_some(),
                s.continue_from.clone(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        starts,
        vec![("n2".to_string(), false, Some(old.to_string()))],
        "the new node carries the grant over from the recording on n1"
    );
    // Nothing says the recording failed.
    for conn in 1..=3 {
        assert!(!h.take(conn).iter().any(|m| matches!(
            m,
            ServerMessage::Error {
                code: ErrorCode::RecordingFailed,
                ..
            } | ServerMessage::Recording { active: false, .. }
        )));
    }
}
