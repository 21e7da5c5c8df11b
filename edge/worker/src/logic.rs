//! Everything the Worker decides without touching the Workers runtime: URL routing, static files,
//! `request.cf` parsing, configuration merging, secret checks. Compiled and unit-tested on the host too.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use crate::core::{ConnId, Location};

/// What a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The meeting page (`/` and `/{room}`): the same bytes for every name.
    Page,
    /// A file of `edge/web/` by its URL path.
    File(&'static str, &'static [u8]),
    NamesRandom,
    NamesCheck,
    /// `WS /api/rooms/{room}` or `/api/rooms/{tenant}/{room}` (raw, still percent-encoded).
    Room {
        tenant: Option<String>,
        room: String,
    },
    Heartbeat,
    NodeEvents,
    NotFound,
    MethodNotAllowed,
}

mod web {
    include!(concat!(env!("OUT_DIR"), "/web_files.rs"));
}

/// The page served for `/` and `/{room}`: `edge/web/index.html`, or a placeholder when the web folder
/// is not there yet (a build without the UI still answers, the same way for every name).
pub fn index_html() -> &'static [u8] {
    file("/index.html").unwrap_or(b"<!doctype html><title>edgemeet</title><p>edgemeet</p>\n")
}

pub fn file(path: &str) -> Option<&'static [u8]> {
    web::FILES.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
}

pub fn file_paths() -> impl Iterator<Item = &'static str> {
    web::FILES.iter().map(|(p, _)| *p)
}

pub fn route(method: &str, path: &str) -> Route {
    let is_get = method == "GET" || method == "HEAD";
    if let Some(rest) = path.strip_prefix("/api/") {
        let parts: Vec<&str> = rest.split('/').collect();
        return match parts.as_slice() {
            ["names", "random"] if is_get => Route::NamesRandom,
            ["names", "check"] if method == "POST" => Route::NamesCheck,
            ["names", "random" | "check"] => Route::MethodNotAllowed,
            ["rooms", room] if is_get && !room.is_empty() => Route::Room {
                tenant: None,
                room: (*room).into(),
            },
            ["rooms", tenant, room] if is_get && !tenant.is_empty() && !room.is_empty() => {
                Route::Room {
                    tenant: Some((*tenant).into()),
                    room: (*room).into(),
                }
            }
            ["rooms", ..] if !is_get => Route::MethodNotAllowed,
            ["nodes", "heartbeat"] if method == "POST" => Route::Heartbeat,
            ["nodes", "events"] if method == "POST" => Route::NodeEvents,
            ["nodes", "heartbeat" | "events"] => Route::MethodNotAllowed,
            _ => Route::NotFound,
        };
    }
    if !is_get {
        return Route::MethodNotAllowed;
    }
    if path == "/" {
        return Route::Page;
    }
    if let Some((p, b)) = web::FILES.iter().find(|(p, _)| *p == path) {
        if *p == "/index.html" {
            return Route::Page;
        }
        return Route::File(p, b);
    }
    // `/{room}`: one segment, any name; the answer never depends on whether the room is in use.
    let seg = &path[1..];
    if !seg.is_empty() && !seg.contains('/') {
        return Route::Page;
    }
    Route::NotFound
}

pub fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "webmanifest" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "wasm" => "application/wasm",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Percent-decode a path segment; `None` when it is not valid UTF-8 once decoded.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A location from `request.cf` (as JSON). Every field is optional and checked: a missing, mistyped or
/// out-of-range value is dropped, never a panic.
pub fn location_from_cf(cf: &Value) -> Option<Location> {
    let code = |key: &str| -> Option<[u8; 2]> {
        let s = cf.get(key)?.as_str()?;
        let b = s.as_bytes();
        (b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic))
            .then(|| [b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()])
    };
    let coord = |key: &str, max: f64| -> Option<f64> {
        let v = cf.get(key)?;
        let x = match v {
            Value::String(s) => s.trim().parse::<f64>().ok()?,
            Value::Number(n) => n.as_f64()?,
            _ => return None,
        };
        (x.is_finite() && x.abs() <= max).then_some(x)
    };
    let continent = code("continent");
    let country = code("country").filter(|c| c != b"XX" && c != b"T1");
    let (lat, lon) = match (coord("latitude", 90.0), coord("longitude", 180.0)) {
        (Some(lat), Some(lon)) => (Some(lat), Some(lon)),
        _ => (None, None),
    };
    if continent.is_none() && country.is_none() && lat.is_none() {
        return None;
    }
    Some(Location {
        continent,
        country,
        lat,
        lon,
    })
}

