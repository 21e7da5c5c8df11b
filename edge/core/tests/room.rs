//! The room state machine driven with an injected clock and a seeded RNG: deterministic.

mod support;

use support::{HS_SECRET, Harness, welcome_id};

use edgemeet_core::room::Mode;
use edgemeet_core::{Effect, Input, NodeInfo, NodeScope, RecordStart, StatusToken};
use edgemeet_protocol::server::{LeaveReason, MediaMode};
use edgemeet_protocol::{ErrorCode, ServerMessage};
use serde_json::json;

#[test]
fn first_join_makes_a_meeting_last_leave_wipes_it() {
    let mut h = Harness::new(None);
    let (_, first_meeting) = welcome_id(&h.join(1, json!({"profile": {"name": "Ada"}})));
    let second = h.join(2, json!({}));
    let ServerMessage::Welcome { participants, .. } = &second else {
        panic!()
    };
    assert_eq!(participants.len(), 2);
    assert_eq!(participants[0].name.as_deref(), Some("Ada"));
    assert!(matches!(
        h.take(1)[0],
        ServerMessage::ParticipantJoined { .. }
    ));

    h.send(1, json!({"type": "set_password", "password": "s3cret"}));
    h.input(Input::Closed { conn: 1 });
    h.input(Input::Closed { conn: 2 });
    assert!(h.room.is_ended());
    assert_eq!(h.room.participant_count(), 0);
    assert!(h.other.contains(&Effect::Ended));

    let again = h.join(3, json!({}));
    let ServerMessage::Welcome {
        meeting_id,
        locked,
        participants,
        ..
    } = &again
    else {
        panic!()
    };
    assert_ne!(*meeting_id, first_meeting);
    assert!(!locked, "the password must not survive the meeting");
    assert_eq!(participants.len(), 1);
}

#[test]
fn the_same_seed_and_clock_give_the_same_ids() {
    let ids = || {
        let mut h = Harness::new(None);
        welcome_id(&h.join(1, json!({})))
    };
    assert_eq!(ids(), ids());
}

