//! ffmpeg as a supervised process: raw pictures on its stdin, raw sound from a FIFO, H.264 + AAC
//! out on its stdout as FLV (a livestream) or fragmented MP4 (a composite recording). ffmpeg never
//! sees where the stream goes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};

use crate::Error;
use crate::mixer::RATE;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    Flv,
    Mp4,
}

#[derive(Clone, Debug)]
pub struct EncoderSettings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub video_kbps: u32,
    pub container: Container,
    /// The ffmpeg binary (`EDGEMEET_FFMPEG`, else `ffmpeg` on the PATH).
    pub ffmpeg: PathBuf,
}

/// A started ffmpeg and its pipes, taken apart by the composition's threads.
pub struct Encoder {
    pub child: Child,
    pub pictures: ChildStdin,
    pub output: ChildStdout,
    pub stderr: ChildStderr,
    /// The FIFO ffmpeg reads sound from (opened for writing by the sound thread).
    pub sound_fifo: PathBuf,
}

impl Encoder {
    /// Starts ffmpeg; `dir` is a private folder of this composition (the FIFO lives there).
    pub fn start(s: &EncoderSettings, dir: &Path) -> Result<Self, Error> {
        let fifo = dir.join("sound.pcm");
        nix::unistd::mkfifo(
            &fifo,
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        )
        .map_err(|e| Error::Encoder(format!("mkfifo: {e}")))?;
        let size = format!("{}x{}", s.width, s.height);
        let (fps, gop) = (s.fps.to_string(), (2 * s.fps).to_string());
        let (rate, maxrate, buf) = (
            format!("{}k", s.video_kbps),
            format!("{}k", s.video_kbps),
            format!("{}k", 2 * s.video_kbps),
        );
        let mut cmd = Command::new(&s.ffmpeg);
        cmd.args(["-hide_banner", "-loglevel", "error"])
            .args([
                "-f",
                "rawvideo",
                "-pix_fmt",
                "yuv420p",
                "-s",
                &size,
                "-framerate",
                &fps,
            ])
            .args(["-i", "pipe:0"])
            .args(["-f", "s16le", "-ar", &RATE.to_string(), "-ac", "1", "-i"])
            .arg(&fifo)
            .args(["-map", "0:v", "-map", "1:a"])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-tune",
                "zerolatency",
            ])
            .args([
                "-pix_fmt", "yuv420p", "-g", &gop, "-b:v", &rate, "-maxrate", &maxrate,
            ])
            .args(["-bufsize", &buf])
            .args(["-c:a", "aac", "-b:a", "128k", "-ac", "2"]);
        match s.container {
            Container::Flv => cmd.args(["-f", "flv", "pipe:1"]),
            Container::Mp4 => cmd.args([
                "-movflags",
                "frag_keyframe+empty_moov+default_base_moof",
                "-f",
                "mp4",
                "pipe:1",
            ]),
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Encoder(format!("cannot start ffmpeg: {e}")))?;
        let (Some(pictures), Some(output), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(Error::Encoder("ffmpeg without pipes".into()));
        };
        Ok(Self {
            pictures,
            output,
            stderr,
            child,
            sound_fifo: fifo,
        })
    }
}

/// The last lines ffmpeg wrote on stderr (its errors), at most 2 KiB.
pub fn tail(mut stderr: ChildStderr) -> String {
    let mut all = Vec::new();
    let _ = stderr.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all);
    let start = text.len().saturating_sub(2048);
    text.get(start..).unwrap_or_default().trim().to_string()
}
