//! Surviving a dropped socket: resume with the secret from `welcome`, sockets that go silent,
//! the resume window. Deterministic: the clock and the alarm are driven by the test.

mod support;

use edgemeet_core::{Effect, Input};
use edgemeet_protocol::server::LeaveReason;
use edgemeet_protocol::{ErrorCode, ServerMessage};
use serde_json::json;
use support::{Harness, welcome_id};

/// The resume secret a welcome carries.
fn secret_of(msg: &ServerMessage) -> String {
    match msg {
        ServerMessage::Welcome {
            resume: Some(r), ..
        } => r.secret.0.clone(),
        other => panic!("expected a welcome with a resume secret, got {other:?}"),
    }
}

/// Whether any message reports a leave or a join.
fn leaves_or_joins(msgs: &[ServerMessage]) -> Vec<&ServerMessage> {
    msgs.iter()
        .filter(|m| {
            matches!(
                m,
                ServerMessage::ParticipantLeft { .. } | ServerMessage::ParticipantJoined { .. }
            )
        })
        .collect()
}

/// `participant_updated` messages as (id, away).
fn away_updates(msgs: &[ServerMessage]) -> Vec<(String, bool)> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMessage::ParticipantUpdated { participant } => {
                Some((participant.id.clone(), participant.away))
            }
            _ => None,
        })
        .collect()
}

fn resume(h: &mut Harness, conn: u64, id: &str, secret: &str) -> Option<ServerMessage> {
    h.open(conn);
    h.send(conn, json!({"type": "resume", "id": id, "secret": secret}));
    h.take(conn).into_iter().next()
}

#[test]
fn a_lost_socket_resumes_as_the_same_participant_with_no_leave_or_join() {
    let mut h = Harness::new(None);
    let wa = h.join(1, json!({"profile": {"name": "Ada"}}));
    let (ada, meeting) = welcome_id(&wa);
    let secret = secret_of(&wa);
    assert_eq!(secret.len(), 32, "128 random bits");
    let snapshot = serde_json::to_string(&h.room).unwrap();
    assert!(
        !snapshot.contains(&secret),
        "a stored room (the Worker's snapshot) holds only the secret's hash"
    );
    h.join(2, json!({}));
    h.send(1, json!({"type": "set_password", "password": "pw"}));
    h.take(1);
    h.take(2);

    h.input(Input::Lost { conn: 1 });
    let seen = h.take(2);
    assert_eq!(away_updates(&seen), [(ada.clone(), true)], "{seen:?}");
    assert!(leaves_or_joins(&seen).is_empty());
    assert_eq!(h.room.participant_count(), 2, "still in the meeting");

    h.now += 5_000;
    h.input(Input::Alarm);
    let w = resume(&mut h, 3, &ada, &secret).expect("an answer");
    let ServerMessage::Welcome {
        ref you,
        ref meeting_id,
        moderator,
        locked,
        ref participants,
        ..
    } = w
    else {
        panic!("expected welcome, got {w:?}");
    };
    assert_eq!(
        (you, meeting_id),
        (&ada, &meeting),
        "same participant, same meeting"
    );
    assert!(moderator && locked, "same role; no password asked again");
    assert_eq!(participants.len(), 2);
    assert!(participants.iter().all(|p| !p.away));
    let seen = h.take(2);
    assert_eq!(away_updates(&seen), [(ada.clone(), false)], "{seen:?}");
    assert!(leaves_or_joins(&seen).is_empty());

    // The new socket is the participant's: chat from it reaches the other.
    h.send(3, json!({"type": "chat", "text": "back"}));
    assert!(
        h.take(2)
            .iter()
            .any(|m| matches!(m, ServerMessage::Chat { from, .. } if *from == ada))
    );

    // A secret works once: the old one is void, the new welcome's is the one.
    assert!(matches!(
        resume(&mut h, 4, &ada, &secret),
        Some(ServerMessage::Error {
            code: ErrorCode::ResumeFailed,
            ..
        })
    ));
    assert_ne!(secret_of(&w), secret);
}

#[test]
fn wrong_secrets_and_unknown_ids_are_refused_alike_and_change_nothing() {
    let mut h = Harness::new(None);
    let wa = h.join(1, json!({}));
    let (ada, _) = welcome_id(&wa);
    let secret = secret_of(&wa);
    h.join(2, json!({}));
    h.take(2);
    h.input(Input::Lost { conn: 1 });
    h.take(2);
    let wrong = "0".repeat(32);
    for (conn, id, s) in [
        (3, ada.as_str(), wrong.as_str()),
        (4, "ffffffffffff", &secret),
    ] {
        h.open(conn);
        h.send(conn, json!({"type": "resume", "id": id, "secret": s}));
        assert_eq!(h.error_code(conn), ErrorCode::ResumeFailed);
    }
    assert!(h.take(2).is_empty(), "the others notice nothing");
    // A refused socket may still join as someone new.
    let w = h.try_join(3, json!({})).unwrap();
    assert_ne!(welcome_id(&w).0, ada);
}

