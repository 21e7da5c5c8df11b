//! edgemeet on Cloudflare Workers: a thin binding of `edge/core`.
//!
//! - [`logic`]: routing, static files, `request.cf` parsing, secrets: pure code, tested on the host.
//! - `host` (wasm32 only): the fetch handler, the `Room` Durable Object (one per room, WebSocket
//!   hibernation API) and the `Registry` Durable Object (media-node heartbeats and selection).
//!
//! Build with `edge/worker/build.sh`; see `docs/deploy.md` (Cloudflare).

// The room logic comes from `edge/core`; until it lands on `main`, a stand-in with the announced API.
pub mod core_shim;
pub use core_shim as core;

pub mod logic;

#[cfg(target_arch = "wasm32")]
mod host;
