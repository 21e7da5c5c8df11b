//! The `[recording]` section of the node config: where recordings go and the sealing key.

use edgemeet_config::ConfigError;
use edgemeet_uploader::{S3Config, TokenKey};
use serde::Deserialize;

/// Recording to S3-compatible storage. Absent = recording disabled (the API answers 503).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingConfig {
    /// 32 bytes, standard base64: the uploader's `encryption_key` (seals the Dropbox token).
    pub encryption_key: String,
    /// Same shape as the uploader's `[s3]` (endpoint, region, bucket, access_key_id,
    /// secret_access_key, prefix, create_bucket).
    pub s3: S3Config,
    /// Multipart part size in MiB (5 to 64): the memory each recorded file holds at most twice,
    /// and the size up to which a file stays in memory and gets an exact Duration.
    #[serde(default = "default_part_mib")]
    pub part_size_mib: usize,
    /// Packets queued per recorded file between forwarding and muxing; beyond, packets drop.
    #[serde(default = "default_queue")]
    pub queue_packets: usize,
    /// Refuse a start without the recorder's Dropbox grant (400): set where the uploader's
    /// destination is Dropbox, so a recording nobody could deliver is never made.
    #[serde(default)]
    pub require_dropbox: bool,
    /// How often each recorded file's new bytes go to the recording's journal (ms, 500 to
    /// 30000): at most this much (plus the node's death detection) is lost when the node dies
    /// mid-recording, since the uploader rebuilds the file from the journal.
    #[serde(default = "default_journal_ms")]
    pub journal_interval_ms: u64,
}

fn default_journal_ms() -> u64 {
    2000
}

fn default_part_mib() -> usize {
    8
}

fn default_queue() -> usize {
    2048
}

impl std::fmt::Debug for RecordingConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingConfig")
            .field("encryption_key", &"<redacted>")
            .field("s3", &self.s3)
            .field("part_size_mib", &self.part_size_mib)
            .field("queue_packets", &self.queue_packets)
            .field("require_dropbox", &self.require_dropbox)
            .field("journal_interval_ms", &self.journal_interval_ms)
            .finish()
    }
}

impl RecordingConfig {
    /// From storage settings and the key (defaults for the rest).
    pub fn new(s3: S3Config, encryption_key: impl Into<String>) -> Self {
        Self {
            encryption_key: encryption_key.into(),
            s3,
            part_size_mib: default_part_mib(),
            queue_packets: default_queue(),
            require_dropbox: false,
            journal_interval_ms: default_journal_ms(),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        TokenKey::from_base64(&self.encryption_key)
            .map_err(|e| ConfigError::invalid("recording.encryption_key", e.to_string()))?;
        let s3 = &self.s3;
        if !(s3.endpoint.starts_with("http://") || s3.endpoint.starts_with("https://")) {
            return Err(ConfigError::invalid(
                "recording.s3.endpoint",
                "must start with http:// or https://",
            ));
        }
        if s3.bucket.is_empty() || s3.access_key_id.is_empty() || s3.secret_access_key.is_empty() {
            return Err(ConfigError::invalid(
                "recording.s3",
                "needs bucket, access_key_id and secret_access_key",
            ));
        }
        if !(5..=64).contains(&self.part_size_mib) {
            return Err(ConfigError::invalid(
                "recording.part_size_mib",
                "must be 5 to 64",
            ));
        }
        if !(500..=30_000).contains(&self.journal_interval_ms) {
            return Err(ConfigError::invalid(
                "recording.journal_interval_ms",
                "must be 500 to 30000",
            ));
        }
        if self.queue_packets == 0 {
            return Err(ConfigError::invalid(
                "recording.queue_packets",
                "must be positive",
            ));
        }
        Ok(())
    }
}
