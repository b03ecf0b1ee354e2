//! The cookie suite: the session cookie's attributes (RFC 6265bis), its
//! rotation on sign-in, its deletion on sign-out, and the Origin check on
//! cookie-carrying state-changing requests.
//!
//! The attribute checks and `cookie.cleared-on-sign-out` judge what a
//! browser would hold ([`CookieStore`]), not the headers one by one: one
//! session as free is fed to the store response by response (sign-in, a
//! get-session refresh, an app-route GET, sign-out), each at its own URL, and
//! every authenticating cookie is judged as the browser holds it after each
//! response that (re)set it.

use std::sync::Arc;

use cookie::SameSite;
use futures_util::future::join_all;
use serde_json::json;

use super::check::{Check, Needs, Observation, shared};
use super::identity::{Seen, accepted_at};
use super::{Ctx, Finding, Unobservable, sign_in};
use crate::check;
use crate::model::{Evidence, Exchange};
use crate::probe::{
    Applied, CookieStore, Jar, Observed, Outcome, Policy, Rejection, Req, SetCookie, StoredCookie,
    default_path, host_prefix_missing,
};

use super::families::FOREIGN_ORIGIN;

mod csrf;
mod rotation;
#[cfg(test)]
mod tests;

use csrf::csrf_origin;
use rotation::rotated_on_sign_in;

/// A rule over one cookie the browser took: `Some(problem)` when it breaks
/// the rule.
type AttributeRule<'a> = dyn Fn(&Judged<'_>) -> Option<String> + Send + Sync + 'a;

/// Clock skew allowed when an `Expires` date stands in for `Max-Age`.
const EXPIRES_SKEW_S: i64 = 300;

/// The buckets a cookie check spends a few requests of: free's (its app
/// route POSTs), free2's, and the anonymous one whenever a session it
/// carries is no longer valid (a target that lets a cross-site POST sign it
/// out, one that drops sessions).
const SPENDS: Needs = Needs {
    buckets: &[shared("anonymous"), shared("free"), shared("free2")],
    ..Needs::NOTHING
};

pub const CHECKS: &[Check] = &[
    check!("cookie.httponly", SPENDS, httponly),
    check!("cookie.secure", SPENDS, secure),
    check!("cookie.samesite", SPENDS, samesite),
    check!("cookie.prefix", SPENDS, prefix),
    check!("cookie.domain", SPENDS, domain),
    check!("cookie.max-age", SPENDS, max_age),
    check!("cookie.cleared-on-sign-out", SPENDS, cleared_on_sign_out),
    check!("cookie.rotated-on-sign-in", SPENDS, rotated_on_sign_in),
    check!("cookie.csrf-origin", SPENDS, csrf_origin),
];

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// One response of the cookie session, as the browser took it.
struct Step {
    /// What the request was, for the findings: `sign-in`, `sign-out`, …
    what: String,
    url: url::Url,
    status: u16,
    /// Each `Set-Cookie`, in order, as the browser took it.
    applied: Vec<Applied>,
    /// The same, as the lenient store took it.
    lenient_applied: Vec<Applied>,
    /// What the browser holds after it.
    held: Vec<StoredCookie>,
    lenient_held: Vec<StoredCookie>,
    exchange: Exchange,
}

/// The run's cookie session as free: a browser (RFC 6265bis store) fed every
/// response it sees (sign-in, a get-session refresh, an app-route GET, then
/// sign-out), whose cookies the attribute checks and
/// `cookie.cleared-on-sign-out` judge.
struct Browsed {
    /// The cookies that authenticate, which the session rules judge: the
    /// session cookie first, and every other cookie the target accepted
    /// alone in its place (measured with get-session, not guessed from its
    /// name).
    judged: Vec<String>,
    /// Cookies held beside them that did not authenticate alone: reported,
    /// not judged (a preference, an analytics id).
    others: Vec<String>,
    /// The get-session probe of every other cookie.
    probes: Vec<Exchange>,
    /// Sign-in, the refresh, the app route, sign-out.
    steps: Vec<Step>,
}

impl Browsed {
    fn session_name(&self) -> &str {
        &self.judged[0]
    }

