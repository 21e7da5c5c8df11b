//! Every viewer gets the video its link carries (issue 18, `docs/bandwidth-design.md`): the
//! send-side estimate of each connection's downlink, and the allocation tick that fits each
//! viewer's pulls into it (`allocation.rs`, with layer costs from `layer_costs.rs`).
//!
//! **Estimate.** rtc's GCC (`CongestionControlInterceptor<Gcc>`: delay trend and loss) reads the
//! viewer's transport-cc feedback about what the node sent; `TwccSender` numbers everything that
//! leaves (media and RTX) with the transport-wide sequence number the browser reports against.
//! Not rtc's pacer: it paces at exactly the target with a 4096-packet queue, which on an SFU
//! would throttle every forwarded stream to the first estimate and add seconds of queue; the
//! allocation keeps what is sent under the estimate instead. The estimator lives inside the
//! connection's interceptor chain, out of the loop's reach, so it is wrapped: each feedback
//! writes the target into a cell the connection also holds, and the loop reads it on its tick
//! (never per packet).
//!
//! **Allocation tick.** Every [`TICK`], per connection with an estimate: audio first, then each
//! video pull's layer by priority (a shared screen, the dominant speaker, the rest); a pull whose
//! lowest layer does not fit is paused (no video packets, its page is told) and resumes on a
//! keyframe; a new layer is switched to on its keyframe, as a page's own `tracks/update` is.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use edgemeet_protocol::node::{DownlinkState, Forwarding, NodeEvent, TrackStatus};
use rtc::interceptor::{
    BandwidthEstimator, CongestionControlBuilder, EstimatorStats, Gcc, PacketReport, Registry,
    Slot, TwccSenderBuilder,
};

use super::delay_based::DelayBased;
use super::driver::MediaLoop;
use super::fanout::{Pull, PullId};
use super::router::ConnId;
use crate::allocation::{Allocator, Grant, PauseReason, VideoDemand};
use crate::layers::MAX_LAYERS;

/// The headers of an Opus stream (50 packets a second of `layer_costs::OVERHEAD_BYTES`).
const AUDIO_HEADERS_BPS: u64 = 50 * super::layer_costs::OVERHEAD_BYTES * 8;

/// How often each viewer's pulls are fitted into its estimate.
pub const TICK: Duration = Duration::from_millis(250);
/// Where the estimate starts before the first feedback. Optimistic (a pull starts on the
/// layer its page asked for, as before the estimate existed): GCC backs off to 85 % of what
/// arrives within a few feedback intervals when the link is narrower.
const INITIAL_BPS: f64 = 2_500_000.0;
const MIN_BPS: f64 = 30_000.0;
const MAX_BPS: f64 = 50_000_000.0;

/// What the estimator last said, written on each transport-cc feedback (inside rtc's chain),
/// read on the loop's tick. One per connection; atomics only because rtc wants its estimator
/// `Send + Sync`: both sides run on the loop's thread.
#[derive(Debug, Default)]
pub struct EstimateCell {
    target_bps: AtomicU64,
    delay_bps: AtomicU64,
    loss_bps: AtomicU64,
    /// Packets the viewer reported on, and of those, lost.
    reported: AtomicU64,
    lost: AtomicU64,
    /// What the viewer's pulls would take at the layers their pages ask for (written by the
    /// loop's tick): the estimator probes towards it.
    want_bps: AtomicU64,
    /// What the allocation's next upgrade needs: a probe goes at least that far.
    want_next_bps: AtomicU64,
    /// What the allocation grants now (audio and video): a probe it did not use proves nothing.
    granted_bps: AtomicU64,
    /// Probes started, and those the path refused (the estimate fell back within the verdict).
    probes: AtomicU64,
    probes_failed: AtomicU64,
    /// Probes the viewer received most of: the link carries more than before, and the
    /// allocation forgets its per-pull waits.
    probes_held: AtomicU64,
    /// What the viewer acknowledged lately (bit/s).
    acked_bps: AtomicU64,
    /// Retransmissions not sent: over their budget (`retransmit.rs`).
    rtx_dropped: AtomicU64,
}

