//! Configuration: a TOML file, then `EDGEMEET_UPLOADER_*` environment variables on top.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use edgemeet_config::Vars;
use serde::Deserialize;

use crate::crypto::TokenKey;

/// Dropbox accepts at most 150 MiB per request.
pub const MAX_CHUNK: u64 = 150 * 1024 * 1024;
/// Upload-session appends are kept at multiples of 4 MiB (required for concurrent sessions).
pub const CHUNK_ALIGN: u64 = 4 * 1024 * 1024;

/// A configuration that cannot be used, with what to fix (the same type for every edgemeet program).
pub use edgemeet_config::ConfigError;

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::invalid(field, reason)
}

/// Where recordings go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The recorder's Dropbox (credentials come sealed in each manifest).
    Dropbox,
    /// A folder on this machine (the all-in-one server), `{folder}/{YYYY-MM-DD}/{file}`.
    LocalFolder(PathBuf),
}

/// S3-compatible storage holding the recordings (the queue).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// e.g. `http://127.0.0.1:8014` or `https://s3.eu-central-1.amazonaws.com`.
    pub endpoint: String,
    #[serde(default = "default_region")]
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Key prefix of the recordings, ending in `/`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Create the bucket at start if it is missing (all-in-one, tests).
    #[serde(default)]
    pub create_bucket: bool,
}

impl S3Config {
    /// Storage settings with the default region and prefix (for embedding without a file).
    pub fn new(
        endpoint: impl Into<String>,
        bucket: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            region: default_region(),
            bucket: bucket.into(),
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            prefix: default_prefix(),
            create_bucket: false,
        }
    }
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Dropbox API endpoints and upload tuning.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropboxConfig {
    /// RPC and OAuth host (tests point it at the emulator).
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Content-upload host.
    #[serde(default = "default_content_url")]
    pub content_url: String,
    /// Folder in the recorder's Dropbox (app folder) under which dated folders are made; "" = root.
    #[serde(default = "default_root")]
    pub root: String,
    /// Bytes per upload-session append: a multiple of 4 MiB, at most 150 MiB. Memory use does not
    /// depend on it (chunks are streamed), only the number of requests does.
    #[serde(default = "default_chunk")]
    pub chunk_size: u64,
    /// Attempts per request on 5xx or transport errors before the recording waits for the next poll.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// First backoff delay after a 5xx, doubled each time (milliseconds).
    #[serde(default = "default_backoff")]
    pub backoff_ms: u64,
    /// Longest wait for one request (seconds).
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: u64,
}

impl Default for DropboxConfig {
    fn default() -> Self {
        Self {
            api_url: default_api_url(),
            content_url: default_content_url(),
            root: default_root(),
            chunk_size: default_chunk(),
            max_attempts: default_attempts(),
            backoff_ms: default_backoff(),
            request_timeout_secs: default_timeout(),
        }
    }
}

fn default_region() -> String {
    "us-east-1".into()
}
fn default_prefix() -> String {
    "recordings/".into()
}
fn default_api_url() -> String {
    edgemeet_config::recording::DROPBOX_API_URL.into()
}
fn default_content_url() -> String {
    edgemeet_config::recording::DROPBOX_CONTENT_URL.into()
}
fn default_root() -> String {
    edgemeet_config::recording::DROPBOX_ROOT.into()
}
fn default_chunk() -> u64 {
    64 * 1024 * 1024
}
fn default_attempts() -> u32 {
    8
}
fn default_backoff() -> u64 {
    500
}
fn default_timeout() -> u64 {
    600
}
fn default_poll() -> u64 {
    10_000
}
fn default_retention() -> u64 {
    24 * 3600
}
fn default_retry_initial() -> u64 {
    10_000
}
fn default_retry_max() -> u64 {
    900
}
fn default_salvage_after() -> u64 {
    20
}
fn default_listen() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 9464)))
}