    fn authenticates(&self, name: &str) -> bool {
        self.judged.iter().any(|n| n == name)
    }
}

/// Applies a response to both stores.
fn feed(
    browser: &mut CookieStore,
    lenient: &mut CookieStore,
    what: String,
    url: &url::Url,
    observed: &Observed,
) -> Step {
    let t = now();
    let headers: Vec<&str> = observed.header_values("set-cookie").collect();
    let applied = browser.apply_response(url, headers.iter().copied(), t);
    let lenient_applied = lenient.apply_response(url, headers.iter().copied(), t);
    Step {
        what,
        url: url.clone(),
        status: observed.status,
        applied,
        lenient_applied,
        held: browser.cookies(t).into_iter().cloned().collect(),
        lenient_held: lenient.cookies(t).into_iter().cloned().collect(),
        exchange: observed.exchange.clone(),
    }
}

/// Sends `req` with the cookies the browser sends to its URL; when the
/// browser refused the session cookie (a prefix or `Secure` rule, judged by
/// those checks), with the lenient store's, so the session still goes on.
async fn send_as_browser(
    ctx: &Ctx,
    req: Req,
    browser: &CookieStore,
    lenient: &CookieStore,
    session: &str,
) -> Result<Observed, Unobservable> {
    let t = now();
    let holds = browser
        .for_request(&req.url, t)
        .iter()
        .any(|c| c.name == session);
    let header = match holds {
        true => browser.header(&req.url, t),
        false => lenient.header(&req.url, t),
    };
    let req = match header {
        Some(h) => req.header("cookie", h),
        None => req,
    };
    Ok(ctx.probe.send(req).await?)
}

async fn browsed(ctx: &Ctx) -> Result<Arc<Browsed>, Unobservable> {
    ctx.once("cookie.browser", || async {
        let mut browser = CookieStore::new(Policy::Browser);
        let mut lenient = CookieStore::new(Policy::Lenient);
        let (identity, observed) = sign_in(ctx, "free", Jar::new()).await?;
        let session = identity.cookie_name.clone();
        let sign_in_url = ctx.url(&ctx.target.paths.sign_in);
        let mut steps = vec![feed(
            &mut browser,
            &mut lenient,
            "sign-in".to_owned(),
            &sign_in_url,
            &observed,
        )];
        // Each other cookie held, alone, as a browser (or a thief) holding
        // only it would send it: accepted means it authenticates too.
        let mut others: Vec<(String, String)> = Vec::new();
        for c in lenient.cookies(now()) {
            if c.name != session && !others.iter().any(|(n, _)| *n == c.name) {
                others.push((c.name.clone(), c.value().to_owned()));
            }
        }
        let probes = join_all(others.iter().map(|(name, value)| async move {
            let mut jar = Jar::new();
            jar.insert(name, value);
            let label = format!("get-session with only cookie `{name}`");
            accepted_at(ctx, &jar, &ctx.target.base_url, &label).await
        }))
        .await;
        let mut browsed = Browsed {
            judged: vec![session.clone()],
            others: Vec::new(),
            probes: Vec::new(),
            steps: Vec::new(),
        };
        for ((name, _), probe) in others.into_iter().zip(probes) {
            let (seen, exchange) = probe?;
            match seen {
                Seen::Accepted => browsed.judged.push(name),
                Seen::Refused => browsed.others.push(name),
            }
            browsed.probes.push(exchange);
        }
        // The session goes on as in a browser: a refresh, an app route,
        // sign-out, each answer applied at its own URL.
        let get_session = ctx.url(&ctx.target.paths.get_session);
        let posts = ctx.url(&ctx.target.paths.posts);
        let sign_out = ctx.url(&ctx.target.paths.sign_out);
        let requests = [
            (
                "the get-session refresh".to_owned(),
                Req::get(
                    get_session,
                    "get-session with the browser's cookies (a refresh)",
                ),
            ),
            (
                format!("GET {}", ctx.target.paths.posts),
                Req::get(posts, "an app route with the browser's cookies"),
            ),
            (
                "sign-out".to_owned(),
                Req::post(sign_out, "sign out as free, with the browser's cookies")
                    .header("origin", ctx.target.origin.clone())
                    .json(&json!({})),
            ),
        ];
        for (what, req) in requests {
            let url = req.url.clone();
            let observed = send_as_browser(ctx, req, &browser, &lenient, &session).await?;
            steps.push(feed(&mut browser, &mut lenient, what, &url, &observed));
        }
        browsed.steps = steps;
        Ok(browsed)
    })
    .await
}

