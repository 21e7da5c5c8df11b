//! Livestreaming in the room core: who may start it, what everyone is told, what the node is
//! told (the key, the scene with names, the speaker), and where the key never goes.

mod support;

use edgemeet_core::room::Mode;
use edgemeet_core::{Effect, Input, LivestreamCall};
use edgemeet_protocol::client::StreamKey;
use edgemeet_protocol::node::CompositionScene;
use edgemeet_protocol::{ErrorCode, ServerMessage};
use serde_json::json;
use support::*;

const KEY: &str = "live-key-0a1b2c3d";

fn start_msg() -> serde_json::Value {
    json!({"type": "start_livestream", "url": "rtmp://ingest.example/live", "stream_key": KEY})
}

fn live_calls(h: &Harness) -> Vec<LivestreamCall> {
    h.other
        .iter()
        .filter_map(|e| match e {
            Effect::LivestreamOnNode { call, .. } => Some(call.clone()),
            _ => None,
        })
        .collect()
}

fn scenes(h: &Harness) -> Vec<CompositionScene> {
    live_calls(h)
        .into_iter()
        .filter_map(|c| match c {
            LivestreamCall::Start { scene, .. } | LivestreamCall::Scene(scene) => Some(scene),
            LivestreamCall::Stop => None,
        })
        .collect()
}

fn told_live(h: &mut Harness, conn: u64) -> Option<bool> {
    h.take(conn).iter().find_map(|m| match m {
        ServerMessage::Livestream { active, .. } => Some(*active),
        _ => None,
    })
}

#[test]
fn a_moderator_streams_everyone_is_told_and_the_node_gets_the_key_scene_and_speaker() {
    let mut h = Harness::new(None);
    let (ada, meeting) = welcome_id(&h.join(1, json!({"profile": {"name": "Ada"}})));
    let (bob, _) = welcome_id(&h.join(2, json!({"profile": {"name": "Bob"}})));
    assert!(matches!(h.room.mode(), Some(Mode::P2p { .. })));
    h.take(1);
    h.take(2);

    // Malformed: an http URL, an empty key.
    h.send(
        1,
        json!({"type": "start_livestream", "url": "http://x/live", "stream_key": KEY}),
    );
    assert_eq!(h.error_code(1), ErrorCode::InvalidLivestream);
    h.send(
        1,
        json!({"type": "start_livestream", "url": "rtmp://x/live", "stream_key": ""}),
    );
    assert_eq!(h.error_code(1), ErrorCode::InvalidLivestream);

    h.other.clear();
    h.send(1, start_msg());
    assert_eq!(told_live(&mut h, 1), Some(true));
    assert_eq!(told_live(&mut h, 2), Some(true));
    assert_eq!(
        h.room.mode(),
        Some(&Mode::Sfu),
        "the stream needs the node, even for two"
    );
    assert!(live_calls(&h).is_empty(), "nothing to call before a node");
    h.assign_node();
    let calls = live_calls(&h);
    let Some(LivestreamCall::Start {
        url,
        stream_key,
        scene,
    }) = calls.first()
    else {
        panic!("the node is asked to stream: {calls:?}");
    };
    assert_eq!(url, "rtmp://ingest.example/live");
    assert_eq!(stream_key, &StreamKey(KEY.into()));
    let people: Vec<(&str, &str)> = scene
        .people
        .iter()
        .map(|p| (p.id.as_str(), p.name.as_str()))
        .collect();
    assert_eq!(people, vec![(ada.as_str(), "Ada"), (bob.as_str(), "Bob")]);

    // The stored snapshot never holds the key; no page is sent it.
    let snapshot = serde_json::to_string(&h.room).unwrap();
    assert!(!snapshot.contains(KEY));
    assert!(!format!("{:?}", h.inbox).contains(KEY));
    assert!(
        !format!("{:?}", h.other).contains(KEY),
        "not even through Debug"
    );

    // The speaker changes: the node gets the new scene, once.
    h.other.clear();
    h.input(Input::DominantSpeaker {
        meeting_id: meeting.clone(),
        participant: bob.clone(),
    });
    assert_eq!(
        scenes(&h)
            .iter()
            .map(|s| s.speaker.clone())
            .collect::<Vec<_>>(),
        vec![Some(bob.clone())]
    );
    h.other.clear();
    h.input(Input::DominantSpeaker {
        meeting_id: meeting.clone(),
        participant: bob.clone(),
    });
    assert!(
        scenes(&h).is_empty(),
        "an unchanged scene is not sent again"
    );

    // Someone joins, someone renames: the scene follows.
    h.join(3, json!({"profile": {"name": "Cyd"}}));
    assert_eq!(scenes(&h).last().unwrap().people.len(), 3);
    h.other.clear();
    h.send(
        2,
        json!({"type": "update_profile", "profile": {"name": "Robert"}}),
    );
    assert_eq!(scenes(&h).last().unwrap().people[1].name, "Robert");

    // One at a time; only moderators stop it.
    h.take(1);
    h.send(1, start_msg());
    assert_eq!(h.error_code(1), ErrorCode::LivestreamActive);
    h.other.clear();
    h.send(1, json!({"type": "stop_livestream"}));
    assert_eq!(live_calls(&h), vec![LivestreamCall::Stop]);
    assert_eq!(told_live(&mut h, 3), Some(false));
    h.send(1, json!({"type": "stop_livestream"}));
    assert_eq!(h.error_code(1), ErrorCode::NotLive);
}

