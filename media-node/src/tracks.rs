//! Pushing, pulling and closing tracks of a session (the `tracks/new` and `tracks/close` work).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use edgemeet_protocol::node::{
    CloseTracksRequest, TrackLocation, TrackObject, TrackResult, TrackStatus, TracksRequest,
    TracksResponse,
};
use rand::RngCore;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

use crate::error::ApiError;
use crate::forward::{Publication, Subscription};
use crate::node::Shared;
use crate::sdp;
use crate::session::Session;

/// Most tracks one request may add, and one session may hold.
const MAX_TRACKS_PER_REQUEST: usize = 32;
pub(crate) const MAX_TRACKS_PER_SESSION: usize = 128;

/// 128 random bits, hex: session ids are unguessable.
pub fn random_id() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

pub(crate) fn result(t: &TrackObject) -> TrackResult {
    TrackResult {
        mid: t.mid.clone(),
        track_name: Some(t.track_name.clone()),
        session_id: t.session_id.clone(),
        error: None,
    }
}

pub async fn add(
    shared: &Arc<Shared>,
    s: &Arc<Session>,
    req: TracksRequest,
) -> Result<TracksResponse, ApiError> {
    check_tracks(&req.tracks)?;
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
    let count = s.publications().len() + s.subscriptions().len();
    if count + req.tracks.len() > MAX_TRACKS_PER_SESSION {
        return Err(ApiError::BadRequest(
            "too many tracks in this session".into(),
        ));
    }
    let _g = s.signaling.lock().await;
    if s.has_pending_offer().await {
        return Err(ApiError::Conflict(
            "the node's last offer awaits an answer (renegotiate) first",
        ));
    }
    if local > 0 {
        push(shared, s, req, false).await
    } else {
        if req.session_description.is_some() {
            return Err(ApiError::BadRequest(
                "pulling takes no session description: the node makes the offer".into(),
            ));
        }
        pull(shared, s, req.tracks).await
    }
}

/// A new session's first call: push the offer's sending m-lines and, where the client names them,
/// pull other sessions' tracks on the m-lines it offered to receive on (no node offer, no
/// renegotiation: a participant joining a room pulls everyone in its first round trip).
pub async fn open(
    shared: &Arc<Shared>,
    s: &Arc<Session>,
    req: TracksRequest,
) -> Result<TracksResponse, ApiError> {
    check_tracks(&req.tracks)?;
    let _g = s.signaling.lock().await;
    push(shared, s, req, true).await
}

/// How many tracks one request may name, and their names.
pub(crate) fn check_tracks(tracks: &[TrackObject]) -> Result<(), ApiError> {
    if tracks.is_empty() || tracks.len() > MAX_TRACKS_PER_REQUEST {
        return Err(ApiError::BadRequest(format!(
            "a request adds 1 to {MAX_TRACKS_PER_REQUEST} tracks"
        )));
    }
    if tracks.iter().any(|t| !valid_name(&t.track_name, 31)) {
        return Err(ApiError::BadRequest(
            "trackName must be 1-31 characters of A-Z a-z 0-9 _ . -".into(),
        ));
    }
    Ok(())
}

