//! Egress: forwarded RTP leaves through the node's own send path, not webrtc-rs's.
//!
//! webrtc-rs moves every written packet through its per-connection handler chain (interceptors,
//! SRTP, ICE, each stage with its own queue) and a task hop per subscriber: about 70% of the
//! node's CPU when it forwarded through `TrackLocal::write_rtp`. Here the ingest task encrypts
//! each forwarded packet itself and hands it to the subscriber's UDP socket in place.
//!
//! What this needs from a connection, and where it comes from:
//! - its outgoing SRTP keys: the patched `rtc` (vendor/rtc) reports them when DTLS completes,
//!   with the local and peer address of the handshake ([`on_keys`]);
//! - its socket and the peer address media goes to: [`EgressRuntime`] wraps the socket the
//!   connection binds and notes where it sends DTLS and RTP/RTCP (the selected candidate pair).
//!
//! webrtc-rs keeps everything else: ICE, DTLS, incoming media, RTCP it sends (receiver reports,
//! TWCC feedback). For what it would have done on the sending side, the node does its own part:
//! a retransmission buffer that answers NACKs and a sender report per forwarded stream every
//! second (webrtc-rs sends none for a stream it never saw a packet of).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use rtc::peer_connection::srtp_export::{self, ExportedSrtpKeys};
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtp;
use rtc::shared::marshal::Marshal;
use rtc::srtp::context::Context as SrtpContext;
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    TokioRuntime, Transmit,
};

use crate::udpmux::{Inbox, UdpMux};

/// Forwarded packets kept per stream for retransmission (about 1 s of 720p video).
const RETRANSMIT_SLOTS: usize = 512;
/// A sender report per forwarded stream this often.
const SR_INTERVAL: Duration = Duration::from_secs(1);
/// Socket buffers asked for on a connection's socket (the kernel caps them at
/// `net.core.wmem_max` / `rmem_max`): on loopback a datagram counts against its sender until the
/// receiver reads it, and a full send buffer drops forwarded packets.
pub const SOCKET_BUFFER: usize = 8 << 20;

/// Asks for `bytes` of send and receive buffer on `socket`; what the kernel grants is enough.
pub fn grow_buffers(socket: &std::net::UdpSocket, bytes: usize) {
    let s = socket2::SockRef::from(socket);
    let _ = s.set_send_buffer_size(bytes);
    let _ = s.set_recv_buffer_size(bytes);
}

/// Keys not claimed by a session within this time are forgotten (handshakes of other
/// connections in the process, such as test clients', are reported too).
const KEYS_TTL: Duration = Duration::from_secs(30);

/// Reported keys by the fingerprint of the local certificate (lowercase hex with colons).
type KeyMap = HashMap<String, (Instant, ExportedSrtpKeys)>;

fn keys() -> &'static Mutex<KeyMap> {
    static KEYS: OnceLock<Mutex<KeyMap>> = OnceLock::new();
    KEYS.get_or_init(Default::default)
}

/// Starts listening for SRTP keys of completed handshakes (once per process).
pub fn install() {
    srtp_export::set_observer(on_keys);
}

fn on_keys(k: ExportedSrtpKeys) {
    let now = Instant::now();
    let mut map = keys().lock().unwrap();
    map.retain(|_, (t, _)| now.duration_since(*t) < KEYS_TTL);
    for (_, value) in &k.local_fingerprints {
        map.insert(value.to_ascii_lowercase(), (now, k.clone()));
    }
}

/// The certificate fingerprints an SDP announces (`a=fingerprint:<algorithm> <value>`).
fn sdp_fingerprints(sdp: &str) -> impl Iterator<Item = String> + '_ {
    sdp.lines().filter_map(|l| {
        let v = l.trim().strip_prefix("a=fingerprint:")?;
        Some(v.split_once(' ')?.1.trim().to_ascii_lowercase())
    })
}

/// A connection's socket, as the node's send path sees it.
pub struct TapSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    /// The OS socket datagrams leave by: the node's sends use it directly, not through tokio,
    /// whose cooperative budget would refuse a task's sends after its first 128 in one poll.
    raw: Arc<std::net::UdpSocket>,
    local: SocketAddr,
    /// The connection has sent DTLS on this socket: its handshake ran here.
    sent_dtls: AtomicBool,
    /// Where the connection last sent DTLS, RTP or RTCP: the selected candidate pair.
    media_peer: Mutex<Option<SocketAddr>>,
}

