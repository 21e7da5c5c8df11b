//! The recording manifest a media node leaves in storage for the uploader.
//!
//! A finished recording is a set of objects under one prefix of the bucket:
//!
//! ```text
//! {prefix}{recording_id}/files/{name}      the media files (written first, multipart)
//! {prefix}{recording_id}/manifest.json     this manifest (written last: its presence means "finished")
//! {prefix}{recording_id}/progress.json     the uploader's resume state (written by the uploader only)
//! {prefix}{recording_id}/status.json       delivery status (the node writes "recording", then the uploader)
//! {prefix}{recording_id}/uploads/{name}    a multipart upload in progress (written by the recording writer)
//! ```
//!
//! Keys are parsed, never prefix-matched as text: a key is `/`-separated segments, none empty,
//! `.` or `..`, no leading `/`, no backslash or control characters, and a manifest's files must lie in
//! `{prefix}{recording_id}/files/` ([`RecordingManifest::check_keys`]).
//!
//! The manifest holds no names, emails or room names. The recorder's Dropbox credentials travel
//! sealed with AES-256-GCM under a key only the uploader (and whoever seals for it) knows; the
//! associated data binds the ciphertext to this recording, so it cannot be moved to another manifest.

use serde::{Deserialize, Serialize};

/// The manifest format version. A manifest carrying another `v` is refused by the uploader.
pub const MANIFEST_VERSION: u32 = 1;

/// Object name of the manifest inside a recording's prefix.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Object name of the uploader's resume state inside a recording's prefix.
pub const PROGRESS_FILE: &str = "progress.json";
/// Folder (inside a recording's prefix) holding the media files.
pub const FILES_DIR: &str = "files/";
/// Object name of the delivery status inside a recording's prefix.
pub const STATUS_FILE: &str = "status.json";
/// Folder (inside a recording's prefix) of markers naming multipart uploads in progress, so the
/// uploader can abort abandoned ones on servers without `ListMultipartUploads` (s3s-fs).
pub const UPLOADS_DIR: &str = "uploads/";
/// The most bytes of an object key (S3's limit).
pub const MAX_KEY_BYTES: usize = 1024;

/// The most files one recording may have (a sanity bound against hostile manifests).
pub const MAX_FILES: usize = 256;

/// A finished recording, ready for upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingManifest {
    /// Always [`MANIFEST_VERSION`].
    pub v: u32,
    /// Random id of this recording; also the last segment of its storage prefix.
    pub recording_id: String,
    /// Random id of the meeting (never the room name).
    pub meeting_id: String,
    /// When recording started, milliseconds since the Unix epoch (UTC).
    pub started_at_ms: u64,
    /// When recording stopped, milliseconds since the Unix epoch (UTC).
    pub ended_at_ms: u64,
    /// The media files, each already complete in storage.
    pub files: Vec<RecordingFile>,
    /// The recorder's Dropbox credentials, sealed. `None` when the destination is not Dropbox
    /// (for example the all-in-one's local folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropbox: Option<SealedDropboxToken>,
}

/// One media file of a recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingFile {
    /// Full object key in the bucket.
    pub key: String,
    /// File name at the destination (no slashes), e.g. `a1b2c3-video.webm`.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type, e.g. `video/webm`.
    pub content_type: String,
}

/// The recorder's Dropbox credentials sealed with AES-256-GCM.
///
/// The plaintext is the JSON of [`DropboxCredentials`]; the associated data is
/// [`SealedDropboxToken::associated_data`] of the recording and meeting ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedDropboxToken {
    /// Always `"A256GCM"`.
    pub alg: String,
    /// The 12-byte nonce, standard base64.
    pub nonce: String,
    /// Ciphertext followed by the 16-byte tag, standard base64.
    pub ciphertext: String,
    /// The Dropbox app key (OAuth `client_id`, public for a PKCE app): needed to refresh.
    pub app_key: String,
}

impl SealedDropboxToken {
    /// The associated data that binds a sealed token to one recording.
    pub fn associated_data(recording_id: &str, meeting_id: &str) -> Vec<u8> {
        format!("edgemeet-recording-v{MANIFEST_VERSION}:{recording_id}:{meeting_id}").into_bytes()
    }
}

