//! The lobby (knocking), roles (`moderation = "first"`, grant and take back) and ending a meeting
//! for everyone, driven through the room state machine.

mod support;

use support::{Harness, welcome_id};

use edgemeet_core::{Effect, NodeScope};
use edgemeet_protocol::lobby::{Knocker, RefuseReason};
use edgemeet_protocol::server::WaitReason;
use edgemeet_protocol::{ErrorCode, ServerMessage};
use serde_json::json;

/// The last `lobby` message a socket got: who knocks, as that participant sees it.
fn lobby(h: &mut Harness, conn: u64) -> (bool, Vec<Knocker>) {
    let msgs = h.take(conn);
    msgs.into_iter()
        .rev()
        .find_map(|m| match m {
            ServerMessage::Lobby { enabled, knocking } => Some((enabled, knocking)),
            _ => None,
        })
        .expect("a lobby message")
}

fn names(knocking: &[Knocker]) -> Vec<&str> {
    knocking
        .iter()
        .map(|k| k.name.as_deref().unwrap_or(""))
        .collect()
}

#[test]
fn knock_admit_refuse_and_admit_all() {
    let mut h = Harness::new(None);
    welcome_id(&h.join(1, json!({"profile": {"name": "Ada"}})));
    h.join(2, json!({}));
    h.take(1);
    h.send(1, json!({"type": "set_lobby", "enabled": true}));
    assert_eq!(lobby(&mut h, 1), (true, vec![]));
    assert_eq!(lobby(&mut h, 2), (true, vec![]), "everyone sees it is on");

    // A newcomer waits with the name they typed; every moderator sees the knock (open rooms:
    // everyone moderates).
    let answer = h.join(3, json!({"profile": {"name": "Bob"}}));
    assert_eq!(
        answer,
        ServerMessage::Waiting {
            reason: WaitReason::Lobby
        }
    );
    assert_eq!(h.room.participant_count(), 2);
    let (_, knocking) = lobby(&mut h, 1);
    assert_eq!(names(&knocking), ["Bob"]);
    assert_eq!(names(&lobby(&mut h, 2).1), ["Bob"]);
    h.send(3, json!({"type": "chat", "text": "let me in"}));
    assert_eq!(h.error_code(3), ErrorCode::NotJoined);

    h.send(2, json!({"type": "admit", "target": knocking[0].id}));
    let in_ = h.take(3);
    let Some(ServerMessage::Welcome {
        participants,
        lobby: true,
        ..
    }) = in_.first()
    else {
        panic!("{in_:?}")
    };
    assert_eq!(participants.len(), 3);
    assert_eq!(participants[2].name.as_deref(), Some("Bob"));
    let to_ada = h.take(1);
    assert!(
        to_ada
            .iter()
            .any(|m| matches!(m, ServerMessage::ParticipantJoined { .. }))
    );
    assert!(to_ada.contains(&ServerMessage::Lobby {
        enabled: true,
        knocking: vec![]
    }));

    // Refused: told, and the socket closes with 4005; the others stop seeing the knock.
    h.join(4, json!({"profile": {"name": "Mallory"}}));
    let (_, knocking) = lobby(&mut h, 1);
    h.send(1, json!({"type": "refuse", "target": knocking[0].id}));
    assert_eq!(
        h.take(4),
        vec![ServerMessage::Refused {
            reason: RefuseReason::Moderator
        }]
    );
    assert_eq!(h.closed[&4].0, 4005);
    assert_eq!(lobby(&mut h, 1), (true, vec![]));
    h.send(1, json!({"type": "admit", "target": knocking[0].id}));
    assert_eq!(
        h.error_code(1),
        ErrorCode::UnknownParticipant,
        "a refused knock id is gone"
    );

    // Admit all, in knock order; someone who gives up knocking disappears from the list.
    for (conn, name) in [(5, "Cy"), (6, "Di"), (7, "Ed")] {
        h.join(conn, json!({"profile": {"name": name}}));
    }
    assert_eq!(names(&lobby(&mut h, 1).1), ["Cy", "Di", "Ed"]);
    h.input(edgemeet_core::Input::Closed { conn: 6 });
    assert_eq!(names(&lobby(&mut h, 1).1), ["Cy", "Ed"]);
    h.send(3, json!({"type": "admit_all"}));
    for conn in [5, 7] {
        assert!(matches!(
            h.take(conn).first(),
            Some(ServerMessage::Welcome { .. })
        ));
    }
    assert_eq!(h.room.participant_count(), 5);

    // Off: newcomers come straight in, and those knocking are let in too.
    h.join(8, json!({"profile": {"name": "Fay"}}));
    h.send(1, json!({"type": "set_lobby", "enabled": false}));
    assert!(matches!(
        h.take(8).first(),
        Some(ServerMessage::Welcome { lobby: false, .. })
    ));
    assert!(matches!(
        h.join(9, json!({})),
        ServerMessage::Welcome { .. }
    ));
    // Refuse all.
    h.send(1, json!({"type": "set_lobby", "enabled": true}));
    h.join(10, json!({}));
    h.join(11, json!({}));
    h.send(1, json!({"type": "refuse_all"}));
    assert_eq!((h.closed[&10].0, h.closed[&11].0), (4005, 4005));
    assert_eq!(h.room.participant_count(), 7);
}

