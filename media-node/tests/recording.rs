//! Recording, end to end with real pieces: webrtc-rs publishers send real VP8 and Opus (clips
//! encoded by Debian's ffmpeg at test time, packetized per RFC 7741 / RFC 7587) through the
//! node; the node muxes WebM into a real S3-compatible server (s3s-fs, a separate process when
//! tests/install/30-uploader.sh installed it) and leaves the manifest; ffprobe reads the files.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use common::*;
use edgemeet_media_node::RecordingConfig;
use edgemeet_protocol::job::RecordingManifest;
use edgemeet_testsupport::media::{self as testmedia, opus_packets, vp8_frames};
use edgemeet_testsupport::node_client::TestClient;
use edgemeet_uploader::{S3Config, Store, TokenKey};
use reqwest::Method;
use tokio::io::AsyncWriteExt;

const AK: &str = "recording-test-ak";
const SK: &str = "recording-test-secret-key";
const BUCKET: &str = "recordings";
const KEY_B64: &str = "ZWRnZW1lZXQtdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE=";
const ACCESS: &str = "sl.SECRET-ACCESS-TOKEN-do-not-leak";
const REFRESH: &str = "SECRET-REFRESH-TOKEN-do-not-leak";

// ---------------------------------------------------------------------------------------------
// A real S3-compatible server.

struct S3 {
    endpoint: String,
    dir: PathBuf,
    _child: Option<edgemeet_testsupport::s3s_fs::S3sFsProcess>,
    _embedded: Option<edgemeet_uploader::EmbeddedS3>,
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start_s3() -> S3 {
    edgemeet_uploader::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!("edgemeet-rec-s3-{}", rand_hex()));
    std::fs::create_dir_all(&dir).unwrap();
    let s3 = match edgemeet_testsupport::s3s_fs::installed_binary() {
        Some(bin) => {
            let p = edgemeet_testsupport::s3s_fs::S3sFsProcess::start(&bin, &dir, AK, SK)
                .await
                .expect("start s3s-fs");
            S3 {
                endpoint: p.endpoint.clone(),
                dir,
                _child: Some(p),
                _embedded: None,
            }
        }
        None => {
            eprintln!("note: s3s-fs binary not installed; using the embedded s3s-fs server");
            let e = edgemeet_uploader::start_embedded_s3(
                dir.join("root"),
                AK,
                SK,
                "127.0.0.1:0".parse().unwrap(),
            )
            .await
            .unwrap();
            S3 {
                endpoint: e.endpoint(),
                dir,
                _child: None,
                _embedded: Some(e),
            }
        }
    };
    s3.store().ensure_bucket().await.unwrap();
    s3
}

impl S3 {
    fn s3_config(&self) -> S3Config {
        S3Config::new(&self.endpoint, BUCKET, AK, SK)
    }

    fn store(&self) -> Store {
        Store::new(&self.s3_config())
    }

    async fn objects(&self) -> Vec<(String, Vec<u8>)> {
        let store = self.store();
        let mut out = Vec::new();
        for o in store.list().await.unwrap() {
            let body = store.get_small(&o.key).await.unwrap().unwrap();
            out.push((o.key, body));
        }
        out
    }
}

fn rand_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}

async fn node_with_recording(s3: &S3) -> Node {
    let mut cfg = config();
    cfg.recording = Some(RecordingConfig::new(s3.s3_config(), KEY_B64));
    start_with(cfg).await
}

// ---------------------------------------------------------------------------------------------
// Real VP8 and Opus, encoded by ffmpeg (edgemeet_testsupport::media), sent in real time.

/// Sends the clips on the client's pushed tracks until the returned flag is set.
async fn send_media(
    client: &TestClient,
    video: Arc<Vec<Vec<u8>>>,
    audio: Arc<Vec<Vec<u8>>>,
) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    testmedia::send_media(client, video, audio, stop.clone()).await;
    stop
}

// ---------------------------------------------------------------------------------------------
// Reading the results.

#[derive(Debug)]
struct Probe {
    codecs: Vec<String>,
    duration: f64,
    last_packet_end: f64,
    size: (u64, u64),
}

