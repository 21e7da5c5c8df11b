//! The caller's location from proxy headers (Cloudflare's visitor location headers), when trusted.

use axum::http::HeaderMap;
use edgemeet_core::Location;

pub fn from_headers(headers: &HeaderMap, trusted: bool) -> Option<Location> {
    if !trusted {
        return None;
    }
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let loc = Location::from_parts(
        get("cf-ipcontinent"),
        get("cf-ipcountry"),
        get("cf-iplatitude"),
        get("cf-iplongitude"),
    );
    (loc != Location::default()).then_some(loc)
}
