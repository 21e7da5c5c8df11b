//! A recording's delivery status, and the recorder's link to it.
//!
//! The status lives in storage beside the manifest (`{prefix}{recording_id}/status.json`): the
//! uploader keeps no state of its own across restarts, several uploaders (or the all-in-one's
//! edge) can serve it, and it is deleted by the same purge as the recording.
//!
//! The link is a capability: `/v1/recording-status/{token}`, with `token` 128 random bits (32 hex
//! digits) made when recording starts. The recording id is derived from it one way
//! (`SHA-256("edgemeet-recording-status-v1:" token)`, first 128 bits, hex), so the token finds its
//! status with no index, while the recording id (in file names, logs, storage keys) does not lead
//! back to the token. The link shows the state only: no names, no room, no ids, no paths; it
//! stops answering when the recording is purged.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use edgemeet_protocol::job::{
    DeliveryProblem, DeliveryState, DeliveryStatus, RecordingStatus, STATUS_FILE, STATUS_VERSION,
};
use sha2::{Digest, Sha256};

use crate::clock::{Clock, unix_ms, utc_date};
use crate::error::Error;
use crate::store::Store;

/// Where the status link is served (the router's only route).
pub const STATUS_PATH: &str = "/v1/recording-status/";

const DERIVATION: &str = "edgemeet-recording-status-v1:";

/// A new recording's id and its status token: `(recording_id, status_token)`.
pub fn new_recording_ids() -> (String, String) {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).expect("OS random source");
    let token = hex::encode(b);
    let id = recording_id_for(&token).expect("a fresh token is well formed");
    (id, token)
}

/// The recording id a status token stands for; `None` unless it is 32 lowercase hex digits.
pub fn recording_id_for(token: &str) -> Option<String> {
    let ok = token.len() == 32
        && token
            .bytes()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    if !ok {
        return None;
    }
    let digest = Sha256::digest(format!("{DERIVATION}{token}").as_bytes());
    Some(hex::encode(&digest[..16]))
}

pub(crate) fn status_key(store: &Store, recording_id: &str) -> String {
    format!("{}{recording_id}/{STATUS_FILE}", store.prefix())
}

/// A recording's status; `None` if there is none (or it is unreadable: treated as none).
pub async fn read(store: &Store, recording_id: &str) -> Result<Option<RecordingStatus>, Error> {
    let Some(body) = store.get_small(&status_key(store, recording_id)).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<RecordingStatus>(&body)
        .ok()
        .filter(|s| s.v == STATUS_VERSION))
}

pub async fn write(
    store: &Store,
    recording_id: &str,
    status: &RecordingStatus,
) -> Result<(), Error> {
    let body = serde_json::to_vec(status).expect("status serializes");
    store
        .put_small(&status_key(store, recording_id), body, "application/json")
        .await
}

/// Written by the media node when recording starts, so the link answers "recording" at once.
pub async fn write_recording_started(
    store: &Store,
    recording_id: &str,
    started_at: SystemTime,
) -> Result<(), Error> {
    let status = RecordingStatus::new(DeliveryState::Recording, unix_ms(started_at));
    write(store, recording_id, &status).await
}

#[derive(Clone)]
struct Ctx {
    store: Store,
    retention: Duration,
    clock: Arc<dyn Clock>,
}

/// `GET /v1/recording-status/{token}`: JSON (`DeliveryStatus`), or a small page for a browser
/// (`Accept: text/html`). 404 for a malformed, unknown or purged token alike.
pub fn router(store: Store, retention: Duration, clock: Arc<dyn Clock>) -> Router {
    Router::new()
        .route(&format!("{STATUS_PATH}{{token}}"), get(serve))
        .with_state(Ctx {
            store,
            retention,
            clock,
        })
}

/// Headers every answer carries: the URL is a secret, so it must not leak through a Referer,
/// a cache or a search engine; any origin may read the JSON (no cookies are involved).
fn guarded(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, "no-store".parse().unwrap());
    h.insert(header::REFERRER_POLICY, "no-referrer".parse().unwrap());
    h.insert("x-robots-tag", "noindex, nofollow".parse().unwrap());
    h.insert("x-content-type-options", "nosniff".parse().unwrap());
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".parse().unwrap());
    r
}

async fn serve(State(cx): State<Ctx>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    let html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let found = match recording_id_for(&token) {
        None => Ok(None),
        Some(id) => read(&cx.store, &id).await,
    };
    let view = match found {
        Ok(Some(st)) => {
            let purge_at_ms = st.started_at_ms + cx.retention.as_millis() as u64;
            // Past the retention the recording is gone (or about to be): so is its status.
            (unix_ms(cx.clock.now()) < purge_at_ms).then(|| st.view(purge_at_ms))
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "status link: storage not readable");
            let r = (
                StatusCode::SERVICE_UNAVAILABLE,
                "storage not reachable, try again",
            )
                .into_response();
            return guarded(r);
        }
    };
    let r = match (view, html) {
        (Some(v), false) => axum::Json(v).into_response(),
        (Some(v), true) => page(StatusCode::OK, &describe(&v), !v.state.is_final()),
        (None, false) => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": "unknown or expired"})),
        )
            .into_response(),
        (None, true) => page(
            StatusCode::NOT_FOUND,
            "No recording is known under this link. Recordings and their status are deleted \
             from our storage within 24 hours, delivered or not.",
            false,
        ),
    };
    guarded(r)
}

