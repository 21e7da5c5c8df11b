//! One recorded WebM file (a participant's audio and video): depacketizes the tapped RTP,
//! muxes it and streams it to S3.
//!
//! Duration: the head (EBML header, Segment size, Info with Duration, Tracks) is only known at
//! the end, and it sits at the file's start. So the file's first upload part is kept in memory
//! until the recording stops: a file that fits in one part is written whole at the end; a longer
//! one streams its later clusters as parts 2, 3, ... while recording (multipart parts may be
//! uploaded in any order), and at the end part 1 goes up as the exact head followed by the held
//! clusters. Every file thus has its exact Info Duration and Segment size, whatever its length,
//! for at most two parts of memory per file. Nothing touches the node's disk.
//!
//! So that a node killed mid-recording still leaves a playable file, the clusters also go to the
//! recording's journal every `journal_interval` (the open cluster is cut to do so), with the head
//! as it stands: the uploader rebuilds the file from it if no manifest ever comes
//! (`edgemeet_uploader::journal`).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use edgemeet_uploader::journal::JournalWriter;
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
    /// Past one part: `first` (the held clusters, part 1 without its head) waits for the end,
    /// later clusters go to the multipart upload as parts 2, 3, ... as they close.
    Streaming { w: Box<FileWriter>, first: Vec<u8> },
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
    /// Set when the file's track set can no longer change (never, now that the head is written
    /// at the end; kept for the slot logic).
    pub fixed: Arc<AtomicBool>,
    /// Ask the video publisher for a keyframe.
    pub need_keyframe: Arc<AtomicBool>,
    /// Where the file goes every `journal_interval` while it grows; None: no journal.
    pub journal: Option<Journal>,
}

/// A file's journal: the bytes closed since the last write, written every `interval`.
pub struct Journal {
    pub writer: JournalWriter,
    pub interval: Duration,
    pending: Vec<u8>,
    head_for: Option<TrackSet>,
    due: Instant,
}

impl Journal {
    pub fn new(writer: JournalWriter, interval: Duration) -> Self {
        Self {
            writer,
            interval,
            pending: Vec::new(),
            head_for: None,
            due: Instant::now() + interval,
        }
    }
}

