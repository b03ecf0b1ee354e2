//! The reference Worker really runs: sign-up, sign-in, cookie flags, `/api/me`,
//! sign-out revocation, fault switches, and a clean stop.

use flareproof::probe::{Jar, Req, SetCookie};
use nix::sys::signal::killpg;
use nix::unistd::Pid;
use serde_json::json;

use crate::support::{Fixture, FixtureOptions, ctx, events, faults, start};

fn session_cookie(set: &[SetCookie]) -> &SetCookie {
    set.iter()
        .find(|c| c.name.ends_with("session_token") && !c.is_deletion())
        .expect("a session cookie")
}

#[tokio::test(flavor = "multi_thread")]
async fn reference_worker_signs_up_in_and_refuses_the_old_token_after_sign_out() {
    let fixture = tokio::task::spawn_blocking(|| start(FixtureOptions::default()))
        .await
        .unwrap();
    let ctx = ctx(&fixture);
    let origin = ctx.target.origin.clone();
    let email = "newcomer@flareproof.test";
    let password = "correct horse battery staple 42";

    let up = ctx
        .probe
        .send(
            Req::post(ctx.url("/api/auth/sign-up/email"), "sign up")
                .header("origin", origin.clone())
                .json(&json!({"email": email, "password": password, "name": "Newcomer"})),
        )
        .await
        .unwrap();
    assert_eq!(up.status, 200, "sign-up: {:?}", up.exchange.response);

    let signed_in = ctx
        .probe
        .send(
            Req::post(ctx.url("/api/auth/sign-in/email"), "sign in")
                .header("origin", origin.clone())
                .json(&json!({"email": email, "password": password})),
        )
        .await
        .unwrap();
    assert_eq!(signed_in.status, 200);
    let set = signed_in.set_cookies();
    let cookie = session_cookie(&set);
    assert_eq!(cookie.name, "__Secure-better-auth.session_token");
    assert!(cookie.http_only && cookie.secure);
    assert_eq!(cookie.same_site, Some(cookie::SameSite::Lax));
    assert_eq!(cookie.path.as_deref(), Some("/"));
    assert_eq!(cookie.domain, None);
    assert_eq!(cookie.max_age, Some(604_800));

    let mut jar = Jar::new();
    jar.apply(&set);
    let me = ctx
        .probe
        .send(Req::get(ctx.url("/api/me"), "me").jar(&jar))
        .await
        .unwrap();
    assert_eq!(me.status, 200);
    let me = me.json().unwrap();
    assert_eq!(me["user"]["email"], email);
    assert_eq!(me["user"]["tier"], "free");

    let out = ctx
        .probe
        .send(
            Req::post(ctx.url("/api/auth/sign-out"), "sign out")
                .header("origin", origin)
                .jar(&jar)
                .json(&json!({})),
        )
        .await
        .unwrap();
    assert_eq!(out.status, 200);
    let cleared = out.set_cookies();
    assert!(
        cleared
            .iter()
            .any(|c| c.name == cookie.name && c.is_deletion()),
        "sign-out clears the session cookie"
    );

    // The old token, presented again, is refused.
    let after = ctx
        .probe
        .send(Req::get(ctx.url("/api/me"), "me after sign-out").jar(&jar))
        .await
        .unwrap();
    assert_eq!(after.status, 401);
}

async fn sign_in_cookie(fixture: &Fixture) -> SetCookie {
    let ctx = ctx(fixture);
    let (_, observed) = flareproof::checks::sign_in(&ctx, "free", Jar::new())
        .await
        .unwrap_or_else(|u| panic!("{}", u.reason));
    session_cookie(&observed.set_cookies()).clone()
}

async fn posts_listed_with_author_id(fixture: &Fixture, other: &str) -> Vec<serde_json::Value> {
    let ctx = ctx(fixture);
    let (me, _) = flareproof::checks::sign_in(&ctx, "free", Jar::new())
        .await
        .unwrap_or_else(|u| panic!("{}", u.reason));
    let listed = ctx
        .probe
        .send(Req::get(ctx.url(&format!("/api/posts?author_id={other}")), "list").jar(&me.jar))
        .await
        .unwrap();
    assert_eq!(listed.status, 200);
    let body = listed.json().unwrap();
    body["posts"]
        .as_array()
        .or_else(|| body.as_array())
        .cloned()
        .unwrap_or_else(|| panic!("no posts array in {body}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fault_switch_changes_exactly_the_behaviour_it_names() {
    let (healthy, faulty) = tokio::task::spawn_blocking(|| {
        std::thread::scope(|s| {
            let a = s.spawn(|| start(FixtureOptions::default()));
            let b = s.spawn(|| start(faults(&["cookie.httponly", "scope.bola-list"])));
            (a.join().unwrap(), b.join().unwrap())
        })
    })
    .await
    .unwrap();

    let good = sign_in_cookie(&healthy).await;
    let bad = sign_in_cookie(&faulty).await;
    assert!(good.http_only);
    assert!(!bad.http_only, "FAULTS=cookie.httponly drops HttpOnly");
    // ...and changes nothing else about the cookie.
    assert_eq!(
        (
            &good.name,
            good.secure,
            good.same_site,
            &good.path,
            good.max_age
        ),
        (&bad.name, bad.secure, bad.same_site, &bad.path, bad.max_age)
    );

    let pro = |f: &Fixture| f.info().accounts["pro"].id.clone();
    let free = |f: &Fixture| f.info().accounts["free"].id.clone();
    let listed = posts_listed_with_author_id(&healthy, &pro(&healthy)).await;
    assert!(!listed.is_empty());
    assert!(
        listed
            .iter()
            .all(|p| p["author_id"] == free(&healthy).as_str())
    );
    let leaked = posts_listed_with_author_id(&faulty, &pro(&faulty)).await;
    assert!(
        !leaked.is_empty()
            && leaked
                .iter()
                .all(|p| p["author_id"] == pro(&faulty).as_str()),
        "FAULTS=scope.bola-list returns the named author's posts: {leaked:?}"
    );
}

#[test]
fn an_unknown_fault_stops_the_launcher_with_a_message() {
    let err = Fixture::start(&faults(&["cookie.no-such-thing"]), &events()).unwrap_err();
    let message = flareproof::error_chain(&err);
    assert!(message.contains("cookie.no-such-thing"), "{message}");
}

#[test]
fn dropping_the_fixture_leaves_no_process_of_its_group() {
    let fixture = start(FixtureOptions {
        edges: Some(2),
        ..FixtureOptions::default()
    });
    let pgid = Pid::from_raw(fixture.pid() as i32);
    assert!(
        killpg(pgid, None).is_ok(),
        "the group is alive while running"
    );
    drop(fixture);
    assert!(
        killpg(pgid, None).is_err(),
        "a process of the fixture's group survived the drop"
    );
}