#[test]
fn two_go_p2p_three_go_sfu_and_back_after_the_delay() {
    let mut h = Harness::new(None);
    h.join(1, json!({}));
    assert!(
        !h.other
            .iter()
            .any(|e| matches!(e, Effect::RequestNode { .. })),
        "alone: no node"
    );
    let second = h.join(2, json!({}));
    let ServerMessage::Welcome {
        media:
            MediaMode::P2p {
                initiator: true,
                peer,
                standby: None,
            },
        ..
    } = second
    else {
        panic!("{second:?}")
    };
    let first_view = h.take(1);
    assert!(first_view.iter().any(|m| matches!(
        m,
        ServerMessage::MediaMode {
            media: MediaMode::P2p {
                initiator: false,
                ..
            }
        }
    )));
    // A pair asks for the room's node at once, as a standby for a third join.
    assert!(
        h.other
            .iter()
            .any(|e| matches!(e, Effect::RequestNode { .. }))
    );
    h.assign_node();
    for conn in [1, 2] {
        let got = h.take(conn);
        let standby = got.iter().find_map(|m| match m {
            ServerMessage::MediaMode {
                media: MediaMode::P2p {
                    standby: Some(g), ..
                },
            } => Some(g.clone()),
            _ => None,
        });
        assert!(
            standby.is_some_and(|g| g.node_id == "n1" && g.token.split('.').count() == 3),
            "conn {conn}: {got:?}"
        );
    }
    assert!(matches!(h.room.mode(), Some(Mode::P2p { .. })));

    // Signals pass only between the two peers.
    h.send(
        2,
        json!({"type": "signal", "to": peer, "payload": {"sdp": "v=0"}}),
    );
    assert!(matches!(&h.take(1)[..], [ServerMessage::Signal { .. }]));

    // The third join finds the node there: everyone gets its grant at once.
    h.other.clear();
    let third = h.join(3, json!({}));
    assert!(
        matches!(
            &third,
            ServerMessage::Welcome {
                media: MediaMode::Sfu { node: Some(_) },
                ..
            }
        ),
        "{third:?}"
    );
    assert!(
        !h.other
            .iter()
            .any(|e| matches!(e, Effect::RequestNode { .. }))
    );
    for conn in [1, 2] {
        let got = h.take(conn);
        let grant = got.iter().find_map(|m| match m {
            ServerMessage::MediaMode {
                media: MediaMode::Sfu { node: Some(g) },
            } => Some(g.clone()),
            _ => None,
        });
        assert!(
            grant.is_some_and(|g| g.node_id == "n1" && g.token.split('.').count() == 3),
            "conn {conn}: {got:?}"
        );
    }

    h.other.clear();
    h.input(Input::Closed { conn: 3 });
    assert_eq!(
        h.room.mode(),
        Some(&Mode::Sfu),
        "stays on the node until the delay passes"
    );
    let at = h.other.iter().find_map(|e| match e {
        Effect::SetAlarm { at_ms } => Some(*at_ms),
        _ => None,
    });
    assert_eq!(at, Some(h.now + 5_000));
    assert!(h.other.iter().any(|e| matches!(
        e,
        Effect::CloseOnNode {
            scope: NodeScope::Participant(_),
            ..
        }
    )));
    h.other.clear();
    h.now += 5_000;
    h.input(Input::Alarm);
    assert!(matches!(h.room.mode(), Some(Mode::P2p { .. })));
    // Back in P2P the node stays as the pair's standby...
    assert!(
        !h.other
            .iter()
            .any(|e| matches!(e, Effect::CloseOnNode { .. }))
    );
    assert!(h.take(1).iter().any(|m| matches!(
        m,
        ServerMessage::MediaMode {
            media: MediaMode::P2p {
                standby: Some(_),
                ..
            }
        }
    )));
    // ...until one is left alone: then the meeting's sessions on it are closed.
    h.input(Input::Closed { conn: 2 });
    assert!(matches!(h.room.mode(), Some(Mode::None)));
    assert!(h.other.iter().any(|e| matches!(
        e,
        Effect::CloseOnNode {
            scope: NodeScope::Meeting,
            ..
        }
    )));
}

#[test]
fn without_standby_a_pair_uses_no_node_until_a_third_joins() {
    let mut h = Harness::new(None);
    h.config.p2p_standby = false;
    h.join(1, json!({}));
    h.join(2, json!({}));
    assert!(matches!(h.room.mode(), Some(Mode::P2p { .. })));
    assert!(
        !h.other
            .iter()
            .any(|e| matches!(e, Effect::RequestNode { .. })),
        "no node for a pair"
    );
    h.join(3, json!({}));
    assert!(
        h.other
            .iter()
            .any(|e| matches!(e, Effect::RequestNode { .. }))
    );
    h.assign_node();
    h.input(Input::Closed { conn: 3 });
    h.now += 5_000;
    h.other.clear();
    h.input(Input::Alarm);
    // Back in P2P the node is let go, and the pair hears of no standby.
    assert!(matches!(h.room.mode(), Some(Mode::P2p { .. })));
    assert!(h.other.iter().any(|e| matches!(
        e,
        Effect::CloseOnNode {
            scope: NodeScope::Meeting,
            ..
        }
    )));
    assert!(h.take(1).iter().any(|m| matches!(
        m,
        ServerMessage::MediaMode {
            media: MediaMode::P2p { standby: None, .. }
        }
    )));
}

#[test]
fn a_third_join_cancels_the_return_to_p2p() {
    let mut h = Harness::new(None);
    (1..=3).for_each(|c| {
        h.join(c, json!({}));
    });
    h.input(Input::Closed { conn: 3 });
    h.now += 1_000;
    h.join(4, json!({}));
    h.now += 10_000;
    h.input(Input::Alarm);
    assert_eq!(h.room.mode(), Some(&Mode::Sfu));
}

