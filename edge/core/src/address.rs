//! Room addresses: tenant + normalized room name, and the keyed hash that stands for them in routing
//! (Durable Object names, node tokens) and logs.

use edgemeet_protocol::{ErrorCode, ProtocolError};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::EdgeConfig;

/// Where a room lives. `route` is safe to log and to use as a storage key; `room` is not.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoomAddress {
    pub tenant: String,
    /// Normalized room name (lowercase). Never log it.
    pub room: String,
    /// Keyed hash of tenant + room: the routing key and the room's name in logs.
    pub route: String,
}

pub const MAX_ROOM_CHARS: usize = 128;

/// Normalize a room name: lowercase; letters, digits, '-', '_', '.'; 1..=128 characters.
pub fn normalize_room(raw: &str) -> Result<String, ProtocolError> {
    let name = raw.trim().to_lowercase();
    let chars = name.chars().count();
    let ok = (1..=MAX_ROOM_CHARS).contains(&chars)
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(name)
    } else {
        Err(ProtocolError::new(
            ErrorCode::InvalidRoomName,
            "room names are 1-128 letters, digits, '-', '_' or '.', not starting with '.'",
        ))
    }
}

pub fn is_valid_tenant(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Resolve a room address from the URL's tenant (if any) and room segment. Only the names' form
/// is checked here: whether the tenant exists is answered at `join`, the same way as a bad token
/// (see `room::join`), so a socket tells an outsider nothing about which tenants exist.
pub fn route(
    config: &EdgeConfig,
    tenant: Option<&str>,
    raw_room: &str,
) -> Result<RoomAddress, ProtocolError> {
    let tenant = tenant.unwrap_or(&config.default_tenant).to_lowercase();
    if !is_valid_tenant(&tenant) {
        return Err(ProtocolError::new(
            ErrorCode::InvalidRoomName,
            "tenant names are 1-64 of a-z, 0-9, '-', '_'",
        ));
    }
    let room = normalize_room(raw_room)?;
    let route = keyed_hash(&config.hash_key, &format!("room\0{tenant}\0{room}"));
    Ok(RoomAddress {
        tenant,
        room,
        route,
    })
}

/// The keyed hash that stands for a client's address in rate limits and caps: of the address for
/// IPv4, of its /64 for IPv6 (one host usually holds a whole /64, so per-address limits counted
/// per IPv6 address would be no limits). IPv4-mapped IPv6 counts as IPv4.
pub fn client_key(hash_key: &str, ip: std::net::IpAddr) -> String {
    use std::net::IpAddr;
    let text = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        IpAddr::V4(v4) => v4.to_string(),
    };
    keyed_hash(hash_key, &format!("addr\0{text}"))
}

/// HMAC-SHA256 of `data` under `key`, hex, first 128 bits: unlinkable to the input without the key.
pub fn keyed_hash(key: &str, data: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(data.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// Whether `s` has the form of a route [`route`] makes (a [`keyed_hash`]: 32 lowercase hex
/// digits). What a node echoes back as a route must have it before it addresses anything.
pub fn is_route(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_and_refuses_odd_names() {
        assert_eq!(normalize_room(" Team-Sync ").unwrap(), "team-sync");
        assert_eq!(normalize_room("café").unwrap(), "café");
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(129)] {
            assert_eq!(
                normalize_room(bad).unwrap_err().code,
                ErrorCode::InvalidRoomName,
                "{bad}"
            );
        }
    }

    #[test]
    fn route_hides_the_name_and_depends_on_the_key() {
        let mut cfg = EdgeConfig {
            hash_key: "k".repeat(16),
            ..Default::default()
        };
        let a = route(&cfg, None, "Standup").unwrap();
        assert_eq!(a.room, "standup");
        assert!(!a.route.contains("standup"));
        assert_eq!(a.route, route(&cfg, None, "standup").unwrap().route);
        assert!(is_route(&a.route));
        cfg.hash_key = "j".repeat(16);
        assert_ne!(a.route, route(&cfg, None, "standup").unwrap().route);
        // Unknown tenants route like any other: the join answers for them.
        assert_eq!(route(&cfg, Some("Nope"), "x").unwrap().tenant, "nope");
        assert_eq!(
            route(&cfg, Some("no pe"), "x").unwrap_err().code,
            ErrorCode::InvalidRoomName
        );
    }

    #[test]
    fn ipv6_addresses_count_per_64() {
        let k = |s: &str| client_key("key-0123456789abcdef", s.parse().unwrap());
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:2:ffff::9"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
        assert_eq!(k("::ffff:192.0.2.7"), k("192.0.2.7"));
        assert_ne!(k("192.0.2.7"), k("192.0.2.8"));
    }
}
