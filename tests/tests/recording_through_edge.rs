//! A recorded meeting through the real all-in-one `edgemeet`: three webrtc-rs clients join over
//! the edge's WebSocket, move to the embedded media node and send real VP8 and Opus (clips
//! encoded by Debian's ffmpeg, packetized per RFC 7741 / RFC 7587); a moderator starts and stops
//! recording; everyone sees the indicator; the files reach the destination (a local folder, or
//! the recorder's Dropbox, here the strict emulator of `uploader/tests/support`, connected with
//! OAuth 2 + PKCE); ffprobe reads them with the expected codecs and duration; the embedded
//! storage is empty afterwards.

#[path = "../../uploader/tests/support/dropbox_emulator.rs"]
mod dropbox_emulator;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use base64::Engine;
use edgemeet_media_node::testkit::{ClientOptions, TestClient};
use edgemeet_media_node::testmedia::{opus_packets, send_media, vp8_frames};
use edgemeet_tests::{Client, Edge, http, unique_room};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const WAIT: Duration = Duration::from_secs(25);
/// How long the meeting is recorded.
const RECORD_FOR: Duration = Duration::from_secs(6);
const APP_KEY: &str = "emuappkey42";

// ---------------------------------------------------------------------------------------------
// Helpers (real media comes from edgemeet_media_node::testmedia).

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    u32::from_le_bytes(b)
}

fn rand_hex() -> String {
    format!("{:08x}{:08x}", rand_u32(), rand_u32())
}

// ---------------------------------------------------------------------------------------------
// The meeting.

struct Meeting {
    sockets: Vec<Client>,
    rtc: Vec<TestClient>,
    stop_media: Arc<AtomicBool>,
}

/// Three join; each publishes real media on the room's node once the room reaches three.
async fn meeting(edge: &Edge) -> Meeting {
    let room = unique_room("rec");
    let mut sockets = Vec::new();
    for name in ["A", "B", "C"] {
        let mut ws = Client::room(edge, &room).await;
        ws.join(json!({"profile": {"name": name}})).await;
        sockets.push(ws);
    }
    let (video, audio) = tokio::join!(vp8_frames(), opus_packets());
    let (video, audio) = (Arc::new(video), Arc::new(audio));
    let stop_media = Arc::new(AtomicBool::new(false));
    let mut rtc = Vec::new();
    for (i, ws) in sockets.iter_mut().enumerate() {
        let grant = ws.node_grant().await;
        let url = format!("{}{}", edge.base, grant["url"].as_str().unwrap());
        let mut c = TestClient::connect(
            &url,
            grant["token"].as_str().unwrap(),
            i as u8 + 1,
            ClientOptions::default(),
        )
        .await
        .expect("node session through the grant");
        c.publish(true, true, false)
            .await
            .expect("push audio and video");
        let tracks = json!([{"name": "audio", "kind": "audio", "source": "microphone"}, {"name": "video", "kind": "video"}]);
        ws.send(json!({"type": "tracks", "session_id": c.session_id, "tracks": tracks}))
            .await;
        rtc.push(c);
    }
    for c in &rtc {
        c.wait_connected(WAIT).await.expect("connected to the node");
        send_media(c, video.clone(), audio.clone(), stop_media.clone()).await;
    }
    // Media flows for a moment before the recording starts.
    tokio::time::sleep(Duration::from_millis(800)).await;
    Meeting {
        sockets,
        rtc,
        stop_media,
    }
}

/// The next `recording` message on a socket (others are skipped).
async fn recording_msg(ws: &mut Client) -> Value {
    ws.wait_for("recording").await
}

