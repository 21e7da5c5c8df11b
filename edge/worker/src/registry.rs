//! The `Registry` Durable Object: one for the whole deployment ("global"), holding the core's
//! [`core::Registry`] of media nodes (heartbeats in, a node for a room out), kept in storage.
//! It also moves rooms off nodes: its alarm goes off when the next node would turn stale
//! (`node_stale_after_ms` without a heartbeat), and each lost or migrating node's rooms hear
//! `/node-move` at their `Room` object.

use std::cell::{Cell, RefCell};

use serde::Deserialize;
use serde_json::json;
use worker::{DurableObject, Env, Request, Response, Result, ScheduledTime, State, durable_object};

use crate::core::http::Reply;
use crate::core::registry::NodeMove;
use crate::core::{self, Location, Need};
use crate::glue::{self, now_ms};
use crate::{REGISTRY_BINDING, ROOM_BINDING, config};
use edgemeet_protocol::node::Heartbeat;

const REGISTRY_NAME: &str = "global";
const REGISTRY_KEY: &str = "registry";
/// How late after a node turns stale the alarm fires: the sweep then finds it stale.
const SWEEP_SLACK_MS: u64 = 50;

pub fn stub(env: &Env) -> Result<worker::Stub> {
    env.durable_object(REGISTRY_BINDING)?
        .id_from_name(REGISTRY_NAME)?
        .get_stub()
}

#[durable_object]
pub struct Registry {
    state: State,
    env: Env,
    registry: RefCell<Option<core::Registry>>,
    /// The alarm this object set, as far as it knows (none: read storage before setting one).
    alarm_at: Cell<Option<u64>>,
}

impl DurableObject for Registry {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            registry: RefCell::new(None),
            alarm_at: Cell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        self.load().await?;
        match req.path().as_str() {
            "/heartbeat" => {
                #[derive(Deserialize)]
                struct Body {
                    heartbeat: Heartbeat,
                    #[serde(default)]
                    age_ms: u64,
                }
                let body: Body = req.json().await?;
                let drained = self
                    .with(|r| r.heartbeat(body.heartbeat, now_ms().saturating_sub(body.age_ms)));
                self.save().await?;
                self.ensure_alarm().await?;
                self.move_rooms(drained).await;
                glue::response(Reply::no_content())
            }
            "/select" => {
                #[derive(Deserialize)]
                struct Body {
                    location: Option<Location>,
                    /// The asking room: remembered on the node, to move it if the node dies.
                    #[serde(default)]
                    route: Option<String>,
                    /// Any node, or one with a composer free.
                    #[serde(default)]
                    need: Need,
                }
                let body: Body = req.json().await?;
                let now = now_ms();
                let node = self.with(|r| match &body.route {
                    Some(route) => r.place(route, body.location.as_ref(), body.need, now),
                    None => r.select(body.location.as_ref(), body.need, now),
                });
                if body.route.is_some() && node.is_some() {
                    self.save().await?;
                }
                let node = serde_json::to_value(node).unwrap_or_default();
                glue::response(Reply::json(200, &node))
            }
            "/release" => {
                #[derive(Deserialize)]
                struct Body {
                    route: String,
                }
                let body: Body = req.json().await?;
                self.with(|r| r.release(&body.route));
                self.save().await?;
                glue::response(Reply::no_content())
            }
            "/lost" => {
                // A room's check of its node failed (after a page reported the node).
                #[derive(Deserialize)]
                struct Body {
                    node_id: String,
                }
                let body: Body = req.json().await?;
                let lost = self.with(|r| r.mark_lost(&body.node_id));
                self.save().await?;
                self.move_rooms(lost).await;
                glue::response(Reply::no_content())
            }
            _ => Response::error("not found", 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.alarm_at.set(None);
        self.load().await?;
        let lost = self.with(|r| r.sweep(now_ms()));
        if !lost.is_empty() {
            self.save().await?;
        }
        self.ensure_alarm().await?;
        self.move_rooms(lost).await;
        Response::empty()
    }
}

impl Registry {
    async fn load(&self) -> Result<()> {
        let stale_after = config::config(&self.env)?.node_stale_after_ms;
        if self.registry.borrow().is_none() {
            let stored: Option<core::Registry> = self.state.storage().get(REGISTRY_KEY).await?;
            let mut r = self.registry.borrow_mut();
            if r.is_none() {
                *r = Some(stored.unwrap_or_default());
            }
        }
        self.with(|r| r.set_stale_after(stale_after));
        Ok(())
    }

    fn with<T>(&self, f: impl FnOnce(&mut core::Registry) -> T) -> T {
        f(self.registry.borrow_mut().as_mut().expect("loaded first"))
    }

    async fn save(&self) -> Result<()> {
        let snapshot = self.with(|r| r.clone());
        self.state.storage().put(REGISTRY_KEY, snapshot).await
    }

    /// An alarm for the next node that would turn stale, unless one is set already.
    async fn ensure_alarm(&self) -> Result<()> {
        let Some(next) = self.with(|r| r.next_sweep_at()) else {
            return Ok(());
        };
        if self.alarm_at.get().is_some() {
            return Ok(());
        }
        if let Some(at) = self.state.storage().get_alarm().await? {
            self.alarm_at.set(Some(at as u64));
            return Ok(());
        }
        let at = next + SWEEP_SLACK_MS;
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at as f64));
        self.state
            .storage()
            .set_alarm(ScheduledTime::new(date))
            .await?;
        self.alarm_at.set(Some(at));
        Ok(())
    }

    /// Each room of each move hears of it at its `Room` object.
    async fn move_rooms(&self, moves: impl IntoIterator<Item = NodeMove>) {
        let Ok(ns) = self.env.durable_object(ROOM_BINDING) else {
            return;
        };
        for m in moves {
            worker::console_log!(
                "moving {} rooms off media node {} ({:?})",
                m.routes.len(),
                m.node_id,
                m.reason
            );
            let body = json!({ "node_id": m.node_id, "reason": m.reason });
            for route in &m.routes {
                let Ok(stub) = ns.id_from_name(route).and_then(|id| id.get_stub()) else {
                    continue;
                };
                if let Err(e) = glue::do_post(&stub, "/node-move", &body).await {
                    worker::console_error!("a room did not hear its node move: {e}");
                }
            }
        }
    }
}
