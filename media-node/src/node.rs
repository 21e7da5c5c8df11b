//! The node's shared state, its background tasks, and the embedding API (`MediaNode`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use edgemeet_protocol::node::{NodeEvent, NodeLoad, TrackStatus};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::auth::TokenVerifier;
use crate::config::NodeConfig;
use crate::error::StartError;
use crate::forward::Subscription;
use crate::metrics::{Gauges, Metrics};
use crate::recording::Recordings;
use crate::session::Session;
use crate::speaker::SpeakerTracker;

/// State shared by the API handlers and background tasks.
pub struct Shared {
    pub cfg: NodeConfig,
    pub verifier: TokenVerifier,
    pub metrics: Arc<Metrics>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    pub draining: AtomicBool,
    /// Drained with `migrate`: the edge moves this node's rooms elsewhere (said in heartbeats).
    pub migrate: AtomicBool,
    /// Send a heartbeat now (a drain changed): the edge should not wait for the next tick.
    pub report_now: tokio::sync::Notify,
    pub speakers: Mutex<SpeakerTracker>,
    pub recordings: Recordings,
    pub events: mpsc::UnboundedSender<NodeEvent>,
    ports_in_use: Mutex<BTreeSet<u16>>,
    next_port: Mutex<u16>,
    /// The one shared media socket, when `udp_mux_port` is set.
    pub mux: Option<Arc<crate::udpmux::UdpMux>>,
    /// The sans-IO media loop, when `engine` is on (sessions opened with an offer live there).
    pub engine: Option<crate::engine::Engine>,
    /// Last CPU sample: (wall instant, process CPU seconds) and the derived load.
    cpu: Mutex<(Instant, f64, f32)>,
}

impl Shared {
    fn new(
        cfg: NodeConfig,
        events: mpsc::UnboundedSender<NodeEvent>,
        mux: Option<Arc<crate::udpmux::UdpMux>>,
        metrics: Arc<Metrics>,
        engine: Option<crate::engine::Engine>,
    ) -> Self {
        Self {
            mux,
            engine,
            verifier: TokenVerifier::new(&cfg.secret, &cfg.id),
            metrics,
            sessions: Mutex::new(HashMap::new()),
            draining: AtomicBool::new(cfg.draining),
            migrate: AtomicBool::new(false),
            report_now: tokio::sync::Notify::new(),
            speakers: Mutex::new(SpeakerTracker::default()),
            recordings: Recordings::new(cfg.recording.as_ref()),
            events,
            ports_in_use: Mutex::new(BTreeSet::new()),
            next_port: Mutex::new(cfg.udp_port_min),
            cpu: Mutex::new((Instant::now(), process_cpu_secs(), 0.0)),
            cfg,
        }
    }

    /// Up to `n` distinct free ports of the range, marked in use (`[0]` for ephemeral ports).
    pub fn reserve_ports(&self, n: usize) -> Vec<u16> {
        let (lo, hi) = (self.cfg.udp_port_min, self.cfg.udp_port_max);
        if lo == 0 {
            return vec![0];
        }
        let mut used = self.ports_in_use.lock().unwrap();
        let mut next = self.next_port.lock().unwrap();
        let span = u32::from(hi - lo) + 1;
        let mut out = Vec::new();
        for _ in 0..span {
            let p = *next;
            *next = if p >= hi { lo } else { p + 1 };
            if used.insert(p) {
                out.push(p);
                if out.len() == n {
                    break;
                }
            }
        }
        out
    }

