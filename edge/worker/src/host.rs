//! The Workers runtime side: fetch handler, `Room` and `Registry` Durable Objects.
//!
//! Room state lives in memory as the core's `Room`; a snapshot is kept in the DO's storage after every
//! change so the room survives hibernation (sockets carry their connection id as attachment). When the
//! core says the room ended, storage is wiped and the alarm deleted: nothing of the meeting remains.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wasm_bindgen::JsValue;
use worker::{
    Date, DurableObject, Env, Headers, Method, Request, RequestInit, Response, Result,
    ScheduledTime, State, WebSocket, WebSocketIncomingMessage, WebSocketPair,
    WebSocketRequestResponsePair, durable_object, event,
};

use crate::core::{
    self, ClientInfo, ConnId, EdgeConfig, Effect, Input, Location, NodeInfo, RoomAddress,
};
use crate::logic::{self, Attachment, Route};
use edgemeet_protocol::node::{Heartbeat, NodeEvent, NodeEvents};
use edgemeet_protocol::{ServerMessage, encode_server};

const ROOM_BINDING: &str = "ROOM";
const REGISTRY_BINDING: &str = "REGISTRY";
const REGISTRY_NAME: &str = "global";
const SNAPSHOT_KEY: &str = "room";
const MAX_BODY: usize = 64 * 1024;
const PING: &str = r#"{"v":1,"type":"ping"}"#;

// ---------------------------------------------------------------------------------------------------
// Shared helpers

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// A WebSocket seen as plain JS, to call `send` with a JS string made once per broadcast
    /// (web-sys' `send_with_str` copies the text out of wasm memory on every call).
    type RawSocket;
    #[wasm_bindgen(method, catch, js_name = send)]
    fn send(this: &RawSocket, data: &JsValue) -> std::result::Result<(), JsValue>;
}

fn send_js(ws: &web_sys::WebSocket, data: &JsValue) -> std::result::Result<(), JsValue> {
    use wasm_bindgen::JsCast;
    ws.unchecked_ref::<RawSocket>().send(data)
}

/// Random bytes from the platform CSPRNG (`crypto.getRandomValues`).
struct JsRng;

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

fn now_ms() -> u64 {
    Date::now().as_millis()
}

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
fn vars(env: &Env) -> edgemeet_config::Vars<'_> {
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
fn config(env: &Env) -> Result<Rc<EdgeConfig>> {
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

fn probes_enabled(env: &Env) -> bool {
    env.var("EDGEMEET_TEST_PROBES")
        .map(|v| v.to_string() == "1")
        .unwrap_or(false)
}

/// The headers the native server puts on every response (`edge/server/src/pages.rs`); the
/// Content-Security-Policy comes from the core (`core::web::content_security_policy`).
const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    (
        "permissions-policy",
        "camera=(self), microphone=(self), display-capture=(self), interest-cohort=()",
    ),
];

fn with_common_headers(mut resp: Response, content_type: &str) -> Result<Response> {
    resp.headers_mut().set("content-type", content_type)?;
    Ok(resp)
}

fn json_response(status: u16, body: &Value) -> Result<Response> {
    let resp = Response::from_bytes(body.to_string().into_bytes())?.with_status(status);
    with_common_headers(resp, "application/json")
}

fn json_error(status: u16, code: &str, message: &str) -> Result<Response> {
    json_response(
        status,
        &json!({ "error": { "code": code, "message": message } }),
    )
}

fn bytes_response(
    method: &Method,
    body: &'static [u8],
    content_type: &str,
    cache: &str,
) -> Result<Response> {
    let body = if *method == Method::Head {
        Vec::new()
    } else {
        body.to_vec()
    };
    let mut resp = with_common_headers(Response::from_bytes(body)?, content_type)?;
    resp.headers_mut().set("cache-control", cache)?;
    Ok(resp)
}

async fn read_body(req: &mut Request) -> Result<Option<String>> {
    let text = req.text().await?;
    Ok((text.len() <= MAX_BODY).then_some(text))
}