/// Records for [`RECORD_FOR`]; returns the recorded time as the moderator saw it (from the
/// start's echo to the stop).
async fn record(m: &mut Meeting, dropbox: Option<Value>) -> f64 {
    let mut start = json!({"type": "start_recording"});
    if let Some(d) = dropbox {
        start["dropbox"] = d;
    }
    m.sockets[0].send(start).await;
    let on = recording_msg(&mut m.sockets[0]).await;
    let t0 = Instant::now();
    assert_eq!(on["active"], true, "{on}");
    let by = m.sockets[0].id().to_string();
    // Everyone sees the indicator.
    for ws in &mut m.sockets[1..] {
        let msg = recording_msg(ws).await;
        assert_eq!(
            (msg["active"].clone(), msg["by"].as_str()),
            (json!(true), Some(by.as_str()))
        );
    }
    tokio::time::sleep_until(tokio::time::Instant::from_std(t0 + RECORD_FOR)).await;
    m.sockets[0].send(json!({"type": "stop_recording"})).await;
    let recorded = t0.elapsed().as_secs_f64();
    for ws in &mut m.sockets {
        let msg = recording_msg(ws).await;
        assert_eq!(msg["active"], false, "{msg}");
    }
    recorded
}

async fn leave(m: Meeting) {
    m.stop_media.store(true, Relaxed);
    for c in &m.rtc {
        c.close().await;
    }
    for ws in m.sockets {
        ws.close().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Checking what arrived.

#[derive(Debug)]
struct Probe {
    codecs: Vec<String>,
    duration: f64,
    size: (u64, u64),
}

async fn ffprobe(file: &Path) -> Probe {
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-of", "json", "-show_entries"])
        .arg("format=duration:stream=codec_name,width,height")
        .arg(file)
        .output()
        .await
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = v["streams"].as_array().unwrap();
    let video = streams
        .iter()
        .find(|s| s["codec_name"] == "vp8")
        .cloned()
        .unwrap_or_default();
    Probe {
        codecs: streams
            .iter()
            .map(|s| s["codec_name"].as_str().unwrap_or("").to_owned())
            .collect(),
        duration: v["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or(-1.0),
        size: (
            video["width"].as_u64().unwrap_or(0),
            video["height"].as_u64().unwrap_or(0),
        ),
    }
}

/// Regular files under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

async fn eventually<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The embedded storage holds no object of any recording (s3s-fs: one file per object under
/// the bucket's folder).
/// Delivered: the embedded storage holds nothing but each recording's delivery status, which
/// says "delivered" (for the recorder's status link) until the retention ends.
async fn storage_empties(data: &Path) {
    let bucket = data.join("s3").join("recordings");
    let only_delivered_status = |p: &PathBuf| {
        p.file_name().is_some_and(|n| n == "status.json")
            && std::fs::read_to_string(p).is_ok_and(|t| t.contains("\"state\":\"delivered\""))
    };
    let left = eventually(Duration::from_secs(15), || {
        let f = files_under(&bucket);
        f.iter().all(only_delivered_status).then_some(())
    })
    .await;
    assert!(
        left.is_some(),
        "the embedded storage still holds {:?}",
        files_under(&bucket)
    );
}

struct Dirs {
    root: PathBuf,
}

impl Dirs {
    fn new() -> Self {
        let root = std::env::temp_dir().join(format!("edgemeet-rec-e2e-{}", rand_hex()));
        std::fs::create_dir_all(&root).unwrap();
        Self { root }
    }
    fn data(&self) -> PathBuf {
        self.root.join("data")
    }
    fn local(&self) -> PathBuf {
        self.root.join("recordings")
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_meeting_lands_in_the_local_folder_and_plays() {
    edgemeet_media_node::testkit::init_crypto();
    let dirs = Dirs::new();
    let (data, local) = (dirs.data(), dirs.local());
    let mut edge = Edge::native(&[
        ("EDGEMEET_RECORDING_DATA_DIR", data.to_str().unwrap()),
        ("EDGEMEET_RECORDING_LOCAL_FOLDER", local.to_str().unwrap()),
    ]);
    // The page learns that recording goes to a local folder here.
    let cfg = http::get(&edge.host_port(), "/api/config").await.json();
    assert_eq!(
        cfg,
        json!({"recording": {"available": true, "destination": "local"}})
    );

    let mut m = meeting(&edge).await;
    let recorded = record(&mut m, None).await;

    // One file per participant, in a dated folder.
    let files = eventually(Duration::from_secs(30), || {
        let f: Vec<PathBuf> = files_under(&local)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "webm"))
            .collect();
        (f.len() >= 3).then_some(f)
    })
    .await
    .unwrap_or_else(|| panic!("3 files in the local folder: {:?}", files_under(&local)));
    leave(m).await;
    assert_eq!(files.len(), 3, "{files:?}");
    let date = files[0]
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy();
    assert!(
        date.len() == 10 && date.as_bytes()[4] == b'-',
        "dated folder: {date}"
    );
    for f in &files {
        let p = ffprobe(f).await;
        let size = std::fs::metadata(f).unwrap().len();
        eprintln!(
            "{}: {size} bytes, {:?}, ffprobe duration {:.3} s, recorded {:.3} s (error {:+.3} s)",
            f.file_name().unwrap().to_string_lossy(),
            p.codecs,
            p.duration,
            recorded,
            p.duration - recorded
        );
        assert_eq!(p.codecs, ["vp8", "opus"], "{f:?}");
        assert_eq!(p.size, (320, 240));
        assert!(
            (p.duration - recorded).abs() <= 0.5,
            "{f:?}: duration {} s, recorded {recorded} s",
            p.duration
        );
    }
    storage_empties(&data).await;
    let logs = edge.stop();
    assert!(logs.contains("recording ready"), "{logs}");
    for name in ["\"A\"", "\"B\"", "\"C\""] {
        assert!(!logs.contains(name), "a display name in the logs");
    }
}

/// `GET /oauth2/authorize` on the emulator as the browser's popup would, then the code exchange
/// with the PKCE verifier, as the page does.
async fn connect_dropbox(emu: &str, cfg: &Value, redirect: &str) -> Value {
    let verifier = format!("{}{}{}{}", rand_hex(), rand_hex(), rand_hex(), rand_hex());
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&verifier));
    let authorize = cfg["authorize_url"].as_str().unwrap();
    assert_eq!(authorize, format!("http://{emu}/oauth2/authorize"));
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let authorize_for = |challenge: &str| {
        format!(
            "/oauth2/authorize?client_id={}&response_type=code&redirect_uri={}&state=st8&code_challenge={challenge}&code_challenge_method=S256&token_access_type=offline",
            cfg["app_key"].as_str().unwrap(),
            enc(redirect)
        )
    };
    let code_of = |r: &http::RawResponse| {
        assert_eq!(r.status, 302, "{:?}", String::from_utf8_lossy(&r.body));
        let loc = r.header("location").unwrap().to_string();
        assert!(
            loc.starts_with(redirect) && loc.ends_with("&state=st8"),
            "{loc}"
        );
        loc.split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_string()
    };
    let token_url = cfg["token_url"].as_str().unwrap();
    assert_eq!(token_url, format!("http://{emu}/oauth2/token"));
    let exchange = |code: String, verifier: String| async move {
        let body = format!(
            "grant_type=authorization_code&code={code}&client_id={APP_KEY}&code_verifier={verifier}&redirect_uri={}",
            enc(redirect)
        );
        http::request(
            emu,
            "POST",
            "/oauth2/token",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
        .await
    };
    // Strict: a wrong verifier is refused, and the code is then spent.
    let code = code_of(&http::get(emu, &authorize_for(&challenge)).await);
    let wrong = exchange(code.clone(), format!("{verifier}x")).await;
    assert_eq!(
        (wrong.status, wrong.json()["error"].clone()),
        (400, json!("invalid_grant"))
    );
    assert_eq!(exchange(code, verifier.clone()).await.status, 400);
    // An unregistered redirect URI gets no code at all.
    let other = authorize_for(&challenge).replace(&enc(redirect), &enc("http://127.0.0.1:1/"));
    assert_eq!(http::get(emu, &other).await.status, 400);

    let code = code_of(&http::get(emu, &authorize_for(&challenge)).await);
    let ok = exchange(code.clone(), verifier.clone()).await;
    assert_eq!(ok.status, 200, "{:?}", String::from_utf8_lossy(&ok.body));
    assert_eq!(ok.header("access-control-allow-origin"), Some("*"));
    let t = ok.json();
    // Single use.
    assert_eq!(exchange(code, verifier).await.status, 400);
    json!({
        "access_token": t["access_token"],
        "refresh_token": t["refresh_token"],
        "app_key": APP_KEY,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_meeting_lands_in_the_recorders_dropbox() {
    edgemeet_media_node::testkit::init_crypto();
    let emu = dropbox_emulator::Emulator::start().await;
    let emu_url = emu.url();
    let emu_host = emu_url.trim_start_matches("http://").to_string();
    let dirs = Dirs::new();
    let data = dirs.data();
    let authorize = format!("{emu_url}/oauth2/authorize");
    let mut edge = Edge::native(&[
        ("EDGEMEET_RECORDING_DATA_DIR", data.to_str().unwrap()),
        ("EDGEMEET_DROPBOX_APP_KEY", APP_KEY),
        ("EDGEMEET_DROPBOX_AUTHORIZE_URL", &authorize),
        ("EDGEMEET_DROPBOX_API_URL", &emu_url),
        ("EDGEMEET_DROPBOX_CONTENT_URL", &emu_url),
    ]);
    let redirect = format!("{}/", edge.base);
    emu.add_app(APP_KEY, &[&redirect]);
    let cfg = http::get(&edge.host_port(), "/api/config").await.json();
    assert_eq!(cfg["recording"]["destination"], "dropbox", "{cfg}");
    let grant = connect_dropbox(&emu_host, &cfg["recording"]["dropbox"], &redirect).await;
    let access = grant["access_token"].as_str().unwrap().to_string();

    let mut m = meeting(&edge).await;
    // Without the recorder's Dropbox the node refuses: nobody could receive the files.
    m.sockets[0].send(json!({"type": "start_recording"})).await;
    let mut seen = Vec::new();
    let failed = loop {
        let msg = m.sockets[0].recv().await;
        if msg["type"] == "error" {
            break msg;
        }
        if msg["type"] == "recording" {
            seen.push(msg["active"].clone());
        }
    };
    assert_eq!(
        (failed["code"].as_str(), failed["request"].as_str()),
        (Some("recording_failed"), Some("start_recording")),
        "{failed}"
    );
    assert_eq!(
        seen,
        [json!(true), json!(false)],
        "the indicator went off again"
    );
    for ws in &mut m.sockets[1..] {
        while recording_msg(ws).await["active"] == true {}
    }

    let recorded = record(&mut m, Some(grant)).await;
    let files = eventually(Duration::from_secs(30), || {
        let f = emu.files();
        (f.len() >= 3).then_some(f)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "3 files in Dropbox: {:?}\nedge logs:\n{}",
            emu.files(),
            edge.logs()
        )
    });
    leave(m).await;
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        eprintln!(
            "dropbox {}: {} bytes (recorded {recorded:.3} s)",
            f.path_display, f.size
        );
        assert!(
            f.path_display.starts_with("/edgemeet/20"),
            "{}",
            f.path_display
        );
        assert!(f.path_display.ends_with(".webm"));
        // 6 s of 300 kbit/s video and 32 kbit/s audio.
        assert!(f.size > 100_000, "{} bytes", f.size);
    }
    let stats = emu.stats();
    assert_eq!(stats.code_exchanges, 1);
    storage_empties(&data).await;
    let logs = edge.stop();
    assert!(!logs.contains(&access), "the Dropbox token in the logs");
}
