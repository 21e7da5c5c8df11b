//! The media loop: one OS thread that owns a UDP socket and every connection, publication and
//! pull of its rooms. Each wake-up: commands, then every datagram the socket holds (routed to its
//! connection's `handle_read`), then due timers; then every connection is drained: what it read
//! (RTP to fan out), its events, and what it wants sent (`poll_write` -> the socket).
//! No media logic here: that is `fanout.rs` and the pure models.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use edgemeet_protocol::node::{SessionStateResponse, TrackLocation, TrackState, TrackStatus};

use super::command::{Command, OpenRequest, Opened};
use super::connection::Connection;
use super::fanout::{PubId, Publication, Pull, PullId, Step};
use super::router::{ConnId, Router};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::rewrite::Rewriter;

pub const SOCKET: mio::Token = mio::Token(0);
pub const WAKER: mio::Token = mio::Token(1);

/// Longest sleep with nothing due (a bound, so a lost wake-up costs little).
const MAX_SLEEP: Duration = Duration::from_millis(50);

pub struct MediaLoop {
    socket: mio::net::UdpSocket,
    local: SocketAddr,
    metrics: Arc<Metrics>,
    epoch: Instant,
    router: Router,
    conns: Vec<Option<Connection>>,
    by_session: HashMap<String, ConnId>,
    pubs: Vec<Option<Publication>>,
    pulls: Vec<Option<Pull>>,
}

impl MediaLoop {
    pub fn new(socket: mio::net::UdpSocket, metrics: Arc<Metrics>) -> io::Result<Self> {
        Ok(Self {
            local: socket.local_addr()?,
            socket,
            metrics,
            epoch: Instant::now(),
            router: Router::default(),
            conns: Vec::new(),
            by_session: HashMap::new(),
            pubs: Vec::new(),
            pulls: Vec::new(),
        })
    }

    /// Runs until the command channel closes (the engine was dropped).
    pub fn run(mut self, mut poll: mio::Poll, commands: Receiver<Command>) {
        let mut events = mio::Events::with_capacity(16);
        let mut buf = vec![0u8; 2048];
        loop {
            let now = Instant::now();
            let sleep = self
                .next_deadline()
                .map_or(MAX_SLEEP, |d| d.saturating_duration_since(now))
                .min(MAX_SLEEP);
            if let Err(e) = poll.poll(&mut events, Some(sleep))
                && e.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!(error = %e, "media loop: poll failed");
                return;
            }
            loop {
                match commands.try_recv() {
                    Ok(c) => self.command(c),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return self.close_all(),
                }
            }
            loop {
                match self.socket.recv_from(&mut buf) {
                    Ok((n, from)) => self.datagram(from, &buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // ICMP errors of earlier sends surface here; the socket is fine.
                    Err(e) if is_transient(&e) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "media loop: receive failed");
                        break;
                    }
                }
            }
            self.timeouts(Instant::now());
            self.drain(Instant::now());
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn now_ms(&self, now: Instant) -> u64 {
        now.duration_since(self.epoch).as_millis() as u64
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.conns.iter().flatten().filter_map(|c| c.deadline).min()
    }

