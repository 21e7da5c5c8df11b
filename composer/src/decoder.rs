//! One participant's track decoded by ffmpeg for a composition: a live WebM stream (VP8 or Opus,
//! as the node's recording already muxes them) written on its stdin, raw pictures (I420 at one
//! fixed size, letterboxed) or raw sound (48 kHz mono) read from its stdout and handed to the
//! composition's [`Feeder`] as they come. ffmpeg is told not to buffer: a picture leaves it as soon
//! as its frame is decoded.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::Error;
use crate::composition::Feeder;
use crate::frame::{Frame, i420_len};
use crate::layout::Source;
use crate::mixer::{FRAME, RATE};

/// What a decoder gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Pictures of `source`, scaled (aspect kept, letterboxed) to `width` x `height`.
    Video {
        source: Source,
        width: u32,
        height: u32,
    },
    /// The sound of `participant`.
    Audio { participant: String },
}

pub struct Decoder {
    stdin: Option<ChildStdin>,
    child: Child,
    reader: Option<JoinHandle<u64>>,
}

/// How long a stopping decoder may take to end on its own before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(2);

impl Decoder {
    /// Starts ffmpeg for one track; what it decodes goes to `feeder`.
    pub fn start(ffmpeg: &Path, kind: Kind, feeder: Feeder) -> Result<Self, Error> {
        let mut cmd = Command::new(ffmpeg);
        cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin"])
            // Low delay: no input probing beyond the head, no frame threads (each holds a
            // frame). Not `-fflags nobuffer` nor `-flags low_delay`: with either, ffmpeg's VP8
            // decoder refused every frame of Chromium's ("Invalid data found").
            .args([
                "-probesize",
                "4096",
                "-analyzeduration",
                "0",
                "-threads",
                "1",
            ])
            .args(["-f", "matroska", "-i", "pipe:0"]);
        match &kind {
            Kind::Video { width, height, .. } => {
                let (w, h) = (width & !1, height & !1);
                let filter = format!(
                    "scale={w}:{h}:force_original_aspect_ratio=decrease,\
                     pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,format=yuv420p"
                );
                cmd.args(["-map", "0:v:0", "-vf", &filter]).args([
                    "-fps_mode",
                    "passthrough",
                    "-f",
                    "rawvideo",
                ]);
            }
            Kind::Audio { .. } => {
                cmd.args(["-map", "0:a:0", "-ac", "1", "-ar", &RATE.to_string()])
                    .args(["-f", "s16le"]);
            }
        }
        cmd.args(["-flush_packets", "1", "pipe:1"]);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::Encoder(format!("cannot start ffmpeg: {e}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(Error::Encoder("ffmpeg without pipes".into()));
        };
        let reader = std::thread::Builder::new()
            .name("composer-decode".into())
            .spawn(move || read_output(stdout, kind, feeder))
            .map_err(Error::Output)?;
        Ok(Self {
            stdin: Some(stdin),
            child,
            reader: Some(reader),
        })
    }

    /// Writes stream bytes (the WebM head first, then clusters); an error: ffmpeg is gone.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.stdin {
            Some(s) => s.write_all(bytes),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Closes the input and waits for the last outputs (killed after a grace); what it gave:
    /// pictures, or 20 ms sound frames.
    pub fn stop(mut self) -> u64 {
        self.finish()
    }

    fn finish(&mut self) -> u64 {
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        self.reader
            .take()
            .map_or(0, |r| r.join().unwrap_or_default())
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        if self.reader.is_some() {
            self.finish();
        }
    }
}

/// Reads ffmpeg's raw output in whole pictures (or 20 ms of sound) until it ends.
fn read_output(mut out: impl Read, kind: Kind, feeder: Feeder) -> u64 {
    let chunk = match &kind {
        Kind::Video { width, height, .. } => i420_len(width & !1, height & !1),
        Kind::Audio { .. } => 2 * FRAME,
    };
    let mut given = 0;
    loop {
        let mut buf = vec![0u8; chunk];
        if out.read_exact(&mut buf).is_err() {
            return given;
        }
        match &kind {
            Kind::Video {
                source,
                width,
                height,
            } => {
                if let Some(f) = Frame::from_i420(width & !1, height & !1, buf) {
                    feeder.picture(source.clone(), f);
                }
            }
            Kind::Audio { participant } => {
                let samples = buf
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect();
                feeder.sound(participant, samples);
            }
        }
        given += 1;
    }
}
