//! The environment half: variables over the file's values, read the same way on every host.

use std::fmt::Display;
use std::str::FromStr;

use crate::ConfigError;

/// Where environment variables come from: the process (`Vars::process`), a Worker's wrangler
/// vars and secrets, or a test's table (`Vars::new` with any lookup).
pub struct Vars<'a> {
    lookup: Box<Lookup<'a>>,
}

type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

impl<'a> Vars<'a> {
    /// Variables from fixed pairs (tests).
    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: &'static [(&'static str, &'static str)]) -> Vars<'static> {
        Vars::new(|k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    pub fn new(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Self {
            lookup: Box::new(lookup),
        }
    }

    /// This process's environment.
    pub fn process() -> Vars<'static> {
        Vars::new(|name| std::env::var(name).ok())
    }

    /// `name`'s value; an empty one counts as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.is_empty())
    }

    /// `name` parsed (surrounding spaces ignored); an error names the variable.
    pub fn parse<T: FromStr>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: Display,
    {
        self.get(name)
            .map(|v| {
                v.trim().parse().map_err(|e: T::Err| ConfigError::Env {
                    var: name.into(),
                    reason: format!("`{v}`: {e}"),
                })
            })
            .transpose()
    }

    /// A switch: `on`/`off`, `true`/`false`, `1`/`0`, `yes`/`no`.
    pub fn switch(&self, name: &str) -> Result<Option<bool>, ConfigError> {
        self.one_of(
            name,
            &[
                ("on", true),
                ("true", true),
                ("1", true),
                ("yes", true),
                ("off", false),
                ("false", false),
                ("0", false),
                ("no", false),
            ],
        )
    }

    /// One of a few words (case-insensitive), e.g. `auto`, `dropbox`, `local`.
    pub fn one_of<T: Copy>(
        &self,
        name: &str,
        choices: &[(&str, T)],
    ) -> Result<Option<T>, ConfigError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let word = v.trim().to_ascii_lowercase();
        match choices.iter().find(|(w, _)| *w == word) {
            Some((_, value)) => Ok(Some(*value)),
            None => {
                let mut words: Vec<&str> = Vec::new();
                for (w, _) in choices {
                    if !words.contains(w) {
                        words.push(w);
                    }
                }
                Err(ConfigError::Env {
                    var: name.into(),
                    reason: format!("`{v}` is not one of {}", words.join(", ")),
                })
            }
        }
    }

    /// Overrides `target` with `name`'s text, if set.
    pub fn set_string(&self, name: &str, target: &mut String) {
        if let Some(v) = self.get(name) {
            *target = v;
        }
    }

    /// Overrides `target` with `name`'s text, if set.
    pub fn set_some<T: From<String>>(&self, name: &str, target: &mut Option<T>) {
        if let Some(v) = self.get(name) {
            *target = Some(v.into());
        }
    }

    /// Overrides `target` with `name` parsed, if set.
    pub fn set_parsed<T: FromStr>(&self, name: &str, target: &mut T) -> Result<(), ConfigError>
    where
        T::Err: Display,
    {
        if let Some(v) = self.parse(name)? {
            *target = v;
        }
        Ok(())
    }

    /// Overrides `target` with the switch `name`, if set.
    pub fn set_switch(&self, name: &str, target: &mut bool) -> Result<(), ConfigError> {
        if let Some(v) = self.switch(name)? {
            *target = v;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> Vars<'static> {
        Vars::from_pairs(pairs)
    }

    #[test]
    fn empty_is_unset_and_errors_name_the_variable() {
        let v = vars(&[("A", ""), ("N", " 42 "), ("BAD", "4x2")]);
        assert_eq!(v.get("A"), None);
        let mut s = "file".to_string();
        v.set_string("A", &mut s);
        assert_eq!(s, "file");
        assert_eq!(v.parse::<u16>("N").unwrap(), Some(42));
        let err = v.parse::<u16>("BAD").unwrap_err().to_string();
        assert!(err.contains("BAD") && err.contains("4x2"), "{err}");
        let mut n = 7u16;
        v.set_parsed("MISSING", &mut n).unwrap();
        assert_eq!(n, 7);
    }

    #[test]
    fn switches_have_one_meaning() {
        let v = vars(&[
            ("ON", "on"),
            ("TRUE", "TRUE"),
            ("ONE", "1"),
            ("OFF", "off"),
            ("NO", "no"),
            ("MAYBE", "maybe"),
            ("JSON", "{}"),
        ]);
        for name in ["ON", "TRUE", "ONE"] {
            assert_eq!(v.switch(name).unwrap(), Some(true), "{name}");
        }
        for name in ["OFF", "NO"] {
            assert_eq!(v.switch(name).unwrap(), Some(false), "{name}");
        }
        assert_eq!(v.switch("UNSET").unwrap(), None);
        for name in ["MAYBE", "JSON"] {
            let err = v.switch(name).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains("on, true"), "{err}");
        }
    }
}
