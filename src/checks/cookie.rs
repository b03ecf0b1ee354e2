//! The cookie suite: the session cookie's attributes (RFC 6265bis), its
//! rotation on sign-in, its deletion on sign-out, and the Origin check on
//! cookie-carrying state-changing requests.

use std::sync::Arc;

use cookie::SameSite;
use futures_util::future::join_all;
use serde_json::json;

use super::families::{SIMPLE_BODIES, foreign_origins};
use super::identity::{Seen, accepted_at, session_cookie, unprefixed};
use super::registry::{Check, Needs, Observation, shared};
use super::{Ctx, Finding, Identity, Unobservable, sign_in, sign_out};
use crate::check;
use crate::model::Exchange;
use crate::probe::{Jar, Observed, Req, SetCookie};

pub use super::families::FOREIGN_ORIGIN;

/// A rule over one cookie: `Some(problem)` when the cookie breaks it.
type AttributeRule<'a> = dyn Fn(&SetCookie) -> Option<String> + Send + Sync + 'a;

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

/// The run's sign-in as free, whose cookies the attribute checks judge.
struct SignedIn {
    identity: Identity,
    /// The cookies that authenticate, which the session rules judge: the
    /// session cookie, and every other cookie the target accepted alone in
    /// its place (measured with get-session, not guessed from its name).
    judged: Vec<SetCookie>,
    /// Cookies set beside them that did not authenticate alone: reported,
    /// not judged (a preference, an analytics id).
    others: Vec<String>,
    /// The sign-in, then the get-session probe of every other cookie.
    exchanges: Vec<Exchange>,
}

async fn signed_in(ctx: &Ctx) -> Result<Arc<SignedIn>, Unobservable> {
    ctx.once("cookie.sign-in", || async {
        let (identity, observed) = sign_in(ctx, "free", Jar::new()).await?;
        let set = observed.set_cookies();
        // The session cookie `sign_in` already picked.
        let session = set
            .iter()
            .find(|c| !c.is_deletion() && c.name == identity.cookie_name)
            .cloned()
            .ok_or_else(|| Unobservable::new("the sign-in set no session cookie"))?;
        let others: Vec<&SetCookie> = set
            .iter()
            .filter(|c| !c.is_deletion() && c.name != session.name)
            .collect();
        // Each other cookie alone, as a browser (or a thief) holding only it
        // would send it: accepted means it authenticates too.
        let probes = join_all(others.iter().map(|c| async move {
            let mut jar = Jar::new();
            jar.insert(&c.name, c.value());
            let label = format!("get-session with only cookie `{}`", c.name);
            accepted_at(ctx, &jar, &ctx.target.base_url, &label).await
        }))
        .await;
        let mut signed_in = SignedIn {
            identity,
            judged: vec![session],
            others: Vec::new(),
            exchanges: vec![observed.exchange],
        };
        for (cookie, probe) in others.into_iter().zip(probes) {
            let (seen, exchange) = probe?;
            if seen == Seen::Accepted {
                signed_in.judged.push(cookie.clone());
            } else {
                signed_in.others.push(cookie.name.clone());
            }
            signed_in.exchanges.push(exchange);
        }
        Ok(signed_in)
    })
    .await
}

/// Judges every cookie the sign-in set that authenticates by `rule`.
async fn attribute(ctx: &Ctx, rule: &AttributeRule<'_>) -> Observation {
    let signed_in = signed_in(ctx).await?;
    let judged: Vec<&SetCookie> = signed_in.judged.iter().collect();
    let mut finding = judge_attributes(&judged, rule, &signed_in.exchanges[0]);
    if !signed_in.others.is_empty() {
        finding = finding
            .with(crate::model::Evidence::note(format!(
                "also set, not judged (get-session did not accept it alone): {}",
                signed_in.others.join(", ")
            )))
            .with_exchanges(&signed_in.exchanges[1..]);
    }
    Ok(finding)
}

async fn httponly(ctx: Ctx) -> Observation {
    attribute(&ctx, &|c| {
        (!c.http_only).then(|| "has no HttpOnly".to_owned())
    })
    .await
}

async fn secure(ctx: Ctx) -> Observation {
    attribute(&ctx, &|c| (!c.secure).then(|| "has no Secure".to_owned())).await
}

