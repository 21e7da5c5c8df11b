//! edgemeet on Cloudflare Workers: a thin binding of `edge/core`, whose `http` module owns the
//! routes, answers and rules; this crate turns them into the Workers runtime's I/O.
//!
//! - [`logic`]: the embedded web files, `request.cf` parsing, the recording var: pure code,
//!   tested on the host.
//! - wasm32 only: the fetch router (here), the room socket's entry (`socket`), the media nodes'
//!   endpoints (`nodes`), the `Room` Durable Object (`room`: one per room, WebSocket hibernation
//!   API), the `Registry` Durable Object (`registry`: media-node heartbeats and selection), the
//!   JavaScript glue (`glue`), the configuration (`config`) and the test probes (`probes`).
//!
//! Build with `edge/worker/build.sh`; see `docs/deploy.md` (Cloudflare).

pub use edgemeet_core as core;

pub mod logic;

#[cfg(target_arch = "wasm32")]
mod config;
#[cfg(target_arch = "wasm32")]
mod glue;
#[cfg(target_arch = "wasm32")]
mod nodes;
#[cfg(target_arch = "wasm32")]
mod probes;
#[cfg(target_arch = "wasm32")]
mod registry;
#[cfg(target_arch = "wasm32")]
mod room;
#[cfg(target_arch = "wasm32")]
mod socket;

#[cfg(target_arch = "wasm32")]
pub use {registry::Registry, room::Room};

/// The Durable Object bindings (`wrangler.toml`).
#[cfg(target_arch = "wasm32")]
const ROOM_BINDING: &str = "ROOM";
#[cfg(target_arch = "wasm32")]
const REGISTRY_BINDING: &str = "REGISTRY";

#[cfg(target_arch = "wasm32")]
#[worker::event(fetch)]
async fn fetch(
    mut req: worker::Request,
    env: worker::Env,
    _ctx: worker::Context,
) -> worker::Result<worker::Response> {
    use crate::core::http::{self, Reply, Route, names_api};

    console_error_panic_hook::set_once();
    let path = req.path();
    if config::probes_enabled(&env) && path.starts_with("/__test/") {
        return probes::fetch(req, env).await;
    }
    let method = req.method();
    let csp = match config::config(&env) {
        Ok(c) => core::web::content_security_policy(&c),
        Err(_) => core::web::content_security_policy(&core::EdgeConfig::default()),
    };
    let reply = match http::route(method.as_ref(), &path) {
        Route::Page => Reply::file("/index.html", logic::index_html()),
        Route::Asset(file) => match logic::file(&format!("/assets/{file}")) {
            Some(body) => Reply::file(&file, body),
            None => http::not_found(),
        },
        Route::Health => http::health(),
        Route::NamesRandom => names_api::random(&mut glue::JsRng),
        Route::NamesCheck => names_api::check(&req.bytes().await?),
        Route::PageConfig => match logic::page_config(&config::vars(&env)) {
            Ok(page) => Reply::json(200, &page),
            Err(e) => {
                worker::console_error!("recording configuration: {e}");
                Reply::json(200, &logic::page_config_without_recording())
            }
        },
        // No metrics here: Cloudflare's analytics count requests.
        Route::Metrics | Route::NotFound => http::not_found(),
        Route::MethodNotAllowed(allow) => http::method_not_allowed(allow),
        Route::RoomSocket { tenant, room } => {
            let resp = socket::join(req, env, tenant, room).await?;
            return glue::with_security_headers(resp, &csp);
        }
        Route::NodeHeartbeat => nodes::heartbeat(req, env).await?,
        Route::NodeEvents => nodes::events(req, env).await?,
    };
    glue::with_security_headers(glue::response(reply.for_method(method.as_ref()))?, &csp)
}
