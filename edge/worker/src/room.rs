//! The `Room` Durable Object: one per room, holding the core's [`core::Room`] and its sockets
//! (WebSocket hibernation API), carrying out the effects the core returns.
//!
//! Room state lives in memory; a snapshot is kept in the DO's storage after every change so the
//! room survives hibernation (sockets carry their connection id as attachment). When the core
//! says the room ended, storage is wiped and the alarm deleted: nothing of the meeting remains.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use serde_json::json;
use wasm_bindgen::JsValue;
use worker::{
    DurableObject, Env, Request, Response, Result, ScheduledTime, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair, WebSocketRequestResponsePair, durable_object,
};

use crate::core::http::{Reply, node_api};
use crate::core::{self, ConnId, Effect, Input, Location, Need, NodeInfo, node_call};
use crate::glue::{self, JsRng, now_ms, send_js};
use crate::logic::{self, Attachment};
use crate::socket::{CONNECT_HEADER, Connect};
use crate::{config, registry};
use edgemeet_protocol::node::NodeEvent;
use edgemeet_protocol::{ServerMessage, encode_server};

const SNAPSHOT_KEY: &str = "room";
const PING: &str = r#"{"v":1,"type":"ping"}"#;

/// How long a changed room waits before its snapshot is written: writes coalesce while a room is
/// busy (every frame changes a rate-limit bucket). Safe across hibernation: an object with a
/// pending timer does not hibernate, and an eviction for any other reason (deploy, crash)
/// disconnects the sockets, which ends the room anyway.
const FLUSH_DELAY_MS: u64 = 100;

#[derive(Default)]
struct RoomMem {
    room: Option<core::Room>,
    /// Sockets by connection id; rebuilt from the attachments after hibernation.
    sockets: HashMap<ConnId, WebSocket>,
    /// A snapshot write is scheduled (see [`Inner::persist`]).
    flush_scheduled: bool,
    /// Recording and livestream calls not yet sent, in the order the core issued them: one task
    /// sends them one after another, so a stop issued before a start reaches the node before it
    /// (independent tasks would race, and a late stop would remove the next recording).
    record_calls: VecDeque<node_call::OrderedCall>,
    /// The task sending `record_calls` is running.
    record_sender_running: bool,
}

/// Everything of the object, shared with the tasks it starts (node calls, snapshot writes): a
/// node call's answer comes back as an input while the room goes on.
struct Inner {
    state: State,
    env: Env,
    mem: RefCell<RoomMem>,
}

#[durable_object]
pub struct Room {
    inner: Rc<Inner>,
}

