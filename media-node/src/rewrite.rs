//! Per-subscriber RTP rewriting: one outgoing stream stitched from whichever simulcast layer the
//! subscriber wants, switched only on a keyframe so the decoder never sees a broken reference.

/// Is this RTP payload the first packet of a keyframe? Unknown codecs count every packet as one
/// (they are never simulcast-switched in practice; audio has no layers).
pub fn is_keyframe_start(mime: &str, payload: &[u8]) -> bool {
    let m = mime.to_ascii_lowercase();
    if m.ends_with("/vp8") {
        vp8_keyframe(payload)
    } else if m.ends_with("/h264") {
        h264_keyframe(payload)
    } else {
        true
    }
}

/// RFC 7741 payload descriptor, then the VP8 frame tag's P bit (0 = keyframe).
fn vp8_keyframe(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let start = b0 & 0x10 != 0;
    let pid = b0 & 0x07;
    if !start || pid != 0 {
        return false;
    }
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = p.get(i) else { return false };
        i += 1;
        if x & 0x80 != 0 {
            // PictureID: 7 or 15 bits.
            let Some(&pic) = p.get(i) else { return false };
            i += if pic & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // TID/Y/KEYIDX
        }
    }
    p.get(i).is_some_and(|tag| tag & 0x01 == 0)
}

/// IDR or SPS in a single NAL, STAP-A or the start of an FU-A.
fn h264_keyframe(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let is_key = |t: u8| t == 5 || t == 7;
    match b0 & 0x1f {
        24 => {
            let mut i = 1;
            while i + 2 < p.len() {
                let size = u16::from_be_bytes([p[i], p[i + 1]]) as usize;
                if is_key(p[i + 2] & 0x1f) {
                    return true;
                }
                i += 2 + size;
            }
            false
        }
        28 => p.get(1).is_some_and(|h| h & 0x80 != 0 && is_key(h & 0x1f)),
        t => is_key(t),
    }
}

/// What to do with one incoming packet for one subscriber.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Forward with these sequence number and timestamp.
    Forward { seq: u16, ts: u32 },
    /// Not for this subscriber (another layer, or waiting for a keyframe).
    Drop,
    /// Drop, and ask the publisher for a keyframe on the wanted layer.
    DropNeedKeyframe,
}

/// The stitched stream's state. `ssrc` identifies a layer as received from the publisher.
#[derive(Debug, Default)]
pub struct Rewriter {
    /// Layer currently forwarded.
    current: Option<u32>,
    seq_offset: u16,
    ts_offset: u32,
    last_seq: u16,
    last_ts: u32,
    /// When the last packet went out (ms, the caller's monotonic clock).
    last_ms: u64,
    started: bool,
}

/// Smallest timestamp step inserted at a layer switch (one frame at 30 fps, 90 kHz clock).
const SWITCH_TS_STEP: u32 = 3000;

impl Rewriter {
    /// `wanted` is the layer the subscriber should get now (None: any, i.e. not simulcast);
    /// `now_ms` a monotonic clock, `clock_rate` the codec's RTP clock (for the timestamp
    /// step across a switch: the time that passed, at least one frame).
    #[allow(clippy::too_many_arguments)]
    pub fn decide(
        &mut self,
        ssrc: u32,
        seq: u16,
        ts: u32,
        wanted: Option<u32>,
        keyframe: impl FnOnce() -> bool,
        is_video: bool,
        now_ms: u64,
        clock_rate: u32,
    ) -> Decision {
        let wanted = wanted.unwrap_or(ssrc);
        if Some(ssrc) == self.current {
            // Also while a switch waits for the wanted layer's keyframe.
            return self.forward(seq, ts, now_ms);
        }
        if ssrc != wanted {
            // Nothing forwarded yet: start on whichever layer brings a keyframe first (a new
            // subscriber sees video sooner); the wanted layer takes over at its own keyframe.
            if self.current.is_none() && is_video && keyframe() {
                self.current = Some(ssrc);
                return self.forward(seq, ts, now_ms);
            }
            return Decision::Drop;
        }
        // A packet of the wanted layer that is not yet the current one: switch on a keyframe.
        if is_video && !keyframe() {
            // Keep the old layer flowing meanwhile (the `current` branch above).
            return Decision::DropNeedKeyframe;
        }
        if self.started {
            // A switch after a pause (the old layer stopped) spans the pause in time too.
            let gap = now_ms.saturating_sub(self.last_ms).min(60_000);
            let step = (gap * u64::from(clock_rate) / 1000) as u32;
            self.seq_offset = self.last_seq.wrapping_add(1).wrapping_sub(seq);
            self.ts_offset = self
                .last_ts
                .wrapping_add(step.max(SWITCH_TS_STEP))
                .wrapping_sub(ts);
        }
        self.current = Some(ssrc);
        self.forward(seq, ts, now_ms)
    }

