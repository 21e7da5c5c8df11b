//! The rooms of this host: one `edgemeet_core::Room` per active room behind a lock, the sockets
//! attached to it, and the effects the core returns carried out on tokio.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgemeet_core::node_call::OrderedCall;
use edgemeet_core::registry::NodeMove;
use edgemeet_core::{
    ClientInfo, ConnId, EdgeConfig, Effect, Env, Input, NodeInfo, Registry, Room, RoomAddress,
};
use rand_core::OsRng;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// What a socket's writer task sends.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Text(Arc<str>),
    Close(u16, String),
}

/// Frames queued for one socket before it counts as too slow and is dropped.
pub const SOCKET_QUEUE: usize = 512;

struct Entry {
    room: Room,
    sockets: HashMap<ConnId, mpsc::Sender<Outgoing>>,
    alarm: Option<AbortHandle>,
    /// The room's last recording or livestream call: the next one waits for it, so a stop
    /// issued before a start reaches the node before it (spawned calls would otherwise race).
    last_record_call: Option<tokio::task::JoinHandle<()>>,
}

/// All rooms. Room entries are created on first attach and removed when the core says `Ended`.
pub struct Hub {
    config: Arc<EdgeConfig>,
    /// Open sockets per client address (keyed hash), for the server-wide cap.
    by_address: Arc<Mutex<HashMap<String, usize>>>,
    max_sockets_per_address: usize,
    rooms: Mutex<HashMap<String, Arc<Mutex<Entry>>>>,
    registry: Arc<Mutex<Registry>>,
    next_conn: AtomicU64,
    pub node_calls: crate::nodes::NodeCaller,
    /// This host's configured region, for node selection when a caller's location is unknown.
    region: Option<String>,
    pub metrics: Metrics,
    /// Notified when a node finalized a recording (the all-in-one's uploader then polls at once).
    pub recording_stopped: Arc<tokio::sync::Notify>,
}

/// Counters for `/metrics`: counts only, nothing about who.
#[derive(Default)]
pub struct Metrics {
    pub sockets: AtomicU64,
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub slow_sockets_dropped: AtomicU64,
    pub rooms_created: AtomicU64,
}

/// A socket's handle on its room.
pub struct Attachment {
    pub conn: ConnId,
    entry: Arc<Mutex<Entry>>,
    route: String,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Hub {
    pub fn new(
        config: Arc<EdgeConfig>,
        registry: Arc<Mutex<Registry>>,
        node_calls: crate::nodes::NodeCaller,
        region: Option<String>,
        max_sockets_per_address: usize,
    ) -> Arc<Self> {
        let rooms = Mutex::new(HashMap::new());
        Arc::new(Self {
            config,
            by_address: Default::default(),
            max_sockets_per_address,
            rooms,
            registry,
            next_conn: AtomicU64::new(1),
            node_calls,
            region,
            metrics: Metrics::default(),
            recording_stopped: Arc::new(tokio::sync::Notify::new()),
        })
    }

    pub fn config(&self) -> &EdgeConfig {
        &self.config
    }

    pub fn open_sockets(&self) -> u64 {
        self.metrics.sockets.load(Ordering::Relaxed)
    }

    pub fn active_rooms(&self) -> usize {
        self.rooms.lock().expect("rooms lock").len()
    }

    /// Attach a new socket to its room (creating the room on first use) and open it in the core.
    pub fn attach(
        self: &Arc<Self>,
        address: RoomAddress,
        client: ClientInfo,
        tx: mpsc::Sender<Outgoing>,
    ) -> Attachment {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let route = address.route.clone();
        // The socket is registered while the map is locked, so a room that is ending cannot be
        // removed between lookup and registration.
        let entry = {
            let mut rooms = self.rooms.lock().expect("rooms lock");
            let entry = rooms
                .entry(route.clone())
                .or_insert_with(|| {
                    tracing::debug!(room = %route, "room created");
                    self.metrics.rooms_created.fetch_add(1, Ordering::Relaxed);
                    Arc::new(Mutex::new(Entry {
                        room: Room::new(address),
                        sockets: HashMap::new(),
                        alarm: None,
                        last_record_call: None,
                    }))
                })
                .clone();
            entry.lock().expect("room lock").sockets.insert(conn, tx);
            entry
        };
        self.metrics.sockets.fetch_add(1, Ordering::Relaxed);
        let attachment = Attachment { conn, entry, route };
        self.input(
            &attachment.entry,
            &attachment.route,
            Input::Open { conn, client },
        );
        attachment
    }

    pub fn text(self: &Arc<Self>, a: &Attachment, text: String) {
        self.metrics.frames_in.fetch_add(1, Ordering::Relaxed);
        self.input(&a.entry, &a.route, Input::Text { conn: a.conn, text });
    }

    pub fn binary(self: &Arc<Self>, a: &Attachment, len: usize) {
        self.input(&a.entry, &a.route, Input::Binary { conn: a.conn, len });
    }

    /// The socket is gone: its sender leaves the room (so its writer ends and nothing of it stays
    /// in a room that goes on), then the core hears of it: closed on purpose (a close frame, or
    /// refused), or `lost` (the connection just dropped: its participant may resume).
    pub fn detach(self: &Arc<Self>, a: Attachment, lost: bool) {
        self.metrics.sockets.fetch_sub(1, Ordering::Relaxed);
        a.entry.lock().expect("room lock").sockets.remove(&a.conn);
        let conn = a.conn;
        let input = if lost {
            Input::Lost { conn }
        } else {
            Input::Closed { conn }
        };
        self.input(&a.entry, &a.route, input);
    }

    /// A place for one more socket from `addr_key`, or none when that address holds the most the
    /// server allows. The place is given back when the returned slot drops.
    pub fn address_slot(&self, addr_key: &str) -> Option<AddressSlot> {
        let mut counts = self.by_address.lock().expect("address lock");
        let n = counts.entry(addr_key.to_string()).or_insert(0);
        if *n >= self.max_sockets_per_address {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            counts: self.by_address.clone(),
            key: addr_key.to_string(),
        })
    }

