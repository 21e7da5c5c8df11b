//! The API's calls inside the media loop: open and close sessions, push and pull tracks, the
//! node's offers and the client's answers, closing and updating tracks, a session's state.
//! Each runs to completion between two datagrams: nothing here waits.

use std::time::Instant;

use rtc::sansio::Protocol;

use edgemeet_protocol::node::{
    CloseTracksRequest, SdpType, SessionDescription, SessionStateResponse, TrackLocation,
    TrackObject, TrackResult, TrackState, TrackStatus, TracksResponse, UpdateTracksRequest,
    ViewTracksRequest,
};

use super::command::{Caller, Command, OpenRequest, Opened, SessionOp, SessionReply};
use super::connection::Connection;
use super::driver::MediaLoop;
use super::fanout::{PubId, Publication, Pull, PullId};
use super::router::ConnId;
use crate::error::ApiError;
use crate::layers::LayerTracker;
use crate::red::RedEncoder;
use crate::sdp;
use crate::stitch::Stitch;
use crate::tile_view::TileView;
use crate::tracks::{MAX_TRACKS_PER_SESSION, result};

impl MediaLoop {
    pub(super) fn command(&mut self, c: Command) {
        self.dirty = true;
        self.drain_all = true;
        match c {
            Command::Open(req, reply) => {
                let r = self.open(req);
                let _ = reply.send(r);
            }
            Command::Session {
                session,
                caller,
                op,
                reply,
            } => {
                let r = self.session_call(&session, &caller, op);
                let _ = reply.send(r);
            }
            Command::CloseWhere {
                room,
                participant,
                reply,
            } => {
                let ids: Vec<ConnId> = self
                    .conns
                    .iter()
                    .enumerate()
                    .filter_map(|(id, c)| {
                        let c = c.as_ref()?;
                        (c.owner.room == room
                            && participant
                                .as_ref()
                                .is_none_or(|p| *p == c.owner.participant))
                        .then_some(id)
                    })
                    .collect();
                let why = if participant.is_some() {
                    "participant left"
                } else {
                    "room closed"
                };
                for &id in &ids {
                    self.close(id, why);
                }
                let _ = reply.send(ids.len() as u32);
            }
            Command::Count {
                room,
                participant,
                reply,
            } => {
                let here = self.conns.iter().flatten().filter(|c| c.owner.room == room);
                let (mut n, mut mine) = (0, 0);
                for c in here {
                    n += 1;
                    mine += usize::from(c.owner.participant == participant);
                }
                let _ = reply.send((n, mine));
            }
            Command::CloseAll(reply) => {
                self.close_all();
                let _ = reply.send(());
            }
            Command::Recordable {
                room,
                recording_id,
                reply,
            } => {
                let mut out = Vec::new();
                for (i, p) in self.pubs.iter().enumerate() {
                    let Some(p) = p else { continue };
                    let Some(c) = self.conns[p.conn].as_ref() else {
                        continue;
                    };
                    let tapped = p.taps.iter().any(|t| t.consumer() == recording_id);
                    if c.owner.room == room && !tapped {
                        out.push(super::command::RecordableTrack {
                            publication: i,
                            participant: c.owner.participant.clone(),
                            session_id: c.session_id.clone(),
                            name: p.name.clone(),
                            video: p.video,
                            mime: p.mime.clone(),
                        });
                    }
                }
                let _ = reply.send(out);
            }
            Command::Untap(consumer, reply) => {
                for p in self.pubs.iter_mut().flatten() {
                    p.taps.retain(|t| t.consumer() != consumer);
                }
                let _ = reply.send(());
            }
            Command::Tap(taps, reply) => {
                let now = Instant::now();
                for (pid, tap) in taps {
                    let Some(p) = self.pubs.get_mut(pid).and_then(Option::as_mut) else {
                        continue;
                    };
                    // A later recording (or composition) of the same id replaces its tap.
                    p.taps.retain(|t| t.consumer() != tap.consumer());
                    p.taps.push(tap);
                    if p.video {
                        // Video starts at a keyframe: ask for one now rather than wait.
                        self.request_keyframe(pid, None, crate::keyframes::LAYER_INTERVAL_MS, now);
                    }
                }
                let _ = reply.send(());
            }
        }
    }