/// What is sealed inside [`SealedDropboxToken`]. Never logged, never stored in the clear.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropboxCredentials {
    /// Short-lived access token (about 4 h).
    pub access_token: String,
    /// Long-lived refresh token (`token_access_type=offline`), if the recorder granted one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for DropboxCredentials {
    // Tokens must never reach a log line, even through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DropboxCredentials")
            .field("access_token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Why a manifest is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON for this version: {0}")]
    Json(String),
    #[error("unsupported manifest version {0}")]
    Version(u32),
    #[error("invalid manifest field `{0}`")]
    Field(&'static str),
    /// A file key that is malformed or lies outside the recording's own `files/` folder.
    #[error("object key outside the recording's own folder or malformed")]
    Key,
}

/// Splits an object key into its segments, refusing anything a file system or an S3 server
/// could resolve to another place: empty, `.` or `..` segments, a leading or doubled `/`,
/// backslashes and control characters.
pub fn key_segments(key: &str) -> Result<Vec<&str>, ManifestError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(ManifestError::Key);
    }
    let segments: Vec<&str> = key.split('/').collect();
    for s in &segments {
        if s.is_empty() || *s == "." || *s == ".." || s.chars().any(|c| c == '\\' || c.is_control())
        {
            return Err(ManifestError::Key);
        }
    }
    Ok(segments)
}

/// Checks a key prefix (`""` or clean segments ending in `/`), as [`key_segments`] does keys.
pub fn check_prefix(prefix: &str) -> Result<(), ManifestError> {
    if prefix.is_empty() {
        return Ok(());
    }
    match prefix.strip_suffix('/') {
        Some(inner) => key_segments(inner).map(|_| ()),
        None => Err(ManifestError::Key),
    }
}

/// The path of `key` inside `{prefix}{recording_id}/{folder}` (`folder` like [`FILES_DIR`]), or
/// an error when the key is malformed or lies anywhere else.
pub fn key_within<'k>(
    key: &'k str,
    prefix: &str,
    recording_id: &str,
    folder: &str,
) -> Result<&'k str, ManifestError> {
    check_prefix(prefix)?;
    key_segments(key)?;
    // Both are clean and the prefix ends in `/`: text and segment prefixes now agree.
    let rest = key
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix(recording_id))
        .and_then(|r| r.strip_prefix('/'))
        .and_then(|r| r.strip_prefix(folder))
        .ok_or(ManifestError::Key)?;
    if rest.is_empty() || !is_id(recording_id) {
        return Err(ManifestError::Key);
    }
    Ok(rest)
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn is_file_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s != "."
        && s != ".."
        && !s.chars().any(|c| c == '/' || c == '\\' || c.is_control())
}

impl RecordingManifest {
    /// Parses and validates a manifest.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        // Check the version first so a future manifest gets a clear error, not a field error.
        #[derive(Deserialize)]
        struct Version {
            v: u32,
        }
        let v: Version =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        if v.v != MANIFEST_VERSION {
            return Err(ManifestError::Version(v.v));
        }
        let m: Self =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    /// Checks that every file lies in this recording's own `{prefix}{recording_id}/files/`
    /// (`prefix`: the bucket's recordings prefix, `""` or ending in `/`).
    pub fn check_keys(&self, prefix: &str) -> Result<(), ManifestError> {
        for f in &self.files {
            key_within(&f.key, prefix, &self.recording_id, FILES_DIR)?;
        }
        Ok(())
    }

    /// Serializes the manifest (pretty, it is small and sometimes read by operators).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("manifest serializes")
    }

    /// Checks every field a hostile or buggy writer could get wrong.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.v != MANIFEST_VERSION {
            return Err(ManifestError::Version(self.v));
        }
        if !is_id(&self.recording_id) {
            return Err(ManifestError::Field("recording_id"));
        }
        if !is_id(&self.meeting_id) {
            return Err(ManifestError::Field("meeting_id"));
        }
        if self.ended_at_ms < self.started_at_ms {
            return Err(ManifestError::Field("ended_at_ms"));
        }
        if self.files.len() > MAX_FILES {
            return Err(ManifestError::Field("files"));
        }
        let mut names = std::collections::HashSet::new();
        for f in &self.files {
            key_segments(&f.key)?;
            if !is_file_name(&f.name) || !names.insert(f.name.as_str()) {
                return Err(ManifestError::Field("files.name"));
            }
            if f.content_type.is_empty() || f.content_type.len() > 128 {
                return Err(ManifestError::Field("files.content_type"));
            }
        }
        if let Some(d) = &self.dropbox {
            if d.alg != "A256GCM" {
                return Err(ManifestError::Field("dropbox.alg"));
            }
            if d.app_key.is_empty() || d.nonce.is_empty() || d.ciphertext.is_empty() {
                return Err(ManifestError::Field("dropbox"));
            }
        }
        Ok(())
    }
}

