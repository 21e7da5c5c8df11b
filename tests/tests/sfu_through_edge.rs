//! Real WebRTC through the edge and its media node: three webrtc-rs clients join a room over the
//! edge's WebSocket, get node grants, push audio and video, pull each other's tracks as the edge
//! announces them, hear who speaks loudest, and see a leaver's tracks end.

use std::time::{Duration, Instant};

use edgemeet_tests::{Client, Edge, unique_room};
use edgemeet_testsupport::node_client::{ClientOptions, TestClient, remote_track_id};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(25);

struct Participant {
    ws: Client,
    rtc: TestClient,
}

/// Wait for this socket's node grant (the room reaches three), then open a node session and push.
async fn publish(mut ws: Client, base: &str, tag: u8, audio_level: u8) -> Participant {
    let grant = ws.node_grant().await;
    let url = format!("{base}{}", grant["url"].as_str().unwrap());
    let token = grant["token"].as_str().unwrap();
    let opts = ClientOptions {
        keep_packets: true,
        audio_level,
        on_packet: None,
    };
    let mut rtc = TestClient::connect(&url, token, tag, opts)
        .await
        .expect("node session through the grant");
    rtc.publish(true, true, false)
        .await
        .expect("push audio and video");
    let tracks = json!([{"name": "audio", "kind": "audio", "source": "microphone"}, {"name": "video", "kind": "video"}]);
    ws.send(json!({"type": "tracks", "session_id": rtc.session_id, "tracks": tracks}))
        .await;
    Participant { ws, rtc }
}

async fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_webrtc_clients_meet_through_the_edge_and_its_node() {
    edgemeet_testsupport::node_client::init_crypto();
    let edge = Edge::native(&[]);
    let room = unique_room("rtc");
    let mut sockets = Vec::new();
    for name in ["A", "B", "C"] {
        let mut ws = Client::room(&edge, &room).await;
        ws.join(json!({"profile": {"name": name}})).await;
        sockets.push(ws);
    }
    let mut ids = Vec::new();
    let mut people = Vec::new();
    // A speaks (loudest audio level), B and C are silent.
    for (i, ws) in sockets.into_iter().enumerate() {
        ids.push(ws.id().to_string());
        people.push(publish(ws, &edge.base, i as u8 + 1, if i == 0 { 0 } else { 127 }).await);
    }

    // Each pulls the others' tracks as the edge announces them.
    let mut sessions = std::collections::HashMap::new();
    for p in &people {
        sessions.insert(p.ws.id().to_string(), p.rtc.session_id.clone());
    }
    for p in people.iter_mut() {
        let mut pulled = 0;
        while pulled < 2 {
            let msg: Value = p.ws.wait_for("tracks").await;
            assert_eq!(
                msg["session_id"].as_str(),
                sessions
                    .get(msg["participant"].as_str().unwrap())
                    .map(String::as_str)
            );
            let sid = msg["session_id"].as_str().unwrap().to_string();
            let pulls = vec![
                (sid.clone(), "audio".to_string()),
                (sid, "video".to_string()),
            ];
            p.rtc
                .pull(&pulls, None)
                .await
                .expect("pull the announced tracks");
            pulled += 1;
        }
    }
    let stops: Vec<_> = people
        .iter()
        .map(|p| p.rtc.start_sending(30, 2, 1000))
        .collect();
    for p in &people {
        p.rtc
            .wait_connected(WAIT)
            .await
            .expect("connected to the node");
    }
    let all_flowing = eventually(WAIT, || {
        people.iter().all(|rx| {
            people
                .iter()
                .filter(|tx| tx.rtc.tag != rx.rtc.tag)
                .all(|tx| {
                    rx.rtc
                        .packets(&remote_track_id(&tx.rtc.session_id, "audio"))
                        .len()
                        >= 30
                        && rx
                            .rtc
                            .packets(&remote_track_id(&tx.rtc.session_id, "video"))
                            .len()
                            >= 30
                })
        })
    })
    .await;
    assert!(
        all_flowing,
        "every participant receives the two others' audio and video"
    );

    // The node's audio levels reach the edge: A is the dominant speaker, and has speaking time.
    let speaker = people[1].ws.wait_for("dominant_speaker").await;
    assert_eq!(speaker["id"].as_str(), Some(ids[0].as_str()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    people[1].ws.send(json!({"type": "speaker_stats"})).await;
    let stats = people[1].ws.wait_for("speaker_stats").await;
    let a_ms = stats["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == ids[0].as_str())
        .unwrap()["speaking_ms"]
        .as_u64()
        .unwrap();
    assert!(a_ms > 0, "{stats}");

    // C leaves: the edge closes C's node session, so its tracks stop reaching A.
    let c = people.pop().unwrap();
    c.ws.close().await;
    let left = people[0].ws.wait_for("participant_left").await;
    assert_eq!(left["id"].as_str(), Some(ids[2].as_str()));
    let c_video = remote_track_id(&c.rtc.session_id, "video");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = people[0].rtc.packets(&c_video).len();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        people[0].rtc.packets(&c_video).len(),
        before,
        "nothing from the leaver after the edge closed it"
    );
    for s in stops {
        s.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A kicked participant that kept its node grant (a raw client, not the page) opens nothing on
/// the node any more: no new session, no pull on its old one, within a second of the kick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kicked_participant_keeps_no_way_to_the_media() {
    edgemeet_testsupport::node_client::init_crypto();
    let edge = Edge::native(&[]);
    let room = unique_room("kick");
    let mut sockets = Vec::new();
    for name in ["A", "B", "C"] {
        let mut ws = Client::room(&edge, &room).await;
        ws.join(json!({"profile": {"name": name}})).await;
        sockets.push(ws);
    }
    let mut kicked_ws = sockets.pop().unwrap();
    let kicked_id = kicked_ws.id().to_string();
    let grant = kicked_ws.node_grant().await;
    let node = format!("{}{}", edge.base, grant["url"].as_str().unwrap());
    let token = grant["token"].as_str().unwrap().to_string();
    let a = publish(sockets.remove(0), &edge.base, 1, 127).await;
    let opts = ClientOptions {
        keep_packets: true,
        audio_level: 127,
        on_packet: None,
    };
    let kept = TestClient::connect(&node, &token, 3, opts)
        .await
        .expect("a session with the grant");
    kept.pull(&[(a.rtc.session_id.clone(), "video".into())], None)
        .await
        .expect("a pull before the kick");

    let mut moderator = a.ws;
    moderator
        .send(json!({"type": "kick", "target": kicked_id}))
        .await;
    assert_eq!(kicked_ws.expect_closed().await.0, 4001);
    let kicked_at = Instant::now();
    let mut refused_within = None;
    // The node hears of the kick from the edge in the background: give it up to a second.
    for _ in 0..20 {
        let (status, _) = node_post(&node, "/v1/sessions/new", &token, "{}").await;
        if status == 401 {
            refused_within = Some(kicked_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let within = refused_within.expect("the grant no longer opens sessions");
    assert!(within < Duration::from_secs(1), "refused after {within:?}");
    let pull = json!({"tracks": [{"location": "remote", "trackName": "video", "sessionId": a.rtc.session_id}]});
    let path = format!("/v1/sessions/{}/tracks/new", kept.session_id);
    let (status, body) = node_post(&node, &path, &token, &pull.to_string()).await;
    assert_eq!(status, 401, "{body}");
}

/// POST to the embedded node (under the edge's origin, `/node/...`) with a bearer token.
async fn node_post(base: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let host_port = base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let prefix = base
        .trim_start_matches("http://")
        .split_once('/')
        .map(|(_, p)| format!("/{p}"))
        .unwrap_or_default();
    let auth = format!("Bearer {token}");
    let r = edgemeet_tests::http::request(
        &host_port,
        "POST",
        &format!("{prefix}{path}"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await;
    (r.status, String::from_utf8_lossy(&r.body).to_string())
}
