use super::*;
use proptest::prelude::*;

const NOW: i64 = 1_800_000_000;

fn url(s: &str) -> url::Url {
    url::Url::parse(s).unwrap()
}

/// The cookie a browser takes from `h` at sign-in (stored or refused).
fn c(h: &str) -> StoredCookie {
    let mut store = CookieStore::new(Policy::Browser);
    let applied = store.apply_header(&url("https://a.test/api/auth/sign-in/email"), h, NOW);
    applied.cookie.unwrap()
}

#[test]
fn prefix_rules_follow_rfc6265bis() {
    assert_eq!(prefix_problem(&c("__Host-a=1; Secure; Path=/")), None);
    assert!(
        prefix_problem(&c("__Host-a=1; Secure; Path=/x"))
            .unwrap()
            .contains("Path=/")
    );
    // Without Path, the default-path of the sign-in URL is not `/`.
    assert!(
        prefix_problem(&c("__Host-a=1; Secure"))
            .unwrap()
            .contains("Path=/")
    );
    assert!(
        prefix_problem(&c("__Host-a=1; Secure; Path=/; Domain=a.test"))
            .unwrap()
            .contains("Domain")
    );
    assert!(
        prefix_problem(&c("__Secure-a=1; Path=/"))
            .unwrap()
            .contains("Secure")
    );
    assert_eq!(prefix_problem(&c("__secure-a=1; Secure")), None);
    assert!(
        prefix_problem(&c("a=1; Secure"))
            .unwrap()
            .contains("neither")
    );
}

#[test]
fn max_age_is_held_to_the_bound() {
    let p = |h: &str| {
        let c = c(h);
        max_age_problem(&c.set, 604_800, NOW)
    };
    assert_eq!(p("a=1; Max-Age=604800"), None);
    assert!(p("a=1; Max-Age=604801").is_some());
    assert_eq!(p("a=1"), None);
    assert!(p("a=1; Expires=Fri, 01 Jan 2100 00:00:00 GMT").is_some());
    // Max-Age wins over a far Expires.
    assert_eq!(
        p("a=1; Expires=Fri, 01 Jan 2100 00:00:00 GMT; Max-Age=60"),
        None
    );
    // A date form the cookie crate drops, which a browser keeps for 400
    // days: judged (it passed when only the crate's parse was read).
    assert!(p("a=1; Expires=Fri Jan 01 2100 00:00:00 GMT+0000 (UTC)").is_some());
}

#[test]
fn samesite_none_and_missing_fail() {
    assert_eq!(samesite_problem(c("a=1; SameSite=Strict").same_site), None);
    assert!(samesite_problem(c("a=1; Secure; SameSite=None").same_site).is_some());
    assert!(samesite_problem(c("a=1").same_site).is_some());
    assert!(samesite_problem(c("a=1; SameSite=Lax; SameSite=x").same_site).is_some());
}

/// A generated sign-out `Set-Cookie` for the session cookie `s`.
fn sign_out_header() -> impl Strategy<Value = (String, Option<&'static str>, bool, bool)> {
    (
        prop_oneof![
            Just(None),
            Just(Some("/")),
            Just(Some("/api")),
            Just(Some("/api/auth")),
            Just(Some("")),
        ],
        // Max-Age=0 / past Expires / a live value again
        0u8..3,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(path, kind, secure, domain)| {
            let mut h = match kind {
                0 => "__Secure-s=; Max-Age=0".to_owned(),
                1 => "__Secure-s=; Expires=Thu, 01-Jan-70 00:00:01 GMT".to_owned(),
                _ => "__Secure-s=again; Max-Age=60".to_owned(),
            };
            if let Some(p) = path {
                h.push_str(&format!("; Path={p}"));
            }
            if secure {
                h.push_str("; Secure");
            }
            if domain {
                h.push_str("; Domain=a.test");
            }
            (h, path, secure, domain)
        })
}

proptest::proptest! {
    /// For generated sign-outs, cookie.cleared-on-sign-out passes exactly
    /// when a plain reading of the rules says the browser kept nothing:
    /// the cookie set at sign-in on `/`, host-only, survives unless some
    /// header deletes that very cookie (Path `/` given, no Domain, Secure
    /// kept for the prefix) and no later one sets it again.
    #[test]
    fn cleared_on_sign_out_agrees_with_the_rules(
        outs in proptest::collection::vec(sign_out_header(), 0..5),
    ) {
        let sign_in = url("https://a.test/api/auth/sign-in/email");
        let sign_out = url("https://a.test/api/auth/sign-out");
        let mut store = CookieStore::new(Policy::Browser);
        store.apply_header(&sign_in, "__Secure-s=tok; Secure; HttpOnly; Path=/", NOW);
        let before: Vec<StoredCookie> = store.cookies(NOW).into_iter().cloned().collect();
        let headers: Vec<&str> = outs.iter().map(|(h, ..)| h.as_str()).collect();
        let applied = store.apply_response(&sign_out, headers.iter().copied(), NOW);
        let after: Vec<StoredCookie> = store.cookies(NOW).into_iter().cloned().collect();
        let finding = clearing(&before, &after, &applied, &sign_out, &|n| n == "__Secure-s");
        // The reference: which host-only cookies on `/` and elsewhere
        // does the browser hold at the end?
        let mut held: std::collections::BTreeSet<(String, bool)> =
            [("/".to_owned(), false)].into_iter().collect();
        for (h, path, secure, domain) in &outs {
            if !secure {
                continue; // the __Secure- prefix: refused
            }
            let path = match path {
                Some(p) if p.starts_with('/') => p.to_string(),
                _ => "/api/auth".to_owned(),
            };
            let key = (path, *domain);
            if h.contains("again") {
                held.insert(key);
            } else {
                held.remove(&key);
            }
        }
        let expected = if held.is_empty() { crate::model::Status::Pass } else { crate::model::Status::Fail };
        proptest::prop_assert_eq!(finding.status, expected, "{}", finding.summary);
    }
}

#[test]
fn a_surviving_cookie_is_explained() {
    let sign_in = url("https://a.test/api/auth/sign-in/email");
    let sign_out = url("https://a.test/api/auth/sign-out");
    let why = |deletions: &[&str]| {
        let mut store = CookieStore::new(Policy::Browser);
        store.apply_header(&sign_in, "__Secure-s=1; Secure; Path=/", NOW);
        let applied = store.apply_response(&sign_out, deletions.iter().copied(), NOW);
        let kept = store.named("__Secure-s", NOW)[0].clone();
        why_kept(&kept, &applied, &default_path(&sign_out))
    };
    assert!(why(&[]).contains("no Set-Cookie"));
    let w = why(&["__Secure-s=; Max-Age=0; Secure"]);
    assert!(
        w.contains("Path=/api/auth") && w.contains("default-path"),
        "{w}"
    );
    let w = why(&["__Secure-s=; Max-Age=0; Path=/"]);
    assert!(w.contains("__Secure- prefix without Secure"), "{w}");
    let w = why(&["__Secure-s=; Max-Age=0; Secure; Path=/; Domain=a.test"]);
    assert!(w.contains("Domain=a.test"), "{w}");
    let w = why(&["__Secure-s=2; Secure; Path=/"]);
    assert!(w.contains("set it again"), "{w}");
}
