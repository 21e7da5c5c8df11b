//! Publishes the composed stream to an RTMP server (YouTube, Twitch, any ingest) from our own
//! process, so the stream key is never on a command line, in a URL we log, or on disk. `rtmps://`
//! targets speak the same session over TLS (rustls), the server verified against the system's
//! roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` replace them when set).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::Error;
use crate::flv::{Tag, TagKind};

/// A stream key: shown to nobody, logged nowhere (`Debug` prints a placeholder).
#[derive(Clone)]
pub struct StreamKey(String);

impl StreamKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamKey(..)")
    }
}

/// Where to publish: `rtmp://host[:port]/app` or `rtmps://host[:port]/app` (`tls`), and the key
/// the service gave.
#[derive(Clone, Debug)]
pub struct RtmpTarget {
    pub host: String,
    pub port: u16,
    pub app: String,
    /// `rtmps://`: RTMP over TLS, the server's certificate verified for `host`.
    pub tls: bool,
    pub key: StreamKey,
}

impl RtmpTarget {
    /// Parses the ingest URL: `rtmp://host[:port]/app[/more]` (port 1935 by default) or
    /// `rtmps://host[:port]/app[/more]` (port 443 by default).
    pub fn parse(url: &str, key: StreamKey) -> Result<Self, Error> {
        let (rest, tls) = if let Some(rest) = url.strip_prefix("rtmps://") {
            (rest, true)
        } else if let Some(rest) = url.strip_prefix("rtmp://") {
            (rest, false)
        } else {
            return Err(Error::BadTarget(
                "the URL must start with rtmp:// or rtmps://",
            ));
        };
        let (authority, app) = rest
            .split_once('/')
            .ok_or(Error::BadTarget("no application in the URL"))?;
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| Error::BadTarget("bad port"))?),
            None => (authority, if tls { 443 } else { 1935 }),
        };
        let app = app.trim_end_matches('/');
        if host.is_empty() || app.is_empty() || key.0.is_empty() {
            return Err(Error::BadTarget("host, application and key are all needed"));
        }
        if tls && ServerName::try_from(host).is_err() {
            return Err(Error::BadTarget("the host is not a name TLS can verify"));
        }
        Ok(Self {
            host: host.to_string(),
            port,
            app: app.to_string(),
            tls,
            key,
        })
    }

    fn tc_url(&self) -> String {
        let scheme = if self.tls { "rtmps" } else { "rtmp" };
        format!("{scheme}://{}:{}/{}", self.host, self.port, self.app)
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection to the server, plain or TLS. One owner reads and writes: the server's few
/// messages (acks, pings) are read between tags, without waiting (`Transport::read` with no
/// wait), so publishing never stalls on a read.
struct Transport {
    socket: TcpStream,
    tls: Option<Box<ClientConnection>>,
}

impl Transport {
    fn connect(target: &RtmpTarget) -> Result<Self, Error> {
        let addr = (target.host.as_str(), target.port)
            .to_socket_addrs()
            .map_err(Error::Rtmp)?
            .next()
            .ok_or_else(|| Error::RtmpProtocol("the host has no address".into()))?;
        let mut socket = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(Error::Rtmp)?;
        socket.set_nodelay(true).map_err(Error::Rtmp)?;
        socket
            .set_read_timeout(Some(CONNECT_TIMEOUT))
            .map_err(Error::Rtmp)?;
        let tls = if target.tls {
            let name = ServerName::try_from(target.host.clone())
                .map_err(|_| Error::BadTarget("the host is not a name TLS can verify"))?;
            let mut conn = ClientConnection::new(tls_config()?, name).map_err(tls_error)?;
            while conn.is_handshaking() {
                // A certificate the roots do not vouch for ends here, before anything of the
                // RTMP session (the key) is sent.
                conn.complete_io(&mut socket).map_err(|e| match e.kind() {
                    io::ErrorKind::InvalidData => tls_error(e),
                    _ => Error::Rtmp(e),
                })?;
            }
            tracing::debug!(
                version = ?conn.protocol_version(),
                "RTMPS: TLS session established"
            );
            Some(Box::new(conn))
        } else {
            None
        };
        Ok(Self { socket, tls })
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.tls {
            None => self.socket.write_all(bytes),
            Some(conn) => {
                conn.writer().write_all(bytes)?;
                flush_tls(conn, &mut self.socket)
            }
        }
    }

    /// What the server sent: waits up to `wait` for it, or with `None` takes only what has
    /// already arrived. Empty when nothing came; an error when the server closed.
    fn read(&mut self, wait: Option<Duration>) -> io::Result<Vec<u8>> {
        match wait {
            Some(d) => {
                self.socket
                    .set_read_timeout(Some(d.max(Duration::from_millis(1))))?;
                self.read_now()
            }
            None => {
                self.socket.set_nonblocking(true)?;
                let r = self.read_now();
                self.socket.set_nonblocking(false)?;
                r
            }
        }
        .and_then(|bytes| {
            // TLS may owe the server an answer (a key update): sent while blocking again.
            if let Some(conn) = &mut self.tls {
                flush_tls(conn, &mut self.socket)?;
            }
            Ok(bytes)
        })
    }

    fn read_now(&mut self) -> io::Result<Vec<u8>> {
        let closed = || io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed");
        let waiting = |e: &io::Error| {
            matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            )
        };
        let mut buf = vec![0u8; 16 * 1024];
        let Some(conn) = &mut self.tls else {
            return match self.socket.read(&mut buf) {
                Ok(0) => Err(closed()),
                Ok(n) => Ok(buf[..n].to_vec()),
                Err(e) if waiting(&e) => Ok(Vec::new()),
                Err(e) => Err(e),
            };
        };
        loop {
            match conn.reader().read(&mut buf) {
                Ok(0) => return Err(closed()),
                Ok(n) => return Ok(buf[..n].to_vec()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match conn.read_tls(&mut self.socket) {
                Ok(0) => return Err(closed()),
                Ok(_) => {
                    conn.process_new_packets().map_err(io::Error::other)?;
                }
                Err(e) if waiting(&e) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            }
        }
    }

    fn close(mut self) {
        if let Some(conn) = &mut self.tls {
            conn.send_close_notify();
            let _ = flush_tls(conn, &mut self.socket);
        }
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }
}

fn flush_tls(conn: &mut ClientConnection, socket: &mut TcpStream) -> io::Result<()> {
    while conn.wants_write() {
        conn.write_tls(socket)?;
    }
    Ok(())
}

/// TLS with the system's roots, or those of `SSL_CERT_FILE` / `SSL_CERT_DIR` when set (how an
/// operator trusts a private ingest CA). Read at each connection: a changed file is taken at once.
fn tls_config() -> Result<Arc<ClientConfig>, Error> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(Error::RtmpTls(format!(
            "no trusted root certificates ({} errors loading them)",
            found.errors.len()
        )));
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

fn tls_error(e: impl fmt::Display) -> Error {
    Error::RtmpTls(e.to_string())
}

/// An RTMP session publishing live.
pub struct Publisher {
    transport: Transport,
    session: ClientSession,
}

impl Publisher {
    /// Connects (TLS first for `rtmps://`), shakes hands, and asks to publish; returns once the
    /// server accepted.
    pub fn connect(target: &RtmpTarget) -> Result<Self, Error> {
        let mut transport = Transport::connect(target)?;
        let remaining = handshake(&mut transport)?;

        let mut config = ClientSessionConfig::new();
        config.tc_url = Some(target.tc_url());
        let (session, _) = ClientSession::new(config).map_err(proto)?;
        let mut p = Self { transport, session };
        if !remaining.is_empty() {
            p.handle(&remaining)?;
        }
        let r = p
            .session
            .request_connection(target.app.clone())
            .map_err(proto)?;
        p.send(r)?;
        p.wait_for(|e| matches!(e, ClientSessionEvent::ConnectionRequestAccepted))?;
        let r = p
            .session
            .request_publishing(target.key.0.clone(), PublishRequestType::Live)
            .map_err(proto)?;
        p.send(r)?;
        p.wait_for(|e| matches!(e, ClientSessionEvent::PublishRequestAccepted))?;
        Ok(p)
    }

    /// Sends one FLV tag as the matching RTMP message.
    pub fn publish(&mut self, tag: Tag) -> Result<(), Error> {
        self.drain()?;
        let ts = RtmpTimestamp::new(tag.timestamp);
        let data = Bytes::from(tag.data);
        let r = match tag.kind {
            TagKind::Video => self.session.publish_video_data(data, ts, false),
            TagKind::Audio => self.session.publish_audio_data(data, ts, false),
            // ffmpeg's onMetaData: optional for ingest servers; not sent.
            TagKind::Script => return Ok(()),
        }
        .map_err(proto)?;
        self.send(r)
    }

    /// Ends publishing politely (the server ends the stream at once instead of timing out).
    pub fn finish(mut self) -> Result<(), Error> {
        for r in self.session.stop_publishing().map_err(proto)? {
            self.send(r)?;
        }
        self.transport.close();
        Ok(())
    }

    fn send(&mut self, r: ClientSessionResult) -> Result<(), Error> {
        if let ClientSessionResult::OutboundResponse(p) = r {
            self.transport.write_all(&p.bytes).map_err(Error::Rtmp)?;
        }
        Ok(())
    }

    /// Handles what the server sent; returns its events.
    fn handle(&mut self, bytes: &[u8]) -> Result<Vec<ClientSessionEvent>, Error> {
        let mut events = Vec::new();
        for r in self.session.handle_input(bytes).map_err(proto)? {
            match r {
                ClientSessionResult::RaisedEvent(e) => events.push(e),
                other => self.send(other)?,
            }
        }
        Ok(events)
    }

    /// Handles whatever the server sent since, without waiting.
    fn drain(&mut self) -> Result<(), Error> {
        loop {
            let bytes = self.transport.read(None).map_err(Error::Rtmp)?;
            if bytes.is_empty() {
                return Ok(());
            }
            for e in self.handle(&bytes)? {
                refused(&e)?;
            }
        }
    }

    fn wait_for(&mut self, want: impl Fn(&ClientSessionEvent) -> bool) -> Result<(), Error> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::RtmpProtocol("the server did not answer".into()));
            }
            let bytes = self.transport.read(Some(left)).map_err(Error::Rtmp)?;
            for e in self.handle(&bytes)? {
                refused(&e)?;
                if want(&e) {
                    return Ok(());
                }
            }
        }
    }
}