/// A connection's downlink estimate as the loop reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Estimate {
    pub target_bps: u64,
    pub delay_bps: u64,
    pub loss_bps: u64,
    pub reported: u64,
    pub lost: u64,
    pub probes: u64,
    pub probes_failed: u64,
    pub probes_held: u64,
    pub acked_bps: u64,
    pub rtx_dropped: u64,
}

impl EstimateCell {
    /// `None` until the viewer's first transport-cc feedback (a client without transport-cc
    /// gets what its page asks for, as before).
    pub fn read(&self) -> Option<Estimate> {
        let reported = self.reported.load(Relaxed);
        (reported > 0).then(|| Estimate {
            target_bps: self.target_bps.load(Relaxed),
            delay_bps: self.delay_bps.load(Relaxed),
            loss_bps: self.loss_bps.load(Relaxed),
            reported,
            lost: self.lost.load(Relaxed),
            probes: self.probes.load(Relaxed),
            probes_failed: self.probes_failed.load(Relaxed),
            probes_held: self.probes_held.load(Relaxed),
            acked_bps: self.acked_bps.load(Relaxed),
            rtx_dropped: self.rtx_dropped.load(Relaxed),
        })
    }

    pub fn note_rtx_dropped(&self) {
        self.rtx_dropped.fetch_add(1, Relaxed);
    }

    /// The loop's tick: what the viewer's pulls would take at the layers their pages ask for.
    pub fn want(&self, bps: u64) {
        self.want_bps.store(bps, Relaxed);
    }

    /// The loop's tick: what the allocation grants now (audio and video).
    pub fn granted(&self, bps: u64) {
        self.granted_bps.store(bps, Relaxed);
    }

    /// The loop's tick: what the allocation's next upgrade needs (0: none).
    pub fn want_next(&self, bps: u64) {
        self.want_next_bps.store(bps, Relaxed);
    }
}

/// Ramp-up. Outside a probe the estimate climbs at most to 1.5 x what the viewer acknowledges
/// (`delay_based.rs`), and after a backoff only about 50 kbit/s per second: after a 500 kbit/s
/// cap lifts a viewer would need many seconds to get its 640x360 videos back. Chromium probes
/// with padding bursts; rtc's RTP writer pads to 4 bytes at most and a duplicate packet fails
/// SRTP's replay check at the receiver, so the node probes with the media itself: when the
/// viewer's pulls want more than the estimate and the path has been calm (no backoff, under
/// 2 % loss) for [`CALM`], the estimate jumps towards what they want (1.5 x, then 2 x after a
/// probe that held). The allocation upgrades one pull per tick into it (on keyframes); the
/// probe **holds** once the viewer acknowledges most of it, then the next may follow at once,
/// and the allocation forgets its per-pull waits (the link changed). A probe the delay trend
/// refuses (a backoff) doubles the wait before the next (up to [`MAX_BACKOFF`]: recovery after
/// a cap lifts must not wait longer); a probe the allocation did not use within [`VERDICT`]
/// proves nothing and the estimate goes back to where it was.
#[derive(Debug)]
struct Prober {
    last_drop: Option<Instant>,
    running: Option<Probe>,
    next_allowed: Option<Instant>,
    backoff: Duration,
    /// The last probe held: the next one goes further.
    held: bool,
}

#[derive(Clone, Copy, Debug)]
struct Probe {
    since: Instant,
    /// The estimate before it.
    from: f64,
    /// What the allocation granted before it.
    granted: f64,
}

/// What the viewer's pulls want, as the loop's tick wrote it (bit/s).
#[derive(Clone, Copy, Debug, Default)]
struct Wants {
    /// Every video at its page's wish.
    want: f64,
    /// What the allocation's next upgrade needs (0: none).
    next: f64,
    /// What the allocation grants now.
    granted: f64,
}