/// The publications a new session's offer pulls. Each remote track names (`mid`) the first
/// receive-only m-line of its kind in the offer not taken by an earlier one, which is where the
/// node's track lands (`add_track` takes them in that order); m-lines left over are answered
/// inactive. `Ok(None)` when a publication is gone or of the other kind: then nothing is pulled
/// and each remote track gets an error (the client pulls them again with `tracks/new`).
fn offered_pulls(
    shared: &Arc<Shared>,
    s: &Arc<Session>,
    offered: &[sdp::MediaSection],
    remote: &[&TrackObject],
) -> Result<Option<Vec<Arc<Publication>>>, ApiError> {
    let mut free: Vec<&sdp::MediaSection> = offered
        .iter()
        .filter(|m| m.direction == "recvonly" && !m.port_zero)
        .collect();
    let mut kinds = Vec::new();
    for t in remote {
        let Some(i) = t
            .mid
            .as_deref()
            .and_then(|mid| free.iter().position(|m| m.mid.as_deref() == Some(mid)))
        else {
            return Err(ApiError::BadRequest(
                "a remote track in an offer names one of its recvonly m-lines (mid)".into(),
            ));
        };
        if free[..i].iter().any(|m| m.kind == free[i].kind) {
            return Err(ApiError::BadRequest(
                "remote tracks in an offer take its recvonly m-lines of their kind in order".into(),
            ));
        }
        kinds.push(free.remove(i).kind.clone());
    }
    let mut out = Vec::new();
    for (t, kind) in remote.iter().zip(&kinds) {
        let sid = t
            .session_id
            .as_deref()
            .ok_or_else(|| ApiError::BadRequest("a remote track needs its sessionId".into()))?;
        let Some(src) = shared.session(sid) else {
            return Ok(None);
        };
        if src.room != s.room {
            return Err(ApiError::Forbidden("track belongs to another room"));
        }
        match src.publication_by_name(&t.track_name) {
            Some(p) if p.is_video == (kind == "video") => out.push(p),
            _ => return Ok(None),
        }
    }
    Ok(Some(out))
}

async fn push(
    shared: &Arc<Shared>,
    s: &Arc<Session>,
    req: TracksRequest,
    first: bool,
) -> Result<TracksResponse, ApiError> {
    let offer = req
        .session_description
        .as_ref()
        .ok_or_else(|| ApiError::BadRequest("pushing tracks needs the client's offer".into()))?;
    let offered = sdp::parse(&offer.sdp).map_err(ApiError::bad_sdp)?;
    let remote: Vec<&TrackObject> = req
        .tracks
        .iter()
        .filter(|t| t.location == TrackLocation::Remote)
        .collect();
    if !remote.is_empty() && !first {
        return Err(ApiError::BadRequest(
            "push (local) and pull (remote) tracks go in separate requests".into(),
        ));
    }
    let pulls = if remote.is_empty() {
        None
    } else {
        offered_pulls(shared, s, &offered, &remote)?
    };
    for t in req
        .tracks
        .iter()
        .filter(|t| t.location == TrackLocation::Local)
    {
        let mid = pushed_mid(&offered, t)?;
        if s.publication(mid).is_some() || s.publication_by_name(&t.track_name).is_some() {
            return Err(ApiError::BadRequest(format!(
                "mid {mid} or track name already pushed"
            )));
        }
    }
    s.set_remote_offer(offer).await?;
    // Pulls first: the node's tracks take the receiving m-lines in order (see `offered_pulls`).
    let mut pulled = Vec::new();
    for (t, publication) in remote.iter().zip(pulls.into_iter().flatten()) {
        let sub = subscribe(shared, s, publication, t, None).await?;
        pulled.push(sub);
    }
    let answer = s.finish_answer().await?;
    let answered = sdp::parse(&answer.sdp).map_err(ApiError::Media)?;
    if !pulled.is_empty() {
        s.assign_subscription_mids().await;
        for (t, sub) in remote.iter().zip(&pulled) {
            if *sub.mid.lock().unwrap() != t.mid {
                return Err(ApiError::Media(
                    "a pulled track did not land on its m-line".into(),
                ));
            }
        }
        // The answer is ours: the pulls are negotiated and start once the transport is up.
        s.activate_pending(shared).await;
    }
    let mut pulled = pulled.into_iter();
    let mut out = Vec::new();
    for t in &req.tracks {
        if t.location == TrackLocation::Remote {
            let mut r = result(t);
            if pulled.next().is_none() {
                r.error = Some(ApiError::NotFound("not pulled: pull it with tracks/new").body());
            }
            out.push(r);
            continue;
        }
        let mid = t.mid.clone().unwrap_or_default();
        let mut r = result(t);
        r.session_id = Some(s.id.clone());
        let codec = sdp::find_mid(&answered, &mid)
            .filter(|sec| !sec.port_zero && sec.direction != "inactive")
            .and_then(|sec| sec.primary_codec().map(|c| (sec, c)));
        match codec {
            Some((sec, (pt, mime, clock_rate, channels, fmtp))) => {
                let is_video = sec.kind == "video";
                let codec = RTCRtpCodec {
                    mime_type: mime,
                    clock_rate,
                    channels,
                    sdp_fmtp_line: fmtp,
                    rtcp_feedback: vec![],
                };
                let rids = sdp::find_mid(&offered, &mid)
                    .map(|o| o.rids.clone())
                    .unwrap_or_default();
                let level = if is_video {
                    None
                } else {
                    sec.extmap.get(sdp::AUDIO_LEVEL_URI).copied()
                };
                let p = Arc::new(Publication::new(
                    s,
                    t.track_name.clone(),
                    mid,
                    is_video,
                    codec,
                    pt,
                    level,
                    rids,
                ));
                s.add_publication(p.clone());
                // Pushed while the meeting records: it is recorded too.
                shared.recordings.attach(shared, &p);
            }
            None => {
                r.error = Some(ApiError::BadRequest("no common codec for this track".into()).body())
            }
        }
        out.push(r);
    }
    Ok(TracksResponse {
        requires_immediate_renegotiation: false,
        session_description: Some(answer),
        tracks: out,
    })
}