/// `request.cf` as JSON (never through `Cf`'s unwrapping getters).
fn cf_json(req: &Request) -> Value {
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

/// What the fetch handler tells the room's DO about a new socket.
#[derive(Serialize, Deserialize)]
struct Connect {
    address: RoomAddress,
    client: ClientInfo,
}

async fn do_post(stub: &worker::Stub, path: &str, body: &impl Serialize) -> Result<Response> {
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

/// A call from the edge to a media node, as the native host makes it (`edge/server/src/nodes.rs`):
/// POST with the edge-signed token, up to three tries; a 404 counts as done (nothing to close),
/// another 4xx as a refusal. The answer's body when done (empty for a 404), `None` when the node
/// refused or could not be reached.
async fn node_post(url: &str, token: &str, body: Option<Value>) -> Option<String> {
    for attempt in 0..3u32 {
        let sent = async {
            let headers = Headers::new();
            headers.set("authorization", &format!("Bearer {token}"))?;
            let mut init = RequestInit::new();
            init.with_method(Method::Post);
            if let Some(body) = &body {
                headers.set("content-type", "application/json")?;
                init.with_body(Some(JsValue::from_str(&body.to_string())));
            }
            init.with_headers(headers);
            worker::Fetch::Request(Request::new_with_init(url, &init)?)
                .send()
                .await
        };
        match sent.await {
            Ok(res) if res.status_code() == 404 => return Some(String::new()),
            Ok(mut res) if (200..300).contains(&res.status_code()) => {
                // A node's answers are small; one that cannot be read counts as done.
                return Some(res.text().await.unwrap_or_default());
            }
            Ok(res) if (400..500).contains(&res.status_code()) => return None,
            _ => {}
        }
        worker::Delay::from(std::time::Duration::from_millis(250 << attempt)).await;
    }
    None
}

fn registry_stub(env: &Env) -> Result<worker::Stub> {
    env.durable_object(REGISTRY_BINDING)?
        .id_from_name(REGISTRY_NAME)?
        .get_stub()
}

// ---------------------------------------------------------------------------------------------------
// The fetch handler

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: worker::Context) -> Result<Response> {
    console_error_panic_hook::set_once();
    let path = req.path();
    if probes_enabled(&env) && path.starts_with("/__test/") {
        return test_probe(req, env).await;
    }
    let method = req.method();
    let csp = match config(&env) {
        Ok(c) => core::web::content_security_policy(&c),
        Err(_) => core::web::content_security_policy(&EdgeConfig::default()),
    };
    let mut resp = match logic::route(method.as_ref(), &path) {
        Route::Page => bytes_response(
            &method,
            logic::index_html(),
            "text/html; charset=utf-8",
            "no-cache",
        ),
        Route::Asset(p, body) => {
            bytes_response(&method, body, core::web::content_type(p), "no-cache")
        }
        Route::Health => with_common_headers(Response::ok("ok")?, "text/plain; charset=utf-8"),
        Route::NamesRandom => {
            let name = core::names::generate(&mut JsRng);
            json_response(200, &json!({ "name": name }))
        }
        Route::NamesCheck => names_check(req).await,
        Route::PageConfig => match logic::page_config(&vars(&env)) {
            Ok(config) => json_response(200, &config),
            Err(e) => {
                worker::console_error!("recording configuration: {e}");
                json_response(200, &logic::page_config_without_recording())
            }
        },
        Route::Room { tenant, room } => join_room(req, env, tenant, room).await,
        Route::Heartbeat => heartbeat(req, env).await,
        Route::NodeEvents => node_events(req, env).await,
        Route::NotFound => json_error(404, "not_found", "no such file"),
        Route::MethodNotAllowed(allow) => {
            let mut resp = Response::empty()?.with_status(405);
            resp.headers_mut().set("allow", allow)?;
            Ok(resp)
        }
    }?;
    if resp.status_code() != 101 {
        let h = resp.headers_mut();
        for (k, v) in SECURITY_HEADERS {
            h.set(k, v)?;
        }
        h.set("content-security-policy", &csp)?;
    }
    Ok(resp)
}

async fn names_check(mut req: Request) -> Result<Response> {
    #[derive(Deserialize)]
    struct Body {
        name: String,
    }
    let text = req.text().await?;
    if text.len() > 4096 {
        return json_error(413, "too_large", "send at most 4096 bytes");
    }
    match serde_json::from_str::<Body>(&text) {
        Ok(b) => json_response(
            200,
            &serde_json::to_value(core::names::check(&b.name)).unwrap_or(Value::Null),
        ),
        Err(e) => json_error(
            400,
            "invalid_message",
            &format!("expected {{\"name\": \"...\"}}: {e}"),
        ),
    }
}

/// The caller's address as the core counts it (IPv6 per /64), from Cloudflare's
/// `CF-Connecting-IP`.
fn address_key(config: &EdgeConfig, req: &Request) -> String {
    let ip = req
        .headers()
        .get("cf-connecting-ip")
        .ok()
        .flatten()
        .unwrap_or_default();
    match ip.trim().parse::<std::net::IpAddr>() {
        Ok(ip) => core::client_key(&config.hash_key, ip),
        Err(_) => core::keyed_hash(&config.hash_key, &format!("addr\0{ip}")),
    }
}

/// A name that cannot be a room (its form; whether a tenant exists is answered at `join`): the
/// socket is accepted (every name upgrades the same way), told why, and closed, as on the native
/// host.
fn refuse_socket(err: edgemeet_protocol::ProtocolError) -> Result<Response> {
    let pair = WebSocketPair::new()?;
    pair.server.accept()?;
    let msg = ServerMessage::Error {
        code: err.code,
        message: err.message,
        request: None,
    };
    let _ = pair.server.send_with_str(encode_server(&msg));
    let _ = pair
        .server
        .close(Some(core::room::close::POLICY), Some("invalid room"));
    Response::from_websocket(pair.client)
}

async fn join_room(
    req: Request,
    env: Env,
    tenant: Option<String>,
    raw_room: String,
) -> Result<Response> {
    let upgrade = req.headers().get("upgrade")?.unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        // What axum's WebSocket extractor answers on the native host.
        let resp = Response::ok("Connection header did not include 'upgrade'")?.with_status(400);
        return with_common_headers(resp, "text/plain; charset=utf-8");
    }
    let config = config(&env)?;
    // Pages of other sites may not open sockets here (the same answer for every room name).
    let origin = req.headers().get("origin")?;
    let host = req.headers().get("host")?;
    if !core::web::origin_allowed(&config, origin.as_deref(), host.as_deref()) {
        let resp = Response::ok("this origin may not open room sockets")?.with_status(403);
        return with_common_headers(resp, "text/plain; charset=utf-8");
    }
    let tenant = match tenant {
        None => Some(None),
        Some(t) => logic::percent_decode(&t).map(Some),
    };
    let (Some(room), Some(tenant)) = (logic::percent_decode(&raw_room), tenant) else {
        return refuse_socket(edgemeet_protocol::ProtocolError::new(
            edgemeet_protocol::ErrorCode::InvalidRoomName,
            "room names are 1-128 letters, digits, '-', '_' or '.', not starting with '.'",
        ));
    };
    let address = match core::route(&config, tenant.as_deref(), &room) {
        Ok(a) => a,
        Err(e) => return refuse_socket(e),
    };
    let query = req.url()?.query().unwrap_or("").to_owned();
    let client = ClientInfo {
        addr_key: address_key(&config, &req),
        location: logic::location_from_cf(&cf_json(&req)),
        query_token: logic::query_token(&query),
    };
    let stub = env
        .durable_object(ROOM_BINDING)?
        .id_from_name(&address.route)?
        .get_stub()?;
    let headers = Headers::new();
    headers.set("upgrade", "websocket")?;
    headers.set(
        "x-edgemeet-connect",
        &serde_json::to_string(&Connect { address, client }).map_err(|e| e.to_string())?,
    )?;
    let mut init = RequestInit::new();
    init.with_headers(headers);
    stub.fetch_with_request(Request::new_with_init("https://room/connect", &init)?)
        .await
}

