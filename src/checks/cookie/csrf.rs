//! `cookie.csrf-origin`: cookie-carrying state-changing requests from an
//! untrusted Origin are refused, beside a control with the trusted one.

use serde_json::json;

use super::super::families::{SIMPLE_BODIES, foreign_origins};
use super::super::{Ctx, Finding, Identity, Unobservable, sign_in, sign_out};
use super::*;
use crate::probe::{Jar, Req};

/// The Origin check runs on a session of its own: a cross-site sign-out
/// that gets through ends only that session.
pub(super) async fn csrf_origin(ctx: Ctx) -> Observation {
    let (me, _) = sign_in(&ctx, "free", Jar::new()).await?;
    let finding = csrf(&ctx, &me).await?;
    let _ = sign_out(&ctx, &me, &ctx.target.base_url).await;
    Ok(finding)
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
