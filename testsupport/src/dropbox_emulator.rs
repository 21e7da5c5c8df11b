//! A strict local stand-in for Dropbox HTTP API v2, for tests and the benchmark.
//!
//! Speaks the subset the uploader uses, with Dropbox's rules and error shapes: bearer tokens
//! (`invalid_access_token`, `expired_access_token` as 401), a header-safe `Dropbox-API-Arg`
//! (raw non-ASCII refused), `application/octet-stream` uploads, upload sessions with offsets
//! (`incorrect_offset` + `correct_offset`, `closed`, `not_found`), concurrent sessions (4 MiB
//! multiples), `files/upload` up to 150 MiB, commits with `add` + `autorename`, 409 bodies with
//! `error_summary` and `error`, 429 with `Retry-After` and `retry_after`, and OAuth 2: the
//! authorization-code flow with PKCE (`GET /oauth2/authorize` approves at once and redirects
//! with a code to a registered redirect URI; `/oauth2/token` with `authorization_code` checks
//! the code (single use, 10 minutes), client id, redirect URI and the PKCE verifier strictly)
//! and the refresh-token grant (a revoked grant answers `invalid_grant`, its access tokens
//! `invalid_access_token`). Committed files keep only their size, SHA-256 and Dropbox's
//! `content_hash` (SHA-256 of the SHA-256 of each 4 MiB block), so gigabytes fit; metadata
//! carries `content_hash` as Dropbox's does. A committed session stays known: `finish` or
//! `append_v2` on it answers `lookup_failed/closed` / `closed`, as Dropbox documents ("closed
//! (i.e. committed)"). A commit that fails on its path (`conflict`, `insufficient_space` past
//! the quota) keeps the session, which Dropbox lets the caller finish again.
//!
//! Fault knobs: [`Emulator::inject`] (429 / 5xx / token expiry on the next content calls),
//! [`Emulator::expire_tokens_after`], [`Emulator::set_append_delay`],
//! [`Emulator::lose_next_finish_answer`] (commits, then the connection breaks before the answer),
//! [`Emulator::fail_next_append`] (the data is read, then a 5xx), [`Emulator::fail_account`]
//! (one token's calls all fail), [`Emulator::corrupt_next_commit`] (stores other content),
//! [`Emulator::set_quota`] (a full Dropbox; also `POST /_emulator/quota {"bytes": N|null}` from
//! another process).
#![allow(dead_code)]
// Handlers return ready responses as errors; boxing them would only add noise here.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const MIB: u64 = 1024 * 1024;
const MAX_REQUEST: u64 = 150 * MIB;
const CONCURRENT_ALIGN: u64 = 4 * MIB;
/// Dropbox's `content_hash` block.
const HASH_BLOCK: usize = 4 * MIB as usize;

/// Dropbox's `content_hash`, computed as the data arrives.
#[derive(Clone, Default)]
struct ContentHasher {
    block: Sha256,
    in_block: usize,
    overall: Sha256,
}

impl ContentHasher {
    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let n = (HASH_BLOCK - self.in_block).min(data.len());
            self.block.update(&data[..n]);
            self.in_block += n;
            data = &data[n..];
            if self.in_block == HASH_BLOCK {
                let digest = std::mem::take(&mut self.block).finalize();
                self.overall.update(digest);
                self.in_block = 0;
            }
        }
    }

    fn finish(mut self) -> String {
        if self.in_block > 0 {
            let digest = self.block.finalize();
            self.overall.update(digest);
        }
        hex::encode(self.overall.finalize())
    }
}

/// Dropbox's `content_hash` of bytes in memory.
pub fn dropbox_content_hash(data: &[u8]) -> String {
    let mut h = ContentHasher::default();
    h.update(data);
    h.finish()
}

/// A fault served instead of the next content call (start / append / finish / upload).
#[derive(Debug, Clone)]
pub enum Fault {
    RateLimit { retry_after: u64 },
    ServerError(u16),
    ExpireToken,
}

/// Counters the tests assert on.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub starts: u64,
    pub appends: u64,
    pub finishes: u64,
    pub refreshes: u64,
    pub rate_limited: u64,
    pub server_errors: u64,
    pub expired_rejections: u64,
    pub incorrect_offsets: u64,
    /// Calls to `/oauth2/token` with the refresh-token grant, refused ones included.
    pub token_requests: u64,
    pub metadata_lookups: u64,
    /// `finish` calls answered `lookup_failed/closed` (the session was already committed).
    pub finish_closed: u64,
    /// Commits refused for lack of space.
    pub insufficient_space: u64,
    pub bad_requests: u64,
    pub bytes_received: u64,
    pub authorizations: u64,
    pub code_exchanges: u64,
    pub oauth_errors: u64,
}

