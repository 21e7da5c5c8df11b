//! The lobby (knocking), roles with `moderation = "first"` (the fixture's `first` tenant) and
//! ending a meeting for everyone, on any edge.

use edgemeet_tests::{Client, Edge, unique_room};
use serde_json::{Value, json};

/// The next `lobby` message whose knock list has `n` entries.
async fn knocking(c: &mut Client, n: usize) -> Vec<Value> {
    loop {
        let msg = c.wait_for("lobby").await;
        let list = msg["knocking"].as_array().unwrap().clone();
        if list.len() == n {
            return list;
        }
    }
}

/// The next error (skipping what the room says meanwhile) has `code`.
async fn expect_code(c: &mut Client, code: &str) {
    let err = c.wait_for("error").await;
    assert_eq!(err["code"], code, "{err}");
}

#[tokio::test]
async fn lobby_knock_admit_refuse_and_admit_all() {
    let edge = Edge::start();
    let room = unique_room("lobby");
    let mut ada = Client::room(&edge, &room).await;
    ada.join(json!({"profile": {"name": "Ada"}})).await;
    let mut bea = Client::room(&edge, &room).await;
    bea.join(json!({"profile": {"name": "Bea"}})).await;
    ada.send(json!({"type": "set_lobby", "enabled": true}))
        .await;
    for c in [&mut ada, &mut bea] {
        let msg = c.wait_for("lobby").await;
        assert_eq!(msg["enabled"], true, "{msg}");
    }

    // Knock: the newcomer waits with the name they typed; every moderator sees it.
    let mut bob = Client::room(&edge, &room).await;
    let answer = bob.try_join(json!({"profile": {"name": "Bob"}})).await;
    assert_eq!(
        (answer["type"].as_str(), answer["reason"].as_str()),
        (Some("waiting"), Some("lobby")),
        "{answer}"
    );
    let list = knocking(&mut ada, 1).await;
    assert_eq!(list[0]["name"], "Bob");
    assert_eq!(knocking(&mut bea, 1).await[0]["name"], "Bob");
    bob.send(json!({"type": "chat", "text": "hello?"})).await;
    expect_code(&mut bob, "not_joined").await;

    // Admit.
    bea.send(json!({"type": "admit", "target": list[0]["id"]}))
        .await;
    let w = bob.wait_for_welcome().await;
    assert_eq!(w["participants"].as_array().unwrap().len(), 3);
    assert_eq!(w["lobby"], true);
    let joined = ada.wait_for("participant_joined").await;
    assert_eq!(joined["participant"]["name"], "Bob");

    // Refuse: the refused are told, then closed with 4005.
    let mut eve = Client::room(&edge, &room).await;
    assert_eq!(
        eve.try_join(json!({"profile": {"name": "Eve"}})).await["type"],
        "waiting"
    );
    let list = knocking(&mut ada, 1).await;
    ada.send(json!({"type": "refuse", "target": list[0]["id"]}))
        .await;
    let told = eve.recv().await;
    assert_eq!(
        (told["type"].as_str(), told["reason"].as_str()),
        (Some("refused"), Some("moderator")),
        "{told}"
    );
    assert_eq!(eve.expect_closed().await, (4005, "refused".to_string()));
    knocking(&mut ada, 0).await;

    // Admit all.
    let mut late = Vec::new();
    for name in ["Cy", "Di"] {
        let mut c = Client::room(&edge, &room).await;
        assert_eq!(
            c.try_join(json!({"profile": {"name": name}})).await["type"],
            "waiting"
        );
        late.push(c);
    }
    let list = knocking(&mut ada, 2).await;
    let names: Vec<&str> = list.iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Cy", "Di"], "in knock order");
    ada.send(json!({"type": "admit_all"})).await;
    for c in &mut late {
        let w = c.wait_for_welcome().await;
        assert!(w["participants"].as_array().unwrap().len() >= 4);
    }
}

