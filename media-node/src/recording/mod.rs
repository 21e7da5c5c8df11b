//! Recording: a meeting's pushed tracks, depacketized and muxed without transcoding into one
//! WebM (VP8 + Opus) per participant, streamed to S3-compatible storage (multipart), then a
//! manifest (with the recorder's Dropbox token sealed at once) for the uploader.
//!
//! Media stays in memory (queues, the current cluster, at most a part per file) and in S3.

pub mod config;
mod ebml;
mod file;
pub mod tap;
pub(crate) mod timeline;
pub(crate) mod vp8;
pub(crate) mod webm;

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use edgemeet_protocol::job::{DropboxCredentials, RecordingFile, SealedDropboxToken};
use edgemeet_protocol::node::{RecordingDropbox, StartRecordingResponse, StopRecordingResponse};
use edgemeet_uploader::{RecordingWriter, Store, TokenKey};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use self::config::RecordingConfig;
use self::file::FileTask;
use self::tap::Tap;
use crate::error::ApiError;
use crate::node::Shared;

struct Ready {
    store: Store,
    key: TokenKey,
    part_size: usize,
    queue: usize,
    require_dropbox: bool,
    journal_interval: std::time::Duration,
}

/// What a streamed file of a recording is given: its bytes as they are made, then (before the
/// sender is dropped) its duration.
pub enum StreamedChunk {
    Bytes(Vec<u8>),
    End { secs: f64 },
}

/// The node's recordings: at most one per meeting.
pub struct Recordings {
    ready: Option<Ready>,
    active: Mutex<HashMap<String, Arc<Active>>>,
}

/// One file being recorded: which kinds of track it has taken.
struct FileSlot {
    participant: String,
    tx: mpsc::Sender<tap::TapPacket>,
    video: bool,
    audio: bool,
    fixed: Arc<AtomicBool>,
    need_keyframe: Arc<AtomicBool>,
}

