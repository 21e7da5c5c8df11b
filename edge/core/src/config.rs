//! Edge configuration: tenants and their auth, limits, media-node secret. Hosts load it from TOML
//! (native) or JSON vars (Worker) and hand it to the core by reference.

use std::collections::BTreeMap;

use edgemeet_protocol::server::IceServer;
use serde::{Deserialize, Serialize};

/// Who may join a tenant's rooms, and who moderates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    /// Anyone joins; everyone is moderator (soft moderation).
    #[default]
    Open,
    /// A valid invite token is needed; moderators are those the token says.
    Jwt,
    /// Guests (no token) join only while a token-holding moderator is present; they wait otherwise.
    JwtHost,
}

/// Who moderates an `open` tenant's rooms (token rooms follow the token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Moderation {
    /// Everyone moderates (soft moderation).
    #[default]
    Everyone,
    /// The first to arrive moderates and may grant or take back the role; when the last
    /// moderator leaves, the earliest of those still in takes it over.
    First,
}

/// A JWT signing algorithm a tenant accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    HS256,
    RS256,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    #[serde(default)]
    pub auth: AuthMode,
    /// `open` tenants: everyone moderates, or the first to arrive.
    #[serde(default)]
    pub moderation: Moderation,
    /// Accepted `iss` values.
    #[serde(default)]
    pub issuers: Vec<String>,
    /// Required `aud` value.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// Required `sub` value; defaults to the tenant's name.
    #[serde(default)]
    pub subject: Option<String>,
    /// The algorithms this tenant accepts (allow-list).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// HS256 shared secret.
    #[serde(default, skip_serializing)]
    pub hs256_secret: Option<String>,
    /// RS256 public keys (PEM) by `kid`.
    #[serde(default)]
    pub rs256_public_keys: BTreeMap<String, String>,
}

fn default_audience() -> String {
    "edgemeet".into()
}

fn default_algorithms() -> Vec<Algorithm> {
    vec![Algorithm::HS256, Algorithm::RS256]
}

impl Default for TenantConfig {
    fn default() -> Self {
        Self {
            auth: AuthMode::Open,
            moderation: Moderation::Everyone,
            issuers: Vec::new(),
            audience: default_audience(),
            subject: None,
            algorithms: default_algorithms(),
            hs256_secret: None,
            rs256_public_keys: BTreeMap::new(),
        }
    }
}

/// Limits that protect a room and its participants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Participants per room.
    pub room_capacity: usize,
    /// Largest text frame the core answers, in bytes; larger ones get `too_large`.
    pub max_message_bytes: usize,
    /// Largest frame a socket may send at all: above it the socket is closed with 1009.
    pub max_frame_bytes: usize,
    /// Longest chat message, in characters.
    pub max_chat_chars: usize,
    /// Message-rate bucket per connection: burst size and refill per second.
    pub message_burst: u32,
    pub messages_per_second: u32,
    /// Wrong password guesses allowed per connection and per client address (IPv6: per /64) in
    /// `password_window_ms`.
    pub password_attempts: u32,
    pub password_window_ms: u64,
    /// Wrong password guesses a room takes from all addresses together: a budget of
    /// `password_room_burst` refilled at `password_room_guesses_per_hour`.
    pub password_room_guesses_per_hour: u32,
    pub password_room_burst: u32,
    /// The last tokens of that budget serve only addresses that have not guessed wrong in this
    /// meeting: someone else's guessing does not lock out a newcomer with the right password.
    pub password_room_reserve: u32,
    /// Guests held in a jwt-host waiting room.
    pub max_waiting: usize,
    /// A socket that has not sent `join` this long after opening (or after its last refused
    /// join) is closed.
    pub join_timeout_ms: u64,
    /// Open sockets one client address (IPv6: one /64) may hold in one room.
    pub room_sockets_per_address: usize,
    /// A socket not heard from this long (no frame, no ping) is dropped: its participant, if
    /// any, is away and may resume.
    pub idle_timeout_ms: u64,
    /// A participant whose socket dropped may come back (`resume`) this long after it was last
    /// heard from; the others see no leave meanwhile. Then it is a leave.
    pub resume_window_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            room_capacity: 100,
            max_message_bytes: 16 * 1024,
            max_frame_bytes: 1 << 20,
            max_chat_chars: 4000,
            message_burst: 100,
            messages_per_second: 30,
            password_attempts: 5,
            password_window_ms: 60_000,
            password_room_guesses_per_hour: 60,
            password_room_burst: 50,
            password_room_reserve: 10,
            max_waiting: 50,
            join_timeout_ms: 10_000,
            room_sockets_per_address: 64,
            idle_timeout_ms: 15_000,
            resume_window_ms: 30_000,
        }
    }
}