async fn run_with_stdin(cmd: &str, args: &[&str], input: &[u8]) -> (bool, String, String) {
    let mut child = tokio::process::Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let w = tokio::spawn(async move {
        let _ = stdin.write_all(&data).await;
    });
    let out = child.wait_with_output().await.unwrap();
    let _ = w.await;
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn ffprobe(webm: &[u8]) -> Probe {
    let (ok, out, err) = run_with_stdin(
        "ffprobe",
        &[
            "-v",
            "error",
            "-of",
            "json",
            "-show_entries",
            "format=duration:stream=codec_name,width,height:packet=pts_time,duration_time",
            "-i",
            "pipe:0",
        ],
        webm,
    )
    .await;
    assert!(ok, "ffprobe failed: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let codecs = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap_or("").to_owned())
        .collect();
    let video = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_name"] == "vp8" || s["codec_name"] == "h264")
        .cloned()
        .unwrap_or_default();
    let f = |x: &serde_json::Value| x.as_str().and_then(|s| s.parse::<f64>().ok());
    let last_packet_end = v["packets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| Some(f(&p["pts_time"])? + f(&p["duration_time"]).unwrap_or(0.0)))
        .fold(0.0, f64::max);
    Probe {
        codecs,
        duration: f(&v["format"]["duration"]).unwrap_or(-1.0),
        last_packet_end,
        size: (
            video["width"].as_u64().unwrap_or(0),
            video["height"].as_u64().unwrap_or(0),
        ),
    }
}

/// Decodes every frame of both streams: errors (a broken frame, a bad header) fail.
async fn decodes_cleanly(webm: &[u8]) {
    let (ok, _, err) = run_with_stdin(
        "ffmpeg",
        &["-v", "error", "-nostdin", "-i", "pipe:0", "-f", "null", "-"],
        webm,
    )
    .await;
    assert!(ok && err.trim().is_empty(), "decoding failed: {err}");
}

/// Regular files this process holds open for writing, outside the S3 server's own folder. The
/// standard streams are left out: the test runner may point them at a log file.
fn files_open_for_writing(except: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if matches!(e.file_name().to_str(), Some("0" | "1" | "2")) {
            continue;
        }
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        if !target.is_absolute() || target.starts_with(except) || target.starts_with("/dev") {
            continue;
        }
        let fdinfo = format!("/proc/self/fdinfo/{}", e.file_name().to_string_lossy());
        let flags = std::fs::read_to_string(fdinfo)
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("flags:"))
                    .and_then(|l| u32::from_str_radix(l[6..].trim(), 8).ok())
            })
            .unwrap_or(0);
        // O_WRONLY | O_RDWR
        if flags & 0b11 != 0 && std::fs::metadata(&target).is_ok_and(|m| m.is_file()) {
            out.push(target.display().to_string());
        }
    }
    out
}

fn edge_url(node: &Node, meeting: &str, what: &str) -> String {
    format!("{}/v1/rooms/{meeting}/recording/{what}", node.base)
}