async fn pull(
    shared: &Arc<Shared>,
    s: &Arc<Session>,
    tracks: Vec<TrackObject>,
) -> Result<TracksResponse, ApiError> {
    // Check every track's room first: a request naming another room's session creates nothing.
    let mut sources = Vec::new();
    for t in &tracks {
        let sid = t
            .session_id
            .as_deref()
            .ok_or_else(|| ApiError::BadRequest("a remote track needs its sessionId".into()))?;
        let src = shared.session(sid);
        if let Some(src) = &src
            && src.room != s.room
        {
            return Err(ApiError::Forbidden("track belongs to another room"));
        }
        sources.push(src);
    }
    let mut out = Vec::new();
    let mut added = Vec::new();
    for (t, src) in tracks.iter().zip(sources) {
        let r = result(t);
        let publication = src.and_then(|src| src.publication_by_name(&t.track_name));
        let Some(publication) = publication else {
            let mut r = r;
            r.error = Some(ApiError::NotFound("no such track in that session").body());
            out.push(r);
            continue;
        };
        // Send-only: a pull never carries media from the client, and removing the track later
        // turns the m-line inactive (not recvonly).
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            streams: vec![],
            send_encodings: vec![],
        };
        let sub = subscribe(shared, s, publication, t, Some(init)).await?;
        added.push((out.len(), sub));
        out.push(r);
    }
    if added.is_empty() {
        return Ok(TracksResponse {
            requires_immediate_renegotiation: false,
            session_description: None,
            tracks: out,
        });
    }
    let offer = s.offer().await?;
    s.assign_subscription_mids().await;
    for (i, sub) in added {
        out[i].mid = sub.mid.lock().unwrap().clone();
    }
    Ok(TracksResponse {
        requires_immediate_renegotiation: true,
        session_description: Some(offer),
        tracks: out,
    })
}

