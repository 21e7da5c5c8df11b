//! One UDP port per media loop (`udp_mux_port + i`) for every session of its rooms: real
//! webrtc-rs clients on 127.0.0.1, the node's media on 127.0.0.2 (and .3, .4, .6: one address per
//! test), so the node's UDP sockets can be told apart from the clients' and the other tests'.

mod common;

use std::net::{IpAddr, UdpSocket};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::*;
use edgemeet_testsupport::node_client::{TestClient, remote_track_id};

const WAIT: Duration = Duration::from_secs(20);
const MEDIA_IP: &str = "127.0.0.2";

fn free_udp_port(ip: IpAddr) -> u16 {
    let s = UdpSocket::bind((ip, 0)).expect("bind");
    s.local_addr().unwrap().port()
}

/// (ip, port) of every candidate in an SDP.
fn candidates(sdp: &str) -> Vec<(String, String)> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[4].to_string(), f[5].to_string())
        })
        .collect()
}

/// UDP sockets of this machine's network namespace bound on `ip` (IPv4 /proc/net/udp).
fn udp_sockets_on(ip: [u8; 4]) -> usize {
    let hex = format!("{:02X}{:02X}{:02X}{:02X}:", ip[3], ip[2], ip[1], ip[0]);
    std::fs::read_to_string("/proc/net/udp")
        .expect("/proc/net/udp")
        .lines()
        .skip(1)
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| a.starts_with(&hex))
        })
        .count()
}

