//! What a viewer of a media file would notice, read by Debian's ffprobe and ffmpeg: its streams'
//! codecs and its duration, the picture at a moment, how loud it is. And a log capture, to show
//! that a secret never reached a log line.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

fn ffmpeg() -> String {
    std::env::var("EDGEMEET_FFMPEG").unwrap_or_else(|_| "ffmpeg".into())
}

/// The file's stream codecs (sorted) and its duration in seconds.
pub fn probe(file: &Path) -> (Vec<String>, f64) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name:format=duration",
        ])
        .args(["-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut codecs = Vec::new();
    let mut duration = 0.0;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.parse::<f64>() {
            Ok(d) => duration = d,
            Err(_) => codecs.push(line.trim_end_matches(',').to_string()),
        }
    }
    codecs.sort();
    (codecs, duration)
}

/// The decoded picture at `at` seconds, scaled to `width` x `height`, as I420 bytes.
pub fn picture_i420_at(file: &Path, at: f64, width: u32, height: u32) -> Vec<u8> {
    Command::new(ffmpeg())
        .args(["-v", "error", "-ss", &format!("{at:.2}"), "-i"])
        .arg(file)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "yuv420p"])
        .args(["-s", &format!("{width}x{height}"), "pipe:1"])
        .output()
        .expect("ffmpeg decode")
        .stdout
}

/// Mean loudness of the file's sound in dB (ffmpeg's volumedetect); -91 when silent or absent.
pub fn mean_volume(file: &Path) -> f64 {
    let out = Command::new(ffmpeg())
        .args(["-hide_banner", "-i"])
        .arg(file)
        .args(["-af", "volumedetect", "-vn", "-f", "null", "-"])
        .output()
        .expect("ffmpeg volumedetect");
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines()
        .find_map(|l| l.split("mean_volume:").nth(1))
        .and_then(|v| v.trim().trim_end_matches(" dB").parse().ok())
        .unwrap_or(-91.0)
}

/// Every log line written to it (a `tracing_subscriber` writer), at every level.
#[derive(Clone, Default)]
pub struct Logs(pub Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).to_string()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
