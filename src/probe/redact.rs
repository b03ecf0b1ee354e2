//! Redaction: what a probe records never holds a secret.
//!
//! Three layers: secret headers are masked by name (`authorization`,
//! `cookie`, the value of each `set-cookie`); JSON bodies have the values of
//! secret-looking keys masked; and every secret the run knows (passwords, the
//! service key, each session token it has seen) is replaced wherever it
//! still appears, in every encoding a target may echo it in:
//!
//! - raw, and percent-decoded when it was learned encoded;
//! - percent-encoded: every byte but the RFC 3986 unreserved ones, or as
//!   `encodeURIComponent` leaves `!'()*`, or as a form (space as `+`), each
//!   with upper- or lower-case hex;
//! - base64, standard and URL-safe, padded and not; and, for a secret
//!   encoded inside a longer value, whose encoding depends on where it
//!   starts modulo 3, the stable inner part of each of the three alignments
//!   (the characters only the secret's whole 3-byte groups decide);
//! - JSON-escaped, as `serde_json` and `JSON.stringify` write it, with `/`
//!   as `\/` or not, non-ASCII raw or as `\u` escapes (either case).
//!
//! Not covered: encodings nested in one another (base64 of the
//! percent-encoded form, percent of percent), hex and other encodings; the
//! first and last one or two base64 characters of an embedded secret (they
//! mix in the neighbouring bytes and carry a few bits of it); and the
//! embedded base64 of a secret shorter than 8 bytes, whose inner parts are
//! too short to match without mangling ordinary text.
//!
//! [`mask_credentials`] is the static layer for text the binary prints: URL
//! userinfo and `Bearer`/`Basic` credentials, whoever's they are.

use std::sync::RwLock;

use aho_corasick::AhoCorasick;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use crate::model::{Redact, Scrub, Secret};

pub const REDACTED: &str = "[redacted]";

/// Shortest string we treat as a learnable secret; shorter values would
/// make redaction mangle ordinary text.
const MIN_SECRET_LEN: usize = 6;

/// Shortest encoded form of a secret we replace: an encoding (the inner
/// part of an embedded base64 above all) shorter than this would match
/// ordinary text.
const MIN_ENCODED_LEN: usize = 8;

/// Shortest word after `Bearer `/`Basic ` masked by [`mask_credentials`]:
/// credentials are long, and prose ("a bearer credential") must survive.
const MIN_SCHEME_CREDENTIAL_LEN: usize = 16;

/// Keys whose JSON values are always masked.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "token",
        "password",
        "secret",
        "service_key",
        "servicekey",
        "api_key",
        "apikey",
    ]
    .iter()
    .any(|k| key.contains(k))
}

#[derive(Default)]
struct Known {
    /// The secrets as learned (after percent-decoding and token splitting).
    secrets: Vec<String>,
    /// Every form of every secret.
    forms: Vec<String>,
    /// Finds every form; `None` while nothing is known.
    matcher: Option<AhoCorasick>,
    /// Cookie names held as credentials beyond those that say so
    /// (lowercase, without a `__Host-`/`__Secure-` prefix).
    held_cookies: Vec<String>,
}

/// Words in a cookie's name that say it carries a credential.
const CREDENTIAL_COOKIE_WORDS: [&str; 9] = [
    "session",
    "token",
    "auth",
    "sid",
    "jwt",
    "access",
    "refresh",
    "credential",
    "key",
];

fn unprefixed(name: &str) -> &str {
    name.strip_prefix("__Host-")
        .or_else(|| name.strip_prefix("__Secure-"))
        .unwrap_or(name)
}

fn is_credential_cookie(name: &str, held: &[String]) -> bool {
    let name = unprefixed(name).to_ascii_lowercase();
    held.contains(&name) || CREDENTIAL_COOKIE_WORDS.iter().any(|w| name.contains(w))
}

#[derive(Default)]
pub struct Redactor {
    known: RwLock<Known>,
}