/// No backoff for this long before a probe.
const CALM: Duration = Duration::from_millis(1_500);
/// A probe not used by then proves nothing (the allocation needs a tick and a keyframe per
/// upgrade, and the acknowledged rate half a second to show it).
const VERDICT: Duration = Duration::from_millis(2_500);
/// A probe the allocation used holds when the viewer acknowledges this much of what is
/// granted, and no sooner than `HOLD_AFTER`.
const USED: f64 = 0.75;
const HOLD_AFTER: Duration = Duration::from_millis(1_000);
const BASE_BACKOFF: Duration = Duration::from_millis(1_500);
const MAX_BACKOFF: Duration = Duration::from_secs(3);
/// A probe goes at most this far above the estimate: media is the probe, so an overshoot
/// costs the viewer queueing until the estimator backs off...
const PROBE_FACTOR: f64 = 1.5;
/// ...or this far after a probe that held.
const PROBE_FACTOR_HELD: f64 = 2.0;
/// A probe goes this much of the next upgrade's cost beyond it: the allocation upgrades with a
/// 15 % margin (`allocation.rs`), and a little more for the estimate's wobble.
const NEXT_MARGIN: f64 = 0.2;
/// Loss (average) above which the path is not calm.
const CALM_LOSS: f64 = 0.02;

/// What one feedback's new estimate means for probing.
#[derive(Clone, Copy, Debug, PartialEq)]
enum ProbeStep {
    None,
    /// Start the estimator afresh at this rate.
    Jump(f64),
    /// The running probe was refused; what the allocation granted before it.
    Refused(f64),
    /// The running probe was not used: back to this rate.
    Unused(f64),
    /// The running probe held: the viewer receives most of it.
    Held,
}

impl Default for Prober {
    fn default() -> Self {
        Self {
            last_drop: None,
            running: None,
            next_allowed: None,
            backoff: BASE_BACKOFF,
            held: false,
        }
    }
}

impl Prober {
    /// After feedback at `now` moved the estimate from `before` to `after`, with `want` wanted,
    /// `loss` the average loss and `acked` what the viewer acknowledges (bit/s).
    fn step(
        &mut self,
        now: Instant,
        before: f64,
        after: f64,
        w: Wants,
        loss: f64,
        acked: Option<f64>,
    ) -> ProbeStep {
        let Wants {
            want,
            next,
            granted,
        } = w;
        if after < before * 0.97 {
            self.last_drop = Some(now);
            self.held = false;
            if let Some(p) = self.running.take() {
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                self.next_allowed = Some(now + self.backoff);
                return ProbeStep::Refused(p.granted);
            }
        }
        if let Some(p) = self.running {
            let age = now.saturating_duration_since(p.since);
            // The allocation used it (grants more than before) and the viewer receives most of
            // that, or it went the whole verdict without a backoff.
            let used = granted > p.granted * 1.05;
            let received = acked.is_some_and(|a| a >= USED * granted);
            if used && ((age >= HOLD_AFTER && received) || age >= VERDICT) {
                self.running = None;
                self.backoff = BASE_BACKOFF;
                self.next_allowed = Some(now);
                self.held = true;
                return ProbeStep::Held;
            }
            if age >= VERDICT {
                self.running = None;
                self.held = false;
                self.next_allowed = Some(now + self.backoff);
                return ProbeStep::Unused(p.from.min(after));
            }
            return ProbeStep::None;
        }
        let calm = self
            .last_drop
            .is_none_or(|t| now.saturating_duration_since(t) >= CALM)
            && loss < CALM_LOSS;
        let allowed = self.next_allowed.is_none_or(|t| now >= t);
        if calm && allowed && want > after * 1.1 {
            let factor = if self.held {
                PROBE_FACTOR_HELD
            } else {
                PROBE_FACTOR
            };
            // As far as the next upgrade needs, with the allocation's margin for it: a probe
            // the allocation cannot use proves nothing, and one that lets it upgrade two
            // videos at once overshoots a thin link (300 kbit/s, two publishers: refused
            // every time, and the queue it built backed the estimate off under the video that
            // flowed, which paused; the viewer saw the avatars most of a minute). One
            // upgrade per probe; after one held the next follows at once, with room for
            // about two (a lifted cap is climbed back within the 5 s: five upgrades
            // one per probe took 3.6-7.6 s). Without a known next upgrade, a step towards
            // what is wanted.
            let room = if self.held {
                NEXT_MARGIN + 1.0
            } else {
                NEXT_MARGIN
            };
            let to = if next > granted {
                (next + (next - granted) * room).min(want.max(next))
            } else {
                want.min(after * factor)
            };
            self.running = Some(Probe {
                since: now,
                from: after,
                granted,
            });
            return ProbeStep::Jump(to);
        }
        ProbeStep::None
    }
}

