//! The JavaScript side: randomness, the clock, `request.cf`, calls to Durable Objects and media
//! nodes over `fetch`, and the core's [`Reply`] as a Workers [`Response`].

use serde::Serialize;
use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::{Date, Headers, Method, Request, RequestInit, Response, Result};

use crate::core::http::{CSP_HEADER, Reply, SECURITY_HEADERS};
use crate::core::node_call::{self, Failure, NodeCall};

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// A WebSocket seen as plain JS, to call `send` with a JS string made once per broadcast
    /// (web-sys' `send_with_str` copies the text out of wasm memory on every call).
    type RawSocket;
    #[wasm_bindgen(method, catch, js_name = send)]
    fn send(this: &RawSocket, data: &JsValue) -> std::result::Result<(), JsValue>;
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// A Durable Object's state as plain JS, for what workers-rs does not bind.
    type RawState;
    #[wasm_bindgen(method, catch, js_name = getWebSocketAutoResponseTimestamp)]
    fn auto_response_timestamp(
        this: &RawState,
        ws: &web_sys::WebSocket,
    ) -> std::result::Result<JsValue, JsValue>;
}

/// When the runtime last answered a ping on `ws` by itself (`setWebSocketAutoResponse`), without
/// waking the object: unix ms, or none.
pub fn auto_response_at(state: &worker::State, ws: &web_sys::WebSocket) -> Option<u64> {
    use wasm_bindgen::JsCast;
    let at = state
        .as_raw()
        .unchecked_ref::<RawState>()
        .auto_response_timestamp(ws)
        .ok()?;
    let date = at.dyn_into::<js_sys::Date>().ok()?;
    Some(date.get_time() as u64)
}

pub fn send_js(ws: &web_sys::WebSocket, data: &JsValue) -> std::result::Result<(), JsValue> {
    use wasm_bindgen::JsCast;
    ws.unchecked_ref::<RawSocket>().send(data)
}

/// Random bytes from the platform CSPRNG (`crypto.getRandomValues`).
pub struct JsRng;

impl rand_core::RngCore for JsRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        getrandom::getrandom(dest).expect("crypto.getRandomValues");
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

pub fn now_ms() -> u64 {
    Date::now().as_millis()
}

/// The core's answer as a Workers response. (JavaScript refuses a body, even an empty one, on a
/// 204; an empty body is sent as none.)
pub fn response(reply: Reply) -> Result<Response> {
    let mut resp = if reply.body.is_empty() {
        Response::empty()?
    } else {
        Response::from_bytes(reply.body.into_owned())?
    }
    .with_status(reply.status);
    let h = resp.headers_mut();
    for (name, value) in &reply.headers {
        h.set(name, value)?;
    }
    Ok(resp)
}

/// The headers on every answer but a socket's `101` (whose headers the runtime owns).
pub fn with_security_headers(mut resp: Response, csp: &str) -> Result<Response> {
    if resp.status_code() == 101 {
        return Ok(resp);
    }
    let h = resp.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        h.set(name, value)?;
    }
    if !h.has(CSP_HEADER)? {
        h.set(CSP_HEADER, csp)?;
    }
    Ok(resp)
}

/// `request.cf` as JSON (never through `Cf`'s unwrapping getters).
pub fn cf_json(req: &Request) -> Value {
    let Ok(cf) = js_sys::Reflect::get(req.inner(), &JsValue::from_str("cf")) else {
        return Value::Null;
    };
    if cf.is_undefined() || cf.is_null() {
        return Value::Null;
    }
    js_sys::JSON::stringify(&cf)
        .ok()
        .and_then(|s| s.as_string())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

/// POST a JSON body to a Durable Object.
pub async fn do_post(stub: &worker::Stub, path: &str, body: &impl Serialize) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(JsValue::from_str(
            &serde_json::to_string(body).map_err(|e| e.to_string())?,
        )));
    stub.fetch_with_request(Request::new_with_init(&format!("https://do{path}"), &init)?)
        .await
}

/// A call to a media node by the core's policy ([`node_call::send`]): timeout, tries, meaning
/// of each status.
pub async fn call_node(call: &NodeCall) -> std::result::Result<Vec<u8>, Failure> {
    node_call::send(call, node_post, worker::Delay::from).await
}

/// One try of a node call: the status and the whole body, or why the node was not reached.
async fn node_post(call: &NodeCall) -> std::result::Result<(u16, Vec<u8>), String> {
    let sent = async {
        let headers = Headers::new();
        headers.set("authorization", &format!("Bearer {}", call.token))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post);
        if let Some(body) = &call.body {
            headers.set("content-type", "application/json")?;
            init.with_body(Some(JsValue::from_str(body)));
        }
        init.with_headers(headers);
        let mut res = worker::Fetch::Request(Request::new_with_init(&call.url, &init)?)
            .send()
            .await?;
        let body = res.bytes().await.unwrap_or_default();
        Ok::<_, worker::Error>((res.status_code(), body))
    };
    sent.await.map_err(|e| e.to_string())
}

/// Check a node after a page reported it, by the core's policy ([`node_call::probe`]).
pub async fn probe_node(node: &crate::core::NodeInfo) -> bool {
    let url = node_call::probe_url(node_call::base(node));
    let get = || async {
        let res = worker::Fetch::Url(url.parse().map_err(|e| format!("{e}"))?)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(res.status_code())
    };
    node_call::probe(get, worker::Delay::from).await
}
