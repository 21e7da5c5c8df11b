//! `GET /api/names/random` and `POST /api/names/check`: the page's room-name helpers.

use rand_core::RngCore;
use serde::Deserialize;
use serde_json::json;

use super::Reply;
use crate::names;

/// The most a name check's body may hold.
pub const MAX_CHECK_BODY: usize = 4096;

pub fn random(rng: &mut dyn RngCore) -> Reply {
    Reply::json(200, &json!({ "name": names::generate(rng) }))
}

pub fn check(body: &[u8]) -> Reply {
    #[derive(Deserialize)]
    struct Body {
        name: String,
    }
    if body.len() > MAX_CHECK_BODY {
        return Reply::error(413, "too_large", "send at most 4096 bytes");
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => Reply::json(
            200,
            &serde_json::to_value(names::check(&b.name)).unwrap_or_default(),
        ),
        Err(e) => Reply::error(
            400,
            "invalid_message",
            &format!("expected {{\"name\": \"...\"}}: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;
    use serde_json::Value;

    fn body(r: &Reply) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn names() {
        let r = random(&mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(r.status, 200);
        assert_eq!(body(&r)["name"].as_str().unwrap().split('-').count(), 5);
        let weak = check(br#"{"name":"standup"}"#);
        assert_eq!(
            (weak.status, body(&weak)["strong"].clone()),
            (200, json!(false))
        );
        let bad = check(b"{nope");
        assert_eq!(
            (bad.status, body(&bad)["error"]["code"].clone()),
            (400, json!("invalid_message"))
        );
        let big = check(&vec![b' '; MAX_CHECK_BODY + 1]);
        assert_eq!(
            (big.status, body(&big)["error"]["code"].clone()),
            (413, json!("too_large"))
        );
    }
}
