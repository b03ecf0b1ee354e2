//! The scope suite: the data plane needs the service key (a session cookie is
//! never a database credential), owner tables are only queried scoped, no
//! CORS grant on `/v1/*`, and the app routes never serve or write another
//! user's rows (OWASP API1:2023, BOLA).

use std::sync::Arc;

use serde_json::{Value, json};

use super::registry::{Check, Needs, Observation, shared};
use super::{Ctx, Finding, Identity, Unobservable, sign_in};
use crate::check;
use crate::model::Exchange;
use crate::probe::{Jar, Observed, Req};

/// An Origin a browser on another site would send.
const BROWSER_ORIGINS: [&str; 2] = [super::cookie::FOREIGN_ORIGIN, "null"];

/// The owner table the contract names, and its owner column.
const OWNER_TABLE: &str = "posts";
const OWNER_COLUMN: &str = "author_id";

/// The buckets a scope check spends a few requests of: free's and free2's
/// (the app routes), and the anonymous one whenever a session it carries
/// is no longer valid.
const SPENDS: Needs = Needs {
    buckets: &[shared("anonymous"), shared("free"), shared("free2")],
    ..Needs::NOTHING
};

pub const CHECKS: &[Check] = &[
    check!("scope.service-key-required", SPENDS, service_key_required),
    check!(
        "scope.session-not-db-credential",
        SPENDS,
        session_not_db_credential
    ),
    check!(
        "scope.session-token-not-bearer",
        SPENDS,
        session_token_not_bearer
    ),
    check!("scope.no-cors-on-data", SPENDS, no_cors_on_data),
    check!(
        "scope.unscoped-query-rejected",
        SPENDS,
        unscoped_query_rejected
    ),
    check!("scope.bola-list", SPENDS, bola_list_check),
    check!("scope.bola-by-id", SPENDS, bola_by_id_check),
    check!(
        "scope.write-as-other-rejected",
        SPENDS,
        write_as_other_rejected
    ),
];

/// The two users every scope check works with: A (free) and B (free2),
/// signed in once per run.
struct Users {
    a: User,
    b: User,
}

async fn users(ctx: &Ctx) -> Result<Arc<Users>, Unobservable> {
    ctx.once("scope.users", || async {
        Ok(Users {
            a: user(ctx, "free").await?,
            b: user(ctx, "free2").await?,
        })
    })
    .await
}

/// The data-plane checks' positive control, sent once per run.
async fn control(ctx: &Ctx, users: &Users) -> Result<Arc<Control>, Unobservable> {
    ctx.once("scope.control", || scoped_query_control(ctx, &users.a))
        .await
}

async fn service_key_required(ctx: Ctx) -> Observation {
    let u = users(&ctx).await?;
    let control = control(&ctx, &u).await?;
    without_credentials(&ctx, &u.a, &control).await
}

async fn session_not_db_credential(ctx: Ctx) -> Observation {
    let u = users(&ctx).await?;
    let control = control(&ctx, &u).await?;
    session_alone(&ctx, &u.a, &control).await
}

/// A's session token sent as the data plane's Bearer key (the cookie's value,
/// and the token without a signature after its first `.`): each refused
/// with 401 and no rows, beside the control that the key itself is accepted.
async fn session_token_not_bearer(ctx: Ctx) -> Observation {
    let u = users(&ctx).await?;
    let control = control(&ctx, &u).await?;
    let token = u.a.identity.token();
    let mut variants = vec![("the session cookie's value", token)];
    if let Some((unsigned, _)) = token.split_once('.') {
        variants.push(("the session token without its signature", unsigned));
    }
    let mut problems = Vec::new();
    let mut exchanges = Vec::new();
    for (what, bearer) in variants {
        let label = format!("query with {what} as the Bearer key");
        let req = query_req(&ctx, &label, &scoped_body(&u.a.id))
            .header("authorization", format!("Bearer {bearer}"));
        let observed = ctx.probe.send(req).await?;
        problems.extend(refused(&observed, 401, &label));
        exchanges.push(observed.exchange);
    }
    exchanges.push(control.exchange.clone());
    Ok(verdict(
        (!problems.is_empty()).then(|| problems.join("; ")),
        "a session token sent as the Bearer key was refused with 401 and no rows",
        &exchanges,
    ))
}