/// One authenticating cookie a response (re)set, as the browser took it.
struct Judged<'a> {
    /// The cookie the browser holds after the response; for a `Set-Cookie`
    /// the browser refused, the cookie it described.
    cookie: &'a StoredCookie,
    step: &'a Step,
    rejected: Option<&'a Rejection>,
}

impl Judged<'_> {
    fn describe(&self) -> String {
        format!(
            "cookie `{}` (Path={}, from {})",
            self.cookie.name, self.cookie.path, self.step.what
        )
    }
}

/// Every authenticating cookie each response (re)set, as the browser holds
/// it once the whole response is applied (a later header of one name
/// replaces an earlier one); a `Set-Cookie` the browser refused is judged
/// as sent, with why it was refused. Deletions are not judged here.
fn judged(b: &Browsed) -> Vec<Judged<'_>> {
    let mut out: Vec<Judged<'_>> = Vec::new();
    for step in &b.steps {
        for a in &step.applied {
            let Some(c) = &a.cookie else { continue };
            if !b.authenticates(&c.name) {
                continue;
            }
            match &a.outcome {
                Outcome::Stored | Outcome::Replaced => {
                    let Some(held) = step.held.iter().find(|h| h.same_key(c)) else {
                        continue;
                    };
                    let already = out
                        .iter()
                        .any(|j| std::ptr::eq(j.step, step) && j.cookie.same_key(held));
                    if !already {
                        out.push(Judged {
                            cookie: held,
                            step,
                            rejected: None,
                        });
                    }
                }
                Outcome::Rejected(r) if !c.expired(c.received_at) => out.push(Judged {
                    cookie: c,
                    step,
                    rejected: Some(r),
                }),
                _ => {}
            }
        }
    }
    out
}

/// Judges every authenticating cookie the browser took, after every
/// response that (re)set it, by `rule`.
async fn attribute(ctx: &Ctx, rule: &AttributeRule<'_>) -> Observation {
    let b = browsed(ctx).await?;
    let judged = judged(&b);
    if judged.is_empty() {
        return Err(Unobservable {
            reason: format!(
                "the browser holds no session cookie `{}` after sign-in",
                b.session_name()
            ),
            exchanges: vec![b.steps[0].exchange.clone()],
        });
    }
    let mut problems = Vec::new();
    let mut failing_steps: Vec<&Step> = Vec::new();
    for j in &judged {
        if let Some(p) = rule(j) {
            let refused = match j.rejected {
                Some(r) => format!(" (a browser refused this Set-Cookie: {r})"),
                None => String::new(),
            };
            problems.push(format!("{} {p}{refused}", j.describe()));
            if !failing_steps.iter().any(|s| std::ptr::eq(*s, j.step)) {
                failing_steps.push(j.step);
            }
        }
    }
    let mut setting: Vec<&Step> = Vec::new();
    for j in &judged {
        if !setting.iter().any(|s| std::ptr::eq(*s, j.step)) {
            setting.push(j.step);
        }
    }
    let mut finding = if problems.is_empty() {
        let names: Vec<String> = judged.iter().map(Judged::describe).collect();
        Finding::pass(format!(
            "every session cookie the browser took conforms: {}",
            names.join("; ")
        ))
        .with_exchanges(setting.iter().map(|s| &s.exchange))
    } else {
        Finding::fail(problems.join("; ")).with_exchanges(failing_steps.iter().map(|s| &s.exchange))
    };
    if !b.others.is_empty() {
        finding = finding
            .with(Evidence::note(format!(
                "also set, not judged (get-session did not accept it alone): {}",
                b.others.join(", ")
            )))
            .with_exchanges(&b.probes);
    }
    Ok(finding)
}

