//! Audio redundancy for subscribers (RED, RFC 2198): each Opus packet sent to a subscriber that
//! negotiated `audio/red` also carries the previous packet. A packet lost on the way is then
//! decoded from the next one instead of concealed: at 5 % random loss, about one packet in 400
//! is still lost (both gone) instead of one in 20. Pure: payloads in, payloads out.
//!
//! Not with end-to-end encryption: Chromium hands the whole RED payload to the receiver's frame
//! transform, which cannot decrypt it; an E2EE page does not offer `audio/red` (see `sfu.js`).

use bytes::{BufMut, Bytes, BytesMut};

/// The codec's MIME type.
pub const MIME_TYPE: &str = "audio/red";

/// Whether a negotiated codec (`mime`, `fmtp`) is RED whose blocks are all of payload type
/// `primary` (Chromium's `111/111`: the primary and one redundant block, both Opus).
pub fn wraps(mime: &str, fmtp: &str, primary: u8) -> bool {
    mime.eq_ignore_ascii_case(MIME_TYPE)
        && !fmtp.is_empty()
        && fmtp
            .split('/')
            .all(|pt| pt.trim().parse::<u8>() == Ok(primary))
}

/// RFC 2198 limits: a block's timestamp offset has 14 bits and its length 10.
const MAX_OFFSET: u32 = (1 << 14) - 1;
const MAX_BLOCK: usize = (1 << 10) - 1;

/// One subscriber stream's encoder: remembers the last packet sent.
#[derive(Debug, Default)]
pub struct RedEncoder {
    prev: Option<(u32, Bytes)>,
}

impl RedEncoder {
    /// The RED payload for an Opus packet with RTP timestamp `ts` and payload type `primary_pt`
    /// (both as sent to the subscriber): the previous packet as a redundant block where it fits,
    /// then this one.
    pub fn encode(&mut self, ts: u32, primary_pt: u8, payload: &Bytes) -> Bytes {
        let redundant = self.prev.as_ref().and_then(|(pts, p)| {
            let offset = ts.wrapping_sub(*pts);
            (offset > 0 && offset <= MAX_OFFSET && !p.is_empty() && p.len() <= MAX_BLOCK)
                .then_some((offset, p))
        });
        let mut out =
            BytesMut::with_capacity(5 + payload.len() + redundant.map_or(0, |r| r.1.len()));
        if let Some((offset, block)) = redundant {
            // F=1 | block PT (7) | timestamp offset (14) | block length (10)
            let word = (1u32 << 31)
                | (u32::from(primary_pt & 0x7f) << 24)
                | (offset << 10)
                | block.len() as u32;
            out.put_u32(word);
        }
        out.put_u8(primary_pt & 0x7f);
        if let Some((_, block)) = redundant {
            out.put_slice(block);
        }
        out.put_slice(payload);
        self.prev = Some((ts, payload.clone()));
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a RED payload as a receiver does: (pt, timestamp offset, data) per block.
    fn split(p: &[u8]) -> Vec<(u8, u32, Vec<u8>)> {
        let mut headers = Vec::new();
        let mut i = 0;
        while p[i] & 0x80 != 0 {
            let w = u32::from_be_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
            headers.push((
                ((w >> 24) & 0x7f) as u8,
                (w >> 10) & 0x3fff,
                (w & 0x3ff) as usize,
            ));
            i += 4;
        }
        let primary_pt = p[i] & 0x7f;
        i += 1;
        let mut out = Vec::new();
        for (pt, off, len) in headers {
            out.push((pt, off, p[i..i + len].to_vec()));
            i += len;
        }
        out.push((primary_pt, 0, p[i..].to_vec()));
        out
    }

    #[test]
    fn the_first_packet_is_primary_only_then_each_carries_the_previous() {
        let mut r = RedEncoder::default();
        let a = r.encode(1000, 111, &Bytes::from_static(b"first"));
        assert_eq!(split(&a), vec![(111, 0, b"first".to_vec())]);
        let b = r.encode(1960, 111, &Bytes::from_static(b"second"));
        assert_eq!(
            split(&b),
            vec![(111, 960, b"first".to_vec()), (111, 0, b"second".to_vec())]
        );
    }

    #[test]
    fn red_over_opus_is_recognised_by_its_fmtp() {
        assert!(wraps("audio/red", "111/111", 111));
        assert!(wraps("audio/RED", "111/111/111", 111));
        assert!(!wraps("audio/red", "111/0", 111));
        assert!(!wraps("audio/red", "", 111));
        assert!(!wraps("audio/opus", "111/111", 111));
    }

    #[test]
    fn blocks_that_do_not_fit_are_left_out() {
        let mut r = RedEncoder::default();
        r.encode(0, 111, &Bytes::from(vec![1u8; 1100]));
        let p = r.encode(960, 111, &Bytes::from_static(b"x"));
        assert_eq!(split(&p), vec![(111, 0, b"x".to_vec())], "too long");
        let p = r.encode(960 + 20_000, 111, &Bytes::from_static(b"y"));
        assert_eq!(
            split(&p),
            vec![(111, 0, b"y".to_vec())],
            "too far back (a pause)"
        );
        let p = r.encode(960 + 20_000, 111, &Bytes::from_static(b"z"));
        assert_eq!(split(&p), vec![(111, 0, b"z".to_vec())], "same timestamp");
    }
}
