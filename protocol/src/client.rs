//! Browser -> edge messages.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ErrorCode, MediaKind, PROTOCOL_VERSION, ParticipantId, ProtocolError};

/// What a participant may tell about themselves. Every field is optional; the edge validates them
/// (lengths, `https:` avatar URLs) and shares them only with the room's participants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
}

/// The first message on a room socket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    /// A Jitsi-format invite (JWT). May instead come as `?jwt=` on the socket URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The room password, when the room is locked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default)]
    pub profile: Profile,
}

/// A track a participant published on the room's media node, announced so others can pull it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// The track's name on the node (unique within the session).
    pub name: String,
    pub kind: MediaKind,
    /// `camera`, `microphone` or `screen`.
    #[serde(default = "default_source")]
    pub source: String,
}

fn default_source() -> String {
    "camera".into()
}

/// What the participant currently sends, so others can show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaState {
    #[serde(default)]
    pub audio: bool,
    #[serde(default)]
    pub video: bool,
    #[serde(default)]
    pub screen: bool,
    #[serde(default)]
    pub e2ee: bool,
}

/// What a recording delivers: a file per person, one composed video of the meeting (the
/// livestream's layout), or both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingFiles {
    #[default]
    PerPerson,
    Composite,
    Both,
}

impl RecordingFiles {
    /// `composite`: the older flag (true meant both).
    pub fn resolve(files: Option<Self>, composite: bool) -> Self {
        match (files, composite) {
            (Some(f), _) => f,
            (None, true) => Self::Both,
            (None, false) => Self::PerPerson,
        }
    }

    pub fn composite(self) -> bool {
        self != Self::PerPerson
    }

    pub fn per_person(self) -> bool {
        self != Self::Composite
    }
}

/// The recorder's Dropbox authorization (OAuth 2 with PKCE, `token_access_type=offline`), handed to
/// the media node, which seals it into the recording's manifest at once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropboxGrant {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The Dropbox app key the tokens were issued to (needed to refresh them).
    pub app_key: String,
}

/// Never print the tokens, even in debug output.
impl std::fmt::Debug for DropboxGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DropboxGrant")
            .field("app_key", &self.app_key)
            .finish_non_exhaustive()
    }
}

/// An RTMP stream key: a credential. Its `Debug` prints a placeholder, so no `{:?}` of a message
/// can log it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamKey(pub String);

impl std::fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Every message a browser may send. On the wire: `{"v":1,"type":"<snake_case name>", ...fields}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Join(Join),
    Leave,
    /// Chat to everyone, or privately to `to`.
    Chat {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<ParticipantId>,
    },
    UpdateProfile {
        profile: Profile,
    },
    MediaState(MediaState),
    /// Moderator: ask a participant to mute their audio or video.
    Mute {
        target: ParticipantId,
        kind: MediaKind,
    },
    /// Moderator: ask everyone else to mute.
    MuteAll {
        kind: MediaKind,
    },
    /// Moderator: remove a participant.
    Kick {
        target: ParticipantId,
    },
    /// Moderator: lock the room with a password, or unlock it with `null`.
    SetPassword {
        password: Option<String>,
    },
    /// P2P: an opaque SDP or ICE payload for the other peer.
    Signal {
        to: ParticipantId,
        payload: Value,
    },
    /// Automatic E2EE: a public key or a sealed media key for one other participant
    /// (`docs/e2ee.md`); the edge relays it unread.
    E2eeKey {
        to: ParticipantId,
        blob: crate::e2ee::KeyBlob,
    },
    /// SFU: the tracks this participant published in its node session.
    Tracks {
        session_id: String,
        tracks: Vec<TrackInfo>,
    },
    /// SFU: ask for a fresh media-node grant (the old token is about to expire).
    RefreshNodeGrant,
    /// Moderator: record the meeting. `dropbox` is the caller's Dropbox grant (connected in the
    /// browser first); it may be left out only where the server's destination is a local folder
    /// (the all-in-one; `GET /api/config` says which).
    StartRecording {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dropbox: Option<DropboxGrant>,
        /// Also one composed video of the whole meeting (the livestream's layout: the speaker
        /// large, names on the tiles), delivered with the per-person files. Older pages' form
        /// of `files: both`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        composite: bool,
        /// Which files: one per person (the default), one composed video, or both.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        files: Option<RecordingFiles>,
    },
    /// Moderator: stop the recording; it is uploaded, then deleted from our storage.
    StopRecording,
    /// Moderator (in jwt modes: token feature `livestreaming`): stream the meeting, composed into
    /// one picture and sound, to an RTMP ingest (`rtmp://host[:port]/app`, YouTube, Twitch, any
    /// RTMP server) with its stream key. The key goes to the room's media node and nowhere else.
    StartLivestream {
        url: String,
        stream_key: StreamKey,
    },
    /// Moderator: end the livestream.
    StopLivestream,
    SpeakerStats,
    Ping,
    /// Moderator: how the meeting's composed video (livestream, composite recording) is laid
    /// out: everyone the same size in a grid (`true`), or the speaker large (the default).
    SetCompositionLayout {
        grid: bool,
    },
    /// Moderator: newcomers knock and wait to be let in (`true`), or come straight in.
    SetLobby {
        enabled: bool,
    },
    /// Moderator: let in one person knocking (`target` is their knock id), or everyone knocking.
    Admit {
        target: String,
    },
    AdmitAll,
    /// Moderator: turn away one person knocking, or everyone knocking.
    Refuse {
        target: String,
    },
    RefuseAll,
    /// Moderator, where roles are not fixed: grant or take back a participant's moderator role.
    SetModerator {
        target: ParticipantId,
        moderator: bool,
    },
    /// Moderator: end the meeting for everyone.
    EndMeeting,
    /// Raise (`true`) or lower your hand; everyone sees it, in the order hands went up.
    RaiseHand {
        raised: bool,
    },
    /// A reaction for everyone to see for a moment; the edge keeps nothing of it.
    React {
        reaction: crate::reaction::Reaction,
    },
    /// Come back as the participant `id` on a new socket after the old one dropped, with the
    /// resume secret the last `welcome` gave (held in page memory only).
    Resume {
        id: ParticipantId,
        secret: ResumeSecret,
    },
    /// SFU: this page's connection to the room's media node `node_id` failed (no packets for a
    /// while, or ICE failed). The edge checks the node itself; if it is dead, the room moves.
    NodeUnreachable {
        node_id: String,
    },
    /// P2P: this page's direct connection to its peer has not recovered for a while, ICE
    /// restarts included (e.g. a network that lets UDP reach the node but not the peer): the pair
    /// moves to the room's media node and stays there while those two are the room.
    DirectFailed,
}

