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

#[cfg(test)]
mod tests {
    use super::*;

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