/// The estimate of one connection: our delay-based half (`delay_based.rs`; rtc's never sees a
/// `tbf` queue, see there) and rtc's loss-based half, the lower of the two, published into the
/// connection's [`EstimateCell`].
struct PublishedGcc {
    /// rtc's GCC, for its loss-based half only.
    gcc: Gcc,
    delay: DelayBased,
    cell: Arc<EstimateCell>,
    prober: Prober,
}

impl PublishedGcc {
    fn new(cell: Arc<EstimateCell>) -> Self {
        Self {
            gcc: Gcc::new(INITIAL_BPS, MIN_BPS, MAX_BPS),
            delay: DelayBased::new(INITIAL_BPS, MIN_BPS, MAX_BPS),
            cell,
            prober: Prober::default(),
        }
    }

    fn target(&self) -> f64 {
        self.delay.target().min(self.gcc.loss_based_bitrate())
    }
}

impl BandwidthEstimator for PublishedGcc {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        if reports.is_empty() {
            return;
        }
        let before = self.target();
        self.gcc.on_reports(now, reports);
        for r in reports {
            self.delay
                .packet(r.departure, r.arrival.filter(|_| r.arrived), r.size);
        }
        self.delay.update(now);
        let want = self.cell.want_bps.load(Relaxed) as f64;
        let next = self.cell.want_next_bps.load(Relaxed) as f64;
        let granted = self.cell.granted_bps.load(Relaxed) as f64;
        let loss = self.gcc.stats().packet_loss.unwrap_or(0.0);
        let acked = self.delay.acked_bps();
        match self.prober.step(
            now,
            before,
            self.target(),
            Wants {
                want,
                next,
                granted,
            },
            loss,
            acked,
        ) {
            ProbeStep::None => {}
            ProbeStep::Jump(to) | ProbeStep::Unused(to) => {
                // rtc's loss half starts afresh there too (it would hold the estimate under).
                self.gcc = Gcc::new(to, MIN_BPS, MAX_BPS);
                self.delay.probe(to);
                if to > before {
                    self.cell.probes.fetch_add(1, Relaxed);
                }
            }
            ProbeStep::Refused(granted) => {
                // The path carried what was granted before the probe: the estimate goes back
                // to that at least, not to 85 % of what arrived while the probe's upgrade
                // filled the queue (that dipped it under the speaker's lowest layer). Were the
                // link narrower now, the delay half backs off again.
                self.delay.restore(granted);
                self.cell.probes_failed.fetch_add(1, Relaxed);
            }
            ProbeStep::Held => {
                self.cell.probes_held.fetch_add(1, Relaxed);
            }
        }
        let lost = reports.iter().filter(|r| !r.arrived).count() as u64;
        let c = &self.cell;
        c.target_bps.store(self.target() as u64, Relaxed);
        c.delay_bps.store(self.delay.target() as u64, Relaxed);
        c.acked_bps
            .store(self.delay.acked_bps().unwrap_or(0.0) as u64, Relaxed);
        c.loss_bps
            .store(self.gcc.loss_based_bitrate() as u64, Relaxed);
        c.lost.fetch_add(lost, Relaxed);
        c.reported.fetch_add(reports.len() as u64, Relaxed);
    }

    fn target_bitrate(&self) -> f64 {
        self.target()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.gcc.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.gcc.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.gcc.stats()
    }
}

/// Adds the send-side estimator to a node connection's interceptors: transport-wide sequence
/// numbers on what it sends and GCC over the feedback, no pacer. The media engine already
/// offers the transport-cc extension and feedback (rtc's default interceptors register them).
/// The estimate goes into `cell` (shared with the retransmission budget, `retransmit.rs`).
pub fn with_estimator(registry: Registry, cell: &Arc<EstimateCell>) -> Registry {
    let estimator = PublishedGcc::new(cell.clone());
    registry
        .with(
            Slot::CongestionControl,
            CongestionControlBuilder::new(estimator).build(),
        )
        .with(Slot::TwccSender, TwccSenderBuilder::new().build())
}

/// A connection's downlink: its estimate and its allocator (the loop's side).
#[derive(Debug, Default)]
pub struct Downlink {
    pub cell: Arc<EstimateCell>,
    pub allocator: Allocator,
    /// What the last tick gave audio and video (bits per second).
    pub audio_bps: u64,
    pub video_bps: u64,
    /// Probes started and held, as of the last tick.
    pub probes_seen: (u64, u64),
}

