//! The file half: a TOML file read into a program's settings type.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::ConfigError;

/// Reads and parses `path`.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_named(&text, &path.display().to_string())
}

/// Parses `text` (a file's contents, or a test's).
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    parse_named(text, "<text>")
}

fn parse_named<T: DeserializeOwned>(text: &str, path: &str) -> Result<T, ConfigError> {
    // toml's message names the key and shows the line: keep it whole.
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.into(),
        message: e.to_string().trim_end().to_owned(),
    })
}

/// `path`'s settings, or the defaults without a file.
pub fn read_or_default<T: DeserializeOwned + Default>(
    path: Option<&Path>,
) -> Result<T, ConfigError> {
    match path {
        Some(p) => read(p),
        None => Ok(T::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Settings {
        listen: String,
        retries: u32,
    }

    #[test]
    fn errors_name_the_key_and_the_file() {
        let err = parse::<Settings>("listne = \"x\"").unwrap_err().to_string();
        assert!(err.contains("listne"), "{err}");
        let err = parse::<Settings>("retries = \"many\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("retries"), "{err}");
        let dir = std::env::temp_dir().join(format!("edgemeet-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "retries = -1\n").unwrap();
        let err = read::<Settings>(&path).unwrap_err().to_string();
        assert!(err.contains("bad.toml") && err.contains("retries"), "{err}");
        std::fs::write(&path, "listen = \"0.0.0.0:1\"\n").unwrap();
        let s: Settings = read_or_default(Some(&path)).unwrap();
        assert_eq!((s.listen.as_str(), s.retries), ("0.0.0.0:1", 0));
        let err = read::<Settings>(&dir.join("missing.toml")).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
