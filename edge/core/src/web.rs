//! What both hosts answer for the browser client's files and headers: one table, so the native
//! server and the Worker send the same headers for the same file, the same Content-Security-Policy
//! and the same answer to a room socket's `Origin`.

use crate::EdgeConfig;

/// Content type of a file under `edge/web/`, by its extension.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("html") => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The page's Content-Security-Policy. Images come from the edge itself and from the avatar hosts
/// the operator allows, nowhere else (`EdgeConfig::avatar_hosts`).
pub fn content_security_policy(config: &EdgeConfig) -> String {
    let mut img = String::from("'self' data: blob:");
    for host in &config.avatar_hosts {
        img.push_str(" https://");
        img.push_str(host);
    }
    format!(
        "default-src 'self'; connect-src 'self' ws: wss: http: https:; img-src {img}; media-src 'self' blob:; style-src 'self'; script-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'"
    )
}

/// Whether `url` can be the base of recorders' delivery-status links: a setting's check, so it
/// lives with the settings (`edgemeet_config::recording`).
pub use edgemeet_config::recording::status_url_ok;

/// `host[:port]` of an origin (`https://meet.example.org` -> `meet.example.org`), lowercase, with
/// a default port (80, 443) dropped; `None` for anything that is not a plain http(s) origin.
pub fn origin_authority(origin: &str) -> Option<String> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    Some(without_default_port(&rest.to_ascii_lowercase()))
}

fn without_default_port(authority: &str) -> String {
    authority
        .strip_suffix(":443")
        .or_else(|| authority.strip_suffix(":80"))
        .unwrap_or(authority)
        .to_string()
}

/// Whether a room socket from a page of `origin` may open. Browsers always send `Origin` on a
/// WebSocket; a request without one is not from a browser page (another site cannot make a
/// browser leave it out) and passes. Configured origins replace the default, the edge's own
/// (`host`: the request's `Host`).
pub fn origin_allowed(config: &EdgeConfig, origin: Option<&str>, host: Option<&str>) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let Some(authority) = origin_authority(origin) else {
        return false;
    };
    if config.allowed_origins.is_empty() {
        return host.is_some_and(|h| without_default_port(&h.to_ascii_lowercase()) == authority);
    }
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    config.allowed_origins.iter().any(|allowed| {
        let allowed = allowed.trim_end_matches('/').to_ascii_lowercase();
        allowed == origin
            || (origin_authority(&allowed).as_deref() == Some(authority.as_str())
                && allowed.starts_with("https://") == origin.starts_with("https://"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_default_to_the_edges_own() {
        let mut c = EdgeConfig::default();
        let own = Some("meet.example.org");
        assert!(origin_allowed(&c, None, own), "no Origin: not a page");
        assert!(origin_allowed(&c, Some("https://meet.example.org"), own));
        assert!(origin_allowed(
            &c,
            Some("http://127.0.0.1:8080"),
            Some("127.0.0.1:8080")
        ));
        assert!(origin_allowed(
            &c,
            Some("https://Meet.Example.org"),
            Some("meet.example.org:443")
        ));
        assert!(!origin_allowed(&c, Some("https://evil.example"), own));
        assert!(!origin_allowed(&c, Some("null"), own));
        assert!(!origin_allowed(
            &c,
            Some("https://meet.example.org.evil.example"),
            own
        ));
        c.allowed_origins = vec!["https://app.example.org".into()];
        assert!(origin_allowed(&c, Some("https://app.example.org"), own));
        assert!(!origin_allowed(&c, Some("http://app.example.org"), own));
        assert!(!origin_allowed(&c, Some("https://meet.example.org"), own));
    }

    #[test]
    fn csp_allows_images_only_from_avatar_hosts() {
        let mut c = EdgeConfig::default();
        assert!(content_security_policy(&c).contains("img-src 'self' data: blob:;"));
        c.avatar_hosts = vec!["img.example.org".into(), "*.cdn.example".into()];
        assert!(
            content_security_policy(&c).contains(
                "img-src 'self' data: blob: https://img.example.org https://*.cdn.example;"
            )
        );
    }

    #[test]
    fn by_extension() {
        assert_eq!(
            content_type("/assets/app.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("style.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
