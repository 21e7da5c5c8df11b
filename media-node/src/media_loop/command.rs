//! What the tokio side asks of a media loop, and what comes back. Plain data: the loop owns every
//! connection, so a request names sessions and tracks by id, never by reference.

use edgemeet_protocol::node::{
    CloseTracksRequest, SessionDescription, SessionStateResponse, TrackObject, TrackResult,
    TracksResponse, UpdateTracksRequest, ViewTracksRequest,
};
use tokio::sync::oneshot;

use crate::error::ApiError;

/// Who a session belongs to (from the token that opened it).
#[derive(Clone, Debug)]
pub struct Owner {
    pub room: String,
    pub participant: String,
    /// The edge's route for this participant (dominant-speaker events carry it).
    pub route: String,
}

/// `sessions/new`: a connection, answered at once when the client offers (its pushes and the
/// pulls on its receive-only m-lines: the one-call join), else waiting for `tracks/new`.
pub struct OpenRequest {
    pub session_id: String,
    pub owner: Owner,
    pub offer: Option<String>,
    pub tracks: Vec<TrackObject>,
}

pub struct Opened {
    pub answer: Option<String>,
    /// One result per track of the request, in its order.
    pub tracks: Vec<TrackResult>,
}

/// A call on one session; the loop checks that the caller may make it.
pub enum SessionOp {
    /// `tracks/new` with the client's offer (push).
    Push(SessionDescription, Vec<TrackObject>),
    /// `tracks/new` naming other sessions' tracks (pull): the node offers.
    Pull(Vec<TrackObject>),
    /// The client's answer to the node's last offer.
    Renegotiate(SessionDescription),
    Close(CloseTracksRequest),
    Update(UpdateTracksRequest),
    /// `tracks/view`: how the page shows pulled videos.
    View(ViewTracksRequest),
    State,
    /// `DELETE /v1/sessions/{id}`.
    End,
}

pub enum SessionReply {
    Tracks(TracksResponse),
    State(SessionStateResponse),
    Done,
}

/// The caller of a session call: the token's room and subject (the edge's subject may act on
/// any session of its room).
pub struct Caller {
    pub room: String,
    pub subject: String,
}

pub enum Command {
    Open(OpenRequest, oneshot::Sender<Result<Opened, ApiError>>),
    Session {
        session: String,
        caller: Caller,
        op: SessionOp,
        reply: oneshot::Sender<Result<SessionReply, ApiError>>,
    },
    /// Closes a room's sessions, or one participant's of it; replies how many.
    CloseWhere {
        room: String,
        participant: Option<String>,
        reply: oneshot::Sender<u32>,
    },
    /// How many sessions the room has, and how many of them are the participant's.
    Count {
        room: String,
        participant: String,
        reply: oneshot::Sender<(usize, usize)>,
    },
    /// Closes everything (node shutdown).
    CloseAll(oneshot::Sender<()>),
    /// The room's pushed tracks that recording (or composition) `recording_id` does not tap yet.
    Recordable {
        room: String,
        recording_id: String,
        reply: oneshot::Sender<Vec<RecordableTrack>>,
    },
    /// Drops every tap of a recording or composition (its sources see their queues close).
    Untap(String, oneshot::Sender<()>),
    /// Taps publications for a recording or a composition (each video one is asked for a
    /// keyframe).
    Tap(
        Vec<(usize, crate::recording::tap::LoopTap)>,
        oneshot::Sender<()>,
    ),
}

/// A pushed track on the loop, as the recorder files it.
pub struct RecordableTrack {
    pub publication: usize,
    pub participant: String,
    pub session_id: String,
    /// The track's name (`video`, `screen-1`, `audio`).
    pub name: String,
    pub video: bool,
    pub mime: String,
}
