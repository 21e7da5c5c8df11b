//! `edgemeet-media-node [config.toml]`: runs a media node until SIGINT/SIGTERM.
//! Environment variables `EDGEMEET_NODE_*` override the file (see `NodeConfig::apply_env`).

use anyhow::Context;
use edgemeet_media_node::{MediaNode, NodeConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let path = std::env::args_os()
        .nth(1)
        .or_else(|| std::env::var_os("EDGEMEET_NODE_CONFIG"));
    let cfg = NodeConfig::load(path.as_deref().map(std::path::Path::new))
        .context("media node configuration")?;
    let node = MediaNode::start(cfg)
        .await
        .context("starting the media node")?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    node.shutdown().await;
    Ok(())
}
