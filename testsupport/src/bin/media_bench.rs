//! `edgemeet-media-bench`: N publishers x M subscribers through a media node process on
//! 127.0.0.1, with webrtc-rs clients in this process. Prints forwarded packets/s, the node's CPU
//! seconds per million forwarded packets, end-to-end latency p50/p99 and loss.
//!
//! Usage: `edgemeet-media-bench [--quick] [--one-call] [--loops N] [--rooms R] [--case PxS@PPS]...
//! [--secs S]`; the node binary is looked up next to this one (or `EDGEMEET_NODE_BIN`).
//! `--one-call`: every client opens its session, pushes and pulls in one `sessions/new` (the
//! browser's join), instead of `tracks/new` and a renegotiation per pull. `--loops N`: the node's
//! media loops (`EDGEMEET_NODE_MEDIA_LOOPS`; default: the node's, one per core). `--rooms R`: each
//! case runs in R rooms at once (the node pins each room to a loop, the least loaded). `--case`
//! (repeatable) replaces the default cases, e.g. `--case 4x8@1000`. Each row also prints the
//! node's resident memory grown per session while the row ran.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use edgemeet_testsupport::node_client::{
    ClientOptions, PacketHook, TestClient, check_payload, clock_ns, token,
};

const SECRET: &str = "benchmark-secret-0123456789abcdef";
const NODE_ID: &str = "node-bench";
const PACKET_SIZE: usize = 1100;

#[derive(Default)]
struct PairStats {
    /// Counters seen, as a bitset: duplicates (retransmissions) count once.
    seen: Vec<u64>,
    unique: u64,
    dups: u64,
    min: u32,
    max: u32,
}

impl PairStats {
    fn add(&mut self, counter: u32) {
        let (w, b) = ((counter / 64) as usize, counter % 64);
        if self.seen.len() <= w {
            self.seen.resize(w + 1, 0);
        }
        if self.seen[w] & (1 << b) != 0 {
            self.dups += 1;
            return;
        }
        self.seen[w] |= 1 << b;
        if self.unique == 0 {
            (self.min, self.max) = (counter, counter);
        }
        self.unique += 1;
        self.min = self.min.min(counter);
        self.max = self.max.max(counter);
    }
}

#[derive(Default)]
struct SubStats {
    pairs: HashMap<u8, PairStats>,
    latencies_us: Vec<u32>,
    corrupt: u64,
}

struct Row {
    rooms: usize,
    pubs: usize,
    subs: usize,
    pps_per_pub: u32,
    fwd_pps: f64,
    cpu_per_m: f64,
    node_cpu: f64,
    p50_ms: f64,
    p99_ms: f64,
    loss: f64,
    node_p99_us: f64,
    clients_cpu: f64,
    dups: u64,
    node_drops: f64,
    kib_per_session: f64,
}

/// The process's resident memory in KiB (0 where /proc is missing).
fn proc_rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0.0)
}

fn proc_cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

async fn metric(http: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0))
}

/// p-quantile of the node's forward-latency histogram, in µs (bucket upper bound).
async fn node_latency_quantile(http: &reqwest::Client, base: &str, q: f64) -> anyhow::Result<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("edgemeet_node_forward_latency_seconds_bucket{le=\""))
        .filter_map(|l| {
            let (le, v) = l.split_once("\"} ")?;
            Some((
                le.parse::<f64>().unwrap_or(f64::INFINITY),
                v.trim().parse().ok()?,
            ))
        })
        .collect();
    let total = buckets.last().map_or(0.0, |b| b.1);
    Ok(buckets
        .iter()
        .find(|(_, c)| *c >= q * total)
        .map_or(f64::NAN, |(le, _)| le * 1e6))
}

