//! A session: one peer connection of one participant, tagged with its room. Holds the tracks it
//! pushes (publications) and pulls (subscriptions), and does its SDP offer/answer work.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use edgemeet_protocol::node::{SdpType, SessionDescription, TrackStatus};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Slot;
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use tokio::sync::watch;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, Registry,
    SettingEngineBuilder, register_default_interceptors,
};

use crate::error::ApiError;
use crate::forward::{Publication, Subscription};
use crate::interceptor::{RtcpToApp, SLOT};
use crate::node::Shared;
use crate::sdp::AUDIO_LEVEL_URI;

/// How long an answer or offer waits for ICE gathering (host candidates only: quick).
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Session {
    pub id: String,
    pub room: String,
    pub participant: String,
    pub route: String,
    pub pc: Arc<dyn PeerConnection>,
    pub port: u16,
    /// Serializes offer/answer work on this connection.
    pub signaling: tokio::sync::Mutex<()>,
    /// Pushed tracks by mid.
    published: Mutex<HashMap<String, Arc<Publication>>>,
    /// Pulled tracks, in order of creation.
    subscriptions: Mutex<Vec<Arc<Subscription>>>,
    last_activity_ms: AtomicU64,
    epoch: Instant,
    closed: AtomicBool,
    state: Mutex<RTCPeerConnectionState>,
    /// ICE and DTLS are up: media sent now arrives (read per packet by this session's pulls).
    pub transport_up: Arc<AtomicBool>,
    gathered: watch::Receiver<bool>,
    /// (bound IP, announced IP, announced port) when candidates are rewritten: a NAT 1:1
    /// public address, or the shared port of the UDP mux.
    announce: Option<(std::net::IpAddr, std::net::IpAddr, Option<u16>)>,
    /// This session's route in the UDP mux.
    pub mux_inbox: Option<Arc<crate::udpmux::Inbox>>,
    /// The node's own send path to this session (forwarded media).
    pub egress: Arc<crate::egress::Egress>,
}

struct Handler {
    shared: Weak<Shared>,
    session: OnceLock<Weak<Session>>,
    gathered: watch::Sender<bool>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let Some(session) = self.session.get().and_then(Weak::upgrade) else {
            return;
        };
        *session.state.lock().unwrap() = state;
        // Before media may flow: a pull must not start on webrtc-rs's path and then switch.
        let direct = self.shared.upgrade().is_some_and(|s| s.cfg.direct_send);
        if state == RTCPeerConnectionState::Connected && direct {
            let sdp = session.pc.local_description().await.map(|d| d.sdp);
            if !session.egress.activate(sdp.as_deref().unwrap_or_default()) {
                tracing::debug!(session = %session.id, "no SRTP keys: forwarding through webrtc-rs");
            }
        }
        session
            .transport_up
            .store(state == RTCPeerConnectionState::Connected, Relaxed);
        tracing::debug!(session = %session.id, %state, "connection state");
        if state == RTCPeerConnectionState::Failed
            && let Some(shared) = self.shared.upgrade()
        {
            // Closing awaits the connection's driver: never from inside its own callback.
            tokio::spawn(async move {
                shared.metrics.sessions_reaped.fetch_add(1, Relaxed);
                shared.close_session(&session.id, "ice failed").await;
            });
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let (Some(session), Some(shared)) = (
            self.session.get().and_then(Weak::upgrade),
            self.shared.upgrade(),
        ) else {
            return;
        };
        tokio::spawn(crate::forward::run_ingest(shared, session, track));
    }
}