async fn samesite(ctx: Ctx) -> Observation {
    attribute(&ctx, &samesite_problem).await
}

async fn prefix(ctx: Ctx) -> Observation {
    attribute(&ctx, &prefix_problem).await
}

async fn domain(ctx: Ctx) -> Observation {
    attribute(&ctx, &|c| {
        c.domain
            .as_ref()
            .map(|d| format!("has Domain={d} (must be host-only)"))
    })
    .await
}

async fn max_age(ctx: Ctx) -> Observation {
    let bound = ctx.target.profile.max_session_age_s;
    attribute(&ctx, &|c| max_age_problem(c, bound)).await
}

/// Rotation presents the run's first session (and a forged value), then
/// signs out every session it made.
async fn rotated_on_sign_in(ctx: Ctx) -> Observation {
    let first = &signed_in(&ctx).await?.identity;
    let (finding, rotated) = rotation(&ctx, first).await?;
    // Leave no session of ours behind; what this answers decides nothing.
    if let Some(rotated) = rotated {
        let _ = sign_out(&ctx, &rotated, &ctx.target.base_url).await;
    }
    let _ = sign_out(&ctx, first, &ctx.target.base_url).await;
    Ok(finding)
}

/// The Origin check runs on a session of its own: a cross-site sign-out
/// that gets through ends only that session.
async fn csrf_origin(ctx: Ctx) -> Observation {
    let (me, _) = sign_in(&ctx, "free", Jar::new()).await?;
    let finding = csrf(&ctx, &me).await?;
    let _ = sign_out(&ctx, &me, &ctx.target.base_url).await;
    Ok(finding)
}

/// Sign-out is judged on a session of its own, against the cookie its own
/// sign-in set.
async fn cleared_on_sign_out(ctx: Ctx) -> Observation {
    let (me, observed) = sign_in(&ctx, "free", Jar::new()).await?;
    let set = observed.set_cookies();
    let original = session_cookie(&ctx, &set);
    cleared(&ctx, &me, original).await
}

fn judge_attributes(
    live: &[&SetCookie],
    problem: &AttributeRule<'_>,
    exchange: &Exchange,
) -> Finding {
    let problems: Vec<String> = live
        .iter()
        .filter_map(|c| problem(c).map(|p| format!("cookie `{}` {p}", c.name)))
        .collect();
    let names: Vec<&str> = live.iter().map(|c| c.name.as_str()).collect();
    let finding = if problems.is_empty() {
        Finding::pass(format!("sign-in set {}: all conform", names.join(", ")))
    } else {
        Finding::fail(problems.join("; "))
    };
    finding.with_exchange(exchange)
}

fn samesite_problem(c: &SetCookie) -> Option<String> {
    match c.same_site {
        Some(SameSite::Lax | SameSite::Strict) => None,
        Some(SameSite::None) => Some("has SameSite=None (must be Lax or Strict)".to_owned()),
        None => Some("has no valid SameSite attribute (must be Lax or Strict)".to_owned()),
    }
}

/// RFC 6265bis name prefixes: the contract requires one, and each carries
/// its own rules.
fn prefix_problem(c: &SetCookie) -> Option<String> {
    let lower = c.name.to_ascii_lowercase();
    if lower.starts_with("__host-") {
        let mut broken = Vec::new();
        if !c.secure {
            broken.push("Secure");
        }
        if c.path.as_deref() != Some("/") {
            broken.push("Path=/");
        }
        if c.domain.is_some() {
            broken.push("no Domain");
        }
        (!broken.is_empty())
            .then(|| format!("has the __Host- prefix without {}", broken.join(", ")))
    } else if lower.starts_with("__secure-") {
        (!c.secure).then(|| "has the __Secure- prefix without Secure".to_owned())
    } else {
        Some("has neither the __Host- nor the __Secure- prefix".to_owned())
    }
}

fn max_age_problem(c: &SetCookie, bound_s: u64) -> Option<String> {
    let bound = bound_s as i64;
    match (c.max_age, c.expires_unix) {
        (Some(m), _) if m > bound => Some(format!("has Max-Age={m}, above the bound of {bound} s")),
        (Some(_), _) => None,
        (None, Some(expires)) => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let lifetime = expires - now;
            (lifetime > bound + EXPIRES_SKEW_S).then(|| {
                format!(
                    "has no Max-Age and Expires {lifetime} s away, above the bound of {bound} s"
                )
            })
        }
        (None, None) => None,
    }
}

