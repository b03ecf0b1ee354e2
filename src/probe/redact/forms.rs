//! Every form a target may echo a secret in (see the parent module's docs):
//! percent-encodings, base64 whole and embedded at each alignment, and
//! JSON escapes.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// Shortest encoded form of a secret we replace: an encoding (the inner
/// part of an embedded base64 above all) shorter than this would match
/// ordinary text.
const MIN_ENCODED_LEN: usize = 8;

/// Every form of `secret` a target may echo it in (see the module docs),
/// the secret itself first.
pub(super) fn encodings(secret: &str) -> Vec<String> {
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

pub(super) fn percent_decode(s: &str) -> Result<String, ()> {
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
    use crate::probe::redact::{REDACTED, Redactor};

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
}