/// A committed file.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub path_display: String,
    pub size: u64,
    pub sha256: String,
    pub content_hash: String,
}

struct Session {
    len: u64,
    hasher: Sha256,
    content: ContentHasher,
    closed: bool,
    concurrent: bool,
    pieces: BTreeMap<u64, Vec<u8>>,
    /// The bytes, where the emulator keeps committed files (`keep_files_in`).
    kept: Option<Vec<u8>>,
}

#[derive(Default)]
struct State {
    /// access token -> expired?
    access: HashMap<String, bool>,
    /// refresh token -> app key
    refresh: HashMap<String, String>,
    sessions: HashMap<String, Session>,
    /// Where committed files' bytes are written (`/` in their path as `_`), if anywhere: a test
    /// that must play what arrived. Off by default (the benchmark sends gigabytes).
    keep_dir: Option<std::path::PathBuf>,
    /// The path the last successful commit took.
    last_committed: String,
    /// Sessions already committed: Dropbox answers `closed` for them.
    committed: std::collections::HashSet<String>,
    files: BTreeMap<String, StoredFile>,
    /// access token -> the refresh token of its grant
    grant_of: HashMap<String, String>,
    /// Bytes the account may hold (`None`: unlimited).
    quota: Option<u64>,
    lose_finish_answer: bool,
    fail_append: Option<u16>,
    corrupt_commit: bool,
    /// access token -> status every content call with it gets
    failing: HashMap<String, u16>,
    faults: VecDeque<Fault>,
    expire_after: Option<u32>,
    append_delay: Duration,
    next_id: u64,
    stats: Stats,
    /// app key -> registered redirect URIs (the App Console's list)
    apps: HashMap<String, Vec<String>>,
    /// authorization code -> what it was issued for
    codes: HashMap<String, Grant>,
}

/// An authorization code waiting for its exchange.
struct Grant {
    client_id: String,
    redirect_uri: Option<String>,
    challenge: String,
    method: String,
    offline: bool,
    issued: std::time::Instant,
}

/// A running emulator on 127.0.0.1.
pub struct Emulator {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Emulator {
    pub async fn start() -> Emulator {
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Body| {
                let st = st.clone();
                async move { handle(st, method, uri, headers, body).await }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind emulator");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Emulator { addr, state, task }
    }

    /// Base URL for both `api_url` and `content_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn add_account(&self, access_token: &str, refresh_token: &str, app_key: &str) {
        let mut s = self.state.lock().unwrap();
        s.access.insert(access_token.into(), false);
        s.refresh.insert(refresh_token.into(), app_key.into());
        s.grant_of.insert(access_token.into(), refresh_token.into());
    }

    /// The recorder revokes the app's access: the refresh token and every access token of the
    /// grant stop working (a token already expired keeps answering `expired_access_token`).
    pub fn revoke(&self, refresh_token: &str) {
        let mut s = self.state.lock().unwrap();
        s.refresh.remove(refresh_token);
        let dead: Vec<String> = s
            .grant_of
            .iter()
            .filter(|(_, r)| r.as_str() == refresh_token)
            .map(|(a, _)| a.clone())
            .collect();
        for a in dead {
            if s.access.get(&a) == Some(&false) {
                s.access.remove(&a);
            }
        }
    }

    /// Every access token issued so far expires now (they last about 4 h at Dropbox).
    pub fn expire_now(&self) {
        let mut s = self.state.lock().unwrap();
        s.access.values_mut().for_each(|e| *e = true);
    }

    /// The account holds at most `bytes` (commits beyond: `path/insufficient_space`).
    pub fn set_quota(&self, bytes: Option<u64>) {
        self.state.lock().unwrap().quota = bytes;
    }

    /// The next `finish` commits, then its connection breaks before the answer is sent.
    pub fn lose_next_finish_answer(&self) {
        self.state.lock().unwrap().lose_finish_answer = true;
    }

    /// The next `append_v2` reads all its data, then answers `status` without taking it.
    pub fn fail_next_append(&self, status: u16) {
        self.state.lock().unwrap().fail_append = Some(status);
    }

    /// The next commit stores content other than what the session holds (a corrupt write).
    pub fn corrupt_next_commit(&self) {
        self.state.lock().unwrap().corrupt_commit = true;
    }

    /// Every content call made with `access_token` answers `status` (`None`: back to normal).
    pub fn fail_account(&self, access_token: &str, status: Option<u16>) {
        let mut s = self.state.lock().unwrap();
        match status {
            Some(c) => s.failing.insert(access_token.into(), c),
            None => s.failing.remove(access_token),
        };
    }

