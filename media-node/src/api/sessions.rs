//! The session calls of the HTTP API: each becomes one command to the media loop. Checks of
//! the token and the body happen in `api/mod.rs` (and here, those of the request's shape)
//! before the loop sees it; who may touch a session is checked in the loop, which knows its
//! owner.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::Json;
use edgemeet_protocol::node::{
    CloseTracksRequest, ClosedResponse, NewSessionRequest, NewSessionResponse, NodeTokenClaims,
    RenegotiateRequest, SdpType, SessionDescription, SessionStateResponse, TrackLocation,
    TrackObject, TracksRequest, TracksResponse, UpdateTracksRequest, ViewTracksRequest,
};

use crate::error::ApiError;
use crate::media_loop::Loops;
use crate::media_loop::command::{Caller, Command, OpenRequest, Owner, SessionOp, SessionReply};
use crate::node::Shared;

/// Sessions one participant may hold in a room (a push and a pull session, reconnects).
const MAX_SESSIONS_PER_PARTICIPANT: usize = 4;

/// `POST /v1/sessions/new`: a connection on the loop; with an offer, its pushes and the pulls
/// on its receive-only m-lines answered in the same call.
pub async fn new_session(
    shared: &Arc<Shared>,
    c: NodeTokenClaims,
    req: NewSessionRequest,
    push: Option<TracksRequest>,
) -> Result<Json<NewSessionResponse>, ApiError> {
    let media = &shared.media;
    let (offer, tracks) = match push {
        Some(p) => (p.session_description, Some(p.tracks)),
        None => (req.session_description, None),
    };
    if let Some(o) = &offer
        && o.sdp_type != SdpType::Offer
    {
        return Err(ApiError::BadRequest(
            "expected a session description of type offer".into(),
        ));
    }
    if let Some(ts) = &tracks {
        crate::tracks::check_tracks(ts)?;
    }
    // One token must not be able to exhaust the node.
    let (room_count, mine) = match media.of_room(&c.room) {
        Some(l) => {
            l.call(|reply| Command::Count {
                room: c.room.clone(),
                participant: c.sub.clone(),
                reply,
            })
            .await?
        }
        None => (0, 0),
    };
    if mine >= MAX_SESSIONS_PER_PARTICIPANT {
        return Err(ApiError::TooMany("too many sessions for this participant"));
    }
    if room_count >= shared.cfg.max_sessions_per_room {
        return Err(ApiError::TooMany("too many sessions in this room"));
    }
    if shared.draining.load(Relaxed) && room_count == 0 {
        return Err(ApiError::Unavailable("node is draining: no new rooms"));
    }
    if let Some(ts) = &tracks {
        same_room(media, &c.room, ts)?;
    }
    let id = crate::auth::new_session_id(&shared.cfg.secret, &c.room, &c.sub);
    let open = OpenRequest {
        session_id: id.clone(),
        owner: Owner {
            room: c.room.clone(),
            participant: c.sub.clone(),
            route: c.route.clone(),
        },
        offer: offer.map(|o| o.sdp),
        tracks: tracks.clone().unwrap_or_default(),
    };
    // The room's loop (or the least loaded, for a new room); the loop says when the session
    // is gone, also if this open fails.
    let opened = media
        .open(&c.room, &id)
        .call(|tx| Command::Open(open, tx))
        .await??;
    // Revoked while the session was being opened: the edge's close may have missed it.
    if shared.verifier.is_revoked(&c.room, &c.sub) {
        let caller = Caller {
            room: c.room.clone(),
            subject: c.sub.clone(),
        };
        let _ = call(media, id, caller, SessionOp::End).await;
        return Err(ApiError::Unauthorized(
            "grant revoked: the participant left",
        ));
    }
    shared.metrics.sessions_created.fetch_add(1, Relaxed);
    tracing::info!(session = %id, "session created");
    if tracks.is_some() {
        attach_taps(shared, media, &c.room).await;
    }
    Ok(Json(NewSessionResponse {
        session_id: id,
        session_description: opened.answer.map(|sdp| SessionDescription {
            sdp_type: SdpType::Answer,
            sdp: announced(shared, sdp),
        }),
        tracks: tracks.map(|_| opened.tracks),
    }))
}