impl Session {
    /// Builds the session's peer connection on a port of the configured range.
    pub async fn create(
        shared: &Arc<Shared>,
        id: String,
        room: String,
        participant: String,
        route: String,
    ) -> Result<Arc<Session>, ApiError> {
        let (gtx, grx) = watch::channel(false);
        let handler = Arc::new(Handler {
            shared: Arc::downgrade(shared),
            session: OnceLock::new(),
            gathered: gtx,
        });
        // UDP mux: the node picks the session's ICE username, by which the mux routes to it.
        let mux = shared.mux.as_ref().map(|m| {
            let ufrag = crate::tracks::random_id()[..16].to_owned();
            let inbox = m.register(&ufrag);
            (m.clone(), inbox, ufrag, crate::tracks::random_id())
        });
        // A few candidate ports: one may be taken by another process.
        let ports = shared.reserve_ports(4);
        let mut last_err = String::from("no free UDP port in the configured range");
        let mut built = None;
        for port in ports {
            if built.is_some() {
                shared.release_port(port);
                continue;
            }
            match build_pc(shared, handler.clone(), port, mux.as_ref()).await {
                Ok(parts) => built = Some((parts, port)),
                Err(e) => {
                    shared.release_port(port);
                    last_err = e;
                }
            }
        }
        let Some(((pc, egress), port)) = built else {
            if let Some((m, inbox, ..)) = &mux {
                m.unregister(inbox);
            }
            tracing::warn!(error = %last_err, "cannot build a peer connection");
            return Err(ApiError::Unavailable("no media port available"));
        };
        let session = Arc::new(Session {
            id,
            room,
            participant,
            route,
            pc,
            port,
            signaling: tokio::sync::Mutex::new(()),
            published: Mutex::new(HashMap::new()),
            subscriptions: Mutex::new(Vec::new()),
            last_activity_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            closed: AtomicBool::new(false),
            state: Mutex::new(RTCPeerConnectionState::New),
            transport_up: Arc::new(AtomicBool::new(false)),
            gathered: grx,
            announce: match &mux {
                Some((m, ..)) => Some((
                    shared.cfg.media_ip,
                    shared.cfg.public_ip.unwrap_or(shared.cfg.media_ip),
                    Some(m.local_addr().port()),
                )),
                None => shared.cfg.public_ip.map(|p| (shared.cfg.media_ip, p, None)),
            },
            mux_inbox: mux.map(|(_, inbox, ..)| inbox),
            egress,
        });
        let _ = handler.session.set(Arc::downgrade(&session));
        Ok(session)
    }

    pub fn touch(&self) {
        self.last_activity_ms
            .store(self.epoch.elapsed().as_millis() as u64, Relaxed);
    }

