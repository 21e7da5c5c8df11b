//! `edgemeet`: the edge on a VM or a laptop. With no configuration it is the all-in-one meeting
//! server on localhost: `cargo run --release`, then open the printed URL.

mod config;
mod embedded;
mod http;
mod hub;
mod location;
mod nodes;
mod pages;
mod recording;
mod tls;
mod token_cli;
mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use clap::{Parser, Subcommand};
use edgemeet_core::Registry;
use tokio::sync::watch;

use crate::config::{LogFormat, ServerConfig};

#[derive(Parser)]
#[command(
    name = "edgemeet",
    version,
    about = "Privacy-first video meetings: the edge server (all-in-one by default)"
)]
struct Cli {
    /// Configuration file (TOML). Without one, defaults suit a meeting server on localhost.
    #[arg(long, short, env = "EDGEMEET_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Address to listen on (overrides the file and EDGEMEET_LISTEN).
    #[arg(long)]
    listen: Option<SocketAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Check a configuration file and report the first problem with the offending key.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Mint a Jitsi-format invite token, or `token verify` one against a configuration.
    Token(Box<token_cli::TokenArgs>),
}

#[derive(Subcommand)]
enum ConfigAction {
    Check { file: PathBuf },
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub hub: Arc<hub::Hub>,
    pub registry: Arc<Mutex<Registry>>,
    pub web: Arc<pages::Web>,
    pub shutdown: watch::Receiver<()>,
    pub trust_location_headers: bool,
    /// `GET /api/config`: what the page needs to know (recording available, Dropbox app key).
    pub public_config: Arc<serde_json::Value>,
    /// The page's Content-Security-Policy (images only from allowed avatar hosts).
    pub csp: axum::http::HeaderValue,
    /// `/metrics` on the main listener: only with this bearer token.
    pub metrics_token: Option<Arc<str>>,
    /// The embedded media node's API, once started: `/metrics` appends the node's.
    pub node_router: Arc<std::sync::OnceLock<Router>>,
}

fn main() {
    let cli = Cli::parse();
    // One TLS stack for the process (HTTPS serving and outgoing calls): rustls on ring.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    // Errors print as one clear line (with causes), never a panic backtrace.
    if let Err(err) = run(cli) {
        eprintln!("edgemeet: error: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Config {
            action: ConfigAction::Check { file },
        }) => {
            ServerConfig::load(Some(&file))?;
            println!("{}: ok", file.display());
            Ok(())
        }
        Some(Command::Token(args)) => token_cli::run(*args),
        None | Some(Command::Serve) => {
            let mut config = ServerConfig::load(cli.config.as_deref())?;
            if let Some(listen) = cli.listen {
                config.listen = listen;
            }
            init_logs(config.log_format);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(serve(config))
        }
    }
}

/// Targets of the edge's own libraries capped at `info` whatever `EDGEMEET_LOG` says, on top of
/// the uploader's (`edgemeet_uploader::logging::CAPPED_TARGETS`: the AWS SDK prints the embedded
/// storage's access key id, s3s each request's Authorization header, the HTTP stacks whole
/// requests): tungstenite traces every WebSocket message (names, chat, tokens, status links).
const EDGE_CAPPED_TARGETS: &[&str] = &["tungstenite", "tokio_tungstenite"];

fn init_logs(format: LogFormat) {
    let directives = std::env::var("EDGEMEET_LOG").unwrap_or_default();
    let filter = edgemeet_uploader::logging::env_filter_with(&directives, EDGE_CAPPED_TARGETS);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(false).init(),
    }
}

