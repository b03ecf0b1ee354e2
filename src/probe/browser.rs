//! A user agent's cookie store, as RFC 6265bis §5.6–§5.8 describes it: what a
//! browser keeps of each `Set-Cookie` (and what it ignores), and which
//! cookies it sends with a request.
//!
//! Cookies are keyed by (name, domain, host-only flag, path); a `Set-Cookie`
//! replaces only the stored cookie with the same key, and a deletion
//! (`Max-Age` ≤ 0, or an expiry in the past) removes only that one. Headers of
//! one response are applied in order. A cookie without `Path` gets the
//! default-path of the request URL (§5.1.4), so a deletion without `Path`
//! sent from `/api/auth/sign-out` deletes nothing at `/`.
//!
//! Where browsers agree and the RFC leaves room, the store follows them:
//! `http://localhost`, `*.localhost` and loopback addresses are secure
//! contexts (Chrome, Firefox and Safari accept `Secure` cookies from them), so
//! the `http://127.0.0.1` stand-ins and the reference Worker can set `Secure`
//! and prefixed cookies. `Max-Age` and `Expires` are capped at 400 days
//! (§5.6.1–2). Not modelled, because no check here needs them: the public
//! suffix list (a `Domain` that is a public suffix is not refused),
//! `SameSite` enforcement on cross-site requests (every request here is
//! same-site), `Partitioned`, per-domain eviction limits and non-HTTP APIs.

use std::net::IpAddr;

use cookie::SameSite;
use url::{Host, Url};

use super::cookie::SetCookie;

/// §5.6: a name and value together longer than this are ignored.
const MAX_NAME_VALUE: usize = 4096;
/// §5.6.1–2: no cookie outlives 400 days.
const MAX_LIFETIME_S: i64 = 400 * 24 * 3600;

/// A cookie the browser holds. The value is a credential: `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCookie {
    pub name: String,
    value: String,
    /// The host (host-only) or the `Domain` attribute's domain.
    pub domain: String,
    pub host_only: bool,
    pub path: String,
    /// Whether the header had a `Path` attribute (the `__Host-` rule asks
    /// for one).
    pub path_attribute: bool,
    pub secure: bool,
    pub http_only: bool,
    pub same_site: Option<SameSite>,
    /// Unix time it expires; `None` ends with the browser session.
    pub expiry: Option<i64>,
    /// Unix time it was received.
    pub received_at: i64,
    /// The header it came from, as parsed.
    pub set: SetCookie,
    /// Creation order (kept when a cookie is replaced, §5.7).
    created: u64,
}

impl std::fmt::Debug for StoredCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCookie")
            .field("name", &self.name)
            .field("value", &"[redacted]")
            .field("domain", &self.domain)
            .field("host_only", &self.host_only)
            .field("path", &self.path)
            .field("secure", &self.secure)
            .field("http_only", &self.http_only)
            .field("same_site", &self.same_site)
            .field("expiry", &self.expiry)
            .finish()
    }
}

impl StoredCookie {
    /// The cookie's value: a credential, handle with care.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Expired at `now` (a deletion's cookie always is).
    pub fn expired(&self, now: i64) -> bool {
        self.expiry.is_some_and(|e| e <= now)
    }

    /// The same cookie to the store: name, domain, host-only flag and path.
    pub fn same_key(&self, other: &StoredCookie) -> bool {
        self.name == other.name
            && self.domain == other.domain
            && self.host_only == other.host_only
            && self.path == other.path
    }
}

/// Why a browser ignored a `Set-Cookie` entirely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The header did not parse (or has no name).
    Unparseable(String),
    /// Name and value together exceed 4096 bytes.
    TooLarge,
    /// `Domain` does not domain-match the request host.
    ForeignDomain(String),
    /// `Secure` from an origin that is not secure.
    SecureFromInsecureOrigin,
    /// A non-`Secure` cookie from an insecure origin over a `Secure` one.
    OverlaysSecure,
    /// `SameSite=None` without `Secure`.
    SameSiteNoneWithoutSecure,
    /// `__Secure-` without `Secure`.
    SecurePrefix,
    /// `__Host-` without the listed requirements.
    HostPrefix(Vec<&'static str>),
}

