//! Signing in and out as the target's accounts; shared by every suite.

use serde_json::json;

use super::{Ctx, Finding};
use crate::model::Exchange;
use crate::probe::{Jar, Observed, ProbeError, Req, SetCookie};
use crate::target::Account;

/// A signed-in account: its cookie jar and which cookie is the session.
#[derive(Debug, Clone)]
pub struct Identity {
    pub role: String,
    pub jar: Jar,
    pub cookie_name: String,
}

impl Identity {
    /// The session token as the cookie carries it.
    pub fn token(&self) -> &str {
        self.jar.get(&self.cookie_name).unwrap_or_default()
    }

    /// A jar holding only this identity's session cookie.
    pub fn session_jar(&self) -> Jar {
        let mut jar = Jar::new();
        jar.insert(&self.cookie_name, self.token());
        jar
    }
}

/// The harness could not get where it needed to be (sign-in failed, the
/// target did not answer, the budget ran out): every check waiting on it is
/// an `error`, never a pass.
#[derive(Debug, Clone)]
pub struct Unobservable {
    pub reason: String,
    pub exchanges: Vec<Exchange>,
}

impl Unobservable {
    pub fn new(reason: impl Into<String>) -> Self {
        Unobservable {
            reason: reason.into(),
            exchanges: Vec::new(),
        }
    }

    pub fn finding(&self) -> Finding {
        Finding::error(format!("could not observe: {}", self.reason))
            .with_exchanges(&self.exchanges)
    }
}

impl From<ProbeError> for Unobservable {
    fn from(e: ProbeError) -> Self {
        let reason = crate::error_chain(&e);
        match e {
            ProbeError::StillRateLimited { exchanges, .. } => Unobservable { reason, exchanges },
            ProbeError::BodyTooLarge { exchange, .. } | ProbeError::OverKept { exchange, .. } => {
                Unobservable {
                    reason,
                    exchanges: vec![*exchange],
                }
            }
            _ => Unobservable::new(reason),
        }
    }
}

/// Strips a `__Host-` or `__Secure-` prefix (case-insensitively, as
/// RFC 6265bis matches them).
pub fn unprefixed(name: &str) -> &str {
    for prefix in ["__host-", "__secure-"] {
        // `get` is `None` where the prefix's length is not a character
        // boundary of the name (a multi-byte character right after `__host`).
        if let Some(head) = name.get(..prefix.len())
            && head.eq_ignore_ascii_case(prefix)
        {
            return &name[prefix.len()..];
        }
    }
    name
}

/// Which of the cookies a sign-in set is the session cookie: by name, the
/// last `Set-Cookie` of that name (a browser applies them in order, so the
/// last one is the cookie it keeps). Its value is a credential the run now
/// holds: the run's redactor learns it, whatever the cookie is called.
pub fn session_cookie<'a>(ctx: &Ctx, set: &'a [SetCookie]) -> Option<&'a SetCookie> {
    let found = find_session_cookie(ctx, set)?;
    ctx.probe.redactor().learn_str(found.value());
    Some(found)
}

fn find_session_cookie<'a>(ctx: &Ctx, set: &'a [SetCookie]) -> Option<&'a SetCookie> {
    let live: Vec<&SetCookie> = set.iter().filter(|c| !c.is_deletion()).collect();
    let first = if let Some(name) = &ctx.target.session_cookie {
        live.iter()
            .copied()
            .find(|c| c.name == *name || unprefixed(&c.name) == name)
    } else {
        let by_name = live
            .iter()
            .copied()
            .find(|c| unprefixed(&c.name).ends_with("session_token"));
        let names: std::collections::BTreeSet<&str> =
            live.iter().map(|c| c.name.as_str()).collect();
        by_name.or_else(|| (names.len() == 1).then(|| live[0]))
    }?;
    live.into_iter().rev().find(|c| c.name == first.name)
}

/// Signs in as `role`, sending `jar`'s cookies; the identity's jar is `jar`
/// updated with what the target set.
pub async fn sign_in(
    ctx: &Ctx,
    role: &str,
    jar: Jar,
) -> Result<(Identity, Observed), Unobservable> {
    let account = ctx
        .target
        .account(role)
        .ok_or_else(|| Unobservable::new(format!("the config has no `accounts.{role}`")))?;
    sign_in_as(ctx, account, jar).await
}

/// Signs in as `account` (which need not be in the config).
pub async fn sign_in_as(
    ctx: &Ctx,
    account: &Account,
    jar: Jar,
) -> Result<(Identity, Observed), Unobservable> {
    let role = account.role.as_str();
    if !ctx.needs.fresh_accounts {
        ctx.shared.passwords_first().await;
    }
    let req = Req::post(
        ctx.url(&ctx.target.paths.sign_in),
        format!("sign in as {role}"),
    )
    .header("origin", ctx.target.origin.clone())
    .jar(&jar)
    .json(&json!({ "email": account.email, "password": account.password.expose() }));
    let observed = ctx.probe.send(req).await?;
    let fail = |reason: String| Unobservable {
        reason,
        exchanges: vec![observed.exchange.clone()],
    };
    if observed.status != 200 {
        return Err(fail(format!(
            "sign-in as `{role}` answered {} (expected 200)",
            observed.status
        )));
    }
    let set = observed.set_cookies();
    let Some(session) = session_cookie(ctx, &set) else {
        let ignored: Vec<String> = observed
            .ignored_set_cookies()
            .iter()
            .map(|e| e.to_string())
            .collect();
        let ignored = match ignored.is_empty() {
            true => String::new(),
            false => format!(" (ignored, as a browser would: {})", ignored.join("; ")),
        };
        return Err(fail(format!(
            "sign-in as `{role}` answered 200 but set no session cookie{ignored}"
        )));
    };
    let cookie_name = session.name.clone();
    let mut jar = jar;
    jar.apply(&set);
    Ok((
        Identity {
            role: role.to_owned(),
            jar,
            cookie_name,
        },
        observed,
    ))
}

