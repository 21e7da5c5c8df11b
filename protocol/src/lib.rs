//! Every wire type of edgemeet.
//!
//! - [`client`]: what a browser sends to the edge over the room WebSocket.
//! - [`server`]: what the edge sends back.
//! - [`e2ee`]: the opaque key blobs pages send each other in automatic end-to-end encryption.
//! - [`error`]: the error codes both carry.
//! - [`invite`]: the claims of a Jitsi-format invite token (JWT).
//! - [`node`]: the edge <-> media-node API (tokens, heartbeats, calls).
//! - [`job`]: the recording manifest a media node leaves for the uploader.
//! - [`lobby`]: who knocks at a room with a lobby, and why someone was turned away.
//! - [`reaction`]: the short-lived reactions participants send.
//!
//! Browser <-> edge messages are JSON objects with an explicit `type` tag and the protocol version `v`.
//! See `docs/protocol.md` for every message with an example.

pub mod client;
pub mod e2ee;
pub mod error;
pub mod invite;
pub mod job;
pub mod lobby;
pub mod node;
pub mod reaction;
pub mod server;

pub use client::{ClientMessage, RecordingFiles, parse_client};
pub use error::{ErrorCode, ProtocolError};
pub use server::{ServerMessage, encode_server};

/// The version of the browser <-> edge protocol. A message carrying another `v` is refused.
pub const PROTOCOL_VERSION: u32 = 1;

/// A participant's id inside one meeting: random, short, never reused across meetings.
pub type ParticipantId = String;

/// Which kind of media a moderation action or a track is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Audio,
    Video,
}
