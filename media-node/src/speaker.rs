//! Dominant speaker per room from RFC 6464 audio levels: a smoothed loudness per participant,
//! and a switch only when someone is clearly louder than the current speaker for a while.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Smoothing per packet (audio packets come every 20 ms: about a 0.4 s time constant).
const ALPHA: f32 = 0.05;
/// Smoothed loudness (127 - dBov) under which nobody counts as speaking (about -60 dBov).
const SPEAKING_MIN: f32 = 67.0;
/// How much louder (dB) a challenger must be to take over.
const MARGIN: f32 = 6.0;
/// Levels older than this are stale (muted or gone).
const STALE: Duration = Duration::from_millis(1500);

#[derive(Default)]
struct RoomSpeakers {
    route: String,
    levels: HashMap<String, (f32, Instant)>,
    current: Option<String>,
}

#[derive(Default)]
pub struct SpeakerTracker {
    rooms: HashMap<String, RoomSpeakers>,
}

/// A change to report: (route, room, participant).
pub type SpeakerChange = (String, String, String);

impl SpeakerTracker {
    /// `level` is the RFC 6464 value: 0 loudest, 127 silence.
    pub fn observe(&mut self, room: &str, route: &str, participant: &str, level: u8, now: Instant) {
        let r = self.rooms.entry(room.to_owned()).or_default();
        if r.route.is_empty() {
            r.route = route.to_owned();
        }
        let loud = 127.0 - f32::from(level.min(127));
        let e = r.levels.entry(participant.to_owned()).or_insert((0.0, now));
        e.0 += ALPHA * (loud - e.0);
        e.1 = now;
    }

    pub fn forget_participant(&mut self, room: &str, participant: &str) {
        if let Some(r) = self.rooms.get_mut(room) {
            r.levels.remove(participant);
            if r.current.as_deref() == Some(participant) {
                r.current = None;
            }
        }
    }

    pub fn forget_room(&mut self, room: &str) {
        self.rooms.remove(room);
    }

    /// The room's dominant speaker now (the allocator serves them first).
    pub fn current(&self, room: &str) -> Option<&str> {
        self.rooms.get(room)?.current.as_deref()
    }

    /// Re-evaluates every room; returns the changes to report.
    pub fn tick(&mut self, now: Instant) -> Vec<SpeakerChange> {
        let mut out = Vec::new();
        for (room, r) in &mut self.rooms {
            let live = |p: &(f32, Instant)| now.duration_since(p.1) < STALE;
            let Some((cand, level)) = r
                .levels
                .iter()
                .filter(|(_, v)| live(v) && v.0 >= SPEAKING_MIN)
                .max_by(|a, b| a.1.0.total_cmp(&b.1.0))
                .map(|(k, v)| (k.clone(), v.0))
            else {
                continue;
            };
            if r.current.as_deref() == Some(cand.as_str()) {
                continue;
            }
            let current_level = r
                .current
                .as_ref()
                .and_then(|c| r.levels.get(c))
                .filter(|v| live(v))
                .map(|v| v.0)
                .unwrap_or(0.0);
            if level >= current_level + MARGIN || current_level < SPEAKING_MIN {
                r.current = Some(cand.clone());
                out.push((r.route.clone(), room.clone(), cand));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loudest_takes_over_with_hysteresis() {
        let mut t = SpeakerTracker::default();
        let now = Instant::now();
        for _ in 0..100 {
            t.observe("m", "r", "a", 20, now);
            t.observe("m", "r", "b", 110, now);
        }
        assert_eq!(t.tick(now), vec![("r".into(), "m".into(), "a".into())]);
        assert!(t.tick(now).is_empty());
        // b only slightly louder than a: no switch.
        for _ in 0..200 {
            t.observe("m", "r", "b", 17, now);
        }
        assert!(t.tick(now).is_empty());
        for _ in 0..200 {
            t.observe("m", "r", "a", 127, now);
        }
        assert_eq!(t.tick(now)[0].2, "b");
    }
}