impl DurableObject for Room {
    fn new(state: State, env: Env) -> Self {
        if let Ok(pair) =
            WebSocketRequestResponsePair::new(PING, &encode_server(&ServerMessage::Pong))
        {
            state.set_websocket_auto_response(&pair);
        }
        let mem = RefCell::new(RoomMem::default());
        Self {
            inner: Rc::new(Inner { state, env, mem }),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let inner = &self.inner;
        let path = req.path();
        match path.as_str() {
            "/connect" => inner.open_socket(&req).await,
            "/node-event" => {
                let event: NodeEvent = req.json().await?;
                // An event for a room that is not running creates nothing.
                if inner.load().await? {
                    inner.run(node_api::input(event)).await?;
                }
                glue::response(Reply::no_content())
            }
            "/node-move" => {
                #[derive(serde::Deserialize)]
                struct Body {
                    node_id: String,
                    reason: edgemeet_protocol::server::MoveReason,
                }
                let body: Body = req.json().await?;
                // A room that is not running has nothing to move.
                if inner.load().await? {
                    let input = Input::MoveOffNode {
                        node_id: body.node_id,
                        reason: body.reason,
                    };
                    inner.run(input).await?;
                }
                glue::response(Reply::no_content())
            }
            p if p.starts_with("/probe/") && config::probes_enabled(&inner.env) => {
                inner.probe(&p["/probe/".len()..]).await
            }
            _ => Response::error("not found", 404),
        }
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let inner = &self.inner;
        let Some(conn) = inner.conn_of(&ws) else {
            return Ok(());
        };
        if !inner.load().await? {
            let _ = ws.close(Some(1011), Some("room state lost"));
            return Ok(());
        }
        let input = match message {
            WebSocketIncomingMessage::String(text) => Input::Text { conn, text },
            WebSocketIncomingMessage::Binary(bytes) => Input::Binary {
                conn,
                len: bytes.len(),
            },
        };
        inner.run(input).await
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        let _ = ws.close(Some(1000), Some("closed"));
        // 1006: the connection dropped with no close frame; the participant may resume.
        self.inner.closed(&ws, code == 1006).await
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        self.inner.closed(&ws, true).await
    }

    async fn alarm(&self) -> Result<Response> {
        if self.inner.load().await? {
            // Pings the runtime answered while the object slept count as heard from.
            for ws in self.inner.state.get_websockets() {
                let Some(at_ms) = glue::auto_response_at(&self.inner.state, ws.as_ref()) else {
                    continue;
                };
                if let Some(conn) = self.inner.conn_of(&ws) {
                    self.inner.run(Input::Heard { conn, at_ms }).await?;
                }
            }
            self.inner.run(Input::Alarm).await?;
        } else {
            self.inner.wipe().await?;
        }
        Response::empty()
    }
}

impl Inner {
    /// Sends a recording call after the room's earlier ones, in the background as on the native
    /// host: the room goes on while the node answers (or times out); the answer comes back as an
    /// input.
    fn queue_record_call(self: &Rc<Self>, call: node_call::OrderedCall) {
        let start_sender = {
            let mut mem = self.mem.borrow_mut();
            mem.record_calls.push_back(call);
            !std::mem::replace(&mut mem.record_sender_running, true)
        };
        if !start_sender {
            return;
        }
        let this = self.clone();
        worker::wasm_bindgen_futures::spawn_local(async move {
            loop {
                let next = this.mem.borrow_mut().record_calls.pop_front();
                let Some(call) = next else {
                    this.mem.borrow_mut().record_sender_running = false;
                    break;
                };
                let answer = glue::call_node(call.call()).await;
                if let Some(input) = call.into_input(&answer) {
                    let run = async {
                        if this.load().await? {
                            this.run(input).await?;
                        }
                        Ok::<_, worker::Error>(())
                    };
                    if let Err(e) = run.await {
                        worker::console_error!("node call's answer not applied: {e}");
                    }
                }
            }
        });
    }

    fn conn_of(&self, ws: &WebSocket) -> Option<ConnId> {
        let conn = ws
            .deserialize_attachment::<Attachment>()
            .ok()
            .flatten()?
            .conn;
        self.mem
            .borrow_mut()
            .sockets
            .entry(conn)
            .or_insert_with(|| ws.clone());
        Some(conn)
    }

    /// Make sure the room is in memory (after hibernation: from the stored snapshot).
    /// `false` when there is no room.
    async fn load(&self) -> Result<bool> {
        if self.mem.borrow().room.is_some() {
            return Ok(true);
        }
        let snapshot: Option<String> = self.state.storage().get(SNAPSHOT_KEY).await?;
        let Some(snapshot) = snapshot else {
            return Ok(false);
        };
        let room: core::Room =
            serde_json::from_str(&snapshot).map_err(|e| format!("room snapshot: {e}"))?;
        let mut mem = self.mem.borrow_mut();
        if mem.room.is_none() {
            mem.room = Some(room);
        }
        Ok(true)
    }

    async fn open_socket(self: &Rc<Self>, req: &Request) -> Result<Response> {
        let Some(header) = req.headers().get(CONNECT_HEADER)? else {
            return Response::error("bad request", 400);
        };
        let connect: Connect = serde_json::from_str(&header).map_err(|e| e.to_string())?;
        self.load().await?;
        {
            let mut mem = self.mem.borrow_mut();
            if mem.room.is_none() {
                mem.room = Some(core::Room::new(connect.address));
            }
        }
        let pair = WebSocketPair::new()?;
        let conn = logic::conn_id(rand_core::RngCore::next_u64(&mut JsRng));
        self.state.accept_web_socket(&pair.server);
        pair.server.serialize_attachment(Attachment { conn })?;
        self.mem
            .borrow_mut()
            .sockets
            .insert(conn, pair.server.clone());
        self.run(Input::Open {
            conn,
            client: connect.client,
        })
        .await?;
        Response::from_websocket(pair.client)
    }

