//! Livestreams over RTMPS (RTMP in TLS, as Facebook Live requires): the stream reaches a real
//! RTMP server (ffmpeg listening) through a TLS front with a throwaway CA's certificate, and plays;
//! servers whose certificate the roots do not vouch for (another CA, another name) are refused
//! before anything of the session (the key) is sent.
//!
//! Debian's ffmpeg 5.1 cannot listen for RTMPS ("rtmp_listen not available for rtmps"), so the
//! TLS end is a rustls server in this test, passing the decrypted bytes to ffmpeg's RTMP server.
//! The publisher trusts the test's CA through `SSL_CERT_FILE`, as an operator with a private
//! ingest CA would: an environment variable, so one test in its own binary (no other test runs
//! while it is set).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use edgemeet_composer::rtmp::{RtmpTarget, StreamKey};
use edgemeet_composer::{Composition, Error, Output, Settings};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ServerConfig, ServerConnection};

use common::{
    KEY, capture_logs, check_meeting_file, free_port, meeting, rtmp_server, server_ended, work_dir,
};

/// A throwaway certificate authority.
fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A server certificate for `names`, issued by `ca`: the chain and the key, as rustls takes them.
fn server_cert(ca: &CertifiedIssuer<'static, KeyPair>, names: &[&str]) -> Arc<ServerConfig> {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, ca)
        .unwrap();
    let chain = vec![cert.der().clone(), ca.der().clone()];
    let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap();
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
    Arc::new(config)
}

/// What the TLS front saw of its first connection.
struct Front {
    port: u16,
    /// The handshake's outcome: `Err` with the reason when it failed.
    handshake: mpsc::Receiver<Result<(), String>>,
    /// Decrypted bytes passed on to the RTMP server.
    passed: Arc<AtomicU64>,
}

/// A TLS server on a port of its own for one connection: after the handshake, what the client
/// sends is decrypted and passed to the RTMP server at `backend`, and the server's answers are
/// encrypted back.
fn tls_front(config: Arc<ServerConfig>, backend: u16) -> Front {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, handshake) = mpsc::channel();
    let passed = Arc::new(AtomicU64::new(0));
    let counted = passed.clone();
    std::thread::spawn(move || {
        let (mut client, _) = listener.accept().unwrap();
        let mut conn = ServerConnection::new(config).unwrap();
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut client) {
                let _ = tx.send(Err(e.to_string()));
                return;
            }
        }
        // The server may still be starting: tried for a while.
        let deadline = Instant::now() + Duration::from_secs(10);
        let server = loop {
            match TcpStream::connect(("127.0.0.1", backend)) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("no RTMP server behind: {e}")));
                    return;
                }
            }
        };
        let _ = tx.send(Ok(()));
        pump(conn, client, server, counted);
    });
    Front {
        port,
        handshake,
        passed,
    }
}

/// Both ways until either end closes: the client's records decrypted to the server, the server's
/// bytes encrypted to the client.
fn pump(
    mut conn: ServerConnection,
    client: TcpStream,
    mut server: TcpStream,
    passed: Arc<AtomicU64>,
) {
    // What came with the client's last handshake record (its RTMP handshake, often) is already
    // decrypted: passed on first.
    let mut plain = vec![0u8; 64 * 1024];
    let mut first = Vec::new();
    while let Ok(m @ 1..) = conn.reader().read(&mut plain) {
        first.extend_from_slice(&plain[..m]);
    }
    if server.write_all(&first).is_err() {
        return;
    }
    passed.fetch_add(first.len() as u64, Ordering::Relaxed);
    let conn = Arc::new(Mutex::new(conn));
    let (down_conn, mut down_client, mut down_server) = (
        conn.clone(),
        client.try_clone().unwrap(),
        server.try_clone().unwrap(),
    );
    let down = std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = down_server.read(&mut buf) {
            let mut c = down_conn.lock().unwrap();
            if c.writer().write_all(&buf[..n]).is_err() {
                return;
            }
            while c.wants_write() {
                if c.write_tls(&mut down_client).is_err() {
                    return;
                }
            }
        }
    });
    let mut up_client = client;
    let mut buf = vec![0u8; 16 * 1024];
    'up: while let Ok(n @ 1..) = up_client.read(&mut buf) {
        let mut records = &buf[..n];
        while !records.is_empty() {
            let mut out = Vec::new();
            {
                let mut c = conn.lock().unwrap();
                if c.read_tls(&mut records).is_err() || c.process_new_packets().is_err() {
                    break 'up;
                }
                while let Ok(m @ 1..) = c.reader().read(&mut plain) {
                    out.extend_from_slice(&plain[..m]);
                }
            }
            if server.write_all(&out).is_err() {
                break 'up;
            }
            passed.fetch_add(out.len() as u64, Ordering::Relaxed);
        }
    }
    let _ = server.shutdown(std::net::Shutdown::Write);
    let _ = down.join();
}

