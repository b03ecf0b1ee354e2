//! The data plane (`/v1/query`): the service key is the only credential, an
//! owner table is only queried scoped, and no CORS grant.

use serde_json::{Value, json};

use super::app_routes::owner_of;
use super::{BROWSER_ORIGINS, OWNER_COLUMN, OWNER_TABLE, User, verdict};
use crate::checks::{Ctx, Finding, Unobservable};
use crate::model::Exchange;
use crate::probe::{Observed, Req};

pub(super) fn rows_of(observed: &Observed) -> Vec<Value> {
    observed
        .json()
        .and_then(|b| b.get("rows").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

pub(super) fn query_req(ctx: &Ctx, label: &str, body: &Value) -> Req {
    Req::post(ctx.url(&ctx.target.paths.query), label).json(body)
}

pub(super) fn with_key(ctx: &Ctx, req: Req) -> Result<Req, Unobservable> {
    let key = ctx
        .target
        .service_key
        .as_ref()
        .ok_or_else(|| Unobservable::new("the config has no `data.service_key_env`"))?;
    Ok(req.header("authorization", format!("Bearer {}", key.expose())))
}

pub(super) fn scoped_body(owner: &str) -> Value {
    json!({ "table": OWNER_TABLE, "where": { OWNER_COLUMN: owner } })
}

/// The positive control of the data-plane checks: with the service key, a
/// query scoped to A answers rows, all A's. Without it, a refusal proves
/// nothing.
pub(super) struct Control {
    pub(super) exchange: Exchange,
}

pub(super) async fn scoped_query_control(ctx: &Ctx, a: &User) -> Result<Control, Unobservable> {
    let req = with_key(
        ctx,
        query_req(
            ctx,
            "control: scoped query with the service key",
            &scoped_body(&a.id),
        ),
    )?;
    let observed = ctx.probe.send(req).await?;
    let rows = rows_of(&observed);
    if observed.status != 200 || rows.is_empty() {
        return Err(Unobservable {
            reason: format!(
                "the control query with the service key answered {} with {} rows; expected 200 with the user's rows",
                observed.status,
                rows.len()
            ),
            exchanges: vec![observed.exchange],
        });
    }
    Ok(Control {
        exchange: observed.exchange,
    })
}

/// A refusal: the expected status, and no rows in the body.
pub(super) fn refused(observed: &Observed, status: u16, what: &str) -> Option<String> {
    let rows = rows_of(observed).len();
    if observed.status == status && rows == 0 {
        None
    } else {
        Some(format!(
            "{what} answered {} with {rows} rows (expected {status}, no rows)",
            observed.status
        ))
    }
}

/// Every credential short of the service key (none, an empty or wrong
/// Bearer, the key one character short or long, loosely compared), each
/// refused with 401 and no rows, beside the control that the key itself is
/// accepted.
pub(super) async fn without_credentials(
    ctx: &Ctx,
    a: &User,
    control: &Control,
) -> Result<Finding, Unobservable> {
    let key = ctx
        .target
        .service_key
        .as_ref()
        .ok_or_else(|| Unobservable::new("the config has no `data.service_key_env`"))?;
    let variants =
        crate::checks::families::wrong_keys(key.expose(), crate::checks::identity::random_u64());
    let sends = variants.iter().map(|variant| {
        if variant.derived
            && let Some(token) = variant
                .authorization
                .as_deref()
                .and_then(|a| a.strip_prefix("Bearer "))
        {
            ctx.probe.redactor().learn_str(token);
        }
        let label = format!("query with {}", variant.what);
        let mut req = query_req(ctx, &label, &scoped_body(&a.id));
        if let Some(auth) = &variant.authorization {
            req = req.header("authorization", auth.clone());
        }
        async move { (label, ctx.probe.send(req).await) }
    });
    let mut problems = Vec::new();
    let mut exchanges = Vec::new();
    for (label, observed) in futures_util::future::join_all(sends).await {
        let observed = observed?;
        problems.extend(refused(&observed, 401, &label));
        exchanges.push(observed.exchange);
    }
    exchanges.push(control.exchange.clone());
    Ok(verdict(
        (!problems.is_empty()).then(|| problems.join("; ")),
        &format!(
            "{} queries with a credential short of the service key (none, empty, wrong, one character short or long, loosely compared) were refused with 401 and no rows",
            variants.len()
        ),
        &exchanges,
    ))
}

pub(super) async fn session_alone(
    ctx: &Ctx,
    a: &User,
    control: &Control,
) -> Result<Finding, Unobservable> {
    let mut problems = Vec::new();
    let mut exchanges = Vec::new();
    for origin in [None, Some(ctx.target.origin.clone())] {
        let label = match origin {
            None => "query with a session cookie and no service key",
            Some(_) => "query with a session cookie and the trusted Origin, no service key",
        };
        let mut req = query_req(ctx, label, &scoped_body(&a.id)).jar(&a.identity.session_jar());
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        let observed = ctx.probe.send(req).await?;
        problems.extend(refused(&observed, 401, label));
        exchanges.push(observed.exchange);
    }
    exchanges.push(control.exchange.clone());
    Ok(verdict(
        (!problems.is_empty()).then(|| problems.join("; ")),
        "a session cookie alone was refused with 401 and no rows",
        &exchanges,
    ))
}

/// Neither a preflight nor an actual request from a browser Origin may get
/// an `Access-Control-Allow-Origin` that grants it.
pub(super) async fn no_cors(ctx: &Ctx, a: &User) -> Result<Finding, Unobservable> {
    let mut origins: Vec<String> = BROWSER_ORIGINS.iter().map(|o| o.to_string()).collect();
    origins.insert(0, ctx.target.origin.clone());
    let mut problems = Vec::new();
    let mut exchanges = Vec::new();
    for origin in &origins {
        let preflight = Req::new(
            reqwest::Method::OPTIONS,
            ctx.url(&ctx.target.paths.query),
            format!("CORS preflight from Origin {origin}"),
        )
        .header("origin", origin.clone())
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        );
        let actual = with_key(
            ctx,
            query_req(
                ctx,
                &format!("query from Origin {origin}"),
                &scoped_body(&a.id),
            ),
        )?
        .header("origin", origin.clone());
        for req in [preflight, actual] {
            let observed = ctx.probe.send(req).await?;
            if let Some(allowed) = observed.header("access-control-allow-origin")
                && (allowed.trim() == "*" || allowed.trim() == origin)
            {
                problems.push(format!(
                    "{} answered Access-Control-Allow-Origin: {allowed}",
                    observed.exchange.label
                ));
            }
            exchanges.push(observed.exchange);
        }
    }
    Ok(verdict(
        (!problems.is_empty()).then(|| problems.join("; ")),
        "no CORS grant on the data plane for a browser Origin",
        &exchanges,
    ))
}

pub(super) async fn unscoped(
    ctx: &Ctx,
    b: &User,
    control: &Control,
) -> Result<Finding, Unobservable> {
    let mut problems = Vec::new();
    let mut exchanges = vec![control.exchange.clone()];
    let unscoped_bodies = [
        ("no filter", json!({ "table": OWNER_TABLE })),
        (
            "an empty filter",
            json!({ "table": OWNER_TABLE, "where": {} }),
        ),
    ];
    for (what, body) in unscoped_bodies {
        let label = format!("query on {OWNER_TABLE} with {what}");
        let observed = ctx
            .probe
            .send(with_key(ctx, query_req(ctx, &label, &body))?)
            .await?;
        problems.extend(refused(&observed, 403, &label));
        let body = observed.json().unwrap_or(Value::Null);
        if observed.status == 403 && body["error"] != "UnscopedQuery" {
            problems.push(format!(
                "{label} answered 403 without {{\"error\":\"UnscopedQuery\"}}"
            ));
        }
        exchanges.push(observed.exchange);
    }
    // A scoped query answers that owner's rows only.
    let label = format!("query on {OWNER_TABLE} scoped to another user");
    let observed = ctx
        .probe
        .send(with_key(ctx, query_req(ctx, &label, &scoped_body(&b.id)))?)
        .await?;
    let foreign: Vec<String> = rows_of(&observed)
        .iter()
        .filter_map(owner_of)
        .filter(|owner| *owner != b.id)
        .collect();
    if observed.status != 200 {
        problems.push(format!(
            "{label} answered {} (expected 200)",
            observed.status
        ));
    } else if !foreign.is_empty() {
        problems.push(format!(
            "{label} answered {} rows of other owners",
            foreign.len()
        ));
    }
    exchanges.push(observed.exchange);
    Ok(verdict(
        (!problems.is_empty()).then(|| problems.join("; ")),
        "unscoped queries on the owner table were refused with UnscopedQuery; a scoped query answered that owner's rows only",
        &exchanges,
    ))
}
