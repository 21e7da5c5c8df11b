//! The HTTP calls the media loop answers so far, turned into commands. Checks of the token,
//! the body and the limits happen in `api.rs` before this, as on the old path.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::Json;
use edgemeet_protocol::node::{
    ClosedResponse, NewSessionRequest, NewSessionResponse, NodeTokenClaims, SdpType,
    SessionDescription, SessionStateResponse, TrackLocation, TrackResult, TracksRequest,
};

use super::Engine;
use super::command::{Command, OpenRequest, PullRequest};
use crate::error::ApiError;
use crate::node::Shared;

/// `POST /v1/sessions/new` with an offer: the session, its pushes and the pulls on its
/// receive-only m-lines, answered in one call.
pub async fn new_session(
    shared: &Arc<Shared>,
    engine: &Engine,
    id: String,
    room: String,
    req: NewSessionRequest,
    push: Option<TracksRequest>,
) -> Result<Json<NewSessionResponse>, ApiError> {
    let (offer, tracks) = match push {
        Some(p) => (p.session_description, Some(p.tracks)),
        None => (req.session_description, None),
    };
    let offer = offer.ok_or_else(|| ApiError::BadRequest("an offer is needed".into()))?;
    if offer.sdp_type != SdpType::Offer {
        return Err(ApiError::BadRequest(
            "expected a session description of type offer".into(),
        ));
    }
    let list = tracks.clone().unwrap_or_default();
    let mut pushes = Vec::new();
    let mut pulls = Vec::new();
    for t in &list {
        let mid = t
            .mid
            .clone()
            .ok_or_else(|| ApiError::BadRequest("a track in an offer needs its mid".into()))?;
        match t.location {
            TrackLocation::Local => pushes.push((mid, t.track_name.clone())),
            TrackLocation::Remote => pulls.push(PullRequest {
                mid,
                publisher: t.session_id.clone().ok_or_else(|| {
                    ApiError::BadRequest("a remote track needs its sessionId".into())
                })?,
                track_name: t.track_name.clone(),
            }),
        }
    }
    let open = OpenRequest {
        session_id: id.clone(),
        room,
        offer: offer.sdp,
        pushes,
        pulls,
    };
    let mut opened = engine.call(|tx| Command::Open(open, tx)).await??;
    // Behind a 1:1 NAT the loop's candidate is announced under the public address.
    if let Some(public) = shared.cfg.public_ip {
        let local = engine.local_addr();
        opened.answer = crate::sdp::announce_addr(&opened.answer, local.ip(), public, None);
    }
    shared.metrics.sessions_created.fetch_add(1, Relaxed);
    tracing::info!(session = %id, "session created on the media loop");
    let results = tracks.map(|ts| {
        ts.iter()
            .map(|t| TrackResult {
                mid: t.mid.clone(),
                track_name: Some(t.track_name.clone()),
                session_id: t.session_id.clone().or_else(|| Some(id.clone())),
                error: (t.location == TrackLocation::Remote && !opened.pulled)
                    .then(|| ApiError::NotFound("not pulled: pull it with tracks/new").body()),
            })
            .collect()
    });
    Ok(Json(NewSessionResponse {
        session_id: id,
        session_description: Some(SessionDescription {
            sdp_type: SdpType::Answer,
            sdp: opened.answer,
        }),
        tracks: results,
    }))
}

/// `DELETE /v1/sessions/{id}` of a session on the loop: its participant, or the edge, of its
/// meeting (the id names its owner: `edgemeet_protocol::node::session_belongs_to`).
pub async fn close_session(
    shared: &Arc<Shared>,
    engine: &Engine,
    c: &NodeTokenClaims,
    sid: String,
) -> Result<Json<ClosedResponse>, ApiError> {
    let room = engine
        .call(|tx| Command::RoomOf(sid.clone(), tx))
        .await?
        .ok_or(ApiError::NotFound("unknown session"))?;
    check_owner(shared, c, &sid, &room)?;
    let closed = engine.call(|tx| Command::Close(sid, tx)).await?;
    Ok(Json(ClosedResponse {
        closed_sessions: u32::from(closed),
    }))
}

/// `GET /v1/sessions/{id}` of a session on the loop.
pub async fn session_state(
    shared: &Arc<Shared>,
    engine: &Engine,
    c: &NodeTokenClaims,
    sid: String,
) -> Result<Json<SessionStateResponse>, ApiError> {
    let (room, state) = engine
        .call(|tx| Command::State(sid.clone(), tx))
        .await?
        .ok_or(ApiError::NotFound("unknown session"))?;
    check_owner(shared, c, &sid, &room)?;
    Ok(Json(state))
}

/// A session's participant, or the edge, of its meeting: the id names its owner
/// (`edgemeet_protocol::node::session_belongs_to`).
fn check_owner(
    shared: &Shared,
    c: &NodeTokenClaims,
    sid: &str,
    room: &str,
) -> Result<(), ApiError> {
    if room != c.room {
        return Err(ApiError::Forbidden("session belongs to another room"));
    }
    if c.sub != crate::auth::EDGE_SUBJECT
        && !edgemeet_protocol::node::session_belongs_to(&shared.cfg.secret, sid, &c.room, &c.sub)
    {
        return Err(ApiError::Forbidden(
            "session belongs to another participant",
        ));
    }
    Ok(())
}
