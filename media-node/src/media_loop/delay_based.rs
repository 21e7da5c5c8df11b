//! The delay-based half of a viewer's downlink estimate (issue 18, `docs/bandwidth-design.md`):
//! a trendline over the queueing delay the viewer's transport-cc feedback shows, as Chromium's
//! `TrendlineEstimator`, and an AIMD rate bounded by what the viewer acknowledges. Pure: the
//! estimator hands in each reported packet (departure on the node's clock, arrival on the
//! viewer's) and reads the target.
//!
//! **Why not rtc's.** rtc 0.21.1's `Gcc` compares the Kalman-filtered delay change *per group*
//! (ms) with a threshold of 12.5 ms (6 at least). A queue growing by 20 % of the time adds 2 ms
//! between two groups 10 ms apart: never over the threshold, so it never reported overuse on a
//! `tbf` link while the queue stood full (its target climbed to 3-6 Mbit/s). Chromium compares
//! the *slope* of the accumulated delay, times `min(deltas, 60) x 4`: the same 20 % reads 48
//! against the same threshold, and is seen within a few groups, before the queue overflows.
//!
//! **Bounded by what arrives.** Outside a probe the target never climbs above 1.5 x the
//! acknowledged rate (+10 kbit/s), as Chromium's `AimdRateControl`: a rate never sent is not
//! known to fit, and the allocation would upgrade into it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Packets sent within this of the group's first are one group (a frame, or a batch of the
/// loop).
const GROUP: Duration = Duration::from_millis(5);
/// Packets arriving within this of the group's last, compressed by the path, join it too.
const BURST: Duration = Duration::from_millis(5);
/// Groups in the regression window.
const WINDOW: usize = 20;
const SMOOTHING: f64 = 0.9;
const TREND_GAIN: f64 = 4.0;
const MAX_DELTAS: f64 = 60.0;
const THRESHOLD_START: f64 = 12.5;
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
/// The trend must stay over the threshold this long (ms of send time) to be overuse.
const OVERUSE_MS: f64 = 10.0;
/// On overuse: this times what the viewer acknowledges.
const BACKOFF: f64 = 0.85;
/// Once per overuse: the trend is a regression over 20 groups and reads overuse for a while
/// after the backoff; backing off again from what arrives meanwhile (the allocation has just
/// paused videos) spiralled a viewer down to audio. Again only if the overuse lasts this long.
const BACKOFF_AGAIN: Duration = Duration::from_secs(1);
/// A backoff goes to `BACKOFF` times the best acknowledged rate over this long (a reading a
/// moment after the allocation paused videos is no measure of the link).
const PEAK_WINDOW: Duration = Duration::from_millis(250);
/// Outside a probe the target stays under this times the acknowledged rate, plus `ACK_SLACK`.
pub const ACK_BOUND: f64 = 1.5;
const ACK_SLACK: f64 = 10_000.0;
/// Far from the last backoff: 8 % a second.
const MULTIPLICATIVE: f64 = 1.08;
/// Near it: about a packet per response time (1200 bytes per 200 ms).
const ADDITIVE_BPS_PER_S: f64 = 48_000.0;
/// Bytes on the wire beyond the RTP packet rtc reports (IP, UDP, the SRTP tag): what arrives
/// is compared with layer costs, which count them (`layer_costs::OVERHEAD_BYTES`).
const WIRE_OVERHEAD: usize = 40;
/// The acknowledged rate is what arrived in this much of the viewer's time.
const ACK_WINDOW: Duration = Duration::from_millis(500);

/// What the trend says about the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Usage {
    #[default]
    Normal,
    /// The queue grows: more is sent than the path carries.
    Over,
    /// The queue drains.
    Under,
}

#[derive(Clone, Copy, Debug)]
struct Group {
    first_departure: Instant,
    departure: Instant,
    first_arrival: Duration,
    arrival: Duration,
}

