//! Recording in the all-in-one: embedded S3-compatible storage (s3s + s3s-fs), the uploader and
//! its purge sweep in this process, and the embedded media node's `[recording]` pointing at them.
//! The page learns what it needs (available? Dropbox or a local folder? the public app key and
//! OAuth endpoints) from `GET /api/config`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use edgemeet_core::crypto::random_hex;
use edgemeet_media_node::RecordingConfig;
use edgemeet_uploader::{
    Config as UploaderConfig, Destination, EmbeddedS3, S3Config, TokenKey, UploaderHandle,
};

pub use edgemeet_config::recording::RecordingSettings;

/// The native host's own check of `[recording]`: the shared one, and the sealing key's material
/// (the uploader's key type parses it).
pub fn validate(settings: &RecordingSettings) -> anyhow::Result<()> {
    settings.validate()?;
    if let Some(k) = &settings.encryption_key {
        TokenKey::from_base64(k)
            .map_err(|e| anyhow::anyhow!("recording.encryption_key: {e} (base64 of 32 bytes)"))?;
    }
    Ok(())
}

/// The embedded storage's folder: `data_dir`, or `edgemeet-data` in the OS temp dir.
fn data_dir(settings: &RecordingSettings) -> PathBuf {
    settings
        .data_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("edgemeet-data"))
}

/// How the embedded storage's (random) access key id starts.
pub const EMBEDDED_ACCESS_KEY_PREFIX: &str = "EDGEMEETAK";

/// Storage and uploader running in this process.
pub struct Embedded {
    s3: EmbeddedS3,
    uploader: UploaderHandle,
}

/// Starts the storage and the uploader, and returns the node's `[recording]` section.
pub async fn start(settings: &RecordingSettings) -> anyhow::Result<(Embedded, RecordingConfig)> {
    edgemeet_uploader::install_crypto_provider();
    let dir = data_dir(settings);
    // Credentials of the loopback S3 server: per process, never leave it. The access key id has
    // a fixed prefix (as AWS's `AKIA...`), so a test or a secret scanner finds it in any output.
    let (ak, sk) = (
        format!(
            "{EMBEDDED_ACCESS_KEY_PREFIX}{}",
            random_hex(&mut rand_core::OsRng, 8).to_uppercase()
        ),
        random_hex(&mut rand_core::OsRng, 20),
    );
    let s3 = edgemeet_uploader::start_embedded_s3(
        dir.join("s3"),
        &ak,
        &sk,
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .with_context(|| format!("recording.data_dir {}: embedded storage", dir.display()))?;
    let mut s3_config = S3Config::new(s3.endpoint(), "recordings", ak, sk);
    s3_config.create_bucket = true;
    let key_b64 = match &settings.encryption_key {
        Some(k) => k.clone(),
        None => {
            let mut k = [0u8; 32];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut k);
            base64::engine::general_purpose::STANDARD.encode(k)
        }
    };
    let key = TokenKey::from_base64(&key_b64).context("recording.encryption_key")?;
    let dropbox = settings.uses_dropbox();
    let mut up = UploaderConfig::all_in_one(s3_config.clone(), &settings.local_folder);
    if dropbox {
        up.destination = Destination::Dropbox;
        up.dropbox.api_url = settings.dropbox.api_url.clone();
        up.dropbox.content_url = settings.dropbox.content_url.clone();
        up.dropbox.root = settings.dropbox.root.clone();
    }
    up.encryption_key = Some(key);
    up.retention = Duration::from_secs(settings.retention_secs);
    up.poll_interval = Duration::from_millis(settings.poll_interval_ms);
    let uploader = edgemeet_uploader::start(up)
        .await
        .map_err(|e| anyhow::anyhow!("recording: the uploader did not start: {e}"))?;
    let mut node = RecordingConfig::new(s3_config, key_b64);
    node.require_dropbox = dropbox;
    tracing::info!(
        destination = if dropbox { "dropbox" } else { "local" },
        "recording ready: embedded storage and uploader"
    );
    Ok((Embedded { s3, uploader }, node))
}

impl Embedded {
    /// `GET /v1/recording-status/{token}`: recorders' delivery-status links, served on the
    /// edge's own origin.
    pub fn status_router(&self) -> axum::Router {
        self.uploader.status_router()
    }

    /// Wakes the uploader (a recording just finished: upload now, not at the next poll).
    pub fn poker(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.uploader.poker()
    }

    /// At shutdown (after the node finalized its recordings): give the uploader a moment to
    /// deliver what is queued, then stop it and the storage. What is left is delivered after
    /// the next start, or purged.
    pub async fn shutdown(self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        let polls = self.uploader.metrics().polls;
        self.uploader.poke();
        // One full poll after the node finalized (its queue length is then current)...
        while self.uploader.metrics().polls == polls && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // ...and what it found, delivered.
        while self.uploader.metrics().queue_length > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.uploader.shutdown().await;
        self.s3.shutdown().await;
    }
}