#[test]
fn e2ee_refuses_and_stops_a_livestream_and_a_failed_start_ends_it() {
    let mut h = Harness::new(None);
    let (_, meeting) = welcome_id(&h.join(1, json!({})));
    h.join(2, json!({}));
    h.assign_node();
    h.send(2, json!({"type": "media_state", "e2ee": true}));
    h.take(1);
    h.send(1, start_msg());
    assert_eq!(h.error_code(1), ErrorCode::LivestreamE2ee);
    h.send(2, json!({"type": "media_state", "e2ee": false}));
    h.take(1);

    h.send(1, start_msg());
    assert_eq!(told_live(&mut h, 2), Some(true));
    h.take(1);
    h.other.clear();
    h.send(2, json!({"type": "media_state", "e2ee": true}));
    assert_eq!(live_calls(&h), vec![LivestreamCall::Stop]);
    assert_eq!(told_live(&mut h, 1), Some(false));

    // The node could not start it: it ends, and everyone hears why.
    h.send(2, json!({"type": "media_state", "e2ee": false}));
    h.send(1, start_msg());
    h.take(1);
    h.take(2);
    h.input(Input::LivestreamFailed {
        meeting_id: meeting,
    });
    let got = h.take(2);
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMessage::Livestream { active: false, .. }))
    );
    assert!(got.iter().any(|m| matches!(
        m,
        ServerMessage::Error {
            code: ErrorCode::LivestreamFailed,
            ..
        }
    )));
}

#[test]
fn livestreaming_needs_moderation_and_the_feature_in_jwt_rooms() {
    let mut h = Harness::new(Some("host"));
    let now_s = h.now / 1000;
    let token = |features: serde_json::Value| {
        let claims = json!({"iss": "test", "aud": "edgemeet", "sub": "host", "room": "*", "exp": now_s + 60,
            "context": {"user": {"moderator": true}, "features": features}});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(HS_SECRET.as_bytes()),
        )
        .unwrap()
    };
    h.join(1, json!({"token": token(json!({"recording": "true"}))}));
    h.send(1, start_msg());
    assert_eq!(h.error_code(1), ErrorCode::LivestreamNotAllowed);
    h.join(2, json!({"token": token(json!({"livestreaming": "true"}))}));
    h.take(2);
    h.send(2, start_msg());
    assert_eq!(told_live(&mut h, 2), Some(true));
}

