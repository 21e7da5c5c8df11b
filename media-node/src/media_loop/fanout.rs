//! Publications and pulls of a media loop's rooms, as plain structs the loop owns (no `Arc`, no
//! lock), and the per-packet decision for one pull, built from the node's pure per-packet models
//! (`layers.rs`, `stitch.rs`, `keyframes.rs`, `red.rs`).

use edgemeet_protocol::node::TrackStatus;
use rtc::rtp;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};

use crate::keyframes::{KeyframeRequests, Outcome};
use crate::layers::{LayerTracker, LayerView, MAX_LAYERS};
use crate::red::RedEncoder;
use crate::stitch::{Stitch, Stitched, TrackKind};
use crate::tile_view::TileView;

use super::bandwidth::PullGrant;
use super::connection::TrackId;
use super::layer_costs::LayerCosts;
use super::router::ConnId;

pub type PubId = usize;
pub type PullId = usize;

/// A track a session pushes.
pub struct Publication {
    pub conn: ConnId,
    pub mid: String,
    pub name: String,
    pub video: bool,
    /// The publisher's codec: its MIME type, payload type and clock rate (other payload types,
    /// e.g. its RTX stream, are not forwarded).
    pub mime: String,
    pub payload_type: u8,
    pub clock_rate: u32,
    /// The RFC 6464 audio level extension's id (audio).
    pub audio_level_id: Option<u8>,
    /// Simulcast rids the publisher offered, in its order (low to high).
    pub rids: Vec<String>,
    /// (rid, ssrc) of each layer seen.
    pub rid_ssrcs: Vec<(String, u32)>,
    pub layers: LayerTracker,
    /// Set when its first packet arrives (rtc's track-open event).
    pub track: Option<TrackId>,
    pub receiver: Option<RTCRtpReceiverId>,
    /// The SSRC of a single-layer track.
    pub media_ssrc: Option<u32>,
    pub pulls: Vec<PullId>,
    /// Keyframe requests to the publisher, one at a time as Chromium takes them.
    pub keyframes: KeyframeRequests,
    /// Last sequence number per SSRC (ingress loss counter).
    pub last_seq: Vec<(u32, u16)>,
    /// Set while the meeting records this track.
    pub taps: Vec<crate::recording::tap::LoopTap>,
    /// What each layer costs a viewer now (bandwidth allocation, issue 18).
    pub costs: LayerCosts,
    /// Each layer's height (rank order), from its last VP8 keyframe: the layer a tile needs.
    pub heights: [Option<u32>; MAX_LAYERS],
    /// The layers its page is asked to send (simulcast video; set on the first tick).
    pub sent: Option<crate::dynacast::SentLayers>,
}

