//! The node's own readers of outside bytes, each the very function the node calls on them: an
//! SDP offer or answer, a token, a request body, an RTP payload, a datagram on the shared UDP
//! port, a recorded VP8 stream. Public so the fuzz targets (`fuzz/`) call them as the node does;
//! nothing else needs them.

/// A request body of the HTTP API (size-limited by the router first).
pub use crate::api::parse_json as parse_body;
/// Bearer tokens on every API call: `TokenVerifier::verify(Some("Bearer ..."))`.
pub use crate::auth::TokenVerifier;
/// Per-packet simulcast layer tracking (SSRC, RTP timestamp, arrival time).
pub use crate::layers::LayerTracker;
/// The STUN username routing of the media loop's UDP port.
pub use crate::media_loop::router::stun_local_ufrag;
/// The recorder's VP8 depacketizer and keyframe header reader.
pub use crate::recording::vp8::{Depacketizer, Frame, keyframe_size};
/// Keyframe detection in an RTP payload, and the per-subscriber rewriter that acts on it.
pub use crate::rewrite::{Decision, Rewriter, is_keyframe_start};
/// The node's SDP reading (media sections of an offer or answer).
pub use crate::sdp::{MediaSection, find_mid, parse as parse_sdp};
/// What a subscriber is sent for a publisher's RTP packet (then marshalled and encrypted).
pub use crate::stitch::forwarded_packet;

/// The interceptor chain a node connection runs every inbound RTP and RTCP packet through
/// (webrtc-rs's NACK, RTCP reports and TWCC, then the node's RTCP hand-off), built as for a
/// session, with metrics of its own.
pub fn connection_interceptors() -> Result<impl rtc::interceptor::Interceptor, String> {
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::default());
    let (_, registry) = crate::media_loop::connection::media_and_interceptors(metrics)?;
    Ok(registry.build())
}