/// Says how many secrets it knows, never which: a `{:?}` of a probe, a
/// check's context or anything holding them prints no secret.
impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let known = self.known.read().map_or(0, |k| k.secrets.len());
        f.debug_struct("Redactor")
            .field("known_secrets", &known)
            .finish()
    }
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a secret to be replaced wherever it appears.
    pub fn learn(&self, secret: &Secret) {
        self.learn_str(secret.expose());
    }

    pub fn learn_str(&self, value: &str) {
        let mut variants = vec![value.to_owned()];
        if let Ok(decoded) = percent_decode(value) {
            variants.push(decoded);
        }
        // better-auth's cookie value is `<token>.<signature>`; the bare token
        // appears in JSON bodies.
        for v in variants.clone() {
            if let Some((token, _)) = v.split_once('.') {
                variants.push(token.to_owned());
            }
        }
        variants.retain(|v| v.len() >= MIN_SECRET_LEN);
        let mut known = self.known.write().expect("redactor poisoned");
        let mut added = false;
        for v in variants {
            if known.secrets.contains(&v) {
                continue;
            }
            for form in encodings(&v) {
                if !known.forms.contains(&form) {
                    known.forms.push(form);
                }
            }
            known.secrets.push(v);
            added = true;
        }
        if added {
            // Patterns are plain strings: building cannot fail short of a
            // size limit, and then every form is still replaced one by one.
            known.matcher = AhoCorasick::new(&known.forms).ok();
        }
    }

    /// A cookie the target set: its value is learned only when the cookie
    /// is a credential the run holds (its name says session, token, auth
    /// and the like, or it is the target's configured session cookie: see
    /// [`Redactor::hold_cookie`]). Any other cookie's value is the target's
    /// to choose (`x=medium`, a check id, a verdict word), and learning it
    /// would let the target decide what is masked. A cookie's value is
    /// masked in the headers that carry it whatever its name.
    pub fn learn_cookie(&self, name: &str, value: &str) {
        let held = {
            let known = self.known.read().expect("redactor poisoned");
            is_credential_cookie(name, &known.held_cookies)
        };
        if held {
            self.learn_str(value);
        }
    }

    /// `name` is a credential cookie whatever it is called (the target's
    /// configured session cookie).
    pub fn hold_cookie(&self, name: &str) {
        let mut known = self.known.write().expect("redactor poisoned");
        let name = unprefixed(name).to_ascii_lowercase();
        if !known.held_cookies.contains(&name) {
            known.held_cookies.push(name);
        }
    }

    /// Everything `other` knows, known here too.
    pub fn absorb(&self, other: &Redactor) {
        let secrets = other
            .known
            .read()
            .expect("redactor poisoned")
            .secrets
            .clone();
        for s in secrets {
            self.learn_str(&s);
        }
    }

    /// Replaces every known secret, in every form, in `text`: each stretch
    /// covered by one or more (possibly overlapping) occurrences becomes one
    /// `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        let known = self.known.read().expect("redactor poisoned");
        if known.forms.is_empty() {
            return text.to_owned();
        }
        let mut spans: Vec<(usize, usize)> = match &known.matcher {
            Some(matcher) => matcher
                .find_overlapping_iter(text)
                .map(|m| (m.start(), m.end()))
                .collect(),
            None => known
                .forms
                .iter()
                .flat_map(|f| {
                    text.match_indices(f.as_str())
                        .map(|(at, _)| (at, at + f.len()))
                })
                .collect(),
        };
        if spans.is_empty() {
            return text.to_owned();
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        let mut spans = spans.into_iter().peekable();
        while let Some((start, mut end)) = spans.next() {
            while let Some(&(s, e)) = spans.peek() {
                if s > end {
                    break;
                }
                end = end.max(e);
                spans.next();
            }
            // Patterns and text are UTF-8: a match starts and ends on a
            // character boundary.
            out.push_str(&text[at..start]);
            out.push_str(REDACTED);
            at = end;
        }
        out.push_str(&text[at..]);
        out
    }

    /// [`Redactor::scrub`], then [`mask_credentials`]: for text the binary
    /// prints.
    pub fn scrub_printed(&self, text: &str) -> String {
        mask_credentials(&self.scrub(text))
    }

    /// Scrubs the free text of `record` (see [`Redact`]) of every known
    /// secret, in place. Structure (ids, statuses, enum tags, digests,
    /// numbers) is never touched, whatever secrets are known.
    pub fn redact<T: Redact + ?Sized>(&self, record: &mut T) {
        record.redact(self);
    }

    /// [`Redactor::redact`] with [`Redactor::scrub_printed`]: a record the
    /// binary writes.
    pub fn redact_printed<T: Redact + ?Sized>(&self, record: &mut T) {
        record.redact(&Printed(self));
    }

    /// Masks a request header's value if the header carries a credential.
    pub fn request_header(&self, name: &str, value: &str) -> String {
        match name.to_ascii_lowercase().as_str() {
            "authorization" | "proxy-authorization" => match value.split_once(' ') {
                Some((scheme, _)) => format!("{scheme} {REDACTED}"),
                None => REDACTED.to_owned(),
            },
            "cookie" => value
                .split(';')
                .map(|pair| match pair.trim().split_once('=') {
                    Some((n, _)) => format!("{n}={REDACTED}"),
                    None => REDACTED.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("; "),
            _ => self.scrub(value),
        }
    }

    /// Masks a response header's value; `set-cookie` keeps its attributes,
    /// which are evidence, and loses its value.
    pub fn response_header(&self, name: &str, value: &str) -> String {
        if name.eq_ignore_ascii_case("set-cookie") {
            let (pair, attrs) = value.split_once(';').unwrap_or((value, ""));
            let masked = match pair.split_once('=') {
                Some((n, "")) => format!("{n}="),
                Some((n, _)) => format!("{n}={REDACTED}"),
                None => REDACTED.to_owned(),
            };
            let rest = if attrs.is_empty() {
                String::new()
            } else {
                format!(";{}", self.scrub(attrs))
            };
            return format!("{masked}{rest}");
        }
        self.request_header(name, value)
    }

    /// Masks a body: secret JSON keys first, then every known secret.
    pub fn body(&self, text: &str) -> String {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(mut json) => {
                mask_json(&mut json);
                self.scrub(&json.to_string())
            }
            Err(_) => self.scrub(text),
        }
    }
}