struct Active {
    id: String,
    meeting: String,
    started: SystemTime,
    start: Instant,
    sealed: Option<SealedDropboxToken>,
    stop: watch::Sender<bool>,
    slots: Mutex<Vec<FileSlot>>,
    tasks: Mutex<Vec<JoinHandle<Option<RecordingFile>>>>,
    dropped: Arc<AtomicU64>,
    /// Rewrites `pending.json` while the recording runs (its sign of life for the uploader).
    alive: Mutex<Option<JoinHandle<()>>>,
    /// A file per person (off: the recording holds only the composed video).
    per_person: bool,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Meeting ids become part of the manifest: `[A-Za-z0-9_-]{1,64}`.
fn valid_meeting(m: &str) -> bool {
    !m.is_empty()
        && m.len() <= 64
        && m.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

impl Recordings {
    /// Recording is enabled when `cfg` is given (already validated).
    pub fn new(cfg: Option<&RecordingConfig>) -> Self {
        let ready = cfg.and_then(|c| {
            edgemeet_uploader::install_crypto_provider();
            let key = TokenKey::from_base64(&c.encryption_key).ok()?;
            Some(Ready {
                store: Store::new(&c.s3),
                key,
                part_size: c.part_size_mib * 1024 * 1024,
                queue: c.queue_packets,
                require_dropbox: c.require_dropbox,
                journal_interval: std::time::Duration::from_millis(c.journal_interval_ms),
            })
        });
        Self {
            ready,
            active: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_recording(&self, meeting: &str) -> bool {
        self.active.lock().unwrap().contains_key(meeting)
    }

    /// Starts recording `meeting`: seals the token at once, taps every pushed track of it.
    pub async fn start(
        &self,
        shared: &Arc<Shared>,
        meeting: &str,
        dropbox: Option<RecordingDropbox>,
        continue_from: Option<String>,
        per_person: bool,
    ) -> Result<StartRecordingResponse, ApiError> {
        let ready = self.ready.as_ref().ok_or(ApiError::Unavailable(
            "recording is not configured on this node",
        ))?;
        if !valid_meeting(meeting) {
            return Err(ApiError::BadRequest(
                "meeting id must be 1-64 characters of A-Z a-z 0-9 _ -".into(),
            ));
        }
        // A room that moved off a dead node: the recorder's grant comes from the recording
        // there (sealed for that recording of this same meeting, or it does not open).
        let carried = match (&dropbox, continue_from) {
            (None, Some(old)) => Self::carried_grant(ready, meeting, &old).await,
            _ => None,
        };
        if dropbox.is_none() && carried.is_none() && ready.require_dropbox {
            return Err(ApiError::BadRequest(
                "this node records for Dropbox: the recorder's dropbox grant is required".into(),
            ));
        }
        // The id derives from the recorder's status token (one way): the uploader finds the
        // status from the token alone.
        let (id, status_token) = edgemeet_uploader::status::new_recording_ids();
        let sealed = match dropbox {
            Some(d) => {
                if d.access_token.is_empty() || d.app_key.is_empty() {
                    return Err(ApiError::BadRequest(
                        "dropbox needs accessToken and appKey".into(),
                    ));
                }
                let creds = DropboxCredentials {
                    access_token: d.access_token,
                    refresh_token: d.refresh_token.filter(|r| !r.is_empty()),
                };
                let sealed = ready
                    .key
                    .seal(&id, meeting, &d.app_key, &creds)
                    .map_err(|e| ApiError::Media(format!("cannot seal the token: {e}")))?;
                Some(sealed)
            }
            None => match carried {
                Some((app_key, creds)) => Some(
                    ready
                        .key
                        .seal(&id, meeting, &app_key, &creds)
                        .map_err(|e| ApiError::Media(format!("cannot seal the token: {e}")))?,
                ),
                None => None,
            },
        };
        let started = SystemTime::now();
        let active = Arc::new(Active {
            id: id.clone(),
            meeting: meeting.to_owned(),
            started,
            start: Instant::now(),
            sealed,
            stop: watch::channel(false).0,
            slots: Mutex::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
            dropped: Arc::new(AtomicU64::new(0)),
            alive: Mutex::new(None),
            per_person,
        });
        {
            let mut map = self.active.lock().unwrap();
            if map.contains_key(meeting) {
                return Err(ApiError::Conflict("this meeting is already being recorded"));
            }
            map.insert(meeting.to_owned(), active.clone());
        }
        self.attach_loop(&shared.media, meeting).await;
        // The status link answers "recording" from now on (until the uploader takes over).
        if let Err(e) =
            edgemeet_uploader::status::write_recording_started(&ready.store, &id, started).await
        {
            tracing::warn!(recording = %id, error = %e, "recording status not written; the link answers once it is delivered");
        }
        // What the uploader needs to finish the recording from its journal if this node dies
        // (the sealed token, as in a manifest), rewritten while it runs as a sign of life.
        let alive = {
            let (store, id, meeting) = (ready.store.clone(), id.clone(), meeting.to_owned());
            let sealed = active.sealed.clone();
            let mut stop = active.stop.subscribe();
            tokio::spawn(async move {
                loop {
                    let write = edgemeet_uploader::journal::write_pending(
                        &store,
                        &id,
                        &meeting,
                        started,
                        sealed.as_ref(),
                    );
                    if let Err(e) = write.await {
                        tracing::warn!(recording = %id, error = %e, "recording journal: pending not written");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(edgemeet_uploader::journal::PENDING_REFRESH) => {}
                        _ = crate::node::stopped(&mut stop) => break,
                    }
                }
            })
        };
        *active.alive.lock().unwrap() = Some(alive);
        tracing::info!(recording = %id, "recording started");
        Ok(StartRecordingResponse {
            recording_id: id,
            started_at_ms: unix_ms(started),
            status_token: Some(status_token),
        })
    }

    /// The recorder's grant as sealed for `old`, this meeting's recording on its previous node.
    async fn carried_grant(
        ready: &Ready,
        meeting: &str,
        old: &str,
    ) -> Option<(String, DropboxCredentials)> {
        // A recording id: 32 lowercase hex digits (nothing else reaches a storage key).
        let well_formed =
            old.len() == 32 && old.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        if !well_formed {
            return None;
        }
        let sealed = match edgemeet_uploader::journal::sealed_token(&ready.store, old).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                tracing::info!(recording = %old, "no grant to carry over from the previous recording");
                return None;
            }
            Err(e) => {
                tracing::warn!(recording = %old, error = %e, "previous recording unreadable");
                return None;
            }
        };
        match ready.key.open_sealed(old, meeting, &sealed) {
            Ok(creds) => Some((sealed.app_key, creds)),
            Err(e) => {
                tracing::warn!(recording = %old, error = %e, "previous recording's grant does not open for this meeting");
                None
            }
        }
    }

    /// The file a participant's track of kind `video` goes to (a new one when its files hold
    /// that kind already): its queue and its keyframe flag. None: the codec is not recordable.
    fn slot(
        &self,
        ready: &Ready,
        active: &Arc<Active>,
        participant: &str,
        video: bool,
        mime: &str,
    ) -> Option<(mpsc::Sender<tap::TapPacket>, Arc<AtomicBool>)> {
        let mime = mime.to_ascii_lowercase();
        if !(mime == "video/vp8" || mime == "audio/opus") {
            tracing::info!(recording = %active.id, "track codec not recordable; skipped");
            return None;
        }
        let mut slots = active.slots.lock().unwrap();
        let free = slots.iter().position(|s| {
            s.participant == participant
                && !s.fixed.load(Relaxed)
                && if video { !s.video } else { !s.audio }
        });
        let i = match free {
            Some(i) => i,
            None => {
                let n = slots.len() + 1;
                let name = format!("{}-p{n}.webm", &active.id[..8]);
                let (tx, rx) = mpsc::channel(ready.queue);
                let fixed = Arc::new(AtomicBool::new(false));
                let need_keyframe = Arc::new(AtomicBool::new(false));
                let writer = RecordingWriter::new(
                    ready.store.clone(),
                    active.id.clone(),
                    active.meeting.clone(),
                    active.started,
                )
                .with_part_size(ready.part_size);
                let task = FileTask {
                    name: name.clone(),
                    writer,
                    start: active.start,
                    part_size: ready.part_size,
                    rx,
                    stop: active.stop.subscribe(),
                    fixed: fixed.clone(),
                    need_keyframe: need_keyframe.clone(),
                    journal: Some(file::Journal::new(
                        edgemeet_uploader::journal::JournalWriter::new(
                            ready.store.clone(),
                            &active.id,
                            &name,
                        ),
                        ready.journal_interval,
                    )),
                };
                active.tasks.lock().unwrap().push(tokio::spawn(task.run()));
                slots.push(FileSlot {
                    participant: participant.to_owned(),
                    tx,
                    video: false,
                    audio: false,
                    fixed,
                    need_keyframe,
                });
                slots.len() - 1
            }
        };
        let slot = &mut slots[i];
        if video {
            slot.video = true;
        } else {
            slot.audio = true;
        }
        Some((slot.tx.clone(), slot.need_keyframe.clone()))
    }

    /// A file of `meeting`'s recording fed with bytes as they come (the composed MP4): the
    /// returned sender takes them; the file is finished, and delivered with the others, once the
    /// sender is dropped. None: the meeting is not recorded.
    pub fn streamed_mp4(&self, meeting: &str, name: &str) -> Option<mpsc::Sender<StreamedChunk>> {
        let ready = self.ready.as_ref()?;
        let active = self.active.lock().unwrap().get(meeting).cloned()?;
        let (tx, mut rx) = mpsc::channel::<StreamedChunk>(64);
        let part_size = ready.part_size;
        let writer = RecordingWriter::new(
            ready.store.clone(),
            active.id.clone(),
            active.meeting.clone(),
            active.started,
        )
        .with_part_size(ready.part_size);
        let (name, id) = (format!("{}-{name}", &active.id[..8]), active.id.clone());
        let task = tokio::spawn(async move {
            let mut file = match writer.create_file(&name, "video/mp4").await {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(recording = %id, error = %e, "composed file not created");
                    return None;
                }
            };
            // The first part stays here until the duration is known (its head says 0 until
            // then); the rest streams.
            let (mut first, mut streaming, mut secs) = (Vec::new(), false, None);
            while let Some(chunk) = rx.recv().await {
                let bytes = match chunk {
                    StreamedChunk::End { secs: s } => {
                        secs = Some(s);
                        continue;
                    }
                    StreamedChunk::Bytes(b) if !streaming => {
                        first.extend_from_slice(&b);
                        if first.len() < part_size {
                            continue;
                        }
                        streaming = true;
                        file.hold_first_part();
                        first.split_off(part_size)
                    }
                    StreamedChunk::Bytes(b) => b,
                };
                if let Err(e) = file.write(&bytes).await {
                    tracing::warn!(recording = %id, error = %e, "composed file failed");
                    file.abort().await;
                    return None;
                }
            }
            if first.is_empty() {
                file.abort().await;
                return None;
            }
            if let Some(s) = secs
                && !edgemeet_composer::mp4::set_duration(&mut first, s)
            {
                tracing::warn!(recording = %id, "composed file's head not found; its duration stays unset");
            }
            let done = if streaming {
                file.finish_with_first_part(first).await
            } else {
                match file.write(&first).await {
                    Ok(()) => file.finish().await,
                    Err(e) => Err(e),
                }
            };
            match done {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::warn!(recording = %id, error = %e, "composed file not finished");
                    None
                }
            }
        });
        active.tasks.lock().unwrap().push(task);
        Some(tx)
    }

