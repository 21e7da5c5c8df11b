#![no_main]
//! RTP as the node meets it on a publisher's connection, one stream of datagrams at a time:
//! SRTP decryption of whatever arrives (before authentication), `rtp::Packet::unmarshal` of what a
//! publisher (who holds the keys) sends, then the node's own per-packet reading: the audio level
//! extension, simulcast layer tracking, keyframe detection, the subscriber rewriter, the recorder's
//! VP8 depacketizer; and the forwarded packet as the node builds, marshals and encrypts it, which
//! must decrypt and parse back to itself.

use arbitrary::Arbitrary;
use edgemeet_media_node::inbound::{
    Decision, Depacketizer, LayerTracker, Rewriter, forwarded_packet, is_keyframe_start,
    keyframe_size,
};
use libfuzzer_sys::fuzz_target;
use rtc::crypto::RTCCryptoProvider;
use rtc::crypto::providers::RingProvider;
use rtc::rtp;
use rtc::shared::marshal::{Marshal, Unmarshal};
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;

#[derive(Arbitrary, Debug)]
struct Stream<'a> {
    codec: Codec,
    /// Which of the first SSRCs seen the subscriber wants (simulcast), if any.
    wanted: Option<u8>,
    /// Milliseconds since the previous datagram, and the datagram.
    datagrams: Vec<(u8, &'a [u8])>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Codec {
    Vp8,
    H264,
    Opus,
}

fn srtp(crypto: &RingProvider) -> Context {
    let p = ProtectionProfile::Aes128CmHmacSha1_80;
    Context::new(&[1; 16], &[2; 14], p, None, None, crypto.crypto()).unwrap()
}

fuzz_target!(|s: Stream| {
    let (mime, clock_rate, video) = match s.codec {
        Codec::Vp8 => ("video/VP8", 90_000, true),
        Codec::H264 => ("video/H264", 90_000, true),
        Codec::Opus => ("audio/opus", 48_000, false),
    };
    let crypto = RingProvider::new();
    let (mut from_publisher, mut to_subscriber, mut at_subscriber) =
        (srtp(&crypto), srtp(&crypto), srtp(&crypto));
    let mut layers = LayerTracker::default();
    let mut ssrcs: Vec<u32> = Vec::new();
    let mut rewriter = Rewriter::default();
    let mut recorder = Depacketizer::default();
    let mut now_ms = 0u64;
    for (gap, datagram) in s.datagrams.into_iter().take(64) {
        now_ms += u64::from(gap);
        let _ = from_publisher.decrypt_rtp(datagram);
        let Ok(pkt) = rtp::Packet::unmarshal(&mut &datagram[..]) else {
            continue;
        };
        let h = &pkt.header;
        if !ssrcs.contains(&h.ssrc) && ssrcs.len() < 3 {
            layers.set_ssrc(ssrcs.len(), h.ssrc);
            ssrcs.push(h.ssrc);
        }
        // The audio level (RFC 6464) the dominant-speaker tracker is fed.
        let _level = h.get_extension(1).and_then(|e| e.first().map(|b| b & 0x7f));
        let _view = layers.on_packet(h.ssrc, h.timestamp, now_ms);
        let wanted = s.wanted.and_then(|i| ssrcs.get(usize::from(i)).copied());
        let keyframe = || is_keyframe_start(mime, &pkt.payload);
        let decision = rewriter.decide(
            h.ssrc,
            h.sequence_number,
            h.timestamp,
            wanted,
            keyframe,
            video,
            now_ms,
            clock_rate,
        );
        if let Decision::Forward { seq, ts } = decision {
            let out = forwarded_packet(&pkt, 96, seq, ts, 0x5eed);
            if let Ok(plain) = out.marshal() {
                let wire = to_subscriber
                    .encrypt_rtp_with_header(&plain, &out.header)
                    .expect("a marshalled packet encrypts");
                // Replays (a retransmission forwarded twice) are refused; anything else decrypts.
                if let Ok(mut back) = at_subscriber.decrypt_rtp(&wire) {
                    let back = rtp::Packet::unmarshal(&mut back).expect("a sent packet parses");
                    assert_eq!(back.header.sequence_number, seq);
                    assert_eq!(back.header.timestamp, ts);
                    assert_eq!(back.payload, out.payload);
                }
            }
        }
        if matches!(s.codec, Codec::Vp8)
            && let Ok(Some(frame)) =
                recorder.push(h.sequence_number, h.timestamp, h.marker, &pkt.payload)
            && frame.keyframe
        {
            let _ = keyframe_size(&frame.data);
        }
    }
});
