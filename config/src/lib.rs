//! How every edgemeet program reads its settings: a TOML file (`file`), then environment variables
//! on top (`Vars`), each variable with one meaning wherever it is read (the native edge, the
//! Worker, the media node, the uploader). `docs/configuration.md` lists every setting.
//!
//! The rules, the same for every program:
//! - unknown keys in a file are errors, and errors name the key or the variable;
//! - an empty variable is the same as an unset one (`Environment=X=` in a unit, `X=${X:-}` in a
//!   shell): the file's value or the default applies;
//! - a switch is `on`/`off` (also `true`/`false`, `1`/`0`, `yes`/`no`); anything else is an error.

mod error;
#[cfg(feature = "file")]
pub mod file;
pub mod recording;
mod vars;

pub use error::ConfigError;
pub use vars::Vars;
