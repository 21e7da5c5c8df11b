//! The media loops (`docs/media-node-design.md`): each a plain thread that owns one UDP socket
//! and every connection (webrtc-rs's sans-IO `rtc`) of the rooms pinned to it, routes datagrams
//! to connections, fans RTP out and sends, with no task per track and no lock on the packet
//! path. The HTTP API talks to a loop over a channel ([`LoopHandle::call`]); [`Loops`] picks a
//! room's loop and routes each call to it.

mod bandwidth;
pub mod command;
pub(crate) mod connection;
mod delay_based;
mod driver;
mod dynacast;
mod fanout;
mod layer_costs;
mod loops;
mod offer;
mod retransmit;
pub(crate) mod router;
mod rtcp_to_app;
mod sessions;
mod udp;

pub use loops::{Loops, Ports};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::time::Duration;

use edgemeet_protocol::node::NodeEvent;

use tokio::sync::oneshot;

use command::Command;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// The handle of a running media loop. Dropping it stops the loop (its connections close).
pub struct LoopHandle {
    commands: mpsc::Sender<Command>,
    waker: Arc<mio::Waker>,
    local: SocketAddr,
    gauges: Arc<LoopGauges>,
    /// This loop's counters (summed with the others' for `/metrics`).
    metrics: Arc<Metrics>,
}

/// A session a loop closed (by a call, the idle reaper, a failure, or an open that failed):
/// the API's tables forget it. Exactly one per session the API asked a loop to open.
pub struct Closed {
    pub session_id: String,
    pub room: String,
}

/// What the loop holds, for `/metrics` and heartbeats (written by the loop when its tables
/// change, read by the tokio side).
#[derive(Default)]
pub struct LoopGauges {
    pub sessions: AtomicU64,
    /// Sessions whose transport is up: the loop encrypts and sends their forwarded media.
    pub sessions_up: AtomicU64,
    pub rooms: AtomicU64,
    pub tracks_published: AtomicU64,
    pub tracks_subscribed: AtomicU64,
}

impl LoopHandle {
    /// Binds loop `index`'s UDP socket on `addr` and starts its thread. Dominant-speaker
    /// changes go to `events`, closed sessions to `closed`; sessions silent for `idle_timeout`
    /// (and not connected) are closed.
    pub fn start(
        addr: SocketAddr,
        index: usize,
        events: tokio::sync::mpsc::UnboundedSender<NodeEvent>,
        closed: mpsc::Sender<Closed>,
        idle_timeout: Duration,
    ) -> std::io::Result<Self> {
        let metrics = Arc::new(Metrics::default());
        let std_socket = std::net::UdpSocket::bind(addr)?;
        grow_buffers(&std_socket, 8 << 20);
        std_socket.set_nonblocking(true)?;
        let mut socket = mio::net::UdpSocket::from_std(std_socket);
        let poll = mio::Poll::new()?;
        poll.registry()
            .register(&mut socket, driver::SOCKET, mio::Interest::READABLE)?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), driver::WAKER)?);
        let gauges = Arc::new(LoopGauges::default());
        let setup = driver::LoopSetup {
            metrics: metrics.clone(),
            gauges: gauges.clone(),
            events,
            idle_timeout,
            closed,
        };
        let media_loop = driver::MediaLoop::new(socket, setup)?;
        let local = socket_addr(&media_loop);
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("media-loop-{index}"))
            .spawn(move || media_loop.run(poll, rx))?;
        Ok(Self {
            commands: tx,
            waker,
            local,
            gauges,
            metrics,
        })
    }

    /// This loop's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The loop's UDP address (announced in every answer's candidate).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// (sessions, sessions up, rooms, tracks published, tracks pulled and flowing) on the loop.
    pub fn gauges(&self) -> (u64, u64, u64, u64, u64) {
        let g = &self.gauges;
        (
            g.sessions.load(Relaxed),
            g.sessions_up.load(Relaxed),
            g.rooms.load(Relaxed),
            g.tracks_published.load(Relaxed),
            g.tracks_subscribed.load(Relaxed),
        )
    }

    /// The room's tracks on the loop that `recording_id` does not record yet.
    pub async fn recordable(
        &self,
        room: &str,
        recording_id: &str,
    ) -> Result<Vec<command::RecordableTrack>, ApiError> {
        self.call(|reply| Command::Recordable {
            room: room.to_owned(),
            recording_id: recording_id.to_owned(),
            reply,
        })
        .await
    }

    /// Hands the loop the taps of a recording.
    pub async fn tap(
        &self,
        taps: Vec<(usize, crate::recording::tap::LoopTap)>,
    ) -> Result<(), ApiError> {
        self.call(|reply| Command::Tap(taps, reply)).await
    }

    /// Drops the taps of a recording or composition.
    pub async fn untap(&self, consumer: &str) -> Result<(), ApiError> {
        let consumer = consumer.to_owned();
        self.call(|reply| Command::Untap(consumer, reply)).await
    }

    /// Sends a command built around a reply sender and waits for the reply.
    pub async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ApiError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .map_err(|_| ApiError::Unavailable("media loop stopped"))?;
        self.waker
            .wake()
            .map_err(|_| ApiError::Unavailable("media loop stopped"))?;
        rx.await
            .map_err(|_| ApiError::Unavailable("media loop stopped"))
    }
}

/// Asks for `bytes` of send and receive buffer (the kernel caps them at `net.core.wmem_max` /
/// `rmem_max`): on loopback a datagram counts against its sender until the receiver reads it,
/// and a full send buffer drops forwarded packets.
fn grow_buffers(socket: &std::net::UdpSocket, bytes: usize) {
    let s = socket2::SockRef::from(socket);
    let _ = s.set_send_buffer_size(bytes);
    let _ = s.set_recv_buffer_size(bytes);
}

fn socket_addr(l: &driver::MediaLoop) -> SocketAddr {
    l.local_addr()
}
