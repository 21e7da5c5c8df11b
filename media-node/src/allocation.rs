//! Bandwidth allocation for one subscriber: which simulcast layer of each video it pulls fits in
//! what its downlink carries (issue 18). Pure: the loop hands in the subscriber's estimate, its
//! audio, and per video what the page asked for and what each layer costs now; it gets back a
//! layer or a pause per video. Called on a tick (every few hundred ms), not per packet.
//!
//! Order, as Jitsi's bridge and LiveKit allocate: audio first (never paused here), then every
//! shown video at its lowest flowing layer in priority order (a screen share, the pinned or
//! speaking person, then the rest), then each one up towards what the page asked for, again in
//! priority order. What does not fit even at its lowest layer is paused for bandwidth, and the
//! page shows it so. Downgrades are immediate; an upgrade needs a margin over its cost and, after
//! a downgrade, a hold, so an estimate that wobbles around a layer's cost does not switch layers
//! (each switch waits for a keyframe) every tick.

use crate::layers::MAX_LAYERS;

/// A flowing video of this priority or more important (a screen, the speaker) keeps its
/// lowest layer while the room left is short of its cost by at most `KEEP_SLACK_PCT` %.
const KEEP_PRIORITY: u8 = 1;
const KEEP_SLACK_PCT: u64 = 30;
/// Any other flowing video keeps its lowest layer while short by at most this much: on a thin
/// link the estimate wobbles a few % around what audio and one video take (300 kbit/s, two
/// publishers: 144k of audio and 90k of video against 230-270k), and each pause and resume
/// costs the viewer the avatar and a keyframe wait.
const KEEP_SLACK_OTHER_PCT: u64 = 15;
/// Extra room an upgrade needs beyond its cost (×100): 15 %.
const UP_MARGIN_PCT: u64 = 115;
/// After a pull went down, it goes up again only after this long...
const UP_HOLD_MS: u64 = 2_000;
/// ...twice as long each time an upgrade failed (down again within this long), up to
/// `MAX_HOLD_MS`: an estimate that climbs past what the link carries (rtc's loss-based half
/// climbs 5 % per 200 ms on a clean path) does not flap a viewer between two layers.
const FAIL_WINDOW_MS: u64 = 5_000;
const MAX_HOLD_MS: u64 = 32_000;
/// A pull waits out a hold longer than `UP_HOLD_MS` only while the estimate is under this much
/// (×100) of what it was when the pull went down: a hold is against an estimate wobbling around a layer's cost, not
/// one that has clearly risen (after 10 % loss on a 500 kbit/s link stopped, the estimate stood
/// at 500k with an upgrade needing 370k, and the viewer waited out a 16-32 s hold from the
/// losses).
const RISEN_PCT: u64 = 130;

/// What one subscriber's video pull asks for and what its layers cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoDemand {
    /// The caller's key for the pull (the loop's pull id).
    pub key: usize,
    /// Lower is more important: 0 a shared screen, 1 pinned or speaking, 2 the rest.
    pub priority: u8,
    /// The highest layer (rank, low to high) the page wants for this tile; `None`: not shown.
    pub max_rank: Option<usize>,
    /// Bits per second each layer costs now; `None`: the layer does not flow.
    pub layer_bps: [Option<u64>; MAX_LAYERS],
}

