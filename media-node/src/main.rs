//! `edgemeet-media-node [config.toml]`: runs a media node until SIGINT/SIGTERM.
//! `edgemeet-media-node --check config.toml`: validates the configuration and exits.
//! Environment variables `EDGEMEET_NODE_*` override the file (see `NodeConfig::apply_env`).

use anyhow::Context;
use edgemeet_media_node::{MediaNode, NodeConfig};

fn main() {
    // Errors print as one clear line (with causes), never a backtrace.
    if let Err(err) = start() {
        eprintln!("edgemeet-media-node: error: {err:#}");
        std::process::exit(1);
    }
}

fn start() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut args: Vec<_> = std::env::args_os().skip(1).collect();
    let check_only = args.first().is_some_and(|a| a == "--check");
    if check_only {
        args.remove(0);
    }
    let path = args
        .into_iter()
        .next()
        .or_else(|| std::env::var_os("EDGEMEET_NODE_CONFIG"));
    let cfg = NodeConfig::load(path.as_deref().map(std::path::Path::new))
        .context("media node configuration")?;
    if check_only {
        println!("media node configuration: ok");
        return Ok(());
    }
    let rt = match cfg.worker_threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        0 => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
    .context("starting the async runtime")?;
    rt.block_on(run(cfg))
}

async fn run(cfg: NodeConfig) -> anyhow::Result<()> {
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
