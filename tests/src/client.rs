//! A WebSocket test client that speaks the browser <-> edge protocol as JSON values.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::Edge;

pub const WAIT: Duration = Duration::from_secs(5);

/// What arrives on a socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Message(Value),
    Closed { code: u16, reason: String },
}

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Our participant id once joined.
    pub id: Option<String>,
    /// The media mode the welcome gave, until `node_grant` takes it.
    welcome_media: Option<Value>,
}

impl Client {
    pub async fn connect(edge: &Edge, path: &str) -> Self {
        Self::connect_with_headers(edge, path, &[]).await
    }

    /// Connect with extra handshake headers (for example a proxy's location headers).
    pub async fn connect_with_headers(edge: &Edge, path: &str, headers: &[(&str, &str)]) -> Self {
        let mut request = edge
            .ws_url(path)
            .into_client_request()
            .expect("a WebSocket URL");
        for (k, v) in headers {
            request.headers_mut().insert(
                HeaderName::from_bytes(k.as_bytes()).expect("a header name"),
                HeaderValue::from_str(v).expect("a header value"),
            );
        }
        let (ws, _) = tokio::time::timeout(WAIT, connect_async(request))
            .await
            .expect("WebSocket connect in time")
            .expect("WebSocket connect");
        Self {
            ws,
            id: None,
            welcome_media: None,
        }
    }

    pub async fn room(edge: &Edge, room: &str) -> Self {
        Self::connect(edge, &format!("/api/rooms/{room}")).await
    }

    pub async fn tenant_room(edge: &Edge, tenant: &str, room: &str) -> Self {
        Self::connect(edge, &format!("/api/rooms/{tenant}/{room}")).await
    }

    /// Send a message; `v: 1` is added unless the message has a `v` already.
    pub async fn send(&mut self, mut msg: Value) {
        if msg.get("v").is_none() {
            msg["v"] = json!(1);
        }
        self.send_raw(&msg.to_string()).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws
            .send(Message::Binary(bytes.into()))
            .await
            .expect("send");
    }

    /// The next message or close, failing after [`WAIT`].
    pub async fn next_event(&mut self) -> Event {
        self.next_event_within(WAIT)
            .await
            .expect("a message in time")
    }

    pub async fn next_event_within(&mut self, wait: Duration) -> Option<Event> {
        loop {
            let frame = match tokio::time::timeout(wait, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) => {
                    return Some(Event::Closed {
                        code: 1006,
                        reason: "stream ended".into(),
                    });
                }
                Ok(Some(Err(_))) => {
                    return Some(Event::Closed {
                        code: 1006,
                        reason: "connection error".into(),
                    });
                }
                Ok(Some(Ok(frame))) => frame,
            };
            match frame {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).expect("the edge sends JSON");
                    assert_eq!(
                        value["v"],
                        json!(1),
                        "every message carries the version: {value}"
                    );
                    return Some(Event::Message(value));
                }
                Message::Close(frame) => {
                    let (code, reason) = frame
                        .map_or((1005, String::new()), |CloseFrame { code, reason }| {
                            (code.into(), reason.to_string())
                        });
                    return Some(Event::Closed { code, reason });
                }
                _ => continue,
            }
        }
    }

    /// The next message, which must not be a close.
    pub async fn recv(&mut self) -> Value {
        match self.next_event().await {
            Event::Message(v) => v,
            Event::Closed { code, reason } => {
                panic!("socket closed ({code} {reason}) while expecting a message")
            }
        }
    }

    /// Skip messages until one of type `ty` arrives.
    pub async fn wait_for(&mut self, ty: &str) -> Value {
        loop {
            let msg = self.recv().await;
            if msg["type"] == ty {
                return msg;
            }
        }
    }

    /// The node grant of a room on its media node: from the welcome (a room whose pair had a
    /// standby node already), else from the `media_mode` that moves the room there.
    pub async fn node_grant(&mut self) -> Value {
        if let Some(m) = self.welcome_media.take()
            && m["mode"] == "sfu"
            && m["node"].is_object()
        {
            return m["node"].clone();
        }
        loop {
            let msg = self.wait_for("media_mode").await;
            if msg["media"]["mode"] == "sfu" && msg["media"]["node"].is_object() {
                return msg["media"]["node"].clone();
            }
        }
    }

    /// Skip messages until a `media_mode` of `mode` arrives (a pair's standby node comes in a
    /// `p2p` update whenever the edge has chosen it).
    pub async fn wait_for_mode(&mut self, mode: &str) -> Value {
        loop {
            let msg = self.wait_for("media_mode").await;
            if msg["media"]["mode"] == mode {
                return msg;
            }
        }
    }

    /// The next message must be an error with `code` (a `media_mode` in between is skipped: the
    /// standby node of a pair arrives whenever the edge has chosen it).
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let mut msg = self.recv().await;
        while msg["type"] == "media_mode" {
            msg = self.recv().await;
        }
        assert_eq!(
            (msg["type"].as_str(), msg["code"].as_str()),
            (Some("error"), Some(code)),
            "got {msg}"
        );
        assert!(
            msg["message"].as_str().is_some_and(|m| !m.is_empty()),
            "errors explain themselves: {msg}"
        );
        msg
    }

    /// Nothing arrives for `ms` milliseconds but `media_mode` updates (a pair's standby node
    /// arrives whenever the edge has chosen it).
    pub async fn expect_silence(&mut self, ms: u64) {
        let until = tokio::time::Instant::now() + Duration::from_millis(ms);
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event_within(left).await {
                None => return,
                Some(Event::Message(m)) if m["type"] == "media_mode" => {}
                Some(event) => panic!("expected nothing, got {event:?}"),
            }
        }
    }

    /// Skip messages until the socket closes; returns the close code and reason.
    pub async fn expect_closed(&mut self) -> (u16, String) {
        loop {
            if let Event::Closed { code, reason } = self.next_event().await {
                return (code, reason);
            }
        }
    }

    /// Join with extra fields (`token`, `password`, `profile`); returns the welcome.
    pub async fn join(&mut self, extra: Value) -> Value {
        let welcome = self.try_join(extra).await;
        assert_eq!(welcome["type"], "welcome", "join refused: {welcome}");
        welcome
    }

    /// Join and return whatever comes back first (welcome, waiting or an error).
    pub async fn try_join(&mut self, extra: Value) -> Value {
        let mut msg = json!({"type": "join"});
        if let Value::Object(fields) = extra {
            msg.as_object_mut().unwrap().extend(fields);
        }
        self.send(msg).await;
        let answer = self.recv().await;
        if answer["type"] == "welcome" {
            self.id = answer["you"].as_str().map(str::to_string);
            self.welcome_media = Some(answer["media"].clone());
        }
        answer
    }

    /// Someone knocking: skip messages until the welcome that lets them in, and take its id.
    pub async fn wait_for_welcome(&mut self) -> Value {
        let welcome = self.wait_for("welcome").await;
        self.id = welcome["you"].as_str().map(str::to_string);
        self.welcome_media = Some(welcome["media"].clone());
        welcome
    }

    pub fn id(&self) -> &str {
        self.id.as_deref().expect("joined")
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