/// The uploader's resume state for one recording, stored next to its manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadProgress {
    /// One entry per manifest file, by file name.
    pub files: Vec<FileProgress>,
}

/// Resume state of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileProgress {
    /// The manifest file's `name`.
    pub name: String,
    /// Dropbox upload session id, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Bytes the destination has acknowledged.
    pub offset: u64,
    /// `finish` was sent; if the session is then gone, the file was committed.
    #[serde(default)]
    pub finishing: bool,
    /// The file is at the destination, under this path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_path: Option<String>,
    /// Where `finish` commits (chosen free before it is sent, never autorenamed by Dropbox), so a
    /// lost answer is resolved by looking at exactly this path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_path: Option<String>,
    /// SHA-256 (hex) of each 4 MiB block of the bytes acknowledged so far, in order: the parts
    /// of Dropbox's `content_hash`, kept so a restarted upload need not read them again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block_hashes: Vec<String>,
}

impl FileProgress {
    /// A file not started yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            session_id: None,
            offset: 0,
            finishing: false,
            done_path: None,
            commit_path: None,
            block_hashes: Vec::new(),
        }
    }
}

/// The delivery status format version.
pub const STATUS_VERSION: u32 = 1;

/// Where a recording's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Still being recorded (written by the media node at start).
    Recording,
    /// Finished, waiting for its first delivery attempt.
    Queued,
    /// Being delivered now.
    Uploading,
    /// An attempt failed for a reason that may pass; the next one is at `next_attempt_at_ms`.
    Retrying,
    /// Every file is at the destination, checked (size and content hash).
    Delivered,
    /// Cannot be delivered without the recorder's action (`problem` says why); the files are
    /// purged at `purge_at_ms` unless that action comes first (`dropbox_full` is retried).
    Failed,
}

impl DeliveryState {
    /// Whether nothing more will happen to the recording but the purge.
    pub fn is_final(self) -> bool {
        matches!(self, DeliveryState::Delivered | DeliveryState::Failed)
    }
}

/// Why a delivery has not succeeded (no names, no paths, nothing secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryProblem {
    /// Dropbox did not answer, or answered with server errors.
    DropboxUnreachable,
    /// The recorder's Dropbox grant was revoked (or has expired with no refresh token).
    GrantRevoked,
    /// The recorder's Dropbox has no room for the files.
    DropboxFull,
    /// Dropbox refused the request for another reason.
    DropboxRefused,
    /// What Dropbox holds differs from what was sent (size or content hash).
    DeliveryMismatch,
    /// The storage could not be read.
    StorageUnreachable,
    /// The storage holds something other than the manifest says (a missing or resized file).
    StorageMismatch,
    /// The manifest is malformed, names files outside its own folder, or its sealed token does
    /// not open with this uploader's key.
    InvalidManifest,
    /// The local folder could not be written (all-in-one).
    LocalFolder,
}

/// A recording's delivery status as kept in storage (`status.json`) by the uploader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingStatus {
    /// Always [`STATUS_VERSION`].
    pub v: u32,
    pub state: DeliveryState,
    /// When recording started (the retention counts from here), ms since the Unix epoch.
    pub started_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<DeliveryProblem>,
    /// Media files in the recording, and how many of them are delivered.
    #[serde(default)]
    pub files: u32,
    #[serde(default)]
    pub files_delivered: u32,
    /// Delivery attempts made so far.
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at_ms: Option<u64>,
}

impl RecordingStatus {
    /// A fresh status in `state`.
    pub fn new(state: DeliveryState, started_at_ms: u64) -> Self {
        Self {
            v: STATUS_VERSION,
            state,
            started_at_ms,
            problem: None,
            files: 0,
            files_delivered: 0,
            attempts: 0,
            next_attempt_at_ms: None,
            delivered_at_ms: None,
        }
    }