impl Scrub for Redactor {
    fn text(&self, text: &str) -> String {
        self.scrub(text)
    }

    fn config_url(&self, url: &str) -> String {
        mask_credentials(url)
    }
}

/// A redactor scrubbing as the binary prints: credentials masked too.
struct Printed<'a>(&'a Redactor);

impl Scrub for Printed<'_> {
    fn text(&self, text: &str) -> String {
        self.0.scrub_printed(text)
    }

    fn config_url(&self, url: &str) -> String {
        mask_credentials(url)
    }
}

/// Every form of `secret` a target may echo it in (see the module docs),
/// the secret itself first.
fn encodings(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_owned()];
    let mut add = |form: String| {
        if form.len() >= MIN_ENCODED_LEN && !forms.contains(&form) {
            forms.push(form);
        }
    };
    // Percent-encoded.
    for keep in [&b"-._~"[..], b"-._~!'()*"] {
        for upper in [true, false] {
            add(percent_encode(secret, keep, upper, false));
        }
    }
    for upper in [true, false] {
        add(percent_encode(secret, b"-._*", upper, true));
    }
    // Base64, whole and embedded at each alignment.
    let bytes = secret.as_bytes();
    let mut base64 = vec![
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
    ];
    for skip in 0..3 {
        let Some(rest) = bytes.get(skip..) else {
            continue;
        };
        let whole = &rest[..rest.len() / 3 * 3];
        base64.push(STANDARD_NO_PAD.encode(whole));
        base64.push(URL_SAFE_NO_PAD.encode(whole));
    }
    for b in base64 {
        // A JSON writer may escape the slash of standard base64.
        if b.contains('/') {
            add(b.replace('/', "\\/"));
        }
        add(b);
    }
    // JSON-escaped.
    let json = serde_json::to_string(secret).expect("a string serializes");
    let json = json[1..json.len() - 1].to_owned();
    for ascii in [None, Some(false), Some(true)] {
        let escaped = match ascii {
            None => json.clone(),
            Some(upper) => escape_non_ascii(&json, upper),
        };
        add(escaped.replace('/', "\\/"));
        add(escaped);
    }
    forms
}

