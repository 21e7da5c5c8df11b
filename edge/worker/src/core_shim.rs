//! A stand-in for `edgemeet_core` with the API the lead announced, used only until the real core lands
//! on `main`. It keeps just enough room behaviour (join, roster, chat, leave, errors, one timer) to drive
//! the host end to end. Swap it out with `use edgemeet_core as core;` in `lib.rs` and delete this file.

use std::collections::BTreeMap;
use std::sync::Arc;

use edgemeet_protocol::server::{MediaMode, Participant};
use edgemeet_protocol::{
    ClientMessage, ErrorCode, ProtocolError, ServerMessage, encode_server, parse_client,
};
use hmac::{Hmac, Mac};
use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub use edgemeet_protocol::node::{Heartbeat, NodeEvent};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EdgeConfig {
    pub node_secret: String,
    pub log_key: String,
    pub tenants: BTreeMap<String, serde_json::Value>,
    pub max_frame_bytes: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomAddress {
    pub tenant: String,
    pub room: String,
    pub route: String,
}

pub fn route(
    config: &EdgeConfig,
    tenant: Option<&str>,
    raw_room: &str,
) -> Result<RoomAddress, ProtocolError> {
    let tenant = tenant.unwrap_or("default").to_ascii_lowercase();
    if tenant != "default" && !config.tenants.contains_key(&tenant) {
        return Err(ProtocolError::new(
            ErrorCode::UnknownTenant,
            "unknown tenant",
        ));
    }
    let room: String = raw_room.trim().to_lowercase();
    if room.is_empty()
        || room.len() > 128
        || !room
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ProtocolError::new(
            ErrorCode::InvalidRoomName,
            "invalid room name",
        ));
    }
    let mut mac =
        Hmac::<Sha256>::new_from_slice(config.log_key.as_bytes()).expect("any key length");
    mac.update(tenant.as_bytes());
    mac.update(b"/");
    mac.update(room.as_bytes());
    let route = hex::encode(&mac.finalize().into_bytes()[..16]);
    Ok(RoomAddress {
        tenant,
        room,
        route,
    })
}

pub type ConnId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub continent: Option<[u8; 2]>,
    pub country: Option<[u8; 2]>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientInfo {
    pub addr_key: String,
    pub location: Option<Location>,
    pub query_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: String,
    pub region: String,
    pub url: String,
}

pub struct Env<'a> {
    pub config: &'a EdgeConfig,
    pub now_ms: u64,
    pub rng: &'a mut dyn RngCore,
}