    pub fn release_port(&self, port: u16) {
        if port != 0 {
            self.ports_in_use.lock().unwrap().remove(&port);
        }
    }

    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.lock().unwrap().get(id).cloned()
    }

    pub fn insert_session(&self, s: Arc<Session>) {
        self.sessions.lock().unwrap().insert(s.id.clone(), s);
    }

    pub fn sessions_where(&self, f: impl Fn(&Session) -> bool) -> Vec<Arc<Session>> {
        self.sessions
            .lock()
            .unwrap()
            .values()
            .filter(|s| f(s))
            .cloned()
            .collect()
    }

    pub fn room_is_here(&self, room: &str) -> bool {
        self.sessions
            .lock()
            .unwrap()
            .values()
            .any(|s| s.room == room)
    }

    /// Detaches a pull from its publication and takes its track off the subscriber's connection.
    pub async fn end_subscription(&self, sub: &Arc<Subscription>, status: TrackStatus) {
        sub.publication.remove_subscriber(sub);
        sub.set_status(status);
        let sender = sub.sender.lock().unwrap().take();
        if let (Some(sender), Some(s)) = (sender, self.session(&sub.session_id)) {
            let _ = s.pc.remove_track(&sender).await;
        }
    }

    /// Closes a session: its pushed tracks end at every subscriber, its pulls are detached,
    /// its connection is closed. Returns false if it was not open.
    pub async fn close_session(&self, id: &str, reason: &str) -> bool {
        let Some(session) = self.sessions.lock().unwrap().remove(id) else {
            return false;
        };
        if !session.mark_closed() {
            return false;
        }
        for p in session.publications() {
            p.closed.store(true, Relaxed);
            for sub in p.take_subscribers() {
                // Stays listed at the subscriber as inactive until it closes it (tracks/close).
                self.end_subscription(&sub, TrackStatus::Inactive).await;
            }
        }
        for sub in session.subscriptions() {
            sub.publication.remove_subscriber(&sub);
            sub.set_status(TrackStatus::Inactive);
        }
        {
            let still_here = self.sessions_where(|s| s.room == session.room);
            let mut sp = self.speakers.lock().unwrap();
            if still_here.is_empty() {
                sp.forget_room(&session.room);
            } else if !still_here
                .iter()
                .any(|s| s.participant == session.participant)
            {
                sp.forget_participant(&session.room, &session.participant);
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(3), session.pc.close()).await;
        self.release_port(session.port);
        if let (Some(mux), Some(inbox)) = (&self.mux, &session.mux_inbox) {
            mux.unregister(inbox);
        }
        tracing::info!(session = %session.id, reason, "session closed");
        true
    }

    pub fn gauges(&self) -> Gauges {
        let sessions = self.sessions.lock().unwrap();
        let rooms: HashSet<&str> = sessions.values().map(|s| s.room.as_str()).collect();
        let published: u64 = sessions
            .values()
            .map(|s| s.publications().len() as u64)
            .sum();
        let subscribed: u64 = sessions
            .values()
            .map(|s| {
                s.subscriptions()
                    .iter()
                    .filter(|x| x.status() == TrackStatus::Active)
                    .count() as u64
            })
            .sum();
        // Sessions on the media loop (a room lives on one path or the other).
        // Loop sessions whose transport is up: the loop encrypts and sends for them itself.
        let (e_sessions, e_up, e_rooms, e_published, e_subscribed) =
            self.engine.as_ref().map_or((0, 0, 0, 0, 0), |e| e.gauges());
        Gauges {
            sessions: sessions.len() as u64 + e_sessions,
            sessions_direct_send: sessions.values().filter(|s| s.egress.is_active()).count() as u64
                + e_up,
            tracks_published: published + e_published,
            tracks_subscribed: subscribed + e_subscribed,
            rooms: rooms.len() as u64 + e_rooms,
            draining: self.draining.load(Relaxed),
            grants_revoked_held: self.verifier.revoked_count() as u64,
        }
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
    /// reaper, dominant-speaker and edge-reporting tasks. Must run inside a tokio runtime.
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
        crate::egress::install();
        let metrics = Arc::new(Metrics::default());
        let (etx, erx) = mpsc::unbounded_channel();
        let engine = if config.engine {
            // The loop's one port: `udp_mux_port`, else the first free one of the port range.
            let ports: Vec<u16> = match (config.udp_mux_port, config.udp_port_min) {
                (0, 0) => vec![0],
                (0, lo) => (lo..=config.udp_port_max).collect(),
                (port, _) => vec![port],
            };
            let mut started = None;
            for port in ports {
                let addr = SocketAddr::new(config.media_ip, port);
                let r = crate::engine::Engine::start(
                    addr,
                    metrics.clone(),
                    etx.clone(),
                    config.idle_timeout(),
                )
                .map_err(|source| StartError::MediaBind { addr, source });
                let taken = r.is_err();
                started = Some(r);
                if !taken {
                    break;
                }
            }
            let engine = started.expect("at least one port")?;
            tracing::info!(addr = %engine.local_addr(), "media loop on one UDP port");
            Some(engine)
        } else {
            None
        };
        let mux = match config.udp_mux_port {
            _ if engine.is_some() => None,
            0 => None,
            port => {
                let addr = SocketAddr::new(config.media_ip, port);
                let mux = crate::udpmux::UdpMux::bind(addr)
                    .map_err(|source| StartError::MediaBind { addr, source })?;
                tracing::info!(%addr, "media on one UDP port");
                Some(mux)
            }
        };
        let shared = Arc::new(Shared::new(config, etx, mux, metrics, engine));
        let (stop, _) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(reaper(shared.clone(), stop.subscribe())),
            tokio::spawn(speaker_ticker(shared.clone(), stop.subscribe())),
            tokio::spawn(crate::reporter::run(shared.clone(), erx, stop.subscribe())),
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
        self.shared.metrics.render(&self.shared.gauges())
    }

    /// Finalizes recordings, closes every session and stops serving and all background tasks.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        // Recordings are finalized (files and manifest in storage) before the media stops.
        self.shared.recordings.stop_all().await;
        for s in self.shared.sessions_where(|_| true) {
            self.shared.close_session(&s.id, "node shutdown").await;
        }
        if let Some(engine) = &self.shared.engine {
            crate::engine::api::close_all(engine).await;
        }
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

/// Closes sessions that went silent (no packet, no RTCP, no API call) for the idle timeout and
/// are not connected. A connected session is alive by ICE consent (the browser's checks every few
/// seconds), even when it sends no media: a P2P pair's standby session does not.
async fn reaper(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let timeout = shared.cfg.idle_timeout();
    let period = (timeout / 4).clamp(Duration::from_millis(200), Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = crate::node::stopped(&mut stop) => return,
        }
        let silent = |s: &Session| {
            s.idle_for() > timeout
                && s.connection_state()
                    != webrtc::peer_connection::RTCPeerConnectionState::Connected
        };
        for s in shared.sessions_where(silent) {
            if shared.close_session(&s.id, "idle").await {
                shared.metrics.sessions_reaped.fetch_add(1, Relaxed);
            }
        }
    }
}

async fn speaker_ticker(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(300)) => {}
            _ = crate::node::stopped(&mut stop) => return,
        }
        let changes = shared.speakers.lock().unwrap().tick(Instant::now());
        for (route, room, participant) in changes {
            let _ = shared.events.send(NodeEvent::DominantSpeaker {
                route,
                room,
                participant,
            });
        }
    }
}

/// Resolves once the node is told to stop (the watch guard is not held across awaits).
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
