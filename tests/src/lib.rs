//! Support for the end-to-end tests: an edge to talk to (a URL from `EDGEMEET_URL`, or a native
//! server started here), a WebSocket test client, raw HTTP, and invite tokens from the fixtures.

pub mod client;
pub mod edge;
pub mod http;
pub mod raw_ws;
pub mod tokens;

pub use client::Client;
pub use edge::Edge;

/// A room name no other test (or earlier run) uses.
pub fn unique_room(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    format!("{prefix}-{}", hex::encode(bytes))
}

/// The repository root (fixtures live under `tests/fixtures`).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}
