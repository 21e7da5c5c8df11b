//! # edgemeet media node
//!
//! A selective forwarding unit on webrtc-rs's sans-IO core (`rtc`): one media loop, a plain
//! thread, owns the UDP socket and every connection (`media_loop/`, `docs/media-node-design.md`);
//! the HTTP API talks to it over a channel. Each participant opens a *session* (one peer
//! connection) with an offer; pushes its tracks (`tracks/new`, location `local`) and pulls other
//! sessions' tracks of the same room by session id + track name (`location: remote`; the node
//! returns an offer that the client answers with `renegotiate`). The HTTP API is described in
//! `docs/media-node-api.md`; every call carries an HS256 token the edge signs
//! ([`edgemeet_protocol::node::NodeTokenClaims`]).
//!
//! ## Embedding
//!
//! ```no_run
//! # async fn run() -> Result<(), edgemeet_media_node::StartError> {
//! use edgemeet_media_node::{MediaNode, NodeConfig};
//! let mut cfg = NodeConfig::default();
//! cfg.secret = "a shared secret of 16+ bytes".into();
//! // Either serve on cfg.listen ...
//! let node = MediaNode::start(cfg.clone()).await?;
//! println!("node at {:?}", node.local_addr());
//! node.shutdown().await;
//! // ... or take the Router and serve or nest it in the host's own axum server.
//! let (router, handle) = MediaNode::build(cfg)?;
//! # drop(router); handle.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! `MediaNode::build` returns a `Router` whose paths are absolute (`/v1/...`, `/healthz`,
//! `/metrics`): serve it as is or `nest` it under a prefix and set `public_url` accordingly.
//! Both variants need a running tokio runtime (for the API and the edge reporter); the media
//! loop runs on a thread of its own.
//!
//! ## Endpoints (details in `docs/media-node-api.md`)
//!
//! | call | who |
//! |---|---|
//! | `POST /v1/sessions/new` | participant |
//! | `GET`/`DELETE /v1/sessions/{id}` | participant (own session) or edge |
//! | `POST /v1/sessions/{id}/tracks/new` (push with offer / pull -> node offer) | participant |
//! | `PUT /v1/sessions/{id}/renegotiate` (answer to the node's offer) | participant |
//! | `PUT /v1/sessions/{id}/tracks/close`, `PUT .../tracks/update` (simulcast layer) | participant |
//! | `POST /v1/participants/{participant}/close` (on leave) | edge |
//! | `POST /v1/rooms/{meeting}/close` (on room end; finalizes its recording) | edge |
//! | `POST /v1/rooms/{meeting}/recording/start`, `.../recording/stop` | edge |
//! | `POST /v1/drain` (node secret) , `GET /healthz`, `GET /metrics` | operator |
//!
//! Media stays in memory: nothing is written to disk. Recordings (`[recording]` in the config)
//! go from memory straight to S3-compatible storage. Logs carry session ids, never tokens,
//! names or participant ids.

mod allocation;
mod api;
mod auth;
mod composition;
mod config;
mod dynacast;
mod error;
pub mod inbound;
mod keyframes;
mod layers;
mod media_loop;
mod metrics;
mod node;
mod recording;
mod red;
mod reporter;
mod rewrite;
mod sdp;
mod speaker;
mod stitch;
mod tile_view;
mod tracks;

pub use api::MAX_BODY_BYTES;
pub use auth::{EDGE_SUBJECT, sign_token};
pub use config::{ConfigError, NodeConfig};
pub use error::StartError;
pub use node::{MediaNode, MediaNodeHandle};
pub use recording::config::RecordingConfig;
