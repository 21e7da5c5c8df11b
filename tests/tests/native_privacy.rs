//! The native host's logs never hold names, emails, avatars, chat, passwords, tokens, node grants,
//! recording status links, secrets, access key ids or plain room names, even at trace level (the
//! all-in-one: embedded node, storage and uploader included).

use std::time::Duration;

use edgemeet_tests::{Client, Edge, http, tokens, unique_room};
use serde_json::json;

/// From `tests/fixtures/edge.toml`.
const FIXTURE_SECRETS: [&str; 4] = [
    "conformance-node-secret-0123456789abcdef",
    "conformance-hash-key-0123456789",
    "acme-hs256-secret-for-tests-0123456789abcdef",
    "host-hs256-secret-for-tests-0123456789abcdef",
];

#[tokio::test]
async fn logs_hold_no_personal_data_or_secret_even_at_trace() {
    let mut edge = Edge::native(&[("EDGEMEET_LOG", "trace")]);
    let room = unique_room("planted-room-name");
    let name = "Planted Name Zyx";
    let email = "planted.email@example.org";
    let avatar = "https://planted-avatar.example.org/me.png";
    let chat = "planted chat text qwv";
    let password = "planted-password-kjh";

    let mut a = Client::room(&edge, &room).await;
    a.join(json!({"profile": {"name": name, "email": email, "avatar": avatar}}))
        .await;
    a.send(json!({"type": "chat", "text": chat})).await;
    a.send(json!({"type": "set_password", "password": password}))
        .await;
    a.wait_for("room_locked").await;
    let mut b = Client::room(&edge, &room).await;
    assert_eq!(
        b.try_join(json!({"password": "wrong-guess-planted"})).await["code"],
        "password_wrong"
    );
    b.join(json!({"password": password})).await;
    // The pair's standby grants on the embedded node.
    let mut grants = Vec::new();
    for c in [&mut a, &mut b] {
        let m = c.wait_for_mode("p2p").await;
        let mut m = m;
        while m["media"]["standby"].is_null() {
            m = c.wait_for_mode("p2p").await;
        }
        grants.push(m["media"]["standby"]["token"].as_str().unwrap().to_string());
    }

    // A recording (to the all-in-one's local folder): its status link goes to the recorder, who
    // reads it (JSON and page) through the edge, as the page does.
    a.send(json!({"type": "start_recording"})).await;
    let status_token = a.wait_for("recording_status_link").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    for accept in ["application/json", "text/html"] {
        let link = http::request(
            &edge.host_port(),
            "GET",
            &format!("/v1/recording-status/{status_token}"),
            &[("Accept", accept)],
            b"",
        )
        .await;
        assert_eq!(link.status, 200, "{accept}");
    }
    a.send(json!({"type": "stop_recording"})).await;

    let token = tokens::acme_moderator(&room);
    let mut t = Client::tenant_room(&edge, "acme", &room).await;
    t.join(json!({"token": token})).await;
    let bad_token = tokens::hs256(
        &tokens::claims("acme", &room, true),
        "planted-wrong-secret-0123456789abcdef",
    );
    let mut u = Client::tenant_room(&edge, "acme", &room).await;
    u.try_join(json!({"token": bad_token})).await;
    for c in [a, b, t, u] {
        c.close().await;
    }
    // The embedded uploader has called its storage with signed S3 requests (it checks the
    // bucket and its lifecycle rule before it says it is ready) and polled it since.
    assert!(edge.wait_logs(|l| l.contains("recording ready"), Duration::from_secs(10)));
    tokio::time::sleep(Duration::from_secs(1)).await;

    let logs = edge.stop();
    assert!(logs.contains("edge ready"), "the server logged: {logs}");
    assert!(logs.contains(" TRACE "), "trace logs were captured: {logs}");
    let signature = token.rsplit('.').next().unwrap();
    let mut planted: Vec<String> = [
        room.as_str(),
        name,
        email,
        avatar,
        chat,
        password,
        "wrong-guess-planted",
        &status_token,
        &token,
        signature,
        &bad_token,
        "Token User",
        "user@example.org",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    planted.extend(FIXTURE_SECRETS.iter().map(|s| s.to_string()));
    for grant in &grants {
        planted.push(grant.clone());
        planted.push(grant.rsplit('.').next().unwrap().to_string());
    }
    for secret in &planted {
        assert!(
            !logs.contains(secret.as_str()),
            "the logs contain `{secret}`"
        );
        // Frames logged as hex would hold them too.
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(!logs.contains(&hex), "the logs contain `{secret}` in hex");
    }
    // The embedded storage's credentials (generated per process): no access key id, no
    // signature, in any form the AWS SDK or the storage would print them.
    for marker in [
        // The embedded storage's access key id always starts so.
        "EDGEMEETAK",
        "Credential=",
        "access_key_id",
        "AWS4-HMAC-SHA256",
        "Signature=",
    ] {
        assert!(!logs.contains(marker), "the logs contain `{marker}`");
    }
}
