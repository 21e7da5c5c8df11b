//! Counts the retransmissions rtc's NACK responder sends for the loop's pulls
//! (`edgemeet_node_rtp_packets_retransmitted_total`). It sits just below the responder in each
//! connection's interceptor chain, so it sees every departing RTP packet: one on a stream's RTX
//! SSRC is a retransmission, and so is one on a stream without RTX whose sequence number is not
//! newer than the last one sent (the responder resends the packet as it was).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

use crate::metrics::Metrics;

/// Registry slot: wire side of the NACK responder (4_000), above the pacer (3_000).
pub const SLOT: usize = 3_500;

/// The part that decides, pure: departing (ssrc, seq) in, "is a retransmission" out.
#[derive(Default)]
pub struct RetransmitCount {
    rtx_ssrcs: Vec<u32>,
    last_seq: Vec<(u32, u16)>,
}

impl RetransmitCount {
    pub fn bind(&mut self, info: &StreamInfo) {
        if let Some(rtx) = info.ssrc_rtx {
            self.rtx_ssrcs.push(rtx);
        }
    }

    pub fn unbind(&mut self, info: &StreamInfo) {
        self.rtx_ssrcs.retain(|s| Some(*s) != info.ssrc_rtx);
        self.last_seq.retain(|(s, _)| *s != info.ssrc);
    }

    pub fn is_retransmission(&mut self, ssrc: u32, seq: u16) -> bool {
        if self.rtx_ssrcs.contains(&ssrc) {
            return true;
        }
        match self.last_seq.iter_mut().find(|(s, _)| *s == ssrc) {
            Some((_, last)) => {
                if seq.wrapping_sub(*last) == 0 || seq.wrapping_sub(*last) >= 0x8000 {
                    return true;
                }
                *last = seq;
                false
            }
            None => {
                self.last_seq.push((ssrc, seq));
                false
            }
        }
    }
}

pub struct RetransmitCounter {
    metrics: Arc<Metrics>,
    count: RetransmitCount,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl RetransmitCounter {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            count: RetransmitCount::default(),
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RetransmitCounter {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtp(p) = &msg.message.packet
            && self
                .count
                .is_retransmission(p.header.ssrc, p.header.sequence_number)
        {
            self.metrics.retransmitted.fetch_add(1, Relaxed);
        }
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for RetransmitCounter {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.count.bind(info);
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.count.unbind(info);
    }
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtx_packets_and_repeated_sequence_numbers_are_retransmissions() {
        let mut c = RetransmitCount::default();
        c.bind(&StreamInfo {
            ssrc: 1,
            ssrc_rtx: Some(2),
            ..Default::default()
        });
        assert!(!c.is_retransmission(1, 10));
        assert!(!c.is_retransmission(1, 11));
        assert!(c.is_retransmission(2, 0), "on the RTX stream");
        // A stream without RTX: the same packet again.
        assert!(!c.is_retransmission(5, 65535));
        assert!(!c.is_retransmission(5, 0), "across the wrap");
        assert!(c.is_retransmission(5, 65535));
        assert!(c.is_retransmission(5, 0));
        assert!(!c.is_retransmission(5, 1));
    }
}