/// What a pull gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Forward this layer (rank).
    Layer(usize),
    /// Forward no video.
    Paused(PauseReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PauseReason {
    /// Not even its lowest layer fits beside the ones before it.
    Bandwidth,
    /// The page does not show this tile.
    NotShown,
    /// No layer of the publisher flows (nothing to forward; not a decision of ours).
    NothingFlows,
}

/// One pull's previous grant, for the hysteresis.
#[derive(Clone, Copy, Debug)]
struct Previous {
    key: usize,
    grant: Grant,
    /// When it last went down (or was paused for bandwidth).
    down_ms: Option<u64>,
    /// When it last went up (or resumed).
    up_ms: Option<u64>,
    /// How long it waits after going down before going up again.
    hold_ms: u64,
    /// The estimate when it last went down.
    down_estimate: u64,
}

/// One subscriber's allocator; it remembers the last grants.
#[derive(Debug, Default)]
pub struct Allocator {
    previous: Vec<Previous>,
}

/// The outcome of one tick.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allocation {
    /// A grant per demand, in the order the demands came.
    pub grants: Vec<(usize, Grant)>,
    /// Bits per second the grants (video) add up to.
    pub video_bps: u64,
    /// What the next upgrade (the first one the allocator would make with more room: a paused
    /// video resumed, else a layer up, most important first) needs beyond `video_bps`, margin
    /// included; `None`: every video has what its page asked for. A probe goes at least this far.
    pub next_up_bps: Option<u64>,
}

impl Allocator {
    /// Allocates `estimate_bps` (the subscriber's downlink estimate) to `audio_bps` and the
    /// videos in `demands`, at `now_ms` (a monotonic clock in ms).
    pub fn allocate(
        &mut self,
        now_ms: u64,
        estimate_bps: u64,
        audio_bps: u64,
        demands: &[VideoDemand],
    ) -> Allocation {
        let mut left = estimate_bps.saturating_sub(audio_bps);
        // One pull goes up (or resumes) per tick: several at once would add their keyframes
        // and rates together, and an estimate that overshoots the link would hit every video.
        // A new pull's first placement is no upgrade.
        let mut upgraded: Option<usize> = None;
        let mut grants: Vec<Option<Grant>> = vec![None; demands.len()];
        let mut order: Vec<usize> = (0..demands.len()).collect();
        // Stable: equal priorities keep the caller's order (e.g. join order).
        order.sort_by_key(|&i| demands[i].priority);

        // Pass 1: the lowest flowing layer of each shown video, most important first.
        for &i in &order {
            let d = &demands[i];
            let Some(max) = d.max_rank else {
                grants[i] = Some(Grant::Paused(PauseReason::NotShown));
                continue;
            };
            let Some(low) = lowest_flowing(d, max) else {
                grants[i] = Some(Grant::Paused(PauseReason::NothingFlows));
                continue;
            };
            let cost = d.layer_bps[low].unwrap_or(0);
            let was_paused = matches!(
                self.previous_of(d.key).map(|p| p.grant),
                Some(Grant::Paused(PauseReason::Bandwidth))
            );
            let was_flowing = matches!(
                self.previous_of(d.key).map(|p| p.grant),
                Some(Grant::Layer(_))
            );
            // Coming back from a bandwidth pause is an upgrade too: margin and hold.
            let fits = if was_paused {
                upgraded.is_none()
                    && self.may_go_up(d.key, now_ms, estimate_bps)
                    && with_margin(cost) <= left
            } else if was_flowing && d.priority <= KEEP_PRIORITY {
                // The speaker's or a screen's lowest layer is paused only for a clear deficit:
                // an estimate dipping for a moment would cost a keyframe wait and the avatar.
                cost.saturating_mul(100 - KEEP_SLACK_PCT) / 100 <= left
            } else if was_flowing {
                cost.saturating_mul(100 - KEEP_SLACK_OTHER_PCT) / 100 <= left
            } else {
                cost <= left
            };
            let cost = cost.min(left);
            if fits && was_paused {
                upgraded = Some(d.key);
            }
            if fits {
                left -= cost;
                grants[i] = Some(Grant::Layer(low));
            } else {
                grants[i] = Some(Grant::Paused(PauseReason::Bandwidth));
            }
        }

        // Pass 2: each granted video up towards its page's wish, most important first.
        for &i in &order {
            let d = &demands[i];
            let Some(Grant::Layer(mut at)) = grants[i] else {
                continue;
            };
            let max = d.max_rank.unwrap_or(0).min(MAX_LAYERS - 1);
            let before = match self.previous_of(d.key).map(|p| p.grant) {
                Some(Grant::Layer(r)) => Some(r),
                _ => None,
            };
            for next in at + 1..=max {
                let Some(next_cost) = d.layer_bps[next] else {
                    continue;
                };
                let extra = next_cost.saturating_sub(d.layer_bps[at].unwrap_or(0));
                // Up to where it was is no upgrade: only its cost must fit.
                let upgrade = before.is_none_or(|b| next > b);
                let fits = if upgrade {
                    upgraded.is_none_or(|k| k == d.key)
                        && self.may_go_up(d.key, now_ms, estimate_bps)
                        && with_margin(extra) <= left
                } else {
                    extra <= left
                };
                if !fits {
                    break;
                }
                if upgrade && before.is_some() {
                    upgraded = Some(d.key);
                }
                left -= extra;
                at = next;
            }
            grants[i] = Some(Grant::Layer(at));
        }

        let grants: Vec<(usize, Grant)> = demands
            .iter()
            .zip(grants)
            .map(|(d, g)| (d.key, g.unwrap_or(Grant::Paused(PauseReason::NotShown))))
            .collect();
        let video_bps = demands
            .iter()
            .zip(&grants)
            .map(|(d, (_, g))| match g {
                Grant::Layer(r) => d.layer_bps[*r].unwrap_or(0),
                Grant::Paused(_) => 0,
            })
            .sum();
        let next_up_bps = next_up(demands, &grants, &order);
        self.remember(now_ms, estimate_bps, &grants);
        Allocation {
            grants,
            video_bps,
            next_up_bps,
        }
    }

