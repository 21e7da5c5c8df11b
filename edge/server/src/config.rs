//! The native host's configuration: a TOML file, then environment variables on top.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::bail;
use edgemeet_config::Vars;
use edgemeet_core::EdgeConfig;
use rand_core::OsRng;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Everything `edgemeet` reads. Every key has a default; `docs/configuration.md` lists them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on for HTTP and WebSockets.
    pub listen: SocketAddr,
    /// Folder with the browser client (`index.html`, `assets/`).
    pub web_dir: PathBuf,
    pub log_format: LogFormat,
    /// This edge's region, used to pick media nodes when a request carries no location.
    pub region: Option<String>,
    /// Read the caller's location from `CF-IPContinent`, `CF-IPCountry`, `CF-IPLatitude`, `CF-IPLongitude`
    /// (set this only behind a proxy that sets them, such as Cloudflare with visitor location headers).
    pub trust_location_headers: bool,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<TlsConfig>,
    /// Run a media node inside this process (the all-in-one). Turn off on an edge whose media nodes
    /// run elsewhere and send heartbeats.
    pub embed_media_node: bool,
    /// Settings of the embedded media node (`docs/configuration.md`); its secret is always the
    /// edge's `node_secret` and, unless set, its API is served under `/node` on this origin.
    pub media_node: Option<edgemeet_media_node::NodeConfig>,
    /// Recording (`docs/configuration.md`): with the embedded node, embedded storage and the
    /// uploader run in this process; the destination is Dropbox or a local folder.
    pub recording: crate::recording::RecordingSettings,
    /// Open room sockets one client address (IPv6: one /64) may hold on this server.
    pub max_sockets_per_address: usize,
    /// Where `/metrics` is served: a listener of its own, and/or the main one behind a token.
    pub metrics: MetricsSettings,
    pub edge: EdgeConfig,
}

/// `/metrics`: counts only, but still not for everyone. With neither key set it is not served.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Serve `/metrics` (no token) on this address only, e.g. `127.0.0.1:9464` for a local scraper.
    pub listen: Option<SocketAddr>,
    /// Serve `/metrics` on the main listener to requests with `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            web_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../web")),
            log_format: LogFormat::Text,
            region: None,
            trust_location_headers: false,
            tls: None,
            embed_media_node: true,
            media_node: None,
            recording: Default::default(),
            max_sockets_per_address: 256,
            metrics: MetricsSettings::default(),
            edge: EdgeConfig::default(),
        }
    }
}

