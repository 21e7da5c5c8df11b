#![no_main]
//! Invite tokens (Jitsi-format JWTs) as `verify_invite` reads them on a join: raw strings from a
//! socket URL or a join message, and well-signed tokens whose header and claims are the
//! fuzzer's (what a tenant's own token issuer could write), so the claim checks are reached too,
//! and rooms from the socket URL through `normalize_room`, as the edge routes them.

use base64::Engine;
use edgemeet_core::address::normalize_room;
use edgemeet_core::auth::verify_invite;
use edgemeet_core::config::{Algorithm, AuthMode, TenantConfig};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-tenant-secret-0123456789abcdef";
/// The host's clock (the core gets it from the host, never from a caller).
const NOW_S: u64 = 1_700_000_000;
/// An RSA public key (2048 bits), so RS256 tokens reach the signature check.
const RSA_PUBLIC: &str = include_str!("../keys/rsa_public.pem");

/// The first byte picks what the rest is, so seeds are plain files (fuzz/seeds/invite_token).
fn split(data: &[u8]) -> Option<(u8, &str)> {
    let (&mode, rest) = data.split_first()?;
    Some((mode % 4, std::str::from_utf8(rest).ok()?))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn sign(header: &str, claims: &str) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = split(data) else {
        return;
    };
    let tenant = TenantConfig {
        auth: AuthMode::Jwt,
        algorithms: vec![Algorithm::HS256, Algorithm::RS256],
        issuers: vec!["fuzz".into()],
        hs256_secret: Some(SECRET.into()),
        rs256_public_keys: [("k1".to_string(), RSA_PUBLIC.to_string())].into(),
        ..Default::default()
    };
    let mut room = "weekly-sync".to_string();
    let token = match mode {
        // A token as it arrives in a join message or `?jwt=`.
        0 => rest.to_string(),
        // Claims JSON under a standard HS256 header, correctly signed.
        1 => sign(r#"{"alg":"HS256","typ":"JWT"}"#, rest),
        // Header and claims (split at the first newline), correctly signed.
        2 => {
            let (header, claims) = rest.split_once('\n').unwrap_or((rest, "{}"));
            sign(header, claims)
        }
        // The room of the socket URL, with a valid token for every room.
        _ => {
            let Ok(r) = normalize_room(rest) else {
                return;
            };
            room = r;
            sign(
                r#"{"alg":"HS256"}"#,
                r#"{"iss":"fuzz","aud":"edgemeet","sub":"acme","room":"*","exp":1900000000}"#,
            )
        }
    };
    let _ = verify_invite("acme", &tenant, &room, &token, NOW_S);
});
