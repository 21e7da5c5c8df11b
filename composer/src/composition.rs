//! One running composition: the host around [`Compositor`]. A clock thread ticks pictures (at the
//! frame rate) and sound (every 20 ms); one thread writes pictures into ffmpeg's stdin and one
//! sound into its FIFO, each as ffmpeg reads them, so the clock never waits for ffmpeg (ffmpeg
//! reads its two inputs in its own order: a clock blocked on one would starve the other); a
//! thread carries ffmpeg's output where it goes: an RTMP server, or a writer (a file, the
//! recording storage). Inputs arrive over a channel; nothing here is shared behind a lock.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::Error;
use crate::compositor::Compositor;
use crate::encoder::{Container, Encoder, EncoderSettings, tail};
use crate::flv::FlvReader;
use crate::frame::Frame;
use crate::layout::{Scene, Source};
use crate::mixer::FRAME;
use crate::rtmp::{Publisher, RtmpTarget};

/// Where the composed meeting goes.
pub enum Output {
    /// A livestream (H.264 + AAC in FLV over RTMP).
    Rtmp(RtmpTarget),
    /// A composite recording: fragmented MP4 bytes to this writer, as they are encoded.
    Mp4(Box<dyn Write + Send>),
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub video_kbps: u32,
    pub ffmpeg: PathBuf,
    /// A private folder for this composition's FIFO (removed when it stops).
    pub work_dir: PathBuf,
}

impl Settings {
    /// 720p at 30 frames per second, 2.5 Mbit/s, ffmpeg from `EDGEMEET_FFMPEG` or the PATH.
    pub fn hd(work_dir: PathBuf) -> Self {
        Self {
            width: 1280,
            height: 720,
            fps: 30,
            video_kbps: 2500,
            ffmpeg: std::env::var_os("EDGEMEET_FFMPEG")
                .map_or_else(|| "ffmpeg".into(), PathBuf::from),
            work_dir,
        }
    }
}

enum Input {
    Picture(Source, Frame),
    Sound(String, Vec<i16>),
    Scene(Scene),
    /// From `stop`: feeders may still hold clones.
    Stop,
}

/// Feeds a running composition; cheap to clone (one per decoder).
#[derive(Clone)]
pub struct Feeder(Sender<Input>);

impl Feeder {
    pub fn picture(&self, source: Source, frame: Frame) {
        let _ = self.0.send(Input::Picture(source, frame));
    }
    /// 48 kHz mono samples of one participant.
    pub fn sound(&self, participant: &str, samples: Vec<i16>) {
        let _ = self.0.send(Input::Sound(participant.to_string(), samples));
    }
    pub fn scene(&self, scene: Scene) {
        let _ = self.0.send(Input::Scene(scene));
    }
}

/// What a finished composition did.
#[derive(Debug, Default)]
pub struct Report {
    /// Pictures given to the encoder (duplicates included when composing fell behind).
    pub pictures: u64,
    /// Of which composed anew.
    pub composed: u64,
    /// Bytes of encoded output carried to the destination.
    pub output_bytes: u64,
}

pub struct Composition {
    feeder: Feeder,
    clock: JoinHandle<(u64, u64)>,
    pictures: JoinHandle<()>,
    sound: JoinHandle<()>,
    out: JoinHandle<Result<u64, Error>>,
    child: Child,
    stderr: ChildStderr,
    work_dir: PathBuf,
}