/// Signs in presenting a session cookie: the live token of the current
/// session, then a forged value. Each answer must set a new session token,
/// never the one presented (session fixation), and the forged value must
/// stay refused.
async fn rotation(
    ctx: &Ctx,
    first: &Identity,
) -> Result<(Finding, Option<Identity>), Unobservable> {
    let live = sign_in_presenting(ctx, &first.session_jar(), "the current session").await?;
    let mut problems = Vec::new();
    let mut exchanges = vec![live.observed.exchange.clone()];
    let rotated = match &live.new_token {
        Some(token) if token != first.token() => {
            let mut jar = first.jar.clone();
            jar.apply(&live.set);
            Some(Identity {
                role: first.role.clone(),
                jar,
                cookie_name: live
                    .cookie_name
                    .clone()
                    .unwrap_or_else(|| first.cookie_name.clone()),
            })
        }
        Some(_) => {
            problems
                .push("sign-in answered with the very session token that was presented".to_owned());
            None
        }
        None => {
            problems.push("sign-in presenting a live session set no new session cookie: the presented token is kept".to_owned());
            None
        }
    };

    let forged_value = format!(
        "{:016x}{:016x}.{:016x}{:016x}",
        super::identity::random_u64(),
        super::identity::random_u64(),
        super::identity::random_u64(),
        super::identity::random_u64()
    );
    let mut forged = Jar::new();
    forged.insert(&first.cookie_name, &forged_value);
    let planted = sign_in_presenting(ctx, &forged, "a forged session value").await?;
    exchanges.push(planted.observed.exchange.clone());
    match &planted.new_token {
        Some(token) if *token == forged_value => {
            problems.push("sign-in adopted a forged session value planted before it".to_owned())
        }
        Some(_) => {}
        None => {
            problems.push("sign-in presenting a forged value set no new session cookie".to_owned())
        }
    }
    let (seen, replay) = accepted_at(
        ctx,
        &forged,
        &ctx.target.base_url,
        "replay the forged value",
    )
    .await?;
    exchanges.push(replay);
    if seen == Seen::Accepted {
        problems.push("the forged session value is accepted after sign-in".to_owned());
    }
    if let Some(token) = planted.new_token.filter(|t| *t != forged_value) {
        let mut jar = Jar::new();
        jar.insert(&first.cookie_name, &token);
        let extra = Identity {
            role: first.role.clone(),
            jar,
            cookie_name: first.cookie_name.clone(),
        };
        // Leave no session of ours behind; what this answers decides nothing.
        let _ = sign_out(ctx, &extra, &ctx.target.base_url).await;
    }
    let finding = if problems.is_empty() {
        Finding::pass(
            "sign-in minted a new token whether it was presented a live session or a forged value, and the forged value stayed refused",
        )
    } else {
        Finding::fail(problems.join("; "))
    };
    Ok((finding.with_exchanges(&exchanges), rotated))
}

/// What a sign-in that carried a session cookie answered.
struct Presented {
    observed: Observed,
    set: Vec<SetCookie>,
    cookie_name: Option<String>,
    new_token: Option<String>,
}

async fn sign_in_presenting(ctx: &Ctx, jar: &Jar, what: &str) -> Result<Presented, Unobservable> {
    let account = ctx
        .target
        .account("free")
        .ok_or_else(|| Unobservable::new("the config has no `accounts.free`"))?;
    let req = Req::post(
        ctx.url(&ctx.target.paths.sign_in),
        format!("sign in as free, presenting {what}"),
    )
    .header("origin", ctx.target.origin.clone())
    .jar(jar)
    .json(&json!({ "email": account.email, "password": account.password.expose() }));
    let observed = ctx.probe.send(req).await?;
    if observed.status != 200 {
        return Err(Unobservable {
            reason: format!(
                "sign-in presenting {what} answered {} (expected 200)",
                observed.status
            ),
            exchanges: vec![observed.exchange],
        });
    }
    let set = observed.set_cookies();
    let session = session_cookie(ctx, &set);
    let (cookie_name, new_token) = match session {
        Some(c) => (Some(c.name.clone()), Some(c.value().to_owned())),
        None => (None, None),
    };
    Ok(Presented {
        observed,
        set,
        cookie_name,
        new_token,
    })
}