    /// A session call from `caller`: its participant, or the edge, of its meeting.
    fn session_call(
        &mut self,
        session: &str,
        caller: &Caller,
        op: SessionOp,
    ) -> Result<SessionReply, ApiError> {
        let id = *self
            .by_session
            .get(session)
            .ok_or(ApiError::NotFound("unknown session"))?;
        let now = Instant::now();
        {
            let conn = self.conns[id].as_mut().expect("indexed");
            if conn.owner.room != caller.room {
                return Err(ApiError::Forbidden("session belongs to another room"));
            }
            let edge = caller.subject == crate::auth::EDGE_SUBJECT;
            if conn.owner.participant != caller.subject && !edge {
                return Err(ApiError::Forbidden(
                    "session belongs to another participant",
                ));
            }
            if !edge {
                conn.last_activity = now;
            }
        }
        match op {
            SessionOp::Push(offer, tracks) => {
                self.no_pending_offer(id)?;
                self.push(id, &offer.sdp, &tracks, false, now)
                    .map(|(answer, tracks)| {
                        SessionReply::Tracks(TracksResponse {
                            requires_immediate_renegotiation: false,
                            session_description: Some(SessionDescription {
                                sdp_type: SdpType::Answer,
                                sdp: answer,
                            }),
                            tracks,
                        })
                    })
            }
            SessionOp::Pull(tracks) => {
                self.no_pending_offer(id)?;
                self.pull(id, &tracks, now).map(SessionReply::Tracks)
            }
            SessionOp::Renegotiate(answer) => self.renegotiate(id, &answer, now),
            SessionOp::Close(req) => {
                self.no_pending_offer(id)?;
                self.close_tracks(id, &req, now).map(SessionReply::Tracks)
            }
            SessionOp::Update(req) => Ok(SessionReply::Tracks(self.update(id, req, now))),
            SessionOp::View(req) => Ok(SessionReply::Tracks(self.view(id, req, now))),
            SessionOp::State => Ok(SessionReply::State(self.state(id))),
            SessionOp::End => {
                self.close(id, "closed by client");
                Ok(SessionReply::Done)
            }
        }
    }

    fn no_pending_offer(&self, id: ConnId) -> Result<(), ApiError> {
        if self.conns[id]
            .as_ref()
            .is_some_and(|c| c.has_pending_offer())
        {
            return Err(ApiError::Conflict(
                "the node's last offer awaits an answer (renegotiate) first",
            ));
        }
        Ok(())
    }

    /// Tells the API's tables a session is gone (see `Closed`).
    fn notify_closed(&self, session_id: &str, room: &str) {
        let _ = self.setup.closed.send(super::Closed {
            session_id: session_id.to_owned(),
            room: room.to_owned(),
        });
    }

    fn open(&mut self, req: OpenRequest) -> Result<Opened, ApiError> {
        let now = Instant::now();
        if let Some(offer) = &req.offer
            // Refuse a bad offer before a connection exists for it.
            && let Err(e) = sdp::parse(offer)
        {
            self.notify_closed(&req.session_id, &req.owner.room);
            return Err(ApiError::bad_sdp(e));
        }
        let ufrag = crate::tracks::random_id()[..16].to_owned();
        let pwd = crate::tracks::random_id();
        let (session_id, room) = (req.session_id.clone(), req.owner.room.clone());
        let conn = Connection::new(
            req.session_id.clone(),
            req.owner,
            self.local,
            &ufrag,
            &pwd,
            self.setup.metrics.clone(),
            now,
        );
        let mut conn = match conn {
            Ok(c) => c,
            Err(e) => {
                self.notify_closed(&session_id, &room);
                return Err(e);
            }
        };
        conn.deadline = conn.rtc.poll_timeout();
        let id = self.conns.len();
        self.conns.push(Some(conn));
        self.router.add(&ufrag, id);
        self.by_session.insert(req.session_id, id);
        let Some(offer) = req.offer else {
            return Ok(Opened {
                answer: None,
                tracks: Vec::new(),
            });
        };
        match self.push(id, &offer, &req.tracks, true, now) {
            Ok((answer, tracks)) => Ok(Opened {
                answer: Some(answer),
                tracks,
            }),
            Err(e) => {
                self.close(id, "push refused");
                Err(e)
            }
        }
    }

