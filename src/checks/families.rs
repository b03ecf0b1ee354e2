//! Attack families as data: the variants a check sends, generated from what
//! the target trusts, instead of one exemplar per attack.

/// An Origin no auth Worker trusts.
pub const FOREIGN_ORIGIN: &str = "https://attacker.flareproof.invalid";

/// An `Origin` a cross-site request may carry, and what it tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignOrigin {
    pub what: String,
    /// `None`: the header is left out.
    pub origin: Option<String>,
}

/// Every untrusted `Origin` a lenient check might let through, generated
/// from the trusted one: another site, none, `null`, the trusted host as a
/// prefix or suffix of another host, a subdomain of it, the other scheme and
/// another port. A `trusted` value that is not an origin yields the fixed
/// variants only.
pub fn foreign_origins(trusted: &str) -> Vec<ForeignOrigin> {
    let variant = |what: &str, origin: Option<String>| ForeignOrigin {
        what: what.to_owned(),
        origin,
    };
    let mut out = vec![
        variant("a foreign Origin", Some(FOREIGN_ORIGIN.to_owned())),
        variant("no Origin", None),
        variant("Origin: null", Some("null".to_owned())),
    ];
    let Ok(url) = url::Url::parse(trusted) else {
        return out;
    };
    let (Some(host), scheme) = (url.host_str(), url.scheme()) else {
        return out;
    };
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let other_scheme = if scheme == "https" { "http" } else { "https" };
    let other_port = url
        .port_or_known_default()
        .map_or(8443, |p| if p == 8443 { 8444 } else { 8443 });
    for (what, origin) in [
        (
            "the trusted host as the prefix of another site",
            format!("{scheme}://{host}.attacker.flareproof.invalid{port}"),
        ),
        (
            "a look-alike ending in the trusted host",
            format!("{scheme}://attacker{host}{port}"),
        ),
        (
            "a subdomain of the trusted host",
            format!("{scheme}://attacker.{host}{port}"),
        ),
        (
            "the trusted host over the other scheme",
            format!("{other_scheme}://{host}{port}"),
        ),
        (
            "the trusted host on another port",
            format!("{scheme}://{host}:{other_port}"),
        ),
    ] {
        if origin != trusted {
            out.push(variant(what, Some(origin)));
        }
    }
    out
}

/// A request body a browser sends cross-site without a CORS preflight:
/// its content type and the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimpleBody {
    pub content_type: &'static str,
    pub body: &'static str,
}

/// The "simple request" content types (Fetch standard, CORS-safelisted)
/// with a body that still reads as the JSON a lenient parser accepts.
pub const SIMPLE_BODIES: [SimpleBody; 3] = [
    SimpleBody {
        content_type: "text/plain",
        body: "{\"title\":\"flareproof csrf probe\"}",
    },
    SimpleBody {
        content_type: "application/x-www-form-urlencoded",
        body: "title=flareproof+csrf+probe",
    },
    SimpleBody {
        content_type: "multipart/form-data; boundary=flareproof",
        body: "--flareproof\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nflareproof csrf probe\r\n--flareproof--\r\n",
    },
];

/// An `Authorization` a data-plane request may carry instead of the
/// service key, and what it tries.
#[derive(Clone, PartialEq, Eq)]
pub struct WrongKey {
    pub what: &'static str,
    /// `None`: no `Authorization` header.
    pub authorization: Option<String>,
    /// Derived from the key, so a secret like it.
    pub derived: bool,
}

/// Shows what a variant tries, never the key it was derived from.
impl std::fmt::Debug for WrongKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.what)
    }
}

