//! What the Worker decides without touching the Workers runtime and that is its own (the rules
//! both hosts share are in `core::http`): the embedded web files, `request.cf` parsing, the
//! recording var, configuration merging, socket attachments. Compiled and unit-tested on the
//! host too.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::http::page_config::{Destination, DropboxApp, Recording};
use crate::core::{ConnId, Location};

mod web {
    include!(concat!(env!("OUT_DIR"), "/web_files.rs"));
}

/// The page served for `/` and `/{room}`: `edge/web/index.html` (a placeholder if the folder is
/// missing, so a build without the UI still answers the same way for every name).
pub fn index_html() -> &'static [u8] {
    file("/index.html").unwrap_or(b"<!doctype html><title>edgemeet</title><p>edgemeet</p>\n")
}

/// What the Worker offers the page (`GET /api/config`): recording when `EDGEMEET_RECORDING` (a
/// public var, JSON) names a Dropbox app. On Cloudflare the media nodes record to S3 and the
/// uploader delivers to Dropbox; there is no local-folder destination. `status_url` in the var
/// (the uploader's public `status_listen`, up to `/v1/recording-status/`) is where the recorder's
/// page reads its delivery status.
pub fn recording_offer(recording_var: Option<&str>) -> Option<Recording> {
    #[derive(Deserialize)]
    struct Dropbox {
        app_key: String,
        #[serde(default = "default_authorize")]
        authorize_url: String,
        #[serde(default = "default_api")]
        api_url: String,
    }
    fn default_authorize() -> String {
        "https://www.dropbox.com/oauth2/authorize".into()
    }
    fn default_api() -> String {
        "https://api.dropboxapi.com".into()
    }
    #[derive(Deserialize)]
    struct Var {
        dropbox: Option<Dropbox>,
        status_url: Option<String>,
    }
    let var: Var = serde_json::from_str(recording_var?).ok()?;
    let d = var.dropbox.filter(|d| !d.app_key.is_empty())?;
    Some(Recording {
        destination: Destination::Dropbox(DropboxApp {
            app_key: d.app_key,
            authorize_url: d.authorize_url,
            api_url: d.api_url,
        }),
        status_url: var.status_url,
    })
}

pub fn file(path: &str) -> Option<&'static [u8]> {
    web::FILES.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
}

pub fn file_paths() -> impl Iterator<Item = &'static str> {
    web::FILES.iter().map(|(p, _)| *p)
}

/// A location from `request.cf` (as JSON), parsed by the core's rules: a missing, mistyped or
/// out-of-range value is dropped, never a panic (workers-rs' `Cf::coordinates()` would unwrap).
pub fn location_from_cf(cf: &Value) -> Option<Location> {
    let text = |key: &str| -> Option<String> {
        match cf.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let (continent, country, lat, lon) = (
        text("continent"),
        text("country"),
        text("latitude"),
        text("longitude"),
    );
    let loc = Location::from_parts(
        continent.as_deref(),
        country.as_deref(),
        lat.as_deref(),
        lon.as_deref(),
    );
    (loc != Location::default()).then_some(loc)
}

/// Deep-merge `overlay` into `base` (objects merge key by key, anything else replaces): the secrets
/// (`EDGEMEET_SECRETS`) complete the public configuration (`EDGEMEET_CONFIG`).
pub fn merge_json(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge_json(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

/// What each hibernatable socket carries across hibernation: its connection id. (The participant's
/// identity lives in the room snapshot, keyed by this id.) Kept below 2^53 so JavaScript holds it exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub conn: ConnId,
}

pub fn conn_id(random: u64) -> ConnId {
    (random & ((1 << 53) - 1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recording_is_offered_only_with_a_dropbox_app() {
        use crate::core::http::page_config::page_config;
        let off = json!({"recording": {"available": false}});
        for var in [
            None,
            Some("{}"),
            Some("not json"),
            Some(r#"{"dropbox":{"app_key":""}}"#),
        ] {
            assert_eq!(page_config(recording_offer(var).as_ref()), off, "{var:?}");
        }
        let on = recording_offer(Some(
            r#"{"dropbox":{"app_key":"k1","api_url":"https://api.example/"},"status_url":"/s/"}"#,
        ));
        let on = page_config(on.as_ref());
        assert_eq!(on["recording"]["destination"], "dropbox");
        assert_eq!(
            on["recording"]["dropbox"]["token_url"],
            "https://api.example/oauth2/token"
        );
        assert_eq!(
            on["recording"]["dropbox"]["authorize_url"],
            "https://www.dropbox.com/oauth2/authorize"
        );
        assert_eq!(on["recording"]["status_url"], "/s/");
    }

    #[test]
    fn every_asset_is_routed_to_its_file() {
        use crate::core::http::{Route, route};
        for path in file_paths().filter(|p| p.starts_with("/assets/")) {
            let Route::Asset(rel) = route("GET", path) else {
                panic!("{path}")
            };
            assert!(file(&format!("/assets/{rel}")).is_some(), "{path}");
        }
    }

    #[test]
    fn cf_locations_never_panic() {
        let l = location_from_cf(
            &json!({"continent":"EU","country":"de","latitude":"52.52","longitude":"13.40"}),
        )
        .unwrap();
        assert_eq!(l.continent.as_deref(), Some("EU"));
        assert_eq!(l.country.as_deref(), Some("DE"));
        assert_eq!(l.lat, Some(52.52));
        let l = location_from_cf(&json!({"continent":"NA","latitude":"north","longitude":"13"}))
            .unwrap();
        assert_eq!(l.lat, None);
        let l =
            location_from_cf(&json!({"continent":"NA","latitude":"95","longitude":"13"})).unwrap();
        assert_eq!(l.lat, None);
        assert_eq!(
            location_from_cf(&json!({"continent":7,"country":"?"})),
            None
        );
        assert_eq!(location_from_cf(&json!(null)), None);
        assert_eq!(location_from_cf(&json!("cf")), None);
        assert_eq!(
            location_from_cf(&json!({"latitude":"NaN","longitude":"inf"})),
            None
        );
        let l = location_from_cf(&json!({"latitude":1.5,"longitude":-2})).unwrap();
        assert_eq!((l.lat, l.lon), (Some(1.5), Some(-2.0)));
    }

    #[test]
    fn merges_secrets_into_config() {
        let mut base = json!({"a":1,"tenants":{"t":{"auth":"jwt"}}});
        merge_json(
            &mut base,
            json!({"tenants":{"t":{"secret":"s"}},"node_secret":"n"}),
        );
        assert_eq!(
            base,
            json!({"a":1,"tenants":{"t":{"auth":"jwt","secret":"s"}},"node_secret":"n"})
        );
    }

    #[test]
    fn connection_ids_fit_javascript_numbers() {
        assert!(conn_id(u64::MAX) < (1 << 53));
        assert_eq!(conn_id(0), 1);
    }
}