    fn datagram(&mut self, from: SocketAddr, data: &[u8]) {
        let Some(id) = self.router.route(from, data) else {
            self.metrics.packets_dropped.fetch_add(1, Relaxed);
            return;
        };
        let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        let msg = TaggedBytesMut {
            now: Instant::now(),
            transport: TransportContext {
                local_addr: self.local,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(data),
        };
        if let Err(e) = conn.rtc.handle_read(msg) {
            tracing::debug!(session = %conn.session_id, error = %e, "datagram refused");
        }
    }

    fn timeouts(&mut self, now: Instant) {
        for conn in self.conns.iter_mut().flatten() {
            if conn.deadline.is_some_and(|d| d <= now)
                && let Err(e) = conn.rtc.handle_timeout(now)
            {
                tracing::debug!(session = %conn.session_id, error = %e, "timeout handling failed");
            }
        }
    }

    /// Everything the connections produced: RTP read (fanned out), events, datagrams to send.
    fn drain(&mut self, now: Instant) {
        let mut read = Vec::new();
        let mut keyframe_asks = Vec::new();
        let mut events = Vec::new();
        for (id, conn) in self.conns.iter_mut().enumerate() {
            let Some(conn) = conn else { continue };
            while let Some(m) = conn.rtc.poll_read() {
                match m.message {
                    RTCMessage::RtpPacket(track, pkt) => read.push((id, track, pkt)),
                    RTCMessage::RtcpPacket(track, pkts) => {
                        let keyframe = pkts.iter().any(|p| {
                            p.as_any().is::<PictureLossIndication>()
                                || p.as_any().is::<FullIntraRequest>()
                        });
                        if keyframe {
                            keyframe_asks.push((id, track));
                        }
                    }
                    _ => {}
                }
            }
            while let Some(e) = conn.rtc.poll_event() {
                events.push((id, e));
            }
        }
        for (id, e) in events {
            self.event(id, e, now);
        }
        for (id, track, pkt) in read {
            self.forward(id, &track, pkt, now);
        }
        // A puller's keyframe request goes to the publisher of what it pulls, paced.
        // (counted as pli_in by the node's RTCP interceptor, `interceptor.rs`)
        for (id, track) in keyframe_asks {
            let publication = self
                .pulls
                .iter()
                .flatten()
                .find(|p| p.conn == id && p.out.track_id == track)
                .map(|p| p.publication);
            if let Some(pid) = publication {
                self.request_keyframe(pid, now);
            }
        }
        let mut closed = Vec::new();
        for (id, conn) in self.conns.iter_mut().enumerate() {
            let Some(conn) = conn else { continue };
            while let Some(out) = conn.rtc.poll_write() {
                match self.socket.send_to(&out.message, out.transport.peer_addr) {
                    Ok(_) => {}
                    Err(e) if is_transient(&e) => {
                        self.metrics.packets_dropped.fetch_add(1, Relaxed);
                    }
                    Err(e) => tracing::debug!(error = %e, "media loop: send failed"),
                }
            }
            conn.deadline = conn.rtc.poll_timeout();
            if matches!(
                conn.state,
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
            ) {
                closed.push(id);
            }
        }
        for id in closed {
            self.close(id, "connection failed");
        }
    }

    fn event(&mut self, id: ConnId, e: RTCPeerConnectionEvent, now: Instant) {
        match e {
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                let Some(conn) = self.conns[id].as_mut() else {
                    return;
                };
                tracing::debug!(session = %conn.session_id, %state, "connection state");
                conn.state = state;
                if state == RTCPeerConnectionState::Connected {
                    // Its pulls start at a keyframe: ask their publishers now.
                    let pubs: Vec<PubId> = self
                        .pulls
                        .iter()
                        .flatten()
                        .filter(|p| p.conn == id)
                        .map(|p| p.publication)
                        .collect();
                    for p in pubs {
                        self.request_keyframe(p, now);
                    }
                }
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                let Some(conn) = self.conns[id].as_mut() else {
                    return;
                };
                let Some(mid) = conn.mid_of_receiver(init.receiver_id) else {
                    return;
                };
                if let Some(p) = self
                    .pubs
                    .iter_mut()
                    .flatten()
                    .find(|p| p.conn == id && p.mid == mid)
                {
                    p.track = Some(init.track_id);
                    p.receiver = Some(init.receiver_id);
                    p.media_ssrc = Some(init.ssrc);
                }
            }
            _ => {}
        }
    }

