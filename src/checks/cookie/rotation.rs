//! `cookie.rotated-on-sign-in`: a sign-in that presents a session cookie
//! (the live one, then a forged value) must set a new token, never the one
//! presented (session fixation).

use serde_json::json;

use super::super::identity::session_cookie;
use super::super::{Ctx, Finding, Identity, Unobservable, sign_in, sign_out};
use super::*;
use crate::probe::{Jar, Observed, Req, SetCookie};

/// Rotation presents the run's first session (and a forged value), then
/// signs out every session it made.
pub(super) async fn rotated_on_sign_in(ctx: Ctx) -> Observation {
    let (first, _) = sign_in(&ctx, "free", Jar::new()).await?;
    let first = &first;
    let (finding, rotated) = rotation(&ctx, first).await?;
    // Leave no session of ours behind; what this answers decides nothing.
    if let Some(rotated) = rotated {
        let _ = sign_out(&ctx, &rotated, &ctx.target.base_url).await;
    }
    let _ = sign_out(&ctx, first, &ctx.target.base_url).await;
    Ok(finding)
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
        super::super::identity::random_u64(),
        super::super::identity::random_u64(),
        super::super::identity::random_u64(),
        super::super::identity::random_u64()
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
