//! The failed-login limiter: concurrent guesses get no more than the limit, a lockout of one
//! address does not lock the account's owner out from another, and names that cannot be
//! usernames never become limiter keys.

use super::*;

/// Fires `n` wrong guesses for `name` from one address at once; the 401s among the answers.
async fn concurrent_guesses(deps: &HttpDeps, name: &str, n: usize) -> usize {
    let answers = futures::future::join_all(
        (0..n).map(|_| login(deps, name, "wrong password!", "192.0.2.7")),
    )
    .await;
    for a in &answers {
        assert!(matches!(a.status, 401 | 429), "{a:?}");
    }
    answers.iter().filter(|a| a.status == 401).count()
}

async fn concurrency_suite(deps: &HttpDeps) {
    register(deps, "alice").await;
    let max = deps.config.login_max_failures as usize;
    let checked = concurrent_guesses(deps, "alice", 12).await;
    assert!(
        checked <= max,
        "{checked} concurrent guesses were checked; the limit is {max}"
    );
    // And the limit holds afterwards: the right password from that address is refused too.
    login(deps, "alice", PASSWORD, "192.0.2.7")
        .await
        .assert_error(429, "rate_limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_get_no_more_than_the_limit_on_memory_stores() {
    concurrency_suite(&memory_deps()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_get_no_more_than_the_limit_on_postgres() {
    concurrency_suite(&*postgres_deps_with(accounts_config()).await).await;
}

async fn lockout_suite(deps: &HttpDeps) {
    register(deps, "alice").await;
    // An attacker exhausts alice's guesses from their address ...
    for _ in 0..deps.config.login_max_failures {
        login(deps, "alice", "wrong password!", "198.51.100.66")
            .await
            .assert_error(401, "unauthorized");
    }
    login(deps, "alice", "wrong password!", "198.51.100.66")
        .await
        .assert_error(429, "rate_limited");
    // ... and also under other spellings of her name, which are the same account.
    login(deps, "ALICE", "wrong password!", "198.51.100.66")
        .await
        .assert_error(429, "rate_limited");
    // Alice, from her own address, still gets in.
    let a = login(deps, "alice", PASSWORD, "192.0.2.1").await;
    assert_eq!(a.status, 200, "{a:?}");
}

#[tokio::test]
async fn a_lockout_does_not_lock_the_owner_out_on_memory_stores() {
    lockout_suite(&memory_deps()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lockout_does_not_lock_the_owner_out_on_postgres() {
    lockout_suite(&*postgres_deps_with(accounts_config()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_usernames_never_become_limiter_keys_on_postgres() {
    let (db, url) = migrated_database().await;
    let deps = deps_over(
        Arc::new(db.users()),
        Arc::new(db.history()),
        own_verifier(),
        accounts_config(),
    );
    let junk = format!("zz{}", "x".repeat(5000));
    for name in [junk.as_str(), "zz bad name", "zz\u{202e}evil"] {
        login(&deps, name, "wrong password!", "192.0.2.9")
            .await
            .assert_error(401, "unauthorized");
    }
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let rows: i64 = client
        .query_one(
            "SELECT count(*) FROM login_failures WHERE key LIKE '%zz%'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows, 0, "invalid usernames became limiter keys");
}
