//! The native host's logs never hold names, emails, avatars, chat, passwords, tokens or plain room
//! names, even at debug level.

use edgemeet_tests::{Client, Edge, tokens, unique_room};
use serde_json::json;

#[tokio::test]
async fn logs_hold_no_personal_data() {
    let mut edge = Edge::native(&[]);
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

    let logs = edge.stop();
    assert!(logs.contains("edge ready"), "the server logged: {logs}");
    assert!(
        logs.contains("room created"),
        "debug logs were captured: {logs}"
    );
    let signature = token.rsplit('.').next().unwrap();
    for secret in [
        room.as_str(),
        name,
        email,
        avatar,
        chat,
        password,
        "wrong-guess-planted",
        &token,
        signature,
        &bad_token,
        "Token User",
        "user@example.org",
    ] {
        assert!(
            !logs.contains(secret),
            "the logs contain `{secret}`:\n{logs}"
        );
    }
}