    /// A publisher's packet to every pull of its track whose connection is up.
    fn forward(&mut self, from: ConnId, track: &str, pkt: rtp::Packet, now: Instant) {
        let Some(pid) = self.pubs.iter().position(|p| {
            p.as_ref()
                .is_some_and(|p| p.conn == from && p.track.as_deref() == Some(track))
        }) else {
            return;
        };
        self.metrics.packets_in.fetch_add(1, Relaxed);
        let now_ms = self.now_ms(now);
        let (video, pulls) = {
            let p = self.pubs[pid].as_mut().expect("found above");
            if p.media_ssrc.is_none() {
                p.media_ssrc = Some(pkt.header.ssrc);
            }
            (p.video, p.pulls.clone())
        };
        let mut need_keyframe = false;
        for pull_id in pulls {
            let Some(pull) = self.pulls[pull_id].as_mut() else {
                continue;
            };
            let Some(conn) = self.conns[pull.conn].as_mut() else {
                continue;
            };
            if !conn.is_up() {
                continue;
            }
            match pull.step(&pkt, video, now_ms) {
                Step::Send(out) => {
                    let n = out.payload.len() as u64;
                    let sent = conn
                        .rtc
                        .rtp_sender(pull.out.sender)
                        .map(|mut s| s.write_rtp(now, out));
                    match sent {
                        Some(Ok(())) => {
                            self.metrics.packets_out.fetch_add(1, Relaxed);
                            self.metrics.bytes_out.fetch_add(n, Relaxed);
                        }
                        _ => {
                            self.metrics.packets_dropped.fetch_add(1, Relaxed);
                        }
                    }
                }
                Step::Drop => {}
                Step::NeedKeyframe => need_keyframe = true,
            }
        }
        if need_keyframe {
            self.request_keyframe(pid, now);
        }
    }

