//! The uploader's loop: poll the bucket, purge what is past retention, upload and delete the rest.
//! Also the embedding API: [`start`] -> [`UploaderHandle`] -> [`UploaderHandle::shutdown`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use edgemeet_protocol::job::{PROGRESS_FILE, RecordingManifest};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Destination};
use crate::crypto::TokenKey;
use crate::dropbox::{DropboxClient, Token};
use crate::error::Error;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::purge::{Group, delete_group, expired, group};
use crate::store::Store;
use crate::upload::{Ctx, upload_recording};

enum Dest {
    Dropbox {
        client: DropboxClient,
        key: Box<TokenKey>,
    },
    Local(PathBuf),
}

struct Worker {
    config: Config,
    store: Store,
    dest: Dest,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
}

/// A running uploader.
pub struct UploaderHandle {
    shutdown: watch::Sender<bool>,
    poke: Arc<Notify>,
    task: JoinHandle<()>,
    http: Option<(SocketAddr, JoinHandle<()>)>,
    metrics: Arc<Metrics>,
}

impl UploaderHandle {
    /// Where `/metrics`, `/healthz` and `/readyz` are served, if enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|(a, _)| *a)
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

    /// Stops after the current request; progress is in the bucket, so nothing is lost.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        if let Some((_, h)) = self.http {
            let _ = h.await;
        }
    }
}

/// Starts the uploader with the real clock.
pub async fn start(config: Config) -> Result<UploaderHandle, Error> {
    start_with_clock(config, Arc::new(SystemClock)).await
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
    let dest =
        match &config.destination {
            Destination::Dropbox => Dest::Dropbox {
                client: DropboxClient::new(&config.dropbox)?,
                key: Box::new(config.encryption_key.clone().ok_or(
                    crate::ConfigError::Invalid {
                        field: "encryption_key",
                        reason: "is required for the Dropbox destination".into(),
                    },
                )?),
            },
            Destination::LocalFolder(p) => {
                tokio::fs::create_dir_all(p).await?;
                Dest::Local(p.clone())
            }
        };
    let metrics = Arc::new(Metrics::default());
    let (tx, rx) = watch::channel(false);
    let http = match config.listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            let local = listener.local_addr()?;
            let app = crate::metrics::router(metrics.clone());
            let mut stop = rx.clone();
            let h = tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await;
            });
            tracing::info!(addr = %local, "metrics and health endpoints up");
            Some((local, h))
        }
        None => None,
    };
    let poke = Arc::new(Notify::new());
    let worker = Worker {
        config,
        store,
        dest,
        clock,
        metrics: metrics.clone(),
        shutdown: rx,
    };
    let task = tokio::spawn(worker.run(poke.clone()));
    Ok(UploaderHandle {
        shutdown: tx,
        poke,
        task,
        http,
        metrics,
    })
}

impl Worker {
    async fn run(mut self, poke: Arc<Notify>) {
        if self.store.set_lifecycle_one_day().await {
            tracing::info!("bucket lifecycle: objects expire after 1 day");
        }
        loop {
            if let Err(e) = self.poll().await {
                self.metrics.errors.fetch_add(1, Relaxed);
                if matches!(e, Error::Shutdown) {
                    break;
                }
                tracing::warn!(error = %e, "poll failed");
            }
            self.metrics.polls.fetch_add(1, Relaxed);
            tokio::select! {
                _ = tokio::time::sleep(self.config.poll_interval) => {}
                _ = poke.notified() => {}
                _ = self.shutdown.wait_for(|s| *s) => break,
            }
        }
        tracing::info!("uploader stopped");
    }

