//! Benchmark (prints a table; asserts nothing): what one composition costs. For 720p30 and
//! 1080p30 canvases with 3 and 9 people, each person's 640x360 pictures at 30 fps (a moving
//! pattern, so the encoder has work) and their sound are fed in real time for
//! `EDGEMEET_BENCH_SECS` (default 10) seconds into a composition encoding MP4 (libx264 veryfast,
//! AAC), as the node's decoders would feed it. Prints CPU cores used (this process, whose feeding
//! stands in for the decoders' output, and ffmpeg), how many pictures were composed anew against
//! the real-time count, and how long ffmpeg took to drain at the stop (a backlog: slower than
//! real time). The per-track decoders are not included (one ffmpeg each, see the node's tests).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use edgemeet_composer::frame::Frame;
use edgemeet_composer::layout::{Mode, Person, Scene, Source};
use edgemeet_composer::mixer::FRAME;
use edgemeet_composer::{Composition, Output, Settings};
use nix::sys::resource::{UsageWho, getrusage};

struct Discard;

impl Write for Discard {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn cpu_secs() -> f64 {
    let t = |who| {
        getrusage(who).map_or(0.0, |u| {
            let (a, b) = (u.user_time(), u.system_time());
            a.tv_sec() as f64
                + a.tv_usec() as f64 / 1e6
                + b.tv_sec() as f64
                + b.tv_usec() as f64 / 1e6
        })
    };
    t(UsageWho::RUSAGE_SELF) + t(UsageWho::RUSAGE_CHILDREN)
}

/// A 640x360 picture of person `i` at frame `n`: a gradient that moves.
fn picture(i: usize, n: u64) -> Frame {
    let (w, h) = (640u32, 360u32);
    let mut data = vec![128u8; (w * h * 3 / 2) as usize];
    for y in 0..h {
        for x in 0..w {
            data[(y * w + x) as usize] = ((x + y + n as u32 * 4 + i as u32 * 40) % 220 + 16) as u8;
        }
    }
    Frame::from_i420(w, h, data).unwrap()
}

fn run(width: u32, height: u32, people: usize, secs: u64) -> (f64, f64, f64) {
    let dir = std::env::temp_dir().join(format!(
        "edgemeet-bench-{}-{width}-{people}",
        std::process::id()
    ));
    let mut settings = Settings::hd(PathBuf::from(&dir));
    (settings.width, settings.height) = (width, height);
    if width >= 1920 {
        settings.video_kbps = 4500;
    }
    let fps = settings.fps;
    let c =
        Composition::start(settings, Output::Mp4(Box::new(Discard))).expect("composition starts");
    let feeder = c.feeder();
    let ids: Vec<String> = (0..people).map(|i| format!("p{i}")).collect();
    feeder.scene(Scene {
        people: ids
            .iter()
            .map(|id| Person {
                id: id.clone(),
                name: format!("Person {id}"),
            })
            .collect(),
        speaker: Some(ids[0].clone()),
        screen: None,
        mode: Mode::Speaker,
    });
    // Pictures made once per person and phase: the feed costs a copy, as a decoder's output.
    let frames: Vec<Vec<Frame>> = (0..people)
        .map(|i| (0..30).map(|n| picture(i, n)).collect())
        .collect();
    let cpu0 = cpu_secs();
    let start = Instant::now();
    let tick = Duration::from_secs(1) / fps;
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        for (i, id) in ids.iter().enumerate() {
            feeder.picture(
                Source::Camera(id.clone()),
                frames[i][(n % 30) as usize].clone(),
            );
            // 33 ms of sound per picture tick (in 20 ms frames, rounded).
            if n % 3 != 2 {
                feeder.sound(id, vec![0i16; FRAME * 5 / 3]);
            }
        }
        n += 1;
        let next = start + tick * n as u32;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let wall = start.elapsed().as_secs_f64();
    let t_stop = Instant::now();
    let report = c.stop().expect("composition stops");
    let drain = t_stop.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    let _ = std::fs::remove_dir_all(&dir);
    let realtime = report.composed as f64 / (wall * f64::from(fps));
    (cpu / (wall + drain), realtime, drain)
}

fn main() {
    let secs: u64 = std::env::var("EDGEMEET_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!(
        "\none composition, {secs} s each (cores: this process + ffmpeg; composed: pictures composed anew / real-time count)"
    );
    println!("canvas    | people | cores | composed | drain at stop s");
    for (w, h) in [(1280u32, 720u32), (1920, 1080)] {
        for people in [3usize, 9] {
            let (cores, realtime, drain) = run(w, h, people, secs);
            println!(
                "{:>4}x{:<4} | {people:>6} | {cores:>5.2} | {:>7.0}% | {drain:>5.2}",
                w,
                h,
                realtime * 100.0
            );
        }
    }
}