    /// Registers a Dropbox app (its key) and its redirect URIs, as the App Console does.
    pub fn add_app(&self, app_key: &str, redirect_uris: &[&str]) {
        self.state.lock().unwrap().apps.insert(
            app_key.into(),
            redirect_uris.iter().map(|u| u.to_string()).collect(),
        );
    }

    pub fn inject(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push_back(fault);
    }

    /// After `n` more content calls, every access token expires.
    pub fn expire_tokens_after(&self, n: u32) {
        self.state.lock().unwrap().expire_after = Some(n);
    }

    /// Each append is acknowledged this late (its data is already taken in).
    pub fn set_append_delay(&self, d: Duration) {
        self.state.lock().unwrap().append_delay = d;
    }

    /// From now on, committed files (from upload sessions) are also written into `dir`.
    pub fn keep_files_in(&self, dir: impl Into<std::path::PathBuf>) {
        self.state.lock().unwrap().keep_dir = Some(dir.into());
    }

    pub fn put_file(&self, path: &str, content: &[u8]) {
        let mut s = self.state.lock().unwrap();
        s.files.insert(
            path.to_lowercase(),
            StoredFile {
                path_display: path.into(),
                size: content.len() as u64,
                sha256: hex::encode(Sha256::digest(content)),
                content_hash: dropbox_content_hash(content),
            },
        );
    }

    pub fn files(&self) -> Vec<StoredFile> {
        self.state.lock().unwrap().files.values().cloned().collect()
    }

    pub fn stats(&self) -> Stats {
        self.state.lock().unwrap().stats.clone()
    }

    /// Largest byte count held by any open session.
    pub fn max_session_len(&self) -> u64 {
        self.state
            .lock()
            .unwrap()
            .sessions
            .values()
            .map(|s| s.len)
            .max()
            .unwrap_or(0)
    }

    pub fn open_sessions(&self) -> usize {
        self.state.lock().unwrap().sessions.len()
    }

    pub fn shutdown(self) {
        self.task.abort();
    }
}

fn json_resp(status: StatusCode, v: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn text(status: StatusCode, msg: String) -> Response {
    (status, [("content-type", "text/plain; charset=utf-8")], msg).into_response()
}

/// A 409 endpoint error: `error_summary` is the tag path plus Dropbox's trailing `/...`.
fn err409(summary: &str, error: Value) -> Response {
    json_resp(
        StatusCode::CONFLICT,
        json!({"error_summary": format!("{summary}/..."), "error": error}),
    )
}

fn file_meta(f: &StoredFile, id: u64) -> Value {
    let name = f.path_display.rsplit('/').next().unwrap_or("").to_owned();
    json!({
        ".tag": "file", "name": name, "path_lower": f.path_display.to_lowercase(),
        "path_display": f.path_display, "id": format!("id:emu{id}"), "size": f.size,
        "content_hash": f.content_hash,
        "rev": format!("{id:016x}"), "is_downloadable": true,
        "client_modified": "2026-01-01T00:00:00Z", "server_modified": "2026-01-01T00:00:00Z"
    })
}

fn valid_path(p: &str) -> bool {
    p.starts_with('/') && p.len() > 1 && !p.ends_with('/') && !p.contains("//") && p.len() < 4096
}

/// Dropbox's autorename shape: `a.webm` -> `a (1).webm`.
fn renamed(path: &str, n: u32) -> String {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    format!("{dir}/{stem} ({n}){ext}")
}

fn form_decode(s: &str) -> HashMap<String, String> {
    fn dec(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    let h = u8::from_str_radix(
                        std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"),
                        16,
                    )
                    .unwrap_or(b'?');
                    out.push(h);
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    s.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (dec(k), dec(v)))
        .collect()
}

async fn handle(
    st: Arc<Mutex<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = uri.path().to_owned();
    if method == Method::GET && path == "/_emulator/files" {
        // Inspection for a test or benchmark running the emulator in another process.
        let files: Vec<Value> = st
            .lock()
            .unwrap()
            .files
            .values()
            .map(|f| json!({"path_display": f.path_display, "size": f.size, "sha256": f.sha256, "content_hash": f.content_hash}))
            .collect();
        return json_resp(StatusCode::OK, Value::Array(files));
    }
    if method == Method::GET && path == "/oauth2/authorize" {
        return authorize(st, uri.query().unwrap_or(""));
    }
    if method == Method::OPTIONS && path == "/oauth2/token" {
        // CORS preflight: the browser exchanges the code itself (PKCE, no client secret).
        return (
            StatusCode::NO_CONTENT,
            [
                ("access-control-allow-origin", "*"),
                ("access-control-allow-methods", "POST"),
                ("access-control-allow-headers", "content-type"),
            ],
        )
            .into_response();
    }
    if method == Method::POST && path == "/_emulator/apps" {
        // Registration for a test driving the emulator in another process (`add_app`).
        let bytes = axum::body::to_bytes(body, 64 * 1024)
            .await
            .unwrap_or_default();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let (Some(key), Some(uris)) = (v["app_key"].as_str(), v["redirect_uris"].as_array()) else {
            return text(StatusCode::BAD_REQUEST, "app_key, redirect_uris".into());
        };
        let uris = uris.iter().filter_map(|u| u.as_str().map(str::to_owned));
        st.lock().unwrap().apps.insert(key.into(), uris.collect());
        return json_resp(StatusCode::OK, json!({}));
    }
    if method == Method::POST && path == "/_emulator/quota" {
        // `set_quota` for a test driving the emulator in another process: `{"bytes": N}` (the
        // account holds at most N bytes: a full Dropbox), `{"bytes": null}` for no limit.
        let bytes = axum::body::to_bytes(body, 64 * 1024)
            .await
            .unwrap_or_default();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let quota = match &v["bytes"] {
            Value::Null => None,
            n => match n.as_u64() {
                Some(n) => Some(n),
                None => return text(StatusCode::BAD_REQUEST, "bytes: a number or null".into()),
            },
        };
        st.lock().unwrap().quota = quota;
        return json_resp(StatusCode::OK, json!({}));
    }
    if method != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "POST only".into());
    }
    match path.as_str() {
        "/oauth2/token" => {
            let mut r = oauth(st, body).await;
            r.headers_mut().insert(
                "access-control-allow-origin",
                axum::http::HeaderValue::from_static("*"),
            );
            r
        }
        "/2/files/get_metadata" => rpc_get_metadata(st, &headers, body).await,
        "/2/files/upload_session/start"
        | "/2/files/upload_session/append_v2"
        | "/2/files/upload_session/finish"
        | "/2/files/upload" => content(st, &path, &headers, body).await,
        _ => text(
            StatusCode::NOT_FOUND,
            format!("Unknown API function: {path:?}"),
        ),
    }
}