#[test]
fn only_moderators_run_the_lobby_in_token_rooms() {
    let mut h = Harness::new(Some("acme"));
    let host = h.token(
        "acme",
        json!({"name": "Host", "moderator": true}),
        json!({}),
    );
    let user = h.token("acme", json!({"name": "Uma"}), json!({}));
    h.join(1, json!({"token": host}));
    h.join(2, json!({"token": user.clone()}));
    h.take(1);
    h.send(2, json!({"type": "set_lobby", "enabled": true}));
    assert_eq!(h.error_code(2), ErrorCode::NotModerator);
    h.send(1, json!({"type": "set_lobby", "enabled": true}));
    h.take(1);
    assert_eq!(
        lobby(&mut h, 2),
        (true, vec![]),
        "a participant sees the lobby is on"
    );
    // A participant with a token knocks too; only the moderator sees who.
    assert!(matches!(
        h.join(3, json!({"token": user})),
        ServerMessage::Waiting { .. }
    ));
    let (_, knocking) = lobby(&mut h, 1);
    assert_eq!(names(&knocking), ["Uma"], "the token's name");
    assert!(
        h.take(2).is_empty(),
        "participants do not see who knocks: {:?}",
        h.inbox
    );
    for msg in [
        json!({"type": "admit", "target": knocking[0].id}),
        json!({"type": "admit_all"}),
        json!({"type": "refuse", "target": knocking[0].id}),
        json!({"type": "refuse_all"}),
    ] {
        h.send(2, msg);
        assert_eq!(h.error_code(2), ErrorCode::NotModerator);
    }
    // A host with a token skips the lobby.
    assert!(matches!(
        h.join(
            4,
            json!({"token": h.token("acme", json!({"moderator": true}), json!({}))})
        ),
        ServerMessage::Welcome { .. }
    ));
    h.send(1, json!({"type": "admit", "target": knocking[0].id}));
    let Some(ServerMessage::Welcome {
        moderator: false, ..
    }) = h.take(3).first().cloned()
    else {
        panic!("admitted as what the token says")
    };
}

#[test]
fn the_lobby_ends_with_the_meeting() {
    let mut h = Harness::new(None);
    let (_, first_meeting) = welcome_id(&h.join(1, json!({})));
    h.send(1, json!({"type": "set_lobby", "enabled": true}));
    h.join(2, json!({"profile": {"name": "Bob"}}));
    h.send(1, json!({"type": "leave"}));
    assert_eq!(
        h.take(2),
        vec![ServerMessage::Refused {
            reason: RefuseReason::MeetingEnded
        }],
        "someone knocking at a meeting that ends is told"
    );
    assert_eq!(h.closed[&2].0, 4004);
    assert!(h.room.is_ended());
    assert!(h.other.contains(&Effect::Ended));
    let (_, meeting) = welcome_id(&h.join(3, json!({})));
    assert_ne!(meeting, first_meeting);
    assert!(matches!(
        h.join(4, json!({})),
        ServerMessage::Welcome { lobby: false, .. }
    ));
}

