//! Publishes the composed stream to an RTMP server (YouTube, Twitch, any ingest) from our own
//! process, so the stream key is never on a command line, in a URL we log, or on disk.

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;

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

/// Where to publish: `rtmp://host[:port]/app` and the key the service gave.
#[derive(Clone, Debug)]
pub struct RtmpTarget {
    pub host: String,
    pub port: u16,
    pub app: String,
    pub key: StreamKey,
}

impl RtmpTarget {
    /// Parses the ingest URL (`rtmp://host[:port]/app[/more]`). `rtmps://` is refused for now
    /// (no TLS in this first version): say so rather than send the key in clear by surprise.
    pub fn parse(url: &str, key: StreamKey) -> Result<Self, Error> {
        let rest = url
            .strip_prefix("rtmp://")
            .ok_or(Error::BadTarget("the URL must start with rtmp://"))?;
        let (authority, app) = rest
            .split_once('/')
            .ok_or(Error::BadTarget("no application in the URL"))?;
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| Error::BadTarget("bad port"))?),
            None => (authority, 1935),
        };
        let app = app.trim_end_matches('/');
        if host.is_empty() || app.is_empty() || key.0.is_empty() {
            return Err(Error::BadTarget("host, application and key are all needed"));
        }
        Ok(Self {
            host: host.to_string(),
            port,
            app: app.to_string(),
            key,
        })
    }

    fn tc_url(&self) -> String {
        format!("rtmp://{}:{}/{}", self.host, self.port, self.app)
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An RTMP session publishing live.
pub struct Publisher {
    socket: TcpStream,
    session: ClientSession,
    /// Bytes the server sent (acks, pings), read by a thread of their own.
    inbound: mpsc::Receiver<Vec<u8>>,
}

impl Publisher {
    /// Connects, shakes hands, and asks to publish; returns once the server accepted.
    pub fn connect(target: &RtmpTarget) -> Result<Self, Error> {
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
        let remaining = handshake(&mut socket)?;

        let mut config = ClientSessionConfig::new();
        config.tc_url = Some(target.tc_url());
        let (session, _) = ClientSession::new(config).map_err(proto)?;
        let (tx, inbound) = mpsc::channel();
        let mut reader = socket.try_clone().map_err(Error::Rtmp)?;
        reader.set_read_timeout(None).map_err(Error::Rtmp)?;
        std::thread::Builder::new()
            .name("rtmp-in".into())
            .spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            })
            .map_err(Error::Rtmp)?;
        let mut p = Self {
            socket,
            session,
            inbound,
        };
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
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        Ok(())
    }

    fn send(&mut self, r: ClientSessionResult) -> Result<(), Error> {
        if let ClientSessionResult::OutboundResponse(p) = r {
            self.socket.write_all(&p.bytes).map_err(Error::Rtmp)?;
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

    fn drain(&mut self) -> Result<(), Error> {
        while let Ok(bytes) = self.inbound.try_recv() {
            for e in self.handle(&bytes)? {
                refused(&e)?;
            }
        }
        Ok(())
    }

    fn wait_for(&mut self, want: impl Fn(&ClientSessionEvent) -> bool) -> Result<(), Error> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let bytes = self
                .inbound
                .recv_timeout(left)
                .map_err(|_| Error::RtmpProtocol("the server did not answer".into()))?;
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

fn handshake(socket: &mut TcpStream) -> Result<Vec<u8>, Error> {
    let mut hs = Handshake::new(PeerType::Client);
    let p0p1 = hs
        .generate_outbound_p0_and_p1()
        .map_err(|e| Error::RtmpProtocol(e.to_string()))?;
    socket.write_all(&p0p1).map_err(Error::Rtmp)?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = socket.read(&mut buf).map_err(Error::Rtmp)?;
        if n == 0 {
            return Err(Error::RtmpProtocol("closed during the handshake".into()));
        }
        match hs
            .process_bytes(&buf[..n])
            .map_err(|e| Error::RtmpProtocol(e.to_string()))?
        {
            HandshakeProcessResult::InProgress { response_bytes } => {
                socket.write_all(&response_bytes).map_err(Error::Rtmp)?;
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                socket.write_all(&response_bytes).map_err(Error::Rtmp)?;
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
        assert_eq!((t.port, t.app.as_str()), (19350, "live"));
        for bad in [
            "http://x/live",
            "rtmp://x",
            "rtmp://x:notaport/live",
            "rtmps://x/live",
            "rtmp:///live",
        ] {
            assert!(
                RtmpTarget::parse(bad, StreamKey::new("k")).is_err(),
                "{bad}"
            );
        }
        assert!(RtmpTarget::parse("rtmp://x/live", StreamKey::new("")).is_err());
    }
}
