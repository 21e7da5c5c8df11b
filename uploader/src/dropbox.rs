//! A lean Dropbox API v2 client: upload sessions, metadata, OAuth refresh. Direct reqwest calls
//! (the official SDK hard-codes its hosts and pulls another TLS stack).

use std::time::Duration;

use edgemeet_protocol::job::{DeliveryProblem, DropboxCredentials};
use serde_json::{Value, json};

use crate::config::DropboxConfig;

/// What a Dropbox call can end in. Never carries a token.
#[derive(Debug, thiserror::Error)]
pub enum DropboxError {
    #[error("access token expired")]
    Expired,
    /// 401 `invalid_access_token`: revoked, or not (or no longer) valid; a refresh may help.
    #[error("access token invalid")]
    InvalidToken,
    #[error("rate limited, retry after {0:?}")]
    RateLimited(Duration),
    #[error("server error HTTP {0}")]
    Server(u16),
    #[error("transport: {0}")]
    Transport(String),
    /// A 409 endpoint error: `error_summary` and the structured `error`.
    #[error("{endpoint}: {summary}")]
    Api {
        endpoint: &'static str,
        summary: String,
        error: Value,
    },
    #[error("{endpoint}: HTTP {status}: {body}")]
    Http {
        endpoint: &'static str,
        status: u16,
        body: String,
    },
    #[error("token refresh refused: {0}")]
    Refresh(String),
    #[error("access token expired and the manifest has no refresh token")]
    NoRefreshToken,
    #[error("gave up after {attempts} attempts, last: {last}")]
    GaveUp {
        attempts: u32,
        last: Box<DropboxError>,
    },
}

impl DropboxError {
    /// What the recorder is told, and whether retrying can help at all (`false`: the grant is
    /// gone, only the purge is left).
    pub fn problem(&self) -> (DeliveryProblem, bool) {
        match self {
            // The OAuth server refuses the refresh token: revoked by the recorder, or the app.
            DropboxError::Refresh(code) if code == "invalid_grant" || code == "invalid_client" => {
                (DeliveryProblem::GrantRevoked, false)
            }
            DropboxError::NoRefreshToken => (DeliveryProblem::GrantRevoked, false),
            DropboxError::Api { summary, .. }
                if summary.starts_with("path/insufficient_space")
                    || summary.starts_with("insufficient_space") =>
            {
                (DeliveryProblem::DropboxFull, true)
            }
            DropboxError::GaveUp { last, .. } => last.problem(),
            DropboxError::RateLimited(_) | DropboxError::Server(_) | DropboxError::Transport(_) => {
                (DeliveryProblem::DropboxUnreachable, true)
            }
            _ => (DeliveryProblem::DropboxRefused, true),
        }
    }

    /// For a 409, whether `error_summary` starts with `prefix` (Dropbox's advice: match prefixes).
    pub fn summary_starts_with(&self, prefix: &str) -> bool {
        matches!(self, DropboxError::Api { summary, .. } if summary.starts_with(prefix))
    }

    /// The `correct_offset` of an `incorrect_offset` error, wherever it is nested.
    pub fn correct_offset(&self) -> Option<u64> {
        fn find(v: &Value) -> Option<u64> {
            match v {
                Value::Object(m) => {
                    if m.get(".tag").and_then(Value::as_str) == Some("incorrect_offset")
                        && let Some(o) = m.get("correct_offset").and_then(Value::as_u64)
                    {
                        return Some(o);
                    }
                    m.values().find_map(find)
                }
                _ => None,
            }
        }
        match self {
            DropboxError::Api { error, .. } => find(error),
            _ => None,
        }
    }
}

/// A committed file (or, from `get_metadata`, whatever is at a path).
#[derive(Debug, Clone)]
pub struct FileMeta {
    pub path_display: String,
    pub size: u64,
    /// Dropbox's `content_hash`; `None` for a folder.
    pub content_hash: Option<String>,
}

impl FileMeta {
    fn from_json(v: &Value, path: &str) -> Self {
        let is_file = v
            .get(".tag")
            .and_then(Value::as_str)
            .is_none_or(|t| t == "file");
        FileMeta {
            path_display: v
                .get("path_display")
                .and_then(Value::as_str)
                .unwrap_or(path)
                .to_owned(),
            size: v.get("size").and_then(Value::as_u64).unwrap_or(0),
            content_hash: v
                .get("content_hash")
                .and_then(Value::as_str)
                .filter(|_| is_file)
                .map(str::to_owned),
        }
    }

