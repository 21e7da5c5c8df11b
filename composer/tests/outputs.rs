//! The composer's outputs through a real ffmpeg: a livestream received by an RTMP server (ffmpeg
//! listening, as a YouTube ingest would), and a composite recording as MP4. What a viewer would
//! notice: the stream plays (H.264 + AAC, about as long as the meeting), the active speaker is the
//! main picture and the picture follows when the speaker changes, there is sound, and the stream
//! key appears in no log line. (RTMPS: `rtmps.rs`.)

mod common;

use edgemeet_composer::rtmp::{RtmpTarget, StreamKey};
use edgemeet_composer::{Composition, Output, Settings};

use common::{
    KEY, capture_logs, check_meeting_file, free_port, meeting, rtmp_server, server_ended,
    start_livestream, work_dir,
};

#[test]
fn a_livestream_reaches_an_rtmp_server_and_plays() {
    let (logs, _guard) = capture_logs();
    let dir = work_dir("rtmp");
    let port = free_port();
    let received = dir.join("received.flv");
    let mut server = rtmp_server(port, KEY, &received);
    let target = RtmpTarget::parse(
        &format!("rtmp://127.0.0.1:{port}/live"),
        StreamKey::new(KEY),
    )
    .unwrap();
    let composition = start_livestream(&Settings::hd(dir.join("work")), &target);
    let secs = 4.0;
    meeting(&composition.feeder(), secs);
    let report = composition.stop().expect("the stream ends cleanly");
    eprintln!("figure: livestream {report:?}");
    server_ended(&mut server);
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
    let port = free_port();
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
