//! Compositions (issue 21): a meeting composed into one picture and one sound by the composer
//! crate: a livestream to an RTMP ingest, and a composite recording (one MP4 of the meeting, a
//! file of its recording). At most one of each per meeting.
//!
//! The media comes from the media loop's taps (the recording's), one per pushed track: each
//! track's RTP goes through a [`source`] thread into its own ffmpeg decoder, whose pictures and
//! sound feed the composition. Who is shown, with which names, who speaks and who shares a
//! screen come from the edge (the scene), in memory only. The stream key is handed to the
//! composer's own RTMP session and nothing else: not logged, not stored, not on a command line.

mod source;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use edgemeet_composer::decoder::{Decoder, Kind};
use edgemeet_composer::layout::{Mode, Person, Scene, Source};
use edgemeet_composer::rtmp::{RtmpTarget, StreamKey};
use edgemeet_composer::{Composition, Output, Settings};
use edgemeet_protocol::node::{
    CompositionScene, StartLivestreamRequest, StartLivestreamResponse, StopLivestreamResponse,
};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::media_loop::Loops;
use crate::recording::StreamedChunk;
use crate::recording::tap::{LoopTap, Tap};

/// Packets queued per tapped track before the tap drops (the loop never waits for a decoder).
const QUEUE: usize = 512;
/// Each participant's pictures reach the composition at this size (letterboxed): enough for the
/// main picture of a 720p canvas.
const SOURCE_SIZE: (u32, u32) = (640, 360);

/// What a composition is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    Livestream,
    Recording,
}

pub struct Compositions {
    ffmpeg: PathBuf,
    work_root: PathBuf,
    /// Where a composition that ended on its own is reported (to the edge).
    events: Option<tokio::sync::mpsc::UnboundedSender<edgemeet_protocol::node::NodeEvent>>,
    /// At most this many at once (`max_compositions`).
    max: usize,
    active: Mutex<HashMap<(String, Purpose), Arc<Active>>>,
    /// Per meeting with a composite recording: its file's channel, for the duration at the end.
    file_ends: Mutex<HashMap<String, mpsc::Sender<StreamedChunk>>>,
    /// Per meeting: times its recording's composer stopped on its own and was started again.
    recording_restarts: Mutex<HashMap<String, u32>>,
}

/// A composite recording's composer that stops on its own is started again this many times in a
/// recording (each time into a further file), then the recording ends.
pub const MAX_RECORDING_RESTARTS: u32 = 3;

/// A composition that ended on its own, cleaned up: to report, and a recording's to restart.
pub struct Ended {
    pub meeting: String,
    pub purpose: Purpose,
    pub route: String,
    /// The last scene it showed (a restart shows it again).
    pub scene: CompositionScene,
}

