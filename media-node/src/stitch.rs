//! One pull's outgoing stream, stitched from a publisher's packets: which simulcast layer it
//! should get now ([`wanted_layer`]), the seq/ts rewrite with keyframe-gated switches
//! ([`Rewriter`]) and VP8 picture numbering kept continuous across them ([`Vp8Munger`]), and
//! the packet a pull is sent ([`forwarded_packet`]). Pure; the media loop's `fanout.rs` uses it.

use bytes::Bytes;
use rtc::rtp;

use crate::layers::{LayerView, MAX_LAYERS};
use crate::rewrite::{Decision, Rewriter, Vp8Munger, is_keyframe_start};

/// What a publisher's track is, as far as stitching cares.
#[derive(Clone, Copy, Debug)]
pub struct TrackKind<'a> {
    pub mime: &'a str,
    pub video: bool,
    /// VP8: its payload descriptor numbers pictures.
    pub vp8: bool,
    /// The publisher offered simulcast layers (rids).
    pub simulcast: bool,
    pub clock_rate: u32,
}

/// The publisher layer a pull should get now (simulcast only): the preferred one while it
/// arrives, else the best one that does (see [`LayerView::pick`]). Without a preference: the
/// current layer while it flows, else the best one. `None`: not simulcast, any packet goes.
pub fn wanted_layer(
    simulcast: bool,
    preferred: Option<usize>,
    view: &LayerView,
    current: Option<u32>,
    packet_ssrc: u32,
) -> Option<u32> {
    if !simulcast {
        return None;
    }
    let pref = preferred
        .or_else(|| current.and_then(|c| view.rank_of(c)))
        .unwrap_or(MAX_LAYERS - 1);
    Some(view.pick(pref).or(current).unwrap_or(packet_ssrc))
}

/// What to do with a publisher's packet for one pull.
#[derive(Debug, PartialEq, Eq)]
pub enum Stitched {
    /// Send under these sequence number and timestamp; `payload` replaces the packet's own
    /// when the VP8 numbering had to change.
    Forward {
        seq: u16,
        ts: u32,
        payload: Option<Bytes>,
    },
    Drop,
    /// Drop, and ask the publisher for a keyframe on this layer (a switch waits for it).
    NeedKeyframe(u32),
}

/// A pull's stream state.
#[derive(Debug, Default)]
pub struct Stitch {
    rewriter: Rewriter,
    vp8: Vp8Munger,
}

impl Stitch {
    /// The layer now forwarded.
    pub fn current(&self) -> Option<u32> {
        self.rewriter.current()
    }

    /// Stops the stream until the next keyframe (a pull paused for bandwidth).
    pub fn pause(&mut self) {
        self.rewriter.pause();
    }

    /// Decides for one packet (`ssrc`, `seq`, `ts`, `payload`) given the pull's preferred rank.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        kind: TrackKind<'_>,
        preferred: Option<usize>,
        view: &LayerView,
        ssrc: u32,
        seq: u16,
        ts: u32,
        payload: &[u8],
        now_ms: u64,
    ) -> Stitched {
        let before = self.rewriter.current();
        let wanted = wanted_layer(kind.simulcast, preferred, view, before, ssrc);
        let d = self.rewriter.decide(
            ssrc,
            seq,
            ts,
            wanted,
            || is_keyframe_start(kind.mime, payload),
            kind.video,
            now_ms,
            kind.clock_rate,
        );
        match d {
            Decision::Forward { seq, ts } => {
                let payload = if kind.vp8 {
                    // Also after a pause (nothing current): numbering goes on from the last
                    // picture sent (a no-op before the first).
                    if self.rewriter.current() != before {
                        self.vp8.switch_to(payload);
                    }
                    self.vp8.rewrite(payload).map(Bytes::from)
                } else {
                    None
                };
                Stitched::Forward { seq, ts, payload }
            }
            Decision::Drop => Stitched::Drop,
            Decision::DropNeedKeyframe => Stitched::NeedKeyframe(ssrc),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::LayerTracker;

    const VP8: TrackKind<'static> = TrackKind {
        mime: "video/VP8",
        video: true,
        vp8: true,
        simulcast: true,
        clock_rate: 90_000,
    };

    /// A VP8 payload with a 15-bit picture ID and TL0PICIDX.
    fn vp8(pid: u16, tl0: u8, key: bool) -> Vec<u8> {
        let [hi, lo] = (pid | 0x8000).to_be_bytes();
        vec![0x90, 0xc0, hi, lo, tl0, if key { 0x00 } else { 0x01 }, 0xaa]
    }

    #[test]
    fn a_preferred_layer_that_pauses_falls_back_on_a_keyframe_with_continuous_numbering() {
        let mut layers = LayerTracker::default();
        layers.set_ssrc(0, 10);
        layers.set_ssrc(1, 11);
        let mut s = Stitch::default();
        let mut sent = Vec::new();
        let mut asked = Vec::new();
        let mut pid = [100u16, 5000];
        let (mut seq, mut now) = ([0u16, 30000], 0u64);
        // 30 fps on q and h; h stops at 1 s; q's keyframe comes every 10 frames.
        for frame in 0..60u64 {
            let ssrcs: &[u32] = if now < 1000 { &[10, 11] } else { &[10] };
            for &ssrc in ssrcs {
                let i = (ssrc - 10) as usize;
                let key = frame == 0 || frame % 10 == 0;
                let p = vp8(pid[i], pid[i] as u8, key);
                let view = layers.on_packet(ssrc, (now * 90) as u32, now);
                match s.step(
                    VP8,
                    Some(1),
                    &view,
                    ssrc,
                    seq[i],
                    (now * 90) as u32,
                    &p,
                    now,
                ) {
                    Stitched::Forward { seq, payload, .. } => {
                        let out = payload.map_or(p.clone(), |b| b.to_vec());
                        sent.push((ssrc, seq, u16::from_be_bytes([out[2], out[3]]) & 0x7fff));
                    }
                    Stitched::NeedKeyframe(l) => asked.push(l),
                    Stitched::Drop => {}
                }
                pid[i] += 1;
                seq[i] = seq[i].wrapping_add(1);
            }
            now += 33;
        }
        assert!(sent.iter().any(|x| x.0 == 11), "h first: {sent:?}");
        let last = sent.last().unwrap();
        assert_eq!(last.0, 10, "then q, once h stopped");
        // One stream: every sequence number and picture id follows the one before.
        for w in sent.windows(2) {
            assert_eq!(w[1].1, w[0].1.wrapping_add(1), "{sent:?}");
            assert_eq!(w[1].2, w[0].2 + 1, "{sent:?}");
        }
        assert!(
            asked.iter().all(|l| *l == 10),
            "keyframes asked on q: {asked:?}"
        );
    }

    #[test]
    fn not_simulcast_any_packet_goes() {
        let v = LayerView::default();
        assert_eq!(wanted_layer(false, Some(2), &v, None, 7), None);
        assert_eq!(wanted_layer(true, None, &v, None, 7), Some(7));
    }
}