impl Publication {
    pub fn kind(&self) -> TrackKind<'_> {
        TrackKind {
            mime: &self.mime,
            video: self.video,
            vp8: self.video && self.mime.eq_ignore_ascii_case("video/VP8"),
            simulcast: !self.rids.is_empty(),
            clock_rate: self.clock_rate,
        }
    }

    /// The lowest layer (rank) that covers a tile `height` device pixels high; `None`: no cap
    /// (no height known yet, or the tile named none).
    pub fn rank_for_height(&self, height: Option<u32>) -> Option<usize> {
        let n = self.rids.len().clamp(1, MAX_LAYERS);
        crate::tile_view::rank_for_height(&self.heights[..n], height?)
    }

    pub fn rank_of_rid(&self, rid: &str) -> Option<usize> {
        self.rids.iter().position(|r| r == rid)
    }

    pub fn ssrc_of_rank(&self, rank: usize) -> Option<u32> {
        let rid = self.rids.get(rank)?;
        self.rid_ssrcs
            .iter()
            .find(|(r, _)| r == rid)
            .map(|(_, s)| *s)
    }

    /// Each offered layer's SSRC, if seen, low to high (empty: not simulcast).
    pub fn layer_ssrcs(&self) -> Vec<Option<u32>> {
        (0..self.rids.len()).map(|r| self.ssrc_of_rank(r)).collect()
    }

    /// A layer (rid) arrives on `ssrc`.
    pub fn bind_layer(&mut self, rid: &str, ssrc: u32) {
        match self.rid_ssrcs.iter_mut().find(|(r, _)| r == rid) {
            Some((_, old)) if *old != ssrc => {
                // The layer was renumbered: requests for the old stream are moot.
                self.keyframes.forget(*old);
                *old = ssrc;
            }
            Some(_) => {}
            None => self.rid_ssrcs.push((rid.to_owned(), ssrc)),
        }
        if let Some(rank) = self.rank_of_rid(rid) {
            self.layers.set_ssrc(rank, ssrc);
        }
    }

    /// The layers a keyframe request names: `ssrc`, or every layer it sends.
    fn targets(&self, ssrc: Option<u32>) -> Vec<u32> {
        match ssrc {
            Some(s) => vec![s],
            None if !self.rid_ssrcs.is_empty() => self.rid_ssrcs.iter().map(|x| x.1).collect(),
            None => self.media_ssrc.into_iter().collect(),
        }
    }

    /// The layers to ask a keyframe of now (`ssrc`, or all), paced by [`KeyframeRequests`]
    /// with `interval_ms` per layer. `None`: nothing sent or queued (rate limit, not video).
    pub fn keyframe_request(
        &mut self,
        ssrc: Option<u32>,
        now_ms: u64,
        interval_ms: u64,
    ) -> Option<Vec<u32>> {
        if !self.video {
            return None;
        }
        let (mut send, mut queued) = (Vec::new(), false);
        for s in self.targets(ssrc) {
            match self.keyframes.request(s, now_ms, interval_ms) {
                Outcome::Send => send.push(s),
                Outcome::Queued => queued = true,
                Outcome::Suppressed => {}
            }
        }
        (!send.is_empty() || queued).then_some(send)
    }

    /// Counts a gap in a layer's sequence numbers (packets lost on the publisher's way).
    pub fn lost_before(&mut self, ssrc: u32, seq: u16) -> u64 {
        let prev = match self.last_seq.iter_mut().find(|(s, _)| *s == ssrc) {
            Some((_, last)) => Some(std::mem::replace(last, seq)),
            None => {
                self.last_seq.push((ssrc, seq));
                None
            }
        };
        match prev.map(|p| seq.wrapping_sub(p)) {
            Some(gap) if gap > 1 && gap < 0x8000 => u64::from(gap - 1),
            _ => 0,
        }
    }
}

/// Most packets held for a pull whose transport is not up yet (about a second of video).
const HOLD_MAX: usize = 256;

/// A track a session pulls from a publication of its room.
pub struct Pull {
    pub conn: ConnId,
    /// The m-line it is sent on (known once offered or answered).
    pub mid: Option<String>,
    /// What it pulls (kept for its state once the publisher left).
    pub publisher: String,
    pub track_name: String,
    pub publication: PubId,
    pub sender: RTCRtpSenderId,
    /// The track id rtc names this sender's RTCP by.
    pub track_id: TrackId,
    pub ssrc: u32,
    /// The payload type the puller took; `None` while the node's offer awaits its answer.
    pub payload_type: Option<u8>,
    pub status: TrackStatus,
    /// Rank (the publisher's rid order) of the layer asked for with `preferredRid`.
    pub preferred: Option<usize>,
    pub stitch: Stitch,
    /// RED's payload type and encoder, where the puller took RED over Opus.
    pub red: Option<(u8, RedEncoder)>,
    /// Prepared packets kept until the puller's transport first comes up (its first keyframe).
    pub held: Vec<rtp::Packet>,
    pub created_ms: u64,
    /// The layer the viewer's estimate allows, or a pause (`bandwidth.rs`).
    pub grant: PullGrant,
    /// How the viewer's page shows it (`tracks/view`): not shown, no video.
    pub view: TileView,
    /// The highest layer (rank) its tile's height needs (`bandwidth.rs` keeps it current).
    pub view_cap: Option<usize>,
    /// RTP packets sent on it (its state shows them).
    pub packets_sent: u64,
}

/// What to do with a publisher's packet for one pull.
pub enum Step {
    Send(rtp::Packet),
    Drop,
    NeedKeyframe(u32),
}

impl Pull {
    /// Keyframe requests of a young pull go out more often (see `keyframes.rs`).
    pub fn keyframe_interval_ms(&self, now_ms: u64) -> u64 {
        if now_ms.saturating_sub(self.created_ms) < crate::keyframes::YOUNG_MS {
            crate::keyframes::YOUNG_LAYER_INTERVAL_MS
        } else {
            crate::keyframes::LAYER_INTERVAL_MS
        }
    }

