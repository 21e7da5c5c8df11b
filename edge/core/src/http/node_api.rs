//! The media nodes' endpoints (`POST /api/nodes/heartbeat`, `POST /api/nodes/events`): the node
//! secret as a bearer token, a JSON body of at most [`MAX_BODY`], and for events a room route of
//! the edge's own making.

use edgemeet_protocol::node::{Heartbeat, NodeEvent, NodeEvents};
use serde::de::DeserializeOwned;

use super::{Reply, bearer_ok};
use crate::{EdgeConfig, Input};

/// The most a node's request body may hold.
pub const MAX_BODY: usize = 64 * 1024;

/// A node's request: authorized by the node secret, then parsed. `Err` is the answer to send.
pub fn request<T: DeserializeOwned>(
    config: &EdgeConfig,
    authorization: Option<&str>,
    body: &[u8],
) -> Result<T, Reply> {
    if !bearer_ok(authorization, config.node_secret.as_deref()) {
        return Err(Reply::error(
            401,
            "unauthorized",
            "a node secret is required",
        ));
    }
    if body.len() > MAX_BODY {
        return Err(Reply::error(413, "too_large", "at most 64 KiB"));
    }
    serde_json::from_slice(body).map_err(|e| Reply::error(400, "invalid_message", &e.to_string()))
}

pub fn heartbeat(
    config: &EdgeConfig,
    authorization: Option<&str>,
    body: &[u8],
) -> Result<Heartbeat, Reply> {
    request(config, authorization, body)
}

/// A batch of node events, each for the room of its route. A route the edge cannot have made
/// (see [`crate::address::is_route`]) refuses the whole batch: the node is broken or not ours,
/// and such a name must not address anything (on Cloudflare it would name a Durable Object).
/// Events for routes with no running room are the host's to drop.
pub fn events(
    config: &EdgeConfig,
    authorization: Option<&str>,
    body: &[u8],
) -> Result<Vec<NodeEvent>, Reply> {
    let batch: NodeEvents = request(config, authorization, body)?;
    if !batch
        .events
        .iter()
        .all(|e| crate::address::is_route(route_of(e)))
    {
        return Err(Reply::error(
            400,
            "invalid_message",
            "an event's route is not a room route of this edge",
        ));
    }
    Ok(batch.events)
}

/// The route of the room an event is for.
pub fn route_of(event: &NodeEvent) -> &str {
    match event {
        NodeEvent::DominantSpeaker { route, .. }
        | NodeEvent::VideoPaused { route, .. }
        | NodeEvent::LayersNeeded { route, .. }
        | NodeEvent::CompositionEnded { route, .. } => route,
    }
}

/// What the room hears of an event.
pub fn input(event: NodeEvent) -> Input {
    match event {
        NodeEvent::DominantSpeaker {
            room, participant, ..
        } => Input::DominantSpeaker {
            meeting_id: room,
            participant,
        },
        NodeEvent::VideoPaused {
            room,
            viewer,
            publisher,
            track,
            paused,
            ..
        } => Input::VideoPaused {
            meeting_id: room,
            viewer,
            publisher,
            track,
            paused,
        },
        NodeEvent::LayersNeeded {
            room,
            publisher,
            track,
            rids,
            ..
        } => Input::LayersNeeded {
            meeting_id: room,
            publisher,
            track,
            rids,
        },
        NodeEvent::CompositionEnded {
            room,
            purpose,
            restarted,
            ..
        } => Input::CompositionEnded {
            meeting_id: room,
            livestream: purpose == "livestream",
            restarted,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const SECRET: &str = "node-secret-0123456789";

    fn config() -> EdgeConfig {
        EdgeConfig {
            hash_key: "k".repeat(16),
            node_secret: Some(SECRET.into()),
            ..Default::default()
        }
    }

    fn code(r: &Reply) -> (u16, Value) {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        (r.status, body["error"]["code"].clone())
    }

    #[test]
    fn the_node_secret_and_the_size_limit() {
        let c = config();
        let auth = format!("Bearer {SECRET}");
        let hb = json!({"id": "n1", "region": "eu", "url": "https://n1.example",
            "load": {"sessions": 0, "tracks": 0, "bitrate_bps": 0, "cpu": 0.0}})
        .to_string();
        assert_eq!(heartbeat(&c, Some(&auth), hb.as_bytes()).unwrap().id, "n1");
        let wrong = heartbeat(&c, Some("Bearer nope"), hb.as_bytes()).unwrap_err();
        assert_eq!(code(&wrong), (401, json!("unauthorized")));
        let none = EdgeConfig {
            node_secret: None,
            ..config()
        };
        assert_eq!(
            heartbeat(&none, Some(&auth), hb.as_bytes())
                .unwrap_err()
                .status,
            401
        );
        let big = vec![b' '; MAX_BODY + 1];
        assert_eq!(
            code(&heartbeat(&c, Some(&auth), &big).unwrap_err()),
            (413, json!("too_large"))
        );
        assert_eq!(
            code(&heartbeat(&c, Some(&auth), b"{}").unwrap_err()),
            (400, json!("invalid_message"))
        );
    }

    #[test]
    fn events_only_for_routes_the_edge_makes() {
        let c = config();
        let auth = format!("Bearer {SECRET}");
        let route = crate::route(&c, None, "standup").unwrap().route;
        let batch = |route: &str| {
            json!({"node_id": "n1", "events": [{"type": "dominant_speaker", "route": route, "room": "m1",
                "participant": "p1"}]})
            .to_string()
        };
        let ok = events(&c, Some(&auth), batch(&route).as_bytes()).unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(route_of(&ok[0]), route);
        assert_eq!(
            input(ok[0].clone()),
            Input::DominantSpeaker {
                meeting_id: "m1".into(),
                participant: "p1".into()
            }
        );
        for bad in [
            "",
            "../registry",
            "global",
            &route.to_uppercase(),
            &format!("{route}0"),
        ] {
            let r = events(&c, Some(&auth), batch(bad).as_bytes()).unwrap_err();
            assert_eq!(code(&r), (400, json!("invalid_message")), "{bad}");
        }
    }
}
