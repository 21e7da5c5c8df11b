//! Which simulcast layers a publisher is actually sending. Browsers pause upper layers when short
//! of bandwidth or CPU (or thin them to a few frames per second); a subscriber that prefers such
//! a layer is given the best layer that does arrive instead, and goes back up once the preferred
//! one flows again.
//!
//! One [`LayerTracker`] per pushed track, owned by its ingest task and updated for every packet
//! (no lock, no allocation); it hands each subscriber a [`LayerView`] snapshot.

/// Most simulcast layers tracked per track (browsers send three).
pub const MAX_LAYERS: usize = 4;
/// A layer with no packet for this long is paused, whatever its frame rate.
const STALE_MS: u64 = 500;
/// A layer with a known frame rate is paused after this many frame intervals without a packet
/// (at least `MIN_STALE_MS`): at 20 fps 200 ms, so its subscribers move to a layer that still
/// flows 300 ms sooner. A layer that comes back counts again only after `RESUME_MS`, so a jittery
/// publisher costs a lower layer for a second, not a switch per hiccup.
const STALE_FRAMES_X10: u64 = 35;
const MIN_STALE_MS: u64 = 200;
/// A layer back from a pause counts again once it has flowed this long (no flapping on a
/// publisher that sends a burst now and then).
const RESUME_MS: u64 = 1000;
/// Frame-rate window, and the rate under which a layer is starved (when another one is not).
const WINDOW_MS: u64 = 1000;
const MIN_FPS: u64 = 4;

#[derive(Clone, Copy, Debug, Default)]
struct Layer {
    ssrc: Option<u32>,
    seen: bool,
    last_ms: u64,
    /// Start of the current run without a pause.
    since_ms: u64,
    /// This run followed a pause.
    resumed: bool,
    last_ts: u32,
    frames: u64,
    window_start_ms: u64,
    /// Frames per second over the last full window of this run.
    fps: Option<u64>,
}

impl Layer {
    /// How long without a packet makes this layer paused (see `STALE_FRAMES_X10`).
    fn stale_ms(&self) -> u64 {
        match self.fps {
            Some(f) if f > 0 => (STALE_FRAMES_X10 * 100 / f).clamp(MIN_STALE_MS, STALE_MS),
            _ => STALE_MS,
        }
    }
}

/// Per-track layer state; ranks are the publisher's rid order (browsers offer low to high).
#[derive(Debug, Default)]
pub struct LayerTracker {
    layers: [Layer; MAX_LAYERS],
}

impl LayerTracker {
    /// The publisher's layer of rank `rank` is sent on `ssrc`.
    pub fn set_ssrc(&mut self, rank: usize, ssrc: u32) {
        if let Some(l) = self.layers.get_mut(rank) {
            if l.ssrc != Some(ssrc) {
                *l = Layer::default();
            }
            l.ssrc = Some(ssrc);
        }
    }

    /// Records a packet of `ssrc` with RTP timestamp `ts` arriving at `now_ms` (a monotonic
    /// clock in ms), and returns what every layer looks like now.
    pub fn on_packet(&mut self, ssrc: u32, ts: u32, now_ms: u64) -> LayerView {
        if let Some(l) = self.layers.iter_mut().find(|l| l.ssrc == Some(ssrc)) {
            if !l.seen || now_ms.saturating_sub(l.last_ms) > l.stale_ms() {
                l.resumed = l.seen;
                l.since_ms = now_ms;
                l.window_start_ms = now_ms;
                l.frames = 0;
                l.fps = None;
                l.last_ts = ts.wrapping_sub(1);
            }
            l.seen = true;
            l.last_ms = now_ms;
            if ts != l.last_ts {
                l.frames += 1;
                l.last_ts = ts;
            }
            let span = now_ms - l.window_start_ms;
            if span >= WINDOW_MS {
                l.fps = Some(l.frames * 1000 / span);
                l.frames = 0;
                l.window_start_ms = now_ms;
            }
        }
        self.view(now_ms)
    }

    pub fn view(&self, now_ms: u64) -> LayerView {
        let mut v = LayerView::default();
        for (i, l) in self.layers.iter().enumerate() {
            let Some(ssrc) = l.ssrc else { continue };
            v.ssrc[i] = Some(ssrc);
            let fresh = l.seen && now_ms.saturating_sub(l.last_ms) <= l.stale_ms();
            let settled = !l.resumed || now_ms.saturating_sub(l.since_ms) >= RESUME_MS;
            if fresh && settled {
                v.usable |= 1 << i;
                if l.fps.is_none_or(|f| f >= MIN_FPS) {
                    v.smooth |= 1 << i;
                }
            }
        }
        v
    }
}

