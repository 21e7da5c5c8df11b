//! Node configuration: a TOML file, then `EDGEMEET_NODE_*` environment variables on top.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::recording::config::RecordingConfig;

/// Everything a media node needs to run. Every field has a default fit for a laptop
/// (loopback only, no edge to report to).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Node id: the `aud` of the edge's tokens and the id in heartbeats.
    pub id: String,
    /// Region name reported to the edge (e.g. `eu-west`).
    pub region: String,
    /// HTTP control API address.
    pub listen: SocketAddr,
    /// Base URL of the control API as browsers reach it (reported in heartbeats).
    /// Defaults to `http://{listen}`.
    pub public_url: Option<String>,
    /// Local IP the media (ICE/UDP) sockets bind to.
    pub media_ip: IpAddr,
    /// UDP port range for media, inclusive; each session takes one port. `0..=0` = ephemeral.
    pub udp_port_min: u16,
    pub udp_port_max: u16,
    /// One UDP port shared by every session (ICE UDP mux); 0 = off (the range above applies).
    pub udp_mux_port: u16,
    /// Public IP announced in ICE candidates instead of `media_ip` (NAT 1:1 on cloud VMs).
    pub public_ip: Option<IpAddr>,
    /// Edge base URL for heartbeats and events; none = don't report.
    pub edge_url: Option<String>,
    /// Shared secret: verifies the edge's HS256 tokens and authenticates reports to the edge.
    pub secret: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// Seconds without any packet from a session (and no API call by its owner) before it is
    /// reaped, unless it is connected (ICE consent keeps a session that sends no media alive).
    pub idle_timeout_secs: u64,
    /// Start in drain mode: no new rooms.
    pub draining: bool,
    /// Sessions one room (meeting) may hold on this node.
    pub max_sessions_per_room: usize,
    /// Seconds between heartbeats.
    pub heartbeat_secs: u64,
    /// Threads of the standalone node's async runtime: 0 = one per core, 1 = a single-threaded
    /// runtime (no cross-thread wake-ups: less CPU per packet, one core at most). Ignored when
    /// the node is embedded (the host owns the runtime).
    pub worker_threads: usize,
    /// Forwarded media is encrypted and sent by the node itself (true), or written through
    /// webrtc-rs's per-connection pipeline (false: several times the CPU per packet; kept for
    /// comparison and as a fallback).
    pub direct_send: bool,
    /// Recording to S3-compatible storage (`[recording]`); none = recording disabled.
    pub recording: Option<RecordingConfig>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            id: "node-local".into(),
            region: "local".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 7880)),
            public_url: None,
            media_ip: IpAddr::from([127, 0, 0, 1]),
            udp_port_min: 0,
            udp_port_max: 0,
            udp_mux_port: 0,
            public_ip: None,
            edge_url: None,
            secret: String::new(),
            lat: None,
            lon: None,
            idle_timeout_secs: 30,
            draining: false,
            max_sessions_per_room: 256,
            heartbeat_secs: 5,
            worker_threads: 0,
            direct_send: true,
            recording: None,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("bad config file {path}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("bad value for {var}: {reason}")]
    Env { var: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

impl NodeConfig {
    /// Reads the TOML file (if any), then applies environment variables, then validates.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut cfg = match path {
            Some(p) => Self::from_toml_file(p)?,
            None => Self::default(),
        };
        cfg.apply_env(|k| std::env::var(k).ok())?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text).map_err(|e| match e {
            ConfigError::Parse { source, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                source,
            },
            other => other,
        })
    }

    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "<string>".into(),
            source: Box::new(e),
        })
    }

    /// Applies `EDGEMEET_NODE_{ID,REGION,LISTEN,PUBLIC_URL,MEDIA_IP,UDP_PORTS,UDP_MUX_PORT,PUBLIC_IP,EDGE_URL,
    /// SECRET,LAT,LON,IDLE_TIMEOUT_SECS,WORKER_THREADS,DRAINING,DIRECT_SEND,MAX_SESSIONS_PER_ROOM}`. `UDP_PORTS` is `N` or `MIN-MAX`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(var: &str, v: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.trim().parse().map_err(|e: T::Err| ConfigError::Env {
                var: var.into(),
                reason: e.to_string(),
            })
        }
        let var = |name: &str| get(&format!("EDGEMEET_NODE_{name}")).filter(|v| !v.is_empty());
        if let Some(v) = var("ID") {
            self.id = v;
        }
        if let Some(v) = var("REGION") {
            self.region = v;
        }
        if let Some(v) = var("LISTEN") {
            self.listen = parse("EDGEMEET_NODE_LISTEN", &v)?;
        }
        if let Some(v) = var("PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = var("MEDIA_IP") {
            self.media_ip = parse("EDGEMEET_NODE_MEDIA_IP", &v)?;
        }
        if let Some(v) = var("UDP_PORTS") {
            let name = "EDGEMEET_NODE_UDP_PORTS";
            let (lo, hi) = match v.split_once('-') {
                Some((a, b)) => (parse(name, a)?, parse(name, b)?),
                None => {
                    let p = parse(name, &v)?;
                    (p, p)
                }
            };
            self.udp_port_min = lo;
            self.udp_port_max = hi;
        }
        if let Some(v) = var("UDP_MUX_PORT") {
            self.udp_mux_port = parse("EDGEMEET_NODE_UDP_MUX_PORT", &v)?;
        }
        if let Some(v) = var("PUBLIC_IP") {
            self.public_ip = Some(parse("EDGEMEET_NODE_PUBLIC_IP", &v)?);
        }
        if let Some(v) = var("EDGE_URL") {
            self.edge_url = Some(v);
        }
        if let Some(v) = var("SECRET") {
            self.secret = v;
        }
        if let Some(v) = var("LAT") {
            self.lat = Some(parse("EDGEMEET_NODE_LAT", &v)?);
        }
        if let Some(v) = var("LON") {
            self.lon = Some(parse("EDGEMEET_NODE_LON", &v)?);
        }
        if let Some(v) = var("IDLE_TIMEOUT_SECS") {
            self.idle_timeout_secs = parse("EDGEMEET_NODE_IDLE_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = var("WORKER_THREADS") {
            self.worker_threads = parse("EDGEMEET_NODE_WORKER_THREADS", &v)?;
        }
        if let Some(v) = var("MAX_SESSIONS_PER_ROOM") {
            self.max_sessions_per_room = parse("EDGEMEET_NODE_MAX_SESSIONS_PER_ROOM", &v)?;
        }
        if let Some(v) = var("DRAINING") {
            self.draining = parse("EDGEMEET_NODE_DRAINING", &v)?;
        }
        if let Some(v) = var("DIRECT_SEND") {
            self.direct_send = parse("EDGEMEET_NODE_DIRECT_SEND", &v)?;
        }
        self.apply_recording_env(&var)
    }

    /// `EDGEMEET_NODE_RECORDING_{KEY,S3_ENDPOINT,S3_REGION,S3_BUCKET,S3_ACCESS_KEY_ID,
    /// S3_SECRET_ACCESS_KEY,S3_PREFIX}`; the endpoint alone enables recording without a file.
    fn apply_recording_env(
        &mut self,
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        if self.recording.is_none()
            && let Some(ep) = var("RECORDING_S3_ENDPOINT")
        {
            self.recording = Some(RecordingConfig::new(
                edgemeet_uploader::S3Config::new(ep, "", "", ""),
                "",
            ));
        }
        let Some(r) = self.recording.as_mut() else {
            return Ok(());
        };
        let fields: [(&str, &mut String); 7] = [
            ("RECORDING_KEY", &mut r.encryption_key),
            ("RECORDING_S3_ENDPOINT", &mut r.s3.endpoint),
            ("RECORDING_S3_REGION", &mut r.s3.region),
            ("RECORDING_S3_BUCKET", &mut r.s3.bucket),
            ("RECORDING_S3_ACCESS_KEY_ID", &mut r.s3.access_key_id),
            (
                "RECORDING_S3_SECRET_ACCESS_KEY",
                &mut r.s3.secret_access_key,
            ),
            ("RECORDING_S3_PREFIX", &mut r.s3.prefix),
        ];
        for (name, field) in fields {
            if let Some(v) = var(name) {
                *field = v;
            }
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.into()));
        if self.id.is_empty() {
            return bad("id must not be empty");
        }
        edgemeet_protocol::node::check_region(&self.region).map_err(ConfigError::Invalid)?;
        if self.secret.len() < 16 {
            return bad("secret must be at least 16 bytes (set EDGEMEET_NODE_SECRET)");
        }
        if self.max_sessions_per_room == 0 {
            return bad("max_sessions_per_room must be at least 1");
        }
        if self.udp_port_min > self.udp_port_max {
            return bad("udp_port_min is above udp_port_max");
        }
        if (self.udp_port_min == 0) != (self.udp_port_max == 0) {
            return bad("a UDP port range needs both ends non-zero (or both 0 for ephemeral)");
        }
        if self.udp_mux_port != 0 && self.udp_port_min != 0 {
            return bad(
                "udp_mux_port (one port for all) and udp_port_min/max (a range) exclude each other",
            );
        }
        if self.media_ip.is_unspecified() {
            return bad("media_ip must be a concrete local address, not 0.0.0.0/::");
        }
        if let Some(url) = &self.edge_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return bad("edge_url must start with http:// or https://");
        }
        if self.lat.is_some_and(|v| !(-90.0..=90.0).contains(&v))
            || self.lon.is_some_and(|v| !(-180.0..=180.0).contains(&v))
        {
            return bad("lat/lon out of range");
        }
        if self.heartbeat_secs == 0 || self.idle_timeout_secs == 0 {
            return bad("heartbeat_secs and idle_timeout_secs must be positive");
        }
        if let Some(r) = &self.recording {
            r.validate().map_err(ConfigError::Invalid)?;
        }
        Ok(())
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_then_env() {
        let mut c = NodeConfig::from_toml_str(
            "id = \"n1\"\nregion = \"eu\"\nsecret = \"0123456789abcdef\"\nudp_port_min = 40000\nudp_port_max = 40100\n",
        )
        .unwrap();
        c.apply_env(|k| match k {
            "EDGEMEET_NODE_REGION" => Some("na-east".into()),
            "EDGEMEET_NODE_UDP_PORTS" => Some("50000-50010".into()),
            _ => None,
        })
        .unwrap();
        c.validate().unwrap();
        assert_eq!((c.id.as_str(), c.region.as_str()), ("n1", "na-east"));
        assert_eq!((c.udp_port_min, c.udp_port_max), (50000, 50010));
    }

    #[test]
    fn one_udp_port_or_a_range() {
        let mut c = NodeConfig::from_toml_str(
            "secret = \"0123456789abcdef\"\nudp_mux_port = 3478\npublic_ip = \"203.0.113.10\"\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.udp_mux_port, 3478);
        c.apply_env(|k| (k == "EDGEMEET_NODE_UDP_MUX_PORT").then(|| "40000".into()))
            .unwrap();
        assert_eq!(c.udp_mux_port, 40000);
        c.apply_env(|k| (k == "EDGEMEET_NODE_UDP_PORTS").then(|| "50000-50010".into()))
            .unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("udp_mux_port"), "{err}");
    }

    #[test]
    fn recording_section_and_env() {
        let key = "ZWRnZW1lZXQtdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE=";
        let c = NodeConfig::from_toml_str(&format!(
            "secret = \"0123456789abcdef\"\n[recording]\nencryption_key = \"{key}\"\n\
             [recording.s3]\nendpoint = \"http://127.0.0.1:9000\"\nbucket = \"b\"\n\
             access_key_id = \"ak\"\nsecret_access_key = \"very-secret\"\n"
        ))
        .unwrap();
        c.validate().unwrap();
        let r = c.recording.as_ref().unwrap();
        assert_eq!((r.part_size_mib, r.s3.prefix.as_str()), (8, "recordings/"));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains(key) && !dbg.contains("very-secret"), "{dbg}");
        // Environment alone enables it; a bad key is refused with the field's name.
        let mut c = NodeConfig {
            secret: "0123456789abcdef".into(),
            ..NodeConfig::default()
        };
        c.apply_env(|k| {
            Some(
                match k {
                    "EDGEMEET_NODE_RECORDING_S3_ENDPOINT" => "http://127.0.0.1:9000",
                    "EDGEMEET_NODE_RECORDING_S3_BUCKET" => "b",
                    "EDGEMEET_NODE_RECORDING_S3_ACCESS_KEY_ID" => "ak",
                    "EDGEMEET_NODE_RECORDING_S3_SECRET_ACCESS_KEY" => "sk",
                    "EDGEMEET_NODE_RECORDING_KEY" => "AAAA",
                    _ => return None,
                }
                .into(),
            )
        })
        .unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("recording.encryption_key"), "{e}");
    }

    #[test]
    fn bad_configs_are_explained() {
        assert!(NodeConfig::from_toml_str("bogus = 1").is_err());
        let err = NodeConfig::default().validate().unwrap_err().to_string();
        assert!(err.contains("secret"), "{err}");
        let mut c = NodeConfig::default();
        let e = c
            .apply_env(|k| (k == "EDGEMEET_NODE_LISTEN").then(|| "nope".into()))
            .unwrap_err();
        assert!(e.to_string().contains("EDGEMEET_NODE_LISTEN"));
    }
}

#[cfg(test)]
mod example {
    #[test]
    fn the_example_config_parses() {
        let text = include_str!("../node.example.toml");
        let mut c = super::NodeConfig::from_toml_str(text).unwrap();
        c.secret = "0123456789abcdef".into();
        c.validate().unwrap();
        assert_eq!(c.udp_port_max, 49999);
    }
}
