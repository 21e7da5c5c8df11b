//! Forwarding: a pushed track (`Publication`) fans its RTP out to every pull (`Subscription`),
//! and keyframe requests flow back from subscribers to the publisher, rate limited.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgemeet_protocol::node::TrackStatus;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodec;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::rtp_transceiver::RtpSender;

use crate::egress::{Egress, StreamState};
use crate::keyframes::{KeyframeRequests, Outcome};
use crate::layers::{LayerTracker, LayerView};
use crate::node::Shared;
use crate::red::RedEncoder;
use crate::session::Session;
use crate::stitch::{Stitch, Stitched, TrackKind};

// Keyframe request intervals: shared with the media loop (`keyframes.rs`).
const PLI_INTERVAL: Duration = Duration::from_millis(crate::keyframes::LAYER_INTERVAL_MS);
const YOUNG_PLI_INTERVAL: Duration =
    Duration::from_millis(crate::keyframes::YOUNG_LAYER_INTERVAL_MS);
const YOUNG: Duration = Duration::from_millis(crate::keyframes::YOUNG_MS);

/// A track pushed by one session.
pub struct Publication {
    pub session_id: String,
    pub participant: String,
    pub room: String,
    pub route: String,
    pub track_name: String,
    pub mid: String,
    pub is_video: bool,
    /// Codec negotiated with the publisher (its payload type is `payload_type`).
    pub codec: RTCRtpCodec,
    pub payload_type: u8,
    pub audio_level_id: Option<u8>,
    /// Simulcast rids the publisher offered, in its order.
    pub rids: Vec<String>,
    subscribers: Mutex<Arc<Vec<Arc<Subscription>>>>,
    remote: Mutex<Option<Arc<dyn TrackRemote>>>,
    layers: Mutex<HashMap<String, u32>>,
    /// Keyframe requests to the publisher, one at a time as Chromium takes them.
    keyframes: Mutex<KeyframeRequests>,
    /// The clock `keyframes` counts in.
    epoch: Instant,
    pub closed: AtomicBool,
    /// Set while the meeting records this track.
    pub tap: Mutex<Option<Arc<crate::recording::tap::Tap>>>,
}

