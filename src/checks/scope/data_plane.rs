//! The data plane (`/v1/query`): the service key is the only credential, an
//! owner table is only queried scoped, and no CORS grant.

use serde_json::{Value, json};

use super::marks::{Marks, listed, owned_rows, owner_of, rows_not_of};
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
/// nothing. Its rows are what a refusal must not hold.
pub(super) struct Control {
    pub(super) exchange: Exchange,
    /// A's data: A's user id and the values of the rows the control answered.
    pub(super) marks: Marks,
}

impl Control {
    /// What a refusal of a query scoped to A must not hold: A's data, less
    /// A's user id, which the query itself carries.
    pub(super) fn refusal_marks(&self, a: &User) -> Marks {
        self.marks.without(&[&a.id])
    }
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
    let owned: Vec<Value> = rows
        .into_iter()
        .filter(|r| owner_of(r).is_none_or(|o| o == a.id))
        .collect();
    Ok(Control {
        exchange: observed.exchange,
        marks: Marks::of("A's", &a.id).with_rows(&owned),
    })
}

/// A refusal: the expected status, no rows in the body, and nothing of
/// `marks` nor any row anywhere else in it (any key, any nesting).
pub(super) fn refused(
    observed: &Observed,
    status: u16,
    what: &str,
    marks: &Marks,
) -> Option<String> {
    let rows = rows_of(observed).len();
    let mut held = marks.found_in(&observed.body);
    if let Some(body) = observed.json() {
        held.extend(
            owned_rows(&body)
                .into_iter()
                .map(|(path, owner)| format!("{path} is a row of owner {owner:?}")),
        );
    }
    if observed.status == status && rows == 0 && held.is_empty() {
        None
    } else if held.is_empty() {
        Some(format!(
            "{what} answered {} with {rows} rows (expected {status}, no rows)",
            observed.status
        ))
    } else {
        Some(format!(
            "{what} answered {} with {rows} rows under `rows`, and row data elsewhere: {} (expected {status}, no rows)",
            observed.status,
            listed(&held)
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
    let marks = control.refusal_marks(a);
    let mut problems = Vec::new();
    let mut exchanges = Vec::new();
    for (label, observed) in futures_util::future::join_all(sends).await {
        let observed = observed?;
        problems.extend(refused(&observed, 401, &label, &marks));
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
        problems.extend(refused(&observed, 401, label, &control.refusal_marks(a)));
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

/// Unscoped queries refused with no rows and nothing of A's or B's data;
/// a query scoped to B answers B's rows only (B's scoped answer is asked
/// first: its rows are B's data, which an unscoped refusal must not hold).
pub(super) async fn unscoped(
    ctx: &Ctx,
    b: &User,
    control: &Control,
) -> Result<Finding, Unobservable> {
    let mut problems = Vec::new();
    let mut exchanges = vec![control.exchange.clone()];
    let label_b = format!("query on {OWNER_TABLE} scoped to another user");
    let scoped = ctx
        .probe
        .send(with_key(
            ctx,
            query_req(ctx, &label_b, &scoped_body(&b.id)),
        )?)
        .await?;
    let b_rows: Vec<Value> = rows_of(&scoped)
        .into_iter()
        .filter(|r| owner_of(r).as_deref() == Some(b.id.as_str()))
        .collect();
    let every = control
        .marks
        .and(&Marks::of("B's", &b.id).with_rows(&b_rows));
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
        problems.extend(refused(&observed, 403, &label, &every));
        let body = observed.json().unwrap_or(Value::Null);
        if observed.status == 403 && body["error"] != "UnscopedQuery" {
            problems.push(format!(
                "{label} answered 403 without {{\"error\":\"UnscopedQuery\"}}"
            ));
        }
        exchanges.push(observed.exchange);
    }
    // A scoped query answers that owner's rows only: no row naming another
    // owner under any owner key, nothing of A's data anywhere.
    let mut foreign = scoped
        .json()
        .map(|body| rows_not_of(&body, &b.id))
        .unwrap_or_default();
    foreign.extend(control.marks.found_in(&scoped.body));
    if scoped.status != 200 {
        problems.push(format!(
            "{label_b} answered {} (expected 200)",
            scoped.status
        ));
    } else if !foreign.is_empty() {
        problems.push(format!(
            "{label_b} answered rows of other owners: {}",
            listed(&foreign)
        ));
    }
    exchanges.push(scoped.exchange);
    Ok(verdict(
        (!problems.is_empty()).then(|| problems.join("; ")),
        "unscoped queries on the owner table were refused with UnscopedQuery and no rows; a scoped query answered that owner's rows only",
        &exchanges,
    ))
}
