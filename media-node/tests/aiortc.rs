//! Interop with an independent WebRTC stack: an aiortc client publishes real VP8 + Opus, an
//! aiortc client decodes it through the node, and a webrtc-rs client receives it too.
//! Needs `EDGEMEET_PYTHON` (a Python with aiortc; `tests/install/20-media.sh` provides it).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use edgemeet_testsupport::node_client::remote_track_id;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn python() -> String {
    // The install script's venv is the default place; anything else must be named.
    let cache = std::env::var("EDGEMEET_CACHE").unwrap_or_else(|_| {
        format!(
            "{}/.cache/edgemeet",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let py = std::env::var("EDGEMEET_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| format!("{cache}/media-venv/bin/python"));
    let ok = std::process::Command::new(&py)
        .args(["-c", "import aiortc"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "no Python with aiortc at {py}: run `. tests/install/20-media.sh` (it installs aiortc into \
         $EDGEMEET_CACHE/media-venv and exports EDGEMEET_PYTHON) or set EDGEMEET_PYTHON"
    );
    py
}

fn script() -> String {
    format!("{}/tests/aiortc_client.py", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiortc_publishes_and_aiortc_and_webrtc_rs_receive_through_the_node() {
    let py = python();
    let node = start().await;
    let mut publisher = Command::new(&py)
        .args([
            &script(),
            "publish",
            &node.base,
            &tok("m-ai", "p-ai-pub"),
            "25",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the aiortc publisher");
    let mut lines = BufReader::new(publisher.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("publisher answers in time")
        .unwrap()
        .expect("publisher printed its session");
    let pub_sid = serde_json::from_str::<serde_json::Value>(&first).unwrap()["sessionId"]
        .as_str()
        .unwrap()
        .to_string();

    let rs = client(&node, "m-ai", "p-rs", 2).await;
    rs.pull(
        &[
            (pub_sid.clone(), "audio".into()),
            (pub_sid.clone(), "video".into()),
        ],
        None,
    )
    .await
    .expect("webrtc-rs pulls aiortc's tracks");

    let out = tokio::time::timeout(
        Duration::from_secs(40),
        Command::new(&py)
            .args([
                &script(),
                "subscribe",
                &node.base,
                &tok("m-ai", "p-ai-sub"),
                &pub_sid,
                "20",
            ])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("subscriber finishes in time")
    .expect("run the aiortc subscriber");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "aiortc subscriber failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts: serde_json::Value = serde_json::from_str(stdout.trim().lines().last().unwrap())
        .unwrap_or_else(|_| panic!("bad subscriber output: {stdout}"));
    assert!(
        counts["video"].as_u64().unwrap() >= 30,
        "decoded video frames: {counts}"
    );
    assert!(
        counts["audio"].as_u64().unwrap() >= 50,
        "decoded audio frames: {counts}"
    );
    assert_eq!(
        (counts["width"].as_u64(), counts["height"].as_u64()),
        (Some(640), Some(480))
    );

    let (a, v) = (
        rs.packets(&remote_track_id(&pub_sid, "audio")),
        rs.packets(&remote_track_id(&pub_sid, "video")),
    );
    assert!(
        a.len() > 50 && v.len() > 30,
        "webrtc-rs got {} audio, {} video",
        a.len(),
        v.len()
    );
    // The first forwarded video packet starts a VP8 keyframe (the node waits for one).
    let p = &v[0].payload;
    assert!(p[0] & 0x10 != 0, "first packet starts a partition");
    let _ = publisher.kill().await;
    node.handle.shutdown().await;
}