/// Everything the core needs to decide. Secrets are never serialized back out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// The tenant of rooms addressed without one (`/{room}`).
    pub default_tenant: String,
    pub tenants: BTreeMap<String, TenantConfig>,
    pub limits: Limits,
    /// After a room returns to two participants, wait this long before going back to P2P.
    pub p2p_return_delay_ms: u64,
    /// A P2P pair holds a connection to the room's media node (no media on it), so that a third
    /// join is quick. Off: no node session until the room reaches three.
    pub p2p_standby: bool,
    /// Most videos each viewer receives through a media node (`last_n`): the featured tile,
    /// shared screens and the latest speakers get video, the others show their avatar. `None`:
    /// no cap. Told to pages in `welcome`; the page tells its node which tiles it shows.
    pub last_n: Option<u32>,
    /// Shared HS256 secret for media-node tokens and node -> edge calls.
    #[serde(skip_serializing)]
    pub node_secret: Option<String>,
    /// Lifetime of a media-node grant.
    pub node_token_ttl_ms: u64,
    /// A media node not heard from this long (nodes heartbeat every second) is dead: its rooms
    /// move to another node.
    pub node_stale_after_ms: u64,
    /// STUN/TURN servers handed to browsers as they are.
    pub ice_servers: Vec<IceServer>,
    /// A TURN server with a shared secret: each participant gets its own time-limited credentials.
    pub turn: Option<crate::turn::TurnConfig>,
    /// Key for the keyed hashes that replace room names and client addresses in logs and routing.
    #[serde(skip_serializing)]
    pub hash_key: String,
    /// Origins (`https://meet.example.org`) whose pages may open room sockets. Empty: only the
    /// edge's own (the request's `Host`).
    pub allowed_origins: Vec<String>,
    /// Hosts whose avatar URLs are shown to others (`img.example.org`, or `*.example.org` for its
    /// subdomains). Empty: no avatars (the page shows initials), so no participant's browser
    /// fetches from a host another participant chose.
    pub avatar_hosts: Vec<String>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        let mut tenants = BTreeMap::new();
        tenants.insert("default".to_string(), TenantConfig::default());
        Self {
            default_tenant: "default".into(),
            tenants,
            limits: Limits::default(),
            p2p_return_delay_ms: 5_000,
            p2p_standby: true,
            last_n: None,
            node_secret: None,
            node_token_ttl_ms: 10 * 60_000,
            node_stale_after_ms: crate::registry::STALE_AFTER_MS,
            ice_servers: Vec::new(),
            turn: None,
            hash_key: String::new(),
            allowed_origins: Vec::new(),
            avatar_hosts: Vec::new(),
        }
    }
}

