//! What each layer of a publication costs a viewer now, in bits per second (issue 18): the
//! allocator (`allocation.rs`) fits layers into a viewer's estimate by these. Measured on what
//! arrives from the publisher, per rank (the rid order; a track without simulcast is rank 0),
//! over a window of about a second. Pure; one per publication, updated per packet (two adds,
//! no allocation), read on the allocation tick.

use crate::layers::MAX_LAYERS;

/// Length of one measuring window. The rate is the last full window's, or (a young layer) the
/// current one's once it has run long enough to say anything.
const WINDOW_MS: u64 = 1_000;
/// A window younger than this says nothing yet.
const MIN_SPAN_MS: u64 = 300;
/// Bytes of headers (IP, UDP, RTP, SRTP tag, header extensions) per packet on the viewer's
/// leg, on top of the payload: the estimate counts what is on the wire.
pub const OVERHEAD_BYTES: u64 = 60;

#[derive(Clone, Copy, Debug, Default)]
struct Meter {
    window_start_ms: u64,
    bytes: u64,
    /// The last full window's rate.
    last_bps: Option<u64>,
    last_packet_ms: Option<u64>,
}

/// Per-rank byte meters of one publication.
#[derive(Clone, Debug, Default)]
pub struct LayerCosts {
    meters: [Meter; MAX_LAYERS],
}

impl LayerCosts {
    /// A packet of `payload` bytes on layer `rank` arrived at `now_ms`.
    pub fn on_packet(&mut self, rank: usize, payload: usize, now_ms: u64) {
        let Some(m) = self.meters.get_mut(rank) else {
            return;
        };
        let span = now_ms.saturating_sub(m.window_start_ms);
        if m.last_packet_ms.is_none() || span >= 2 * WINDOW_MS {
            // First packet, or back after a pause: the old window says nothing of now.
            *m = Meter {
                window_start_ms: now_ms,
                ..Meter::default()
            };
        } else if span >= WINDOW_MS {
            m.last_bps = Some(m.bytes * 8_000 / span);
            m.window_start_ms = now_ms;
            m.bytes = 0;
        }
        m.bytes += payload as u64 + OVERHEAD_BYTES;
        m.last_packet_ms = Some(now_ms);
    }

    /// Bits per second of each rank at `now_ms`; `None`: the layer does not flow (nothing
    /// for a window) or is too young to measure.
    pub fn bps(&self, now_ms: u64) -> [Option<u64>; MAX_LAYERS] {
        let mut out = [None; MAX_LAYERS];
        for (o, m) in out.iter_mut().zip(&self.meters) {
            let Some(last) = m.last_packet_ms else {
                continue;
            };
            if now_ms.saturating_sub(last) > WINDOW_MS {
                continue;
            }
            let span = now_ms.saturating_sub(m.window_start_ms);
            *o = match m.last_bps {
                Some(b) => Some(b),
                None if span >= MIN_SPAN_MS => Some(m.bytes * 8_000 / span),
                None => None,
            };
        }
        out
    }

    /// All ranks together (an audio track's cost, or a whole publication's).
    pub fn total_bps(&self, now_ms: u64) -> u64 {
        self.bps(now_ms).iter().flatten().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fps` packets of `size` bytes per second on `rank`, from `from_ms` for `ms`.
    fn feed(c: &mut LayerCosts, rank: usize, fps: u64, size: usize, from_ms: u64, ms: u64) {
        let step = 1000 / fps;
        let mut t = from_ms;
        while t < from_ms + ms {
            c.on_packet(rank, size, t);
            t += step;
        }
    }

    #[test]
    fn each_layer_is_measured_on_its_own_with_its_headers() {
        let mut c = LayerCosts::default();
        // 100 packets/s of 940 bytes = 1000 bytes with headers = 800 kbit/s; 50/s of 190 on q.
        feed(&mut c, 2, 100, 940, 0, 3_000);
        feed(&mut c, 0, 50, 190, 0, 3_000);
        let bps = c.bps(3_000);
        let f = bps[2].expect("f flows");
        let q = bps[0].expect("q flows");
        assert!((780_000..=820_000).contains(&f), "f {f}");
        assert!((95_000..=105_000).contains(&q), "q {q}");
        assert_eq!(bps[1], None, "h never came");
        assert_eq!(c.total_bps(3_000), f + q);
    }

    #[test]
    fn a_young_layer_is_measured_after_a_few_hundred_ms_and_a_stopped_one_drops_out() {
        let mut c = LayerCosts::default();
        feed(&mut c, 1, 100, 440, 0, 200);
        assert_eq!(c.bps(200)[1], None, "too young to say");
        feed(&mut c, 1, 100, 440, 200, 300);
        let b = c.bps(500)[1].expect("measured");
        assert!((380_000..=420_000).contains(&b), "h {b}");
        // The publisher stops the layer: it does not flow a second later.
        assert!(c.bps(1_400)[1].is_some());
        assert_eq!(c.bps(1_600)[1], None);
        // It comes back at a lower rate: measured afresh, not averaged with the old window.
        feed(&mut c, 1, 50, 440, 5_000, 600);
        let b = c.bps(5_600)[1].expect("measured again");
        assert!((180_000..=220_000).contains(&b), "h {b}");
    }

    #[test]
    fn a_rate_that_changes_shows_within_a_window() {
        let mut c = LayerCosts::default();
        feed(&mut c, 0, 100, 940, 0, 2_000);
        feed(&mut c, 0, 25, 940, 2_000, 2_100);
        let b = c.bps(4_100)[0].expect("flows");
        assert!((180_000..=220_000).contains(&b), "q {b}");
    }
}