    /// A probe made room, or showed the link carries more: every pull may go up at the next
    /// tick (one per tick, as always), and failed upgrades before are forgotten.
    pub fn forgive(&mut self) {
        for p in &mut self.previous {
            p.down_ms = None;
            p.hold_ms = UP_HOLD_MS;
        }
    }

    fn previous_of(&self, key: usize) -> Option<&Previous> {
        self.previous.iter().find(|p| p.key == key)
    }

    fn may_go_up(&self, key: usize, now_ms: u64, estimate_bps: u64) -> bool {
        self.previous_of(key).is_none_or(|p| {
            let risen =
                estimate_bps.saturating_mul(100) >= p.down_estimate.saturating_mul(RISEN_PCT);
            p.down_ms.is_none_or(|down| {
                let waited = now_ms.saturating_sub(down);
                waited >= p.hold_ms || (risen && waited >= UP_HOLD_MS)
            })
        })
    }

    fn remember(&mut self, now_ms: u64, estimate_bps: u64, grants: &[(usize, Grant)]) {
        let previous = std::mem::take(&mut self.previous);
        self.previous = grants
            .iter()
            .map(|&(key, grant)| {
                let old = previous.iter().find(|p| p.key == key);
                let went_down = match (old.map(|p| p.grant), grant) {
                    (Some(Grant::Layer(a)), Grant::Layer(b)) => b < a,
                    (Some(Grant::Layer(_)), Grant::Paused(PauseReason::Bandwidth)) => true,
                    (None, Grant::Paused(PauseReason::Bandwidth)) => true,
                    _ => false,
                };
                let went_up = match (old.map(|p| p.grant), grant) {
                    (Some(Grant::Layer(a)), Grant::Layer(b)) => b > a,
                    (Some(Grant::Paused(PauseReason::Bandwidth)), Grant::Layer(_)) => true,
                    _ => false,
                };
                let up_ms = if went_up {
                    Some(now_ms)
                } else {
                    old.and_then(|p| p.up_ms)
                };
                let mut hold_ms = old.map_or(UP_HOLD_MS, |p| p.hold_ms);
                if went_down {
                    // Down soon after going up: that upgrade failed, wait longer for the next.
                    let failed = up_ms.is_some_and(|u| now_ms.saturating_sub(u) < FAIL_WINDOW_MS);
                    hold_ms = if failed {
                        (hold_ms * 2).min(MAX_HOLD_MS)
                    } else {
                        UP_HOLD_MS
                    };
                }
                let (down_ms, down_estimate) = if went_down {
                    (Some(now_ms), estimate_bps)
                } else {
                    (
                        old.and_then(|p| p.down_ms),
                        old.map_or(0, |p| p.down_estimate),
                    )
                };
                Previous {
                    key,
                    grant,
                    down_ms,
                    up_ms,
                    hold_ms,
                    down_estimate,
                }
            })
            .collect();
    }
}

