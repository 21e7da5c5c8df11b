//! What the Worker decides without touching the Workers runtime and that is its own (the rules
//! both hosts share are in `core::http`): the embedded web files, `request.cf` parsing, the
//! recording var, configuration merging, socket attachments. Compiled and unit-tested on the
//! host too.

use edgemeet_config::recording::RecordingSettings;
use edgemeet_config::{ConfigError, Vars};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::{ConnId, Location};

mod web {
    include!(concat!(env!("OUT_DIR"), "/web_files.rs"));
}

/// The page served for `/` and `/{room}`: `edge/web/index.html` (a placeholder if the folder is
/// missing, so a build without the UI still answers the same way for every name).
pub fn index_html() -> &'static [u8] {
    file("/index.html").unwrap_or(b"<!doctype html><title>edgemeet</title><p>edgemeet</p>\n")
}

/// The page's `GET /api/config` answer, the same shape as the native host's, from the same
/// variables (`docs/configuration.md`, `[recording]`): recording is offered when
/// `EDGEMEET_DROPBOX_APP_KEY` names a Dropbox app and `EDGEMEET_RECORDING` is not `off`. On
/// Cloudflare the media nodes record to S3 and the uploader delivers to Dropbox; there is no
/// local-folder destination. `EDGEMEET_RECORDING_STATUS_URL` (the uploader's public
/// `status_listen`, up to `/v1/recording-status/`) is where the recorder's page reads its delivery
/// status; without it the page shows no link. A setting that is not usable is an error, naming
/// the variable or the key (the host logs it and offers no recording).
pub fn page_config(vars: &Vars) -> Result<Value, ConfigError> {
    let mut recording = RecordingSettings::default();
    recording.apply_env(vars)?;
    recording.validate()?;
    Ok(recording.public_json(recording.uses_dropbox(), recording.status_url.as_deref()))
}

/// The Worker's `[edge]` table, as JSON: it has no file. (`EDGEMEET_CONFIG` names the native
/// host's configuration file, so the Worker reads other names.)
pub const EDGE_VAR: &str = "EDGEMEET_EDGE";
/// The table's secrets (`node_secret`, `hash_key`, tenants' `hs256_secret`), deep-merged over it.
pub const EDGE_SECRETS_VAR: &str = "EDGEMEET_EDGE_SECRETS";
/// The names earlier versions read, refused with the new name rather than silently ignored.
pub const RENAMED_VARS: [(&str, &str); 2] = [
    ("EDGEMEET_CONFIG", EDGE_VAR),
    ("EDGEMEET_SECRETS", EDGE_SECRETS_VAR),
];

/// The edge's settings on the Worker: `EDGEMEET_EDGE`, `EDGEMEET_EDGE_SECRETS` deep-merged over it,
/// then the variables both hosts read (`EDGEMEET_HASH_KEY`, `EDGEMEET_NODE_SECRET`), validated.
pub fn edge_config(
    public: Option<Value>,
    secrets: Option<Value>,
    vars: &Vars,
) -> Result<crate::core::EdgeConfig, String> {
    let mut value = public.unwrap_or_else(|| serde_json::json!({}));
    if let Some(overlay) = secrets {
        merge_json(&mut value, overlay);
    }
    let mut config: crate::core::EdgeConfig =
        serde_json::from_value(value).map_err(|e| format!("edge configuration: {e}"))?;
    config.apply_env(vars);
    config
        .validate()
        .map_err(|e| format!("edge configuration: {e}"))?;
    Ok(config)
}