    /// What the recorder's status link shows: the state, never names or ids.
    pub fn view(&self, purge_at_ms: u64) -> DeliveryStatus {
        DeliveryStatus {
            state: self.state,
            problem: self.problem,
            files: self.files,
            files_delivered: self.files_delivered,
            next_attempt_at_ms: self.next_attempt_at_ms,
            delivered_at_ms: self.delivered_at_ms,
            purge_at_ms,
        }
    }
}

/// The JSON of the recorder's delivery-status link (`GET /v1/recording-status/{token}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStatus {
    pub state: DeliveryState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<DeliveryProblem>,
    pub files: u32,
    pub files_delivered: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at_ms: Option<u64>,
    /// When the recording is deleted from our storage, delivered or not (ms since the epoch);
    /// the link stops answering then.
    pub purge_at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RecordingManifest {
        RecordingManifest {
            v: MANIFEST_VERSION,
            recording_id: "r1".into(),
            meeting_id: "m1".into(),
            started_at_ms: 1,
            ended_at_ms: 2,
            files: vec![RecordingFile {
                key: "recordings/r1/files/a.webm".into(),
                name: "a.webm".into(),
                size: 3,
                content_type: "video/webm".into(),
            }],
            dropbox: None,
        }
    }

    #[test]
    fn manifest_round_trips() {
        let m = sample();
        assert_eq!(RecordingManifest::from_json(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn manifest_refuses_bad_fields() {
        let mut m = sample();
        m.files[0].name = "../x".into();
        assert_eq!(m.validate(), Err(ManifestError::Field("files.name")));
        let mut m = sample();
        m.v = 9;
        assert_eq!(
            RecordingManifest::from_json(&m.to_json()),
            Err(ManifestError::Version(9))
        );
        assert!(matches!(
            RecordingManifest::from_json(b"{\"v\":1}"),
            Err(ManifestError::Json(_))
        ));
    }

    #[test]
    fn keys_are_parsed_not_prefix_matched() {
        fn own(k: &str) -> Result<&str, ManifestError> {
            key_within(k, "recordings/", "r1", FILES_DIR)
        }
        assert_eq!(own("recordings/r1/files/a.webm"), Ok("a.webm"));
        for bad in [
            "recordings/r1/files/../../other/files/x.webm",
            "recordings/r1/../other/files/x.webm",
            "recordings/r1/files/../../../other-bucket/x",
            "recordings/r1/files/./a.webm",
            "recordings/r1/files//a.webm",
            "/recordings/r1/files/a.webm",
            "recordings/r1/files/",
            "recordings/r1/files",
            "recordings/r10/files/a.webm",
            "recordings/r1/progress.json",
            "recordings/r1/files/a\\..\\b",
            "other/r1/files/a.webm",
        ] {
            assert_eq!(own(bad), Err(ManifestError::Key), "{bad}");
        }
        assert_eq!(key_within("r1/files/a", "", "r1", FILES_DIR), Ok("a"));
        assert!(check_prefix("a/../").is_err() && check_prefix("a").is_err());
        // The manifest refuses a dot-dot key at parse time, and check_keys the foreign prefix.
        let mut m = sample();
        m.files[0].key = "recordings/r1/../victim/files/keep.webm".into();
        assert_eq!(m.validate(), Err(ManifestError::Key));
        let mut m = sample();
        m.files[0].key = "recordings/victim/files/keep.webm".into();
        assert!(m.validate().is_ok());
        assert_eq!(m.check_keys("recordings/"), Err(ManifestError::Key));
        assert!(sample().check_keys("recordings/").is_ok());
    }

    #[test]
    fn status_round_trips_and_its_view_holds_no_ids() {
        let mut st = RecordingStatus::new(DeliveryState::Failed, 5);
        st.problem = Some(DeliveryProblem::GrantRevoked);
        let json = serde_json::to_string(&st).unwrap();
        assert!(json.contains("\"state\":\"failed\"") && json.contains("grant_revoked"));
        assert_eq!(serde_json::from_str::<RecordingStatus>(&json).unwrap(), st);
        let view = serde_json::to_value(st.view(86_400_005)).unwrap();
        assert_eq!(view["purge_at_ms"], 86_400_005);
        assert!(view.get("started_at_ms").is_none());
    }

    #[test]
    fn credentials_debug_hides_tokens() {
        let c = DropboxCredentials {
            access_token: "sl.SECRET".into(),
            refresh_token: Some("RSECRET".into()),
        };
        let s = format!("{c:?}");
        assert!(!s.contains("SECRET"));
    }
}
