#![no_main]
//! Inbound RTP and RTCP of one node connection through the interceptor chain the node builds for
//! it (`inbound::connection_interceptors`: webrtc-rs's NACK generator and responder, RTCP
//! reports, TWCC, then the node's RTCP hand-off), as the connection feeds it after SRTP: a VP8
//! stream (NACK, PLI, transport-cc), an Opus stream (audio level), and a stream the node sends,
//! whose packets a peer's NACKs can ask for again. Time passes between datagrams and timers run.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use edgemeet_media_node::inbound::connection_interceptors;
use libfuzzer_sys::fuzz_target;
use rtc::interceptor::{
    AttributedPacket, Interceptor, Packet, RTCPFeedback, RTPHeaderExtension, StreamInfo,
};
use rtc::rtcp;
use rtc::rtp;
use rtc::sansio::Protocol;
use rtc::shared::marshal::Unmarshal;
use rtc::shared::util::is_rtcp;
use rtc::shared::{TransportContext, TransportMessage, TransportProtocol};

const VIDEO_SSRC: u32 = 1111;
const AUDIO_SSRC: u32 = 2222;
const SENT_SSRC: u32 = 5555;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// (milliseconds since the previous one, the node sends a packet first, datagram)
    datagrams: Vec<(u8, bool, &'a [u8])>,
}

fn feedback(kinds: &[(&str, &str)]) -> Vec<RTCPFeedback> {
    kinds
        .iter()
        .map(|(typ, parameter)| RTCPFeedback {
            typ: (*typ).into(),
            parameter: (*parameter).into(),
        })
        .collect()
}

fn video(ssrc: u32) -> StreamInfo {
    StreamInfo {
        ssrc,
        payload_type: 96,
        mime_type: "video/VP8".into(),
        clock_rate: 90_000,
        rtp_header_extensions: vec![RTPHeaderExtension {
            uri: "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01".into(),
            id: 3,
        }],
        rtcp_feedback: feedback(&[("nack", ""), ("nack", "pli"), ("transport-cc", "")]),
        ..Default::default()
    }
}

fuzz_target!(|input: Input| {
    let Ok(mut chain) = connection_interceptors() else {
        panic!("the node's interceptors build");
    };
    chain.bind_remote_stream(&video(VIDEO_SSRC));
    chain.bind_remote_stream(&StreamInfo {
        ssrc: AUDIO_SSRC,
        payload_type: 111,
        mime_type: "audio/opus".into(),
        clock_rate: 48_000,
        channels: 2,
        rtp_header_extensions: vec![RTPHeaderExtension {
            uri: "urn:ietf:params:rtp-hdrext:ssrc-audio-level".into(),
            id: 1,
        }],
        ..Default::default()
    });
    chain.bind_local_stream(&video(SENT_SSRC));
    let transport = TransportContext {
        local_addr: SocketAddr::from(([127, 0, 0, 1], 40000)),
        peer_addr: SocketAddr::from(([127, 0, 0, 1], 50000)),
        transport_protocol: TransportProtocol::UDP,
        ecn: None,
    };
    let tagged = |now, packet| TransportMessage {
        now,
        transport,
        message: AttributedPacket::new(packet),
    };
    let mut now = Instant::now();
    let mut sent_seq = 0u16;
    for (gap, send_first, datagram) in input.datagrams.into_iter().take(64) {
        now += Duration::from_millis(u64::from(gap) * 4);
        if send_first {
            let pkt = rtp::Packet {
                header: rtp::Header {
                    version: 2,
                    payload_type: 96,
                    sequence_number: sent_seq,
                    timestamp: u32::from(sent_seq) * 3000,
                    ssrc: SENT_SSRC,
                    ..Default::default()
                },
                payload: Bytes::from_static(&[0x10, 0, 0x9d, 1, 2, 3]),
            };
            sent_seq = sent_seq.wrapping_add(1);
            let _ = chain.handle_write(tagged(now, Packet::Rtp(pkt)));
        }
        let packet = if is_rtcp(datagram) {
            match rtcp::packet::unmarshal(&mut &datagram[..]) {
                Ok(p) if !p.is_empty() => Packet::Rtcp(p),
                _ => continue,
            }
        } else {
            match rtp::Packet::unmarshal(&mut &datagram[..]) {
                Ok(p) => Packet::Rtp(p),
                Err(_) => continue,
            }
        };
        let _ = chain.handle_read(tagged(now, packet));
        let _ = chain.handle_timeout(now);
        while chain.poll_read().is_some() {}
        while chain.poll_write().is_some() {}
        while chain.poll_event().is_some() {}
    }
});
