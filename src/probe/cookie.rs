//! `Set-Cookie` parsing (RFC 6265bis §5.6) on top of the `cookie` crate, and the
//! small jar a signed-in identity carries.
//!
//! The `cookie` crate splits the header and gives the name-value pair and the
//! flag attributes (`Secure`, `HttpOnly`) as a user agent reads them. Where
//! browsers read an attribute's value differently from it, the attribute is
//! read here from the same split, as §5.6 says:
//!
//! - `Expires`: the crate accepts three fixed date layouts; browsers run the
//!   lenient §5.1.1 cookie-date algorithm (`Fri Jan 01 2100 00:00:00 GMT+0000`,
//!   two-digit years, missing weekday, any delimiters), so a date the crate
//!   drops can still make the browser keep the cookie for years
//!   ([`parse_cookie_date`]). The last `Expires` that parses wins.
//! - `Max-Age`: per §5.6.2 a value that does not start with a digit or `-`,
//!   or has a non-digit after it, is ignored (the crate also takes `+5`); a
//!   value too large for `i64` saturates. The last valid one wins.
//! - `SameSite`: an unknown value still counts as the last `SameSite`
//!   (enforcement "Default"), where the crate keeps an earlier valid one: with
//!   `SameSite=Strict; SameSite=bogus` a browser has no Strict.
//! - `Path` and `Domain`: an attribute value over 1024 bytes is ignored; the
//!   leading `.` of a Domain is dropped and it is lower-cased; a `Path` that
//!   does not begin with `/` becomes the default-path (done by the store,
//!   [`super::browser`], which knows the request URL).
//! - A header with a control character (other than HTAB) is ignored whole.
//! - A header without `=` or with an empty name is a nameless cookie to a
//!   browser; the crate refuses it and so does this parser. A nameless
//!   cookie cannot be the session cookie or replace a named one, so nothing
//!   the checks judge is lost.

use std::collections::BTreeMap;

use cookie::{Cookie, SameSite};

/// A malformed `Set-Cookie` header.
#[derive(Debug, Clone, thiserror::Error)]
#[error("malformed Set-Cookie header: {reason}")]
pub struct CookieError {
    pub reason: String,
}

/// RFC 6265bis §5.6: attribute values longer than this are ignored.
const MAX_ATTRIBUTE_VALUE: usize = 1024;

/// One parsed `Set-Cookie`. The value is a credential: it is never
/// serialized or printed by this type's `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SetCookie {
    pub name: String,
    value: String,
    pub http_only: bool,
    pub secure: bool,
    pub same_site: Option<SameSite>,
    /// The last `Path` attribute's value, as sent (may be empty or not begin
    /// with `/`; the store then uses the default-path).
    pub path: Option<String>,
    /// The last non-empty `Domain` attribute, without its leading `.`,
    /// lower-cased.
    pub domain: Option<String>,
    /// The last valid `Max-Age` in seconds (§5.6.2).
    pub max_age: Option<i64>,
    /// True when an `Expires` attribute is present (parseable or not).
    pub has_expires: bool,
    /// True when `Expires` is at or before now, the usual way to delete.
    pub expires_in_past: bool,
    /// The last `Expires` that parses as a cookie date (§5.1.1), Unix time.
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
            .field("expires_unix", &self.expires_unix)
            .finish()
    }
}

