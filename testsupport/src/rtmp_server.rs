//! ffmpeg as an RTMP server, as a livestream's ingest would be: it takes the stream `live/{key}`
//! on a loopback port and writes it to a file as it comes, and ends when the stream ends.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port nobody listens on (yet).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The server on `port`, taking `live/{key}` into `received`.
pub fn rtmp_server(port: u16, key: &str, received: &Path) -> Child {
    let ffmpeg = std::env::var("EDGEMEET_FFMPEG").unwrap_or_else(|_| "ffmpeg".into());
    Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-listen", "1", "-i"])
        .arg(format!("rtmp://127.0.0.1:{port}/live/{key}"))
        .args(["-c", "copy", "-y"])
        .arg(received)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg as an RTMP server")
}

/// Waits (15 s at most) for the server to see the stream end and close its file; returns its
/// error output.
pub fn server_ended(server: &mut Child) -> String {
    let waited = Instant::now();
    while server.try_wait().unwrap().is_none() {
        assert!(
            waited.elapsed() < Duration::from_secs(15),
            "the server saw the stream end"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut err = String::new();
    if let Some(mut e) = server.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    err
}
