//! End-to-end tests of the uploader against a real S3-compatible server (s3s-fs) and the strict
//! Dropbox emulator. Everything listens on 127.0.0.1; every wait is bounded.

mod support;

use std::sync::Arc;
use std::time::Duration;

use edgemeet_protocol::job::DeliveryState;
use edgemeet_testsupport::dropbox_emulator::{Emulator, Fault};
use edgemeet_uploader::{OffsetClock, start, start_with_clock};
use support::*;

const ACCESS: &str = "sl.emu-initial-access-token";
const REFRESH: &str = "emu-refresh-token-secret";

async fn setup() -> (S3, Emulator) {
    let s3 = S3::start().await;
    let emu = Emulator::start().await;
    emu.add_account(ACCESS, REFRESH, APP_KEY);
    (s3, emu)
}

/// Uploads one recording and checks content, folder and that the bucket is empty afterwards.
async fn upload_and_check(
    s3: &S3,
    emu: &Emulator,
    extra_toml: &str,
) -> edgemeet_uploader::MetricsSnapshot {
    let big = data(10 * MIB + 12_345, 1);
    let small = data(1000, 2);
    let m = write_recording(
        &s3.store(),
        &[("cam-a.webm", &big), ("cam-b.webm", &small)],
        ACCESS,
        REFRESH,
    )
    .await;
    let h = start(s3.config_with(&emu.url(), extra_toml)).await.unwrap();
    wait_until(30, "delivered and deleted", || async {
        s3.keys_but_status().await.is_empty()
    })
    .await;
    let files = emu.files();
    let date = date_of(&m);
    assert_eq!(files.len(), 2, "{files:?}");
    let a = files
        .iter()
        .find(|f| f.path_display == format!("/edgemeet/{date}/cam-a.webm"))
        .expect("cam-a");
    assert_eq!(
        (a.size, a.sha256.as_str()),
        (big.len() as u64, sha256_hex(&big).as_str())
    );
    let b = files
        .iter()
        .find(|f| f.path_display == format!("/edgemeet/{date}/cam-b.webm"))
        .expect("cam-b");
    assert_eq!(b.sha256, sha256_hex(&small));
    let st = s3.status_of(&m.recording_id).await.expect("status kept");
    assert_eq!(st.state, DeliveryState::Delivered);
    assert_eq!((st.files, st.files_delivered), (2, 2));
    let snap = h.metrics();
    h.shutdown().await;
    snap
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_arrives_intact_and_bucket_is_emptied() {
    let (s3, emu) = setup().await;
    eprintln!("s3 server: {}", s3.kind);
    let snap = upload_and_check(&s3, &emu, "").await;
    assert_eq!(snap.recordings_uploaded, 1);
    assert_eq!(snap.files_uploaded, 2);
    assert_eq!(snap.bytes_uploaded, (10 * MIB + 12_345 + 1000) as u64);
    assert_eq!(snap.queue_length, 0);
    // 10 MiB in 4 MiB chunks: 3 appends + 1 for the small file, one session each.
    let st = emu.stats();
    assert_eq!((st.starts, st.appends, st.finishes), (2, 4, 2));
    assert_eq!(st.bad_requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expiry_mid_upload_is_refreshed() {
    let (s3, emu) = setup().await;
    // start + first append succeed, then the access token expires mid-file.
    emu.expire_tokens_after(2);
    upload_and_check(&s3, &emu, "").await;
    let st = emu.stats();
    assert_eq!(st.refreshes, 1);
    assert!(st.expired_rejections >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_honoured_then_succeeds() {
    let (s3, emu) = setup().await;
    emu.inject(Fault::RateLimit { retry_after: 1 });
    emu.inject(Fault::RateLimit { retry_after: 1 });
    let t = std::time::Instant::now();
    upload_and_check(&s3, &emu, "").await;
    assert_eq!(emu.stats().rate_limited, 2);
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "retry_after not honoured: {:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_then_succeed() {
    let (s3, emu) = setup().await;
    emu.inject(Fault::ServerError(503));
    emu.inject(Fault::ServerError(500));
    emu.inject(Fault::ServerError(502));
    upload_and_check(&s3, &emu, "").await;
    assert_eq!(emu.stats().server_errors, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_name_is_autorenamed() {
    let (s3, emu) = setup().await;
    let bytes = data(3000, 7);
    let m = write_recording(&s3.store(), &[("cam.webm", &bytes)], ACCESS, REFRESH).await;
    let date = date_of(&m);
    emu.put_file(
        &format!("/edgemeet/{date}/cam.webm"),
        b"someone else's file",
    );
    let h = start(s3.config_with(&emu.url(), "")).await.unwrap();
    wait_until(20, "delivered and deleted", || async {
        s3.keys_but_status().await.is_empty()
    })
    .await;
    h.shutdown().await;
    let renamed = emu
        .files()
        .into_iter()
        .find(|f| f.path_display == format!("/edgemeet/{date}/cam (1).webm"))
        .expect("renamed");
    assert_eq!(renamed.sha256, sha256_hex(&bytes));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_dropbox_past_24h_is_purged() {
    let s3 = S3::start().await;
    // A port nobody listens on: every Dropbox call fails to connect.
    let dead = format!("http://127.0.0.1:{}", free_port());
    write_recording(
        &s3.store(),
        &[("cam.webm", &data(5000, 3))],
        ACCESS,
        REFRESH,
    )
    .await;
    // A recording still being written (no manifest yet) is purged by age too.
    let store = s3.store();
    store
        .put_small(
            "recordings/unfinished/files/x.webm",
            vec![1, 2, 3],
            "video/webm",
        )
        .await
        .unwrap();
    let clock = Arc::new(OffsetClock::new());
    let h = start_with_clock(s3.config_with(&dead, ""), clock.clone())
        .await
        .unwrap();
    wait_until(20, "failed attempts", || async { h.metrics().errors >= 2 }).await;
    let keys = s3.keys().await;
    assert!(
        keys.iter().any(|k| k.ends_with("manifest.json")),
        "kept while within retention: {keys:?}"
    );
    assert!(keys.iter().any(|k| k.contains("unfinished")));
    assert_eq!(h.metrics().queue_length, 1);

    clock.advance(Duration::from_secs(25 * 3600));
    h.poke();
    wait_until(20, "bucket purged", || async { s3.keys().await.is_empty() }).await;
    // The counters move just after the last delete.
    wait_until(5, "both purges counted", || async {
        h.metrics().recordings_purged == 2
    })
    .await;
    let snap = h.metrics();
    assert_eq!(snap.recordings_purged, 2);
    assert!(snap.objects_purged >= 3);
    assert_eq!(snap.recordings_uploaded, 0);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_folder_destination() {
    let s3 = S3::start().await;
    let out = tempfile::tempdir().unwrap();
    let bytes = data(6 * MIB + 1, 9);
    let m = write_recording(
        &s3.store(),
        &[("cam.webm", &bytes), ("empty.webm", &[])],
        ACCESS,
        REFRESH,
    )
    .await;
    let extra = format!(
        "destination = \"local\"\nlocal_folder = \"{}\"",
        out.path().display()
    );
    let h = start(s3.config_with("http://127.0.0.1:9", &extra))
        .await
        .unwrap();
    wait_until(20, "delivered and deleted", || async {
        s3.keys_but_status().await.is_empty()
    })
    .await;
    h.shutdown().await;
    let dir = out.path().join(date_of(&m));
    assert_eq!(
        sha256_hex(&std::fs::read(dir.join("cam.webm")).unwrap()),
        sha256_hex(&bytes)
    );
    assert_eq!(std::fs::read(dir.join("empty.webm")).unwrap().len(), 0);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        2,
        "no temp files left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_endpoints() {
    let (s3, emu) = setup().await;
    write_recording(
        &s3.store(),
        &[("cam.webm", &data(4096, 4))],
        ACCESS,
        REFRESH,
    )
    .await;
    let h = start(s3.config_with(&emu.url(), "")).await.unwrap();
    wait_until(20, "delivered and deleted", || async {
        s3.keys_but_status().await.is_empty()
    })
    .await;
    let addr = h.metrics_addr().unwrap();
    let get = |path: &'static str| async move {
        let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    let (code, body) = get("/metrics").await;
    assert_eq!(code, 200);
    assert!(
        body.contains("edgemeet_uploader_bytes_uploaded_total 4096"),
        "{body}"
    );
    assert!(body.contains("edgemeet_uploader_queue_length 0"));
    assert!(body.contains("edgemeet_uploader_recordings_purged_total 0"));
    assert!(!body.contains(ACCESS) && !body.contains(REFRESH));
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await.0, 200);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_pointing_outside_its_prefix_is_refused() {
    let (s3, emu) = setup().await;
    let store = s3.store();
    store
        .put_small(
            "recordings/victim/files/keep.webm",
            vec![1; 10],
            "video/webm",
        )
        .await
        .unwrap();
    let creds = edgemeet_uploader::DropboxCredentials {
        access_token: ACCESS.into(),
        refresh_token: None,
    };
    let m = edgemeet_uploader::RecordingManifest {
        v: 1,
        recording_id: "evil".into(),
        meeting_id: "m".into(),
        started_at_ms: edgemeet_uploader::clock::unix_ms(std::time::SystemTime::now()),
        ended_at_ms: edgemeet_uploader::clock::unix_ms(std::time::SystemTime::now()),
        files: vec![edgemeet_uploader::RecordingFile {
            key: "recordings/victim/files/keep.webm".into(),
            name: "keep.webm".into(),
            size: 10,
            content_type: "video/webm".into(),
        }],
        dropbox: Some(test_key().seal("evil", "m", APP_KEY, &creds).unwrap()),
    };
    store
        .put_small(
            "recordings/evil/manifest.json",
            m.to_json(),
            "application/json",
        )
        .await
        .unwrap();
    let h = start(s3.config_with(&emu.url(), "")).await.unwrap();
    wait_until(20, "an attempt", || async { h.metrics().errors >= 1 }).await;
    h.shutdown().await;
    assert!(
        s3.keys()
            .await
            .contains(&"recordings/victim/files/keep.webm".to_string())
    );
    assert!(emu.files().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_finish_response_does_not_duplicate() {
    let (s3, emu) = setup().await;
    let bytes = data(5 * MIB, 21);
    let m = write_recording(&s3.store(), &[("cam.webm", &bytes)], ACCESS, REFRESH).await;
    let path = format!("/edgemeet/{}/cam.webm", date_of(&m));
    // Replay what a crashed uploader did: the whole session, finish sent and committed, but its
    // answer lost before progress recorded it (progress says "finishing").
    let http = reqwest::Client::new();
    let call = |ep: &'static str, arg: serde_json::Value, body: Vec<u8>| {
        let http = http.clone();
        let url = format!("{}/2/files/upload_session/{ep}", emu.url());
        async move {
            let r = http
                .post(url)
                .bearer_auth(ACCESS)
                .header("Dropbox-API-Arg", arg.to_string())
                .header("Content-Type", "application/octet-stream")
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let sid = call("start", serde_json::json!({}), vec![]).await["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cursor = serde_json::json!({"session_id": sid, "offset": 0});
    call(
        "append_v2",
        serde_json::json!({"cursor": cursor, "close": true}),
        bytes.clone(),
    )
    .await;
    let commit = serde_json::json!({"path": path, "mode": "add", "autorename": true});
    let cursor = serde_json::json!({"session_id": sid, "offset": bytes.len()});
    call(
        "finish",
        serde_json::json!({"cursor": cursor, "commit": commit}),
        vec![],
    )
    .await;
    let progress = serde_json::json!({"files": [{"name": "cam.webm", "session_id": sid, "offset": bytes.len(), "finishing": true}]});
    s3.store()
        .put_small(
            &format!("recordings/{}/progress.json", m.recording_id),
            progress.to_string().into_bytes(),
            "application/json",
        )
        .await
        .unwrap();

    let h = start(s3.config_with(&emu.url(), "")).await.unwrap();
    wait_until(20, "delivered and deleted", || async {
        s3.keys_but_status().await.is_empty()
    })
    .await;
    h.shutdown().await;
    let files = emu.files();
    assert_eq!(files.len(), 1, "no duplicate: {files:?}");
    assert_eq!(files[0].sha256, sha256_hex(&bytes));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_s3_all_in_one_to_local_folder() {
    // The all-in-one: embedded s3s-fs storage + the uploader in-process + a local folder.
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let s3 = edgemeet_uploader::start_embedded_s3(
        root.path(),
        "aio-ak",
        "aio-sk",
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    assert!(s3.addr().ip().is_loopback());
    let s3cfg = edgemeet_uploader::config::S3Config::new(s3.endpoint(), "aio", "aio-ak", "aio-sk");
    let mut config = edgemeet_uploader::Config::all_in_one(s3cfg, out.path());
    config.poll_interval = Duration::from_millis(100);
    let store = edgemeet_uploader::Store::new(&config.s3);
    let h = start(config).await.unwrap();
    assert_eq!(h.metrics_addr(), None);
    let bytes = data(7 * MIB + 3, 31);
    let mut w = edgemeet_uploader::RecordingWriter::new(
        store.clone(),
        "aio-rec",
        "aio-meeting",
        std::time::SystemTime::now(),
    );
    w.write_file_from("cam.webm", "video/webm", &bytes[..])
        .await
        .unwrap();
    let m = w.finish(std::time::SystemTime::now(), None).await.unwrap();
    h.poke();
    wait_until(20, "delivered and deleted", || async {
        let keys = store.list().await.unwrap();
        keys.len() == 1 && keys[0].key.ends_with("/status.json")
    })
    .await;
    h.shutdown().await;
    s3.shutdown().await;
    let got = std::fs::read(out.path().join(date_of(&m)).join("cam.webm")).unwrap();
    assert_eq!(sha256_hex(&got), sha256_hex(&bytes));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_reached_mid_upload_stops_and_purges() {
    let (s3, emu) = setup().await;
    emu.set_append_delay(Duration::from_millis(300));
    write_recording(
        &s3.store(),
        &[("cam.webm", &data(20 * MIB, 41))],
        ACCESS,
        REFRESH,
    )
    .await;
    let clock = Arc::new(OffsetClock::new());
    let h = start_with_clock(s3.config_with(&emu.url(), ""), clock.clone())
        .await
        .unwrap();
    wait_until(20, "upload under way", || async {
        emu.max_session_len() >= 4 * MIB as u64
    })
    .await;
    clock.advance(Duration::from_secs(25 * 3600));
    wait_until(20, "bucket purged", || async { s3.keys().await.is_empty() }).await;
    let snap = h.metrics();
    h.shutdown().await;
    assert!(
        emu.files().is_empty(),
        "nothing committed after the retention"
    );
    assert_eq!((snap.recordings_purged, snap.recordings_uploaded), (1, 0));
}
