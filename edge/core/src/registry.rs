//! Media-node registry: heartbeats in, a node for a new room out, and the rooms to move when a
//! node dies or is drained with `migrate`. Nodes silent for `node_stale_after_ms` (3 s), lost, or
//! draining are not chosen; among the rest, the nearest to the caller with the least load wins.
//! A room that needs a composer (a livestream or composite recording its node had no room for)
//! is offered only nodes with a free composition slot by their last heartbeat.
//! The registry remembers which rooms it placed on each node, so that a node's loss names them.

use std::collections::{BTreeMap, BTreeSet};

use edgemeet_protocol::node::Heartbeat;
use edgemeet_protocol::server::MoveReason;
use serde::{Deserialize, Serialize};

/// A node not heard from for this long is dead (the default of `node_stale_after_ms`): it is not
/// chosen, and its rooms move. Nodes heartbeat every second.
pub const STALE_AFTER_MS: u64 = 3_000;
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

/// What a room needs of a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Need {
    /// Any live node: forwarding media is what every node does.
    #[default]
    Media,
    /// A node with a free composition slot (`compositions < max_compositions` in its last
    /// heartbeat): the room's own node refused a livestream or composite recording for lack of one.
    Composer,
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
    /// Declared dead (silent too long, or the edge's check after a page's report failed): its
    /// rooms were moved. A later heartbeat brings it back for new rooms.
    #[serde(default)]
    lost: bool,
    /// Routes of the rooms placed on this node (a room that left it since ignores a move).
    #[serde(default)]
    rooms: BTreeSet<String>,
}

/// Rooms to move off a node: hosts hand each route [`crate::Input::MoveOffNode`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMove {
    pub node_id: String,
    pub reason: MoveReason,
    pub routes: Vec<String>,
}

/// Every node that sent a heartbeat recently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    nodes: BTreeMap<String, NodeRecord>,
    #[serde(default = "default_stale_after")]
    stale_after_ms: u64,
}

fn default_stale_after() -> u64 {
    STALE_AFTER_MS
}

impl Default for Registry {
    fn default() -> Self {
        Self::new(STALE_AFTER_MS)
    }
}

impl Registry {
    /// A registry that calls a node dead after `stale_after_ms` without a heartbeat.
    pub fn new(stale_after_ms: u64) -> Self {
        Self {
            nodes: BTreeMap::new(),
            stale_after_ms: stale_after_ms.max(1),
        }
    }

    /// The setting may change between loads of a stored registry (the Worker's).
    pub fn set_stale_after(&mut self, stale_after_ms: u64) {
        self.stale_after_ms = stale_after_ms.max(1);
    }

