//! The tap on a pushed track: hands its RTP to the recording's file task through a bounded
//! queue. A full queue drops the packet (the forwarding path never waits for the recorder);
//! the depacketizer then sees the gap and the video waits for the next keyframe.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};

use rtc::rtp;
use tokio::sync::mpsc;

/// One packet on its way to a file task.
pub struct TapPacket {
    pub video: bool,
    pub arrival: Instant,
    pub packet: rtp::Packet,
}

/// Simulcast: how long a new tap waits for every offered layer to show before it settles on
/// the highest one that does (a publisher may never send its top layer: low resolution, CPU).
const LAYER_WAIT: Duration = Duration::from_millis(500);

pub struct Tap {
    /// The recording this tap feeds (a later recording replaces it).
    pub recording_id: String,
    pub video: bool,
    tx: mpsc::Sender<TapPacket>,
    /// Set by the file task when it needs a keyframe (start, loss).
    pub need_keyframe: Arc<AtomicBool>,
    pub dropped: Arc<AtomicU64>,
    created: Instant,
}

impl Tap {
    pub fn new(
        recording_id: String,
        video: bool,
        tx: mpsc::Sender<TapPacket>,
        need_keyframe: Arc<AtomicBool>,
        dropped: Arc<AtomicU64>,
    ) -> Self {
        Self {
            recording_id,
            video,
            tx,
            need_keyframe,
            dropped,
            created: Instant::now(),
        }
    }

    /// The layer to record (the highest one seen) once every offered layer showed or after
    /// `LAYER_WAIT`; `known`: each offered layer's SSRC, if seen, low to high.
    fn choose_layer(&self, known: &[Option<u32>]) -> Option<u32> {
        let seen: Vec<u32> = known.iter().flatten().copied().collect();
        if seen.len() == known.len() || self.created.elapsed() >= LAYER_WAIT {
            seen.last().copied()
        } else {
            None
        }
    }

    /// Queues a packet for the file task; true when the publisher should be asked for a
    /// keyframe.
    fn send(&self, packet: &rtp::Packet) -> bool {
        let p = TapPacket {
            video: self.video,
            arrival: Instant::now(),
            packet: packet.clone(),
        };
        if self.tx.try_send(p).is_err() {
            self.dropped.fetch_add(1, Relaxed);
        }
        self.video && self.need_keyframe.swap(false, Relaxed)
    }
}

/// A tap the media loop owns, one per publication and consumer (a recording, a composition): the layer choice in a plain field (no lock on
/// the loop's packet path).
pub struct LoopTap {
    sink: Tap,
    layer: Option<u32>,
}

impl LoopTap {
    pub fn new(sink: Tap) -> Self {
        Self { sink, layer: None }
    }

    /// The recording's (or composition's) id.
    pub fn consumer(&self) -> &str {
        &self.sink.recording_id
    }

    /// Offers a packet; `layers`: the SSRC of each offered simulcast layer, if seen (empty: not
    /// simulcast); `best`: the best layer flowing now (`LayerView::pick`). Once chosen, the tap
    /// follows the best layer: one the publisher paused (short of CPU or bandwidth) would freeze
    /// the file, and one that comes back is sharper. `Some(true)`: ask the publisher for a
    /// keyframe; `None`: the recording ended (its file task is gone), drop this tap.
    pub fn offer(
        &mut self,
        layers: &[Option<u32>],
        best: Option<u32>,
        packet: &rtp::Packet,
    ) -> Option<bool> {
        if self.sink.tx.is_closed() {
            return None;
        }
        if !layers.is_empty() {
            if self.layer.is_none() {
                self.layer = self.sink.choose_layer(layers);
            } else if best.is_some() && best != self.layer {
                // The sink sees a new stream: it waits for that layer's keyframe and asks.
                self.layer = best;
            }
            if self.layer != Some(packet.header.ssrc) {
                return Some(false);
            }
        }
        Some(self.sink.send(packet))
    }
}