#[test]
fn jwt_host_knockers_wait_for_the_next_host_when_the_meeting_ends() {
    let mut h = Harness::new(Some("host"));
    let host = h.token("host", json!({"moderator": true}), json!({}));
    h.join(1, json!({"token": host.clone()}));
    h.send(1, json!({"type": "set_lobby", "enabled": true}));
    h.join(2, json!({"profile": {"name": "Gus"}}));
    h.send(1, json!({"type": "leave"}));
    assert_eq!(
        h.take(2),
        vec![ServerMessage::Waiting {
            reason: WaitReason::HostAbsent
        }]
    );
    assert!(!h.closed.contains_key(&2));
    // The next host finds them knocking (a fresh meeting: its lobby is off, they still knock).
    h.open(3);
    h.send(3, json!({"type": "join", "token": host}));
    let msgs = h.take(3);
    assert!(
        matches!(&msgs[1], ServerMessage::Lobby { enabled: false, knocking } if names(knocking) == ["Gus"]),
        "{msgs:?}"
    );
}

#[test]
fn first_to_arrive_moderates_grants_and_takes_back() {
    let mut h = Harness::new(Some("first"));
    let (ada, _) = welcome_id(&h.join(1, json!({"profile": {"name": "Ada"}})));
    let w = h.join(2, json!({"profile": {"name": "Bob"}}));
    let ServerMessage::Welcome {
        you: bob,
        moderator: false,
        participants,
        ..
    } = w
    else {
        panic!("{w:?}")
    };
    assert!(participants[0].moderator && !participants[1].moderator);
    let (cy, _) = welcome_id(&h.join(3, json!({})));
    h.take(1);
    h.take(2);

    // Only moderators kick, mute others, lock, run the lobby, end for all, grant roles.
    for msg in [
        json!({"type": "kick", "target": cy}),
        json!({"type": "mute", "target": cy, "kind": "audio"}),
        json!({"type": "mute_all", "kind": "audio"}),
        json!({"type": "set_password", "password": "pw"}),
        json!({"type": "set_lobby", "enabled": true}),
        json!({"type": "end_meeting"}),
        json!({"type": "set_moderator", "target": bob, "moderator": true}),
    ] {
        h.send(2, msg.clone());
        assert_eq!(h.error_code(2), ErrorCode::NotModerator, "{msg}");
    }
    assert!(h.take(3).is_empty());

    // Grant: everyone sees it; the new moderator can act.
    h.send(
        1,
        json!({"type": "set_moderator", "target": bob, "moderator": true}),
    );
    for conn in [1, 2, 3] {
        let msgs = h.take(conn);
        assert!(
            matches!(&msgs[..], [ServerMessage::ParticipantUpdated { participant }] if participant.id == bob && participant.moderator),
            "{msgs:?}"
        );
    }
    h.send(2, json!({"type": "mute", "target": cy, "kind": "audio"}));
    assert!(matches!(
        h.take(3).first(),
        Some(ServerMessage::Muted { .. })
    ));
    // Take back.
    h.send(
        1,
        json!({"type": "set_moderator", "target": bob, "moderator": false}),
    );
    h.take(2);
    h.send(2, json!({"type": "kick", "target": cy}));
    assert_eq!(h.error_code(2), ErrorCode::NotModerator);
    // The last moderator keeps the role.
    h.send(
        1,
        json!({"type": "set_moderator", "target": ada, "moderator": false}),
    );
    assert_eq!(h.error_code(1), ErrorCode::RolesFixed);

    // The moderator leaves: the earliest still in takes over, and can act.
    h.send(1, json!({"type": "leave"}));
    let msgs = h.take(3);
    assert!(
        msgs.iter().any(|m| matches!(m, ServerMessage::ParticipantUpdated { participant } if participant.id == bob && participant.moderator)),
        "{msgs:?}"
    );
    h.send(2, json!({"type": "kick", "target": cy}));
    assert!(matches!(
        h.take(3).first(),
        Some(ServerMessage::Kicked { .. })
    ));
    // A newcomer does not moderate while someone does.
    assert!(matches!(
        h.join(4, json!({})),
        ServerMessage::Welcome {
            moderator: false,
            ..
        }
    ));
}

