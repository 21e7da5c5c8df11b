//! Invite tokens (Jitsi format): verify signature, algorithm allow-list, time window, issuer,
//! audience, tenant and room. The clock is an input, so `jsonwebtoken`'s own time checks are off.

use base64::Engine;
use edgemeet_protocol::invite::InviteClaims;
use edgemeet_protocol::{ErrorCode, ProtocolError};
use jsonwebtoken::{DecodingKey, Validation, errors::ErrorKind};

use crate::config::{Algorithm, TenantConfig};

/// Tolerated clock skew between the token issuer and the edge.
pub const LEEWAY_S: u64 = 30;

/// Who a valid token says the holder is.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub moderator: bool,
    pub features: Vec<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub avatar: Option<String>,
}

fn refuse(code: ErrorCode, message: &str) -> ProtocolError {
    ProtocolError::new(code, message)
}

/// A stand-in for a tenant that does not exist: a jwt tenant whose HS256 key nobody has (derived
/// from the edge's hash key) and no RS256 keys. A join to it is refused exactly as a join to a
/// real jwt tenant with a bad token is (`token_required`, `token_bad_signature`, ...), so that
/// nobody can list tenants by trying names.
pub fn phantom_tenant(hash_key: &str, tenant_name: &str) -> TenantConfig {
    TenantConfig {
        auth: crate::config::AuthMode::Jwt,
        issuers: Vec::new(),
        hs256_secret: Some(crate::address::keyed_hash(
            hash_key,
            &format!("phantom-tenant\0{tenant_name}"),
        )),
        ..TenantConfig::default()
    }
}

/// Verify `token` for `room` of tenant `tenant_name` at unix time `now_s`.
pub fn verify_invite(
    tenant_name: &str,
    tenant: &TenantConfig,
    room: &str,
    token: &str,
    now_s: u64,
) -> Result<Identity, ProtocolError> {
    let (alg, kid) = read_header(token)?;
    let algorithm = match alg.as_str() {
        "HS256" => Algorithm::HS256,
        "RS256" => Algorithm::RS256,
        _ => {
            return Err(refuse(
                ErrorCode::TokenAlgNotAllowed,
                "this tenant does not accept that signing algorithm",
            ));
        }
    };
    if !tenant.algorithms.contains(&algorithm) {
        return Err(refuse(
            ErrorCode::TokenAlgNotAllowed,
            "this tenant does not accept that signing algorithm",
        ));
    }
    let (key, jwt_alg) = match algorithm {
        Algorithm::HS256 => {
            let secret = tenant.hs256_secret.as_ref().ok_or_else(|| {
                refuse(ErrorCode::TokenUnknownKey, "this tenant has no HS256 key")
            })?;
            (
                DecodingKey::from_secret(secret.as_bytes()),
                jsonwebtoken::Algorithm::HS256,
            )
        }
        Algorithm::RS256 => {
            let pem = match kid.as_deref() {
                Some(kid) => tenant.rs256_public_keys.get(kid),
                None if tenant.rs256_public_keys.len() == 1 => {
                    tenant.rs256_public_keys.values().next()
                }
                None => None,
            }
            .ok_or_else(|| {
                refuse(
                    ErrorCode::TokenUnknownKey,
                    "no public key for this token's kid",
                )
            })?;
            let key = DecodingKey::from_rsa_pem(pem.as_bytes())
                .map_err(|_| refuse(ErrorCode::Internal, "configured public key is unusable"))?;
            (key, jsonwebtoken::Algorithm::RS256)
        }
    };
    let mut validation = Validation::new(jwt_alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<InviteClaims>(token, &key, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => refuse(
                ErrorCode::TokenBadSignature,
                "the token's signature does not verify",
            ),
            ErrorKind::InvalidAlgorithm => {
                refuse(ErrorCode::TokenAlgNotAllowed, "algorithm mismatch")
            }
            _ => refuse(
                ErrorCode::TokenInvalid,
                "the token's claims are malformed or incomplete",
            ),
        })?
        .claims;

    // Saturating: an issuer's "never expires" (`exp` near 2^64) must not wrap around.
    if claims.exp.saturating_add(LEEWAY_S) <= now_s {
        return Err(refuse(ErrorCode::TokenExpired, "the token has expired"));
    }
    if claims.nbf.is_some_and(|nbf| nbf > now_s + LEEWAY_S) {
        return Err(refuse(
            ErrorCode::TokenNotYetValid,
            "the token is not valid yet (nbf)",
        ));
    }
    // A token "issued" later than now was made by a clock or an issuer that cannot be trusted.
    if claims.iat.is_some_and(|iat| iat > now_s + LEEWAY_S) {
        return Err(refuse(
            ErrorCode::TokenNotYetValid,
            "the token is issued in the future (iat)",
        ));
    }
    if !tenant.issuers.contains(&claims.iss) {
        return Err(refuse(
            ErrorCode::TokenWrongIssuer,
            "the token's issuer is not accepted",
        ));
    }
    if !claims.aud.contains(&tenant.audience) {
        return Err(refuse(
            ErrorCode::TokenWrongAudience,
            "the token is for another audience",
        ));
    }
    if claims.sub != *tenant.subject.as_deref().unwrap_or(tenant_name) {
        return Err(refuse(
            ErrorCode::TokenWrongTenant,
            "the token is for another tenant",
        ));
    }
    if claims.room != "*"
        && crate::address::normalize_room(&claims.room).ok().as_deref() != Some(room)
    {
        return Err(refuse(
            ErrorCode::TokenWrongRoom,
            "the token is for another room",
        ));
    }
    let user = &claims.context.user;
    Ok(Identity {
        moderator: user.is_moderator(),
        features: claims.context.enabled_features(),
        name: user.name.clone(),
        email: user.email.clone(),
        avatar: user.avatar.clone(),
    })
}

