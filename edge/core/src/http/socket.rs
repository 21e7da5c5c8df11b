//! The room socket's rules before the room sees it: which requests may upgrade, which room the
//! URL names, how a name that cannot be a room is refused, and the caller's keys (address, token).

use edgemeet_protocol::{ErrorCode, ProtocolError, ServerMessage, encode_server};

use super::Reply;
use super::routes::percent_decode;
use crate::room::close;
use crate::{EdgeConfig, RoomAddress, client_key, keyed_hash};

/// The answer to a plain `GET` of a socket URL (what axum's WebSocket extractor says).
pub const NOT_AN_UPGRADE: &str = "Connection header did not include 'upgrade'";

/// Whether the request may become a room socket: it asks for a WebSocket (`Upgrade`), from a page
/// the edge allows (`Origin` against `Host`, see [`crate::web::origin_allowed`]). The same answer
/// for every room name.
pub fn preflight(
    config: &EdgeConfig,
    upgrade: Option<&str>,
    origin: Option<&str>,
    host: Option<&str>,
) -> Result<(), Reply> {
    if !upgrade.is_some_and(|u| u.trim().eq_ignore_ascii_case("websocket")) {
        return Err(Reply::text(400, NOT_AN_UPGRADE));
    }
    if !crate::web::origin_allowed(config, origin, host) {
        return Err(Reply::text(403, "this origin may not open room sockets"));
    }
    Ok(())
}

/// A host's cap on open sockets per address was reached (the native server's
/// `max_sockets_per_address`).
pub fn too_many_sockets() -> Reply {
    Reply::text(429, "too many open sockets from your address")
}

/// The room the socket URL's segments (still percent-encoded) name. A name that cannot be a room
/// is an error said on the socket (every name upgrades the same way): see [`refusal`].
pub fn address(
    config: &EdgeConfig,
    tenant: Option<&str>,
    room: &str,
) -> Result<RoomAddress, ProtocolError> {
    let undecodable = || {
        ProtocolError::new(
            ErrorCode::InvalidRoomName,
            "room names are 1-128 letters, digits, '-', '_' or '.', not starting with '.'",
        )
    };
    let tenant = match tenant {
        None => None,
        Some(t) => Some(percent_decode(t).ok_or_else(undecodable)?),
    };
    let room = percent_decode(room).ok_or_else(undecodable)?;
    crate::route(config, tenant.as_deref(), &room)
}

/// How a socket to a name that cannot be a room ends: this frame, then this close.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub text: String,
    pub code: u16,
    pub reason: &'static str,
}

pub fn refusal(err: ProtocolError) -> Refusal {
    let msg = ServerMessage::Error {
        code: err.code,
        message: err.message,
        request: None,
    };
    Refusal {
        text: encode_server(&msg),
        code: close::POLICY,
        reason: "invalid room",
    }
}

/// The `?jwt=` of a socket URL's query, if any (a token too long for a header).
pub fn query_token(query: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "jwt")
        .and_then(|(_, v)| percent_decode(&v.replace('+', " ")))
        .filter(|v| !v.is_empty())
}

/// The caller's address as the core counts it (IPv6 per /64, see [`client_key`]), from the text
/// the host has of it (the peer address, or a proxy's header); text that is not an address is
/// still keyed, never kept.
pub fn address_key(config: &EdgeConfig, ip: &str) -> String {
    match ip.trim().parse::<std::net::IpAddr>() {
        Ok(ip) => client_key(&config.hash_key, ip),
        Err(_) => keyed_hash(&config.hash_key, &format!("addr\0{}", ip.trim())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EdgeConfig {
        EdgeConfig {
            hash_key: "k".repeat(16),
            ..Default::default()
        }
    }

    #[test]
    fn only_websocket_upgrades_from_own_pages() {
        let c = config();
        let host = Some("meet.example.org");
        assert_eq!(preflight(&c, Some("websocket"), None, host), Ok(()));
        assert_eq!(
            preflight(
                &c,
                Some("WebSocket"),
                Some("https://meet.example.org"),
                host
            ),
            Ok(())
        );
        let plain = preflight(&c, None, None, host).unwrap_err();
        assert_eq!(
            (plain.status, plain.body.as_ref()),
            (400, NOT_AN_UPGRADE.as_bytes())
        );
        let other =
            preflight(&c, Some("websocket"), Some("https://evil.example"), host).unwrap_err();
        assert_eq!(other.status, 403);
    }

    #[test]
    fn room_names_decode_then_route() {
        let c = config();
        assert_eq!(
            address(&c, None, "Team%20Sync").unwrap_err().code,
            ErrorCode::InvalidRoomName
        );
        assert_eq!(address(&c, None, "caf%C3%A9").unwrap().room, "café");
        assert_eq!(address(&c, Some("acme"), "x").unwrap().tenant, "acme");
        assert_eq!(
            address(&c, None, "%ff").unwrap_err().code,
            ErrorCode::InvalidRoomName
        );
        assert_eq!(
            address(&c, Some("%ff"), "x").unwrap_err().code,
            ErrorCode::InvalidRoomName
        );
        let r = refusal(address(&c, None, ".x").unwrap_err());
        assert_eq!((r.code, r.reason), (close::POLICY, "invalid room"));
        assert!(r.text.contains("invalid_room_name"), "{}", r.text);
    }

    #[test]
    fn tokens_and_addresses() {
        assert_eq!(query_token("a=1&jwt=x%2Ey").as_deref(), Some("x.y"));
        assert_eq!(query_token("jwt="), None);
        assert_eq!(query_token(""), None);
        let c = config();
        assert_eq!(
            address_key(&c, "192.0.2.7"),
            client_key(&c.hash_key, "192.0.2.7".parse().unwrap())
        );
        assert_eq!(
            address_key(&c, "2001:db8::1"),
            address_key(&c, " 2001:db8::2 ")
        );
        assert_ne!(address_key(&c, ""), address_key(&c, "192.0.2.7"));
        assert_eq!(address_key(&c, "not an ip").len(), 32);
    }
}
