//! Edge -> browser messages.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{MediaState, TrackInfo};
use crate::{ErrorCode, MediaKind, PROTOCOL_VERSION, ParticipantId};

/// A participant as the others see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub id: ParticipantId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    pub moderator: bool,
    #[serde(default)]
    pub media: MediaState,
    /// When the participant raised their hand (unix ms, the edge's clock): hands are taken in
    /// this order. Absent while the hand is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand: Option<u64>,
    /// The participant's socket dropped: it may come back (resume) within the resume window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub away: bool,
}

/// A fresh resume secret (one use) and how long after the socket drops it is honoured.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeGrant {
    pub secret: crate::client::ResumeSecret,
    pub window_ms: u64,
}

impl std::fmt::Debug for ResumeGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumeGrant")
            .field("window_ms", &self.window_ms)
            .finish_non_exhaustive()
    }
}

/// An ICE server for `RTCPeerConnection` (STUN, or TURN with time-limited credentials).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Where a participant's media goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum MediaMode {
    /// Alone in the room: nothing to connect to.
    None,
    /// Exactly two: one direct connection. The `initiator` sends the first offer. `standby` is the
    /// room's media node, to connect to without sending media, so that a third join is quick.
    P2p {
        peer: ParticipantId,
        initiator: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        standby: Option<NodeGrant>,
    },
    /// Three or more: everyone connects to the room's media node. `node` is absent while none is available.
    Sfu {
        #[serde(default)]
        node: Option<NodeGrant>,
    },
}

/// Permission to use the room's media node: its URL and a short-lived token for this participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeGrant {
    pub node_id: String,
    pub url: String,
    pub token: String,
    /// Unix time (ms) after which the token is refused; ask again with `refresh_node_grant`.
    pub expires_at: u64,
}

/// Why a participant left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    Left,
    Kicked,
    Disconnected,
}

/// Why a room moved to another media node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveReason {
    /// The node stopped sending heartbeats, or a page reported it and the edge's check failed:
    /// media through it is lost; pages reconnect on the new node.
    NodeLost,
    /// The operator drains the node with `migrate`: it still works, so pages open the new
    /// session before they close the old one (no gap).
    Drain,
    /// A livestream or composite recording was started and the room's node had no composer free:
    /// the room moved to a node that has one. The old node still works (no gap, as `drain`).
    Composer,
}

/// Why a participant is held before joining.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// `jwt-host` mode: guests wait until a moderator with a token is present.
    HostAbsent,
    /// The room has a lobby (or, `jwt-host`, you came before the host): a moderator lets you in.
    Lobby,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeakerStat {
    pub id: ParticipantId,
    pub speaking_ms: u64,
}

/// Every message the edge sends. On the wire: `{"v":1,"type":"<snake_case name>", ...fields}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// You are in. Carries everything needed to render the meeting.
    Welcome {
        you: ParticipantId,
        meeting_id: String,
        moderator: bool,
        participants: Vec<Participant>,
        locked: bool,
        media: MediaMode,
        ice_servers: Vec<IceServer>,
        /// Features granted by the invite token (for example `recording`).
        features: Vec<String>,
        /// Tracks already published on the media node by others, by participant.
        tracks: Vec<ParticipantTracks>,
        /// The meeting is being recorded.
        #[serde(default)]
        recording: bool,
        /// The meeting is streamed live.
        #[serde(default)]
        livestream: bool,
        /// How to come back as this participant if the socket drops (`resume`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<ResumeGrant>,
        /// Newcomers knock (the room's lobby is on).
        #[serde(default)]
        lobby: bool,
        /// Most videos this page receives through a media node (the operator's `last_n`):
        /// the featured tile, shared screens and the latest speakers; absent: no cap.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_n: Option<u32>,
    },
    /// You are held until a moderator joins.
    Waiting {
        reason: WaitReason,
    },
    ParticipantJoined {
        participant: Participant,
    },
    ParticipantUpdated {
        participant: Participant,
    },
    ParticipantLeft {
        id: ParticipantId,
        reason: LeaveReason,
    },
    Chat {
        from: ParticipantId,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<ParticipantId>,
        /// Unix time (ms) when the edge received it.
        at: u64,
    },
    /// A moderator asks you to mute; the client obeys.
    Muted {
        kind: MediaKind,
        by: ParticipantId,
    },
    /// A moderator removed you; the socket closes next.
    Kicked {
        by: ParticipantId,
    },
    RoomLocked {
        locked: bool,
        by: ParticipantId,
    },
    /// The livestream started or stopped (`by` is absent when it stopped by itself: failure, E2EE
    /// turned on). Everyone is told: the page shows LIVE.
    Livestream {
        active: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<ParticipantId>,
        /// The stream dropped (the ingest went away) and is being started again.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        restarting: bool,
    },
    /// Recording started or stopped (`by` is absent when it stopped by itself, e.g. on failure).
    Recording {
        active: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<ParticipantId>,
        /// The meeting's composed video stopped and goes on in a further file.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        restarting: bool,
    },
    /// To the recorder only (the moderator whose `start_recording` started it), once the media
    /// node has started the recording: the recording's delivery-status capability. The page reads
    /// `{recording.status_url}{token}` (`GET /api/config`), which says `recording`, `queued`,
    /// `uploading`, `retrying`, `delivered` or `failed`, and when the files are purged, until the
    /// purge. No login: whoever holds the token can read the status (never the files), so it is
    /// never broadcast, logged or stored by the edge.
    RecordingStatusLink {
        /// 32 lowercase hex digits (128 random bits, made by the media node).
        token: String,
    },
    MediaMode {
        media: MediaMode,
    },
    /// P2P payload from the other peer.
    Signal {
        from: ParticipantId,
        payload: Value,
    },
    /// Automatic E2EE: a key blob another participant addressed to you, relayed unread.
    E2eeKey {
        from: ParticipantId,
        blob: crate::e2ee::KeyBlob,
    },
    Tracks(ParticipantTracks),
    DominantSpeaker {
        id: ParticipantId,
    },
    /// To one viewer (SFU): the node stopped (`paused`) or resumed forwarding participant
    /// `id`'s video `track`, because the viewer's downlink does not carry it now.
    VideoPaused {
        id: ParticipantId,
        track: String,
        paused: bool,
    },
    /// To a publisher (SFU): send only these simulcast layers (rids) of your `track`; no viewer
    /// needs the others now (dynacast). Another comes when a viewer needs more.
    SendLayers {
        track: String,
        rids: Vec<String>,
    },
    /// To moderators: someone is guessing the room's password. Figures over the last hour;
    /// `limited` when the room's guessing budget is spent (newcomers may be kept waiting).
    PasswordGuessing {
        wrong_guesses: u32,
        addresses: u32,
        limited: bool,
    },
    SpeakerStats {
        stats: Vec<SpeakerStat>,
    },
    Error {
        code: ErrorCode,
        message: String,
        /// The `type` of the message that was refused, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<String>,
    },
    Pong,
    /// The lobby changed: on or off (to everyone), who knocks (to moderators; empty for others).
    Lobby {
        enabled: bool,
        knocking: Vec<crate::lobby::Knocker>,
    },
    /// To someone knocking: they were turned away; the socket closes next (4003).
    Refused {
        reason: crate::lobby::RefuseReason,
    },
    /// A moderator ended the meeting for everyone; the socket closes next (4002).
    MeetingEnded {
        by: ParticipantId,
    },
    /// The room moved to another media node (its node died, or is being drained): a
    /// `media_mode` with the new node's grant follows. Pages open their session there at once
    /// (the tracks others published on the old node are gone; new `tracks` follow).
    NodeMoved {
        reason: MoveReason,
    },
    /// Someone reacted (to everyone, the sender too); shown for a moment, kept nowhere.
    Reaction {
        from: ParticipantId,
        reaction: crate::reaction::Reaction,
    },
}

