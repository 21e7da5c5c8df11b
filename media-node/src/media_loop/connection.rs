//! One participant's connection inside a media loop: webrtc-rs's sans-IO `RTCPeerConnection`
//! (ICE, DTLS, SRTP, RTCP interceptors; no I/O, no tasks), configured as every node connection
//! is, and its offer/answer work. The loop owns it: nothing here is shared or locked.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::{MediaStreamTrack, MediaStreamTrackId};
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{RTCDtlsRole, RTCIceCandidateInit};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::rtp_transceiver::{
    RTCRtpReceiverId, RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverId,
    RTCRtpTransceiverInit,
};

use super::command::Owner;
use super::rtcp_to_app::{self, RtcpToApp};
use crate::error::ApiError;
use crate::sdp::AUDIO_LEVEL_URI;

pub struct Connection {
    pub session_id: String,
    pub owner: Owner,
    pub rtc: RTCPeerConnection,
    pub state: RTCPeerConnectionState,
    /// The transport was up once (pulls hold their first packets until it is).
    pub was_up: bool,
    /// When the transport first came up.
    pub up_at: Option<Instant>,
    /// Deadline `rtc` last asked for.
    pub deadline: Option<Instant>,
    /// Last datagram or call of its participant (the idle reaper's clock).
    pub last_activity: Instant,
    /// The send-side estimate of what its downlink carries, and the allocation within it.
    pub downlink: super::bandwidth::Downlink,
    /// Listed for the loop's next drain (fed since the last one).
    pub touched: bool,
    /// The publication each of its inbound tracks feeds (rtc's track id -> the loop's id): the
    /// per-packet lookup, a few entries per connection.
    tracks_in: Vec<(TrackId, usize)>,
}

/// A track the node sends on this connection (a pull).
pub struct Outgoing {
    pub sender: RTCRtpSenderId,
    /// The track id rtc names this sender's RTCP by.
    pub track_id: TrackId,
    pub ssrc: u32,
}

/// What the puller took for a pull: the codec's payload type, and RED's where it took RED.
pub struct Negotiated {
    pub payload_type: u8,
    pub red: Option<u8>,
}

/// The codecs, header extensions and interceptors of every node connection: webrtc-rs's
/// defaults (NACK, RTCP reports, TWCC), the audio level extension, RED over Opus, and the
/// node's RTCP hand-off.
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
        registry.with(Slot::from(rtcp_to_app::SLOT), RtcpToApp::new(metrics)),
    ))
}

impl Connection {
    /// A connection answering on `local` (the loop's socket) with ICE username `ufrag`.
    pub fn new(
        session_id: String,
        owner: Owner,
        local: SocketAddr,
        ufrag: &str,
        pwd: &str,
        metrics: Arc<crate::metrics::Metrics>,
        now: Instant,
    ) -> Result<Self, ApiError> {
        let (media, registry) = media_and_interceptors(metrics.clone()).map_err(ApiError::Media)?;
        // Issue 18: the downlink estimate (GCC on the transport-cc feedback about what the node
        // sends), which also bounds the retransmissions.
        let estimate = Arc::new(super::bandwidth::EstimateCell::default());
        let registry = registry.with(
            Slot::from(super::retransmit::SLOT),
            super::retransmit::RetransmitCounter::new(metrics, estimate.clone()),
        );
        let registry = super::bandwidth::with_estimator(registry, &estimate);
        // DTLS server (`a=setup:passive`): the browser's ClientHello is answered as it arrives (docs/field-notes.md, "DTLS role of the node").
        let se = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_answering_dtls_role(RTCDtlsRole::Server)
            .with_ice_credentials(ufrag.to_owned(), pwd.to_owned())
            .with_include_loopback_candidate(local.ip().is_loopback())
            .build();
        let mut rtc = RTCPeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(se)
            .build(now)
            .map_err(media_err)?;
        rtc.add_local_candidate(RTCIceCandidateInit {
            candidate: format!(
                "candidate:1 1 udp 2130706431 {} {} typ host",
                local.ip(),
                local.port()
            ),
            ..Default::default()
        })
        .map_err(media_err)?;
        Ok(Self {
            session_id,
            owner,
            rtc,
            state: RTCPeerConnectionState::New,
            was_up: false,
            up_at: None,
            deadline: None,
            last_activity: now,
            downlink: super::bandwidth::Downlink {
                cell: estimate,
                ..Default::default()
            },
            touched: false,
            tracks_in: Vec::new(),
        })
    }

    pub fn set_remote_offer(&mut self, now: Instant, sdp: &str) -> Result<(), ApiError> {
        let desc = RTCSessionDescription::offer(sdp.to_owned()).map_err(ApiError::bad_sdp)?;
        self.rtc
            .set_remote_description(now, desc)
            .map_err(ApiError::bad_sdp)
    }

