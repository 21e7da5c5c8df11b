//! The room harness shared by the core's tests: a room driven with an injected clock and a seeded
//! RNG, the effects sorted into inboxes, closes and the rest.

#![allow(dead_code)]

use std::collections::BTreeMap;

use edgemeet_core::config::{AuthMode, Limits};
use edgemeet_core::{
    ClientInfo, ConnId, EdgeConfig, Effect, Env, Input, NodeInfo, Room, TenantConfig, route,
};
use edgemeet_protocol::server::decode_server;
use edgemeet_protocol::{ErrorCode, ServerMessage};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

pub const HS_SECRET: &str = "host-tenant-secret-0123456789abcdef0123";

pub struct Harness {
    pub room: Room,
    pub config: EdgeConfig,
    pub now: u64,
    pub rng: ChaCha20Rng,
    pub inbox: BTreeMap<ConnId, Vec<ServerMessage>>,
    pub closed: BTreeMap<ConnId, (u16, String)>,
    pub other: Vec<Effect>,
}

impl Harness {
    pub fn new(tenant: Option<&str>) -> Self {
        let mut config = EdgeConfig {
            hash_key: "0123456789abcdef".into(),
            ..Default::default()
        };
        config.node_secret = Some("node-secret-0123456789abcdef0123456789".into());
        config.limits = Limits {
            password_attempts: 3,
            ..Limits::default()
        };
        config.tenants.insert(
            "host".into(),
            TenantConfig {
                auth: AuthMode::JwtHost,
                issuers: vec!["test".into()],
                hs256_secret: Some(HS_SECRET.into()),
                ..Default::default()
            },
        );
        config.tenants.insert(
            "acme".into(),
            TenantConfig {
                auth: AuthMode::Jwt,
                issuers: vec!["test".into()],
                hs256_secret: Some(HS_SECRET.into()),
                ..Default::default()
            },
        );
        // An open tenant where the first to arrive moderates (tests/lobby.rs).
        config.tenants.insert(
            "first".into(),
            TenantConfig {
                moderation: edgemeet_core::Moderation::First,
                ..Default::default()
            },
        );
        config.validate().unwrap();
        let address = route(&config, tenant, "Weekly-Sync").unwrap();
        Self {
            room: Room::new(address),
            config,
            now: 1_700_000_000_000,
            rng: ChaCha20Rng::seed_from_u64(42),
            inbox: BTreeMap::new(),
            closed: BTreeMap::new(),
            other: Vec::new(),
        }
    }

    /// An HS256 invite for `tenant` (any room) with `user` as `context.user`; `extra` claims
    /// override the defaults.
    pub fn token(&self, tenant: &str, user: Value, extra: Value) -> String {
        let now_s = self.now / 1000;
        let mut claims = json!({"iss": "test", "aud": "edgemeet", "sub": tenant, "room": "*",
            "exp": now_s + 600, "context": {"user": user}});
        if let Value::Object(m) = extra {
            claims.as_object_mut().unwrap().extend(m);
        }
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(HS_SECRET.as_bytes()),
        )
        .unwrap()
    }

    /// The shell's answer to `RequestNode`: node "n1".
    pub fn assign_node(&mut self) {
        let node = NodeInfo {
            id: "n1".into(),
            url: "http://127.0.0.1:9".into(),
            region: "eu".into(),
        };
        self.input(Input::NodeAssigned(Some(node)));
    }

    pub fn input(&mut self, input: Input) {
        let mut env = Env {
            config: &self.config,
            now_ms: self.now,
            rng: &mut self.rng,
        };
        for effect in self.room.handle(&mut env, input) {
            match effect {
                Effect::Send { conn, text } => self
                    .inbox
                    .entry(conn)
                    .or_default()
                    .push(decode_server(&text).unwrap()),
                Effect::Close { conn, code, reason } => {
                    self.closed.insert(conn, (code, reason));
                }
                other => self.other.push(other),
            }
        }
    }

    pub fn open(&mut self, conn: ConnId) {
        self.open_from(conn, &format!("addr{}", conn % 2));
    }

    /// Open a socket from a client address of our choosing (as its keyed hash, as hosts give it).
    pub fn open_from(&mut self, conn: ConnId, addr: &str) {
        let client = ClientInfo {
            addr_key: edgemeet_core::keyed_hash("test-addresses", addr),
            ..Default::default()
        };
        self.input(Input::Open { conn, client });
    }

    /// Send `join` with extra fields and return the first answer, if any.
    pub fn try_join(&mut self, conn: ConnId, extra: Value) -> Option<ServerMessage> {
        let mut msg = json!({"type": "join"});
        if let Value::Object(m) = extra {
            msg.as_object_mut().unwrap().extend(m);
        }
        self.send(conn, msg);
        self.take(conn).into_iter().next()
    }

    pub fn send(&mut self, conn: ConnId, mut msg: Value) {
        msg["v"] = json!(1);
        self.input(Input::Text {
            conn,
            text: msg.to_string(),
        });
    }

    pub fn join(&mut self, conn: ConnId, extra: Value) -> ServerMessage {
        self.open(conn);
        let mut msg = json!({"type": "join"});
        if let Value::Object(m) = extra {
            msg.as_object_mut().unwrap().extend(m);
        }
        self.send(conn, msg);
        self.take(conn)
            .into_iter()
            .next()
            .expect("an answer to join")
    }

    pub fn take(&mut self, conn: ConnId) -> Vec<ServerMessage> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    pub fn error_code(&mut self, conn: ConnId) -> ErrorCode {
        match self.take(conn).pop() {
            Some(ServerMessage::Error { code, .. }) => code,
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

pub fn welcome_id(msg: &ServerMessage) -> (String, String) {
    match msg {
        ServerMessage::Welcome {
            you, meeting_id, ..
        } => (you.clone(), meeting_id.clone()),
        other => panic!("expected welcome, got {other:?}"),
    }
}