    async fn closed(self: &Rc<Self>, ws: &WebSocket, lost: bool) -> Result<()> {
        let Some(conn) = self.conn_of(ws) else {
            return Ok(());
        };
        self.mem.borrow_mut().sockets.remove(&conn);
        if self.load().await? {
            let input = if lost {
                Input::Lost { conn }
            } else {
                Input::Closed { conn }
            };
            self.run(input).await?;
        }
        Ok(())
    }

    fn socket(&self, conn: ConnId) -> Option<WebSocket> {
        if let Some(ws) = self.mem.borrow().sockets.get(&conn) {
            return Some(ws.clone());
        }
        // After hibernation: rebuild the map from the runtime's list of accepted sockets.
        let all = self.state.get_websockets();
        let mut mem = self.mem.borrow_mut();
        for ws in all {
            if let Ok(Some(a)) = ws.deserialize_attachment::<Attachment>() {
                mem.sockets.entry(a.conn).or_insert(ws);
            }
        }
        mem.sockets.get(&conn).cloned()
    }

    /// Feed one input to the core, carry out its effects (which may produce further inputs), then
    /// keep the snapshot in storage, or wipe everything once the room ended.
    async fn run(self: &Rc<Self>, input: Input) -> Result<()> {
        let config = config::config(&self.env)?;
        let mut queue = VecDeque::from([input]);
        let mut last_text: Option<(Arc<str>, JsValue)> = None;
        let mut ended = false;
        while let Some(input) = queue.pop_front() {
            let effects = {
                let mut mem = self.mem.borrow_mut();
                let Some(room) = mem.room.as_mut() else { break };
                let mut rng = JsRng;
                let mut env = core::Env {
                    config: &config,
                    now_ms: now_ms(),
                    rng: &mut rng,
                };
                room.handle(&mut env, input)
            };
            for effect in effects {
                match effect {
                    Effect::Send { conn, text } => {
                        // A broadcast shares one `Arc<str>`: make its JS string once, not per socket.
                        let js = match &last_text {
                            Some((t, js)) if Arc::ptr_eq(t, &text) => js.clone(),
                            _ => {
                                let js = JsValue::from_str(&text);
                                last_text = Some((text.clone(), js.clone()));
                                js
                            }
                        };
                        if !self.mem.borrow().sockets.contains_key(&conn) {
                            self.socket(conn);
                        }
                        if let Some(ws) = self.mem.borrow().sockets.get(&conn) {
                            let _ = send_js(ws.as_ref(), &js);
                        }
                    }
                    Effect::Close { conn, code, reason } => {
                        if let Some(ws) = self.socket(conn) {
                            let _ = ws.close(Some(code), Some(reason));
                        }
                    }
                    Effect::SetAlarm { at_ms } => {
                        let at = js_sys::Date::new(&JsValue::from_f64(at_ms as f64));
                        self.state
                            .storage()
                            .set_alarm(ScheduledTime::new(at))
                            .await?;
                    }
                    Effect::ClearAlarm => self.state.storage().delete_alarm().await?,
                    Effect::RequestNode { location, need } => {
                        queue.push_back(Input::NodeAssigned(self.select_node(location, need).await))
                    }
                    Effect::ProbeNode { node } => {
                        // In the background: if the node does not answer, the registry marks it
                        // lost and moves every room on it (this one too, through `/node-move`).
                        let env = self.env.clone();
                        worker::wasm_bindgen_futures::spawn_local(async move {
                            if glue::probe_node(&node).await {
                                return;
                            }
                            let lost = async {
                                let stub = registry::stub(&env)?;
                                glue::do_post(&stub, "/lost", &json!({ "node_id": node.id })).await
                            };
                            if let Err(e) = lost.await {
                                worker::console_error!("a lost node was not reported: {e}");
                            }
                        });
                    }
                    Effect::CloseOnNode {
                        node,
                        meeting_id,
                        scope,
                        token,
                    } => {
                        let call =
                            node_call::close(node_call::base(&node), &meeting_id, &scope, token);
                        // In the background: the node reaps idle sessions if this never arrives.
                        worker::wasm_bindgen_futures::spawn_local(async move {
                            let _ = glue::call_node(&call).await;
                        });
                    }
                    Effect::RecordOnNode {
                        node,
                        meeting_id,
                        token,
                        start,
                    } => {
                        let call =
                            node_call::record(node_call::base(&node), meeting_id, token, start);
                        self.queue_record_call(node_call::OrderedCall::Record(call));
                    }
                    Effect::LivestreamOnNode {
                        node,
                        meeting_id,
                        token,
                        call,
                    } => {
                        let call =
                            node_call::livestream(node_call::base(&node), meeting_id, token, call);
                        self.queue_record_call(node_call::OrderedCall::Live(call));
                    }
                    Effect::Ended => ended = true,
                }
            }
        }
        let ended = ended
            || self
                .mem
                .borrow()
                .room
                .as_ref()
                .is_some_and(core::Room::is_ended);
        if ended {
            self.wipe().await
        } else {
            self.persist()
        }
    }

