//! A webrtc-rs participant of the media node, for the integration tests and the benchmark:
//! publishes synthetic Opus/VP8 RTP whose payloads can be checked, pulls tracks through the
//! node's API, records what arrives and the keyframe requests it gets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgemeet_protocol::node::{
    NODE_TOKEN_ISSUER, NewSessionRequest, NewSessionResponse, NodeTokenClaims, SdpType,
    SessionDescription, SimulcastPreference, TrackLocation, TrackObject, TracksRequest,
    TracksResponse,
};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Slot;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability,
    RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::watch;
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, Registry,
    SettingEngineBuilder, register_default_interceptors,
};
use webrtc::rtp_transceiver::RtpSender;

use crate::rtcp_to_app::{RtcpToApp, SLOT};

/// RFC 6464 client-to-mixer audio level, the extension the node reads for the dominant speaker.
const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Called for every RTP packet a client receives.
pub type PacketHook = Arc<dyn Fn(&rtp::Packet) + Send + Sync>;

/// Installs the TLS crypto provider reqwest needs (idempotent).
pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Signs a node token as the edge would (HS256 with the node secret), valid for `ttl` seconds.
pub fn token(secret: &str, node: &str, room: &str, sub: &str, ttl: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &NodeTokenClaims {
            iss: NODE_TOKEN_ISSUER.into(),
            aud: node.into(),
            room: room.into(),
            sub: sub.into(),
            route: format!("route-{room}"),
            iat: now as u64,
            exp: (now + ttl) as u64,
        },
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing cannot fail")
}

/// One received RTP packet.
#[derive(Debug, Clone)]
pub struct Received {
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    pub marker: bool,
    pub payload: Bytes,
    pub at: Instant,
}

/// Marker at the start of every synthetic payload (after the VP8 descriptor for video).
const MAGIC: [u8; 2] = *b"EM";
/// The start code of a VP8 keyframe's header.
const VP8_START: [u8; 3] = [0x9d, 0x01, 0x2a];
/// Synthetic payload header: magic, sender tag, layer, counter (u32), send time (u64 ns).
const HEADER_LEN: usize = 2 + 1 + 1 + 4 + 8;

/// What a synthetic payload says about itself; `None` if it is corrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadInfo {
    pub tag: u8,
    pub layer: u8,
    pub counter: u32,
    pub sent_ns: u64,
    pub keyframe: bool,
}

fn filler(counter: u32, i: usize) -> u8 {
    (counter as usize).wrapping_mul(31).wrapping_add(i * 7) as u8
}

/// Builds a payload: for video a VP8 descriptor (start of partition 0) and frame tag first;
/// a keyframe with `dims` (width, height) also the rest of a VP8 keyframe header (RFC 6386
/// §9.1: two more tag bytes, the start code and the size).
#[allow(clippy::too_many_arguments)]
pub fn make_payload(
    video: bool,
    keyframe: bool,
    tag: u8,
    layer: u8,
    counter: u32,
    sent_ns: u64,
    size: usize,
    dims: Option<(u16, u16)>,
) -> Bytes {
    let mut v = Vec::with_capacity(size.max(HEADER_LEN + 12));
    if video {
        v.push(0x10);
        v.push(if keyframe { 0x00 } else { 0x01 });
        if let (true, Some((w, h))) = (keyframe, dims) {
            v.extend_from_slice(&[0x00, 0x00]);
            v.extend_from_slice(&VP8_START);
            v.extend_from_slice(&w.to_le_bytes());
            v.extend_from_slice(&h.to_le_bytes());
        }
    }
    v.extend_from_slice(&MAGIC);
    v.push(tag);
    v.push(layer);
    v.extend_from_slice(&counter.to_be_bytes());
    v.extend_from_slice(&sent_ns.to_be_bytes());
    let start = v.len();
    while v.len() < size {
        v.push(filler(counter, v.len() - start));
    }
    Bytes::from(v)
}

