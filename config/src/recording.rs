//! `[recording]` of the edge: what the page is offered (`GET /api/config`), the same on both edge
//! hosts. The native host reads it from its file and the environment and also runs the storage and
//! uploader it describes; the Worker reads the same variables from its wrangler vars.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::json;

use crate::{ConfigError, Vars};

/// Dropbox's own endpoints, the defaults everywhere (tests point them at an emulator).
pub const DROPBOX_AUTHORIZE_URL: &str = "https://www.dropbox.com/oauth2/authorize";
pub const DROPBOX_API_URL: &str = "https://api.dropboxapi.com";
pub const DROPBOX_CONTENT_URL: &str = "https://content.dropboxapi.com";
/// The folder in the recorder's Dropbox (app folder) holding the dated folders.
pub const DROPBOX_ROOT: &str = "/edgemeet";

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

/// What a recording delivers unless the recorder chooses otherwise in the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilesChoice {
    /// One file per person.
    #[default]
    PerPerson,
    /// One composed video of the meeting (the livestream's layout).
    Composite,
    Both,
}

impl FilesChoice {
    fn word(self) -> &'static str {
        match self {
            Self::PerPerson => "per_person",
            Self::Composite => "composite",
            Self::Both => "both",
        }
    }
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
    /// Base64 of 32 bytes sealing the Dropbox token in manifests (checked by the native host,
    /// which uses it). Default: generated at start, kept in memory only (a restart then cannot
    /// deliver the recordings still queued for Dropbox: the purge deletes them).
    pub encryption_key: Option<String>,
    /// How long anything may stay in the embedded storage, uploaded or not (at most 86400).
    pub retention_secs: u64,
    /// The uploader's poll period (it is also woken when a recording stops).
    pub poll_interval_ms: u64,
    /// Base of recorders' delivery-status links (`{status_url}{token}`): the uploader's
    /// `status_listen` as browsers reach it, up to `/v1/recording-status/`. Default: this edge
    /// (`/v1/recording-status/`) when it runs the uploader itself; none otherwise (no link).
    pub status_url: Option<String>,
    /// The page's first choice of files: `per_person`, `composite` or `both`.
    pub files: FilesChoice,
    pub dropbox: DropboxSettings,
}

/// `[recording.dropbox]`: the Dropbox app and its endpoints.
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
            files: FilesChoice::PerPerson,
            dropbox: DropboxSettings::default(),
        }
    }
}