    /// Taps the tracks of `meeting` on the media loop that its recording does not hold yet
    /// (at start, and after a push while it records): each a `tap::LoopTap` the loop owns.
    pub async fn attach_loop(&self, media: &crate::media_loop::Loops, meeting: &str) {
        let Some(ready) = &self.ready else { return };
        // The room's loop holds all its tracks.
        let Some(media) = media.of_room(meeting) else {
            return;
        };
        let Some(active) = self.active.lock().unwrap().get(meeting).cloned() else {
            return;
        };
        // Only the composed video: its own taps feed it (`composition`), none here.
        if !active.per_person {
            return;
        }
        let Ok(mut tracks) = media.recordable(meeting, &active.id).await else {
            return;
        };
        // Stable file order: by session, video first.
        tracks.sort_by(|a, b| (&a.session_id, !a.video).cmp(&(&b.session_id, !b.video)));
        let mut taps = Vec::new();
        for t in tracks {
            if let Some((tx, need_keyframe)) =
                self.slot(ready, &active, &t.participant, t.video, &t.mime)
            {
                let sink = Tap::new(
                    active.id.clone(),
                    t.video,
                    tx,
                    need_keyframe,
                    active.dropped.clone(),
                );
                taps.push((t.publication, tap::LoopTap::new(sink)));
            }
        }
        if !taps.is_empty() {
            let _ = media.tap(taps).await;
        }
    }

