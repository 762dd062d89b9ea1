//! Accounts: registration, login, refresh and logout, and the failed-login rate limit,
//! on the in-memory stores and on PostgreSQL.

use super::*;

async fn accounts_suite(deps: &HttpDeps) {
    // register
    let alice = register(deps, "alice").await;
    call(
        deps,
        Http::sample("http-register").json(credentials("alice", "another password")),
    )
    .await
    .assert_error(409, "conflict");
    for (body, needle) in [
        (credentials("al", PASSWORD), "`username`"),
        (credentials("al ice", PASSWORD), "`username`"),
        (credentials(&"a".repeat(33), PASSWORD), "`username`"),
        (credentials("bob", "short"), "`password`"),
        (credentials("bob", &"p".repeat(129)), "`password`"),
        (json!({"username": "bob"}), "missing field `password`"),
        (
            json!({"username": "bob", "password": 12345678}),
            "`password` must be a string",
        ),
        (
            json!({"username": "bob", "password": PASSWORD, "admin": true}),
            "unknown field in the body; allowed: `username`, `password`",
        ),
        (json!(["bob", PASSWORD]), "JSON object"),
    ] {
        let a = call(deps, Http::sample("http-register").json(body.clone())).await;
        a.assert_error(400, "bad_request");
        assert!(a.message().contains(needle), "{body}: {a:?}");
        assert!(!a.message().contains("12345678"), "no input echo: {a:?}");
    }
    // A long value in a wrong-typed field, and an unknown field with a long name: the answer
    // names the field and the problem, quotes neither, and stays short.
    let long = "q".repeat(10_000);
    for (body, needle) in [
        (
            json!({"username": "bob", "password": [long.clone()]}),
            "`password` must be a string",
        ),
        (
            json!({"username": "bob", "password": PASSWORD, long.clone(): true}),
            "unknown field in the body",
        ),
    ] {
        let a = call(deps, Http::sample("http-register").json(body)).await;
        a.assert_error(400, "bad_request");
        assert!(a.message().contains(needle), "{a:?}");
        assert!(!a.message().contains("qqq"), "no input echo");
        assert!(a.message().len() < 120, "{}", a.message());
    }
    for raw in ["{\"username\":", "", "null"] {
        call(deps, Http::sample("http-register").body(raw))
            .await
            .assert_error(400, "bad_request");
    }

    // login: one answer for every wrong credential
    let ok = login(deps, "alice", PASSWORD, "198.51.100.1").await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let via_login = session_of(&ok);
    assert_eq!(via_login.user_id, alice.user_id);
    let wrong = login(deps, "alice", "wrong password!", "198.51.100.2").await;
    wrong.assert_error(401, "unauthorized");
    let unknown = login(deps, "mallory", PASSWORD, "198.51.100.3").await;
    unknown.assert_error(401, "unauthorized");
    assert_eq!(wrong.message(), unknown.message());
    let odd = login(deps, "not a valid name!", PASSWORD, "198.51.100.4").await;
    odd.assert_error(401, "unauthorized");
    assert_eq!(odd.message(), wrong.message());

    // refresh rotates; the spent token is refused and takes its successors down with it
    let r1 = refresh(deps, &via_login.refresh).await;
    assert_eq!(r1.status, 200, "{r1:?}");
    let s1 = session_of(&r1);
    assert_ne!(s1.refresh, via_login.refresh);
    assert_eq!(s1.user_id, alice.user_id);
    let r2 = refresh(deps, &s1.refresh).await;
    assert_eq!(r2.status, 200, "{r2:?}");
    let s2 = session_of(&r2);
    refresh(deps, &via_login.refresh)
        .await
        .assert_error(401, "unauthorized");
    refresh(deps, &s2.refresh)
        .await
        .assert_error(401, "unauthorized");
    // the registration's family is another login: untouched
    let r3 = refresh(deps, &alice.refresh).await;
    assert_eq!(r3.status, 200, "{r3:?}");
    let s3 = session_of(&r3);
    refresh(deps, "not-a-token")
        .await
        .assert_error(401, "unauthorized");
    refresh(deps, &"x".repeat(500))
        .await
        .assert_error(401, "unauthorized");
    call(deps, Http::sample("http-refresh").json(json!({})))
        .await
        .assert_error(400, "bad_request");

    // logout revokes; logging out again is fine
    let logout = |t: &str| {
        call(
            deps,
            Http::sample("http-logout").json(json!({"refreshToken": t})),
        )
    };
    assert_eq!(logout(&s3.refresh).await.status, 204);
    assert_eq!(logout(&s3.refresh).await.status, 204);
    assert_eq!(logout("never-issued").await.status, 204);
    let a = call(
        deps,
        Http::sample("http-logout").json(json!({"token": "x"})),
    )
    .await;
    a.assert_error(400, "bad_request");
    // The unknown name is not echoed; the fields the route takes are named.
    assert!(
        a.message().contains("unknown field") && a.message().contains("`refreshToken`"),
        "{a:?}"
    );
    refresh(deps, &s3.refresh)
        .await
        .assert_error(401, "unauthorized");

    // the access token works on authenticated routes
    let a = call(deps, get("/rooms", &s1.access)).await;
    assert_eq!(a.status, 200, "{a:?}");
}

