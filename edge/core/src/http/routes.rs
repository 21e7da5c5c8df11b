//! The route table of the edge: which path, with which method, is which endpoint. Both hosts
//! dispatch on [`route`], so they answer the same paths, methods and `405`s.

/// What a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The meeting page (`/`, `/{room}`, `/{tenant}/{room}`): the same bytes for every name, so
    /// nothing before joining tells an active room from an unused name.
    Page,
    /// A file under `edge/web/assets/`: its path below `assets/`, percent-decoded, with no empty,
    /// `.` or `..` segment (it cannot leave the folder).
    Asset(String),
    NamesRandom,
    NamesCheck,
    /// `GET /api/rooms/{room}` or `/api/rooms/{tenant}/{room}`: the room socket. The segments as
    /// sent (still percent-encoded; [`super::socket::address`] decodes them).
    RoomSocket {
        tenant: Option<String>,
        room: String,
    },
    NodeHeartbeat,
    NodeEvents,
    /// `/healthz`, `/readyz`.
    Health,
    /// `GET /api/config`: what the page needs to offer recording.
    PageConfig,
    /// `/metrics`: only where the host has metrics and the caller its bearer token.
    Metrics,
    /// `404` with the JSON error body.
    NotFound,
    /// A known path with another method: `405`, empty body, these methods in `allow`.
    MethodNotAllowed(&'static str),
}

const GET: &str = "GET,HEAD";
const POST: &str = "POST";

pub fn route(method: &str, path: &str) -> Route {
    let get = method == "GET" || method == "HEAD";
    let post = method == "POST";
    let only = |allow: &'static str, ok: bool, r: Route| {
        if ok {
            r
        } else {
            Route::MethodNotAllowed(allow)
        }
    };
    if let Some(rest) = path.strip_prefix("/api/") {
        let parts: Vec<&str> = rest.split('/').collect();
        return match parts.as_slice() {
            ["names", "random"] => only(GET, get, Route::NamesRandom),
            ["names", "check"] => only(POST, post, Route::NamesCheck),
            ["rooms", room] if !room.is_empty() => only(
                GET,
                get,
                Route::RoomSocket {
                    tenant: None,
                    room: (*room).into(),
                },
            ),
            ["rooms", tenant, room] if !tenant.is_empty() && !room.is_empty() => only(
                GET,
                get,
                Route::RoomSocket {
                    tenant: Some((*tenant).into()),
                    room: (*room).into(),
                },
            ),
            ["nodes", "heartbeat"] => only(POST, post, Route::NodeHeartbeat),
            ["nodes", "events"] => only(POST, post, Route::NodeEvents),
            ["config"] => only(GET, get, Route::PageConfig),
            _ => Route::NotFound,
        };
    }
    if let Some(rest) = path.strip_prefix("/assets/") {
        return match asset_path(rest) {
            Some(file) => only(GET, get, Route::Asset(file)),
            None => Route::NotFound,
        };
    }
    match path {
        "/healthz" | "/readyz" => return only(GET, get, Route::Health),
        "/metrics" => return only(GET, get, Route::Metrics),
        "/" => return only(GET, get, Route::Page),
        _ => {}
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if segments.len() <= 2 && segments.iter().all(|s| !s.is_empty()) {
        return only(GET, get, Route::Page);
    }
    Route::NotFound
}

/// A file's path below `assets/`, if it is one: decoded, and made only of plain names.
fn asset_path(raw: &str) -> Option<String> {
    let path = percent_decode(raw)?;
    let plain = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains('\\');
    path.split('/').all(plain).then_some(path)
}

/// Percent-decode a path segment or query value; `None` when it is not UTF-8 once decoded.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_health() {
        assert_eq!(route("GET", "/"), Route::Page);
        assert_eq!(route("HEAD", "/SomeRoom"), Route::Page);
        assert_eq!(route("GET", "/acme/SomeRoom"), Route::Page);
        assert_eq!(route("GET", "/api"), Route::Page);
        assert_eq!(route("GET", "/a/b/c"), Route::NotFound);
        assert_eq!(route("GET", "/a//"), Route::NotFound);
        assert_eq!(route("GET", "/a/"), Route::NotFound);
        assert_eq!(route("POST", "/x"), Route::MethodNotAllowed(GET));
        assert_eq!(route("DELETE", "/"), Route::MethodNotAllowed(GET));
        assert_eq!(route("GET", "/healthz"), Route::Health);
        assert_eq!(route("HEAD", "/readyz"), Route::Health);
        assert_eq!(route("GET", "/metrics"), Route::Metrics);
        assert_eq!(route("POST", "/metrics"), Route::MethodNotAllowed(GET));
    }

    #[test]
    fn assets_stay_in_their_folder() {
        assert_eq!(
            route("GET", "/assets/app.js"),
            Route::Asset("app.js".into())
        );
        assert_eq!(
            route("GET", "/assets/lib/a%2Ejs"),
            Route::Asset("lib/a.js".into())
        );
        assert_eq!(
            route("POST", "/assets/app.js"),
            Route::MethodNotAllowed(GET)
        );
        for bad in [
            "/assets/",
            "/assets/../Cargo.toml",
            "/assets/%2E%2E/Cargo.toml",
            "/assets/a//b.js",
            "/assets/./a.js",
            "/assets/a\\b.js",
            "/assets/%ff.js",
        ] {
            assert_eq!(route("GET", bad), Route::NotFound, "{bad}");
        }
    }

    #[test]
    fn the_api() {
        assert_eq!(route("GET", "/api/names/random"), Route::NamesRandom);
        assert_eq!(route("POST", "/api/names/check"), Route::NamesCheck);
        assert_eq!(
            route("GET", "/api/names/check"),
            Route::MethodNotAllowed(POST)
        );
        assert_eq!(
            route("GET", "/api/rooms/x"),
            Route::RoomSocket {
                tenant: None,
                room: "x".into()
            }
        );
        assert_eq!(
            route("GET", "/api/rooms/t/x%20y"),
            Route::RoomSocket {
                tenant: Some("t".into()),
                room: "x%20y".into()
            }
        );
        assert_eq!(route("GET", "/api/rooms"), Route::NotFound);
        assert_eq!(route("GET", "/api/rooms/"), Route::NotFound);
        assert_eq!(route("GET", "/api/rooms/a/b/c"), Route::NotFound);
        assert_eq!(route("POST", "/api/nodes/heartbeat"), Route::NodeHeartbeat);
        assert_eq!(route("POST", "/api/nodes/events"), Route::NodeEvents);
        assert_eq!(
            route("GET", "/api/nodes/heartbeat"),
            Route::MethodNotAllowed(POST)
        );
        assert_eq!(route("GET", "/api/config"), Route::PageConfig);
        assert_eq!(route("POST", "/api/config"), Route::MethodNotAllowed(GET));
        assert_eq!(route("GET", "/api/other"), Route::NotFound);
        assert_eq!(route("POST", "/api/other/x/y"), Route::NotFound);
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("%4").as_deref(), Some("%4"));
        assert_eq!(percent_decode("%zz").as_deref(), Some("%zz"));
        assert_eq!(percent_decode("100%").as_deref(), Some("100%"));
    }
}
