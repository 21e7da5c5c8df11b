//! `GET /api/rooms/{room}` and `/api/rooms/{tenant}/{room}`: the room WebSocket.
//!
//! One task per socket reads frames into the room; a writer task sends what the room queues. When
//! either side ends, the socket is detached from the room at once (so nothing of it stays behind
//! in a room that goes on), the right close frame is sent, and the TCP connection is closed.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use edgemeet_core::http::socket;
use edgemeet_core::room::close;
use edgemeet_core::{ClientInfo, client_key};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};

use crate::AppState;
use crate::http::{extract, response, text};
use crate::hub::{AddressSlot, Outgoing, SOCKET_QUEUE};

/// How long a socket we close waits for the peer's answering close before the TCP connection is
/// dropped anyway.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The core's rules for a room socket (`edgemeet_core::http::socket`), this host's cap on
/// sockets per address, then the upgrade. Every name upgrades the same way; a bad name is
/// reported on the socket, like any other error.
pub async fn upgrade(
    app: AppState,
    tenant: Option<String>,
    room: String,
    ConnectInfo(crate::tls::PeerAddr(peer)): ConnectInfo<crate::tls::PeerAddr>,
    req: Request,
) -> Response {
    let config = app.hub.config();
    let (mut parts, _) = req.into_parts();
    let headers = &parts.headers;
    if let Err(reply) = socket::preflight(
        config,
        text(headers, "upgrade"),
        text(headers, "origin"),
        text(headers, "host"),
    ) {
        return response(reply);
    }
    let ws = match extract::<WebSocketUpgrade>(&app, &mut parts).await {
        Ok(ws) => ws,
        Err(rejection) => return rejection,
    };
    let addr_key = client_key(&config.hash_key, peer.ip());
    let Some(slot) = app.hub.address_slot(&addr_key) else {
        return response(socket::too_many_sockets());
    };
    let client = ClientInfo {
        addr_key,
        location: crate::location::from_headers(&parts.headers, app.trust_location_headers),
        query_token: parts.uri.query().and_then(socket::query_token),
    };
    let address = socket::address(config, tenant.as_deref(), &room);
    let max_frame = config.limits.max_frame_bytes;
    ws.max_message_size(max_frame)
        .max_frame_size(max_frame)
        .on_upgrade(move |socket| async move {
            match address {
                Ok(address) => serve_socket(app, socket, address, client, slot).await,
                Err(err) => refuse(socket, err).await,
            }
        })
}

/// A name that cannot be a room: said on the socket, then closed.
async fn refuse(socket: WebSocket, err: edgemeet_protocol::ProtocolError) {
    let refusal = socket::refusal(err);
    let (mut sink, stream) = socket.split();
    let _ = sink.send(Message::Text(refusal.text.into())).await;
    finish(
        sink,
        stream,
        Some((refusal.code, refusal.reason.into())),
        true,
    )
    .await;
}

/// Why the reading side stopped.
enum End {
    /// The peer sent a close frame: answer it.
    PeerClosed,
    /// The peer broke the protocol: close with this code.
    Refuse(u16, &'static str),
    /// The connection is gone (dropped TCP, closed tab): nothing to send.
    Gone,
}

async fn serve_socket(
    app: AppState,
    socket: WebSocket,
    address: edgemeet_core::RoomAddress,
    client: ClientInfo,
    _slot: AddressSlot,
) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Outgoing>(SOCKET_QUEUE);
    let hub = app.hub.clone();
    let route = address.route.clone();
    tracing::debug!(room = %route, "socket opened");
    let attachment = hub.attach(address, client, tx);
    let mut shutdown = app.shutdown.clone();
    let (stop_writer, mut stopped) = oneshot::channel::<()>();