    fn forward(&mut self, seq: u16, ts: u32, now_ms: u64) -> Decision {
        let seq = seq.wrapping_add(self.seq_offset);
        let ts = ts.wrapping_add(self.ts_offset);
        // Only advance on newer packets: a retransmitted or reordered one keeps its place.
        if !self.started || seq.wrapping_sub(self.last_seq) < 0x8000 {
            self.last_seq = seq;
            self.last_ts = ts;
            self.last_ms = now_ms;
        }
        self.started = true;
        Decision::Forward { seq, ts }
    }

    /// The layer now forwarded.
    pub fn current(&self) -> Option<u32> {
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframes() {
        // S=1, PID=0, no extension, frame tag P=0.
        assert!(vp8_keyframe(&[0x10, 0x00, 0x9d]));
        assert!(!vp8_keyframe(&[0x10, 0x01]));
        assert!(!vp8_keyframe(&[0x00, 0x00]));
        // X=1, I=1 with 15-bit picture id.
        assert!(vp8_keyframe(&[0x90, 0x80, 0x81, 0x23, 0x00]));
        assert!(h264_keyframe(&[0x65]));
        assert!(h264_keyframe(&[0x7c, 0x85]));
        assert!(!h264_keyframe(&[0x41]));
    }

    #[test]
    fn switch_keeps_sequence_contiguous() {
        let mut r = Rewriter::default();
        let (lo, hi) = (1u32, 2u32);
        assert_eq!(
            r.decide(lo, 100, 1000, Some(lo), || true, true, 0, 90000),
            Decision::Forward { seq: 100, ts: 1000 }
        );
        assert_eq!(
            r.decide(lo, 101, 4000, Some(lo), || false, true, 0, 90000),
            Decision::Forward { seq: 101, ts: 4000 }
        );
        // Want hi now: its non-key packets are dropped while lo keeps flowing.
        assert_eq!(
            r.decide(hi, 5000, 9, Some(hi), || false, true, 0, 90000),
            Decision::DropNeedKeyframe
        );
        assert_eq!(
            r.decide(lo, 102, 7000, Some(hi), || false, true, 0, 90000),
            Decision::Forward { seq: 102, ts: 7000 }
        );
        assert_eq!(
            r.decide(hi, 5001, 90, Some(hi), || true, true, 0, 90000),
            Decision::Forward {
                seq: 103,
                ts: 10000
            }
        );
        assert_eq!(
            r.decide(hi, 5002, 3090, Some(hi), || false, true, 0, 90000),
            Decision::Forward {
                seq: 104,
                ts: 13000
            }
        );
        assert_eq!(
            r.decide(lo, 103, 10000, Some(hi), || true, true, 0, 90000),
            Decision::Drop
        );
    }

    #[test]
    fn switch_from_a_high_sequence_number() {
        let mut r = Rewriter::default();
        assert_eq!(
            r.decide(1, 60000, 5, Some(1), || true, true, 0, 90000),
            Decision::Forward { seq: 60000, ts: 5 }
        );
        assert_eq!(
            r.decide(2, 7, 100, Some(2), || true, true, 0, 90000),
            Decision::Forward {
                seq: 60001,
                ts: 3005
            }
        );
    }

    #[test]
    fn a_switch_after_a_pause_spans_the_pause_in_time() {
        let mut r = Rewriter::default();
        assert_eq!(
            r.decide(1, 10, 0, Some(1), || true, true, 1000, 90000),
            Decision::Forward { seq: 10, ts: 0 }
        );
        // Layer 1 stopped; layer 2's keyframe arrives 800 ms later.
        assert_eq!(
            r.decide(2, 500, 77, Some(2), || true, true, 1800, 90000),
            Decision::Forward { seq: 11, ts: 72000 }
        );
    }
}