/// A PKCE code verifier or challenge: 43-128 characters of `[A-Za-z0-9-._~]` (RFC 7636).
fn pkce_chars(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~'))
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /oauth2/authorize`: the user "approves" at once. Problems with the client or the
/// redirect URI get an error page (no redirect to an unverified URI), as Dropbox does; others
/// redirect back with `error`.
fn authorize(st: Arc<Mutex<State>>, query: &str) -> Response {
    let q = form_decode(query);
    let mut s = st.lock().unwrap();
    let bad = |s: &mut State, msg: &str| {
        s.stats.oauth_errors += 1;
        text(StatusCode::BAD_REQUEST, format!("Error (400): {msg}"))
    };
    let Some(client_id) = q.get("client_id").cloned() else {
        return bad(&mut s, "missing client_id");
    };
    let Some(uris) = s.apps.get(&client_id).cloned() else {
        return bad(&mut s, "invalid client_id");
    };
    let redirect_uri = q.get("redirect_uri").cloned();
    let Some(redirect) = redirect_uri.clone() else {
        return bad(&mut s, "this flow needs a redirect_uri");
    };
    if !uris.contains(&redirect) {
        return bad(
            &mut s,
            "invalid redirect_uri: it must match a registered URI exactly",
        );
    }
    let back = |s: &mut State, params: String| {
        let sep = if redirect.contains('?') { '&' } else { '?' };
        let state = q
            .get("state")
            .map(|st| format!("&state={}", url_encode(st)))
            .unwrap_or_default();
        if params.starts_with("error") {
            s.stats.oauth_errors += 1;
        }
        (
            StatusCode::FOUND,
            [("location", format!("{redirect}{sep}{params}{state}"))],
        )
            .into_response()
    };
    if q.get("response_type").map(String::as_str) != Some("code") {
        return back(&mut s, "error=unsupported_response_type".into());
    }
    let method = q
        .get("code_challenge_method")
        .cloned()
        .unwrap_or_else(|| "plain".into());
    let challenge = q.get("code_challenge").cloned().unwrap_or_default();
    if !(method == "S256" || method == "plain") || !pkce_chars(&challenge) {
        return back(
            &mut s,
            "error=invalid_request&error_description=bad+code_challenge".into(),
        );
    }
    let offline = match q.get("token_access_type").map(String::as_str) {
        None | Some("online") | Some("legacy") => false,
        Some("offline") => true,
        Some(_) => {
            return back(
                &mut s,
                "error=invalid_request&error_description=bad+token_access_type".into(),
            );
        }
    };
    s.next_id += 1;
    let code = format!("emu-code-{}-{:016x}", s.next_id, rand_u64());
    s.codes.insert(
        code.clone(),
        Grant {
            client_id,
            redirect_uri,
            challenge,
            method,
            offline,
            issued: std::time::Instant::now(),
        },
    );
    s.stats.authorizations += 1;
    back(&mut s, format!("code={}", url_encode(&code)))
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::UNIX_EPOCH
            .elapsed()
            .unwrap_or_default()
            .as_nanos() as u64,
    );
    h.finish()
}

fn oauth_error(s: &mut State, error: &str, description: &str) -> Response {
    s.stats.oauth_errors += 1;
    json_resp(
        StatusCode::BAD_REQUEST,
        json!({"error": error, "error_description": description}),
    )
}

/// `grant_type=authorization_code`: the code once, by the app it was issued to, with the same
/// redirect URI, and the verifier whose S256 hash (or plain value) is the challenge.
fn exchange_code(s: &mut State, form: &HashMap<String, String>) -> Response {
    use base64::Engine;
    let Some(code) = form.get("code") else {
        return oauth_error(s, "invalid_request", "No auth code provided");
    };
    // A code is single use: taken out whatever happens next.
    let Some(grant) = s.codes.remove(code) else {
        return oauth_error(s, "invalid_grant", "code doesn't exist or has expired");
    };
    if grant.issued.elapsed() > Duration::from_secs(600) {
        return oauth_error(s, "invalid_grant", "code doesn't exist or has expired");
    }
    if form.get("client_id") != Some(&grant.client_id) {
        return oauth_error(s, "invalid_client", "client_id does not match the code");
    }
    if form.contains_key("client_secret") {
        return oauth_error(s, "invalid_request", "PKCE: no client_secret");
    }
    if form.get("redirect_uri") != grant.redirect_uri.as_ref() {
        return oauth_error(s, "invalid_grant", "redirect_uri mismatch");
    }
    let Some(verifier) = form.get("code_verifier").filter(|v| pkce_chars(v)) else {
        return oauth_error(s, "invalid_grant", "invalid code verifier");
    };
    let expected = if grant.method == "S256" {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier))
    } else {
        verifier.clone()
    };
    if expected != grant.challenge {
        return oauth_error(s, "invalid_grant", "invalid code verifier");
    }
    s.next_id += 1;
    let access = format!("sl.emu-access-{}-{:016x}", s.next_id, rand_u64());
    s.access.insert(access.clone(), false);
    s.stats.code_exchanges += 1;
    let mut body = json!({
        "access_token": access, "token_type": "bearer", "expires_in": 14400,
        "scope": "files.content.write", "uid": "12345", "account_id": "dbid:emu-account"
    });
    if grant.offline {
        let refresh = format!("emu-refresh-{}-{:016x}", s.next_id, rand_u64());
        s.refresh.insert(refresh.clone(), grant.client_id.clone());
        body["refresh_token"] = json!(refresh);
    }
    json_resp(StatusCode::OK, body)
}

async fn oauth(st: Arc<Mutex<State>>, body: Body) -> Response {
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let form = form_decode(&String::from_utf8_lossy(&bytes));
    let mut s = st.lock().unwrap();
    if form.get("grant_type").map(String::as_str) == Some("authorization_code") {
        return exchange_code(&mut s, &form);
    }
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return json_resp(
            StatusCode::BAD_REQUEST,
            json!({"error": "unsupported_grant_type"}),
        );
    }
    s.stats.token_requests += 1;
    let Some(app_key) = form
        .get("refresh_token")
        .and_then(|r| s.refresh.get(r))
        .cloned()
    else {
        return json_resp(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_grant", "error_description": "refresh token is invalid or revoked"}),
        );
    };
    if form.get("client_id") != Some(&app_key) {
        return json_resp(StatusCode::BAD_REQUEST, json!({"error": "invalid_client"}));
    }
    s.next_id += 1;
    let token = format!("sl.emu-refreshed-{}", s.next_id);
    s.access.insert(token.clone(), false);
    if let Some(r) = form.get("refresh_token") {
        s.grant_of.insert(token.clone(), r.clone());
    }
    s.stats.refreshes += 1;
    json_resp(
        StatusCode::OK,
        json!({"access_token": token, "token_type": "bearer", "expires_in": 14400}),
    )
}

/// Bearer check shared by all calls; `Err` is the response to send.
fn check_auth(s: &mut State, headers: &HeaderMap) -> Result<(), Response> {
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        s.stats.bad_requests += 1;
        return Err(text(
            StatusCode::BAD_REQUEST,
            "Error in call to API function: missing or malformed Authorization header".into(),
        ));
    };
    match s.access.get(token) {
        None => Err(json_resp(
            StatusCode::UNAUTHORIZED,
            json!({"error_summary": "invalid_access_token/...", "error": {".tag": "invalid_access_token"}}),
        )),
        Some(true) => {
            s.stats.expired_rejections += 1;
            Err(json_resp(
                StatusCode::UNAUTHORIZED,
                json!({"error_summary": "expired_access_token/...", "error": {".tag": "expired_access_token"}}),
            ))
        }
        Some(false) => Ok(()),
    }
}

async fn rpc_get_metadata(st: Arc<Mutex<State>>, headers: &HeaderMap, body: Body) -> Response {
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let mut s = st.lock().unwrap();
    if let Err(r) = check_auth(&mut s, headers) {
        return r;
    }
    if !headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
    {
        s.stats.bad_requests += 1;
        return text(StatusCode::BAD_REQUEST, "Error in call to API function \"files/get_metadata\": Bad HTTP \"Content-Type\" header".into());
    }
    let Ok(arg) = serde_json::from_slice::<Value>(&bytes) else {
        s.stats.bad_requests += 1;
        return text(StatusCode::BAD_REQUEST, "Error in call to API function \"files/get_metadata\": request body: could not decode input as JSON".into());
    };
    s.stats.metadata_lookups += 1;
    let path = arg.get("path").and_then(Value::as_str).unwrap_or("");
    match s.files.get(&path.to_lowercase()) {
        Some(f) => json_resp(StatusCode::OK, file_meta(f, 0)),
        None => err409(
            "path/not_found",
            json!({".tag": "path", "path": {".tag": "not_found"}}),
        ),
    }
}

async fn content(st: Arc<Mutex<State>>, path: &str, headers: &HeaderMap, body: Body) -> Response {
    let fname = path.trim_start_matches("/2/");
    let bad = |st: &Arc<Mutex<State>>, msg: String| {
        st.lock().unwrap().stats.bad_requests += 1;
        text(
            StatusCode::BAD_REQUEST,
            format!("Error in call to API function \"{fname}\": {msg}"),
        )
    };
    // Header-safe argument: ASCII only (non-ASCII must be escaped as \uXXXX).
    let Some(raw_arg) = headers.get("dropbox-api-arg") else {
        return bad(
            &st,
            "Must provide HTTP header \"Dropbox-API-Arg\" or URL parameter \"arg\".".into(),
        );
    };
    if !raw_arg.as_bytes().iter().all(|b| (0x20..0x7f).contains(b)) {
        return bad(
            &st,
            "HTTP header \"Dropbox-API-Arg\": non-ASCII characters must be escaped (\\uXXXX)"
                .into(),
        );
    }
    let Ok(arg) = serde_json::from_slice::<Value>(raw_arg.as_bytes()) else {
        return bad(
            &st,
            "HTTP header \"Dropbox-API-Arg\": could not decode input as JSON".into(),
        );
    };
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/octet-stream")
    {
        return bad(
            &st,
            "Bad HTTP \"Content-Type\" header. Expecting \"application/octet-stream\".".into(),
        );
    }
    if headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > MAX_REQUEST)
    {
        return err409("payload_too_large", json!({".tag": "payload_too_large"}));
    }
    // Read the body first (at most one request, <= 150 MiB), so faults still get a clean response.
    let mut hasher = Sha256::new();
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let mut data: Vec<u8> = Vec::with_capacity(declared.min(MAX_REQUEST) as usize);
    let mut len: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return text(StatusCode::BAD_REQUEST, "body read failed".into());
        };
        len += chunk.len() as u64;
        if len > MAX_REQUEST {
            return err409("payload_too_large", json!({".tag": "payload_too_large"}));
        }
        hasher.update(&chunk);
        data.extend_from_slice(&chunk);
    }
    let delay;
    let resp = {
        let mut s = st.lock().unwrap();
        s.stats.bytes_received += len;
        if let Some(n) = s.expire_after.as_mut() {
            if *n == 0 {
                s.expire_after = None;
                s.access.values_mut().for_each(|e| *e = true);
            } else {
                *n -= 1;
            }
        }
        if let Err(r) = check_auth(&mut s, headers) {
            return r;
        }
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if let Some(code) = s.failing.get(token).copied() {
            s.stats.server_errors += 1;
            return text(
                StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                "Service Unavailable".into(),
            );
        }
        if fname.ends_with("append_v2")
            && let Some(code) = s.fail_append.take()
        {
            s.stats.server_errors += 1;
            return text(
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "Internal Server Error".into(),
            );
        }
        match s.faults.pop_front() {
            Some(Fault::RateLimit { retry_after }) => {
                s.stats.rate_limited += 1;
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("content-type", "application/json".to_owned()), ("retry-after", retry_after.to_string())],
                    json!({"error_summary": "too_many_requests/...", "error": {"reason": {".tag": "too_many_requests"}, "retry_after": retry_after}}).to_string(),
                )
                    .into_response();
            }
            Some(Fault::ServerError(code)) => {
                s.stats.server_errors += 1;
                return text(
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    "Internal Server Error".into(),
                );
            }
            Some(Fault::ExpireToken) => {
                s.access.values_mut().for_each(|e| *e = true);
                s.stats.expired_rejections += 1;
                return json_resp(
                    StatusCode::UNAUTHORIZED,
                    json!({"error_summary": "expired_access_token/...", "error": {".tag": "expired_access_token"}}),
                );
            }
            None => {}
        }
        delay = if fname.ends_with("append_v2") {
            s.append_delay
        } else {
            Duration::ZERO
        };
        let resp = match fname {
            "files/upload_session/start" => start(&mut s, &arg, len, hasher, data),
            "files/upload_session/append_v2" => append(&mut s, &arg, len, hasher, data),
            "files/upload_session/finish" => finish(&mut s, &arg, len, hasher, data),
            _ => upload(&mut s, &arg, len, hasher, data),
        };
        if fname.ends_with("finish") && resp.status().is_success() && s.lose_finish_answer {
            s.lose_finish_answer = false;
            // Committed; the connection breaks before the answer arrives.
            return lost_answer();
        }
        resp
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    resp
}

/// An answer that never arrives whole: the status line goes out, then the connection breaks.
fn lost_answer() -> Response {
    let broken = futures_util::stream::once(async {
        Err::<axum::body::Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from_stream(broken))
        .unwrap()
}

fn start(s: &mut State, arg: &Value, len: u64, hasher: Sha256, data: Vec<u8>) -> Response {
    s.stats.starts += 1;
    let concurrent =
        arg.pointer("/session_type/.tag").and_then(Value::as_str) == Some("concurrent");
    if concurrent && len > 0 {
        return err409(
            "concurrent_session_data_not_allowed",
            json!({".tag": "concurrent_session_data_not_allowed"}),
        );
    }
    s.next_id += 1;
    let id = format!("emu-session-{}", s.next_id);
    let closed = arg.get("close").and_then(Value::as_bool).unwrap_or(false);
    let mut content = ContentHasher::default();
    content.update(&data);
    let kept = s
        .keep_dir
        .as_ref()
        .filter(|_| !concurrent)
        .map(|_| data.clone());
    let mut pieces = BTreeMap::new();
    if concurrent && !data.is_empty() {
        pieces.insert(0, data);
    }
    s.sessions.insert(
        id.clone(),
        Session {
            len,
            hasher,
            content,
            closed,
            concurrent,
            pieces,
            kept,
        },
    );
    json_resp(StatusCode::OK, json!({"session_id": id}))
}

/// Session lookup and offset rules shared by append and finish. `Err` holds the lookup error.
fn lookup(s: &mut State, arg: &Value, len: u64, for_finish: bool) -> Result<String, Value> {
    let id = arg
        .pointer("/cursor/session_id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let offset = arg.pointer("/cursor/offset").and_then(Value::as_u64);
    if s.committed.contains(&id) {
        // "You are attempting to append data to an upload session that has already been
        // closed (i.e. committed)": for finish too.
        return Err(json!({".tag": "closed"}));
    }
    let Some(sess) = s.sessions.get(&id) else {
        return Err(json!({".tag": "not_found"}));
    };
    let Some(offset) = offset else {
        return Err(json!({".tag": "other"}));
    };
    if sess.closed && !(for_finish && len == 0) {
        return Err(json!({".tag": "closed"}));
    }
    if sess.concurrent {
        if !offset.is_multiple_of(CONCURRENT_ALIGN) {
            return Err(json!({".tag": "concurrent_session_invalid_offset"}));
        }
        let closing = arg.get("close").and_then(Value::as_bool).unwrap_or(false) || for_finish;
        if !len.is_multiple_of(CONCURRENT_ALIGN) && !closing {
            return Err(json!({".tag": "concurrent_session_invalid_data_size"}));
        }
        if for_finish && !sess.closed {
            return Err(json!({".tag": "not_closed"}));
        }
    } else if offset != sess.len {
        let correct = sess.len;
        s.stats.incorrect_offsets += 1;
        return Err(json!({".tag": "incorrect_offset", "correct_offset": correct}));
    }
    Ok(id)
}

fn append(s: &mut State, arg: &Value, len: u64, hasher: Sha256, data: Vec<u8>) -> Response {
    s.stats.appends += 1;
    let id = match lookup(s, arg, len, false) {
        Ok(id) => id,
        Err(e) => {
            let tag = e[".tag"].as_str().unwrap_or("other").to_owned();
            return err409(&tag, e);
        }
    };
    let sess = s.sessions.get_mut(&id).unwrap();
    if sess.concurrent {
        let off = arg
            .pointer("/cursor/offset")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        sess.pieces.insert(off, data);
        sess.len = sess.len.max(off + len);
    } else {
        let _ = hasher;
        sess.hasher.update(&data);
        sess.content.update(&data);
        if let Some(k) = &mut sess.kept {
            k.extend_from_slice(&data);
        }
        sess.len += len;
    }
    if arg.get("close").and_then(Value::as_bool).unwrap_or(false) {
        sess.closed = true;
    }
    json_resp(StatusCode::OK, Value::Null)
}

fn commit(
    s: &mut State,
    commit: &Value,
    size: u64,
    sha256: String,
    content_hash: String,
) -> Response {
    let path = commit.get("path").and_then(Value::as_str).unwrap_or("");
    if !valid_path(path) {
        return err409(
            "path/malformed_path",
            json!({".tag": "path", "path": {".tag": "malformed_path"}}),
        );
    }
    let mode = commit
        .pointer("/mode/.tag")
        .or_else(|| commit.get("mode"))
        .and_then(Value::as_str)
        .unwrap_or("add");
    let autorename = commit
        .get("autorename")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut final_path = path.to_owned();
    if mode != "overwrite" && s.files.contains_key(&final_path.to_lowercase()) {
        if !autorename {
            return err409(
                "path/conflict/file",
                json!({".tag": "path", "path": {".tag": "conflict", "conflict": {".tag": "file"}}}),
            );
        }
        let mut n = 1;
        while s.files.contains_key(&renamed(path, n).to_lowercase()) {
            n += 1;
        }
        final_path = renamed(path, n);
    }
    let used: u64 = s.files.values().map(|f| f.size).sum();
    if s.quota.is_some_and(|q| used + size > q) {
        s.stats.insufficient_space += 1;
        return err409(
            "path/insufficient_space",
            json!({".tag": "path", "path": {".tag": "insufficient_space"}}),
        );
    }
    let (sha256, content_hash) = if std::mem::take(&mut s.corrupt_commit) {
        let other = dropbox_content_hash(b"corrupted on write");
        (other.clone(), other)
    } else {
        (sha256, content_hash)
    };
    let f = StoredFile {
        path_display: final_path.clone(),
        size,
        sha256,
        content_hash,
    };
    s.files.insert(final_path.to_lowercase(), f.clone());
    s.last_committed = final_path;
    s.next_id += 1;
    json_resp(StatusCode::OK, file_meta(&f, s.next_id))
}

fn finish(s: &mut State, arg: &Value, len: u64, _hasher: Sha256, _data: Vec<u8>) -> Response {
    s.stats.finishes += 1;
    let id = match lookup(s, arg, len, true) {
        Ok(id) => id,
        Err(e) => {
            let tag = e[".tag"].as_str().unwrap_or("other").to_owned();
            if tag == "closed" {
                s.stats.finish_closed += 1;
            }
            return err409(
                &format!("lookup_failed/{tag}"),
                json!({".tag": "lookup_failed", "lookup_failed": e}),
            );
        }
    };
    if len > 0 {
        // Keep the emulator simple: the uploader never sends data with finish.
        return err409(
            "lookup_failed/other",
            json!({".tag": "lookup_failed", "lookup_failed": {".tag": "other"}}),
        );
    }
    let sess = &s.sessions[&id];
    let (size, sha, content_hash) = if sess.concurrent {
        let mut h = Sha256::new();
        let mut c = ContentHasher::default();
        let mut expect = 0;
        for (off, piece) in &sess.pieces {
            if *off != expect {
                return err409(
                    "lookup_failed/incorrect_offset",
                    json!({".tag": "lookup_failed", "lookup_failed": {".tag": "incorrect_offset", "correct_offset": expect}}),
                );
            }
            h.update(piece);
            c.update(piece);
            expect += piece.len() as u64;
        }
        (expect, hex::encode(h.finalize()), c.finish())
    } else {
        (
            sess.len,
            hex::encode(sess.hasher.clone().finalize()),
            sess.content.clone().finish(),
        )
    };
    let c = arg.get("commit").cloned().unwrap_or(Value::Null);
    let resp = commit(s, &c, size, sha, content_hash);
    // Only a commit ends the session; after a path error the caller may finish it again.
    if resp.status().is_success() {
        let sess = s.sessions.remove(&id);
        s.committed.insert(id);
        if let (Some(dir), Some(bytes)) = (&s.keep_dir, sess.and_then(|x| x.kept)) {
            let _ = std::fs::write(dir.join(s.last_committed.replace('/', "_")), bytes);
        }
    }
    resp
}

fn upload(s: &mut State, arg: &Value, len: u64, hasher: Sha256, data: Vec<u8>) -> Response {
    commit(
        s,
        arg,
        len,
        hex::encode(hasher.finalize()),
        dropbox_content_hash(&data),
    )
}
