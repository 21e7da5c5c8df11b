//! Node configuration: a TOML file, then `EDGEMEET_NODE_*` environment variables on top.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use edgemeet_config::Vars;
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
    /// UDP port range for media, inclusive; each media loop takes the first free one (every
    /// session of the loop shares it). `0..=0` = ephemeral.
    pub udp_port_min: u16,
    pub udp_port_max: u16,
    /// The first media loop's UDP port (loop `i` takes `udp_mux_port + i`), shared by every
    /// session of the loop; 0 = off (the range above applies).
    pub udp_mux_port: u16,
    /// Media loops: threads, each with its own UDP socket and the rooms pinned to it (a room's
    /// sessions are all on one loop). 0 = one per available core.
    pub media_loops: usize,
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
    /// Compositions (livestreams, composite recordings) this node runs at once; 0 = one per
    /// available core (one 720p30 composition costs about half a core: `docs/performance.md`).
    pub max_compositions: usize,
    /// Seconds between heartbeats.
    pub heartbeat_secs: u64,
    /// Threads of the standalone node's async runtime: 0 = one per core, 1 = a single-threaded
    /// runtime (no cross-thread wake-ups: less CPU per packet, one core at most). Ignored when
    /// the node is embedded (the host owns the runtime).
    pub worker_threads: usize,
    /// Removed (the media loop has one send path): accepted and ignored, with a warning at
    /// start, so that an older configuration still starts.
    pub direct_send: Option<bool>,
    /// Removed (the media loop is the node's only data path): accepted and ignored, with a
    /// warning at start.
    pub engine: Option<bool>,
    /// Recording to S3-compatible storage (`[recording]`); none = recording disabled.
    pub recording: Option<RecordingConfig>,
}

impl NodeConfig {
    /// `max_compositions`, 0 resolved to the cores this process may use.
    pub fn compositions_allowed(&self) -> usize {
        match self.max_compositions {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
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
            media_loops: 0,
            public_ip: None,
            edge_url: None,
            secret: String::new(),
            lat: None,
            lon: None,
            idle_timeout_secs: 30,
            draining: false,
            max_sessions_per_room: 256,
            max_compositions: 0,
            heartbeat_secs: 1,
            worker_threads: 0,
            direct_send: None,
            engine: None,
            recording: None,
        }
    }
}

/// Why a configuration was refused (the same type for every edgemeet program).
pub use edgemeet_config::ConfigError;

