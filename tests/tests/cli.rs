//! The `edgemeet` command line: config check names the offending key, tokens mint and verify.

use std::process::{Command, Output};

use edgemeet_tests::edge::bin_path;
use edgemeet_tests::repo_root;

fn edgemeet(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(bin_path("edgemeet"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run edgemeet")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn fixture() -> String {
    repo_root()
        .join("tests/fixtures/edge.toml")
        .display()
        .to_string()
}

#[test]
fn config_check_accepts_the_fixture_and_names_bad_keys() {
    let ok = edgemeet(&["config", "check", &fixture()], &[]);
    assert!(ok.status.success(), "{}", text(&ok));
    let dir = std::env::temp_dir().join(format!("edgemeet-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (body, key) in [
        ("listen = \"nowhere\"", "listen"),
        ("[edge]\nnode_secret = \"short\"", "node_secret"),
        (
            "[edge.tenants.acme]\nauth = \"jwt\"\nissuers = [\"x\"]",
            "edge.tenants.acme.hs256_secret",
        ),
        (
            "[edge.tenants.acme]\nauth = \"jwt\"\nissuers = [\"x\"]\nrs256_public_keys = { k1 = \"not a key\" }",
            "rs256_public_keys.k1",
        ),
        ("[edge]\ndefault_tenant = \"nope\"", "default_tenant"),
        ("region = \"mars\"", "region `mars` is unknown"),
        (
            "[media_node]\nregion = \"atlantis\"",
            "region `atlantis` is unknown",
        ),
        ("[edge.limits]\nroom_capacity = \"many\"", "room_capacity"),
    ] {
        let file = dir.join("bad.toml");
        std::fs::write(&file, body).unwrap();
        let out = edgemeet(&["config", "check", file.to_str().unwrap()], &[]);
        let said = text(&out);
        assert!(!out.status.success(), "{body} was accepted");
        assert!(
            said.contains(key),
            "`{body}`: the message names `{key}`: {said}"
        );
        assert!(
            !said.contains("panicked") && !said.contains("RUST_BACKTRACE"),
            "{said}"
        );
    }
}

#[test]
fn config_check_names_a_bad_variable() {
    // EDGEMEET_RECORDING is a switch on both hosts; the Worker's old JSON form is explained.
    for (value, named) in [
        ("sometimes", "EDGEMEET_RECORDING"),
        (
            r#"{"dropbox":{"app_key":"k1"}}"#,
            "EDGEMEET_DROPBOX_APP_KEY",
        ),
    ] {
        let out = edgemeet(
            &["config", "check", &fixture()],
            &[("EDGEMEET_RECORDING", value)],
        );
        let said = text(&out);
        assert!(
            !out.status.success(),
            "EDGEMEET_RECORDING={value} was accepted"
        );
        assert!(said.contains(named), "{value}: {said}");
    }
    let out = edgemeet(
        &["config", "check", &fixture()],
        &[("EDGEMEET_RECORDING", "off")],
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_busy_port_fails_with_a_clear_message() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = edgemeet(&["--config", &fixture(), "--listen", &addr], &[]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("cannot listen on") && said.contains(&addr),
        "{said}"
    );
}

#[test]
fn tokens_mint_and_verify_and_refusals_are_explained() {
    let secret = (
        "EDGEMEET_HS256_SECRET",
        "acme-hs256-secret-for-tests-0123456789abcdef",
    );
    let mint = edgemeet(
        &[
            "token",
            "--tenant",
            "acme",
            "--room",
            "standup",
            "--moderator",
            "--feature",
            "recording",
            "--issuer",
            "acme-backend",
        ],
        &[secret],
    );
    assert!(mint.status.success(), "{}", text(&mint));
    let token = String::from_utf8(mint.stdout).unwrap().trim().to_string();
    assert_eq!(token.split('.').count(), 3);

    let ok = edgemeet(
        &[
            "token",
            "verify",
            &token,
            "-c",
            &fixture(),
            "--tenant",
            "acme",
        ],
        &[],
    );
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("moderator=true"), "{}", text(&ok));

    let wrong_room = edgemeet(
        &[
            "token",
            "verify",
            &token,
            "-c",
            &fixture(),
            "--tenant",
            "acme",
            "--room",
            "other",
        ],
        &[],
    );
    assert!(!wrong_room.status.success());
    assert!(
        text(&wrong_room).contains("token_wrong_room"),
        "{}",
        text(&wrong_room)
    );

    let rs = edgemeet(
        &[
            "token",
            "--tenant",
            "rsonly",
            "--issuer",
            "acme-backend",
            "--rs256-key",
            repo_root()
                .join("tests/fixtures/rs256-private.pem")
                .to_str()
                .unwrap(),
            "--kid",
            "k1",
        ],
        &[],
    );
    let rs_token = String::from_utf8(rs.stdout).unwrap().trim().to_string();
    let ok = edgemeet(
        &[
            "token",
            "verify",
            &rs_token,
            "-c",
            &fixture(),
            "--tenant",
            "rsonly",
            "--room",
            "any",
        ],
        &[],
    );
    assert!(ok.status.success(), "{}", text(&ok));
    let wrong_tenant = edgemeet(
        &[
            "token",
            "verify",
            &rs_token,
            "-c",
            &fixture(),
            "--tenant",
            "acme",
            "--room",
            "any",
        ],
        &[],
    );
    assert!(
        text(&wrong_tenant).contains("token_wrong_tenant"),
        "{}",
        text(&wrong_tenant)
    );
}

#[tokio::test]
async fn health_and_metrics_endpoints_answer_without_personal_data() {
    let token = "metrics-token-for-tests-0123456789";
    let edge = edgemeet_tests::Edge::native(&[("EDGEMEET_METRICS_TOKEN", token)]);
    let hp = edge.host_port();
    for path in ["/healthz", "/readyz"] {
        let r = edgemeet_tests::http::get(&hp, path).await;
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, b"ok".as_slice()),
            "{path}"
        );
    }
    let room = edgemeet_tests::unique_room("metrics");
    let mut c = edgemeet_tests::Client::room(&edge, &room).await;
    c.join(serde_json::json!({"profile": {"name": "Metric Person"}}))
        .await;
    let auth = format!("Bearer {token}");
    let m = edgemeet_tests::http::request(&hp, "GET", "/metrics", &[("Authorization", &auth)], b"")
        .await;
    let body = String::from_utf8(m.body).unwrap();
    assert!(body.contains("edgemeet_rooms_active 1"), "{body}");
    assert!(body.contains("edgemeet_sockets 1"), "{body}");
    assert!(!body.contains(&room) && !body.contains("Metric Person"));
}

#[tokio::test]
async fn sigterm_closes_sockets_with_going_away_and_exits() {
    let mut edge = edgemeet_tests::Edge::native(&[]);
    let mut c = edgemeet_tests::Client::room(&edge, &edgemeet_tests::unique_room("shutdown")).await;
    c.join(serde_json::json!({})).await;
    let started = std::time::Instant::now();
    let stopper = std::thread::spawn(move || {
        let logs = edge.stop();
        (edge.exited_cleanly(), logs)
    });
    let (code, reason) = c.expect_closed().await;
    assert_eq!((code, reason.as_str()), (1001, "server shutting down"));
    let (clean, logs) = stopper.join().unwrap();
    assert!(clean, "edgemeet exits 0 on SIGTERM: {logs}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn serves_https_with_a_configured_certificate() {
    let dir = std::env::temp_dir().join(format!("edgemeet-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{}", text(&made));
    let env = [
        ("EDGEMEET_TLS_CERT", cert.to_str().unwrap()),
        ("EDGEMEET_TLS_KEY", key.to_str().unwrap()),
    ];
    let edge = edgemeet_tests::Edge::native(&env);
    assert!(edge.base.starts_with("https://"), "{}", edge.base);
    let page = Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            cert.to_str().unwrap(),
            &format!("{}/some-room", edge.base),
        ])
        .output()
        .expect("curl");
    assert!(page.status.success(), "{}", text(&page));
    assert!(String::from_utf8_lossy(&page.stdout).contains("<title>edgemeet</title>"));

    // A key that does not match, or a missing file, stops the start with a clear message.
    let out = edgemeet(
        &["--config", &fixture()],
        &[
            ("EDGEMEET_TLS_CERT", cert.to_str().unwrap()),
            ("EDGEMEET_TLS_KEY", "/nonexistent.pem"),
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("tls.key"), "{}", text(&out));
}