/// Chromium's trendline detector over packet groups.
#[derive(Debug)]
struct Trendline {
    current: Option<Group>,
    previous: Option<Group>,
    first_arrival: Option<Duration>,
    deltas: u32,
    accumulated_ms: f64,
    smoothed_ms: f64,
    window: VecDeque<(f64, f64)>,
    trend: f64,
    previous_trend: f64,
    threshold: f64,
    threshold_at_ms: Option<f64>,
    over_ms: Option<f64>,
    over_count: u32,
    usage: Usage,
}

impl Default for Trendline {
    fn default() -> Self {
        Self {
            current: None,
            previous: None,
            first_arrival: None,
            deltas: 0,
            accumulated_ms: 0.0,
            smoothed_ms: 0.0,
            window: VecDeque::with_capacity(WINDOW + 1),
            trend: 0.0,
            previous_trend: 0.0,
            threshold: THRESHOLD_START,
            threshold_at_ms: None,
            over_ms: None,
            over_count: 0,
            usage: Usage::Normal,
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

impl Trendline {
    fn packet(&mut self, departure: Instant, arrival: Duration) {
        let Some(g) = self.current.as_mut() else {
            self.current = Some(Group {
                first_departure: departure,
                departure,
                first_arrival: arrival,
                arrival,
            });
            return;
        };
        // Reordered: no timing to learn from it.
        if departure < g.first_departure {
            return;
        }
        let same_send = departure.saturating_duration_since(g.first_departure) <= GROUP;
        let burst = {
            let send_delta = ms(departure.saturating_duration_since(g.departure));
            let arrival_delta = ms(arrival.saturating_sub(g.arrival));
            arrival >= g.arrival
                && arrival_delta <= ms(BURST)
                && arrival_delta - send_delta < 0.0
                && arrival.saturating_sub(g.first_arrival) < Duration::from_millis(100)
        };
        if same_send || burst {
            g.departure = g.departure.max(departure);
            g.arrival = g.arrival.max(arrival);
            return;
        }
        let closed = *g;
        self.current = Some(Group {
            first_departure: departure,
            departure,
            first_arrival: arrival,
            arrival,
        });
        if let Some(prev) = self.previous.replace(closed) {
            let send_ms = ms(closed.departure.saturating_duration_since(prev.departure));
            let arrival_ms = ms(closed.arrival) - ms(prev.arrival);
            self.delta(arrival_ms - send_ms, send_ms, closed.arrival);
        }
    }

    fn delta(&mut self, delta_ms: f64, send_ms: f64, arrival: Duration) {
        self.deltas = (self.deltas + 1).min(1_000);
        let first = *self.first_arrival.get_or_insert(arrival);
        self.accumulated_ms += delta_ms;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        let at_ms = ms(arrival.saturating_sub(first));
        self.window.push_back((at_ms, self.smoothed_ms));
        if self.window.len() > WINDOW {
            self.window.pop_front();
        }
        if self.window.len() == WINDOW
            && let Some(slope) = slope(&self.window)
        {
            self.trend = slope;
        }
        self.detect(send_ms, at_ms);
    }

    fn detect(&mut self, send_ms: f64, now_ms: f64) {
        if self.deltas < 2 {
            return;
        }
        let modified = f64::from(self.deltas).min(MAX_DELTAS) * self.trend * TREND_GAIN;
        if modified > self.threshold {
            let over = match self.over_ms {
                None => send_ms / 2.0,
                Some(t) => t + send_ms,
            };
            self.over_ms = Some(over);
            self.over_count += 1;
            if over > OVERUSE_MS && self.over_count > 1 && self.trend >= self.previous_trend {
                self.over_ms = Some(0.0);
                self.over_count = 0;
                self.usage = Usage::Over;
            }
        } else if modified < -self.threshold {
            self.over_ms = None;
            self.over_count = 0;
            self.usage = Usage::Under;
        } else {
            self.over_ms = None;
            self.over_count = 0;
            self.usage = Usage::Normal;
        }
        self.previous_trend = self.trend;
        self.adapt_threshold(modified, now_ms);
    }

    /// The threshold follows the trend's size, so a jittery path does not read as congested
    /// and a calm one reacts to little.
    fn adapt_threshold(&mut self, modified: f64, now_ms: f64) {
        let last = self.threshold_at_ms.replace(now_ms).unwrap_or(now_ms);
        if modified.abs() > self.threshold + 15.0 {
            return;
        }
        let k = if modified.abs() < self.threshold {
            K_DOWN
        } else {
            K_UP
        };
        let dt = (now_ms - last).clamp(0.0, 100.0);
        self.threshold =
            (self.threshold + k * (modified.abs() - self.threshold) * dt).clamp(6.0, 600.0);
    }
}

/// Least-squares slope of the points.
fn slope(points: &VecDeque<(f64, f64)>) -> Option<f64> {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (mut num, mut den) = (0.0, 0.0);
    for (x, y) in points {
        num += (x - mx) * (y - my);
        den += (x - mx) * (x - mx);
    }
    (den != 0.0).then(|| num / den)
}

/// What arrived at the viewer over the last [`ACK_WINDOW`] of its clock.
#[derive(Debug, Default)]
struct AckedRate {
    arrivals: VecDeque<(Duration, usize)>,
    bytes: usize,
}

impl AckedRate {
    fn add(&mut self, arrival: Duration, size: usize) {
        self.arrivals.push_back((arrival, size));
        self.bytes += size;
        let newest = self.arrivals.iter().map(|a| a.0).max().unwrap_or(arrival);
        while let Some(&(t, s)) = self.arrivals.front() {
            if newest.saturating_sub(t) <= ACK_WINDOW {
                break;
            }
            self.arrivals.pop_front();
            self.bytes -= s;
        }
    }

    /// `None` until a window's worth of arrivals is known.
    fn bps(&self) -> Option<f64> {
        let (first, last) = (self.arrivals.front()?, self.arrivals.back()?.0);
        let span = last.saturating_sub(first.0);
        // The first packet's bytes arrived before the span began.
        (span >= ACK_WINDOW / 2).then(|| (self.bytes - first.1) as f64 * 8.0 / span.as_secs_f64())
    }
}

/// A queue standing on the path: the one-way delay (arrival on the viewer's clock minus
/// departure on ours: an unknown but fixed offset) well above the least seen lately. The
/// trend sees a queue grow, not one that stays full: on a drop-tail link that overflows, what
/// the node sends beyond the link is lost at a steady delay, and the trend reads flat.
#[derive(Debug, Default)]
struct StandingQueue {
    /// Our clock's origin for one-way delays.
    epoch: Option<Instant>,
    /// Per second (on our clock): the least one-way delay seen (ms), for `BASE_WINDOW`.
    mins: VecDeque<(Instant, f64)>,
    /// The least one-way delay of the packets since the last reading.
    recent: Option<f64>,
    /// Since when every reading was high.
    high_since: Option<Instant>,
    /// Packets reported, and of those lost, since the last reading.
    reported: u64,
    lost: u64,
}

/// How far back the path's least delay is looked for.
const BASE_WINDOW: Duration = Duration::from_secs(10);
/// A queue above the least delay by this much, over whole feedbacks for `STANDING_FOR`, stands.
const STANDING_MS: f64 = 60.0;
const STANDING_FOR: Duration = Duration::from_millis(200);
/// ...and the path drops more than this (%) of what it is sent.
const STANDING_LOSS_PCT: u64 = 2;

impl StandingQueue {
    fn packet(&mut self, departure: Instant, arrival: Duration) {
        let epoch = *self.epoch.get_or_insert(departure);
        let owd = ms(arrival) - ms(departure.saturating_duration_since(epoch));
        self.recent = Some(self.recent.map_or(owd, |r: f64| r.min(owd)));
        match self.mins.back_mut() {
            Some((t, m)) if departure.saturating_duration_since(*t) < Duration::from_secs(1) => {
                *m = m.min(owd);
            }
            _ => self.mins.push_back((departure, owd)),
        }
    }

    /// Whether even the least delayed packet since the last reading waited in a queue.
    fn standing(&mut self, now: Instant) -> bool {
        while self
            .mins
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > BASE_WINDOW)
        {
            self.mins.pop_front();
        }
        let base = self.mins.iter().map(|m| m.1).reduce(f64::min);
        let recent = self.recent.take();
        // A full drop-tail queue drops what does not fit; a machine short of CPU delays
        // everything and drops nothing: that is no reason to send less.
        let dropping = self.lost * 100 > self.reported * STANDING_LOSS_PCT;
        (self.lost, self.reported) = (0, 0);
        let high = dropping && matches!((base, recent), (Some(b), Some(r)) if r - b > STANDING_MS);
        // Since the first high reading, and for this long: a loaded machine delays a reading
        // now and then, a full queue stands for seconds.
        let since = if high {
            *self.high_since.get_or_insert(now)
        } else {
            self.high_since = None;
            return false;
        };
        now.saturating_duration_since(since) >= STANDING_FOR
    }
}

/// The delay-based half: trendline, AIMD, the acknowledged-rate bound.
#[derive(Debug)]
pub struct DelayBased {
    trend: Trendline,
    acked: AckedRate,
    target: f64,
    min: f64,
    max: f64,
    /// What arrived when the path last overflowed: climbing near it is additive.
    capacity: Option<f64>,
    last_update: Option<Instant>,
    last_backoff: Option<Instant>,
    /// The acknowledged rate at each update over the last [`PEAK_WINDOW`].
    peaks: VecDeque<(Instant, f64)>,
    queue: StandingQueue,
    /// The queue drained or grew since the last normal reading: no increase until normal.
    hold: bool,
}

impl DelayBased {
    pub fn new(initial: f64, min: f64, max: f64) -> Self {
        Self {
            trend: Trendline::default(),
            acked: AckedRate::default(),
            target: initial.clamp(min, max),
            min,
            max,
            capacity: None,
            last_update: None,
            last_backoff: None,
            peaks: VecDeque::new(),
            queue: StandingQueue::default(),
            hold: false,
        }
    }

    /// One packet the viewer reported on (in the order they were sent); `arrival`: `None` if
    /// lost or reported without a time.
    pub fn packet(&mut self, departure: Instant, arrival: Option<Duration>, size: usize) {
        self.queue.reported += 1;
        let Some(arrival) = arrival else {
            self.queue.lost += 1;
            return;
        };
        self.trend.packet(departure, arrival);
        self.acked.add(arrival, size + WIRE_OVERHEAD);
        self.queue.packet(departure, arrival);
    }

    /// After a feedback's packets: the rate moves with what the trend says. Returns the target.
    pub fn update(&mut self, now: Instant) -> f64 {
        let elapsed = self
            .last_update
            .replace(now)
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
            .min(Duration::from_secs(1));
        let acked = self.acked.bps();
        if let Some(a) = acked {
            self.peaks.push_back((now, a));
        }
        while self
            .peaks
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > PEAK_WINDOW)
        {
            self.peaks.pop_front();
        }
        // What the path carried at its best lately: the allocation pauses videos as soon as
        // the estimate falls, and what arrives a moment later is no measure of the link.
        let peak = self.peaks.iter().map(|p| p.1).reduce(f64::max);
        let standing = self.queue.standing(now);
        if standing
            && let Some(acked) = peak
            && self
                .last_backoff
                .is_none_or(|t| now.saturating_duration_since(t) >= BACKOFF_AGAIN)
        {
            // A queue that stopped growing because it is full: the trend reads flat, the link
            // drops what does not fit. What arrives is what it carries.
            self.target = self.target.min(BACKOFF * acked);
            self.capacity = Some(acked);
            self.last_backoff = Some(now);
            self.hold = true;
        }
        match self.trend.usage {
            Usage::Over => {
                let due = !self.hold
                    || self
                        .last_backoff
                        .is_none_or(|t| now.saturating_duration_since(t) >= BACKOFF_AGAIN);
                self.hold = true;
                if let Some(acked) = peak
                    && due
                {
                    self.target = self.target.min(BACKOFF * acked);
                    self.capacity = Some(acked);
                    self.last_backoff = Some(now);
                }
            }
            Usage::Under => self.hold = true,
            Usage::Normal if self.hold => self.hold = false,
            Usage::Normal => {
                if let (Some(c), Some(a)) = (self.capacity, acked)
                    && a > c * 1.5
                {
                    // The path carries well beyond where it last overflowed: that is gone.
                    self.capacity = None;
                }
                let grown = match self.capacity {
                    Some(_) => self.target + ADDITIVE_BPS_PER_S * elapsed.as_secs_f64(),
                    None => self.target * MULTIPLICATIVE.powf(elapsed.as_secs_f64()),
                };
                let bound = acked.map_or(f64::MAX, |a| ACK_BOUND * a + ACK_SLACK);
                if grown <= bound {
                    self.target = grown;
                } else if self.target < bound {
                    self.target = bound;
                }
            }
        }
        self.target = self.target.clamp(self.min, self.max);
        self.target
    }

    pub fn target(&self) -> f64 {
        self.target
    }

    #[cfg(test)]
    fn usage(&self) -> Usage {
        self.trend.usage
    }

    /// What the viewer acknowledged lately (bit/s), once known.
    pub fn acked_bps(&self) -> Option<f64> {
        self.acked.bps()
    }

    /// A refused probe: the target goes back up to `bps` (what the path carried before it) if
    /// the backoff took it lower; that is where the path was last seen to hold.
    pub fn restore(&mut self, bps: f64) {
        if self.target < bps {
            self.target = bps.clamp(self.min, self.max);
            self.capacity = Some(bps);
        }
    }

    /// A probe: the target jumps to `bps`, past the acknowledged bound, and the last backoff's
    /// ceiling is forgotten (the probe tests whether it still holds).
    pub fn probe(&mut self, bps: f64) {
        self.target = bps.clamp(self.min, self.max);
        self.capacity = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `bps` for `secs` through a link of `link_bps` with a drop-tail queue of
    /// `queue_ms`, 1200-byte packets sent in frames of `per_frame` every 33 ms, feedback every
    /// 100 ms. Returns the estimator and the loss.
    struct Path {
        t0: Instant,
        now_ms: f64,
        queue_free_ms: f64,
        link_bps: f64,
        queue_ms: f64,
        lost: u32,
        /// Bytes the sender may send and has not yet.
        credit: f64,
    }

    impl Path {
        fn new(link_bps: f64, queue_ms: f64) -> Self {
            Self {
                t0: Instant::now(),
                now_ms: 0.0,
                queue_free_ms: 0.0,
                link_bps,
                queue_ms,
                lost: 0,
                credit: 0.0,
            }
        }

        /// Runs `ms` of time sending at `rate(target)`; returns the targets seen.
        fn run(&mut self, d: &mut DelayBased, ms: u64, rate: impl Fn(f64) -> f64) -> Vec<f64> {
            let mut targets = Vec::new();
            let end = self.now_ms + ms as f64;
            while self.now_ms < end {
                // A frame every 33 ms, of what `rate` sends in 33 ms.
                self.credit += rate(d.target()) / 8.0 * 0.033;
                let packets = (self.credit / 1200.0).floor() as usize;
                self.credit -= packets as f64 * 1200.0;
                for i in 0..packets {
                    let depart = self.now_ms + i as f64 * 0.1;
                    let start = self.queue_free_ms.max(depart);
                    if start - depart > self.queue_ms {
                        self.lost += 1;
                        d.packet(self.t0 + dur(depart), None, 1200);
                        continue;
                    }
                    let done = start + 1200.0 * 8.0 / self.link_bps * 1_000.0;
                    self.queue_free_ms = done;
                    d.packet(self.t0 + dur(depart), Some(dur(done + 20.0)), 1200);
                }
                self.now_ms += 33.0;
                if (self.now_ms as u64 / 33).is_multiple_of(3) {
                    targets.push(d.update(self.t0 + dur(self.now_ms)));
                }
            }
            targets
        }
    }

    fn dur(ms: f64) -> Duration {
        Duration::from_secs_f64(ms / 1_000.0)
    }

    #[test]
    fn a_steady_path_within_its_capacity_reads_normal() {
        let mut d = DelayBased::new(600_000.0, 30_000.0, 50e6);
        let mut p = Path::new(2_000_000.0, 200.0);
        p.run(&mut d, 5_000, |_| 600_000.0);
        assert_eq!(d.usage(), Usage::Normal);
        assert!(d.target() >= 600_000.0, "{}", d.target());
        assert_eq!(p.lost, 0);
    }

    #[test]
    fn a_queue_that_grows_is_overuse_before_it_overflows_and_the_target_backs_off() {
        let mut d = DelayBased::new(600_000.0, 30_000.0, 50e6);
        let mut p = Path::new(500_000.0, 200.0);
        p.run(&mut d, 3_000, |_| 400_000.0);
        assert_eq!(d.usage(), Usage::Normal);
        // 600 kbit/s into 500: the 200 ms queue would overflow after about 1.2 s.
        let mut after_ms = 0;
        while d.target() >= 500_000.0 && after_ms < 3_000 {
            p.run(&mut d, 100, |_| 600_000.0);
            after_ms += 100;
        }
        assert!(
            d.target() < 500_000.0 && p.lost == 0,
            "backed off under the link ({}) after {after_ms} ms, {} packets lost",
            d.target(),
            p.lost
        );
    }

    #[test]
    fn sending_what_the_target_says_settles_under_the_link_with_little_loss() {
        let mut d = DelayBased::new(300_000.0, 30_000.0, 50e6);
        let mut p = Path::new(500_000.0, 200.0);
        let targets = p.run(&mut d, 30_000, |t| t);
        let late = &targets[targets.len() / 2..];
        let max = late.iter().copied().fold(0.0, f64::max);
        let min = late.iter().copied().fold(f64::MAX, f64::min);
        assert!(max < 600_000.0, "stays near the link: {targets:?}");
        assert!(min > 300_000.0, "and uses most of it: {targets:?}");
        assert!(p.lost < 10, "{} packets lost", p.lost);
    }

    #[test]
    fn a_queue_that_stays_full_is_seen_and_the_target_goes_under_the_link() {
        let mut d = DelayBased::new(600_000.0, 30_000.0, 50e6);
        let mut p = Path::new(500_000.0, 200.0);
        p.run(&mut d, 3_000, |_| 400_000.0);
        // The link narrows at once to a third: the queue is full within a few frames, before
        // the trend has a window of groups that grew.
        p.link_bps = 300_000.0;
        let targets = p.run(&mut d, 2_000, |_| 600_000.0);
        assert!(
            targets.iter().any(|t| *t < 300_000.0),
            "under the link: {targets:?}"
        );
    }

    #[test]
    fn the_target_stays_within_one_and_a_half_times_what_is_acknowledged() {
        let mut d = DelayBased::new(300_000.0, 30_000.0, 50e6);
        let mut p = Path::new(10_000_000.0, 200.0);
        // The allocation sends 300 kbit/s whatever the target (nothing more is wanted).
        let targets = p.run(&mut d, 20_000, |_| 300_000.0);
        let last = *targets.last().unwrap();
        assert!(
            last <= ACK_BOUND * 330_000.0 + ACK_SLACK,
            "bounded by what arrives: {last}"
        );
        assert!(last > 400_000.0, "but climbs to the bound: {last}");
        // A probe goes past it.
        d.probe(1_000_000.0);
        assert_eq!(d.target(), 1_000_000.0);
    }
}
