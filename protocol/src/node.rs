//! Edge <-> media node: the token the edge signs for a room and participant, and heartbeats.
//! (The media-node HTTP API types live here too; see `docs/media-node-api.md`.)

use serde::{Deserialize, Serialize};

/// Claims of the short-lived HS256 token the edge signs for one participant of one meeting.
/// The node refuses any call whose token does not match the session's room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeTokenClaims {
    /// Always `edgemeet-edge`.
    pub iss: String,
    /// The node id the grant is for.
    pub aud: String,
    /// The meeting id (random per meeting; the node never learns room names).
    pub room: String,
    /// The participant id, or `edge` for calls the edge itself makes (close a participant or a room).
    pub sub: String,
    /// An opaque routing key of the room (a keyed hash, never the name), echoed in node events.
    pub route: String,
    pub iat: u64,
    pub exp: u64,
}

pub const NODE_TOKEN_ISSUER: &str = "edgemeet-edge";

/// What a media node reports about itself to the edge's registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub id: String,
    pub region: String,
    /// Base URL of the node's control API, as browsers reach it.
    pub url: String,
    #[serde(default)]
    pub load: NodeLoad,
    /// A draining node takes no new rooms; its current rooms continue.
    #[serde(default)]
    pub draining: bool,
    /// Where the node is, for distance-based selection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeLoad {
    pub sessions: u32,
    pub tracks: u32,
    pub bitrate_bps: u64,
    /// CPU use, 0.0 to 1.0 per core summed over cores / cores.
    pub cpu: f32,
}

/// Something a node tells the edge about one meeting (`POST /api/nodes/events` on the edge,
/// `Authorization: Bearer <node secret>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeEvent {
    /// The loudest participant of a meeting changed (from RFC 6464 audio levels).
    DominantSpeaker {
        /// The `route` claim of the room's node tokens: lets the edge find the room without its name.
        route: String,
        /// The meeting id (`room` claim); events for an ended meeting are ignored.
        room: String,
        participant: String,
    },
}

/// A batch of events from one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeEvents {
    pub node_id: String,
    pub events: Vec<NodeEvent>,
}
