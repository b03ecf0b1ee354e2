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

use crate::model::{Redact, Scrub, Secret};

mod credentials;
mod forms;

pub use credentials::mask_credentials;
use forms::{encodings, percent_decode};

pub const REDACTED: &str = "[redacted]";

/// Shortest string we treat as a learnable secret; shorter values would
/// make redaction mangle ordinary text.
const MIN_SECRET_LEN: usize = 6;

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

/// A header whose name says it carries a credential (`set-auth-token`,
/// `x-api-key`, `x-service-key`): its value is masked whoever sent it.
fn is_credential_header(name: &str) -> bool {
    is_secret_key(&name.replace('-', "_"))
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

    /// A header the target answered with: its value is a credential the run
    /// now holds when the header's name says so (better-auth's
    /// `set-auth-token`), and is learned then; any other header's value is
    /// the target's to choose.
    pub fn learn_header(&self, name: &str, value: &str) {
        if is_credential_header(name) {
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
            _ if is_credential_header(name) => REDACTED.to_owned(),
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
        // A credential header is masked by its name, and what it issued is
        // learned; another header's value is not.
        assert_eq!(
            r.response_header("set-auth-token", "bearer-tok-4711"),
            "[redacted]"
        );
        assert_eq!(r.request_header("X-Api-Key", "blq_abcdef"), "[redacted]");
        r.learn_header("set-auth-token", "bearer-tok-4711");
        r.learn_header("x-verdict", "FAILED-words");
        assert_eq!(
            r.scrub("bearer-tok-4711 FAILED-words"),
            "[redacted] FAILED-words"
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
    fn absorb_learns_what_another_redactor_knows() {
        let run = Redactor::new();
        run.learn_str("session-token-4711");
        let printer = Redactor::new();
        printer.absorb(&run);
        assert_eq!(printer.scrub("t=session-token-4711"), "t=[redacted]");
        assert_eq!(format!("{printer:?}"), "Redactor { known_secrets: 1 }");
    }
}
