//! The product-team guide (`docs/tokens.md`) works as written: its Python example, run with PyJWT,
//! issues HS256 and RS256 invites that `edgemeet token verify` accepts and the edge admits with the
//! right role, name and features.
//!
//! Needs `EDGEMEET_PYTHON`, a Python with PyJWT[crypto] (`tests/install/20-media.sh` provides it).

use std::io::Write;
use std::process::{Command, Stdio};

use edgemeet_tests::client::Client;
use edgemeet_tests::edge::{Edge, bin_path};
use edgemeet_tests::{repo_root, unique_room};
use serde_json::json;

fn python() -> String {
    std::env::var("EDGEMEET_PYTHON").unwrap_or_else(|_| {
        let cache = std::env::var("EDGEMEET_CACHE")
            .unwrap_or_else(|_| format!("{}/.cache/edgemeet", std::env::var("HOME").unwrap()));
        format!("{cache}/media-venv/bin/python")
    })
}

/// The first ```python block of the guide.
fn guide_example() -> String {
    let doc = std::fs::read_to_string(repo_root().join("docs/tokens.md")).unwrap();
    let start = doc
        .find("```python\n")
        .expect("a python example in docs/tokens.md")
        + 10;
    let len = doc[start..].find("```").unwrap();
    doc[start..start + len].to_string()
}

/// Run the guide's `invite(...)` with these Python keyword arguments; returns the token.
fn invite(call: &str) -> String {
    let script = format!("{}\nimport sys\nprint({call})\n", guide_example());
    let mut child = Command::new(python())
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "run {} ({e}): tests/install/20-media.sh sets up a Python with PyJWT",
                python()
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the guide's example fails: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn verify(token: &str, room: &str) -> (bool, String) {
    let out = Command::new(bin_path("edgemeet"))
        .args(["token", "verify", token, "--tenant", "acme", "--room", room])
        .arg("--config")
        .arg(repo_root().join("tests/fixtures/edge.toml"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn tokens_issued_as_the_guide_shows_are_admitted() {
    let room = unique_room("guide");
    let secret = "acme-hs256-secret-for-tests-0123456789abcdef";
    let pem =
        std::fs::read_to_string(repo_root().join("tests/fixtures/rs256-private.pem")).unwrap();

    let host = invite(&format!(
        "invite({room:?}, 'Ada Host', moderator=True, recording=True, hs256_secret={secret:?})"
    ));
    let guest = invite(&format!(
        "invite({room:?}, 'Bob Guest', rs256_private_pem={pem:?}, kid='k1')"
    ));

    let (ok, said) = verify(&host, &room);
    assert!(ok, "{said}");
    assert!(
        said.contains("moderator=true") && said.contains("recording"),
        "{said}"
    );
    let (ok, said) = verify(&guest, &room);
    assert!(ok && said.contains("moderator=false"), "{said}");
    // A token for this room is not one for another.
    let (ok, said) = verify(&host, "another-room");
    assert!(!ok && said.contains("token_wrong_room"), "{said}");
    // An expired one says so.
    let stale = invite(&format!(
        "invite({room:?}, 'Old', hs256_secret={secret:?}, lifetime_s=-120)"
    ));
    let (ok, said) = verify(&stale, &room);
    assert!(!ok && said.contains("token_expired"), "{said}");

    let edge = Edge::start();
    let mut a = Client::tenant_room(&edge, "acme", &room).await;
    let welcome = a.join(json!({"token": host})).await;
    assert_eq!(welcome["moderator"], true);
    assert_eq!(welcome["features"], json!(["recording"]));
    let mut b = Client::tenant_room(&edge, "acme", &room).await;
    let welcome = b.join(json!({"token": guest})).await;
    assert_eq!(welcome["moderator"], false);
    let ada = &welcome["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["moderator"] == true)
        .cloned()
        .expect("Bob sees the moderator");
    assert_eq!(ada["name"], "Ada Host", "the name comes from the token");
}
