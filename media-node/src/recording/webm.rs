//! WebM muxing of already-encoded VP8 and Opus frames (no transcoding): EBML header, Segment,
//! Info (TimecodeScale 1 ms, Duration), Tracks, Clusters of SimpleBlocks.
//!
//! Clusters are built in memory and emitted whole, so each has a known size. The head (EBML
//! header, Segment start, Info, Tracks) is produced on demand: by the file writer either at the
//! end with the exact Duration and Segment size (file still in memory), or when the file grows
//! past one upload part, with an unknown Segment size and no Duration (see `file.rs`).

use super::ebml;

const EBML: u32 = 0x1A45_DFA3;
const EBML_VERSION: u32 = 0x4286;
const EBML_READ_VERSION: u32 = 0x42F7;
const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
const DOC_TYPE: u32 = 0x4282;
const DOC_TYPE_VERSION: u32 = 0x4287;
const DOC_TYPE_READ_VERSION: u32 = 0x4285;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TIMECODE_SCALE: u32 = 0x2A_D7B1;
const DURATION: u32 = 0x4489;
const MUXING_APP: u32 = 0x4D80;
const WRITING_APP: u32 = 0x5741;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_NUMBER: u32 = 0xD7;
const TRACK_UID: u32 = 0x73C5;
const TRACK_TYPE: u32 = 0x83;
const FLAG_LACING: u32 = 0x9C;
const CODEC_ID: u32 = 0x86;
const CODEC_PRIVATE: u32 = 0x63A2;
const CODEC_DELAY: u32 = 0x56AA;
const SEEK_PRE_ROLL: u32 = 0x56BB;
const VIDEO: u32 = 0xE0;
const PIXEL_WIDTH: u32 = 0xB0;
const PIXEL_HEIGHT: u32 = 0xBA;
const AUDIO: u32 = 0xE1;
const SAMPLING_FREQUENCY: u32 = 0xB5;
const CHANNELS: u32 = 0x9F;
const CLUSTER: u32 = 0x1F43_B675;
const TIMECODE: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;

/// Track numbers: fixed, a file holds at most one video and one audio track.
pub const VIDEO_TRACK: u8 = 1;
pub const AUDIO_TRACK: u8 = 2;

/// A new cluster at least this often (and at every video keyframe).
const MAX_CLUSTER_MS: i64 = 5_000;

/// Opus in WebRTC: 48 kHz, signaled as two channels (mono streams decode fine as such).
const OPUS_CHANNELS: u8 = 2;

/// The tracks a file declares (known when its head is written).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackSet {
    /// Pixel size from the first VP8 keyframe.
    pub video: Option<(u16, u16)>,
    pub audio: bool,
}

/// The head of the file: EBML header, Segment start, Info and Tracks.
/// `body_len` = bytes of clusters after it (known size), or None (unknown size, streaming).
pub fn head(tracks: TrackSet, duration_ms: Option<f64>, body_len: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    ebml::master(&mut out, EBML, |e| {
        ebml::uint(e, EBML_VERSION, 1);
        ebml::uint(e, EBML_READ_VERSION, 1);
        ebml::uint(e, EBML_MAX_ID_LENGTH, 4);
        ebml::uint(e, EBML_MAX_SIZE_LENGTH, 8);
        ebml::string(e, DOC_TYPE, "webm");
        ebml::uint(e, DOC_TYPE_VERSION, 4);
        ebml::uint(e, DOC_TYPE_READ_VERSION, 2);
    });
    let mut seg = Vec::new();
    ebml::master(&mut seg, INFO, |i| {
        ebml::uint(i, TIMECODE_SCALE, 1_000_000);
        if let Some(d) = duration_ms {
            ebml::float(i, DURATION, d);
        }
        ebml::string(i, MUXING_APP, "edgemeet");
        ebml::string(i, WRITING_APP, "edgemeet-media-node");
    });
    ebml::master(&mut seg, TRACKS, |t| {
        if let Some((w, h)) = tracks.video {
            ebml::master(t, TRACK_ENTRY, |e| {
                ebml::uint(e, TRACK_NUMBER, VIDEO_TRACK.into());
                ebml::uint(e, TRACK_UID, VIDEO_TRACK.into());
                ebml::uint(e, TRACK_TYPE, 1);
                ebml::uint(e, FLAG_LACING, 0);
                ebml::string(e, CODEC_ID, "V_VP8");
                ebml::master(e, VIDEO, |v| {
                    ebml::uint(v, PIXEL_WIDTH, w.into());
                    ebml::uint(v, PIXEL_HEIGHT, h.into());
                });
            });
        }
        if tracks.audio {
            ebml::master(t, TRACK_ENTRY, |e| {
                ebml::uint(e, TRACK_NUMBER, AUDIO_TRACK.into());
                ebml::uint(e, TRACK_UID, AUDIO_TRACK.into());
                ebml::uint(e, TRACK_TYPE, 2);
                ebml::uint(e, FLAG_LACING, 0);
                ebml::string(e, CODEC_ID, "A_OPUS");
                ebml::bytes(e, CODEC_PRIVATE, &opus_head());
                ebml::uint(e, CODEC_DELAY, 0);
                // 80 ms, as RFC 7845 recommends for seeking.
                ebml::uint(e, SEEK_PRE_ROLL, 80_000_000);
                ebml::master(e, AUDIO, |a| {
                    ebml::float(a, SAMPLING_FREQUENCY, 48_000.0);
                    ebml::uint(a, CHANNELS, OPUS_CHANNELS.into());
                });
            });
        }
    });
    ebml::id(&mut out, SEGMENT);
    match body_len {
        Some(n) => ebml::size(&mut out, seg.len() as u64 + n),
        None => out.extend_from_slice(&ebml::UNKNOWN_SIZE),
    }
    out.extend_from_slice(&seg);
    out
}