/// The layers of one track as seen when a packet arrived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerView {
    ssrc: [Option<u32>; MAX_LAYERS],
    /// Bit per rank: arriving (and, after a pause, steadily again).
    usable: u8,
    /// Bit per rank: usable and not starved of frames.
    smooth: u8,
}

impl LayerView {
    pub fn rank_of(&self, ssrc: u32) -> Option<usize> {
        self.ssrc.iter().position(|s| *s == Some(ssrc))
    }

    /// The layer to forward to a subscriber that prefers rank `pref`: that one if it flows,
    /// else the best one below it that flows, else the lowest one above it; a layer with a
    /// steady frame rate beats a starved one. None: nothing flows.
    pub fn pick(&self, pref: usize) -> Option<u32> {
        let pref = pref.min(MAX_LAYERS - 1);
        let order = (0..=pref).rev().chain(pref + 1..MAX_LAYERS);
        for mask in [self.smooth, self.usable] {
            for r in order.clone() {
                if mask & (1 << r) != 0 {
                    return self.ssrc[r];
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> LayerTracker {
        let mut t = LayerTracker::default();
        for (rank, ssrc) in [(0, 10), (1, 11), (2, 12)] {
            t.set_ssrc(rank, ssrc);
        }
        t
    }

    /// Sends one frame on each listed layer at `now`.
    fn frame(t: &mut LayerTracker, ssrcs: &[u32], now: u64) -> LayerView {
        let mut v = t.view(now);
        for s in ssrcs {
            v = t.on_packet(*s, (now * 90) as u32, now);
        }
        v
    }

    #[test]
    fn preferred_layer_while_it_flows_then_the_best_below_then_back_up() {
        let mut t = tracker();
        let mut now = 0;
        let mut v = LayerView::default();
        while now < 2000 {
            v = frame(&mut t, &[10, 11, 12], now);
            now += 33;
        }
        assert_eq!(v.pick(1), Some(11));
        assert_eq!(v.pick(2), Some(12));
        // h and f pause: h's subscribers fall back to q once h is stale (at 30 fps, 200 ms).
        while now < 2100 {
            v = frame(&mut t, &[10], now);
            now += 33;
        }
        assert_eq!(v.pick(1), Some(11), "not stale yet");
        while now < 3000 {
            v = frame(&mut t, &[10], now);
            now += 33;
        }
        assert_eq!(v.pick(1), Some(10));
        assert_eq!(v.pick(2), Some(10));
        // h resumes: back up only after it has flowed steadily for a while.
        let resumed = now;
        while now < resumed + 500 {
            v = frame(&mut t, &[10, 11], now);
            now += 33;
        }
        assert_eq!(v.pick(1), Some(10));
        while now < resumed + 1100 {
            v = frame(&mut t, &[10, 11], now);
            now += 33;
        }
        assert_eq!(v.pick(1), Some(11));
        assert_eq!(
            v.pick(2),
            Some(11),
            "f still paused: h is the best that flows"
        );
        assert_eq!(v.pick(0), Some(10));
    }

    #[test]
    fn a_steady_layer_that_stops_is_paused_after_a_few_frame_intervals() {
        let mut t = tracker();
        let mut now = 0;
        // 20 fps on q and h for 2 s: their frame rates are known.
        while now < 2000 {
            frame(&mut t, &[10, 11], now);
            now += 50;
        }
        let stopped = now;
        // h stops; 150 ms later it still counts, 250 ms later it is paused (not 500 ms).
        while now < stopped + 150 {
            frame(&mut t, &[10], now);
            now += 50;
        }
        assert_eq!(t.view(now).pick(1), Some(11));
        while now < stopped + 250 {
            frame(&mut t, &[10], now);
            now += 50;
        }
        assert_eq!(t.view(now).pick(1), Some(10));
    }

    #[test]
    fn a_layer_above_when_nothing_below_flows() {
        let mut t = tracker();
        let v = frame(&mut t, &[12], 0);
        assert_eq!(v.pick(0), Some(12));
        assert_eq!(LayerView::default().pick(1), None);
    }

    #[test]
    fn a_starved_layer_gives_way_to_a_smooth_one() {
        let mut t = tracker();
        let mut v = LayerView::default();
        // q at 30 fps, h at 2 fps (a new frame every 400 ms: never stale).
        for i in 0..100u64 {
            let now = i * 33;
            v = t.on_packet(10, (now * 90) as u32, now);
            if i % 12 == 0 {
                v = t.on_packet(11, (now * 90) as u32, now);
            } else if i % 12 == 6 {
                // Another packet of the same h frame.
                let frame_start = (i - 6) * 33;
                v = t.on_packet(11, (frame_start * 90) as u32, now);
            }
        }
        assert_eq!(v.pick(1), Some(10));
    }
}
