//! The native host's sockets and endpoints: a room that stays up while people come and go keeps no
//! connection of those who left; one address holds a bounded number of sockets on the server;
//! `/metrics` needs its token; the embedded node's paths carry the same headers as the rest.

use std::time::Duration;

use edgemeet_tests::raw_ws::RawWs;
use edgemeet_tests::{Client, Edge, http, unique_room};
use serde_json::json;

const METRICS_TOKEN: &str = "metrics-token-for-tests-0123456789";

/// The server's open connections on its port: descriptors of `pid` that are sockets of a
/// connection to `port` (established, or half-closed by the peer: CLOSE_WAIT), plus socket
/// descriptors the kernel no longer lists anywhere (the peer reset the connection, but the server
/// never let go of it). The embedded node's and storage's own loopback connections do not count.
fn open_connections(pid: u32, port: u16) -> usize {
    let mut known = std::collections::HashMap::new();
    for table in [
        "tcp", "tcp6", "udp", "udp6", "unix", "raw", "raw6", "netlink",
    ] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let on_port = table.starts_with("tcp")
                && cols
                    .get(1)
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    == Some(port)
                && cols.get(3) != Some(&"0A");
            let inode = match table {
                "unix" => cols.get(6),
                "netlink" => cols.last(),
                _ => cols.get(9),
            };
            if let Some(inode) = inode {
                known.insert(inode.to_string(), on_port);
            }
        }
    }
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the server's descriptors")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().to_string();
            Some(
                t.strip_prefix("socket:[")?
                    .trim_end_matches(']')
                    .to_string(),
            )
        })
        .filter(|inode| known.get(inode).copied().unwrap_or(true))
        .count()
}

