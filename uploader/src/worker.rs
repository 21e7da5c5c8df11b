//! The uploader's loop: poll the bucket, purge what is past retention, and hand each finished
//! recording to its own delivery task, which retries with its own backoff and keeps the
//! recording's status. Also the embedding API: [`start`] -> [`UploaderHandle`] ->
//! [`UploaderHandle::shutdown`].

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use edgemeet_protocol::job::{
    DeliveryProblem, DeliveryState, MANIFEST_FILE, PROGRESS_FILE, RecordingManifest,
    RecordingStatus, UploadProgress,
};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock, unix_ms};
use crate::config::{Config, Destination};
use crate::crypto::TokenKey;
use crate::dropbox::{DropboxClient, Token};
use crate::error::Error;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::purge::{Keep, delete_group, expired, group};
use crate::status;
use crate::store::Store;
use crate::upload::{Ctx, upload_recording};

enum Dest {
    Dropbox {
        client: DropboxClient,
        key: Box<TokenKey>,
    },
    Local(PathBuf),
}

/// What the poller and every delivery task of one uploader share.
struct Shared {
    config: Config,
    store: Store,
    dest: Dest,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
}

/// How a recording's delivery task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Delivered,
    /// Cannot succeed (the status says why): left alone until the purge.
    Failed,
    /// The retention ended, the recording vanished, or storage did not answer: the purge or
    /// the next poll takes over.
    Gone,
    Shutdown,
}

/// The poll loop's own bookkeeping (owned by its task, shared with nothing).
struct Poller {
    shared: Arc<Shared>,
    running: HashMap<String, JoinHandle<Outcome>>,
    /// Recordings that failed for good in this process: not attempted again.
    parked: HashSet<String>,
    /// Each recording's retention start once read (it never changes).
    started: HashMap<String, SystemTime>,
    /// Whether the server lists multipart uploads (s3s-fs does not; markers cover it).
    list_uploads: bool,
}

/// A running uploader.
pub struct UploaderHandle {
    shutdown: watch::Sender<bool>,
    poke: Arc<Notify>,
    task: JoinHandle<()>,
    http: Option<(SocketAddr, JoinHandle<()>)>,
    status_http: Option<(SocketAddr, JoinHandle<()>)>,
    metrics: Arc<Metrics>,
    status_router: axum::Router,
}

impl UploaderHandle {
    /// Where `/metrics`, `/healthz` and `/readyz` are served, if enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|(a, _)| *a)
    }

    /// Where the status links (`/v1/recording-status/{token}`) are served, if enabled.
    pub fn status_addr(&self) -> Option<SocketAddr> {
        self.status_http.as_ref().map(|(a, _)| *a)
    }

    /// The status-link route, for an embedder to serve on its own origin (the all-in-one).
    pub fn status_router(&self) -> axum::Router {
        self.status_router.clone()
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// Polls now instead of waiting for the interval (e.g. right after a recording is finished).
    pub fn poke(&self) {
        self.poke.notify_one();
    }

    /// Something that wakes the uploader like [`UploaderHandle::poke`], for another task to hold.
    pub fn poker(&self) -> Arc<Notify> {
        self.poke.clone()
    }

    /// Stops after the current requests (at most 5 s); progress is in the bucket, so nothing
    /// is lost.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        for (_, h) in [self.http, self.status_http].into_iter().flatten() {
            let _ = h.await;
        }
    }
}

/// Starts the uploader with the real clock.
pub async fn start(config: Config) -> Result<UploaderHandle, Error> {
    start_with_clock(config, Arc::new(SystemClock)).await
}

async fn serve(
    addr: SocketAddr,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), Error> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let h = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
    });
    Ok((local, h))
}