async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    let web = pages::Web::load(&config.web_dir)
        .with_context(|| format!("web_dir {}", config.web_dir.display()))?;
    let registry = Arc::new(Mutex::new(Registry::new(config.edge.node_stale_after_ms)));
    let edge = Arc::new(config.edge.clone());
    let hub = hub::Hub::new(
        edge,
        registry.clone(),
        nodes::NodeCaller::new(),
        config.region.clone(),
        config.max_sockets_per_address,
    );
    // Nodes that fall silent are found within a quarter second of turning stale.
    let sweeper = tokio::spawn(
        hub.clone()
            .sweep_nodes(std::time::Duration::from_millis(250)),
    );
    let (shutdown_tx, shutdown) = watch::channel(());
    // Recording in the all-in-one: storage and uploader here, unless the embedded node was given
    // its own `[media_node.recording]` (then an uploader elsewhere serves that storage).
    let own_node_recording = config
        .media_node
        .as_ref()
        .is_some_and(|n| n.recording.is_some());
    let (recording, node_recording) =
        if config.embed_media_node && config.recording.enabled && !own_node_recording {
            let (r, node) = recording::start(&config.recording).await?;
            (Some(r), Some(node))
        } else {
            (None, None)
        };
    // Recording is offered when a node here can record, or the nodes are elsewhere (their
    // operator configured them and their uploader).
    let available = recording.is_some() || own_node_recording || !config.embed_media_node;
    // Recorders' status links: on this origin when the uploader runs here, unless configured.
    let status_url = config.recording.status_url.clone().or_else(|| {
        recording
            .as_ref()
            .map(|_| edgemeet_uploader::status::STATUS_PATH.to_string())
    });
    let public_config = Arc::new(
        config
            .recording
            .public_json(available, status_url.as_deref()),
    );
    let state = AppState {
        hub,
        registry,
        web: Arc::new(web),
        shutdown,
        trust_location_headers: config.trust_location_headers,
        public_config,
        csp: edgemeet_core::web::content_security_policy(&config.edge)
            .parse()
            .context("edge.avatar_hosts: not usable in a Content-Security-Policy")?,
        metrics_token: config.metrics.token.as_deref().map(Arc::from),
        node_router: Default::default(),
    };
    let poke_task = recording.as_ref().map(|r| {
        let (done, poke) = (state.hub.recording_stopped.clone(), r.poker());
        tokio::spawn(async move {
            loop {
                done.notified().await;
                poke.notify_one();
            }
        })
    });

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (set --listen or EDGEMEET_LISTEN)",
                config.listen
            )
        })?;
    let addr = listener.local_addr()?;
    let embedded = embedded::start(&config, &state, node_recording).await?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!("edgemeet listening on {scheme}://{addr}/ - open it in a browser to start a meeting");
    tracing::info!(%addr, tenants = config.edge.tenants.len(), tls = config.tls.is_some(), "edge ready");

    if let Some(listen) = config.metrics.listen {
        let metrics_listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("metrics.listen: cannot listen on {listen}"))?;
        let metrics_app = Router::new()
            .route("/metrics", get(pages::metrics_open))
            .with_state(state.clone());
        tracing::info!(%listen, "metrics listener ready");
        tokio::spawn(async move {
            if let Err(err) = axum::serve(metrics_listener, metrics_app).await {
                tracing::error!(error = %err, "metrics listener stopped");
            }
        });
    }
    let hub = state.hub.clone();
    let mut app = router(state.clone(), embedded.as_ref().map(|n| n.router.clone()));
    if let Some(r) = &recording {
        app = app.merge(r.status_router());
    }
    if let Some(node) = &embedded {
        let _ = state.node_router.set(node.router.clone());
    }
    app = app.layer(axum::middleware::from_fn_with_state(
        state,
        http::security_headers,
    ));
    let app = app.into_make_service_with_connect_info::<tls::PeerAddr>();
    let stop = async move {
        shutdown_signal().await;
        tracing::info!("shutting down: closing sockets");
        let _ = shutdown_tx.send(());
    };
    match &config.tls {
        Some(tls) => {
            let listener = tls::TlsListener::new(listener, tls::load(&tls.cert, &tls.key)?)?;
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await?
        }
        None => {
            axum::serve(tls::NoDelayListener(listener), app)
                .with_graceful_shutdown(stop)
                .await?
        }
    }
    // Upgraded sockets are not part of the server's graceful shutdown: let them send their close
    // frames (the shutdown signal reached every writer) before the runtime goes away.
    sweeper.abort();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while hub.open_sockets() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    if let Some(node) = embedded {
        // Finalizes running recordings (files, then manifests) first.
        node.handle.shutdown().await;
    }
    if let Some(task) = poke_task {
        task.abort();
    }
    if let Some(r) = recording {
        r.shutdown(std::time::Duration::from_secs(10)).await;
    }
    Ok(())
}

/// The embedded node's API under `/node` and the uploader's status pages (when they run here),
/// everything else by the core's route table (`http::dispatch`).
fn router(state: AppState, node: Option<Router>) -> Router {
    let app = Router::new().fallback(http::dispatch).with_state(state);
    match node {
        // The node's own /metrics is not for browsers: it is part of the edge's (protected) one.
        Some(node) => app.nest(
            embedded::NODE_PREFIX,
            node.layer(axum::middleware::from_fn(http::hide_node_metrics)),
        ),
        None => app,
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
