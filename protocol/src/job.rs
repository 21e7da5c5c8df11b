//! The recording manifest a media node leaves in storage for the uploader.
//!
//! A finished recording is a set of objects under one prefix of the bucket:
//!
//! ```text
//! {prefix}{recording_id}/files/{name}      the media files (written first, multipart)
//! {prefix}{recording_id}/manifest.json     this manifest (written last: its presence means "finished")
//! {prefix}{recording_id}/progress.json     the uploader's resume state (written by the uploader only)
//! ```
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
            if f.key.is_empty() || f.key.len() > 1024 {
                return Err(ManifestError::Field("files.key"));
            }
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
    fn credentials_debug_hides_tokens() {
        let c = DropboxCredentials {
            access_token: "sl.SECRET".into(),
            refresh_token: Some("RSECRET".into()),
        };
        let s = format!("{c:?}");
        assert!(!s.contains("SECRET"));
    }
}