    /// Adds a track the node sends (a pull). In an answer (`offered`) it lands on the next
    /// receive-only m-line of its kind the client offered; else on a new send-only transceiver
    /// the node's next offer carries. msid: `<publisher session> <first 8 of it>-<name>`.
    pub fn add_outgoing(
        &mut self,
        publisher: &str,
        name: &str,
        video: bool,
        offered: bool,
    ) -> Result<Outgoing, ApiError> {
        let ssrc = rand::random::<u32>();
        let track = MediaStreamTrack::new(
            publisher.to_owned(),
            format!("{}-{name}", &publisher[..8.min(publisher.len())]),
            name.to_owned(),
            if video {
                RtpCodecKind::Video
            } else {
                RtpCodecKind::Audio
            },
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: codec(video),
                ..Default::default()
            }],
        );
        let track_id = track.track_id().clone();
        let sender = if offered {
            self.rtc.add_track(track).map_err(media_err)?
        } else {
            // Send-only: a pull never carries media from the client, and removing it later
            // turns the m-line inactive.
            let init = RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                streams: vec![],
                send_encodings: vec![],
            };
            let t = self
                .rtc
                .add_transceiver_from_track(track, Some(init))
                .map_err(media_err)?;
            RTCRtpSenderId::from(t)
        };
        Ok(Outgoing {
            sender,
            track_id,
            ssrc,
        })
    }

    /// The mid of the transceiver that sends for `sender`.
    pub fn mid_of_sender(&mut self, sender: RTCRtpSenderId) -> Option<String> {
        self.rtc
            .rtp_transceiver(RTCRtpTransceiverId::from(sender))?
            .mid()
            .clone()
    }

    /// Stops sending a pull (its m-line turns inactive at the next offer).
    pub fn remove_outgoing(&mut self, sender: RTCRtpSenderId) {
        let _ = self.rtc.remove_track(sender);
    }

    /// A node offer awaits the client's answer.
    pub fn has_pending_offer(&self) -> bool {
        self.rtc.pending_local_description().is_some()
    }

    /// Creates and applies a node offer.
    pub fn offer(&mut self, now: Instant) -> Result<String, ApiError> {
        let offer = self.rtc.create_offer(None).map_err(media_err)?;
        self.rtc
            .set_local_description(now, offer)
            .map_err(media_err)?;
        self.rtc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| ApiError::Media("no local description".into()))
    }

    pub fn set_remote_answer(&mut self, now: Instant, sdp: &str) -> Result<(), ApiError> {
        let desc = RTCSessionDescription::answer(sdp.to_owned()).map_err(ApiError::bad_sdp)?;
        self.rtc
            .set_remote_description(now, desc)
            .map_err(ApiError::bad_sdp)
    }

    /// Answers the m-lines `mids` inactive (pulls that were refused).
    pub fn set_inactive(&mut self, mids: &[&str]) {
        let ids: Vec<_> = self.rtc.get_transceivers().collect();
        for id in ids {
            if let Some(mut t) = self.rtc.rtp_transceiver(id)
                && t.mid().as_deref().is_some_and(|m| mids.contains(&m))
            {
                t.set_direction(RTCRtpTransceiverDirection::Inactive);
            }
        }
    }

    pub fn answer(&mut self, now: Instant) -> Result<String, ApiError> {
        let answer = self.rtc.create_answer(None).map_err(media_err)?;
        self.rtc
            .set_local_description(now, answer)
            .map_err(media_err)?;
        self.rtc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| ApiError::Media("no local description".into()))
    }

    /// The payload types the puller took for a pull (`None`: not the pull's codec).
    pub fn negotiated(&mut self, sender: RTCRtpSenderId, video: bool) -> Option<Negotiated> {
        let want = codec(video).mime_type;
        let mut s = self.rtc.rtp_sender(sender)?;
        let codecs = s.get_parameters().rtp_parameters.codecs.clone();
        let pt = codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(&want))?
            .payload_type;
        // Audio redundancy where the puller took RED over this codec (red.rs).
        let red = codecs
            .iter()
            .find(|r| {
                !video && crate::red::wraps(&r.rtp_codec.mime_type, &r.rtp_codec.sdp_fmtp_line, pt)
            })
            .map(|r| r.payload_type);
        Some(Negotiated {
            payload_type: pt,
            red,
        })
    }

    /// The mid of the transceiver whose receiver is `receiver`.
    pub fn mid_of_receiver(&mut self, receiver: RTCRtpReceiverId) -> Option<String> {
        let ids: Vec<_> = self.rtc.get_transceivers().collect();
        ids.into_iter().find_map(|id| {
            let t = self.rtc.rtp_transceiver(id)?;
            (t.receiver() == Some(receiver))
                .then(|| t.mid().clone())
                .flatten()
        })
    }

    pub fn is_up(&self) -> bool {
        self.state == RTCPeerConnectionState::Connected
    }

    /// The publication inbound track `track` feeds.
    pub fn publication_of(&self, track: &str) -> Option<usize> {
        self.tracks_in
            .iter()
            .find(|(t, _)| t == track)
            .map(|(_, p)| *p)
    }

    /// Inbound track `track` feeds `publication` (rtc opened it; once per simulcast layer).
    pub fn index_track(&mut self, track: &TrackId, publication: usize) {
        if self.publication_of(track) != Some(publication) {
            self.tracks_in.retain(|(t, _)| t != track);
            self.tracks_in.push((track.clone(), publication));
        }
    }

    /// A publication of this connection ended.
    pub fn forget_publication(&mut self, publication: usize) {
        self.tracks_in.retain(|(_, p)| *p != publication);
    }
}

/// The codec of a forwarded track (the node's pushes are VP8 and Opus).
fn codec(video: bool) -> RTCRtpCodec {
    if video {
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
    }
}

/// A publisher's track as rtc names it.
pub type TrackId = MediaStreamTrackId;

fn media_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::Media(e.to_string())
}
