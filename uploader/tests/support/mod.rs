//! Shared test harness: a real S3-compatible server (s3s-fs 0.14.1 as a process, installed by
//! tests/install/30-uploader.sh), the Dropbox emulator, and recording helpers. Loopback only.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use edgemeet_uploader::{
    Config, DropboxCredentials, RecordingManifest, RecordingWriter, Store, TokenKey,
};
use sha2::{Digest, Sha256};

pub const AK: &str = "edgemeet-test-ak";
pub const SK: &str = "edgemeet-test-secret-key";
pub const BUCKET: &str = "recordings-test";
pub const APP_KEY: &str = "emu-app-key";
pub const MIB: usize = 1024 * 1024;

/// A running S3-compatible server.
pub struct S3 {
    pub endpoint: String,
    pub kind: &'static str,
    child: Option<edgemeet_testsupport::s3s_fs::S3sFsProcess>,
    embedded: Option<edgemeet_uploader::EmbeddedS3>,
    _dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl S3 {
    /// s3s-fs as a separate process when installed; otherwise the same s3s-fs code embedded.
    pub async fn start() -> S3 {
        edgemeet_uploader::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let s3 = match edgemeet_testsupport::s3s_fs::installed_binary() {
            Some(bin) => {
                let p = edgemeet_testsupport::s3s_fs::S3sFsProcess::start(&bin, dir.path(), AK, SK)
                    .await
                    .expect("start s3s-fs");
                S3 {
                    endpoint: p.endpoint.clone(),
                    kind: "s3s-fs process",
                    child: Some(p),
                    embedded: None,
                    _dir: dir,
                }
            }
            None => {
                eprintln!(
                    "note: s3s-fs binary not installed (tests/install/30-uploader.sh); using the embedded s3s-fs server"
                );
                let e = edgemeet_uploader::start_embedded_s3(
                    dir.path().join("root"),
                    AK,
                    SK,
                    "127.0.0.1:0".parse().unwrap(),
                )
                .await
                .unwrap();
                S3 {
                    endpoint: e.endpoint(),
                    kind: "embedded s3s-fs",
                    child: None,
                    embedded: Some(e),
                    _dir: dir,
                }
            }
        };
        s3.store().ensure_bucket().await.unwrap();
        s3
    }

    /// The folder the server keeps the bucket (and its multipart parts) in.
    pub fn data_dir(&self) -> PathBuf {
        match &self.embedded {
            Some(_) => self._dir.path().join("root"),
            None => self._dir.path().to_owned(),
        }
    }

    /// Files the server keeps for multipart uploads in progress (s3s-fs: `.upload-{id}.json`,
    /// `.upload_id-{id}.part-{n}`, and the upload's metadata).
    pub fn multipart_leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.data_dir())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(".upload") || n.contains(".upload-"))
            .collect()
    }

    pub fn store(&self) -> Store {
        Store::new(&self.config_with("http://127.0.0.1:9", "").s3)
    }

    pub async fn keys(&self) -> Vec<String> {
        self.store()
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect()
    }

    /// Every key but the delivery statuses (which stay, saying "delivered", until the purge).
    pub async fn keys_but_status(&self) -> Vec<String> {
        let mut keys = self.keys().await;
        keys.retain(|k| !k.ends_with("/status.json"));
        keys
    }

    /// A recording's delivery status as stored.
    pub async fn status_of(
        &self,
        recording_id: &str,
    ) -> Option<edgemeet_protocol::job::RecordingStatus> {
        edgemeet_uploader::status::read(&self.store(), recording_id)
            .await
            .unwrap()
    }

    /// A config pointing at this S3 and at `dropbox_url` (extra TOML top-level lines first).
    pub fn config_with(&self, dropbox_url: &str, extra: &str) -> Config {
        Config::from_toml_str(&self.toml(dropbox_url, extra)).unwrap()
    }

    pub fn toml(&self, dropbox_url: &str, extra: &str) -> String {
        format!(
            "{extra}\nencryption_key = \"{key}\"\npoll_interval_ms = 100\nlisten = \"127.0.0.1:0\"\n\
             status_listen = \"127.0.0.1:0\"\nretry_initial_ms = 100\nretry_max_secs = 1\n\
             [s3]\nendpoint = \"{ep}\"\nbucket = \"{BUCKET}\"\naccess_key_id = \"{AK}\"\nsecret_access_key = \"{SK}\"\n\
             [dropbox]\napi_url = \"{dropbox_url}\"\ncontent_url = \"{dropbox_url}\"\nchunk_size = 4194304\nbackoff_ms = 20\nmax_attempts = 5\n",
            key = test_key_b64(),
            ep = self.endpoint,
        )
    }
}

pub fn test_key_b64() -> &'static str {
    "ZWRnZW1lZXQtdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE="
}

pub fn test_key() -> TokenKey {
    TokenKey::from_base64(test_key_b64()).unwrap()
}

/// Deterministic pseudo-random bytes (xorshift), so content hashes are meaningful.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Writes a finished recording through the library's writer (multipart + manifest last).
pub async fn write_recording(
    store: &Store,
    files: &[(&str, &[u8])],
    access_token: &str,
    refresh_token: &str,
) -> RecordingManifest {
    let id = edgemeet_uploader::writer::new_recording_id();
    write_recording_as(store, &id, files, access_token, refresh_token).await
}

/// As [`write_recording`], with the status link the media node makes: `(manifest, token)`;
/// the status says "recording" from the start, as the node writes it.
pub async fn write_recording_with_status(
    store: &Store,
    files: &[(&str, &[u8])],
    access_token: &str,
    refresh_token: &str,
) -> (RecordingManifest, String) {
    let (id, token) = edgemeet_uploader::status::new_recording_ids();
    edgemeet_uploader::status::write_recording_started(store, &id, SystemTime::now())
        .await
        .unwrap();
    let m = write_recording_as(store, &id, files, access_token, refresh_token).await;
    (m, token)
}

/// As [`write_recording`], under a given recording id.
pub async fn write_recording_as(
    store: &Store,
    id: &str,
    files: &[(&str, &[u8])],
    access_token: &str,
    refresh_token: &str,
) -> RecordingManifest {
    let id = id.to_owned();
    let mut w = RecordingWriter::new(store.clone(), id.clone(), "meeting-1", SystemTime::now())
        .with_part_size(5 * MIB);
    for (name, bytes) in files {
        w.write_file_from(name, "video/webm", *bytes).await.unwrap();
    }
    let creds = DropboxCredentials {
        access_token: access_token.into(),
        refresh_token: Some(refresh_token.into()),
    };
    let sealed = test_key().seal(&id, "meeting-1", APP_KEY, &creds).unwrap();
    w.finish(SystemTime::now(), Some(sealed)).await.unwrap()
}

/// Polls `cond` every 50 ms until it holds or `secs` pass.
pub async fn wait_until<F, Fut>(secs: u64, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `YYYY-MM-DD` of a manifest, as the uploader names the dated folder.
pub fn date_of(m: &RecordingManifest) -> String {
    edgemeet_uploader::clock::utc_date(m.started_at_ms)
}