    /// The client's offer on connection `id`: its pushes (`local` tracks) and, in a session's
    /// first call (`first`), the pulls on its receive-only m-lines, answered at once.
    fn push(
        &mut self,
        id: ConnId,
        offer: &str,
        tracks: &[TrackObject],
        first: bool,
        now: Instant,
    ) -> Result<(String, Vec<TrackResult>), ApiError> {
        let offered = sdp::parse(offer).map_err(ApiError::bad_sdp)?;
        let remote: Vec<&TrackObject> = tracks
            .iter()
            .filter(|t| t.location == TrackLocation::Remote)
            .collect();
        if !remote.is_empty() && !first {
            return Err(ApiError::BadRequest(
                "push (local) and pull (remote) tracks go in separate requests".into(),
            ));
        }
        for t in tracks.iter().filter(|t| t.location == TrackLocation::Local) {
            let mid = crate::tracks::pushed_mid(&offered, t)?;
            let taken = self
                .pubs
                .iter()
                .flatten()
                .any(|p| p.conn == id && (p.mid == mid || p.name == t.track_name));
            if taken {
                return Err(ApiError::BadRequest(format!(
                    "mid {mid} or track name already pushed"
                )));
            }
        }
        let pulled = if remote.is_empty() {
            Vec::new()
        } else {
            self.offered_pulls(id, &offered, &remote)?
        };
        let conn = self.conns[id].as_mut().expect("live");
        conn.set_remote_offer(now, offer)?;
        // Pulls first: the node's tracks take the receiving m-lines in order.
        let mut outs = Vec::new();
        for &pid in &pulled {
            let p = self.pubs[pid].as_ref().expect("found");
            let publisher = self.conns[p.conn]
                .as_ref()
                .expect("live")
                .session_id
                .clone();
            let conn = self.conns[id].as_mut().expect("live");
            outs.push((
                pid,
                publisher.clone(),
                conn.add_outgoing(&publisher, &p.name, p.video, true)?,
            ));
        }
        let conn = self.conns[id].as_mut().expect("live");
        if pulled.len() < remote.len() {
            // Refused pulls: their m-lines are answered inactive.
            let mids: Vec<&str> = remote.iter().filter_map(|t| t.mid.as_deref()).collect();
            conn.set_inactive(&mids);
        }
        let answer = conn.answer(now)?;
        let answered = sdp::parse(&answer).map_err(ApiError::Media)?;
        let now_ms = self.now_ms(now);
        let mut new_pulls = Vec::new();
        for ((pid, publisher, out), t) in outs.into_iter().zip(&remote) {
            let conn = self.conns[id].as_mut().expect("live");
            if conn.mid_of_sender(out.sender).as_deref() != t.mid.as_deref() {
                return Err(ApiError::Media(
                    "a pulled track did not land on its m-line".into(),
                ));
            }
            let pull_id = self.add_pull(id, pid, publisher, t, out, now_ms);
            new_pulls.push(pull_id);
        }
        // The answer is ours: the pulls are negotiated and start once the transport is up.
        for pull_id in new_pulls {
            self.activate(pull_id, now);
        }
        let mut out = Vec::new();
        let pulled_ok = pulled.len() == remote.len();
        for t in tracks {
            let mut r = result(t);
            if t.location == TrackLocation::Remote {
                if !pulled_ok {
                    r.error =
                        Some(ApiError::NotFound("not pulled: pull it with tracks/new").body());
                }
                out.push(r);
                continue;
            }
            let session_id = self.conns[id].as_ref().expect("live").session_id.clone();
            r.session_id = Some(session_id);
            let mid = t.mid.clone().unwrap_or_default();
            let codec = sdp::find_mid(&answered, &mid)
                .filter(|sec| !sec.port_zero && sec.direction != "inactive")
                .and_then(|sec| sec.primary_codec().map(|c| (sec, c)));
            match codec {
                Some((sec, (pt, mime, clock_rate, _, _))) => {
                    let video = sec.kind == "video";
                    let rids = sdp::find_mid(&offered, &mid)
                        .map(|o| o.rids.clone())
                        .unwrap_or_default();
                    self.pubs.push(Some(Publication {
                        conn: id,
                        mid,
                        name: t.track_name.clone(),
                        video,
                        mime,
                        payload_type: pt,
                        clock_rate,
                        audio_level_id: (!video)
                            .then(|| sec.extmap.get(sdp::AUDIO_LEVEL_URI).copied())
                            .flatten(),
                        rids,
                        rid_ssrcs: Vec::new(),
                        layers: LayerTracker::default(),
                        track: None,
                        receiver: None,
                        media_ssrc: None,
                        pulls: Vec::new(),
                        keyframes: Default::default(),
                        last_seq: Vec::new(),
                        taps: Vec::new(),
                        costs: Default::default(),
                        heights: Default::default(),
                        sent: None,
                    }));
                }
                None => {
                    r.error =
                        Some(ApiError::BadRequest("no common codec for this track".into()).body())
                }
            }
            out.push(r);
        }
        Ok((answer, out))
    }

