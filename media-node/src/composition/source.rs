//! One tapped track of a composition: its RTP (from the media loop's tap, as a recording gets
//! it) depacketized and muxed into a live WebM stream, one cluster per frame (nothing waits for a
//! cluster to fill), written into the track's ffmpeg decoder, whose pictures or sound go to the
//! composition. A plain thread: it blocks on the tap's queue and on the decoder's pipe, never on
//! the loop. It ends when the tap is dropped (the track closed, or the composition untapped it).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::thread::JoinHandle;
use std::time::Instant;

use edgemeet_composer::decoder::Decoder;
use tokio::sync::mpsc;

use crate::recording::tap::TapPacket;
use crate::recording::timeline::Timeline;
use crate::recording::vp8::{self, Depacketizer};
use crate::recording::webm::{self, AUDIO_TRACK, Clusters, TrackSet, VIDEO_TRACK};

/// Starts the thread feeding `decoder` from `rx`; `need_keyframe` is raised when the video
/// cannot go on without one (start, loss).
pub fn spawn(
    video: bool,
    mut decoder: Decoder,
    mut rx: mpsc::Receiver<TapPacket>,
    need_keyframe: Arc<AtomicBool>,
    start: Instant,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("composer-source".into())
        .spawn(move || {
            let mut mux = Mux::new(video, start);
            let (mut packets, mut written) = (0u64, 0u64);
            while let Some(p) = rx.blocking_recv() {
                packets += 1;
                let (bytes, keyframe) = mux.packet(&p);
                written += bytes.len() as u64;
                if keyframe {
                    need_keyframe.store(true, Relaxed);
                }
                if !bytes.is_empty() && decoder.write(&bytes).is_err() {
                    // ffmpeg is gone: dropping the queue makes the loop drop this tap.
                    break;
                }
            }
            drop(rx);
            let decoded = decoder.stop();
            tracing::debug!(
                video,
                packets,
                written,
                decoded,
                started = mux.started,
                "composition source ended"
            );
        })
}

/// RTP of one track in, WebM bytes out (the head before the first block). Pure.
struct Mux {
    video: bool,
    start: Instant,
    depacketizer: Depacketizer,
    time: Timeline,
    /// The RTP stream it comes on (another when the tap follows another simulcast layer).
    ssrc: Option<u32>,
    started: bool,
    last_ms: Option<i64>,
    step_ms: f64,
    clusters: Clusters,
}

impl Mux {
    fn new(video: bool, start: Instant) -> Self {
        Self {
            video,
            start,
            depacketizer: Depacketizer::default(),
            time: Timeline::new(if video { 90_000 } else { 48_000 }),
            ssrc: None,
            started: false,
            last_ms: None,
            step_ms: 33.0,
            clusters: Clusters::default(),
        }
    }

    /// The bytes to write for this packet (often none: a frame is complete on its last
    /// packet), and whether a keyframe is needed.
    fn packet(&mut self, p: &TapPacket) -> (Vec<u8>, bool) {
        let pkt = &p.packet;
        if pkt.payload.is_empty() {
            return (Vec::new(), false);
        }
        let mut out = Vec::new();
        if self.ssrc.is_some_and(|s| s != pkt.header.ssrc) {
            self.time
                .restart(pkt.header.timestamp, self.start, p.arrival);
        } else {
            self.time
                .observe(pkt.header.timestamp, self.start, p.arrival);
        }
        self.ssrc = Some(pkt.header.ssrc);
        if self.video {
            let frame = match self.depacketizer.push(
                pkt.header.sequence_number,
                pkt.header.timestamp,
                pkt.header.marker,
                &pkt.payload,
            ) {
                Ok(Some(f)) => f,
                Ok(None) => return (out, false),
                Err(vp8::NeedKeyframe) => return (out, true),
            };
            if !self.started {
                // The stream starts at a keyframe whose size is known.
                match vp8::keyframe_size(&frame.data) {
                    Some(size) if frame.keyframe => {
                        let tracks = TrackSet {
                            video: Some(size),
                            audio: false,
                        };
                        out = webm::head(tracks, None, None);
                        self.started = true;
                    }
                    _ => return (out, true),
                }
            }
            let ms = self.time.ms(frame.timestamp);
            if let Some(prev) = self.last_ms
                && ms > prev
            {
                self.step_ms = ((ms - prev) as f64).min(100.0);
            }
            self.last_ms = Some(ms);
            self.clusters
                .push(VIDEO_TRACK, ms, frame.keyframe, self.step_ms, &frame.data);
        } else {
            if !self.started {
                let tracks = TrackSet {
                    video: None,
                    audio: true,
                };
                out = webm::head(tracks, None, None);
                self.started = true;
            }
            let ms = self.time.ms(pkt.header.timestamp);
            let dur = webm::opus_packet_ms(&pkt.payload);
            self.clusters.push(AUDIO_TRACK, ms, true, dur, &pkt.payload);
        }
        // One cluster per frame: the decoder gets it now, not when a cluster fills.
        self.clusters.cut();
        out.extend_from_slice(&self.clusters.take_ready());
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp;

    fn packet(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> TapPacket {
        TapPacket {
            video: false,
            arrival: Instant::now(),
            packet: rtp::Packet {
                header: rtp::header::Header {
                    sequence_number: seq,
                    timestamp: ts,
                    marker,
                    ..Default::default()
                },
                payload: bytes::Bytes::copy_from_slice(payload),
            },
        }
    }

    #[test]
    fn audio_starts_with_its_head_and_gives_a_cluster_per_packet() {
        let mut mux = Mux::new(false, Instant::now());
        let opus = [15 << 3, 1, 2, 3];
        let (first, _) = mux.packet(&packet(1, 960, true, &opus));
        // EBML magic, then one cluster holding the packet.
        assert_eq!(&first[..4], &[0x1a, 0x45, 0xdf, 0xa3]);
        assert!(first.ends_with(&opus));
        let (second, keyframe) = mux.packet(&packet(2, 1920, true, &opus));
        assert!(!keyframe);
        assert_eq!(
            &second[..4],
            &[0x1f, 0x43, 0xb6, 0x75],
            "a cluster, no second head"
        );
        assert!(second.ends_with(&opus));
    }

    #[test]
    fn video_waits_for_a_keyframe() {
        let mut mux = Mux::new(true, Instant::now());
        // A VP8 interframe (P bit set) alone: nothing to write, a keyframe is needed.
        let inter = [0x10, 0x01, 0, 0, 0xaa];
        let (bytes, keyframe) = mux.packet(&packet(1, 3000, true, &inter));
        assert!(bytes.is_empty());
        assert!(keyframe);
    }
}
