//! One recorded WebM file (a participant's audio and video): depacketizes the tapped RTP,
//! muxes it and streams it to S3.
//!
//! Duration: the file stays in memory while it fits in one upload part; stopped then, it is
//! written whole with an exact Info Duration and Segment size. A file that outgrows one part
//! is streamed from then on (Segment of unknown size, no Duration, clusters as they close):
//! players and ffprobe then read the length from the last block's timestamp, not from Info.
//! Nothing touches the node's disk either way.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use edgemeet_uploader::{FileWriter, RecordingFile, RecordingWriter};
use tokio::sync::{mpsc, watch};

use super::tap::TapPacket;
use super::timeline::Timeline;
use super::vp8::{self, Depacketizer};
use super::webm::{self, AUDIO_TRACK, Clusters, TrackSet, VIDEO_TRACK};

/// Where the file's bytes are.
enum Output {
    /// Every cluster so far (the head is made at the end).
    Memory(Vec<u8>),
    /// Head written: clusters go to the multipart upload as they close.
    Streaming(FileWriter),
    /// Storage failed: the file is dropped, packets are read and discarded.
    Failed,
}

pub struct FileTask {
    pub name: String,
    pub writer: RecordingWriter,
    pub start: Instant,
    pub part_size: usize,
    pub rx: mpsc::Receiver<TapPacket>,
    pub stop: watch::Receiver<bool>,
    /// Set once the head is written: the file's track set can no longer change.
    pub fixed: Arc<AtomicBool>,
    /// Ask the video publisher for a keyframe.
    pub need_keyframe: Arc<AtomicBool>,
}

struct State {
    video: Depacketizer,
    video_time: Timeline,
    audio_time: Timeline,
    tracks: TrackSet,
    video_started: bool,
    last_video_ms: Option<i64>,
    video_step_ms: f64,
    clusters: Clusters,
    out: Output,
}

impl FileTask {
    /// Runs until told to stop, then finishes the file; None if it holds no media or failed.
    pub async fn run(mut self) -> Option<RecordingFile> {
        let mut st = State {
            video: Depacketizer::default(),
            video_time: Timeline::new(90_000),
            audio_time: Timeline::new(48_000),
            tracks: TrackSet::default(),
            video_started: false,
            last_video_ms: None,
            video_step_ms: 33.0,
            clusters: Clusters::default(),
            out: Output::Memory(Vec::new()),
        };
        loop {
            let next = tokio::select! {
                biased;
                p = self.rx.recv() => p,
                _ = crate::node::stopped(&mut self.stop) => None,
            };
            match next {
                Some(p) => self.handle(&mut st, p).await,
                None => break,
            }
        }
        // What was queued before the stop still belongs to the recording.
        while let Ok(p) = self.rx.try_recv() {
            self.handle(&mut st, p).await;
        }
        self.finish(st).await
    }

    async fn handle(&mut self, st: &mut State, p: TapPacket) {
        let pkt = &p.packet;
        if pkt.payload.is_empty() {
            return;
        }
        let fixed = self.fixed.load(Relaxed);
        if p.video {
            st.video_time
                .observe(pkt.header.timestamp, self.start, p.arrival);
            let frame = match st.video.push(
                pkt.header.sequence_number,
                pkt.header.timestamp,
                pkt.header.marker,
                &pkt.payload,
            ) {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(()) => {
                    self.need_keyframe.store(true, Relaxed);
                    return;
                }
            };
            if !st.video_started {
                // Start at a keyframe whose size is known; the track is declared then.
                match vp8::keyframe_size(&frame.data) {
                    Some(size) if frame.keyframe && !fixed => {
                        st.tracks.video = Some(size);
                        st.video_started = true;
                    }
                    _ => {
                        if !fixed {
                            self.need_keyframe.store(true, Relaxed);
                        }
                        return;
                    }
                }
            }
            let ms = st.video_time.ms(frame.timestamp);
            // A frame lasts until the next; a gap (loss, keyframe wait) is not a frame length.
            if let Some(prev) = st.last_video_ms
                && ms > prev
            {
                st.video_step_ms = ((ms - prev) as f64).min(100.0);
            }
            st.last_video_ms = Some(ms);
            st.clusters.push(
                VIDEO_TRACK,
                ms,
                frame.keyframe,
                st.video_step_ms,
                &frame.data,
            );
        } else {
            if !st.tracks.audio {
                if fixed {
                    return;
                }
                st.tracks.audio = true;
            }
            st.audio_time
                .observe(pkt.header.timestamp, self.start, p.arrival);
            let ms = st.audio_time.ms(pkt.header.timestamp);
            let dur = webm::opus_packet_ms(&pkt.payload);
            st.clusters.push(AUDIO_TRACK, ms, true, dur, &pkt.payload);
        }
        self.flush(st).await;
    }

