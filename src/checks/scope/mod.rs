//! The scope suite: the data plane needs the service key (a session cookie is
//! never a database credential), owner tables are only queried scoped, no
//! CORS grant on `/v1/*`, and the app routes never serve or write another
//! user's rows (OWASP API1:2023, BOLA).

mod app_routes;
mod data_plane;
mod marks;

use std::sync::Arc;

use serde_json::Value;

use super::check::{Check, Needs, Observation, shared};
use super::{Ctx, Finding, Identity, Unobservable, sign_in};
use crate::check;
use crate::model::Exchange;
use crate::probe::Jar;
use app_routes::{bola_by_id, bola_list, write_as_other};
use data_plane::{
    Control, no_cors, query_req, refused, scoped_body, scoped_query_control, session_alone,
    unscoped, without_credentials,
};

/// An Origin a browser on another site would send.
const BROWSER_ORIGINS: [&str; 2] = [super::families::FOREIGN_ORIGIN, "null"];

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
        problems.extend(refused(
            &observed,
            401,
            &label,
            &control.refusal_marks(&u.a),
        ));
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