/// Cookie-carrying POSTs with every untrusted Origin of the family (another
/// site, none, `null`, look-alikes of the trusted origin by prefix, suffix,
/// subdomain, scheme and port) must be refused with 403, on an app route and
/// on the auth surface; the request shapes a browser sends cross-site without
/// a preflight (form, multipart and text bodies) must not go through either.
/// The same app request with the trusted Origin must go through (the
/// control).
async fn csrf(ctx: &Ctx, who: &Identity) -> Result<Finding, Unobservable> {
    let origins = foreign_origins(&ctx.target.origin);
    // The app route first: a sign-out that got through would leave the
    // later POSTs without a session, and their answers would no longer
    // show what the Origin check did.
    let targets = [
        (
            ctx.target.paths.posts.as_str(),
            json!({ "title": "flareproof csrf probe" }),
        ),
        (ctx.target.paths.sign_out.as_str(), json!({})),
    ];
    let mut accepted = Vec::new();
    let mut exchanges = Vec::new();
    let mut sent = 0;
    for (path, body) in &targets {
        // (what, request, whether only a 2xx counts as getting through)
        let mut variants: Vec<(String, Req, bool)> = Vec::new();
        for o in &origins {
            let mut req = Req::post(ctx.url(path), format!("POST {path} with {}", o.what))
                .jar(&who.session_jar())
                .json(body);
            if let Some(origin) = &o.origin {
                req = req.header("origin", origin.clone());
            }
            variants.push((format!("POST {path} with {}", o.what), req, false));
        }
        for shape in SIMPLE_BODIES {
            let what = format!("a cross-site {} POST {path}", shape.content_type);
            let mut req = Req::post(ctx.url(path), what.clone())
                .jar(&who.session_jar())
                .header("origin", FOREIGN_ORIGIN)
                .header("content-type", shape.content_type);
            req.body = Some(shape.body.to_owned());
            variants.push((what, req, true));
        }
        sent += variants.len();
        let answers =
            join_all(variants.into_iter().map(|(what, req, simple)| async move {
                (what, simple, ctx.probe.send(req).await)
            }))
            .await;
        for (what, simple, observed) in answers {
            let observed: Observed = observed?;
            let through = if simple {
                (200..300).contains(&observed.status)
            } else {
                observed.status != 403
            };
            if through {
                accepted.push(format!("{what} answered {}", observed.status));
            }
            exchanges.push(observed.exchange);
        }
    }
    if !accepted.is_empty() {
        // The accepted ones first: they are the evidence.
        exchanges.sort_by_key(|e| {
            e.response
                .as_ref()
                .is_some_and(|r| r.status == 403 || !(200..300).contains(&r.status))
        });
        return Ok(
            Finding::fail(format!("expected a refusal: {}", accepted.join("; ")))
                .with_exchanges(exchanges.iter().take(8)),
        );
    }
    let control = Req::post(
        ctx.url(&ctx.target.paths.posts),
        "control: POST with the trusted Origin",
    )
    .header("origin", ctx.target.origin.clone())
    .jar(&who.session_jar())
    .json(&json!({ "title": "flareproof csrf control" }));
    let control = ctx.probe.send(control).await?;
    exchanges.truncate(4);
    exchanges.push(control.exchange.clone());
    if !(200..300).contains(&control.status) {
        return Err(Unobservable {
            reason: format!(
                "the control request with the trusted Origin answered {}, so the refusals prove nothing",
                control.status
            ),
            exchanges,
        });
    }
    Ok(Finding::pass(format!(
        "all {sent} cookie-carrying cross-site POSTs (untrusted, missing, null and look-alike Origins; form, multipart and text bodies) were refused; the trusted Origin was accepted"
    ))
    .with_exchanges(&exchanges))
}