/// Behind a 1:1 NAT the loop's candidate is announced under the public address.
fn announced(shared: &Shared, sdp: String) -> String {
    match shared.cfg.public_ip {
        Some(public) => crate::sdp::announce_addr(&sdp, shared.media.local_ip(), public, None),
        None => sdp,
    }
}

/// Pulls name sessions of the caller's room only. Rooms are pinned to loops, so a session on
/// another loop than the room's is another room's (one on the same loop, the loop checks).
fn same_room(media: &Loops, room: &str, tracks: &[TrackObject]) -> Result<(), ApiError> {
    let elsewhere = tracks
        .iter()
        .filter(|t| t.location == TrackLocation::Remote)
        .filter_map(|t| t.session_id.as_deref())
        .any(|sid| media.elsewhere(sid, room));
    if elsewhere {
        return Err(ApiError::Forbidden("track belongs to another room"));
    }
    Ok(())
}

/// A call on a session, on the loop that holds it.
async fn call(
    media: &Loops,
    session: String,
    caller: Caller,
    op: SessionOp,
) -> Result<SessionReply, ApiError> {
    media
        .of_session(&session)
        .ok_or(ApiError::NotFound("unknown session"))?
        .call(|reply| Command::Session {
            session,
            caller,
            op,
            reply,
        })
        .await?
}

fn caller(c: &NodeTokenClaims) -> Caller {
    Caller {
        room: c.room.clone(),
        subject: c.sub.clone(),
    }
}

fn tracks_reply(shared: &Shared, r: SessionReply) -> Result<Json<TracksResponse>, ApiError> {
    match r {
        SessionReply::Tracks(mut t) => {
            t.session_description = t.session_description.map(|d| SessionDescription {
                sdp_type: d.sdp_type,
                sdp: announced(shared, d.sdp),
            });
            Ok(Json(t))
        }
        _ => Err(ApiError::Media("unexpected reply of the media loop".into())),
    }
}

/// `POST /v1/sessions/{id}/tracks/new`: push (with the client's offer) or pull (node offer).
pub async fn tracks_new(
    shared: &Arc<Shared>,
    c: &NodeTokenClaims,
    sid: String,
    req: TracksRequest,
) -> Result<Json<TracksResponse>, ApiError> {
    let media = &shared.media;
    crate::tracks::check_tracks(&req.tracks)?;
    let local = req
        .tracks
        .iter()
        .filter(|t| t.location == TrackLocation::Local)
        .count();
    if local > 0 && local < req.tracks.len() {
        return Err(ApiError::BadRequest(
            "push (local) and pull (remote) tracks go in separate requests".into(),
        ));
    }
    let push = local > 0;
    let op = if push {
        let offer = req.session_description.ok_or_else(|| {
            ApiError::BadRequest("pushing tracks needs the client's offer".into())
        })?;
        if offer.sdp_type != SdpType::Offer {
            return Err(ApiError::BadRequest(
                "expected a session description of type offer".into(),
            ));
        }
        crate::sdp::parse(&offer.sdp).map_err(ApiError::bad_sdp)?;
        SessionOp::Push(offer, req.tracks)
    } else {
        if req.session_description.is_some() {
            return Err(ApiError::BadRequest(
                "pulling takes no session description: the node makes the offer".into(),
            ));
        }
        if media.of_session(&sid).is_some() {
            same_room(media, &c.room, &req.tracks)?;
        }
        SessionOp::Pull(req.tracks)
    };
    let r = call(media, sid, caller(c), op).await?;
    if push {
        attach_taps(shared, media, &c.room).await;
    }
    tracks_reply(shared, r)
}

/// `PUT /v1/sessions/{id}/renegotiate`: the client's answer to the node's last offer.
pub async fn renegotiate(
    media: &Loops,
    c: &NodeTokenClaims,
    sid: String,
    req: RenegotiateRequest,
) -> Result<Json<serde_json::Value>, ApiError> {
    call(
        media,
        sid,
        caller(c),
        SessionOp::Renegotiate(req.session_description),
    )
    .await?;
    Ok(Json(serde_json::json!({})))
}