/// The file format (all optional fields have defaults; env variables override).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    s3: Option<S3Config>,
    #[serde(default)]
    dropbox: DropboxConfig,
    /// "dropbox" (default) or "local".
    destination: Option<String>,
    local_folder: Option<PathBuf>,
    /// 32 bytes, standard base64: the AES-256-GCM key sealing Dropbox tokens in manifests.
    encryption_key: Option<String>,
    #[serde(default = "default_poll")]
    poll_interval_ms: u64,
    #[serde(default = "default_retention")]
    retention_secs: u64,
    /// Address of `/metrics`, `/healthz`, `/readyz`; "off" disables it.
    listen: Option<String>,
    /// First wait after a recording's failed delivery attempt, doubled per failure (ms).
    #[serde(default = "default_retry_initial")]
    retry_initial_ms: u64,
    /// Longest wait between a recording's attempts (seconds); also the pace of retries while
    /// the recorder's Dropbox is full.
    #[serde(default = "default_retry_max")]
    retry_max_secs: u64,
    /// Address of the recorders' delivery-status links (`/v1/recording-status/{token}`); off by
    /// default. Put it behind the public HTTPS proxy, never `listen`'s metrics.
    status_listen: Option<String>,
    /// A recording with a journal but no manifest, untouched this long (seconds), lost its node:
    /// its journal becomes its files (`journal.rs`). Nodes refresh theirs every 5 s.
    #[serde(default = "default_salvage_after")]
    salvage_after_secs: u64,
}

/// The uploader's validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub s3: S3Config,
    pub dropbox: DropboxConfig,
    pub destination: Destination,
    /// Required for the Dropbox destination.
    pub encryption_key: Option<TokenKey>,
    pub poll_interval: Duration,
    /// Anything older than this is deleted, uploaded or not (24 h: a privacy promise).
    pub retention: Duration,
    /// Metrics and health server; `None` = not started.
    pub listen: Option<SocketAddr>,
    /// First wait after a recording's failed attempt (each recording backs off on its own).
    pub retry_initial: Duration,
    /// Longest wait between one recording's attempts.
    pub retry_max: Duration,
    /// Status-link server; `None` = not started (embedders mount [`crate::status::router`]).
    pub status_listen: Option<SocketAddr>,
    /// A journaled recording untouched this long lost its node and is salvaged.
    pub salvage_after: Duration,
}

const ENV_PREFIX: &str = "EDGEMEET_UPLOADER_";

impl Config {
    /// The all-in-one's uploader: embedded storage (bucket created if missing) to a local folder,
    /// 24 h retention, no metrics listener of its own.
    pub fn all_in_one(s3: S3Config, folder: impl Into<PathBuf>) -> Self {
        Config {
            s3: S3Config {
                create_bucket: true,
                ..s3
            },
            dropbox: DropboxConfig::default(),
            destination: Destination::LocalFolder(folder.into()),
            encryption_key: None,
            poll_interval: Duration::from_millis(default_poll()),
            retention: Duration::from_secs(default_retention()),
            listen: None,
            retry_initial: Duration::from_millis(default_retry_initial()),
            retry_max: Duration::from_secs(default_retry_max()),
            status_listen: None,
            salvage_after: Duration::from_secs(default_salvage_after()),
        }
    }

    /// Parses TOML (no environment).
    pub fn from_toml_str(s: &str) -> Result<Self, ConfigError> {
        Self::build(s, |_| None)
    }