/// `YYYY-MM-DD HH:MM UTC`.
fn utc_time(ms: u64) -> String {
    let mins = (ms / 60_000) % (24 * 60);
    format!("{} {:02}:{:02} UTC", utc_date(ms), mins / 60, mins % 60)
}

/// One sentence a recorder can act on.
pub fn describe(v: &DeliveryStatus) -> String {
    let purge = utc_time(v.purge_at_ms);
    let files = format!("{} of {} files", v.files_delivered, v.files);
    let why = match v.problem {
        Some(DeliveryProblem::GrantRevoked) => {
            "access to your Dropbox was revoked, so the files cannot be delivered"
        }
        Some(DeliveryProblem::DropboxFull) => {
            "your Dropbox is full; free some space and delivery is tried again"
        }
        Some(DeliveryProblem::DropboxUnreachable) => "Dropbox is not answering",
        Some(DeliveryProblem::DropboxRefused) => "Dropbox refused the upload",
        Some(DeliveryProblem::DeliveryMismatch) => "what arrived differed from what was sent",
        Some(DeliveryProblem::StorageUnreachable) => "our storage is not answering",
        Some(DeliveryProblem::StorageMismatch) => "the stored files are incomplete",
        Some(DeliveryProblem::InvalidManifest) => "the recording's description is unusable",
        Some(DeliveryProblem::LocalFolder) => "the recordings folder cannot be written",
        None => "",
    };
    match v.state {
        DeliveryState::Recording => format!(
            "Recording in progress. Files are deleted from our storage at {purge} at the latest."
        ),
        DeliveryState::Queued | DeliveryState::Uploading => format!(
            "Being delivered ({files} so far). Files are deleted from our storage at {purge}."
        ),
        DeliveryState::Retrying => {
            let next = v.next_attempt_at_ms.map(utc_time).unwrap_or_default();
            format!(
                "Not delivered yet: {why}. Next try at {next}; {files} delivered. Undelivered \
                 files are deleted at {purge}."
            )
        }
        DeliveryState::Delivered => {
            format!("Delivered ({files}). Our copy is deleted; this link stops working at {purge}.")
        }
        DeliveryState::Failed => format!(
            "Delivery failed: {why}. {files} delivered. The rest is deleted from our storage at \
             {purge}."
        ),
    }
}

fn page(status: StatusCode, text: &str, refresh: bool) -> Response {
    let meta = if refresh {
        "<meta http-equiv=\"refresh\" content=\"30\">"
    } else {
        ""
    };
    // `text` is ours (no user input), but escape anyway.
    let text = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">{meta}\
         <title>Recording delivery</title></head>\
         <body style=\"font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em\">\
         <h1 style=\"font-size:1.3em\">Recording delivery</h1><p>{text}</p></body></html>"
    );
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        "text/html; charset=utf-8".parse().unwrap(),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'"
            .parse()
            .unwrap(),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_derives_a_recording_id_one_way() {
        let (id, token) = new_recording_ids();
        assert_eq!((id.len(), token.len()), (32, 32));
        assert_ne!(id, token);
        assert_eq!(recording_id_for(&token).as_deref(), Some(id.as_str()));
        // Fixed vector: the derivation is a contract between the node and the uploader.
        assert_eq!(
            recording_id_for("00000000000000000000000000000000").unwrap(),
            hex::encode(
                &Sha256::digest(b"edgemeet-recording-status-v1:00000000000000000000000000000000")
                    [..16]
            )
        );
        for bad in ["", "ABCDEF00000000000000000000000000", "../x", &token[..31]] {
            assert!(recording_id_for(bad).is_none(), "{bad}");
        }
        assert_ne!(new_recording_ids().1, token);
    }

    #[test]
    fn descriptions_say_what_to_do() {
        let mut s = RecordingStatus::new(DeliveryState::Failed, 0);
        s.problem = Some(DeliveryProblem::GrantRevoked);
        s.files = 2;
        let text = describe(&s.view(86_400_000));
        assert!(
            text.contains("revoked") && text.contains("1970-01-02 00:00 UTC"),
            "{text}"
        );
        s.state = DeliveryState::Delivered;
        s.files_delivered = 2;
        assert!(describe(&s.view(1)).contains("Delivered (2 of 2 files)"));
    }
}