    fn request_keyframe(&mut self, pid: PubId, now: Instant) {
        let now_ms = self.now_ms(now);
        let Some(p) = self.pubs.get_mut(pid).and_then(Option::as_mut) else {
            return;
        };
        let (Some(receiver), Some(media_ssrc)) = (p.receiver, p.media_ssrc) else {
            return;
        };
        if !p.video || !p.may_request_keyframe(now_ms) {
            return;
        }
        let Some(conn) = self.conns[p.conn].as_mut() else {
            return;
        };
        if let Some(mut r) = conn.rtc.rtp_receiver(receiver) {
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            };
            if r.write_rtcp(now, vec![Box::new(pli)]).is_ok() {
                self.metrics.pli_out.fetch_add(1, Relaxed);
            }
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Open(req, reply) => {
                let r = self.open(req);
                let _ = reply.send(r);
            }
            Command::State(session, reply) => {
                let _ = reply.send(self.state(&session));
            }
            Command::RoomOf(session, reply) => {
                let room = self
                    .by_session
                    .get(&session)
                    .and_then(|&id| self.conns[id].as_ref())
                    .map(|c| c.room.clone());
                let _ = reply.send(room);
            }
            Command::Close(session, reply) => {
                let found = self.by_session.get(&session).copied();
                if let Some(id) = found {
                    self.close(id, "closed");
                }
                let _ = reply.send(found.is_some());
            }
        }
    }

    fn open(&mut self, req: OpenRequest) -> Result<Opened, ApiError> {
        let now = Instant::now();
        let sections = crate::sdp::parse(&req.offer).map_err(ApiError::bad_sdp)?;
        let mut pushes = Vec::new();
        for (mid, name) in &req.pushes {
            let Some(m) = sections.iter().find(|m| m.mid.as_deref() == Some(mid)) else {
                return Err(ApiError::BadRequest(format!("mid {mid} not in offer")));
            };
            pushes.push((mid.clone(), name.clone(), m.kind == "video"));
        }
        let mids: Vec<&str> = req.pulls.iter().map(|p| p.mid.as_str()).collect();
        let kinds = super::offer::pulled_kinds(&sections, &mids)?;
        // The publications pulled: all of them, else none (each pull then gets an error).
        let mut pulled = Vec::new();
        for p in &req.pulls {
            let found = self.by_session.get(&p.publisher).and_then(|&c| {
                let room_ok = self.conns[c].as_ref()?.room == req.room;
                room_ok.then(|| {
                    self.pubs.iter().position(|x| {
                        x.as_ref()
                            .is_some_and(|x| x.conn == c && x.name == p.track_name)
                    })
                })?
            });
            let kind_ok = |pid: usize| {
                self.pubs[pid]
                    .as_ref()
                    .is_some_and(|x| x.video == (kinds[pulled.len()] == "video"))
            };
            match found.filter(|&pid| kind_ok(pid)) {
                Some(pid) => pulled.push(pid),
                None => {
                    pulled.clear();
                    break;
                }
            }
        }
        let ufrag = crate::tracks::random_id()[..16].to_owned();
        let pwd = crate::tracks::random_id();
        let mut conn = Connection::new(
            req.session_id.clone(),
            req.room,
            self.local,
            &ufrag,
            &pwd,
            self.metrics.clone(),
            now,
        )?;
        conn.set_remote_offer(now, &req.offer)?;
        let mut senders = Vec::new();
        let pull_names: Vec<(String, String, String)> = req
            .pulls
            .iter()
            .map(|p| (p.mid.clone(), p.publisher.clone(), p.track_name.clone()))
            .collect();
        let all_pulled = pulled.len() == req.pulls.len();
        if all_pulled {
            for &pid in &pulled {
                let p = self.pubs[pid].as_ref().expect("found above");
                let publisher = self.conns[p.conn]
                    .as_ref()
                    .expect("live")
                    .session_id
                    .clone();
                senders.push((
                    pid,
                    p.video,
                    conn.add_outgoing(&publisher, &p.name, p.video)?,
                ));
            }
        }
        if !all_pulled {
            // Refused pulls: their m-lines are answered inactive.
            conn.set_inactive(&mids);
        }
        let answer = conn.answer(now)?;
        let id = self.conns.len();
        let mut new_pulls = Vec::new();
        for ((pid, video, (sender, ssrc)), names) in senders.into_iter().zip(pull_names) {
            if let Some(out) = conn.outgoing(sender, ssrc, video) {
                new_pulls.push((pid, out, names));
            }
        }
        conn.deadline = conn.rtc.poll_timeout();
        self.conns.push(Some(conn));
        self.router.add(&ufrag, id);
        self.by_session.insert(req.session_id, id);
        for (mid, name, video) in pushes {
            self.pubs.push(Some(Publication {
                conn: id,
                mid,
                name,
                video,
                track: None,
                receiver: None,
                media_ssrc: None,
                pulls: Vec::new(),
                last_keyframe_request_ms: None,
            }));
        }
        for (pid, out, (mid, publisher, track_name)) in new_pulls {
            let pull_id: PullId = self.pulls.len();
            self.pulls.push(Some(Pull {
                conn: id,
                mid,
                publisher,
                track_name,
                publication: pid,
                out,
                rewriter: Rewriter::default(),
            }));
            if let Some(p) = self.pubs[pid].as_mut() {
                p.pulls.push(pull_id);
            }
        }
        Ok(Opened {
            answer,
            pulled: all_pulled,
        })
    }

    /// A session's meeting and its state as `GET /v1/sessions/{id}` shows it.
    fn state(&self, session: &str) -> Option<(String, SessionStateResponse)> {
        let id = *self.by_session.get(session)?;
        let conn = self.conns[id].as_ref()?;
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
                    mid: Some(p.mid.clone()),
                    track_name: p.track_name.clone(),
                    session_id: Some(p.publisher.clone()),
                    // Its publisher left or closed it.
                    status: if self.pubs[p.publication].is_some() {
                        TrackStatus::Active
                    } else {
                        TrackStatus::Inactive
                    },
                }),
        );
        let state = SessionStateResponse {
            session_id: conn.session_id.clone(),
            connection_state: conn.state.to_string(),
            tracks,
        };
        Some((conn.room.clone(), state))
    }

    fn close(&mut self, id: ConnId, why: &str) {
        let Some(mut conn) = self.conns.get_mut(id).and_then(Option::take) else {
            return;
        };
        tracing::debug!(session = %conn.session_id, why, "session closed");
        let _ = conn.rtc.close();
        self.router.remove(id);
        self.by_session.remove(&conn.session_id);
        for p in self.pubs.iter_mut() {
            if p.as_ref().is_some_and(|p| p.conn == id) {
                *p = None;
            }
        }
        for (pull_id, pull) in self.pulls.iter_mut().enumerate() {
            if pull.as_ref().is_some_and(|p| p.conn == id) {
                *pull = None;
                for p in self.pubs.iter_mut().flatten() {
                    p.pulls.retain(|&x| x != pull_id);
                }
            }
        }
    }

    fn close_all(&mut self) {
        for id in 0..self.conns.len() {
            self.close(id, "node stopped");
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::TimedOut
    )
}
