//! Identity on live connections, end to end over hubbub-local with real WebSocket and HTTP
//! clients: a socket whose access token expired is refused and closed; logging out (or
//! replaying a spent refresh token) closes the user's sockets and keeps the revoked access
//! tokens from opening new ones.

use std::time::Duration;

use hubbub_core::auth::JwtIssuer;
use hubbub_tests::local::{
    Client, FRAME_WAIT, Stores, TestLocal, close_code, next_frame, recv_type, refused_status, send,
};
use hubbub_tests::settings::jwt_config;
use serde_json::{Value, json};

/// How long the authorizer may keep answering from its revocation cache (5 s) plus the
/// one-second granularity of `iat`: after this, a revoked token is refused everywhere.
const REVOCATION_SETTLES: Duration = Duration::from_secs(7);

/// The socket is still served: a ping gets its pong.
async fn assert_served(ws: &mut Client) {
    send(ws, json!({"action": "ping"})).await;
    recv_type(ws, "pong", &mut Vec::new()).await;
}

/// Connects with an explicit access token.
async fn ws_with(server: &TestLocal, token: &str) -> Client {
    let (ws, _) = tokio_tungstenite::connect_async(format!("{}/?token={token}", server.ws_url()))
        .await
        .expect("handshake");
    ws
}

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
    let mut alice = ws_with(server, &stale).await;
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

fn access(session: &Value) -> String {
    session["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_owned()
}

fn refresh_token(session: &Value) -> String {
    session["refreshToken"]
        .as_str()
        .expect("refreshToken")
        .to_owned()
}

async fn revocation_suite(server: &TestLocal) {
    let first = server.register("alice").await;
    let second = server.login("alice").await;
    server.register("bob").await;
    let bob_session = server.login("bob").await;
    let mut tabs = vec![
        ws_with(server, &access(&first)).await,
        ws_with(server, &access(&second)).await,
    ];
    let mut bob = ws_with(server, &access(&bob_session)).await;
    for ws in tabs.iter_mut().chain(std::iter::once(&mut bob)) {
        join(ws, "lobby").await;
    }

    // Logging out of one login closes every socket of the user, and only the user's.
    let (status, _) = server
        .post(
            "/auth/logout",
            json!({"refreshToken": refresh_token(&first)}),
        )
        .await;
    assert_eq!(status, 204);
    for ws in &mut tabs {
        assert_eq!(close_code(ws).await, Some(1000));
    }
    assert_served(&mut bob).await;

    // The access tokens issued before the logout no longer open a socket.
    tokio::time::sleep(REVOCATION_SETTLES).await;
    for session in [&first, &second] {
        assert_eq!(
            refused_status(&format!("{}/?token={}", server.ws_url(), access(session))).await,
            401
        );
    }

    // A new login works; replaying its spent refresh token closes its socket too.
    let third = server.login("alice").await;
    let mut tab = ws_with(server, &access(&third)).await;
    assert_served(&mut tab).await;
    let (status, renewed) = server
        .post(
            "/auth/refresh",
            json!({"refreshToken": refresh_token(&third)}),
        )
        .await;
    assert_eq!(status, 200, "{renewed}");
    let (status, reused) = server
        .post(
            "/auth/refresh",
            json!({"refreshToken": refresh_token(&third)}),
        )
        .await;
    assert_eq!(status, 401, "{reused}");
    assert_eq!(close_code(&mut tab).await, Some(1000));
    assert_served(&mut bob).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_logout_closes_the_users_sockets() {
    let server = TestLocal::start().await;
    revocation_suite(&server).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_logout_closes_the_users_sockets_over_postgres_and_dynamodb() {
    let server = TestLocal::over(Stores::PostgresAndDynamo, TestLocal::config()).await;
    revocation_suite(&server).await;
    server.shutdown().await;
}