/// Checks a payload made by [`make_payload`] byte for byte.
pub fn check_payload(video: bool, p: &[u8]) -> Option<PayloadInfo> {
    let (keyframe, p) = if video {
        if p.len() < 2 || p[0] != 0x10 {
            return None;
        }
        let keyframe = p[1] & 1 == 0;
        // A keyframe with its size: skip the rest of its header.
        let sized = keyframe && p.len() >= 11 && p[4..7] == VP8_START;
        (keyframe, &p[if sized { 11 } else { 2 }..])
    } else {
        (false, p)
    };
    if p.len() < HEADER_LEN || p[..2] != MAGIC {
        return None;
    }
    let counter = u32::from_be_bytes(p[4..8].try_into().ok()?);
    let sent_ns = u64::from_be_bytes(p[8..16].try_into().ok()?);
    let body = &p[HEADER_LEN..];
    if body
        .iter()
        .enumerate()
        .any(|(i, b)| *b != filler(counter, i))
    {
        return None;
    }
    Some(PayloadInfo {
        tag: p[2],
        layer: p[3],
        counter,
        sent_ns,
        keyframe,
    })
}

/// Nanoseconds on a clock shared by every client of this process.
pub fn clock_ns() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

#[derive(Default)]
struct Inbox {
    /// Received packets per remote track id (`{publisher session prefix}-{track name}`).
    packets: HashMap<String, Vec<Received>>,
    tracks: HashMap<String, Arc<dyn TrackRemote>>,
}

struct ClientHandler {
    inbox: Arc<Mutex<Inbox>>,
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    keep_packets: bool,
    count: Arc<AtomicU64>,
    on_packet: Option<PacketHook>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for ClientHandler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.state.send(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let inbox = self.inbox.clone();
        let keep = self.keep_packets;
        let count = self.count.clone();
        let on_packet = self.on_packet.clone();
        tokio::spawn(async move {
            let id = track.track_id().await.to_string();
            inbox
                .lock()
                .unwrap()
                .tracks
                .insert(id.clone(), track.clone());
            while let Some(evt) = track.poll().await {
                match evt {
                    TrackRemoteEvent::OnRtpPacket(p) => {
                        count.fetch_add(1, Relaxed);
                        if let Some(f) = &on_packet {
                            f(&p);
                        }
                        if keep {
                            inbox
                                .lock()
                                .unwrap()
                                .packets
                                .entry(id.clone())
                                .or_default()
                                .push(Received {
                                    ssrc: p.header.ssrc,
                                    seq: p.header.sequence_number,
                                    ts: p.header.timestamp,
                                    marker: p.header.marker,
                                    payload: p.payload,
                                    at: Instant::now(),
                                });
                        }
                    }
                    TrackRemoteEvent::OnEnded | TrackRemoteEvent::OnError => break,
                    _ => {}
                }
            }
        });
    }
}

/// A track this client publishes.
pub struct LocalTrack {
    pub name: String,
    pub video: bool,
    pub track: Arc<TrackLocalStaticRTP>,
    /// (rid, ssrc) per layer; rid empty when not simulcast.
    pub layers: Vec<(String, u32)>,
    pub mid: Option<String>,
    pub sender: Option<Arc<dyn RtpSender>>,
    pt: u8,
    /// Extension ids to stamp on simulcast packets: (mid id, rid id).
    sim_ext: Option<(u8, u8)>,
    /// Negotiated id of the audio-level extension (audio only).
    level_ext: Option<u8>,
    force_keyframe: Arc<AtomicBool>,
    /// Bit per layer index: not sent while set (a browser pausing a simulcast layer).
    paused: Arc<AtomicU8>,
}

/// Options for a client.
#[derive(Clone, Default)]
pub struct ClientOptions {
    /// Keep every received packet (tests); off for the benchmark.
    pub keep_packets: bool,
    /// RFC 6464 level stamped on sent audio: 0 loudest, 127 silence.
    pub audio_level: u8,
    /// Called for every received packet (benchmark latency).
    pub on_packet: Option<PacketHook>,
}

