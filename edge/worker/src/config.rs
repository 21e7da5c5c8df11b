//! The Worker's configuration from its bindings.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::{Env, Result};

use crate::core::EdgeConfig;
use crate::logic;

thread_local! {
    static CONFIG: RefCell<Option<Rc<EdgeConfig>>> = const { RefCell::new(None) };
}

/// A binding holding JSON: a JSON object var, or a string (var or secret) holding JSON.
fn env_json(env: &Env, name: &str) -> Result<Option<Value>> {
    let raw = js_sys::Reflect::get(env, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
    if raw.is_undefined() || raw.is_null() {
        return Ok(None);
    }
    let text = match raw.as_string() {
        Some(s) => s,
        None => js_sys::JSON::stringify(&raw)
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_default(),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("{name}: not JSON: {e}").into())
}

/// Wrangler vars and secrets as environment variables, one meaning for each on both hosts
/// (`edgemeet_config`).
pub fn vars(env: &Env) -> edgemeet_config::Vars<'_> {
    edgemeet_config::Vars::new(move |name| {
        env.var(name)
            .map(|v| v.to_string())
            .or_else(|_| env.secret(name).map(|v| v.to_string()))
            .ok()
    })
}

/// The configuration: `EDGEMEET_EDGE` (a wrangler var, JSON object or JSON string) deep-merged with
/// `EDGEMEET_EDGE_SECRETS` (a `wrangler secret`, JSON string: node secret, hash key, JWT keys), then
/// the variables both hosts read (`logic::edge_config`). Parsed once per isolate.
pub fn config(env: &Env) -> Result<Rc<EdgeConfig>> {
    if let Some(c) = CONFIG.with(|c| c.borrow().clone()) {
        return Ok(c);
    }
    for (old, new) in logic::RENAMED_VARS {
        let set =
            js_sys::Reflect::get(env, &JsValue::from_str(old)).is_ok_and(|v| !v.is_undefined());
        if set {
            return Err(format!("{old} is {new} now (docs/configuration.md, \"Worker\")").into());
        }
    }
    let parsed = logic::edge_config(
        env_json(env, logic::EDGE_VAR)?,
        env_json(env, logic::EDGE_SECRETS_VAR)?,
        &vars(env),
    )?;
    let parsed = Rc::new(parsed);
    CONFIG.with(|c| *c.borrow_mut() = Some(parsed.clone()));
    Ok(parsed)
}

pub fn probes_enabled(env: &Env) -> bool {
    env.var("EDGEMEET_TEST_PROBES")
        .map(|v| v.to_string() == "1")
        .unwrap_or(false)
}