/// RFC 7845 identification header (the Matroska CodecPrivate of A_OPUS).
fn opus_head() -> Vec<u8> {
    let mut v = b"OpusHead".to_vec();
    v.push(1); // version
    v.push(OPUS_CHANNELS);
    v.extend_from_slice(&0u16.to_le_bytes()); // pre-skip: frames are stored as sent
    v.extend_from_slice(&48_000u32.to_le_bytes());
    v.extend_from_slice(&0i16.to_le_bytes()); // output gain
    v.push(0); // channel mapping family 0 (mono/stereo)
    v
}

/// Duration of one Opus packet in ms, from its TOC byte (RFC 6716 §3.1).
pub fn opus_packet_ms(p: &[u8]) -> f64 {
    let Some(&toc) = p.first() else { return 0.0 };
    let config = toc >> 3;
    let frame = match config {
        0..=11 => [10.0, 20.0, 40.0, 60.0][usize::from(config % 4)],
        12..=15 => [10.0, 20.0][usize::from(config % 2)],
        _ => [2.5, 5.0, 10.0, 20.0][usize::from(config % 4)],
    };
    let frames = match toc & 3 {
        0 => 1.0,
        1 | 2 => 2.0,
        _ => f64::from(p.get(1).map_or(1, |b| b & 0x3f)),
    };
    frame * frames
}

/// Clusters of SimpleBlocks, built in memory.
#[derive(Default)]
pub struct Clusters {
    current: Vec<u8>,
    current_tc: i64,
    has_video: bool,
    ready: Vec<u8>,
    /// End of the last block of any track (its timestamp plus its duration), ms.
    pub end_ms: f64,
    pub blocks: u64,
}

impl Clusters {
    /// Adds a frame at `ts_ms` (≥ 0, non-decreasing per track) lasting `dur_ms`.
    pub fn push(&mut self, track: u8, ts_ms: i64, keyframe: bool, dur_ms: f64, data: &[u8]) {
        let video = track == VIDEO_TRACK;
        let rel = ts_ms - self.current_tc;
        let cut = !self.current.is_empty()
            && ((video && keyframe && self.has_video)
                || rel > MAX_CLUSTER_MS
                || rel < i64::from(i16::MIN) + 1);
        if cut {
            self.close();
        }
        if self.current.is_empty() {
            self.current_tc = ts_ms;
            self.has_video = false;
            ebml::uint(&mut self.current, TIMECODE, ts_ms.max(0) as u64);
        }
        self.has_video |= video;
        let rel = (ts_ms - self.current_tc) as i16;
        ebml::id(&mut self.current, SIMPLE_BLOCK);
        ebml::size(&mut self.current, 4 + data.len() as u64);
        self.current.push(0x80 | track);
        self.current.extend_from_slice(&rel.to_be_bytes());
        self.current.push(if keyframe { 0x80 } else { 0 });
        self.current.extend_from_slice(data);
        self.end_ms = self.end_ms.max(ts_ms as f64 + dur_ms);
        self.blocks += 1;
    }

    /// Closes the open cluster now (the journal's cut): the next block starts a new one.
    pub fn cut(&mut self) {
        self.close();
    }