pub struct TestClient {
    pub pc: Arc<dyn PeerConnection>,
    pub base: String,
    pub token: String,
    pub session_id: String,
    pub tag: u8,
    pub audio_level: u8,
    pub tracks: Vec<LocalTrack>,
    /// Keyframe requests (PLI/FIR) received about this client's tracks.
    pub plis: Arc<AtomicU64>,
    /// RTP packets received.
    pub received_count: Arc<AtomicU64>,
    /// Tracks `(session id, name)` to pull in the offer that opens the session (a client built
    /// with [`build`](Self::build), then [`publish`](Self::publish)).
    pub pull_on_open: Vec<(String, String)>,
    /// Simulcast: stamp the mid and rid extensions on only this many first packets of each layer
    /// (Chromium stops once a receiver report acknowledges the layer); `None`: on every packet.
    pub rid_packets: Option<usize>,
    /// Video packets per frame of each simulcast layer (low to high), instead of the same
    /// count on every layer: layers that cost what a browser's do.
    pub layer_pkts: Option<Vec<usize>>,
    /// Height of each simulcast layer (low to high): its keyframes carry a VP8 keyframe header
    /// with this size (width 16:9), as a browser's do; `None`: keyframes without one.
    pub layer_heights: Option<Vec<u16>>,
    /// Reach the node through this shaped link (its SDP candidates are rewritten to it).
    pub via: Option<Arc<crate::shaped_link::ShapedLink>>,
    http: reqwest::Client,
    inbox: Arc<Mutex<Inbox>>,
    gathered: watch::Receiver<bool>,
    state: watch::Receiver<RTCPeerConnectionState>,
}

impl TestClient {
    /// Opens a session on the node at `base` (`http://ip:port`) with `token`.
    pub async fn connect(
        base: &str,
        token: &str,
        tag: u8,
        opts: ClientOptions,
    ) -> Result<Self, Error> {
        let mut c = Self::build(base, token, tag, opts).await?;
        let r: NewSessionResponse = c
            .call(
                reqwest::Method::POST,
                "/v1/sessions/new",
                Some(&serde_json::json!({})),
            )
            .await?;
        c.session_id = r.session_id;
        Ok(c)
    }

