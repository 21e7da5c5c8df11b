//! The Dropbox emulator itself keeps Dropbox's rules: these tests pin its strictness, so the
//! uploader tests cannot pass against a lenient stand-in.

mod support;

use edgemeet_testsupport::dropbox_emulator::Emulator;
use serde_json::{Value, json};
use sha2::Digest;

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

/// Starts a session holding `data`, closed by its append.
async fn session_with(e: &Emulator, data: &[u8]) -> String {
    let (_, v, _) = content(e, "upload_session/start", b"{}", vec![]).await;
    let sid = v["session_id"].as_str().unwrap().to_owned();
    let arg = json!({"cursor": {"session_id": sid, "offset": 0}, "close": true}).to_string();
    let (status, _, text) =
        content(e, "upload_session/append_v2", arg.as_bytes(), data.to_vec()).await;
    assert_eq!(status, 200, "{text}");
    sid
}

fn finish_arg(sid: &str, offset: usize, path: &str) -> String {
    json!({"cursor": {"session_id": sid, "offset": offset},
           "commit": {"path": path, "mode": "add", "autorename": false}})
    .to_string()
}

async fn metadata(e: &Emulator, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/2/files/get_metadata", e.url()))
        .bearer_auth(TOKEN)
        .json(&json!({"path": path}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_committed_session_answers_closed_and_metadata_has_the_content_hash() {
    let e = emu().await;
    // 9 MiB: three 4 MiB blocks, the last one partial.
    let data: Vec<u8> = (0..9 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let sid = session_with(&e, &data).await;
    let arg = finish_arg(&sid, data.len(), "/r/a.bin");
    let (status, v, _) = content(&e, "upload_session/finish", arg.as_bytes(), vec![]).await;
    assert_eq!(status, 200);
    // Dropbox's algorithm, written out here independently of the emulator's.
    let mut concat = Vec::new();
    for block in data.chunks(4 * 1024 * 1024) {
        concat.extend_from_slice(&sha2::Sha256::digest(block));
    }
    let expected = hex::encode(sha2::Sha256::digest(&concat));
    assert_eq!(v["content_hash"], expected.as_str());
    // Finishing it again (its first answer was lost): Dropbox says the session is closed.
    let (status, v, _) = content(&e, "upload_session/finish", arg.as_bytes(), vec![]).await;
    assert_eq!(status, 409);
    assert!(
        v["error_summary"]
            .as_str()
            .unwrap()
            .starts_with("lookup_failed/closed/"),
        "{v}"
    );
    assert_eq!(v["error"]["lookup_failed"][".tag"], "closed");
    let arg = json!({"cursor": {"session_id": sid, "offset": data.len()}}).to_string();
    let (_, v, _) = content(&e, "upload_session/append_v2", arg.as_bytes(), vec![1]).await;
    assert!(v["error_summary"].as_str().unwrap().starts_with("closed/"));
    // What is at the path tells the truth.
    let (status, v) = metadata(&e, "/R/A.bin").await;
    assert_eq!(status, 200);
    assert_eq!(
        (v["size"].as_u64(), v["content_hash"].as_str()),
        (Some(data.len() as u64), Some(expected.as_str()))
    );
    assert_eq!(metadata(&e, "/r/none.bin").await.0, 409);
}

#[tokio::test]
async fn a_path_error_keeps_the_session_for_another_finish() {
    let e = emu().await;
    e.put_file("/r/taken.bin", b"someone else's");
    let sid = session_with(&e, b"ours").await;
    let (status, v, _) = content(
        &e,
        "upload_session/finish",
        finish_arg(&sid, 4, "/r/taken.bin").as_bytes(),
        vec![],
    )
    .await;
    assert_eq!(status, 409);
    assert!(
        v["error_summary"]
            .as_str()
            .unwrap()
            .starts_with("path/conflict/file")
    );
    // Dropbox: "Data has already been appended to the upload session. Please retry".
    e.set_quota(Some(10));
    let (_, v, _) = content(
        &e,
        "upload_session/finish",
        finish_arg(&sid, 4, "/r/free.bin").as_bytes(),
        vec![],
    )
    .await;
    assert!(
        v["error_summary"]
            .as_str()
            .unwrap()
            .starts_with("path/insufficient_space"),
        "{v}"
    );
    e.set_quota(None);
    let (status, v, _) = content(
        &e,
        "upload_session/finish",
        finish_arg(&sid, 4, "/r/free.bin").as_bytes(),
        vec![],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["path_display"], "/r/free.bin");
}

#[tokio::test]
async fn a_revoked_grant_refuses_its_tokens() {
    let e = emu().await;
    e.revoke("r");
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/2/files/get_metadata", e.url()))
        .bearer_auth(TOKEN)
        .json(&json!({"path": "/x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("invalid_access_token"));
    let r = http
        .post(format!("{}/oauth2/token", e.url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "r"),
            ("client_id", "app"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    assert_eq!(e.stats().token_requests, 1);
}
