//! End-to-end key exchange: opaque blobs one page addresses to one other participant.
//!
//! In automatic E2EE (`docs/e2ee.md`) pages announce their public keys and send each other their
//! media keys, sealed for the recipient alone. The edge only relays these blobs: it checks their
//! form and size, never their content, and keeps none of them.

use serde::{Deserialize, Serialize};

/// The most characters a blob may have: a public key or a sealed media key is about 120.
pub const MAX_KEY_BLOB_CHARS: usize = 1024;

/// One sealed or public key message, as unpadded base64url (`A-Z a-z 0-9 - _`), 1-1024 characters.
/// Anything else is refused while parsing (`invalid_message`), so the edge never relays it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyBlob(String);

impl KeyBlob {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyBlob {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        if s.is_empty() || s.len() > MAX_KEY_BLOB_CHARS {
            return Err(format!(
                "a key blob is 1-{MAX_KEY_BLOB_CHARS} base64url characters"
            ));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("a key blob is unpadded base64url (A-Z a-z 0-9 - _)".into());
        }
        Ok(Self(s))
    }
}

impl From<KeyBlob> for String {
    fn from(b: KeyBlob) -> Self {
        b.0
    }
}

/// The content is not secret to the edge (it is sealed), but it has no place in logs either.
impl std::fmt::Debug for KeyBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyBlob({} chars)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use crate::{ClientMessage, ErrorCode, ServerMessage, encode_server, parse_client};

    #[test]
    fn a_key_blob_round_trips_both_ways() {
        let text = r#"{"v":1,"type":"e2ee_key","to":"a0b1c2d3e4f5","blob":"AQIDBA-_xyz"}"#;
        let msg = parse_client(text).expect("valid");
        let ClientMessage::E2eeKey { to, blob } = &msg else {
            panic!("{msg:?}");
        };
        assert_eq!(
            (to.as_str(), blob.as_str()),
            ("a0b1c2d3e4f5", "AQIDBA-_xyz")
        );
        assert_eq!(parse_client(&msg.to_wire()).expect("round trip"), msg);
        let out = encode_server(&ServerMessage::E2eeKey {
            from: "3f9a1c0b2d4e".into(),
            blob: blob.clone(),
        });
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["type"], "e2ee_key");
        assert_eq!(v["from"], "3f9a1c0b2d4e");
        assert_eq!(v["blob"], "AQIDBA-_xyz");
    }

    #[test]
    fn malformed_key_blobs_are_refused_with_a_reason() {
        let long = "A".repeat(super::MAX_KEY_BLOB_CHARS + 1);
        for bad in [
            r#"{"v":1,"type":"e2ee_key","to":"x","blob":""}"#.to_string(),
            r#"{"v":1,"type":"e2ee_key","to":"x","blob":"not base64!"}"#.to_string(),
            r#"{"v":1,"type":"e2ee_key","to":"x","blob":"AAAA=="}"#.to_string(),
            r#"{"v":1,"type":"e2ee_key","to":"x","blob":42}"#.to_string(),
            r#"{"v":1,"type":"e2ee_key","blob":"AAAA"}"#.to_string(),
            format!(r#"{{"v":1,"type":"e2ee_key","to":"x","blob":"{long}"}}"#),
        ] {
            let err = parse_client(&bad).expect_err(&bad);
            assert_eq!(err.code, ErrorCode::InvalidMessage, "{bad}: {err:?}");
            assert!(err.message.contains("e2ee_key"), "{}", err.message);
        }
        let at_limit = "A".repeat(super::MAX_KEY_BLOB_CHARS);
        let ok = format!(r#"{{"v":1,"type":"e2ee_key","to":"x","blob":"{at_limit}"}}"#);
        assert!(parse_client(&ok).is_ok());
    }

    #[test]
    fn debug_output_shows_no_blob() {
        let blob = super::KeyBlob::try_from("c2VjcmV0".to_string()).unwrap();
        assert!(!format!("{blob:?}").contains("c2VjcmV0"));
    }
}