/// The extra a tick with more room would grant first, margin included.
fn next_up(demands: &[VideoDemand], grants: &[(usize, Grant)], order: &[usize]) -> Option<u64> {
    let resume = order.iter().find_map(|&i| {
        let d = &demands[i];
        matches!(grants[i].1, Grant::Paused(PauseReason::Bandwidth))
            .then(|| lowest_flowing(d, d.max_rank?).and_then(|r| d.layer_bps[r]))
            .flatten()
    });
    let up = || {
        order.iter().find_map(|&i| {
            let d = &demands[i];
            let Grant::Layer(at) = grants[i].1 else {
                return None;
            };
            let max = d.max_rank?.min(MAX_LAYERS - 1);
            let next = (at + 1..=max).find_map(|r| d.layer_bps[r])?;
            Some(next.saturating_sub(d.layer_bps[at].unwrap_or(0)))
        })
    };
    resume.or_else(up).map(with_margin)
}

fn lowest_flowing(d: &VideoDemand, max: usize) -> Option<usize> {
    let flowing = |r: &usize| d.layer_bps[*r].is_some();
    // The lowest flowing layer up to the page's wish, else (only higher ones flow) the lowest
    // flowing at all: a forward never waits for a layer that does not come.
    (0..=max.min(MAX_LAYERS - 1))
        .find(flowing)
        .or_else(|| (0..MAX_LAYERS).find(flowing))
}