/// A resume secret: whoever holds it may take a participant's place, so `Debug` shows nothing.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResumeSecret(pub String);

impl std::fmt::Debug for ResumeSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResumeSecret(<redacted>)")
    }
}

impl ClientMessage {
    /// The wire name of the message type, for error reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Join(_) => "join",
            Self::Leave => "leave",
            Self::Chat { .. } => "chat",
            Self::UpdateProfile { .. } => "update_profile",
            Self::MediaState(_) => "media_state",
            Self::Mute { .. } => "mute",
            Self::MuteAll { .. } => "mute_all",
            Self::Kick { .. } => "kick",
            Self::SetPassword { .. } => "set_password",
            Self::Signal { .. } => "signal",
            Self::E2eeKey { .. } => "e2ee_key",
            Self::Tracks { .. } => "tracks",
            Self::RefreshNodeGrant => "refresh_node_grant",
            Self::StartRecording { .. } => "start_recording",
            Self::StopRecording => "stop_recording",
            Self::StartLivestream { .. } => "start_livestream",
            Self::StopLivestream => "stop_livestream",
            Self::SpeakerStats => "speaker_stats",
            Self::Ping => "ping",
            Self::Resume { .. } => "resume",
            Self::SetLobby { .. } => "set_lobby",
            Self::SetCompositionLayout { .. } => "set_composition_layout",
            Self::Admit { .. } => "admit",
            Self::AdmitAll => "admit_all",
            Self::Refuse { .. } => "refuse",
            Self::RefuseAll => "refuse_all",
            Self::SetModerator { .. } => "set_moderator",
            Self::EndMeeting => "end_meeting",
            Self::RaiseHand { .. } => "raise_hand",
            Self::React { .. } => "react",
            Self::NodeUnreachable { .. } => "node_unreachable",
            Self::DirectFailed => "direct_failed",
        }
    }

    /// Serialize with the version envelope, as a browser would send it.
    pub fn to_wire(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.insert("v".into(), Value::from(PROTOCOL_VERSION));
        }
        value.to_string()
    }
}

const KNOWN_TYPES: &[&str] = &[
    "join",
    "leave",
    "chat",
    "update_profile",
    "media_state",
    "mute",
    "mute_all",
    "kick",
    "set_password",
    "signal",
    "e2ee_key",
    "tracks",
    "refresh_node_grant",
    "start_recording",
    "stop_recording",
    "start_livestream",
    "stop_livestream",
    "speaker_stats",
    "ping",
    "resume",
    "set_composition_layout",
    "set_lobby",
    "admit",
    "admit_all",
    "refuse",
    "refuse_all",
    "set_moderator",
    "end_meeting",
    "raise_hand",
    "react",
    "node_unreachable",
    "direct_failed",
];

