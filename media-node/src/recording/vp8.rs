//! VP8 RTP depacketization (RFC 7741): frames span packets; a frame starts at a packet with
//! S=1 and partition index 0 and ends at the marker bit. A gap in sequence numbers loses the
//! frame, and everything after it until the next keyframe (it would not decode).

/// One whole VP8 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub timestamp: u32,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

/// The frame's pixel size from a keyframe's header (RFC 6386 §9.1), if it is one.
pub fn keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    if frame.len() < 10 || frame[0] & 1 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let h = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    (w > 0 && h > 0).then_some((w, h))
}

/// The pixel size of the keyframe an RTP packet starts (its payload descriptor, then the frame
/// header); `None` for every other packet. A few byte reads: the forwarding path calls it.
pub fn packet_keyframe_size(payload: &[u8]) -> Option<(u16, u16)> {
    match descriptor(payload)? {
        (len, true) => keyframe_size(&payload[len..]),
        _ => None,
    }
}

/// Length of the payload descriptor, and whether the packet starts a frame.
fn descriptor(p: &[u8]) -> Option<(usize, bool)> {
    let b0 = *p.first()?;
    let start = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let x = *p.get(i)?;
        i += 1;
        if x & 0x80 != 0 {
            let pic = *p.get(i)?;
            i += if pic & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1;
        }
        if x & 0x30 != 0 {
            i += 1;
        }
    }
    (i <= p.len()).then_some((i, start))
}

/// A loss broke the stream: frames are dropped until a keyframe, which the caller should ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeedKeyframe;

/// Largest frame accepted: bounds memory against a hostile or broken sender.
const MAX_FRAME: usize = 4 * 1024 * 1024;

#[derive(Default)]
pub struct Depacketizer {
    buf: Vec<u8>,
    ts: u32,
    assembling: bool,
    last_seq: Option<u16>,
    /// Set after a loss: frames are dropped until a keyframe.
    broken: bool,
    /// Frames lost (counted when a loss breaks the stream).
    pub losses: u64,
}

impl Depacketizer {
    /// Feeds one packet; returns a frame when one completes, or [`NeedKeyframe`] after a loss.
    pub fn push(
        &mut self,
        seq: u16,
        ts: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<Option<Frame>, NeedKeyframe> {
        let mut lost = false;
        if let Some(prev) = self.last_seq {
            let d = seq.wrapping_sub(prev);
            if d == 0 || d >= 0x8000 {
                return Ok(None); // duplicate or late: already past it
            }
            lost = d != 1;
        }
        self.last_seq = Some(seq);
        if lost {
            self.assembling = false;
            self.buf.clear();
            if !self.broken {
                self.losses += 1;
            }
            self.broken = true;
        }
        let Some((skip, start)) = descriptor(payload) else {
            return Ok(None);
        };
        let data = &payload[skip..];
        if start {
            self.buf.clear();
            self.ts = ts;
            self.assembling = true;
        } else if !self.assembling || ts != self.ts {
            self.assembling = false;
            return if self.broken {
                Err(NeedKeyframe)
            } else {
                Ok(None)
            };
        }
        if self.buf.len() + data.len() > MAX_FRAME {
            self.assembling = false;
            self.broken = true;
            return Err(NeedKeyframe);
        }
        self.buf.extend_from_slice(data);
        if !marker {
            return if lost { Err(NeedKeyframe) } else { Ok(None) };
        }
        self.assembling = false;
        let data = std::mem::take(&mut self.buf);
        let keyframe = data.first().is_some_and(|b| b & 1 == 0);
        if self.broken && !keyframe {
            return Err(NeedKeyframe);
        }
        self.broken = false;
        Ok(Some(Frame {
            timestamp: self.ts,
            keyframe,
            data,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(w: u16, h: u16) -> Vec<u8> {
        let mut v = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
        v.extend_from_slice(&w.to_le_bytes());
        v.extend_from_slice(&h.to_le_bytes());
        v.extend_from_slice(&[7; 20]);
        v
    }

    #[test]
    fn a_packet_that_starts_a_keyframe_tells_its_size() {
        let mut plain = vec![0x10];
        plain.extend(key(320, 180));
        assert_eq!(packet_keyframe_size(&plain), Some((320, 180)));
        // X, I with a 15-bit PictureID.
        let mut ext = vec![0x90, 0x80, 0x81, 0x02];
        ext.extend(key(640, 360));
        assert_eq!(packet_keyframe_size(&ext), Some((640, 360)));
        // A packet in the middle of the frame, and a delta frame, say nothing.
        let mut middle = vec![0x00];
        middle.extend(key(320, 180));
        assert_eq!(packet_keyframe_size(&middle), None);
        let mut delta = vec![0x10, 0x01];
        delta.extend(&key(320, 180)[1..]);
        assert_eq!(packet_keyframe_size(&delta), None);
        assert_eq!(packet_keyframe_size(&[]), None);
    }

    #[test]
    fn frames_span_packets_and_losses_wait_for_a_keyframe() {
        let mut d = Depacketizer::default();
        let k = key(320, 240);
        // Keyframe in two packets, with an extended descriptor (7-bit picture id) on the first.
        let mut p1 = vec![0x90, 0x80, 0x05];
        p1.extend_from_slice(&k[..8]);
        let mut p2 = vec![0x80, 0x80, 0x05];
        p2.extend_from_slice(&k[8..]);
        assert_eq!(d.push(65535, 100, false, &p1), Ok(None));
        let f = d.push(0, 100, true, &p2).unwrap().unwrap();
        assert!(f.keyframe);
        assert_eq!(f.data, k);
        assert_eq!(keyframe_size(&f.data), Some((320, 240)));
        // A delta frame, then a lost packet: the next delta frame is refused.
        assert!(d.push(1, 3100, true, &[0x10, 0x01, 1]).unwrap().is_some());
        assert!(d.push(3, 6200, true, &[0x10, 0x01, 2]).is_err());
        assert!(d.push(4, 9300, true, &[0x10, 0x01, 3]).is_err());
        let f = d.push(5, 12400, true, &[0x10, 0x00, 4]).unwrap().unwrap();
        assert!(f.keyframe && f.timestamp == 12400);
        assert_eq!(d.losses, 1);
    }
}