    fn close(&mut self) {
        if self.current.is_empty() {
            return;
        }
        let body = std::mem::take(&mut self.current);
        ebml::bytes(&mut self.ready, CLUSTER, &body);
    }

    /// Finished clusters since the last call.
    pub fn take_ready(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.ready)
    }

    /// Closes the open cluster and returns everything not yet taken.
    pub fn finish(&mut self) -> Vec<u8> {
        self.close();
        self.take_ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_durations() {
        // config 15 (hybrid FB 20 ms), one frame; config 31 (CELT 20 ms) code 3 with 3 frames.
        assert_eq!(opus_packet_ms(&[15 << 3]), 20.0);
        assert_eq!(opus_packet_ms(&[(31 << 3) | 3, 3]), 60.0);
        assert_eq!(opus_packet_ms(&[(1 << 3) | 1]), 40.0);
    }

    /// ffprobe's view of a file: (codecs, format duration, end of the last packet).
    fn probe(file: &[u8]) -> Option<(Vec<String>, Option<f64>, f64)> {
        use std::io::Write;
        let mut child = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-of", "json", "-i", "pipe:0"])
            .args([
                "-show_entries",
                "format=duration:stream=codec_name:packet=pts_time",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .ok()?; // ffprobe missing: tests/install/25-recording.sh installs it
        let data = file.to_vec();
        let mut stdin = child.stdin.take()?;
        let w = std::thread::spawn(move || stdin.write_all(&data));
        let out = child.wait_with_output().ok()?;
        let _ = w.join();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let f = |x: &serde_json::Value| x.as_str().and_then(|s| s.parse::<f64>().ok());
        let codecs = v["streams"].as_array()?.iter();
        let codecs = codecs.map(|s| s["codec_name"].as_str().unwrap_or("").into());
        let last = v["packets"]
            .as_array()?
            .iter()
            .filter_map(|p| f(&p["pts_time"]));
        Some((
            codecs.collect(),
            f(&v["format"]["duration"]),
            last.fold(0.0, f64::max),
        ))
    }

    /// Both forms of the file (whole, with Duration; streamed, unknown Segment size without
    /// Duration) read in ffprobe with both tracks up to the last block.
    #[test]
    fn whole_and_streamed_files_read_in_ffprobe() {
        // A VP8 keyframe header (320x240) and an Opus TOC byte (CELT 20 ms): enough to demux.
        let key = [
            0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00, 0, 0, 0,
        ];
        let mut c = Clusters::default();
        for i in 0..200i64 {
            if i % 3 == 0 {
                c.push(VIDEO_TRACK, i * 20, i % 30 == 0, 33.0, &key);
            }
            c.push(AUDIO_TRACK, i * 20, true, 20.0, &[0xfc, 1, 2, 3]);
        }
        let body = c.finish();
        let tracks = TrackSet {
            video: Some((320, 240)),
            audio: true,
        };
        let mut whole = head(tracks, Some(c.end_ms), Some(body.len() as u64));
        whole.extend_from_slice(&body);
        let mut streamed = head(tracks, None, None);
        streamed.extend_from_slice(&body);
        let Some((codecs, duration, last)) = probe(&whole) else {
            eprintln!("ffprobe not installed: skipped");
            return;
        };
        assert_eq!(codecs, ["vp8", "opus"]);
        assert_eq!(duration, Some(4.0));
        assert!((last - 3.98).abs() < 0.001, "{last}");
        let (codecs, duration, last) = probe(&streamed).unwrap();
        assert_eq!(codecs, ["vp8", "opus"]);
        assert_eq!(duration, None);
        assert!((last - 3.98).abs() < 0.001, "{last}");
    }

    #[test]
    fn clusters_cut_on_keyframes_and_time() {
        let mut c = Clusters::default();
        c.push(VIDEO_TRACK, 0, true, 33.0, b"k");
        c.push(AUDIO_TRACK, 10, true, 20.0, b"a");
        c.push(VIDEO_TRACK, 33, false, 33.0, b"d");
        assert!(c.take_ready().is_empty());
        c.push(VIDEO_TRACK, 66, true, 33.0, b"k");
        let first = c.take_ready();
        assert_eq!(&first[..4], &[0x1f, 0x43, 0xb6, 0x75]);
        c.push(AUDIO_TRACK, 6_000, true, 20.0, b"a");
        assert!(!c.take_ready().is_empty());
        assert_eq!(c.end_ms, 6_020.0);
        assert_eq!(c.blocks, 5);
    }
}