impl Publication {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        session: &Session,
        track_name: String,
        mid: String,
        is_video: bool,
        codec: RTCRtpCodec,
        payload_type: u8,
        audio_level_id: Option<u8>,
        rids: Vec<String>,
    ) -> Self {
        Self {
            session_id: session.id.clone(),
            participant: session.participant.clone(),
            room: session.room.clone(),
            route: session.route.clone(),
            track_name,
            mid,
            is_video,
            codec,
            payload_type,
            audio_level_id,
            rids,
            subscribers: Mutex::new(Arc::new(Vec::new())),
            remote: Mutex::new(None),
            layers: Mutex::new(HashMap::new()),
            keyframes: Mutex::new(KeyframeRequests::default()),
            epoch: Instant::now(),
            closed: AtomicBool::new(false),
            tap: Mutex::new(None),
        }
    }

    pub fn subscribers(&self) -> Arc<Vec<Arc<Subscription>>> {
        self.subscribers.lock().unwrap().clone()
    }

    pub fn add_subscriber(&self, sub: Arc<Subscription>) {
        let mut g = self.subscribers.lock().unwrap();
        let mut v: Vec<_> = g.as_ref().clone();
        v.push(sub);
        *g = Arc::new(v);
    }

    pub fn remove_subscriber(&self, sub: &Arc<Subscription>) {
        let mut g = self.subscribers.lock().unwrap();
        let v: Vec<_> = g.iter().filter(|s| !Arc::ptr_eq(s, sub)).cloned().collect();
        *g = Arc::new(v);
    }

    /// Detaches every subscriber (publisher gone); returns them.
    pub fn take_subscribers(&self) -> Vec<Arc<Subscription>> {
        let mut g = self.subscribers.lock().unwrap();
        let v = g.as_ref().clone();
        *g = Arc::new(Vec::new());
        v
    }

    /// VP8, whose payload descriptor numbers pictures (see [`Vp8Munger`]).
    fn is_vp8(&self) -> bool {
        self.is_video && self.codec.mime_type.eq_ignore_ascii_case("video/VP8")
    }

    /// Position of `rid` in the publisher's rid order (its quality rank).
    pub fn rank_of_rid(&self, rid: &str) -> Option<usize> {
        self.rids.iter().position(|r| r == rid)
    }

    pub fn ssrc_of_rid(&self, rid: &str) -> Option<u32> {
        self.layers.lock().unwrap().get(rid).copied()
    }

    /// Asks the publisher for a keyframe on `ssrc` (or on every layer it sends), at most once
    /// per `PLI_INTERVAL` and layer, whoever asks, and one layer at a time as the publisher takes
    /// them (see [`KeyframeRequests`]). False when nothing was sent or queued (rate limit, no
    /// video, publisher not connected yet).
    pub async fn request_keyframe(&self, shared: &Shared, ssrc: Option<u32>) -> bool {
        self.request_keyframe_within(shared, ssrc, PLI_INTERVAL)
            .await
    }

    /// As [`request_keyframe`](Self::request_keyframe) for `sub`: quicker while it is young.
    pub async fn request_keyframe_for(
        &self,
        shared: &Shared,
        sub: &Subscription,
        ssrc: Option<u32>,
    ) -> bool {
        let interval = if sub.created.elapsed() < YOUNG {
            YOUNG_PLI_INTERVAL
        } else {
            PLI_INTERVAL
        };
        self.request_keyframe_within(shared, ssrc, interval).await
    }

    /// A pull waits on a keyframe to switch layers (its layer paused, or it starts): asked again
    /// as often as the publisher takes requests, every video frame without one is a frozen frame.
    pub async fn request_keyframe_to_switch(&self, shared: &Shared, ssrc: Option<u32>) -> bool {
        self.request_keyframe_within(shared, ssrc, YOUNG_PLI_INTERVAL)
            .await
    }

    async fn request_keyframe_within(
        &self,
        shared: &Shared,
        ssrc: Option<u32>,
        interval: Duration,
    ) -> bool {
        if !self.is_video {
            return false;
        }
        let Some(remote) = self.remote.lock().unwrap().clone() else {
            return false;
        };
        let targets: Vec<u32> = match ssrc {
            Some(s) => vec![s],
            None => {
                let l: Vec<u32> = self.layers.lock().unwrap().values().copied().collect();
                if l.is_empty() {
                    remote.ssrcs().await
                } else {
                    l
                }
            }
        };
        let now_ms = self.now_ms();
        let interval_ms = interval.as_millis() as u64;
        let (mut send, mut queued) = (Vec::new(), false);
        {
            let mut k = self.keyframes.lock().unwrap();
            for media_ssrc in targets {
                match k.request(media_ssrc, now_ms, interval_ms) {
                    Outcome::Send => send.push(media_ssrc),
                    Outcome::Queued => queued = true,
                    Outcome::Suppressed => {}
                }
            }
        }
        let mut sent = false;
        for media_ssrc in send {
            sent |= send_pli(shared, remote.as_ref(), media_ssrc).await;
        }
        sent || queued
    }

    /// Sends a keyframe request that waited for the publisher's window, if one is due now.
    async fn send_due_keyframe_request(&self, shared: &Shared) {
        let due = self.keyframes.lock().unwrap().due(self.now_ms());
        let remote = self.remote.lock().unwrap().clone();
        if let (Some(media_ssrc), Some(remote)) = (due, remote) {
            send_pli(shared, remote.as_ref(), media_ssrc).await;
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

async fn send_pli(shared: &Shared, remote: &dyn TrackRemote, media_ssrc: u32) -> bool {
    tracing::debug!(media_ssrc, "keyframe asked of a publisher");
    let pli = PictureLossIndication {
        sender_ssrc: 0,
        media_ssrc,
    };
    let ok = remote.write_rtcp(vec![Box::new(pli)]).await.is_ok();
    if ok {
        shared.metrics.pli_out.fetch_add(1, Relaxed);
    }
    ok
}

impl Publication {}

/// One pull of a publication into another session of the room.
pub struct Subscription {
    pub session_id: String,
    pub publication: Arc<Publication>,
    pub track: Arc<TrackLocalStaticRTP>,
    pub out_ssrc: u32,
    pub sender: Mutex<Option<Arc<dyn RtpSender>>>,
    pub mid: Mutex<Option<String>>,
    /// `TrackStatus` as `status_code` (read for every packet: no lock).
    status: AtomicU8,
    /// Payload type negotiated with the subscriber; `u16::MAX` until known.
    pub out_pt: AtomicU16,
    /// Rank (in the publisher's rid order) of the layer this subscriber asked for; `NO_RANK`
    /// when it did not say.
    preferred: AtomicU8,
    /// The stitched stream: sequence numbers and timestamps, and VP8 picture numbering.
    rewriter: Mutex<Stitch>,
    /// When the pull was made: keyframe requests are quicker in its first seconds.
    created: Instant,
    /// The subscriber's session is connected. Until it first is, what would be forwarded is held
    /// (from a keyframe on) and sent when it connects; after that, nothing is forwarded while it
    /// is down.
    transport_up: Arc<AtomicBool>,
    held: Mutex<Vec<rtp::Packet>>,
    /// The held packets went out: the transport came up once.
    released: AtomicBool,
    /// The node's own send path to the subscriber's session, and this stream's part of it.
    egress: Arc<Egress>,
    stream: Mutex<StreamState>,
    /// Audio: RED's payload type and encoder where the subscriber took RED (red.rs).
    red: Mutex<Option<(u8, RedEncoder)>>,
}

const NO_RANK: u8 = u8::MAX;
/// Most packets held for a subscriber whose transport is not up yet (about a second of video).
const HOLD_MAX: usize = 256;

fn status_code(s: TrackStatus) -> u8 {
    match s {
        TrackStatus::Active => 0,
        TrackStatus::Pending => 1,
        TrackStatus::Inactive => 2,
    }
}

impl Subscription {
    pub fn new(
        session_id: String,
        publication: Arc<Publication>,
        track: Arc<TrackLocalStaticRTP>,
        out_ssrc: u32,
        preferred_rid: Option<&str>,
        transport_up: Arc<AtomicBool>,
        egress: Arc<Egress>,
    ) -> Self {
        let clock_rate = publication.codec.clock_rate;
        let preferred = preferred_rid
            .and_then(|r| publication.rank_of_rid(r))
            .map_or(NO_RANK, |r| r as u8);
        Self {
            session_id,
            publication,
            track,
            out_ssrc,
            sender: Mutex::new(None),
            mid: Mutex::new(None),
            status: AtomicU8::new(status_code(TrackStatus::Pending)),
            out_pt: AtomicU16::new(u16::MAX),
            preferred: AtomicU8::new(preferred),
            rewriter: Mutex::new(Default::default()),
            created: Instant::now(),
            transport_up,
            held: Mutex::new(Vec::new()),
            released: AtomicBool::new(false),
            egress,
            stream: Mutex::new(StreamState::new(clock_rate)),
            red: Mutex::new(None),
        }
    }

    /// Sends this audio stream as RED with payload type `payload_type` (the node's send path only).
    pub fn set_red(&self, payload_type: u8) {
        *self.red.lock().unwrap() = Some((payload_type, RedEncoder::default()));
    }

    /// Once the subscriber's transport is up, sends what was held for it (before the packet at
    /// hand). A pull negotiated in the session's first offer gets its keyframe before the DTLS
    /// handshake is done; this keeps it instead of asking again (Chromium would ignore a second
    /// request within 300 ms).
    fn release_held(&self) {
        if self.released.load(Relaxed) || !self.transport_up.load(Relaxed) {
            return;
        }
        self.released.store(true, Relaxed);
        let held = std::mem::take(&mut *self.held.lock().unwrap());
        for p in held {
            self.send(p);
        }
    }

    fn hold(&self, p: rtp::Packet) {
        let mut held = self.held.lock().unwrap();
        if held.len() >= HOLD_MAX {
            // Connecting takes too long: start again at the next keyframe.
            held.clear();
            *self.rewriter.lock().unwrap() = Default::default();
            return;
        }
        held.push(p);
    }

    /// Sends a prepared packet: through the node's send path once the subscriber's session has
    /// one, else through webrtc-rs. False when it could not leave now (dropped).
    fn send(&self, mut out: rtp::Packet) -> bool {
        if self.egress.is_active() {
            if let Some((red_pt, enc)) = self.red.lock().unwrap().as_mut() {
                out.payload =
                    enc.encode(out.header.timestamp, out.header.payload_type, &out.payload);
                out.header.payload_type = *red_pt;
            }
            self.egress.send_rtp(&self.stream, &out).is_ok()
        } else {
            try_now(self.track.write_rtp(out)).is_some_and(|r| r.is_ok())
        }
    }

    /// The RTX stream negotiated with the subscriber (retransmissions go there).
    pub fn set_rtx(&self, ssrc: u32, payload_type: u8) {
        self.stream.lock().unwrap().set_rtx(ssrc, payload_type);
    }

    /// Answers a NACK from the kept packets; how many were sent again. With webrtc-rs's path
    /// its own responder answers (this returns 0).
    pub fn resend(&self, seqs: impl IntoIterator<Item = u16>) -> u64 {
        if !self.egress.is_active() {
            return 0;
        }
        seqs.into_iter()
            .filter(|s| self.egress.resend(&self.stream, *s))
            .count() as u64
    }

    pub fn status(&self) -> TrackStatus {
        match self.status.load(Relaxed) {
            0 => TrackStatus::Active,
            1 => TrackStatus::Pending,
            _ => TrackStatus::Inactive,
        }
    }

    pub fn set_status(&self, s: TrackStatus) {
        self.status.store(status_code(s), Relaxed);
    }

    /// Asks for another simulcast layer (`rid` must be one the publisher offered).
    pub fn set_preferred_rid(&self, rid: &str) -> bool {
        match self.publication.rank_of_rid(rid) {
            Some(r) => {
                self.preferred.store(r as u8, Relaxed);
                true
            }
            None => false,
        }
    }

    fn preferred_rank(&self) -> Option<usize> {
        let r = self.preferred.load(Relaxed);
        (r != NO_RANK).then_some(r as usize)
    }

    /// The packet to send to this subscriber, if any; `Err(ssrc)` = drop and request a keyframe.
    fn prepare(
        &self,
        pkt: &rtp::Packet,
        view: &LayerView,
        now_ms: u64,
    ) -> Result<Option<rtp::Packet>, u32> {
        let up = self.transport_up.load(Relaxed);
        if self.status() != TrackStatus::Active || (!up && self.released.load(Relaxed)) {
            return Ok(None);
        }
        let out_pt = self.out_pt.load(Relaxed);
        if out_pt > 127 || pkt.header.payload_type != self.publication.payload_type {
            return Ok(None);
        }
        let kind = TrackKind {
            mime: &self.publication.codec.mime_type,
            video: self.publication.is_video,
            vp8: self.publication.is_vp8(),
            simulcast: !self.publication.rids.is_empty(),
            clock_rate: self.publication.codec.clock_rate,
        };
        let step = {
            let mut stitch = self.rewriter.lock().unwrap();
            let before = stitch.current();
            let step = stitch.step(
                kind,
                self.preferred_rank(),
                view,
                pkt.header.ssrc,
                pkt.header.sequence_number,
                pkt.header.timestamp,
                &pkt.payload,
                now_ms,
            );
            if stitch.current() != before {
                tracing::debug!(
                    session = %self.session_id,
                    from = ?before.and_then(|s| view.rank_of(s)),
                    to = ?stitch.current().and_then(|s| view.rank_of(s)),
                    "pull switched layer"
                );
            }
            step
        };
        match step {
            Stitched::Forward { seq, ts, payload } => {
                let mut out = forwarded_packet(pkt, out_pt as u8, seq, ts, self.out_ssrc);
                if let Some(p) = payload {
                    out.payload = p;
                }
                if !up {
                    self.hold(out);
                    return Ok(None);
                }
                Ok(Some(out))
            }
            Stitched::Drop => Ok(None),
            Stitched::NeedKeyframe(ssrc) => Err(ssrc),
        }
    }

    /// The publisher layer a keyframe request of this subscriber is about: the one it gets.
    pub fn keyframe_target(&self) -> Option<u32> {
        if self.publication.rids.is_empty() {
            return None;
        }
        self.rewriter.lock().unwrap().current().or_else(|| {
            let r = self.preferred_rank()?;
            self.publication.ssrc_of_rid(self.publication.rids.get(r)?)
        })
    }
}

/// The packet a subscriber gets for a publisher's `pkt`: its payload under the subscriber
/// leg's payload type, sequence number, timestamp and SSRC. A new header, not a clone: extension
/// ids are per connection (the subscriber leg negotiated its own), so the publisher's extensions
/// are left out, and not copying them saves an allocation per packet and subscriber.
pub fn forwarded_packet(pkt: &rtp::Packet, pt: u8, seq: u16, ts: u32, ssrc: u32) -> rtp::Packet {
    let header = rtp::header::Header {
        version: 2,
        padding: pkt.header.padding,
        marker: pkt.header.marker,
        payload_type: pt,
        sequence_number: seq,
        timestamp: ts,
        ssrc,
        csrc: pkt.header.csrc.clone(),
        ..Default::default()
    };
    rtp::Packet {
        header,
        payload: pkt.payload.clone(),
    }
}

/// Reads one pushed track and fans it out until it ends.
pub async fn run_ingest(shared: Arc<Shared>, session: Arc<Session>, track: Arc<dyn TrackRemote>) {
    let mid = session.mid_of_remote_track(&track).await;
    let Some(publication) = mid.as_deref().and_then(|m| session.publication(m)) else {
        tracing::debug!(session = %session.id, "track without a pushed mid; ignored");
        drain(track).await;
        return;
    };
    *publication.remote.lock().unwrap() = Some(track.clone());
    let metrics = shared.metrics.clone();
    let mut last_seq: HashMap<u32, u16> = HashMap::new();
    let mut layers = LayerTracker::default();
    let epoch = Instant::now();
    while let Some(evt) = track.poll().await {
        match evt {
            TrackRemoteEvent::OnOpen(init) => {
                if let Some(rid) = init.rid.as_ref() {
                    let old = publication
                        .layers
                        .lock()
                        .unwrap()
                        .insert(rid.to_string(), init.ssrc);
                    if let Some(old) = old.filter(|o| *o != init.ssrc) {
                        // The layer was renumbered: requests for the old stream are moot.
                        publication.keyframes.lock().unwrap().forget(old);
                    }
                    if let Some(rank) = publication.rank_of_rid(rid) {
                        layers.set_ssrc(rank, init.ssrc);
                    }
                }
                // No keyframe request here: an encoder's new stream starts with one, and a request
                // now would spend the publisher's allowance (Chromium honours one request per
                // 300 ms per stream), so the request of a newcomer's pull a moment later would be
                // ignored. A subscriber that gets no keyframe asks on the packet path below.
            }
            TrackRemoteEvent::OnRtpPacket(pkt) => {
                let t0 = Instant::now();
                session.touch();
                metrics.packets_in.fetch_add(1, Relaxed);
                metrics
                    .bytes_in
                    .fetch_add(pkt.payload.len() as u64, Relaxed);
                let seq = pkt.header.sequence_number;
                if let Some(prev) = last_seq.insert(pkt.header.ssrc, seq) {
                    let gap = seq.wrapping_sub(prev);
                    if gap > 1 && gap < 0x8000 {
                        metrics.ingress_lost.fetch_add(u64::from(gap - 1), Relaxed);
                    }
                }
                if let Some(id) = publication.audio_level_id
                    && let Some(ext) = pkt.header.get_extension(id)
                    && let Some(b) = ext.first()
                {
                    shared.speakers.lock().unwrap().observe(
                        &publication.room,
                        &publication.route,
                        &publication.participant,
                        b & 0x7f,
                        t0,
                    );
                }
                let tap = publication.tap.lock().unwrap().clone();
                if let Some(tap) = tap
                    && tap.offer(&publication, &pkt)
                {
                    publication
                        .request_keyframe(&shared, Some(pkt.header.ssrc))
                        .await;
                }
                let subs = publication.subscribers();
                let now_ms = t0.duration_since(epoch).as_millis() as u64;
                let view = layers.on_packet(pkt.header.ssrc, pkt.header.timestamp, now_ms);
                let mut need_keyframe = None;
                let (mut sent, mut dropped) = (0u64, 0u64);
                for sub in subs.iter() {
                    sub.release_held();
                    match sub.prepare(&pkt, &view, now_ms) {
                        Ok(Some(out)) => {
                            if sub.send(out) {
                                sent += 1;
                            } else {
                                dropped += 1;
                            }
                        }
                        Ok(None) => {}
                        Err(ssrc) => need_keyframe = Some(ssrc),
                    }
                }
                add(&metrics.packets_out, sent);
                add(&metrics.bytes_out, sent * pkt.payload.len() as u64);
                add(&metrics.packets_dropped, dropped);
                if let Some(ssrc) = need_keyframe {
                    publication
                        .request_keyframe_to_switch(&shared, Some(ssrc))
                        .await;
                }
                publication.send_due_keyframe_request(&shared).await;
                if !subs.is_empty() {
                    metrics.observe_latency_us(t0.elapsed().as_micros() as u64);
                }
            }
            TrackRemoteEvent::OnRtcpPacket(_) => session.touch(),
            TrackRemoteEvent::OnEnded | TrackRemoteEvent::OnError => break,
            _ => {}
        }
        if publication.closed.load(Relaxed) {
            break;
        }
    }
    tracing::debug!(session = %session.id, mid = %publication.mid, "ingest ended");
}

/// Runs `fut` only if it completes without waiting: a subscriber whose connection cannot take
/// a packet right now (its queue is full) loses that packet instead of stalling the publisher's
/// other subscribers.
fn add(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Relaxed);
    }
}

