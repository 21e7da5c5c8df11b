//! One UDP port for every session (ICE UDP mux).
//!
//! webrtc-rs 0.21 binds one socket per peer connection. With `udp_mux_port` set, each connection's
//! runtime ([`crate::egress::EgressRuntime`]) hands it a virtual socket instead of the one it
//! bound ([`connection_socket`]): sends leave through the node's one shared socket, and one receive loop gives
//! each datagram to its connection, by the sender's address once known, else by the ICE username
//! of a STUN request (`<node ufrag>:<peer ufrag>`, the node's ufrag chosen per session). A
//! connection announces the shared port in its candidates ([`crate::sdp::announce_addr`]).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use webrtc::runtime::{AsyncUdpSocket, RecvMeta, Transmit};

/// Datagrams queued for one connection before the newest are dropped.
const INBOX_PACKETS: usize = 2048;
/// Remote addresses one connection may be reached from (candidate pairs, a NAT rebinding).
const ADDRS_PER_INBOX: usize = 16;

/// The shared socket and the routes to each connection.
pub struct UdpMux {
    socket: tokio::net::UdpSocket,
    /// The same socket, for the node's own non-blocking sends ([`crate::egress`]).
    raw: Arc<std::net::UdpSocket>,
    addr: SocketAddr,
    routes: Mutex<Routes>,
}

#[derive(Default)]
struct Routes {
    by_ufrag: HashMap<String, Arc<Inbox>>,
    by_addr: HashMap<SocketAddr, Arc<Inbox>>,
}

/// Datagrams waiting for one connection.
pub struct Inbox {
    ufrag: String,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    packets: VecDeque<(SocketAddr, Vec<u8>)>,
    waker: Option<Waker>,
    addrs: usize,
}

impl UdpMux {
    /// Binds `addr` and starts the receive loop (inside a tokio runtime).
    pub fn bind(addr: SocketAddr) -> io::Result<Arc<Self>> {
        let std = std::net::UdpSocket::bind(addr)?;
        std.set_nonblocking(true)?;
        // Every session's media shares this socket.
        crate::egress::grow_buffers(&std, 4 * crate::egress::SOCKET_BUFFER);
        let raw = Arc::new(std.try_clone()?);
        let socket = tokio::net::UdpSocket::from_std(std)?;
        let addr = socket.local_addr()?;
        let mux = Arc::new(Self {
            socket,
            raw,
            addr,
            routes: Mutex::new(Routes::default()),
        });
        tokio::spawn(receive_loop(Arc::downgrade(&mux)));
        Ok(mux)
    }

    /// The shared socket, for sends outside tokio.
    pub fn raw_socket(&self) -> Arc<std::net::UdpSocket> {
        self.raw.clone()
    }

    /// The shared address (the port every candidate announces).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A connection whose ICE username fragment is `ufrag`.
    pub fn register(&self, ufrag: &str) -> Arc<Inbox> {
        let inbox = Arc::new(Inbox {
            ufrag: ufrag.to_owned(),
            queue: Mutex::new(Queue::default()),
        });
        self.routes
            .lock()
            .unwrap()
            .by_ufrag
            .insert(ufrag.to_owned(), inbox.clone());
        inbox
    }

    /// Forgets a connection (closed): its datagrams are dropped from now on.
    pub fn unregister(&self, inbox: &Arc<Inbox>) {
        let mut r = self.routes.lock().unwrap();
        r.by_ufrag.remove(&inbox.ufrag);
        r.by_addr.retain(|_, i| !Arc::ptr_eq(i, inbox));
        let mut q = inbox.queue.lock().unwrap();
        q.packets.clear();
        if let Some(w) = q.waker.take() {
            w.wake();
        }
    }

    /// Datagrams from `from` go to `inbox` (unless already routed elsewhere).
    fn learn(&self, from: SocketAddr, inbox: &Arc<Inbox>) {
        let mut r = self.routes.lock().unwrap();
        if r.by_addr.contains_key(&from) || !r.by_ufrag.contains_key(&inbox.ufrag) {
            return;
        }
        let mut q = inbox.queue.lock().unwrap();
        if q.addrs < ADDRS_PER_INBOX {
            q.addrs += 1;
            r.by_addr.insert(from, inbox.clone());
        }
    }

    fn route(&self, from: SocketAddr, data: &[u8]) -> Option<Arc<Inbox>> {
        let r = self.routes.lock().unwrap();
        if let Some(i) = r.by_addr.get(&from) {
            return Some(i.clone());
        }
        let inbox = stun_local_ufrag(data).and_then(|u| r.by_ufrag.get(u).cloned())?;
        drop(r);
        self.learn(from, &inbox);
        Some(inbox)
    }
}

