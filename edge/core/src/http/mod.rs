//! The edge's HTTP surface as data: which path is which endpoint ([`routes`]), what every endpoint
//! answers ([`Reply`]: status, headers, body), the headers on every answer, and the rules of the
//! room socket ([`socket`]), the names API ([`names_api`]), the media nodes' endpoints
//! ([`node_api`]); `GET /api/config` is shaped by `edgemeet_config` (`RecordingSettings::public_json`)
//! from the same variables on both hosts. A host only carries these out: it turns
//! a request into the arguments here and a [`Reply`] into its own response type, so the native
//! server and the Worker answer every request the same way.

pub mod names_api;
pub mod node_api;
pub mod routes;
pub mod socket;

use std::borrow::Cow;

use serde_json::{Value, json};

pub use routes::{Route, route};

/// The headers on every answer of the edge (the page's Content-Security-Policy comes with them,
/// see [`crate::web::content_security_policy`]): no referrer (room names are in URLs), no
/// sniffing, no framing, and the page's powerful features for the page only.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    (
        "permissions-policy",
        "camera=(self), microphone=(self), display-capture=(self), interest-cohort=()",
    ),
];

/// The header that carries the Content-Security-Policy. An answer that brings its own (the
/// recording-status page's is stricter) keeps it; every other gets the page's.
pub const CSP_HEADER: &str = "content-security-policy";

pub const JSON: &str = "application/json";
pub const TEXT: &str = "text/plain; charset=utf-8";
pub const HTML: &str = "text/html; charset=utf-8";

/// One answer of the edge, before a host turns it into its own response type.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    /// Lowercase names. The security headers are not here: hosts add them to every answer.
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
    pub body: Cow<'static, [u8]>,
}

impl Reply {
    pub fn new(
        status: u16,
        content_type: &'static str,
        body: impl Into<Cow<'static, [u8]>>,
    ) -> Self {
        Self {
            status,
            headers: vec![("content-type", Cow::Borrowed(content_type))],
            body: body.into(),
        }
    }

    pub fn json(status: u16, value: &Value) -> Self {
        Self::new(status, JSON, value.to_string().into_bytes())
    }

    /// The error body of every API endpoint: `{"error": {"code", "message"}}`.
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        Self::json(
            status,
            &json!({"error": {"code": code, "message": message}}),
        )
    }

    pub fn text(status: u16, text: &'static str) -> Self {
        Self::new(status, TEXT, text.as_bytes())
    }

    pub fn no_content() -> Self {
        Self {
            status: 204,
            headers: Vec::new(),
            body: Cow::Borrowed(b""),
        }
    }

    /// A file of the browser client (the page or an asset): revalidated on every load, so a new
    /// deployment is picked up at once.
    pub fn file(path: &str, body: impl Into<Cow<'static, [u8]>>) -> Self {
        Self::new(200, crate::web::content_type(path), body)
            .with_header("cache-control", "no-cache")
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<Cow<'static, str>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_ref())
    }

    /// The answer to a `HEAD`: the same status and headers, no body.
    pub fn for_method(mut self, method: &str) -> Self {
        if method == "HEAD" {
            self.body = Cow::Borrowed(b"");
        }
        self
    }
}

/// `404` with the JSON error body: unknown paths, missing files.
pub fn not_found() -> Reply {
    Reply::error(404, "not_found", "no such file")
}

/// A known path asked with another method: `405`, no body, the methods it takes in `allow`.
pub fn method_not_allowed(allow: &'static str) -> Reply {
    Reply {
        status: 405,
        headers: vec![("allow", Cow::Borrowed(allow))],
        body: Cow::Borrowed(b""),
    }
}

/// A body beyond what a host reads at all (every endpoint's own limit is far below).
pub fn body_too_large() -> Reply {
    Reply::error(413, "too_large", "the request body is too large")
}

/// `/healthz` and `/readyz`.
pub fn health() -> Reply {
    Reply::text(200, "ok")
}

/// `/metrics` without the configured bearer token (on a host that has metrics).
pub fn metrics_unauthorized() -> Reply {
    Reply::error(
        401,
        "unauthorized",
        "metrics need the configured bearer token",
    )
    .with_header("www-authenticate", "Bearer")
}

/// The value of `Authorization: Bearer <secret>` matches `secret`, compared in constant time.
/// No secret configured (or an empty one) refuses every caller.
pub fn bearer_ok(authorization: Option<&str>, secret: Option<&str>) -> bool {
    let Some(given) = authorization.and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        return false;
    };
    crate::crypto::constant_time_eq(given.as_bytes(), secret.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_one_shape() {
        let r = Reply::error(413, "too_large", "at most 64 KiB");
        assert_eq!(r.status, 413);
        assert_eq!(r.header("content-type"), Some(JSON));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            json!({"error": {"code": "too_large", "message": "at most 64 KiB"}})
        );
        assert_eq!(not_found().status, 404);
        let m = method_not_allowed("POST");
        assert_eq!((m.status, m.header("allow")), (405, Some("POST")));
        assert!(m.body.is_empty());
    }

    #[test]
    fn head_answers_keep_headers_and_drop_the_body() {
        let r = Reply::file("/index.html", &b"<!doctype html>"[..]).for_method("HEAD");
        assert!(r.body.is_empty());
        assert_eq!(r.header("content-type"), Some(HTML));
        assert_eq!(r.header("cache-control"), Some("no-cache"));
        assert_eq!(health().for_method("GET").body.as_ref(), b"ok");
    }

    #[test]
    fn bearer_tokens() {
        assert!(bearer_ok(Some("Bearer s3"), Some("s3")));
        assert!(!bearer_ok(Some("Bearer s4"), Some("s3")));
        assert!(!bearer_ok(Some("Bearer s"), Some("s3")));
        assert!(!bearer_ok(Some("s3"), Some("s3")));
        assert!(!bearer_ok(Some("bearer s3"), Some("s3")));
        assert!(!bearer_ok(None, Some("s3")));
        assert!(!bearer_ok(Some("Bearer "), Some("")));
        assert!(!bearer_ok(Some("Bearer x"), None));
        let r = metrics_unauthorized();
        assert_eq!(
            (r.status, r.header("www-authenticate")),
            (401, Some("Bearer"))
        );
    }
}
