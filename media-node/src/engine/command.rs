//! What the tokio side asks of a media loop, and what comes back. Plain data: the loop owns every
//! connection, so a request names sessions and tracks by id, never by reference.

use tokio::sync::oneshot;

use crate::error::ApiError;

/// A session's first offer, with the tracks it pushes and pulls (the one-call join).
pub struct OpenRequest {
    pub session_id: String,
    pub room: String,
    pub offer: String,
    /// (mid, track name) of each pushed track.
    pub pushes: Vec<(String, String)>,
    pub pulls: Vec<PullRequest>,
}

/// A track of another session of the room, to be sent on the offer's recvonly m-line `mid`.
pub struct PullRequest {
    pub mid: String,
    pub publisher: String,
    pub track_name: String,
}

pub struct Opened {
    pub answer: String,
    /// False when a named track was gone: nothing was pulled (each pull gets an error).
    pub pulled: bool,
}

pub enum Command {
    Open(OpenRequest, oneshot::Sender<Result<Opened, ApiError>>),
    /// A session's meeting and state (`GET /v1/sessions/{id}`), if it lives on this loop.
    State(
        String,
        oneshot::Sender<Option<(String, edgemeet_protocol::node::SessionStateResponse)>>,
    ),
    /// The meeting a session belongs to, if it lives on this loop.
    RoomOf(String, oneshot::Sender<Option<String>>),
    /// Closes a session; replies whether it existed.
    Close(String, oneshot::Sender<bool>),
}