    /// A peer connection without a node session (for direct, node-less baselines).
    pub async fn build(
        base: &str,
        token: &str,
        tag: u8,
        opts: ClientOptions,
    ) -> Result<Self, Error> {
        let (gtx, grx) = watch::channel(false);
        let (stx, srx) = watch::channel(RTCPeerConnectionState::New);
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let count = Arc::new(AtomicU64::new(0));
        let handler = Arc::new(ClientHandler {
            inbox: inbox.clone(),
            gathered: gtx,
            state: stx,
            keep_packets: opts.keep_packets,
            count: count.clone(),
            on_packet: opts.on_packet.clone(),
        });
        let mut media = MediaEngine::default();
        media.register_default_codecs()?;
        media.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: AUDIO_LEVEL_URI.to_owned(),
            },
            RtpCodecKind::Audio,
            None,
        )?;
        let registry = register_default_interceptors(Registry::new(), &mut media)?;
        let registry = registry.with(Slot::from(SLOT), RtcpToApp::default());
        let se = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_include_loopback_candidate(true)
            .build();
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(se)
            .with_handler(handler as Arc<dyn PeerConnectionEventHandler>)
            .with_udp_addrs(vec![SocketAddr::from(([127, 0, 0, 1], 0))])
            .build()
            .await?;
        init_crypto();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let c = Self {
            pc: Arc::new(pc),
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            session_id: String::new(),
            tag,
            audio_level: opts.audio_level,
            tracks: Vec::new(),
            plis: Arc::new(AtomicU64::new(0)),
            received_count: count,
            pull_on_open: Vec::new(),
            rid_packets: None,
            layer_pkts: None,
            layer_heights: None,
            via: None,
            http,
            inbox,
            gathered: grx,
            state: srx,
        };
        Ok(c)
    }

    /// Sends a JSON request with this client's token; non-2xx becomes an error with the body.
    pub async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, Error> {
        let mut rq = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rq = rq.json(b);
        }
        let resp = rq.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            return Err(format!("{status}: {text}").into());
        }
        Ok(serde_json::from_str(&text)?)
    }

    async fn local_sdp(&self) -> Result<String, Error> {
        let mut g = self.gathered.clone();
        let _ = tokio::time::timeout(Duration::from_secs(5), g.wait_for(|v| *v)).await;
        Ok(self
            .pc
            .local_description()
            .await
            .ok_or("no local description")?
            .sdp)
    }

    /// Adds tracks (audio "audio", video "video"; video in 3 simulcast layers if asked) and
    /// pushes them to the node.
    pub async fn publish(
        &mut self,
        audio: bool,
        video: bool,
        simulcast: bool,
    ) -> Result<(), Error> {
        self.publish_to(audio, video, simulcast, None).await
    }

    /// As [`publish`](Self::publish), or straight to `peer` (no node) when given.
    pub async fn publish_to(
        &mut self,
        audio: bool,
        video: bool,
        simulcast: bool,
        peer: Option<&TestClient>,
    ) -> Result<(), Error> {
        let mut new = Vec::new();
        if audio {
            new.push(("audio", false, vec![String::new()]));
        }
        if video {
            let rids = if simulcast {
                vec!["q".into(), "h".into(), "f".into()]
            } else {
                vec![String::new()]
            };
            new.push(("video", true, rids));
        }
        for (name, video, rids) in new {
            let codec = if video {
                RTCRtpCodec {
                    mime_type: "video/VP8".into(),
                    clock_rate: 90000,
                    ..Default::default()
                }
            } else {
                RTCRtpCodec {
                    mime_type: "audio/opus".into(),
                    clock_rate: 48000,
                    channels: 2,
                    sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
                    ..Default::default()
                }
            };
            let layers: Vec<(String, u32)> = rids
                .into_iter()
                .map(|r| (r, rand::random::<u32>()))
                .collect();
            let codings = layers
                .iter()
                .map(|(rid, ssrc)| RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        rid: rid.clone(),
                        ssrc: Some(*ssrc),
                        ..Default::default()
                    },
                    codec: codec.clone(),
                    ..Default::default()
                })
                .collect();
            let kind = if video {
                RtpCodecKind::Video
            } else {
                RtpCodecKind::Audio
            };
            let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                format!("client{}", self.tag),
                format!("{name}{}", self.tag),
                name.to_string(),
                kind,
                codings,
            )));
            let sender = self
                .pc
                .add_track(track.clone() as Arc<dyn TrackLocal>)
                .await?;
            let force = Arc::new(AtomicBool::new(true));
            // Keyframe requests from the node arrive as RTCP on the sent track.
            let (t, plis, f) = (track.clone(), self.plis.clone(), force.clone());
            tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(120);
                while Instant::now() < deadline {
                    match t.poll().await {
                        Some(TrackLocalEvent::OnRtcpPacket(pkts)) => {
                            for p in pkts {
                                if p.as_any().is::<PictureLossIndication>() {
                                    plis.fetch_add(1, Relaxed);
                                    f.store(true, Relaxed);
                                }
                            }
                        }
                        Some(_) => {}
                        None => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            });
            self.tracks.push(LocalTrack {
                name: name.to_string(),
                video,
                track,
                layers,
                mid: None,
                sender: Some(sender),
                pt: 0,
                sim_ext: None,
                level_ext: None,
                force_keyframe: force,
                paused: Arc::new(AtomicU8::new(0)),
            });
        }
        let mut receiving = Vec::new();
        if peer.is_none() && self.session_id.is_empty() {
            for (sid, name) in self.pull_on_open.clone() {
                let kind = if name == "video" {
                    RtpCodecKind::Video
                } else {
                    RtpCodecKind::Audio
                };
                let init = RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    streams: vec![],
                    send_encodings: vec![],
                };
                let t = self.pc.add_transceiver_from_kind(kind, Some(init)).await?;
                receiving.push((t, sid, name));
            }
        }
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer).await?;
        let sdp = self.local_sdp().await?;
        let mut pulls = Vec::new();
        for (t, sid, name) in receiving {
            pulls.push(TrackObject {
                location: TrackLocation::Remote,
                mid: Some(t.mid().await?.ok_or("no mid")?),
                track_name: name,
                session_id: Some(sid),
                simulcast: None,
            });
        }
        // mids are assigned by now: find each track's.
        for t in self.pc.get_transceivers().await {
            let Ok(Some(sender)) = t.sender().await else {
                continue;
            };
            let mid = t.mid().await?;
            for lt in &mut self.tracks {
                if lt.sender.as_ref().is_some_and(|s| Arc::ptr_eq(s, &sender)) {
                    lt.mid = mid.clone();
                }
            }
        }
        let answer = match peer {
            Some(peer) => {
                peer.pc
                    .set_remote_description(RTCSessionDescription::offer(sdp)?)
                    .await?;
                let answer = peer.pc.create_answer(None).await?;
                peer.pc.set_local_description(answer).await?;
                SessionDescription {
                    sdp_type: SdpType::Answer,
                    sdp: peer.local_sdp().await?,
                }
            }
            None if self.session_id.is_empty() => {
                self.open_with_push(self.to_node(sdp), pulls).await?
            }
            None => self.push_offer(self.to_node(sdp)).await?,
        };
        let sdp = self.node_sdp_as_applied(answer.sdp);
        self.pc
            .set_remote_description(RTCSessionDescription::answer(sdp)?)
            .await?;
        for lt in &mut self.tracks {
            let Some(sender) = &lt.sender else { continue };
            let params = sender.get_parameters().await?;
            let want = if lt.video { "video/vp8" } else { "audio/opus" };
            lt.pt = params
                .rtp_parameters
                .codecs
                .iter()
                .find(|c| c.rtp_codec.mime_type.to_ascii_lowercase() == want)
                .map(|c| c.payload_type)
                .ok_or("codec not negotiated")?;
            let ext = |uri: &str| {
                params
                    .rtp_parameters
                    .header_extensions
                    .iter()
                    .find(|h| h.uri == uri)
                    .map(|h| h.id as u8)
            };
            if !lt.video {
                lt.level_ext = ext(AUDIO_LEVEL_URI);
            }
            if lt.layers.len() > 1 {
                lt.sim_ext = ext("urn:ietf:params:rtp-hdrext:sdes:mid")
                    .zip(ext("urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"));
            }
        }
        Ok(())
    }

    /// The tracks not pushed yet, as a push names them.
    fn unpushed(&self) -> Vec<TrackObject> {
        self.tracks
            .iter()
            .filter(|t| t.pt == 0)
            .map(|t| TrackObject {
                location: TrackLocation::Local,
                mid: t.mid.clone(),
                track_name: t.name.clone(),
                session_id: None,
                simulcast: None,
            })
            .collect()
    }

    /// A client built without a session ([`build`](Self::build)) opens it, pushes and makes
    /// `pulls` (on the offer's receiving m-lines) in one call.
    async fn open_with_push(
        &mut self,
        sdp: String,
        pulls: Vec<TrackObject>,
    ) -> Result<SessionDescription, Error> {
        let req = NewSessionRequest {
            session_description: Some(SessionDescription {
                sdp_type: SdpType::Offer,
                sdp,
            }),
            tracks: Some(self.unpushed().into_iter().chain(pulls).collect()),
        };
        let resp: NewSessionResponse = self
            .call(
                reqwest::Method::POST,
                "/v1/sessions/new",
                Some(&serde_json::to_value(&req)?),
            )
            .await?;
        let tracks = resp.tracks.ok_or("no track results")?;
        if let Some(e) = tracks.iter().find_map(|t| t.error.clone()) {
            return Err(format!("push refused: {}", e.error_description).into());
        }
        self.session_id = resp.session_id;
        resp.session_description.ok_or_else(|| "no answer".into())
    }

    async fn push_offer(&self, sdp: String) -> Result<SessionDescription, Error> {
        let req = TracksRequest {
            session_description: Some(SessionDescription {
                sdp_type: SdpType::Offer,
                sdp,
            }),
            tracks: self.unpushed(),
        };
        let path = format!("/v1/sessions/{}/tracks/new", self.session_id);
        let resp: TracksResponse = self
            .call(
                reqwest::Method::POST,
                &path,
                Some(&serde_json::to_value(&req)?),
            )
            .await?;
        if let Some(e) = resp.tracks.iter().find_map(|t| t.error.clone()) {
            return Err(format!("push refused: {}", e.error_description).into());
        }
        resp.session_description.ok_or_else(|| "no answer".into())
    }

    /// Waits until the connection is up.
    pub async fn wait_connected(&self, within: Duration) -> Result<(), Error> {
        let mut s = self.state.clone();
        tokio::time::timeout(
            within,
            s.wait_for(|v| *v == RTCPeerConnectionState::Connected),
        )
        .await
        .map_err(|_| "connection did not come up")??;
        Ok(())
    }

    /// Starts sending: audio every 20 ms, video `fps` frames of `video_pkts` packets each.
    /// Returns a flag that stops the sender when set.
    pub fn start_sending(&self, fps: u32, video_pkts: usize, video_size: usize) -> Arc<AtomicBool> {
        let stop = Arc::new(AtomicBool::new(false));
        for lt in &self.tracks {
            let (track, layers, pt, video, tag, stop) = (
                lt.track.clone(),
                lt.layers.clone(),
                lt.pt,
                lt.video,
                self.tag,
                stop.clone(),
            );
            let (mid, sim_ext, force) = (
                lt.mid.clone().unwrap_or_default(),
                lt.sim_ext,
                lt.force_keyframe.clone(),
            );
            let (level_ext, level) = (lt.level_ext, self.audio_level);
            let paused = lt.paused.clone();
            let rid_packets = self.rid_packets.unwrap_or(usize::MAX);
            let layer_pkts = self.layer_pkts.clone();
            let layer_heights = self.layer_heights.clone();
            tokio::spawn(async move {
                let period = if video {
                    Duration::from_secs_f64(1.0 / f64::from(fps.max(1)))
                } else {
                    Duration::from_millis(20)
                };
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut seqs: Vec<u16> = layers.iter().map(|_| rand::random()).collect();
                let mut counters = vec![0u32; layers.len()];
                let mut frame = 0u32;
                while !stop.load(Relaxed) {
                    tick.tick().await;
                    let key = video && (frame.is_multiple_of(60) || force.swap(false, Relaxed));
                    for (li, (rid, ssrc)) in layers.iter().enumerate() {
                        if paused.load(Relaxed) & (1 << li) != 0 {
                            continue;
                        }
                        let n = match &layer_pkts {
                            Some(per) if video => per.get(li).copied().unwrap_or(video_pkts),
                            _ if video => video_pkts.max(1),
                            _ => 1,
                        };
                        if n == 0 {
                            continue;
                        }
                        for k in 0..n {
                            let ts = frame.wrapping_mul(if video { 3000 } else { 960 });
                            let size = if video { video_size } else { 120 };
                            let payload = make_payload(
                                video,
                                key && k == 0,
                                tag,
                                li as u8,
                                counters[li],
                                clock_ns(),
                                size,
                                layer_heights
                                    .as_ref()
                                    .and_then(|hs| hs.get(li))
                                    .map(|&h| (h / 9 * 16, h)),
                            );
                            let mut header = rtp::header::Header {
                                version: 2,
                                marker: k + 1 == n,
                                payload_type: pt,
                                sequence_number: seqs[li],
                                timestamp: ts,
                                ssrc: *ssrc,
                                ..Default::default()
                            };
                            if let Some(id) = level_ext {
                                let _ = header.set_extension(id, Bytes::from(vec![0x80 | level]));
                            }
                            if let Some((mid_id, rid_id)) = sim_ext
                                && (counters[li] as usize) < rid_packets
                            {
                                let _ = header
                                    .set_extension(mid_id, Bytes::from(mid.clone().into_bytes()));
                                let _ = header
                                    .set_extension(rid_id, Bytes::from(rid.clone().into_bytes()));
                            }
                            let pkt = rtp::packet::Packet { header, payload };
                            if track.write_rtp(pkt).await.is_err() && stop.load(Relaxed) {
                                return;
                            }
                            seqs[li] = seqs[li].wrapping_add(1);
                            counters[li] += 1;
                        }
                    }
                    frame += 1;
                }
            });
        }
        stop
    }

    /// Stops (or resumes) sending simulcast layer `rid` of every video track, as a browser
    /// does under CPU or bandwidth limits. A resumed layer starts with a keyframe.
    pub fn set_layer_paused(&self, rid: &str, paused: bool) {
        for lt in self.tracks.iter().filter(|t| t.video) {
            if let Some(i) = lt.layers.iter().position(|(r, _)| r == rid) {
                if paused {
                    lt.paused.fetch_or(1 << i, Relaxed);
                } else {
                    lt.force_keyframe.store(true, Relaxed);
                    lt.paused.fetch_and(!(1 << i), Relaxed);
                }
            }
        }
    }

    /// Pulls tracks `(session id, track name)`; answers the node's offer. Returns the mids.
    pub async fn pull(
        &self,
        tracks: &[(String, String)],
        rid: Option<&str>,
    ) -> Result<Vec<String>, Error> {
        let req = TracksRequest {
            session_description: None,
            tracks: tracks
                .iter()
                .map(|(sid, name)| TrackObject {
                    location: TrackLocation::Remote,
                    mid: None,
                    track_name: name.clone(),
                    session_id: Some(sid.clone()),
                    simulcast: rid.map(|r| SimulcastPreference {
                        preferred_rid: r.into(),
                    }),
                })
                .collect(),
        };
        let path = format!("/v1/sessions/{}/tracks/new", self.session_id);
        let resp: TracksResponse = self
            .call(
                reqwest::Method::POST,
                &path,
                Some(&serde_json::to_value(&req)?),
            )
            .await?;
        if let Some(e) = resp.tracks.iter().find_map(|t| t.error.clone()) {
            return Err(format!("pull refused: {}", e.error_description).into());
        }
        let offer = resp.session_description.ok_or("no offer")?;
        self.answer_node_offer(offer).await?;
        Ok(resp.tracks.into_iter().filter_map(|t| t.mid).collect())
    }

    /// Answers an offer the node returned, through `renegotiate`.
    pub async fn answer_node_offer(&self, offer: SessionDescription) -> Result<(), Error> {
        let sdp = self.node_sdp_as_applied(offer.sdp);
        self.pc
            .set_remote_description(RTCSessionDescription::offer(sdp)?)
            .await?;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer).await?;
        let sdp = self.local_sdp().await?;
        let path = format!("/v1/sessions/{}/renegotiate", self.session_id);
        let body =
            serde_json::json!({"sessionDescription": {"type": "answer", "sdp": self.to_node(sdp)}});
        let _: serde_json::Value = self.call(reqwest::Method::PUT, &path, Some(&body)).await?;
        Ok(())
    }

    /// An SDP of this client as the node gets it (through its shaped link, if any: the node,
    /// offering or answering, sends its checks and media to the link, not straight here).
    fn to_node(&self, sdp: String) -> String {
        match &self.via {
            Some(link) => link.rewrite_client_sdp(&sdp),
            None => sdp,
        }
    }

    /// An SDP of the node as this client applies it (through its shaped link, if any).
    fn node_sdp_as_applied(&self, sdp: String) -> String {
        match &self.via {
            Some(link) => link.rewrite_sdp(&sdp),
            None => sdp,
        }
    }

    /// Track ids of the tracks received so far.
    pub fn remote_track_ids(&self) -> Vec<String> {
        self.inbox.lock().unwrap().tracks.keys().cloned().collect()
    }

    pub fn remote_track(&self, id: &str) -> Option<Arc<dyn TrackRemote>> {
        self.inbox.lock().unwrap().tracks.get(id).cloned()
    }

    /// Packets received on a track (ids are `{first 8 of publisher session}-{track name}`).
    pub fn packets(&self, track_id: &str) -> Vec<Received> {
        self.inbox
            .lock()
            .unwrap()
            .packets
            .get(track_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Sends a PLI about a received track to the node.
    pub async fn send_pli(&self, track_id: &str, as_chromium: bool) -> Result<(), Error> {
        let t = self.remote_track(track_id).ok_or("no such remote track")?;
        let ssrc = *t.ssrcs().await.first().ok_or("track has no ssrc")?;
        let pli = Box::new(PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: ssrc,
        });
        t.write_rtcp(chromium_compound(pli, as_chromium)).await?;
        Ok(())
    }

    /// Sends a NACK for `seq` of a received track to the node.
    pub async fn send_nack(
        &self,
        track_id: &str,
        seq: u16,
        as_chromium: bool,
    ) -> Result<(), Error> {
        use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
        let t = self.remote_track(track_id).ok_or("no such remote track")?;
        let ssrc = *t.ssrcs().await.first().ok_or("track has no ssrc")?;
        let nack = Box::new(TransportLayerNack {
            sender_ssrc: 0,
            media_ssrc: ssrc,
            nacks: vec![NackPair {
                packet_id: seq,
                lost_packets: 0,
            }],
        });
        t.write_rtcp(chromium_compound(nack, as_chromium)).await?;
        Ok(())
    }

    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

/// The remote track id under which a subscriber sees `(publisher session, track name)`.
/// Feedback as sent: alone, or `as_chromium` as Chromium sends feedback it needs at once, in a
/// compound led by a receiver report without report blocks (sender SSRC 1, its receive-only
/// default).
fn chromium_compound(
    feedback: Box<dyn rtc::rtcp::Packet>,
    as_chromium: bool,
) -> Vec<Box<dyn rtc::rtcp::Packet>> {
    if !as_chromium {
        return vec![feedback];
    }
    let rr = rtc::rtcp::receiver_report::ReceiverReport {
        ssrc: 1,
        ..Default::default()
    };
    vec![Box::new(rr), feedback]
}

pub fn remote_track_id(publisher_session: &str, name: &str) -> String {
    format!("{}-{}", &publisher_session[..8], name)
}