/// Sign-out must clear the session cookie with a deletion a browser accepts
/// for the cookie as it was set: same path, and the prefix rules kept where
/// the set cookie kept them (a set cookie that broke them is the business of
/// `cookie.prefix` and `cookie.secure`).
async fn cleared(
    ctx: &Ctx,
    who: &Identity,
    original: Option<&SetCookie>,
) -> Result<Finding, Unobservable> {
    let observed = sign_out(ctx, who, &ctx.target.base_url).await?;
    if observed.status != 200 {
        return Err(Unobservable {
            reason: format!("sign-out answered {} (expected 200)", observed.status),
            exchanges: vec![observed.exchange],
        });
    }
    let set = observed.set_cookies();
    let name = &who.cookie_name;
    let finding = match set.iter().find(|c| c.name == *name) {
        None => Finding::fail(format!("sign-out sent no Set-Cookie for `{name}`")),
        Some(c) if !c.is_deletion() => Finding::fail(format!(
            "sign-out set `{name}` again instead of deleting it (no Max-Age=0 or past Expires)"
        )),
        Some(c) => match deletion_problem(c, original) {
            Some(p) => Finding::fail(format!(
                "the deletion of `{name}` {p}, so a browser ignores it and keeps the cookie"
            )),
            None => Finding::pass(format!("sign-out deleted `{name}`")),
        },
    };
    Ok(finding.with_exchange(&observed.exchange))
}

/// Why a browser would not apply `deletion` to the cookie `original` set.
fn deletion_problem(deletion: &SetCookie, original: Option<&SetCookie>) -> Option<String> {
    let prefixed = unprefixed(&deletion.name) != deletion.name.as_str();
    let original_kept_prefix = original.is_none_or(|o| prefix_problem(o).is_none());
    if prefixed
        && original_kept_prefix
        && let Some(p) = prefix_problem(deletion)
    {
        return Some(p);
    }
    let path = |c: &SetCookie| c.path.clone().unwrap_or_else(|| "/".to_owned());
    match original {
        Some(o) if path(o) != path(deletion) => Some(format!(
            "is on Path={} while the cookie was set on Path={}",
            path(deletion),
            path(o)
        )),
        Some(o) if o.domain != deletion.domain => Some(format!(
            "has Domain={:?} while the cookie was set with Domain={:?}",
            deletion.domain, o.domain
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(h: &str) -> SetCookie {
        SetCookie::parse(h).unwrap()
    }

    #[test]
    fn prefix_rules_follow_rfc6265bis() {
        assert_eq!(prefix_problem(&c("__Host-a=1; Secure; Path=/")), None);
        assert!(
            prefix_problem(&c("__Host-a=1; Secure; Path=/x"))
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
        assert_eq!(max_age_problem(&c("a=1; Max-Age=604800"), 604_800), None);
        assert!(max_age_problem(&c("a=1; Max-Age=604801"), 604_800).is_some());
        assert_eq!(max_age_problem(&c("a=1"), 604_800), None);
        assert!(
            max_age_problem(&c("a=1; Expires=Fri, 01 Jan 2100 00:00:00 GMT"), 604_800).is_some()
        );
    }

    #[test]
    fn a_deletion_must_match_the_cookie_as_set() {
        let set = c("__Secure-s=1; Secure; Path=/; HttpOnly");
        assert_eq!(
            deletion_problem(&c("__Secure-s=; Max-Age=0; Secure; Path=/"), Some(&set)),
            None
        );
        assert!(
            deletion_problem(&c("__Secure-s=; Max-Age=0; Path=/"), Some(&set))
                .unwrap()
                .contains("Secure")
        );
        assert!(
            deletion_problem(&c("__Secure-s=; Max-Age=0; Secure; Path=/api"), Some(&set))
                .unwrap()
                .contains("Path")
        );
        // A cookie set without Secure is judged by cookie.secure, not here.
        let insecure = c("__Secure-s=1; Path=/");
        assert_eq!(
            deletion_problem(&c("__Secure-s=; Max-Age=0; Path=/"), Some(&insecure)),
            None
        );
    }

    #[test]
    fn samesite_none_and_missing_fail() {
        assert_eq!(samesite_problem(&c("a=1; SameSite=Strict")), None);
        assert!(samesite_problem(&c("a=1; SameSite=None")).is_some());
        assert!(samesite_problem(&c("a=1")).is_some());
    }
}