#[test]
fn away_longer_than_the_window_is_a_leave_and_resume_is_refused() {
    let mut h = Harness::new(None);
    let wa = h.join(1, json!({}));
    let (ada, _) = welcome_id(&wa);
    let secret = secret_of(&wa);
    h.join(2, json!({}));
    h.take(2);
    h.now += 2_000;
    h.send(2, json!({"type": "ping"}));
    h.input(Input::Lost { conn: 1 });
    h.take(2);
    // The window counts from when Ada was last heard (her join), not from the drop.
    h.now += 27_999;
    h.send(2, json!({"type": "ping"}));
    h.input(Input::Alarm);
    assert!(leaves_or_joins(&h.take(2)).is_empty(), "not yet");
    h.now += 1;
    h.input(Input::Alarm);
    let seen = h.take(2);
    assert!(
        seen.iter().any(|m| matches!(m, ServerMessage::ParticipantLeft { id, reason: LeaveReason::Disconnected } if *id == ada)),
        "{seen:?}"
    );
    assert_eq!(h.room.participant_count(), 1);
    assert!(matches!(
        resume(&mut h, 3, &ada, &secret),
        Some(ServerMessage::Error {
            code: ErrorCode::ResumeFailed,
            ..
        })
    ));
}

#[test]
fn a_socket_that_goes_silent_is_dropped_after_the_idle_timeout() {
    let mut h = Harness::new(None);
    let wa = h.join(1, json!({}));
    let (ada, _) = welcome_id(&wa);
    h.join(2, json!({}));
    h.take(2);
    // Bob pings every 5 s (on the Worker, some pings are answered without the core: `Heard`);
    // Ada says nothing from her join on.
    for step in 1..=3 {
        h.now += 5_000;
        if step == 2 {
            h.input(Input::Heard {
                conn: 2,
                at_ms: h.now,
            });
        } else {
            h.send(2, json!({"type": "ping"}));
        }
        h.input(Input::Alarm);
    }
    assert_eq!(
        h.closed.get(&1).map(|c| c.0),
        Some(4002),
        "closed as silent at 15 s"
    );
    assert!(!h.closed.contains_key(&2), "a socket that pings stays");
    let seen = h.take(2);
    assert_eq!(
        away_updates(&seen),
        [(ada.clone(), true)],
        "the roster shows it"
    );
    h.now += 15_000;
    h.send(2, json!({"type": "ping"}));
    h.input(Input::Alarm);
    assert!(
        h.take(2)
            .iter()
            .any(|m| matches!(m, ServerMessage::ParticipantLeft { id, .. } if *id == ada))
    );
}

#[test]
fn the_page_may_resume_before_the_edge_notices_its_old_socket_died() {
    let mut h = Harness::new(None);
    let wa = h.join(1, json!({}));
    let (ada, _) = welcome_id(&wa);
    h.join(2, json!({}));
    h.take(2);
    let w = resume(&mut h, 3, &ada, &secret_of(&wa)).unwrap();
    assert_eq!(welcome_id(&w).0, ada);
    assert_eq!(
        h.closed.get(&1).map(|c| c.0),
        Some(4003),
        "the old socket goes"
    );
    assert!(h.take(2).is_empty(), "the others see nothing at all");
    // The host then reports the old socket closed: nothing more happens.
    h.input(Input::Closed { conn: 1 });
    assert!(h.take(2).is_empty());
    assert_eq!(h.room.participant_count(), 2);
}

#[test]
fn alone_and_lost_the_meeting_waits_for_the_resume_then_ends() {
    let mut h = Harness::new(None);
    let wa = h.join(1, json!({}));
    let (ada, meeting) = welcome_id(&wa);
    h.input(Input::Lost { conn: 1 });
    assert!(!h.other.iter().any(|e| matches!(e, Effect::Ended)));
    assert!(!h.room.is_ended(), "kept for the resume window");
    h.now += 10_000;
    let w = resume(&mut h, 2, &ada, &secret_of(&wa)).unwrap();
    assert_eq!(welcome_id(&w), (ada, meeting), "the same meeting");

    h.input(Input::Lost { conn: 2 });
    h.now += 30_000;
    h.input(Input::Alarm);
    assert!(h.other.iter().any(|e| matches!(e, Effect::Ended)));
    assert!(h.room.is_ended());
}

#[test]
fn a_closed_socket_or_a_kick_while_away_is_a_leave_at_once() {
    let mut h = Harness::new(None);
    let (ada, _) = welcome_id(&h.join(1, json!({})));
    let (bob, _) = welcome_id(&h.join(2, json!({})));
    h.join(3, json!({}));
    h.take(1);
    // A close frame from the page (a reload, a closed tab: its secret is gone anyway).
    h.input(Input::Closed { conn: 3 });
    assert!(leaves_or_joins(&h.take(1)).len() == 1);
    // A moderator may remove someone who is away.
    h.input(Input::Lost { conn: 2 });
    h.take(1);
    h.send(1, json!({"type": "kick", "target": bob}));
    assert!(h.take(1).iter().any(|m| matches!(
        m,
        ServerMessage::ParticipantLeft {
            reason: LeaveReason::Kicked,
            ..
        }
    )));
    assert_eq!(h.room.participant_count(), 1);
    let _ = ada;
}