/// A media node's call: the node secret, then a JSON body of at most 64 KiB. `Err` is the refusal
/// to send back.
async fn node_call<T: serde::de::DeserializeOwned>(
    req: &mut Request,
    env: &Env,
) -> Result<std::result::Result<T, Response>> {
    let config = config(env)?;
    if !logic::bearer_ok(
        req.headers().get("authorization")?.as_deref(),
        config.node_secret.as_deref(),
    ) {
        return json_error(401, "unauthorized", "a node secret is required").map(Err);
    }
    let Some(text) = read_body(req).await? else {
        return json_error(413, "too_large", "at most 64 KiB").map(Err);
    };
    match serde_json::from_str(&text) {
        Ok(body) => Ok(Ok(body)),
        Err(e) => json_error(400, "invalid_message", &e.to_string()).map(Err),
    }
}

async fn heartbeat(mut req: Request, env: Env) -> Result<Response> {
    let hb: Heartbeat = match node_call(&mut req, &env).await? {
        Ok(h) => h,
        Err(refusal) => return Ok(refusal),
    };
    let resp = do_post(
        &registry_stub(&env)?,
        "/heartbeat",
        &json!({ "heartbeat": hb, "age_ms": 0 }),
    )
    .await?;
    if resp.status_code() != 204 {
        return json_error(500, "internal", "registry unavailable");
    }
    Ok(Response::empty()?.with_status(204))
}