fn start_body() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "dropbox": {"accessToken": ACCESS, "refreshToken": REFRESH, "appKey": "app-key-1"}
    }))
    .unwrap()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_person_meeting_is_recorded_to_playable_webm_in_s3() {
    let (video, audio) = tokio::join!(vp8_frames(), opus_packets());
    let (video, audio) = (Arc::new(video), Arc::new(audio));
    let s3 = start_s3().await;
    let node = node_with_recording(&s3).await;
    let meeting = "meeting-7Hq2";
    let names = ["alice-liddell", "bob-builder", "carol-singer"];
    let mut clients = Vec::new();
    let mut stops = Vec::new();
    for (i, p) in names.iter().enumerate() {
        let c = publisher(&node, meeting, p, i as u8 + 1).await;
        stops.push(send_media(&c, video.clone(), audio.clone()).await);
        clients.push(c);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Refused: no token, a participant's token, another meeting's edge token.
    let url = edge_url(&node, meeting, "start");
    let (st, _) = http(Method::POST, &url, None, Some(start_body())).await;
    assert_eq!(st, 401);
    let (st, _) = http(
        Method::POST,
        &url,
        Some(&tok(meeting, names[0])),
        Some(start_body()),
    )
    .await;
    assert_eq!(st, 403);
    let (st, _) = http(
        Method::POST,
        &url,
        Some(&tok("other", "edge")),
        Some(start_body()),
    )
    .await;
    assert_eq!(st, 403);
    assert!(s3.objects().await.is_empty());

    let edge = tok(meeting, "edge");
    let plis_before: Vec<u64> = clients.iter().map(|c| c.plis.load(Relaxed)).collect();
    let t_start = Instant::now();
    let (st, started) = http(Method::POST, &url, Some(&edge), Some(start_body())).await;
    assert_eq!(st, 200, "{started}");
    let rec_id = started["recordingId"].as_str().unwrap().to_owned();
    // The recorder's status link: a token the recording id derives from, answering "recording".
    let status_token = started["statusToken"].as_str().unwrap();
    assert_eq!(
        edgemeet_uploader::status::recording_id_for(status_token).as_deref(),
        Some(rec_id.as_str())
    );
    let status_key = format!("recordings/{rec_id}/status.json");
    let status = s3
        .objects()
        .await
        .into_iter()
        .find(|(k, _)| *k == status_key)
        .map(|(_, b)| serde_json::from_slice::<serde_json::Value>(&b).unwrap())
        .expect("status written at start");
    assert_eq!(status["state"], "recording");
    // One recording per meeting.
    let (st, body) = http(Method::POST, &url, Some(&edge), Some(start_body())).await;
    assert_eq!(st, 409, "{body}");

    // Video starts at a keyframe: every publisher is asked for one.
    assert!(
        eventually(Duration::from_secs(2), || clients
            .iter()
            .zip(&plis_before)
            .all(|(c, b)| c.plis.load(Relaxed) > *b))
        .await,
        "no keyframe request at recording start"
    );
    let cpu0 = cpu_secs();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Media only in memory: nothing of the node's is open for writing on disk.
    let open = files_open_for_writing(&s3.dir);
    assert!(open.is_empty(), "files open for writing: {open:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let rss = rss_kib();
    let t_stop = Instant::now();
    let (st, stopped) = http(
        Method::POST,
        &edge_url(&node, meeting, "stop"),
        Some(&edge),
        None,
    )
    .await;
    let recorded = t_stop.duration_since(t_start).as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    assert_eq!(st, 200, "{stopped}");
    assert_eq!(stopped["files"], 3, "{stopped}");
    assert_eq!(stopped["recordingId"], rec_id.as_str());
    eprintln!(
        "recorded {recorded:.2} s of 3 publishers: process CPU {cpu:.2} s ({:.0}% of one core), RSS {} MiB",
        cpu / recorded * 100.0,
        rss / 1024
    );
    // Stopped: a new recording may start.
    let (st, _) = http(
        Method::POST,
        &edge_url(&node, meeting, "stop"),
        Some(&edge),
        None,
    )
    .await;
    assert_eq!(st, 404);

    let objects = s3.objects().await;
    let manifest_key = format!("recordings/{rec_id}/manifest.json");
    let manifest = objects
        .iter()
        .find(|(k, _)| *k == manifest_key)
        .map(|(_, b)| RecordingManifest::from_json(b).expect("valid manifest"))
        .expect("manifest written");
    assert_eq!(manifest.meeting_id, meeting);
    assert_eq!(manifest.files.len(), 3);
    assert!(manifest.ended_at_ms >= manifest.started_at_ms + 2_500);
    let manifest_text = serde_json::to_string(&manifest).unwrap();
    for p in names {
        assert!(!manifest_text.contains(p), "participant id in the manifest");
    }
    // The token is sealed to this recording and opens with the uploader's key.
    let creds = TokenKey::from_base64(KEY_B64)
        .unwrap()
        .open(&manifest)
        .unwrap();
    assert_eq!(creds.access_token, ACCESS);
    assert_eq!(creds.refresh_token.as_deref(), Some(REFRESH));
    assert_eq!(manifest.dropbox.as_ref().unwrap().app_key, "app-key-1");
    // ...and is in clear nowhere in the bucket.
    for (k, body) in &objects {
        for secret in [ACCESS, REFRESH] {
            assert!(
                !body.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "token in clear in {k}"
            );
        }
    }
    assert_eq!(objects.len(), 5, "3 files, the manifest and the status");
    for f in &manifest.files {
        let (_, body) = objects
            .iter()
            .find(|(k, _)| *k == f.key)
            .expect("file in S3");
        assert_eq!(body.len() as u64, f.size);
        assert!(f.name.ends_with(".webm") && f.content_type == "video/webm");
        let p = ffprobe(body).await;
        eprintln!("{}: {p:?}", f.name);
        let mut codecs = p.codecs.clone();
        codecs.sort();
        assert_eq!(codecs, ["opus", "vp8"], "{}", f.name);
        assert_eq!(p.size, (320, 240));
        assert!(
            (p.duration - recorded).abs() <= 0.5,
            "{}: duration {} vs recorded {recorded}",
            f.name,
            p.duration
        );
        assert!(
            (p.last_packet_end - recorded).abs() <= 0.5,
            "{}: last packet ends at {} vs recorded {recorded}",
            f.name,
            p.last_packet_end
        );
        decodes_cleanly(body).await;
    }

    for s in stops {
        s.store(true, Relaxed);
    }
    for c in &clients {
        c.close().await;
    }
    node.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_room_finalizes_its_recording() {
    let (video, audio) = tokio::join!(vp8_frames(), opus_packets());
    let s3 = start_s3().await;
    let node = node_with_recording(&s3).await;
    let meeting = "m-close";
    let edge = tok(meeting, "edge");
    // Recording starts before anyone pushes: later tracks join it.
    let (st, started) = http(
        Method::POST,
        &edge_url(&node, meeting, "start"),
        Some(&edge),
        Some(start_body()),
    )
    .await;
    assert_eq!(st, 200, "{started}");
    let c = publisher(&node, meeting, "dave", 1).await;
    let stop = send_media(&c, Arc::new(video), Arc::new(audio)).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (st, body) = http(
        Method::POST,
        &format!("{}/v1/rooms/{meeting}/close", node.base),
        Some(&edge),
        None,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    stop.store(true, Relaxed);
    let rec_id = started["recordingId"].as_str().unwrap();
    let objects = s3.objects().await;
    let (_, m) = objects
        .iter()
        .find(|(k, _)| k.ends_with(&format!("{rec_id}/manifest.json")))
        .expect("manifest written at room close");
    let m = RecordingManifest::from_json(m).unwrap();
    assert_eq!(m.files.len(), 1);
    let (_, body) = objects.iter().find(|(k, _)| *k == m.files[0].key).unwrap();
    let p = ffprobe(body).await;
    let mut codecs = p.codecs.clone();
    codecs.sort();
    assert_eq!(codecs, ["opus", "vp8"]);
    assert!(p.duration > 1.0 && p.duration < 3.0, "{p:?}");
    decodes_cleanly(body).await;
    // The meeting no longer records.
    let (st, _) = http(
        Method::POST,
        &edge_url(&node, meeting, "stop"),
        Some(&edge),
        None,
    )
    .await;
    assert_eq!(st, 404);
    c.close().await;
    node.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_is_refused_when_not_configured_or_asked_wrongly() {
    let node = start().await;
    let url = edge_url(&node, "m1", "start");
    let (st, body) = http(
        Method::POST,
        &url,
        Some(&tok("m1", "edge")),
        Some(start_body()),
    )
    .await;
    assert_eq!(st, 503, "{body}");
    assert!(
        body["errorDescription"]
            .as_str()
            .unwrap()
            .contains("not configured")
    );
    node.handle.shutdown().await;

    let s3 = start_s3().await;
    let node = node_with_recording(&s3).await;
    let url = edge_url(&node, "m1", "start");
    let edge = tok("m1", "edge");
    // Malformed bodies: 400, and the reason never echoes the token.
    let bad = br#"{"dropbox": {"accessToken": "sl.SECRET-ACCESS-TOKEN-do-not-leak", "bogus": 1}}"#;
    let (st, body) = http(Method::POST, &url, Some(&edge), Some(bad.to_vec())).await;
    assert_eq!(st, 400, "{body}");
    assert!(!body.to_string().contains("SECRET"), "{body}");
    let (st, _) = http(Method::POST, &url, Some(&edge), Some(b"[1".to_vec())).await;
    assert_eq!(st, 400);
    // Stop without a recording: 404. A participant token: 403.
    let stop = edge_url(&node, "m1", "stop");
    let (st, _) = http(Method::POST, &stop, Some(&edge), None).await;
    assert_eq!(st, 404);
    let (st, _) = http(Method::POST, &stop, Some(&tok("m1", "p1")), None).await;
    assert_eq!(st, 403);
    // A recording with no media stores nothing.
    let (st, _) = http(Method::POST, &url, Some(&edge), Some(start_body())).await;
    assert_eq!(st, 200);
    let (st, body) = http(Method::POST, &stop, Some(&edge), None).await;
    assert_eq!(st, 200);
    assert_eq!(body["files"], 0);
    assert!(s3.objects().await.is_empty());
    node.handle.shutdown().await;
}

fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// One composing test at a time: the restart test kills this process's composer (an ffmpeg).
static COMPOSING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composite_recording_is_one_playable_mp4_beside_the_per_person_files() {
    let _one = COMPOSING.lock().await;
    composite_recording(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composite_only_recording_delivers_the_mp4_alone() {
    let _one = COMPOSING.lock().await;
    composite_recording(false).await;
}

/// The pids of this process's children whose command line holds `needle`.
fn children_with(needle: &str) -> Vec<i32> {
    let me = std::process::id().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The parent's pid is the second field after the command name's closing parenthesis.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1));
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(me.as_str()) && String::from_utf8_lossy(&cmdline).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composite_recordings_composer_that_dies_goes_on_in_a_further_file() {
    let _one = COMPOSING.lock().await;
    let (video, audio) = tokio::join!(vp8_frames(), opus_packets());
    let (video, audio) = (Arc::new(video), Arc::new(audio));
    let s3 = start_s3().await;
    let (seen, edge) = stub_edge().await;
    let mut cfg = config();
    cfg.recording = Some(RecordingConfig::new(s3.s3_config(), KEY_B64));
    cfg.edge_url = Some(edge);
    let node = start_with(cfg).await;
    let meeting = "m-composer-dies";
    let c = publisher(&node, meeting, "ada", 1).await;
    let stop_media = send_media(&c, video, audio).await;
    let token = tok(meeting, "edge");
    let body = serde_json::to_vec(&serde_json::json!({
        "dropbox": {"accessToken": ACCESS, "refreshToken": REFRESH, "appKey": "app-key-1"},
        "composite": true,
        "perPerson": false,
        "scene": {"people": [{"id": "ada", "name": "Ada"}], "speaker": "ada"},
    }))
    .unwrap();
    let url = edge_url(&node, meeting, "start");
    let (st, started) = http(Method::POST, &url, Some(&token), Some(body)).await;
    assert_eq!(st, 200, "{started}");
    let rec_id = started["recordingId"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The composer's encoder dies (as ffmpeg would, out of memory or killed).
    let encoders = children_with("frag_keyframe");
    assert_eq!(encoders.len(), 1, "one encoder: {encoders:?}");
    std::process::Command::new("kill")
        .args(["-9", &encoders[0].to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let restarted = loop {
        let told = seen.lock().unwrap().iter().find_map(|e| match e {
            edgemeet_protocol::node::NodeEvent::CompositionEnded {
                purpose, restarted, ..
            } if purpose == "recording" => Some(*restarted),
            _ => None,
        });
        if let Some(r) = told {
            break r;
        }
        assert!(Instant::now() < deadline, "the edge was never told");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(restarted, "the node started the composer again");
    assert_eq!(children_with("frag_keyframe").len(), 1, "a new encoder");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (st, stopped) = http(
        Method::POST,
        &edge_url(&node, meeting, "stop"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(st, 200, "{stopped}");
    assert_eq!(stopped["files"], 2, "the video before and after: {stopped}");
    let objects = s3.objects().await;
    let manifest = objects
        .iter()
        .find(|(k, _)| *k == format!("recordings/{rec_id}/manifest.json"))
        .map(|(_, b)| RecordingManifest::from_json(b).expect("valid manifest"))
        .expect("manifest written");
    let mut names = Vec::new();
    for f in &manifest.files {
        let (_, body) = objects.iter().find(|(k, _)| *k == f.key).expect("in S3");
        let p = ffprobe(body).await;
        eprintln!("figure: {} lasts {:.2} s: {p:?}", f.name, p.duration);
        let mut codecs = p.codecs.clone();
        codecs.sort();
        assert_eq!(codecs, ["aac", "h264"], "{}", f.name);
        assert!(p.duration > 1.5, "{} lasts {} s", f.name, p.duration);
        names.push(f.name.clone());
    }
    names.sort();
    assert!(
        names[0].ends_with("-meeting-2.mp4") && names[1].ends_with("-meeting.mp4"),
        "{names:?}"
    );
    stop_media.store(true, Relaxed);
    c.close().await;
    node.handle.shutdown().await;
}

/// Two people recorded with one composed video, and (`per_person`) a file each.
async fn composite_recording(per_person: bool) {
    let (video, audio) = tokio::join!(vp8_frames(), opus_packets());
    let (video, audio) = (Arc::new(video), Arc::new(audio));
    let s3 = start_s3().await;
    let node = node_with_recording(&s3).await;
    let meeting = if per_person {
        "m-composite"
    } else {
        "m-composite-only"
    };
    let mut stops = Vec::new();
    let mut clients = Vec::new();
    for (i, p) in ["ada", "bob"].iter().enumerate() {
        let c = publisher(&node, meeting, p, i as u8 + 1).await;
        stops.push(send_media(&c, video.clone(), audio.clone()).await);
        clients.push(c);
    }
    let edge = tok(meeting, "edge");
    let body = serde_json::to_vec(&serde_json::json!({
        "dropbox": {"accessToken": ACCESS, "refreshToken": REFRESH, "appKey": "app-key-1"},
        "composite": true,
        "scene": {"people": [{"id": "ada", "name": "Ada"}, {"id": "bob", "name": "Bob"}], "speaker": "ada"},
        "perPerson": per_person,
    }))
    .unwrap();
    let t_start = Instant::now();
    let (st, started) = http(
        Method::POST,
        &edge_url(&node, meeting, "start"),
        Some(&edge),
        Some(body),
    )
    .await;
    assert_eq!(st, 200, "{started}");
    let rec_id = started["recordingId"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (st, stopped) = http(
        Method::POST,
        &edge_url(&node, meeting, "stop"),
        Some(&edge),
        None,
    )
    .await;
    let recorded = t_start.elapsed().as_secs_f64();
    assert_eq!(st, 200, "{stopped}");
    assert_eq!(
        stopped["files"],
        if per_person { 3 } else { 1 },
        "two people's files (if asked) and the composed one: {stopped}"
    );

    let objects = s3.objects().await;
    let manifest = objects
        .iter()
        .find(|(k, _)| *k == format!("recordings/{rec_id}/manifest.json"))
        .map(|(_, b)| RecordingManifest::from_json(b).expect("valid manifest"))
        .expect("manifest written");
    let composed: Vec<_> = manifest
        .files
        .iter()
        .filter(|f| f.content_type == "video/mp4")
        .collect();
    assert_eq!(composed.len(), 1, "{:?}", manifest.files);
    assert_eq!(
        manifest.files.len(),
        if per_person { 3 } else { 1 },
        "{:?}",
        manifest.files
    );
    let f = composed[0];
    assert!(f.name.ends_with("-meeting.mp4"), "{}", f.name);
    let (_, body) = objects
        .iter()
        .find(|(k, _)| *k == f.key)
        .expect("composed file in S3");
    assert_eq!(body.len() as u64, f.size);
    let p = ffprobe(body).await;
    eprintln!(
        "figure: composite {} of {recorded:.2} s recorded: {p:?}",
        f.name
    );
    let mut codecs = p.codecs.clone();
    codecs.sort();
    assert_eq!(codecs, ["aac", "h264"]);
    assert_eq!(p.size, (1280, 720));
    assert!(
        (p.duration - recorded).abs() <= 1.5,
        "the composed file lasts {} s of {recorded:.2} s recorded",
        p.duration
    );
    decodes_cleanly(body).await;
    for s in stops {
        s.store(true, Relaxed);
    }
    for c in &clients {
        c.close().await;
    }
    node.handle.shutdown().await;
}
