//! Claims of a Jitsi-format invite token.
//!
//! ```json
//! {"iss":"my-app","aud":"edgemeet","sub":"acme","room":"*","exp":1700000000,"nbf":1690000000,
//!  "context":{"user":{"id":"u1","name":"Ada","email":"ada@example.com","avatar":"https://...",
//!  "moderator":true},"features":{"recording":true}}}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InviteClaims {
    pub iss: String,
    /// A string or an array of strings, as RFC 7519 allows.
    pub aud: Audience,
    /// The tenant the token is for.
    pub sub: String,
    /// A room name, or `*` for every room of the tenant.
    pub room: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default)]
    pub context: Context,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Self::One(a) => a == aud,
            Self::Many(all) => all.iter().any(|a| a == aud),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    #[serde(default)]
    pub user: User,
    /// Jitsi writes feature flags as `true` or `"true"`.
    #[serde(default)]
    pub features: Map<String, Value>,
}

impl Context {
    /// The names of the features set to true.
    pub fn enabled_features(&self) -> Vec<String> {
        self.features
            .iter()
            .filter(|(_, v)| truthy(v))
            .map(|(k, _)| k.clone())
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    /// `true` or `"true"`, as Jitsi writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderator: Option<Value>,
}

impl User {
    pub fn is_moderator(&self) -> bool {
        self.moderator.as_ref().is_some_and(truthy)
    }
}

fn truthy(v: &Value) -> bool {
    matches!(v, Value::Bool(true)) || matches!(v, Value::String(s) if s == "true")
}