impl SetCookie {
    pub fn parse(header: &str) -> Result<SetCookie, CookieError> {
        if header
            .bytes()
            .any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            return Err(CookieError {
                reason: "a control character in the header (a browser ignores it)".to_owned(),
            });
        }
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
        let mut c = SetCookie {
            name: parsed.name().to_owned(),
            value: parsed.value().to_owned(),
            http_only: parsed.http_only().unwrap_or(false),
            secure: parsed.secure().unwrap_or(false),
            same_site: None,
            path: None,
            domain: None,
            max_age: None,
            has_expires: false,
            expires_in_past: false,
            expires_unix: None,
        };
        // The attributes browsers read differently from the crate (see the
        // module's documentation), from the same split, in order: the last
        // valid one of each wins.
        for attr in header.split(';').skip(1) {
            let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
            let (k, v) = (k.trim(), v.trim());
            if v.len() > MAX_ATTRIBUTE_VALUE {
                continue;
            }
            match k.to_ascii_lowercase().as_str() {
                "max-age" => {
                    if let Some(m) = parse_max_age(v) {
                        c.max_age = Some(m);
                    }
                }
                "expires" => {
                    c.has_expires = true;
                    if let Some(t) = parse_cookie_date(v) {
                        c.expires_unix = Some(t);
                    }
                }
                "samesite" => {
                    c.same_site = if v.eq_ignore_ascii_case("strict") {
                        Some(SameSite::Strict)
                    } else if v.eq_ignore_ascii_case("lax") {
                        Some(SameSite::Lax)
                    } else if v.eq_ignore_ascii_case("none") {
                        Some(SameSite::None)
                    } else {
                        None
                    };
                }
                "path" => c.path = Some(v.to_owned()),
                "domain" => {
                    let d = v.strip_prefix('.').unwrap_or(v);
                    // `Domain=.` leaves the cookie host-only, and still
                    // overrides an earlier Domain (the last one wins).
                    if !v.is_empty() {
                        c.domain = (!d.is_empty()).then(|| d.to_ascii_lowercase());
                    }
                }
                _ => {}
            }
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        c.expires_in_past = c.expires_unix.is_some_and(|t| t <= now);
        Ok(c)
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

/// `Max-Age` as RFC 6265bis §5.6.2 reads it: a digit or `-`, then digits;
/// anything else is ignored (`None`). Too large for `i64`: saturated.
fn parse_max_age(v: &str) -> Option<i64> {
    let (negative, digits) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(match digits.parse::<i64>() {
        Ok(n) if negative => -n,
        Ok(n) => n,
        Err(_) if negative => i64::MIN,
        Err(_) => i64::MAX,
    })
}

/// A cookie date (RFC 6265bis §5.1.1), as browsers parse `Expires`: tokens
/// split at the delimiters, the first time, day of month, month and year
/// found in any order, each possibly followed by junk. Unix time, or `None`
/// when the date does not parse (the attribute is then ignored).
pub fn parse_cookie_date(s: &str) -> Option<i64> {
    let is_delimiter = |b: u8| {
        b == 0x09
            || (0x20..=0x2f).contains(&b)
            || (0x3b..=0x40).contains(&b)
            || (0x5b..=0x60).contains(&b)
            || (0x7b..=0x7e).contains(&b)
    };
    let mut time = None;
    let mut day = None;
    let mut month = None;
    let mut year = None;
    for token in s.as_bytes().split(|b| is_delimiter(*b)) {
        if token.is_empty() {
            continue;
        }
        if time.is_none()
            && let Some(t) = time_of(token)
        {
            time = Some(t);
        } else if day.is_none()
            && let Some((d, _)) = leading_digits(token, 1, 2)
        {
            day = Some(d);
        } else if month.is_none()
            && let Some(m) = month_of(token)
        {
            month = Some(m);
        } else if year.is_none()
            && let Some((y, _)) = leading_digits(token, 2, 4)
        {
            year = Some(y);
        }
    }
    let (hour, minute, second) = time?;
    let (day, month, mut year) = (day?, month?, year?);
    if (70..=99).contains(&year) {
        year += 1900;
    } else if year <= 69 {
        year += 2000;
    }
    if !(1..=31).contains(&day) || year < 1601 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(year).ok()?, month, day as u8).ok()?;
    let at = date.with_hms(hour as u8, minute as u8, second as u8).ok()?;
    Some(at.assume_utc().unix_timestamp())
}

/// `min..=max` leading digits, followed by the end or a non-digit.
fn leading_digits(token: &[u8], min: usize, max: usize) -> Option<(u32, &[u8])> {
    let n = token.iter().take_while(|b| b.is_ascii_digit()).count();
    if n < min || n > max {
        return None;
    }
    let value = token[..n]
        .iter()
        .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
    Some((value, &token[n..]))
}

/// `hms-time`: 1*2DIGIT ":" 1*2DIGIT ":" 1*2DIGIT, then anything.
fn time_of(token: &[u8]) -> Option<(u32, u32, u32)> {
    let (h, rest) = leading_digits(token, 1, 2)?;
    let rest = rest.strip_prefix(b":")?;
    let (m, rest) = leading_digits(rest, 1, 2)?;
    let rest = rest.strip_prefix(b":")?;
    let (s, _) = leading_digits(rest, 1, 2)?;
    Some((h, m, s))
}

/// A month: the token's first three characters name it, case-insensitively.
fn month_of(token: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let head = token.get(..3)?;
    MONTHS
        .iter()
        .position(|m| head.eq_ignore_ascii_case(*m))
        .map(|i| i as u32 + 1)
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
    }

