//! Who a user is: usernames are one account whatever their case, and an external issuer's
//! users live in their own namespace, so none of them can appear as a local account.

use super::*;

async fn case_suite(deps: &HttpDeps) {
    let alice = register(deps, "Alice").await;
    for other in ["alice", "ALICE", "aLiCe"] {
        call(
            deps,
            Http::sample("http-register").json(credentials(other, PASSWORD)),
        )
        .await
        .assert_error(409, "conflict");
    }
    // Any spelling logs into the one account, which keeps the name it was registered with.
    for spelling in ["alice", "ALICE", "Alice"] {
        let a = login(deps, spelling, PASSWORD, "192.0.2.1").await;
        assert_eq!(a.status, 200, "{spelling}: {a:?}");
        assert_eq!(a.body["user"]["id"], alice.user_id.as_str());
        assert_eq!(a.body["user"]["name"], "Alice");
    }
    // Outside the documented character set: refused before anything is stored.
    for bad in ["al", "alice smith", "alice@example", "ålice", "a\u{0}lice"] {
        call(
            deps,
            Http::sample("http-register").json(credentials(bad, PASSWORD)),
        )
        .await
        .assert_error(400, "bad_request");
    }
}

#[tokio::test]
async fn usernames_are_unique_case_insensitively_on_memory_stores() {
    case_suite(&memory_deps()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usernames_are_unique_case_insensitively_on_postgres() {
    case_suite(&*postgres_deps_with(accounts_config()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_users_never_appear_as_local_users() {
    let jwks = JwksServer::start().await;
    let deps = deps_over(
        Arc::new(MemoryUserStore::new()),
        Arc::new(MemoryHistoryStore::new()),
        jwks.verifier(Duration::from_secs(60)),
        accounts_config(),
    );
    let alice = register(&deps, "alice").await;
    let created = call(
        &deps,
        post(
            "/rooms",
            &alice.access,
            json!({"id": "alices", "name": "Alice's", "private": true}),
        ),
    )
    .await;
    assert_eq!(created.status, 201, "{created:?}");

    // An external token whose `sub` is alice's id and whose name is hers.
    let mut claims = external_claims();
    claims["sub"] = json!(alice.user_id);
    claims["name"] = json!("alice");
    let impostor = sign_external(Algorithm::RS256, "rsa-1", "rsa-private.pem", &claims);

    let rooms = call(&deps, get("/rooms", &impostor)).await;
    assert_eq!(rooms.status, 200, "{rooms:?}");
    assert!(
        rooms.body["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .all(|r| r["id"] != "alices"),
        "the external user sees alice's private room: {rooms:?}"
    );
    call(&deps, get("/rooms/alices/messages", &impostor))
        .await
        .assert_error(403, "forbidden");

    // On the WebSocket, the authorizer vouches for another user than alice.
    let req = events::authorizer("authorizer-query-token", Some(&impostor));
    let resp = authorizer::handle(&deps.verifier, &req)
        .await
        .expect("allowed");
    let v = serde_json::to_value(&resp).expect("serialise");
    assert_ne!(v["context"]["userId"], alice.user_id.as_str(), "{v}");
    assert_ne!(v["context"]["userName"], "alice", "{v}");
    assert_ne!(v["context"]["userName"], "Alice", "{v}");
}
