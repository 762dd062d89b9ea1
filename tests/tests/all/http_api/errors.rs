//! Every failure has the error shape and leaks nothing.

use super::*;

#[tokio::test]
async fn every_failure_has_the_error_shape_and_leaks_nothing() {
    let deps = memory_deps();
    let alice = register(&deps, "alice").await;

    // the request id comes back
    let a = call(
        &deps,
        Http::sample("http-login")
            .json(credentials("alice", "nope nope"))
            .request_id("req-id-0042="),
    )
    .await;
    a.assert_error(401, "unauthorized");
    assert_eq!(a.body["error"]["requestId"], "req-id-0042=");

    // too large: 413 before parsing (the limit is 16 KiB)
    let big = json!({"username": "alice", "password": "p".repeat(20 * 1024)});
    call(&deps, Http::sample("http-login").json(big))
        .await
        .assert_error(413, "payload_too_large");

    // unknown routes and methods
    for (method, path) in [
        ("GET", "/nope"),
        ("GET", "/auth/login"),
        ("DELETE", "/rooms"),
        ("PUT", "/rooms/lobby/members"),
        ("GET", "/dm/bob"),
    ] {
        call(
            &deps,
            Http::sample("http-health")
                .route(method, path)
                .bearer(&alice.access),
        )
        .await
        .assert_error(404, "not_found");
    }

    // a named stage in front of the path is not part of the route
    let staged = call(
        &deps,
        Http::sample("http-health")
            .route("GET", "/prod/health")
            .with(|v| v["requestContext"]["stage"] = json!("prod")),
    )
    .await;
    assert_eq!(staged.status, 200, "{staged:?}");

    // a database that cannot be reached: 503, and not a word about it
    let down = Database::connect(
        &hubbub_core::config::PostgresConfig {
            url: "postgres://hubbub@127.0.0.1:9/secretdb".into(),
        },
        1,
    )
    .expect("pool");
    let broken = deps_over(
        Arc::new(down.users()),
        Arc::new(down.history()),
        own_verifier(),
        accounts_config(),
    );
    for ev in [
        Http::sample("http-register").json(credentials("dave", PASSWORD)),
        get("/rooms", &alice.access),
    ] {
        let a = call(&broken, ev).await;
        a.assert_error(503, "unavailable");
        let text = a.body.to_string();
        for secret in ["127.0.0.1", "secretdb", "refused", "postgres"] {
            assert!(!text.contains(secret), "leaks {secret}: {text}");
        }
    }
}