    /// Stops and finalizes `meeting`'s recording: files completed, then the manifest.
    pub async fn stop(&self, meeting: &str) -> Result<StopRecordingResponse, ApiError> {
        let active = self
            .active
            .lock()
            .unwrap()
            .remove(meeting)
            .ok_or(ApiError::NotFound(
                "no recording in progress for this meeting",
            ))?;
        let ended = SystemTime::now();
        // The loop drops its taps of this recording once their file tasks are gone.
        active.slots.lock().unwrap().clear();
        active.stop.send_replace(true);
        let tasks = std::mem::take(&mut *active.tasks.lock().unwrap());
        let mut files = Vec::new();
        for t in tasks {
            if let Ok(Some(f)) = t.await {
                files.push(f);
            }
        }
        let n = files.len() as u32;
        let dropped = active.dropped.load(Relaxed);
        let ready = self.ready.as_ref().expect("a recording implies a config");
        let alive = active.alive.lock().unwrap().take();
        if let Some(alive) = alive {
            let _ = alive.await;
        }
        if files.is_empty() {
            // Nothing to deliver: the status written at start goes too (its link then says
            // "unknown", like any expired one).
            let status = format!(
                "{}{}/{}",
                ready.store.prefix(),
                active.id,
                edgemeet_protocol::job::STATUS_FILE
            );
            let _ = ready.store.delete(&status).await;
            tracing::info!(recording = %active.id, "recording stopped with no media; nothing stored");
        } else {
            let mut w = RecordingWriter::new(
                ready.store.clone(),
                active.id.clone(),
                active.meeting.clone(),
                active.started,
            );
            for f in files {
                w.add_file(f);
            }
            w.finish(ended, active.sealed.clone()).await.map_err(|e| {
                tracing::warn!(recording = %active.id, error = %e, "manifest not written");
                ApiError::Media("recording could not be finalized in storage".into())
            })?;
            tracing::info!(recording = %active.id, files = n, dropped, "recording finalized");
        }
        // Finished (manifest written, or nothing to deliver): the journal has no use any more.
        if let Err(e) = edgemeet_uploader::journal::clear(&ready.store, &active.id).await {
            tracing::warn!(recording = %active.id, error = %e, "recording journal not deleted; the uploader deletes it with the recording");
        }
        Ok(StopRecordingResponse {
            recording_id: active.id.clone(),
            started_at_ms: unix_ms(active.started),
            ended_at_ms: unix_ms(ended).max(unix_ms(active.started)),
            files: n,
        })
    }

    /// Finalizes every recording (node shutdown).
    pub async fn stop_all(&self) {
        let meetings: Vec<String> = self.active.lock().unwrap().keys().cloned().collect();
        for m in meetings {
            let _ = self.stop(&m).await;
        }
    }
}