#[test]
fn wrong_passwords_are_rate_limited_per_address_by_the_clock() {
    let mut h = Harness::new(None);
    h.join(1, json!({}));
    h.send(1, json!({"type": "set_password", "password": "hunter2"}));
    // conns 3, 5, 7 share an address.
    for conn in [3, 5, 7] {
        h.open(conn);
        h.send(conn, json!({"type": "join", "password": "guess"}));
        assert_eq!(h.error_code(conn), ErrorCode::PasswordWrong);
    }
    h.open(9);
    h.send(9, json!({"type": "join", "password": "hunter2"}));
    assert_eq!(
        h.error_code(9),
        ErrorCode::PasswordRateLimited,
        "same address, right password, still limited"
    );
    h.now += 60_000;
    h.send(9, json!({"type": "join", "password": "hunter2"}));
    assert!(matches!(
        h.take(9)[0],
        ServerMessage::Welcome { locked: true, .. }
    ));
}

#[test]
fn a_flood_closes_only_the_flooding_socket() {
    let mut h = Harness::new(None);
    h.join(1, json!({}));
    h.join(2, json!({}));
    h.take(1);
    for _ in 0..200 {
        h.send(2, json!({"type": "ping"}));
    }
    assert_eq!(h.closed.get(&2).map(|c| c.0), Some(1008));
    assert_eq!(h.room.participant_count(), 1);
    let left = h.take(1);
    assert!(left.iter().any(|m| matches!(
        m,
        ServerMessage::ParticipantLeft {
            reason: LeaveReason::Disconnected,
            ..
        }
    )));
}

#[test]
fn jwt_host_guests_wait_for_a_moderator_then_knock() {
    use edgemeet_protocol::server::WaitReason;
    use jsonwebtoken::{EncodingKey, Header, encode};
    let mut h = Harness::new(Some("host"));
    let guest = h.join(1, json!({"profile": {"name": "Guest"}}));
    assert!(matches!(
        guest,
        ServerMessage::Waiting {
            reason: WaitReason::HostAbsent
        }
    ));
    assert_eq!(h.room.participant_count(), 0);

    let now_s = h.now / 1000;
    let claims = json!({"iss": "test", "aud": "edgemeet", "sub": "host", "room": "weekly-sync", "exp": now_s + 60,
        "context": {"user": {"name": "Host", "moderator": "true"}, "features": {"recording": true}}});
    let token = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(HS_SECRET.as_bytes()),
    )
    .unwrap();
    h.open(2);
    h.send(2, json!({"type": "join", "token": token}));
    let to_host = h.take(2);
    let Some(ServerMessage::Welcome {
        moderator: true,
        features,
        participants,
        ..
    }) = to_host.first()
    else {
        panic!("{to_host:?}")
    };
    assert_eq!(features, &vec!["recording".to_string()]);
    assert_eq!(participants.len(), 1, "the early guest is not let in");
    // The host sees the early guest knocking, by the name they typed.
    let Some(ServerMessage::Lobby { knocking, .. }) = to_host.get(1) else {
        panic!("{to_host:?}")
    };
    assert_eq!(knocking.len(), 1);
    assert_eq!(knocking[0].name.as_deref(), Some("Guest"));
    assert_eq!(
        h.take(1),
        vec![ServerMessage::Waiting {
            reason: WaitReason::Lobby
        }],
        "the guest hears that the host is in and decides"
    );
    assert_eq!(h.room.participant_count(), 1);

    h.send(2, json!({"type": "admit", "target": knocking[0].id}));
    let admitted = h.take(1);
    let Some(ServerMessage::Welcome {
        moderator: false,
        participants,
        ..
    }) = admitted.first()
    else {
        panic!("{admitted:?}")
    };
    assert_eq!(participants.len(), 2);
    assert_eq!(participants[1].name.as_deref(), Some("Guest"));
}

