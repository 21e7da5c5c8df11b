//! Counters for `/metrics` (Prometheus text) and heartbeats. Nothing here names a room or person.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds (µs) of the forwarding-latency histogram buckets.
const LATENCY_BUCKETS_US: [u64; 10] = [25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000];

#[derive(Default)]
pub struct Metrics {
    pub packets_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub packets_dropped: AtomicU64,
    pub nack_in: AtomicU64,
    /// Packets sent again from the retransmission buffer (answers to NACKs).
    pub retransmitted: AtomicU64,
    pub pli_in: AtomicU64,
    pub pli_out: AtomicU64,
    /// Keyframe requests of subscribers not relayed (rate limit per publisher layer).
    pub pli_suppressed: AtomicU64,
    /// Sequence-number gaps seen on ingress (packets lost between publisher and node).
    pub ingress_lost: AtomicU64,
    /// Video pulls paused because not even their lowest layer fit the viewer's estimate.
    pub video_paused_bandwidth: AtomicU64,
    /// Layer changes of pulls made by the bandwidth allocation (either way).
    pub layer_switches_bandwidth: AtomicU64,
    /// Publishers told to stop encoding simulcast layers no viewer needs (dynacast).
    pub layers_turned_off: AtomicU64,
    pub sessions_created: AtomicU64,
    pub sessions_reaped: AtomicU64,
    /// Participants' grants the edge revoked (leave, kick).
    pub grants_revoked: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    latency_sum_us: AtomicU64,
    latency_count: AtomicU64,
}

/// Point-in-time gauges supplied by the node when rendering.
pub struct Gauges {
    pub sessions: u64,
    /// Sessions whose forwarded media leaves through the node's own send path.
    pub sessions_direct_send: u64,
    pub tracks_published: u64,
    pub tracks_subscribed: u64,
    pub rooms: u64,
    pub draining: bool,
    /// Revoked grants still remembered (until they expire).
    pub grants_revoked_held: u64,
    /// Livestreams and composite recordings running, and how many may run at once.
    pub compositions: u64,
    pub max_compositions: u64,
}

