//! A WebSocket client at the frame level, over a plain TCP stream: it sends what a well-behaved
//! client library will not (oversized frames, text that is not UTF-8, a handshake from a chosen
//! `Origin` or source address), and sees whether the server closed the TCP connection.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::Edge;

pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;

/// One frame from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Text(String),
    /// A close frame: its code (1005 when it had none) and reason.
    Close(u16, String),
    Other(u8),
    /// The server closed the TCP connection.
    Eof,
}

pub struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// The response to a handshake that was not upgraded.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
}

impl RawWs {
    /// Upgrade `path` on `edge`, with extra headers, from the loopback address `from` (e.g.
    /// `127.0.0.7`; `None`: the system's choice).
    pub async fn connect(
        edge: &Edge,
        path: &str,
        headers: &[(&str, &str)],
        from: Option<&str>,
    ) -> Result<Self, Refused> {
        let host_port = edge.host_port();
        let server: SocketAddr = tokio::net::lookup_host(&host_port)
            .await
            .expect("the edge's address")
            .next()
            .expect("an address");
        let socket = TcpSocket::new_v4().expect("a socket");
        if let Some(from) = from {
            socket
                .bind(SocketAddr::new(from.parse().expect("an IP"), 0))
                .expect("bind the source address");
        }
        let mut stream = tokio::time::timeout(Duration::from_secs(5), socket.connect(server))
            .await
            .expect("connect in time")
            .expect("connect");
        let _ = stream.set_nodelay(true);
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
                .await
                .expect("a handshake answer in time")
                .expect("read");
            if n == 0 {
                return Err(Refused { status: 0 });
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if status != 101 {
            return Err(Refused { status });
        }
        buf.drain(..head_end);
        Ok(Self { stream, buf })
    }

    /// Send one masked frame with opcode `op` (FIN set).
    pub async fn send_frame(&mut self, op: u8, payload: &[u8]) {
        let mut frame = vec![0x80 | op];
        let len = payload.len();
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else if len <= 0xffff {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        // A server that refuses a frame may close before it has all of it: not an error here.
        let _ = self.stream.write_all(&frame).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send_frame(OP_TEXT, text.as_bytes()).await;
    }

    /// Send a close frame with `code`.
    pub async fn send_close(&mut self, code: u16) {
        self.send_frame(OP_CLOSE, &code.to_be_bytes()).await;
    }

    /// The next frame from the server, `Eof` once it closed the connection, `None` after `wait`.
    pub async fn next_frame(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some((frame, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            let mut chunk = [0u8; 16 * 1024];
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await;
            match read {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => return Some(Frame::Eof),
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Skip text frames until a close frame; returns its code and reason.
    pub async fn expect_close(&mut self, wait: Duration) -> (u16, String) {
        loop {
            match self.next_frame(wait).await {
                Some(Frame::Close(code, reason)) => return (code, reason),
                Some(Frame::Text(_)) | Some(Frame::Other(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    /// Answer the server's close as a browser does (echo its code), then whether the server closes
    /// the TCP connection within `wait`.
    pub async fn answer_close_and_see_it_end(&mut self, code: u16, wait: Duration) -> bool {
        self.send_close(code).await;
        self.closed_by_server(wait).await
    }

    /// Whether the server closes the TCP connection within `wait` (frames before it are skipped).
    pub async fn closed_by_server(&mut self, wait: Duration) -> bool {
        loop {
            match self.next_frame(wait).await {
                Some(Frame::Eof) => return true,
                None => return false,
                Some(_) => {}
            }
        }
    }
}

/// One unmasked server frame from the front of `buf`, and its length.
fn parse(buf: &[u8]) -> Option<(Frame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let op = buf[0] & 0x0f;
    let (len, mut at) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().ok()?) as usize, 10),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    if buf[1] & 0x80 != 0 {
        at += 4;
    }
    if buf.len() < at + len {
        return None;
    }
    let payload = &buf[at..at + len];
    let frame = match op {
        OP_TEXT => Frame::Text(String::from_utf8_lossy(payload).to_string()),
        OP_CLOSE if payload.len() >= 2 => Frame::Close(
            u16::from_be_bytes([payload[0], payload[1]]),
            String::from_utf8_lossy(&payload[2..]).to_string(),
        ),
        OP_CLOSE => Frame::Close(1005, String::new()),
        other => Frame::Other(other),
    };
    Some((frame, at + len))
}