impl Composition {
    pub fn start(settings: Settings, output: Output) -> Result<Self, Error> {
        // The publisher connects before anything else: a wrong URL or key fails at once, and
        // leaves nothing behind.
        let (container, sink) = match output {
            Output::Rtmp(target) => (
                Container::Flv,
                Sink::Rtmp(Box::new(Publisher::connect(&target)?)),
            ),
            Output::Mp4(w) => (Container::Mp4, Sink::Writer(w)),
        };
        std::fs::create_dir_all(&settings.work_dir).map_err(Error::Output)?;
        let work_dir = settings.work_dir.clone();
        Self::start_encoding(settings, container, sink).inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&work_dir);
        })
    }

    fn start_encoding(settings: Settings, container: Container, sink: Sink) -> Result<Self, Error> {
        let Encoder {
            child,
            pictures,
            output,
            stderr,
            sound_fifo,
        } = Encoder::start(
            &EncoderSettings {
                width: settings.width,
                height: settings.height,
                fps: settings.fps,
                video_kbps: settings.video_kbps,
                container,
                ffmpeg: settings.ffmpeg.clone(),
            },
            &settings.work_dir,
        )?;
        let (tx, rx) = mpsc::channel();
        let (sound_tx, sound_rx) = mpsc::channel();
        let sound = spawn("composer-sound", move || write_sound(&sound_fifo, sound_rx))?;
        let (picture_tx, picture_rx) = mpsc::channel();
        let picture_writer = spawn("composer-pictures", move || {
            write_pictures(pictures, picture_rx)
        })?;
        let (w, h, fps) = (settings.width, settings.height, settings.fps);
        let clock = spawn("composer-clock", move || {
            run_clock(Compositor::new(w, h), fps, rx, picture_tx, sound_tx)
        })?;
        let out = spawn("composer-out", move || carry(output, sink))?;
        Ok(Self {
            feeder: Feeder(tx),
            clock,
            pictures: picture_writer,
            sound,
            out,
            child,
            stderr,
            work_dir: settings.work_dir,
        })
    }

    pub fn feeder(&self) -> Feeder {
        self.feeder.clone()
    }

    /// False once the output has ended on its own (the server went away, the writer failed, or
    /// ffmpeg died): the supervisor restarts it and tells the room.
    pub fn is_running(&self) -> bool {
        !self.out.is_finished()
    }

    /// Stops feeding, lets ffmpeg finish the stream (its last pictures, the MP4's end), and waits.
    pub fn stop(self) -> Result<Report, Error> {
        let Self {
            feeder,
            clock,
            pictures: picture_writer,
            sound,
            out,
            mut child,
            stderr,
            work_dir,
        } = self;
        let _ = feeder.0.send(Input::Stop);
        drop(feeder);
        let (pictures, composed) = clock.join().unwrap_or_default();
        let _ = picture_writer.join();
        let _ = sound.join();
        // ffmpeg ends once both inputs closed; one stuck (e.g. still waiting to open the sound
        // FIFO after the clock failed) is killed rather than waited for forever.
        let deadline = Instant::now() + STOP_GRACE;
        let status = loop {
            match child
                .try_wait()
                .map_err(|e| Error::Encoder(e.to_string()))?
            {
                Some(status) => break Some(status),
                None if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let carried = out
            .join()
            .unwrap_or_else(|_| Err(Error::Encoder("output thread panicked".into())));
        let errors = tail(stderr);
        let _ = std::fs::remove_dir_all(&work_dir);
        let output_bytes = carried?;
        match status {
            None => {
                return Err(Error::Encoder(
                    "ffmpeg did not finish and was killed".into(),
                ));
            }
            Some(s) if !s.success() => {
                return Err(Error::Encoder(format!("ffmpeg ended with {s}: {errors}")));
            }
            Some(_) => {}
        }
        if composed == 0 {
            return Err(Error::Encoder("nothing was composed".into()));
        }
        Ok(Report {
            pictures,
            composed,
            output_bytes,
        })
    }
}

/// How long a stopping ffmpeg may take to finish its output.
const STOP_GRACE: Duration = Duration::from_secs(10);

enum Sink {
    Rtmp(Box<Publisher>),
    Writer(Box<dyn Write + Send>),
}

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, Error> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(Error::Output)
}

