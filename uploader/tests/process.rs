//! The `edgemeet-uploader` binary as a process: killed mid-upload and restarted, and its logs
//! (at `trace`, the most verbose level, with planted secrets: none may appear).

mod support;

use std::process::Stdio;
use std::time::Duration;

use edgemeet_testsupport::dropbox_emulator::Emulator;
use support::*;

const ACCESS: &str = "sl.emu-process-access-token";
const REFRESH: &str = "emu-process-refresh-secret";

fn spawn(config: &std::path::Path, log: &std::path::Path) -> tokio::process::Child {
    let log = std::fs::File::create(log).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_edgemeet-uploader"))
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "trace")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn uploader")
}

fn assert_no_secrets(log: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!log.contains(s), "secret {s:?} found in log");
    }
    assert!(
        !log.contains("sl.emu"),
        "an access token leaked into the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_upload_resumes_without_duplicate_and_never_logs_tokens() {
    let s3 = S3::start().await;
    let emu = Emulator::start().await;
    emu.add_account(ACCESS, REFRESH, APP_KEY);
    // Slow acknowledgements: the kill lands while Dropbox holds data the uploader has not yet
    // recorded, so the restart must resume through `incorrect_offset`.
    emu.set_append_delay(Duration::from_millis(800));
    // And the access token expires during the second run: refresh must not leak either token.
    let bytes = data(40 * MIB, 11);
    let m = write_recording(&s3.store(), &[("cam.webm", &bytes)], ACCESS, REFRESH).await;

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("uploader.toml");
    std::fs::write(&cfg, s3.toml(&emu.url(), "")).unwrap();

    let mut first = spawn(&cfg, &dir.path().join("run1.log"));
    wait_until(60, "12 MiB in the session", || async {
        emu.max_session_len() >= 12 * MIB as u64
    })
    .await;
    first.kill().await.unwrap();
    let _ = first.wait().await;
    assert!(emu.files().is_empty(), "nothing committed yet");
    assert_eq!(emu.open_sessions(), 1);

    emu.set_append_delay(Duration::from_millis(20));
    emu.expire_tokens_after(1);
    let mut second = spawn(&cfg, &dir.path().join("run2.log"));
    wait_until(60, "delivered and deleted", || async {
        s3.keys_but_status().await.is_empty()
    })
    .await;
    second.kill().await.unwrap();
    let _ = second.wait().await;

    let files = emu.files();
    assert_eq!(files.len(), 1, "exactly one file, no duplicate: {files:?}");
    assert_eq!(
        files[0].path_display,
        format!("/edgemeet/{}/cam.webm", date_of(&m))
    );
    assert_eq!(files[0].sha256, sha256_hex(&bytes));
    let st = emu.stats();
    assert_eq!(st.starts, 1, "the restart continued the same session");
    assert!(
        st.incorrect_offsets >= 1,
        "resumed via correct_offset: {st:?}"
    );
    assert_eq!(st.refreshes, 1);

    let log = std::fs::read_to_string(dir.path().join("run1.log")).unwrap()
        + &std::fs::read_to_string(dir.path().join("run2.log")).unwrap();
    assert!(log.contains("chunk uploaded"), "logs show progress");
    assert!(log.contains("TRACE"), "trace level was captured");
    assert!(log.contains("resuming at the server's offset"));
    // The S3 access key id too: the AWS SDK's signer prints it at trace.
    assert_no_secrets(&log, &[ACCESS, REFRESH, test_key_b64(), SK, AK]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[s3]\nendpoint = \"nope\"\nbucket = \"b\"\naccess_key_id = \"a\"\nsecret_access_key = \"s\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgemeet-uploader"))
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("s3.endpoint"), "{err}");
}