async fn no_cors_on_data(ctx: Ctx) -> Observation {
    let u = users(&ctx).await?;
    control(&ctx, &u).await?;
    no_cors(&ctx, &u.a).await
}

async fn unscoped_query_rejected(ctx: Ctx) -> Observation {
    let u = users(&ctx).await?;
    let control = control(&ctx, &u).await?;
    unscoped(&ctx, &u.b, &control).await
}

async fn bola_list_check(ctx: Ctx) -> Observation {
    let u = users(&ctx).await?;
    bola_list(&ctx, &u.a, &u.b).await
}

async fn bola_by_id_check(ctx: Ctx) -> Observation {
    let u = users(&ctx).await?;
    bola_by_id(&ctx, &u.a, &u.b).await
}

async fn write_as_other_rejected(ctx: Ctx) -> Observation {
    let u = users(&ctx).await?;
    write_as_other(&ctx, &u.a, &u.b).await
}

/// A signed-in account with the user id the sign-in answer named.
struct User {
    identity: Identity,
    id: String,
}

async fn user(ctx: &Ctx, role: &str) -> Result<User, Unobservable> {
    let (identity, observed) = sign_in(ctx, role, Jar::new()).await?;
    let id = observed
        .json()
        .and_then(|b| id_of(&b["user"]))
        .ok_or_else(|| Unobservable {
            reason: format!("the sign-in answer for `{role}` names no `user.id`"),
            exchanges: vec![observed.exchange.clone()],
        })?;
    Ok(User { identity, id })
}