fn port(edge: &Edge) -> u16 {
    edge.host_port()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

async fn metric(edge: &Edge, name: &str) -> u64 {
    let auth = format!("Bearer {METRICS_TOKEN}");
    let m = http::request(
        &edge.host_port(),
        "GET",
        "/metrics",
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    let body = String::from_utf8(m.body).unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {body}"))
}

/// 50 people join a room that stays up (one stays throughout) and leave every way a browser
/// does: a close frame, a dropped connection (away, resumable), `leave`, an oversized frame. Afterwards the server
/// holds the one connection of the one who stayed, and counts one socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_that_stays_up_keeps_no_connection_of_those_who_left() {
    let edge = Edge::native(&[("EDGEMEET_METRICS_TOKEN", METRICS_TOKEN)]);
    let pid = edge.pid().expect("a native server");
    let room = unique_room("leak");
    let mut stays = Client::room(&edge, &room).await;
    stays.join(json!({})).await;
    let port = port(&edge);
    // Settled (the embedded uploader's first calls to its storage are made, not being made).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = open_connections(pid, port);
    for i in 0..50 {
        match i % 4 {
            0 => {
                let mut c = Client::room(&edge, &room).await;
                c.join(json!({})).await;
                c.close().await;
            }
            1 => {
                // A dropped connection (no close frame) is not a leave but an absence the
                // participant may resume from: the others see it away, the server keeps nothing.
                let mut c = Client::room(&edge, &room).await;
                c.join(json!({})).await;
                drop(c);
                loop {
                    let m = stays.wait_for("participant_updated").await;
                    if m["participant"]["away"] == true {
                        break;
                    }
                }
                continue;
            }
            2 => {
                let mut c = Client::room(&edge, &room).await;
                c.join(json!({})).await;
                c.send(json!({"type": "leave"})).await;
                c.expect_closed().await;
            }
            _ => {
                let mut r = RawWs::connect(&edge, &format!("/api/rooms/{room}"), &[], None)
                    .await
                    .expect("upgraded");
                r.send_text(r#"{"v":1,"type":"join"}"#).await;
                r.send_text(&"x".repeat(70 * 1024)).await;
                assert!(r.closed_by_server(Duration::from_secs(5)).await);
            }
        }
        assert_eq!(
            stays.wait_for("participant_left").await["type"],
            "participant_left"
        );
    }
    let mut open = usize::MAX;
    for _ in 0..50 {
        open = open_connections(pid, port);
        if open <= before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "server connections open: {before} with one participant, {open} after 50 joins and leaves"
    );
    assert_eq!(open, before, "only the one who stayed's");
    assert_eq!(metric(&edge, "edgemeet_sockets").await, 1);
    assert_eq!(metric(&edge, "edgemeet_rooms_active").await, 1);
    stays.send(json!({"type": "ping"})).await;
    assert_eq!(stays.wait_for("pong").await["type"], "pong");
}

#[tokio::test]
async fn one_address_holds_a_bounded_number_of_sockets_on_the_server() {
    let edge = Edge::native(&[("EDGEMEET_MAX_SOCKETS_PER_ADDRESS", "5")]);
    let mut held = Vec::new();
    for _ in 0..5 {
        // Each in its own room: the server's cap, not a room's.
        let mut c = Client::room(&edge, &unique_room("cap")).await;
        c.join(json!({})).await;
        held.push(c);
    }
    let path = format!("/api/rooms/{}", unique_room("cap"));
    let refused = RawWs::connect(&edge, &path, &[], Some("127.0.0.1")).await;
    assert_eq!(refused.err().map(|r| r.status), Some(429));
    // Another address is not affected.
    RawWs::connect(&edge, &path, &[], Some("127.0.0.2"))
        .await
        .expect("another address connects");
    // A socket that goes gives its place back.
    held.pop().unwrap().close().await;
    let mut ok = None;
    for _ in 0..40 {
        if let Ok(ws) = RawWs::connect(&edge, &path, &[], Some("127.0.0.1")).await {
            ok = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok.is_some(), "the place came back");
}

#[tokio::test]
async fn metrics_need_their_token_or_their_own_listener() {
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{free_port}");
    let edge = Edge::native(&[
        ("EDGEMEET_METRICS_TOKEN", METRICS_TOKEN),
        ("EDGEMEET_METRICS_LISTEN", &listen),
    ]);
    let hp = edge.host_port();
    assert_eq!(http::get(&hp, "/metrics").await.status, 401);
    let wrong = http::request(
        &hp,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer nope")],
        b"",
    )
    .await;
    assert_eq!(wrong.status, 401);
    let auth = format!("Bearer {METRICS_TOKEN}");
    let ok = http::request(&hp, "GET", "/metrics", &[("Authorization", &auth)], b"").await;
    assert_eq!(ok.status, 200);
    let body = String::from_utf8(ok.body).unwrap();
    assert!(body.contains("edgemeet_sockets 0"), "{body}");
    assert!(
        body.contains("edgemeet_node_sessions 0"),
        "the embedded node's too: {body}"
    );
    let own = http::get(&listen, "/metrics").await;
    assert_eq!(own.status, 200);
    assert!(
        String::from_utf8(own.body)
            .unwrap()
            .contains("edgemeet_sockets")
    );
    // Without either setting there is no /metrics at all.
    let plain = Edge::native(&[]);
    assert_eq!(http::get(&plain.host_port(), "/metrics").await.status, 404);
}

#[tokio::test]
async fn the_embedded_nodes_paths_carry_the_security_headers() {
    let edge = Edge::native(&[]);
    let hp = edge.host_port();
    let page = http::get(&hp, "/").await;
    for path in ["/node/healthz", "/node/v1/sessions/nope"] {
        let r = http::get(&hp, path).await;
        for name in [
            "referrer-policy",
            "x-content-type-options",
            "x-frame-options",
            "content-security-policy",
            "permissions-policy",
        ] {
            assert_eq!(r.header(name), page.header(name), "{path}: {name}");
        }
    }
    // The node's own metrics are not public.
    assert_eq!(http::get(&hp, "/node/metrics").await.status, 404);
}