#[test]
fn a_composite_recording_gets_the_scene_at_its_start_and_when_it_changes() {
    let mut h = Harness::new(None);
    let (ada, meeting) = welcome_id(&h.join(1, json!({"profile": {"name": "Ada"}})));
    h.assign_node();
    h.other.clear();
    h.send(1, json!({"type": "start_recording", "composite": true}));
    h.assign_node();
    let start = h.other.iter().find_map(|e| match e {
        Effect::RecordOnNode {
            start: Some(edgemeet_core::RecordStart { scene, .. }),
            ..
        } => Some(scene.clone()),
        _ => None,
    });
    let scene = start
        .expect("the node is asked to record")
        .expect("with a scene");
    assert_eq!(scene.people[0].name, "Ada");
    h.other.clear();
    h.input(Input::DominantSpeaker {
        meeting_id: meeting,
        participant: ada.clone(),
    });
    assert_eq!(scenes(&h).last().and_then(|s| s.speaker.clone()), Some(ada));

    // A plain recording sends none.
    let mut h = Harness::new(None);
    h.join(1, json!({"profile": {"name": "Ada"}}));
    h.send(1, json!({"type": "start_recording"}));
    h.assign_node();
    assert!(h.other.iter().any(|e| matches!(
        e,
        Effect::RecordOnNode {
            start: Some(edgemeet_core::RecordStart { scene: None, .. }),
            ..
        }
    )));
    h.other.clear();
    h.join(2, json!({"profile": {"name": "Bob"}}));
    assert!(scenes(&h).is_empty());

    // Only the composed video: the node is told to record no file per person.
    let mut h = Harness::new(None);
    h.join(1, json!({"profile": {"name": "Ada"}}));
    h.send(1, json!({"type": "start_recording", "files": "composite"}));
    h.assign_node();
    assert!(h.other.iter().any(|e| matches!(
        e,
        Effect::RecordOnNode {
            start: Some(edgemeet_core::RecordStart {
                scene: Some(_),
                per_person: false,
                ..
            }),
            ..
        }
    )));
}

#[test]
fn a_stream_that_drops_is_started_again_three_times_then_ends() {
    let mut h = Harness::new(None);
    let (_, meeting) = welcome_id(&h.join(1, json!({})));
    h.send(1, start_msg());
    h.assign_node();
    h.take(1);
    for _ in 0..3 {
        h.other.clear();
        h.input(Input::CompositionEnded {
            meeting_id: meeting.clone(),
            livestream: true,
            restarted: false,
        });
        assert!(
            matches!(live_calls(&h).as_slice(), [LivestreamCall::Start { stream_key, .. }] if stream_key.0 == KEY),
            "started again with its key: {:?}",
            live_calls(&h)
        );
        assert!(h.take(1).iter().any(|m| matches!(
            m,
            ServerMessage::Livestream {
                active: true,
                restarting: true,
                ..
            }
        )));
    }
    h.other.clear();
    h.input(Input::CompositionEnded {
        meeting_id: meeting.clone(),
        livestream: true,
        restarted: false,
    });
    assert!(
        live_calls(&h)
            .iter()
            .all(|c| !matches!(c, LivestreamCall::Start { .. }))
    );
    let got = h.take(1);
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMessage::Livestream { active: false, .. }))
    );
    assert!(got.iter().any(|m| matches!(
        m,
        ServerMessage::Error {
            code: ErrorCode::LivestreamFailed,
            ..
        }
    )));
    // A composite recording's end, or another meeting's, changes nothing here.
    h.input(Input::CompositionEnded {
        meeting_id: "old".into(),
        livestream: true,
        restarted: false,
    });
    assert!(h.take(1).is_empty());
}

fn node(id: &str) -> edgemeet_core::NodeInfo {
    edgemeet_core::NodeInfo {
        id: id.into(),
        url: format!("http://{id}.example"),
        region: "eu".into(),
    }
}

fn starts_on(h: &Harness) -> Vec<String> {
    h.other
        .iter()
        .filter_map(|e| match e {
            Effect::LivestreamOnNode {
                node,
                call: LivestreamCall::Start { .. },
                ..
            } => Some(node.id.clone()),
            _ => None,
        })
        .collect()
}

fn closes_on(h: &Harness) -> Vec<String> {
    h.other
        .iter()
        .filter_map(|e| match e {
            Effect::CloseOnNode {
                node,
                scope: edgemeet_core::NodeScope::Meeting,
                ..
            } => Some(node.id.clone()),
            _ => None,
        })
        .collect()
}

fn failed(msgs: &[ServerMessage]) -> bool {
    msgs.iter().any(|m| {
        matches!(
            m,
            ServerMessage::Error {
                code: ErrorCode::LivestreamFailed,
                ..
            }
        )
    })
}