impl fmt::Debug for TapSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TapSocket")
            .field("local", &self.local)
            .finish()
    }
}

impl AsyncUdpSocket for TapSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn poll_send(&self, cx: &mut Context<'_>, t: &Transmit<'_>) -> Poll<io::Result<usize>> {
        // RFC 7983: 20-63 DTLS, 128-191 RTP/RTCP; STUN (0-3) goes to every candidate.
        if let Some(b @ (20..=63 | 128..=191)) = t.contents.first() {
            if *b <= 63 {
                self.sent_dtls.store(true, Relaxed);
            }
            *self.media_peer.lock().unwrap() = Some(t.destination);
        }
        self.inner.poll_send(cx, t)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_recv(cx, bufs, meta)
    }

    fn max_gso_segments(&self) -> usize {
        self.inner.max_gso_segments()
    }

    fn max_gro_segments(&self) -> usize {
        self.inner.max_gro_segments()
    }
}

/// One session's send path: its sockets, and once DTLS is up, the keys to encrypt with.
#[derive(Default)]
pub struct Egress {
    sockets: Mutex<Vec<Arc<TapSocket>>>,
    path: OnceLock<Path>,
}

struct Path {
    socket: Arc<TapSocket>,
    srtp: Mutex<SrtpContext>,
}

/// The packet could not leave now (socket buffer full, or no path).
#[derive(Debug)]
pub struct NotSent;

impl Egress {
    /// True once forwarded media goes through the node's send path.
    pub fn is_active(&self) -> bool {
        self.path.get().is_some()
    }

    /// Claims the SRTP keys of this session's handshake, found by the certificate fingerprint
    /// of its local description. False when none were reported or no socket has sent DTLS
    /// (the forwarding then stays with webrtc-rs).
    pub fn activate(&self, local_sdp: &str) -> bool {
        if self.is_active() {
            return true;
        }
        let Some(k) = sdp_fingerprints(local_sdp)
            .find_map(|fp| keys().lock().unwrap().remove(&fp).map(|(_, k)| k))
        else {
            return false;
        };
        // The socket the handshake ran on (one per local address; one on a loopback node).
        let Some(socket) = self
            .sockets
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.sent_dtls.load(Relaxed))
            .cloned()
        else {
            return false;
        };
        let ctx = rtc::crypto::default_provider()
            .map_err(|e| e.to_string())
            .and_then(|p| {
                SrtpContext::new(
                    &k.local_master_key,
                    &k.local_master_salt,
                    k.profile,
                    None,
                    None,
                    p.crypto(),
                )
                .map_err(|e| e.to_string())
            });
        match ctx {
            Ok(ctx) => {
                let _ = self.path.set(Path {
                    socket,
                    srtp: Mutex::new(ctx),
                });
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "SRTP context for the node's send path");
                false
            }
        }
    }

    /// Encrypts and sends one RTP packet of `stream`, keeping it for retransmission.
    pub fn send_rtp(&self, stream: &Mutex<StreamState>, pkt: &rtp::Packet) -> Result<(), NotSent> {
        let path = self.path.get().ok_or(NotSent)?;
        let plain = pkt.marshal().map_err(|_| NotSent)?;
        let (wire, sr) = {
            let mut st = stream.lock().unwrap();
            let sr = st.due_report(pkt);
            st.keep(pkt);
            let mut srtp = path.srtp.lock().unwrap();
            // The header was just built: no need to parse it back out of `plain`.
            let wire = srtp
                .encrypt_rtp_with_header(&plain, &pkt.header)
                .map_err(|_| NotSent)?;
            let sr = sr.and_then(|sr| srtp.encrypt_rtcp(&sr.marshal().ok()?).ok());
            (wire, sr)
        };
        let sent = path.send(&wire);
        if let Some(sr) = sr {
            let _ = path.send(&sr);
        }
        sent
    }

    /// Sends again the kept packet `seq` of `stream` (a NACK): on the RTX stream where one was
    /// negotiated (RFC 4588), else as it was. False when it is no longer kept.
    pub fn resend(&self, stream: &Mutex<StreamState>, seq: u16) -> bool {
        let Some(path) = self.path.get() else {
            return false;
        };
        let Some(pkt) = stream.lock().unwrap().retransmission(seq) else {
            return false;
        };
        let Ok(plain) = pkt.marshal() else {
            return false;
        };
        let wire = path
            .srtp
            .lock()
            .unwrap()
            .encrypt_rtp_with_header(&plain, &pkt.header);
        wire.is_ok_and(|w| path.send(&w).is_ok())
    }
}

