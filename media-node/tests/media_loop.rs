//! The media loop carries a one-call join end to end: real webrtc-rs clients, real ICE, DTLS
//! and SRTP, RTP forwarded by the loop.

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::*;
use edgemeet_testsupport::node_client::{Received, check_payload, remote_track_id};

const WAIT: Duration = Duration::from_secs(20);

/// Intact payloads from `tag`, in order, no gap, video from a keyframe on.
fn assert_intact_in_order(pkts: &[Received], video: bool, tag: u8, what: &str) {
    assert!(!pkts.is_empty(), "{what}: nothing received");
    let mut prev: Option<(u32, u16)> = None;
    for p in pkts {
        let info = check_payload(video, &p.payload)
            .unwrap_or_else(|| panic!("{what}: corrupt payload (seq {})", p.seq));
        assert_eq!(info.tag, tag, "{what}: payload of another sender");
        if let Some((c, s)) = prev {
            assert_eq!(p.seq, s.wrapping_add(1), "{what}: sequence gap after {s}");
            assert_eq!(info.counter, c + 1, "{what}: lost packets after {c}");
        } else if video {
            assert!(
                info.keyframe,
                "{what}: first video packet must start a keyframe"
            );
        }
        prev = Some((info.counter, p.seq));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_media_loop_forwards_a_publisher_to_a_newcomer_that_pulls_it_in_its_first_offer() {
    let node = start().await;
    let mut a = unopened(&node, "m-loop", "pa", 1).await;
    a.publish(true, true, false)
        .await
        .expect("session and push");
    a.wait_connected(WAIT)
        .await
        .expect("publisher connects to the loop");
    let stop = a.start_sending(30, 1, 800);
    let mut b = unopened(&node, "m-loop", "pb", 2).await;
    b.pull_on_open = vec![
        (a.session_id.clone(), "audio".into()),
        (a.session_id.clone(), "video".into()),
    ];
    b.publish(true, false, false)
        .await
        .expect("session, push and pulls in one call");
    b.wait_connected(WAIT)
        .await
        .expect("puller connects to the loop");
    let vid = remote_track_id(&a.session_id, "video");
    let aud = remote_track_id(&a.session_id, "audio");
    assert!(
        eventually(WAIT, || b.packets(&vid).len() > 20
            && b.packets(&aud).len() > 20)
        .await,
        "b receives a's audio and video through the loop (video {}, audio {})",
        b.packets(&vid).len(),
        b.packets(&aud).len()
    );
    assert_intact_in_order(&b.packets(&vid), true, 1, "video");
    assert_intact_in_order(&b.packets(&aud), false, 1, "audio");
    // The puller's state: its push and both pulls, active and connected.
    let state: serde_json::Value = b
        .call(
            reqwest::Method::GET,
            &format!("/v1/sessions/{}", b.session_id),
            None,
        )
        .await
        .expect("state");
    assert_eq!(state["connectionState"], "connected", "{state}");
    let tracks = state["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 3, "{state}");
    assert!(tracks.iter().all(|t| t["status"] == "active"), "{state}");
    assert_eq!(
        tracks
            .iter()
            .filter(|t| t["location"] == "remote" && t["sessionId"] == a.session_id.as_str())
            .count(),
        2,
        "{state}"
    );
    // A puller's keyframe request (behind an empty receiver report, as Chromium sends it)
    // reaches the publisher.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let plis = a.plis.load(Relaxed);
    b.send_pli(&vid, true).await.expect("pli");
    assert!(
        eventually(WAIT, || a.plis.load(Relaxed) > plis).await,
        "the publisher is asked for a keyframe"
    );
    // Closing the publisher's session on the loop ends its media at the puller.
    let closed: serde_json::Value = a
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/sessions/{}", a.session_id),
            None,
        )
        .await
        .expect("close");
    assert_eq!(closed["closedSessions"], 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = b.packets(&vid).len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        b.packets(&vid).len(),
        before,
        "nothing forwarded after the close"
    );
    let state: serde_json::Value = b
        .call(
            reqwest::Method::GET,
            &format!("/v1/sessions/{}", b.session_id),
            None,
        )
        .await
        .expect("state");
    let inactive = state["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["location"] == "remote" && t["status"] == "inactive")
        .count();
    assert_eq!(
        inactive, 2,
        "the publisher's tracks are inactive at the puller: {state}"
    );
    // Another participant's token sees nothing of b's session.
    let other = edgemeet_testsupport::node_client::token(SECRET, NODE_ID, "m-loop", "px", 60);
    let (st, _) = http(
        reqwest::Method::GET,
        &format!("{}/v1/sessions/{}", node.base, b.session_id),
        Some(&other),
        None,
    )
    .await;
    assert_eq!(st, 403);
    let again = a
        .call::<serde_json::Value>(
            reqwest::Method::DELETE,
            &format!("/v1/sessions/{}", a.session_id),
            None,
        )
        .await
        .expect_err("closed already");
    assert!(again.to_string().contains("404"), "{again}");
    stop.store(true, Relaxed);
    node.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_media_loop_answers_a_nack_behind_an_empty_receiver_report() {
    let node = start().await;
    let mut a = unopened(&node, "m-nack", "pa", 1).await;
    a.publish(false, true, false)
        .await
        .expect("session and push");
    let stop = a.start_sending(30, 1, 800);
    let mut b = unopened(&node, "m-nack", "pb", 2).await;
    b.pull_on_open = vec![(a.session_id.clone(), "video".into())];
    b.publish(true, false, false)
        .await
        .expect("pull in one call");
    let vid = remote_track_id(&a.session_id, "video");
    assert!(eventually(WAIT, || b.packets(&vid).len() > 20).await);
    let seq = b.packets(&vid)[5].seq;
    b.send_nack(&vid, seq, true).await.expect("send nack");
    let resent = eventually(Duration::from_secs(5), || {
        b.packets(&vid).iter().filter(|p| p.seq == seq).count() >= 2
    })
    .await;
    stop.store(true, Relaxed);
    assert!(resent, "packet {seq} retransmitted through the loop");
    node.handle.shutdown().await;
}