/// The composed MP4's bytes to the recording's file task (from the composer's output thread).
struct ChannelWriter(mpsc::Sender<StreamedChunk>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(StreamedChunk::Bytes(buf.to_vec()))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Active {
    id: String,
    /// The room's route (the edge's token claim): events name the room by it.
    route: String,
    /// Pictures per second of its output.
    fps: u32,
    start: Instant,
    composition: Mutex<Option<Composition>>,
    feeder: edgemeet_composer::Feeder,
    /// The scene it shows now (names stay in memory only).
    scene: Mutex<CompositionScene>,
    sources: Mutex<Vec<JoinHandle<()>>>,
    dropped: Arc<AtomicU64>,
}

/// 128 random bits in hex.
fn new_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The composer's scene from the edge's.
fn scene_of(s: &CompositionScene) -> Scene {
    Scene {
        people: s
            .people
            .iter()
            .map(|p| Person {
                id: p.id.clone(),
                name: p.name.clone(),
            })
            .collect(),
        speaker: s.speaker.clone(),
        screen: s.screen.clone(),
        mode: if s.grid { Mode::Grid } else { Mode::Speaker },
    }
}

impl Compositions {
    /// ffmpeg from `EDGEMEET_FFMPEG` or the `PATH`, work folders under the temporary directory;
    /// compositions that end on their own are reported on `events`.
    pub fn new(
        events: Option<tokio::sync::mpsc::UnboundedSender<edgemeet_protocol::node::NodeEvent>>,
        max: usize,
    ) -> Self {
        Self {
            ffmpeg: std::env::var_os("EDGEMEET_FFMPEG")
                .map_or_else(|| "ffmpeg".into(), PathBuf::from),
            work_root: std::env::temp_dir()
                .join(format!("edgemeet-compositions-{}", std::process::id())),
            events,
            max,
            active: Mutex::new(HashMap::new()),
            file_ends: Mutex::new(HashMap::new()),
            recording_restarts: Mutex::new(HashMap::new()),
        }
    }

    /// Compositions running.
    pub fn count(&self) -> usize {
        self.active.lock().unwrap().len()
    }

    /// As many run as may: a start now is refused.
    pub fn is_full(&self) -> bool {
        self.count() >= self.max
    }

    fn is(&self, meeting: &str, purpose: Purpose) -> bool {
        self.active
            .lock()
            .unwrap()
            .contains_key(&(meeting.to_owned(), purpose))
    }

    pub fn is_live(&self, meeting: &str) -> bool {
        self.is(meeting, Purpose::Livestream)
    }

    /// Anything composed of `meeting` (its tracks are tapped).
    pub fn is_composing(&self, meeting: &str) -> bool {
        self.active
            .lock()
            .unwrap()
            .keys()
            .any(|(m, _)| m == meeting)
    }

    fn of_meeting(&self, meeting: &str) -> Vec<Arc<Active>> {
        self.active
            .lock()
            .unwrap()
            .iter()
            .filter(|((m, _), _)| m == meeting)
            .map(|(_, a)| a.clone())
            .collect()
    }

    /// Starts streaming `meeting`: connects to the ingest (a wrong URL or key fails here), starts
    /// the encoder, taps every pushed track of the meeting.
    pub async fn start_livestream(
        &self,
        media: &Loops,
        meeting: &str,
        route: &str,
        req: StartLivestreamRequest,
    ) -> Result<StartLivestreamResponse, ApiError> {
        if self.is_live(meeting) {
            return Err(ApiError::Conflict("this meeting is already being streamed"));
        }
        let target = RtmpTarget::parse(&req.url, StreamKey::new(req.stream_key))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let started = SystemTime::now();
        let output = Output::Rtmp(target);
        let id = self
            .start(
                media,
                meeting,
                route,
                Purpose::Livestream,
                output,
                &req.scene,
            )
            .await?;
        Ok(StartLivestreamResponse {
            livestream_id: id,
            started_at_ms: unix_ms(started),
        })
    }

    /// Composes `meeting` into one MP4 whose bytes go to `file` (a file of its recording).
    pub async fn start_recording(
        &self,
        media: &Loops,
        meeting: &str,
        route: &str,
        file: mpsc::Sender<StreamedChunk>,
        scene: &CompositionScene,
    ) -> Result<(), ApiError> {
        let output = Output::Mp4(Box::new(ChannelWriter(file.clone())));
        self.start(media, meeting, route, Purpose::Recording, output, scene)
            .await?;
        self.file_ends
            .lock()
            .unwrap()
            .insert(meeting.to_owned(), file);
        Ok(())
    }

    async fn start(
        &self,
        media: &Loops,
        meeting: &str,
        route: &str,
        purpose: Purpose,
        output: Output,
        scene: &CompositionScene,
    ) -> Result<String, ApiError> {
        // Checked again when it is entered below; this spares starting ffmpeg for nothing.
        // 429, not 503: the edge does not try again here but moves the room to a node with a
        // composer free (`MoveReason::Composer`).
        if self.is_full() {
            return Err(ApiError::TooMany(
                "this node runs as many compositions as its CPU allows",
            ));
        }
        let id = new_id();
        let mut settings = Settings::hd(self.work_root.join(&id));
        settings.ffmpeg = self.ffmpeg.clone();
        let fps = settings.fps;
        let composition = tokio::task::spawn_blocking(move || Composition::start(settings, output))
            .await
            .map_err(|_| ApiError::Media("the composer did not start".into()))?
            // The composer's errors name neither the key nor the URL's secrets (its tests check).
            .map_err(|e| ApiError::Unavailable(livestream_error(&e)))?;
        let feeder = composition.feeder();
        feeder.scene(scene_of(scene));
        let active = Arc::new(Active {
            id: id.clone(),
            route: route.to_owned(),
            fps,
            start: Instant::now(),
            composition: Mutex::new(Some(composition)),
            feeder,
            scene: Mutex::new(scene.clone()),
            sources: Mutex::new(Vec::new()),
            dropped: Arc::new(AtomicU64::new(0)),
        });
        // Another start for this meeting, or another meeting's, may have come meanwhile.
        let refused = {
            let mut map = self.active.lock().unwrap();
            let full = map.len() >= self.max;
            match map.entry((meeting.to_owned(), purpose)) {
                std::collections::hash_map::Entry::Occupied(_) => {
                    Some(ApiError::Conflict("this meeting is already being composed"))
                }
                std::collections::hash_map::Entry::Vacant(_) if full => Some(ApiError::TooMany(
                    "this node runs as many compositions as its CPU allows",
                )),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(active.clone());
                    None
                }
            }
        };
        if let Some(e) = refused {
            finish(active).await;
            return Err(e);
        }
        self.attach(media, meeting, &active).await;
        tracing::info!(composition = %id, ?purpose, "composition started");
        Ok(id)
    }

    /// A new scene (who is in, names, speaker, screen, layout) for `meeting`'s compositions.
    pub fn set_scene(&self, meeting: &str, scene: &CompositionScene) -> Result<(), ApiError> {
        let all = self.of_meeting(meeting);
        if all.is_empty() {
            return Err(ApiError::NotFound("this meeting is not being composed"));
        }
        for active in all {
            active.feeder.scene(scene_of(scene));
            *active.scene.lock().unwrap() = scene.clone();
        }
        Ok(())
    }

    /// Stops `meeting`'s livestream: the taps go, the encoder finishes the stream.
    pub async fn stop_livestream(
        &self,
        media: &Loops,
        meeting: &str,
    ) -> Result<StopLivestreamResponse, ApiError> {
        let (id, report, _) = self
            .stop(media, meeting, Purpose::Livestream)
            .await
            .ok_or(ApiError::NotFound("this meeting is not being streamed"))?;
        Ok(StopLivestreamResponse {
            livestream_id: id,
            pictures: report.pictures,
            output_bytes: report.output_bytes,
        })
    }

    /// Ends `meeting`'s composite recording, if it has one: its MP4 is complete, with its
    /// duration, (its file task finishing the upload) when this returns.
    pub async fn stop_recording(&self, media: &Loops, meeting: &str) {
        self.recording_restarts.lock().unwrap().remove(meeting);
        self.finish_recording(media, meeting).await;
    }

    /// The composed file of `meeting`'s recording ends (complete, with its duration).
    async fn finish_recording(&self, media: &Loops, meeting: &str) {
        let report = self.stop(media, meeting, Purpose::Recording).await;
        let end = self.file_ends.lock().unwrap().remove(meeting);
        if let (Some((_, report, fps)), Some(end)) = (report, end) {
            // The composer gives pictures at a steady rate: their count is the file's length.
            let secs = report.pictures as f64 / f64::from(fps.max(1));
            let _ = end.send(StreamedChunk::End { secs }).await;
        }
    }

    /// Cleans up the compositions whose output ended on their own (the ingest went away, ffmpeg
    /// died): a composite recording's file ends where it stopped. Returns them, to report (and a
    /// recording's to start again). Called every second.
    pub async fn reap_ended(&self, media: &Loops) -> Vec<Ended> {
        let ended: Vec<Ended> = self
            .active
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, a)| {
                a.composition
                    .lock()
                    .unwrap()
                    .as_ref()
                    .is_some_and(|c| !c.is_running())
            })
            .map(|((m, p), a)| Ended {
                meeting: m.clone(),
                purpose: *p,
                route: a.route.clone(),
                scene: a.scene.lock().unwrap().clone(),
            })
            .collect();
        for e in &ended {
            tracing::warn!(purpose = ?e.purpose, "a composition's output ended on its own");
            match e.purpose {
                Purpose::Recording => self.finish_recording(media, &e.meeting).await,
                Purpose::Livestream => {
                    self.stop(media, &e.meeting, e.purpose).await;
                }
            }
        }
        ended
    }

    /// The next restart of `meeting`'s recording's composer: its number (1, 2, ...), or none
    /// once it was restarted [`MAX_RECORDING_RESTARTS`] times.
    fn next_recording_restart(&self, meeting: &str) -> Option<u32> {
        let mut restarts = self.recording_restarts.lock().unwrap();
        let n = restarts.entry(meeting.to_owned()).or_insert(0);
        *n += 1;
        (*n <= MAX_RECORDING_RESTARTS).then_some(*n)
    }

    /// Tells the edge that a composition ended on its own (and whether it was started again).
    fn report(&self, e: Ended, restarted: bool) {
        if let Some(events) = &self.events {
            let _ = events.send(edgemeet_protocol::node::NodeEvent::CompositionEnded {
                route: e.route,
                room: e.meeting,
                purpose: match e.purpose {
                    Purpose::Livestream => "livestream",
                    Purpose::Recording => "recording",
                }
                .into(),
                restarted,
            });
        }
    }

    /// Ends every composition (node shutdown).
    pub async fn stop_all(&self, media: &Loops) {
        let keys: Vec<(String, Purpose)> = self.active.lock().unwrap().keys().cloned().collect();
        for (meeting, purpose) in keys {
            self.stop(media, &meeting, purpose).await;
        }
    }

    async fn stop(
        &self,
        media: &Loops,
        meeting: &str,
        purpose: Purpose,
    ) -> Option<(String, edgemeet_composer::Report, u32)> {
        let active = self
            .active
            .lock()
            .unwrap()
            .remove(&(meeting.to_owned(), purpose))?;
        if let Some(lp) = media.of_room(meeting) {
            let _ = lp.untap(&active.id).await;
        }
        let (id, fps) = (active.id.clone(), active.fps);
        let report = finish(active).await;
        // The process's folder goes with its last composition (fails while others run).
        let _ = std::fs::remove_dir(&self.work_root);
        tracing::info!(composition = %id, ?purpose, pictures = report.pictures, "composition stopped");
        Some((id, report, fps))
    }

    /// Taps the tracks of `meeting` that its compositions do not take yet (at the start, and
    /// after every push): each into a decoder of its own.
    pub async fn attach_loop(&self, media: &Loops, meeting: &str) {
        for active in self.of_meeting(meeting) {
            self.attach(media, meeting, &active).await;
        }
    }

    async fn attach(&self, media: &Loops, meeting: &str, active: &Arc<Active>) {
        let Some(lp) = media.of_room(meeting) else {
            return;
        };
        let Ok(tracks) = lp.recordable(meeting, &active.id).await else {
            return;
        };
        let mut taps = Vec::new();
        for t in tracks {
            let mime = t.mime.to_ascii_lowercase();
            if !(mime == "video/vp8" || mime == "audio/opus") {
                tracing::info!(composition = %active.id, "track codec not composable; skipped");
                continue;
            }
            let kind = if t.video {
                let (width, height) = SOURCE_SIZE;
                let source = if t.name.starts_with("screen") {
                    Source::Screen(t.participant.clone())
                } else {
                    Source::Camera(t.participant.clone())
                };
                Kind::Video {
                    source,
                    width,
                    height,
                }
            } else {
                Kind::Audio {
                    participant: t.participant.clone(),
                }
            };
            let decoder = match Decoder::start(&self.ffmpeg, kind, active.feeder.clone()) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(composition = %active.id, error = %e, "decoder did not start");
                    continue;
                }
            };
            let (tx, rx) = mpsc::channel(QUEUE);
            let need_keyframe = Arc::new(AtomicBool::new(false));
            match source::spawn(t.video, decoder, rx, need_keyframe.clone(), active.start) {
                Ok(h) => active.sources.lock().unwrap().push(h),
                Err(e) => {
                    tracing::warn!(composition = %active.id, error = %e, "source thread did not start");
                    continue;
                }
            }
            let tap = Tap::new(
                active.id.clone(),
                t.video,
                tx,
                need_keyframe,
                active.dropped.clone(),
            );
            taps.push((t.publication, LoopTap::new(tap)));
        }
        if !taps.is_empty() {
            let _ = lp.tap(taps).await;
        }
    }
}