async fn receive_loop(mux: std::sync::Weak<UdpMux>) {
    let mut buf = vec![0u8; 2048];
    loop {
        let Some(m) = mux.upgrade() else { return };
        let (n, from) = match m.socket.recv_from(&mut buf).await {
            Ok(v) => v,
            Err(e) if is_transient(&e) => continue,
            Err(e) => {
                tracing::error!(error = %e, "media UDP socket failed");
                return;
            }
        };
        let Some(inbox) = m.route(from, &buf[..n]) else {
            continue;
        };
        let mut q = inbox.queue.lock().unwrap();
        if q.packets.len() < INBOX_PACKETS {
            q.packets.push_back((from, buf[..n].to_vec()));
        }
        if let Some(w) = q.waker.take() {
            w.wake();
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
    )
}

/// The recipient's part of the USERNAME of a STUN binding request (RFC 8445 7.2.2).
pub fn stun_local_ufrag(p: &[u8]) -> Option<&str> {
    if p.len() < 20 || p[0] & 0xc0 != 0 || p[4..8] != [0x21, 0x12, 0xa4, 0x42] {
        return None;
    }
    if u16::from_be_bytes([p[0], p[1]]) != 0x0001 {
        return None;
    }
    let mut i = 20;
    while i + 4 <= p.len() {
        let t = u16::from_be_bytes([p[i], p[i + 1]]);
        let len = u16::from_be_bytes([p[i + 2], p[i + 3]]) as usize;
        let v = p.get(i + 4..i + 4 + len)?;
        if t == 0x0006 {
            let user = std::str::from_utf8(v).ok()?;
            return user.split_once(':').map(|(local, _)| local);
        }
        i += 4 + len.div_ceil(4) * 4;
    }
    None
}

/// One connection's view of the shared socket.
struct MuxSocket {
    mux: Arc<UdpMux>,
    inbox: Arc<Inbox>,
    /// The address the connection bound (and knows itself by); never used for I/O.
    local: SocketAddr,
    /// Destinations already routed back to this connection.
    known: Mutex<Vec<SocketAddr>>,
}

impl fmt::Debug for MuxSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MuxSocket")
            .field("shared", &self.mux.addr)
            .field("local", &self.local)
            .finish()
    }
}

impl AsyncUdpSocket for MuxSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn poll_send(&self, cx: &mut Context<'_>, t: &Transmit<'_>) -> Poll<io::Result<usize>> {
        {
            // Answers from an address this connection sent to (its own checks) come back here.
            let mut known = self.known.lock().unwrap();
            if !known.contains(&t.destination) {
                known.push(t.destination);
                self.mux.learn(t.destination, &self.inbox);
            }
        }
        self.mux.socket.poll_send_to(cx, t.contents, t.destination)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut q = self.inbox.queue.lock().unwrap();
        let mut n = 0;
        while n < bufs.len().min(meta.len()) {
            let Some((from, data)) = q.packets.pop_front() else {
                break;
            };
            let len = data.len().min(bufs[n].len());
            bufs[n][..len].copy_from_slice(&data[..len]);
            let mut m = RecvMeta::default();
            m.addr = from;
            m.len = len;
            m.stride = len.max(1);
            meta[n] = m;
            n += 1;
        }
        if n > 0 {
            return Poll::Ready(Ok(n));
        }
        q.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A connection's view of the mux, in place of the socket it bound: the bound socket only named
/// an address; it is closed here, the mux carries the I/O.
pub fn connection_socket(
    mux: &Arc<UdpMux>,
    inbox: &Arc<Inbox>,
    bound: std::net::UdpSocket,
) -> io::Result<Arc<dyn AsyncUdpSocket>> {
    Ok(Arc::new(MuxSocket {
        mux: mux.clone(),
        inbox: inbox.clone(),
        local: bound.local_addr()?,
        known: Mutex::new(Vec::new()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_node_ufrag_of_a_binding_request() {
        let user = b"nodeufrag:peer";
        let mut p = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42];
        p.extend_from_slice(&[7; 12]);
        // An attribute before USERNAME (PRIORITY), then USERNAME padded to 4 bytes.
        p.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        p.extend_from_slice(&[0x00, 0x06, 0x00, user.len() as u8]);
        p.extend_from_slice(user);
        p.extend_from_slice(&[0, 0]);
        assert_eq!(stun_local_ufrag(&p), Some("nodeufrag"));
        // A binding response, RTP, garbage: no.
        let mut resp = p.clone();
        resp[1] = 0x01;
        resp[0] = 0x01;
        assert_eq!(stun_local_ufrag(&resp), None);
        assert_eq!(stun_local_ufrag(&[0x80; 40]), None);
        assert_eq!(stun_local_ufrag(&p[..30]), None);
    }
}
