//! The sans-IO heart of the edge. No sockets, no clock reads, no randomness of its own: hosts pass the
//! time and a random source in [`Env`], feed [`Input`]s, and carry out the [`Effect`]s that come back.
//! The Cloudflare Worker and the native server are thin shells around this crate.

pub mod address;
pub mod auth;
pub mod config;
pub mod crypto;
pub mod http;
pub mod names;
pub mod node_call;
pub mod profile;
pub mod ratelimit;
pub mod registry;
pub mod room;
pub mod speaker;
pub mod turn;
pub mod web;

pub use address::{RoomAddress, client_key, keyed_hash, route};
pub use config::{AuthMode, EdgeConfig, Moderation, TenantConfig};
pub use registry::{Location, Need, NodeInfo, Registry};
pub use room::{
    ClientInfo, ConnId, Effect, Env, Input, LivestreamCall, NodeScope, RecordStart, Room,
    StatusToken,
};