async fn answer_sdp(c: &TestClient) -> String {
    c.pc.remote_description().await.expect("answer").sdp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sessions_share_one_udp_port() {
    let ip: IpAddr = MEDIA_IP.parse().unwrap();
    let port = free_udp_port(ip);
    let mut cfg = config();
    cfg.media_ip = ip;
    cfg.udp_mux_port = port;
    cfg.media_loops = 1;
    let node = start_with(cfg).await;
    let mut clients = Vec::new();
    for (i, who) in ["pa", "pb", "pc"].iter().enumerate() {
        let mut c = client(&node, "mux1", who, i as u8 + 1).await;
        c.publish(true, true, false).await.expect("publish");
        clients.push(c);
    }
    let stops: Vec<_> = clients
        .iter()
        .map(|c| c.start_sending(30, 1, 900))
        .collect();
    for rx in &clients {
        let pulls: Vec<(String, String)> = clients
            .iter()
            .filter(|tx| tx.tag != rx.tag)
            .flat_map(|tx| ["audio", "video"].map(|n| (tx.session_id.clone(), n.to_string())))
            .collect();
        rx.pull(&pulls, None).await.expect("pull");
    }
    for c in &clients {
        c.wait_connected(WAIT).await.expect("connected");
    }
    let all_flow = eventually(WAIT, || {
        clients.iter().all(|rx| {
            clients.iter().filter(|tx| tx.tag != rx.tag).all(|tx| {
                rx.packets(&remote_track_id(&tx.session_id, "audio")).len() > 20
                    && rx.packets(&remote_track_id(&tx.session_id, "video")).len() > 20
            })
        })
    })
    .await;
    for s in &stops {
        s.store(true, Relaxed);
    }
    assert!(all_flow, "everyone gets both others' audio and video");

    // Every session's answer announces the same one address...
    let want = (MEDIA_IP.to_string(), port.to_string());
    for c in &clients {
        let cands = candidates(&answer_sdp(c).await);
        assert!(!cands.is_empty());
        assert!(cands.iter().all(|c| *c == want), "{cands:?}");
    }
    // ...and the node holds one UDP socket on its media address.
    assert_eq!(udp_sockets_on([127, 0, 0, 2]), 1, "one media socket");
    // Forwarded media left through the node's own sends on that socket.
    let m = node.handle.metrics_text();
    assert!(m.contains("edgemeet_node_sessions_direct_send 3\n"), "{m}");
    for c in &clients {
        c.close().await;
    }
    node.handle.shutdown().await;
}

/// Two loops: each room on one loop, so all of a room's sessions answer on that loop's port;
/// a second room goes to the other (less loaded) loop and its port; media flows in both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rooms_on_two_loops_each_on_its_own_port() {
    let ip: IpAddr = "127.0.0.6".parse().unwrap();
    let port = loop {
        let p = free_udp_port(ip);
        // The second loop takes the next port: it must be free too.
        if p < u16::MAX && UdpSocket::bind((ip, p + 1)).is_ok() {
            break p;
        }
    };
    let mut cfg = config();
    cfg.media_ip = ip;
    cfg.udp_mux_port = port;
    cfg.media_loops = 2;
    let node = start_with(cfg).await;
    assert_eq!(udp_sockets_on([127, 0, 0, 6]), 2, "a socket per loop");
    let mut rooms = Vec::new();
    for (r, room) in ["loopsA", "loopsB"].iter().enumerate() {
        let mut clients = Vec::new();
        for (i, who) in ["pa", "pb"].iter().enumerate() {
            let mut c = client(&node, room, who, (r * 2 + i) as u8 + 1).await;
            c.publish(false, true, false).await.expect("publish");
            clients.push(c);
        }
        rooms.push(clients);
    }
    let stops: Vec<_> = rooms
        .iter()
        .flatten()
        .map(|c| c.start_sending(30, 1, 900))
        .collect();
    for clients in &rooms {
        let (a, b) = (&clients[0], &clients[1]);
        a.pull(&[(b.session_id.clone(), "video".into())], None)
            .await
            .expect("pull");
        b.pull(&[(a.session_id.clone(), "video".into())], None)
            .await
            .expect("pull");
    }
    // A pull naming the other room's session (on the other loop) is refused as before.
    let err = rooms[0][0]
        .pull(&[(rooms[1][0].session_id.clone(), "video".into())], None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("403"), "{err}");
    let all_flow = eventually(WAIT, || {
        rooms.iter().all(|clients| {
            let (a, b) = (&clients[0], &clients[1]);
            a.packets(&remote_track_id(&b.session_id, "video")).len() > 20
                && b.packets(&remote_track_id(&a.session_id, "video")).len() > 20
        })
    })
    .await;
    for s in &stops {
        s.store(true, Relaxed);
    }
    assert!(all_flow, "both rooms forward");
    let mut room_ports = Vec::new();
    for clients in &rooms {
        let mut ports = Vec::new();
        for c in clients {
            ports.extend(candidates(&answer_sdp(c).await).into_iter().map(|c| c.1));
        }
        ports.dedup();
        assert_eq!(ports.len(), 1, "a room on one loop: {ports:?}");
        room_ports.push(ports[0].clone());
    }
    room_ports.sort();
    assert_eq!(
        room_ports,
        [port.to_string(), (port + 1).to_string()],
        "the second room on the other loop"
    );
    let m = node.handle.metrics_text();
    assert!(m.contains("edgemeet_node_sessions 4\n"), "{m}");
    assert!(m.contains("edgemeet_node_rooms 2\n"), "{m}");
    for c in rooms.iter().flatten() {
        c.close().await;
    }
    node.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_port_is_announced_under_the_public_ip() {
    let ip: IpAddr = "127.0.0.3".parse().unwrap();
    let port = free_udp_port(ip);
    let mut cfg = config();
    cfg.media_ip = ip;
    cfg.udp_mux_port = port;
    cfg.public_ip = Some("198.51.100.7".parse().unwrap());
    let node = start_with(cfg).await;
    let mut a = client(&node, "mux2", "pa", 1).await;
    a.publish(true, false, false).await.expect("publish");
    let cands = candidates(&answer_sdp(&a).await);
    assert!(!cands.is_empty());
    assert!(
        cands
            .iter()
            .all(|c| *c == ("198.51.100.7".to_string(), port.to_string())),
        "{cands:?}"
    );
    a.close().await;
    node.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_stops_the_node_at_start() {
    let ip: IpAddr = "127.0.0.4".parse().unwrap();
    let taken = UdpSocket::bind((ip, 0)).unwrap();
    let mut cfg = config();
    cfg.media_ip = ip;
    cfg.udp_mux_port = taken.local_addr().unwrap().port();
    let err = edgemeet_media_node::MediaNode::start(cfg)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("media UDP port"), "{err}");
}