fn try_now<F: std::future::Future>(fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

async fn drain(track: Arc<dyn TrackRemote>) {
    while let Some(evt) = track.poll().await {
        if matches!(evt, TrackRemoteEvent::OnEnded | TrackRemoteEvent::OnError) {
            break;
        }
    }
}

/// Reads RTCP about one pulled track (from the subscriber) until the track is unbound.
pub async fn run_feedback(shared: Arc<Shared>, session: Arc<Session>, sub: Arc<Subscription>) {
    // The track binds when the sender is negotiated; until then poll() returns None at once.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match sub.track.poll().await {
            Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                session.touch();
                // A compound packet is attributed by its first SSRC: route each by its own.
                let target_of = |ssrc| {
                    session
                        .subscription_by_ssrc(ssrc)
                        .unwrap_or_else(|| sub.clone())
                };
                for p in &packets {
                    let any = p.as_any();
                    if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                        let target = target_of(nack.media_ssrc);
                        let seqs = nack.nacks.iter().flat_map(|n| n.packet_list());
                        add(&shared.metrics.retransmitted, target.resend(seqs));
                        continue;
                    }
                    let media_ssrc = if let Some(pli) = any.downcast_ref::<PictureLossIndication>()
                    {
                        Some(pli.media_ssrc)
                    } else {
                        any.downcast_ref::<FullIntraRequest>()
                            .map(|fir| fir.media_ssrc)
                    };
                    let Some(media_ssrc) = media_ssrc else {
                        continue;
                    };
                    let target = target_of(media_ssrc);
                    let layer = target.keyframe_target();
                    // A subscriber that cannot decode (E2EE with another passphrase) asks
                    // without end: one request per layer and interval reaches the publisher.
                    if !target
                        .publication
                        .request_keyframe_for(&shared, &target, layer)
                        .await
                    {
                        shared.metrics.pli_suppressed.fetch_add(1, Relaxed);
                    }
                }
            }
            Some(_) => {}
            None => {
                if sub.status() == TrackStatus::Inactive
                    || session.is_closed()
                    || Instant::now() > deadline && sub.status() != TrackStatus::Pending
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