    async fn select_node(&self, location: Option<Location>, need: Need) -> Option<NodeInfo> {
        let route = self
            .mem
            .borrow()
            .room
            .as_ref()
            .map(|r| r.address().route.clone());
        let stub = registry::stub(&self.env).ok()?;
        let body = json!({ "location": location, "route": route, "need": need });
        let mut resp = glue::do_post(&stub, "/select", &body).await.ok()?;
        resp.json::<Option<NodeInfo>>().await.ok().flatten()
    }

    /// Schedule a snapshot write, unless one is pending already.
    fn persist(self: &Rc<Self>) -> Result<()> {
        {
            let mut mem = self.mem.borrow_mut();
            if mem.room.is_none() || mem.flush_scheduled {
                return Ok(());
            }
            mem.flush_scheduled = true;
        }
        let this = self.clone();
        worker::wasm_bindgen_futures::spawn_local(async move {
            worker::Delay::from(std::time::Duration::from_millis(FLUSH_DELAY_MS)).await;
            if let Err(e) = this.flush().await {
                worker::console_error!("room snapshot not written: {e}");
            }
        });
        Ok(())
    }

    /// Write the room's current snapshot (nothing if it ended meanwhile: `wipe` has emptied
    /// storage).
    async fn flush(&self) -> Result<()> {
        let snapshot = {
            let mut m = self.mem.borrow_mut();
            m.flush_scheduled = false;
            match m.room.as_ref() {
                Some(room) => serde_json::to_string(room).map_err(|e| e.to_string())?,
                None => return Ok(()),
            }
        };
        self.state.storage().put(SNAPSHOT_KEY, snapshot).await
    }

    /// The room ended: forget it in memory, empty the storage, delete the alarm, and let the
    /// registry forget which node it was on.
    async fn wipe(&self) -> Result<()> {
        let route = {
            let mut mem = self.mem.borrow_mut();
            mem.sockets.clear();
            mem.room.take().map(|r| r.address().route.clone())
        };
        if let Some(route) = route {
            let env = self.env.clone();
            worker::wasm_bindgen_futures::spawn_local(async move {
                if let Ok(stub) = registry::stub(&env) {
                    let _ = glue::do_post(&stub, "/release", &json!({ "route": route })).await;
                }
            });
        }
        let storage = self.state.storage();
        storage.delete_alarm().await?;
        storage.delete_all().await
    }

    async fn probe(&self, action: &str) -> Result<Response> {
        let answer = match action {
            "state" => {
                let storage = self.state.storage();
                let keys: Vec<String> = storage
                    .list()
                    .await?
                    .keys()
                    .into_iter()
                    .filter_map(|k| k.ok().and_then(|k| k.as_string()))
                    .collect();
                let alarm = storage.get_alarm().await?;
                let mem = self.mem.borrow();
                json!({
                    "storage_keys": keys,
                    "alarm": alarm,
                    "in_memory": mem.room.is_some(),
                    "sockets": self.state.get_websockets().len(),
                })
            }
            // What the room keeps in storage, whole: tests look for things that must not be there
            // (e.g. automatic E2EE's key blobs). The pending snapshot is written first.
            "dump" => {
                if self.mem.borrow().flush_scheduled {
                    self.flush().await?;
                }
                let snapshot: Option<String> = self.state.storage().get(SNAPSHOT_KEY).await?;
                json!({ "snapshot": snapshot })
            }
            // Drop everything held in memory, as an eviction during hibernation would.
            "forget" => {
                // Hibernation waits for the pending snapshot write; so does this.
                if self.mem.borrow().flush_scheduled {
                    self.flush().await?;
                }
                *self.mem.borrow_mut() = RoomMem::default();
                json!({ "forgotten": true })
            }
            _ => return Response::error("no such probe", 404),
        };
        glue::response(Reply::json(200, &answer))
    }
}
