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
            // Nothing forwarded yet (or paused): start on whichever layer brings a keyframe
            // first (a new subscriber sees video sooner); the wanted layer takes over at its
            // own keyframe.
            if self.current.is_none() && is_video && keyframe() {
                return self.take(ssrc, seq, ts, now_ms, clock_rate);
            }
            return Decision::Drop;
        }
        // A packet of the wanted layer that is not yet the current one: switch on a keyframe.
        if is_video && !keyframe() {
            // Keep the old layer flowing meanwhile (the `current` branch above).
            return Decision::DropNeedKeyframe;
        }
        self.take(ssrc, seq, ts, now_ms, clock_rate)
    }

    /// Stops forwarding (the viewer's link does not carry this video now). The numbering goes
    /// on from where it stopped at the next keyframe of whichever layer is wanted then.
    pub fn pause(&mut self) {
        self.current = None;
    }

    /// Continues the stream on layer `ssrc` from this packet (a keyframe, or any packet of a
    /// first audio stream).
    fn take(&mut self, ssrc: u32, seq: u16, ts: u32, now_ms: u64, clock_rate: u32) -> Decision {
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

/// The VP8 payload descriptor's picture ID and TL0PICIDX of one subscriber's stream, made
/// continuous across simulcast layer switches (RFC 7741 4.2). Each layer numbers its pictures on
/// its own; after a switch the receiver's frame buffer saw the new layer's frames as older than the
/// last one it decoded (or as a jump in the temporal structure) and dropped them until it gave up,
/// a 0-3 s freeze depending on the layers' random offsets.
#[derive(Debug, Default)]
pub struct Vp8Munger {
    pid_offset: u16,
    tl0_offset: u8,
    /// Last picture ID and TL0PICIDX sent (after rewriting).
    last_pid: Option<u16>,
    last_tl0: Option<u8>,
}

/// Where a VP8 payload descriptor keeps its picture ID and TL0PICIDX.
struct Vp8Fields {
    /// Byte index of the picture ID, and whether it has 15 bits (else 7).
    pid: Option<(usize, bool)>,
    tl0: Option<usize>,
}

fn vp8_fields(p: &[u8]) -> Option<Vp8Fields> {
    let b0 = *p.first()?;
    let mut f = Vp8Fields {
        pid: None,
        tl0: None,
    };
    if b0 & 0x80 == 0 {
        return Some(f);
    }
    let x = *p.get(1)?;
    let mut i = 2;
    if x & 0x80 != 0 {
        let long = *p.get(i)? & 0x80 != 0;
        if long {
            p.get(i + 1)?;
        }
        f.pid = Some((i, long));
        i += if long { 2 } else { 1 };
    }
    if x & 0x40 != 0 {
        p.get(i)?;
        f.tl0 = Some(i);
    }
    Some(f)
}

fn read_pid(p: &[u8], (i, long): (usize, bool)) -> u16 {
    if long {
        u16::from_be_bytes([p[i], p[i + 1]]) & 0x7fff
    } else {
        u16::from(p[i] & 0x7f)
    }
}

impl Vp8Munger {
    /// The stream continues on another layer from `payload` (the new layer's keyframe): its
    /// numbering is shifted to follow what was sent.
    pub fn switch_to(&mut self, payload: &[u8]) {
        let Some(f) = vp8_fields(payload) else { return };
        if let (Some(at), Some(last)) = (f.pid, self.last_pid) {
            self.pid_offset = last.wrapping_add(1).wrapping_sub(read_pid(payload, at));
        }
        if let (Some(at), Some(last)) = (f.tl0, self.last_tl0) {
            self.tl0_offset = last.wrapping_add(1).wrapping_sub(payload[at]);
        }
    }

    /// The payload to send: a copy with the numbering shifted, or `None` when it goes as it is.
    pub fn rewrite(&mut self, payload: &[u8]) -> Option<Vec<u8>> {
        let f = vp8_fields(payload)?;
        let mut out: Option<Vec<u8>> = None;
        if let Some(at @ (i, long)) = f.pid {
            let (mask, pid) = if long {
                (0x7fff, read_pid(payload, at))
            } else {
                (0x7f, read_pid(payload, at))
            };
            let new = pid.wrapping_add(self.pid_offset) & mask;
            if self
                .last_pid
                .is_none_or(|l| (new.wrapping_sub(l) & mask) < mask / 2)
            {
                self.last_pid = Some(new);
            }
            if new != pid {
                let o = out.get_or_insert_with(|| payload.to_vec());
                if long {
                    let [hi, lo] = (new | 0x8000).to_be_bytes();
                    o[i] = hi;
                    o[i + 1] = lo;
                } else {
                    o[i] = new as u8;
                }
            }
        }
        if let Some(i) = f.tl0 {
            let new = payload[i].wrapping_add(self.tl0_offset);
            if self.last_tl0.is_none_or(|l| new.wrapping_sub(l) < 0x80) {
                self.last_tl0 = Some(new);
            }
            if new != payload[i] {
                out.get_or_insert_with(|| payload.to_vec())[i] = new;
            }
        }
        out
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
    fn a_paused_stream_resumes_at_a_keyframe_with_contiguous_numbering() {
        let mut r = Rewriter::default();
        assert_eq!(
            r.decide(1, 100, 1000, Some(1), || true, true, 0, 90000),
            Decision::Forward { seq: 100, ts: 1000 }
        );
        r.pause();
        assert_eq!(r.current(), None);
        // Back, wanting the same layer: its packets wait for a keyframe.
        assert_eq!(
            r.decide(1, 150, 90_000, Some(1), || false, true, 1_000, 90000),
            Decision::DropNeedKeyframe
        );
        // Another layer's keyframe comes first: taken, numbered on from the last sent, its
        // timestamp a second (the pause) later.
        assert_eq!(
            r.decide(2, 7, 5, Some(1), || true, true, 1_000, 90000),
            Decision::Forward {
                seq: 101,
                ts: 91_000
            }
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

    /// A VP8 payload with a 15-bit picture ID and a TL0PICIDX.
    fn vp8(pid: u16, tl0: u8, key: bool) -> Vec<u8> {
        let [hi, lo] = (pid | 0x8000).to_be_bytes();
        vec![0x90, 0xc0, hi, lo, tl0, if key { 0x00 } else { 0x01 }, 0xaa]
    }

    fn pid_tl0(p: &[u8]) -> (u16, u8) {
        (u16::from_be_bytes([p[2], p[3]]) & 0x7fff, p[4])
    }

    #[test]
    fn picture_ids_and_tl0picidx_continue_across_a_layer_switch() {
        let mut m = Vp8Munger::default();
        // Layer h: sent as it is.
        assert_eq!(m.rewrite(&vp8(30000, 200, true)), None);
        assert_eq!(m.rewrite(&vp8(30001, 201, false)), None);
        // Layer q, numbered far behind: its keyframe follows on.
        let key = vp8(12, 7, true);
        m.switch_to(&key);
        let out = m.rewrite(&key).expect("rewritten");
        assert_eq!(pid_tl0(&out), (30002, 202));
        assert_eq!(&out[5..], &key[5..], "the frame itself untouched");
        let next = m.rewrite(&vp8(13, 8, false)).expect("rewritten");
        assert_eq!(pid_tl0(&next), (30003, 203));
        // Across the 15-bit wrap.
        let mut m = Vp8Munger::default();
        m.rewrite(&vp8(0x7fff, 255, true));
        m.switch_to(&vp8(5, 5, true));
        assert_eq!(pid_tl0(&m.rewrite(&vp8(5, 5, true)).unwrap()), (0, 0));
    }

    #[test]
    fn a_descriptor_without_picture_id_passes_untouched() {
        let mut m = Vp8Munger::default();
        assert_eq!(m.rewrite(&[0x10, 0x00, 0x9d]), None);
        m.switch_to(&[0x10, 0x00, 0x9d]);
        assert_eq!(m.rewrite(&[0x10, 0x01]), None);
        assert_eq!(m.rewrite(&[]), None);
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