impl Rejection {
    /// A name-prefix rule (what `cookie.prefix` judges).
    pub fn is_prefix(&self) -> bool {
        matches!(self, Rejection::SecurePrefix | Rejection::HostPrefix(_))
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Unparseable(why) => write!(f, "it does not parse ({why})"),
            Rejection::TooLarge => write!(f, "its name and value exceed 4096 bytes"),
            Rejection::ForeignDomain(d) => {
                write!(f, "its Domain={d} does not domain-match the request host")
            }
            Rejection::SecureFromInsecureOrigin => {
                write!(f, "it is Secure but came from an origin that is not secure")
            }
            Rejection::OverlaysSecure => write!(
                f,
                "it is not Secure, came from an insecure origin, and would overlay a Secure cookie"
            ),
            Rejection::SameSiteNoneWithoutSecure => {
                write!(f, "it has SameSite=None without Secure")
            }
            Rejection::SecurePrefix => write!(f, "it has the __Secure- prefix without Secure"),
            Rejection::HostPrefix(missing) => {
                write!(
                    f,
                    "it has the __Host- prefix without {}",
                    missing.join(", ")
                )
            }
        }
    }
}

/// What one `Set-Cookie` did to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new cookie.
    Stored,
    /// Replaced the stored cookie with the same key.
    Replaced,
    /// An expired cookie: removed the stored one with the same key, if any.
    Deleted { removed: bool },
    /// Ignored entirely.
    Rejected(Rejection),
}

/// One `Set-Cookie` as the browser took it: the cookie it describes (for a
/// rejected or deleting header, the cookie it would have been) and what
/// became of it. `cookie` is `None` only for a header that did not parse.
#[derive(Debug, Clone)]
pub struct Applied {
    pub cookie: Option<StoredCookie>,
    pub outcome: Outcome,
}

impl Applied {
    pub fn name(&self) -> Option<&str> {
        self.cookie.as_ref().map(|c| c.name.as_str())
    }
}

/// How strictly the store follows the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// As a browser: every rejection of §5.6.
    Browser,
    /// As a browser, except that the rules another check judges (name
    /// prefixes, `Secure` only from secure origins, `SameSite=None` needs
    /// `Secure`) are not enforced: what a session would do had the browser
    /// accepted the cookie.
    Lenient,
}

/// A browser's cookies for one profile.
#[derive(Debug, Clone)]
pub struct CookieStore {
    policy: Policy,
    cookies: Vec<StoredCookie>,
    next: u64,
}

impl Default for CookieStore {
    fn default() -> Self {
        CookieStore::new(Policy::Browser)
    }
}

impl CookieStore {
    pub fn new(policy: Policy) -> Self {
        CookieStore {
            policy,
            cookies: Vec::new(),
            next: 0,
        }
    }