impl Path {
    fn send(&self, datagram: &[u8]) -> Result<(), NotSent> {
        let Some(destination) = *self.socket.media_peer.lock().unwrap() else {
            return Err(NotSent);
        };
        // Never wait (the socket is non-blocking): a subscriber whose socket buffer is full
        // loses this packet, the others and the publisher's ingest go on.
        match self.socket.raw.send_to(datagram, destination) {
            Ok(_) => Ok(()),
            Err(_) => Err(NotSent),
        }
    }
}

/// Per forwarded stream: packets kept for retransmission and sender report counters.
pub struct StreamState {
    ring: Vec<Option<rtp::Packet>>,
    clock_rate: u32,
    packets: u32,
    octets: u32,
    last_report: Option<Instant>,
    /// RTX stream (SSRC, payload type) and its next sequence number.
    rtx: Option<(u32, u8)>,
    rtx_seq: u16,
}

impl StreamState {
    pub fn new(clock_rate: u32) -> Self {
        Self {
            ring: vec![None; RETRANSMIT_SLOTS],
            clock_rate,
            packets: 0,
            octets: 0,
            last_report: None,
            rtx: None,
            rtx_seq: rand_seq(),
        }
    }

    pub fn set_rtx(&mut self, ssrc: u32, payload_type: u8) {
        self.rtx = Some((ssrc, payload_type));
    }

    fn keep(&mut self, pkt: &rtp::Packet) {
        let seq = pkt.header.sequence_number;
        // A clone shares the payload; the header has no extensions or CSRCs to copy.
        self.ring[seq as usize % RETRANSMIT_SLOTS] = Some(pkt.clone());
    }

    /// The packet to send for a NACK of `seq`: an RTX packet (the original sequence number
    /// in front of the payload) when RTX was negotiated, else the packet itself.
    fn retransmission(&mut self, seq: u16) -> Option<rtp::Packet> {
        let pkt = match &self.ring[seq as usize % RETRANSMIT_SLOTS] {
            Some(p) if p.header.sequence_number == seq => p,
            _ => return None,
        };
        let Some((ssrc, payload_type)) = self.rtx else {
            return Some(pkt.clone());
        };
        let mut payload = BytesMut::with_capacity(2 + pkt.payload.len());
        payload.put_u16(seq);
        payload.put_slice(&pkt.payload);
        let mut header = pkt.header.clone();
        header.ssrc = ssrc;
        header.payload_type = payload_type;
        header.sequence_number = self.rtx_seq;
        self.rtx_seq = self.rtx_seq.wrapping_add(1);
        Some(rtp::Packet {
            header,
            payload: payload.freeze(),
        })
    }

    /// Counts `pkt`; a sender report when one is due (the first packet, then every second).
    /// Its RTP time is this packet's, sent now: the receiver's audio/video sync needs the
    /// pair, and the forwarding delay is far below what lip sync notices.
    fn due_report(&mut self, pkt: &rtp::Packet) -> Option<SenderReport> {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(pkt.payload.len() as u32);
        let now = Instant::now();
        if self.clock_rate == 0
            || self
                .last_report
                .is_some_and(|t| now.duration_since(t) < SR_INTERVAL)
        {
            return None;
        }
        self.last_report = Some(now);
        Some(SenderReport {
            ssrc: pkt.header.ssrc,
            ntp_time: ntp_now(),
            rtp_time: pkt.header.timestamp,
            packet_count: self.packets,
            octet_count: self.octets,
            ..Default::default()
        })
    }
}

/// A random first sequence number (RFC 3550 5.1).
fn rand_seq() -> u16 {
    rand::random()
}

