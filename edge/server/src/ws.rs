//! `GET /api/rooms/{room}` and `/api/rooms/{tenant}/{room}`: the room WebSocket.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use edgemeet_core::{ClientInfo, keyed_hash, route};
use edgemeet_protocol::{ServerMessage, encode_server};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::AppState;
use crate::hub::{Outgoing, SOCKET_QUEUE};

/// Frames above this are refused by the WebSocket layer itself (close 1009); the core answers frames
/// between its own limit and this one with a `too_large` error.
pub const MAX_FRAME_BYTES: usize = 1 << 20;

#[derive(Deserialize)]
pub struct RoomQuery {
    jwt: Option<String>,
}

pub async fn room_default(
    state: State<AppState>,
    Path(room): Path<String>,
    query: Query<RoomQuery>,
    peer: ConnectInfo<crate::tls::PeerAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(state, None, room, query, peer, headers, ws)
}

pub async fn room_tenant(
    state: State<AppState>,
    Path((tenant, room)): Path<(String, String)>,
    query: Query<RoomQuery>,
    peer: ConnectInfo<crate::tls::PeerAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(state, Some(tenant), room, query, peer, headers, ws)
}

fn upgrade(
    State(app): State<AppState>,
    tenant: Option<String>,
    room: String,
    Query(query): Query<RoomQuery>,
    ConnectInfo(crate::tls::PeerAddr(peer)): ConnectInfo<crate::tls::PeerAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // Every name upgrades the same way; a bad name is reported on the socket, like any other error.
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            let address = route(app.hub.config(), tenant.as_deref(), &room);
            let client = ClientInfo {
                addr_key: keyed_hash(&app.hub.config().hash_key, &format!("addr\0{}", peer.ip())),
                location: crate::location::from_headers(&headers, app.trust_location_headers),
                query_token: query.jwt,
            };
            match address {
                Ok(address) => serve_socket(app, socket, address, client).await,
                Err(err) => refuse(socket, err).await,
            }
        })
}

async fn refuse(mut socket: WebSocket, err: edgemeet_protocol::ProtocolError) {
    let msg = ServerMessage::Error {
        code: err.code,
        message: err.message,
        request: None,
    };
    let _ = socket.send(Message::Text(encode_server(&msg).into())).await;
    let frame = CloseFrame {
        code: edgemeet_core::room::close::POLICY,
        reason: Utf8Bytes::from_static("invalid room"),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

async fn serve_socket(
    app: AppState,
    socket: WebSocket,
    address: edgemeet_core::RoomAddress,
    client: ClientInfo,
) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Outgoing>(SOCKET_QUEUE);
    let hub = app.hub.clone();
    let route = address.route.clone();
    tracing::debug!(room = %route, "socket opened");
    let attachment = hub.attach(address, client, tx);
    let mut shutdown = app.shutdown.clone();

    let writer = tokio::spawn(async move {
        loop {
            let frame = tokio::select! {
                frame = rx.recv() => frame,
                _ = shutdown.changed() => Some(Outgoing::Close(1001, "server shutting down".into())),
            };
            match frame {
                Some(Outgoing::Text(text)) => {
                    if sink
                        .send(Message::Text(Utf8Bytes::from(&*text)))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Some(Outgoing::Close(code, reason)) => {
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame {
                            code,
                            reason: reason.into(),
                        })))
                        .await;
                    break;
                }
                None => {
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame {
                            code: 1008,
                            reason: "too slow".into(),
                        })))
                        .await;
                    break;
                }
            }
        }
    });

    while let Some(Ok(msg)) = stream.next().await {
        match msg {
            Message::Text(text) => hub.text(&attachment, text.to_string()),
            Message::Binary(bytes) => hub.binary(&attachment, bytes.len()),
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => {}
        }
        if writer.is_finished() {
            break;
        }
    }
    hub.detach(attachment);
    // We closed first (flood, kick): read and drop what the peer still sends until it answers the
    // close, so the kernel does not reset the connection while our close frame is unread.
    if writer.is_finished() {
        let drain = async {
            while let Some(Ok(msg)) = stream.next().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
    }
    tracing::debug!(room = %route, "socket closed");
    let _ = writer.await;
}