/// What the allocation decided for one pull (video).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PullGrant {
    /// The layer (rank) forwarded; `None`: the page's wish (no estimate yet, not simulcast).
    pub layer: Option<usize>,
    /// No video forwarded: not even its lowest layer fits the viewer's estimate.
    pub paused: bool,
}

/// What a pull's new grant changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantChange {
    Same,
    Paused,
    Resumed,
    Layer(usize),
}

impl PullGrant {
    /// The grant a tick's decision makes of this one; `simulcast`: the publication has layers.
    pub fn next(self, g: Grant, simulcast: bool) -> PullGrant {
        match g {
            Grant::Layer(r) => PullGrant {
                layer: simulcast.then_some(r),
                paused: false,
            },
            Grant::Paused(PauseReason::Bandwidth) => PullGrant {
                layer: self.layer,
                paused: true,
            },
            // Nothing flows (the stitch falls back as it can) or not shown: no decision of ours.
            Grant::Paused(_) => PullGrant::default(),
        }
    }

    pub fn change_to(self, new: PullGrant) -> GrantChange {
        match (self.paused, new.paused) {
            (false, true) => GrantChange::Paused,
            (true, false) => GrantChange::Resumed,
            _ => match new.layer {
                Some(r) if new.layer != self.layer && !new.paused => GrantChange::Layer(r),
                _ => GrantChange::Same,
            },
        }
    }
}

/// Priority of a video for a viewer (lower first): a shared screen, then the speaker or the
/// tile its page pins or shows large.
fn priority(track_name: &str, speaking: bool) -> u8 {
    if track_name.contains("screen") {
        0
    } else if speaking {
        1
    } else {
        2
    }
}

impl MediaLoop {
    /// The allocation tick: every connection with an estimate gets its pulls fitted into it.
    pub(super) fn bandwidth_tick(&mut self, now: Instant) {
        let now_ms = self.now_ms(now);
        self.follow_tile_heights(now);
        let mut by_conn: Vec<Vec<PullId>> = vec![Vec::new(); self.conns.len()];
        for (id, pull) in self.pulls.iter().enumerate() {
            if let Some(p) = pull
                && p.status == TrackStatus::Active
                && let Some(v) = by_conn.get_mut(p.conn)
            {
                v.push(id);
            }
        }
        let mut decided: Vec<(PullId, Grant)> = Vec::new();
        for (conn_id, pulls) in by_conn.into_iter().enumerate() {
            if pulls.is_empty() {
                continue;
            }
            let Some(conn) = self.conns[conn_id].as_ref() else {
                continue;
            };
            let Some(estimate) = conn.downlink.cell.read() else {
                continue;
            };
            let speaker = self.speakers.current(&conn.owner.room);
            let mut audio_bps = 0;
            let mut demands = Vec::new();
            for pull_id in pulls {
                let Some(pull) = self.pulls[pull_id].as_ref() else {
                    continue;
                };
                let Some(p) = self.pubs[pull.publication].as_ref() else {
                    continue;
                };
                if !p.video {
                    // RED carries each payload twice, the headers once (Opus: 50 packets
                    // a second). Counting the headers twice made three audio streams cost
                    // 290k where 180-220k arrived, and paused the speaker on a 500k link.
                    let cost = p.costs.total_bps(now_ms);
                    audio_bps += match pull.red {
                        Some(_) => (2 * cost).saturating_sub(AUDIO_HEADERS_BPS).max(cost),
                        None => cost,
                    };
                    continue;
                }
                let speaking = speaker.is_some_and(|s| {
                    self.conns[p.conn]
                        .as_ref()
                        .is_some_and(|c| c.owner.participant == s)
                });
                let mut layer_bps = p.costs.bps(now_ms);
                if p.rids.is_empty() {
                    layer_bps[1..].fill(None);
                }
                let max_rank = pull.wanted_rank(p);
                demands.push(VideoDemand {
                    key: pull_id,
                    priority: priority(&p.name, speaking || pull.view.pinned),
                    max_rank: pull.view.shown.then_some(max_rank.min(MAX_LAYERS - 1)),
                    layer_bps,
                });
            }
            // What the pages ask for: each video at its wish (or the best below it that flows).
            let want = audio_bps
                + demands
                    .iter()
                    .map(|d| {
                        let top = d.max_rank.unwrap_or(0);
                        d.layer_bps[..=top].iter().rev().flatten().next().copied()
                    })
                    .map(|b| b.unwrap_or(0))
                    .sum::<u64>();
            let conn = self.conns[conn_id].as_mut().expect("checked");
            let d = &mut conn.downlink;
            d.cell.want(want);
            if (estimate.probes, estimate.probes_held) != d.probes_seen {
                // A probe: the room it makes is for an upgrade now, whatever the per-pull waits
                // (the prober spaces probes itself). One that held: the link carries more than
                // it did, upgrades that failed before may go again.
                d.probes_seen = (estimate.probes, estimate.probes_held);
                d.allocator.forgive();
            }
            let a = d
                .allocator
                .allocate(now_ms, estimate.target_bps, audio_bps, &demands);
            if now_ms % 1_000 < TICK.as_millis() as u64 {
                tracing::debug!(
                    target: "edgemeet::bwe",
                    conn = conn_id,
                    estimate = estimate.target_bps,
                    delay = estimate.delay_bps,
                    loss = estimate.loss_bps,
                    acked = estimate.acked_bps,
                    audio = audio_bps,
                    video = a.video_bps,
                    next = ?a.next_up_bps,
                    probes = estimate.probes,
                    refused = estimate.probes_failed,
                    held = estimate.probes_held,
                    lost = estimate.lost,
                    "downlink"
                );
            }
            d.audio_bps = audio_bps;
            d.video_bps = a.video_bps;
            d.cell.granted(audio_bps + a.video_bps);
            d.cell
                .want_next(a.next_up_bps.map_or(0, |n| audio_bps + a.video_bps + n));
            decided.extend(a.grants);
        }
        for (pull_id, g) in decided {
            self.apply_grant(pull_id, g, now);
        }
    }