fn refused(e: &ClientSessionEvent) -> Result<(), Error> {
    match e {
        ClientSessionEvent::ConnectionRequestRejected { .. } => Err(Error::RtmpProtocol(
            "the server refused the connection".into(),
        )),
        _ => Ok(()),
    }
}

fn handshake(transport: &mut Transport) -> Result<Vec<u8>, Error> {
    let mut hs = Handshake::new(PeerType::Client);
    let p0p1 = hs
        .generate_outbound_p0_and_p1()
        .map_err(|e| Error::RtmpProtocol(e.to_string()))?;
    transport.write_all(&p0p1).map_err(Error::Rtmp)?;
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::RtmpProtocol("no answer during the handshake".into()));
        }
        let bytes = transport.read(Some(left)).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                Error::RtmpProtocol("closed during the handshake".into())
            }
            _ => Error::Rtmp(e),
        })?;
        if bytes.is_empty() {
            continue;
        }
        match hs
            .process_bytes(&bytes)
            .map_err(|e| Error::RtmpProtocol(e.to_string()))?
        {
            HandshakeProcessResult::InProgress { response_bytes } => {
                transport.write_all(&response_bytes).map_err(Error::Rtmp)?;
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                transport.write_all(&response_bytes).map_err(Error::Rtmp)?;
                return Ok(remaining_bytes);
            }
        }
    }
}

