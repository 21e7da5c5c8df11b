//! Dynacast (issue 18): a publisher encodes only the simulcast layers some viewer needs. Pure:
//! the media loop computes, per simulcast publication and allocation tick, the highest layer
//! (rank) any shown pull would take at the layer its page asked for and its tile needs (the
//! viewer's bandwidth does not count: a layer one viewer cannot carry another may), and
//! [`SentLayers::step`] says when the publisher's page is to be told which layers to send.
//!
//! - The lowest layer is always sent: a viewer who joins starts on it without waiting for a
//!   round trip to the publisher's page and a keyframe.
//! - A layer that became needed is asked for at once; one no longer needed is turned off after
//!   [`OFF_AFTER_MS`] (a tile resized or pinned for a moment does not make the publisher's
//!   encoder restart a layer).
//! - Nothing is turned off in a publication's first [`WARM_UP_MS`]: the node learns each
//!   layer's height from its keyframes, and a tile's layer comes from those heights.
//! - What holds while layers are off is said again every [`RETELL_MS`]: an event lost on the
//!   way (the edge restarting, the page reconnecting) costs a layer for that long at most.

/// Layers no viewer needs for this long are turned off.
pub const OFF_AFTER_MS: u64 = 3_000;
/// A new publication sends every layer for this long.
pub const WARM_UP_MS: u64 = 5_000;
/// While layers are off, the publisher is told again this often.
pub const RETELL_MS: u64 = 15_000;

/// The layers a simulcast publication's page is asked to send: ranks `0..=top`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentLayers {
    /// Offered layers (the publisher's rids).
    layers: usize,
    /// The highest layer sent (the page's initial state: all).
    top: usize,
    born_ms: u64,
    /// Since when fewer layers than sent have been needed.
    lower_since: Option<u64>,
    told_ms: Option<u64>,
}

impl SentLayers {
    pub fn new(layers: usize, now_ms: u64) -> Self {
        let layers = layers.max(1);
        Self {
            layers,
            top: layers - 1,
            born_ms: now_ms,
            lower_since: None,
            told_ms: None,
        }
    }

    /// The highest layer the page sends (as far as it was told).
    pub fn top(&self) -> usize {
        self.top
    }

    /// `needed`: the highest layer a viewer needs now (`None`: no viewer shows it). Returns
    /// the highest layer the page is to send from now on, when it is to be told.
    pub fn step(&mut self, needed: Option<usize>, now_ms: u64) -> Option<usize> {
        let mut needed = needed.unwrap_or(0).min(self.layers - 1);
        if now_ms.saturating_sub(self.born_ms) < WARM_UP_MS {
            needed = self.layers - 1;
        }
        if needed > self.top {
            self.top = needed;
            self.lower_since = None;
            return Some(self.tell(now_ms));
        }
        if needed < self.top {
            let since = *self.lower_since.get_or_insert(now_ms);
            if now_ms.saturating_sub(since) >= OFF_AFTER_MS {
                self.top = needed;
                self.lower_since = None;
                return Some(self.tell(now_ms));
            }
        } else {
            self.lower_since = None;
        }
        let retell = self.top < self.layers - 1
            && self
                .told_ms
                .is_some_and(|t| now_ms.saturating_sub(t) >= RETELL_MS);
        retell.then(|| self.tell(now_ms))
    }

    fn tell(&mut self, now_ms: u64) -> usize {
        self.told_ms = Some(now_ms);
        self.top
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layer_is_sent_while_the_publication_is_young() {
        let mut s = SentLayers::new(3, 1_000);
        for t in (1_000..1_000 + WARM_UP_MS).step_by(250) {
            assert_eq!(s.step(Some(0), t), None, "at {t}");
        }
        assert_eq!(s.top(), 2);
    }

    #[test]
    fn an_unneeded_layer_goes_off_after_the_wait_and_comes_back_at_once() {
        let mut s = SentLayers::new(3, 0);
        let mut t = WARM_UP_MS;
        let mut told = Vec::new();
        while t < WARM_UP_MS + OFF_AFTER_MS + 500 {
            if let Some(top) = s.step(Some(1), t) {
                told.push((t, top));
            }
            t += 250;
        }
        assert_eq!(told, vec![(WARM_UP_MS + OFF_AFTER_MS, 1)]);
        // A pinned tile needs the top layer: asked for on the next tick.
        assert_eq!(s.step(Some(2), t), Some(2));
        // Needed for a moment less (a tile resized): nothing said.
        assert_eq!(s.step(Some(0), t + 250), None);
        assert_eq!(s.step(Some(2), t + 500), None);
        assert_eq!(s.top(), 2);
    }

    #[test]
    fn the_lowest_layer_is_always_sent_and_what_is_off_is_said_again() {
        let mut s = SentLayers::new(3, 0);
        assert_eq!(s.step(None, WARM_UP_MS), None);
        assert_eq!(s.step(None, WARM_UP_MS + OFF_AFTER_MS), Some(0));
        let off = WARM_UP_MS + OFF_AFTER_MS;
        assert_eq!(s.step(None, off + RETELL_MS - 1), None);
        assert_eq!(s.step(None, off + RETELL_MS), Some(0));
        // A wish above what was offered is the top layer.
        assert_eq!(s.step(Some(7), off + RETELL_MS + 250), Some(2));
        // All on: nothing more to say.
        assert_eq!(s.step(Some(2), off + 3 * RETELL_MS), None);
    }
}
