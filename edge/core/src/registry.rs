//! Media-node registry: heartbeats in, a node for a new room out. Nodes silent for 15 s or draining
//! are not chosen; among the rest, the nearest to the caller with the least load wins.

use std::collections::BTreeMap;

use edgemeet_protocol::node::Heartbeat;
use serde::{Deserialize, Serialize};

/// A node not heard from for this long is not chosen for new rooms.
pub const STALE_AFTER_MS: u64 = 15_000;
/// Nodes unheard for this long are forgotten.
pub const FORGET_AFTER_MS: u64 = 5 * 60_000;

/// Where a caller is: from `request.cf` on Cloudflare, from config or headers natively. Any field may
/// be missing or wrong; selection copes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// A configured region name (e.g. `eu-west`), when the host knows it.
    #[serde(default)]
    pub region: Option<String>,
    /// Two-letter continent code (`EU`, `NA`, ...).
    #[serde(default)]
    pub continent: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
}

impl Location {
    /// Parse Cloudflare-style strings, dropping whatever does not parse or is out of range.
    pub fn from_parts(
        continent: Option<&str>,
        country: Option<&str>,
        lat: Option<&str>,
        lon: Option<&str>,
    ) -> Self {
        let coord = |s: Option<&str>, max: f64| {
            s.and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite() && v.abs() <= max)
        };
        let code = |s: Option<&str>| {
            s.map(str::trim)
                .filter(|s| {
                    (2..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic())
                })
                .map(str::to_ascii_uppercase)
        };
        Self {
            region: None,
            continent: code(continent),
            country: code(country),
            lat: coord(lat, 90.0),
            lon: coord(lon, 180.0),
        }
    }
}

/// The node a room uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: String,
    pub url: String,
    pub region: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct NodeRecord {
    heartbeat: Heartbeat,
    last_seen_ms: u64,
}

/// Every node that sent a heartbeat recently.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    nodes: BTreeMap<String, NodeRecord>,
}

impl Registry {
    pub fn heartbeat(&mut self, heartbeat: Heartbeat, now_ms: u64) {
        self.nodes
            .retain(|_, n| now_ms.saturating_sub(n.last_seen_ms) < FORGET_AFTER_MS);
        self.nodes.insert(
            heartbeat.id.clone(),
            NodeRecord {
                heartbeat,
                last_seen_ms: now_ms,
            },
        );
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The best live node for a caller at `location`, or none.
    pub fn select(&self, location: Option<&Location>, now_ms: u64) -> Option<NodeInfo> {
        self.nodes
            .values()
            .filter(|n| {
                !n.heartbeat.draining && now_ms.saturating_sub(n.last_seen_ms) < STALE_AFTER_MS
            })
            .map(|n| (cost(&n.heartbeat, location), n))
            .min_by(|(a, na), (b, nb)| {
                a.total_cmp(b)
                    .then_with(|| na.heartbeat.id.cmp(&nb.heartbeat.id))
            })
            .map(|(_, n)| NodeInfo {
                id: n.heartbeat.id.clone(),
                url: n.heartbeat.url.clone(),
                region: n.heartbeat.region.clone(),
            })
    }
}

/// Lower is better, in "kilometres": distance (or a region guess), plus load.
fn cost(node: &Heartbeat, location: Option<&Location>) -> f64 {
    const UNKNOWN_KM: f64 = 5_000.0;
    const OTHER_REGION_KM: f64 = 10_000.0;
    let distance = match location {
        Some(loc) => match (loc.lat, loc.lon, node.lat, node.lon) {
            (Some(a), Some(b), Some(c), Some(d)) => haversine_km(a, b, c, d),
            _ if region_matches(&node.region, loc) => 0.0,
            _ if loc.region.is_none() && loc.continent.is_none() => UNKNOWN_KM,
            _ => OTHER_REGION_KM,
        },
        None => UNKNOWN_KM,
    };
    let load = &node.load;
    distance + 20.0 * f64::from(load.sessions) + 3_000.0 * f64::from(load.cpu.clamp(0.0, 1.0))
}

/// A node's region matches a configured region exactly, or a continent as its prefix (`eu-west` ~ `EU`).
fn region_matches(node_region: &str, loc: &Location) -> bool {
    let node_region = node_region.to_ascii_lowercase();
    if let Some(r) = &loc.region
        && node_region == r.to_ascii_lowercase()
    {
        return true;
    }
    loc.continent.as_ref().is_some_and(|c| {
        let c = c.to_ascii_lowercase();
        node_region == c || node_region.starts_with(&format!("{c}-"))
    })
}

fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * a.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgemeet_protocol::node::NodeLoad;

    fn hb(id: &str, region: &str, sessions: u32) -> Heartbeat {
        Heartbeat {
            id: id.into(),
            region: region.into(),
            url: format!("http://{id}"),
            load: NodeLoad {
                sessions,
                ..Default::default()
            },
            draining: false,
            lat: None,
            lon: None,
        }
    }

    #[test]
    fn picks_the_callers_continent_then_the_least_loaded() {
        let mut r = Registry::default();
        r.heartbeat(hb("eu1", "eu-west", 10), 0);
        r.heartbeat(hb("eu2", "eu-central", 2), 0);
        r.heartbeat(hb("us1", "na-east", 0), 0);
        let eu = Location::from_parts(Some("EU"), Some("DE"), None, None);
        let na = Location::from_parts(Some("NA"), Some("US"), Some("40.7"), Some("-74.0"));
        assert_eq!(r.select(Some(&eu), 1_000).unwrap().id, "eu2");
        assert_eq!(r.select(Some(&na), 1_000).unwrap().id, "us1");
    }

    #[test]
    fn skips_stale_and_draining_nodes() {
        let mut r = Registry::default();
        r.heartbeat(hb("old", "eu-west", 0), 0);
        let mut d = hb("drain", "eu-west", 0);
        d.draining = true;
        r.heartbeat(d, 20_000);
        r.heartbeat(hb("far", "na-east", 50), 20_000);
        let eu = Location::from_parts(Some("EU"), None, None, None);
        assert_eq!(r.select(Some(&eu), 20_000).unwrap().id, "far");
        assert_eq!(r.select(Some(&eu), 40_000), None);
    }

    #[test]
    fn malformed_location_values_are_dropped_not_fatal() {
        let loc = Location::from_parts(Some("E\u{0}"), Some(""), Some("north"), Some("1e999"));
        assert_eq!(loc, Location::default());
        let mut r = Registry::default();
        r.heartbeat(hb("n", "x", 0), 0);
        assert!(r.select(Some(&loc), 0).is_some());
    }
}
