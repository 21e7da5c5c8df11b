//! Publications and pulls of a media loop's rooms, as plain structs the loop owns (no `Arc`, no
//! lock), and the per-packet decision for one pull, built from the pure models (`rewrite.rs`).

use rtc::rtp;

use crate::rewrite::{Decision, Rewriter, is_keyframe_start};

use super::connection::{Outgoing, TrackId};
use super::router::ConnId;

pub type PubId = usize;
pub type PullId = usize;

/// A track a session pushes.
pub struct Publication {
    pub conn: ConnId,
    pub mid: String,
    pub name: String,
    pub video: bool,
    /// Set when its first packet arrives (rtc's track-open event).
    pub track: Option<TrackId>,
    pub receiver: Option<rtc::rtp_transceiver::RTCRtpReceiverId>,
    pub media_ssrc: Option<u32>,
    pub pulls: Vec<PullId>,
    /// When the node last asked this track's sender for a keyframe (ms, loop clock).
    pub last_keyframe_request_ms: Option<u64>,
}

/// How often a publication may be asked for a keyframe by the node. The full pacing of the old
/// path (`keyframes.rs`: per layer, Chromium's 300 ms window) comes with simulcast.
pub const KEYFRAME_REQUEST_INTERVAL_MS: u64 = 100;

impl Publication {
    /// Whether a keyframe request may go out now; notes it if so.
    pub fn may_request_keyframe(&mut self, now_ms: u64) -> bool {
        let ok = self
            .last_keyframe_request_ms
            .is_none_or(|t| now_ms.saturating_sub(t) >= KEYFRAME_REQUEST_INTERVAL_MS);
        if ok {
            self.last_keyframe_request_ms = Some(now_ms);
        }
        ok
    }
}

/// A track a session pulls from a publication of its room.
pub struct Pull {
    pub conn: ConnId,
    /// The m-line it is sent on, and what it pulls (kept for its state once the publisher left).
    pub mid: String,
    pub publisher: String,
    pub track_name: String,
    pub publication: PubId,
    pub out: Outgoing,
    pub rewriter: Rewriter,
}

/// What to do with a publisher's packet for one pull.
pub enum Step {
    Send(rtp::Packet),
    Drop,
    NeedKeyframe,
}

impl Pull {
    pub fn step(&mut self, pkt: &rtp::Packet, video: bool, now_ms: u64) -> Step {
        let (mime, clock) = if video {
            ("video/vp8", 90_000)
        } else {
            ("audio/opus", 48_000)
        };
        match self.rewriter.decide(
            pkt.header.ssrc,
            pkt.header.sequence_number,
            pkt.header.timestamp,
            None,
            || is_keyframe_start(mime, &pkt.payload),
            video,
            now_ms,
            clock,
        ) {
            Decision::Forward { seq, ts } => Step::Send(crate::forward::forwarded_packet(
                pkt,
                self.out.payload_type,
                seq,
                ts,
                self.out.ssrc,
            )),
            Decision::Drop => Step::Drop,
            Decision::DropNeedKeyframe => Step::NeedKeyframe,
        }
    }
}
