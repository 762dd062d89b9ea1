//! Identity on live connections, end to end over hubbub-local with real WebSocket and HTTP
//! clients: a socket whose access token expired is refused and closed. (Logging out and
//! replaying a spent refresh token, which close the user's sockets, are in the abuse suite,
//! `abuse.rs`.)

use std::time::Duration;

use hubbub_core::auth::JwtIssuer;
use hubbub_tests::local::{
    Client, FRAME_WAIT, Stores, TestLocal, close_code, next_frame, recv_type, refused_status, send,
};
use hubbub_tests::settings::jwt_config;
use serde_json::json;

/// Joins `room` and waits for `joined`.
async fn join(ws: &mut Client, room: &str) {
    send(ws, json!({"action": "joinRoom", "room": room})).await;
    recv_type(ws, "joined", &mut Vec::new()).await;
}

async fn expired_socket_suite(server: &TestLocal) {
    // A token that expired 27 s ago: still inside the 30 s leeway at the handshake, past it a
    // few seconds later.
    let issuer = JwtIssuer::hs256(&jwt_config("hubbub")).expect("issuer");
    let mut claims = issuer.claims("u-alice", "alice", time::Duration::minutes(15));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    claims.iat = now - 900;
    claims.nbf = now - 900;
    claims.exp = now - 27;
    let stale = issuer.sign(&claims).expect("token");
    let mut alice = server.ws_token(&stale).await;
    join(&mut alice, "lobby").await;
    let mut bob = server.ws("bob").await;
    join(&mut bob, "lobby").await;

    // Past the leeway: every route refuses the connection, and it is closed.
    let past = Duration::from_secs(u64::try_from(claims.exp + 31 - now).unwrap_or(0));
    tokio::time::sleep(past).await;
    send(
        &mut alice,
        json!({"action": "sendMessage", "room": "lobby", "body": "still here?", "clientMsgId": "m-1"}),
    )
    .await;
    let refused = loop {
        match next_frame(&mut alice, FRAME_WAIT).await {
            Some(Ok(f)) if f["type"] == "error" => break f,
            Some(Ok(f)) if f["type"] == "presence" => continue,
            other => panic!("expected an unauthorized error frame, got {other:?}"),
        }
    };
    assert_eq!(refused["code"], "unauthorized", "{refused}");
    assert_eq!(refused["clientMsgId"], "m-1", "{refused}");
    assert_eq!(close_code(&mut alice).await, Some(1000));

    // Nothing was stored, and the room carries on for bob.
    send(&mut bob, json!({"action": "history", "room": "lobby"})).await;
    let page = recv_type(&mut bob, "history", &mut Vec::new()).await;
    assert_eq!(page["messages"], json!([]), "{page}");
    send(
        &mut bob,
        json!({"action": "sendMessage", "room": "lobby", "body": "hi", "clientMsgId": "b-1"}),
    )
    .await;
    recv_type(&mut bob, "ack", &mut Vec::new()).await;
    // The expired token cannot come back.
    assert_eq!(
        refused_status(&format!("{}/?token={stale}", server.ws_url())).await,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_expired_token_socket_is_refused_and_closed() {
    let server = TestLocal::start().await;
    expired_socket_suite(&server).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_expired_token_socket_is_refused_and_closed_over_postgres_and_dynamodb() {
    let server = TestLocal::over(Stores::PostgresAndDynamo, TestLocal::config()).await;
    expired_socket_suite(&server).await;
    server.shutdown().await;
}