impl Default for DropboxSettings {
    fn default() -> Self {
        Self {
            app_key: None,
            authorize_url: DROPBOX_AUTHORIZE_URL.into(),
            api_url: DROPBOX_API_URL.into(),
            content_url: DROPBOX_CONTENT_URL.into(),
            root: DROPBOX_ROOT.into(),
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

    /// `EDGEMEET_RECORDING` (a switch), `EDGEMEET_RECORDING_{DESTINATION,FILES,LOCAL_FOLDER,
    /// DATA_DIR,KEY,STATUS_URL}`, `EDGEMEET_DROPBOX_{APP_KEY,AUTHORIZE_URL,API_URL,CONTENT_URL}`.
    pub fn apply_env(&mut self, vars: &Vars) -> Result<(), ConfigError> {
        if let Some(v) = vars.get("EDGEMEET_RECORDING")
            && v.trim_start().starts_with('{')
        {
            // The Worker's old JSON form: say what replaced it rather than "not a switch".
            return Err(ConfigError::Env {
                var: "EDGEMEET_RECORDING".into(),
                reason: "is a switch (on/off) now; the Dropbox app and the status link have \
                         their own variables: EDGEMEET_DROPBOX_APP_KEY, \
                         EDGEMEET_RECORDING_STATUS_URL (docs/configuration.md)"
                    .into(),
            });
        }
        vars.set_switch("EDGEMEET_RECORDING", &mut self.enabled)?;
        if let Some(d) = vars.one_of(
            "EDGEMEET_RECORDING_DESTINATION",
            &[
                ("auto", DestinationChoice::Auto),
                ("dropbox", DestinationChoice::Dropbox),
                ("local", DestinationChoice::Local),
            ],
        )? {
            self.destination = d;
        }
        if let Some(f) = vars.one_of(
            "EDGEMEET_RECORDING_FILES",
            &[
                ("per_person", FilesChoice::PerPerson),
                ("composite", FilesChoice::Composite),
                ("both", FilesChoice::Both),
            ],
        )? {
            self.files = f;
        }
        if let Some(v) = vars.get("EDGEMEET_RECORDING_LOCAL_FOLDER") {
            self.local_folder = v.into();
        }
        vars.set_some("EDGEMEET_RECORDING_DATA_DIR", &mut self.data_dir);
        vars.set_some("EDGEMEET_RECORDING_KEY", &mut self.encryption_key);
        vars.set_some("EDGEMEET_RECORDING_STATUS_URL", &mut self.status_url);
        vars.set_some("EDGEMEET_DROPBOX_APP_KEY", &mut self.dropbox.app_key);
        vars.set_string(
            "EDGEMEET_DROPBOX_AUTHORIZE_URL",
            &mut self.dropbox.authorize_url,
        );
        vars.set_string("EDGEMEET_DROPBOX_API_URL", &mut self.dropbox.api_url);
        vars.set_string(
            "EDGEMEET_DROPBOX_CONTENT_URL",
            &mut self.dropbox.content_url,
        );
        Ok(())
    }

    /// Everything but the encryption key's material (the native host checks that, as it uses it).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: &str| Err(ConfigError::invalid(key, reason));
        if self.retention_secs == 0 || self.retention_secs > 86_400 {
            return bad(
                "recording.retention_secs",
                "must be 1 to 86400 (the 24 h promise)",
            );
        }
        if self.poll_interval_ms < 100 {
            return bad("recording.poll_interval_ms", "must be at least 100");
        }
        if self.destination == DestinationChoice::Dropbox && self.dropbox.app_key.is_none() {
            return bad(
                "recording.dropbox.app_key",
                "is required for destination = \"dropbox\"",
            );
        }
        if let Some(k) = &self.dropbox.app_key
            && (k.is_empty()
                || k.len() > 64
                || !k
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'))
        {
            return bad(
                "recording.dropbox.app_key",
                "expected the app key from the Dropbox App Console",
            );
        }
        for (key, url) in [
            (
                "recording.dropbox.authorize_url",
                &self.dropbox.authorize_url,
            ),
            ("recording.dropbox.api_url", &self.dropbox.api_url),
            ("recording.dropbox.content_url", &self.dropbox.content_url),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError::invalid(
                    key,
                    format!("`{url}` is not an http(s) URL"),
                ));
            }
        }
        if let Some(url) = &self.status_url
            && !status_url_ok(url)
        {
            return Err(ConfigError::invalid(
                "recording.status_url",
                format!(
                    "`{url}` is not a base for status links (an https:// URL or a /path on this \
                     origin, ending in `/`, e.g. https://status.example.org/v1/recording-status/)"
                ),
            ));
        }
        if self.local_folder.as_os_str().is_empty() {
            return bad("recording.local_folder", "must not be empty");
        }
        Ok(())
    }

    /// What the page is told (`GET /api/config`): nothing secret. `available`: the host can
    /// record (the native host: a node here can record or the nodes are elsewhere; the Worker:
    /// a Dropbox app is set, its only destination). `status_url`: where the recorder's page reads
    /// its delivery status (`{status_url}{token}`), if anywhere.
    pub fn public_json(&self, available: bool, status_url: Option<&str>) -> serde_json::Value {
        if !(self.enabled && available) {
            return json!({"recording": {"available": false}});
        }
        let mut config = if self.uses_dropbox() {
            json!({"recording": {
                "available": true,
                "destination": "dropbox",
                "dropbox": {
                    "app_key": self.dropbox.app_key,
                    "authorize_url": self.dropbox.authorize_url,
                    "token_url": format!("{}/oauth2/token", self.dropbox.api_url.trim_end_matches('/')),
                },
            }})
        } else {
            json!({"recording": {"available": true, "destination": "local"}})
        };
        if let Some(url) = status_url {
            config["recording"]["status_url"] = json!(url);
        }
        config["recording"]["files"] = json!(self.files.word());
        config
    }
}

