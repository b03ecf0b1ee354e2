use super::*;
use proptest::prelude::*;

const NOW: i64 = 1_800_000_000;

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn sign_in() -> Url {
    url("https://app.test/api/auth/sign-in/email")
}

fn sign_out() -> Url {
    url("https://app.test/api/auth/sign-out")
}

#[test]
fn default_path_is_the_request_directory() {
    assert_eq!(default_path(&sign_out()), "/api/auth");
    assert_eq!(default_path(&sign_in()), "/api/auth/sign-in");
    assert_eq!(default_path(&url("https://app.test/")), "/");
    assert_eq!(default_path(&url("https://app.test/x")), "/");
    assert_eq!(default_path(&url("https://app.test")), "/");
}

#[test]
fn path_and_domain_match_as_the_rfc_says() {
    assert!(path_matches("/api/auth", "/api/auth"));
    assert!(path_matches("/api/auth/x", "/api/auth"));
    assert!(path_matches("/api/auth/x", "/api/"));
    assert!(path_matches("/anything", "/"));
    assert!(!path_matches("/api/authx", "/api/auth"));
    assert!(!path_matches("/", "/api/auth"));
    assert!(domain_matches("a.app.test", "app.test"));
    assert!(domain_matches("app.test", "app.test"));
    assert!(!domain_matches("evilapp.test", "app.test"));
    assert!(!domain_matches("app.test", "a.app.test"));
    assert!(!domain_matches("127.0.0.1", "0.0.1"));
    assert!(domain_matches("127.0.0.1", "127.0.0.1"));
}

#[test]
fn loopback_and_https_are_secure_origins() {
    assert!(is_secure_origin(&url("https://a.test/")));
    assert!(is_secure_origin(&url("http://127.0.0.1:8787/")));
    assert!(is_secure_origin(&url("http://localhost:1/")));
    assert!(is_secure_origin(&url("http://app.localhost/")));
    assert!(is_secure_origin(&url("http://[::1]:9/")));
    assert!(!is_secure_origin(&url("http://a.test/")));
    assert!(!is_secure_origin(&url("http://10.0.0.1/")));
}

/// The defect this model exists for: a deletion without Path, sent from
/// /api/auth/sign-out, is scoped to /api/auth and leaves the cookie at /.
#[test]
fn a_deletion_without_path_deletes_only_at_the_default_path() {
    let mut store = CookieStore::default();
    store.apply_header(&sign_in(), "s=tok; Path=/; Secure; HttpOnly", NOW);
    let applied = store.apply_header(&sign_out(), "s=; Max-Age=0", NOW);
    assert_eq!(applied.outcome, Outcome::Deleted { removed: false });
    assert_eq!(applied.cookie.unwrap().path, "/api/auth");
    assert_eq!(store.named("s", NOW)[0].path, "/");
    let applied = store.apply_header(&sign_out(), "s=; Max-Age=0; Path=/", NOW);
    assert_eq!(applied.outcome, Outcome::Deleted { removed: true });
    assert!(store.named("s", NOW).is_empty());
}

#[test]
fn headers_of_one_response_apply_in_order() {
    let mut store = CookieStore::default();
    let applied = store.apply_response(&sign_in(), ["s=1; Path=/; HttpOnly", "s=2; Path=/"], NOW);
    assert_eq!(applied[0].outcome, Outcome::Stored);
    assert_eq!(applied[1].outcome, Outcome::Replaced);
    let held = store.named("s", NOW);
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].value(), "2");
    assert!(!held[0].http_only);
    // A set then a deletion of the same key: nothing held.
    store.apply_response(&sign_in(), ["t=1; Path=/", "t=; Path=/; Max-Age=0"], NOW);
    assert!(store.named("t", NOW).is_empty());
}

#[test]
fn max_age_wins_over_expires_and_lifetimes_are_capped() {
    let mut store = CookieStore::default();
    let gone = "a=1; Path=/; Expires=Fri, 01 Jan 2100 00:00:00 GMT; Max-Age=0";
    assert_eq!(
        store.apply_header(&sign_in(), gone, NOW).outcome,
        Outcome::Deleted { removed: false }
    );
    let kept = "a=1; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60";
    store.apply_header(&sign_in(), kept, NOW);
    assert_eq!(store.named("a", NOW)[0].expiry, Some(NOW + 60));
    store.apply_header(&sign_in(), "a=1; Path=/; Max-Age=99999999999", NOW);
    assert_eq!(store.named("a", NOW)[0].expiry, Some(NOW + MAX_LIFETIME_S));
    store.apply_header(
        &sign_in(),
        "a=1; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        NOW,
    );
    assert!(store.named("a", NOW).is_empty());
    store.apply_header(&sign_in(), "a=1; Path=/", NOW);
    assert_eq!(store.named("a", NOW)[0].expiry, None);
    assert!(store.named("a", NOW + 10_000_000).len() == 1);
}