/// `GET /api/config` when the recording settings are unusable.
pub fn page_config_without_recording() -> Value {
    RecordingSettings {
        enabled: false,
        ..Default::default()
    }
    .public_json(false, None)
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
/// (`EDGEMEET_EDGE_SECRETS`) complete the public configuration (`EDGEMEET_EDGE`).
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
    fn edge_config_is_the_json_table_then_the_secrets_then_the_variables() {
        let public = json!({"p2p_return_delay_ms": 2000, "tenants": {"default": {}, "acme": {"auth": "jwt", "issuers": ["x"]}}});
        let secrets = json!({"hash_key": "hash-key-from-secrets-0123", "tenants": {"acme": {"hs256_secret": "s".repeat(32)}}});
        let none = Vars::new(|_| None);
        let c = edge_config(Some(public.clone()), Some(secrets.clone()), &none).unwrap();
        assert_eq!(c.p2p_return_delay_ms, 2000);
        assert_eq!(c.hash_key, "hash-key-from-secrets-0123");
        assert_eq!(c.tenants["acme"].issuers, ["x"]);
        // The native host's variables mean the same here, over both.
        let node_secret = "n".repeat(32);
        let vars = Vars::new(|k| (k == "EDGEMEET_NODE_SECRET").then(|| node_secret.clone()));
        let c = edge_config(Some(public.clone()), Some(secrets), &vars).unwrap();
        assert_eq!(c.node_secret.as_deref(), Some(node_secret.as_str()));
        // Without a hash key (the Worker cannot generate one) it is refused, naming the key.
        let tenant_secret = json!({"tenants": {"acme": {"hs256_secret": "s".repeat(32)}}});
        let err = edge_config(Some(public), Some(tenant_secret), &none).unwrap_err();
        assert!(err.contains("hash_key"), "{err}");
        let names: Vec<&str> = RENAMED_VARS.iter().map(|(_, new)| *new).collect();
        assert_eq!(names, [EDGE_VAR, EDGE_SECRETS_VAR]);
    }

    #[test]
    fn page_config_offers_recording_only_with_a_dropbox_app() {
        fn vars(pairs: &[(&'static str, &'static str)]) -> Vars<'static> {
            let pairs = pairs.to_vec();
            Vars::new(move |k| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            })
        }
        let off = json!({"recording": {"available": false}});
        assert_eq!(page_config(&vars(&[])).unwrap(), off);
        assert_eq!(page_config_without_recording(), off);
        assert_eq!(
            page_config(&vars(&[("EDGEMEET_DROPBOX_APP_KEY", "")])).unwrap(),
            off
        );
        // No local folder on Cloudflare: `local` offers nothing.
        let local = [
            ("EDGEMEET_DROPBOX_APP_KEY", "k1"),
            ("EDGEMEET_RECORDING_DESTINATION", "local"),
        ];
        assert_eq!(page_config(&vars(&local)).unwrap(), off);
        let app = [
            ("EDGEMEET_DROPBOX_APP_KEY", "k1"),
            ("EDGEMEET_DROPBOX_API_URL", "https://api.example/"),
        ];
        let on = page_config(&vars(&app)).unwrap();
        assert_eq!(on["recording"]["available"], true);
        assert_eq!(on["recording"]["destination"], "dropbox");
        assert_eq!(
            on["recording"]["dropbox"]["token_url"],
            "https://api.example/oauth2/token"
        );
        assert_eq!(
            on["recording"]["dropbox"]["authorize_url"],
            "https://www.dropbox.com/oauth2/authorize"
        );
        assert_eq!(on["recording"].get("status_url"), None);
        // The same switch as natively turns it off.
        let switched_off = [
            ("EDGEMEET_DROPBOX_APP_KEY", "k1"),
            ("EDGEMEET_RECORDING", "off"),
        ];
        assert_eq!(page_config(&vars(&switched_off)).unwrap(), off);
        // Where the recorder's page reads its delivery status (the uploader's status_listen).
        let url = "https://status.example.org/v1/recording-status/";
        let with_status = [
            ("EDGEMEET_DROPBOX_APP_KEY", "k1"),
            ("EDGEMEET_RECORDING_STATUS_URL", url),
        ];
        assert_eq!(
            page_config(&vars(&with_status)).unwrap()["recording"]["status_url"],
            url
        );
        // Unusable settings are errors naming what to fix, not a silently different answer.
        let bad_status = [
            ("EDGEMEET_DROPBOX_APP_KEY", "k1"),
            ("EDGEMEET_RECORDING_STATUS_URL", "javascript:alert(1)//"),
        ];
        let err = page_config(&vars(&bad_status)).unwrap_err().to_string();
        assert!(err.contains("recording.status_url"), "{err}");
        let old_json = [("EDGEMEET_RECORDING", r#"{"dropbox":{"app_key":"k1"}}"#)];
        let err = page_config(&vars(&old_json)).unwrap_err().to_string();
        assert!(err.contains("EDGEMEET_DROPBOX_APP_KEY"), "{err}");
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