    /// A node's heartbeat. A node drained with `migrate` gives its rooms up: they are returned, to
    /// be moved (once; rooms placed later would not be there: a draining node takes none).
    pub fn heartbeat(&mut self, heartbeat: Heartbeat, now_ms: u64) -> Option<NodeMove> {
        self.nodes
            .retain(|_, n| now_ms.saturating_sub(n.last_seen_ms) < FORGET_AFTER_MS);
        let migrate = heartbeat.draining && heartbeat.migrate;
        let id = heartbeat.id.clone();
        let record = self.nodes.entry(id.clone()).or_insert_with(|| NodeRecord {
            heartbeat: heartbeat.clone(),
            last_seen_ms: now_ms,
            lost: false,
            rooms: BTreeSet::new(),
        });
        record.heartbeat = heartbeat;
        record.last_seen_ms = record.last_seen_ms.max(now_ms);
        record.lost = false;
        if migrate && !record.rooms.is_empty() {
            return Some(NodeMove {
                node_id: id,
                reason: MoveReason::Drain,
                routes: std::mem::take(&mut record.rooms).into_iter().collect(),
            });
        }
        None
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// A known node by id (to check it after a page's report).
    pub fn node(&self, id: &str) -> Option<NodeInfo> {
        self.nodes.get(id).map(|n| info(&n.heartbeat))
    }

    /// The best live node for a caller at `location` (with a free composition slot if `need`
    /// says so), or none.
    pub fn select(&self, location: Option<&Location>, need: Need, now_ms: u64) -> Option<NodeInfo> {
        self.best(location, need, now_ms)
            .map(|n| info(&n.heartbeat))
    }

    /// [`Registry::select`], remembering that room `route` is on the node chosen (and on no
    /// other: a room moved for a composer leaves a node that lives on).
    pub fn place(
        &mut self,
        route: &str,
        location: Option<&Location>,
        need: Need,
        now_ms: u64,
    ) -> Option<NodeInfo> {
        let id = self.best(location, need, now_ms)?.heartbeat.id.clone();
        for n in self.nodes.values_mut() {
            n.rooms.remove(route);
        }
        let record = self.nodes.get_mut(&id)?;
        record.rooms.insert(route.to_string());
        Some(info(&record.heartbeat))
    }

    /// Room `route` ended: no node holds it any more.
    pub fn release(&mut self, route: &str) {
        for n in self.nodes.values_mut() {
            n.rooms.remove(route);
        }
    }

    /// Nodes silent for `node_stale_after_ms` are dead from now on: their rooms, to move.
    pub fn sweep(&mut self, now_ms: u64) -> Vec<NodeMove> {
        let stale = self.stale_after_ms;
        self.nodes
            .values_mut()
            .filter(|n| !n.lost && now_ms.saturating_sub(n.last_seen_ms) >= stale)
            .map(lose)
            .collect()
    }

    /// The edge's own check of node `id` failed (after a page reported it): dead now, unless it
    /// is already. Its rooms, to move.
    pub fn mark_lost(&mut self, id: &str) -> Option<NodeMove> {
        self.nodes.get_mut(id).filter(|n| !n.lost).map(lose)
    }

    /// When the next live node turns stale if it stays silent: when to [`Registry::sweep`].
    pub fn next_sweep_at(&self) -> Option<u64> {
        self.nodes
            .values()
            .filter(|n| !n.lost)
            .map(|n| n.last_seen_ms + self.stale_after_ms)
            .min()
    }

    fn best(&self, location: Option<&Location>, need: Need, now_ms: u64) -> Option<&NodeRecord> {
        self.nodes
            .values()
            .filter(|n| {
                !n.lost
                    && !n.heartbeat.draining
                    && now_ms.saturating_sub(n.last_seen_ms) < self.stale_after_ms
                    && (need == Need::Media
                        || n.heartbeat.load.compositions < n.heartbeat.load.max_compositions)
            })
            .map(|n| (cost(&n.heartbeat, location), n))
            .min_by(|(a, na), (b, nb)| {
                a.total_cmp(b)
                    .then_with(|| na.heartbeat.id.cmp(&nb.heartbeat.id))
            })
            .map(|(_, n)| n)
    }
}

fn info(hb: &Heartbeat) -> NodeInfo {
    NodeInfo {
        id: hb.id.clone(),
        url: hb.url.clone(),
        region: hb.region.clone(),
    }
}

fn lose(n: &mut NodeRecord) -> NodeMove {
    n.lost = true;
    NodeMove {
        node_id: n.heartbeat.id.clone(),
        reason: MoveReason::NodeLost,
        routes: std::mem::take(&mut n.rooms).into_iter().collect(),
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
            migrate: false,
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
        assert_eq!(r.select(Some(&eu), Need::Media, 1_000).unwrap().id, "eu2");
        assert_eq!(r.select(Some(&na), Need::Media, 1_000).unwrap().id, "us1");
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
        assert_eq!(r.select(Some(&eu), Need::Media, 20_000).unwrap().id, "far");
        assert_eq!(r.select(Some(&eu), Need::Media, 40_000), None);
    }

    #[test]
    fn malformed_location_values_are_dropped_not_fatal() {
        let loc = Location::from_parts(Some("E\u{0}"), Some(""), Some("north"), Some("1e999"));
        assert_eq!(loc, Location::default());
        let mut r = Registry::default();
        r.heartbeat(hb("n", "x", 0), 0);
        assert!(r.select(Some(&loc), Need::Media, 0).is_some());
    }

    #[test]
    fn a_composer_goes_to_a_node_with_a_free_slot_and_the_room_leaves_its_old_node() {
        let mut r = Registry::default();
        let with = |id: &str, sessions, compositions, max| {
            let mut h = hb(id, "eu-west", sessions);
            h.load.compositions = compositions;
            h.load.max_compositions = max;
            h
        };
        r.heartbeat(with("full", 0, 2, 2), 0);
        r.heartbeat(with("none", 0, 0, 0), 0);
        r.heartbeat(with("free", 30, 1, 2), 0);
        let eu = Location::from_parts(Some("EU"), None, None, None);
        assert_eq!(
            r.place("room", Some(&eu), Need::Media, 0).unwrap().id,
            "full"
        );
        let moved = r.place("room", Some(&eu), Need::Composer, 0).unwrap();
        assert_eq!(moved.id, "free");
        // The old node's loss no longer names the room.
        assert_eq!(r.mark_lost("full").unwrap().routes, Vec::<String>::new());
        assert_eq!(
            r.mark_lost("free").unwrap().routes,
            vec!["room".to_string()]
        );
        r.heartbeat(with("free", 30, 2, 2), 0);
        assert_eq!(r.select(Some(&eu), Need::Composer, 0), None);
    }
}
