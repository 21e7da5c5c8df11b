//! The node's media loops as the API sees them: which loop a room is pinned to (all sessions of
//! a room on one loop, so a packet's fan-out never leaves its thread), which loop holds a
//! session, and the loops' gauges and counters added up. The tables are the API's (tokio side,
//! taken per call, never by a loop); a loop tells them of each session it closed over a channel.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use edgemeet_protocol::node::NodeEvent;

use super::{Closed, LoopHandle};
use crate::error::StartError;
use crate::metrics::Metrics;

pub struct Loops {
    loops: Vec<LoopHandle>,
    tables: Mutex<Tables>,
}

/// Where the node's loops bind.
pub enum Ports {
    /// Ephemeral ports.
    Any,
    /// `udp_mux_port`: loop `i` on `port + i`, each required.
    Mux(u16),
    /// A range: each loop on the first free port after the previous loop's.
    Range(u16, u16),
}

struct Tables {
    /// Room -> its loop and how many of its sessions are open or opening there.
    rooms: HashMap<String, Pinned>,
    /// Session -> its loop, from the open call until the loop says it closed it.
    sessions: HashMap<String, usize>,
    closed: mpsc::Receiver<Closed>,
}

struct Pinned {
    index: usize,
    sessions: usize,
}

impl Tables {
    /// Forgets the sessions the loops closed since the last call; a room with none left is
    /// unpinned (its next session may go to another loop).
    fn catch_up(&mut self) {
        while let Ok(c) = self.closed.try_recv() {
            if self.sessions.remove(&c.session_id).is_none() {
                continue;
            }
            if let Some(p) = self.rooms.get_mut(&c.room) {
                p.sessions = p.sessions.saturating_sub(1);
                if p.sessions == 0 {
                    self.rooms.remove(&c.room);
                }
            }
        }
    }
}

/// The loop a new room goes to: the one with the fewest sessions open or opening (the lowest
/// index among equals). Pure.
pub fn least_loaded(loops: usize, pinned: impl Iterator<Item = (usize, usize)>) -> usize {
    let mut load = vec![0usize; loops.max(1)];
    for (index, sessions) in pinned {
        if let Some(l) = load.get_mut(index) {
            *l += sessions;
        }
    }
    (0..load.len()).min_by_key(|&i| (load[i], i)).unwrap_or(0)
}

impl Loops {
    /// Starts `count` loops (at least one) on `ip`.
    pub fn start(
        ip: IpAddr,
        ports: Ports,
        count: usize,
        events: tokio::sync::mpsc::UnboundedSender<NodeEvent>,
        idle_timeout: Duration,
    ) -> Result<Self, StartError> {
        let (closed_tx, closed_rx) = mpsc::channel();
        let mut loops: Vec<LoopHandle> = Vec::new();
        let mut next_in_range = match ports {
            Ports::Range(lo, _) => Some(lo),
            _ => None,
        };
        for index in 0..count.max(1) {
            let start = |port: u16| {
                let addr = SocketAddr::new(ip, port);
                LoopHandle::start(addr, index, events.clone(), closed_tx.clone(), idle_timeout)
                    .map_err(|source| StartError::MediaBind { addr, source })
            };
            let started = match ports {
                Ports::Any => start(0)?,
                Ports::Mux(port) => {
                    let Some(port) = u16::try_from(index).ok().and_then(|i| port.checked_add(i))
                    else {
                        return Err(StartError::MediaBind {
                            addr: SocketAddr::new(ip, port),
                            source: std::io::Error::other("no port left for another media loop"),
                        });
                    };
                    start(port)?
                }
                Ports::Range(_, hi) => {
                    let mut found = None;
                    let mut last_err = None;
                    while let Some(port) = next_in_range.filter(|p| *p <= hi) {
                        next_in_range = port.checked_add(1);
                        match start(port) {
                            Ok(l) => {
                                found = Some(l);
                                break;
                            }
                            Err(e) => last_err = Some(e),
                        }
                    }
                    match (found, last_err) {
                        (Some(l), _) => l,
                        // The range is full: the loops started so far carry the node.
                        _ if !loops.is_empty() => {
                            tracing::warn!(
                                loops = loops.len(),
                                wanted = count,
                                "the UDP port range has no free port for every media loop"
                            );
                            break;
                        }
                        (None, Some(e)) => return Err(e),
                        (None, None) => {
                            return Err(StartError::MediaBind {
                                addr: SocketAddr::new(ip, hi),
                                source: std::io::Error::other("empty UDP port range"),
                            });
                        }
                    }
                }
            };
            loops.push(started);
        }
        for l in &loops {
            tracing::info!(addr = %l.local_addr(), "media loop");
        }
        Ok(Self {
            loops,
            tables: Mutex::new(Tables {
                rooms: HashMap::new(),
                sessions: HashMap::new(),
                closed: closed_rx,
            }),
        })
    }