/// Every credential short of the service key a lenient data plane might
/// take: none, an empty Bearer, a wrong key of the same length, the key cut
/// by one character and extended by one (a prefix comparison), the key with
/// its last character changed and its case flipped (a loose comparison),
/// and the strings a missing key turns into in JavaScript (`undefined`,
/// `null`). Variants derived from the key are secrets too: the caller
/// teaches them to the redactor.
pub fn wrong_keys(key: &str, random: u64) -> Vec<WrongKey> {
    let bearer = |what: &'static str, token: String| WrongKey {
        what,
        authorization: Some(format!("Bearer {token}")),
        derived: true,
    };
    let fixed = |what: &'static str, authorization: Option<&str>| WrongKey {
        what,
        authorization: authorization.map(str::to_owned),
        derived: false,
    };
    let mut out = vec![
        fixed("no Authorization", None),
        fixed("an empty Bearer", Some("Bearer")),
        fixed("Bearer undefined", Some("Bearer undefined")),
        fixed("Bearer null", Some("Bearer null")),
    ];
    let len = key.chars().count().max(1);
    let wrong: String = format!("{random:016x}").chars().cycle().take(len).collect();
    if wrong != key {
        out.push(WrongKey {
            derived: false,
            ..bearer("a wrong key of the same length", wrong)
        });
    }
    let mut chars: Vec<char> = key.chars().collect();
    if chars.len() > 1 {
        out.push(bearer(
            "the key without its last character",
            chars[..chars.len() - 1].iter().collect(),
        ));
    }
    out.push(bearer("the key with one character more", format!("{key}x")));
    if let Some(last) = chars.last_mut() {
        *last = if *last == 'x' { 'y' } else { 'x' };
        out.push(bearer(
            "the key with its last character changed",
            chars.iter().collect(),
        ));
    }
    let flipped: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    if flipped != key {
        out.push(bearer("the key with its case flipped", flipped));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_keys_are_never_the_key_and_never_show_it() {
        for key in ["sk-live-Abc123", "x", "ALLCAPS0", "ß∂ƒ-unicode-key"] {
            let all = wrong_keys(key, 0xfeed);
            assert!(all.len() >= 6, "{key}: {all:?}");
            for v in &all {
                assert_ne!(
                    v.authorization.as_deref(),
                    Some(format!("Bearer {key}").as_str())
                );
                assert!(!format!("{v:?}").contains(key), "{v:?}");
            }
            assert!(all.iter().any(|v| v.authorization.is_none()));
        }
        let all = wrong_keys("sk-live-Abc123", 1);
        let tokens: Vec<&str> = all
            .iter()
            .filter_map(|v| v.authorization.as_deref()?.strip_prefix("Bearer "))
            .collect();
        for want in [
            "sk-live-Abc12",
            "sk-live-Abc123x",
            "sk-live-Abc12x",
            "SK-LIVE-aBC123",
        ] {
            assert!(tokens.contains(&want), "{want}: {tokens:?}");
        }
    }

    #[test]
    fn origins_are_generated_from_the_trusted_one_and_never_equal_it() {
        let all = foreign_origins("https://app.acme.test");
        let origins: Vec<Option<&str>> = all.iter().map(|v| v.origin.as_deref()).collect();
        assert!(origins.contains(&None));
        assert!(origins.contains(&Some("null")));
        for want in [
            "https://app.acme.test.attacker.flareproof.invalid",
            "https://attackerapp.acme.test",
            "https://attacker.app.acme.test",
            "http://app.acme.test",
            "https://app.acme.test:8443",
        ] {
            assert!(origins.contains(&Some(want)), "{want} missing: {origins:?}");
        }
        assert!(!origins.contains(&Some("https://app.acme.test")));
        // A port is kept where the trusted origin has one.
        let local = foreign_origins("http://127.0.0.1:8787");
        assert!(
            local
                .iter()
                .any(|v| v.origin.as_deref() == Some("https://127.0.0.1:8787"))
        );
        assert!(
            local
                .iter()
                .all(|v| v.origin.as_deref() != Some("http://127.0.0.1:8787"))
        );
        // Not an origin: the fixed variants only.
        assert_eq!(foreign_origins("not a url").len(), 3);
    }
}