    /// Each tile's layer cap follows its publisher's layer heights (learned from keyframes, so
    /// they may come after the page named the tile's height). A viewer without an estimate
    /// switches at once (its keyframe asked for); one with an estimate switches through its
    /// allocation.
    fn follow_tile_heights(&mut self, now: Instant) {
        let mut switches = Vec::new();
        for pull in self.pulls.iter_mut().flatten() {
            let Some(p) = self.pubs[pull.publication].as_ref() else {
                continue;
            };
            if !p.video || p.rids.is_empty() {
                continue;
            }
            let cap = p.rank_for_height(pull.view.height);
            if cap == pull.view_cap {
                continue;
            }
            let before = pull.layer();
            pull.view_cap = cap;
            if pull.grant.layer.is_none()
                && pull.view.shown
                && let Some(r) = pull.layer().filter(|&r| Some(r) != before)
            {
                switches.push((pull.publication, p.ssrc_of_rank(r)));
            }
        }
        for (pid, target) in switches {
            self.request_keyframe(pid, target, crate::keyframes::LAYER_INTERVAL_MS, now);
        }
    }

    /// The viewer's page is told (through the edge) that a pull's video paused or resumed.
    fn tell_viewer(&self, pull_id: PullId, paused: bool) {
        let Some(pull) = self.pulls[pull_id].as_ref() else {
            return;
        };
        let publisher = self.pubs[pull.publication]
            .as_ref()
            .and_then(|p| self.conns[p.conn].as_ref());
        let (Some(viewer), Some(publisher)) = (self.conns[pull.conn].as_ref(), publisher) else {
            return;
        };
        let _ = self.setup.events.send(NodeEvent::VideoPaused {
            route: viewer.owner.route.clone(),
            room: viewer.owner.room.clone(),
            viewer: viewer.owner.participant.clone(),
            publisher: publisher.owner.participant.clone(),
            track: pull.track_name.clone(),
            paused,
        });
    }