    pub fn all(&self) -> &[LoopHandle] {
        &self.loops
    }

    /// The loop `room` is pinned to, if it has a session.
    pub fn of_room(&self, room: &str) -> Option<&LoopHandle> {
        let mut t = self.tables.lock().unwrap();
        t.catch_up();
        t.rooms.get(room).map(|p| &self.loops[p.index])
    }

    /// The loop that holds `session`.
    pub fn of_session(&self, session: &str) -> Option<&LoopHandle> {
        let mut t = self.tables.lock().unwrap();
        t.catch_up();
        t.sessions.get(session).map(|&i| &self.loops[i])
    }

    /// Whether `session` lives on another loop than `room`'s (so in another room: rooms are
    /// pinned). Unknown sessions are left to the loop to refuse.
    pub fn elsewhere(&self, session: &str, room: &str) -> bool {
        let mut t = self.tables.lock().unwrap();
        t.catch_up();
        match (t.sessions.get(session), t.rooms.get(room)) {
            (Some(&s), Some(r)) => s != r.index,
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// Notes a session about to be opened in `room` and returns the loop to open it on: the
    /// room's, else the least loaded (the room is pinned there). Call the loop's `Open` right
    /// after, with no await in between: the loop then says when the session is gone (also
    /// when the open fails), which is what unpins the room.
    pub fn open(&self, room: &str, session: &str) -> &LoopHandle {
        let mut t = self.tables.lock().unwrap();
        t.catch_up();
        let index = match t.rooms.get(room) {
            Some(p) => p.index,
            None => least_loaded(
                self.loops.len(),
                t.rooms.values().map(|p| (p.index, p.sessions)),
            ),
        };
        t.rooms
            .entry(room.to_owned())
            .or_insert(Pinned { index, sessions: 0 })
            .sessions += 1;
        t.sessions.insert(session.to_owned(), index);
        &self.loops[index]
    }

    /// The IP every loop binds (`media_ip`); each loop has its own port.
    pub fn local_ip(&self) -> IpAddr {
        self.loops[0].local_addr().ip()
    }

    /// (sessions, sessions up, rooms, tracks published, tracks pulled and flowing), all loops.
    pub fn gauges(&self) -> (u64, u64, u64, u64, u64) {
        self.tables.lock().unwrap().catch_up();
        self.loops
            .iter()
            .map(LoopHandle::gauges)
            .fold((0, 0, 0, 0, 0), |a, g| {
                (a.0 + g.0, a.1 + g.1, a.2 + g.2, a.3 + g.3, a.4 + g.4)
            })
    }

    /// Every loop's counters and `api`'s, added up.
    pub fn metrics(&self, api: &Metrics) -> Metrics {
        Metrics::sum(std::iter::once(api).chain(self.loops.iter().map(LoopHandle::metrics)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_room_goes_to_the_loop_with_the_fewest_sessions() {
        assert_eq!(least_loaded(1, [(0, 5)].into_iter()), 0);
        assert_eq!(least_loaded(2, std::iter::empty()), 0, "lowest index");
        assert_eq!(least_loaded(2, [(0, 1)].into_iter()), 1);
        // Two rooms on loop 0 (3 sessions), one big room on loop 1 (4): loop 0.
        assert_eq!(least_loaded(2, [(0, 2), (1, 4), (0, 1)].into_iter()), 0);
        assert_eq!(least_loaded(3, [(0, 2), (1, 4), (0, 1)].into_iter()), 2);
    }
}