    pub fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_activity_ms.load(Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Relaxed)
    }

    pub fn mark_closed(&self) -> bool {
        !self.closed.swap(true, Relaxed)
    }

    pub fn connection_state(&self) -> RTCPeerConnectionState {
        *self.state.lock().unwrap()
    }

    pub fn publication(&self, mid: &str) -> Option<Arc<Publication>> {
        self.published.lock().unwrap().get(mid).cloned()
    }

    pub fn publication_by_name(&self, name: &str) -> Option<Arc<Publication>> {
        self.published
            .lock()
            .unwrap()
            .values()
            .find(|p| p.track_name == name && !p.closed.load(Relaxed))
            .cloned()
    }

    pub fn publications(&self) -> Vec<Arc<Publication>> {
        self.published.lock().unwrap().values().cloned().collect()
    }

    pub fn add_publication(&self, p: Arc<Publication>) {
        self.published.lock().unwrap().insert(p.mid.clone(), p);
    }

    pub fn remove_publication(&self, mid: &str) -> Option<Arc<Publication>> {
        self.published.lock().unwrap().remove(mid)
    }

    pub fn subscriptions(&self) -> Vec<Arc<Subscription>> {
        self.subscriptions.lock().unwrap().clone()
    }

    pub fn add_subscription(&self, s: Arc<Subscription>) {
        self.subscriptions.lock().unwrap().push(s);
    }

    pub fn remove_subscription(&self, s: &Arc<Subscription>) {
        self.subscriptions
            .lock()
            .unwrap()
            .retain(|x| !Arc::ptr_eq(x, s));
    }

    pub fn subscription_by_mid(&self, mid: &str) -> Option<Arc<Subscription>> {
        self.subscriptions
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.mid.lock().unwrap().as_deref() == Some(mid))
            .cloned()
    }

    pub fn subscription_by_ssrc(&self, ssrc: u32) -> Option<Arc<Subscription>> {
        self.subscriptions
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.out_ssrc == ssrc)
            .cloned()
    }

    /// Answers a client offer; returns the answer with the node's candidates.
    pub async fn answer(&self, offer: &SessionDescription) -> Result<SessionDescription, ApiError> {
        self.set_remote_offer(offer).await?;
        self.finish_answer().await
    }

    /// The first half of [`answer`](Self::answer): what is added between the halves (pulls on
    /// the m-lines the client receives on) goes into the answer.
    pub async fn set_remote_offer(&self, offer: &SessionDescription) -> Result<(), ApiError> {
        if offer.sdp_type != SdpType::Offer {
            return Err(ApiError::BadRequest(
                "expected a session description of type offer".into(),
            ));
        }
        let desc = RTCSessionDescription::offer(offer.sdp.clone()).map_err(ApiError::bad_sdp)?;
        self.pc
            .set_remote_description(desc)
            .await
            .map_err(ApiError::bad_sdp)
    }

    /// The second half of [`answer`](Self::answer).
    pub async fn finish_answer(&self) -> Result<SessionDescription, ApiError> {
        let answer = self.pc.create_answer(None).await.map_err(media)?;
        self.pc.set_local_description(answer).await.map_err(media)?;
        self.local_description(SdpType::Answer).await
    }

    /// Creates and applies a node offer (after adding or removing pulled tracks).
    pub async fn offer(&self) -> Result<SessionDescription, ApiError> {
        let offer = self.pc.create_offer(None).await.map_err(media)?;
        self.pc.set_local_description(offer).await.map_err(media)?;
        self.local_description(SdpType::Offer).await
    }

    /// Applies the client's answer to the node's last offer.
    pub async fn apply_answer(&self, answer: &SessionDescription) -> Result<(), ApiError> {
        if answer.sdp_type != SdpType::Answer {
            return Err(ApiError::BadRequest(
                "renegotiate takes the answer to the node's offer".into(),
            ));
        }
        if self.pc.pending_local_description().await.is_none() {
            return Err(ApiError::Conflict("no node offer is waiting for an answer"));
        }
        let desc = RTCSessionDescription::answer(answer.sdp.clone()).map_err(ApiError::bad_sdp)?;
        self.pc
            .set_remote_description(desc)
            .await
            .map_err(ApiError::bad_sdp)
    }

    pub async fn has_pending_offer(&self) -> bool {
        self.pc.pending_local_description().await.is_some()
    }

    async fn local_description(&self, t: SdpType) -> Result<SessionDescription, ApiError> {
        let mut rx = self.gathered.clone();
        let _ = tokio::time::timeout(GATHER_TIMEOUT, rx.wait_for(|g| *g)).await;
        let d = self
            .pc
            .local_description()
            .await
            .ok_or_else(|| ApiError::Media("no local description".into()))?;
        let sdp = match self.announce {
            Some((local, ip, port)) => crate::sdp::announce_addr(&d.sdp, local, ip, port),
            None => d.sdp,
        };
        Ok(SessionDescription { sdp_type: t, sdp })
    }

    /// The mid of the transceiver that received `track`.
    pub async fn mid_of_remote_track(&self, track: &Arc<dyn TrackRemote>) -> Option<String> {
        for t in self.pc.get_transceivers().await {
            if let Ok(Some(r)) = t.receiver().await
                && same(r.track(), track)
            {
                return t.mid().await.ok().flatten();
            }
        }
        None
    }

    /// Fills in the mid of each pulled track once the offer assigned them.
    pub async fn assign_subscription_mids(&self) {
        let subs = self.subscriptions();
        for t in self.pc.get_transceivers().await {
            let Ok(Some(sender)) = t.sender().await else {
                continue;
            };
            let Some(sub) = subs.iter().find(|s| {
                s.sender
                    .lock()
                    .unwrap()
                    .as_ref()
                    .is_some_and(|x| Arc::ptr_eq(x, &sender))
            }) else {
                continue;
            };
            if let Ok(Some(mid)) = t.mid().await {
                *sub.mid.lock().unwrap() = Some(mid);
            }
        }
    }

    /// After an answer: learn each pending pull's payload type and start forwarding to it.
    pub async fn activate_pending(&self, shared: &Shared) {
        for sub in self.subscriptions() {
            if sub.status() != TrackStatus::Pending {
                continue;
            }
            let sender = sub.sender.lock().unwrap().clone();
            let Some(sender) = sender else { continue };
            let Ok(params) = sender.get_parameters().await else {
                continue;
            };
            let want = &sub.publication.codec;
            let pt = params.rtp_parameters.codecs.iter().find(|c| {
                c.rtp_codec.mime_type.eq_ignore_ascii_case(&want.mime_type)
                    && c.rtp_codec.clock_rate == want.clock_rate
            });
            match pt {
                Some(c) => {
                    // RTX where negotiated: its stream and payload type answer NACKs.
                    let apt = format!("apt={}", c.payload_type);
                    let rtx_pt = params.rtp_parameters.codecs.iter().find(|r| {
                        r.rtp_codec.mime_type.eq_ignore_ascii_case("video/rtx")
                            && r.rtp_codec
                                .sdp_fmtp_line
                                .split(';')
                                .any(|f| f.trim() == apt)
                    });
                    let rtx_ssrc = params
                        .encodings
                        .first()
                        .and_then(|e| e.rtp_coding_parameters.rtx.as_ref());
                    if let (Some(pt), Some(rtx)) = (rtx_pt, rtx_ssrc) {
                        sub.set_rtx(rtx.ssrc, pt.payload_type);
                    }
                    // Audio redundancy where the subscriber took RED over this codec.
                    let red = params.rtp_parameters.codecs.iter().find(|r| {
                        crate::red::wraps(
                            &r.rtp_codec.mime_type,
                            &r.rtp_codec.sdp_fmtp_line,
                            c.payload_type,
                        )
                    });
                    if let Some(red) = red.filter(|_| !sub.publication.is_video) {
                        sub.set_red(red.payload_type);
                    }
                    sub.out_pt.store(u16::from(c.payload_type), Relaxed);
                    sub.set_status(TrackStatus::Active);
                    sub.publication.add_subscriber(sub.clone());
                    // Every layer: the pull starts on whichever brings a keyframe first (the
                    // lowest is the quickest to encode), and its wanted one follows. Before the
                    // transport is up (a pull in the session's first offer) the keyframe is held
                    // until it is.
                    sub.publication
                        .request_keyframe_for(shared, &sub, None)
                        .await;
                }
                None => {
                    tracing::info!(session = %self.id, "subscriber refused the publisher's codec");
                    sub.set_status(TrackStatus::Inactive);
                }
            }
        }
    }
}