async fn httponly(ctx: Ctx) -> Observation {
    attribute(&ctx, &|j| {
        (!j.cookie.http_only).then(|| "has no HttpOnly".to_owned())
    })
    .await
}

async fn secure(ctx: Ctx) -> Observation {
    attribute(&ctx, &|j| {
        (!j.cookie.secure).then(|| "has no Secure".to_owned())
    })
    .await
}

async fn samesite(ctx: Ctx) -> Observation {
    attribute(&ctx, &|j| samesite_problem(j.cookie.same_site)).await
}

async fn prefix(ctx: Ctx) -> Observation {
    attribute(&ctx, &|j| prefix_problem(j.cookie)).await
}

async fn domain(ctx: Ctx) -> Observation {
    attribute(&ctx, &|j| {
        (!j.cookie.host_only).then(|| format!("has Domain={} (must be host-only)", j.cookie.domain))
    })
    .await
}

async fn max_age(ctx: Ctx) -> Observation {
    let bound = ctx.target.profile.max_session_age_s;
    attribute(&ctx, &|j| {
        max_age_problem(&j.cookie.set, bound, j.cookie.received_at)
    })
    .await
}

/// Sign-out is judged on what the browser holds after it: the session
/// cookies it held before must be gone, each deletion applied where the
/// browser applies it (the default-path of the sign-out URL when it has no
/// `Path`), and only to the cookie with its name, domain and path.
async fn cleared_on_sign_out(ctx: Ctx) -> Observation {
    let b = browsed(&ctx).await?;
    let [.., before, out] = b.steps.as_slice() else {
        return Err(Unobservable::new("the cookie session has no sign-out"));
    };
    if out.status != 200 {
        return Err(Unobservable {
            reason: format!("sign-out answered {} (expected 200)", out.status),
            exchanges: vec![out.exchange.clone()],
        });
    }
    let session = b.session_name();
    // The browser's view, unless it never held the session cookie because
    // it refused it (a prefix or Secure rule, judged by cookie.prefix and
    // cookie.secure): then as a browser that had accepted it.
    let strict = before.held.iter().any(|c| c.name == session);
    let (held_before, held_after, applied) = match strict {
        true => (&before.held, &out.held, &out.applied),
        false => (
            &before.lenient_held,
            &out.lenient_held,
            &out.lenient_applied,
        ),
    };
    if !held_before.iter().any(|c| c.name == session) {
        return Err(Unobservable {
            reason: format!(
                "the browser held no session cookie `{session}` before sign-out, so its clearing shows nothing"
            ),
            exchanges: vec![out.exchange.clone()],
        });
    }
    let authenticates = |name: &str| b.authenticates(name);
    let mut finding = clearing(held_before, held_after, applied, &out.url, &authenticates);
    if !strict {
        finding = finding.with(Evidence::note(format!(
            "a browser refused `{session}` at sign-in (cookie.prefix and cookie.secure judge that); sign-out is judged as for a browser that had accepted it"
        )));
    }
    Ok(finding.with_exchange(&out.exchange))
}

/// The verdict on what sign-out's `Set-Cookie`s (`applied`, at
/// `sign_out`) left of the session cookies the browser held: pass only when
/// it holds none of them any more.
fn clearing(
    held_before: &[StoredCookie],
    held_after: &[StoredCookie],
    applied: &[Applied],
    sign_out: &url::Url,
    authenticates: &dyn Fn(&str) -> bool,
) -> Finding {
    let survivors: Vec<&StoredCookie> = held_after
        .iter()
        .filter(|c| authenticates(&c.name))
        .collect();
    if survivors.is_empty() {
        let cleared: Vec<String> = held_before
            .iter()
            .filter(|c| authenticates(&c.name))
            .map(|c| format!("`{}` (Path={})", c.name, c.path))
            .collect();
        return Finding::pass(format!(
            "after sign-out's Set-Cookies the browser holds none of the session cookies it held: {} deleted",
            cleared.join(", ")
        ));
    }
    let dir = default_path(sign_out);
    let problems: Vec<String> = survivors
        .iter()
        .map(|c| {
            format!(
                "after sign-out the browser still holds `{}` on Path={}: {}",
                c.name,
                c.path,
                why_kept(c, applied, &dir)
            )
        })
        .collect();
    Finding::fail(problems.join("; "))
}