#[test]
fn prefix_rules_reject_the_cookie() {
    let mut store = CookieStore::default();
    let r = |s: &mut CookieStore, h: &str| s.apply_header(&sign_in(), h, NOW).outcome;
    assert_eq!(
        r(&mut store, "__Secure-s=1; Path=/"),
        Outcome::Rejected(Rejection::SecurePrefix)
    );
    assert_eq!(
        r(&mut store, "__secure-s=1; Path=/; Secure"),
        Outcome::Stored
    );
    assert_eq!(
        r(&mut store, "__Host-s=1; Secure"),
        Outcome::Rejected(Rejection::HostPrefix(vec!["Path=/"]))
    );
    assert_eq!(
        r(&mut store, "__Host-s=1; Secure; Path=/; Domain=app.test"),
        Outcome::Rejected(Rejection::HostPrefix(vec!["no Domain"]))
    );
    assert_eq!(r(&mut store, "__Host-s=1; Secure; Path=/"), Outcome::Stored);
    assert_eq!(
        r(&mut store, "n=1; SameSite=None"),
        Outcome::Rejected(Rejection::SameSiteNoneWithoutSecure)
    );
    assert_eq!(
        r(&mut store, "d=1; Domain=other.test"),
        Outcome::Rejected(Rejection::ForeignDomain("other.test".into()))
    );
    // A rejected deletion leaves the cookie.
    assert_eq!(
        r(&mut store, "__Host-s=; Path=/; Max-Age=0"),
        Outcome::Rejected(Rejection::HostPrefix(vec!["Secure"]))
    );
    assert_eq!(store.named("__Host-s", NOW).len(), 1);
    // The lenient store accepts what only the prefix rules refuse.
    let mut lenient = CookieStore::new(Policy::Lenient);
    assert_eq!(r(&mut lenient, "__Secure-s=1; Path=/"), Outcome::Stored);
}

#[test]
fn secure_cookies_need_a_secure_origin() {
    let mut store = CookieStore::default();
    let plain = url("http://a.test/api/auth/sign-in/email");
    assert_eq!(
        store
            .apply_header(&plain, "s=1; Secure; Path=/", NOW)
            .outcome,
        Outcome::Rejected(Rejection::SecureFromInsecureOrigin)
    );
    let loopback = url("http://127.0.0.1:8787/api/auth/sign-in/email");
    assert_eq!(
        store
            .apply_header(&loopback, "s=1; Secure; Path=/", NOW)
            .outcome,
        Outcome::Stored
    );
    // Sent back to loopback, not to another host.
    assert_eq!(
        store
            .header(&url("http://127.0.0.1:8787/api/posts"), NOW)
            .as_deref(),
        Some("s=1")
    );
    assert_eq!(store.header(&url("http://a.test/"), NOW), None);
    // Over https: a non-Secure cookie may not overlay a Secure one from http.
    let mut store = CookieStore::default();
    store.apply_header(&sign_in(), "s=1; Secure; Path=/", NOW);
    assert_eq!(
        store
            .apply_header(&url("http://app.test/x"), "s=2; Path=/", NOW)
            .outcome,
        Outcome::Rejected(Rejection::OverlaysSecure)
    );
}

#[test]
fn requests_carry_the_cookies_whose_path_and_domain_match() {
    let mut store = CookieStore::default();
    store.apply_response(
        &sign_in(),
        [
            "root=1; Path=/",
            "auth=2; Path=/api/auth",
            "dir=3",
            "wide=4; Domain=app.test; Path=/",
        ],
        NOW,
    );
    assert_eq!(
        store
            .header(&url("https://app.test/api/auth/sign-in/x"), NOW)
            .as_deref(),
        Some("dir=3; auth=2; root=1; wide=4")
    );
    assert_eq!(
        store
            .header(&url("https://app.test/api/posts"), NOW)
            .as_deref(),
        Some("root=1; wide=4")
    );
    assert_eq!(
        store.header(&url("https://sub.app.test/"), NOW).as_deref(),
        Some("wide=4")
    );
    // Host-only and domain cookies of one name are two cookies.
    store.apply_header(&sign_in(), "root=5; Path=/; Domain=app.test", NOW);
    assert_eq!(store.named("root", NOW).len(), 2);
    assert!(!format!("{store:?}").contains("=1"));
}

