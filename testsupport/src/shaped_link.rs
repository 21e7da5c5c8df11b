//! A shaped link between a test client and the media node: a UDP relay whose node-to-client
//! direction has a bandwidth cap with a bounded queue (as `tc tbf`: packets wait their turn at
//! the cap, queueing delay grows, what would wait longer than the queue allows is dropped). The
//! client-to-node direction is not shaped. Set a client's [`via`](crate::node_client::TestClient::via)
//! to it: the node's candidates in the SDP the client applies are rewritten to the relay's
//! address, and the relay learns the node's address from them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

/// Longest a packet may wait in the capped direction's queue before it is dropped instead.
const MAX_QUEUE: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Shared {
    /// Downlink cap (bits per second); 0: none.
    rate_bps: AtomicU64,
    delivered_bytes: AtomicU64,
    dropped: AtomicU64,
    node: Mutex<Option<SocketAddr>>,
}

/// A running relay; dropping it stops it.
pub struct ShapedLink {
    /// The address the client sends to (it takes it for the node's).
    pub addr: SocketAddr,
    /// The address the node sends to (it takes it for the client's).
    pub back_addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ShapedLink {
    pub async fn start() -> std::io::Result<Self> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let addr = front.local_addr()?;
        let back_addr = back.local_addr()?;
        let shared = Arc::new(Shared::default());
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let mut tasks = Vec::new();
        // Client to node, as it comes.
        {
            let (front, back, shared, client) =
                (front.clone(), back.clone(), shared.clone(), client.clone());
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                while let Ok((n, from)) = front.recv_from(&mut buf).await {
                    *client.lock().unwrap() = Some(from);
                    let node = *shared.node.lock().unwrap();
                    if let Some(node) = node {
                        let _ = back.send_to(&buf[..n], node).await;
                    }
                }
            }));
        }
        // Node to client: each packet leaves when the cap allows (FIFO), or is dropped when it
        // would wait longer than the queue holds.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Vec<u8>, Instant)>();
        {
            let shared = shared.clone();
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                let mut free_at = Instant::now();
                while let Ok((n, _)) = back.recv_from(&mut buf).await {
                    let now = Instant::now();
                    let rate = shared.rate_bps.load(Relaxed);
                    // 28 bytes of IP and UDP header count against the cap, as on a wire.
                    let bits = (n as u64 + 28) * 8;
                    let at = match (bits * 1_000_000_000).checked_div(rate) {
                        None => now,
                        Some(ns) => {
                            let start = free_at.max(now);
                            if start - now > MAX_QUEUE {
                                shared.dropped.fetch_add(1, Relaxed);
                                continue;
                            }
                            free_at = start + Duration::from_nanos(ns);
                            free_at
                        }
                    };
                    if tx.send((buf[..n].to_vec(), at)).is_err() {
                        return;
                    }
                }
            }));
        }
        {
            let shared = shared.clone();
            tasks.push(tokio::spawn(async move {
                while let Some((pkt, at)) = rx.recv().await {
                    tokio::time::sleep_until(at).await;
                    let to = *client.lock().unwrap();
                    if let Some(to) = to {
                        let _ = front.send_to(&pkt, to).await;
                        shared.delivered_bytes.fetch_add(pkt.len() as u64, Relaxed);
                    }
                }
            }));
        }
        Ok(Self {
            addr,
            back_addr,
            shared,
            tasks,
        })
    }

    /// Caps the node-to-client direction at `bps` bits per second; `None` lifts the cap.
    pub fn set_downlink(&self, bps: Option<u64>) {
        self.shared.rate_bps.store(bps.unwrap_or(0), Relaxed);
    }

    /// Packets dropped at the cap so far.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Relaxed)
    }

    /// Bytes delivered to the client so far (UDP payloads).
    pub fn delivered_bytes(&self) -> u64 {
        self.shared.delivered_bytes.load(Relaxed)
    }

    /// `sdp` with every candidate of the node replaced by this relay's address (and the node's
    /// address learnt from them).
    pub fn rewrite_sdp(&self, sdp: &str) -> String {
        rewrite_candidates(sdp, self.addr, |a| {
            *self.shared.node.lock().unwrap() = Some(a)
        })
    }

    /// `sdp` of the client with every candidate replaced by the relay's node-facing address:
    /// the node's own checks and media go through the relay too.
    pub fn rewrite_client_sdp(&self, sdp: &str) -> String {
        rewrite_candidates(sdp, self.back_addr, |_| {})
    }
}

/// `sdp` with the address of every `a=candidate` line replaced by `to` (each old one seen).
fn rewrite_candidates(sdp: &str, to: SocketAddr, mut seen: impl FnMut(SocketAddr)) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let end = &line[body.len()..];
        let fields: Vec<&str> = body.split(' ').collect();
        if body.starts_with("a=candidate:")
            && fields.len() > 5
            && let (Ok(ip), Ok(port)) = (fields[4].parse(), fields[5].parse::<u16>())
        {
            seen(SocketAddr::new(ip, port));
            let mut f = fields.clone();
            let (ip, port) = (to.ip().to_string(), to.port().to_string());
            f[4] = &ip;
            f[5] = &port;
            out.push_str(&f.join(" "));
            out.push_str(end);
            continue;
        }
        out.push_str(line);
    }
    out
}

impl Drop for ShapedLink {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