fn with_margin(bps: u64) -> u64 {
    bps.saturating_mul(UP_MARGIN_PCT) / 100
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A simulcast camera at lowres: 160x90 / 320x180 / 640x360.
    const CAM: [Option<u64>; MAX_LAYERS] = [Some(60_000), Some(180_000), Some(500_000), None];

    fn video(key: usize, priority: u8, max_rank: Option<usize>) -> VideoDemand {
        VideoDemand {
            key,
            priority,
            max_rank,
            layer_bps: CAM,
        }
    }

    fn layers(a: &Allocation) -> Vec<Grant> {
        a.grants.iter().map(|(_, g)| *g).collect()
    }

    #[test]
    fn a_wide_link_gets_what_every_page_asked_for() {
        let mut al = Allocator::default();
        let a = al.allocate(
            0,
            5_000_000,
            100_000,
            &[
                video(1, 2, Some(2)),
                video(2, 2, Some(1)),
                video(3, 2, Some(0)),
            ],
        );
        assert_eq!(
            layers(&a),
            [Grant::Layer(2), Grant::Layer(1), Grant::Layer(0)]
        );
        assert_eq!(a.video_bps, 740_000);
    }

    #[test]
    fn a_thin_link_keeps_the_speaker_sharpest_and_everyone_visible() {
        let mut al = Allocator::default();
        // 500 kbit/s: audio 100k, then 3 x 60k at the bottom, then the speaker (key 2) up to h.
        let a = al.allocate(
            0,
            500_000,
            100_000,
            &[
                video(1, 2, Some(2)),
                video(2, 1, Some(2)),
                video(3, 2, Some(2)),
            ],
        );
        assert_eq!(
            layers(&a),
            [Grant::Layer(0), Grant::Layer(1), Grant::Layer(0)]
        );
        assert!(a.video_bps <= 400_000);
    }

    #[test]
    fn what_does_not_fit_at_its_lowest_layer_is_paused_for_bandwidth_audio_never() {
        let mut al = Allocator::default();
        let a = al.allocate(
            0,
            200_000,
            100_000,
            &[
                video(1, 2, Some(2)),
                video(2, 0, Some(2)),
                video(3, 2, Some(2)),
            ],
        );
        assert_eq!(
            layers(&a),
            [
                Grant::Paused(PauseReason::Bandwidth),
                Grant::Layer(0),
                Grant::Paused(PauseReason::Bandwidth)
            ]
        );
        // Below audio alone: every video paused, nothing negative.
        let a = al.allocate(100, 50_000, 100_000, &[video(2, 0, Some(2))]);
        assert_eq!(layers(&a), [Grant::Paused(PauseReason::Bandwidth)]);
        assert_eq!(a.video_bps, 0);
    }

    #[test]
    fn a_hidden_tile_gets_nothing_and_frees_its_share() {
        let mut al = Allocator::default();
        let a = al.allocate(
            0,
            700_000,
            100_000,
            &[video(1, 2, None), video(2, 2, Some(2))],
        );
        assert_eq!(
            layers(&a),
            [Grant::Paused(PauseReason::NotShown), Grant::Layer(2)]
        );
    }

    #[test]
    fn a_publisher_whose_low_layers_pause_is_still_seen_on_what_flows() {
        let mut al = Allocator::default();
        let only_top = VideoDemand {
            key: 1,
            priority: 2,
            max_rank: Some(0),
            layer_bps: [None, None, Some(500_000), None],
        };
        let a = al.allocate(0, 2_000_000, 0, &[only_top]);
        assert_eq!(layers(&a), [Grant::Layer(2)]);
        let nothing = VideoDemand {
            key: 1,
            priority: 2,
            max_rank: Some(2),
            layer_bps: [None; MAX_LAYERS],
        };
        let a = al.allocate(100, 2_000_000, 0, &[nothing]);
        assert_eq!(layers(&a), [Grant::Paused(PauseReason::NothingFlows)]);
    }

    #[test]
    fn down_at_once_up_only_with_a_margin_and_after_a_hold() {
        let mut al = Allocator::default();
        let d = [video(1, 1, Some(2))];
        assert_eq!(layers(&al.allocate(0, 600_000, 0, &d)), [Grant::Layer(2)]);
        // The estimate drops: down at once.
        assert_eq!(layers(&al.allocate(500, 300_000, 0, &d)), [Grant::Layer(1)]);
        // It comes back at once: still held for 2 s after the downgrade.
        assert_eq!(
            layers(&al.allocate(1_000, 600_000, 0, &d)),
            [Grant::Layer(1)]
        );
        // After the hold, an estimate just at the cost is not enough (margin 15 %)...
        assert_eq!(
            layers(&al.allocate(2_600, 500_000, 0, &d)),
            [Grant::Layer(1)]
        );
        // ...one with the margin is.
        assert_eq!(
            layers(&al.allocate(2_700, 600_000, 0, &d)),
            [Grant::Layer(2)]
        );
    }

    #[test]
    fn a_long_hold_ends_once_the_estimate_has_clearly_risen() {
        let d = [video(1, 1, Some(2))];
        // Up and down twice within the fail window, down at 480k: the hold doubled (4 s).
        let failing = || {
            let mut al = Allocator::default();
            let mut t = 0;
            for _ in 0..2 {
                assert_eq!(layers(&al.allocate(t, 600_000, 0, &d)), [Grant::Layer(2)]);
                assert_eq!(
                    layers(&al.allocate(t + 500, 480_000, 0, &d)),
                    [Grant::Layer(1)]
                );
                t += 4_500;
            }
            al
        };
        // 3 s after the last drop, 25 % over the estimate at the drop: held.
        assert_eq!(
            layers(&failing().allocate(8_000, 600_000, 0, &d)),
            [Grant::Layer(1)]
        );
        // 33 % over: up, though not within 2 s of the drop.
        let mut al = failing();
        assert_eq!(
            layers(&al.allocate(6_000, 640_000, 0, &d)),
            [Grant::Layer(1)]
        );
        assert_eq!(
            layers(&al.allocate(8_000, 640_000, 0, &d)),
            [Grant::Layer(2)]
        );
    }

    #[test]
    fn a_flowing_lowest_layer_survives_a_small_dip_the_speakers_a_larger_one_not_a_clear_deficit() {
        let mut al = Allocator::default();
        let d = [video(1, 1, Some(0)), video(2, 2, Some(0))];
        assert_eq!(
            layers(&al.allocate(0, 300_000, 100_000, &d)),
            [Grant::Layer(0), Grant::Layer(0)]
        );
        // 50k left for two layers of 60k: the speaker stays, the other pauses.
        assert_eq!(
            layers(&al.allocate(250, 150_000, 100_000, &d)),
            [Grant::Layer(0), Grant::Paused(PauseReason::Bandwidth)]
        );
        // Another flowing video, 10 % short, stays; 20 % short, pauses.
        let mut al2 = Allocator::default();
        let one = [video(2, 2, Some(0))];
        assert_eq!(
            layers(&al2.allocate(0, 200_000, 100_000, &one)),
            [Grant::Layer(0)]
        );
        assert_eq!(
            layers(&al2.allocate(250, 154_000, 100_000, &one)),
            [Grant::Layer(0)]
        );
        assert_eq!(
            layers(&al2.allocate(500, 148_000, 100_000, &one)),
            [Grant::Paused(PauseReason::Bandwidth)]
        );
        // 30k left: a clear deficit, the speaker pauses too.
        assert_eq!(
            layers(&al.allocate(500, 130_000, 100_000, &d)),
            [
                Grant::Paused(PauseReason::Bandwidth),
                Grant::Paused(PauseReason::Bandwidth)
            ]
        );
    }

    #[test]
    fn it_says_what_the_next_upgrade_needs() {
        let mut al = Allocator::default();
        let d = [video(1, 2, Some(2)), video(2, 1, Some(2))];
        // The speaker (key 2) on q, the other paused: resuming the other comes first.
        let a = al.allocate(0, 100_000, 0, &d);
        assert_eq!(
            layers(&a),
            [Grant::Paused(PauseReason::Bandwidth), Grant::Layer(0)]
        );
        assert_eq!(a.next_up_bps, Some(69_000));
        // Both on q: the speaker's h next (120k more).
        let a = al.allocate(5_000, 130_000, 0, &d);
        assert_eq!(layers(&a), [Grant::Layer(0), Grant::Layer(0)]);
        assert_eq!(a.next_up_bps, Some(138_000));
        // Everything as asked (one upgrade per tick): nothing next.
        let a = (0..4)
            .map(|i| al.allocate(10_000 + i * 250, 5_000_000, 0, &d))
            .last()
            .unwrap();
        assert_eq!(layers(&a), [Grant::Layer(2), Grant::Layer(2)]);
        assert_eq!(a.next_up_bps, None);
    }

    #[test]
    fn a_probe_that_held_lifts_the_holds() {
        let mut al = Allocator::default();
        let d = [video(1, 1, Some(2))];
        assert_eq!(layers(&al.allocate(0, 600_000, 0, &d)), [Grant::Layer(2)]);
        assert_eq!(layers(&al.allocate(500, 300_000, 0, &d)), [Grant::Layer(1)]);
        assert_eq!(layers(&al.allocate(800, 600_000, 0, &d)), [Grant::Layer(1)]);
        // A probe held: the link carries more than when the pull went down.
        al.forgive();
        assert_eq!(layers(&al.allocate(900, 600_000, 0, &d)), [Grant::Layer(2)]);
    }

    #[test]
    fn a_video_paused_for_bandwidth_comes_back_only_after_the_hold() {
        let mut al = Allocator::default();
        let d = [video(1, 2, Some(0))];
        assert_eq!(
            layers(&al.allocate(0, 40_000, 0, &d)),
            [Grant::Paused(PauseReason::Bandwidth)]
        );
        assert_eq!(
            layers(&al.allocate(1_000, 100_000, 0, &d)),
            [Grant::Paused(PauseReason::Bandwidth)]
        );
        assert_eq!(
            layers(&al.allocate(2_100, 100_000, 0, &d)),
            [Grant::Layer(0)]
        );
    }

    #[test]
    fn an_upgrade_that_fails_again_and_again_is_tried_ever_less_often() {
        let mut al = Allocator::default();
        let d = [video(1, 1, Some(2))];
        assert_eq!(layers(&al.allocate(0, 600_000, 0, &d)), [Grant::Layer(2)]);
        // The link carries h only; the estimate keeps climbing past f's cost and falling back
        // (by less than 30 %: a clear rise ends a hold after 2 s).
        assert_eq!(layers(&al.allocate(500, 480_000, 0, &d)), [Grant::Layer(1)]);
        assert_eq!(
            layers(&al.allocate(2_500, 600_000, 0, &d)),
            [Grant::Layer(2)]
        );
        // Down 1 s after that upgrade: it failed; the next waits 4 s, not 2.
        assert_eq!(
            layers(&al.allocate(3_500, 480_000, 0, &d)),
            [Grant::Layer(1)]
        );
        assert_eq!(
            layers(&al.allocate(6_000, 600_000, 0, &d)),
            [Grant::Layer(1)]
        );
        assert_eq!(
            layers(&al.allocate(7_500, 600_000, 0, &d)),
            [Grant::Layer(2)]
        );
        // Fails again: 8 s.
        assert_eq!(
            layers(&al.allocate(8_000, 480_000, 0, &d)),
            [Grant::Layer(1)]
        );
        assert_eq!(
            layers(&al.allocate(15_000, 600_000, 0, &d)),
            [Grant::Layer(1)]
        );
        assert_eq!(
            layers(&al.allocate(16_000, 600_000, 0, &d)),
            [Grant::Layer(2)]
        );
        // This time it holds; a later drop (a real change of the link) waits 2 s again.
        assert_eq!(
            layers(&al.allocate(30_000, 480_000, 0, &d)),
            [Grant::Layer(1)]
        );
        assert_eq!(
            layers(&al.allocate(32_100, 600_000, 0, &d)),
            [Grant::Layer(2)]
        );
    }

    #[test]
    fn one_video_goes_up_per_tick() {
        let mut al = Allocator::default();
        let d = [video(1, 1, Some(2)), video(2, 2, Some(2))];
        assert_eq!(
            layers(&al.allocate(0, 300_000, 0, &d)),
            [Grant::Layer(1), Grant::Layer(0)]
        );
        // Room for both to climb: the speaker first, the other at the next tick.
        assert_eq!(
            layers(&al.allocate(250, 5_000_000, 0, &d)),
            [Grant::Layer(2), Grant::Layer(0)]
        );
        assert_eq!(
            layers(&al.allocate(500, 5_000_000, 0, &d)),
            [Grant::Layer(2), Grant::Layer(2)]
        );
    }

    #[test]
    fn keeping_a_layer_needs_no_margin() {
        let mut al = Allocator::default();
        let d = [video(1, 1, Some(2))];
        assert_eq!(layers(&al.allocate(0, 600_000, 0, &d)), [Grant::Layer(2)]);
        // 510 kbit/s: h->f would need 575k, but staying on f needs only f's cost.
        assert_eq!(layers(&al.allocate(500, 510_000, 0, &d)), [Grant::Layer(2)]);
    }
}
