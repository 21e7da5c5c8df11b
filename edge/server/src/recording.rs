//! Recording in the all-in-one: embedded S3-compatible storage (s3s + s3s-fs), the uploader and
//! its purge sweep in this process, and the embedded media node's `[recording]` pointing at them.
//! The page learns what it needs (available? Dropbox or a local folder? the public app key and
//! OAuth endpoints) from `GET /api/config`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use edgemeet_core::crypto::random_hex;
use edgemeet_core::http::page_config;
use edgemeet_media_node::RecordingConfig;
use edgemeet_uploader::{
    Config as UploaderConfig, Destination, EmbeddedS3, S3Config, TokenKey, UploaderHandle,
};
use serde::Deserialize;

/// Where recordings are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationChoice {
    /// Dropbox when `dropbox.app_key` is set, else the local folder.
    #[default]
    Auto,
    Dropbox,
    Local,
}

/// `[recording]` of the edge's file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingSettings {
    /// Offer recording at all.
    pub enabled: bool,
    pub destination: DestinationChoice,
    /// The local-folder destination: `{local_folder}/{YYYY-MM-DD}/{file}.webm`.
    pub local_folder: PathBuf,
    /// The embedded storage's folder (recordings in transit, gone within `retention_secs`).
    /// Default: `edgemeet-data` in the OS temp dir.
    pub data_dir: Option<PathBuf>,
    /// Base64 of 32 bytes sealing the Dropbox token in manifests. Default: generated at start,
    /// kept in memory only (a restart then cannot deliver the recordings still queued for
    /// Dropbox: the purge deletes them within `retention_secs`).
    pub encryption_key: Option<String>,
    /// How long anything may stay in the embedded storage, uploaded or not (at most 86400).
    pub retention_secs: u64,
    /// The uploader's poll period (it is also woken when a recording stops).
    pub poll_interval_ms: u64,
    /// Base of recorders' delivery-status links (`{status_url}{token}`): the uploader's
    /// `status_listen` as browsers reach it, up to `/v1/recording-status/`. Default: this edge
    /// (`/v1/recording-status/`) when it runs the uploader itself; none otherwise (no link).
    pub status_url: Option<String>,
    pub dropbox: DropboxSettings,
}

/// `[recording.dropbox]`: the Dropbox app and its endpoints (tests point them at an emulator).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DropboxSettings {
    /// The app key (OAuth client id; public: the browser uses it for OAuth with PKCE).
    pub app_key: Option<String>,
    /// Where the browser sends the user to authorize the app.
    pub authorize_url: String,
    /// RPC and OAuth host: the browser exchanges the code at `{api_url}/oauth2/token`, the
    /// uploader refreshes there.
    pub api_url: String,
    /// Content-upload host.
    pub content_url: String,
    /// Folder in the recorder's Dropbox (app folder) for the dated folders; "" = its root.
    pub root: String,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            destination: DestinationChoice::Auto,
            local_folder: PathBuf::from("recordings"),
            data_dir: None,
            encryption_key: None,
            retention_secs: 86_400,
            poll_interval_ms: 5_000,
            status_url: None,
            dropbox: DropboxSettings::default(),
        }
    }
}

impl Default for DropboxSettings {
    fn default() -> Self {
        Self {
            app_key: None,
            authorize_url: "https://www.dropbox.com/oauth2/authorize".into(),
            api_url: "https://api.dropboxapi.com".into(),
            content_url: "https://content.dropboxapi.com".into(),
            root: "/edgemeet".into(),
        }
    }
}

impl RecordingSettings {
    /// Dropbox or not, once `auto` is resolved.
    pub fn uses_dropbox(&self) -> bool {
        match self.destination {
            DestinationChoice::Auto => self.dropbox.app_key.is_some(),
            DestinationChoice::Dropbox => true,
            DestinationChoice::Local => false,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("edgemeet-data"))
    }

