//! The media loop: one OS thread that owns a UDP socket and every connection, publication and
//! pull of its rooms. Each wake-up: commands, then the datagrams the socket holds, a batch at a
//! time (`recvmmsg`, each routed to its connection's `handle_read`), then due timers. After each
//! batch, the connections it touched (and only those) are drained: what they read (RTP to fan
//! out), their events, then what every connection touched on the way wants sent (`poll_write`),
//! out in one `sendmmsg` batch. No media logic here: that is `fanout.rs` and the pure models;
//! the API's calls are `sessions.rs`.

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
use super::udp::{RECV_BATCH, RecvBatch, SendBatch};
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
    /// Sessions this loop closed on its own or on a call (the API's session and room tables
    /// forget them).
    pub closed: std::sync::mpsc::Sender<super::Closed>,
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
    /// Connections fed since the last drain (a datagram, a timeout, a packet or RTCP written
    /// on them): only these are drained. Each is listed once (`Connection::touched`).
    touched: Vec<ConnId>,
    /// A command ran: every connection is drained (commands are rare, and may touch any).
    pub(super) drain_all: bool,
    /// Datagrams the connections produced, sent at the end of each drain.
    out: SendBatch,
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
            touched: Vec::new(),
            drain_all: false,
            out: SendBatch::default(),
        })
    }

    pub(super) fn metrics(&self) -> &Metrics {
        &self.setup.metrics
    }

    /// Runs until the command channel closes (the `LoopHandle` was dropped).
    pub fn run(mut self, mut poll: mio::Poll, commands: Receiver<Command>) {
        let mut events = mio::Events::with_capacity(16);
        let mut rx = RecvBatch::default();
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
            // A batch at a time, each fanned out and sent before the next is read: a busy
            // socket does not hold the first packets back.
            let mut transient = 0;
            loop {
                let n = match rx.read(&self.socket) {
                    Ok(n) => n,
                    // ICMP errors of earlier sends surface here; the socket is fine.
                    Err(e) if is_transient(&e) && transient < RECV_BATCH => {
                        transient += 1;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "media loop: receive failed");
                        0
                    }
                };
                if n == 0 {
                    break;
                }
                let now = Instant::now();
                for i in 0..n {
                    let (from, data) = rx.get(i);
                    self.datagram(from, data, now);
                }
                self.drain(now);
                if n < RECV_BATCH {
                    break;
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
        if !conn.touched {
            conn.touched = true;
            self.touched.push(id);
        }
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
        for (id, conn) in self.conns.iter_mut().enumerate() {
            let Some(conn) = conn else { continue };
            if conn.deadline.is_none_or(|d| d > now) {
                continue;
            }
            if let Err(e) = conn.rtc.handle_timeout(now) {
                tracing::debug!(session = %conn.session_id, error = %e, "timeout handling failed");
            }
            if !conn.touched {
                conn.touched = true;
                self.touched.push(id);
            }
        }
    }

    /// The loop's own timers: idle reaper, dominant speaker, bandwidth allocation.
    fn timers(&mut self, now: Instant) {
        if now >= self.next_bandwidth_tick {
            self.next_bandwidth_tick = now + super::bandwidth::TICK;
            self.bandwidth_tick(now);
            self.dynacast_tick(self.now_ms(now));
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

    /// Everything the touched connections produced: RTP read (fanned out), events, then the
    /// datagrams of every connection touched on the way, sent in one batch.
    fn drain(&mut self, now: Instant) {
        if self.drain_all {
            self.drain_all = false;
            for id in 0..self.conns.len() {
                mark(&mut self.conns, &mut self.touched, id);
            }
        }
        if self.touched.is_empty() {
            return;
        }
        let mut read = Vec::new();
        let mut keyframe_asks = Vec::new();
        let mut events = Vec::new();
        for &id in &self.touched {
            let Some(conn) = self.conns[id].as_mut() else {
                continue;
            };
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
        // Everything touched on the way (pullers written to, publishers asked for keyframes).
        let mut failed = Vec::new();
        for &id in &self.touched {
            let Some(conn) = self.conns[id].as_mut() else {
                continue;
            };
            conn.touched = false;
            while let Some(out) = conn.rtc.poll_write() {
                self.out.push(out.message, out.transport.peer_addr);
            }
            conn.deadline = conn.rtc.poll_timeout();
            if matches!(
                conn.state,
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
            ) {
                failed.push(id);
            }
        }
        self.touched.clear();
        let flushed = self.out.flush(&self.socket);
        if flushed.dropped > 0 {
            self.setup
                .metrics
                .packets_dropped
                .fetch_add(flushed.dropped, Relaxed);
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
                let found = self
                    .pubs
                    .iter_mut()
                    .enumerate()
                    .filter_map(|(i, p)| Some((i, p.as_mut()?)))
                    .find(|(_, p)| p.conn == id && p.mid == mid);
                if let Some((pid, p)) = found {
                    conn.index_track(&init.track_id, pid);
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

    /// A publisher's packet to every pull of its track.
    fn forward(&mut self, from: ConnId, track: &str, pkt: rtp::Packet, now: Instant) {
        let Some(pid) = self.conns[from]
            .as_ref()
            .and_then(|c| c.publication_of(track))
        else {
            return;
        };
        let now_ms = self.now_ms(now);
        let mut tap_keyframe = None;
        let Some(p) = self.pubs[pid].as_mut() else {
            return;
        };
        let m = &self.setup.metrics;
        m.packets_in.fetch_add(1, Relaxed);
        m.bytes_in.fetch_add(pkt.payload.len() as u64, Relaxed);
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
        let view = p
            .layers
            .on_packet(pkt.header.ssrc, pkt.header.timestamp, now_ms);
        if !p.taps.is_empty() {
            let layers = p.layer_ssrcs();
            let best = view.pick(crate::layers::MAX_LAYERS - 1);
            p.taps.retain_mut(|t| match t.offer(&layers, best, &pkt) {
                // The recorder lost the stream (start, a gap, a new layer): a keyframe on this
                // layer.
                Some(true) => {
                    tap_keyframe = Some(pkt.header.ssrc);
                    true
                }
                Some(false) => true,
                // Its recording (or composition) ended.
                None => false,
            });
        }
        // What this layer costs a viewer (bandwidth allocation).
        let rank = if p.rids.is_empty() {
            Some(0)
        } else {
            view.rank_of(pkt.header.ssrc)
        };
        if let Some(rank) = rank {
            p.costs.on_packet(rank, pkt.payload.len(), now_ms);
            // Its height, for the layer a viewer's tile needs (`tile_view.rs`).
            if p.video
                && let Some((_, h)) = crate::recording::vp8::packet_keyframe_size(&pkt.payload)
                && p.mime.eq_ignore_ascii_case("video/VP8")
                && let Some(slot) = p.heights.get_mut(rank)
            {
                *slot = Some(u32::from(h));
            }
        }
        // The pull list is lent out for the fan-out (nothing below changes it), not cloned.
        let pulls = std::mem::take(&mut p.pulls);
        let mut tally = Tally::default();
        let mut need_keyframe = None;
        for &pull_id in &pulls {
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
                for h in std::mem::take(&mut pull.held) {
                    pull.packets_sent += 1;
                    tally.add(write_rtp(
                        &mut self.conns,
                        &mut self.touched,
                        conn_id,
                        sender,
                        h,
                        now,
                    ));
                }
            }
            let Some(p) = self.pubs[pid].as_ref() else {
                continue;
            };
            match pull.step(p, &view, &pkt, now_ms) {
                Step::Send(out) if up => {
                    pull.packets_sent += 1;
                    tally.add(write_rtp(
                        &mut self.conns,
                        &mut self.touched,
                        conn_id,
                        sender,
                        out,
                        now,
                    ))
                }
                Step::Send(out) => pull.hold(out),
                Step::Drop => {}
                Step::NeedKeyframe(ssrc) => need_keyframe = Some(ssrc),
            }
        }
        let fanned_out = !pulls.is_empty();
        if let Some(p) = self.pubs[pid].as_mut() {
            p.pulls = pulls;
        }
        let m = &self.setup.metrics;
        if tally.sent > 0 {
            m.packets_out.fetch_add(tally.sent, Relaxed);
            m.bytes_out.fetch_add(tally.bytes, Relaxed);
        }
        if tally.failed > 0 {
            m.packets_dropped.fetch_add(tally.failed, Relaxed);
        }
        if fanned_out {
            // From the batch's read (it waited behind the packets before it) to encrypted and
            // queued for the socket.
            m.observe_latency_us(now.elapsed().as_micros() as u64);
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
        let conn_id = p.conn;
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
        mark(&mut self.conns, &mut self.touched, conn_id);
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

/// Lists a connection for the next drain (once).
fn mark(conns: &mut [Option<Connection>], touched: &mut Vec<ConnId>, id: ConnId) {
    if let Some(c) = conns.get_mut(id).and_then(Option::as_mut)
        && !c.touched
    {
        c.touched = true;
        touched.push(id);
    }
}

/// Writes a prepared packet on a puller's sender (rtc: interceptors, SRTP); the datagram leaves
/// at the end of the drain. `Err(())`: refused (counted as dropped).
fn write_rtp(
    conns: &mut [Option<Connection>],
    touched: &mut Vec<ConnId>,
    conn: ConnId,
    sender: rtc::rtp_transceiver::RTCRtpSenderId,
    pkt: rtp::Packet,
    now: Instant,
) -> Result<u64, ()> {
    let n = pkt.payload.len() as u64;
    let sent = conns[conn]
        .as_mut()
        .and_then(|c| c.rtc.rtp_sender(sender))
        .map(|mut s| s.write_rtp(now, pkt));
    mark(conns, touched, conn);
    match sent {
        Some(Ok(())) => Ok(n),
        _ => Err(()),
    }
}

/// What one packet's fan-out wrote, for the counters (added once per packet).
#[derive(Default)]
struct Tally {
    sent: u64,
    bytes: u64,
    failed: u64,
}

impl Tally {
    fn add(&mut self, r: Result<u64, ()>) {
        match r {
            Ok(n) => {
                self.sent += 1;
                self.bytes += n;
            }
            Err(()) => self.failed += 1,
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