/// Starts the uploader with an injected clock (tests move it past the retention).
pub async fn start_with_clock(
    config: Config,
    clock: Arc<dyn Clock>,
) -> Result<UploaderHandle, Error> {
    crate::install_crypto_provider();
    let store = Store::new(&config.s3);
    if config.s3.create_bucket {
        store.ensure_bucket().await?;
    }
    let dest = match &config.destination {
        Destination::Dropbox => Dest::Dropbox {
            client: DropboxClient::new(&config.dropbox)?,
            key: Box::new(
                config
                    .encryption_key
                    .clone()
                    .ok_or(crate::ConfigError::invalid(
                        "encryption_key",
                        "is required for the Dropbox destination",
                    ))?,
            ),
        },
        Destination::LocalFolder(p) => {
            tokio::fs::create_dir_all(p).await?;
            Dest::Local(p.clone())
        }
    };
    let metrics = Arc::new(Metrics::default());
    let (tx, rx) = watch::channel(false);
    let status_router = status::router(store.clone(), config.retention, clock.clone());
    let http = match config.listen {
        Some(addr) => {
            let served = serve(addr, crate::metrics::router(metrics.clone()), rx.clone()).await?;
            tracing::info!(addr = %served.0, "metrics and health endpoints up");
            Some(served)
        }
        None => None,
    };
    let status_http = match config.status_listen {
        Some(addr) => {
            let app = status_router
                .clone()
                .route("/healthz", axum::routing::get(|| async { "ok" }));
            let served = serve(addr, app, rx.clone()).await?;
            tracing::info!(addr = %served.0, "recording status links served");
            Some(served)
        }
        None => None,
    };
    let poke = Arc::new(Notify::new());
    let shared = Arc::new(Shared {
        config,
        store,
        dest,
        clock,
        metrics: metrics.clone(),
        shutdown: rx,
    });
    let poller = Poller {
        shared,
        running: HashMap::new(),
        parked: HashSet::new(),
        started: HashMap::new(),
        list_uploads: true,
    };
    let task = tokio::spawn(poller.run(poke.clone()));
    Ok(UploaderHandle {
        shutdown: tx,
        poke,
        task,
        http,
        status_http,
        metrics,
        status_router,
    })
}

