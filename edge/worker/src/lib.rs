//! edgemeet on Cloudflare Workers: a thin binding of `edge/core`.
//!
//! - [`logic`]: routing, static files, `request.cf` parsing, secrets: pure code, tested on the host.
//! - `host` (wasm32 only): the fetch handler, the `Room` Durable Object (one per room, WebSocket
//!   hibernation API) and the `Registry` Durable Object (media-node heartbeats and selection).
//!
//! Build with `edge/worker/build.sh`; see `docs/deploy.md` (Cloudflare).

pub use edgemeet_core as core;

pub mod logic;

#[cfg(target_arch = "wasm32")]
mod host;
