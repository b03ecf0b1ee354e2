//! `Set-Cookie` parsing (RFC 6265bis) on top of the `cookie` crate, and the
//! small jar a signed-in identity carries.

use std::collections::BTreeMap;

use cookie::{Cookie, SameSite};

/// A malformed `Set-Cookie` header.
#[derive(Debug, Clone, thiserror::Error)]
#[error("malformed Set-Cookie header: {reason}")]
pub struct CookieError {
    pub reason: String,
}

/// One parsed `Set-Cookie`. The value is a credential: it is never
/// serialized or printed by this type's `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SetCookie {
    pub name: String,
    value: String,
    pub http_only: bool,
    pub secure: bool,
    pub same_site: Option<SameSite>,
    pub path: Option<String>,
    pub domain: Option<String>,
    /// `Max-Age` in seconds, as sent.
    pub max_age: Option<i64>,
    /// True when `Expires` is present (its date is not judged here).
    pub has_expires: bool,
    /// True when `Expires` is at or before 1970-01-02, the usual way to delete.
    pub expires_in_past: bool,
    /// `Expires` as a Unix time, when present and parseable.
    pub expires_unix: Option<i64>,
}

impl std::fmt::Debug for SetCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetCookie")
            .field("name", &self.name)
            .field("value", &"[redacted]")
            .field("http_only", &self.http_only)
            .field("secure", &self.secure)
            .field("same_site", &self.same_site)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("max_age", &self.max_age)
            .finish()
    }
}

impl SetCookie {
    pub fn parse(header: &str) -> Result<SetCookie, CookieError> {
        let (pair, _) = header.split_once(';').unwrap_or((header, ""));
        let Some((name, _)) = pair.split_once('=') else {
            return Err(CookieError {
                reason: "no `=` in the name-value pair".to_owned(),
            });
        };
        if name.trim().is_empty() {
            return Err(CookieError {
                reason: "empty cookie name".to_owned(),
            });
        }
        let parsed = Cookie::parse(header).map_err(|e| CookieError {
            reason: e.to_string(),
        })?;
        // The cookie crate accepts Max-Age it cannot parse by ignoring it; a
        // security check must not, so read it ourselves.
        let mut max_age = None;
        for attr in header.split(';').skip(1) {
            let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
            if k.trim().eq_ignore_ascii_case("max-age") {
                let v = v.trim();
                max_age = Some(v.parse::<i64>().map_err(|_| CookieError {
                    reason: format!(
                        "Max-Age `{v}` of cookie `{}` is not an integer",
                        name.trim()
                    ),
                })?);
            }
        }
        let expires = parsed.expires_datetime();
        Ok(SetCookie {
            name: parsed.name().to_owned(),
            value: parsed.value().to_owned(),
            http_only: parsed.http_only().unwrap_or(false),
            secure: parsed.secure().unwrap_or(false),
            same_site: parsed.same_site(),
            path: parsed.path().map(str::to_owned),
            domain: parsed.domain().map(str::to_owned),
            max_age,
            has_expires: parsed.expires().is_some(),
            expires_in_past: expires.is_some_and(|t| t.unix_timestamp() <= 86_400),
            expires_unix: expires.map(|t| t.unix_timestamp()),
        })
    }

    /// The cookie's value: a credential, handle with care.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// A deletion: `Max-Age` ≤ 0, or an `Expires` in the past.
    pub fn is_deletion(&self) -> bool {
        self.max_age.is_some_and(|m| m <= 0) || (self.max_age.is_none() && self.expires_in_past)
    }
}

/// The cookies one identity holds, name → value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Jar {
    cookies: BTreeMap<String, String>,
}

impl std::fmt::Debug for Jar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.cookies.keys()).finish()
    }
}

impl Jar {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies what a response set: new values replace, deletions remove.
    pub fn apply(&mut self, set: &[SetCookie]) {
        for c in set {
            if c.is_deletion() {
                self.cookies.remove(&c.name);
            } else {
                self.cookies.insert(c.name.clone(), c.value.clone());
            }
        }
    }

    pub fn insert(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_owned(), value.to_owned());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// The `Cookie` request header for this jar, if it holds anything.
    pub fn header(&self) -> Option<String> {
        if self.cookies.is_empty() {
            return None;
        }
        Some(
            self.cookies
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn better_auth_session_cookie_parses() {
        let c = SetCookie::parse(
            "__Secure-better-auth.session_token=abc.def; Max-Age=604800; Path=/; HttpOnly; Secure; SameSite=Lax",
        )
        .unwrap();
        assert_eq!(c.name, "__Secure-better-auth.session_token");
        assert_eq!(c.value(), "abc.def");
        assert!(c.http_only && c.secure);
        assert_eq!(c.same_site, Some(SameSite::Lax));
        assert_eq!(c.max_age, Some(604_800));
        assert_eq!(c.path.as_deref(), Some("/"));
        assert!(c.domain.is_none());
        assert!(!c.is_deletion());
        assert!(!format!("{c:?}").contains("abc.def"));
    }

    #[test]
    fn deletions_are_recognised() {
        let c = SetCookie::parse("a=; Max-Age=0; Path=/").unwrap();
        assert!(c.is_deletion());
        let c = SetCookie::parse("a=; Expires=Thu, 01 Jan 1970 00:00:00 GMT").unwrap();
        assert!(c.is_deletion());
        let mut jar = Jar::new();
        jar.insert("a", "1");
        jar.apply(&[c]);
        assert!(jar.is_empty());
    }

    #[test]
    fn malformed_headers_are_errors_naming_the_problem() {
        assert!(
            SetCookie::parse("novalue")
                .unwrap_err()
                .reason
                .contains("=")
        );
        assert!(SetCookie::parse("=v").unwrap_err().reason.contains("name"));
        let e = SetCookie::parse("a=b; Max-Age=soon").unwrap_err();
        assert!(e.reason.contains("Max-Age"), "{e}");
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = SetCookie::parse(&s);
        }

        #[test]
        fn attributes_round_trip(
            name in "[A-Za-z_][A-Za-z0-9_.-]{0,20}",
            value in "[A-Za-z0-9._%-]{0,30}",
            http_only: bool, secure: bool,
            max_age in proptest::option::of(-5i64..10_000_000),
            same_site in proptest::option::of(prop_oneof![Just("Lax"), Just("Strict"), Just("None")]),
        ) {
            let mut h = format!("{name}={value}; Path=/");
            if http_only { h.push_str("; HttpOnly"); }
            if secure { h.push_str("; Secure"); }
            if let Some(m) = max_age { h.push_str(&format!("; Max-Age={m}")); }
            if let Some(s) = same_site { h.push_str(&format!("; SameSite={s}")); }
            let c = SetCookie::parse(&h).unwrap();
            prop_assert_eq!(&c.name, &name);
            prop_assert_eq!(c.value(), value.as_str());
            prop_assert_eq!(c.http_only, http_only);
            prop_assert_eq!(c.secure, secure);
            prop_assert_eq!(c.max_age, max_age);
            prop_assert_eq!(c.same_site.map(|s| s.to_string()), same_site.map(str::to_owned));
        }
    }
}
