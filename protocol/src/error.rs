//! Error codes sent to the browser in `{"type":"error","code":...}` messages.

use serde::{Deserialize, Serialize};

/// A machine-readable reason, stable across versions. `docs/protocol.md` lists what each one means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // Malformed input.
    BadJson,
    NotAnObject,
    UnsupportedVersion,
    UnknownType,
    InvalidMessage,
    TooLarge,
    BinaryNotSupported,
    RateLimited,
    // Lifecycle.
    NotJoined,
    AlreadyJoined,
    InvalidRoomName,
    UnknownTenant,
    RoomFull,
    // Profile.
    InvalidProfile,
    // Auth.
    TokenRequired,
    TokenInvalid,
    TokenExpired,
    TokenNotYetValid,
    TokenWrongAudience,
    TokenWrongIssuer,
    TokenWrongTenant,
    TokenWrongRoom,
    TokenBadSignature,
    TokenAlgNotAllowed,
    TokenUnknownKey,
    // Password.
    PasswordRequired,
    PasswordWrong,
    PasswordRateLimited,
    InvalidPassword,
    // Permissions and targets.
    NotModerator,
    UnknownParticipant,
    ChatTooLong,
    ChatEmpty,
    NotInP2p,
    NotInSfu,
    /// A `tracks` message named a media-node session that is not the sender's.
    NotYourSession,
    NoMediaNode,
    /// `node_unreachable` named a node that is not the room's (any more).
    UnknownNode,
    /// `set_moderator` where everyone moderates (an open room with `moderation = "everyone"`), or
    /// taking the role from the last moderator.
    RolesFixed,
    // Recording.
    RecordingNotAllowed,
    RecordingE2ee,
    RecordingActive,
    NotRecording,
    RecordingFailed,
    // Livestreaming.
    LivestreamNotAllowed,
    LivestreamE2ee,
    LivestreamActive,
    NotLive,
    /// The media node refused (a bad URL, the ingest unreachable or refusing the key) or could
    /// not be reached; the livestream stopped.
    LivestreamFailed,
    /// `start_livestream` with a URL that is not `rtmp://host[:port]/app`, or a key that is empty
    /// or too long.
    InvalidLivestream,
    /// A `resume` named no participant that may come back with that secret (wrong secret,
    /// window over, or the meeting ended): join afresh.
    ResumeFailed,
    Internal,
}

/// An error to report to the sender of a message: a code and a human-readable explanation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}
