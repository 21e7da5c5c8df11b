//! Real media for tests: VP8 and Opus encoded by ffmpeg (Debian's; `tests/install/25-recording.sh`),
//! split into frames and packets, and sent in real time on a [`TestClient`]'s pushed tracks.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use rtc::rtp;
use webrtc::media_stream::track_local::TrackLocal;

use crate::node_client::TestClient;

pub async fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("ffmpeg runs (tests/install/25-recording.sh installs it)");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// VP8 frames of a 3 s test pattern at 30 fps, a keyframe every 15 frames.
pub async fn vp8_frames() -> Vec<Vec<u8>> {
    vp8_clip("testsrc=size=320x240:rate=30:duration=3", "300k").await
}

pub async fn vp8_clip(source: &str, bitrate: &str) -> Vec<Vec<u8>> {
    let ivf = ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        source,
        "-c:v",
        "libvpx",
        "-g",
        "15",
        "-b:v",
        bitrate,
        "-minrate",
        bitrate,
        "-maxrate",
        bitrate,
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-f",
        "ivf",
        "pipe:1",
    ])
    .await;
    assert_eq!(&ivf[..4], b"DKIF");
    let mut i = usize::from(u16::from_le_bytes([ivf[6], ivf[7]]));
    let mut frames = Vec::new();
    while i + 12 <= ivf.len() {
        let n = u32::from_le_bytes(ivf[i..i + 4].try_into().unwrap()) as usize;
        frames.push(ivf[i + 12..i + 12 + n].to_vec());
        i += 12 + n;
    }
    assert!(frames.len() >= 80, "{} frames", frames.len());
    frames
}

/// Opus packets (20 ms) of a 3 s sine, out of an Ogg stream (RFC 7845 headers skipped).
pub async fn opus_packets() -> Vec<Vec<u8>> {
    let ogg = ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000:duration=3",
        "-c:a",
        "libopus",
        "-b:a",
        "32k",
        "-frame_duration",
        "20",
        "-f",
        "ogg",
        "pipe:1",
    ])
    .await;
    let mut packets = Vec::new();
    let mut cur = Vec::new();
    let mut i = 0;
    while i + 27 <= ogg.len() {
        assert_eq!(&ogg[i..i + 4], b"OggS");
        let nseg = usize::from(ogg[i + 26]);
        let lacing = &ogg[i + 27..i + 27 + nseg];
        let mut at = i + 27 + nseg;
        for &l in lacing {
            cur.extend_from_slice(&ogg[at..at + usize::from(l)]);
            at += usize::from(l);
            if l < 255 {
                packets.push(std::mem::take(&mut cur));
            }
        }
        i = at;
    }
    assert!(packets[0].starts_with(b"OpusHead") && packets[1].starts_with(b"OpusTags"));
    packets.drain(..2);
    assert!(packets.len() >= 140, "{} packets", packets.len());
    packets
}

/// RFC 7741: a one-byte descriptor (S bit on the first packet), marker on the last.
pub fn vp8_packets(frame: &[u8]) -> Vec<(Vec<u8>, bool)> {
    let chunks: Vec<&[u8]> = frame.chunks(1100).collect();
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let mut p = vec![if i == 0 { 0x10 } else { 0x00 }];
            p.extend_from_slice(c);
            (p, i + 1 == n)
        })
        .collect()
}

/// Sends the clips in a loop, in real time, on the client's pushed tracks until `stop`.
pub async fn send_media(
    client: &TestClient,
    video: Arc<Vec<Vec<u8>>>,
    audio: Arc<Vec<Vec<u8>>>,
    stop: Arc<AtomicBool>,
) {
    for lt in &client.tracks {
        let sender = lt.sender.clone().unwrap();
        let params = sender.get_parameters().await.unwrap();
        let want = if lt.video { "video/vp8" } else { "audio/opus" };
        let pt = params
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.to_ascii_lowercase() == want)
            .unwrap()
            .payload_type;
        let (track, ssrc, is_video, stop) =
            (lt.track.clone(), lt.layers[0].1, lt.video, stop.clone());
        let (video, audio) = (video.clone(), audio.clone());
        tokio::spawn(async move {
            let (period, step) = if is_video {
                (Duration::from_micros(33_333), 3000u32)
            } else {
                (Duration::from_millis(20), 960u32)
            };
            // Random starting points, as real senders have: exercises unwrapping near 2^32.
            let mut ts: u32 = u32::MAX - rand::random::<u32>() % 200_000;
            let mut seq: u16 = rand::random();
            let t0 = tokio::time::Instant::now();
            let mut n = 0u32;
            while !stop.load(Relaxed) {
                tokio::time::sleep_until(t0 + period * n).await;
                let payloads = if is_video {
                    vp8_packets(&video[n as usize % video.len()])
                } else {
                    vec![(audio[n as usize % audio.len()].clone(), true)]
                };
                for (payload, marker) in payloads {
                    let header = rtp::header::Header {
                        version: 2,
                        marker,
                        payload_type: pt,
                        sequence_number: seq,
                        timestamp: ts,
                        ssrc,
                        ..Default::default()
                    };
                    let pkt = rtp::packet::Packet {
                        header,
                        payload: Bytes::from(payload),
                    };
                    let _ = track.write_rtp(pkt).await;
                    seq = seq.wrapping_add(1);
                }
                ts = ts.wrapping_add(step);
                n += 1;
            }
        });
    }
}