#[test]
fn speaker_stats_follow_dominant_speaker_events() {
    let mut h = Harness::new(None);
    let (a, meeting) = welcome_id(&h.join(1, json!({})));
    let (b, _) = welcome_id(&h.join(2, json!({})));
    h.input(Input::DominantSpeaker {
        meeting_id: meeting.clone(),
        participant: a.clone(),
    });
    h.now += 3_000;
    h.input(Input::DominantSpeaker {
        meeting_id: meeting.clone(),
        participant: b.clone(),
    });
    h.now += 1_000;
    h.input(Input::DominantSpeaker {
        meeting_id: "old-meeting".into(),
        participant: a.clone(),
    });
    h.take(1);
    h.send(1, json!({"type": "speaker_stats"}));
    let Some(ServerMessage::SpeakerStats { stats }) = h.take(1).pop() else {
        panic!()
    };
    assert_eq!((stats[0].id.clone(), stats[0].speaking_ms), (a, 3_000));
    assert_eq!((stats[1].id.clone(), stats[1].speaking_ms), (b, 1_000));
}

#[test]
fn a_video_paused_for_bandwidth_is_told_to_its_viewer_only() {
    let mut h = Harness::new(None);
    let (a, meeting) = welcome_id(&h.join(1, json!({})));
    let (b, _) = welcome_id(&h.join(2, json!({})));
    let (_c, _) = welcome_id(&h.join(3, json!({})));
    h.take(1);
    h.take(2);
    h.take(3);
    h.input(Input::VideoPaused {
        meeting_id: meeting.clone(),
        viewer: b.clone(),
        publisher: a.clone(),
        track: "video".into(),
        paused: true,
    });
    assert_eq!(
        h.take(2),
        vec![ServerMessage::VideoPaused {
            id: a.clone(),
            track: "video".into(),
            paused: true
        }]
    );
    assert!(h.take(1).is_empty(), "not to the publisher");
    assert!(h.take(3).is_empty(), "not to another viewer");
    // Another meeting's event (an ended one) or an unknown publisher: nothing.
    h.input(Input::VideoPaused {
        meeting_id: "old-meeting".into(),
        viewer: b.clone(),
        publisher: a.clone(),
        track: "video".into(),
        paused: false,
    });
    h.input(Input::VideoPaused {
        meeting_id: meeting,
        viewer: b,
        publisher: "gone".into(),
        track: "video".into(),
        paused: false,
    });
    assert!(h.take(2).is_empty());
}

#[test]
fn the_layers_viewers_need_are_told_to_their_publisher_only() {
    let mut h = Harness::new(None);
    let (a, meeting) = welcome_id(&h.join(1, json!({})));
    let (_b, _) = welcome_id(&h.join(2, json!({})));
    h.take(1);
    h.take(2);
    h.input(Input::LayersNeeded {
        meeting_id: meeting.clone(),
        publisher: a.clone(),
        track: "video".into(),
        rids: vec!["q".into(), "h".into()],
    });
    assert_eq!(
        h.take(1),
        vec![ServerMessage::SendLayers {
            track: "video".into(),
            rids: vec!["q".into(), "h".into()],
        }]
    );
    assert!(h.take(2).is_empty(), "not to the viewers");
    // An ended meeting's event, or one for somebody not in the room: nothing.
    h.input(Input::LayersNeeded {
        meeting_id: "old-meeting".into(),
        publisher: a,
        track: "video".into(),
        rids: vec!["q".into()],
    });
    h.input(Input::LayersNeeded {
        meeting_id: meeting,
        publisher: "gone".into(),
        track: "video".into(),
        rids: vec!["q".into()],
    });
    assert!(h.take(1).is_empty());
    assert!(h.take(2).is_empty());
}

#[test]
fn recording_without_a_grant_asks_the_node_to_record_for_a_local_folder() {
    let mut h = Harness::new(None);
    h.join(1, json!({}));
    h.send(1, json!({"type": "start_recording"}));
    assert!(
        h.take(1)
            .iter()
            .any(|m| matches!(m, ServerMessage::Recording { active: true, .. }))
    );
    h.input(Input::NodeAssigned(Some(NodeInfo {
        id: "n1".into(),
        url: "http://127.0.0.1:9".into(),
        region: "eu".into(),
    })));
    assert!(h.other.iter().any(|e| matches!(
        e,
        Effect::RecordOnNode {
            start: Some(RecordStart { dropbox: None, .. }),
            ..
        }
    )));
}