/// Ends a composition that no loop taps any more: its sources first (their queues are closed),
/// then the encoder.
async fn finish(active: Arc<Active>) -> edgemeet_composer::Report {
    tokio::task::spawn_blocking(move || {
        let sources = std::mem::take(&mut *active.sources.lock().unwrap());
        for s in sources {
            let _ = s.join();
        }
        let composition = active.composition.lock().unwrap().take();
        match composition.map(Composition::stop) {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                tracing::warn!(composition = %active.id, error = %e, "livestream ended with an error");
                edgemeet_composer::Report::default()
            }
            None => edgemeet_composer::Report::default(),
        }
    })
    .await
    .unwrap_or_default()
}

/// What the caller is told when the stream cannot start (the composer's own words: they name
/// the host at most, never the key).
fn livestream_error(e: &edgemeet_composer::Error) -> &'static str {
    match e {
        edgemeet_composer::Error::BadTarget(_) => "bad RTMP URL",
        edgemeet_composer::Error::Rtmp(_) => "the RTMP server cannot be reached",
        edgemeet_composer::Error::RtmpProtocol(_) => "the RTMP server refused the stream",
        edgemeet_composer::Error::RtmpTls(_) => {
            "the RTMPS server's certificate is not trusted (TLS failed)"
        }
        edgemeet_composer::Error::Encoder(_) | edgemeet_composer::Error::Output(_) => {
            "the composer could not start"
        }
    }
}