impl Metrics {
    /// The counters of `parts` added up (the API's and each media loop's: every loop counts in
    /// its own, so no counter is shared between cores on the packet path).
    pub fn sum<'a>(parts: impl IntoIterator<Item = &'a Metrics>) -> Metrics {
        let total = Metrics::default();
        for m in parts {
            for ((_, _, t), (_, _, x)) in total.counters().into_iter().zip(m.counters()) {
                t.fetch_add(x.load(Relaxed), Relaxed);
            }
            for (t, x) in [
                (&total.latency_sum_us, &m.latency_sum_us),
                (&total.latency_count, &m.latency_count),
            ] {
                t.fetch_add(x.load(Relaxed), Relaxed);
            }
            for (t, x) in total.latency_buckets.iter().zip(&m.latency_buckets) {
                t.fetch_add(x.load(Relaxed), Relaxed);
            }
        }
        total
    }

    /// Every counter with its Prometheus name and help: what `/metrics` shows and what
    /// [`Metrics::sum`] adds up, listed once so a new counter cannot be left out of either.
    fn counters(&self) -> [(&'static str, &'static str, &AtomicU64); 17] {
        [
            (
                "edgemeet_node_rtp_packets_in_total",
                "RTP packets received.",
                &self.packets_in,
            ),
            (
                "edgemeet_node_rtp_bytes_in_total",
                "RTP payload bytes received.",
                &self.bytes_in,
            ),
            (
                "edgemeet_node_rtp_packets_out_total",
                "RTP packets forwarded.",
                &self.packets_out,
            ),
            (
                "edgemeet_node_rtp_bytes_out_total",
                "RTP payload bytes forwarded.",
                &self.bytes_out,
            ),
            (
                "edgemeet_node_rtp_packets_dropped_total",
                "Packets not forwarded (layer not selected, subscriber not ready, write error).",
                &self.packets_dropped,
            ),
            (
                "edgemeet_node_nack_in_total",
                "NACKs received from subscribers.",
                &self.nack_in,
            ),
            (
                "edgemeet_node_rtp_packets_retransmitted_total",
                "Packets sent again for NACKs from subscribers.",
                &self.retransmitted,
            ),
            (
                "edgemeet_node_pli_in_total",
                "PLI/FIR received from subscribers.",
                &self.pli_in,
            ),
            (
                "edgemeet_node_pli_out_total",
                "PLI sent to publishers.",
                &self.pli_out,
            ),
            (
                "edgemeet_node_pli_suppressed_total",
                "PLI/FIR from subscribers not relayed to the publisher (rate limit).",
                &self.pli_suppressed,
            ),
            (
                "edgemeet_node_rtp_ingress_lost_total",
                "Sequence gaps on packets from publishers.",
                &self.ingress_lost,
            ),
            (
                "edgemeet_node_video_paused_bandwidth_total",
                "Video pulls paused because their lowest layer did not fit the viewer's estimate.",
                &self.video_paused_bandwidth,
            ),
            (
                "edgemeet_node_layer_switches_bandwidth_total",
                "Simulcast layer changes made by the bandwidth allocation.",
                &self.layer_switches_bandwidth,
            ),
            (
                "edgemeet_node_publisher_layers_off_total",
                "Times a publisher was told to stop encoding simulcast layers no viewer needs.",
                &self.layers_turned_off,
            ),
            (
                "edgemeet_node_sessions_created_total",
                "Sessions created.",
                &self.sessions_created,
            ),
            (
                "edgemeet_node_sessions_reaped_total",
                "Sessions closed for failure or silence.",
                &self.sessions_reaped,
            ),
            (
                "edgemeet_node_grants_revoked_total",
                "Participant grants revoked by the edge (leave, kick).",
                &self.grants_revoked,
            ),
        ]
    }

    pub fn observe_latency_us(&self, us: u64) {
        let i = LATENCY_BUCKETS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.latency_buckets[i].fetch_add(1, Relaxed);
        self.latency_sum_us.fetch_add(us, Relaxed);
        self.latency_count.fetch_add(1, Relaxed);
    }

    pub fn render(&self, g: &Gauges) -> String {
        let mut s = String::with_capacity(4096);
        let mut line = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        line(
            "edgemeet_node_sessions",
            "gauge",
            "Open sessions.",
            g.sessions,
        );
        line(
            "edgemeet_node_sessions_direct_send",
            "gauge",
            "Sessions whose forwarded media the node encrypts and sends itself (else webrtc-rs does).",
            g.sessions_direct_send,
        );
        line(
            "edgemeet_node_rooms",
            "gauge",
            "Rooms with a session.",
            g.rooms,
        );
        line(
            "edgemeet_node_tracks_published",
            "gauge",
            "Pushed tracks.",
            g.tracks_published,
        );
        line(
            "edgemeet_node_tracks_subscribed",
            "gauge",
            "Pulled tracks.",
            g.tracks_subscribed,
        );
        line(
            "edgemeet_node_draining",
            "gauge",
            "1 while the node takes no new rooms.",
            g.draining as u64,
        );
        line(
            "edgemeet_node_grants_revoked",
            "gauge",
            "Revoked participant grants held until they expire.",
            g.grants_revoked_held,
        );
        line(
            "edgemeet_node_compositions",
            "gauge",
            "Livestreams and composite recordings being composed.",
            g.compositions,
        );
        line(
            "edgemeet_node_max_compositions",
            "gauge",
            "Compositions this node runs at most (max_compositions); a start beyond is refused.",
            g.max_compositions,
        );
        for (name, help, c) in self.counters() {
            line(name, "counter", help, c.load(Relaxed));
        }
        let name = "edgemeet_node_forward_latency_seconds";
        let _ = writeln!(
            s,
            "# HELP {name} Time from a packet leaving the publisher's connection to being queued on every subscriber.\n# TYPE {name} histogram"
        );
        let mut cum = 0;
        for (i, b) in LATENCY_BUCKETS_US.iter().enumerate() {
            cum += self.latency_buckets[i].load(Relaxed);
            let _ = writeln!(s, "{name}_bucket{{le=\"{}\"}} {cum}", *b as f64 / 1e6);
        }
        cum += self.latency_buckets[LATENCY_BUCKETS_US.len()].load(Relaxed);
        let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {cum}");
        let _ = writeln!(
            s,
            "{name}_sum {}\n{name}_count {}",
            self.latency_sum_us.load(Relaxed) as f64 / 1e6,
            self.latency_count.load(Relaxed)
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loops_counters_add_up_in_one_rendering() {
        let (a, b) = (Metrics::default(), Metrics::default());
        a.packets_out.fetch_add(3, Relaxed);
        b.packets_out.fetch_add(4, Relaxed);
        b.sessions_created.fetch_add(1, Relaxed);
        a.observe_latency_us(30);
        b.observe_latency_us(30_000);
        let text = Metrics::sum([&a, &b]).render(&Gauges {
            sessions: 0,
            sessions_direct_send: 0,
            tracks_published: 0,
            tracks_subscribed: 0,
            rooms: 0,
            draining: false,
            grants_revoked_held: 0,
            compositions: 0,
            max_compositions: 2,
        });
        assert!(
            text.contains("edgemeet_node_rtp_packets_out_total 7\n"),
            "{text}"
        );
        assert!(
            text.contains("edgemeet_node_sessions_created_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("edgemeet_node_forward_latency_seconds_bucket{le=\"0.00005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("edgemeet_node_forward_latency_seconds_count 2\n"),
            "{text}"
        );
    }
}