/// Deep-merge `overlay` into `base` (objects merge key by key, anything else replaces): the secrets
/// (`EDGEMEET_SECRETS`) complete the public configuration (`EDGEMEET_CONFIG`).
pub fn merge_json(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge_json(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

/// Checks `Authorization: Bearer <secret>` in constant time (an empty secret refuses everything).
pub fn bearer_ok(header: Option<&str>, secret: &str) -> bool {
    let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    if secret.is_empty() {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(b"edgemeet-bearer").expect("any key length");
    mac.update(secret.as_bytes());
    let want = mac.finalize().into_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"edgemeet-bearer").expect("any key length");
    mac.update(token.as_bytes());
    mac.verify_slice(&want).is_ok()
}

/// What each hibernatable socket carries across hibernation: its connection id. (The participant's
/// identity lives in the room snapshot, keyed by this id.) Kept below 2^53 so JavaScript holds it exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub conn: ConnId,
}

pub fn conn_id(random: u64) -> ConnId {
    (random & ((1 << 53) - 1)).max(1)
}

/// The `?jwt=` of a socket URL's query, if any.
pub fn query_token(query: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "jwt")
        .and_then(|(_, v)| percent_decode(&v.replace('+', " ")))
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routes() {
        assert_eq!(route("GET", "/"), Route::Page);
        assert_eq!(route("GET", "/SomeRoom"), Route::Page);
        assert_eq!(route("GET", "/a/b"), Route::NotFound);
        assert_eq!(route("GET", "/api/names/random"), Route::NamesRandom);
        assert_eq!(route("POST", "/api/names/check"), Route::NamesCheck);
        assert_eq!(route("GET", "/api/names/check"), Route::MethodNotAllowed);
        assert_eq!(
            route("GET", "/api/rooms/x"),
            Route::Room {
                tenant: None,
                room: "x".into()
            }
        );
        assert_eq!(
            route("GET", "/api/rooms/t/x"),
            Route::Room {
                tenant: Some("t".into()),
                room: "x".into()
            }
        );
        assert_eq!(route("GET", "/api/rooms/"), Route::NotFound);
        assert_eq!(route("POST", "/api/nodes/heartbeat"), Route::Heartbeat);
        assert_eq!(
            route("GET", "/api/nodes/heartbeat"),
            Route::MethodNotAllowed
        );
        assert_eq!(route("POST", "/x"), Route::MethodNotAllowed);
        assert_eq!(route("GET", "/api/other"), Route::NotFound);
    }

    #[test]
    fn cf_locations_never_panic() {
        let l = location_from_cf(
            &json!({"continent":"EU","country":"de","latitude":"52.52","longitude":"13.40"}),
        )
        .unwrap();
        assert_eq!(l.continent, Some(*b"EU"));
        assert_eq!(l.country, Some(*b"DE"));
        assert_eq!(l.lat, Some(52.52));
        let l = location_from_cf(&json!({"continent":"NA","latitude":"north","longitude":"13"}))
            .unwrap();
        assert_eq!((l.lat, l.lon), (None, None));
        let l =
            location_from_cf(&json!({"continent":"NA","latitude":"95","longitude":"13"})).unwrap();
        assert_eq!(l.lat, None);
        assert_eq!(
            location_from_cf(&json!({"continent":7,"country":"XX"})),
            None
        );
        assert_eq!(location_from_cf(&json!(null)), None);
        assert_eq!(location_from_cf(&json!("cf")), None);
        assert_eq!(
            location_from_cf(&json!({"latitude":"NaN","longitude":"inf"})),
            None
        );
        let l = location_from_cf(&json!({"latitude":1.5,"longitude":-2})).unwrap();
        assert_eq!((l.lat, l.lon), (Some(1.5), Some(-2.0)));
    }

    #[test]
    fn merges_secrets_into_config() {
        let mut base = json!({"a":1,"tenants":{"t":{"auth":"jwt"}}});
        merge_json(
            &mut base,
            json!({"tenants":{"t":{"secret":"s"}},"node_secret":"n"}),
        );
        assert_eq!(
            base,
            json!({"a":1,"tenants":{"t":{"auth":"jwt","secret":"s"}},"node_secret":"n"})
        );
    }

    #[test]
    fn bearer() {
        assert!(bearer_ok(Some("Bearer s3"), "s3"));
        assert!(!bearer_ok(Some("Bearer s4"), "s3"));
        assert!(!bearer_ok(Some("s3"), "s3"));
        assert!(!bearer_ok(None, "s3"));
        assert!(!bearer_ok(Some("Bearer "), ""));
    }

    #[test]
    fn queries_and_decoding() {
        assert_eq!(query_token("a=1&jwt=x%2Ey"), Some("x.y".into()));
        assert_eq!(query_token("jwt="), None);
        assert_eq!(percent_decode("a%20b"), Some("a b".into()));
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("%4"), Some("%4".into()));
        assert!(conn_id(u64::MAX) < (1 << 53));
        assert_eq!(conn_id(0), 1);
    }
}