    /// Reads an optional TOML file, then applies `EDGEMEET_UPLOADER_*` variables from the process
    /// environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let file: FileConfig = match path {
            Some(p) => edgemeet_config::file::read(p)?,
            None => edgemeet_config::file::parse("")?,
        };
        Self::from_parts(file, |k| std::env::var(k).ok())
    }

    /// Parses `toml` then overrides with `env(name)`; validates the result.
    pub fn build(
        toml_text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::from_parts(edgemeet_config::file::parse(toml_text)?, env)
    }

    fn from_parts(
        mut f: FileConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let vars = Vars::new(env);
        let name = |k: &str| format!("{ENV_PREFIX}{k}");
        let var = |k: &str| vars.get(&name(k));
        let num = |k: &str| vars.parse::<u64>(&name(k));

        // S3 may come entirely from the environment.
        let s3_env = [
            "S3_ENDPOINT",
            "S3_BUCKET",
            "S3_ACCESS_KEY_ID",
            "S3_SECRET_ACCESS_KEY",
        ];
        if f.s3.is_none() && s3_env.iter().all(|k| var(k).is_some()) {
            f.s3 = Some(S3Config {
                endpoint: String::new(),
                region: default_region(),
                bucket: String::new(),
                access_key_id: String::new(),
                secret_access_key: String::new(),
                prefix: default_prefix(),
                create_bucket: false,
            });
        }
        let mut s3 = f.s3.ok_or_else(|| {
            invalid("s3", "is missing: give an [s3] table or EDGEMEET_UPLOADER_S3_{ENDPOINT,BUCKET,ACCESS_KEY_ID,SECRET_ACCESS_KEY}")
        })?;
        if let Some(v) = var("S3_ENDPOINT") {
            s3.endpoint = v;
        }
        if let Some(v) = var("S3_REGION") {
            s3.region = v;
        }
        if let Some(v) = var("S3_BUCKET") {
            s3.bucket = v;
        }
        if let Some(v) = var("S3_ACCESS_KEY_ID") {
            s3.access_key_id = v;
        }
        if let Some(v) = var("S3_SECRET_ACCESS_KEY") {
            s3.secret_access_key = v;
        }
        if let Some(v) = var("S3_PREFIX") {
            s3.prefix = v;
        }
        vars.set_switch(&name("S3_CREATE_BUCKET"), &mut s3.create_bucket)?;
        let mut dropbox = f.dropbox;
        if let Some(v) = var("DROPBOX_API_URL") {
            dropbox.api_url = v;
        }
        if let Some(v) = var("DROPBOX_CONTENT_URL") {
            dropbox.content_url = v;
        }
        if let Some(v) = var("DROPBOX_ROOT") {
            dropbox.root = v;
        }
        if let Some(v) = num("DROPBOX_CHUNK_SIZE")? {
            dropbox.chunk_size = v;
        }
        if let Some(v) = num("DROPBOX_BACKOFF_MS")? {
            dropbox.backoff_ms = v;
        }
        if let Some(v) = num("POLL_INTERVAL_MS")? {
            f.poll_interval_ms = v;
        }
        if let Some(v) = num("RETENTION_SECS")? {
            f.retention_secs = v;
        }
        if let Some(v) = num("RETRY_INITIAL_MS")? {
            f.retry_initial_ms = v;
        }
        if let Some(v) = num("RETRY_MAX_SECS")? {
            f.retry_max_secs = v;
        }
        if let Some(v) = num("SALVAGE_AFTER_SECS")? {
            f.salvage_after_secs = v;
        }
        let destination = var("DESTINATION").or(f.destination);
        let local_folder = var("LOCAL_FOLDER").map(PathBuf::from).or(f.local_folder);
        let key_text = var("ENCRYPTION_KEY").or(f.encryption_key);
        let listen_text = var("LISTEN").or(f.listen);
        let status_listen_text = var("STATUS_LISTEN").or(f.status_listen);

        // Validation, with what to fix.
        if !(s3.endpoint.starts_with("http://") || s3.endpoint.starts_with("https://")) {
            return Err(invalid("s3.endpoint", "must be an http:// or https:// URL"));
        }
        if s3.bucket.is_empty() || s3.bucket.len() > 63 || s3.bucket.contains('/') {
            return Err(invalid(
                "s3.bucket",
                "must be a bucket name (1-63 characters, no '/')",
            ));
        }
        if s3.access_key_id.is_empty() || s3.secret_access_key.is_empty() {
            return Err(invalid(
                "s3.access_key_id",
                "and s3.secret_access_key must both be set",
            ));
        }
        if !s3.prefix.is_empty() && !s3.prefix.ends_with('/') {
            s3.prefix.push('/');
        }
        if edgemeet_protocol::job::check_prefix(&s3.prefix).is_err() {
            return Err(invalid(
                "s3.prefix",
                "must be key segments separated by '/' (no empty, '.' or '..' segment, no leading '/')",
            ));
        }
        for (field, url) in [
            ("dropbox.api_url", &dropbox.api_url),
            ("dropbox.content_url", &dropbox.content_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(field, "must be an http:// or https:// URL"));
            }
        }
        dropbox.api_url = dropbox.api_url.trim_end_matches('/').to_owned();
        dropbox.content_url = dropbox.content_url.trim_end_matches('/').to_owned();
        dropbox.root = dropbox.root.trim_end_matches('/').to_owned();
        if !dropbox.root.is_empty() && !dropbox.root.starts_with('/') {
            return Err(invalid(
                "dropbox.root",
                "must start with '/' (or be empty for the app folder)",
            ));
        }
        if dropbox.chunk_size == 0
            || dropbox.chunk_size > MAX_CHUNK
            || !dropbox.chunk_size.is_multiple_of(CHUNK_ALIGN)
        {
            return Err(invalid(
                "dropbox.chunk_size",
                "must be a multiple of 4 MiB (4194304) and at most 150 MiB",
            ));
        }
        if dropbox.max_attempts == 0 {
            return Err(invalid("dropbox.max_attempts", "must be at least 1"));
        }
        let destination = match destination.as_deref() {
            None | Some("dropbox") => Destination::Dropbox,
            Some("local") => Destination::LocalFolder(local_folder.ok_or_else(|| {
                invalid("local_folder", "is required when destination = \"local\"")
            })?),
            Some(other) => {
                return Err(invalid(
                    "destination",
                    format!("must be \"dropbox\" or \"local\", not {other:?}"),
                ));
            }
        };
        let encryption_key = match key_text {
            Some(t) => Some(
                TokenKey::from_base64(&t).map_err(|e| invalid("encryption_key", e.to_string()))?,
            ),
            None => None,
        };
        if destination == Destination::Dropbox && encryption_key.is_none() {
            return Err(invalid(
                "encryption_key",
                "is required for the Dropbox destination (32 bytes, base64)",
            ));
        }
        if f.poll_interval_ms < 10 {
            return Err(invalid("poll_interval_ms", "must be at least 10"));
        }
        if f.retention_secs == 0 || f.retention_secs > 24 * 3600 {
            return Err(invalid(
                "retention_secs",
                "must be between 1 and 86400 (the 24 h promise)",
            ));
        }
        let listen = match listen_text.as_deref() {
            None => default_listen(),
            Some("off") => None,
            Some(t) => Some(t.parse().map_err(|_| {
                invalid("listen", format!("must be host:port or \"off\", not {t:?}"))
            })?),
        };
        let status_listen = match status_listen_text.as_deref() {
            None | Some("off") => None,
            Some(t) => Some(t.parse().map_err(|_| {
                invalid(
                    "status_listen",
                    format!("must be host:port or \"off\", not {t:?}"),
                )
            })?),
        };
        if f.retry_initial_ms < 10 {
            return Err(invalid("retry_initial_ms", "must be at least 10"));
        }
        if f.retry_max_secs == 0 || f.retry_max_secs.saturating_mul(1000) < f.retry_initial_ms {
            return Err(invalid(
                "retry_max_secs",
                "must be positive and at least retry_initial_ms",
            ));
        }
        // Nodes refresh a live recording every 5 s: anything under 10 s could take a slow one
        // for dead.
        if f.salvage_after_secs < 10 || f.salvage_after_secs > 3600 {
            return Err(invalid(
                "salvage_after_secs",
                "must be between 10 and 3600 (nodes refresh a live recording every 5 s)",
            ));
        }
        Ok(Config {
            s3,
            dropbox,
            destination,
            encryption_key,
            poll_interval: Duration::from_millis(f.poll_interval_ms),
            retention: Duration::from_secs(f.retention_secs),
            listen,
            retry_initial: Duration::from_millis(f.retry_initial_ms),
            retry_max: Duration::from_secs(f.retry_max_secs),
            status_listen,
            salvage_after: Duration::from_secs(f.salvage_after_secs),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn base() -> String {
        format!(
            "encryption_key = \"{KEY}\"\n[s3]\nendpoint = \"http://127.0.0.1:1\"\nbucket = \"b\"\naccess_key_id = \"a\"\nsecret_access_key = \"s\"\n"
        )
    }

    #[test]
    fn minimal_config_has_defaults() {
        let c = Config::from_toml_str(&base()).unwrap();
        assert_eq!(c.destination, Destination::Dropbox);
        assert_eq!(c.s3.prefix, "recordings/");
        assert_eq!(c.retention, Duration::from_secs(86400));
        assert_eq!(c.dropbox.api_url, "https://api.dropboxapi.com");
        assert!(!format!("{c:?}").contains("\"s\""), "secret in Debug");
    }

    #[test]
    fn env_overrides_file() {
        let c = Config::build(&base(), |k| match k {
            "EDGEMEET_UPLOADER_S3_BUCKET" => Some("other".into()),
            "EDGEMEET_UPLOADER_DROPBOX_API_URL" => Some("http://127.0.0.1:9/".into()),
            "EDGEMEET_UPLOADER_LISTEN" => Some("off".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.s3.bucket, "other");
        assert_eq!(c.dropbox.api_url, "http://127.0.0.1:9");
        assert_eq!(c.listen, None);
        // A switch means the same as everywhere else; anything else is an error, not `false`.
        let on = |v: &'static str| {
            Config::build(&base(), move |k| {
                (k == "EDGEMEET_UPLOADER_S3_CREATE_BUCKET").then(|| v.into())
            })
        };
        assert!(on("on").unwrap().s3.create_bucket);
        assert!(!on("off").unwrap().s3.create_bucket);
        let e = on("enabled").unwrap_err().to_string();
        assert!(e.contains("EDGEMEET_UPLOADER_S3_CREATE_BUCKET"), "{e}");
    }

    #[test]
    fn bad_configs_say_what_to_fix() {
        let err = |t: &str| Config::from_toml_str(t).unwrap_err().to_string();
        assert!(err("").contains("s3"));
        assert!(err("bogus = 1").contains("unknown field"));
        assert!(err(&base().replace(KEY, "short")).contains("encryption_key"));
        assert!(
            err(&format!("{}[dropbox]\nchunk_size = 1000\n", base()))
                .contains("dropbox.chunk_size")
        );
        assert!(err(&base().replace("http://127.0.0.1:1", "127.0.0.1:1")).contains("s3.endpoint"));
        assert!(err(&format!("destination = \"local\"\n{}", base())).contains("local_folder"));
        assert!(err(&format!("retention_secs = 90000\n{}", base())).contains("retention_secs"));
        assert!(err(&format!("{}prefix = \"a/../b/\"\n", base())).contains("s3.prefix"));
        assert!(err(&format!("status_listen = \"x\"\n{}", base())).contains("status_listen"));
        assert!(err(&format!("retry_max_secs = 0\n{}", base())).contains("retry_max_secs"));
        let no_key = base().replace(&format!("encryption_key = \"{KEY}\"\n"), "");
        assert!(err(&no_key).contains("encryption_key"));
        let e = Config::build(&base(), |k| {
            (k == "EDGEMEET_UPLOADER_POLL_INTERVAL_MS").then(|| "x".into())
        });
        assert!(e.unwrap_err().to_string().contains("POLL_INTERVAL_MS"));
    }
}
