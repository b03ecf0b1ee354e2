//! Redaction: what a probe records never holds a secret.
//!
//! Three layers: secret headers are masked by name (`authorization`,
//! `cookie`, the value of each `set-cookie`); JSON bodies have the values of
//! secret-looking keys masked; and every secret the run knows (passwords, the
//! service key, each session token it has seen) is replaced wherever it
//! still appears.

use std::sync::RwLock;

use crate::model::Secret;

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

/// A value could not be scrubbed: nothing may be written from it.
#[derive(Debug, thiserror::Error)]
#[error("scrub the known secrets from the report (nothing is written)")]
pub struct ScrubError(#[source] serde_json::Error);

#[derive(Default)]
pub struct Redactor {
    known: RwLock<Vec<String>>,
}

/// Says how many secrets it knows, never which: a `{:?}` of a probe, a
/// check's context or anything holding them prints no secret.
impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let known = self.known.read().map_or(0, |k| k.len());
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
        let mut known = self.known.write().expect("redactor poisoned");
        for v in variants {
            if v.len() >= MIN_SECRET_LEN && !known.contains(&v) {
                known.push(v);
            }
        }
        // Longest first, so a secret containing another is replaced whole.
        known.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// Replaces every known secret in `text`.
    pub fn scrub(&self, text: &str) -> String {
        let known = self.known.read().expect("redactor poisoned");
        let mut out = text.to_owned();
        for secret in known.iter() {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }

    /// `value` with every known secret replaced in every string it holds
    /// (a summary, an evidence body, a URL), whatever its type. It fails
    /// closed: a value that does not survive the round trip through JSON is
    /// an error, never returned unscrubbed.
    pub fn scrub_all<T>(&self, value: &T) -> Result<T, ScrubError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        fn walk(redactor: &Redactor, value: &mut serde_json::Value) {
            match value {
                serde_json::Value::String(s) => *s = redactor.scrub(s),
                serde_json::Value::Array(items) => items.iter_mut().for_each(|v| walk(redactor, v)),
                serde_json::Value::Object(map) => map.values_mut().for_each(|v| walk(redactor, v)),
                _ => {}
            }
        }
        let mut json = serde_json::to_value(value).map_err(ScrubError)?;
        walk(self, &mut json);
        serde_json::from_value(json).map_err(ScrubError)
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
    fn short_values_are_not_learned() {
        let r = Redactor::new();
        r.learn_str("ab");
        assert_eq!(r.scrub("abc"), "abc");
    }

    #[test]
    fn scrub_all_reaches_every_string_of_a_value() {
        let r = Redactor::new();
        r.learn_str("sekrit-token-value");
        let value = serde_json::json!({
            "summary": "saw sekrit-token-value",
            "evidence": [{ "body": "x=sekrit-token-value" }, 7, null],
        });
        let scrubbed = r.scrub_all(&value).unwrap();
        assert!(
            !scrubbed.to_string().contains("sekrit-token-value"),
            "{scrubbed}"
        );
        assert_eq!(scrubbed["evidence"][1], 7);
    }
}