/// Whether `url` can be the base of recorders' delivery-status links (`{url}{token}`, the
/// `recording.status_url` setting): an `https://` or `http://` URL, or a path on the edge's own
/// origin (`/v1/recording-status/`), ending in `/`, with nothing a page could misread (spaces,
/// quotes, `?`, `#`, control characters).
pub fn status_url_ok(url: &str) -> bool {
    let clean = url.len() <= 512
        && url.ends_with('/')
        && !url
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "\"'<>`?#\\".contains(c));
    let shape = match url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    {
        Some(rest) => rest.split('/').next().is_some_and(|host| !host.is_empty()),
        None => url.starts_with('/') && !url.starts_with("//") && url.len() > 1,
    };
    clean && shape
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> Vars<'static> {
        Vars::from_pairs(pairs)
    }

    #[test]
    fn recording_is_a_switch_and_the_old_json_form_is_explained() {
        let mut s = RecordingSettings::default();
        s.apply_env(&vars(&[("EDGEMEET_RECORDING", "off")]))
            .unwrap();
        assert!(!s.enabled);
        assert_eq!(
            s.public_json(true, None),
            json!({"recording": {"available": false}})
        );
        let err = RecordingSettings::default()
            .apply_env(&vars(&[(
                "EDGEMEET_RECORDING",
                r#"{"dropbox":{"app_key":"k"}}"#,
            )]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("EDGEMEET_DROPBOX_APP_KEY"), "{err}");
        let err = RecordingSettings::default()
            .apply_env(&vars(&[("EDGEMEET_RECORDING_DESTINATION", "s3")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("EDGEMEET_RECORDING_DESTINATION") && err.contains("auto, dropbox, local"),
            "{err}"
        );
    }

    #[test]
    fn the_pages_first_choice_of_files_is_the_operators() {
        let mut s = RecordingSettings::default();
        assert_eq!(
            s.public_json(true, None)["recording"]["files"],
            "per_person"
        );
        s.apply_env(&vars(&[("EDGEMEET_RECORDING_FILES", "Composite")]))
            .unwrap();
        assert_eq!(s.public_json(true, None)["recording"]["files"], "composite");
        let err = RecordingSettings::default()
            .apply_env(&vars(&[("EDGEMEET_RECORDING_FILES", "all")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("per_person, composite, both"), "{err}");
    }

    #[test]
    fn dropbox_app_from_the_environment() {
        let mut s = RecordingSettings::default();
        s.apply_env(&vars(&[
            ("EDGEMEET_DROPBOX_APP_KEY", "k1"),
            ("EDGEMEET_DROPBOX_API_URL", "https://api.example/"),
            (
                "EDGEMEET_RECORDING_STATUS_URL",
                "https://status.example.org/v1/recording-status/",
            ),
        ]))
        .unwrap();
        s.validate().unwrap();
        let v = s.public_json(s.uses_dropbox(), s.status_url.as_deref());
        assert_eq!(v["recording"]["destination"], "dropbox");
        assert_eq!(v["recording"]["dropbox"]["app_key"], "k1");
        assert_eq!(
            v["recording"]["dropbox"]["token_url"],
            "https://api.example/oauth2/token"
        );
        assert_eq!(
            v["recording"]["dropbox"]["authorize_url"],
            DROPBOX_AUTHORIZE_URL
        );
        assert_eq!(
            v["recording"]["status_url"],
            "https://status.example.org/v1/recording-status/"
        );
        // An empty variable is unset: the app key stays.
        s.apply_env(&vars(&[("EDGEMEET_DROPBOX_APP_KEY", "")]))
            .unwrap();
        assert_eq!(s.dropbox.app_key.as_deref(), Some("k1"));
        let mut s = RecordingSettings::default();
        s.apply_env(&vars(&[(
            "EDGEMEET_RECORDING_STATUS_URL",
            "javascript:alert(1)//",
        )]))
        .unwrap();
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("recording.status_url"), "{err}");
    }

    #[test]
    fn status_urls_are_bases_ending_in_a_slash() {
        for ok in [
            "/v1/recording-status/",
            "https://status.example.org/v1/recording-status/",
            "http://127.0.0.1:9465/v1/recording-status/",
            "https://status.example.org/",
        ] {
            assert!(status_url_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "/",
            "v1/recording-status/",
            "//evil.example/v1/recording-status/",
            "https://status.example.org/v1/recording-status",
            "https:///v1/",
            "javascript:alert(1)//",
            "https://status.example.org/?x=/",
            "https://status.example.org/a b/",
            "https://status.example.org/\"/",
        ] {
            assert!(!status_url_ok(bad), "{bad}");
        }
    }
}