/// An id as the target writes it: a string or a number.
fn id_of(value: &Value) -> Option<String> {
    match &value["id"] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn rows_of(observed: &Observed) -> Vec<Value> {
    observed
        .json()
        .and_then(|b| b.get("rows").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

fn posts_of(observed: &Observed) -> Option<Vec<Value>> {
    let body = observed.json()?;
    body.get("posts")
        .and_then(Value::as_array)
        .or_else(|| body.as_array())
        .cloned()
}

fn owner_of(row: &Value) -> Option<String> {
    match &row[OWNER_COLUMN] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn query_req(ctx: &Ctx, label: &str, body: &Value) -> Req {
    Req::post(ctx.url(&ctx.target.paths.query), label).json(body)
}

fn with_key(ctx: &Ctx, req: Req) -> Result<Req, Unobservable> {
    let key = ctx
        .target
        .service_key
        .as_ref()
        .ok_or_else(|| Unobservable::new("the config has no `data.service_key_env`"))?;
    Ok(req.header("authorization", format!("Bearer {}", key.expose())))
}

fn scoped_body(owner: &str) -> Value {
    json!({ "table": OWNER_TABLE, "where": { OWNER_COLUMN: owner } })
}

/// The positive control of the data-plane checks: with the service key, a
/// query scoped to A answers rows, all A's. Without it, a refusal proves
/// nothing.
struct Control {
    exchange: Exchange,
}

async fn scoped_query_control(ctx: &Ctx, a: &User) -> Result<Control, Unobservable> {
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
fn refused(observed: &Observed, status: u16, what: &str) -> Option<String> {
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

async fn without_credentials(
    ctx: &Ctx,
    a: &User,
    control: &Control,
) -> Result<Finding, Unobservable> {
    let observed = ctx
        .probe
        .send(query_req(
            ctx,
            "query without any credential",
            &scoped_body(&a.id),
        ))
        .await?;
    Ok(verdict(
        refused(&observed, 401, "a query without credentials"),
        "a query without credentials was refused with 401 and no rows",
        [&observed.exchange, &control.exchange],
    ))
}

async fn session_alone(ctx: &Ctx, a: &User, control: &Control) -> Result<Finding, Unobservable> {
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
async fn no_cors(ctx: &Ctx, a: &User) -> Result<Finding, Unobservable> {
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

async fn unscoped(ctx: &Ctx, b: &User, control: &Control) -> Result<Finding, Unobservable> {
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

async fn list_posts(
    ctx: &Ctx,
    who: &User,
    query: &str,
    label: &str,
) -> Result<(Observed, Vec<Value>), Unobservable> {
    let path = format!("{}{query}", ctx.target.paths.posts);
    let observed = ctx
        .probe
        .send(Req::get(ctx.url(&path), label).jar(&who.identity.session_jar()))
        .await?;
    let Some(posts) = posts_of(&observed).filter(|_| observed.status == 200) else {
        return Err(Unobservable {
            reason: format!(
                "{label} answered {} without a list of posts",
                observed.status
            ),
            exchanges: vec![observed.exchange],
        });
    };
    Ok((observed, posts))
}

async fn bola_list(ctx: &Ctx, a: &User, b: &User) -> Result<Finding, Unobservable> {
    // B's own posts, by id: what a leak would show. Without any, a leak
    // could not be seen.
    let (b_list, b_posts) = list_posts(ctx, b, "", "B lists its own posts").await?;
    let b_ids: Vec<String> = b_posts.iter().filter_map(id_of).collect();
    if b_ids.is_empty() {
        return Err(Unobservable {
            reason: "B has no post with an `id`, so a leak of B's posts could not be seen"
                .to_owned(),
            exchanges: vec![b_list.exchange],
        });
    }
    let mut problems = Vec::new();
    let mut exchanges = vec![b_list.exchange];
    for (query, what) in [
        (format!("?{OWNER_COLUMN}={}", b.id), "naming B"),
        (String::new(), "with no parameter"),
    ] {
        let label = format!("A lists posts {what}");
        let (observed, posts) = list_posts(ctx, a, &query, &label).await?;
        // A post is foreign when it is one of B's, or names an owner not A.
        let foreign = posts
            .iter()
            .filter(|p| {
                id_of(p).is_some_and(|id| b_ids.contains(&id))
                    || owner_of(p).is_some_and(|owner| owner != a.id)
            })
            .count();
        if foreign > 0 {
            problems.push(format!("{label}: {foreign} posts not A's were returned"));
        }
        exchanges.push(observed.exchange);
    }
    Ok(verdict(
        (!problems.is_empty()).then(|| problems.join("; ")),
        "A's list holds none of B's posts and no other owner's, whatever author_id is sent",
        &exchanges,
    ))
}

async fn bola_by_id(ctx: &Ctx, a: &User, b: &User) -> Result<Finding, Unobservable> {
    let (b_list, b_posts) = list_posts(ctx, b, "", "B lists its own posts").await?;
    let (a_list, a_posts) = list_posts(ctx, a, "", "A lists its own posts").await?;
    let (Some(b_post), Some(a_post)) = (b_posts.first(), a_posts.first()) else {
        return Err(Unobservable {
            reason: "A or B has no post to fetch by id".to_owned(),
            exchanges: vec![b_list.exchange, a_list.exchange],
        });
    };
    let (Some(b_post_id), Some(a_post_id)) = (id_of(b_post), id_of(a_post)) else {
        return Err(Unobservable::new("a listed post has no `id`"));
    };
    let get = |id: &str, label: &str| {
        Req::get(ctx.url(&format!("{}/{id}", ctx.target.paths.posts)), label)
            .jar(&a.identity.session_jar())
    };
    let own = ctx
        .probe
        .send(get(&a_post_id, "control: A fetches its own post"))
        .await?;
    if own.status != 200 {
        return Err(Unobservable {
            reason: format!(
                "A fetching its own post answered {} (expected 200)",
                own.status
            ),
            exchanges: vec![own.exchange],
        });
    }
    let other = ctx
        .probe
        .send(get(&b_post_id, "A fetches B's post by id"))
        .await?;
    let leaked_title = b_post["title"]
        .as_str()
        .is_some_and(|t| !t.is_empty() && String::from_utf8_lossy(&other.body).contains(t));
    let problem = if !matches!(other.status, 403 | 404) {
        Some(format!(
            "A fetching B's post answered {} (expected 404 or 403)",
            other.status
        ))
    } else if leaked_title {
        Some("A fetching B's post was refused but the answer holds the post's title".to_owned())
    } else {
        None
    };
    Ok(verdict(
        problem,
        "A fetching B's post by id was refused and nothing of it returned",
        [&other.exchange, &own.exchange],
    ))
}

/// A write naming B as author must not be stored as B's. What decides it is
/// seen, never assumed: an accepted write must show up in A's or B's list,
/// and a refused one is followed by a control write of A's own that must go
/// through (else the refusal may be of A's session, not of the author).
async fn write_as_other(ctx: &Ctx, a: &User, b: &User) -> Result<Finding, Unobservable> {
    let marker = format!("flareproof write-as-other {}", ctx.probe.now_ms());
    let post = |label: &str, body: Value| {
        Req::post(ctx.url(&ctx.target.paths.posts), label)
            .header("origin", ctx.target.origin.clone())
            .jar(&a.identity.session_jar())
            .json(&body)
    };
    let written = ctx
        .probe
        .send(post(
            "A writes a post naming B as author",
            json!({ "title": marker, OWNER_COLUMN: b.id }),
        ))
        .await?;
    let (b_list, b_posts) = list_posts(ctx, b, "", "B lists its own posts after the write").await?;
    let stored_as_b = b_posts.iter().any(|p| p["title"] == marker.as_str());
    let answer = written.json().unwrap_or(Value::Null);
    let answered_as_b = owner_of(&answer).as_deref() == Some(b.id.as_str());
    let accepted = (200..300).contains(&written.status);
    let problem = if stored_as_b {
        Some("the post A wrote naming B as author is in B's posts".to_owned())
    } else if answered_as_b {
        Some("the write answered with B as the author".to_owned())
    } else if accepted
        && owner_of(&answer).as_deref() != Some(a.id.as_str())
        && owner_of(&answer).is_some()
    {
        Some("the write was stored under neither A nor B".to_owned())
    } else {
        None
    };
    if let Some(problem) = problem {
        return Ok(Finding::fail(problem).with_exchanges([&written.exchange, &b_list.exchange]));
    }
    let mut exchanges = vec![written.exchange.clone(), b_list.exchange.clone()];
    if accepted {
        // Accepted and not in B's list: it must be in A's, or B's list may
        // simply not show new posts.
        let (a_list, a_posts) =
            list_posts(ctx, a, "", "A lists its own posts after the write").await?;
        exchanges.push(a_list.exchange);
        if !a_posts.iter().any(|p| p["title"] == marker.as_str()) {
            return Err(Unobservable {
                reason: format!(
                    "the write naming B was accepted ({}) but its post is in neither A's nor B's list, so where it was stored could not be seen",
                    written.status
                ),
                exchanges,
            });
        }
        return Ok(
            Finding::pass("a write naming B as author was stored as A's, not B's")
                .with_exchanges(&exchanges),
        );
    }
    let control = ctx
        .probe
        .send(post(
            "control: A writes a post of its own",
            json!({ "title": format!("{marker} control") }),
        ))
        .await?;
    exchanges.push(control.exchange.clone());
    if !(200..300).contains(&control.status) {
        return Err(Unobservable {
            reason: format!(
                "the write naming B was refused ({}), but so was A's control write of its own ({}), so the refusal proves nothing",
                written.status, control.status
            ),
            exchanges,
        });
    }
    Ok(Finding::pass(format!(
        "a write naming B as author was refused ({}) while A's own write went through",
        written.status
    ))
    .with_exchanges(&exchanges))
}

fn verdict<'e>(
    problem: Option<String>,
    pass: &str,
    exchanges: impl IntoIterator<Item = &'e Exchange>,
) -> Finding {
    match problem {
        Some(problem) => Finding::fail(problem),
        None => Finding::pass(pass),
    }
    .with_exchanges(exchanges)
}