    /// The publications a session's first offer pulls (see `offer.rs`): all of them, else
    /// none (each pull then gets an error and the client pulls it again with `tracks/new`).
    fn offered_pulls(
        &self,
        id: ConnId,
        offered: &[sdp::MediaSection],
        remote: &[&TrackObject],
    ) -> Result<Vec<PubId>, ApiError> {
        let mut mids = Vec::new();
        for t in remote {
            mids.push(t.mid.as_deref().ok_or_else(|| {
                ApiError::BadRequest(
                    "a remote track in an offer names one of its recvonly m-lines (mid)".into(),
                )
            })?);
        }
        let kinds = super::offer::pulled_kinds(offered, &mids)?;
        let room = &self.conns[id].as_ref().expect("live").owner.room;
        let mut out = Vec::new();
        for (t, kind) in remote.iter().zip(kinds) {
            let sid = t
                .session_id
                .as_deref()
                .ok_or_else(|| ApiError::BadRequest("a remote track needs its sessionId".into()))?;
            let Some(&src) = self.by_session.get(sid) else {
                return Ok(Vec::new());
            };
            if self.conns[src]
                .as_ref()
                .is_some_and(|c| c.owner.room != *room)
            {
                return Err(ApiError::Forbidden("track belongs to another room"));
            }
            match self.publication_by_name(src, &t.track_name) {
                Some(pid)
                    if self.pubs[pid]
                        .as_ref()
                        .is_some_and(|p| p.video == (kind == "video")) =>
                {
                    out.push(pid)
                }
                _ => return Ok(Vec::new()),
            }
        }
        Ok(out)
    }