    /// A node event for a room, found by its route; unknown routes are ignored.
    pub fn room_input(self: &Arc<Self>, route: &str, input: Input) -> bool {
        let entry = self.rooms.lock().expect("rooms lock").get(route).cloned();
        match entry {
            Some(entry) => {
                self.input(&entry, route, input);
                true
            }
            None => false,
        }
    }

    /// Feed one input, then carry out the effects; effects that produce inputs (node selection) loop.
    fn input(self: &Arc<Self>, entry: &Arc<Mutex<Entry>>, route: &str, input: Input) {
        let mut pending = vec![input];
        while let Some(input) = pending.pop() {
            let mut guard = entry.lock().expect("room lock");
            let e = &mut *guard;
            let mut env = Env {
                config: &self.config,
                now_ms: now_ms(),
                rng: &mut OsRng,
            };
            let effects = e.room.handle(&mut env, input);
            let mut ended = false;
            for effect in effects {
                match effect {
                    Effect::Send { conn, text } => {
                        self.metrics.frames_out.fetch_add(1, Ordering::Relaxed);
                        if !deliver(e, conn, Outgoing::Text(text)) {
                            self.metrics
                                .slow_sockets_dropped
                                .fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Effect::Close { conn, code, reason } => {
                        let _ = deliver(e, conn, Outgoing::Close(code, reason));
                        e.sockets.remove(&conn);
                    }
                    Effect::SetAlarm { at_ms } => {
                        if let Some(old) = e.alarm.take() {
                            old.abort();
                        }
                        let hub = self.clone();
                        let (entry, route) = (entry.clone(), route.to_string());
                        let wait = Duration::from_millis(at_ms.saturating_sub(now_ms()));
                        e.alarm = Some(
                            tokio::spawn(async move {
                                tokio::time::sleep(wait).await;
                                hub.input(&entry, &route, Input::Alarm);
                            })
                            .abort_handle(),
                        );
                    }
                    Effect::ClearAlarm => {
                        if let Some(old) = e.alarm.take() {
                            old.abort();
                        }
                    }
                    Effect::RequestNode { location, need } => {
                        let location = location.or_else(|| self.default_location());
                        let node = self.registry.lock().expect("registry lock").place(
                            route,
                            location.as_ref(),
                            need,
                            now_ms(),
                        );
                        tracing::info!(room = %route, node = node.as_ref().map(|n| n.id.as_str()), "media node for room");
                        pending.push(Input::NodeAssigned(node));
                    }
                    Effect::CloseOnNode {
                        node,
                        meeting_id,
                        scope,
                        token,
                    } => {
                        self.node_calls.close(node, meeting_id, scope, token);
                    }
                    Effect::RecordOnNode {
                        node,
                        meeting_id,
                        token,
                        start,
                    } => {
                        let call = self.node_calls.record(&node, meeting_id, token, start);
                        self.send_in_order(e, node, route, OrderedCall::Record(call));
                    }
                    Effect::LivestreamOnNode {
                        node,
                        meeting_id,
                        token,
                        call,
                    } => {
                        let call = self.node_calls.livestream(&node, meeting_id, token, call);
                        self.send_in_order(e, node, route, OrderedCall::Live(call));
                    }
                    Effect::ProbeNode { node } => {
                        let hub = self.clone();
                        tokio::spawn(async move {
                            if hub.node_calls.probe(&node).await {
                                return;
                            }
                            let lost = hub
                                .registry
                                .lock()
                                .expect("registry lock")
                                .mark_lost(&node.id);
                            hub.move_rooms(lost);
                        });
                    }
                    Effect::Ended => ended = true,
                }
            }
            if ended {
                if let Some(old) = e.alarm.take() {
                    old.abort();
                }
                drop(guard);
                self.remove_if_ended(entry, route);
            }
        }
    }

    /// Sends a recording or livestream call in the background, after the room's earlier ones (a
    /// stop must not overtake its start): the room goes on while the node answers (or times
    /// out); the answer comes back as an input.
    fn send_in_order(
        self: &Arc<Self>,
        e: &mut Entry,
        node: NodeInfo,
        route: &str,
        call: OrderedCall,
    ) {
        let (hub, route) = (self.clone(), route.to_string());
        let before = e.last_record_call.take();
        e.last_record_call = Some(tokio::spawn(async move {
            if let Some(before) = before {
                let _ = before.await;
            }
            let answer = hub.node_calls.send(&node, call.call()).await;
            let (what, ok) = (call.what(), answer.is_ok());
            tracing::info!(room = %route, node = %node.id, call = what, ok, "node call");
            if ok && call.stops_recording() {
                hub.recording_stopped.notify_one();
            }
            if let Some(input) = call.into_input(&answer) {
                hub.room_input(&route, input);
            }
        }));
    }

    fn remove_if_ended(&self, entry: &Arc<Mutex<Entry>>, route: &str) {
        let mut rooms = self.rooms.lock().expect("rooms lock");
        let still_ended = entry.lock().expect("room lock").room.is_ended();
        if still_ended && rooms.get(route).is_some_and(|e| Arc::ptr_eq(e, entry)) {
            rooms.remove(route);
            self.registry.lock().expect("registry lock").release(route);
            tracing::debug!(room = %route, "room ended");
        }
    }

    /// Rooms leave a node that died or is drained with `migrate` (the registry said which).
    pub fn move_rooms(self: &Arc<Self>, moves: impl IntoIterator<Item = NodeMove>) {
        for m in moves {
            tracing::warn!(node = %m.node_id, reason = ?m.reason, rooms = m.routes.len(), "moving rooms off a media node");
            for route in &m.routes {
                let input = Input::MoveOffNode {
                    node_id: m.node_id.clone(),
                    reason: m.reason,
                };
                self.room_input(route, input);
            }
        }
    }

    /// Every `period`: nodes that fell silent are dead, and their rooms move.
    pub async fn sweep_nodes(self: Arc<Self>, period: Duration) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let lost = self.registry.lock().expect("registry lock").sweep(now_ms());
            self.move_rooms(lost);
        }
    }

    fn default_location(&self) -> Option<edgemeet_core::Location> {
        self.region.clone().map(|region| edgemeet_core::Location {
            region: Some(region),
            ..Default::default()
        })
    }
}

/// One open socket of an address, counted until dropped.
pub struct AddressSlot {
    counts: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().expect("address lock");
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// Queue a frame; a socket whose queue is full is too slow to keep up and is closed (false).
fn deliver(e: &mut Entry, conn: ConnId, frame: Outgoing) -> bool {
    let Some(tx) = e.sockets.get(&conn) else {
        return true;
    };
    if tx.try_send(frame).is_err() {
        tracing::info!("dropping a socket that cannot keep up");
        e.sockets.remove(&conn);
        return false;
    }
    true
}