/// The composition's clock: pictures at `fps` and sound every 20 ms, in real time, until the
/// feeder is dropped. When composing falls behind, the last picture is given again (ffmpeg times
/// pictures by their count: skipping one would pull the picture ahead of the sound).
fn run_clock(
    mut c: Compositor,
    fps: u32,
    rx: Receiver<Input>,
    pictures: Sender<Arc<Vec<u8>>>,
    sound: Sender<Vec<u8>>,
) -> (u64, u64) {
    let start = Instant::now();
    let frame = Duration::from_secs(1) / fps.max(1);
    let (mut given, mut composed, mut sounds) = (0u64, 0u64, 0u64);
    let mut last: Option<Arc<Vec<u8>>> = None;
    loop {
        let next_picture = start + frame * given as u32;
        let next_sound = start + Duration::from_millis(20) * sounds as u32;
        let next = next_picture.min(next_sound);
        // Everything that arrived first, then the tick: a backlog of inputs must not hold the
        // clock (nor outlive a stop).
        let first = match rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Ok(input) => Some(input),
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => None,
        };
        for input in first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
        {
            match input {
                Input::Picture(s, f) => c.picture_in(s, f),
                Input::Sound(p, samples) => c.sound_in(&p, &samples),
                Input::Scene(scene) => c.set_scene(scene),
                Input::Stop => return (given, composed),
            }
        }
        let now = Instant::now();
        if now >= next_sound {
            let bytes: Vec<u8> = c.sound().iter().flat_map(|s| s.to_le_bytes()).collect();
            debug_assert_eq!(bytes.len(), 2 * FRAME);
            let _ = sound.send(bytes);
            sounds += 1;
        }
        if now >= next_picture {
            // Behind by more than a frame: repeat the last picture instead of composing.
            let behind = now.duration_since(next_picture) > frame;
            let bytes = match (&last, behind) {
                (Some(b), true) => b.clone(),
                _ => {
                    composed += 1;
                    Arc::new(c.picture().data)
                }
            };
            // An error: the writer ended (ffmpeg is gone); the output thread reports it.
            let _ = pictures.send(bytes.clone());
            last = Some(bytes);
            given += 1;
        }
    }
    (given, composed)
}

/// Writes pictures into ffmpeg's stdin as it reads them; ends when the clock stops (closing stdin
/// ends ffmpeg's video) or ffmpeg is gone.
fn write_pictures(mut stdin: ChildStdin, rx: Receiver<Arc<Vec<u8>>>) {
    for p in rx {
        if stdin.write_all(&p).is_err() {
            return;
        }
    }
}

/// Writes sound into ffmpeg's FIFO. The FIFO is opened without blocking, retried until ffmpeg has
/// opened its end, so a composition whose ffmpeg died early still stops.
fn write_sound(fifo: &Path, rx: Receiver<Vec<u8>>) {
    let mut early = Vec::new();
    let mut file: File = loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(fifo)
        {
            Ok(f) => break f,
            Err(e) if e.raw_os_error() == Some(nix::libc::ENXIO) => match rx.try_recv() {
                Ok(b) => early.push(b),
                Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(10)),
            },
            Err(_) => return,
        }
    };
    // Back to blocking writes: ffmpeg reads at its pace.
    let fd = std::os::fd::AsFd::as_fd(&file);
    let _ = nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
    );
    for b in early.into_iter().chain(rx) {
        if file.write_all(&b).is_err() {
            return;
        }
    }
}

/// Carries ffmpeg's output to the destination until it ends; the bytes carried.
fn carry(output: ChildStdout, sink: Sink) -> Result<u64, Error> {
    match sink {
        Sink::Writer(mut w) => {
            let mut output = output;
            let n = io::copy(&mut output, &mut w).map_err(Error::Output)?;
            w.flush().map_err(Error::Output)?;
            Ok(n)
        }
        Sink::Rtmp(mut publisher) => {
            let mut flv = FlvReader::new(output);
            let mut n = 0u64;
            while let Some(tag) = flv.next_tag().map_err(Error::Output)? {
                n += tag.data.len() as u64;
                publisher.publish(tag)?;
            }
            publisher.finish()?;
            Ok(n)
        }
    }
}
