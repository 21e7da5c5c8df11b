//! Meetings survive a dropped socket: a page comes back with its resume secret as the same
//! participant (same id, role, no password), the others see it away and back but no leave or
//! join; a socket that goes silent is dropped and the roster shows it. The fixture keeps the
//! defaults: `idle_timeout_ms` 15 s, `resume_window_ms` 30 s.

use std::time::{Duration, Instant};

use edgemeet_tests::client::Event;
use edgemeet_tests::{Client, Edge, unique_room};
use serde_json::{Value, json};

/// The fixture's `limits.resume_window_ms`.
const RESUME_WINDOW: Duration = Duration::from_secs(30);

/// Send `resume` on a fresh socket; the first answer.
async fn resume(edge: &Edge, room: &str, id: &str, secret: &str) -> (Client, Value) {
    let mut c = Client::room(edge, room).await;
    c.send(json!({"type": "resume", "id": id, "secret": secret}))
        .await;
    let answer = c.recv().await;
    (c, answer)
}

fn secret(welcome: &Value) -> String {
    let s = welcome["resume"]["secret"]
        .as_str()
        .expect("a resume secret");
    assert!(s.len() >= 32, "128 random bits or more");
    s.to_string()
}

/// Messages to `c` until a `participant_updated` of `id` with `away`; none of them may be a
/// leave or a join.
async fn until_away(c: &mut Client, id: &str, away: bool) {
    loop {
        let m = c.recv().await;
        assert!(
            m["type"] != "participant_left" && m["type"] != "participant_joined",
            "no leave or join while away: {m}"
        );
        if m["type"] == "participant_updated"
            && m["participant"]["id"] == id
            && m["participant"]["away"].as_bool().unwrap_or(false) == away
        {
            return;
        }
    }
}

#[tokio::test]
async fn a_dropped_socket_resumes_as_the_same_participant_with_no_leave_or_join() {
    let edge = Edge::start();
    let room = unique_room("resume");
    let mut a = Client::room(&edge, &room).await;
    let wa = a.join(json!({"profile": {"name": "Ada"}})).await;
    let ada = a.id().to_string();
    let mut b = Client::room(&edge, &room).await;
    b.join(json!({"profile": {"name": "Bob"}})).await;
    a.send(json!({"type": "set_password", "password": "pw-resume"}))
        .await;
    b.wait_for("room_locked").await;
    // The connection drops with no close frame (the network went away).
    drop(a);
    until_away(&mut b, &ada, true).await;

    let (mut a2, w) = resume(&edge, &room, &ada, &secret(&wa)).await;
    assert_eq!(w["type"], "welcome", "{w}");
    assert_eq!(w["you"], ada, "the same participant");
    assert_eq!(w["meeting_id"], wa["meeting_id"]);
    assert_eq!(w["moderator"], true, "the same role");
    assert_eq!(w["locked"], true, "no password asked again");
    let names: Vec<&str> = w["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ada", "Bob"], "the same place in the roster");
    until_away(&mut b, &ada, false).await;

    a2.send(json!({"type": "chat", "text": "back again"})).await;
    let chat = b.wait_for("chat").await;
    assert_eq!(
        (chat["from"].as_str(), chat["text"].as_str()),
        (Some(ada.as_str()), Some("back again"))
    );

    // The secret was for one use: the old one no longer works.
    let (mut x, answer) = resume(&edge, &room, &ada, &secret(&wa)).await;
    assert_eq!(answer["code"], "resume_failed", "{answer}");
    x.expect_silence(100).await;
    b.expect_silence(300).await;
}

#[tokio::test]
async fn a_page_that_resumes_before_the_edge_noticed_replaces_its_old_socket() {
    let edge = Edge::start();
    let room = unique_room("replace");
    let mut a = Client::room(&edge, &room).await;
    let wa = a.join(json!({})).await;
    let ada = a.id().to_string();
    let mut b = Client::room(&edge, &room).await;
    b.join(json!({})).await;
    a.wait_for("participant_joined").await;

    let (_a2, w) = resume(&edge, &room, &ada, &secret(&wa)).await;
    assert_eq!(w["you"], ada);
    assert_eq!(a.expect_closed().await.0, 4003, "the old socket is let go");
    b.expect_silence(500).await;
}

#[tokio::test]
async fn a_wrong_resume_secret_is_refused_like_an_unknown_id_and_join_still_works() {
    let edge = Edge::start();
    let room = unique_room("badresume");
    let mut a = Client::room(&edge, &room).await;
    a.join(json!({})).await;
    let ada = a.id().to_string();
    let wrong = "0".repeat(32);
    for (id, s) in [
        (ada.as_str(), wrong.as_str()),
        ("0123456789ab", wrong.as_str()),
    ] {
        let (mut c, answer) = resume(&edge, &room, id, s).await;
        assert_eq!(answer["code"], "resume_failed", "{answer}");
        let w = c.join(json!({})).await;
        assert_ne!(w["you"], ada, "a refused socket may join as someone new");
        a.wait_for("participant_joined").await;
        c.close().await;
        a.wait_for("participant_left").await;
    }
    a.expect_silence(200).await;
}

#[tokio::test]
async fn a_silent_socket_is_dropped_within_20_s_and_then_leaves() {
    let edge = Edge::start();
    let room = unique_room("silent");
    let mut a = Client::room(&edge, &room).await;
    a.join(json!({})).await;
    let ada = a.id().to_string();
    let started = Instant::now();
    let mut b = Client::room(&edge, &room).await;
    b.join(json!({})).await;
    // Bob pings as the page does (on the Worker the runtime answers this exact text itself,
    // without the room); Ada, a suspended laptop, sends nothing and reads nothing.
    let mut away_at = None;
    let mut left_at = None;
    while left_at.is_none() && started.elapsed() < Duration::from_secs(60) {
        b.send_raw(r#"{"v":1,"type":"ping"}"#).await;
        let until = Instant::now() + Duration::from_secs(3);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            let Some(event) = b.next_event_within(left).await else {
                break;
            };
            let Event::Message(m) = event else {
                panic!("Bob's socket closed: {event:?}");
            };
            match m["type"].as_str() {
                Some("participant_updated") if m["participant"]["id"] == ada => {
                    assert_eq!(m["participant"]["away"], true);
                    away_at.get_or_insert(started.elapsed());
                }
                Some("participant_left") if m["id"] == ada => {
                    assert_eq!(m["reason"], "disconnected");
                    left_at = Some(started.elapsed());
                }
                _ => {}
            }
        }
    }
    let away_at = away_at.expect("the roster shows Ada away");
    let left_at = left_at.expect("Ada leaves once her resume window is over");
    println!("silent socket: dropped after {away_at:?}, a leave after {left_at:?}");
    assert!(
        away_at >= Duration::from_secs(14) && away_at <= Duration::from_secs(20),
        "dropped after {away_at:?}"
    );
    assert!(
        left_at >= RESUME_WINDOW - Duration::from_secs(1),
        "{left_at:?}"
    );
    assert!(
        left_at <= RESUME_WINDOW + Duration::from_secs(6),
        "{left_at:?}"
    );
    // Bob, who pinged, is still in.
    b.send(json!({"type": "speaker_stats"})).await;
    assert_eq!(
        b.wait_for("speaker_stats").await["stats"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Ada's socket was closed by the edge as silent.
    assert_eq!(a.expect_closed().await.0, 4002);
}
