//! What the composer's output tests share: a meeting fed in real time, what a viewer of the
//! received file would check, an RTMP server (ffmpeg listening, as an ingest would), log capture.
#![allow(dead_code)] // each test binary uses its part

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use edgemeet_composer::frame::{Frame, Yuv};
use edgemeet_composer::layout::{Person, Scene, Source};
use edgemeet_composer::rtmp::RtmpTarget;
use edgemeet_composer::{Composition, Feeder, Output, Settings};
use edgemeet_testsupport::media_files::{Logs, mean_volume, picture_i420_at, probe};
pub use edgemeet_testsupport::rtmp_server::{free_port, rtmp_server, server_ended};

pub const RED: Yuv = Yuv(81, 90, 240);
pub const BLUE: Yuv = Yuv(41, 240, 110);
pub const GREEN: Yuv = Yuv(145, 54, 34);
pub const KEY: &str = "live-key-0f9e8d7c6b5a";

pub fn ffmpeg() -> String {
    std::env::var("EDGEMEET_FFMPEG").unwrap_or_else(|_| "ffmpeg".into())
}

pub fn work_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgemeet-composer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn scene(speaker: &str) -> Scene {
    Scene {
        people: [("a", "Ada"), ("b", "Bob"), ("c", "Cleo")]
            .iter()
            .map(|(id, name)| Person {
                id: id.to_string(),
                name: name.to_string(),
            })
            .collect(),
        speaker: Some(speaker.into()),
        ..Default::default()
    }
}

/// Three people for `secs` seconds in real time, each a solid colour and a tone; Ada speaks
/// first, Bob from half time.
pub fn meeting(feeder: &Feeder, secs: f64) {
    feeder.scene(scene("a"));
    let start = Instant::now();
    let mut t = 0u64;
    let mut switched = false;
    while start.elapsed().as_secs_f64() < secs {
        if !switched && start.elapsed().as_secs_f64() >= secs / 2.0 {
            feeder.scene(scene("b"));
            switched = true;
        }
        for (id, colour, hz) in [("a", RED, 440.0), ("b", BLUE, 660.0), ("c", GREEN, 880.0)] {
            if t.is_multiple_of(5) {
                feeder.picture(Source::Camera(id.into()), Frame::filled(320, 180, colour));
            }
            let samples = (0..960)
                .map(|i| {
                    let n = (t * 960 + i) as f64 / 48_000.0;
                    ((n * hz * std::f64::consts::TAU).sin() * 3000.0) as i16
                })
                .collect();
            feeder.sound(id, samples);
        }
        t += 1;
        let next = start + Duration::from_millis(20 * t);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// The decoded picture at `at` seconds.
pub fn picture_at(file: &Path, at: f64) -> Frame {
    Frame::from_i420(1280, 720, picture_i420_at(file, at, 1280, 720)).expect("one 720p picture")
}

pub fn near(a: Yuv, b: Yuv) -> bool {
    let d = |x: u8, y: u8| (i16::from(x) - i16::from(y)).abs() <= 12;
    d(a.0, b.0) && d(a.1, b.1) && d(a.2, b.2)
}

pub fn check_meeting_file(file: &Path, secs: f64) {
    let (codecs, duration) = probe(file);
    assert_eq!(codecs, vec!["aac", "h264"], "streams of {file:?}");
    assert!(
        (duration - secs).abs() < 1.0,
        "duration {duration} s for a meeting of {secs} s"
    );
    // The main picture's centre: Ada's red in the first half, Bob's blue in the second.
    let main = (640, 288);
    let first = picture_at(file, secs * 0.25).pixel(main.0, main.1);
    let second = picture_at(file, secs * 0.85).pixel(main.0, main.1);
    assert!(near(first, RED), "main picture at first: {first:?}");
    assert!(
        near(second, BLUE),
        "main picture after the switch: {second:?}"
    );
    assert!(mean_volume(file) > -40.0, "the tones are heard");
}

/// Every log line of this thread, at every level (the guard keeps the capture on).
pub fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let writer = logs.clone();
    let guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish(),
    );
    (logs, guard)
}

/// Starts the livestream, retried while the server is not yet listening.
pub fn start_livestream(settings: &Settings, target: &RtmpTarget) -> Composition {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Composition::start(settings.clone(), Output::Rtmp(target.clone())) {
            Ok(c) => return c,
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("no RTMP server: {e}"),
        }
    }
}
