//! The node's shared state, its background tasks, and the embedding API (`MediaNode`).

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use edgemeet_protocol::node::{NodeEvent, NodeLoad};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::auth::TokenVerifier;
use crate::config::NodeConfig;
use crate::error::StartError;
use crate::media_loop::{Loops, Ports};
use crate::metrics::{Gauges, Metrics};
use crate::recording::Recordings;

/// State shared by the API handlers and background tasks. Sessions, tracks and connections are
/// not here: the media loop owns them (`media`).
pub struct Shared {
    pub cfg: NodeConfig,
    pub verifier: TokenVerifier,
    pub metrics: Arc<Metrics>,
    pub draining: AtomicBool,
    /// Drained with `migrate`: the edge moves this node's rooms elsewhere (said in heartbeats).
    pub migrate: AtomicBool,
    /// Send a heartbeat now (a drain changed): the edge should not wait for the next tick.
    pub report_now: tokio::sync::Notify,
    pub recordings: Recordings,
    /// Livestreams (issue 21), one per meeting at most.
    pub compositions: crate::composition::Compositions,
    /// The media loops: every session, connection and track, each room on one loop.
    pub media: Loops,
    /// Last CPU sample: (wall instant, process CPU seconds) and the derived load.
    cpu: Mutex<(Instant, f64, f32)>,
}

impl Shared {
    fn new(
        cfg: NodeConfig,
        metrics: Arc<Metrics>,
        media: Loops,
        events: mpsc::UnboundedSender<NodeEvent>,
    ) -> Self {
        Self {
            media,
            verifier: TokenVerifier::new(&cfg.secret, &cfg.id),
            metrics,
            draining: AtomicBool::new(cfg.draining),
            migrate: AtomicBool::new(false),
            report_now: tokio::sync::Notify::new(),
            recordings: Recordings::new(cfg.recording.as_ref()),
            compositions: crate::composition::Compositions::new(
                Some(events),
                cfg.compositions_allowed(),
            ),
            cpu: Mutex::new((Instant::now(), process_cpu_secs(), 0.0)),
            cfg,
        }
    }

    pub fn gauges(&self) -> Gauges {
        let (sessions, up, rooms, published, subscribed) = self.media.gauges();
        Gauges {
            sessions,
            // Every session that is up sends through the loop's own send path.
            sessions_direct_send: up,
            tracks_published: published,
            tracks_subscribed: subscribed,
            rooms,
            draining: self.draining.load(Relaxed),
            grants_revoked_held: self.verifier.revoked_count() as u64,
            compositions: self.compositions.count() as u64,
            max_compositions: self.cfg.compositions_allowed() as u64,
        }
    }

    /// The node's counters: the API's and every loop's, added up.
    pub fn metrics_total(&self) -> Metrics {
        self.media.metrics(&self.metrics)
    }

    /// Load for heartbeats; `bitrate_bps` is over the last sample period.
    pub fn load(&self, bitrate_bps: u64) -> NodeLoad {
        let g = self.gauges();
        let mut cpu = self.cpu.lock().unwrap();
        let (now, secs) = (Instant::now(), process_cpu_secs());
        let wall = now.duration_since(cpu.0).as_secs_f64();
        if wall >= 1.0 {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
            cpu.2 = ((secs - cpu.1) / wall / cores).clamp(0.0, 1.0) as f32;
            *cpu = (now, secs, cpu.2);
        }
        NodeLoad {
            sessions: g.sessions as u32,
            tracks: (g.tracks_published + g.tracks_subscribed) as u32,
            bitrate_bps,
            cpu: cpu.2,
            compositions: g.compositions as u32,
            max_compositions: g.max_compositions as u32,
        }
    }
}

/// CPU seconds (user + system) this process has used; 0 where /proc is missing.
pub fn process_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesized command name; utime and stime are the 12th and 13th.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Entry point for running a node, standalone or embedded.
pub struct MediaNode;

/// A running node. Dropping it does not stop it: call [`MediaNodeHandle::shutdown`].
pub struct MediaNodeHandle {
    shared: Arc<Shared>,
    addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl MediaNode {
    /// Validates `config`, binds the control API on `config.listen` and serves it, with the
    /// media loop (its own thread) and the edge-reporting task. Must run inside a tokio runtime.
    pub async fn start(config: NodeConfig) -> Result<MediaNodeHandle, StartError> {
        let listen = config.listen;
        let (router, mut handle) = Self::build(config)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
        handle.addr = Some(addr);
        let mut stop = handle.stop.subscribe();
        handle.tasks.push(tokio::spawn(async move {
            // No Nagle: answers go out at once instead of waiting for the client's delayed ACK.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "control API stopped");
            }
        }));
        tracing::info!(%addr, "media node listening");
        Ok(handle)
    }

    /// For embedding: the control API as a `Router` (paths `/v1/...`, `/healthz`, `/metrics`)
    /// to serve or nest in the host's own server, and the handle that owns the node's tasks.
    /// `config.listen` is not bound. Must run inside a tokio runtime.
    pub fn build(config: NodeConfig) -> Result<(Router, MediaNodeHandle), StartError> {
        config.validate()?;
        let metrics = Arc::new(Metrics::default());
        let (etx, erx) = mpsc::unbounded_channel::<NodeEvent>();
        let composition_events = etx.clone();
        // One port per loop: `udp_mux_port + i`, else the first free ones of the port range.
        let ports = match (config.udp_mux_port, config.udp_port_min) {
            (0, 0) => Ports::Any,
            (0, lo) => Ports::Range(lo, config.udp_port_max),
            (port, _) => Ports::Mux(port),
        };
        let media = Loops::start(
            config.media_ip,
            ports,
            config.media_loops(),
            etx,
            config.idle_timeout(),
        )?;
        config.warn_removed_settings();
        let shared = Arc::new(Shared::new(config, metrics, media, composition_events));
        let (stop, _) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(crate::reporter::run(shared.clone(), erx, stop.subscribe())),
            tokio::spawn(crate::composition::watch(shared.clone(), stop.subscribe())),
        ];
        let router = crate::api::router(shared.clone());
        Ok((
            router,
            MediaNodeHandle {
                shared,
                addr: None,
                stop,
                tasks,
            },
        ))
    }
}

impl MediaNodeHandle {
    /// Where the control API listens (None when embedded via [`MediaNode::build`]).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// Drain mode: no sessions for rooms not already on this node; the others continue.
    pub fn set_draining(&self, draining: bool) {
        self.shared.draining.store(draining, Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.shared.draining.load(Relaxed)
    }

    /// Current load, as sent in heartbeats (bitrate not sampled here: 0).
    pub fn load(&self) -> NodeLoad {
        self.shared.load(0)
    }

    /// Prometheus text, as served on `/metrics`.
    pub fn metrics_text(&self) -> String {
        self.shared.metrics_total().render(&self.shared.gauges())
    }

    /// Finalizes recordings, closes every session and stops serving and all background tasks.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        // Compositions end (a livestream's last pictures, a composed file's end), then recordings
        // are finalized (files and manifest in storage), before the media stops.
        self.shared.compositions.stop_all(&self.shared.media).await;
        self.shared.recordings.stop_all().await;
        crate::api::sessions::close_all(&self.shared.media).await;
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

/// Resolves once the node is told to stop (the watch guard is not held across awaits).
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