pub async fn tracks_close(
    shared: &Arc<Shared>,
    c: &NodeTokenClaims,
    sid: String,
    req: CloseTracksRequest,
) -> Result<Json<TracksResponse>, ApiError> {
    let media = &shared.media;
    let r = call(media, sid, caller(c), SessionOp::Close(req)).await?;
    tracks_reply(shared, r)
}

pub async fn tracks_update(
    shared: &Arc<Shared>,
    c: &NodeTokenClaims,
    sid: String,
    req: UpdateTracksRequest,
) -> Result<Json<TracksResponse>, ApiError> {
    let media = &shared.media;
    let r = call(media, sid, caller(c), SessionOp::Update(req)).await?;
    tracks_reply(shared, r)
}

/// `PUT /v1/sessions/{id}/tracks/view`: how the page shows its pulled videos. The request's
/// shape is checked here: at least one track, each mid once, heights of 1 to
/// [`MAX_HEIGHT`](crate::tile_view::MAX_HEIGHT) pixels.
pub async fn tracks_view(
    shared: &Arc<Shared>,
    c: &NodeTokenClaims,
    sid: String,
    req: ViewTracksRequest,
) -> Result<Json<TracksResponse>, ApiError> {
    check_views(&req)?;
    let r = call(&shared.media, sid, caller(c), SessionOp::View(req)).await?;
    tracks_reply(shared, r)
}

fn check_views(req: &ViewTracksRequest) -> Result<(), ApiError> {
    use crate::tile_view::MAX_HEIGHT;
    if req.tracks.is_empty() {
        return Err(ApiError::BadRequest("no tracks".into()));
    }
    if req.tracks.len() > crate::tracks::MAX_TRACKS_PER_SESSION {
        return Err(ApiError::BadRequest("too many tracks".into()));
    }
    for (i, t) in req.tracks.iter().enumerate() {
        if req.tracks[..i].iter().any(|u| u.mid == t.mid) {
            return Err(ApiError::BadRequest("a mid named twice".into()));
        }
        if t.height.is_some_and(|h| h == 0 || h > MAX_HEIGHT) {
            return Err(ApiError::BadRequest(format!(
                "height must be 1 to {MAX_HEIGHT} pixels"
            )));
        }
    }
    Ok(())
}

/// `DELETE /v1/sessions/{id}`.
pub async fn close_session(
    media: &Loops,
    c: &NodeTokenClaims,
    sid: String,
) -> Result<Json<ClosedResponse>, ApiError> {
    call(media, sid, caller(c), SessionOp::End).await?;
    Ok(Json(ClosedResponse { closed_sessions: 1 }))
}

/// `GET /v1/sessions/{id}`.
pub async fn session_state(
    media: &Loops,
    c: &NodeTokenClaims,
    sid: String,
) -> Result<Json<SessionStateResponse>, ApiError> {
    match call(media, sid, caller(c), SessionOp::State).await? {
        SessionReply::State(s) => Ok(Json(s)),
        _ => Err(ApiError::Media("unexpected reply of the media loop".into())),
    }
}

/// Closes a room's sessions on the loop, or one participant's of them; how many.
pub async fn close_where(
    media: &Loops,
    room: &str,
    participant: Option<&str>,
) -> Result<u32, ApiError> {
    let Some(l) = media.of_room(room) else {
        return Ok(0);
    };
    l.call(|reply| Command::CloseWhere {
        room: room.to_owned(),
        participant: participant.map(str::to_owned),
        reply,
    })
    .await
}

/// Closes every session of every loop (node shutdown).
pub async fn close_all(media: &Loops) {
    for l in media.all() {
        let _ = l.call(Command::CloseAll).await;
    }
}

/// A track pushed while the meeting records or streams: recorded and composed too.
async fn attach_taps(shared: &Shared, media: &crate::media_loop::Loops, room: &str) {
    if shared.recordings.is_recording(room) {
        shared.recordings.attach_loop(media, room).await;
    }
    if shared.compositions.is_composing(room) {
        shared.compositions.attach_loop(media, room).await;
    }
}