/// Signs out with the identity's cookies, as a browser on the trusted
/// origin would (JSON content type and `{}`, which better-auth requires).
pub async fn sign_out(
    ctx: &Ctx,
    identity: &Identity,
    base: &url::Url,
) -> Result<Observed, ProbeError> {
    let req = Req::post(
        super::join(base, &ctx.target.paths.sign_out),
        format!("sign out as {}", identity.role),
    )
    .header("origin", ctx.target.origin.clone())
    .jar(&identity.jar)
    .json(&json!({}));
    ctx.probe.send(req).await
}

/// What a presented session token got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Accepted,
    Refused,
}

/// Presents `jar` to get-session at `vantage`: the session JSON means
/// accepted; `null` (or 401/403) refused. Anything else means we cannot
/// tell.
pub async fn accepted_at(
    ctx: &Ctx,
    jar: &Jar,
    vantage: &url::Url,
    label: &str,
) -> Result<(Seen, Exchange), Unobservable> {
    let req = Req::get(super::join(vantage, &ctx.target.paths.get_session), label).jar(jar);
    let observed = ctx.probe.send(req).await?;
    let unclear = |reason: String| Unobservable {
        reason,
        exchanges: vec![observed.exchange.clone()],
    };
    let seen = match observed.status {
        200 => match observed.json() {
            Some(serde_json::Value::Null) => Seen::Refused,
            Some(body)
                if body.get("session").is_some_and(|s| !s.is_null())
                    || body.get("user").is_some_and(|u| !u.is_null()) =>
            {
                Seen::Accepted
            }
            Some(body) if body.get("session").is_some_and(serde_json::Value::is_null) => {
                Seen::Refused
            }
            _ => {
                return Err(unclear(format!(
                    "get-session at {vantage} answered 200 with neither a session nor null"
                )));
            }
        },
        401 | 403 => Seen::Refused,
        other => {
            return Err(unclear(format!(
                "get-session at {vantage} answered {other}"
            )));
        }
    };
    Ok((seen, observed.exchange))
}

/// Fails unless `who`'s session is still accepted at the base URL: a check
/// whose requests carried a session that stopped being valid sent them
/// anonymously, so what they showed is not about `who`.
pub async fn still_signed_in(ctx: &Ctx, who: &str, jar: &Jar) -> Result<(), Unobservable> {
    let label = format!("{who}: still signed in after its requests");
    let (seen, exchange) = accepted_at(ctx, jar, &ctx.target.base_url, &label).await?;
    match seen {
        Seen::Accepted => Ok(()),
        Seen::Refused => Err(Unobservable {
            reason: format!(
                "{who}'s session was no longer valid after its requests, so they may have been counted as anonymous"
            ),
            exchanges: vec![exchange],
        }),
    }
}

/// A random number for names, nonces and throwaway passwords (std's
/// randomly keyed SipHash; no extra dependency).
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{Ctx, SetCookie, session_cookie, unprefixed};
    use crate::plan::Plan;
    use crate::probe::{Probe, Redactor};
    use crate::target::TargetConfig;

    fn ctx() -> Ctx {
        let config = "[target]\nbase_url = \"http://127.0.0.1:9\"\norigin = \"https://a.test\"\n\
                      [accounts.free]\nemail = \"a@a.test\"\npassword_env = \"PW\"\n";
        let target = TargetConfig::parse("t.toml", config)
            .unwrap()
            .resolve("t.toml", |_| Some("pw".to_owned()))
            .unwrap();
        let target = Arc::new(target);
        let probe = Probe::new(target.budget, Arc::new(Redactor::new())).unwrap();
        Ctx::standalone(
            target,
            Arc::new(Plan::builtin("flarelink-auth/v1").unwrap()),
            probe,
        )
    }

    fn set(headers: &[&str]) -> Vec<SetCookie> {
        headers
            .iter()
            .map(|h| SetCookie::parse(h).unwrap())
            .collect()
    }

    /// A browser applies a response's Set-Cookies in order: of two with the
    /// session cookie's name, the second is the one it keeps.
    #[test]
    fn the_session_cookie_is_the_last_set_cookie_of_its_name() {
        let ctx = ctx();
        let set = set(&[
            "x.session_token=first; Path=/; HttpOnly",
            "theme=dark",
            "x.session_token=second; Path=/",
        ]);
        let c = session_cookie(&ctx, &set).unwrap();
        assert_eq!(c.value(), "second");
        assert!(!c.http_only);
        // One unconventionally named cookie set twice is still one cookie.
        let set = set_twice();
        assert_eq!(session_cookie(&ctx, &set).unwrap().value(), "2");
    }

    fn set_twice() -> Vec<SetCookie> {
        set(&["sid=1; Path=/", "sid=2; Path=/"])
    }

    #[test]
    fn prefixes_are_stripped_case_insensitively_and_never_split_a_character() {
        assert_eq!(unprefixed("__Host-s"), "s");
        assert_eq!(
            unprefixed("__SECURE-better-auth.session_token"),
            "better-auth.session_token"
        );
        assert_eq!(unprefixed("plain"), "plain");
        // A multi-byte character where the prefix would end: no panic.
        assert_eq!(unprefixed("__hosté=1"), "__hosté=1");
        assert_eq!(unprefixed("__secureé"), "__secureé");
        assert_eq!(unprefixed("é"), "é");
    }
}