    // Sends what the room queues. Returns the sink; the close the room asked for, if any (`None`:
    // the room let go of this socket); and whether the peer is still there.
    let mut writer = tokio::spawn(async move {
        loop {
            let frame = tokio::select! {
                frame = rx.recv() => frame,
                _ = shutdown.changed() => Some(Outgoing::Close(close::GOING_AWAY, "server shutting down".into())),
                _ = &mut stopped => return (sink, None, true),
            };
            match frame {
                Some(Outgoing::Text(text)) => {
                    let sent = tokio::select! {
                        sent = sink.send(Message::Text(Utf8Bytes::from(&*text))) => sent.is_ok(),
                        _ = &mut stopped => return (sink, None, true),
                    };
                    if !sent {
                        return (sink, None, false);
                    }
                }
                Some(Outgoing::Close(code, reason)) => return (sink, Some((code, reason)), true),
                None => return (sink, None, true),
            }
        }
    });

    let end = loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    // Sizes only: a frame's text is the participant's (names, chat, tokens).
                    tracing::trace!(room = %route, bytes = text.len(), "text frame");
                    hub.text(&attachment, text.to_string())
                }
                Some(Ok(Message::Binary(bytes))) => hub.binary(&attachment, bytes.len()),
                Some(Ok(Message::Close(_))) => break End::PeerClosed,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Err(err)) => break classify(err),
                None => break End::Gone,
            },
            done = &mut writer => {
                // The room closed this socket or let go of it (or the peer stopped reading: lost).
                hub.detach(attachment, matches!(done, Ok((_, _, false))));
                // A peer that stopped reading gets nothing more: the connection just closes.
                if let Ok((sink, close, true)) = done {
                    finish(sink, stream, Some(close.unwrap_or_else(too_slow)), true).await;
                }
                tracing::debug!(room = %route, "socket closed");
                return;
            }
        }
    };
    // Out of the room at once: its sender goes, so nothing of this socket stays behind. A
    // connection that just dropped (no close frame) leaves its participant free to resume.
    hub.detach(attachment, matches!(end, End::Gone));
    let _ = stop_writer.send(());
    let Ok(Ok((sink, _, _))) = tokio::time::timeout(CLOSE_GRACE, &mut writer).await else {
        // A writer stuck on a peer that reads nothing: drop it all (the TCP connection closes).
        writer.abort();
        tracing::debug!(room = %route, "socket closed");
        return;
    };
    match end {
        End::PeerClosed => finish(sink, stream, None, false).await,
        End::Refuse(code, reason) => {
            finish(sink, stream, Some((code, reason.to_string())), true).await
        }
        End::Gone => {}
    }
    tracing::debug!(room = %route, "socket closed");
}

/// The room let go of a socket whose queue overflowed.
fn too_slow() -> (u16, String) {
    (close::POLICY, "too slow".to_string())
}

/// What a read error means for the close code (RFC 6455 7.4.1).
fn classify(err: axum::Error) -> End {
    use tungstenite::error::{CapacityError, Error as WsError};
    match err.into_inner().downcast::<WsError>().map(|e| *e) {
        // The connection went away under the socket (no close frame): lost, free to resume.
        Ok(WsError::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake)) => {
            End::Gone
        }
        Ok(WsError::Capacity(CapacityError::MessageTooLong { .. })) => {
            End::Refuse(close::TOO_BIG, "frame too large")
        }
        Ok(WsError::Capacity(_)) => End::Refuse(close::TOO_BIG, "frame too large"),
        Ok(WsError::Utf8(_)) => End::Refuse(close::INVALID_DATA, "text frames are UTF-8"),
        Ok(WsError::Protocol(_)) => End::Refuse(close::PROTOCOL, "protocol error"),
        _ => End::Gone,
    }
}

/// Send our close frame (or the answer to the peer's), give the peer a moment to answer ours,
/// then drop both halves: the TCP connection closes.
async fn finish(
    mut sink: SplitSink<WebSocket, Message>,
    mut stream: SplitStream<WebSocket>,
    close: Option<(u16, String)>,
    wait_for_peer: bool,
) {
    let sent = async {
        match close {
            Some((code, reason)) => {
                let frame = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                let _ = sink.send(Message::Close(Some(frame))).await;
                let _ = sink.flush().await;
            }
            // Flushes the answer to the peer's close that the protocol layer queued.
            None => {
                let _ = sink.close().await;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, sent).await;
    if wait_for_peer {
        // Read and drop what the peer still sends until it answers the close, so the kernel does
        // not reset the connection while our close frame is unread.
        let drain = async {
            while let Some(Ok(msg)) = stream.next().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
}