    fn publication_by_name(&self, conn: ConnId, name: &str) -> Option<PubId> {
        self.pubs
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| p.conn == conn && p.name == name))
    }

    fn add_pull(
        &mut self,
        conn: ConnId,
        pid: PubId,
        publisher: String,
        t: &TrackObject,
        out: super::connection::Outgoing,
        now_ms: u64,
    ) -> PullId {
        let preferred = t.simulcast.as_ref().and_then(|s| {
            self.pubs[pid]
                .as_ref()
                .and_then(|p| p.rank_of_rid(&s.preferred_rid))
        });
        let mid = self.conns[conn]
            .as_mut()
            .and_then(|c| c.mid_of_sender(out.sender));
        self.pulls.push(Some(Pull {
            conn,
            mid,
            publisher,
            track_name: t.track_name.clone(),
            publication: pid,
            sender: out.sender,
            track_id: out.track_id,
            ssrc: out.ssrc,
            payload_type: None,
            status: TrackStatus::Pending,
            preferred,
            stitch: Stitch::default(),
            red: None,
            held: Vec::new(),
            created_ms: now_ms,
            grant: Default::default(),
            view: Default::default(),
            view_cap: None,
            packets_sent: 0,
        }));
        self.pulls.len() - 1
    }

    /// A pull is negotiated (its answer applied): learn what the puller took, start forwarding
    /// and ask for its first keyframe (held until the puller's transport is up).
    fn activate(&mut self, pull_id: PullId, now: Instant) {
        let Some(pull) = self.pulls[pull_id].as_mut() else {
            return;
        };
        let Some(p) = self.pubs[pull.publication].as_mut() else {
            pull.status = TrackStatus::Inactive;
            return;
        };
        let Some(conn) = self.conns[pull.conn].as_mut() else {
            return;
        };
        match conn.negotiated(pull.sender, p.video) {
            Some(n) => {
                pull.payload_type = Some(n.payload_type);
                pull.red = n.red.map(|pt| (pt, RedEncoder::default()));
                pull.status = TrackStatus::Active;
                if !p.pulls.contains(&pull_id) {
                    p.pulls.push(pull_id);
                }
                // Every layer: the pull starts on whichever brings a keyframe first.
                self.pull_keyframe(pull_id, now);
            }
            None => {
                tracing::info!(session = %conn.session_id, "puller refused the publisher's codec");
                pull.status = TrackStatus::Inactive;
            }
        }
    }

    /// `tracks/new` naming other sessions' tracks: each on a new send-only m-line of a node
    /// offer; forwarding starts when the client's answer comes (`renegotiate`).
    fn pull(
        &mut self,
        id: ConnId,
        tracks: &[TrackObject],
        now: Instant,
    ) -> Result<TracksResponse, ApiError> {
        let room = self.conns[id].as_ref().expect("live").owner.room.clone();
        // Every track's room first: a request naming another room's session creates nothing.
        let mut sources = Vec::new();
        for t in tracks {
            let sid = t
                .session_id
                .as_deref()
                .ok_or_else(|| ApiError::BadRequest("a remote track needs its sessionId".into()))?;
            let src = self.by_session.get(sid).copied();
            if let Some(src) = src
                && self.conns[src]
                    .as_ref()
                    .is_some_and(|c| c.owner.room != room)
            {
                return Err(ApiError::Forbidden("track belongs to another room"));
            }
            sources.push(src);
        }
        let count = self.pubs.iter().flatten().filter(|p| p.conn == id).count()
            + self.pulls.iter().flatten().filter(|p| p.conn == id).count();
        if count + tracks.len() > MAX_TRACKS_PER_SESSION {
            return Err(ApiError::BadRequest(
                "too many tracks in this session".into(),
            ));
        }
        let now_ms = self.now_ms(now);
        let mut out = Vec::new();
        let mut added = Vec::new();
        for (t, src) in tracks.iter().zip(sources) {
            let mut r = result(t);
            let Some(pid) = src.and_then(|s| self.publication_by_name(s, &t.track_name)) else {
                r.error = Some(ApiError::NotFound("no such track in that session").body());
                out.push(r);
                continue;
            };
            let p = self.pubs[pid].as_ref().expect("found");
            let publisher = self.conns[p.conn]
                .as_ref()
                .expect("live")
                .session_id
                .clone();
            let (name, video) = (p.name.clone(), p.video);
            let o = self.conns[id]
                .as_mut()
                .expect("live")
                .add_outgoing(&publisher, &name, video, false)?;
            added.push((out.len(), self.add_pull(id, pid, publisher, t, o, now_ms)));
            out.push(r);
        }
        if added.is_empty() {
            return Ok(TracksResponse {
                requires_immediate_renegotiation: false,
                session_description: None,
                tracks: out,
            });
        }
        let conn = self.conns[id].as_mut().expect("live");
        let offer = conn.offer(now)?;
        for (i, pull_id) in added {
            let sender = self.pulls[pull_id].as_ref().expect("added").sender;
            let mid = self.conns[id].as_mut().expect("live").mid_of_sender(sender);
            out[i].mid = mid.clone();
            self.pulls[pull_id].as_mut().expect("added").mid = mid;
        }
        Ok(TracksResponse {
            requires_immediate_renegotiation: true,
            session_description: Some(SessionDescription {
                sdp_type: SdpType::Offer,
                sdp: offer,
            }),
            tracks: out,
        })
    }

    fn renegotiate(
        &mut self,
        id: ConnId,
        answer: &SessionDescription,
        now: Instant,
    ) -> Result<SessionReply, ApiError> {
        if answer.sdp_type != SdpType::Answer {
            return Err(ApiError::BadRequest(
                "renegotiate takes the answer to the node's offer".into(),
            ));
        }
        let conn = self.conns[id].as_mut().expect("live");
        if !conn.has_pending_offer() {
            return Err(ApiError::Conflict("no node offer is waiting for an answer"));
        }
        conn.set_remote_answer(now, &answer.sdp)?;
        let pending: Vec<PullId> = (0..self.pulls.len())
            .filter(|&i| {
                self.pulls[i]
                    .as_ref()
                    .is_some_and(|p| p.conn == id && p.status == TrackStatus::Pending)
            })
            .collect();
        for pull_id in pending {
            self.activate(pull_id, now);
        }
        Ok(SessionReply::Done)
    }

    fn close_tracks(
        &mut self,
        id: ConnId,
        req: &CloseTracksRequest,
        now: Instant,
    ) -> Result<TracksResponse, ApiError> {
        if req.tracks.is_empty() || req.tracks.len() > MAX_TRACKS_PER_SESSION {
            return Err(ApiError::BadRequest("name 1 or more tracks by mid".into()));
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
            let publication = self
                .pubs
                .iter()
                .position(|p| p.as_ref().is_some_and(|p| p.conn == id && p.mid == t.mid));
            let pull = self.pulls.iter().position(|p| {
                p.as_ref()
                    .is_some_and(|p| p.conn == id && p.mid.as_deref() == Some(t.mid.as_str()))
            });
            if let Some(pid) = publication {
                let p = self.pubs[pid].take().expect("found");
                r.track_name = Some(p.name);
                self.end_pulls_of(&p.pulls);
                let conn = self.conns[id].as_mut().expect("live");
                conn.forget_publication(pid);
                conn.set_inactive(&[t.mid.as_str()]);
                changed = true;
            } else if let Some(pull_id) = pull {
                let pull = self.pulls[pull_id].take().expect("found");
                r.track_name = Some(pull.track_name);
                r.session_id = Some(pull.publisher);
                if let Some(p) = self.pubs[pull.publication].as_mut() {
                    p.pulls.retain(|&x| x != pull_id);
                }
                self.conns[id]
                    .as_mut()
                    .expect("live")
                    .remove_outgoing(pull.sender);
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
        let offer = self.conns[id].as_mut().expect("live").offer(now)?;
        Ok(TracksResponse {
            requires_immediate_renegotiation: true,
            session_description: Some(SessionDescription {
                sdp_type: SdpType::Offer,
                sdp: offer,
            }),
            tracks: out,
        })
    }

    /// A publication ended: its pulls stay listed at their pullers as inactive until they
    /// close them (`tracks/close`), and nothing more is sent on them.
    fn end_pulls_of(&mut self, pulls: &[PullId]) {
        for &pull_id in pulls {
            if let Some(pull) = self.pulls[pull_id].as_mut() {
                pull.status = TrackStatus::Inactive;
                pull.held.clear();
            }
        }
    }

    /// The pull of connection `id` on m-line `mid`.
    fn pull_by_mid(&self, id: ConnId, mid: &str) -> Option<usize> {
        self.pulls.iter().position(|p| {
            p.as_ref()
                .is_some_and(|p| p.conn == id && p.mid.as_deref() == Some(mid))
        })
    }

    /// `tracks/update`: another simulcast layer for a pull; its keyframe is asked for at once.
    fn update(&mut self, id: ConnId, req: UpdateTracksRequest, now: Instant) -> TracksResponse {
        let mut out = Vec::new();
        for t in req.tracks {
            let mut r = TrackResult {
                mid: Some(t.mid.clone()),
                track_name: None,
                session_id: None,
                error: None,
            };
            let Some(pull_id) = self.pull_by_mid(id, &t.mid) else {
                r.error = Some(ApiError::NotFound("no pulled track with this mid").body());
                out.push(r);
                continue;
            };
            let pull = self.pulls[pull_id].as_mut().expect("found");
            let p = self.pubs[pull.publication].as_ref();
            match p.and_then(|p| Some((p.rank_of_rid(&t.simulcast.preferred_rid)?, p))) {
                Some((rank, p)) => {
                    pull.preferred = Some(rank);
                    r.track_name = Some(pull.track_name.clone());
                    let (pid, target) = (pull.publication, p.ssrc_of_rank(rank));
                    self.request_keyframe(pid, target, crate::keyframes::LAYER_INTERVAL_MS, now);
                }
                None => {
                    r.error = Some(
                        ApiError::BadRequest("the publisher sends no such simulcast layer".into())
                            .body(),
                    )
                }
            }
            out.push(r);
        }
        TracksResponse {
            requires_immediate_renegotiation: false,
            session_description: None,
            tracks: out,
        }
    }

    /// `tracks/view`: how the page shows pulled videos. A tile hidden gets no more video (its
    /// stream restarts at a keyframe); shown again, that keyframe is asked for at once. Its
    /// height and pin reach the allocation on its next tick.
    fn view(&mut self, id: ConnId, req: ViewTracksRequest, now: Instant) -> TracksResponse {
        let mut out = Vec::new();
        let mut shown_again = Vec::new();
        for t in req.tracks {
            let mut r = TrackResult {
                mid: Some(t.mid.clone()),
                track_name: None,
                session_id: None,
                error: None,
            };
            let found = self
                .pull_by_mid(id, &t.mid)
                .and_then(|i| Some((i, self.pulls[i].as_ref()?.publication)));
            let Some((pull_id, pid)) = found else {
                r.error = Some(ApiError::NotFound("no pulled track with this mid").body());
                out.push(r);
                continue;
            };
            let Some(p) = self.pubs[pid].as_ref() else {
                r.error = Some(ApiError::NotFound("its publisher stopped sending it").body());
                out.push(r);
                continue;
            };
            if !p.video {
                r.error = Some(ApiError::BadRequest("not a video track".into()).body());
                out.push(r);
                continue;
            }
            let cap = if p.rids.is_empty() {
                None
            } else {
                p.rank_for_height(t.height)
            };
            let pull = self.pulls[pull_id].as_mut().expect("found");
            let was_shown = pull.view.shown;
            pull.view = TileView {
                shown: t.shown,
                height: t.height,
                pinned: t.pinned,
            };
            pull.view_cap = cap;
            if was_shown && !t.shown {
                // Back on screen, the stream starts at a keyframe (with continuous numbering).
                pull.stitch.pause();
                pull.held.clear();
            } else if !was_shown && t.shown {
                shown_again.push(pull_id);
            }
            r.track_name = Some(pull.track_name.clone());
            out.push(r);
        }
        for pull_id in shown_again {
            self.pull_keyframe(pull_id, now);
        }
        TracksResponse {
            requires_immediate_renegotiation: false,
            session_description: None,
            tracks: out,
        }
    }

    /// A session's state as `GET /v1/sessions/{id}` shows it.
    fn state(&self, id: ConnId) -> SessionStateResponse {
        let conn = self.conns[id].as_ref().expect("live");
        let mut tracks: Vec<TrackState> = self
            .pubs
            .iter()
            .flatten()
            .filter(|p| p.conn == id)
            .map(|p| TrackState {
                location: TrackLocation::Local,
                mid: Some(p.mid.clone()),
                track_name: p.name.clone(),
                session_id: None,
                status: TrackStatus::Active,
                forwarding: None,
                packets_sent: None,
                shown: None,
                sending_rids: p
                    .sent
                    .map(|s| p.rids[..=s.top().min(p.rids.len() - 1)].to_vec()),
            })
            .collect();
        tracks.sort_by(|a, b| a.mid.cmp(&b.mid));
        tracks.extend(
            self.pulls
                .iter()
                .flatten()
                .filter(|p| p.conn == id)
                .map(|p| TrackState {
                    location: TrackLocation::Remote,
                    mid: p.mid.clone(),
                    track_name: p.track_name.clone(),
                    session_id: Some(p.publisher.clone()),
                    // Its publisher left or closed it.
                    status: if self.pubs[p.publication].is_some() {
                        p.status
                    } else {
                        TrackStatus::Inactive
                    },
                    forwarding: self.forwarding(p),
                    packets_sent: Some(p.packets_sent),
                    shown: self.pubs[p.publication]
                        .as_ref()
                        .filter(|x| x.video)
                        .map(|_| p.view.shown),
                    sending_rids: None,
                }),
        );
        SessionStateResponse {
            session_id: conn.session_id.clone(),
            connection_state: conn.state.to_string(),
            tracks,
            downlink: self.downlink_state(id),
        }
    }

    pub(super) fn close(&mut self, id: ConnId, why: &str) {
        let Some(mut conn) = self.conns.get_mut(id).and_then(Option::take) else {
            return;
        };
        self.dirty = true;
        tracing::info!(session = %conn.session_id, reason = why, "session closed");
        self.notify_closed(&conn.session_id, &conn.owner.room);
        let _ = conn.rtc.close();
        self.router.remove(id);
        self.by_session.remove(&conn.session_id);
        let mut ended = Vec::new();
        for p in self.pubs.iter_mut() {
            if p.as_ref().is_some_and(|p| p.conn == id) {
                ended.extend(p.take().expect("checked").pulls);
            }
        }
        self.end_pulls_of(&ended);
        for (pull_id, pull) in self.pulls.iter_mut().enumerate() {
            if let Some(x) = pull.as_ref().filter(|p| p.conn == id) {
                if let Some(p) = self.pubs[x.publication].as_mut() {
                    p.pulls.retain(|&y| y != pull_id);
                }
                *pull = None;
            }
        }
        let o = &conn.owner;
        let here = self
            .conns
            .iter()
            .flatten()
            .filter(|c| c.owner.room == o.room);
        let (mut any, mut same) = (false, false);
        for c in here {
            any = true;
            same |= c.owner.participant == o.participant;
        }
        if !any {
            self.speakers.forget_room(&o.room);
        } else if !same {
            self.speakers.forget_participant(&o.room, &o.participant);
        }
    }

    pub(super) fn close_all(&mut self) {
        for id in 0..self.conns.len() {
            self.close(id, "node stopped");
        }
    }
}