    /// Moves closed clusters to memory or storage; switches to streaming past one part.
    async fn flush(&mut self, st: &mut State) {
        let ready = st.clusters.take_ready();
        match &mut st.out {
            Output::Memory(buf) => {
                buf.extend_from_slice(&ready);
                if buf.len() + st.clusters.buffered() + 4096 < self.part_size {
                    return;
                }
                self.fixed.store(true, Relaxed);
                let body = std::mem::take(buf);
                let head = webm::head(st.tracks, None, None);
                st.out = match self.writer.create_file(&self.name, "video/webm").await {
                    Ok(mut w) => match write_all(&mut w, &[&head, &body]).await {
                        Ok(()) => Output::Streaming(w),
                        Err(e) => {
                            tracing::warn!(file = %self.name, error = %e, "recording file failed");
                            w.abort().await;
                            Output::Failed
                        }
                    },
                    Err(e) => {
                        tracing::warn!(file = %self.name, error = %e, "recording file failed");
                        Output::Failed
                    }
                };
            }
            Output::Streaming(w) => {
                if !ready.is_empty()
                    && let Err(e) = w.write(&ready).await
                {
                    tracing::warn!(file = %self.name, error = %e, "recording file failed");
                    if let Output::Streaming(w) = std::mem::replace(&mut st.out, Output::Failed) {
                        w.abort().await;
                    }
                }
            }
            Output::Failed => {}
        }
    }

    async fn finish(self, mut st: State) -> Option<RecordingFile> {
        let rest = st.clusters.finish();
        let (w, blocks) = match st.out {
            Output::Failed => return None,
            Output::Memory(mut body) => {
                if st.clusters.blocks == 0 {
                    return None;
                }
                body.extend_from_slice(&rest);
                let head = webm::head(st.tracks, Some(st.clusters.end_ms), Some(body.len() as u64));
                let mut w = match self.writer.create_file(&self.name, "video/webm").await {
                    Ok(w) => w,
                    Err(e) => {
                        tracing::warn!(file = %self.name, error = %e, "recording file failed");
                        return None;
                    }
                };
                if let Err(e) = write_all(&mut w, &[&head, &body]).await {
                    tracing::warn!(file = %self.name, error = %e, "recording file failed");
                    w.abort().await;
                    return None;
                }
                (w, st.clusters.blocks)
            }
            Output::Streaming(mut w) => {
                if let Err(e) = w.write(&rest).await {
                    tracing::warn!(file = %self.name, error = %e, "recording file failed");
                    w.abort().await;
                    return None;
                }
                (w, st.clusters.blocks)
            }
        };
        match w.finish().await {
            Ok(f) => {
                tracing::info!(file = %f.name, size = f.size, blocks, losses = st.video.losses, "recording file written");
                Some(f)
            }
            Err(e) => {
                tracing::warn!(file = %self.name, error = %e, "recording file failed");
                None
            }
        }
    }
}

async fn write_all(w: &mut FileWriter, parts: &[&[u8]]) -> Result<(), edgemeet_uploader::Error> {
    for p in parts {
        w.write(p).await?;
    }
    Ok(())
}
