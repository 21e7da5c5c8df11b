//! Retransmissions rtc's NACK responder sends for the loop's pulls. It sits just below the
//! responder in each connection's interceptor chain, so it sees every departing RTP packet: one
//! on a stream's RTX SSRC is a retransmission, and so is one on a stream without RTX whose
//! sequence number is not newer than the last one sent (the responder resends the packet as it
//! was). Each is counted (`edgemeet_node_rtp_packets_retransmitted_total`) and kept within a
//! share of the viewer's downlink estimate (issue 18): rtc's retransmissions carry no
//! transport-wide sequence number (its TWCC sender numbers a stream's media SSRC only), so the
//! estimator never sees them, and after a burst of loss on a thin link (the estimate not down
//! yet) the viewer NACKs hundreds of packets whose retransmissions fill the link the estimate
//! says is free, and the media behind them is lost in turn (measured: a viewer capped at 800
//! kbit/s kept losing 10-20 % of a 300 kbit/s stream for seconds, and the estimate fell to 120
//! kbit/s). So retransmissions get at most [`SHARE_PCT`] of the estimate (a token bucket); the
//! rest are not sent (the viewer asks again, or for a keyframe). Before the first feedback there
//! is no estimate and no limit.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use rtc::shared::marshal::MarshalSize;

use super::bandwidth::EstimateCell;
use crate::metrics::Metrics;

/// Registry slot: wire side of the NACK responder (4_000), above where rtc puts its pacer (3_000;
/// not registered here) and the TWCC sender (2_000), so a retransmission dropped here is never
/// numbered for the estimator.
pub const SLOT: usize = 3_500;

/// Share of the estimate retransmissions may take.
const SHARE_PCT: u64 = 20;
/// The bucket holds this much of the budget (a burst after a loss is answered at once).
const BURST_MS: u64 = 200;
/// Whatever the estimate, this much (bits/s) is always allowed.
const FLOOR_BPS: u64 = 40_000;

/// A token bucket in bytes, refilled at a rate given on each call. Pure.
#[derive(Debug, Default)]
pub struct Budget {
    tokens: f64,
    last: Option<Instant>,
}

impl Budget {
    /// May a retransmission of `bytes` go at `now`, with the estimate at `estimate_bps`?
    pub fn allow(&mut self, now: Instant, estimate_bps: u64, bytes: usize) -> bool {
        let rate_bps = (estimate_bps * SHARE_PCT / 100).max(FLOOR_BPS) as f64;
        let cap = rate_bps / 8.0 * BURST_MS as f64 / 1000.0;
        let elapsed = self.last.map_or(BURST_MS as f64 / 1000.0, |t| {
            now.saturating_duration_since(t).as_secs_f64()
        });
        self.last = Some(now);
        self.tokens = (self.tokens + rate_bps / 8.0 * elapsed).min(cap);
        if self.tokens >= bytes as f64 {
            self.tokens -= bytes as f64;
            true
        } else {
            false
        }
    }
}

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
    estimate: Arc<EstimateCell>,
    count: RetransmitCount,
    budget: Budget,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl RetransmitCounter {
    pub fn new(metrics: Arc<Metrics>, estimate: Arc<EstimateCell>) -> Self {
        Self {
            metrics,
            estimate,
            count: RetransmitCount::default(),
            budget: Budget::default(),
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
            if let Some(e) = self.estimate.read()
                && !self.budget.allow(msg.now, e.target_bps, p.marshal_size())
            {
                self.estimate.note_rtx_dropped();
                return Ok(());
            }
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
    use std::time::Duration;

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

    #[test]
    fn retransmissions_get_a_fifth_of_the_estimate_with_a_short_burst() {
        let t0 = Instant::now();
        let mut b = Budget::default();
        // 1 Mbit/s estimate: 200 kbit/s for retransmissions, a burst of 5000 bytes.
        let sent = (0..20).filter(|_| b.allow(t0, 1_000_000, 1000)).count();
        assert_eq!(sent, 5, "the burst");
        // A second later: another second's worth (25 000 bytes), capped at the burst.
        let later = t0 + Duration::from_secs(1);
        let sent = (0..20).filter(|_| b.allow(later, 1_000_000, 1000)).count();
        assert_eq!(sent, 5);
        // 100 ms at 200 kbit/s: 2500 bytes, two packets.
        let soon = later + Duration::from_millis(100);
        let sent = (0..20).filter(|_| b.allow(soon, 1_000_000, 1000)).count();
        assert_eq!(sent, 2);
        // A thin estimate still lets a little through (the floor).
        let mut thin = Budget::default();
        assert!(thin.allow(t0, 50_000, 1000));
    }
}
