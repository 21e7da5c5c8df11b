//! Livestreaming, end to end with real pieces: three webrtc-rs publishers send real VP8 (a solid
//! colour each) and Opus (a tone) through the node; the edge's calls start a livestream to an RTMP
//! server (ffmpeg listening, as an ingest would), switch the speaker, and stop it. What a viewer
//! of the stream would notice is checked on what the server received: H.264 + AAC that plays for
//! as long as the stream ran, the speaker's colour as the main picture before and after the
//! switch, the tones heard; and what must not happen: the stream key in a log line, the stream
//! started by anyone but the room's edge, anything of it left on disk.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use common::*;
use edgemeet_composer::frame::{Frame, Yuv};
use edgemeet_composer::layout::{Mode, Person, Scene, layout};
use edgemeet_testsupport::media::{self as testmedia, opus_packets, vp8_clip};
use edgemeet_testsupport::media_files::{Logs, mean_volume, picture_i420_at, probe};
use edgemeet_testsupport::rtmp_server::{free_port, rtmp_server, server_ended};
use reqwest::Method;

const KEY: &str = "live-key-9a8b7c6d5e4f";
/// One test at a time: each checks what the process's compositions left on disk.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// ffmpeg's BT.601 limited-range conversion of pure red and blue.
const RED: Yuv = Yuv(81, 90, 240);
const BLUE: Yuv = Yuv(41, 240, 110);

fn scene_json(speaker: &str) -> serde_json::Value {
    serde_json::json!({
        "people": [
            {"id": "ada", "name": "Ada"},
            {"id": "bob", "name": "Bob"},
            {"id": "cyd", "name": "Cyd"},
        ],
        "speaker": speaker,
    })
}

/// The decoded 720p picture at `at` seconds.
fn picture_at(file: &Path, at: f64) -> Frame {
    Frame::from_i420(1280, 720, picture_i420_at(file, at, 1280, 720)).expect("one 720p picture")
}

fn near(a: Yuv, b: Yuv) -> bool {
    let d = |x: u8, y: u8| (i16::from(x) - i16::from(y)).abs() <= 16;
    d(a.0, b.0) && d(a.1, b.1) && d(a.2, b.2)
}

/// The centre of the main picture (the speaker's) on the 720p canvas.
fn main_centre() -> (u32, u32) {
    let scene = Scene {
        people: ["ada", "bob", "cyd"]
            .iter()
            .map(|id| Person {
                id: (*id).into(),
                name: String::new(),
            })
            .collect(),
        speaker: Some("ada".into()),
        screen: None,
        mode: Mode::Speaker,
    };
    let main = layout(&scene, 1280, 720)[0].rect;
    (main.x + main.w / 2, main.y + main.h / 2)
}