#[allow(clippy::too_many_arguments)]
async fn run(
    base: &str,
    pid: u32,
    rooms: usize,
    pubs: usize,
    subs: usize,
    pps_per_pub: u32,
    secs: u64,
    one_call: bool,
) -> anyhow::Result<Row> {
    let rss0 = proc_rss_kib(pid);
    let measuring = Arc::new(AtomicBool::new(false));
    let mut publishers = Vec::new();
    let mut subscribers = Vec::new();
    let mut stats = Vec::new();
    let mut room_names = Vec::new();
    for r in 0..rooms {
        let room = format!("bench-{pubs}x{subs}-{pps_per_pub}-r{r}");
        let (p, s, st) = join_room(base, &room, pubs, subs, one_call, &measuring).await?;
        publishers.extend(p);
        subscribers.extend(s);
        stats.extend(st);
        room_names.push(room);
    }
    let sessions = (rooms * (pubs + subs)) as f64;
    // 50 frames/s, packets per frame to reach the wanted rate.
    let per_frame = (pps_per_pub / 50).max(1) as usize;
    let stops: Vec<_> = publishers
        .iter()
        .map(|p| p.start_sending(50, per_frame, PACKET_SIZE))
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let http = reqwest::Client::new();
    let out0 = metric(&http, base, "edgemeet_node_rtp_packets_out_total").await?;
    let drop0 = metric(&http, base, "edgemeet_node_rtp_packets_dropped_total").await?;
    let cpu0 = proc_cpu_secs(pid);
    let me = std::process::id();
    let clients0 = proc_cpu_secs(me);
    let t0 = Instant::now();
    measuring.store(true, Relaxed);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    measuring.store(false, Relaxed);
    let wall = t0.elapsed().as_secs_f64();
    let cpu = proc_cpu_secs(pid) - cpu0;
    let clients_cpu = (proc_cpu_secs(me) - clients0) / wall;
    let out = metric(&http, base, "edgemeet_node_rtp_packets_out_total").await? - out0;
    let node_drops = metric(&http, base, "edgemeet_node_rtp_packets_dropped_total").await? - drop0;
    // Sessions up and forwarding (buffers of every connection filled): what they hold.
    let kib_per_session = (proc_rss_kib(pid) - rss0).max(0.0) / sessions;
    for s in &stops {
        s.store(true, Relaxed);
    }
    let node_p99_us = node_latency_quantile(&http, base, 0.99).await?;
    let (mut lat, mut expected, mut got, mut corrupt, mut dups) =
        (Vec::new(), 0u64, 0u64, 0u64, 0u64);
    for st in &stats {
        let s = st.lock().unwrap();
        lat.extend_from_slice(&s.latencies_us);
        corrupt += s.corrupt;
        for p in s.pairs.values() {
            expected += u64::from(p.max - p.min) + 1;
            got += p.unique;
            dups += p.dups;
        }
        // A pair that got nothing in the window lost everything.
        expected += (pubs - s.pairs.len()) as u64 * u64::from(pps_per_pub) * secs;
    }
    if corrupt > 0 {
        bail!("{corrupt} corrupt packets");
    }
    lat.sort_unstable();
    let q = |f: f64| {
        lat.get(((lat.len() as f64 * f) as usize).min(lat.len().saturating_sub(1)))
            .map_or(f64::NAN, |v| f64::from(*v) / 1000.0)
    };
    for c in publishers.iter().chain(subscribers.iter()) {
        c.close().await;
    }
    for room in &room_names {
        let edge = token(SECRET, NODE_ID, room, "edge", 600);
        let _ = http
            .post(format!("{base}/v1/rooms/{room}/close"))
            .bearer_auth(edge)
            .send()
            .await;
    }
    Ok(Row {
        rooms,
        pubs,
        subs,
        pps_per_pub,
        fwd_pps: out / wall,
        cpu_per_m: if out > 0.0 {
            cpu / (out / 1e6)
        } else {
            f64::NAN
        },
        node_cpu: cpu / wall,
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        loss: if expected > 0 {
            1.0 - got as f64 / expected as f64
        } else {
            1.0
        },
        node_p99_us,
        clients_cpu,
        dups,
        node_drops,
        kib_per_session,
    })
}

type Joined = (Vec<TestClient>, Vec<TestClient>, Vec<Arc<Mutex<SubStats>>>);