/// Parse one text frame from a browser. Every failure names what was wrong, so the edge can answer
/// with an error message instead of dropping the frame.
pub fn parse_client(text: &str) -> Result<ClientMessage, ProtocolError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ProtocolError::new(ErrorCode::BadJson, format!("not valid JSON: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(ProtocolError::new(
            ErrorCode::NotAnObject,
            "a message must be a JSON object",
        ));
    };
    check_version(&mut map)?;
    let kind = match map.get("type") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(ProtocolError::new(
                ErrorCode::InvalidMessage,
                "`type` must be a string",
            ));
        }
        None => {
            return Err(ProtocolError::new(
                ErrorCode::InvalidMessage,
                "missing `type`",
            ));
        }
    };
    if !KNOWN_TYPES.contains(&kind.as_str()) {
        return Err(ProtocolError::new(
            ErrorCode::UnknownType,
            format!("unknown message type `{}`", truncate(&kind, 40)),
        ));
    }
    serde_json::from_value(Value::Object(map)).map_err(|e| {
        ProtocolError::new(
            ErrorCode::InvalidMessage,
            format!("invalid `{kind}` message: {e}"),
        )
    })
}

fn check_version(map: &mut Map<String, Value>) -> Result<(), ProtocolError> {
    match map.remove("v") {
        Some(Value::Number(n)) if n.as_u64() == Some(u64::from(PROTOCOL_VERSION)) => Ok(()),
        Some(other) => Err(ProtocolError::new(
            ErrorCode::UnsupportedVersion,
            format!(
                "protocol version {} is not supported; this edge speaks v{PROTOCOL_VERSION}",
                truncate(&other.to_string(), 20)
            ),
        )),
        None => Err(ProtocolError::new(
            ErrorCode::UnsupportedVersion,
            format!("missing protocol version `v`; this edge speaks v{PROTOCOL_VERSION}"),
        )),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_join() {
        let m = parse_client(r#"{"v":1,"type":"join","profile":{"name":"Ada"}}"#).unwrap();
        assert_eq!(
            m,
            ClientMessage::Join(Join {
                profile: Profile {
                    name: Some("Ada".into()),
                    ..Default::default()
                },
                ..Default::default()
            })
        );
    }

    #[test]
    fn round_trips_every_type_name() {
        for msg in [
            ClientMessage::Leave,
            ClientMessage::Ping,
            ClientMessage::SpeakerStats,
        ] {
            assert_eq!(parse_client(&msg.to_wire()).unwrap(), msg);
        }
    }

    #[test]
    fn resume_parses_and_never_prints_its_secret() {
        let m =
            parse_client(r#"{"v":1,"type":"resume","id":"3f9a1c0b2d4e","secret":"s3cr3t-value"}"#)
                .unwrap();
        assert_eq!(
            m,
            ClientMessage::Resume {
                id: "3f9a1c0b2d4e".into(),
                secret: ResumeSecret("s3cr3t-value".into()),
            }
        );
        assert_eq!(parse_client(&m.to_wire()).unwrap(), m);
        assert!(!format!("{m:?}").contains("s3cr3t"));
        let err = parse_client(r#"{"v":1,"type":"resume","id":"x"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidMessage);
    }

    #[test]
    fn start_recording_with_or_without_a_dropbox_grant() {
        let m = parse_client(r#"{"v":1,"type":"start_recording"}"#).unwrap();
        assert_eq!(
            m,
            ClientMessage::StartRecording {
                dropbox: None,
                composite: false,
                files: None,
            }
        );
        let m = parse_client(
            r#"{"v":1,"type":"start_recording","dropbox":{"access_token":"sl.a","refresh_token":"r","app_key":"k"}}"#,
        )
        .unwrap();
        let ClientMessage::StartRecording {
            dropbox: Some(g), ..
        } = &m
        else {
            panic!("{m:?}")
        };
        assert_eq!((g.access_token.as_str(), g.app_key.as_str()), ("sl.a", "k"));
        assert_eq!(parse_client(&m.to_wire()).unwrap(), m);
        // Never in debug output.
        assert!(!format!("{m:?}").contains("sl.a"));
        assert!(
            parse_client(r#"{"v":1,"type":"start_recording","dropbox":{"app_key":"k"}}"#).is_err()
        );
    }

    #[test]
    fn names_what_is_wrong() {
        let code = |t: &str| parse_client(t).unwrap_err().code;
        assert_eq!(code("{"), ErrorCode::BadJson);
        assert_eq!(code("[]"), ErrorCode::NotAnObject);
        assert_eq!(code(r#"{"type":"ping"}"#), ErrorCode::UnsupportedVersion);
        assert_eq!(
            code(r#"{"v":2,"type":"ping"}"#),
            ErrorCode::UnsupportedVersion
        );
        assert_eq!(code(r#"{"v":1,"type":"dance"}"#), ErrorCode::UnknownType);
        assert_eq!(
            code(r#"{"v":1,"type":"chat","text":5}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(code(r#"{"v":1,"type":7}"#), ErrorCode::InvalidMessage);
    }
}