/// Every second: compositions that ended on their own are cleaned up and reported; a composite
/// recording's composer is started again into a further file of the recording while the
/// recording runs (a few times).
pub async fn watch(shared: Arc<crate::node::Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let compositions = &shared.compositions;
                for e in compositions.reap_ended(&shared.media).await {
                    let restarted = e.purpose == Purpose::Recording
                        && restart_recording(&shared, &e).await;
                    compositions.report(e, restarted);
                }
            }
            _ = crate::node::stopped(&mut stop) => return,
        }
    }
}

/// Starts `e`'s recording's composer again into a further file (`meeting-2.mp4`, ...), if the
/// recording still runs and it was not restarted too often. Whether it was.
async fn restart_recording(shared: &Arc<crate::node::Shared>, e: &Ended) -> bool {
    if !shared.recordings.is_recording(&e.meeting) {
        return false;
    }
    let Some(n) = shared.compositions.next_recording_restart(&e.meeting) else {
        return false;
    };
    let name = format!("meeting-{}.mp4", n + 1);
    let Some(file) = shared.recordings.streamed_mp4(&e.meeting, &name) else {
        return false;
    };
    match shared
        .compositions
        .start_recording(&shared.media, &e.meeting, &e.route, file, &e.scene)
        .await
    {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(error = %err, "a recording's composer did not start again");
            false
        }
    }
}