/// One room's publishers and subscribers, joined and pulling (not sending yet).
async fn join_room(
    base: &str,
    room: &str,
    pubs: usize,
    subs: usize,
    one_call: bool,
    measuring: &Arc<AtomicBool>,
) -> anyhow::Result<Joined> {
    let mut publishers = Vec::new();
    for i in 0..pubs {
        let t = token(SECRET, NODE_ID, room, &format!("pub{i}"), 600);
        let mut c = if one_call {
            TestClient::build(base, &t, i as u8, ClientOptions::default()).await
        } else {
            TestClient::connect(base, &t, i as u8, ClientOptions::default()).await
        }
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        c.publish(false, true, false)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        publishers.push(c);
    }
    let mut subscribers = Vec::new();
    let mut stats = Vec::new();
    for j in 0..subs {
        let st = Arc::new(Mutex::new(SubStats::default()));
        let (st2, m) = (st.clone(), measuring.clone());
        let hook: PacketHook = Arc::new(move |p| {
            if !m.load(Relaxed) {
                return;
            }
            let now = clock_ns();
            let mut s = st2.lock().unwrap();
            let Some(info) = check_payload(true, &p.payload) else {
                s.corrupt += 1;
                return;
            };
            s.latencies_us
                .push((now.saturating_sub(info.sent_ns) / 1000) as u32);
            s.pairs.entry(info.tag).or_default().add(info.counter);
        });
        let t = token(SECRET, NODE_ID, room, &format!("sub{j}"), 600);
        let opts = ClientOptions {
            on_packet: Some(hook),
            ..ClientOptions::default()
        };
        let wanted: Vec<(String, String)> = publishers
            .iter()
            .map(|p| (p.session_id.clone(), "video".to_string()))
            .collect();
        let c = if one_call {
            let mut c = TestClient::build(base, &t, 200, opts)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            c.pull_on_open = wanted;
            c.publish(false, false, false)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            c
        } else {
            let c = TestClient::connect(base, &t, 200, opts)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            c.pull(&wanted, None)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            c
        };
        subscribers.push(c);
        stats.push(st);
    }
    Ok((publishers, subscribers, stats))
}

