//! The all-in-one: a media node inside the edge process. Its API is nested under `/node` on the
//! edge's own origin (so browsers need no other address, certificate or CORS), and it reports to the
//! edge over a private loopback listener that serves only the node endpoints.

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use axum::routing::post;
use edgemeet_media_node::{MediaNode, MediaNodeHandle};
use edgemeet_protocol::node::Heartbeat;

use crate::AppState;
use crate::config::ServerConfig;

/// Where the embedded node's API lives on the edge's origin.
pub const NODE_PREFIX: &str = "/node";

pub struct EmbeddedNode {
    pub router: Router,
    pub handle: MediaNodeHandle,
}

/// Start the embedded node, or nothing when `embed_media_node` is off.
pub async fn start(
    config: &ServerConfig,
    state: &AppState,
    recording: Option<edgemeet_media_node::RecordingConfig>,
) -> anyhow::Result<Option<EmbeddedNode>> {
    if !config.embed_media_node {
        return Ok(None);
    }
    let internal = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .context("cannot open the loopback port the embedded media node reports to")?;
    let internal_addr = internal.local_addr()?;

    let mut node = config.media_node.clone().unwrap_or_default();
    node.secret = config
        .edge
        .node_secret
        .clone()
        .context("edge.node_secret is needed for the embedded media node")?;
    node.public_url
        .get_or_insert_with(|| NODE_PREFIX.to_string());
    node.edge_url = Some(format!("http://{internal_addr}"));
    if let Some(r) = recording {
        node.recording = Some(r);
    }
    if let (Some(region), true) = (&config.region, config.media_node.is_none()) {
        node.region = region.clone();
    }
    let url = node.public_url();
    let (id, region) = (node.id.clone(), node.region.clone());
    let node_id = id.clone();
    let (router, handle) =
        MediaNode::build(node).map_err(|e| anyhow::anyhow!("media_node: {e}"))?;
    // The loopback listener: the node reports here, and the edge calls the node here.
    let internal_routes = Router::new()
        .route("/api/nodes/heartbeat", post(crate::nodes::heartbeat_route))
        .route("/api/nodes/events", post(crate::nodes::events_route))
        .with_state(state.clone())
        .merge(router.clone());
    tokio::spawn(async move {
        let internal = axum::serve::ListenerExt::tap_io(internal, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        if let Err(err) = axum::serve(internal, internal_routes).await {
            tracing::error!(error = %err, "embedded node loopback listener stopped");
        }
    });
    state
        .hub
        .node_calls
        .set_local(&node_id, format!("http://{internal_addr}"));
    // Known to the registry at once, not only after its first heartbeat arrives.
    let heartbeat = Heartbeat {
        id,
        region,
        url,
        load: handle.load(),
        draining: false,
        migrate: false,
        lat: None,
        lon: None,
    };
    state
        .registry
        .lock()
        .expect("registry lock")
        .heartbeat(heartbeat, crate::hub::now_ms());
    tracing::info!(prefix = NODE_PREFIX, "embedded media node ready");
    Ok(Some(EmbeddedNode { router, handle }))
}
