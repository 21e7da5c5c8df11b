//! Retransmissions within a budget of the viewer's estimate (issue 18). rtc's NACK responder
//! answers every NACK, and its retransmissions carry no transport-wide sequence number (rtc's
//! TWCC sender numbers a stream's media SSRC only), so the estimator never sees them: after a
//! burst of loss on a thin link (the estimate had not come down yet), the viewer NACKs hundreds
//! of packets, their retransmissions fill the link the estimate says is free, and the media
//! behind them is lost in turn (measured: a viewer capped at 800 kbit/s kept losing 10-20 % of a
//! 300 kbit/s stream for seconds, and the estimate fell to 120 kbit/s). So retransmissions get at
//! most [`SHARE_PCT`] of the estimate (a token bucket); the rest are not sent (the viewer asks
//! again, or for a keyframe). Before the first feedback there is no estimate and no limit.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use rtc::shared::marshal::MarshalSize;

use super::bandwidth::EstimateCell;
use super::retransmit::RetransmitCount;

/// Registry slot: wire side of the NACK responder (4_000), above the retransmission counter
/// (3_500, which then counts what was sent).
pub const SLOT: usize = 3_600;
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

pub struct RtxBudget {
    estimate: Arc<EstimateCell>,
    retransmits: RetransmitCount,
    budget: Budget,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl RtxBudget {
    pub fn new(estimate: Arc<EstimateCell>) -> Self {
        Self {
            estimate,
            retransmits: RetransmitCount::default(),
            budget: Budget::default(),
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RtxBudget {
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
                .retransmits
                .is_retransmission(p.header.ssrc, p.header.sequence_number)
            && let Some(e) = self.estimate.read()
            && !self.budget.allow(msg.now, e.target_bps, p.marshal_size())
        {
            self.estimate.note_rtx_dropped();
            return Ok(());
        }
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for RtxBudget {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.retransmits.bind(info);
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.retransmits.unbind(info);
    }
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
