//! The media nodes' endpoints: the core checks them (`core::http::node_api`), the Registry and
//! Room Durable Objects take what they carry.

use serde_json::json;
use worker::{Env, Request, Result};

use crate::core::http::{Reply, node_api};
use crate::{ROOM_BINDING, config, glue, registry};

async fn authorization(req: &Request) -> Result<Option<String>> {
    req.headers().get("authorization")
}

pub async fn heartbeat(mut req: Request, env: Env) -> Result<Reply> {
    let config = config::config(&env)?;
    let auth = authorization(&req).await?;
    let body = req.bytes().await?;
    let hb = match node_api::heartbeat(&config, auth.as_deref(), &body) {
        Ok(hb) => hb,
        Err(refusal) => return Ok(refusal),
    };
    let resp = glue::do_post(
        &registry::stub(&env)?,
        "/heartbeat",
        &json!({ "heartbeat": hb, "age_ms": 0 }),
    )
    .await?;
    if resp.status_code() != 204 {
        return Ok(Reply::error(500, "internal", "registry unavailable"));
    }
    Ok(Reply::no_content())
}

/// Each event goes to its room's Durable Object (an event for a room that is not running creates
/// nothing there).
pub async fn events(mut req: Request, env: Env) -> Result<Reply> {
    let config = config::config(&env)?;
    let auth = authorization(&req).await?;
    let body = req.bytes().await?;
    let events = match node_api::events(&config, auth.as_deref(), &body) {
        Ok(events) => events,
        Err(refusal) => return Ok(refusal),
    };
    let ns = env.durable_object(ROOM_BINDING)?;
    for event in events {
        let stub = ns.id_from_name(node_api::route_of(&event))?.get_stub()?;
        let _ = glue::do_post(&stub, "/node-event", &event).await?;
    }
    Ok(Reply::no_content())
}