    async fn poll(&mut self) -> Result<(), Error> {
        let objects = match self.store.list().await {
            Ok(o) => o,
            Err(e) => {
                self.metrics.ready.store(false, Relaxed);
                return Err(e);
            }
        };
        self.metrics.ready.store(true, Relaxed);
        let groups = group(self.store.prefix(), objects);

        // Read manifests once; a group's retention starts at its earliest known time.
        let mut queue: Vec<(String, Group, RecordingManifest, SystemTime)> = Vec::new();
        let now = self.clock.now();
        for (id, g) in groups {
            let manifest = match &g.manifest_key {
                Some(k) => match self.store.get_small(k).await? {
                    Some(bytes) => match RecordingManifest::from_json(&bytes) {
                        Ok(m) => Some(m),
                        Err(e) => {
                            tracing::warn!(recording = %id, error = %e, "unusable manifest; left for the retention sweep");
                            None
                        }
                    },
                    None => None,
                },
                None => None,
            };
            let mut since = g.oldest();
            if let Some(m) = &manifest {
                since = since.min(SystemTime::UNIX_EPOCH + Duration::from_millis(m.started_at_ms));
            }
            if expired(since, now, self.config.retention) {
                let n = delete_group(&self.store, &g).await?;
                self.metrics.recordings_purged.fetch_add(1, Relaxed);
                self.metrics.objects_purged.fetch_add(n, Relaxed);
                tracing::info!(recording = %id, objects = n, "purged: past the retention, uploaded or not");
                continue;
            }
            if g.only_progress() {
                // Left by a crash after the manifest was deleted: the upload is done.
                delete_group(&self.store, &g).await?;
                continue;
            }
            if let Some(m) = manifest {
                queue.push((id, g, m, since));
            }
        }
        self.metrics.queue_length.store(queue.len() as u64, Relaxed);

        for (id, g, manifest, since) in queue {
            let deadline = since + self.config.retention;
            match self.process(&id, &g, &manifest, deadline).await {
                Ok(()) => {
                    self.metrics.recordings_uploaded.fetch_add(1, Relaxed);
                    self.metrics.queue_length.fetch_sub(1, Relaxed);
                    tracing::info!(recording = %id, files = manifest.files.len(), "recording delivered and deleted from storage");
                }
                Err(Error::Shutdown) => return Err(Error::Shutdown),
                Err(Error::RetentionPassed) => {
                    // The next poll's sweep deletes it.
                    tracing::warn!(recording = %id, "retention reached during upload; will be purged");
                }
                Err(e) => {
                    self.metrics.errors.fetch_add(1, Relaxed);
                    tracing::warn!(recording = %id, error = %e, "upload attempt failed; will retry next poll");
                }
            }
        }
        Ok(())
    }

    async fn process(
        &self,
        id: &str,
        g: &Group,
        manifest: &RecordingManifest,
        deadline: SystemTime,
    ) -> Result<(), Error> {
        let own = crate::job::check_place(self.store.prefix(), id, manifest)?;
        let progress_key = format!("{own}{PROGRESS_FILE}");
        let stored = self.store.get_small(&progress_key).await?;
        let mut progress = crate::job::read_progress(manifest, stored.as_deref());
        let ctx = Ctx {
            store: &self.store,
            clock: self.clock.as_ref(),
            metrics: &self.metrics,
            deadline,
            shutdown: self.shutdown.clone(),
            progress_key: progress_key.clone(),
        };
        match &self.dest {
            Dest::Dropbox { client, key } => {
                let creds = key.open(manifest)?;
                let app_key = manifest
                    .dropbox
                    .as_ref()
                    .map(|d| d.app_key.clone())
                    .unwrap_or_default();
                let mut token = Token::new(creds, app_key);
                let cfg = &self.config.dropbox;
                upload_recording(
                    &ctx,
                    client,
                    &cfg.root,
                    cfg.chunk_size,
                    manifest,
                    &mut token,
                    &mut progress,
                )
                .await?;
            }
            Dest::Local(folder) => {
                crate::local::copy_recording(&ctx, folder, manifest, &mut progress).await?
            }
        }
        // Delivered: delete media, then manifest (and with it the sealed token), then progress.
        let mut g2 = Group {
            objects: g.objects.clone(),
            manifest_key: g.manifest_key.clone(),
            progress_key: Some(progress_key.clone()),
        };
        if !g2.objects.iter().any(|o| o.key == progress_key) {
            g2.objects.push(crate::store::ObjectInfo {
                key: progress_key,
                size: 0,
                last_modified: SystemTime::UNIX_EPOCH,
            });
        }
        delete_group(&self.store, &g2).await?;
        Ok(())
    }
}
