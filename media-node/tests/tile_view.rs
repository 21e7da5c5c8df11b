//! Viewer-driven video (issue 18): the page tells the node how it shows each pulled video
//! (`PUT /v1/sessions/{id}/tracks/view`): a tile not shown gets no video packets and comes back
//! from a keyframe, asked for at once; a tile's height picks the layer that fits it. A real
//! webrtc-rs publisher (simulcast whose keyframes carry their size, as a browser's) and viewer.

mod common;

use std::time::{Duration, Instant};

use common::*;
use edgemeet_testsupport::node_client::{TestClient, check_payload, remote_track_id};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

async fn state(c: &TestClient) -> Value {
    c.call(
        reqwest::Method::GET,
        &format!("/v1/sessions/{}", c.session_id),
        None,
    )
    .await
    .expect("session state")
}

/// The pulled track `name` in a session state.
fn pulled(s: &Value, name: &str) -> Value {
    s["tracks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["location"] == "remote" && t["trackName"] == name)
        .cloned()
        .unwrap_or_default()
}

async fn view(c: &TestClient, body: Value) -> Result<Value, String> {
    c.call(
        reqwest::Method::PUT,
        &format!("/v1/sessions/{}/tracks/view", c.session_id),
        Some(&body),
    )
    .await
    .map_err(|e| e.to_string())
}

/// Polls the viewer's state until `f` holds of it or `within` passes.
async fn until_state(
    c: &TestClient,
    within: Duration,
    f: impl Fn(&Value) -> bool,
) -> (bool, Value) {
    let end = Instant::now() + within;
    loop {
        let s = state(c).await;
        if f(&s) {
            return (true, s);
        }
        if Instant::now() > end {
            return (false, s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_tile_gets_no_video_and_comes_back_from_a_keyframe_and_its_height_picks_the_layer()
{
    let node = start().await;
    let a = sized_publisher(&node, "tiles", "pa", 1).await;
    let stop = a.start_sending(30, 1, 500);
    let b = client(&node, "tiles", "pb", 2).await;
    b.pull(
        &[
            (a.session_id.clone(), "audio".into()),
            (a.session_id.clone(), "video".into()),
        ],
        Some("h"),
    )
    .await
    .expect("pull h");
    let vid = remote_track_id(&a.session_id, "video");
    let aud = remote_track_id(&a.session_id, "audio");
    let (on_h, s) = until_state(&b, WAIT, |s| pulled(s, "video")["forwarding"]["rid"] == "h").await;
    assert!(
        on_h,
        "before the page says anything, the layer asked for: {s}"
    );
    let video_mid = pulled(&s, "video")["mid"].as_str().expect("mid").to_owned();
    let audio_mid = pulled(&s, "audio")["mid"].as_str().expect("mid").to_owned();
    assert_eq!(pulled(&s, "video")["shown"], true);

    // Malformed or unknown input is an error back, and changes nothing.
    for bad in [
        json!({"tracks": []}),
        json!({"tracks": [{"mid": video_mid, "shown": true, "height": 0}]}),
        json!({"tracks": [{"mid": video_mid, "shown": true, "height": 100000}]}),
        json!({"tracks": [{"mid": video_mid, "shown": true, "zoom": 2}]}),
        json!({"tracks": [{"mid": video_mid}]}),
        json!({"tracks": [{"mid": video_mid, "shown": true}, {"mid": video_mid, "shown": false}]}),
    ] {
        let e = view(&b, bad.clone()).await.expect_err("refused");
        assert!(e.starts_with("400"), "{bad}: {e}");
    }
    let r = view(
        &b,
        json!({"tracks": [{"mid": "99", "shown": false}, {"mid": audio_mid, "shown": false}]}),
    )
    .await
    .expect("per-track errors");
    assert_eq!(r["tracks"][0]["error"]["errorCode"], "not_found", "{r}");
    assert_eq!(r["tracks"][1]["error"]["errorCode"], "bad_request", "{r}");
    let other = client(&node, "tiles", "pc", 3).await;
    let e = other
        .call::<Value>(
            reqwest::Method::PUT,
            &format!("/v1/sessions/{}/tracks/view", b.session_id),
            Some(&json!({"tracks": [{"mid": video_mid, "shown": false}]})),
        )
        .await
        .expect_err("another participant's session");
    assert!(e.to_string().starts_with("403"), "{e}");
    assert_eq!(pulled(&state(&b).await, "video")["shown"], true);

    // A small tile (80 px) gets q; a tall pinned one f, above the layer asked for; a tall one
    // that is not pinned, the layer asked for.
    let layer_since = |t: Instant| -> Vec<u8> {
        b.packets(&vid)
            .iter()
            .filter(|p| p.at > t)
            .filter_map(|p| check_payload(true, &p.payload).map(|i| i.layer))
            .collect()
    };
    view(
        &b,
        json!({"tracks": [{"mid": video_mid, "shown": true, "height": 80}]}),
    )
    .await
    .expect("small tile");
    let (on_q, s) = until_state(&b, WAIT, |s| pulled(s, "video")["forwarding"]["rid"] == "q").await;
    assert!(on_q, "an 80-pixel tile gets the 90-pixel layer: {s}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let t = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let small = layer_since(t);
    assert!(
        small.len() > 5 && small.iter().all(|&l| l == 0),
        "q's packets only: {small:?}"
    );
    view(
        &b,
        json!({"tracks": [{"mid": video_mid, "shown": true, "height": 720, "pinned": true}]}),
    )
    .await
    .expect("large tile");
    let (on_f, s) = until_state(&b, WAIT, |s| pulled(s, "video")["forwarding"]["rid"] == "f").await;
    assert!(on_f, "a tall pinned tile gets f: {s}");
    view(
        &b,
        json!({"tracks": [{"mid": video_mid, "shown": true, "height": 720}]}),
    )
    .await
    .expect("tall tile, not pinned");
    let (back_h, s) =
        until_state(&b, WAIT, |s| pulled(s, "video")["forwarding"]["rid"] == "h").await;
    assert!(back_h, "not pinned, no higher than asked for: {s}");

    // Hidden: no video packet more (audio goes on); the node's count stands still.
    view(&b, json!({"tracks": [{"mid": video_mid, "shown": false}]}))
        .await
        .expect("hide");
    let hidden_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = state(&b).await;
    assert_eq!(pulled(&s, "video")["shown"], false, "{s}");
    let sent = pulled(&s, "video")["packetsSent"].as_u64().expect("count");
    let t = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = state(&b).await;
    assert_eq!(
        pulled(&s, "video")["packetsSent"].as_u64(),
        Some(sent),
        "no video sent while hidden: {s}"
    );
    let late_video = b.packets(&vid).iter().filter(|p| p.at > t).count();
    let audio = b.packets(&aud).iter().filter(|p| p.at > t).count();
    assert_eq!(late_video, 0, "no video packet reaches a hidden tile");
    assert!(audio >= 50, "audio goes on ({audio} packets in 1.5 s)");

    // Shown again: a keyframe is asked for at once, and the video comes back from it.
    let plis = a.plis.load(std::sync::atomic::Ordering::Relaxed);
    view(
        &b,
        json!({"tracks": [{"mid": video_mid, "shown": true, "height": 720}]}),
    )
    .await
    .expect("show");
    let shown_at = Instant::now();
    assert!(
        eventually(Duration::from_secs(1), || b
            .packets(&vid)
            .iter()
            .any(|p| p.at > shown_at))
        .await,
        "video back within a second"
    );
    let back = b.packets(&vid);
    let first = back.iter().find(|p| p.at > shown_at).expect("a packet");
    let took = first.at - shown_at;
    assert!(
        check_payload(true, &first.payload).is_some_and(|i| i.keyframe),
        "the first packet back starts a keyframe"
    );
    assert!(
        a.plis.load(std::sync::atomic::Ordering::Relaxed) > plis,
        "the publisher was asked for it"
    );
    eprintln!(
        "hidden for {:.1} s: no video; shown again: first packet (a keyframe) after {} ms",
        (shown_at - hidden_at).as_secs_f64(),
        took.as_millis()
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    other.close().await;
    b.close().await;
    a.close().await;
}

/// The `LayersNeeded` events about `publisher` the stub edge has seen, as rid lists.
fn layers_told(
    seen: &std::sync::Mutex<Vec<edgemeet_protocol::node::NodeEvent>>,
    publisher: &str,
) -> Vec<Vec<String>> {
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            edgemeet_protocol::node::NodeEvent::LayersNeeded {
                publisher: p, rids, ..
            } if p == publisher => Some(rids.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_no_viewer_needs_is_turned_off_at_its_publisher_and_back_on_when_one_does() {
    let (seen, edge_url) = stub_edge().await;
    let mut cfg = config();
    cfg.edge_url = Some(edge_url);
    let node = start_with(cfg).await;
    let a = sized_publisher(&node, "dyna", "pa", 1).await;
    let stop = a.start_sending(30, 1, 500);
    let started = Instant::now();
    let b = client(&node, "dyna", "pb", 2).await;
    b.pull(&[(a.session_id.clone(), "video".into())], Some("h"))
        .await
        .expect("pull h");
    let (has_mid, s) = until_state(&b, WAIT, |s| pulled(s, "video")["mid"].is_string()).await;
    assert!(has_mid, "{s}");
    let mid = pulled(&s, "video")["mid"].as_str().expect("mid").to_owned();
    // A 150-pixel tile: h (180) covers it, f is needed by nobody.
    view(
        &b,
        json!({"tracks": [{"mid": mid, "shown": true, "height": 150}]}),
    )
    .await
    .expect("view");
    let q_h = vec!["q".to_string(), "h".to_string()];
    assert!(
        eventually(Duration::from_secs(15), || layers_told(&seen, "pa")
            .last()
            .is_some_and(|r| *r == q_h))
        .await,
        "the publisher is told to send q and h: {:?}",
        layers_told(&seen, "pa")
    );
    let off_after = started.elapsed();
    let sending = |s: &Value| {
        s["tracks"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["location"] == "local" && t["trackName"] == "video")
            .map(|t| t["sendingRids"].clone())
            .unwrap_or_default()
    };
    assert_eq!(sending(&state(&a).await), json!(["q", "h"]));
    assert_eq!(
        pulled(&state(&b).await, "video")["forwarding"]["rid"],
        "h",
        "the viewer keeps its layer"
    );

    // Pinned and tall: f is asked for again on the next tick.
    let told = layers_told(&seen, "pa").len();
    let t = Instant::now();
    view(
        &b,
        json!({"tracks": [{"mid": mid, "shown": true, "height": 720, "pinned": true}]}),
    )
    .await
    .expect("pinned");
    assert!(
        eventually(Duration::from_secs(3), || layers_told(&seen, "pa")
            .get(told)
            .is_some_and(|r| r.len() == 3))
        .await,
        "f asked for again: {:?}",
        layers_told(&seen, "pa")
    );
    let on_after = t.elapsed();
    assert_eq!(sending(&state(&a).await), json!(["q", "h", "f"]));

    // Hidden: only the lowest layer, which is always sent.
    view(&b, json!({"tracks": [{"mid": mid, "shown": false}]}))
        .await
        .expect("hidden");
    assert!(
        eventually(Duration::from_secs(6), || layers_told(&seen, "pa")
            .last()
            .is_some_and(|r| *r == ["q"]))
        .await,
        "q alone while no viewer shows it: {:?}",
        layers_told(&seen, "pa")
    );
    assert!(
        counter(&node, "edgemeet_node_publisher_layers_off_total").await > 0,
        "counted"
    );
    eprintln!(
        "dynacast: f off {:.1} s after the publisher joined, back on {} ms after a pinned tile asked",
        off_after.as_secs_f64(),
        on_after.as_millis()
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    b.close().await;
    a.close().await;
}