/// The same traffic from one webrtc-rs client straight to another: what the clients cost alone.
async fn direct_baseline(pps: u32, secs: u64) -> anyhow::Result<(f64, f64)> {
    let lat = Arc::new(Mutex::new(Vec::<u32>::new()));
    let (l2, measuring) = (lat.clone(), Arc::new(AtomicBool::new(false)));
    let m2 = measuring.clone();
    let hook: PacketHook = Arc::new(move |p| {
        if m2.load(Relaxed)
            && let Some(info) = check_payload(true, &p.payload)
        {
            let us = (clock_ns().saturating_sub(info.sent_ns) / 1000) as u32;
            l2.lock().unwrap().push(us);
        }
    });
    let e = |e| anyhow::anyhow!("{e}");
    let rx = TestClient::build(
        "",
        "",
        200,
        ClientOptions {
            on_packet: Some(hook),
            ..Default::default()
        },
    )
    .await
    .map_err(e)?;
    let mut tx = TestClient::build("", "", 1, ClientOptions::default())
        .await
        .map_err(e)?;
    tx.publish_to(false, true, false, Some(&rx))
        .await
        .map_err(e)?;
    let stop = tx.start_sending(50, (pps / 50).max(1) as usize, PACKET_SIZE);
    tokio::time::sleep(Duration::from_secs(2)).await;
    measuring.store(true, Relaxed);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    measuring.store(false, Relaxed);
    stop.store(true, Relaxed);
    tx.close().await;
    rx.close().await;
    let mut v = lat.lock().unwrap().clone();
    v.sort_unstable();
    let q = |f: f64| {
        v.get(((v.len() as f64 * f) as usize).min(v.len().saturating_sub(1)))
            .map_or(f64::NAN, |x| f64::from(*x) / 1000.0)
    };
    Ok((q(0.5), q(0.99)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    edgemeet_testsupport::node_client::init_crypto();
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let values = |name: &str| -> Vec<String> {
        args.windows(2)
            .filter(|w| w[0] == name)
            .map(|w| w[1].clone())
            .collect()
    };
    let quick = flag("--quick");
    let one_call = flag("--one-call");
    let loops = values("--loops").pop();
    let rooms: usize = values("--rooms")
        .pop()
        .map_or(Ok(1), |v| v.parse())
        .context("--rooms N")?;
    let mut cases: Vec<(usize, usize, u32)> = Vec::new();
    for c in values("--case") {
        let parse = || -> Option<(usize, usize, u32)> {
            let (ps, pps) = c.split_once('@')?;
            let (p, s) = ps.split_once('x')?;
            Some((p.parse().ok()?, s.parse().ok()?, pps.parse().ok()?))
        };
        cases.push(parse().with_context(|| format!("--case {c}: PxS@PPS, e.g. 4x8@1000"))?);
    }
    if cases.is_empty() {
        cases = if quick {
            vec![(2, 2, 500)]
        } else {
            vec![(2, 4, 1000), (4, 4, 1000), (4, 8, 1000), (4, 8, 1500)]
        };
    }
    let secs: u64 = match values("--secs").pop() {
        Some(v) => v.parse().context("--secs S")?,
        None if quick => 3,
        None => 8,
    };
    let bin = std::env::var("EDGEMEET_NODE_BIN").unwrap_or_else(|_| {
        let exe = std::env::current_exe().unwrap_or_default();
        exe.with_file_name("edgemeet-media-node")
            .display()
            .to_string()
    });
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let mut command = tokio::process::Command::new(&bin);
    command
        .env("EDGEMEET_NODE_ID", NODE_ID)
        .env("EDGEMEET_NODE_SECRET", SECRET)
        .env("EDGEMEET_NODE_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true);
    if let Some(n) = &loops {
        command.env("EDGEMEET_NODE_MEDIA_LOOPS", n);
    }
    let mut node = command
        .spawn()
        .with_context(|| format!("starting the node binary {bin}"))?;
    let pid = node.id().context("node pid")?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let up = Instant::now();
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        if up.elapsed() > Duration::from_secs(10) {
            bail!("node did not come up");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "media node benchmark: {PACKET_SIZE}-byte VP8-like packets, 50 frames/s, loopback, clients in the bench process, node in its own; media loops: {}; {rooms} room(s) per row",
        loops
            .as_deref()
            .unwrap_or("the node's default (one per core)")
    );
    println!(
        "{:>5} {:>4} x {:<4} {:>8} | {:>11} {:>9} {:>14} {:>10} {:>10} {:>10} {:>8} {:>6} {:>11} {:>10} {:>10}",
        "rooms",
        "pubs",
        "subs",
        "pps/pub",
        "fwd pkt/s",
        "node CPU",
        "CPU s/M pkts",
        "e2e p50",
        "e2e p99",
        "node p99",
        "loss",
        "dups",
        "clients CPU",
        "node drops",
        "KiB/sess"
    );
    if !flag("--no-direct") {
        let (b50, b99) = direct_baseline(1000, secs).await?;
        println!(
            "{:>5} {:>4} x {:<4} {:>8} | {:>11} {:>9} {:>14} {:>8.2}ms {:>8.2}ms {:>10} {:>8} {:>6} {:>11} {:>10} {:>10}",
            "-", "1", "1", 1000, "direct", "-", "-", b50, b99, "-", "-", "-", "-", "-", "-"
        );
    }
    for &(p, s, pps) in &cases {
        let r = run(&base, pid, rooms, p, s, pps, secs, one_call).await?;
        println!(
            "{:>5} {:>4} x {:<4} {:>8} | {:>11.0} {:>8.0}% {:>14.2} {:>8.2}ms {:>8.2}ms {:>8.0}us {:>7.3}% {:>6} {:>10.0}% {:>10.0} {:>10.0}",
            r.rooms,
            r.pubs,
            r.subs,
            r.pps_per_pub,
            r.fwd_pps,
            r.node_cpu * 100.0,
            r.cpu_per_m,
            r.p50_ms,
            r.p99_ms,
            r.node_p99_us,
            r.loss * 100.0,
            r.dups,
            r.clients_cpu * 100.0,
            r.node_drops,
            r.kib_per_session
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!(
        "node CPU: share of one core. e2e: publisher send to subscriber receive, both client \
         stacks included; the 'direct' row is the same traffic client to client without the node, \
         so the node adds about e2e minus direct. node p99: time inside the node from reading \
         the publisher's datagram to its copies encrypted and queued for the socket (histogram \
         bucket bound). KiB/sess: the node's resident memory grown while the row ran, per session."
    );
    let _ = node.kill().await;
    Ok(())
}