    /// Whether this is exactly the file `size` bytes long with `content_hash`.
    pub fn holds(&self, size: u64, content_hash: &str) -> bool {
        self.size == size && self.content_hash.as_deref() == Some(content_hash)
    }
}

/// The credentials in use for one recording; refreshed in place.
pub struct Token {
    pub(crate) creds: DropboxCredentials,
    pub(crate) app_key: String,
}

impl Token {
    pub fn new(creds: DropboxCredentials, app_key: String) -> Self {
        Self { creds, app_key }
    }
}

/// Retry state of one logical request.
#[derive(Debug, Default)]
pub struct Attempts {
    failures: u32,
    rate_limits: u32,
    refreshes: u32,
}

/// Encodes JSON for the `Dropbox-API-Arg` header: HTTP headers carry ASCII only, so every
/// non-ASCII character becomes a `\uXXXX` escape (UTF-16 units, as JSON allows).
pub fn header_safe_json(v: &Value) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() && c != '\x7f' {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// Dropbox API client (no state but configuration).
#[derive(Clone, Debug)]
pub struct DropboxClient {
    http: reqwest::Client,
    api: String,
    content: String,
    max_attempts: u32,
    backoff: Duration,
}

const MAX_RATE_LIMITS: u32 = 50;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

impl DropboxClient {
    pub fn new(cfg: &DropboxConfig) -> Result<Self, DropboxError> {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(cfg.request_timeout_secs))
            .user_agent("edgemeet-uploader")
            .build()
            .map_err(|e| DropboxError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            api: cfg.api_url.clone(),
            content: cfg.content_url.clone(),
            max_attempts: cfg.max_attempts,
            backoff: Duration::from_millis(cfg.backoff_ms),
        })
    }

    async fn send(
        &self,
        endpoint: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<Value, DropboxError> {
        // `without_url`: the URL is ours and harmless, but keep errors short and uniform.
        let resp = req
            .send()
            .await
            .map_err(|e| DropboxError::Transport(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let text = resp
            .text()
            .await
            .map_err(|e| DropboxError::Transport(e.without_url().to_string()))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let summary = || {
            body.get("error_summary")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        match status {
            200..=299 => Ok(body),
            401 if summary().starts_with("expired_access_token") => Err(DropboxError::Expired),
            401 if summary().starts_with("invalid_access_token") => Err(DropboxError::InvalidToken),
            409 => Err(DropboxError::Api {
                endpoint,
                summary: summary(),
                error: body.get("error").cloned().unwrap_or(Value::Null),
            }),
            429 => {
                // Header, JSON body (`error.retry_after`) or plain-text body: Dropbox uses all three.
                let secs = retry_after
                    .or_else(|| body.pointer("/error/retry_after").and_then(Value::as_u64))
                    .unwrap_or(1);
                Err(DropboxError::RateLimited(Duration::from_secs(secs)))
            }
            500..=599 => Err(DropboxError::Server(status)),
            _ => Err(DropboxError::Http {
                endpoint,
                status,
                body: text.chars().take(300).collect(),
            }),
        }
    }

    fn content_req(&self, path: &str, token: &Token, arg: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/2/{path}", self.content))
            .bearer_auth(&token.creds.access_token)
            .header("Dropbox-API-Arg", header_safe_json(arg))
            .header("Content-Type", "application/octet-stream")
    }

    /// `files/upload_session/start` with no data.
    pub async fn start_session(&self, token: &Token) -> Result<String, DropboxError> {
        let req = self
            .content_req(
                "files/upload_session/start",
                token,
                &json!({"close": false}),
            )
            .body(Vec::<u8>::new());
        let v = self.send("upload_session/start", req).await?;
        v.get("session_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| DropboxError::Transport("start: no session_id in response".into()))
    }

    /// `files/upload_session/append_v2`: `len` bytes streamed from `body`.
    pub async fn append(
        &self,
        token: &Token,
        session_id: &str,
        offset: u64,
        body: reqwest::Body,
        len: u64,
        close: bool,
    ) -> Result<(), DropboxError> {
        let arg = json!({"cursor": {"session_id": session_id, "offset": offset}, "close": close});
        // An explicit length: the body is a stream, and Dropbox wants a sized request.
        let req = self
            .content_req("files/upload_session/append_v2", token, &arg)
            .header("Content-Length", len)
            .body(body);
        self.send("upload_session/append_v2", req).await.map(|_| ())
    }

    /// `files/upload_session/finish`: commits the session at exactly `path` (mode add, no
    /// autorename: the caller picks a free name first, so a lost answer can be looked up there).
    pub async fn finish(
        &self,
        token: &Token,
        session_id: &str,
        offset: u64,
        path: &str,
    ) -> Result<FileMeta, DropboxError> {
        let arg = json!({
            "cursor": {"session_id": session_id, "offset": offset},
            "commit": {"path": path, "mode": "add", "autorename": false, "mute": true, "strict_conflict": false}
        });
        let req = self
            .content_req("files/upload_session/finish", token, &arg)
            .body(Vec::<u8>::new());
        let v = self.send("upload_session/finish", req).await?;
        Ok(FileMeta::from_json(&v, path))
    }

    /// `files/get_metadata`; `None` when nothing is at `path`.
    pub async fn get_metadata(
        &self,
        token: &Token,
        path: &str,
    ) -> Result<Option<FileMeta>, DropboxError> {
        let req = self
            .http
            .post(format!("{}/2/files/get_metadata", self.api))
            .bearer_auth(&token.creds.access_token)
            .json(&json!({"path": path}));
        match self.send("get_metadata", req).await {
            Ok(v) => Ok(Some(FileMeta::from_json(&v, path))),
            Err(e) if e.summary_starts_with("path/not_found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// OAuth refresh-token grant: a new short-lived access token.
    pub async fn refresh(&self, token: &mut Token) -> Result<(), DropboxError> {
        let refresh = token
            .creds
            .refresh_token
            .clone()
            .ok_or(DropboxError::NoRefreshToken)?;
        let req = self.http.post(format!("{}/oauth2/token", self.api)).form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", token.app_key.as_str()),
        ]);
        let v = match self.send("oauth2/token", req).await {
            Ok(v) => v,
            Err(DropboxError::Http { status, body, .. }) if status == 400 || status == 401 => {
                // OAuth errors are `{"error": "...", "error_description": "..."}`: no secrets.
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let code = v
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned();
                return Err(DropboxError::Refresh(code));
            }
            Err(e) => return Err(e),
        };
        let access = v
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| DropboxError::Refresh("no access_token in response".into()))?;
        token.creds.access_token = access.to_owned();
        tracing::info!("dropbox access token refreshed");
        Ok(())
    }

    /// Handles a transient error: refreshes, waits out a rate limit or backs off. `Ok` means
    /// "send again"; anything else is returned for the caller to decide.
    pub async fn recover(
        &self,
        err: DropboxError,
        token: &mut Token,
        attempts: &mut Attempts,
    ) -> Result<(), DropboxError> {
        match err {
            DropboxError::Expired | DropboxError::InvalidToken => {
                attempts.refreshes += 1;
                if attempts.refreshes > 3 {
                    return Err(DropboxError::GaveUp {
                        attempts: attempts.refreshes,
                        last: Box::new(err),
                    });
                }
                self.refresh(token).await
            }
            DropboxError::RateLimited(d) => {
                attempts.rate_limits += 1;
                if attempts.rate_limits > MAX_RATE_LIMITS {
                    return Err(DropboxError::GaveUp {
                        attempts: attempts.rate_limits,
                        last: Box::new(err),
                    });
                }
                tracing::warn!(
                    retry_after_secs = d.as_secs(),
                    "dropbox rate limit, waiting"
                );
                tokio::time::sleep(d).await;
                Ok(())
            }
            DropboxError::Server(_) | DropboxError::Transport(_) => {
                attempts.failures += 1;
                if attempts.failures >= self.max_attempts {
                    return Err(DropboxError::GaveUp {
                        attempts: attempts.failures,
                        last: Box::new(err),
                    });
                }
                let delay =
                    (self.backoff * 2u32.saturating_pow(attempts.failures - 1)).min(MAX_BACKOFF);
                tracing::warn!(error = %err, attempt = attempts.failures, delay_ms = delay.as_millis() as u64, "dropbox call failed, backing off");
                tokio::time::sleep(delay).await;
                Ok(())
            }
            other => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_safe_escapes_non_ascii() {
        let s = header_safe_json(&json!({"path": "/Réunion 🎥/ü\u{7f}"}));
        assert!(s.is_ascii());
        assert!(s.contains("\\u00e9") && s.contains("\\ud83c\\udfa5") && s.contains("\\u007f"));
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back["path"], "/Réunion 🎥/ü\u{7f}");
    }

    #[test]
    fn finds_nested_correct_offset() {
        let e = DropboxError::Api {
            endpoint: "finish",
            summary: "lookup_failed/incorrect_offset/..".into(),
            error: json!({".tag": "lookup_failed", "lookup_failed": {".tag": "incorrect_offset", "correct_offset": 42}}),
        };
        assert_eq!(e.correct_offset(), Some(42));
        assert!(e.summary_starts_with("lookup_failed/incorrect_offset"));
    }
}