#[test]
fn recording_moves_two_to_the_node_and_is_refused_with_e2ee() {
    let mut h = Harness::new(None);
    h.join(1, json!({}));
    h.join(2, json!({}));
    assert!(matches!(h.room.mode(), Some(Mode::P2p { .. })));
    // The pair asked for its standby node; the answer comes after the recording starts.
    assert!(
        h.other
            .iter()
            .any(|e| matches!(e, Effect::RequestNode { .. }))
    );
    let grant = json!({"access_token": "sl.secret-access", "refresh_token": "secret-refresh", "app_key": "appkey"});

    // E2EE on: refused.
    h.send(
        2,
        json!({"type": "media_state", "audio": true, "video": true, "e2ee": true}),
    );
    h.take(1);
    h.send(1, json!({"type": "start_recording", "dropbox": grant}));
    assert_eq!(h.error_code(1), ErrorCode::RecordingE2ee);
    h.send(
        2,
        json!({"type": "media_state", "audio": true, "video": true, "e2ee": false}),
    );
    h.take(1);

    h.other.clear();
    h.send(1, json!({"type": "start_recording", "dropbox": grant}));
    assert_eq!(
        h.room.mode(),
        Some(&Mode::Sfu),
        "recording needs the node, even for two"
    );
    assert!(
        h.take(2)
            .iter()
            .any(|m| matches!(m, ServerMessage::Recording { active: true, .. }))
    );
    h.assign_node();
    let start = h.other.iter().find_map(|e| match e {
        Effect::RecordOnNode {
            start: Some(RecordStart {
                dropbox: Some(g), ..
            }),
            token,
            ..
        } => Some((g.access_token.clone(), token.clone())),
        _ => None,
    });
    let (access, token) = start.expect("the node is asked to record");
    assert_eq!(access, "sl.secret-access");
    assert_eq!(token.split('.').count(), 3);
    // The stored snapshot of the room never holds the Dropbox grant.
    let snapshot = serde_json::to_string(&h.room).unwrap();
    assert!(!snapshot.contains("secret-access") && !snapshot.contains("secret-refresh"));

    h.send(1, json!({"type": "start_recording", "dropbox": grant}));
    assert!(h.take(1).iter().any(|m| matches!(
        m,
        ServerMessage::Error {
            code: ErrorCode::RecordingActive,
            ..
        }
    )));

    // Turning E2EE on stops it.
    h.other.clear();
    h.send(2, json!({"type": "media_state", "e2ee": true}));
    assert!(
        h.other
            .iter()
            .any(|e| matches!(e, Effect::RecordOnNode { start: None, .. }))
    );
    assert!(
        h.take(1)
            .iter()
            .any(|m| matches!(m, ServerMessage::Recording { active: false, .. }))
    );
}

#[test]
fn recording_needs_the_feature_in_jwt_rooms() {
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
    h.join(1, json!({"token": token(json!({}))}));
    h.send(
        1,
        json!({"type": "start_recording", "dropbox": {"access_token": "a", "app_key": "k"}}),
    );
    assert_eq!(h.error_code(1), ErrorCode::RecordingNotAllowed);
    h.join(2, json!({"token": token(json!({"recording": "true"}))}));
    h.take(2);
    h.send(
        2,
        json!({"type": "start_recording", "dropbox": {"access_token": "a", "app_key": "k"}}),
    );
    assert!(
        h.take(2)
            .iter()
            .any(|m| matches!(m, ServerMessage::Recording { active: true, .. }))
    );
}