/// What this process's compositions left in their work folder (the sound FIFO lives there).
fn compositions_left() -> Vec<PathBuf> {
    let root = std::env::temp_dir().join(format!("edgemeet-compositions-{}", std::process::id()));
    std::fs::read_dir(root)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_of_three_streams_to_an_rtmp_server_and_the_speaker_takes_the_picture() {
    let _serial = SERIAL.lock().await;
    let logs = Logs::default();
    let writer = logs.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();

    let (red, blue, green, audio) = tokio::join!(
        vp8_clip("color=c=red:size=320x240:rate=30:duration=3", "200k"),
        vp8_clip("color=c=blue:size=320x240:rate=30:duration=3", "200k"),
        vp8_clip("color=c=green:size=320x240:rate=30:duration=3", "200k"),
        opus_packets(),
    );
    let audio = Arc::new(audio);
    let node = start().await;
    let meeting = "live-meeting-1";
    let mut clients = Vec::new();
    let stop_media = Arc::new(AtomicBool::new(false));
    for (i, (id, clip)) in [("ada", red), ("bob", blue), ("cyd", green)]
        .into_iter()
        .enumerate()
    {
        let c = publisher(&node, meeting, id, i as u8 + 1).await;
        testmedia::send_media(&c, Arc::new(clip), audio.clone(), stop_media.clone()).await;
        clients.push(c);
    }

    let port = free_port();
    let dir = std::env::temp_dir().join(format!("edgemeet-live-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let received = dir.join("received.flv");
    let mut server = rtmp_server(port, KEY, &received);

    let url = format!("{}/v1/rooms/{meeting}/livestream/start", node.base);
    let body = |speaker: &str| {
        serde_json::to_vec(&serde_json::json!({
            "url": format!("rtmp://127.0.0.1:{port}/live"),
            "streamKey": KEY,
            "scene": scene_json(speaker),
        }))
        .unwrap()
    };
    // Only the room's edge starts a stream: not a participant, not another room's edge.
    let (st, _) = http(
        Method::POST,
        &url,
        Some(&tok(meeting, "ada")),
        Some(body("ada")),
    )
    .await;
    assert_eq!(st, 403);
    let (st, _) = http(
        Method::POST,
        &url,
        Some(&tok("other", "edge")),
        Some(body("ada")),
    )
    .await;
    assert_eq!(st, 403);
    let (st, err) = http(
        Method::POST,
        &url,
        Some(&tok(meeting, "edge")),
        Some(b"{\"url\": 1}".to_vec()),
    )
    .await;
    assert_eq!(st, 400, "{err}");

    let edge = tok(meeting, "edge");
    // The server may take a moment to listen.
    let deadline = Instant::now() + Duration::from_secs(10);
    let started = loop {
        let (st, v) = http(Method::POST, &url, Some(&edge), Some(body("ada"))).await;
        if st == 200 {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "livestream did not start: {st} {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(started["livestreamId"].is_string(), "{started}");
    let t0 = Instant::now();
    let (st, _) = http(Method::POST, &url, Some(&edge), Some(body("ada"))).await;
    assert_eq!(st, 409, "one livestream per meeting");

    tokio::time::sleep(Duration::from_secs(4)).await;
    let switched_at = t0.elapsed().as_secs_f64();
    let scene_url = format!("{}/v1/rooms/{meeting}/composition/scene", node.base);
    let (st, v) = http(
        Method::POST,
        &scene_url,
        Some(&edge),
        Some(serde_json::to_vec(&scene_json("bob")).unwrap()),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stop_url = format!("{}/v1/rooms/{meeting}/livestream/stop", node.base);
    let (st, stopped) = http(Method::POST, &stop_url, Some(&edge), None).await;
    let streamed = t0.elapsed().as_secs_f64();
    assert_eq!(st, 200, "{stopped}");
    eprintln!("figure: livestream of {streamed:.1} s: {stopped}");
    let (st, _) = http(Method::POST, &stop_url, Some(&edge), None).await;
    assert_eq!(st, 404, "stopped once");

    let err = server_ended(&mut server);

    let (codecs, duration) = probe(&received);
    assert_eq!(
        codecs,
        vec!["aac", "h264"],
        "streams received; server: {err}"
    );
    assert!(
        (duration - streamed).abs() < 1.5,
        "{duration} s received of a {streamed:.1} s stream"
    );
    let (x, y) = main_centre();
    let first = picture_at(&received, switched_at - 1.0).pixel(x, y);
    let second = picture_at(&received, duration - 1.0).pixel(x, y);
    assert!(near(first, RED), "Ada's red as the main picture: {first:?}");
    assert!(
        near(second, BLUE),
        "Bob's blue after the switch: {second:?}"
    );
    let volume = mean_volume(&received);
    assert!(volume > -40.0, "the tones are heard: {volume} dB");

    stop_media.store(true, Relaxed);
    let left = compositions_left();
    assert!(left.is_empty(), "left on disk: {left:?}");
    let logged = logs.text();
    assert!(!logged.is_empty(), "the node's log was captured");
    assert!(!logged.contains(KEY), "the stream key is in a log line");
    assert!(!logged.contains("Ada"), "a name is in a log line");
    let _ = std::fs::remove_dir_all(&dir);
    node.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_server_goes_away_is_cleaned_up_and_reported_to_the_edge() {
    let _serial = SERIAL.lock().await;
    let (seen, edge_url) = stub_edge().await;
    let mut cfg = config();
    cfg.edge_url = Some(edge_url);
    let node = start_with(cfg).await;
    let meeting = "live-meeting-2";
    let (clip, audio) = tokio::join!(
        vp8_clip("color=c=red:size=320x240:rate=30:duration=3", "200k"),
        opus_packets(),
    );
    let c = publisher(&node, meeting, "ada", 1).await;
    let stop_media = Arc::new(AtomicBool::new(false));
    testmedia::send_media(&c, Arc::new(clip), Arc::new(audio), stop_media.clone()).await;
    let dir = std::env::temp_dir().join(format!("edgemeet-live-drop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let edge = tok(meeting, "edge");
    let url = format!("{}/v1/rooms/{meeting}/livestream/start", node.base);
    let start = |port: u16| {
        let (url, edge) = (url.clone(), edge.clone());
        async move {
            let body = serde_json::to_vec(&serde_json::json!({
                "url": format!("rtmp://127.0.0.1:{port}/live"),
                "streamKey": KEY,
                "scene": scene_json("ada"),
            }))
            .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let (st, v) = http(Method::POST, &url, Some(&edge), Some(body.clone())).await;
                if st == 200 {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "livestream did not start: {st} {v}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let port = free_port();
    let mut first = rtmp_server(port, KEY, &dir.join("first.flv"));
    start(port).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The ingest goes away.
    first.kill().unwrap();
    let _ = first.wait();
    let gone = Instant::now();
    let reported = eventually(Duration::from_secs(8), || {
        seen.lock().unwrap().iter().any(|e| {
            matches!(e, edgemeet_protocol::node::NodeEvent::CompositionEnded { room, purpose, .. }
                if room == meeting && purpose == "livestream")
        })
    })
    .await;
    assert!(reported, "the edge is told the stream ended");
    eprintln!(
        "figure: the stream's end reported {:.1} s after its server went away",
        gone.elapsed().as_secs_f64()
    );
    // Cleaned up: nothing to stop, nothing left on disk; a new start (the edge's restart) works.
    let stop_url = format!("{}/v1/rooms/{meeting}/livestream/stop", node.base);
    let (st, _) = http(Method::POST, &stop_url, Some(&edge), None).await;
    assert_eq!(st, 404);
    let left = compositions_left();
    assert!(left.is_empty(), "left on disk: {left:?}");
    let port = free_port();
    let mut second = rtmp_server(port, KEY, &dir.join("second.flv"));
    start(port).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (st, v) = http(Method::POST, &stop_url, Some(&edge), None).await;
    assert_eq!(st, 200, "{v}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while second.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the second server saw its stream end"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (codecs, duration) = probe(&dir.join("second.flv"));
    assert_eq!(codecs, vec!["aac", "h264"]);
    assert!(duration > 1.5, "{duration} s after the restart");
    stop_media.store(true, Relaxed);
    let _ = std::fs::remove_dir_all(&dir);
    node.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_compositions_beyond_its_limit_and_says_so_in_its_load() {
    let _serial = SERIAL.lock().await;
    let mut cfg = config();
    cfg.max_compositions = 1;
    let node = start_with(cfg).await;
    let dir = std::env::temp_dir().join(format!("edgemeet-live-cap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let mut server = rtmp_server(port, KEY, &dir.join("one.flv"));
    let start = |meeting: &'static str| {
        let url = format!("{}/v1/rooms/{meeting}/livestream/start", node.base);
        let body = serde_json::to_vec(&serde_json::json!({
            "url": format!("rtmp://127.0.0.1:{port}/live"),
            "streamKey": KEY,
        }))
        .unwrap();
        async move { http(Method::POST, &url, Some(&tok(meeting, "edge")), Some(body)).await }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (st, v) = start("cap-one").await;
        if st == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "{st} {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(node.handle.load().compositions, 1);
    assert_eq!(node.handle.load().max_compositions, 1);
    let (st, v) = start("cap-two").await;
    assert_eq!(st, 429, "{v}");
    assert!(v.to_string().contains("as many compositions"), "{v}");
    // A composite recording is refused as a whole too (the edge moves the room for it), before
    // the node looks at anything else (this node records nothing: a plain start gets 503).
    let record = format!("{}/v1/rooms/cap-two/recording/start", node.base);
    let composite = serde_json::to_vec(&serde_json::json!({ "composite": true })).unwrap();
    let (st, v) = http(
        Method::POST,
        &record,
        Some(&tok("cap-two", "edge")),
        Some(composite),
    )
    .await;
    assert_eq!(st, 429, "{v}");
    let (st, v) = http(Method::POST, &record, Some(&tok("cap-two", "edge")), None).await;
    assert_eq!(st, 503, "{v}");
    let stop = format!("{}/v1/rooms/cap-one/livestream/stop", node.base);
    let (st, _) = http(Method::POST, &stop, Some(&tok("cap-one", "edge")), None).await;
    assert_eq!(st, 200);
    assert_eq!(node.handle.load().compositions, 0);
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    node.handle.shutdown().await;
}