#[test]
fn a_node_with_no_composer_free_hands_the_room_to_one_that_has_one() {
    use edgemeet_core::Need;
    use edgemeet_protocol::server::MoveReason;
    let mut h = Harness::new(None);
    let (_, meeting) = welcome_id(&h.join(1, json!({})));
    h.join(2, json!({}));
    h.send(1, start_msg());
    h.assign_node();
    assert_eq!(starts_on(&h), vec!["n1"]);
    h.take(1);
    h.take(2);

    // n1 runs as many compositions as it may: the room asks for a node with a composer free.
    h.other.clear();
    h.input(Input::NoComposer {
        meeting_id: meeting.clone(),
        livestream: true,
    });
    assert!(
        h.other.iter().any(|e| matches!(
            e,
            Effect::RequestNode {
                need: Need::Composer,
                ..
            }
        )),
        "{:?}",
        h.other
    );
    assert_eq!(h.take(1), vec![], "nothing to say before a node is found");

    // n2 has one: everyone moves there as in a drain, and the stream starts there with the key.
    h.other.clear();
    h.input(Input::NodeAssigned(Some(node("n2"))));
    for conn in [1, 2] {
        let msgs = h.take(conn);
        assert_eq!(
            msgs.first(),
            Some(&ServerMessage::NodeMoved {
                reason: MoveReason::Composer
            }),
            "{msgs:?}"
        );
        assert!(!failed(&msgs));
    }
    assert_eq!(starts_on(&h), vec!["n2"]);
    assert!(matches!(
        live_calls(&h).first(),
        Some(LivestreamCall::Start { stream_key, .. }) if stream_key == &StreamKey(KEY.into())
    ));
    assert_eq!(
        closes_on(&h),
        Vec::<String>::new(),
        "n1 still carries the pages"
    );

    // Once the pages have switched, the meeting is closed on n1.
    h.now += edgemeet_core::room::RELEASE_OLD_NODE_AFTER_MS;
    h.other.clear();
    h.input(Input::Alarm);
    assert_eq!(closes_on(&h), vec!["n1"]);
    assert_eq!(told_live(&mut h, 1), None, "still live");

    // A second refusal (the registry's view was a heartbeat old) ends the stream.
    h.other.clear();
    h.input(Input::NoComposer {
        meeting_id: meeting,
        livestream: true,
    });
    assert!(
        !h.other
            .iter()
            .any(|e| matches!(e, Effect::RequestNode { .. }))
    );
    let msgs = h.take(2);
    assert!(failed(&msgs), "{msgs:?}");
    assert!(
        msgs.iter()
            .any(|m| matches!(m, ServerMessage::Livestream { active: false, .. }))
    );
}

#[test]
fn with_no_composer_free_anywhere_the_stream_ends_and_the_room_stays_on_its_node() {
    let mut h = Harness::new(None);
    let (_, meeting) = welcome_id(&h.join(1, json!({})));
    h.join(2, json!({}));
    h.send(1, start_msg());
    h.assign_node();
    h.take(1);
    h.take(2);
    h.input(Input::NoComposer {
        meeting_id: meeting.clone(),
        livestream: true,
    });
    h.other.clear();
    h.input(Input::NodeAssigned(None));
    let msgs = h.take(1);
    assert!(failed(&msgs), "{msgs:?}");
    assert!(
        !msgs
            .iter()
            .any(|m| matches!(m, ServerMessage::NodeMoved { .. })),
        "{msgs:?}"
    );
    assert!(closes_on(&h).is_empty());
    assert!(
        !h.other
            .iter()
            .any(|e| matches!(e, Effect::RequestNode { .. })),
        "the room keeps its node: {:?}",
        h.other
    );
    // The same node offered again (its heartbeat was a second old) ends it too.
    h.send(1, start_msg());
    h.input(Input::NoComposer {
        meeting_id: meeting,
        livestream: true,
    });
    h.take(1);
    h.input(Input::NodeAssigned(Some(node("n1"))));
    assert!(failed(&h.take(1)));
}

