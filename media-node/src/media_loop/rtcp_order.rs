//! Puts first, in each inbound compound RTCP packet, the first packet that names one of the
//! connection's streams. rtc 0.21 hands a compound to the track of its *first* packet's first
//! SSRC and drops it when that names none; Chromium sends a NACK or PLI the moment it needs one,
//! in a compound led by a receiver report without report blocks (no SSRC at all), so a lossy
//! viewer's NACKs and keyframe requests never reached the loop. Order within a compound carries
//! no meaning (RFC 3550 6.1), and every interceptor below still sees every packet.
//! Test: tests/sfu.rs `a_nack_behind_an_empty_receiver_report_is_answered`.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Registry slot: the wire side of the chain (first to see inbound packets).
pub const SLOT: usize = 100;

/// Moves the first packet with an SSRC that `known` accepts to the front; the rest keep their
/// order. Pure, so the rule is tested without a connection.
pub fn lead_with_known(packets: &mut [Box<dyn rtc::rtcp::Packet>], known: impl Fn(u32) -> bool) {
    if let Some(i) = packets
        .iter()
        .position(|p| p.destination_ssrc().into_iter().any(&known))
    {
        packets[..=i].rotate_right(1);
    }
}

#[derive(Default)]
pub struct RtcpOrder {
    /// The connection's streams, both directions (as rtc's track lookup knows them).
    ssrcs: Vec<u32>,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RtcpOrder {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &mut msg.message.packet {
            lead_with_known(packets, |s| self.ssrcs.contains(&s));
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for RtcpOrder {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.ssrcs.push(info.ssrc);
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.ssrcs.retain(|s| *s != info.ssrc);
    }
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.ssrcs.push(info.ssrc);
    }
    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.ssrcs.retain(|s| *s != info.ssrc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;

    fn ssrcs(packets: &[Box<dyn rtc::rtcp::Packet>]) -> Vec<Vec<u32>> {
        packets.iter().map(|p| p.destination_ssrc()).collect()
    }

    #[test]
    fn a_nack_behind_an_empty_receiver_report_leads_the_compound() {
        let mut compound: Vec<Box<dyn rtc::rtcp::Packet>> = vec![
            Box::new(ReceiverReport {
                ssrc: 1,
                ..Default::default()
            }),
            Box::new(PictureLossIndication {
                sender_ssrc: 1,
                media_ssrc: 99,
            }),
            Box::new(TransportLayerNack {
                sender_ssrc: 1,
                media_ssrc: 7,
                nacks: vec![],
            }),
        ];
        lead_with_known(&mut compound, |s| s == 7);
        assert_eq!(ssrcs(&compound), [vec![7], vec![], vec![99]]);
        // Nothing known: unchanged (rtc drops it, as it should).
        lead_with_known(&mut compound, |_| false);
        assert_eq!(ssrcs(&compound), [vec![7], vec![], vec![99]]);
    }
}