/// A configuration mistake, naming the offending key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl EdgeConfig {
    /// The `[edge]` settings that have variables, the same on both hosts (natively the process
    /// environment; on the Worker its wrangler vars and secrets): `EDGEMEET_HASH_KEY`,
    /// `EDGEMEET_NODE_SECRET`.
    pub fn apply_env(&mut self, vars: &edgemeet_config::Vars) {
        vars.set_string("EDGEMEET_HASH_KEY", &mut self.hash_key);
        vars.set_some("EDGEMEET_NODE_SECRET", &mut self.node_secret);
    }

    /// Check what serde cannot: references between settings, key material, sane limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key: String, problem: &str| {
            Err(ConfigError {
                key,
                problem: problem.into(),
            })
        };
        for (name, t) in &self.tenants {
            if !crate::address::is_valid_tenant(name) {
                return err(
                    format!("tenants.{name}"),
                    "tenant names are 1-64 of a-z, 0-9, '-', '_'",
                );
            }
            if t.auth != AuthMode::Open && t.moderation != Moderation::Everyone {
                return err(
                    format!("tenants.{name}.moderation"),
                    "applies to open tenants: in jwt modes the token says who moderates",
                );
            }
            if t.auth != AuthMode::Open {
                if t.algorithms.is_empty() {
                    return err(
                        format!("tenants.{name}.algorithms"),
                        "a jwt tenant needs at least one algorithm",
                    );
                }
                if t.algorithms.contains(&Algorithm::HS256)
                    && t.hs256_secret.is_none()
                    && t.rs256_public_keys.is_empty()
                {
                    return err(
                        format!("tenants.{name}.hs256_secret"),
                        "a jwt tenant needs an HS256 secret or RS256 public keys",
                    );
                }
                if let Some(secret) = &t.hs256_secret
                    && secret.len() < 32
                {
                    return err(
                        format!("tenants.{name}.hs256_secret"),
                        "must be at least 32 bytes",
                    );
                }
                for (kid, pem) in &t.rs256_public_keys {
                    if jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).is_err() {
                        return err(
                            format!("tenants.{name}.rs256_public_keys.{kid}"),
                            "not a PEM RSA public key",
                        );
                    }
                }
                if t.issuers.is_empty() {
                    return err(
                        format!("tenants.{name}.issuers"),
                        "a jwt tenant needs at least one accepted issuer",
                    );
                }
            }
        }
        if !self.tenants.contains_key(&self.default_tenant) {
            return err(
                "default_tenant".into(),
                &format!(
                    "`{}` is not configured: add [edge.tenants.{}] or set default_tenant to one of yours",
                    self.default_tenant, self.default_tenant
                ),
            );
        }
        let l = &self.limits;
        if l.room_capacity < 2 {
            return err("limits.room_capacity".into(), "must be at least 2");
        }
        if l.max_message_bytes < 1024 {
            return err("limits.max_message_bytes".into(), "must be at least 1024");
        }
        if l.max_frame_bytes < l.max_message_bytes {
            return err(
                "limits.max_frame_bytes".into(),
                "must be at least limits.max_message_bytes",
            );
        }
        if l.password_room_burst == 0
            || l.password_room_guesses_per_hour == 0
            || l.password_room_reserve >= l.password_room_burst
        {
            return err(
                "limits.password_room_reserve".into(),
                "the room's guessing budget needs a burst and rate above 0 and a reserve below the burst",
            );
        }
        if l.join_timeout_ms < 1000 || l.room_sockets_per_address == 0 {
            return err(
                "limits.join_timeout_ms".into(),
                "join_timeout_ms is at least 1000 and room_sockets_per_address at least 1",
            );
        }
        if self.last_n == Some(0) {
            return err(
                "last_n".into(),
                "must be at least 1 (leave it out for no cap)",
            );
        }
        if self.node_stale_after_ms < 1500 {
            // Nodes heartbeat every second: less would call a live node dead.
            return err("node_stale_after_ms".into(), "must be at least 1500");
        }
        if l.idle_timeout_ms < 2000 || l.resume_window_ms < l.idle_timeout_ms {
            return err(
                "limits.idle_timeout_ms".into(),
                "idle_timeout_ms is at least 2000 and resume_window_ms at least idle_timeout_ms",
            );
        }
        for origin in &self.allowed_origins {
            if crate::web::origin_authority(origin).is_none() {
                return err(
                    "allowed_origins".into(),
                    &format!("`{origin}` is not an origin like https://meet.example.org"),
                );
            }
        }
        for host in &self.avatar_hosts {
            if !crate::profile::is_host_pattern(host) {
                return err(
                    "avatar_hosts".into(),
                    &format!("`{host}` is not a host name like img.example.org or *.example.org"),
                );
            }
        }
        if l.message_burst == 0 || l.messages_per_second == 0 {
            return err(
                "limits.message_burst".into(),
                "message rate limits must be above 0",
            );
        }
        if let Some(s) = &self.node_secret
            && s.len() < 32
        {
            return err("node_secret".into(), "must be at least 32 bytes");
        }
        if let Some(turn) = &self.turn {
            if turn.secret.len() < 16 {
                return err("turn.secret".into(), "must be at least 16 bytes");
            }
            if turn.urls.is_empty()
                || turn
                    .urls
                    .iter()
                    .any(|u| !(u.starts_with("turn:") || u.starts_with("turns:")))
            {
                return err("turn.urls".into(), "list turn: or turns: URLs");
            }
        }
        if self.hash_key.len() < 16 {
            return err(
                "hash_key".into(),
                "must be at least 16 bytes (hosts generate one when unset)",
            );
        }
        Ok(())
    }

    pub fn tenant(&self, name: &str) -> Option<&TenantConfig> {
        self.tenants.get(name)
    }
}