/// Why sign-out's `Set-Cookie`s left `kept` in the browser.
fn why_kept(kept: &StoredCookie, applied: &[Applied], sign_out_dir: &str) -> String {
    let mine: Vec<(&StoredCookie, &Outcome)> = applied
        .iter()
        .filter_map(|a| a.cookie.as_ref().map(|c| (c, &a.outcome)))
        .filter(|(c, _)| c.name == kept.name)
        .collect();
    if mine.is_empty() {
        return "sign-out sent no Set-Cookie for it".to_owned();
    }
    let mut reasons = Vec::new();
    for (c, outcome) in mine {
        let reason = match outcome {
            Outcome::Stored | Outcome::Replaced => {
                "sign-out set it again instead of deleting it (no Max-Age=0 or past Expires)"
                    .to_owned()
            }
            Outcome::Rejected(r) => format!("a browser ignores its deletion because {r}"),
            Outcome::Deleted { .. } if c.same_key(kept) => continue,
            Outcome::Deleted { .. } => {
                let path = match c.set.path.as_deref() {
                    Some(p) if p.starts_with('/') => format!("Path={p}"),
                    _ => format!(
                        "Path={} (it has no valid Path attribute, so the default-path of the sign-out URL, {sign_out_dir})",
                        c.path
                    ),
                };
                let domain = match (c.host_only, kept.host_only) {
                    (true, false) => {
                        format!(", host-only while the cookie has Domain={}", kept.domain)
                    }
                    (false, true) => {
                        format!(", with Domain={} while the cookie is host-only", c.domain)
                    }
                    (false, false) if c.domain != kept.domain => {
                        format!(
                            ", with Domain={} while the cookie has Domain={}",
                            c.domain, kept.domain
                        )
                    }
                    _ => String::new(),
                };
                format!(
                    "its deletion is on {path}{domain}, so it does not touch this cookie, which a browser keeps"
                )
            }
        };
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
    if reasons.is_empty() {
        "a later Set-Cookie of sign-out set it again".to_owned()
    } else {
        reasons.join("; ")
    }
}

fn samesite_problem(same_site: Option<SameSite>) -> Option<String> {
    match same_site {
        Some(SameSite::Lax | SameSite::Strict) => None,
        Some(SameSite::None) => Some("has SameSite=None (must be Lax or Strict)".to_owned()),
        None => Some("has no valid SameSite attribute (must be Lax or Strict)".to_owned()),
    }
}

/// RFC 6265bis name prefixes: the contract requires one, and each carries
/// its own rules, which a browser enforces by refusing the cookie.
fn prefix_problem(c: &StoredCookie) -> Option<String> {
    let lower = c.name.to_ascii_lowercase();
    if lower.starts_with("__host-") {
        let missing = host_prefix_missing(c);
        (!missing.is_empty()).then(|| {
            format!(
                "has the __Host- prefix without {}, so a browser refuses it",
                missing.join(", ")
            )
        })
    } else if lower.starts_with("__secure-") {
        (!c.secure)
            .then(|| "has the __Secure- prefix without Secure, so a browser refuses it".to_owned())
    } else {
        Some("has neither the __Host- nor the __Secure- prefix".to_owned())
    }
}

/// The lifetime the browser gives `c`, received at `at`: `Max-Age` wins over
/// `Expires`; neither ends with the browser session.
fn max_age_problem(c: &SetCookie, bound_s: u64, at: i64) -> Option<String> {
    let bound = i64::try_from(bound_s).unwrap_or(i64::MAX);
    match (c.max_age, c.expires_unix) {
        (Some(m), _) if m > bound => Some(format!("has Max-Age={m}, above the bound of {bound} s")),
        (Some(_), _) => None,
        (None, Some(expires)) => {
            let lifetime = expires.saturating_sub(at);
            (lifetime > bound.saturating_add(EXPIRES_SKEW_S)).then(|| {
                format!(
                    "has no Max-Age and Expires {lifetime} s away, above the bound of {bound} s"
                )
            })
        }
        (None, None) => None,
    }
}