    /// Applies a response's `Set-Cookie` headers, in order, for a request to
    /// `url` at Unix time `now`.
    pub fn apply_response<'a>(
        &mut self,
        url: &Url,
        headers: impl IntoIterator<Item = &'a str>,
        now: i64,
    ) -> Vec<Applied> {
        headers
            .into_iter()
            .map(|h| self.apply_header(url, h, now))
            .collect()
    }

    /// Applies one `Set-Cookie` header.
    pub fn apply_header(&mut self, url: &Url, header: &str, now: i64) -> Applied {
        match SetCookie::parse(header) {
            Ok(set) => self.apply(url, &set, now),
            Err(e) => Applied {
                cookie: None,
                outcome: Outcome::Rejected(Rejection::Unparseable(e.reason)),
            },
        }
    }

    /// Applies one parsed `Set-Cookie` (§5.6 storage steps).
    pub fn apply(&mut self, url: &Url, set: &SetCookie, now: i64) -> Applied {
        let (cookie, rejection) = self.candidate(url, set, now);
        let outcome = match rejection {
            Some(r) => Outcome::Rejected(r),
            None => {
                let old = self.cookies.iter().position(|c| c.same_key(&cookie));
                let mut cookie = cookie.clone();
                let created = match old {
                    Some(i) => self.cookies.remove(i).created,
                    None => {
                        self.next += 1;
                        self.next
                    }
                };
                cookie.created = created;
                if cookie.expired(now) {
                    Outcome::Deleted {
                        removed: old.is_some(),
                    }
                } else {
                    self.cookies.push(cookie);
                    match old {
                        Some(_) => Outcome::Replaced,
                        None => Outcome::Stored,
                    }
                }
            }
        };
        Applied {
            cookie: Some(cookie),
            outcome,
        }
    }

    /// The cookie `set` describes for a request to `url`, and why a browser
    /// would ignore it, if it would.
    fn candidate(&self, url: &Url, set: &SetCookie, now: i64) -> (StoredCookie, Option<Rejection>) {
        let strict = self.policy == Policy::Browser;
        let expiry = match (set.max_age, set.expires_unix) {
            (Some(m), _) if m <= 0 => Some(i64::MIN),
            (Some(m), _) => Some(now.saturating_add(m.min(MAX_LIFETIME_S))),
            (None, Some(e)) => Some(e.min(now.saturating_add(MAX_LIFETIME_S))),
            (None, None) => None,
        };
        let host = request_host(url);
        let mut rejection = None;
        let (domain, host_only) = match &set.domain {
            Some(d) => {
                if !domain_matches(&host, d) {
                    rejection = Some(Rejection::ForeignDomain(d.clone()));
                }
                (d.clone(), false)
            }
            None => (host.clone(), true),
        };
        let path = match &set.path {
            Some(p) if p.starts_with('/') => p.clone(),
            _ => default_path(url),
        };
        let cookie = StoredCookie {
            name: set.name.clone(),
            value: set.value().to_owned(),
            domain,
            host_only,
            path,
            path_attribute: set.path.is_some(),
            secure: set.secure,
            http_only: set.http_only,
            same_site: set.same_site,
            expiry,
            received_at: now,
            set: set.clone(),
            created: 0,
        };
        let secure_origin = is_secure_origin(url);
        let lower = cookie.name.to_ascii_lowercase();
        let rejection = rejection
            .or_else(|| {
                (cookie.name.len() + cookie.value.len() > MAX_NAME_VALUE)
                    .then_some(Rejection::TooLarge)
            })
            .or_else(|| {
                (strict && cookie.secure && !secure_origin)
                    .then_some(Rejection::SecureFromInsecureOrigin)
            })
            .or_else(|| {
                let overlays = !cookie.secure
                    && !secure_origin
                    && self.cookies.iter().any(|c| {
                        c.name == cookie.name
                            && c.secure
                            && !c.expired(now)
                            && (domain_matches(&c.domain, &cookie.domain)
                                || domain_matches(&cookie.domain, &c.domain))
                            && path_matches(&cookie.path, &c.path)
                    });
                (strict && overlays).then_some(Rejection::OverlaysSecure)
            })
            .or_else(|| {
                (strict && cookie.same_site == Some(SameSite::None) && !cookie.secure)
                    .then_some(Rejection::SameSiteNoneWithoutSecure)
            })
            .or_else(|| {
                (strict && lower.starts_with("__secure-") && !cookie.secure)
                    .then_some(Rejection::SecurePrefix)
            })
            .or_else(|| {
                if !strict || !lower.starts_with("__host-") {
                    return None;
                }
                let missing = host_prefix_missing(&cookie);
                (!missing.is_empty()).then_some(Rejection::HostPrefix(missing))
            });
        (cookie, rejection)
    }

    /// Every cookie held and not expired at `now`, in creation order.
    pub fn cookies(&self, now: i64) -> Vec<&StoredCookie> {
        let mut held: Vec<&StoredCookie> =
            self.cookies.iter().filter(|c| !c.expired(now)).collect();
        held.sort_by_key(|c| c.created);
        held
    }

    /// The held cookies named `name`.
    pub fn named(&self, name: &str, now: i64) -> Vec<&StoredCookie> {
        self.cookies(now)
            .into_iter()
            .filter(|c| c.name == name)
            .collect()
    }

    /// The cookies a request to `url` carries (§5.8.3), longest path first,
    /// then oldest first.
    pub fn for_request(&self, url: &Url, now: i64) -> Vec<&StoredCookie> {
        let host = request_host(url);
        let secure = is_secure_origin(url);
        let path = url.path();
        let mut sent: Vec<&StoredCookie> = self
            .cookies(now)
            .into_iter()
            .filter(|c| {
                let domain_ok = if c.host_only {
                    host == c.domain
                } else {
                    domain_matches(&host, &c.domain)
                };
                domain_ok && path_matches(path, &c.path) && (!c.secure || secure)
            })
            .collect();
        sent.sort_by(|a, b| {
            b.path
                .len()
                .cmp(&a.path.len())
                .then(a.created.cmp(&b.created))
        });
        sent
    }

    /// The `Cookie` header of a request to `url`, if it carries any.
    pub fn header(&self, url: &Url, now: i64) -> Option<String> {
        let sent = self.for_request(url, now);
        (!sent.is_empty()).then(|| {
            sent.iter()
                .map(|c| format!("{}={}", c.name, c.value))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// What the `__Host-` prefix asks of a cookie that it lacks.
pub fn host_prefix_missing(c: &StoredCookie) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if !c.secure {
        missing.push("Secure");
    }
    if !c.path_attribute || c.path != "/" {
        missing.push("Path=/");
    }
    if !c.host_only {
        missing.push("no Domain");
    }
    missing
}

/// The canonical host of a request URL, lower-case (IPv6 in brackets).
fn request_host(url: &Url) -> String {
    url.host_str().unwrap_or_default().to_ascii_lowercase()
}

/// §5.1.4 default-path: the request path up to, not including, its last
/// `/`; `/` when that leaves nothing.
pub fn default_path(url: &Url) -> String {
    let path = url.path();
    if !path.starts_with('/') {
        return "/".to_owned();
    }
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => path[..i].to_owned(),
    }
}

/// §5.1.4 path-match: a request path is in a cookie's path.
pub fn path_matches(request_path: &str, cookie_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/') || request_path[cookie_path.len()..].starts_with('/')))
}

/// §5.1.3 domain-match: `host` is `domain` or a subdomain of it (never for
/// an IP address).
pub fn domain_matches(host: &str, domain: &str) -> bool {
    if host == domain {
        return true;
    }
    let is_ip = host.starts_with('[') || host.parse::<IpAddr>().is_ok();
    !is_ip
        && !domain.is_empty()
        && host
            .strip_suffix(domain)
            .is_some_and(|head| head.ends_with('.'))
}

/// A secure context for cookies: `https`/`wss`, or a loopback host (browsers
/// treat `http://localhost` and `http://127.0.0.1` as potentially
/// trustworthy and accept `Secure` cookies from them).
pub fn is_secure_origin(url: &Url) -> bool {
    match url.scheme() {
        "https" | "wss" => true,
        "http" | "ws" => match url.host() {
            Some(Host::Domain(d)) => {
                let d = d.to_ascii_lowercase();
                d == "localhost" || d.ends_with(".localhost")
            }
            Some(Host::Ipv4(a)) => a.is_loopback(),
            Some(Host::Ipv6(a)) => a.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
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
        let applied =
            store.apply_response(&sign_in(), ["s=1; Path=/; HttpOnly", "s=2; Path=/"], NOW);
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
}