    pub fn apply_env(&mut self, get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        if let Some(v) = get("EDGEMEET_RECORDING") {
            self.enabled = match v.as_str() {
                "on" | "true" | "1" => true,
                "off" | "false" | "0" => false,
                _ => bail!("EDGEMEET_RECORDING: `{v}` is neither `on` nor `off`"),
            };
        }
        if let Some(v) = get("EDGEMEET_RECORDING_DESTINATION") {
            self.destination = match v.as_str() {
                "auto" => DestinationChoice::Auto,
                "dropbox" => DestinationChoice::Dropbox,
                "local" => DestinationChoice::Local,
                _ => bail!("EDGEMEET_RECORDING_DESTINATION: `{v}` is not auto, dropbox or local"),
            };
        }
        if let Some(v) = get("EDGEMEET_RECORDING_LOCAL_FOLDER") {
            self.local_folder = v.into();
        }
        if let Some(v) = get("EDGEMEET_RECORDING_DATA_DIR") {
            self.data_dir = Some(v.into());
        }
        if let Some(v) = get("EDGEMEET_RECORDING_KEY") {
            self.encryption_key = Some(v);
        }
        if let Some(v) = get("EDGEMEET_RECORDING_STATUS_URL") {
            self.status_url = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = get("EDGEMEET_DROPBOX_APP_KEY") {
            self.dropbox.app_key = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = get("EDGEMEET_DROPBOX_AUTHORIZE_URL") {
            self.dropbox.authorize_url = v;
        }
        if let Some(v) = get("EDGEMEET_DROPBOX_API_URL") {
            self.dropbox.api_url = v;
        }
        if let Some(v) = get("EDGEMEET_DROPBOX_CONTENT_URL") {
            self.dropbox.content_url = v;
        }
        Ok(())
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(k) = &self.encryption_key {
            TokenKey::from_base64(k).map_err(|e| {
                anyhow::anyhow!("recording.encryption_key: {e} (base64 of 32 bytes)")
            })?;
        }
        if self.retention_secs == 0 || self.retention_secs > 86_400 {
            bail!("recording.retention_secs must be 1 to 86400 (the 24 h promise)");
        }
        if self.poll_interval_ms < 100 {
            bail!("recording.poll_interval_ms must be at least 100");
        }
        if self.destination == DestinationChoice::Dropbox && self.dropbox.app_key.is_none() {
            bail!("recording.dropbox.app_key is required for destination = \"dropbox\"");
        }
        if let Some(k) = &self.dropbox.app_key
            && (k.is_empty()
                || k.len() > 64
                || !k
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'))
        {
            bail!("recording.dropbox.app_key: expected the app key from the Dropbox App Console");
        }
        for (key, url) in [
            ("authorize_url", &self.dropbox.authorize_url),
            ("api_url", &self.dropbox.api_url),
            ("content_url", &self.dropbox.content_url),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                bail!("recording.dropbox.{key}: `{url}` is not an http(s) URL");
            }
        }
        if let Some(url) = &self.status_url
            && !edgemeet_core::web::status_url_ok(url)
        {
            bail!(
                "recording.status_url: `{url}` is not a base for status links (an https:// URL or a \
                 /path on this origin, ending in `/`, e.g. https://status.example.org/v1/recording-status/)"
            );
        }
        if self.local_folder.as_os_str().is_empty() {
            bail!("recording.local_folder must not be empty");
        }
        Ok(())
    }

    /// What the page is told (`GET /api/config`, shaped by the core): nothing secret.
    /// `status_url`: where the recorder's page reads its delivery status (`{status_url}{token}`),
    /// if anywhere.
    pub fn public_json(&self, available: bool, status_url: Option<&str>) -> serde_json::Value {
        let offer = (self.enabled && available).then(|| page_config::Recording {
            destination: match &self.dropbox.app_key {
                Some(app_key) if self.uses_dropbox() => {
                    page_config::Destination::Dropbox(page_config::DropboxApp {
                        app_key: app_key.clone(),
                        authorize_url: self.dropbox.authorize_url.clone(),
                        api_url: self.dropbox.api_url.clone(),
                    })
                }
                _ => page_config::Destination::Local,
            },
            status_url: status_url.map(str::to_string),
        });
        page_config::page_config(offer.as_ref())
    }
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
    let dir = settings.data_dir();
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
