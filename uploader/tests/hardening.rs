//! The uploader never loses, leaks or hides a recording (issue 14): a lost `finish` answer,
//! manifests naming foreign keys or the wrong size, corrupt commits, abandoned multipart uploads,
//! one bad recording among good ones, revoked grants, a full Dropbox, the recorder's status link,
//! and the byte counter. Real s3s-fs, the strict Dropbox emulator; loopback only.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use edgemeet_protocol::job::{DeliveryProblem, DeliveryState, DeliveryStatus};
use edgemeet_testsupport::dropbox_emulator::{Emulator, dropbox_content_hash};
use edgemeet_uploader::{OffsetClock, RecordingFile, RecordingManifest, start, start_with_clock};
use serde_json::Value;
use support::*;

const ACCESS: &str = "sl.emu-hardening-access";
const REFRESH: &str = "emu-hardening-refresh-secret";

async fn setup() -> (S3, Emulator) {
    let s3 = S3::start().await;
    let emu = Emulator::start().await;
    emu.add_account(ACCESS, REFRESH, APP_KEY);
    (s3, emu)
}

async fn delivered(s3: &S3, secs: u64) {
    wait_until(secs, "delivered and deleted", || async {
        s3.keys_but_status().await.is_empty()
    })
    .await;
}

/// The recorder's status link, as JSON (`None`: 404).
async fn status_link(addr: std::net::SocketAddr, token: &str) -> Option<DeliveryStatus> {
    let r = reqwest::get(format!("http://{addr}/v1/recording-status/{token}"))
        .await
        .unwrap();
    match r.status().as_u16() {
        200 => Some(r.json().await.unwrap()),
        404 => None,
        s => panic!("status link answered {s}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_finish_answer_is_resolved_by_looking_at_the_path() {
    let (s3, emu) = setup().await;
    let bytes = data(9 * MIB + 77, 51);
    let m = write_recording(&s3.store(), &[("cam.webm", &bytes)], ACCESS, REFRESH).await;
    // Dropbox commits, then the connection breaks before its answer arrives; with the default
    // backoff (500 ms) the uploader asks again and hears `lookup_failed/closed`.
    emu.lose_next_finish_answer();
    let toml = s3
        .toml(&emu.url(), "")
        .replace("backoff_ms = 20", "backoff_ms = 500");
    let h = start(edgemeet_uploader::Config::from_toml_str(&toml).unwrap())
        .await
        .unwrap();
    wait_until(20, "the commit", || async { !emu.files().is_empty() }).await;
    let committed = Instant::now();
    delivered(&s3, 20).await;
    let resolved = committed.elapsed();
    h.shutdown().await;
    eprintln!("figure: lost finish answer resolved in {resolved:?}");
    let files = emu.files();
    assert_eq!(files.len(), 1, "one file, no duplicate: {files:?}");
    assert_eq!(
        files[0].path_display,
        format!("/edgemeet/{}/cam.webm", date_of(&m))
    );
    assert_eq!(files[0].content_hash, dropbox_content_hash(&bytes));
    let st = emu.stats();
    assert_eq!(
        st.finish_closed, 1,
        "the second finish heard `closed`: {st:?}"
    );
    assert!(st.metadata_lookups >= 2, "looked before and after: {st:?}");
    assert_eq!(st.starts, 1, "the session was not redone");
    let status = s3.status_of(&m.recording_id).await.unwrap();
    assert_eq!(status.state, DeliveryState::Delivered);
    assert!(resolved < Duration::from_secs(5), "{resolved:?}");
}

/// A manifest for recording `id` naming `key`, sealed for the test account.
fn manifest_naming(id: &str, key: &str, size: u64) -> RecordingManifest {
    let now = edgemeet_uploader::clock::unix_ms(std::time::SystemTime::now());
    let creds = edgemeet_uploader::DropboxCredentials {
        access_token: ACCESS.into(),
        refresh_token: Some(REFRESH.into()),
    };
    RecordingManifest {
        v: 1,
        recording_id: id.into(),
        meeting_id: "meeting-1".into(),
        started_at_ms: now,
        ended_at_ms: now,
        files: vec![RecordingFile {
            key: key.into(),
            name: "x.webm".into(),
            size,
            content_type: "video/webm".into(),
        }],
        dropbox: Some(test_key().seal(id, "meeting-1", APP_KEY, &creds).unwrap()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_keys_escaping_their_folder_deliver_nothing() {
    let (s3, emu) = setup().await;
    let store = s3.store();
    // Another recording's file, and a file in another bucket of the same server.
    let victim = data(1000, 61);
    store
        .put_small(
            "recordings/victim/files/x.webm",
            victim.clone(),
            "video/webm",
        )
        .await
        .unwrap();
    let mut other = s3.config_with(&emu.url(), "").s3;
    other.bucket = "other-bucket".into();
    let other = edgemeet_uploader::Store::new(&other);
    other.ensure_bucket().await.unwrap();
    other
        .put_small("x", victim.clone(), "video/webm")
        .await
        .unwrap();
    for (id, key) in [
        ("evil1", "recordings/evil1/files/../../victim/files/x.webm"),
        ("evil2", "recordings/evil2/../../../other-bucket/x"),
    ] {
        // Written as raw JSON: the manifest type itself refuses such keys.
        let mut m =
            serde_json::to_value(manifest_naming(id, "recordings/placeholder", 1000)).unwrap();
        m["files"][0]["key"] = Value::from(key);
        store
            .put_small(
                &format!("recordings/{id}/manifest.json"),
                serde_json::to_vec(&m).unwrap(),
                "application/json",
            )
            .await
            .unwrap();
    }
    let h = start(s3.config_with(&emu.url(), "")).await.unwrap();
    wait_until(20, "both refused", || async {
        h.metrics().recordings_failed == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    h.shutdown().await;
    assert!(
        emu.files().is_empty(),
        "nothing delivered: {:?}",
        emu.files()
    );
    assert_eq!(emu.stats().appends, 0);
    let keys = s3.keys().await;
    assert!(
        keys.contains(&"recordings/victim/files/x.webm".to_string()),
        "{keys:?}"
    );
    assert_eq!(
        other.list_under("").await.unwrap().len(),
        1,
        "the other bucket is untouched"
    );
    for id in ["evil1", "evil2"] {
        let st = s3.status_of(id).await.unwrap();
        assert_eq!(
            (st.state, st.problem),
            (
                DeliveryState::Failed,
                Some(DeliveryProblem::InvalidManifest)
            )
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_smaller_than_its_object_is_an_error_and_nothing_is_lost() {
    let (s3, emu) = setup().await;
    let bytes = data(6 * MIB, 71);
    let m = write_recording(&s3.store(), &[("cam.webm", &bytes)], ACCESS, REFRESH).await;
    // The manifest claims half the file.
    let mut short = m.clone();
    short.files[0].size = 3 * MIB as u64;
    s3.store()
        .put_small(
            &format!("recordings/{}/manifest.json", m.recording_id),
            short.to_json(),
            "application/json",
        )
        .await
        .unwrap();
    let h = start(s3.config_with(&emu.url(), "")).await.unwrap();
    wait_until(20, "refused", || async {
        h.metrics().recordings_failed == 1
    })
    .await;
    h.shutdown().await;
    assert!(emu.files().is_empty(), "no truncated file delivered");
    let keys = s3.keys().await;
    assert!(
        keys.iter().any(|k| k.ends_with("/files/cam.webm")),
        "the media is kept: {keys:?}"
    );
    let got = s3.store().size_of(&m.files[0].key).await.unwrap();
    assert_eq!(got, Some(bytes.len() as u64));
    let st = s3.status_of(&m.recording_id).await.unwrap();
    assert_eq!(
        (st.state, st.problem),
        (
            DeliveryState::Failed,
            Some(DeliveryProblem::StorageMismatch)
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_holding_other_content_is_not_done() {
    let (s3, emu) = setup().await;
    let bytes = data(5 * MIB + 3, 81);
    let m = write_recording(&s3.store(), &[("cam.webm", &bytes)], ACCESS, REFRESH).await;
    emu.corrupt_next_commit();
    let h = start(s3.config_with(&emu.url(), "")).await.unwrap();
    delivered(&s3, 20).await;
    let snap = h.metrics();
    h.shutdown().await;
    let date = date_of(&m);
    let files = emu.files();
    let good = files
        .iter()
        .find(|f| f.content_hash == dropbox_content_hash(&bytes))
        .expect("a checked copy");
    // The corrupt one keeps its name; the second delivery picks the next free one.
    assert_eq!(good.path_display, format!("/edgemeet/{date}/cam (1).webm"));
    assert_eq!(files.len(), 2);
    assert!(snap.errors >= 1, "the mismatch was an error");
    let st = s3.status_of(&m.recording_id).await.unwrap();
    assert_eq!((st.state, st.attempts), (DeliveryState::Delivered, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_multipart_upload_is_aborted_and_purged_parts_included() {
    let s3 = S3::start().await;
    let store = s3.store();
    // A node died mid-recording: one 5 MiB part uploaded, never completed, no manifest.
    let (id, _token) = edgemeet_uploader::status::new_recording_ids();
    edgemeet_uploader::status::write_recording_started(&store, &id, std::time::SystemTime::now())
        .await
        .unwrap();
    let w = edgemeet_uploader::RecordingWriter::new(
        store.clone(),
        id.clone(),
        "meeting-1",
        std::time::SystemTime::now(),
    )
    .with_part_size(5 * MIB);
    let mut f = w.create_file("cam.webm", "video/webm").await.unwrap();
    f.write(&data(6 * MIB, 91)).await.unwrap();
    drop(f);
    assert!(!s3.multipart_leftovers().is_empty(), "parts on disk");
    let clock = Arc::new(OffsetClock::new());
    let h = start_with_clock(s3.config_with("http://127.0.0.1:9", ""), clock.clone())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !s3.keys().await.is_empty(),
        "kept while within the retention"
    );
    clock.advance(Duration::from_secs(25 * 3600));
    h.poke();
    wait_until(20, "bucket and parts purged", || async {
        s3.keys().await.is_empty() && s3.multipart_leftovers().is_empty()
    })
    .await;
    // The counter moves just after the last delete.
    wait_until(5, "the purge counted", || async {
        h.metrics().recordings_purged == 1
    })
    .await;
    h.shutdown().await;
    // No media in the bucket's folder; s3s-fs keeps only its per-key sidecars (content type,
    // checksums) of deleted objects, which it never removes.
    let leftovers = walk(&s3.data_dir().join(BUCKET));
    assert!(
        leftovers.is_empty(),
        "nothing left in the bucket: {leftovers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_upload_marker_does_not_block_the_cleanup() {
    let (s3, emu) = setup().await;
    let m = write_recording(
        &s3.store(),
        &[("cam.webm", &data(3000, 9))],
        ACCESS,
        REFRESH,
    )
    .await;
    // A marker the writer could not delete, naming an upload that no longer exists.
    let marker = serde_json::json!({"key": m.files[0].key, "upload_id": "6f1c1b8e-1d0a-4c55-9a37-000000000000"});
    s3.store()
        .put_small(
            &format!("recordings/{}/uploads/cam.webm", m.recording_id),
            marker.to_string().into_bytes(),
            "application/json",
        )
        .await
        .unwrap();
    let h = start(s3.config_with(&emu.url(), "")).await.unwrap();
    delivered(&s3, 20).await;
    h.shutdown().await;
    assert_eq!(emu.files().len(), 1);
}

/// Every file under `dir` (folders themselves do not count).
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_recording_does_not_delay_another() {
    let (s3, emu) = setup().await;
    const BAD: &str = "sl.emu-bad-account";
    emu.add_account(BAD, "bad-refresh", APP_KEY);
    emu.fail_account(BAD, Some(503));
    // The failing one sorts first; with the default backoff (500 ms doubling, 8 attempts) it
    // used to hold the queue for 63.5 s.
    let store = s3.store();
    write_recording_as(
        &store,
        "0000-bad",
        &[("a.webm", &data(2000, 1))],
        BAD,
        "bad-refresh",
    )
    .await;
    let good = data(5 * MIB, 2);
    write_recording_as(&store, "ffff-good", &[("b.webm", &good)], ACCESS, REFRESH).await;
    let toml = s3
        .toml(&emu.url(), "")
        .replace("backoff_ms = 20", "backoff_ms = 500")
        .replace("max_attempts = 5", "max_attempts = 8");
    let t = Instant::now();
    let h = start(edgemeet_uploader::Config::from_toml_str(&toml).unwrap())
        .await
        .unwrap();
    wait_until(15, "the good recording delivered", || async {
        s3.keys()
            .await
            .iter()
            .all(|k| !k.contains("ffff-good/files"))
    })
    .await;
    let took = t.elapsed();
    eprintln!("figure: good recording delivered {took:?} after start, beside a failing one");
    assert_eq!(emu.files().len(), 1);
    assert_eq!(emu.files()[0].sha256, sha256_hex(&good));
    // The good delivery leaves the queue a moment after its files are purged; the bad one stays.
    wait_until(5, "only the bad one still being tried", || async {
        h.metrics().queue_length == 1
    })
    .await;
    h.shutdown().await;
    assert!(s3.keys().await.iter().any(|k| k.contains("0000-bad/files")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_fails_once_shows_on_the_status_link_and_is_not_retried() {
    revoked_grant(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_whose_access_token_expired_calls_the_token_endpoint_once() {
    revoked_grant(true).await;
}

/// The recorder revoked the app: its access token answers `invalid_access_token` (or, when it
/// had expired already, `expired_access_token`), and the refresh `invalid_grant`.
async fn revoked_grant(expired_first: bool) {
    let (s3, emu) = setup().await;
    let (m, token) = write_recording_with_status(
        &s3.store(),
        &[("cam.webm", &data(3000, 5))],
        ACCESS,
        REFRESH,
    )
    .await;
    if expired_first {
        emu.expire_now();
    }
    emu.revoke(REFRESH);
    let h = start(s3.config_with(&emu.url(), "")).await.unwrap();
    let addr = h.status_addr().unwrap();
    wait_until(20, "failed", || async {
        h.metrics().recordings_failed == 1
    })
    .await;
    // Many polls later (100 ms each), still one call to the token endpoint.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(h.metrics().polls >= 8);
    let st = emu.stats();
    assert_eq!(st.expired_rejections > 0, expired_first, "{st:?}");
    assert_eq!(emu.stats().token_requests, 1, "{:?}", emu.stats());
    let st = status_link(addr, &token)
        .await
        .expect("status link answers");
    assert_eq!(
        (st.state, st.problem),
        (DeliveryState::Failed, Some(DeliveryProblem::GrantRevoked))
    );
    assert_eq!(st.purge_at_ms, m.started_at_ms + 86_400_000);
    h.shutdown().await;
    // A restart reads the status and does not try again.
    let h = start(s3.config_with(&emu.url(), "")).await.unwrap();
    wait_until(20, "parked", || async {
        h.metrics().recordings_failed == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    h.shutdown().await;
    assert_eq!(emu.stats().token_requests, 1);
    assert!(
        s3.keys()
            .await
            .iter()
            .any(|k| k.ends_with("/files/cam.webm")),
        "kept for the purge"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_dropbox_is_shown_then_delivered_once_space_is_freed() {
    let (s3, emu) = setup().await;
    emu.set_quota(Some(1000));
    let bytes = data(4 * MIB + 1, 6);
    let (m, token) =
        write_recording_with_status(&s3.store(), &[("cam.webm", &bytes)], ACCESS, REFRESH).await;
    let h = start(s3.config_with(&emu.url(), "")).await.unwrap();
    let addr = h.status_addr().unwrap();
    wait_until(20, "shown as full", || async {
        status_link(addr, &token)
            .await
            .is_some_and(|s| s.problem == Some(DeliveryProblem::DropboxFull))
    })
    .await;
    let st = status_link(addr, &token).await.unwrap();
    assert_eq!(st.state, DeliveryState::Failed);
    assert!(st.next_attempt_at_ms.is_some(), "tried again later");
    emu.set_quota(None);
    delivered(&s3, 20).await;
    let st = status_link(addr, &token).await.unwrap();
    assert_eq!(
        (st.state, st.problem, st.files_delivered),
        (DeliveryState::Delivered, None, 1)
    );
    h.shutdown().await;
    assert_eq!(emu.stats().starts, 1, "the same session was committed");
    assert_eq!(
        emu.files()[0].path_display,
        format!("/edgemeet/{}/cam.webm", date_of(&m))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_link_reveals_only_the_state_and_expires_with_the_purge() {
    let (s3, emu) = setup().await;
    let (m, token) = write_recording_with_status(
        &s3.store(),
        &[("cam.webm", &data(2000, 7))],
        ACCESS,
        REFRESH,
    )
    .await;
    let clock = Arc::new(OffsetClock::new());
    let h = start_with_clock(s3.config_with(&emu.url(), ""), clock.clone())
        .await
        .unwrap();
    let addr = h.status_addr().unwrap();
    assert_ne!(
        h.metrics_addr(),
        Some(addr),
        "status links are not on the metrics port"
    );
    delivered(&s3, 20).await;
    let url = format!("http://{addr}/v1/recording-status/{token}");
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let body = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["state"], "delivered");
    assert_eq!(v["files_delivered"], 1);
    assert_eq!(v["purge_at_ms"], m.started_at_ms + 86_400_000);
    for secret in [
        m.recording_id.as_str(),
        "meeting-1",
        "cam.webm",
        "edgemeet/",
        ACCESS,
    ] {
        assert!(!body.contains(secret), "{secret} in {body}");
    }
    // A browser gets a small page saying the same.
    let page = reqwest::Client::new()
        .get(&url)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let page = page.text().await.unwrap();
    assert!(page.contains("Delivered (1 of 1 files)"), "{page}");
    assert!(!page.contains(&m.recording_id));
    // Unknown, malformed, or the recording id itself: all the same 404.
    for wrong in [
        "0123456789abcdef0123456789abcdef",
        "nope",
        m.recording_id.as_str(),
    ] {
        assert!(status_link(addr, wrong).await.is_none(), "{wrong}");
    }
    // Past the retention: purged, link dead.
    clock.advance(Duration::from_secs(25 * 3600));
    assert!(status_link(addr, &token).await.is_none());
    h.poke();
    wait_until(20, "status purged", || async { s3.keys().await.is_empty() }).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_byte_sent_is_counted() {
    let (s3, emu) = setup().await;
    let bytes = data(10 * MIB, 8);
    write_recording(&s3.store(), &[("cam.webm", &bytes)], ACCESS, REFRESH).await;
    // The first 4 MiB chunk is sent in full, then refused with a 500: it is sent again.
    emu.fail_next_append(500);
    let h = start(s3.config_with(&emu.url(), "")).await.unwrap();
    delivered(&s3, 20).await;
    let snap = h.metrics();
    h.shutdown().await;
    let resent = 4 * MIB as u64;
    assert_eq!(snap.bytes_uploaded, bytes.len() as u64 + resent);
    assert_eq!(emu.stats().bytes_received, snap.bytes_uploaded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_storage_refuses_dot_dot_keys() {
    let root = tempfile::tempdir().unwrap();
    let s3 = edgemeet_uploader::start_embedded_s3(
        root.path(),
        "ak",
        "sk",
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let mut cfg = edgemeet_uploader::config::S3Config::new(s3.endpoint(), "aio", "ak", "sk");
    cfg.prefix = String::new();
    let store = edgemeet_uploader::Store::new(&cfg);
    store.ensure_bucket().await.unwrap();
    let mut other = cfg.clone();
    other.bucket = "other".into();
    let other = edgemeet_uploader::Store::new(&other);
    other.ensure_bucket().await.unwrap();
    other
        .put_small("secret", b"x".to_vec(), "text/plain")
        .await
        .unwrap();
    store
        .put_small("a/b", b"y".to_vec(), "text/plain")
        .await
        .unwrap();
    assert!(store.get_small("a/../../other/secret").await.is_err());
    assert!(store.get_small("a/./b").await.is_err());
    assert!(
        store
            .put_small("a/../../other/planted", b"z".to_vec(), "text/plain")
            .await
            .is_err()
    );
    assert_eq!(
        store.get_small("a/b").await.unwrap().as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(other.list_under("").await.unwrap().len(), 1);
    s3.shutdown().await;
}
