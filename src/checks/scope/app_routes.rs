//! The app routes (`/api/posts`): never serve or write another user's rows
//! (OWASP API1:2023, BOLA).

use serde_json::{Value, json};

use super::marks::{Marks, listed, owner_of, rows_not_of};
use super::{OWNER_COLUMN, User, id_of, verdict};
use crate::checks::{Ctx, Finding, Unobservable};
use crate::probe::{Observed, Req};

pub(super) fn posts_of(observed: &Observed) -> Option<Vec<Value>> {
    let body = observed.json()?;
    body.get("posts")
        .and_then(Value::as_array)
        .or_else(|| body.as_array())
        .cloned()
}

/// Where `observed` holds data not `me`'s: rows naming another owner
/// anywhere in it, and anything of `theirs`.
fn not_mine(observed: &Observed, me: &User, theirs: &Marks) -> Vec<String> {
    let mut held = observed
        .json()
        .map(|body| rows_not_of(&body, &me.id))
        .unwrap_or_default();
    held.extend(theirs.found_in(&observed.body));
    held
}

pub(super) async fn list_posts(
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

pub(super) async fn bola_list(ctx: &Ctx, a: &User, b: &User) -> Result<Finding, Unobservable> {
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
    // What else of B's a leak may show, wherever the answer puts it.
    let b_marks = Marks::of("B's", &b.id).with_rows(&b_posts);
    let mut problems = Vec::new();
    let mut exchanges = vec![b_list.exchange];
    for (query, what, sent) in [
        (
            format!("?{OWNER_COLUMN}={}", b.id),
            "naming B",
            vec![b.id.as_str()],
        ),
        (String::new(), "with no parameter", vec![]),
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
        // Anywhere else in the answer (B's id echoed from the query is not).
        let held = not_mine(&observed, a, &b_marks.without(&sent));
        if !held.is_empty() {
            problems.push(format!(
                "{label}: the answer holds data not A's: {}",
                listed(&held)
            ));
        }
        exchanges.push(observed.exchange);
    }
    Ok(verdict(
        (!problems.is_empty()).then(|| problems.join("; ")),
        "A's list holds none of B's posts and no other owner's (under any key), whatever author_id is sent",
        &exchanges,
    ))
}

pub(super) async fn bola_by_id(ctx: &Ctx, a: &User, b: &User) -> Result<Finding, Unobservable> {
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
    // B's data in the refusal, less the post id the request named.
    let held = not_mine(
        &other,
        a,
        &Marks::of("B's", &b.id)
            .with_rows(&b_posts)
            .without(&[&b_post_id]),
    );
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
    } else if !held.is_empty() {
        Some(format!(
            "A fetching B's post was refused ({}) but the answer holds B's data: {}",
            other.status,
            listed(&held)
        ))
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
pub(super) async fn write_as_other(ctx: &Ctx, a: &User, b: &User) -> Result<Finding, Unobservable> {
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
    // B's data as B's list shows it, less the post written and B's id (the
    // write carried it): what the write's answer must not hold.
    let b_rows: Vec<Value> = b_posts
        .iter()
        .filter(|p| p["title"] != marker.as_str())
        .cloned()
        .collect();
    let b_marks = Marks::of("B's", &b.id).with_rows(&b_rows).without(&[&b.id]);
    let answer = written.json().unwrap_or(Value::Null);
    let accepted = (200..300).contains(&written.status);
    let owner = written_owner(&answer, &marker, accepted);
    let answered_as_b = owner.as_deref() == Some(b.id.as_str());
    let held = b_marks.found_in(&written.body);
    let problem = if stored_as_b {
        Some("the post A wrote naming B as author is in B's posts".to_owned())
    } else if answered_as_b {
        Some("the write answered with B as the author".to_owned())
    } else if accepted && owner.as_deref() != Some(a.id.as_str()) && owner.is_some() {
        Some("the write was stored under neither A nor B".to_owned())
    } else if !held.is_empty() {
        Some(format!(
            "the write naming B answered {} with B's data: {}",
            written.status,
            listed(&held)
        ))
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
    let held = b_marks.found_in(&control.body);
    if !held.is_empty() {
        return Ok(Finding::fail(format!(
            "A's control write answered with B's data: {}",
            listed(&held)
        ))
        .with_exchanges(&exchanges));
    }
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

/// The owner of the post a write stored, as its answer says: the owner named
/// by the object holding the post's title (`marker`), wherever it is nested,
/// else, when the write was `accepted`, by the answer itself (a refusal that
/// echoes the author_id sent stored nothing).
fn written_owner(answer: &Value, marker: &str, accepted: bool) -> Option<String> {
    fn find(value: &Value, marker: &str) -> Option<String> {
        match value {
            Value::Object(map) => {
                if map.values().any(|v| v == marker) {
                    return owner_of(value);
                }
                map.values().find_map(|v| find(v, marker))
            }
            Value::Array(items) => items.iter().find_map(|v| find(v, marker)),
            _ => None,
        }
    }
    find(answer, marker).or_else(|| accepted.then(|| owner_of(answer)).flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_post_is_found_wherever_the_answer_nests_it() {
        let m = "flareproof write-as-other 1";
        let nested =
            json!({ "ok": true, "data": { "post": { "id": 9, "title": m, "user_id": "b" } } });
        assert_eq!(written_owner(&nested, m, true).as_deref(), Some("b"));
        let top = json!({ "id": 9, "author_id": "a" });
        assert_eq!(written_owner(&top, m, true).as_deref(), Some("a"));
        // A refusal echoing the author_id sent stored nothing.
        let echo = json!({ "error": "Forbidden", "author_id": "b" });
        assert_eq!(written_owner(&echo, m, false), None);
    }
}
