//! A revoked login at the handler level: the authorizer refuses the user's access tokens issued
//! before their revocation marker (read through a brief cache, and never admitting a token when
//! the marker cannot be read), and ending a user's sessions writes the marker and closes exactly
//! that user's connections through `DELETE @connections`.

use std::time::Duration;

use hubbub_core::auth::{Claims, JwtIssuer, JwtVerifier, TokenVerifier};
use hubbub_core::gateway::Endpoint;
use hubbub_core::protocol::UserRef;
use hubbub_core::session::{RevocationCheck, SessionEnder};
use hubbub_core::store::Connection;
use hubbub_core::store::dynamodb::DynamoConnectionStore;
use hubbub_tests::events;
use hubbub_tests::settings::jwt_config;
use time::OffsetDateTime;

use super::*;

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// A token of `u-{name}` issued at `iat`.
fn token_issued_at(name: &str, iat: i64) -> String {
    let issuer = JwtIssuer::hs256(&jwt_config("hubbub")).expect("issuer");
    issuer
        .sign(&Claims {
            iat,
            nbf: iat,
            ..issuer.claims(&format!("u-{name}"), name, time::Duration::minutes(15))
        })
        .expect("sign")
}

fn verifier() -> TokenVerifier {
    TokenVerifier::new(
        JwtVerifier::hs256(&jwt_config("hubbub")).expect("verifier"),
        None,
    )
}

/// What the authorizer answers for `token`: `Ok(user id)` for an Allow policy, else the
/// Lambda runtime's error type (`Unauthorized` is API Gateway's 401; anything else its 500).
async fn authorize(check: &RevocationCheck, token: &str) -> Result<String, String> {
    let req = events::authorizer("authorizer-query-token", Some(token));
    match authorizer::handle_checked(&verifier(), check, &req).await {
        Ok(policy) => {
            let v = serde_json::to_value(&policy).expect("serialise");
            assert_eq!(
                v["policyDocument"]["Statement"][0]["Effect"], "Allow",
                "{v}"
            );
            Ok(v["context"]["userId"].as_str().expect("userId").to_owned())
        }
        Err(e) => Err(lambda_runtime::Diagnostic::from(e).error_type),
    }
}

async fn marker_suite(store: Arc<dyn ConnectionStore>) {
    // No cache here: the marker's rule alone.
    let check = RevocationCheck::new(store.clone(), Duration::ZERO);
    let t = now();
    let (old, fresh) = (
        token_issued_at("alice", t - 20),
        token_issued_at("alice", t),
    );
    let bob = token_issued_at("bob", t - 20);
    assert_eq!(authorize(&check, &old).await, Ok("u-alice".into()));

    store
        .revoke_tokens_before(
            "u-alice",
            t - 5,
            OffsetDateTime::now_utc() + time::Duration::minutes(20),
        )
        .await
        .expect("revoke");
    assert_eq!(
        authorize(&check, &old).await,
        Err("Unauthorized".into()),
        "a token issued before the marker opens no connection"
    );
    assert_eq!(
        authorize(&check, &fresh).await,
        Ok("u-alice".into()),
        "a login after the marker does"
    );
    assert_eq!(
        authorize(&check, &bob).await,
        Ok("u-bob".into()),
        "other users are not touched"
    );
}

#[tokio::test]
async fn authorizer_refuses_tokens_issued_before_the_users_marker_on_memory_stores() {
    marker_suite(Arc::new(MemoryConnectionStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizer_refuses_tokens_issued_before_the_users_marker_on_dynamodb() {
    marker_suite(Arc::new(hubbub_tests::fresh_connections().await)).await;
}

#[tokio::test]
async fn authorizer_trusts_a_read_marker_only_briefly() {
    let store: Arc<dyn ConnectionStore> = Arc::new(MemoryConnectionStore::new());
    let ttl = Duration::from_millis(400);
    let check = RevocationCheck::new(store.clone(), ttl);
    let token = token_issued_at("alice", now() - 20);
    assert_eq!(authorize(&check, &token).await, Ok("u-alice".into()));
    store
        .revoke_tokens_before(
            "u-alice",
            now(),
            OffsetDateTime::now_utc() + time::Duration::minutes(20),
        )
        .await
        .expect("revoke");
    // Within the cache's window the earlier read still answers (the documented lag) ...
    assert_eq!(authorize(&check, &token).await, Ok("u-alice".into()));
    // ... and not a moment longer.
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    assert_eq!(authorize(&check, &token).await, Err("Unauthorized".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizer_refuses_when_the_marker_cannot_be_read_on_dynamodb() {
    // A table that does not exist: every read of it fails.
    let store: Arc<dyn ConnectionStore> = Arc::new(DynamoConnectionStore::new(
        hubbub_tests::dynamodb_client(),
        format!("hubbub-missing-{}", uuid::Uuid::new_v4().simple()),
    ));
    let check = RevocationCheck::new(store, Duration::ZERO);
    let answer = authorize(&check, &token_issued_at("alice", now())).await;
    assert_eq!(
        answer,
        Err("Unavailable".into()),
        "a token that may be revoked is not let in, and the handshake fails with 500"
    );
}

async fn end_sessions_suite(connections: Arc<dyn ConnectionStore>) {
    let rec = Recorder::start().await;
    let at = OffsetDateTime::now_utc();
    let user = |name: &str| UserRef {
        id: format!("u-{name}"),
        name: name.into(),
    };
    let alice_tabs = ["alice-tab-1", "alice-tab-2"];
    for id in alice_tabs {
        connections
            .put_connection(&Connection::new(id, user("alice"), at))
            .await
            .expect("put");
    }
    connections
        .put_connection(&Connection::new("bob-tab", user("bob"), at))
        .await
        .expect("put");
    let ender = SessionEnder {
        connections: connections.clone(),
        gateway: rec.gateway(),
        endpoint: Endpoint::for_request("", "", Some(&rec.endpoint())),
        access_ttl: time::Duration::minutes(15),
    };
    let closed = ender
        .end_sessions("u-alice", at)
        .await
        .expect("end sessions");
    assert_eq!(closed, 2);
    let mut deleted = rec.lock().deleted.clone();
    deleted.sort();
    assert_eq!(
        deleted, alice_tabs,
        "exactly alice's connections are closed"
    );
    // Every token issued up to that second is revoked; bob has no marker.
    assert_eq!(
        connections
            .tokens_revoked_before("u-alice")
            .await
            .expect("marker"),
        Some(at.unix_timestamp() + 1)
    );
    assert_eq!(
        connections
            .tokens_revoked_before("u-bob")
            .await
            .expect("marker"),
        None
    );
}

#[tokio::test]
async fn ending_sessions_closes_only_the_users_connections_on_memory_stores() {
    end_sessions_suite(Arc::new(MemoryConnectionStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_sessions_closes_only_the_users_connections_on_dynamodb() {
    end_sessions_suite(Arc::new(hubbub_tests::fresh_connections().await)).await;
}
