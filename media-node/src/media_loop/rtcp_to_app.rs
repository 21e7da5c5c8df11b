//! The node's one pass-through RTCP interceptor on every loop connection, one walk of each
//! inbound compound:
//! - hands all inbound RTCP to the loop (keyframe requests to relay, reports as proof of life)
//!   and counts feedback (PLI/FIR, NACK);
//! - puts first the first packet that names one of the connection's streams. rtc 0.21 hands a
//!   compound to the track of its *first* packet's first SSRC and drops it when that names none;
//!   Chromium sends a NACK or PLI the moment it needs one, in a compound led by a receiver report
//!   without report blocks (no SSRC at all), so a lossy viewer's NACKs and keyframe requests
//!   never reached the loop. Order within a compound carries no meaning (RFC 3550 6.1), and
//!   every interceptor still sees every packet (rtc routes the compound after the whole chain).
//!   Test: tests/sfu.rs `a_nack_behind_an_empty_receiver_report_is_answered`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

use crate::metrics::Metrics;

/// Registry slot: after every built-in interceptor, so NACK and reports are handled first.
pub const SLOT: usize = 14_000;

/// What one walk of a compound found: feedback to count.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Feedback {
    pub keyframe_requests: u64,
    pub nacks: u64,
}

/// One walk of a compound: counts its feedback and moves the first packet with an SSRC that
/// `known` accepts to the front (the rest keep their order). Pure, so the rule is tested
/// without a connection.
pub fn walk_compound(
    packets: &mut [Box<dyn rtc::rtcp::Packet>],
    known: impl Fn(u32) -> bool,
) -> Feedback {
    let mut found = Feedback::default();
    let mut lead = None;
    for (i, p) in packets.iter().enumerate() {
        let any = p.as_any();
        if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
            found.keyframe_requests += 1;
        } else if any.is::<TransportLayerNack>() {
            found.nacks += 1;
        }
        if lead.is_none() && p.destination_ssrc().into_iter().any(&known) {
            lead = Some(i);
        }
    }
    if let Some(i) = lead {
        packets[..=i].rotate_right(1);
    }
    found
}

pub struct RtcpToApp {
    metrics: Arc<Metrics>,
    /// The connection's streams, both directions (as rtc's track lookup knows them).
    ssrcs: Vec<u32>,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl RtcpToApp {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            ssrcs: Vec::new(),
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RtcpToApp {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &mut msg.message.packet {
            let found = walk_compound(packets, |s| self.ssrcs.contains(&s));
            if found.keyframe_requests > 0 {
                self.metrics
                    .pli_in
                    .fetch_add(found.keyframe_requests, Relaxed);
            }
            if found.nacks > 0 {
                self.metrics.nack_in.fetch_add(found.nacks, Relaxed);
            }
            msg.message.add(Attribute::DeliverToApplication);
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

impl Interceptor for RtcpToApp {
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
    use rtc::rtcp::receiver_report::ReceiverReport;

    fn ssrcs(packets: &[Box<dyn rtc::rtcp::Packet>]) -> Vec<Vec<u32>> {
        packets.iter().map(|p| p.destination_ssrc()).collect()
    }

    #[test]
    fn a_nack_behind_an_empty_receiver_report_leads_the_compound_and_feedback_is_counted() {
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
        let found = walk_compound(&mut compound, |s| s == 7);
        assert_eq!(ssrcs(&compound), [vec![7], vec![], vec![99]]);
        assert_eq!(
            found,
            Feedback {
                keyframe_requests: 1,
                nacks: 1
            }
        );
        // Nothing known: unchanged (rtc drops it, as it should), still counted.
        let found = walk_compound(&mut compound, |_| false);
        assert_eq!(ssrcs(&compound), [vec![7], vec![], vec![99]]);
        assert_eq!(found.nacks, 1);
    }
}