impl ServerConfig {
    /// Read `path` (if any), apply the environment, fill generated secrets, and validate.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let mut config: Self = edgemeet_config::file::read_or_default(path)?;
        config.apply_env(|k| std::env::var(k).ok())?;
        config.fill_secrets();
        config.validate()?;
        Ok(config)
    }

    #[cfg(test)]
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(edgemeet_config::file::parse(text)?)
    }

    /// The variables of `docs/configuration.md` over the file's values (empty ones count as unset).
    fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        let vars = Vars::new(get);
        vars.set_parsed("EDGEMEET_LISTEN", &mut self.listen)?;
        if let Some(v) = vars.get("EDGEMEET_WEB_DIR") {
            self.web_dir = v.into();
        }
        if let Some(v) = vars.one_of(
            "EDGEMEET_LOG_FORMAT",
            &[("text", LogFormat::Text), ("json", LogFormat::Json)],
        )? {
            self.log_format = v;
        }
        match (vars.get("EDGEMEET_TLS_CERT"), vars.get("EDGEMEET_TLS_KEY")) {
            (Some(cert), Some(key)) => {
                self.tls = Some(TlsConfig {
                    cert: cert.into(),
                    key: key.into(),
                })
            }
            (None, None) => {}
            _ => bail!("EDGEMEET_TLS_CERT and EDGEMEET_TLS_KEY go together"),
        }
        vars.set_some("EDGEMEET_REGION", &mut self.region);
        self.edge.apply_env(&vars);
        vars.set_parsed(
            "EDGEMEET_MAX_SOCKETS_PER_ADDRESS",
            &mut self.max_sockets_per_address,
        )?;
        vars.set_some("EDGEMEET_METRICS_TOKEN", &mut self.metrics.token);
        if let Some(v) = vars.parse("EDGEMEET_METRICS_LISTEN")? {
            self.metrics.listen = Some(v);
        }
        self.recording.apply_env(&vars)?;
        Ok(())
    }

    /// A missing hash key is generated per process: room hashes in logs then cannot be linked across
    /// restarts, which is what we want by default.
    fn fill_secrets(&mut self) {
        if self.edge.hash_key.is_empty() {
            self.edge.hash_key = random_secret();
        }
        if self.embed_media_node && self.edge.node_secret.is_none() {
            self.edge.node_secret = Some(random_secret());
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(region) = &self.region {
            edgemeet_protocol::node::check_region(region).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        if let (true, Some(node)) = (self.embed_media_node, &self.media_node) {
            // Its secret is always edge.node_secret, filled in at start: check the rest now.
            let mut node = node.clone();
            node.secret = "x".repeat(32);
            node.validate()
                .map_err(|e| anyhow::anyhow!("media_node.{e}"))?;
        }
        self.edge
            .validate()
            .map_err(|e| anyhow::anyhow!("edge.{e}"))?;
        crate::recording::validate(&self.recording)?;
        if self.max_sockets_per_address == 0 {
            bail!("max_sockets_per_address: must be at least 1");
        }
        if self.metrics.token.as_ref().is_some_and(|t| t.len() < 16) {
            bail!("metrics.token: must be at least 16 bytes");
        }
        if let Some(tls) = &self.tls {
            crate::tls::load(&tls.cert, &tls.key)?;
        }
        if !self.web_dir.join("index.html").is_file() {
            bail!(
                "web_dir: {} has no index.html (set web_dir or EDGEMEET_WEB_DIR)",
                self.web_dir.display()
            );
        }
        Ok(())
    }
}

/// 32 random bytes as hex: a secret generated for this process only.
fn random_secret() -> String {
    edgemeet_core::crypto::random_hex(&mut OsRng, 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = ServerConfig::parse("listne = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listne"), "{err}");
        let err = ServerConfig::parse("[edge.tenants.acme]\nauth = \"magic\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("auth") || err.contains("magic"), "{err}");
        let mut c =
            ServerConfig::parse("[edge.tenants.acme]\nauth = \"jwt\"\nissuers = [\"x\"]").unwrap();
        c.fill_secrets();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("edge.tenants.acme.hs256_secret"), "{err}");
    }

    #[test]
    fn recording_settings_defaults_env_and_checks() {
        let c = ServerConfig::default();
        assert!(c.recording.enabled && !c.recording.uses_dropbox());
        assert_eq!(c.recording.local_folder, PathBuf::from("recordings"));
        let v = c.recording.public_json(true, None);
        assert_eq!(v["recording"]["destination"], "local");
        assert_eq!(v["recording"].get("status_url"), None);
        let v = c.recording.public_json(true, Some("/v1/recording-status/"));
        assert_eq!(v["recording"]["status_url"], "/v1/recording-status/");
        let mut c = ServerConfig::parse(
            "[recording]\nlocal_folder = \"/srv/rec\"\n[recording.dropbox]\napp_key = \"abc123\"",
        )
        .unwrap();
        assert!(c.recording.uses_dropbox());
        let v = c.recording.public_json(true, None);
        assert_eq!(v["recording"]["dropbox"]["app_key"], "abc123");
        assert_eq!(
            v["recording"]["dropbox"]["token_url"],
            "https://api.dropboxapi.com/oauth2/token"
        );
        c.apply_env(|k| match k {
            "EDGEMEET_RECORDING_DESTINATION" => Some("local".into()),
            "EDGEMEET_DROPBOX_API_URL" => Some("http://127.0.0.1:1".into()),
            "EDGEMEET_RECORDING_STATUS_URL" => {
                Some("https://status.example.org/v1/recording-status/".into())
            }
            _ => None,
        })
        .unwrap();
        assert!(!c.recording.uses_dropbox());
        assert_eq!(
            c.recording.status_url.as_deref(),
            Some("https://status.example.org/v1/recording-status/")
        );
        assert_eq!(c.recording.dropbox.api_url, "http://127.0.0.1:1");
        for (text, key) in [
            (
                "[recording]\ndestination = \"dropbox\"",
                "recording.dropbox.app_key",
            ),
            (
                "[recording]\nretention_secs = 90000",
                "recording.retention_secs",
            ),
            (
                "[recording]\nencryption_key = \"short\"",
                "recording.encryption_key",
            ),
            (
                "[recording.dropbox]\napp_key = \"k\"\ntoken_url = \"x\"",
                "token_url",
            ),
            (
                "[recording]\nstatus_url = \"https://status.example.org/v1/recording-status\"",
                "recording.status_url",
            ),
        ] {
            let err = match ServerConfig::parse(text) {
                Ok(c) => crate::recording::validate(&c.recording)
                    .unwrap_err()
                    .to_string(),
                Err(e) => e.to_string(),
            };
            assert!(err.contains(key), "{text}: {err}");
        }
        assert!(
            ServerConfig::parse("[recording]\nenabled = false")
                .unwrap()
                .recording
                .public_json(true, Some("/v1/recording-status/"))["recording"]["available"]
                == false
        );
    }

    #[test]
    fn env_overrides_the_file() {
        let mut c = ServerConfig::default();
        c.apply_env(|k| (k == "EDGEMEET_LISTEN").then(|| "127.0.0.1:9999".into()))
            .unwrap();
        assert_eq!(c.listen.port(), 9999);
        let err = c
            .apply_env(|k| (k == "EDGEMEET_LISTEN").then(|| "nope".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("EDGEMEET_LISTEN"), "{err}");
    }

    #[test]
    fn variables_mean_the_same_as_on_the_worker() {
        // EDGEMEET_RECORDING is a switch on both hosts.
        let mut c = ServerConfig::default();
        c.apply_env(|k| (k == "EDGEMEET_RECORDING").then(|| "off".into()))
            .unwrap();
        assert!(!c.recording.enabled);
        for bad in ["maybe", r#"{"dropbox":{"app_key":"k"}}"#] {
            let err = ServerConfig::default()
                .apply_env(|k| (k == "EDGEMEET_RECORDING").then(|| bad.into()))
                .unwrap_err()
                .to_string();
            assert!(err.contains("EDGEMEET_RECORDING"), "{bad}: {err}");
        }
        // An empty variable is unset: the file's value stays, a missing secret is generated.
        let mut c = ServerConfig::parse("region = \"eu-west\"\n[edge]\nhash_key = \"k\"").unwrap();
        c.apply_env(|k| k.starts_with("EDGEMEET_").then(String::new))
            .unwrap();
        assert_eq!(
            (c.region.as_deref(), c.edge.hash_key.as_str()),
            (Some("eu-west"), "k")
        );
        let mut c = ServerConfig::default();
        c.apply_env(|k| (k == "EDGEMEET_HASH_KEY").then(String::new))
            .unwrap();
        c.fill_secrets();
        assert_eq!(c.edge.hash_key.len(), 64);
        // The edge's own variables, the same ones the Worker reads.
        let mut c = ServerConfig::default();
        c.apply_env(|k| match k {
            "EDGEMEET_NODE_SECRET" => Some("n".repeat(32)),
            "EDGEMEET_HASH_KEY" => Some("h".repeat(16)),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.edge.node_secret, Some("n".repeat(32)));
        assert_eq!(c.edge.hash_key, "h".repeat(16));
    }
}