/// A pull of `publication` into session `s`: on a new transceiver (`init`, the node offers it) or
/// on the next m-line the client offered to receive on (`None`, the node answers).
async fn subscribe(
    shared: &Arc<Shared>,
    s: &Arc<Session>,
    publication: Arc<Publication>,
    t: &TrackObject,
    init: Option<RTCRtpTransceiverInit>,
) -> Result<Arc<Subscription>, ApiError> {
    let ssrc = rand::random::<u32>();
    let kind = if publication.is_video {
        RtpCodecKind::Video
    } else {
        RtpCodecKind::Audio
    };
    // msid: the stream is the publishing session, so a client groups a person's tracks.
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        publication.session_id.clone(),
        format!(
            "{}-{}",
            &publication.session_id[..8],
            publication.track_name
        ),
        publication.track_name.clone(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: publication.codec.clone(),
            ..Default::default()
        }],
    )));
    let media = |e: rtc::shared::error::Error| ApiError::Media(e.to_string());
    let sender = match init {
        Some(init) => {
            s.pc.add_transceiver_from_track(track.clone() as Arc<dyn TrackLocal>, Some(init))
                .await
                .map_err(media)?
                .sender()
                .await
                .ok()
                .flatten()
                .ok_or_else(|| ApiError::Media("transceiver without sender".into()))?
        }
        None => {
            s.pc.add_track(track.clone() as Arc<dyn TrackLocal>)
                .await
                .map_err(media)?
        }
    };
    let preferred = t.simulcast.as_ref().map(|p| p.preferred_rid.as_str());
    let sub = Arc::new(Subscription::new(
        s.id.clone(),
        publication,
        track,
        ssrc,
        preferred,
        s.transport_up.clone(),
        s.egress.clone(),
    ));
    *sub.sender.lock().unwrap() = Some(sender);
    s.add_subscription(sub.clone());
    tokio::spawn(crate::forward::run_feedback(
        shared.clone(),
        s.clone(),
        sub.clone(),
    ));
    Ok(sub)
}

pub async fn close(
    shared: &Arc<Shared>,
    s: &Arc<Session>,
    req: CloseTracksRequest,
) -> Result<TracksResponse, ApiError> {
    if req.tracks.is_empty() || req.tracks.len() > MAX_TRACKS_PER_SESSION {
        return Err(ApiError::BadRequest("name 1 or more tracks by mid".into()));
    }
    let _g = s.signaling.lock().await;
    if s.has_pending_offer().await {
        return Err(ApiError::Conflict(
            "the node's last offer awaits an answer (renegotiate) first",
        ));
    }
    let mut out = Vec::new();
    let mut changed = false;
    for t in &req.tracks {
        let mut r = TrackResult {
            mid: Some(t.mid.clone()),
            track_name: None,
            session_id: None,
            error: None,
        };
        if let Some(p) = s.remove_publication(&t.mid) {
            r.track_name = Some(p.track_name.clone());
            p.closed.store(true, Relaxed);
            for sub in p.take_subscribers() {
                shared.end_subscription(&sub, TrackStatus::Inactive).await;
            }
            for tr in s.pc.get_transceivers().await {
                if tr.mid().await.ok().flatten().as_deref() == Some(t.mid.as_str()) {
                    let _ = tr.set_direction(RTCRtpTransceiverDirection::Inactive).await;
                }
            }
            changed = true;
        } else if let Some(sub) = s.subscription_by_mid(&t.mid) {
            r.track_name = Some(sub.publication.track_name.clone());
            r.session_id = Some(sub.publication.session_id.clone());
            shared.end_subscription(&sub, TrackStatus::Inactive).await;
            s.remove_subscription(&sub);
            changed = true;
        } else {
            r.error = Some(ApiError::NotFound("no track with this mid").body());
        }
        out.push(r);
    }
    if !changed || req.force {
        return Ok(TracksResponse {
            requires_immediate_renegotiation: false,
            session_description: None,
            tracks: out,
        });
    }
    let offer = s.offer().await?;
    Ok(TracksResponse {
        requires_immediate_renegotiation: true,
        session_description: Some(offer),
        tracks: out,
    })
}

/// A pushed (local) track's mid, checked against the client's offer: valid, present and sending.
/// Both data paths check a push this way.
pub(crate) fn pushed_mid<'a>(
    offered: &[sdp::MediaSection],
    t: &'a TrackObject,
) -> Result<&'a str, ApiError> {
    let mid = t
        .mid
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("a local track needs its mid".into()))?;
    if !valid_name(mid, 16) {
        return Err(ApiError::BadRequest("invalid mid".into()));
    }
    let sec = sdp::find_mid(offered, mid)
        .ok_or_else(|| ApiError::BadRequest(format!("mid {mid} is not in the offer")))?;
    if !matches!(sec.direction.as_str(), "sendonly" | "sendrecv") || sec.port_zero {
        return Err(ApiError::BadRequest(format!("mid {mid} does not send")));
    }
    Ok(mid)
}