fn same<A: ?Sized, B: ?Sized>(a: &Arc<A>, b: &Arc<B>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

fn media(e: impl std::fmt::Display) -> ApiError {
    ApiError::Media(e.to_string())
}

type MuxParts = (
    Arc<crate::udpmux::UdpMux>,
    Arc<crate::udpmux::Inbox>,
    String,
    String,
);

/// The codecs, header extensions and interceptors of every node connection: webrtc-rs's
/// defaults (NACK, RTCP reports, TWCC), the audio level extension, and the node's RTCP hand-off.
pub(crate) fn media_and_interceptors(
    metrics: Arc<crate::metrics::Metrics>,
) -> Result<(MediaEngine, Registry), String> {
    let mut media = MediaEngine::default();
    media.register_default_codecs().map_err(|e| e.to_string())?;
    // RED (RFC 2198) over Opus: the node wraps audio for subscribers that take it (red.rs).
    media
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: crate::red::MIME_TYPE.to_owned(),
                    clock_rate: 48000,
                    channels: 2,
                    sdp_fmtp_line: "111/111".to_owned(),
                    rtcp_feedback: vec![],
                },
                payload_type: 63,
            },
            RtpCodecKind::Audio,
        )
        .map_err(|e| e.to_string())?;
    media
        .register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: AUDIO_LEVEL_URI.to_owned(),
            },
            RtpCodecKind::Audio,
            None,
        )
        .map_err(|e| e.to_string())?;
    let registry =
        register_default_interceptors(Registry::new(), &mut media).map_err(|e| e.to_string())?;
    Ok((
        media,
        registry.with(Slot::from(SLOT), RtcpToApp::new(metrics)),
    ))
}

async fn build_pc(
    shared: &Arc<Shared>,
    handler: Arc<Handler>,
    port: u16,
    mux: Option<&MuxParts>,
) -> Result<(Arc<dyn PeerConnection>, Arc<crate::egress::Egress>), String> {
    let cfg = &shared.cfg;
    let (media, registry) = media_and_interceptors(shared.metrics.clone())?;
    // mDNS would open a multicast socket (fails in a loopback-only namespace) and an SFU
    // has no use for it.
    // DTLS server (`a=setup:passive` in answers): the client's ClientHello is answered as it
    // arrives. As DTLS client, webrtc-rs 0.21 queues its ClientHello when ICE selects a pair
    // but sends it only on the connection's next timer (tens to ~170 ms later, measured on
    // loopback); browsers start DTLS the moment ICE connects.
    let mut se = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_answering_dtls_role(RTCDtlsRole::Server);
    if cfg.media_ip.is_loopback() {
        se = se.with_include_loopback_candidate(true);
    }
    if let Some((_, _, ufrag, pwd)) = mux {
        se = se.with_ice_credentials(ufrag.clone(), pwd.clone());
    }
    let mux = mux.map(|(m, inbox, ..)| (m.clone(), inbox.clone()));
    let egress = Arc::new(crate::egress::Egress::default());
    let rt = crate::egress::EgressRuntime::new(egress.clone(), mux);
    let pc = PeerConnectionBuilder::new()
        .with_runtime(Arc::new(rt))
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(se.build())
        .with_handler(handler as Arc<dyn PeerConnectionEventHandler>)
        .with_udp_addrs(vec![std::net::SocketAddr::new(cfg.media_ip, port)])
        .build()
        .await
        .map_err(|e| e.to_string())?;
    Ok((Arc::new(pc), egress))
}
