//! A recording whose media node died (issue 17): the node left its journal (the file's head and
//! chunks, `pending.json` with the sealed token) and an unfinished multipart upload, but no
//! manifest. Once nothing has been written for `salvage_after_secs`, the uploader turns the
//! journal into the file, aborts the node's upload, writes the manifest and delivers it; a
//! recording still being written is left alone; the 24 h purge takes journals too.
//! Real s3s-fs, the strict Dropbox emulator; loopback only.

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use edgemeet_testsupport::dropbox_emulator::Emulator;
use edgemeet_uploader::journal::{JournalWriter, write_pending};
use edgemeet_uploader::{DropboxCredentials, OffsetClock, Store, start_with_clock};
use support::*;

const ACCESS: &str = "sl.emu-salvage-access";
const REFRESH: &str = "emu-salvage-refresh-secret";

/// A node killed mid-recording: `chunks` journaled after `head`, a part of the real file
/// uploaded and never completed, the status saying "recording". Returns (id, whole file).
async fn killed_recording(store: &Store, chunks: &[Vec<u8>]) -> (String, Vec<u8>) {
    let (id, _token) = edgemeet_uploader::status::new_recording_ids();
    let started = SystemTime::now();
    edgemeet_uploader::status::write_recording_started(store, &id, started)
        .await
        .unwrap();
    let creds = DropboxCredentials {
        access_token: ACCESS.into(),
        refresh_token: Some(REFRESH.into()),
    };
    let sealed = test_key().seal(&id, "meeting-1", APP_KEY, &creds).unwrap();
    write_pending(store, &id, "meeting-1", started, Some(&sealed))
        .await
        .unwrap();
    let mut j = JournalWriter::new(store.clone(), &id, "abcd0123-p1.webm");
    let head = b"HEAD-of-the-webm".to_vec();
    j.put_head(head.clone()).await.unwrap();
    let mut whole = head;
    for c in chunks {
        j.append(c.clone()).await.unwrap();
        whole.extend_from_slice(c);
    }
    // The node's own upload of the same file, part 2 on its way, never finished.
    let w =
        edgemeet_uploader::RecordingWriter::new(store.clone(), id.clone(), "meeting-1", started)
            .with_part_size(5 * MIB);
    let mut f = w
        .create_file("abcd0123-p1.webm", "video/webm")
        .await
        .unwrap();
    f.hold_first_part();
    f.write(&data(6 * MIB, 5)).await.unwrap();
    drop(f);
    (id, whole)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_journal_becomes_the_file_and_reaches_dropbox() {
    let s3 = S3::start().await;
    let emu = Emulator::start().await;
    emu.add_account(ACCESS, REFRESH, APP_KEY);
    let store = s3.store();
    // Chunks as a node writes them every 2 s; together past one 8 MiB part, so the salvage
    // writes several parts.
    let chunks: Vec<Vec<u8>> = (0..5)
        .map(|i| data(2 * MIB + 1000 * i, 70 + i as u64))
        .collect();
    let (id, whole) = killed_recording(&store, &chunks).await;
    assert!(
        !s3.multipart_leftovers().is_empty(),
        "the node's parts on disk"
    );
    let clock = Arc::new(OffsetClock::new());
    let h = start_with_clock(
        s3.config_with(&emu.url(), "salvage_after_secs = 10"),
        clock.clone(),
    )
    .await
    .unwrap();
    // A recording written a moment ago may still have its node: left alone.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        emu.files().is_empty(),
        "nothing salvaged while the node may be alive"
    );
    assert!(s3.keys().await.iter().any(|k| k.contains("/journal/")));
    // 11 s without a write: the node is gone.
    clock.advance(Duration::from_secs(11));
    h.poke();
    wait_until(30, "delivered and deleted", || async {
        s3.keys_but_status().await.is_empty() && !emu.files().is_empty()
    })
    .await;
    let files = emu.files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].path_display.ends_with("/abcd0123-p1.webm"),
        "{files:?}"
    );
    assert_eq!(files[0].size, whole.len() as u64);
    assert_eq!(
        files[0].sha256,
        sha256_hex(&whole),
        "head then chunks, in order"
    );
    assert!(
        s3.multipart_leftovers().is_empty(),
        "the node's upload aborted, parts gone"
    );
    let st = s3
        .status_of(&id)
        .await
        .expect("status stays until the retention");
    assert_eq!(st.state, edgemeet_protocol::job::DeliveryState::Delivered);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_journal_is_purged_after_24_h_with_its_token() {
    let s3 = S3::start().await;
    let store = s3.store();
    let (_id, _) = killed_recording(&store, &[data(3000, 1)]).await;
    // Dropbox unreachable: the salvage is done, the delivery cannot be; the purge takes it all.
    let clock = Arc::new(OffsetClock::new());
    let h = start_with_clock(
        s3.config_with("http://127.0.0.1:9", "salvage_after_secs = 10"),
        clock.clone(),
    )
    .await
    .unwrap();
    clock.advance(Duration::from_secs(25 * 3600));
    h.poke();
    wait_until(30, "bucket and parts purged", || async {
        s3.keys().await.is_empty() && s3.multipart_leftovers().is_empty()
    })
    .await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_with_no_media_leaves_nothing() {
    let s3 = S3::start().await;
    let store = s3.store();
    // Killed before the first chunk: pending and the status only.
    let (id, _token) = edgemeet_uploader::status::new_recording_ids();
    edgemeet_uploader::status::write_recording_started(&store, &id, SystemTime::now())
        .await
        .unwrap();
    write_pending(&store, &id, "meeting-1", SystemTime::now(), None)
        .await
        .unwrap();
    let clock = Arc::new(OffsetClock::new());
    let h = start_with_clock(
        s3.config_with("http://127.0.0.1:9", "salvage_after_secs = 10"),
        clock.clone(),
    )
    .await
    .unwrap();
    clock.advance(Duration::from_secs(11));
    h.poke();
    wait_until(20, "nothing left", || async { s3.keys().await.is_empty() }).await;
    h.shutdown().await;
}