impl NodeConfig {
    /// Reads the TOML file (if any), then applies environment variables, then validates.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut cfg: Self = edgemeet_config::file::read_or_default(path)?;
        cfg.apply_env(|k| std::env::var(k).ok())?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        edgemeet_config::file::read(path)
    }

    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        edgemeet_config::file::parse(text)
    }

    /// Applies `EDGEMEET_NODE_{ID,REGION,LISTEN,PUBLIC_URL,MEDIA_IP,UDP_PORTS,UDP_MUX_PORT,MEDIA_LOOPS,PUBLIC_IP,EDGE_URL,
    /// SECRET,LAT,LON,IDLE_TIMEOUT_SECS,WORKER_THREADS,DRAINING,MAX_SESSIONS_PER_ROOM}`. `UDP_PORTS` is `N` or `MIN-MAX`;
    /// `DRAINING` is a switch (`on`/`off`). The removed `DIRECT_SEND` and `ENGINE` are noted
    /// (a warning at start) and ignored.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let vars = Vars::new(get);
        vars.set_string("EDGEMEET_NODE_ID", &mut self.id);
        vars.set_string("EDGEMEET_NODE_REGION", &mut self.region);
        vars.set_parsed("EDGEMEET_NODE_LISTEN", &mut self.listen)?;
        vars.set_some("EDGEMEET_NODE_PUBLIC_URL", &mut self.public_url);
        vars.set_parsed("EDGEMEET_NODE_MEDIA_IP", &mut self.media_ip)?;
        if let Some(v) = vars.get("EDGEMEET_NODE_UDP_PORTS") {
            let one = |text: &str| {
                text.trim().parse::<u16>().map_err(|e| ConfigError::Env {
                    var: "EDGEMEET_NODE_UDP_PORTS".into(),
                    reason: format!("`{v}` is not `N` or `MIN-MAX`: {e}"),
                })
            };
            let (lo, hi) = match v.split_once('-') {
                Some((a, b)) => (one(a)?, one(b)?),
                None => (one(&v)?, one(&v)?),
            };
            self.udp_port_min = lo;
            self.udp_port_max = hi;
        }
        vars.set_parsed("EDGEMEET_NODE_UDP_MUX_PORT", &mut self.udp_mux_port)?;
        vars.set_parsed("EDGEMEET_NODE_MEDIA_LOOPS", &mut self.media_loops)?;
        if let Some(ip) = vars.parse("EDGEMEET_NODE_PUBLIC_IP")? {
            self.public_ip = Some(ip);
        }
        vars.set_some("EDGEMEET_NODE_EDGE_URL", &mut self.edge_url);
        vars.set_string("EDGEMEET_NODE_SECRET", &mut self.secret);
        if let Some(v) = vars.parse("EDGEMEET_NODE_LAT")? {
            self.lat = Some(v);
        }
        if let Some(v) = vars.parse("EDGEMEET_NODE_LON")? {
            self.lon = Some(v);
        }
        vars.set_parsed(
            "EDGEMEET_NODE_IDLE_TIMEOUT_SECS",
            &mut self.idle_timeout_secs,
        )?;
        vars.set_parsed("EDGEMEET_NODE_WORKER_THREADS", &mut self.worker_threads)?;
        vars.set_parsed(
            "EDGEMEET_NODE_MAX_SESSIONS_PER_ROOM",
            &mut self.max_sessions_per_room,
        )?;
        vars.set_parsed("EDGEMEET_NODE_MAX_COMPOSITIONS", &mut self.max_compositions)?;
        vars.set_switch("EDGEMEET_NODE_DRAINING", &mut self.draining)?;
        for (name, target) in [
            ("EDGEMEET_NODE_DIRECT_SEND", &mut self.direct_send),
            ("EDGEMEET_NODE_ENGINE", &mut self.engine),
        ] {
            // Removed settings: any value is accepted (nothing reads it).
            if vars.get(name).is_some() {
                *target = Some(vars.switch(name).ok().flatten().unwrap_or(true));
            }
        }
        self.apply_recording_env(&vars);
        Ok(())
    }

    /// `EDGEMEET_NODE_RECORDING_{KEY,S3_ENDPOINT,S3_REGION,S3_BUCKET,S3_ACCESS_KEY_ID,
    /// S3_SECRET_ACCESS_KEY,S3_PREFIX}`; the endpoint alone enables recording without a file.
    fn apply_recording_env(&mut self, vars: &Vars) {
        if self.recording.is_none()
            && let Some(ep) = vars.get("EDGEMEET_NODE_RECORDING_S3_ENDPOINT")
        {
            self.recording = Some(RecordingConfig::new(
                edgemeet_uploader::S3Config::new(ep, "", "", ""),
                "",
            ));
        }
        let Some(r) = self.recording.as_mut() else {
            return;
        };
        let fields: [(&str, &mut String); 7] = [
            ("EDGEMEET_NODE_RECORDING_KEY", &mut r.encryption_key),
            ("EDGEMEET_NODE_RECORDING_S3_ENDPOINT", &mut r.s3.endpoint),
            ("EDGEMEET_NODE_RECORDING_S3_REGION", &mut r.s3.region),
            ("EDGEMEET_NODE_RECORDING_S3_BUCKET", &mut r.s3.bucket),
            (
                "EDGEMEET_NODE_RECORDING_S3_ACCESS_KEY_ID",
                &mut r.s3.access_key_id,
            ),
            (
                "EDGEMEET_NODE_RECORDING_S3_SECRET_ACCESS_KEY",
                &mut r.s3.secret_access_key,
            ),
            ("EDGEMEET_NODE_RECORDING_S3_PREFIX", &mut r.s3.prefix),
        ];
        for (name, field) in fields {
            vars.set_string(name, field);
        }
    }

    /// Logs each removed setting the configuration still names (they change nothing).
    pub fn warn_removed_settings(&self) {
        if self.direct_send.is_some() {
            tracing::warn!(
                "`direct_send` (EDGEMEET_NODE_DIRECT_SEND) is no longer a setting and is ignored: the media loop has one send path"
            );
        }
        if self.engine.is_some() {
            tracing::warn!(
                "`engine` (EDGEMEET_NODE_ENGINE) is no longer a setting and is ignored: the media loop is the only data path"
            );
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: &str| Err(ConfigError::invalid(key, reason));
        if self.id.is_empty() {
            return bad("id", "must not be empty");
        }
        edgemeet_protocol::node::check_region(&self.region)
            .map_err(|e| ConfigError::invalid("region", e))?;
        if self.secret.len() < 16 {
            return bad(
                "secret",
                "must be at least 16 bytes (set EDGEMEET_NODE_SECRET)",
            );
        }
        if self.max_sessions_per_room == 0 {
            return bad("max_sessions_per_room", "must be at least 1");
        }
        if self.udp_port_min > self.udp_port_max {
            return bad("udp_port_min", "is above udp_port_max");
        }
        if (self.udp_port_min == 0) != (self.udp_port_max == 0) {
            return bad(
                "udp_port_min",
                "a UDP port range needs both ends non-zero (or both 0 for ephemeral)",
            );
        }
        if self.udp_mux_port != 0 && self.udp_port_min != 0 {
            return bad(
                "udp_mux_port",
                "one port for all excludes a range (udp_port_min/max)",
            );
        }
        if self.media_ip.is_unspecified() {
            return bad(
                "media_ip",
                "must be a concrete local address, not 0.0.0.0/::",
            );
        }
        if let Some(url) = &self.edge_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return bad("edge_url", "must start with http:// or https://");
        }
        if self.lat.is_some_and(|v| !(-90.0..=90.0).contains(&v))
            || self.lon.is_some_and(|v| !(-180.0..=180.0).contains(&v))
        {
            return bad("lat/lon", "out of range");
        }
        if self.heartbeat_secs == 0 {
            return bad("heartbeat_secs", "must be positive");
        }
        if self.idle_timeout_secs == 0 {
            return bad("idle_timeout_secs", "must be positive");
        }
        if let Some(r) = &self.recording {
            r.validate()?;
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

    /// How many media loops to start: `media_loops`, else one per available core.
    pub fn media_loops(&self) -> usize {
        match self.media_loops {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
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
        assert!(c.media_loops() >= 1, "one per core by default");
        c.apply_env(|k| (k == "EDGEMEET_NODE_MEDIA_LOOPS").then(|| "3".into()))
            .unwrap();
        assert_eq!((c.media_loops, c.media_loops()), (3, 3));
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
    fn switches_and_empty_variables() {
        let mut c = NodeConfig::default();
        c.apply_env(|k| match k {
            "EDGEMEET_NODE_DRAINING" => Some("on".into()),
            "EDGEMEET_NODE_ID" => Some(String::new()),
            _ => None,
        })
        .unwrap();
        assert!(c.draining);
        assert_eq!(c.id, "node-local", "an empty variable is unset");
        let e = c
            .apply_env(|k| (k == "EDGEMEET_NODE_DRAINING").then(|| "sometimes".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("EDGEMEET_NODE_DRAINING"), "{e}");
        let e = c
            .apply_env(|k| (k == "EDGEMEET_NODE_UDP_PORTS").then(|| "40000-".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("EDGEMEET_NODE_UDP_PORTS"), "{e}");
    }

    /// An operator's older configuration still starts: the removed `direct_send` and `engine`
    /// (file or environment, any value) are accepted and noted, never an error.
    #[test]
    fn removed_settings_are_accepted_and_ignored() {
        let mut c = NodeConfig::from_toml_str("direct_send = false\nengine = true\n").unwrap();
        assert_eq!((c.direct_send, c.engine), (Some(false), Some(true)));
        c.secret = "0123456789abcdef".into();
        c.validate().unwrap();
        let mut c = NodeConfig::default();
        c.apply_env(|k| match k {
            "EDGEMEET_NODE_DIRECT_SEND" => Some("off".into()),
            "EDGEMEET_NODE_ENGINE" => Some("sometimes".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!((c.direct_send, c.engine), (Some(false), Some(true)));
        assert_eq!(NodeConfig::default().direct_send, None);
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
