//! A recorded meeting through the real all-in-one `edgemeet`: three webrtc-rs clients join over
//! the edge's WebSocket, move to the embedded media node and send real VP8 and Opus (clips
//! encoded by Debian's ffmpeg, packetized per RFC 7741 / RFC 7587); a moderator starts and stops
//! recording; everyone sees the indicator; the files reach the destination (a local folder, or
//! the recorder's Dropbox, here the strict emulator of `uploader/tests/support`, connected with
//! OAuth 2 + PKCE); ffprobe reads them with the expected codecs and duration; the embedded
//! storage is empty afterwards. The recorder's socket, and no other, gets the recording's
//! delivery-status link, which says "recording", then "delivered", or "failed" with the problem
//! when the recorder's Dropbox cannot take the files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use base64::Engine;
use edgemeet_tests::{Client, Edge, http, unique_room};
use edgemeet_testsupport::media::{opus_packets, send_media, vp8_frames};
use edgemeet_testsupport::node_client::{ClientOptions, TestClient};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const WAIT: Duration = Duration::from_secs(25);
/// How long the meeting is recorded.
const RECORD_FOR: Duration = Duration::from_secs(6);
const APP_KEY: &str = "emuappkey42";

// ---------------------------------------------------------------------------------------------
// Helpers (real media comes from edgemeet_testsupport::media).

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
    /// Every `recording_status_link` token each socket received, in order.
    links: Vec<Vec<String>>,
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
    let links = vec![Vec::new(); sockets.len()];
    Meeting {
        sockets,
        links,
        rtc,
        stop_media,
    }
}

/// The next message of type `ty` on a socket; the status links met on the way are noted in
/// `links`, anything else is skipped.
async fn next_of(ws: &mut Client, links: &mut Vec<String>, ty: &str) -> Value {
    loop {
        let msg = ws.recv().await;
        if msg["type"] == "recording_status_link" {
            links.push(msg["token"].as_str().expect("a token").to_string());
        }
        if msg["type"] == ty {
            return msg;
        }
    }
}

/// The next `recording` message on socket `i` (others are skipped, status links noted).
async fn recording_msg(m: &mut Meeting, i: usize) -> Value {
    next_of(&mut m.sockets[i], &mut m.links[i], "recording").await
}

/// Records for `seconds`; returns the recorded time as the moderator saw it (from the start's
/// echo to the stop) and the recording's status link, as the recorder (socket 0) got it. While
/// it records, the link (`{status_url}{token}` on the edge) says so.
async fn record_for(
    edge: &Edge,
    status_url: &str,
    m: &mut Meeting,
    dropbox: Option<Value>,
    seconds: Duration,
) -> (f64, String) {
    let started_ms = now_ms();
    let mut start = json!({"type": "start_recording"});
    if let Some(d) = dropbox {
        start["dropbox"] = d;
    }
    let links_before = m.links[0].len();
    m.sockets[0].send(start).await;
    let on = recording_msg(m, 0).await;
    let t0 = Instant::now();
    assert_eq!(on["active"], true, "{on}");
    let by = m.sockets[0].id().to_string();
    // Everyone sees the indicator.
    for i in 1..m.sockets.len() {
        let msg = recording_msg(m, i).await;
        assert_eq!(
            (msg["active"].clone(), msg["by"].as_str()),
            (json!(true), Some(by.as_str()))
        );
    }
    // The node answered the start: the recorder's link.
    if m.links[0].len() == links_before {
        next_of(&mut m.sockets[0], &mut m.links[0], "recording_status_link").await;
    }
    let link = m.links[0].last().unwrap().clone();
    assert_eq!(m.links[0].len(), links_before + 1, "one link per recording");
    assert!(
        link.len() == 32 && link.bytes().all(|c| c.is_ascii_hexdigit()),
        "{link}"
    );
    let during = link_status(edge, status_url, &link).await;
    assert_eq!(during["state"], "recording", "{during}");
    // Purged 24 h after the start at the latest, and the link says when.
    let purge = during["purge_at_ms"].as_u64().unwrap();
    assert!(
        (started_ms + 86_400_000 - 2_000..=now_ms() + 86_400_000).contains(&purge),
        "{during}"
    );
    assert!(
        link_page(edge, status_url, &link)
            .await
            .contains("Recording in progress")
    );
    tokio::time::sleep_until(tokio::time::Instant::from_std(t0 + seconds)).await;
    m.sockets[0].send(json!({"type": "stop_recording"})).await;
    let recorded = t0.elapsed().as_secs_f64();
    for i in 0..m.sockets.len() {
        let msg = recording_msg(m, i).await;
        assert_eq!(msg["active"], false, "{msg}");
    }
    (recorded, link)
}