/// A composition to `rtmps://127.0.0.1:{port}/live` that must be refused: the error, which names
/// TLS and not the key, and nothing left on disk.
fn refused(dir: &Path, port: u16) -> String {
    let target = RtmpTarget::parse(
        &format!("rtmps://127.0.0.1:{port}/live"),
        StreamKey::new(KEY),
    )
    .unwrap();
    let err = Composition::start(Settings::hd(dir.join("work")), Output::Rtmp(target))
        .err()
        .expect("the publisher refuses the server");
    assert!(matches!(err, Error::RtmpTls(_)), "a TLS error: {err}");
    assert!(!err.to_string().contains(KEY));
    assert!(!dir.join("work").exists(), "a refused start leaves nothing");
    err.to_string()
}

#[test]
fn rtmps_livestreams_play_and_untrusted_servers_are_refused() {
    let (logs, _guard) = capture_logs();
    let dir = work_dir("rtmps");
    let ours = ca("edgemeet test ingest CA");
    let roots = dir.join("ca.pem");
    std::fs::write(&roots, ours.pem()).unwrap();
    // SAFETY: the only test of this binary, and nothing runs yet that reads the environment.
    unsafe { std::env::set_var("SSL_CERT_FILE", &roots) };

    // A certificate of another CA: refused, nothing decrypted (the key never left).
    let front = tls_front(
        server_cert(&ca("someone else"), &["127.0.0.1"]),
        free_port(),
    );
    let why = refused(&dir, front.port);
    let seen = front
        .handshake
        .recv_timeout(Duration::from_secs(10))
        .unwrap();
    assert!(seen.is_err(), "the handshake failed on the server too");
    assert_eq!(front.passed.load(Ordering::Relaxed), 0);
    eprintln!("figure: another CA's certificate: {why}");

    // Our CA, but a certificate for another name: refused the same way.
    let front = tls_front(server_cert(&ours, &["ingest.example"]), free_port());
    let why = refused(&dir, front.port);
    assert!(
        front
            .handshake
            .recv_timeout(Duration::from_secs(10))
            .unwrap()
            .is_err()
    );
    assert_eq!(front.passed.load(Ordering::Relaxed), 0);
    eprintln!("figure: a certificate for another name: {why}");

    // Our CA and the right name: the stream plays.
    let backend = free_port();
    let received = dir.join("received.flv");
    let mut server = rtmp_server(backend, KEY, &received);
    let front = tls_front(server_cert(&ours, &["127.0.0.1"]), backend);
    let target = RtmpTarget::parse(
        &format!("rtmps://127.0.0.1:{}/live", front.port),
        StreamKey::new(KEY),
    )
    .unwrap();
    let composition = Composition::start(Settings::hd(dir.join("work")), Output::Rtmp(target))
        .expect("the livestream starts over RTMPS");
    assert_eq!(
        front
            .handshake
            .recv_timeout(Duration::from_secs(10))
            .unwrap(),
        Ok(())
    );
    let secs = 4.0;
    meeting(&composition.feeder(), secs);
    let report = composition.stop().expect("the stream ends cleanly");
    server_ended(&mut server);
    let (_, duration) = edgemeet_testsupport::media_files::probe(&received);
    eprintln!(
        "figure: rtmps livestream {report:?}: {} bytes through TLS, {duration:.2} s received",
        front.passed.load(Ordering::Relaxed)
    );
    check_meeting_file(&received, secs);
    assert!(!dir.join("work").exists(), "nothing left on disk");
    assert!(
        !logs.text().contains(KEY),
        "the stream key is in a log line"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
