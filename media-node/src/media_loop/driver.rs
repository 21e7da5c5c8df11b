//! The media loop: one OS thread that owns a UDP socket and every connection, publication and
//! pull of its rooms. Each wake-up: commands, then every datagram the socket holds (routed to its
//! connection's `handle_read`), then due timers; then every connection is drained: what it read
//! (RTP to fan out), its events, and what it wants sent (`poll_write` -> the socket).
//! No media logic here: that is `fanout.rs` and the pure models; the API's calls are
//! `sessions.rs`.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use edgemeet_protocol::node::{NodeEvent, TrackStatus};
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use super::LoopGauges;
use super::command::Command;
use super::connection::Connection;
use super::fanout::{PubId, Publication, Pull, PullId, Step};
use super::router::{ConnId, Router};
use crate::metrics::Metrics;
use crate::speaker::SpeakerTracker;

pub const SOCKET: mio::Token = mio::Token(0);
pub const WAKER: mio::Token = mio::Token(1);

/// Longest sleep with nothing due (a bound, so a lost wake-up costs little).
const MAX_SLEEP: Duration = Duration::from_millis(50);
/// How often the dominant speaker of each room is re-evaluated.
const SPEAKER_TICK: Duration = Duration::from_millis(300);

/// What the loop needs from the node's configuration and the tokio side.
pub struct LoopSetup {
    pub metrics: Arc<Metrics>,
    pub gauges: Arc<LoopGauges>,
    pub events: tokio::sync::mpsc::UnboundedSender<NodeEvent>,
    /// A session silent this long (and not connected) is closed.
    pub idle_timeout: Duration,
}

pub struct MediaLoop {
    socket: mio::net::UdpSocket,
    pub(super) local: SocketAddr,
    pub(super) setup: LoopSetup,
    epoch: Instant,
    pub(super) router: Router,
    pub(super) conns: Vec<Option<Connection>>,
    pub(super) by_session: HashMap<String, ConnId>,
    pub(super) pubs: Vec<Option<Publication>>,
    pub(super) pulls: Vec<Option<Pull>>,
    pub(super) speakers: SpeakerTracker,
    /// The tables changed: the gauges are recomputed after this wake-up.
    pub(super) dirty: bool,
    next_reap: Instant,
    next_speaker_tick: Instant,
    next_bandwidth_tick: Instant,
}

impl MediaLoop {
    pub fn new(socket: mio::net::UdpSocket, setup: LoopSetup) -> io::Result<Self> {
        let now = Instant::now();
        Ok(Self {
            local: socket.local_addr()?,
            socket,
            setup,
            epoch: now,
            router: Router::default(),
            conns: Vec::new(),
            by_session: HashMap::new(),
            pubs: Vec::new(),
            pulls: Vec::new(),
            speakers: SpeakerTracker::default(),
            dirty: false,
            next_reap: now,
            next_speaker_tick: now + SPEAKER_TICK,
            next_bandwidth_tick: now + super::bandwidth::TICK,
        })
    }

    pub(super) fn metrics(&self) -> &Metrics {
        &self.setup.metrics
    }

