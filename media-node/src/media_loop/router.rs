//! Which connection a datagram is for: by its source address once known, else by the node's
//! ICE username in a STUN binding request (`<node ufrag>:<peer ufrag>`; the node picks a ufrag
//! per connection). Pure: the loop feeds it and acts on the answer.

use std::collections::HashMap;
use std::net::SocketAddr;

/// Index of a connection in the loop's table.
pub type ConnId = usize;

#[derive(Default)]
pub struct Router {
    by_addr: HashMap<SocketAddr, ConnId>,
    by_ufrag: HashMap<String, ConnId>,
}

impl Router {
    pub fn add(&mut self, ufrag: &str, conn: ConnId) {
        self.by_ufrag.insert(ufrag.to_owned(), conn);
    }

    /// Forgets a connection and every address learnt for it.
    pub fn remove(&mut self, conn: ConnId) {
        self.by_ufrag.retain(|_, c| *c != conn);
        self.by_addr.retain(|_, c| *c != conn);
    }

    /// The connection `datagram` from `from` is for. A STUN request naming a connection teaches
    /// the router its sender's address (ICE checks come before any other traffic).
    pub fn route(&mut self, from: SocketAddr, datagram: &[u8]) -> Option<ConnId> {
        if let Some(ufrag) = stun_local_ufrag(datagram)
            && let Some(&conn) = self.by_ufrag.get(ufrag)
        {
            self.by_addr.insert(from, conn);
            return Some(conn);
        }
        self.by_addr.get(&from).copied()
    }
}

/// The recipient's part of the USERNAME of a STUN binding request (RFC 8445 7.2.2).
pub fn stun_local_ufrag(p: &[u8]) -> Option<&str> {
    if p.len() < 20 || p[0] & 0xc0 != 0 || p[4..8] != [0x21, 0x12, 0xa4, 0x42] {
        return None;
    }
    if u16::from_be_bytes([p[0], p[1]]) != 0x0001 {
        return None;
    }
    let mut i = 20;
    while i + 4 <= p.len() {
        let t = u16::from_be_bytes([p[i], p[i + 1]]);
        let len = u16::from_be_bytes([p[i + 2], p[i + 3]]) as usize;
        let v = p.get(i + 4..i + 4 + len)?;
        if t == 0x0006 {
            let user = std::str::from_utf8(v).ok()?;
            return user.split_once(':').map(|(local, _)| local);
        }
        i += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_node_ufrag_of_a_binding_request() {
        let user = b"nodeufrag:peer";
        let mut p = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42];
        p.extend_from_slice(&[7; 12]);
        // An attribute before USERNAME (PRIORITY), then USERNAME padded to 4 bytes.
        p.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        p.extend_from_slice(&[0x00, 0x06, 0x00, user.len() as u8]);
        p.extend_from_slice(user);
        p.extend_from_slice(&[0, 0]);
        assert_eq!(stun_local_ufrag(&p), Some("nodeufrag"));
        // A binding response, RTP, garbage: no.
        let mut resp = p.clone();
        resp[1] = 0x01;
        resp[0] = 0x01;
        assert_eq!(stun_local_ufrag(&resp), None);
        assert_eq!(stun_local_ufrag(&[0x80; 40]), None);
        assert_eq!(stun_local_ufrag(&p[..30]), None);
    }

    /// A STUN binding request with USERNAME `user` (no integrity: the router reads only the
    /// username, the connection checks the rest).
    fn binding_request(user: &str) -> Vec<u8> {
        let mut attr = vec![0x00, 0x06, 0x00, user.len() as u8];
        attr.extend_from_slice(user.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let mut m = vec![0x00, 0x01, 0x00, attr.len() as u8, 0x21, 0x12, 0xa4, 0x42];
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attr);
        m
    }

    #[test]
    fn learns_the_address_from_a_stun_request_then_routes_by_it() {
        let mut r = Router::default();
        r.add("nodeufragA", 3);
        let from: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let rtp = [0x80u8, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(r.route(from, &rtp), None, "unknown sender, not STUN");
        assert_eq!(r.route(from, &binding_request("nodeufragA:peer")), Some(3));
        assert_eq!(r.route(from, &rtp), Some(3));
        r.remove(3);
        assert_eq!(r.route(from, &rtp), None);
        assert_eq!(r.route(from, &binding_request("nodeufragA:peer")), None);
    }
}
