//! Benchmark: one large recording (2 GiB by default, `EDGEMEET_BENCH_BYTES` to change) through the
//! `edgemeet-uploader` binary, from s3s-fs to the Dropbox emulator on loopback.
//!
//! Reports the uploader process's peak RSS (VmHWM) and its throughput relative to a raw copy of
//! the same bytes over the same path (one streamed S3 GET per chunk posted straight to the
//! emulator's upload session, no resume bookkeeping).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use edgemeet_testsupport::dropbox_emulator::Emulator;
use edgemeet_uploader::RecordingWriter;
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

const ACCESS: &str = "sl.bench-access";
const REFRESH: &str = "bench-refresh";
const CHUNK: u64 = 64 * 1024 * 1024;

fn peak_rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Raw copy: the same bytes, same source and sink, no uploader logic; returns seconds.
async fn raw_copy(store: &edgemeet_uploader::Store, emu_url: &str, key: &str, size: u64) -> f64 {
    let http = reqwest::Client::new();
    let t = Instant::now();
    let sid = {
        let r = http
            .post(format!("{}/2/files/upload_session/start", emu_url))
            .bearer_auth(ACCESS)
            .header("Dropbox-API-Arg", "{}")
            .header("Content-Type", "application/octet-stream")
            .send()
            .await
            .unwrap();
        r.json::<serde_json::Value>().await.unwrap()["session_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let mut off = 0;
    while off < size {
        let len = CHUNK.min(size - off);
        let body = store.get_range(key, off, off + len).await.unwrap();
        let arg = serde_json::json!({"cursor": {"session_id": sid, "offset": off}, "close": off + len == size});
        let r = http
            .post(format!("{}/2/files/upload_session/append_v2", emu_url))
            .bearer_auth(ACCESS)
            .header("Dropbox-API-Arg", arg.to_string())
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", len)
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "raw append: {}", r.status());
        off += len;
    }
    t.elapsed().as_secs_f64()
}

/// Runs the emulator in its own process, so neither the raw copy nor the uploader shares a
/// runtime with it: prints its URL, serves until stdin closes.
async fn emulator_role() {
    let emu = Emulator::start().await;
    emu.add_account(ACCESS, REFRESH, APP_KEY);
    println!("{}", emu.url());
    let _ = tokio::task::spawn_blocking(|| {
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new())
    })
    .await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::var("EDGEMEET_BENCH_ROLE").as_deref() == Ok("emulator") {
        return emulator_role().await;
    }
    let size: u64 = std::env::var("EDGEMEET_BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2 << 30);
    let s3 = S3::start().await;
    let mut emu_proc = tokio::process::Command::new(std::env::current_exe().unwrap())
        .env("EDGEMEET_BENCH_ROLE", "emulator")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(emu_proc.stdout.take().unwrap()).lines();
    let emu_url = lines.next_line().await.unwrap().expect("emulator url");
    let store = s3.store();

    // Write the recording through the library's writer (multipart from a bounded buffer).
    let t = Instant::now();
    let id = edgemeet_uploader::writer::new_recording_id();
    let mut w = RecordingWriter::new(
        store.clone(),
        id.clone(),
        "bench",
        std::time::SystemTime::now(),
    );
    let mut f = w.create_file("bench.webm", "video/webm").await.unwrap();
    let block = data(4 * MIB, 5);
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write(&block[..n]).await.unwrap();
        left -= n as u64;
    }
    w.add_file(f.finish().await.unwrap());
    let key = format!("{}files/bench.webm", w.prefix());
    let write_secs = t.elapsed().as_secs_f64();

    // The best of two raw copies (the first also warms caches and allocators).
    let raw_secs = raw_copy(&store, &emu_url, &key, size)
        .await
        .min(raw_copy(&store, &emu_url, &key, size).await);

    // The uploader binary, as deployed.
    let creds = edgemeet_uploader::DropboxCredentials {
        access_token: ACCESS.into(),
        refresh_token: Some(REFRESH.into()),
    };
    let sealed = test_key().seal(&id, "bench", APP_KEY, &creds).unwrap();
    w.finish(std::time::SystemTime::now(), Some(sealed))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("uploader.toml");
    let toml = s3
        .toml(&emu_url, "")
        .replace("chunk_size = 4194304", &format!("chunk_size = {CHUNK}"));
    let mut cfgf = tokio::fs::File::create(&cfg).await.unwrap();
    cfgf.write_all(toml.as_bytes()).await.unwrap();
    drop(cfgf);
    let t = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgemeet-uploader"))
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut peak = 0;
    loop {
        peak = peak.max(peak_rss_kib(pid));
        // Delivered and deleted: only the delivery status stays (until the retention ends).
        if s3.keys_but_status().await.is_empty() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(1800),
            "uploader did not finish"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let up_secs = t.elapsed().as_secs_f64();
    peak = peak.max(peak_rss_kib(pid));
    child.kill().await.unwrap();
    let files: serde_json::Value = reqwest::get(format!("{emu_url}/_emulator/files"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file = files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["path_display"]
                .as_str()
                .unwrap_or("")
                .ends_with("/bench.webm")
        })
        .expect("uploaded");
    assert_eq!(file["size"].as_u64(), Some(size));
    drop(emu_proc);

    let mib = size as f64 / (1024.0 * 1024.0);
    let ratio = raw_secs / up_secs * 100.0;
    println!(
        "\nuploader benchmark (s3 -> dropbox emulator on loopback, {mib:.0} MiB, chunk {} MiB, s3: {})",
        CHUNK >> 20,
        s3.kind
    );
    println!("| measure                         | value        | target    |");
    println!("|---------------------------------|--------------|-----------|");
    println!(
        "| writer into S3 (multipart)      | {:>7.1} MiB/s |           |",
        mib / write_secs
    );
    println!(
        "| raw copy S3 -> emulator         | {:>7.1} MiB/s |           |",
        mib / raw_secs
    );
    println!(
        "| uploader S3 -> emulator         | {:>7.1} MiB/s |           |",
        mib / up_secs
    );
    println!(
        "| uploader / raw throughput       | {:>10.0} % | >= 80 %   |",
        ratio
    );
    println!(
        "| uploader peak RSS (VmHWM)       | {:>8.1} MiB | <= 64 MiB |",
        peak as f64 / 1024.0
    );
    println!(
        "(uploader time includes its poll interval, process start and deletes: {up_secs:.1} s vs raw {raw_secs:.1} s)"
    );
}
