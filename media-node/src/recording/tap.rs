//! The tap on a pushed track: hands its RTP to the recording's file task through a bounded
//! queue. A full queue drops the packet (the forwarding path never waits for the recorder);
//! the depacketizer then sees the gap and the video waits for the next keyframe.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::rtp;
use tokio::sync::mpsc;

use crate::forward::Publication;

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
    /// Simulcast: the SSRC of the layer recorded, once chosen (never changes: layers differ in
    /// size, sequence numbers and timestamps).
    layer: Mutex<Option<u32>>,
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
            layer: Mutex::new(None),
        }
    }

    /// Offers a packet of `publication`; true when the publisher should be asked for a keyframe.
    pub fn offer(&self, publication: &Publication, packet: &rtp::Packet) -> bool {
        // Simulcast: record the highest layer the publisher sends (rids are offered low to
        // high), chosen once all showed or after LAYER_WAIT.
        if !publication.rids.is_empty() {
            let mut layer = self.layer.lock().unwrap();
            if layer.is_none() {
                let known: Vec<u32> = publication
                    .rids
                    .iter()
                    .filter_map(|r| publication.ssrc_of_rid(r))
                    .collect();
                if known.len() == publication.rids.len() || self.created.elapsed() >= LAYER_WAIT {
                    *layer = known.last().copied();
                }
            }
            if *layer != Some(packet.header.ssrc) {
                return false;
            }
        }
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
