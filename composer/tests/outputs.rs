//! The composer's outputs through a real ffmpeg: a livestream received by an RTMP server (ffmpeg
//! listening, as a YouTube ingest would), and a composite recording as MP4. What a viewer would
//! notice: the stream plays (H.264 + AAC, about as long as the meeting), the active speaker is the
//! main picture and the picture follows when the speaker changes, there is sound, and the stream
//! key appears in no log line.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edgemeet_composer::frame::{Frame, Yuv};
use edgemeet_composer::layout::{Person, Scene, Source};
use edgemeet_composer::rtmp::{RtmpTarget, StreamKey};
use edgemeet_composer::{Composition, Feeder, Output, Settings};
use edgemeet_testsupport::media_files::{Logs, mean_volume, picture_i420_at, probe};

const RED: Yuv = Yuv(81, 90, 240);
const BLUE: Yuv = Yuv(41, 240, 110);
const GREEN: Yuv = Yuv(145, 54, 34);
const KEY: &str = "live-key-0f9e8d7c6b5a";

fn ffmpeg() -> String {
    std::env::var("EDGEMEET_FFMPEG").unwrap_or_else(|_| "ffmpeg".into())
}

fn work_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgemeet-composer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn scene(speaker: &str) -> Scene {
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
fn meeting(feeder: &Feeder, secs: f64) {
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
fn picture_at(file: &Path, at: f64) -> Frame {
    Frame::from_i420(1280, 720, picture_i420_at(file, at, 1280, 720)).expect("one 720p picture")
}

fn near(a: Yuv, b: Yuv) -> bool {
    let d = |x: u8, y: u8| (i16::from(x) - i16::from(y)).abs() <= 12;
    d(a.0, b.0) && d(a.1, b.1) && d(a.2, b.2)
}

fn check_meeting_file(file: &Path, secs: f64) {
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

#[test]
fn a_livestream_reaches_an_rtmp_server_and_plays() {
    let logs = Logs::default();
    let writer = logs.clone();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish(),
    );
    let dir = work_dir("rtmp");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let received = dir.join("received.flv");
    let mut server = Command::new(ffmpeg())
        .args(["-hide_banner", "-loglevel", "error", "-listen", "1", "-i"])
        .arg(format!("rtmp://127.0.0.1:{port}/live/{KEY}"))
        .args(["-c", "copy", "-y"])
        .arg(&received)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg as an RTMP server");
    let target = RtmpTarget::parse(
        &format!("rtmp://127.0.0.1:{port}/live"),
        StreamKey::new(KEY),
    )
    .unwrap();
    let settings = Settings::hd(dir.join("work"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let composition = loop {
        match Composition::start(settings.clone(), Output::Rtmp(target.clone())) {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("no RTMP server: {e}"),
        }
    };
    let secs = 4.0;
    meeting(&composition.feeder(), secs);
    let report = composition.stop().expect("the stream ends cleanly");
    eprintln!("figure: livestream {report:?}");
    let waited = Instant::now();
    while server.try_wait().unwrap().is_none() {
        assert!(
            waited.elapsed() < Duration::from_secs(15),
            "the server saw the stream end"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut err = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    check_meeting_file(&received, secs);
    assert!(
        !dir.join("work").exists(),
        "nothing of the composition left on disk"
    );
    let logged = logs.text();
    assert!(!logged.contains(KEY), "the stream key is in a log line");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_composite_recording_is_one_playable_mp4() {
    let dir = work_dir("mp4");
    let file = dir.join("meeting.mp4");
    let writer = std::fs::File::create(&file).unwrap();
    let composition = Composition::start(
        Settings::hd(dir.join("work")),
        Output::Mp4(Box::new(writer)),
    )
    .unwrap();
    let secs = 4.0;
    meeting(&composition.feeder(), secs);
    let report = composition.stop().unwrap();
    eprintln!("figure: composite recording {report:?}");
    assert!(report.output_bytes > 10_000);
    check_meeting_file(&file, secs);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unreachable_server_fails_at_once_and_leaves_nothing() {
    let dir = work_dir("down");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = RtmpTarget::parse(
        &format!("rtmp://127.0.0.1:{port}/live"),
        StreamKey::new(KEY),
    )
    .unwrap();
    let err = Composition::start(Settings::hd(dir.join("work")), Output::Rtmp(target))
        .err()
        .expect("refused");
    assert!(!err.to_string().contains(KEY));
    assert!(
        !dir.join("work").exists(),
        "a failed start leaves no folder"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