/// Read `alg` and `kid` from the header without trusting anything else.
fn read_header(token: &str) -> Result<(String, Option<String>), ProtocolError> {
    let garbage = || refuse(ErrorCode::TokenInvalid, "not a JWT");
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(garbage());
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .map_err(|_| garbage())?;
    let header: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| garbage())?;
    let alg = header
        .get("alg")
        .and_then(|a| a.as_str())
        .ok_or_else(garbage)?
        .to_string();
    let kid = header
        .get("kid")
        .and_then(|k| k.as_str())
        .map(str::to_string);
    Ok((alg, kid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthMode;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const SECRET: &str = "tenant-secret-0123456789abcdef0123";
    const NOW_S: u64 = 1_700_000_000;

    fn tenant() -> TenantConfig {
        TenantConfig {
            auth: AuthMode::Jwt,
            issuers: vec!["app".into()],
            hs256_secret: Some(SECRET.into()),
            ..Default::default()
        }
    }

    fn signed(exp: u64) -> String {
        let claims =
            json!({"iss": "app", "aud": "edgemeet", "sub": "acme", "room": "*", "exp": exp});
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        encode(&Header::default(), &claims, &key).unwrap()
    }

    /// Found with the `invite_token` fuzz target (its seed `1-never-expires.txt`): `exp` within
    /// 30 s of `u64::MAX` (an issuer's "never expires") overflowed `exp + LEEWAY_S`: a panic in
    /// debug builds, and in release a wrap-around that refused the token as expired.
    #[test]
    fn a_token_that_never_expires_is_accepted() {
        for exp in [u64::MAX, u64::MAX - LEEWAY_S + 1] {
            let id = verify_invite("acme", &tenant(), "weekly-sync", &signed(exp), NOW_S);
            assert!(id.is_ok(), "exp {exp}: {id:?}");
        }
        let expired = verify_invite("acme", &tenant(), "weekly-sync", &signed(NOW_S - 60), NOW_S);
        assert_eq!(expired.unwrap_err().code, ErrorCode::TokenExpired);
    }
}
