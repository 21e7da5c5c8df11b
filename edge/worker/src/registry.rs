//! The `Registry` Durable Object: one for the whole deployment ("global"), holding the core's
//! [`core::Registry`] of media nodes (heartbeats in, a node for a room out), kept in storage.

use std::cell::RefCell;

use serde::Deserialize;
use worker::{DurableObject, Env, Request, Response, Result, State, durable_object};

use crate::REGISTRY_BINDING;
use crate::core::http::Reply;
use crate::core::{self, Location};
use crate::glue::{self, now_ms};
use edgemeet_protocol::node::Heartbeat;

const REGISTRY_NAME: &str = "global";
const REGISTRY_KEY: &str = "registry";

pub fn stub(env: &Env) -> Result<worker::Stub> {
    env.durable_object(REGISTRY_BINDING)?
        .id_from_name(REGISTRY_NAME)?
        .get_stub()
}

#[durable_object]
pub struct Registry {
    state: State,
    registry: RefCell<Option<core::Registry>>,
}

impl DurableObject for Registry {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            registry: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if self.registry.borrow().is_none() {
            let stored: Option<core::Registry> = self.state.storage().get(REGISTRY_KEY).await?;
            let mut r = self.registry.borrow_mut();
            if r.is_none() {
                *r = Some(stored.unwrap_or_default());
            }
        }
        match req.path().as_str() {
            "/heartbeat" => {
                #[derive(Deserialize)]
                struct Body {
                    heartbeat: Heartbeat,
                    #[serde(default)]
                    age_ms: u64,
                }
                let body: Body = req.json().await?;
                let snapshot = {
                    let mut r = self.registry.borrow_mut();
                    let r = r.as_mut().expect("loaded above");
                    r.heartbeat(body.heartbeat, now_ms().saturating_sub(body.age_ms));
                    r.clone()
                };
                self.state.storage().put(REGISTRY_KEY, snapshot).await?;
                glue::response(Reply::no_content())
            }
            "/select" => {
                #[derive(Deserialize)]
                struct Body {
                    location: Option<Location>,
                }
                let body: Body = req.json().await?;
                let node = self
                    .registry
                    .borrow()
                    .as_ref()
                    .expect("loaded above")
                    .select(body.location.as_ref(), now_ms());
                let node = serde_json::to_value(node).unwrap_or_default();
                glue::response(Reply::json(200, &node))
            }
            _ => Response::error("not found", 404),
        }
    }
}
