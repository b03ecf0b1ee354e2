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
mod tests;