/// Wall clock as a 64-bit NTP timestamp (RFC 3550 4).
fn ntp_now() -> u64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// A connection's runtime: tokio for everything; its UDP socket (its own, or its view of the
/// UDP mux) wrapped in a [`TapSocket`] that `egress` sends through.
pub struct EgressRuntime {
    base: TokioRuntime,
    egress: Arc<Egress>,
    mux: Option<(Arc<UdpMux>, Arc<Inbox>)>,
}

impl EgressRuntime {
    pub fn new(egress: Arc<Egress>, mux: Option<(Arc<UdpMux>, Arc<Inbox>)>) -> Self {
        Self {
            base: TokioRuntime,
            egress,
            mux,
        }
    }
}

impl fmt::Debug for EgressRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EgressRuntime")
            .field("mux", &self.mux.as_ref().map(|(m, _)| m.local_addr()))
            .finish()
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Runtime for EgressRuntime {
    fn spawn(&self, future: BoxFuture<'static, ()>) -> Box<dyn JoinHandle> {
        self.base.spawn(future)
    }

    fn spawn_reactor(&self, pool: usize, future: BoxFuture<'static, ()>) -> Box<dyn JoinHandle> {
        self.base.spawn_reactor(pool, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let (inner, raw) = match &self.mux {
            Some((mux, inbox)) => (
                crate::udpmux::connection_socket(mux, inbox, socket)?,
                mux.raw_socket(),
            ),
            None => {
                grow_buffers(&socket, SOCKET_BUFFER);
                socket.set_nonblocking(true)?;
                let raw = Arc::new(socket.try_clone()?);
                (self.base.wrap_udp_socket(socket)?, raw)
            }
        };
        let tap = Arc::new(TapSocket {
            local: inner.local_addr()?,
            inner,
            raw,
            sent_dtls: AtomicBool::new(false),
            media_peer: Mutex::new(None),
        });
        self.egress.sockets.lock().unwrap().push(tap.clone());
        Ok(tap)
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.base.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> BoxFuture<'a, io::Result<Arc<dyn AsyncTcpStream>>> {
        self.base.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        self.base.resolve_host(host)
    }

    fn now(&self) -> Instant {
        self.base.now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.base.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.base.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.base.block_on(future)
    }

    fn yield_now(&self) -> BoxFuture<'static, ()> {
        self.base.yield_now()
    }

    fn name(&self) -> &'static str {
        self.base.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn packet(seq: u16, payload: &'static [u8]) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                ssrc: 42,
                payload_type: 96,
                sequence_number: seq,
                timestamp: 9000,
                ..Default::default()
            },
            payload: Bytes::from_static(payload),
        }
    }

    #[test]
    fn keeps_the_last_packets_of_each_sequence_slot() {
        let mut s = StreamState::new(90_000);
        s.keep(&packet(7, b"a"));
        s.keep(&packet(7 + RETRANSMIT_SLOTS as u16, b"b"));
        assert!(
            s.retransmission(7).is_none(),
            "overwritten by a newer packet"
        );
        let again = s.retransmission(7 + RETRANSMIT_SLOTS as u16).unwrap();
        assert_eq!((again.header.ssrc, &again.payload[..]), (42, &b"b"[..]));
        assert!(s.retransmission(8).is_none());
    }

    #[test]
    fn retransmits_on_the_rtx_stream_with_the_original_sequence_number_first() {
        let mut s = StreamState::new(90_000);
        s.set_rtx(4242, 97);
        s.keep(&packet(0x1234, b"xyz"));
        let a = s.retransmission(0x1234).unwrap();
        let b = s.retransmission(0x1234).unwrap();
        assert_eq!((a.header.ssrc, a.header.payload_type), (4242, 97));
        assert_eq!(a.header.timestamp, 9000);
        assert_eq!(&a.payload[..], &[0x12, 0x34, b'x', b'y', b'z']);
        assert_eq!(
            b.header.sequence_number,
            a.header.sequence_number.wrapping_add(1)
        );
    }

    #[test]
    fn reports_on_the_first_packet_then_once_a_second() {
        let mut s = StreamState::new(90_000);
        let pkt = packet(1, &[0; 100]);
        let sr = s.due_report(&pkt).expect("first packet reports");
        assert_eq!(
            (sr.ssrc, sr.rtp_time, sr.packet_count, sr.octet_count),
            (42, 9000, 1, 100)
        );
        assert!(s.due_report(&pkt).is_none());
        assert_eq!(s.packets, 2);
    }
}
