//! Time-limited TURN credentials in the TURN REST API scheme (coturn's `use-auth-secret`):
//! username `<expiry unix seconds>:<opaque id>`, password base64(HMAC-SHA1(secret, username)).

use base64::Engine;
use edgemeet_protocol::server::IceServer;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnConfig {
    /// `turn:` / `turns:` URLs of the TURN server(s).
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret`.
    #[serde(skip_serializing)]
    pub secret: String,
    /// How long credentials stay valid.
    #[serde(default = "default_ttl")]
    pub ttl_s: u64,
}

fn default_ttl() -> u64 {
    12 * 3600
}

/// Credentials for `id` (an opaque participant id, never a name) valid until `now_s + ttl`.
pub fn credentials(turn: &TurnConfig, id: &str, now_s: u64) -> IceServer {
    let username = format!("{}:{id}", now_s + turn.ttl_s);
    let mut mac =
        Hmac::<Sha1>::new_from_slice(turn.secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    IceServer {
        urls: turn.urls.clone(),
        username: Some(username),
        credential: Some(credential),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_turn_rest_api_scheme() {
        // Computed independently: printf '1700043200:p1' | openssl dgst -sha1 -hmac secret -binary | base64
        let turn = TurnConfig {
            urls: vec!["turn:127.0.0.1:3478".into()],
            secret: "secret".into(),
            ttl_s: 43_200,
        };
        let c = credentials(&turn, "p1", 1_700_000_000);
        assert_eq!(c.username.as_deref(), Some("1700043200:p1"));
        assert_eq!(c.credential.as_deref(), Some(EXPECTED));
    }

    const EXPECTED: &str = "DzAQsdOWtfXpBlX5TvLtSEDsuDo=";
}