#[tokio::test]
async fn accounts_on_memory_stores() {
    accounts_suite(&memory_deps()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_on_postgres() {
    accounts_suite(&*postgres_deps_with(accounts_config()).await).await;
}

async fn rate_limit_suite(deps: &HttpDeps) {
    register(deps, "alice").await;
    register(deps, "bob").await;
    register(deps, "carol").await;
    // Three failures for alice from one address: the limit (3) is reached.
    for _ in 0..3 {
        login(deps, "alice", "wrong password!", "192.0.2.1")
            .await
            .assert_error(401, "unauthorized");
    }
    // Now even the right password is refused from that address (per account and address) ...
    let a = login(deps, "alice", PASSWORD, "192.0.2.1").await;
    a.assert_error(429, "rate_limited");
    let retry: u64 = a
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=900).contains(&retry), "{retry}");
    // ... and any username from that address (per address) ...
    login(deps, "bob", PASSWORD, "192.0.2.1")
        .await
        .assert_error(429, "rate_limited");
    assert_eq!(login(deps, "bob", PASSWORD, "192.0.2.2").await.status, 200);
    // ... but not alice from another address: a lockout is no way to lock her out.
    assert_eq!(
        login(deps, "alice", PASSWORD, "192.0.2.99").await.status,
        200
    );
    // Unknown usernames are counted like real ones.
    for _ in 0..3 {
        login(deps, "nobody", "whatever!", "192.0.2.10")
            .await
            .assert_error(401, "unauthorized");
    }
    login(deps, "nobody", "whatever!", "192.0.2.10")
        .await
        .assert_error(429, "rate_limited");
    // A success clears the account's count and costs the address nothing.
    for i in 0..2 {
        login(
            deps,
            "carol",
            "wrong password!",
            &format!("192.0.2.{}", 30 + i),
        )
        .await
        .assert_error(401, "unauthorized");
    }
    assert_eq!(
        login(deps, "carol", PASSWORD, "192.0.2.40").await.status,
        200
    );
    for i in 0..2 {
        login(
            deps,
            "carol",
            "wrong password!",
            &format!("192.0.2.{}", 50 + i),
        )
        .await
        .assert_error(401, "unauthorized");
    }
    assert_eq!(
        login(deps, "carol", PASSWORD, "192.0.2.60").await.status,
        200
    );
}

#[tokio::test]
async fn failed_logins_are_rate_limited_on_memory_stores() {
    rate_limit_suite(&memory_deps()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_rate_limited_on_postgres() {
    rate_limit_suite(&*postgres_deps_with(accounts_config()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_cost_as_much_as_wrong_passwords() {
    // Costs high enough that a skipped verification would stand out (a few ms per hash).
    let deps = memory_deps_with(AccountsConfig {
        argon2: Argon2Config {
            memory_kib: 8 * 1024,
            iterations: 2,
            parallelism: 1,
        },
        login_max_failures: 1000,
        ..accounts_config()
    });
    register(&deps, "alice").await;
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..5 {
        let t = Instant::now();
        login(&deps, "alice", "wrong password!", &format!("192.0.2.{i}")).await;
        wrong.push(t.elapsed());
        let t = Instant::now();
        login(
            &deps,
            "nobody-here",
            "wrong password!",
            &format!("192.0.2.{i}"),
        )
        .await;
        unknown.push(t.elapsed());
    }
    wrong.sort();
    unknown.sort();
    let (w, u) = (wrong[2], unknown[2]);
    assert!(
        u * 3 >= w && w * 3 >= u,
        "medians differ too much: wrong password {w:?}, unknown user {u:?}"
    );
}

#[test]
fn account_settings_default_sensibly_and_refuse_bad_numbers() {
    let c = AccountsConfig::from_lookup(&|_| None).expect("defaults");
    assert_eq!(c.access_ttl, time::Duration::minutes(15));
    assert_eq!(c.refresh_ttl, time::Duration::days(30));
    assert_eq!(c.argon2, Argon2Config::default());
    assert_eq!((c.login_max_failures, c.max_body_bytes), (5, 16 * 1024));
    let e = AccountsConfig::from_lookup(&|var| {
        (var == "HUBBUB_LOGIN_MAX_FAILURES").then(|| "lots".to_owned())
    })
    .expect_err("not a number");
    assert!(e.to_string().contains("HUBBUB_LOGIN_MAX_FAILURES"), "{e}");
}
