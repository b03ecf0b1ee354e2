//! The static layer for text the binary prints: URL userinfo and
//! `Bearer`/`Basic` credentials, whoever's they are.

use super::REDACTED;

/// Shortest word after `Bearer `/`Basic ` masked by [`mask_credentials`]:
/// credentials are long, and prose ("a bearer credential") must survive.
const MIN_SCHEME_CREDENTIAL_LEN: usize = 16;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