/// One generated `Set-Cookie`: what the reference model reads.
#[derive(Debug, Clone)]
struct Gen {
    name: &'static str,
    value: u8,
    path: Option<&'static str>,
    domain: bool,
    /// `Some(true)`: Max-Age=0; `Some(false)`: Max-Age=60.
    max_age: Option<bool>,
    /// `Some(true)`: an Expires in 1994; `Some(false)`: one in 2100.
    expires: Option<bool>,
    secure: bool,
    from: &'static str,
}

impl Gen {
    fn header(&self) -> String {
        let mut h = format!("{}=v{}", self.name, self.value);
        if let Some(p) = self.path {
            h.push_str(&format!("; Path={p}"));
        }
        if self.domain {
            h.push_str("; Domain=app.test");
        }
        match self.expires {
            Some(true) => h.push_str("; Expires=Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(false) => h.push_str("; expires=Fri Jan 01 2100 00:00:00 GMT+0000"),
            None => {}
        }
        match self.max_age {
            Some(true) => h.push_str("; Max-Age=0"),
            Some(false) => h.push_str("; Max-Age=60"),
            None => {}
        }
        if self.secure {
            h.push_str("; Secure");
        }
        h
    }
}

fn generated() -> impl Strategy<Value = Gen> {
    (
        prop_oneof![Just("s"), Just("t"), Just("__Secure-s"), Just("__Host-s")],
        0u8..4,
        prop_oneof![
            Just(None),
            Just(Some("/")),
            Just(Some("/api")),
            Just(Some("/api/auth")),
            Just(Some("")),
            Just(Some("x")),
        ],
        any::<bool>(),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        any::<bool>(),
        prop_oneof![
            Just("https://app.test/api/auth/sign-in/email"),
            Just("https://app.test/api/auth/sign-out"),
            Just("https://app.test/api/posts"),
            Just("https://app.test/"),
        ],
    )
        .prop_map(
            |(name, value, path, domain, max_age, expires, secure, from)| Gen {
                name,
                value,
                path,
                domain,
                max_age,
                expires,
                secure,
                from,
            },
        )
}

/// The reference: the same rules, written out directly over what was
/// generated. Key → value, domain flag.
type Key = (&'static str, bool, String);

fn reference(sets: &[Gen]) -> std::collections::BTreeMap<Key, String> {
    let mut kept = std::collections::BTreeMap::new();
    for g in sets {
        let dir = match g.from.rsplit_once('/') {
            Some(("https://app.test", _)) | None => "/".to_owned(),
            Some((head, _)) => head.trim_start_matches("https://app.test").to_owned(),
        };
        let path = match g.path {
            Some(p) if p.starts_with('/') => p.to_owned(),
            _ => dir,
        };
        let lower = g.name.to_ascii_lowercase();
        let refused = (lower.starts_with("__secure-") && !g.secure)
            || (lower.starts_with("__host-")
                && (!g.secure || g.path.is_none() || path != "/" || g.domain));
        if refused {
            continue;
        }
        let gone = match (g.max_age, g.expires) {
            (Some(zero), _) => zero,
            (None, Some(past)) => past,
            (None, None) => false,
        };
        let key = (g.name, g.domain, path);
        if gone {
            kept.remove(&key);
        } else {
            kept.insert(key, format!("v{}", g.value));
        }
    }
    kept
}

proptest! {
    #[test]
    fn the_store_keeps_what_the_reference_keeps(sets in proptest::collection::vec(generated(), 0..12)) {
        let mut store = CookieStore::default();
        for g in &sets {
            store.apply_header(&url(g.from), &g.header(), NOW);
        }
        let held: std::collections::BTreeMap<Key, String> = store
            .cookies(NOW)
            .into_iter()
            .map(|c| {
                let name = ["s", "t", "__Secure-s", "__Host-s"]
                    .into_iter()
                    .find(|n| *n == c.name)
                    .unwrap();
                ((name, !c.host_only, c.path.clone()), c.value().to_owned())
            })
            .collect();
        prop_assert_eq!(held, reference(&sets));
        // What a request carries is a subset of what is held, matched by path.
        for to in ["https://app.test/", "https://app.test/api/auth/get-session"] {
            let to = url(to);
            for c in store.for_request(&to, NOW) {
                prop_assert!(path_matches(to.path(), &c.path));
            }
        }
    }

    #[test]
    fn any_header_from_any_url_never_panics(
        header in "\\PC{0,80}",
        path in "/[ -~]{0,20}",
        https: bool,
    ) {
        let scheme = if https { "https" } else { "http" };
        if let Ok(u) = Url::parse(&format!("{scheme}://app.test{path}")) {
            let mut store = CookieStore::default();
            store.apply_header(&u, &header, NOW);
            store.apply_header(&u, &header, i64::MAX);
            store.apply_header(&u, &header, i64::MIN);
            let _ = store.header(&u, NOW);
        }
    }
}