    /// The publisher layer a keyframe request of this pull is about: the one it gets, else the
    /// one it asked for; `None`: every layer (or not simulcast).
    pub fn keyframe_target(&self, p: &Publication) -> Option<u32> {
        if p.rids.is_empty() {
            return None;
        }
        self.stitch
            .current()
            .or_else(|| p.ssrc_of_rank(self.layer()?))
    }

    /// The layer (rank) this pull should get: what the viewer's estimate allows, else what its
    /// page asked for, no higher than its tile needs (a pinned or large tile: what it needs).
    pub fn layer(&self) -> Option<usize> {
        if self.grant.layer.is_some() {
            return self.grant.layer;
        }
        match (self.preferred, self.view_cap) {
            // A large tile goes by its height, above the layer asked for.
            (_, Some(c)) if self.view.pinned => Some(c),
            (Some(p), Some(c)) => Some(p.min(c)),
            (p, c) => p.or(c),
        }
    }

    /// The highest layer (rank) this pull takes when its viewer's link carries it: the layer its
    /// page asked for, no higher than its tile needs; a pinned (large) tile what it needs, above
    /// the layer asked for. 0 for a single-layer track.
    pub fn wanted_rank(&self, p: &Publication) -> usize {
        if p.rids.is_empty() {
            return 0;
        }
        let asked = self.preferred.unwrap_or(p.rids.len() - 1);
        match self.view_cap {
            Some(c) if self.view.pinned => c,
            Some(c) => asked.min(c),
            None => asked,
        }
    }

    pub fn step(
        &mut self,
        p: &Publication,
        view: &LayerView,
        pkt: &rtp::Packet,
        now_ms: u64,
    ) -> Step {
        let Some(pt) = self.payload_type else {
            return Step::Drop;
        };
        if self.status != TrackStatus::Active || self.grant.paused || !self.view.shown {
            return Step::Drop;
        }
        match self.stitch.step(
            p.kind(),
            self.layer(),
            view,
            pkt.header.ssrc,
            pkt.header.sequence_number,
            pkt.header.timestamp,
            &pkt.payload,
            now_ms,
        ) {
            Stitched::Forward { seq, ts, payload } => {
                let mut out = crate::stitch::forwarded_packet(pkt, pt, seq, ts, self.ssrc);
                if let Some(b) = payload {
                    out.payload = b;
                }
                if let Some((red_pt, enc)) = self.red.as_mut() {
                    out.payload = enc.encode(out.header.timestamp, pt, &out.payload);
                    out.header.payload_type = *red_pt;
                }
                Step::Send(out)
            }
            Stitched::Drop => Step::Drop,
            Stitched::NeedKeyframe(ssrc) => Step::NeedKeyframe(ssrc),
        }
    }

