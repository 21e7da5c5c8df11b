//! Test-only routes, present only when the `EDGEMEET_TEST_PROBES` var is `1` (the dev config of the
//! test suite; never in a deployment): look into a room's storage, simulate eviction, drive the
//! registry with a chosen `request.cf`.

use serde_json::{Value, json};
use worker::{Env, Request, Response, Result};

use crate::core::{self, http::Reply};
use crate::{ROOM_BINDING, config, glue, logic, registry};

pub async fn fetch(mut req: Request, env: Env) -> Result<Response> {
    let path = req.path();
    let parts: Vec<&str> = path.trim_start_matches("/__test/").split('/').collect();
    match parts.as_slice() {
        ["room", tenant, room, action] => {
            let config = config::config(&env)?;
            let tenant = (*tenant != "-").then_some(*tenant);
            let address = match core::route(&config, tenant, room) {
                Ok(a) => a,
                Err(e) => {
                    return glue::response(Reply::error(400, "invalid_room_name", &e.message));
                }
            };
            let stub = env
                .durable_object(ROOM_BINDING)?
                .id_from_name(&address.route)?
                .get_stub()?;
            glue::do_post(&stub, &format!("/probe/{action}"), &json!({})).await
        }
        ["registry", "heartbeat"] => {
            let body: Value = req.json().await?;
            glue::do_post(&registry::stub(&env)?, "/heartbeat", &body).await
        }
        ["registry", "select"] => {
            let body: Value = req.json().await?;
            let location = logic::location_from_cf(body.get("cf").unwrap_or(&Value::Null));
            glue::do_post(
                &registry::stub(&env)?,
                "/select",
                &json!({ "location": location }),
            )
            .await
        }
        ["cf"] => {
            let cf = glue::cf_json(&req);
            let location = logic::location_from_cf(&cf);
            glue::response(Reply::json(200, &json!({ "cf": cf, "location": location })))
        }
        _ => glue::response(Reply::error(404, "not_found", "no such probe")),
    }
}
