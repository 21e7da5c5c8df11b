//! Verifies the edge's HS256 tokens, and remembers the grants the edge revoked. The token itself
//! never reaches a log line.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use edgemeet_protocol::node::{NODE_TOKEN_ISSUER, NodeTokenClaims};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};

use crate::error::ApiError;

/// Seconds of clock skew tolerated on `exp` and `iat`.
const LEEWAY_SECS: u64 = 5;
/// The `sub` of calls the edge makes for itself.
pub const EDGE_SUBJECT: &str = "edge";

/// A grant names one participant of one meeting (`sub`, `room`): that pair is the grant's id.
/// The edge revokes it when the participant leaves or is kicked; every grant it issued to that
/// participant then fails here until it would have expired anyway.
type GrantId = (String, String);

pub struct TokenVerifier {
    key: DecodingKey,
    node_id: String,
    /// Revoked grants and when their last token expires (unix seconds): kept no longer. Part of
    /// the node's shared state (`Shared::verifier`), not of the process.
    revoked: Mutex<HashMap<GrantId, u64>>,
}

impl TokenVerifier {
    pub fn new(secret: &str, node_id: &str) -> Self {
        Self {
            key: DecodingKey::from_secret(secret.as_bytes()),
            node_id: node_id.to_owned(),
            revoked: Mutex::new(HashMap::new()),
        }
    }

    /// From now on, refuse every grant of `participant` in `room` issued until now. `until` is
    /// the expiry of the edge's own token for this call: the edge's grants live as long, so none
    /// issued before outlives it.
    pub fn revoke(&self, room: &str, participant: &str, until: u64) {
        let now = now_secs();
        let mut revoked = self.revoked.lock().unwrap();
        revoked.retain(|_, exp| *exp + LEEWAY_SECS >= now);
        let exp = revoked
            .entry((room.to_owned(), participant.to_owned()))
            .or_insert(0);
        *exp = (*exp).max(until);
    }

    pub fn is_revoked(&self, room: &str, participant: &str) -> bool {
        let key = (room.to_owned(), participant.to_owned());
        self.revoked
            .lock()
            .unwrap()
            .get(&key)
            .is_some_and(|exp| *exp + LEEWAY_SECS >= now_secs())
    }

    /// Revoked grants remembered now (for `/metrics`).
    pub fn revoked_count(&self) -> usize {
        self.revoked.lock().unwrap().len()
    }

    /// Checks signature, issuer, audience, lifetime and revocation; returns the claims.
    pub fn verify(&self, authorization: Option<&str>) -> Result<NodeTokenClaims, ApiError> {
        let header = authorization.ok_or(ApiError::Unauthorized("missing bearer token"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(ApiError::Unauthorized(
                "authorization is not a bearer token",
            ))?
            .trim();
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[NODE_TOKEN_ISSUER]);
        v.set_audience(&[self.node_id.as_str()]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        // exp is checked below against our own clock with a small, explicit leeway.
        v.validate_exp = false;
        let data = decode::<NodeTokenClaims>(token, &self.key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            ApiError::Unauthorized(match e.kind() {
                K::InvalidSignature => "bad token signature",
                K::InvalidAudience => "token is for another node",
                K::InvalidIssuer => "token not issued by the edge",
                K::InvalidAlgorithm => "token algorithm not allowed",
                _ => "malformed token",
            })
        })?;
        let c = data.claims;
        let now = now_secs();
        // Saturating: `exp` near 2^64 must not wrap around (a panic in debug builds).
        if c.exp.saturating_add(LEEWAY_SECS) < now {
            return Err(ApiError::Unauthorized("token expired"));
        }
        if c.iat > now + LEEWAY_SECS {
            return Err(ApiError::Unauthorized("token issued in the future"));
        }
        if c.room.is_empty() || c.sub.is_empty() {
            return Err(ApiError::Unauthorized("token lacks room or subject"));
        }
        if c.sub != EDGE_SUBJECT && self.is_revoked(&c.room, &c.sub) {
            return Err(ApiError::Unauthorized(
                "grant revoked: the participant left",
            ));
        }
        Ok(c)
    }
}

/// A new session id for `participant` of `room`: random, with a MAC the edge can check
/// (`edgemeet_protocol::node::session_id`).
pub fn new_session_id(secret: &str, room: &str, participant: &str) -> String {
    let mut nonce = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
    edgemeet_protocol::node::session_id(secret, room, participant, nonce)
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Signs a token as the edge does; for tests, benchmarks and embedding hosts.
pub fn sign_token(secret: &str, claims: &NodeTokenClaims) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(aud: &str, exp_delta: i64) -> NodeTokenClaims {
        let now = now_secs();
        NodeTokenClaims {
            iss: NODE_TOKEN_ISSUER.into(),
            aud: aud.into(),
            room: "m1".into(),
            sub: "p1".into(),
            route: "r".into(),
            iat: now,
            exp: (now as i64 + exp_delta) as u64,
        }
    }

    #[test]
    fn accepts_good_refuses_bad() {
        let s = "0123456789abcdef0123";
        let v = TokenVerifier::new(s, "n1");
        let good = format!("Bearer {}", sign_token(s, &claims("n1", 60)));
        assert_eq!(v.verify(Some(&good)).unwrap().room, "m1");
        let wrong_aud = format!("Bearer {}", sign_token(s, &claims("n2", 60)));
        assert!(v.verify(Some(&wrong_aud)).is_err());
        let expired = format!("Bearer {}", sign_token(s, &claims("n1", -60)));
        assert!(v.verify(Some(&expired)).is_err());
        let forged = format!(
            "Bearer {}",
            sign_token("another-secret-xx", &claims("n1", 60))
        );
        assert!(v.verify(Some(&forged)).is_err());
        assert!(v.verify(None).is_err());
        assert!(v.verify(Some("Basic abc")).is_err());
    }

    /// Found with the `node_api` fuzz target (its seed `01-never-expires.bin`): `exp` near
    /// `u64::MAX` overflowed `exp + LEEWAY_SECS`, a panic in debug builds (and in release a
    /// wrap-around that called the token expired).
    #[test]
    fn an_exp_at_the_end_of_time_does_not_overflow() {
        let s = "0123456789abcdef0123";
        let v = TokenVerifier::new(s, "n1");
        let mut c = claims("n1", 60);
        c.exp = u64::MAX;
        let token = format!("Bearer {}", sign_token(s, &c));
        assert_eq!(v.verify(Some(&token)).unwrap().exp, u64::MAX);
    }

    #[test]
    fn a_revoked_grant_fails_for_its_participant_only() {
        let s = "0123456789abcdef0123";
        let v = TokenVerifier::new(s, "n1");
        let good = format!("Bearer {}", sign_token(s, &claims("n1", 60)));
        v.revoke("m9", "p9", now_secs() - 3600);
        v.revoke("m1", "p2", now_secs() + 60);
        assert!(v.verify(Some(&good)).is_ok(), "another participant");
        v.revoke("m1", "p1", now_secs() + 60);
        assert!(v.verify(Some(&good)).is_err());
        // Forgotten once every grant it covered has expired.
        assert_eq!(v.revoked_count(), 2);
    }
}
