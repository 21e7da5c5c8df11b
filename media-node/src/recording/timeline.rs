//! RTP time to file time. Each track's clock (90 kHz video, 48 kHz audio) is unwrapped past
//! 2^32 and anchored at the arrival of its first packet, measured from the recording's start;
//! so every track of every file shares one time base (the recording start) and tracks that
//! start late (a keyframe wait, a late joiner) start late in the file too.

use std::time::Instant;

pub struct Timeline {
    clock_rate: u32,
    /// (first unwrapped timestamp, its file time in ms).
    anchor: Option<(i64, i64)>,
    last: u32,
    unwrapped: i64,
    /// Last file time handed out: file times never go backwards within a track.
    last_ms: i64,
}

impl Timeline {
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            anchor: None,
            last: 0,
            unwrapped: 0,
            last_ms: 0,
        }
    }

    /// Extends a 32-bit timestamp; steps under half the range either way are taken as
    /// forward or backward (reordering), so a wrap from 2^32-1 to 0 is a step of one.
    fn unwrap(&mut self, ts: u32) -> i64 {
        if self.anchor.is_none() {
            self.last = ts;
            self.unwrapped = i64::from(ts);
            return self.unwrapped;
        }
        let step = ts.wrapping_sub(self.last) as i32;
        self.last = ts;
        self.unwrapped += i64::from(step);
        self.unwrapped
    }

    /// Sees a packet arriving at `arrival` (recording started at `start`); anchors the track
    /// on its first packet.
    pub fn observe(&mut self, ts: u32, start: Instant, arrival: Instant) {
        let u = self.unwrap(ts);
        if self.anchor.is_none() {
            let ms = arrival.saturating_duration_since(start).as_millis() as i64;
            self.anchor = Some((u, ms));
            self.last_ms = ms;
        }
    }

    /// The track goes on with another RTP stream (a simulcast layer switch: its own timestamp
    /// base): anchored again at this packet's arrival, never before what was handed out.
    pub fn restart(&mut self, ts: u32, start: Instant, arrival: Instant) {
        let kept = self.last_ms;
        self.anchor = None;
        self.observe(ts, start, arrival);
        if let Some((t0, ms0)) = self.anchor.as_mut() {
            let _ = t0;
            *ms0 = (*ms0).max(kept);
        }
        self.last_ms = self.last_ms.max(kept);
    }

    /// File time (ms) of timestamp `ts` (already observed or close to the last one).
    pub fn ms(&mut self, ts: u32) -> i64 {
        let Some((t0, ms0)) = self.anchor else {
            return 0;
        };
        let step = ts.wrapping_sub(self.last) as i32;
        let u = self.unwrapped + i64::from(step);
        let ms = ms0 + (u - t0) * 1000 / i64::from(self.clock_rate);
        let ms = ms.max(self.last_ms).max(0);
        self.last_ms = ms;
        ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_new_stream_goes_on_from_its_arrival_and_never_back() {
        let start = Instant::now();
        let mut t = Timeline::new(90_000);
        t.observe(1_000, start, start + Duration::from_millis(100));
        assert_eq!(t.ms(1_000 + 90_000), 1_100);
        // Another layer, another timestamp base, arriving at 1.2 s.
        t.restart(5_000_000, start, start + Duration::from_millis(1_200));
        assert_eq!(t.ms(5_000_000), 1_200);
        assert_eq!(t.ms(5_000_000 + 9_000), 1_300);
        // One arriving early by the clock still never goes back.
        t.restart(7, start, start + Duration::from_millis(50));
        assert_eq!(t.ms(7), 1_300);
    }

    #[test]
    fn wraps_and_clock_rates() {
        let start = Instant::now();
        let mut v = Timeline::new(90_000);
        let t0 = u32::MAX - 1_500;
        v.observe(t0, start, start + Duration::from_millis(250));
        assert_eq!(v.ms(t0), 250);
        let t1 = t0.wrapping_add(90_000); // one second later, past the wrap
        v.observe(t1, start, start + Duration::from_millis(1250));
        assert_eq!(v.ms(t1), 1250);
        let mut a = Timeline::new(48_000);
        a.observe(1000, start, start);
        a.observe(1000 + 48_000 * 3, start, start);
        assert_eq!(a.ms(1000 + 48_000 * 3), 3000);
        // A reordered, older timestamp does not go back in file time.
        a.observe(1000 + 48_000, start, start);
        assert_eq!(a.ms(1000 + 48_000), 3000);
    }
}
