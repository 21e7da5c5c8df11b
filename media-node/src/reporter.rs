//! Reports to the edge: a heartbeat every second (and at once when a drain changes) and dominant-speaker events as they come.
//! The edge may be down: failures are logged and the next tick simply tries again.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use edgemeet_protocol::node::{Heartbeat, NodeEvent, NodeEvents};
use tokio::sync::{mpsc, watch};

use crate::node::Shared;

/// Most events sent in one POST.
const MAX_BATCH: usize = 100;

pub async fn run(
    shared: Arc<Shared>,
    mut events: mpsc::UnboundedReceiver<NodeEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(edge) = shared.cfg.edge_url.clone() else {
        // Nobody to tell: still drain the queue so it does not grow.
        loop {
            tokio::select! {
                e = events.recv() => if e.is_none() { return },
                _ = crate::node::stopped(&mut stop) => return,
            }
        }
    };
    let edge = edge.trim_end_matches('/').to_owned();
    // The host process may have installed a provider already; either way one is there after.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client: not reporting to the edge");
            return;
        }
    };
    let secret = shared.cfg.secret.clone();
    let period = Duration::from_secs(shared.cfg.heartbeat_secs);
    let mut tick = tokio::time::interval(period);
    let mut last_bytes = 0u64;
    let mut last_at = Instant::now();
    let mut pending: Vec<NodeEvent> = Vec::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let total = shared.metrics_total();
                let bytes = total.bytes_in.load(Relaxed) + total.bytes_out.load(Relaxed);
                let secs = last_at.elapsed().as_secs_f64().max(0.001);
                let bps = ((bytes.saturating_sub(last_bytes)) as f64 * 8.0 / secs) as u64;
                (last_bytes, last_at) = (bytes, Instant::now());
                let hb = Heartbeat {
                    id: shared.cfg.id.clone(),
                    region: shared.cfg.region.clone(),
                    url: shared.cfg.public_url(),
                    load: shared.load(bps),
                    draining: shared.draining.load(Relaxed),
                    migrate: shared.migrate.load(Relaxed),
                    lat: shared.cfg.lat,
                    lon: shared.cfg.lon,
                };
                post(&client, &format!("{edge}/api/nodes/heartbeat"), &secret, &hb).await;
                // Events that failed earlier get another try with the heartbeat.
                if !pending.is_empty() {
                    flush(&client, &edge, &secret, &shared.cfg.id, &mut pending).await;
                }
            }
            e = events.recv() => {
                let Some(e) = e else { return };
                pending.push(e);
                while pending.len() < MAX_BATCH && let Ok(e) = events.try_recv() {
                    pending.push(e);
                }
                flush(&client, &edge, &secret, &shared.cfg.id, &mut pending).await;
            }
            // A drain changed: report it now rather than on the next tick.
            _ = shared.report_now.notified() => tick.reset_immediately(),
            _ = crate::node::stopped(&mut stop) => return,
        }
    }
}

async fn flush(
    client: &reqwest::Client,
    edge: &str,
    secret: &str,
    node_id: &str,
    pending: &mut Vec<NodeEvent>,
) {
    let batch = NodeEvents {
        node_id: node_id.to_owned(),
        events: pending.clone(),
    };
    if post(client, &format!("{edge}/api/nodes/events"), secret, &batch).await {
        pending.clear();
    } else if pending.len() > 10 * MAX_BATCH {
        // The edge is gone for long: old speaker changes are worthless, keep the newest.
        let excess = pending.len() - MAX_BATCH;
        pending.drain(..excess);
    }
}

async fn post<T: serde::Serialize>(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    body: &T,
) -> bool {
    match client.post(url).bearer_auth(secret).json(body).send().await {
        Ok(r) if r.status().is_success() => true,
        Ok(r) => {
            tracing::warn!(status = %r.status(), path = %path_of(url), "edge refused a report");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e.without_url(), path = %path_of(url), "edge unreachable");
            false
        }
    }
}

fn path_of(url: &str) -> &str {
    url.rsplit_once("/api/").map_or(url, |(_, p)| p)
}