/// `%XX` for every byte but ASCII alphanumerics and `keep`; `form` writes
/// a space as `+`.
fn percent_encode(s: &str, keep: &[u8], upper: bool, form: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else if form && b == b' ' {
            out.push('+');
        } else if upper {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// Every non-ASCII character of `s` as `\uXXXX` (UTF-16, surrogate pairs
/// beyond the BMP).
fn escape_non_ascii(s: &str, upper: bool) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
            continue;
        }
        let mut units = [0u16; 2];
        for u in c.encode_utf16(&mut units) {
            if upper {
                out.push_str(&format!("\\u{u:04X}"));
            } else {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// Masks credentials in text whoever's they are: the userinfo of a URL
/// (`https://user:pass@host/` becomes `https://[redacted]@host/`, also
/// inside longer text) and the credential after `Bearer ` or `Basic `
/// (one that looks like a credential: see [`looks_like_credential`]).
pub fn mask_credentials(text: &str) -> String {
    mask_schemes(&mask_userinfo(text))
}

fn mask_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the path, query, fragment, or where the
        // URL does in text.
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '`' | '<' | '>') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(userinfo_end) => {
                out.push_str(REDACTED);
                out.push_str(&authority[userinfo_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// A credential, not a word of prose: long, and with a digit, a symbol
/// of base64 or a JWT, or mixed case (`authentication-required` is prose).
fn looks_like_credential(word: &str) -> bool {
    let has = |f: fn(&u8) -> bool| word.as_bytes().iter().any(f);
    word.len() >= MIN_SCHEME_CREDENTIAL_LEN
        && (has(u8::is_ascii_digit)
            || has(|b| b"+/=_.~".contains(b))
            || (has(u8::is_ascii_uppercase) && has(u8::is_ascii_lowercase)))
}

fn mask_schemes(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut from = 0;
    loop {
        let next = ["bearer ", "basic "]
            .iter()
            .filter_map(|scheme| lower[from..].find(scheme).map(|i| (from + i, scheme.len())))
            .min();
        let Some((start, len)) = next else {
            break;
        };
        let credential = start + len;
        // A word of its own, followed by a token68 credential.
        let standalone = start == 0 || !text.as_bytes()[start - 1].is_ascii_alphanumeric();
        let token_len = text[credential..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(b))
            .count();
        if standalone && looks_like_credential(&text[credential..credential + token_len]) {
            out.push_str(&text[at..credential]);
            out.push_str(REDACTED);
            at = credential + token_len;
        }
        from = credential + token_len;
    }
    out.push_str(&text[at..]);
    out
}

fn mask_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if is_secret_key(key) && !v.is_null() {
                    *v = serde_json::Value::String(REDACTED.to_owned());
                } else {
                    mask_json(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_json),
        _ => {}
    }
}

fn percent_decode(s: &str) -> Result<String, ()> {
    if !s.contains('%') {
        return Err(());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_bodies_and_learned_tokens_are_masked() {
        let r = Redactor::new();
        r.learn_str("abcdefTOKEN.sig%2Bnature");
        assert_eq!(
            r.request_header("Authorization", "Bearer sk-1"),
            "Bearer [redacted]"
        );
        assert_eq!(
            r.request_header("cookie", "a=1; __Secure-x=abc"),
            "a=[redacted]; __Secure-x=[redacted]"
        );
        assert_eq!(
            r.response_header("set-cookie", "s=abcdefTOKEN.sig; Path=/; HttpOnly"),
            "s=[redacted]; Path=/; HttpOnly"
        );
        assert_eq!(
            r.response_header("set-cookie", "s=; Max-Age=0"),
            "s=; Max-Age=0"
        );
        let body = r.body(r#"{"user":{"name":"a"},"token":"zzzzzz","note":"abcdefTOKEN"}"#);
        assert!(
            !body.contains("zzzzzz") && !body.contains("abcdefTOKEN"),
            "{body}"
        );
        assert!(body.contains("\"name\":\"a\""));
        assert_eq!(r.scrub("x abcdefTOKEN.sig+nature y"), "x [redacted] y");
    }

    #[test]
    fn only_credential_cookies_are_learned() {
        let r = Redactor::new();
        r.learn_cookie("x", "medium");
        r.learn_cookie("verdict", "FAILED-exchange");
        r.learn_cookie("__Secure-better-auth.session_token", "tok-abcdef.sig");
        r.learn_cookie("sb-access-token", "jwt-123456");
        r.learn_cookie("flk", "held-by-config");
        assert_eq!(
            r.scrub("medium FAILED-exchange held-by-config"),
            "medium FAILED-exchange held-by-config"
        );
        assert_eq!(r.scrub("tok-abcdef jwt-123456"), "[redacted] [redacted]");
        r.hold_cookie("__Host-FLK");
        r.learn_cookie("flk", "held-by-config");
        assert_eq!(r.scrub("held-by-config"), "[redacted]");
    }

    #[test]
    fn short_values_are_not_learned() {
        let r = Redactor::new();
        r.learn_str("ab");
        assert_eq!(r.scrub("abc"), "abc");
    }

    #[test]
    fn redact_reaches_free_text_and_never_structure() {
        use crate::model::{Evidence, Exchange, HttpRequest, Report, Status, Subject};
        let r = Redactor::new();
        r.learn_str("sekrit-token-value");
        // A learned value that equals structure: an enum tag, a check id.
        r.learn_str("cookie.httponly");
        let exchange = Exchange {
            label: "saw sekrit-token-value".to_owned(),
            request: HttpRequest {
                method: "GET".to_owned(),
                url: "http://h.test/?t=sekrit-token-value".to_owned(),
                headers: Vec::new(),
                body: None,
            },
            response: None,
            error: Some("x=sekrit-token-value".to_owned()),
            at_ms: 0,
            elapsed_ms: 0,
        };
        let check = crate::model::CheckResult {
            id: crate::model::CheckId::new("cookie.httponly").unwrap(),
            title: "t".to_owned(),
            status: Status::Pass,
            summary: "cookie.httponly saw sekrit-token-value".to_owned(),
            severity: None,
            level: None,
            help: String::new(),
            requirements: Vec::new(),
            evidence: vec![Evidence::Exchange(exchange)],
            duration_ms: 1,
            version: None,
            target: None,
        };
        let subject = Subject {
            base_url: Some("https://ci:pw-123456@h.test/".to_owned()),
            vantages: Vec::new(),
            script: None,
        };
        let mut report = Report::new("conform", "p/v1", subject, "t".into(), 1, vec![check]);
        r.redact(&mut report);
        let text = serde_json::to_string(&report).unwrap();
        assert!(!text.contains("sekrit-token-value"), "{text}");
        assert_eq!(report.checks[0].id.as_str(), "cookie.httponly");
        assert_eq!(report.checks[0].summary, "[redacted] saw [redacted]");
        assert_eq!(
            report.subject.base_url.as_deref(),
            Some("https://[redacted]@h.test/")
        );
    }

    #[test]
    fn every_encoding_a_target_may_echo_is_replaced() {
        let secret = "pa ss/w\u{f6}rd+\"x&1\\end";
        let r = Redactor::new();
        r.learn_str(secret);
        let json = serde_json::to_string(secret).unwrap();
        let json = &json[1..json.len() - 1];
        let mut forms = vec![
            secret.to_owned(),
            percent_encode(secret, b"-._~", true, false),
            percent_encode(secret, b"-._~", false, false),
            url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
            STANDARD.encode(secret),
            STANDARD_NO_PAD.encode(secret),
            URL_SAFE.encode(secret),
            URL_SAFE_NO_PAD.encode(secret),
            json.to_owned(),
            json.replace('/', "\\/"),
            json.replace('\u{f6}', "\\u00f6").replace('/', "\\/"),
            json.replace('\u{f6}', "\\u00F6"),
        ];
        // Embedded in a longer base64 value at each offset modulo 3.
        for pad in 0..3 {
            let mut bytes = vec![b'{'; pad + 3];
            bytes.extend_from_slice(secret.as_bytes());
            bytes.extend_from_slice(b"}}}}");
            forms.push(STANDARD.encode(&bytes));
            forms.push(URL_SAFE_NO_PAD.encode(&bytes));
        }
        for form in forms {
            let text = format!("echo <{form}> done");
            let scrubbed = r.scrub(&text);
            assert!(scrubbed.contains(REDACTED), "{form}: {scrubbed}");
            assert!(scrubbed.starts_with("echo <") && scrubbed.ends_with("> done"));
            // What is left of an embedded one is the few characters that
            // mix in the neighbours' bits: never 4 in a row of the secret's.
            let left = scrubbed.len() - "echo <> done".len() - REDACTED.len();
            assert!(left <= 16, "{form}: {scrubbed}");
        }
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        let r = Redactor::new();
        for s in ["secret7", "hunter22", "correct horse battery", "tok"] {
            r.learn_str(s);
        }
        let text = "GET /api/me answered 200 with {\"user\":{\"id\":\"u1\"}} in 12 ms; \
                    a bearer credential was refused; see https://example.test/docs#x";
        assert_eq!(r.scrub(text), text);
        assert_eq!(mask_credentials(text), text);
        // The inner base64 of a secret this short is too short to learn.
        assert_eq!(r.scrub("Zm9vYmFy"), "Zm9vYmFy");
    }

    #[test]
    fn overlapping_secrets_are_masked_whole() {
        let r = Redactor::new();
        r.learn_str("alpha-beta-gamma");
        r.learn_str("gamma-delta-epsilon");
        assert_eq!(
            r.scrub("x alpha-beta-gamma-delta-epsilon y"),
            "x [redacted] y"
        );
    }

    #[test]
    fn userinfo_and_scheme_credentials_are_masked_in_text() {
        assert_eq!(
            mask_credentials("read `https://user:pa%40ss@api.test:8443/v4?x=1` (HTTP 403)"),
            "read `https://[redacted]@api.test:8443/v4?x=1` (HTTP 403)"
        );
        assert_eq!(
            mask_credentials("a http://tok@h.test and ftp://u:p@h2.test/ end"),
            "a http://[redacted]@h.test and ftp://[redacted]@h2.test/ end"
        );
        assert_eq!(
            mask_credentials("write to ops@example.test, see https://h.test/a@b"),
            "write to ops@example.test, see https://h.test/a@b"
        );
        assert_eq!(
            mask_credentials(
                "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln, basic dXNlcjpwYXNzd29yZA=="
            ),
            "Authorization: Bearer [redacted], basic [redacted]"
        );
        assert_eq!(
            mask_credentials("Bearer [redacted]; a bearer token"),
            "Bearer [redacted]; a bearer token"
        );
        let prose = "Basic authentication-is-required; a bearer-credential-that-is-prose";
        assert_eq!(mask_credentials(prose), prose);
        assert_eq!(
            mask_credentials("bearer AbcdefghijklmnopQrstuvwxyz"),
            "bearer [redacted]"
        );
    }

    #[test]
    fn absorb_learns_what_another_redactor_knows() {
        let run = Redactor::new();
        run.learn_str("session-token-4711");
        let printer = Redactor::new();
        printer.absorb(&run);
        assert_eq!(printer.scrub("t=session-token-4711"), "t=[redacted]");
        assert_eq!(format!("{printer:?}"), "Redactor { known_secrets: 1 }");
    }
}