impl Poller {
    async fn run(mut self, poke: Arc<Notify>) {
        let sh = self.shared.clone();
        if sh.store.set_lifecycle_one_day().await {
            tracing::info!("bucket lifecycle: objects expire after 1 day");
        }
        let mut shutdown = sh.shutdown.clone();
        loop {
            self.reap().await;
            if let Err(e) = self.poll().await {
                sh.metrics.errors.fetch_add(1, Relaxed);
                tracing::warn!(error = %e, "poll failed");
            }
            sh.metrics.polls.fetch_add(1, Relaxed);
            tokio::select! {
                _ = tokio::time::sleep(sh.config.poll_interval) => {}
                _ = poke.notified() => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
        // Deliveries stop at their next step; one stuck in a long request is cut off (its
        // progress is in the bucket).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        for (_, mut h) in self.running.drain() {
            if tokio::time::timeout_at(deadline, &mut h).await.is_err() {
                h.abort();
                let _ = h.await;
            }
        }
        tracing::info!("uploader stopped");
    }

    /// Collects the deliveries that ended.
    async fn reap(&mut self) {
        let done: Vec<String> = self
            .running
            .iter()
            .filter(|(_, h)| h.is_finished())
            .map(|(id, _)| id.clone())
            .collect();
        for id in done {
            let Some(h) = self.running.remove(&id) else {
                continue;
            };
            match h.await {
                Ok(Outcome::Failed) => {
                    self.parked.insert(id);
                }
                Ok(Outcome::Delivered | Outcome::Gone | Outcome::Shutdown) => {}
                Err(e) => {
                    tracing::warn!(recording = %id, error = %e, "delivery task ended abnormally")
                }
            }
        }
    }

    /// When a recording's retention started: its manifest's or status's start (read once),
    /// or the oldest thing it has in storage, whichever is earlier.
    async fn since(&mut self, id: &str, g: &crate::purge::Group) -> Result<SystemTime, Error> {
        let oldest = g.oldest();
        if let Some(t) = self.started.get(id) {
            return Ok(oldest.min(*t));
        }
        let store = &self.shared.store;
        let mut started_ms = None;
        if let Some(k) = &g.manifest_key
            && let Some(bytes) = store.get_small(k).await?
        {
            started_ms = RecordingManifest::from_json(&bytes)
                .ok()
                .map(|m| m.started_at_ms);
        }
        if started_ms.is_none() && g.status_key.is_some() {
            started_ms = status::read(store, id).await?.map(|s| s.started_at_ms);
        }
        let Some(ms) = started_ms else {
            return Ok(oldest);
        };
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
        self.started.insert(id.to_owned(), t);
        Ok(oldest.min(t))
    }

    async fn poll(&mut self) -> Result<(), Error> {
        let sh = self.shared.clone();
        let objects = match sh.store.list().await {
            Ok(o) => o,
            Err(e) => {
                sh.metrics.ready.store(false, Relaxed);
                return Err(e);
            }
        };
        sh.metrics.ready.store(true, Relaxed);
        let uploads = if self.list_uploads {
            match sh.store.list_uploads().await {
                Ok(Some(u)) => u,
                Ok(None) => {
                    self.list_uploads = false;
                    tracing::info!(
                        "storage does not list multipart uploads; the writer's markers name them"
                    );
                    Vec::new()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listing multipart uploads failed");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let groups = group(sh.store.prefix(), objects, uploads);
        let now = sh.clock.now();
        for (id, g) in &groups {
            let since = self.since(id, g).await?;
            if expired(since, now, sh.config.retention) {
                // Stop its delivery first: nothing may write into the recording after this.
                if let Some(h) = self.running.remove(id) {
                    h.abort();
                    let _ = h.await;
                }
                let n = delete_group(&sh.store, id, g, Keep::Nothing).await?;
                self.parked.remove(id);
                self.started.remove(id);
                sh.metrics.recordings_purged.fetch_add(1, Relaxed);
                sh.metrics.objects_purged.fetch_add(n, Relaxed);
                tracing::info!(recording = %id, objects = n, uploads = g.uploads.len(), "purged: past the retention, delivered or not");
                continue;
            }
            if g.only_progress() {
                // Left by a crash after the manifest was deleted: the delivery is done.
                if let Some(k) = &g.progress_key {
                    sh.store.delete(k).await?;
                }
                continue;
            }
            if g.manifest_key.is_none()
                && !self.running.contains_key(id)
                && let Some(newest) =
                    crate::journal::journal_state(sh.store.prefix(), id, &g.objects)
                && now
                    .duration_since(newest)
                    .is_ok_and(|quiet| quiet >= sh.config.salvage_after)
            {
                // Its node stopped writing without finishing it: the journal becomes the files,
                // then the delivery goes on as for any finished recording.
                let queued = InQueue::new(&sh.metrics);
                let (sh2, id2) = (sh.clone(), id.clone());
                let task = async move {
                    let _queued = queued;
                    match crate::journal::salvage(&sh2.store, &id2).await {
                        Ok(crate::journal::Salvaged::Files(_)) => deliver(sh2, id2, since).await,
                        Ok(crate::journal::Salvaged::Nothing) => Outcome::Gone,
                        Err(e) => {
                            // Tried again at the next poll; the purge ends it after 24 h.
                            tracing::warn!(recording = %id2, error = %e, "salvage failed");
                            Outcome::Gone
                        }
                    }
                };
                self.running.insert(id.clone(), tokio::spawn(task));
                continue;
            }
            if g.manifest_key.is_some()
                && !self.running.contains_key(id)
                && !self.parked.contains(id)
            {
                let queued = InQueue::new(&sh.metrics);
                let task = deliver(sh.clone(), id.clone(), since);
                let task = async move {
                    let _queued = queued;
                    task.await
                };
                self.running.insert(id.clone(), tokio::spawn(task));
            }
        }
        self.parked.retain(|id| groups.contains_key(id));
        self.started.retain(|id, _| groups.contains_key(id));
        Ok(())
    }
}

/// Counts a delivery in `queue_length` while it exists (aborted ones included).
struct InQueue(Arc<Metrics>);

impl InQueue {
    fn new(metrics: &Arc<Metrics>) -> Self {
        metrics.queue_length.fetch_add(1, Relaxed);
        Self(metrics.clone())
    }
}

impl Drop for InQueue {
    fn drop(&mut self) {
        self.0.queue_length.fetch_sub(1, Relaxed);
    }
}

/// Writes the status; a failure is logged, not fatal (the next change writes it again).
async fn put_status(sh: &Shared, id: &str, st: &RecordingStatus) {
    if let Err(e) = status::write(&sh.store, id, st).await {
        tracing::warn!(recording = %id, error = %e, "status not written");
    }
}

/// The wait before attempt `failures + 1`: `retry_initial` doubled per failure, at most
/// `retry_max`.
fn backoff(sh: &Shared, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(30));
    sh.config
        .retry_initial
        .saturating_mul(factor)
        .min(sh.config.retry_max)
}

/// Delivers one recording: attempts until delivered, failed for good, past its retention or
/// shut down, waiting between attempts on its own backoff (persisted in its status, so a restart
/// does not hurry it).
/// Delivers one recording and counts how it ended, as it ends (the main loop reaps the task on
/// its next tick: counting there left the metrics a poll behind).
async fn deliver(sh: Arc<Shared>, id: String, since: SystemTime) -> Outcome {
    let outcome = deliver_once(sh.clone(), id, since).await;
    match outcome {
        Outcome::Delivered => sh.metrics.recordings_uploaded.fetch_add(1, Relaxed),
        Outcome::Failed => sh.metrics.recordings_failed.fetch_add(1, Relaxed),
        Outcome::Gone | Outcome::Shutdown => 0,
    };
    outcome
}

async fn deliver_once(sh: Arc<Shared>, id: String, since: SystemTime) -> Outcome {
    let deadline = since + sh.config.retention;
    let own = format!("{}{id}/", sh.store.prefix());
    let mut shutdown = sh.shutdown.clone();
    let mut st = match status::read(&sh.store, &id).await {
        Ok(Some(s)) if s.state != DeliveryState::Recording => s,
        Ok(_) => RecordingStatus::new(DeliveryState::Queued, unix_ms(since)),
        // Not knowing the status (it may say "failed for good"), try at the next poll.
        Err(e) => {
            tracing::warn!(recording = %id, error = %e, "status not readable; next poll");
            return Outcome::Gone;
        }
    };
    let manifest = match read_manifest(&sh, &id, &own).await {
        Ok(Some(m)) => m,
        Ok(None) => return Outcome::Gone,
        Err(e) if e.problem().1 => {
            tracing::warn!(recording = %id, error = %e, "manifest not readable; next poll");
            return Outcome::Gone;
        }
        Err(e) => {
            // Unusable whatever we do: say so, and leave it to the purge.
            tracing::warn!(recording = %id, error = %e, "manifest refused; left for the purge");
            sh.metrics.errors.fetch_add(1, Relaxed);
            st.state = DeliveryState::Failed;
            st.problem = Some(e.problem().0);
            put_status(&sh, &id, &st).await;
            return Outcome::Failed;
        }
    };
    st.started_at_ms = manifest.started_at_ms;
    st.files = manifest.files.len() as u32;
    match (st.state, st.problem) {
        (DeliveryState::Delivered, _) => return finish_delivered(&sh, &id, &own).await,
        (DeliveryState::Failed, Some(p)) if p != DeliveryProblem::DropboxFull => {
            return Outcome::Failed;
        }
        (DeliveryState::Queued, _) => put_status(&sh, &id, &st).await,
        _ => {}
    }
    let mut failures = 0u32;
    loop {
        if let Some(at) = st.next_attempt_at_ms {
            let wait = Duration::from_millis(at.saturating_sub(unix_ms(sh.clock.now())));
            let until_deadline = deadline
                .duration_since(sh.clock.now())
                .unwrap_or(Duration::ZERO);
            tokio::select! {
                _ = tokio::time::sleep(wait.min(until_deadline)) => {}
                _ = shutdown.wait_for(|s| *s) => return Outcome::Shutdown,
            }
        }
        if *shutdown.borrow() {
            return Outcome::Shutdown;
        }
        if sh.clock.now() >= deadline {
            return Outcome::Gone;
        }
        st.state = DeliveryState::Uploading;
        st.attempts += 1;
        st.next_attempt_at_ms = None;
        put_status(&sh, &id, &st).await;
        let mut progress = UploadProgress::default();
        let result = attempt(&sh, &own, &manifest, deadline, &mut progress).await;
        let done = progress
            .files
            .iter()
            .filter(|f| f.done_path.is_some())
            .count() as u32;
        let progressed = done > st.files_delivered;
        st.files_delivered = st.files_delivered.max(done);
        match result {
            Ok(()) => {
                st.state = DeliveryState::Delivered;
                st.problem = None;
                st.files_delivered = st.files;
                st.delivered_at_ms = Some(unix_ms(sh.clock.now()));
                put_status(&sh, &id, &st).await;
                tracing::info!(recording = %id, files = manifest.files.len(), "recording delivered");
                return finish_delivered(&sh, &id, &own).await;
            }
            Err(Error::Shutdown) => return Outcome::Shutdown,
            Err(Error::RetentionPassed) => {
                tracing::warn!(recording = %id, "retention reached during delivery; will be purged");
                return Outcome::Gone;
            }
            Err(e) => {
                sh.metrics.errors.fetch_add(1, Relaxed);
                let (problem, retry) = e.problem();
                st.problem = Some(problem);
                if !retry {
                    st.state = DeliveryState::Failed;
                    put_status(&sh, &id, &st).await;
                    tracing::warn!(recording = %id, error = %e, ?problem, "delivery cannot succeed; left for the purge");
                    return Outcome::Failed;
                }
                failures = if progressed { 1 } else { failures + 1 };
                let wait = if problem == DeliveryProblem::DropboxFull {
                    // Only the recorder can fix it: try again now and then until the purge.
                    st.state = DeliveryState::Failed;
                    sh.config.retry_max
                } else {
                    st.state = DeliveryState::Retrying;
                    backoff(&sh, failures)
                };
                st.next_attempt_at_ms = Some(unix_ms(sh.clock.now() + wait));
                put_status(&sh, &id, &st).await;
                tracing::warn!(recording = %id, error = %e, ?problem, retry_in_ms = wait.as_millis() as u64, "delivery attempt failed");
            }
        }
    }
}

/// The manifest, parsed and checked to name only files of its own recording.
async fn read_manifest(
    sh: &Shared,
    id: &str,
    own: &str,
) -> Result<Option<RecordingManifest>, Error> {
    let Some(bytes) = sh.store.get_small(&format!("{own}{MANIFEST_FILE}")).await? else {
        return Ok(None);
    };
    let m = RecordingManifest::from_json(&bytes)?;
    crate::job::check_place(sh.store.prefix(), id, &m)?;
    Ok(Some(m))
}

/// One delivery attempt; `progress` is left as the attempt got it.
async fn attempt(
    sh: &Shared,
    own: &str,
    manifest: &RecordingManifest,
    deadline: SystemTime,
    progress: &mut UploadProgress,
) -> Result<(), Error> {
    let progress_key = format!("{own}{PROGRESS_FILE}");
    let stored = sh.store.get_small(&progress_key).await?;
    *progress = crate::job::read_progress(manifest, stored.as_deref());
    let ctx = Ctx {
        store: sh.store.clone(),
        clock: sh.clock.clone(),
        metrics: sh.metrics.clone(),
        deadline,
        shutdown: sh.shutdown.clone(),
        progress_key,
    };
    match &sh.dest {
        Dest::Dropbox { client, key } => {
            let creds = key.open(manifest)?;
            let app_key = manifest
                .dropbox
                .as_ref()
                .map(|d| d.app_key.clone())
                .unwrap_or_default();
            let mut token = Token::new(creds, app_key);
            let cfg = &sh.config.dropbox;
            upload_recording(
                &ctx,
                client,
                &cfg.root,
                cfg.chunk_size,
                manifest,
                &mut token,
                progress,
            )
            .await
        }
        Dest::Local(folder) => crate::local::copy_recording(&ctx, folder, manifest, progress).await,
    }
}

/// Delivered: deletes media, upload markers, manifest (and with it the sealed token) and
/// progress. The status stays, saying "delivered", until the retention ends.
async fn finish_delivered(sh: &Shared, id: &str, own: &str) -> Outcome {
    let result = async {
        let objects = sh.store.list_under(own).await?;
        let groups = group(sh.store.prefix(), objects, Vec::new());
        match groups.get(id) {
            Some(g) => delete_group(&sh.store, id, g, Keep::Status).await,
            None => Ok(0),
        }
    }
    .await;
    match result {
        Ok(_) => Outcome::Delivered,
        Err(e) => {
            // The manifest is still there: the next poll sees "delivered" and deletes again.
            tracing::warn!(recording = %id, error = %e, "delivered, but not yet deleted from storage");
            Outcome::Gone
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut config = Config::all_in_one(
            crate::S3Config::new("http://127.0.0.1:1", "b", "a", "s"),
            "/tmp/x",
        );
        config.retry_initial = Duration::from_secs(10);
        config.retry_max = Duration::from_secs(900);
        let (_tx, rx) = watch::channel(false);
        let sh = Shared {
            store: Store::new(&config.s3),
            config,
            dest: Dest::Local("/tmp/x".into()),
            clock: Arc::new(SystemClock),
            metrics: Arc::default(),
            shutdown: rx,
        };
        let secs: Vec<u64> = (1..=9).map(|f| backoff(&sh, f).as_secs()).collect();
        assert_eq!(secs, [10, 20, 40, 80, 160, 320, 640, 900, 900]);
        assert_eq!(backoff(&sh, 500).as_secs(), 900);
    }
}