fn recording_starts_on(h: &Harness) -> Vec<(String, bool)> {
    h.other
        .iter()
        .filter_map(|e| match e {
            Effect::RecordOnNode {
                node,
                start: Some(edgemeet_core::RecordStart { scene, .. }),
                ..
            } => Some((node.id.clone(), scene.is_some())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_composite_recording_refused_for_a_composer_moves_the_room_or_ends_saying_why() {
    use edgemeet_protocol::server::MoveReason;
    let mut h = Harness::new(None);
    let (_, meeting) = welcome_id(&h.join(1, json!({})));
    h.join(2, json!({}));
    h.join(3, json!({}));
    h.assign_node();
    h.other.clear();
    h.send(1, json!({"type": "start_recording", "composite": true}));
    assert_eq!(recording_starts_on(&h), vec![("n1".to_string(), true)]);
    h.take(1);
    h.input(Input::NoComposer {
        meeting_id: meeting.clone(),
        livestream: false,
    });
    h.other.clear();
    h.input(Input::NodeAssigned(Some(node("n2"))));
    assert_eq!(
        h.take(1).first(),
        Some(&ServerMessage::NodeMoved {
            reason: MoveReason::Composer
        })
    );
    assert_eq!(recording_starts_on(&h), vec![("n2".to_string(), true)]);

    // Refused there too: it ends, and everyone hears why.
    h.input(Input::NoComposer {
        meeting_id: meeting,
        livestream: false,
    });
    let msgs = h.take(2);
    assert!(
        msgs.iter().any(|m| matches!(
            m,
            ServerMessage::Error {
                code: ErrorCode::RecordingFailed,
                message,
                ..
            } if message.contains("compose")
        )),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| matches!(m, ServerMessage::Recording { active: false, .. }))
    );
}

#[test]
fn a_recordings_composer_that_stopped_is_told_and_one_that_could_not_go_on_ends_the_recording() {
    let mut h = Harness::new(None);
    let (_, meeting) = welcome_id(&h.join(1, json!({})));
    h.join(2, json!({}));
    h.join(3, json!({}));
    h.assign_node();
    h.send(1, json!({"type": "start_recording", "files": "both"}));
    h.take(1);
    h.take(2);
    h.input(Input::CompositionEnded {
        meeting_id: meeting.clone(),
        livestream: false,
        restarted: true,
    });
    assert!(h.take(2).iter().any(|m| matches!(
        m,
        ServerMessage::Recording {
            active: true,
            restarting: true,
            ..
        }
    )));
    h.input(Input::CompositionEnded {
        meeting_id: meeting,
        livestream: false,
        restarted: false,
    });
    let msgs = h.take(2);
    assert!(
        msgs.iter()
            .any(|m| matches!(m, ServerMessage::Recording { active: false, .. })),
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|m| matches!(
        m,
        ServerMessage::Error {
            code: ErrorCode::RecordingFailed,
            ..
        }
    )));
}

#[test]
fn a_moderator_lays_the_composed_video_out_as_a_grid() {
    let mut h = Harness::new(None);
    h.join(1, json!({}));
    h.join(2, json!({}));
    h.send(1, start_msg());
    h.assign_node();
    assert_eq!(scenes(&h).last().map(|s| s.grid), Some(false));
    h.other.clear();
    h.send(1, json!({"type": "set_composition_layout", "grid": true}));
    assert_eq!(
        scenes(&h).last().map(|s| s.grid),
        Some(true),
        "{:?}",
        h.other
    );
}

#[test]
fn a_shared_screen_becomes_the_composed_main_picture_and_leaves_it_when_stopped() {
    let mut h = Harness::new(None);
    let (ada, meeting) = welcome_id(&h.join(1, json!({})));
    h.join(2, json!({}));
    h.send(1, start_msg());
    h.assign_node();
    assert_eq!(scenes(&h).last().and_then(|s| s.screen.clone()), None);
    let session = edgemeet_protocol::node::session_id(
        h.config.node_secret.as_deref().unwrap(),
        &meeting,
        &ada,
        [3; 16],
    );
    let with_screen = json!([
        {"name": "video", "kind": "video", "source": "camera"},
        {"name": "screen-1", "kind": "video", "source": "screen"},
    ]);
    h.other.clear();
    h.send(
        1,
        json!({"type": "tracks", "session_id": session, "tracks": with_screen}),
    );
    assert_eq!(
        scenes(&h).last().and_then(|s| s.screen.clone()),
        Some(ada.clone())
    );
    h.other.clear();
    h.send(
        1,
        json!({"type": "tracks", "session_id": session, "tracks": [{"name": "video", "kind": "video", "source": "camera"}]}),
    );
    assert_eq!(
        scenes(&h).last().map(|s| s.screen.clone()),
        Some(None),
        "{:?}",
        h.other
    );
}