#[test]
fn where_everyone_moderates_roles_are_fixed() {
    let mut h = Harness::new(None);
    h.join(1, json!({}));
    let (b, _) = welcome_id(&h.join(2, json!({})));
    h.take(1);
    h.send(
        1,
        json!({"type": "set_moderator", "target": b, "moderator": false}),
    );
    assert_eq!(h.error_code(1), ErrorCode::RolesFixed);
}

#[test]
fn a_moderator_ends_the_meeting_for_everyone() {
    let mut h = Harness::new(Some("first"));
    let (ada, meeting) = welcome_id(&h.join(1, json!({})));
    h.join(2, json!({}));
    h.join(3, json!({}));
    h.assign_node();
    h.send(1, json!({"type": "set_lobby", "enabled": true}));
    h.join(4, json!({"profile": {"name": "Late"}}));
    for conn in 1..=4 {
        h.take(conn);
    }
    h.other.clear();
    h.send(2, json!({"type": "end_meeting"}));
    assert_eq!(h.error_code(2), ErrorCode::NotModerator);

    h.send(1, json!({"type": "end_meeting"}));
    for conn in 1..=4 {
        assert_eq!(
            h.take(conn),
            vec![ServerMessage::MeetingEnded { by: ada.clone() }],
            "socket {conn}"
        );
        assert_eq!(h.closed[&conn], (4004, "meeting ended".to_string()));
    }
    assert!(h.room.is_ended());
    assert!(h.other.iter().any(|e| matches!(e,
        Effect::CloseOnNode { meeting_id, scope: NodeScope::Meeting, .. } if *meeting_id == meeting)));
    assert!(h.other.contains(&Effect::Ended));
    // Whoever comes next starts a new meeting.
    let (_, next) = welcome_id(&h.join(5, json!({})));
    assert_ne!(next, meeting);
}

#[test]
fn raised_hands_are_seen_by_everyone_in_the_order_they_went_up() {
    let mut h = Harness::new(None);
    let (ada, _) = welcome_id(&h.join(1, json!({})));
    let (bob, _) = welcome_id(&h.join(2, json!({})));
    h.take(1);
    let hand_of = |msgs: Vec<ServerMessage>| match msgs.as_slice() {
        [ServerMessage::ParticipantUpdated { participant }] => {
            (participant.id.clone(), participant.hand)
        }
        other => panic!("{other:?}"),
    };
    h.send(2, json!({"type": "raise_hand", "raised": true}));
    let bob_at = h.now;
    assert_eq!(hand_of(h.take(1)), (bob.clone(), Some(bob_at)));
    h.take(2);
    h.now += 1000;
    h.send(1, json!({"type": "raise_hand", "raised": true}));
    assert_eq!(hand_of(h.take(2)), (ada.clone(), Some(bob_at + 1000)));
    h.take(1);
    // Raising again keeps the place; a newcomer sees both hands.
    h.now += 1000;
    h.send(2, json!({"type": "raise_hand", "raised": true}));
    assert_eq!(hand_of(h.take(1)), (bob.clone(), Some(bob_at)));
    let ServerMessage::Welcome { participants, .. } = h.join(3, json!({})) else {
        panic!()
    };
    assert_eq!(
        participants.iter().map(|p| p.hand).collect::<Vec<_>>(),
        [Some(bob_at + 1000), Some(bob_at), None]
    );
    h.send(2, json!({"type": "raise_hand", "raised": false}));
    assert_eq!(hand_of(h.take(3)), (bob, None));
}

#[test]
fn reactions_reach_everyone_and_are_kept_nowhere() {
    let mut h = Harness::new(None);
    let (ada, _) = welcome_id(&h.join(1, json!({})));
    h.join(2, json!({}));
    h.take(1);
    h.send(1, json!({"type": "react", "reaction": "applause"}));
    for conn in [1, 2] {
        assert_eq!(
            h.take(conn),
            vec![ServerMessage::Reaction {
                from: ada.clone(),
                reaction: edgemeet_protocol::reaction::Reaction::Applause
            }]
        );
    }
    // Nothing of it stays in the room's state (what a host keeps across hibernation).
    let state = serde_json::to_string(&h.room).unwrap();
    assert!(!state.contains("applause"), "{state}");
    h.send(1, json!({"type": "react", "reaction": "<script>"}));
    assert_eq!(h.error_code(1), ErrorCode::InvalidMessage);
    assert!(h.take(2).is_empty());
}
