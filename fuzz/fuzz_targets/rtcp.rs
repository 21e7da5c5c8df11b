#![no_main]
//! RTCP as the node meets it: SRTCP decryption of whatever arrives (before authentication),
//! `rtcp::packet::unmarshal` of a compound packet a peer (who holds the keys) sends, then what the
//! node reads from each packet: keyframe requests (PLI, FIR) and their media SSRC, and NACKs
//! expanded into the sequence numbers to resend (`packet_list`).

use libfuzzer_sys::fuzz_target;
use rtc::crypto::RTCCryptoProvider;
use rtc::crypto::providers::RingProvider;
use rtc::rtcp;
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::srtp::context::Context;
use rtc::srtp::protection_profile::ProtectionProfile;

fuzz_target!(|datagram: &[u8]| {
    let crypto = RingProvider::new();
    let p = ProtectionProfile::Aes128CmHmacSha1_80;
    let mut ctx = Context::new(&[1; 16], &[2; 14], p, None, None, crypto.crypto()).unwrap();
    let _ = ctx.decrypt_rtcp(datagram);

    let Ok(packets) = rtcp::packet::unmarshal(&mut &datagram[..]) else {
        return;
    };
    for p in &packets {
        let any = p.as_any();
        if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
            // One NACK pair names at most 17 packets.
            let seqs: Vec<u16> = nack.nacks.iter().flat_map(|n| n.packet_list()).collect();
            assert!(seqs.len() <= 17 * nack.nacks.len());
        } else if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
            let _ = pli.media_ssrc;
        } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
            let _ = fir.fir.iter().map(|e| e.ssrc).count();
        }
        let _ = p.destination_ssrc();
    }
});
