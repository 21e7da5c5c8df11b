//! `GET /api/config`: what the page needs to offer recording, and nothing secret. Each host says
//! what it offers ([`Recording`]); the answer's shape is made here once.

use serde_json::{Value, json};

/// The Dropbox app the page authorizes with (OAuth with PKCE: the app key is public).
#[derive(Debug, Clone, PartialEq)]
pub struct DropboxApp {
    pub app_key: String,
    pub authorize_url: String,
    /// RPC and OAuth host: the page exchanges the code at `{api_url}/oauth2/token`.
    pub api_url: String,
}

/// Where a recording offered by this edge is delivered.
#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    Dropbox(DropboxApp),
    /// A folder on the all-in-one's machine.
    Local,
}

/// What a host offers: `None` for no recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub destination: Destination,
    /// Base of recorders' delivery-status links (`{status_url}{token}`); a value that is not one
    /// (see [`crate::web::status_url_ok`]) is left out, so the page shows no link.
    pub status_url: Option<String>,
}

pub fn page_config(recording: Option<&Recording>) -> Value {
    let Some(recording) = recording else {
        return json!({"recording": {"available": false}});
    };
    let mut config = match &recording.destination {
        Destination::Dropbox(app) => json!({"recording": {
            "available": true,
            "destination": "dropbox",
            "dropbox": {
                "app_key": app.app_key,
                "authorize_url": app.authorize_url,
                "token_url": format!("{}/oauth2/token", app.api_url.trim_end_matches('/')),
            },
        }}),
        Destination::Local => json!({"recording": {"available": true, "destination": "local"}}),
    };
    if let Some(url) = recording
        .status_url
        .as_ref()
        .filter(|u| crate::web::status_url_ok(u))
    {
        config["recording"]["status_url"] = Value::String(url.clone());
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_offers() {
        assert_eq!(
            page_config(None),
            json!({"recording": {"available": false}})
        );
        let mut r = Recording {
            destination: Destination::Dropbox(DropboxApp {
                app_key: "k1".into(),
                authorize_url: "https://www.dropbox.com/oauth2/authorize".into(),
                api_url: "https://api.example/".into(),
            }),
            status_url: Some("https://status.example.org/v1/recording-status/".into()),
        };
        let on = page_config(Some(&r));
        assert_eq!(on["recording"]["destination"], "dropbox");
        assert_eq!(
            on["recording"]["dropbox"]["token_url"],
            "https://api.example/oauth2/token"
        );
        assert_eq!(
            on["recording"]["status_url"],
            "https://status.example.org/v1/recording-status/"
        );
        r.status_url = Some("javascript:alert(1)//".into());
        assert_eq!(page_config(Some(&r))["recording"].get("status_url"), None);
        r.destination = Destination::Local;
        r.status_url = Some("/v1/recording-status/".into());
        assert_eq!(
            page_config(Some(&r)),
            json!({"recording": {"available": true, "destination": "local",
                "status_url": "/v1/recording-status/"}})
        );
    }
}