fn proto(e: impl fmt::Display) -> Error {
    Error::RtmpProtocol(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_the_key_never_prints() {
        let t = RtmpTarget::parse(
            "rtmp://a.rtmp.youtube.com/live2",
            StreamKey::new("abcd-efgh"),
        )
        .unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.app.as_str()),
            ("a.rtmp.youtube.com", 1935, "live2")
        );
        assert!(!format!("{t:?}").contains("abcd"));
        let t = RtmpTarget::parse("rtmp://127.0.0.1:19350/live/", StreamKey::new("k")).unwrap();
        assert_eq!((t.port, t.app.as_str(), t.tls), (19350, "live", false));
        let t = RtmpTarget::parse(
            "rtmps://live-api-s.facebook.com/rtmp/",
            StreamKey::new("FB-1"),
        )
        .unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.app.as_str(), t.tls),
            ("live-api-s.facebook.com", 443, "rtmp", true)
        );
        assert_eq!(t.tc_url(), "rtmps://live-api-s.facebook.com:443/rtmp");
        let t = RtmpTarget::parse("rtmps://127.0.0.1:4443/live", StreamKey::new("k")).unwrap();
        assert_eq!((t.port, t.tls), (4443, true));
        for bad in [
            "http://x/live",
            "rtmp://x",
            "rtmp://x:notaport/live",
            "rtmp:///live",
            "rtmps:///live",
            "rtmps://x",
            "rtmps://x:99999/live",
            "rtmps://bad_host!/live",
        ] {
            assert!(
                RtmpTarget::parse(bad, StreamKey::new("k")).is_err(),
                "{bad}"
            );
        }
        assert!(RtmpTarget::parse("rtmp://x/live", StreamKey::new("")).is_err());
    }
}