struct State {
    video: Depacketizer,
    video_time: Timeline,
    /// The RTP stream video comes on (it changes when the tap follows another simulcast layer).
    video_ssrc: Option<u32>,
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
            video_ssrc: None,
            audio_time: Timeline::new(48_000),
            tracks: TrackSet::default(),
            video_started: false,
            last_video_ms: None,
            video_step_ms: 33.0,
            clusters: Clusters::default(),
            out: Output::Memory(Vec::new()),
        };
        // A quiet file (a muted participant) still journals what it closed.
        let mut tick = tokio::time::interval(
            self.journal
                .as_ref()
                .map_or(Duration::from_secs(3600), |j| j.interval),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next = tokio::select! {
                biased;
                p = self.rx.recv() => p,
                _ = crate::node::stopped(&mut self.stop) => None,
                _ = tick.tick() => {
                    self.journal_if_due(&mut st).await;
                    continue;
                }
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
            if st.video_ssrc.is_some_and(|s| s != pkt.header.ssrc) {
                st.video_time
                    .restart(pkt.header.timestamp, self.start, p.arrival);
            } else {
                st.video_time
                    .observe(pkt.header.timestamp, self.start, p.arrival);
            }
            st.video_ssrc = Some(pkt.header.ssrc);
            let frame = match st.video.push(
                pkt.header.sequence_number,
                pkt.header.timestamp,
                pkt.header.marker,
                &pkt.payload,
            ) {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(vp8::NeedKeyframe) => {
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
        self.journal_if_due(st).await;
    }

    /// Every `interval`: cuts the open cluster and writes what closed since the last time
    /// (and the head, when the tracks changed). A failing journal is dropped, the file goes on.
    async fn journal_if_due(&mut self, st: &mut State) {
        if self.journal.as_ref().is_none_or(|j| Instant::now() < j.due) {
            return;
        }
        st.clusters.cut();
        self.flush(st).await;
        let Some(j) = self.journal.as_mut() else {
            return;
        };
        j.due = Instant::now() + j.interval;
        if st.clusters.blocks == 0 || matches!(st.out, Output::Failed) {
            return;
        }
        let mut result = Ok(());
        if j.head_for != Some(st.tracks) {
            result = j.writer.put_head(webm::head(st.tracks, None, None)).await;
            if result.is_ok() {
                j.head_for = Some(st.tracks);
            }
        }
        if result.is_ok() && !j.pending.is_empty() {
            result = j.writer.append(std::mem::take(&mut j.pending)).await;
        }
        if let Err(e) = result {
            tracing::warn!(file = %self.name, error = %e, "recording journal failed; the file goes on without");
            self.journal = None;
        }
    }

    /// Moves closed clusters to memory or storage; switches to streaming past one part.
    async fn flush(&mut self, st: &mut State) {
        let ready = st.clusters.take_ready();
        if let Some(j) = &mut self.journal {
            j.pending.extend_from_slice(&ready);
        }
        match &mut st.out {
            Output::Memory(buf) => {
                buf.extend_from_slice(&ready);
                if buf.len() < self.part_size {
                    return;
                }
                // Part 1 is full: hold it (its head is written at the end), stream the rest.
                let first = std::mem::take(buf);
                st.out = match self.writer.create_file(&self.name, "video/webm").await {
                    Ok(mut w) => {
                        w.hold_first_part();
                        Output::Streaming {
                            w: Box::new(w),
                            first,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(file = %self.name, error = %e, "recording file failed");
                        Output::Failed
                    }
                };
            }
            Output::Streaming { w, .. } => {
                if !ready.is_empty()
                    && let Err(e) = w.write(&ready).await
                {
                    tracing::warn!(file = %self.name, error = %e, "recording file failed");
                    if let Output::Streaming { w, .. } =
                        std::mem::replace(&mut st.out, Output::Failed)
                    {
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
            Output::Streaming { mut w, first } => {
                if let Err(e) = w.write(&rest).await {
                    tracing::warn!(file = %self.name, error = %e, "recording file failed");
                    w.abort().await;
                    return None;
                }
                let body_len = first.len() as u64 + w.size();
                let mut part1 = webm::head(st.tracks, Some(st.clusters.end_ms), Some(body_len));
                part1.extend_from_slice(&first);
                drop(first);
                return match w.finish_with_first_part(part1).await {
                    Ok(f) => {
                        tracing::info!(file = %f.name, size = f.size, blocks = st.clusters.blocks, losses = st.video.losses, "recording file written");
                        Some(f)
                    }
                    Err(e) => {
                        tracing::warn!(file = %self.name, error = %e, "recording file failed");
                        None
                    }
                };
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use edgemeet_uploader::{S3Config, Store};
    use rtc::rtp;
    use std::time::SystemTime;

    const AK: &str = "file-test-ak";
    const SK: &str = "file-test-secret-key";

    fn vp8_frame(key: bool, size: usize, n: u32) -> Vec<u8> {
        // A VP8 keyframe header (320x240) or an interframe tag, then filler: enough to demux.
        let mut f = if key {
            vec![0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]
        } else {
            vec![0x51, 0x42, 0x00]
        };
        f.resize(size, (n % 251) as u8);
        f
    }

    async fn ffprobe(data: &[u8]) -> Option<serde_json::Value> {
        use tokio::io::AsyncWriteExt;
        let mut child = tokio::process::Command::new("ffprobe")
            .args(["-v", "error", "-of", "json", "-i", "pipe:0"])
            .args(["-show_entries", "format=duration:stream=codec_name"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        let mut stdin = child.stdin.take()?;
        let data = data.to_vec();
        let w = tokio::spawn(async move { stdin.write_all(&data).await });
        let out = child.wait_with_output().await.ok()?;
        let _ = w.await;
        serde_json::from_slice(&out.stdout).ok()
    }

    /// A file spanning several upload parts (part 1 held, its head written last) carries its
    /// exact Info Duration and Segment size: ffprobe reports the length from the header.
    #[tokio::test]
    async fn a_file_of_several_parts_has_its_exact_duration() {
        edgemeet_uploader::install_crypto_provider();
        let dir =
            std::env::temp_dir().join(format!("edgemeet-file-test-{}", rand::random::<u64>()));
        let s3 = edgemeet_uploader::start_embedded_s3(&dir, AK, SK, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut cfg = S3Config::new(s3.endpoint(), "recordings", AK, SK);
        cfg.create_bucket = true;
        let store = Store::new(&cfg);
        store.ensure_bucket().await.unwrap();
        let part_size = 5 * 1024 * 1024;
        let start = Instant::now();
        let writer =
            RecordingWriter::new(store.clone(), "0123456789abcdef", "m1", SystemTime::now())
                .with_part_size(part_size);
        let (tx, rx) = mpsc::channel(64);
        let (stop_tx, stop) = watch::channel(false);
        let task = FileTask {
            name: "multi.webm".into(),
            writer,
            start,
            part_size,
            rx,
            stop,
            fixed: Arc::new(AtomicBool::new(false)),
            need_keyframe: Arc::new(AtomicBool::new(false)),
            journal: None,
        };
        let handle = tokio::spawn(task.run());
        // 12 s of 30 fps video at 60 kB a frame (about 21 MB: five parts) and 20 ms Opus.
        let (mut seq, mut aseq) = (100u16, 7u16);
        let (v0, a0) = (4_000_000_000u32, 123u32);
        for n in 0..360u32 {
            let frame = vp8_frame(n % 60 == 0, 60_000, n);
            let chunks: Vec<&[u8]> = frame.chunks(1100).collect();
            let last = chunks.len() - 1;
            for (i, c) in chunks.into_iter().enumerate() {
                let mut payload = vec![if i == 0 { 0x10 } else { 0x00 }];
                payload.extend_from_slice(c);
                let packet = rtp::Packet {
                    header: rtp::header::Header {
                        version: 2,
                        marker: i == last,
                        sequence_number: seq,
                        timestamp: v0.wrapping_add(n * 3000),
                        ..Default::default()
                    },
                    payload: Bytes::from(payload),
                };
                seq = seq.wrapping_add(1);
                tx.send(TapPacket {
                    video: true,
                    arrival: start,
                    packet,
                })
                .await
                .unwrap();
            }
            // Audio: 20 ms packets, 1.67 per video frame.
            while u32::from(aseq - 7) * 20 < (n + 1) * 1000 / 30 {
                let packet = rtp::Packet {
                    header: rtp::header::Header {
                        version: 2,
                        marker: true,
                        sequence_number: aseq,
                        timestamp: a0 + u32::from(aseq - 7) * 960,
                        ..Default::default()
                    },
                    payload: Bytes::from_static(&[0xfc, 1, 2, 3]),
                };
                aseq += 1;
                tx.send(TapPacket {
                    video: false,
                    arrival: start,
                    packet,
                })
                .await
                .unwrap();
            }
        }
        stop_tx.send_replace(true);
        let file = handle.await.unwrap().expect("the file is written");
        assert!(file.size > 4 * part_size as u64, "{} bytes", file.size);
        let body = store.get_small(&file.key).await.unwrap().unwrap();
        assert_eq!(body.len() as u64, file.size);
        s3.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        let Some(v) = ffprobe(&body).await else {
            eprintln!("ffprobe not installed: skipped (tests/install/25-recording.sh)");
            return;
        };
        let codecs: Vec<&str> = v["streams"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["codec_name"].as_str())
            .collect();
        assert_eq!(codecs, ["vp8", "opus"]);
        let duration: f64 = v["format"]["duration"].as_str().unwrap().parse().unwrap();
        // Last video frame at 11.967 s lasting 33 ms; last audio packet ends at 12.0 s.
        assert!((duration - 12.0).abs() < 0.05, "duration {duration}");
        eprintln!(
            "{} bytes in {} parts: ffprobe duration {duration} s",
            file.size,
            file.size.div_ceil(part_size as u64)
        );
    }
}