/// Records for [`RECORD_FOR`].
async fn record(
    edge: &Edge,
    status_url: &str,
    m: &mut Meeting,
    dropbox: Option<Value>,
) -> (f64, String) {
    record_for(edge, status_url, m, dropbox, RECORD_FOR).await
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// What the recorder's link answers (JSON), as the page reads it: `{status_url}{token}`.
async fn link_status(edge: &Edge, status_url: &str, token: &str) -> Value {
    let r = http::request(
        &edge.host_port(),
        "GET",
        &format!("{status_url}{token}"),
        &[("Accept", "application/json")],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    r.json()
}

/// The link's state once it is `want` (within 30 s).
async fn link_reaches(edge: &Edge, status_url: &str, token: &str, want: &str) -> Value {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let v = link_status(edge, status_url, token).await;
        if v["state"] == want {
            return v;
        }
        assert!(Instant::now() < end, "the link never said {want}: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the link shows a browser (its HTML page).
async fn link_page(edge: &Edge, status_url: &str, token: &str) -> String {
    let r = http::request(
        &edge.host_port(),
        "GET",
        &format!("{status_url}{token}"),
        &[("Accept", "text/html")],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-security-policy"),
        Some("default-src 'none'; style-src 'unsafe-inline'"),
        "the page's own policy"
    );
    String::from_utf8_lossy(&r.body).into_owned()
}

/// Every message left on the participants' sockets (other than the recorder's): none is a
/// status link, and none was met before.
async fn others_never_got_a_link(m: &mut Meeting) {
    for i in 1..m.sockets.len() {
        while let Some(ev) = m.sockets[i]
            .next_event_within(Duration::from_millis(300))
            .await
        {
            if let edgemeet_tests::client::Event::Message(msg) = ev {
                assert_ne!(msg["type"], "recording_status_link", "socket {i}: {msg}");
            }
        }
        assert_eq!(m.links[i], Vec::<String>::new(), "socket {i} got a link");
    }
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
    edgemeet_testsupport::node_client::init_crypto();
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
        json!({"recording": {"available": true, "destination": "local",
            "status_url": "/v1/recording-status/", "files": "per_person"}})
    );
    let status_url = cfg["recording"]["status_url"].as_str().unwrap();

    let mut m = meeting(&edge).await;
    let (recorded, link) = record(&edge, status_url, &mut m, None).await;

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
    others_never_got_a_link(&mut m).await;
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
    let delivered = link_reaches(&edge, status_url, &link, "delivered").await;
    assert_eq!(
        (
            delivered["files"].clone(),
            delivered["files_delivered"].clone()
        ),
        (json!(3), json!(3)),
        "{delivered}"
    );
    storage_empties(&data).await;
    let logs = edge.stop();
    assert!(logs.contains("recording ready"), "{logs}");
    assert!(!logs.contains(&link), "the status link in the logs");
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
    edgemeet_testsupport::node_client::init_crypto();
    let emu = edgemeet_testsupport::dropbox_emulator::Emulator::start().await;
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
    for i in 1..m.sockets.len() {
        while recording_msg(&mut m, i).await["active"] == true {}
    }
    assert_eq!(
        m.links[0],
        Vec::<String>::new(),
        "a link to a recording that never started"
    );

    let status_url = cfg["recording"]["status_url"].as_str().unwrap();
    assert_eq!(status_url, "/v1/recording-status/");
    let (recorded, link) = record(&edge, status_url, &mut m, Some(grant)).await;
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
    others_never_got_a_link(&mut m).await;
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
    let delivered = link_reaches(&edge, status_url, &link, "delivered").await;
    assert_eq!(delivered["files_delivered"], 3, "{delivered}");
    assert!(
        link_page(&edge, status_url, &link)
            .await
            .contains("Delivered (3 of 3 files)")
    );
    storage_empties(&data).await;
    let logs = edge.stop();
    assert!(!logs.contains(&access), "the Dropbox token in the logs");
    assert!(!logs.contains(&link), "the status link in the logs");
}

/// A delivery that cannot succeed: the recorder revoked the app's access to their Dropbox, or
/// their Dropbox is full. The link says `failed`, with the problem, and the page says what to
/// do; the files wait for the purge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_cannot_succeed_says_failed_with_its_problem_at_the_link() {
    edgemeet_testsupport::node_client::init_crypto();
    let emu = edgemeet_testsupport::dropbox_emulator::Emulator::start().await;
    let emu_url = emu.url();
    let dirs = Dirs::new();
    let data = dirs.data();
    let mut edge = Edge::native(&[
        ("EDGEMEET_RECORDING_DATA_DIR", data.to_str().unwrap()),
        ("EDGEMEET_DROPBOX_APP_KEY", APP_KEY),
        (
            "EDGEMEET_DROPBOX_AUTHORIZE_URL",
            &format!("{emu_url}/oauth2/authorize"),
        ),
        ("EDGEMEET_DROPBOX_API_URL", &emu_url),
        ("EDGEMEET_DROPBOX_CONTENT_URL", &emu_url),
    ]);
    let cfg = http::get(&edge.host_port(), "/api/config").await.json();
    let status_url = cfg["recording"]["status_url"].as_str().unwrap();
    // Two recorders' grants (the OAuth flow itself is the test above's).
    let grant = |access: &str, refresh: &str| {
        emu.add_account(access, refresh, APP_KEY);
        json!({"access_token": access, "refresh_token": refresh, "app_key": APP_KEY})
    };
    let revoked = grant("sl.emu-revoked-access", "emu-revoked-refresh");
    let full = grant("sl.emu-full-access", "emu-full-refresh");
    let mut m = meeting(&edge).await;

    // Access revoked in the recorder's Dropbox settings: no retry can help.
    emu.revoke("emu-revoked-refresh");
    let (_, link) = record_for(
        &edge,
        status_url,
        &mut m,
        Some(revoked),
        Duration::from_secs(2),
    )
    .await;
    let failed = link_reaches(&edge, status_url, &link, "failed").await;
    assert_eq!(
        (failed["problem"].clone(), failed["files_delivered"].clone()),
        (json!("grant_revoked"), json!(0)),
        "{failed}"
    );
    let page = link_page(&edge, status_url, &link).await;
    assert!(
        page.contains("Delivery failed: access to your Dropbox was revoked"),
        "{page}"
    );

    // A full Dropbox: failed, tried again later (the recorder can free space).
    emu.set_quota(Some(0));
    let (_, link_full) = record_for(
        &edge,
        status_url,
        &mut m,
        Some(full),
        Duration::from_secs(2),
    )
    .await;
    assert_ne!(link_full, link, "a link per recording");
    let failed = link_reaches(&edge, status_url, &link_full, "failed").await;
    assert_eq!(failed["problem"], "dropbox_full", "{failed}");
    assert!(failed["next_attempt_at_ms"].as_u64().is_some(), "{failed}");
    let page = link_page(&edge, status_url, &link_full).await;
    assert!(page.contains("your Dropbox is full"), "{page}");
    assert!(emu.files().is_empty(), "{:?}", emu.files());

    others_never_got_a_link(&mut m).await;
    leave(m).await;
    // Another token, or a malformed one, finds nothing.
    for other in ["0123456789abcdef0123456789abcdef", "x", &link[..31]] {
        let r = http::request(
            &edge.host_port(),
            "GET",
            &format!("{status_url}{other}"),
            &[],
            b"",
        )
        .await;
        assert_eq!(r.status, 404, "{other}");
    }
    let logs = edge.stop();
    for secret in [&link, &link_full] {
        assert!(!logs.contains(secret.as_str()), "a status link in the logs");
    }
}
