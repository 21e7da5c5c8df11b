//! The tap on a pushed track: hands its RTP to the recording's file task through a bounded
//! queue. A full queue drops the packet (the forwarding path never waits for the recorder);
//! the depacketizer then sees the gap and the video waits for the next keyframe.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Instant;

use rtc::rtp;
use tokio::sync::mpsc;

use crate::forward::Publication;

/// One packet on its way to a file task.
pub struct TapPacket {
    pub video: bool,
    pub arrival: Instant,
    pub packet: rtp::Packet,
}

pub struct Tap {
    /// The recording this tap feeds (a later recording replaces it).
    pub recording_id: String,
    pub video: bool,
    tx: mpsc::Sender<TapPacket>,
    /// Set by the file task when it needs a keyframe (start, loss).
    pub need_keyframe: Arc<AtomicBool>,
    pub dropped: Arc<AtomicU64>,
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
        }
    }

    /// Offers a packet of `publication`; true when the publisher should be asked for a keyframe.
    pub fn offer(&self, publication: &Publication, packet: &rtp::Packet) -> bool {
        // Simulcast: record the last (highest) layer the publisher offered, once it is seen.
        if let Some(rid) = publication.rids.last()
            && publication.ssrc_of_rid(rid) != Some(packet.header.ssrc)
        {
            return false;
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