async fn node_events(mut req: Request, env: Env) -> Result<Response> {
    let batch: NodeEvents = match node_call(&mut req, &env).await? {
        Ok(b) => b,
        Err(refusal) => return Ok(refusal),
    };
    let ns = env.durable_object(ROOM_BINDING)?;
    for event in batch.events {
        let NodeEvent::DominantSpeaker { route, .. } = &event;
        // Only well-formed routes (our own keyed hashes) address a room object.
        if route.len() > 128
            || !route
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            continue;
        }
        let stub = ns.id_from_name(route)?.get_stub()?;
        let _ = do_post(&stub, "/node-event", &event).await?;
    }
    Ok(Response::empty()?.with_status(204))
}

/// Test-only routes, present only when the `EDGEMEET_TEST_PROBES` var is `1` (the dev config of the
/// test suite; never in a deployment): look into a room's storage, simulate eviction, drive the registry
/// with a chosen `request.cf`.
async fn test_probe(mut req: Request, env: Env) -> Result<Response> {
    let path = req.path();
    let parts: Vec<String> = path
        .trim_start_matches("/__test/")
        .split('/')
        .map(str::to_owned)
        .collect();
    match parts
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["room", tenant, room, action] => {
            let config = config(&env)?;
            let tenant = (*tenant != "-").then_some(*tenant);
            let address = match core::route(&config, tenant, room) {
                Ok(a) => a,
                Err(e) => return json_error(400, "invalid_room_name", &e.message),
            };
            let stub = env
                .durable_object(ROOM_BINDING)?
                .id_from_name(&address.route)?
                .get_stub()?;
            do_post(&stub, &format!("/probe/{action}"), &json!({})).await
        }
        ["registry", "heartbeat"] => {
            let body: Value = req.json().await?;
            do_post(&registry_stub(&env)?, "/heartbeat", &body).await
        }
        ["registry", "select"] => {
            let body: Value = req.json().await?;
            let location = logic::location_from_cf(body.get("cf").unwrap_or(&Value::Null));
            do_post(
                &registry_stub(&env)?,
                "/select",
                &json!({ "location": location }),
            )
            .await
        }
        ["cf"] => json_response(
            200,
            &json!({ "cf": cf_json(&req), "location": logic::location_from_cf(&cf_json(&req)) }),
        ),
        _ => json_error(404, "not_found", "no such probe"),
    }
}

// ---------------------------------------------------------------------------------------------------
// Room Durable Object

#[derive(Default)]
struct RoomMem {
    room: Option<core::Room>,
    /// Sockets by connection id; rebuilt from the attachments after hibernation.
    sockets: HashMap<ConnId, WebSocket>,
    /// A snapshot write is scheduled (see [`Room::persist`]).
    flush_scheduled: bool,
}

