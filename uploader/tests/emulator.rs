//! The Dropbox emulator itself keeps Dropbox's rules: these tests pin its strictness, so the
//! uploader tests cannot pass against a lenient stand-in.

mod support;

use serde_json::{Value, json};
use support::dropbox_emulator::Emulator;

const TOKEN: &str = "sl.emu-strict";

async fn emu() -> Emulator {
    edgemeet_uploader::install_crypto_provider();
    let e = Emulator::start().await;
    e.add_account(TOKEN, "r", "app");
    e
}

async fn content(e: &Emulator, ep: &str, arg: &[u8], body: Vec<u8>) -> (u16, Value, String) {
    let r = reqwest::Client::new()
        .post(format!("{}/2/files/{ep}", e.url()))
        .bearer_auth(TOKEN)
        .header(
            "Dropbox-API-Arg",
            reqwest::header::HeaderValue::from_bytes(arg).unwrap(),
        )
        .header("Content-Type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

#[tokio::test]
async fn raw_non_ascii_argument_is_refused_escaped_is_accepted() {
    let e = emu().await;
    let raw = "{\"path\":\"/Réunion.webm\",\"mode\":\"add\"}".as_bytes();
    let (status, _, text) = content(&e, "upload", raw, b"x".to_vec()).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("Dropbox-API-Arg"));
    let safe = edgemeet_uploader::dropbox::header_safe_json(
        &json!({"path": "/Réunion.webm", "mode": "add"}),
    );
    let (status, v, _) = content(&e, "upload", safe.as_bytes(), b"x".to_vec()).await;
    assert_eq!(status, 200);
    assert_eq!(v["path_display"], "/Réunion.webm");
}

#[tokio::test]
async fn sessions_enforce_offsets_with_dropbox_error_shapes() {
    let e = emu().await;
    let (_, v, _) = content(&e, "upload_session/start", b"{}", vec![1; 10]).await;
    let sid = v["session_id"].as_str().unwrap().to_owned();
    let arg = json!({"cursor": {"session_id": sid, "offset": 3}}).to_string();
    let (status, v, _) = content(&e, "upload_session/append_v2", arg.as_bytes(), vec![1; 5]).await;
    assert_eq!(status, 409);
    assert!(
        v["error_summary"]
            .as_str()
            .unwrap()
            .starts_with("incorrect_offset/")
    );
    assert_eq!(
        v["error"],
        json!({".tag": "incorrect_offset", "correct_offset": 10})
    );
    let arg = json!({"cursor": {"session_id": sid, "offset": 99}, "commit": {"path": "/a.bin"}})
        .to_string();
    let (status, v, _) = content(&e, "upload_session/finish", arg.as_bytes(), vec![]).await;
    assert_eq!(status, 409);
    assert_eq!(v["error"]["lookup_failed"]["correct_offset"], 10);
    let arg = json!({"cursor": {"session_id": "nope", "offset": 0}}).to_string();
    let (_, v, _) = content(&e, "upload_session/append_v2", arg.as_bytes(), vec![]).await;
    assert!(
        v["error_summary"]
            .as_str()
            .unwrap()
            .starts_with("not_found/")
    );
    // Conflict without autorename.
    content(&e, "upload", br#"{"path":"/c.bin"}"#, vec![1]).await;
    let (status, v, _) = content(
        &e,
        "upload",
        br#"{"path":"/c.bin","mode":"add","autorename":false}"#,
        vec![2],
    )
    .await;
    assert_eq!(status, 409);
    assert!(
        v["error_summary"]
            .as_str()
            .unwrap()
            .starts_with("path/conflict/file")
    );
}

#[tokio::test]
async fn concurrent_sessions_need_4_mib_multiples() {
    let e = emu().await;
    let (_, v, _) = content(
        &e,
        "upload_session/start",
        br#"{"session_type":{".tag":"concurrent"}}"#,
        vec![],
    )
    .await;
    let sid = v["session_id"].as_str().unwrap().to_owned();
    let arg = json!({"cursor": {"session_id": sid, "offset": 0}}).to_string();
    let (status, v, _) = content(
        &e,
        "upload_session/append_v2",
        arg.as_bytes(),
        vec![0; 1000],
    )
    .await;
    assert_eq!(status, 409);
    assert!(
        v["error_summary"]
            .as_str()
            .unwrap()
            .starts_with("concurrent_session_invalid_data_size")
    );
    let arg = json!({"cursor": {"session_id": sid, "offset": 1000}, "close": true}).to_string();
    let (_, v, _) = content(&e, "upload_session/append_v2", arg.as_bytes(), vec![0; 10]).await;
    assert!(
        v["error_summary"]
            .as_str()
            .unwrap()
            .starts_with("concurrent_session_invalid_offset")
    );
}

#[tokio::test]
async fn auth_content_type_and_size_limits() {
    let e = emu().await;
    let http = reqwest::Client::new();
    // Unknown token: 401 invalid_access_token.
    let r = http
        .post(format!("{}/2/files/upload", e.url()))
        .bearer_auth("sl.wrong")
        .header("Dropbox-API-Arg", r#"{"path":"/x"}"#)
        .header("Content-Type", "application/octet-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("invalid_access_token"));
    // Wrong content type: 400.
    let r = http
        .post(format!("{}/2/files/upload", e.url()))
        .bearer_auth(TOKEN)
        .header("Dropbox-API-Arg", r#"{"path":"/x"}"#)
        .header("Content-Type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Over 150 MiB declared: refused before reading.
    let r = http
        .post(format!("{}/2/files/upload", e.url()))
        .bearer_auth(TOKEN)
        .header("Dropbox-API-Arg", r#"{"path":"/x"}"#)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Length", 150 * 1024 * 1024 + 1)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            Vec::<Result<Vec<u8>, std::io::Error>>::new(),
        )))
        .send()
        .await;
    if let Ok(r) = r {
        assert_eq!(r.status(), 409);
    }
    // OAuth refresh: wrong refresh token refused, right one gives a working token.
    let r = http
        .post(format!("{}/oauth2/token", e.url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "bad"),
            ("client_id", "app"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = http
        .post(format!("{}/oauth2/token", e.url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "r"),
            ("client_id", "app"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["expires_in"], 14400);
    assert!(v["access_token"].as_str().unwrap().starts_with("sl."));
}