    #[test]
    fn attributes_are_read_as_a_browser_reads_them() {
        // A Max-Age a browser ignores is ignored, not taken for a lifetime.
        let c = SetCookie::parse("a=b; Max-Age=soon; Max-Age=+5").unwrap();
        assert_eq!(c.max_age, None);
        let c = SetCookie::parse("a=b; Max-Age=60; Max-Age=x").unwrap();
        assert_eq!(c.max_age, Some(60));
        let c = SetCookie::parse("a=b; Max-Age=99999999999999999999999").unwrap();
        assert_eq!(c.max_age, Some(i64::MAX));
        // The last SameSite counts, even when a browser does not know it.
        let c = SetCookie::parse("a=b; SameSite=Strict; SameSite=bogus").unwrap();
        assert_eq!(c.same_site, None);
        let c = SetCookie::parse("a=b; Domain=.Example.TEST; Path=/x").unwrap();
        assert_eq!(c.domain.as_deref(), Some("example.test"));
        assert_eq!(c.path.as_deref(), Some("/x"));
        let c = SetCookie::parse("a=b; Domain=a.test; Domain=.").unwrap();
        assert_eq!(c.domain, None);
        // A date layout the cookie crate drops, which browsers keep.
        let h = "a=b; Expires=Fri Jan 01 2100 00:00:00 GMT+0000 (Coordinated Universal Time)";
        assert!(cookie::Cookie::parse(h).unwrap().expires().is_none());
        assert_eq!(
            SetCookie::parse(h).unwrap().expires_unix,
            Some(4_102_444_800)
        );
        assert!(SetCookie::parse("a=b\u{1}; Path=/").is_err());
    }

    #[test]
    fn cookie_dates_parse_as_rfc6265bis_5_1_1_says() {
        let jan_2100 = Some(4_102_444_800);
        for s in [
            "Fri, 01 Jan 2100 00:00:00 GMT",
            "Friday, 01-Jan-2100 00:00:00 GMT",
            "Fri Jan  1 00:00:00 2100",
            "01 jan 2100 00:00:00",
            "2100 January 1st 00:00:00",
            "00:00:00, 1 JAN 2100",
        ] {
            assert_eq!(parse_cookie_date(s), jan_2100, "{s}");
        }
        assert_eq!(parse_cookie_date("Thu, 01-Jan-70 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_cookie_date("Sun, 06 Nov 94 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_cookie_date("Wed, 01 Jan 2025 00:00:00 GMT"),
            Some(1_735_689_600)
        );
        for bad in [
            "",
            "Fri, 01 Jan 2100",
            "Fri, 32 Jan 2100 00:00:00 GMT",
            "Fri, 30 Feb 2100 00:00:00 GMT",
            "Fri, 01 Jan 1600 00:00:00 GMT",
            "Fri, 01 Jan 2100 24:00:00 GMT",
            "Fri, 01 Jan 2100 00:60:00 GMT",
            "Fri, 001 Jan 2100 00:00:00 GMT",
            "soon",
        ] {
            assert_eq!(parse_cookie_date(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = SetCookie::parse(&s);
        }

        #[test]
        fn cookie_dates_never_panic(s in "[ -~]{0,60}|\\PC{0,40}") {
            let _ = parse_cookie_date(&s);
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