/// How long a changed room waits before its snapshot is written: writes coalesce while a room is busy
/// (every frame changes a rate-limit bucket). Safe across hibernation: an object with a pending timer
/// does not hibernate, and an eviction for any other reason (deploy, crash) disconnects the sockets,
/// which ends the room anyway.
const FLUSH_DELAY_MS: u64 = 100;

/// Write the room's current snapshot (nothing if it ended meanwhile: `wipe` has emptied storage).
async fn flush(mem: &RefCell<RoomMem>, storage: &worker::Storage) -> Result<()> {
    let snapshot = {
        let mut m = mem.borrow_mut();
        m.flush_scheduled = false;
        match m.room.as_ref() {
            Some(room) => serde_json::to_string(room).map_err(|e| e.to_string())?,
            None => return Ok(()),
        }
    };
    storage.put(SNAPSHOT_KEY, snapshot).await
}

#[durable_object]
pub struct Room {
    state: State,
    env: Env,
    mem: Rc<RefCell<RoomMem>>,
}

impl DurableObject for Room {
    fn new(state: State, env: Env) -> Self {
        if let Ok(pair) =
            WebSocketRequestResponsePair::new(PING, &encode_server(&ServerMessage::Pong))
        {
            state.set_websocket_auto_response(&pair);
        }
        Self {
            state,
            env,
            mem: Rc::new(RefCell::new(RoomMem::default())),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        match path.as_str() {
            "/connect" => self.open_socket(&req).await,
            "/node-event" => {
                let NodeEvent::DominantSpeaker {
                    room, participant, ..
                } = req.json().await?;
                // An event for a room that is not running creates nothing.
                if self.load().await? {
                    self.run(Input::DominantSpeaker {
                        meeting_id: room,
                        participant,
                    })
                    .await?;
                }
                Ok(Response::empty()?.with_status(204))
            }
            p if p.starts_with("/probe/") && probes_enabled(&self.env) => {
                self.probe(&p["/probe/".len()..]).await
            }
            _ => Response::error("not found", 404),
        }
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let Some(conn) = self.conn_of(&ws) else {
            return Ok(());
        };
        if !self.load().await? {
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
        self.run(input).await
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        let _ = ws.close(Some(1000), Some("closed"));
        self.closed(&ws).await
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        self.closed(&ws).await
    }

    async fn alarm(&self) -> Result<Response> {
        if self.load().await? {
            self.run(Input::Alarm).await?;
        } else {
            self.wipe().await?;
        }
        Response::empty()
    }
}

impl Room {
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

    async fn open_socket(&self, req: &Request) -> Result<Response> {
        let Some(header) = req.headers().get("x-edgemeet-connect")? else {
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

    async fn closed(&self, ws: &WebSocket) -> Result<()> {
        let Some(conn) = self.conn_of(ws) else {
            return Ok(());
        };
        self.mem.borrow_mut().sockets.remove(&conn);
        if self.load().await? {
            self.run(Input::Closed { conn }).await?;
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

    /// Feed one input to the core, carry out its effects (which may produce further inputs), then keep
    /// the snapshot in storage, or wipe everything once the room ended.
    async fn run(&self, input: Input) -> Result<()> {
        let config = config(&self.env)?;
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
                    Effect::RequestNode { location } => {
                        queue.push_back(Input::NodeAssigned(self.select_node(location).await))
                    }
                    Effect::CloseOnNode {
                        node,
                        meeting_id,
                        scope,
                        token,
                    } => {
                        let base = node.url.trim_end_matches('/');
                        let url = match &scope {
                            core::NodeScope::Participant(pid) => {
                                format!("{base}/v1/participants/{pid}/close")
                            }
                            core::NodeScope::Meeting => {
                                format!("{base}/v1/rooms/{meeting_id}/close")
                            }
                        };
                        // In the background: the node reaps idle sessions if this never arrives.
                        worker::wasm_bindgen_futures::spawn_local(async move {
                            let _ = node_post(&url, &token, None).await;
                        });
                    }
                    Effect::RecordOnNode {
                        node,
                        meeting_id,
                        token,
                        start,
                    } => {
                        let base = node.url.trim_end_matches('/');
                        let recorder = start.as_ref().map(|s| s.recorder.clone());
                        let (url, body) = match start {
                            Some(start) => (
                                format!("{base}/v1/rooms/{meeting_id}/recording/start"),
                                Some(match start.dropbox {
                                    Some(grant) => json!({ "dropbox": grant }),
                                    None => json!({}),
                                }),
                            ),
                            None => (format!("{base}/v1/rooms/{meeting_id}/recording/stop"), None),
                        };
                        let answer = node_post(&url, &token, body).await;
                        match (recorder, answer) {
                            (Some(_), None) => {
                                queue.push_back(Input::RecordingFailed { meeting_id })
                            }
                            // The recorder's delivery-status token, for their socket only.
                            (Some(recorder), Some(answer)) => {
                                if let Some(token) = logic::status_token_of(&answer) {
                                    queue.push_back(Input::RecordingStarted {
                                        meeting_id,
                                        recorder,
                                        status_token: core::StatusToken(token),
                                    });
                                }
                            }
                            (None, _) => {}
                        }
                    }
                    Effect::Ended => ended = true,
                }
            }
        }
        if ended
            || self
                .mem
                .borrow()
                .room
                .as_ref()
                .is_some_and(core::Room::is_ended)
        {
            self.wipe().await
        } else {
            self.persist().await
        }
    }

    async fn select_node(&self, location: Option<Location>) -> Option<NodeInfo> {
        let stub = registry_stub(&self.env).ok()?;
        let mut resp = do_post(&stub, "/select", &json!({ "location": location }))
            .await
            .ok()?;
        resp.json::<Option<NodeInfo>>().await.ok().flatten()
    }

    /// Schedule a snapshot write, unless one is pending already.
    async fn persist(&self) -> Result<()> {
        {
            let mut mem = self.mem.borrow_mut();
            if mem.room.is_none() || mem.flush_scheduled {
                return Ok(());
            }
            mem.flush_scheduled = true;
        }
        let mem = self.mem.clone();
        let storage = self.state.storage();
        worker::wasm_bindgen_futures::spawn_local(async move {
            worker::Delay::from(std::time::Duration::from_millis(FLUSH_DELAY_MS)).await;
            if let Err(e) = flush(&mem, &storage).await {
                worker::console_error!("room snapshot not written: {e}");
            }
        });
        Ok(())
    }

    /// The room ended: forget it in memory, empty the storage, delete the alarm.
    async fn wipe(&self) -> Result<()> {
        {
            let mut mem = self.mem.borrow_mut();
            mem.room = None;
            mem.sockets.clear();
        }
        let storage = self.state.storage();
        storage.delete_alarm().await?;
        storage.delete_all().await
    }

    async fn probe(&self, action: &str) -> Result<Response> {
        match action {
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
                json_response(
                    200,
                    &json!({
                        "storage_keys": keys,
                        "alarm": alarm,
                        "in_memory": mem.room.is_some(),
                        "sockets": self.state.get_websockets().len(),
                    }),
                )
            }
            // Drop everything held in memory, as an eviction during hibernation would.
            "forget" => {
                // Hibernation waits for the pending snapshot write; so does this.
                if self.mem.borrow().flush_scheduled {
                    flush(&self.mem, &self.state.storage()).await?;
                }
                *self.mem.borrow_mut() = RoomMem::default();
                json_response(200, &json!({ "forgotten": true }))
            }
            _ => Response::error("no such probe", 404),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Registry Durable Object

#[durable_object]
pub struct Registry {
    state: State,
    #[allow(dead_code)]
    env: Env,
    registry: RefCell<Option<core::Registry>>,
}

const REGISTRY_KEY: &str = "registry";

impl DurableObject for Registry {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
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
                Ok(Response::empty()?.with_status(204))
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
                json_response(200, &serde_json::to_value(node).unwrap_or(Value::Null))
            }
            _ => Response::error("not found", 404),
        }
    }
}