#[tokio::test]
async fn roles_with_first_grant_and_take_back_and_only_moderators_act() {
    let edge = Edge::start();
    let room = unique_room("first");
    let mut ada = Client::tenant_room(&edge, "first", &room).await;
    assert_eq!(ada.join(json!({})).await["moderator"], true);
    let mut bob = Client::tenant_room(&edge, "first", &room).await;
    assert_eq!(bob.join(json!({})).await["moderator"], false);
    let mut cy = Client::tenant_room(&edge, "first", &room).await;
    cy.join(json!({})).await;
    let (aid, bid, cid) = (
        ada.id().to_string(),
        bob.id().to_string(),
        cy.id().to_string(),
    );

    for action in [
        json!({"type": "kick", "target": cid}),
        json!({"type": "mute", "target": cid, "kind": "audio"}),
        json!({"type": "mute_all", "kind": "video"}),
        json!({"type": "set_password", "password": "pw"}),
        json!({"type": "set_lobby", "enabled": true}),
        json!({"type": "end_meeting"}),
        json!({"type": "set_moderator", "target": bid, "moderator": true}),
    ] {
        bob.send(action.clone()).await;
        expect_code(&mut bob, "not_moderator").await;
    }

    ada.send(json!({"type": "set_moderator", "target": bid, "moderator": true}))
        .await;
    let up = cy.wait_for("participant_updated").await;
    assert_eq!(
        (
            up["participant"]["id"].as_str(),
            &up["participant"]["moderator"]
        ),
        (Some(bid.as_str()), &json!(true))
    );
    bob.wait_for("participant_updated").await;
    bob.send(json!({"type": "mute", "target": cid, "kind": "audio"}))
        .await;
    assert_eq!(cy.wait_for("muted").await["by"], json!(bid));

    ada.send(json!({"type": "set_moderator", "target": bid, "moderator": false}))
        .await;
    let up = bob.wait_for("participant_updated").await;
    assert_eq!(up["participant"]["moderator"], false);
    bob.send(json!({"type": "kick", "target": cid})).await;
    expect_code(&mut bob, "not_moderator").await;
    ada.send(json!({"type": "set_moderator", "target": aid, "moderator": false}))
        .await;
    expect_code(&mut ada, "roles_fixed").await;

    // Where everyone moderates, roles are fixed.
    let open_room = unique_room("everyone");
    let mut x = Client::room(&edge, &open_room).await;
    x.join(json!({})).await;
    let mut y = Client::room(&edge, &open_room).await;
    y.join(json!({})).await;
    let yid = y.id().to_string();
    x.send(json!({"type": "set_moderator", "target": yid, "moderator": false}))
        .await;
    expect_code(&mut x, "roles_fixed").await;
}

#[tokio::test]
async fn a_moderator_ends_the_meeting_for_everyone() {
    let edge = Edge::start();
    let room = unique_room("end");
    let mut ada = Client::tenant_room(&edge, "first", &room).await;
    ada.join(json!({})).await;
    let mut bob = Client::tenant_room(&edge, "first", &room).await;
    let first_meeting = bob.join(json!({})).await["meeting_id"].clone();
    ada.send(json!({"type": "set_lobby", "enabled": true}))
        .await;
    ada.wait_for("lobby").await;
    let mut knocker = Client::tenant_room(&edge, "first", &room).await;
    assert_eq!(knocker.try_join(json!({})).await["type"], "waiting");

    bob.send(json!({"type": "end_meeting"})).await;
    expect_code(&mut bob, "not_moderator").await;
    ada.send(json!({"type": "end_meeting"})).await;
    let aid = ada.id().to_string();
    for c in [&mut ada, &mut bob, &mut knocker] {
        let msg = c.wait_for("meeting_ended").await;
        assert_eq!(msg["by"], json!(aid));
        assert_eq!(c.expect_closed().await, (4004, "meeting ended".to_string()));
    }
    let mut next = Client::tenant_room(&edge, "first", &room).await;
    let w = next.join(json!({})).await;
    assert_ne!(w["meeting_id"], first_meeting, "a new meeting");
    assert_eq!(w["lobby"], false);
}