#[derive(Debug)]
pub enum Input {
    Open { conn: ConnId, client: ClientInfo },
    Text { conn: ConnId, text: String },
    Binary { conn: ConnId, len: usize },
    Closed { conn: ConnId },
    Alarm,
    NodeAssigned(Option<NodeInfo>),
    NodeEvent(NodeEvent),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send {
        conn: ConnId,
        text: Arc<str>,
    },
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
    },
    SetAlarm {
        at_ms: u64,
    },
    ClearAlarm,
    RequestNode {
        location: Option<Location>,
    },
    Ended,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Member {
    id: String,
    name: Option<String>,
    joined: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Room {
    address: RoomAddress,
    meeting_id: String,
    members: BTreeMap<ConnId, Member>,
}

const MAX_FRAME: usize = 64 * 1024;

fn send(conn: ConnId, msg: &ServerMessage) -> Effect {
    Effect::Send {
        conn,
        text: encode_server(msg).into(),
    }
}

fn error(conn: ConnId, e: ProtocolError, request: Option<String>) -> Effect {
    send(
        conn,
        &ServerMessage::Error {
            code: e.code,
            message: e.message,
            request,
        },
    )
}

impl Room {
    pub fn new(address: RoomAddress) -> Room {
        Room {
            address,
            meeting_id: String::new(),
            members: BTreeMap::new(),
        }
    }

    pub fn is_ended(&self) -> bool {
        self.members.is_empty()
    }

    fn participant(m: &Member) -> Participant {
        Participant {
            id: m.id.clone(),
            name: m.name.clone(),
            email: None,
            avatar: None,
            moderator: true,
            media: Default::default(),
        }
    }

    pub fn handle(&mut self, env: &mut Env, input: Input) -> Vec<Effect> {
        let mut out = Vec::new();
        match input {
            Input::Open { conn, .. } => {
                if self.meeting_id.is_empty() {
                    self.meeting_id = format!("{:016x}", env.rng.next_u64());
                }
                let id = format!("{:08x}", env.rng.next_u32());
                self.members.insert(
                    conn,
                    Member {
                        id,
                        name: None,
                        joined: false,
                    },
                );
            }
            Input::Text { conn, text } => {
                if !self.members.contains_key(&conn) {
                    return out;
                }
                let max = env.config.max_frame_bytes.unwrap_or(MAX_FRAME);
                if text.len() > max {
                    out.push(error(
                        conn,
                        ProtocolError::new(ErrorCode::TooLarge, "frame too large"),
                        None,
                    ));
                    return out;
                }
                match parse_client(&text) {
                    Err(e) => out.push(error(conn, e, None)),
                    Ok(ClientMessage::Ping) => out.push(send(conn, &ServerMessage::Pong)),
                    Ok(ClientMessage::Join(join)) => {
                        let member = self.members.get_mut(&conn).expect("checked");
                        if member.joined {
                            out.push(error(
                                conn,
                                ProtocolError::new(ErrorCode::AlreadyJoined, "already joined"),
                                Some("join".into()),
                            ));
                            return out;
                        }
                        member.joined = true;
                        member.name = join.profile.name;
                        let me = Self::participant(member);
                        let participants: Vec<_> = self
                            .members
                            .values()
                            .filter(|m| m.joined)
                            .map(Self::participant)
                            .collect();
                        out.push(send(
                            conn,
                            &ServerMessage::Welcome {
                                you: me.id.clone(),
                                meeting_id: self.meeting_id.clone(),
                                moderator: true,
                                participants,
                                locked: false,
                                media: MediaMode::None,
                                ice_servers: vec![],
                                features: vec![],
                                tracks: vec![],
                            },
                        ));
                        let joined =
                            encode_server(&ServerMessage::ParticipantJoined { participant: me });
                        let text: Arc<str> = joined.into();
                        for (&c, m) in &self.members {
                            if c != conn && m.joined {
                                out.push(Effect::Send {
                                    conn: c,
                                    text: text.clone(),
                                });
                            }
                        }
                        let joined_count = self.members.values().filter(|m| m.joined).count();
                        if joined_count == 3 {
                            out.push(Effect::RequestNode { location: None });
                        }
                        out.push(Effect::SetAlarm {
                            at_ms: env.now_ms + 3_600_000,
                        });
                    }
                    Ok(ClientMessage::Chat { text, to }) => {
                        let from = self.members[&conn].id.clone();
                        let msg: Arc<str> = encode_server(&ServerMessage::Chat {
                            from,
                            text,
                            to: to.clone(),
                            at: env.now_ms,
                        })
                        .into();
                        for (&c, m) in &self.members {
                            if m.joined && to.as_ref().is_none_or(|t| *t == m.id) {
                                out.push(Effect::Send {
                                    conn: c,
                                    text: msg.clone(),
                                });
                            }
                        }
                    }
                    Ok(other) => out.push(error(
                        conn,
                        ProtocolError::new(
                            ErrorCode::InvalidMessage,
                            "not supported by the stand-in core",
                        ),
                        Some(other.type_name().into()),
                    )),
                }
            }
            Input::Binary { conn, .. } => {
                out.push(error(
                    conn,
                    ProtocolError::new(ErrorCode::BinaryNotSupported, "text frames only"),
                    None,
                ));
            }
            Input::Closed { conn } => {
                if let Some(m) = self.members.remove(&conn) {
                    let left: Arc<str> = encode_server(&ServerMessage::ParticipantLeft {
                        id: m.id,
                        reason: edgemeet_protocol::server::LeaveReason::Disconnected,
                    })
                    .into();
                    for (&c, m) in &self.members {
                        if m.joined {
                            out.push(Effect::Send {
                                conn: c,
                                text: left.clone(),
                            });
                        }
                    }
                }
                if self.members.is_empty() {
                    self.meeting_id.clear();
                    out.push(Effect::ClearAlarm);
                    out.push(Effect::Ended);
                }
            }
            Input::Alarm => {}
            Input::NodeAssigned(node) => {
                let text: Arc<str> = encode_server(&ServerMessage::MediaMode {
                    media: MediaMode::Sfu {
                        node: node.map(|n| edgemeet_protocol::server::NodeGrant {
                            node_id: n.id,
                            url: n.url,
                            token: String::new(),
                            expires_at: 0,
                        }),
                    },
                })
                .into();
                for (&c, m) in &self.members {
                    if m.joined {
                        out.push(Effect::Send {
                            conn: c,
                            text: text.clone(),
                        });
                    }
                }
            }
            Input::NodeEvent(NodeEvent::DominantSpeaker {
                participant, room, ..
            }) => {
                if room == self.meeting_id {
                    let text: Arc<str> =
                        encode_server(&ServerMessage::DominantSpeaker { id: participant }).into();
                    for (&c, m) in &self.members {
                        if m.joined {
                            out.push(Effect::Send {
                                conn: c,
                                text: text.clone(),
                            });
                        }
                    }
                }
            }
        }
        out
    }
}

pub mod names {
    use rand_core::RngCore;
    use serde::Serialize;

    const WORDS: &[&str] = &[
        "amber", "brisk", "cedar", "dune", "ember", "fjord", "glade", "harbor", "iris", "juniper",
        "kelp", "lumen", "maple", "nectar", "opal", "pine", "quartz", "river", "sage", "tundra",
        "umber", "violet", "willow", "yarrow",
    ];

    pub fn generate(rng: &mut dyn RngCore) -> String {
        let mut parts = Vec::new();
        for _ in 0..9 {
            parts.push(WORDS[(rng.next_u32() as usize) % WORDS.len()]);
        }
        parts.concat()
    }

    #[derive(Debug, Clone, Serialize)]
    pub struct NameCheck {
        pub guesses_log10: f64,
        pub weak: bool,
    }

    pub fn check(name: &str) -> NameCheck {
        let g = name.len() as f64 * 1.2;
        NameCheck {
            guesses_log10: g,
            weak: g < 12.0,
        }
    }
}

pub mod registry {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::{Heartbeat, Location, NodeInfo};

    pub const STALE_MS: u64 = 15_000;

    #[derive(Debug, Clone, Default, Serialize, Deserialize)]
    pub struct Registry {
        nodes: BTreeMap<String, (Heartbeat, u64)>,
    }

    fn continent_of(region: &str) -> &str {
        region.split('-').next().unwrap_or("")
    }

    impl Registry {
        pub fn heartbeat(&mut self, hb: Heartbeat, now_ms: u64) {
            self.nodes.insert(hb.id.clone(), (hb, now_ms));
        }

        pub fn select(&self, location: Option<&Location>, now_ms: u64) -> Option<NodeInfo> {
            let want = location
                .and_then(|l| l.continent)
                .map(|c| String::from_utf8_lossy(&c).to_ascii_lowercase());
            self.nodes
                .values()
                .filter(|(hb, seen)| now_ms.saturating_sub(*seen) <= STALE_MS && !hb.draining)
                .min_by(|(a, _), (b, _)| {
                    let ka = (want.as_deref() != Some(continent_of(&a.region)), a.load.cpu);
                    let kb = (want.as_deref() != Some(continent_of(&b.region)), b.load.cpu);
                    ka.partial_cmp(&kb).unwrap_or(std::cmp::Ordering::Equal)
                })
                .map(|(hb, _)| NodeInfo {
                    id: hb.id.clone(),
                    region: hb.region.clone(),
                    url: hb.url.clone(),
                })
        }
    }
}
