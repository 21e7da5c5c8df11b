//! When the node asks a publisher for a keyframe, per simulcast layer. Pure: time comes in.
//!
//! Chromium honours one keyframe request per 300 ms per sender, whichever of its simulcast layers
//! it names, and drops the others without a word. Two subscribers waiting for keyframes on two
//! layers, each asking again every interval, could so take turns forever with the second request
//! always eaten. Here a request that falls in the publisher's window waits its turn (sent when the
//! window opens) instead of being sent to be dropped; and one layer is asked at most once per
//! `layer_interval` (a subscriber whose decoder cannot cope must not make the publisher send
//! nothing but keyframes).

use std::collections::VecDeque;

/// Chromium's minimum time between two keyframe requests it acts on, per sender, plus a margin
/// for the request's way there.
pub const PUBLISHER_WINDOW_MS: u64 = 320;

/// At most one keyframe request per publisher layer in this interval.
pub const LAYER_INTERVAL_MS: u64 = 500;
/// For a pull younger than `YOUNG_MS`, the interval is this short: a participant who just pulled
/// a video waits for its first keyframe, which another puller's request of a moment ago may have
/// brought before this one could receive it. A storm from one puller still reaches the
/// publisher at most once per `LAYER_INTERVAL_MS` after its first seconds. A pull waiting for a
/// keyframe to switch layers asks this often too (each frame without one is a frozen frame).
pub const YOUNG_LAYER_INTERVAL_MS: u64 = 100;
pub const YOUNG_MS: u64 = 3000;

/// What became of a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send a keyframe request for this layer now.
    Send,
    /// Waits for the publisher's window; [`KeyframeRequests::due`] hands it out.
    Queued,
    /// Asked for too recently (or already waiting): nothing to do.
    Suppressed,
}

#[derive(Debug, Default)]
pub struct KeyframeRequests {
    /// When a request last went to the publisher (ms).
    last_sent: Option<u64>,
    /// When each layer was last asked for (ssrc, ms).
    layers: Vec<(u32, u64)>,
    /// Layers waiting for the window, oldest first.
    queue: VecDeque<u32>,
}

impl KeyframeRequests {
    /// A keyframe is wanted on layer `ssrc` at `now_ms`; the same layer is asked at most once per
    /// `layer_interval_ms`.
    pub fn request(&mut self, ssrc: u32, now_ms: u64, layer_interval_ms: u64) -> Outcome {
        if self.queue.contains(&ssrc) {
            return Outcome::Suppressed;
        }
        if let Some((_, at)) = self.layers.iter().find(|(s, _)| *s == ssrc)
            && now_ms.saturating_sub(*at) < layer_interval_ms
        {
            return Outcome::Suppressed;
        }
        if self.window_open(now_ms) && self.queue.is_empty() {
            self.sent(ssrc, now_ms);
            Outcome::Send
        } else {
            self.queue.push_back(ssrc);
            Outcome::Queued
        }
    }

    /// The queued layer to ask for now, if the window is open (call often: on every packet).
    pub fn due(&mut self, now_ms: u64) -> Option<u32> {
        if self.queue.is_empty() || !self.window_open(now_ms) {
            return None;
        }
        let ssrc = self.queue.pop_front()?;
        self.sent(ssrc, now_ms);
        Some(ssrc)
    }

    /// A layer gone (the publisher renumbered it): forget its requests.
    pub fn forget(&mut self, ssrc: u32) {
        self.queue.retain(|s| *s != ssrc);
        self.layers.retain(|(s, _)| *s != ssrc);
    }

    fn window_open(&self, now_ms: u64) -> bool {
        self.last_sent
            .is_none_or(|t| now_ms.saturating_sub(t) >= PUBLISHER_WINDOW_MS)
    }

    fn sent(&mut self, ssrc: u32, now_ms: u64) {
        self.last_sent = Some(now_ms);
        match self.layers.iter_mut().find(|(s, _)| *s == ssrc) {
            Some(l) => l.1 = now_ms,
            None => self.layers.push((ssrc, now_ms)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_layers_asked_at_once_are_both_asked_one_window_apart() {
        let mut k = KeyframeRequests::default();
        assert_eq!(k.request(1, 0, 500), Outcome::Send);
        assert_eq!(k.request(2, 10, 500), Outcome::Queued);
        assert_eq!(k.due(100), None, "inside the publisher's window");
        assert_eq!(k.due(PUBLISHER_WINDOW_MS), Some(2));
        assert_eq!(k.due(PUBLISHER_WINDOW_MS + 1), None);
    }

    #[test]
    fn two_subscribers_asking_in_lockstep_both_get_their_layer() {
        // Each asks for its layer every 500 ms, 10 ms apart: with independent limits the second
        // request would always fall in the publisher's window and be dropped there.
        let mut k = KeyframeRequests::default();
        let mut sent = Vec::new();
        for now in 0..3000u64 {
            if now % 500 == 0 && k.request(1, now, 500) == Outcome::Send {
                sent.push((1, now));
            }
            if now % 500 == 10 && k.request(2, now, 500) == Outcome::Send {
                sent.push((2, now));
            }
            if let Some(s) = k.due(now) {
                sent.push((s, now));
            }
        }
        assert!(sent.iter().any(|(s, _)| *s == 2), "layer 2 asked: {sent:?}");
        for w in sent.windows(2) {
            assert!(w[1].1 - w[0].1 >= PUBLISHER_WINDOW_MS, "{sent:?}");
        }
    }

    #[test]
    fn a_layer_is_asked_at_most_once_per_interval() {
        let mut k = KeyframeRequests::default();
        assert_eq!(k.request(1, 0, 500), Outcome::Send);
        for t in (1..500).step_by(7) {
            assert_eq!(k.request(1, t, 500), Outcome::Suppressed);
        }
        assert_eq!(k.request(1, 500, 500), Outcome::Send);
        // A young pull's shorter interval.
        assert_eq!(k.request(1, 900, 100), Outcome::Send);
    }

    #[test]
    fn a_queued_layer_is_not_queued_twice() {
        let mut k = KeyframeRequests::default();
        assert_eq!(k.request(1, 0, 100), Outcome::Send);
        assert_eq!(k.request(2, 1, 100), Outcome::Queued);
        assert_eq!(k.request(2, 2, 100), Outcome::Suppressed);
        k.forget(2);
        assert_eq!(k.due(1000), None);
    }
}
