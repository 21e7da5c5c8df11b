//! `GET /api/rooms/{room}` and `/api/rooms/{tenant}/{room}`: the core's rules for the room socket
//! (`core::http::socket`), then the socket handed to the room's Durable Object.

use serde::{Deserialize, Serialize};
use worker::{Env, Headers, Request, RequestInit, Response, Result, WebSocketPair};

use crate::core::http::socket;
use crate::core::{ClientInfo, RoomAddress};
use crate::{ROOM_BINDING, config, glue, logic};

/// What the fetch handler tells the room's DO about a new socket.
#[derive(Serialize, Deserialize)]
pub struct Connect {
    pub address: RoomAddress,
    pub client: ClientInfo,
}

/// The header that carries [`Connect`] to the room's DO.
pub const CONNECT_HEADER: &str = "x-edgemeet-connect";

pub async fn join(
    req: Request,
    env: Env,
    tenant: Option<String>,
    room: String,
) -> Result<Response> {
    let config = config::config(&env)?;
    let header = |name| req.headers().get(name).ok().flatten();
    if let Err(reply) = socket::preflight(
        &config,
        header("upgrade").as_deref(),
        header("origin").as_deref(),
        header("host").as_deref(),
    ) {
        return glue::response(reply);
    }
    let address = match socket::address(&config, tenant.as_deref(), &room) {
        Ok(a) => a,
        Err(e) => return refuse(socket::refusal(e)),
    };
    let query = req.url()?.query().unwrap_or("").to_owned();
    let client = ClientInfo {
        // Cloudflare's view of the caller's address.
        addr_key: socket::address_key(&config, &header("cf-connecting-ip").unwrap_or_default()),
        location: logic::location_from_cf(&glue::cf_json(&req)),
        query_token: socket::query_token(&query),
    };
    let stub = env
        .durable_object(ROOM_BINDING)?
        .id_from_name(&address.route)?
        .get_stub()?;
    let headers = Headers::new();
    headers.set("upgrade", "websocket")?;
    headers.set(
        CONNECT_HEADER,
        &serde_json::to_string(&Connect { address, client }).map_err(|e| e.to_string())?,
    )?;
    let mut init = RequestInit::new();
    init.with_headers(headers);
    stub.fetch_with_request(Request::new_with_init("https://room/connect", &init)?)
        .await
}

/// A name that cannot be a room: the socket is accepted (every name upgrades the same way), told
/// why, and closed.
fn refuse(refusal: socket::Refusal) -> Result<Response> {
    let pair = WebSocketPair::new()?;
    pair.server.accept()?;
    let _ = pair.server.send_with_str(&refusal.text);
    let _ = pair.server.close(Some(refusal.code), Some(refusal.reason));
    Response::from_websocket(pair.client)
}