    /// A session's downlink for its state (`GET /v1/sessions/{id}`).
    pub(super) fn downlink_state(&self, id: ConnId) -> Option<DownlinkState> {
        let d = &self.conns[id].as_ref()?.downlink;
        let e = d.cell.read()?;
        Some(DownlinkState {
            estimate_bps: e.target_bps,
            delay_based_bps: e.delay_bps,
            loss_based_bps: e.loss_bps,
            packets_reported: e.reported,
            packets_lost: e.lost,
            audio_bps: d.audio_bps,
            video_bps: d.video_bps,
            probes: e.probes,
            probes_refused: e.probes_failed,
            retransmissions_dropped: e.rtx_dropped,
        })
    }

    /// What the allocation forwards of a pulled video, once its viewer has an estimate.
    pub(super) fn forwarding(&self, pull: &Pull) -> Option<Forwarding> {
        let p = self.pubs[pull.publication].as_ref().filter(|p| p.video)?;
        self.conns[pull.conn].as_ref()?.downlink.cell.read()?;
        Some(Forwarding {
            rid: pull.grant.layer.and_then(|r| p.rids.get(r).cloned()),
            paused_for_bandwidth: pull.grant.paused,
        })
    }

    fn apply_grant(&mut self, pull_id: PullId, g: Grant, now: Instant) {
        let Some(pull) = self.pulls[pull_id].as_mut() else {
            return;
        };
        let Some(p) = self.pubs[pull.publication].as_ref() else {
            return;
        };
        let new = pull.grant.next(g, !p.rids.is_empty());
        let change = pull.grant.change_to(new);
        pull.grant = new;
        let m = &self.setup.metrics;
        match change {
            GrantChange::Same => {}
            GrantChange::Paused => {
                // The page shows the avatar; on resume the stream restarts at a keyframe.
                pull.stitch.pause();
                m.video_paused_bandwidth.fetch_add(1, Relaxed);
                tracing::debug!(pull = pull_id, "video paused for bandwidth");
                self.tell_viewer(pull_id, true);
            }
            GrantChange::Resumed => {
                tracing::debug!(pull = pull_id, "video resumed");
                let shown = pull.view.shown;
                self.tell_viewer(pull_id, false);
                // (A tile hidden meanwhile asks for its keyframe when it is shown again.)
                if shown {
                    self.pull_keyframe(pull_id, now);
                }
            }
            GrantChange::Layer(r) => {
                m.layer_switches_bandwidth.fetch_add(1, Relaxed);
                let (pid, target) = (pull.publication, p.ssrc_of_rank(r));
                self.request_keyframe(pid, target, crate::keyframes::LAYER_INTERVAL_MS, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_pauses_resumes_and_switches_only_on_a_change() {
        let start = PullGrant::default();
        let on_h = start.next(Grant::Layer(1), true);
        assert_eq!(on_h.layer, Some(1));
        assert_eq!(start.change_to(on_h), GrantChange::Layer(1));
        assert_eq!(
            on_h.change_to(on_h.next(Grant::Layer(1), true)),
            GrantChange::Same
        );
        let paused = on_h.next(Grant::Paused(PauseReason::Bandwidth), true);
        assert!(paused.paused);
        assert_eq!(on_h.change_to(paused), GrantChange::Paused);
        assert_eq!(
            paused.change_to(paused.next(Grant::Layer(0), true)),
            GrantChange::Resumed
        );
        // Without simulcast there is no layer to pick: only pauses count.
        let single = start.next(Grant::Layer(0), false);
        assert_eq!(single, PullGrant::default());
        assert_eq!(start.change_to(single), GrantChange::Same);
        // Nothing of the publisher flows: no decision of the allocator, the stitch falls back.
        assert_eq!(
            on_h.next(Grant::Paused(PauseReason::NothingFlows), true),
            PullGrant::default()
        );
    }

    #[test]
    fn a_calm_path_that_is_asked_for_more_is_probed_and_a_refusal_backs_off() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let w = |granted: f64| Wants {
            want: 1.5e6,
            next: 0.0,
            granted,
        };
        let mut p = Prober::default();
        let acked = Some(400e3);
        // The estimate just fell: not calm.
        assert_eq!(
            p.step(at(0), 500e3, 400e3, w(400e3), 0.0, acked),
            ProbeStep::None
        );
        assert_eq!(
            p.step(at(1_000), 400e3, 410e3, w(400e3), 0.0, acked),
            ProbeStep::None
        );
        // Lossy: not calm either.
        assert_eq!(
            p.step(at(1_600), 410e3, 420e3, w(400e3), 0.05, acked),
            ProbeStep::None
        );
        // Calm for 1.5 s: a probe, one step (1.5 times the estimate) towards what is wanted.
        assert_eq!(
            p.step(at(1_700), 420e3, 420e3, w(400e3), 0.0, acked),
            ProbeStep::Jump(630e3)
        );
        // The path says no (the delay trend backs off): refused, the next waits 3 s.
        assert_eq!(
            p.step(at(2_200), 630e3, 350e3, w(500e3), 0.0, acked),
            ProbeStep::Refused(400e3)
        );
        assert_eq!(
            p.step(at(4_700), 450e3, 460e3, w(400e3), 0.0, acked),
            ProbeStep::None
        );
        let Some(ProbeStep::Jump(to)) = [5_300, 5_400]
            .into_iter()
            .map(|t| p.step(at(t), 460e3, 460e3, w(400e3), 0.0, acked))
            .find(|s| *s != ProbeStep::None)
        else {
            panic!("a probe once the wait is over");
        };
        assert_eq!(to, 690e3);
        // Not used by the allocation within the verdict: back to where it was, no refusal.
        assert_eq!(
            p.step(at(6_000), 690e3, 690e3, w(400e3), 0.0, acked),
            ProbeStep::None
        );
        assert_eq!(
            p.step(at(8_000), 690e3, 690e3, w(400e3), 0.0, acked),
            ProbeStep::Unused(460e3)
        );
        // The next one is used: it holds once most of what is granted arrives, and the next
        // goes at once, twice as far.
        assert!(matches!(
            p.step(at(11_100), 460e3, 460e3, w(400e3), 0.0, acked),
            ProbeStep::Jump(_)
        ));
        assert_eq!(
            p.step(at(11_600), 690e3, 690e3, w(600e3), 0.0, Some(600e3)),
            ProbeStep::None,
            "too soon to tell"
        );
        assert_eq!(
            p.step(at(12_200), 690e3, 690e3, w(600e3), 0.0, Some(600e3)),
            ProbeStep::Held
        );
        assert_eq!(
            p.step(at(12_300), 690e3, 700e3, w(600e3), 0.0, Some(600e3)),
            ProbeStep::Jump(1.4e6)
        );
        // A probe goes as far as the allocation's next upgrade needs (and 20 % of that
        // upgrade's cost over), above 1.5 times the estimate if it must, and no further.
        let mut r = Prober::default();
        let needs = Wants {
            want: 1e6,
            next: 337e3,
            granted: 72e3,
        };
        let Some(ProbeStep::Jump(to)) = Some(r.step(at(0), 176e3, 176e3, needs, 0.0, None)) else {
            panic!("a probe");
        };
        assert!((to - (337e3 + 0.2 * 265e3)).abs() < 1.0, "{to}");
        let mut s = Prober::default();
        let one_more = Wants {
            want: 400e3,
            next: 250e3,
            granted: 150e3,
        };
        let Some(ProbeStep::Jump(to)) = Some(s.step(at(0), 230e3, 230e3, one_more, 0.0, None))
        else {
            panic!("a probe");
        };
        assert!(
            (to - 270e3).abs() < 1.0,
            "one upgrade's worth and its margin, not 1.5 x the estimate (345k, two): {to}"
        );
        // Nothing wanted beyond the estimate: no probe.
        let mut q = Prober::default();
        let enough = Wants {
            want: 1.05e6,
            next: 0.0,
            granted: 1e6,
        };
        assert_eq!(q.step(at(0), 1e6, 1e6, enough, 0.0, acked), ProbeStep::None);
    }

    #[test]
    fn a_screen_goes_first_then_the_speaker() {
        assert!(priority("screen", false) < priority("video", true));
        assert!(priority("video", true) < priority("video", false));
    }

    #[test]
    fn no_estimate_before_the_first_feedback() {
        let cell = EstimateCell::default();
        assert_eq!(cell.read(), None);
        let mut e = PublishedGcc::new(Arc::new(EstimateCell::default()));
        e.on_reports(Instant::now(), &[]);
        assert_eq!(e.cell.read(), None, "empty feedback says nothing");
    }
}
