//! Profile validation: what a participant may show others about themselves.

use edgemeet_protocol::client::Profile;
use edgemeet_protocol::{ErrorCode, ProtocolError};

pub const MAX_NAME_CHARS: usize = 64;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_AVATAR_CHARS: usize = 1024;

fn invalid(message: &str) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidProfile, message)
}

/// Trim, drop empty fields, and refuse anything malformed.
pub fn validate(profile: &Profile) -> Result<Profile, ProtocolError> {
    Ok(Profile {
        name: clean(profile.name.as_deref()).map(check_name).transpose()?,
        email: clean(profile.email.as_deref())
            .map(check_email)
            .transpose()?,
        avatar: clean(profile.avatar.as_deref())
            .map(check_avatar)
            .transpose()?,
    })
}

fn clean(field: Option<&str>) -> Option<&str> {
    field.map(str::trim).filter(|s| !s.is_empty())
}

fn check_name(name: &str) -> Result<String, ProtocolError> {
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(invalid(
            "a display name is at most 64 characters, without control characters",
        ));
    }
    Ok(name.to_string())
}

fn check_email(email: &str) -> Result<String, ProtocolError> {
    let bad = || invalid("not an email address");
    if email.chars().count() > MAX_EMAIL_CHARS
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || domain.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
    {
        return Err(bad());
    }
    Ok(email.to_string())
}

fn check_avatar(url: &str) -> Result<String, ProtocolError> {
    let bad = || invalid("an avatar must be an https:// URL of at most 1024 characters");
    let rest = url.strip_prefix("https://").ok_or_else(bad)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let unsafe_char = |c: char| {
        c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '<' | '>' | '\\' | '`')
    };
    if url.len() > MAX_AVATAR_CHARS
        || host.is_empty()
        || host.contains('@')
        || url.chars().any(unsafe_char)
    {
        return Err(bad());
    }
    Ok(url.to_string())
}

/// Whether `pattern` is a host name (`img.example.org`) or a wildcard for its subdomains
/// (`*.example.org`), as `avatar_hosts` takes them.
pub fn is_host_pattern(pattern: &str) -> bool {
    let host = pattern.strip_prefix("*.").unwrap_or(pattern);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Keep the avatar only when its host is one the operator allows: every other participant's
/// browser fetches it, and so tells that host its address.
pub fn allow_avatar(mut profile: Profile, hosts: &[String]) -> Profile {
    let allowed = profile.avatar.as_deref().is_some_and(|url| {
        let host = avatar_host(url).to_ascii_lowercase();
        hosts
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(parent) => host
                    .strip_suffix(parent)
                    .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                None => host == *pattern,
            })
    });
    if !allowed {
        profile.avatar = None;
    }
    profile
}

/// The host of a validated avatar URL (`https://host[:port]/...`), without a port.
fn avatar_host(url: &str) -> &str {
    let rest = url.strip_prefix("https://").unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.split(':').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, email: &str, avatar: &str) -> Profile {
        Profile {
            name: Some(name.into()),
            email: Some(email.into()),
            avatar: Some(avatar.into()),
        }
    }

    #[test]
    fn accepts_and_trims() {
        let v = validate(&p(
            " Ada ",
            "ada@example.org",
            "https://img.example.org/a.png",
        ))
        .unwrap();
        assert_eq!(v.name.as_deref(), Some("Ada"));
        assert_eq!(validate(&p("", "", "")).unwrap(), Profile::default());
    }

    #[test]
    fn avatars_only_from_allowed_hosts() {
        let with = |url: &str| Profile {
            avatar: Some(url.into()),
            ..Default::default()
        };
        let hosts = vec!["img.example.org".to_string(), "*.cdn.example".to_string()];
        let kept = |url: &str| allow_avatar(with(url), &hosts).avatar.is_some();
        assert!(kept("https://img.example.org/a.png"));
        assert!(kept("https://IMG.example.org:443/a.png"));
        assert!(kept("https://eu.cdn.example/a.png"));
        assert!(
            !kept("https://cdn.example/a.png"),
            "the wildcard is for subdomains"
        );
        assert!(!kept("https://evilcdn.example/a.png"));
        assert!(!kept("https://img.example.org.evil.example/a.png"));
        assert!(
            allow_avatar(with("https://img.example.org/a"), &[])
                .avatar
                .is_none()
        );
        assert!(is_host_pattern("*.example.org") && is_host_pattern("img.example.org"));
        assert!(!is_host_pattern("https://x") && !is_host_pattern("*") && !is_host_pattern("a..b"));
    }

    #[test]
    fn refuses_bad_fields() {
        for bad in [
            p(&"x".repeat(65), "", ""),
            p("a\u{7}b", "", ""),
            p("", "nope", ""),
            p("", "a@b", ""),
            p("", "", "http://example.org/a.png"),
            p("", "", "javascript:alert(1)"),
            p("", "", "https://user@evil.example/x"),
            p("", "", "https://ex.org/\"onerror=x"),
        ] {
            assert_eq!(
                validate(&bad).unwrap_err().code,
                ErrorCode::InvalidProfile,
                "{bad:?}"
            );
        }
    }
}