    /// Keeps a prepared packet until the transport is up; too many (connecting takes too long):
    /// start again at the next keyframe.
    pub fn hold(&mut self, pkt: rtp::Packet) {
        if self.held.len() >= HOLD_MAX {
            self.held.clear();
            self.stitch = Stitch::default();
            return;
        }
        self.held.push(pkt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publication(rids: &[&str]) -> Publication {
        Publication {
            conn: 0,
            mid: "0".into(),
            name: "video".into(),
            video: true,
            mime: "video/VP8".into(),
            payload_type: 96,
            clock_rate: 90_000,
            audio_level_id: None,
            rids: rids.iter().map(|r| r.to_string()).collect(),
            rid_ssrcs: Vec::new(),
            layers: LayerTracker::default(),
            track: None,
            receiver: None,
            media_ssrc: None,
            pulls: Vec::new(),
            keyframes: KeyframeRequests::default(),
            last_seq: Vec::new(),
            taps: Vec::new(),
            costs: LayerCosts::default(),
            heights: [None; MAX_LAYERS],
            sent: None,
        }
    }

    #[test]
    fn keyframe_requests_name_the_layers_and_wait_for_the_publishers_window() {
        let mut p = publication(&["q", "h", "f"]);
        assert_eq!(p.keyframe_request(None, 0, 100), None, "no layer seen yet");
        p.bind_layer("q", 10);
        p.bind_layer("h", 11);
        assert_eq!(p.ssrc_of_rank(1), Some(11));
        assert_eq!(p.ssrc_of_rank(2), None);
        // Every layer: the first goes now, the second waits for the publisher's window.
        assert_eq!(p.keyframe_request(None, 0, 100), Some(vec![10]));
        assert_eq!(
            p.keyframes.due(crate::keyframes::PUBLISHER_WINDOW_MS),
            Some(11)
        );
        // Asked again too soon: nothing.
        assert_eq!(p.keyframe_request(Some(10), 50, 100), None);
        // A renumbered layer forgets the old stream's requests.
        p.bind_layer("q", 20);
        assert_eq!(p.ssrc_of_rank(0), Some(20));
        let mut audio = publication(&[]);
        audio.video = false;
        audio.media_ssrc = Some(5);
        assert_eq!(
            audio.keyframe_request(None, 0, 100),
            None,
            "audio has no keyframes"
        );
    }

    fn pull(publication: PubId) -> Pull {
        Pull {
            conn: 1,
            mid: Some("2".into()),
            publisher: "s".into(),
            track_name: "audio".into(),
            publication,
            sender: RTCRtpSenderId::from(0usize),
            track_id: "t".into(),
            ssrc: 77,
            payload_type: None,
            status: TrackStatus::Pending,
            preferred: None,
            stitch: Stitch::default(),
            red: None,
            held: Vec::new(),
            created_ms: 0,
            grant: PullGrant::default(),
            view: TileView::default(),
            view_cap: None,
            packets_sent: 0,
        }
    }

    fn packet(ssrc: u32, seq: u16, ts: u32, payload: &'static [u8]) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header {
                ssrc,
                sequence_number: seq,
                timestamp: ts,
                payload_type: 111,
                ..Default::default()
            },
            payload: bytes::Bytes::from_static(payload),
        }
    }

    #[test]
    fn a_pull_sends_only_once_negotiated_under_its_own_ssrc_and_payload_types_with_red() {
        let mut audio = publication(&[]);
        audio.video = false;
        audio.mime = "audio/opus".into();
        let view = LayerView::default();
        let mut x = pull(0);
        assert!(matches!(
            x.step(&audio, &view, &packet(5, 10, 960, b"a"), 0),
            Step::Drop
        ));
        x.payload_type = Some(109);
        x.status = TrackStatus::Active;
        x.red = Some((63, RedEncoder::default()));
        let Step::Send(first) = x.step(&audio, &view, &packet(5, 11, 1920, b"a"), 20) else {
            panic!("sent")
        };
        assert_eq!(
            (first.header.ssrc, first.header.payload_type),
            (77, 63),
            "the pull's SSRC, RED's payload type"
        );
        // RED: the primary block's header (its payload type, Opus as negotiated) then the data.
        assert_eq!(&first.payload[..], &[109, b'a']);
        let Step::Send(second) = x.step(&audio, &view, &packet(5, 12, 2880, b"b"), 40) else {
            panic!("sent")
        };
        assert_eq!(
            second.header.sequence_number,
            first.header.sequence_number + 1
        );
        assert!(second.payload.len() > 2, "carries the previous packet too");
        assert!(second.payload.ends_with(b"ab"), "{:?}", second.payload);
        // Inactive (its publisher left): nothing more.
        x.status = TrackStatus::Inactive;
        assert!(matches!(
            x.step(&audio, &view, &packet(5, 13, 3840, b"c"), 60),
            Step::Drop
        ));
    }

    #[test]
    fn a_pull_holds_until_its_transport_is_up_and_starts_over_when_too_much_waits() {
        let mut x = pull(0);
        for i in 0..HOLD_MAX {
            x.hold(packet(5, i as u16, 0, b"v"));
        }
        assert_eq!(x.held.len(), HOLD_MAX);
        x.hold(packet(5, 999, 0, b"v"));
        assert!(
            x.held.is_empty(),
            "dropped: the next keyframe starts it again"
        );
    }

    #[test]
    fn ingress_loss_counts_gaps_per_layer() {
        let mut p = publication(&[]);
        assert_eq!(p.lost_before(1, 65534), 0);
        assert_eq!(p.lost_before(1, 1), 2, "65535 and 0 lost across the wrap");
        assert_eq!(p.lost_before(2, 7), 0, "another layer counts on its own");
        assert_eq!(p.lost_before(1, 0), 0, "a late packet is no gap");
    }
}
