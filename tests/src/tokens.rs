//! Invite tokens for the fixture tenants (`tests/fixtures/edge.toml`).

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

pub const ACME_HS256: &str = "acme-hs256-secret-for-tests-0123456789abcdef";
pub const HOST_HS256: &str = "host-hs256-secret-for-tests-0123456789abcdef";

pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims of a valid invite for `tenant`/`room`, to be altered by negative tests.
pub fn claims(tenant: &str, room: &str, moderator: bool) -> Value {
    json!({
        "iss": "acme-backend", "aud": "edgemeet", "sub": tenant, "room": room,
        "exp": now_s() + 600, "nbf": now_s() - 10,
        "context": {"user": {"id": "u-1", "name": "Token User", "email": "user@example.org", "moderator": moderator},
                    "features": {"recording": true}}
    })
}

pub fn hs256(claims: &Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn private_pem(name: &str) -> Vec<u8> {
    std::fs::read(crate::repo_root().join("tests/fixtures").join(name)).expect("fixture key")
}

pub fn rs256(claims: &Value, kid: Option<&str>) -> String {
    rs256_with(claims, kid, "rs256-private.pem")
}

pub fn rs256_with(claims: &Value, kid: Option<&str>, key_file: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_string);
    encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(&private_pem(key_file)).unwrap(),
    )
    .unwrap()
}

/// A valid moderator token for `acme`.
pub fn acme_moderator(room: &str) -> String {
    hs256(&claims("acme", room, true), ACME_HS256)
}

/// A valid host token for the jwt-host tenant.
pub fn host_moderator(room: &str) -> String {
    hs256(&claims("host", room, true), HOST_HS256)
}

/// base64url without padding.
pub fn b64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