    /// Runs until the command channel closes (the `LoopHandle` was dropped).
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
            let now = Instant::now();
            loop {
                match self.socket.recv_from(&mut buf) {
                    Ok((n, from)) => self.datagram(from, &buf[..n], now),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // ICMP errors of earlier sends surface here; the socket is fine.
                    Err(e) if is_transient(&e) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "media loop: receive failed");
                        break;
                    }
                }
            }
            let now = Instant::now();
            self.timeouts(now);
            self.timers(now);
            self.drain(now);
            if self.dirty {
                self.dirty = false;
                self.publish_gauges();
            }
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub(super) fn now_ms(&self, now: Instant) -> u64 {
        now.duration_since(self.epoch).as_millis() as u64
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.conns.iter().flatten().filter_map(|c| c.deadline).min()
    }

    fn datagram(&mut self, from: SocketAddr, data: &[u8], now: Instant) {
        let Some(id) = self.router.route(from, data) else {
            self.metrics().packets_dropped.fetch_add(1, Relaxed);
            return;
        };
        let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        conn.last_activity = now;
        let msg = TaggedBytesMut {
            now,
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

    /// The loop's own timers: idle reaper, dominant speaker, bandwidth allocation.
    fn timers(&mut self, now: Instant) {
        if now >= self.next_bandwidth_tick {
            self.next_bandwidth_tick = now + super::bandwidth::TICK;
            self.bandwidth_tick(now);
        }
        if now >= self.next_reap {
            let timeout = self.setup.idle_timeout;
            self.next_reap =
                now + (timeout / 4).clamp(Duration::from_millis(200), Duration::from_secs(2));
            // Silent (no datagram, no call of its participant) and not connected: a connected
            // session is alive by ICE consent even when it sends no media.
            let idle: Vec<ConnId> = self
                .conns
                .iter()
                .enumerate()
                .filter_map(|(id, c)| {
                    let c = c.as_ref()?;
                    (now.saturating_duration_since(c.last_activity) > timeout && !c.is_up())
                        .then_some(id)
                })
                .collect();
            for id in idle {
                self.close(id, "idle");
                self.metrics().sessions_reaped.fetch_add(1, Relaxed);
            }
        }
        if now >= self.next_speaker_tick {
            self.next_speaker_tick = now + SPEAKER_TICK;
            for (route, room, participant) in self.speakers.tick(now) {
                let _ = self.setup.events.send(NodeEvent::DominantSpeaker {
                    route,
                    room,
                    participant,
                });
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
                        // Counted as pli_in by the node's RTCP interceptor (`rtcp_to_app.rs`).
                        for p in &pkts {
                            let any = p.as_any();
                            let media_ssrc =
                                if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                                    Some(pli.media_ssrc)
                                } else {
                                    any.downcast_ref::<FullIntraRequest>().map(|f| f.media_ssrc)
                                };
                            if let Some(ssrc) = media_ssrc {
                                keyframe_asks.push((id, track.clone(), ssrc));
                            }
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
        // A puller's keyframe request goes to the publisher of what it pulls, on the layer it
        // gets, paced. A compound is attributed by its first SSRC: each request by its own.
        for (id, track, ssrc) in keyframe_asks {
            let pull = self
                .pulls
                .iter()
                .position(|p| p.as_ref().is_some_and(|p| p.conn == id && p.ssrc == ssrc))
                .or_else(|| {
                    self.pulls.iter().position(|p| {
                        p.as_ref()
                            .is_some_and(|p| p.conn == id && p.track_id == track)
                    })
                });
            if let Some(pull) = pull
                && !self.pull_keyframe(pull, now)
            {
                self.metrics().pli_suppressed.fetch_add(1, Relaxed);
            }
        }
        let mut failed = Vec::new();
        for (id, conn) in self.conns.iter_mut().enumerate() {
            let Some(conn) = conn else { continue };
            while let Some(out) = conn.rtc.poll_write() {
                match self.socket.send_to(&out.message, out.transport.peer_addr) {
                    Ok(_) => {}
                    Err(e) if is_transient(&e) => {
                        self.setup.metrics.packets_dropped.fetch_add(1, Relaxed);
                    }
                    Err(e) => tracing::debug!(error = %e, "media loop: send failed"),
                }
            }
            conn.deadline = conn.rtc.poll_timeout();
            if matches!(
                conn.state,
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
            ) {
                failed.push(id);
            }
        }
        for id in failed {
            self.close(id, "ice failed");
            self.metrics().sessions_reaped.fetch_add(1, Relaxed);
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
                self.dirty = true;
                if state == RTCPeerConnectionState::Connected && !conn.was_up {
                    conn.was_up = true;
                    conn.up_at = Some(now);
                    self.transport_up(id, now);
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
                    match init.rid.as_deref() {
                        Some(rid) if !rid.is_empty() => p.bind_layer(rid, init.ssrc),
                        _ => p.media_ssrc = Some(init.ssrc),
                    }
                    // No keyframe request here: an encoder's new stream starts with one, and a
                    // request now would spend the publisher's allowance (docs/field-notes.md).
                }
            }
            _ => {}
        }
    }

    /// A connection's transport came up for the first time: a pull with nothing held (no
    /// keyframe came while it connected) asks for one. What pulls held goes out with their
    /// publisher's next packet (`forward`), a few ms after the DTLS handshake's last flight.
    fn transport_up(&mut self, id: ConnId, now: Instant) {
        let waiting: Vec<PullId> = (0..self.pulls.len())
            .filter(|&i| {
                self.pulls[i].as_ref().is_some_and(|p| {
                    p.conn == id && p.held.is_empty() && p.status == TrackStatus::Active
                })
            })
            .collect();
        for pull_id in waiting {
            self.pull_keyframe(pull_id, now);
        }
    }

    /// Writes a prepared packet on a puller's sender (rtc: interceptors, SRTP).
    fn send(
        &mut self,
        conn: ConnId,
        sender: rtc::rtp_transceiver::RTCRtpSenderId,
        pkt: rtp::Packet,
        now: Instant,
    ) {
        let n = pkt.payload.len() as u64;
        let sent = self.conns[conn]
            .as_mut()
            .and_then(|c| c.rtc.rtp_sender(sender))
            .map(|mut s| s.write_rtp(now, pkt));
        let m = &self.setup.metrics;
        match sent {
            Some(Ok(())) => {
                m.packets_out.fetch_add(1, Relaxed);
                m.bytes_out.fetch_add(n, Relaxed);
            }
            _ => {
                m.packets_dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// A publisher's packet to every pull of its track.
    fn forward(&mut self, from: ConnId, track: &str, pkt: rtp::Packet, now: Instant) {
        let Some(pid) = self.pubs.iter().position(|p| {
            p.as_ref()
                .is_some_and(|p| p.conn == from && p.track.as_deref() == Some(track))
        }) else {
            return;
        };
        let t0 = Instant::now();
        let m = self.setup.metrics.clone();
        m.packets_in.fetch_add(1, Relaxed);
        m.bytes_in.fetch_add(pkt.payload.len() as u64, Relaxed);
        let now_ms = self.now_ms(now);
        let mut tap_keyframe = None;
        let (view, pulls) = {
            let p = self.pubs[pid].as_mut().expect("found above");
            let lost = p.lost_before(pkt.header.ssrc, pkt.header.sequence_number);
            if lost > 0 {
                m.ingress_lost.fetch_add(lost, Relaxed);
            }
            if let Some(id) = p.audio_level_id
                && let Some(ext) = pkt.header.get_extension(id)
                && let Some(b) = ext.first()
                && let Some(conn) = self.conns[from].as_ref()
            {
                let o = &conn.owner;
                self.speakers
                    .observe(&o.room, &o.route, &o.participant, b & 0x7f, now);
            }
            if pkt.header.payload_type != p.payload_type {
                // The publisher's RTX or another codec: not forwarded as media.
                return;
            }
            if p.rids.is_empty() && p.media_ssrc.is_none() {
                p.media_ssrc = Some(pkt.header.ssrc);
            }
            let layers = if p.tap.is_some() {
                p.layer_ssrcs()
            } else {
                Vec::new()
            };
            match p.tap.as_mut().map(|t| t.offer(&layers, &pkt)) {
                // The recorder lost the stream (start, a gap): a keyframe on this layer.
                Some(Some(true)) => tap_keyframe = Some(pkt.header.ssrc),
                Some(Some(false)) | None => {}
                // Its recording ended.
                Some(None) => p.tap = None,
            }
            let view = p
                .layers
                .on_packet(pkt.header.ssrc, pkt.header.timestamp, now_ms);
            // What this layer costs a viewer (bandwidth allocation).
            let rank = if p.rids.is_empty() {
                Some(0)
            } else {
                view.rank_of(pkt.header.ssrc)
            };
            if let Some(rank) = rank {
                p.costs.on_packet(rank, pkt.payload.len(), now_ms);
            }
            (view, p.pulls.clone())
        };
        let mut need_keyframe = None;
        for pull_id in pulls.iter().copied() {
            let Some(pull) = self.pulls[pull_id].as_mut() else {
                continue;
            };
            let Some(conn) = self.conns[pull.conn].as_ref() else {
                continue;
            };
            let (up, conn_id, sender) = (conn.is_up(), pull.conn, pull.sender);
            if !up && conn.was_up {
                // Its transport went down: nothing is forwarded until it is back.
                continue;
            }
            // Up in this very wake-up: keep holding until the handshake's last flight is out.
            let up = up && conn.up_at.is_some_and(|t| t < now);
            if up && !pull.held.is_empty() {
                // Its transport came up: what was held for it first (from its first keyframe).
                let held = std::mem::take(&mut pull.held);
                for h in held {
                    self.send(conn_id, sender, h, now);
                }
            }
            let (Some(pull), Some(p)) = (self.pulls[pull_id].as_mut(), self.pubs[pid].as_ref())
            else {
                continue;
            };
            match pull.step(p, &view, &pkt, now_ms) {
                Step::Send(out) if up => self.send(conn_id, sender, out, now),
                Step::Send(out) => pull.hold(out),
                Step::Drop => {}
                Step::NeedKeyframe(ssrc) => need_keyframe = Some(ssrc),
            }
        }
        if let Some(ssrc) = tap_keyframe {
            self.request_keyframe(pid, Some(ssrc), crate::keyframes::LAYER_INTERVAL_MS, now);
        }
        if let Some(ssrc) = need_keyframe {
            // A pull waits on this layer's keyframe to switch: asked as often as the publisher
            // takes requests (every frame without one is a frozen frame).
            self.request_keyframe(
                pid,
                Some(ssrc),
                crate::keyframes::YOUNG_LAYER_INTERVAL_MS,
                now,
            );
        }
        let due = self.pubs[pid]
            .as_mut()
            .and_then(|p| p.keyframes.due(now_ms));
        if let Some(ssrc) = due {
            self.send_pli(pid, ssrc, now);
        }
        if !pulls.is_empty() {
            m.observe_latency_us(t0.elapsed().as_micros() as u64);
        }
    }

    /// A pull asks its publisher for a keyframe (its puller asked, or it starts). False when
    /// nothing went out or waits (rate limit).
    pub(super) fn pull_keyframe(&mut self, pull_id: PullId, now: Instant) -> bool {
        let now_ms = self.now_ms(now);
        let Some(pull) = self.pulls[pull_id].as_ref() else {
            return false;
        };
        let Some(p) = self.pubs[pull.publication].as_ref() else {
            return false;
        };
        let target = pull.keyframe_target(p);
        let interval = pull.keyframe_interval_ms(now_ms);
        self.request_keyframe(pull.publication, target, interval, now)
    }

    /// Asks a publication for a keyframe on layer `ssrc` (or every layer), paced.
    pub(super) fn request_keyframe(
        &mut self,
        pid: PubId,
        ssrc: Option<u32>,
        interval_ms: u64,
        now: Instant,
    ) -> bool {
        let now_ms = self.now_ms(now);
        let Some(p) = self.pubs.get_mut(pid).and_then(Option::as_mut) else {
            return false;
        };
        let Some(send) = p.keyframe_request(ssrc, now_ms, interval_ms) else {
            return false;
        };
        for s in send {
            self.send_pli(pid, s, now);
        }
        true
    }

    fn send_pli(&mut self, pid: PubId, media_ssrc: u32, now: Instant) {
        let Some(p) = self.pubs[pid].as_ref() else {
            return;
        };
        let Some(receiver) = p.receiver else { return };
        let Some(conn) = self.conns[p.conn].as_mut() else {
            return;
        };
        if let Some(mut r) = conn.rtc.rtp_receiver(receiver) {
            tracing::debug!(media_ssrc, "keyframe asked of a publisher");
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            };
            if r.write_rtcp(now, vec![Box::new(pli)]).is_ok() {
                self.setup.metrics.pli_out.fetch_add(1, Relaxed);
            }
        }
    }

    /// Recomputes the gauges the node's `/metrics` and heartbeats add up.
    fn publish_gauges(&self) {
        let g = &self.setup.gauges;
        let conns: Vec<&Connection> = self.conns.iter().flatten().collect();
        let mut rooms: Vec<&str> = conns.iter().map(|c| c.owner.room.as_str()).collect();
        rooms.sort_unstable();
        rooms.dedup();
        g.sessions.store(conns.len() as u64, Relaxed);
        let up = conns.iter().filter(|c| c.is_up()).count();
        g.sessions_up.store(up as u64, Relaxed);
        g.rooms.store(rooms.len() as u64, Relaxed);
        g.tracks_published
            .store(self.pubs.iter().flatten().count() as u64, Relaxed);
        let subscribed = self
            .pulls
            .iter()
            .flatten()
            .filter(|p| p.status == TrackStatus::Active && self.pubs[p.publication].is_some())
            .count();
        g.tracks_subscribed.store(subscribed as u64, Relaxed);
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
