//! The Worker's configuration from its bindings (moved here unchanged from `host.rs`).

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{Value, json};
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

/// The configuration: `EDGEMEET_CONFIG` (a wrangler var, JSON object or JSON string) deep-merged with
/// `EDGEMEET_SECRETS` (a `wrangler secret`, JSON string: node secret, JWT keys, log key). Parsed once
/// per isolate.
pub fn config(env: &Env) -> Result<Rc<EdgeConfig>> {
    if let Some(c) = CONFIG.with(|c| c.borrow().clone()) {
        return Ok(c);
    }
    let mut value = env_json(env, "EDGEMEET_CONFIG")?.unwrap_or_else(|| json!({}));
    if let Some(overlay) = env_json(env, "EDGEMEET_SECRETS")? {
        logic::merge_json(&mut value, overlay);
    }
    let parsed: EdgeConfig =
        serde_json::from_value(value).map_err(|e| format!("edge configuration: {e}"))?;
    parsed
        .validate()
        .map_err(|e| format!("edge configuration: {e}"))?;
    let parsed = Rc::new(parsed);
    CONFIG.with(|c| *c.borrow_mut() = Some(parsed.clone()));
    Ok(parsed)
}

pub fn probes_enabled(env: &Env) -> bool {
    env.var("EDGEMEET_TEST_PROBES")
        .map(|v| v.to_string() == "1")
        .unwrap_or(false)
}