/// The tracks one participant has on the media node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantTracks {
    pub participant: ParticipantId,
    pub session_id: String,
    pub tracks: Vec<TrackInfo>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    v: u32,
    #[serde(flatten)]
    msg: &'a ServerMessage,
}

/// Serialize a server message with its version envelope.
pub fn encode_server(msg: &ServerMessage) -> String {
    serde_json::to_string(&Envelope {
        v: PROTOCOL_VERSION,
        msg,
    })
    .unwrap_or_else(|_| {
        r#"{"v":1,"type":"error","code":"internal","message":"encoding failed"}"#.into()
    })
}

/// Parse a server message (test clients and tools); the version must match.
pub fn decode_server(text: &str) -> Result<ServerMessage, crate::ProtocolError> {
    let mut value: Value = serde_json::from_str(text)
        .map_err(|e| crate::ProtocolError::new(ErrorCode::BadJson, e.to_string()))?;
    let v = value.as_object_mut().and_then(|m| m.remove("v"));
    if v.and_then(|v| v.as_u64()) != Some(u64::from(PROTOCOL_VERSION)) {
        return Err(crate::ProtocolError::new(
            ErrorCode::UnsupportedVersion,
            "bad version",
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| crate::ProtocolError::new(ErrorCode::InvalidMessage, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_mode_nests_its_tag() {
        let msg = ServerMessage::MediaMode {
            media: MediaMode::P2p {
                peer: "p1".into(),
                initiator: true,
                standby: None,
            },
        };
        let text = encode_server(&msg);
        assert_eq!(
            text,
            r#"{"v":1,"type":"media_mode","media":{"mode":"p2p","peer":"p1","initiator":true}}"#
        );
        assert_eq!(decode_server(&text).unwrap(), msg);
    }

    #[test]
    fn the_status_link_carries_its_token() {
        let msg = ServerMessage::RecordingStatusLink {
            token: "0123456789abcdef0123456789abcdef".into(),
        };
        let text = encode_server(&msg);
        assert_eq!(
            text,
            r#"{"v":1,"type":"recording_status_link","token":"0123456789abcdef0123456789abcdef"}"#
        );
        assert_eq!(decode_server(&text).unwrap(), msg);
    }

    #[test]
    fn node_moved_says_why() {
        let msg = ServerMessage::NodeMoved {
            reason: MoveReason::NodeLost,
        };
        let text = encode_server(&msg);
        assert_eq!(text, r#"{"v":1,"type":"node_moved","reason":"node_lost"}"#);
        assert_eq!(decode_server(&text).unwrap(), msg);
    }

    #[test]
    fn tracks_flatten() {
        let msg = ServerMessage::Tracks(ParticipantTracks {
            participant: "p".into(),
            session_id: "s".into(),
            tracks: vec![],
        });
        assert_eq!(decode_server(&encode_server(&msg)).unwrap(), msg);
    }
}
