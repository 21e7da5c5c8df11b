//! The media loop of issue 16 (`docs/media-node-design.md`): a plain thread that owns the node's
//! UDP socket and every connection of its rooms (webrtc-rs's sans-IO `rtc`), routes datagrams
//! to connections, fans RTP out and sends, with no task per track and no lock on the packet
//! path. The HTTP API talks to it over a channel ([`Engine::call`]).
//!
//! Beside the old path until it carries every behaviour: on with `engine = true` in the node
//! configuration (`EDGEMEET_NODE_ENGINE`), off by default.

pub mod api;
pub mod command;
mod connection;
mod driver;
mod fanout;
mod offer;
mod router;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;

use tokio::sync::oneshot;

use command::Command;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// The handle of a running media loop. Dropping it stops the loop (its connections close).
pub struct Engine {
    commands: mpsc::Sender<Command>,
    waker: Arc<mio::Waker>,
    local: SocketAddr,
}

impl Engine {
    /// Binds the loop's UDP socket on `addr` and starts its thread.
    pub fn start(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let std_socket = std::net::UdpSocket::bind(addr)?;
        crate::egress::grow_buffers(&std_socket, 8 << 20);
        std_socket.set_nonblocking(true)?;
        let mut socket = mio::net::UdpSocket::from_std(std_socket);
        let poll = mio::Poll::new()?;
        poll.registry()
            .register(&mut socket, driver::SOCKET, mio::Interest::READABLE)?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), driver::WAKER)?);
        let media_loop = driver::MediaLoop::new(socket, metrics)?;
        let local = socket_addr(&media_loop);
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("media-loop".into())
            .spawn(move || media_loop.run(poll, rx))?;
        Ok(Self {
            commands: tx,
            waker,
            local,
        })
    }

    /// The loop's UDP address (announced in every answer's candidate).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
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

fn socket_addr(l: &driver::MediaLoop) -> SocketAddr {
    l.local_addr()
}