#[test]
fn the_status_link_goes_to_the_recorder_alone_and_is_kept_nowhere() {
    let mut h = Harness::new(None);
    let (ada, meeting) = welcome_id(&h.join(1, json!({})));
    h.join(2, json!({}));
    h.join(3, json!({}));
    h.assign_node();
    for conn in [1, 2, 3] {
        h.take(conn);
    }
    h.other.clear();
    h.send(1, json!({"type": "start_recording"}));
    let recorder = h.other.iter().find_map(|e| match e {
        Effect::RecordOnNode {
            start: Some(RecordStart { recorder, .. }),
            ..
        } => Some(recorder.clone()),
        _ => None,
    });
    assert_eq!(recorder.as_deref(), Some(ada.as_str()), "{:?}", h.other);
    for conn in [1, 2, 3] {
        h.take(conn);
    }

    // The node's answer: the recorder's socket gets the link, nobody else gets anything.
    let token = "5f0c2e9a1b7d4c3e8f6a0b1c2d3e4f5a";
    let started = Input::RecordingStarted {
        meeting_id: meeting.clone(),
        recorder: ada.clone(),
        status_token: StatusToken(token.into()),
        recording_id: None,
    };
    assert!(
        !format!("{started:?}").contains(token),
        "Debug shows the token"
    );
    h.input(started);
    assert_eq!(
        h.take(1),
        [ServerMessage::RecordingStatusLink {
            token: token.into()
        }]
    );
    for conn in [2, 3] {
        assert_eq!(h.take(conn), [], "conn {conn} heard of the link");
    }
    // Not in the room's stored snapshot, nor in its debug output.
    let snapshot = serde_json::to_string(&h.room).unwrap();
    assert!(!snapshot.contains(token), "{snapshot}");
    assert!(!format!("{:?}", h.room).contains(token));

    // A token that is not 32 lowercase hex digits, another meeting's answer, or someone who is
    // not in the meeting: no link for anyone.
    for (meeting_id, recorder, token) in [
        (
            meeting.as_str(),
            ada.as_str(),
            "5F0C2E9A1B7D4C3E8F6A0B1C2D3E4F5A",
        ),
        (meeting.as_str(), ada.as_str(), "5f0c2e9a"),
        (
            meeting.as_str(),
            ada.as_str(),
            "../../v1/recording-status/5f0c2e9a",
        ),
        ("an-earlier-meeting", ada.as_str(), token),
        (meeting.as_str(), "not-a-participant", token),
    ] {
        h.input(Input::RecordingStarted {
            meeting_id: meeting_id.into(),
            recorder: recorder.into(),
            status_token: StatusToken(token.into()),
            recording_id: None,
        });
        for conn in [1, 2, 3] {
            assert_eq!(h.take(conn), [], "{meeting_id} {recorder} {token}");
        }
    }

    // A start answer that arrives after the recorder stopped still reaches them (the files
    // exist all the same); after they left, it reaches no one.
    h.send(1, json!({"type": "stop_recording"}));
    for conn in [1, 2, 3] {
        h.take(conn);
    }
    let later = "00112233445566778899aabbccddeeff";
    h.input(Input::RecordingStarted {
        meeting_id: meeting.clone(),
        recorder: ada.clone(),
        status_token: StatusToken(later.into()),
        recording_id: None,
    });
    assert_eq!(
        h.take(1),
        [ServerMessage::RecordingStatusLink {
            token: later.into()
        }]
    );
    h.input(Input::Closed { conn: 1 });
    for conn in [2, 3] {
        h.take(conn);
    }
    h.input(Input::RecordingStarted {
        meeting_id: meeting,
        recorder: ada,
        status_token: StatusToken(later.into()),
        recording_id: None,
    });
    for conn in [2, 3] {
        assert_eq!(h.take(conn), []);
    }
    assert!(!serde_json::to_string(&h.room).unwrap().contains(later));
}

#[test]
fn the_operators_last_n_reaches_each_page_in_its_welcome() {
    let mut h = Harness::new(None);
    let ServerMessage::Welcome { last_n, .. } = h.join(1, json!({})) else {
        panic!()
    };
    assert_eq!(last_n, None, "no cap unless the operator sets one");
    let mut h = Harness::new(None);
    h.config.last_n = Some(3);
    let ServerMessage::Welcome { last_n, .. } = h.join(1, json!({})) else {
        panic!()
    };
    assert_eq!(last_n, Some(3));
    let mut bad = h.config.clone();
    bad.last_n = Some(0);
    assert!(bad.validate().is_err(), "a cap of 0 is refused");
}
