//! The HTTP API on the same port as the WebSocket API: accounts, then chat with the tokens
//! issued, refresh rotation, stage prefixes, API Gateway's own answers and CORS.

use hubbub_tests::local::{TestLocal, recv_type, send};
use hubbub_tests::settings::PASSWORD;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Accounts over HTTP, then chat over WebSocket with the access tokens login issued, then
/// the history over HTTP again: one set of stores and one JWT secret behind both APIs.
async fn http_then_websocket_scenario(server: &TestLocal) {
    let alice = server.register("alice").await;
    server.register("bob").await;
    let (status, wrong) = server
        .post(
            "/auth/login",
            json!({"username": "alice", "password": "not the password"}),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(wrong["error"]["code"], "unauthorized");
    let alice_login = server.login("alice").await;
    let bob_login = server.login("bob").await;
    assert_eq!(alice_login["user"], alice["user"]);
    let alice_token = alice_login["accessToken"].as_str().expect("accessToken");
    let bob_token = bob_login["accessToken"].as_str().expect("accessToken");

    // The access tokens open WebSockets: in the query string and as a subprotocol.
    let (mut a, _) =
        tokio_tungstenite::connect_async(format!("{}/?token={alice_token}", server.ws_url()))
            .await
            .expect("alice connects with her login token");
    let mut req = format!("{}/{}", server.ws_url(), server.config().stage)
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(&format!("hubbub.v1, bearer.{bob_token}")).expect("header"),
    );
    let (mut b, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("bob connects with his login token");
    let mut log = Vec::new();
    for ws in [&mut a, &mut b] {
        send(ws, json!({"action":"joinRoom","room":"general"})).await;
        recv_type(ws, "joined", &mut log).await;
    }
    send(
        &mut a,
        json!({"action":"sendMessage","room":"general","body":"hi bob","clientMsgId":"m-1"}),
    )
    .await;
    let ack = recv_type(&mut a, "ack", &mut log).await;
    assert_eq!(ack["seq"], 1);
    let msg = recv_type(&mut b, "message", &mut log).await;
    assert_eq!(msg["body"], "hi bob");
    assert_eq!(
        msg["sender"], alice["user"],
        "the sender is the registered user"
    );

    // The message is in the history the HTTP API reads.
    let (status, history) = server
        .get("/rooms/general/messages?after=0", Some(bob_token))
        .await;
    assert_eq!(status, 200, "{history:?}");
    let messages = history["messages"].clone();
    assert_eq!(messages.as_array().map(Vec::len), Some(1), "{messages}");
    assert_eq!(messages[0]["body"], "hi bob");
    assert_eq!(messages[0]["id"], ack["id"]);
    let (status, rooms) = server.get("/rooms", Some(alice_token)).await;
    assert_eq!(status, 200);
    assert!(
        rooms["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .any(|r| r["id"] == "general"),
        "{rooms:?}"
    );
    a.close(None).await.expect("close");
    b.close(None).await.expect("close");
}

#[tokio::test]
async fn local_http_register_login_then_chat() {
    let server = TestLocal::start().await;
    http_then_websocket_scenario(&server).await;
    server.shutdown().await;
}

#[tokio::test]
async fn local_http_register_login_then_chat_on_postgres() {
    let (db, url) = hubbub_tests::migrated_database().await;
    drop(db);
    let mut c = TestLocal::config();
    c.database_url = Some(url);
    let server = TestLocal::with_config(c).await;
    assert_eq!(server.stores().history, "PostgreSQL");
    http_then_websocket_scenario(&server).await;
    server.shutdown().await;
}

#[tokio::test]
async fn local_http_refresh_rotation() {
    let server = TestLocal::start().await;
    let session = server.register("carol").await;
    let first = session["refreshToken"].as_str().expect("refreshToken");
    let (status, rotated) = server
        .post("/auth/refresh", json!({"refreshToken": first}))
        .await;
    assert_eq!(status, 200);
    let second = rotated["refreshToken"].as_str().expect("refreshToken");
    assert_ne!(first, second, "refresh rotates the refresh token");
    assert_eq!(rotated["user"], session["user"]);
    // The new access token works on an authenticated route.
    let (status, _) = server
        .get(
            "/rooms",
            Some(rotated["accessToken"].as_str().expect("accessToken")),
        )
        .await;
    assert_eq!(status, 200);
    // Reusing the spent token is refused and revokes the whole family.
    let (status, _) = server
        .post("/auth/refresh", json!({"refreshToken": first}))
        .await;
    assert_eq!(status, 401);
    let (status, _) = server
        .post("/auth/refresh", json!({"refreshToken": second}))
        .await;
    assert_eq!(status, 401, "the family was revoked");
    // A new login's token logs out, after which it is refused.
    let fresh = server.login("carol").await;
    let token = fresh["refreshToken"].as_str().expect("refreshToken");
    let logout = json!({"refreshToken": token}).to_string();
    let out = server
        .request("POST", "/auth/logout", &[], Some(&logout))
        .await;
    assert_eq!(out.status, 204);
    assert!(out.body.is_empty());
    let (status, _) = server
        .post("/auth/refresh", json!({"refreshToken": token}))
        .await;
    assert_eq!(status, 401);
    server.shutdown().await;
}

#[tokio::test]
async fn local_http_stage_prefix_and_gateway_answers() {
    let server = TestLocal::start().await;
    let stage = server.config().stage.clone();
    for path in ["/health".to_owned(), format!("/{stage}/health")] {
        let resp = server.request("GET", &path, &[], None).await;
        assert_eq!(resp.status, 200, "{path}");
        assert_eq!(resp.json(), json!({"status": "ok"}));
        assert_eq!(resp.header("apigw-requestid").map(str::len), Some(16));
    }
    // Register under the stage, log in without it: the same API.
    server.register_at(&format!("/{stage}"), "dave").await;
    server.login("dave").await;
    // The handler's errors carry the request id API Gateway answers with.
    let anonymous = server
        .request("GET", &format!("/{stage}/rooms"), &[], None)
        .await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.json()["error"]["requestId"].as_str(),
        anonymous.header("apigw-requestid")
    );
    // No route: API Gateway's own 404, the function is not invoked.
    for (method, path) in [
        ("GET", "/prod/health"),
        ("DELETE", "/rooms"),
        ("GET", "/auth/login"),
        ("POST", "/auth/whoami"),
        ("GET", "/rooms/general"),
    ] {
        let resp = server.request(method, path, &[], None).await;
        assert_eq!(resp.status, 404, "{method} {path}");
        assert_eq!(
            resp.json(),
            json!({"message": "Not Found"}),
            "{method} {path}"
        );
    }
    // The body limit is the handler's: over it, its 413.
    let big = json!({"username": "x".repeat(20 * 1024), "password": PASSWORD}).to_string();
    let resp = server
        .request("POST", "/auth/register", &[], Some(&big))
        .await;
    assert_eq!(resp.status, 413);
    assert_eq!(resp.json()["error"]["code"], "payload_too_large");
    server.shutdown().await;
}

#[tokio::test]
async fn local_http_cors() {
    let server = TestLocal::start().await;
    let preflight = [
        ("Origin", "http://localhost:5173"),
        ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "content-type"),
    ];
    for path in ["/auth/login", "/local/rooms/general/messages"] {
        let resp = server.request("OPTIONS", path, &preflight, None).await;
        assert_eq!(resp.status, 204, "{path}");
        assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            resp.header("access-control-allow-methods"),
            Some("GET,POST,PUT,DELETE")
        );
        assert_eq!(
            resp.header("access-control-allow-headers"),
            Some("authorization,content-type")
        );
        assert_eq!(resp.header("access-control-max-age"), Some("600"));
    }
    let resp = server
        .request(
            "GET",
            "/health",
            &[("Origin", "http://localhost:5173")],
            None,
        )
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    server.shutdown().await;

    // A list of origins: a listed origin is echoed, another gets no CORS headers.
    let mut c = TestLocal::config();
    c.cors_origins = vec!["http://app.test".into()];
    let server = TestLocal::with_config(c).await;
    let allowed = [
        ("Origin", "http://app.test"),
        ("Access-Control-Request-Method", "GET"),
    ];
    let resp = server.request("OPTIONS", "/rooms", &allowed, None).await;
    assert_eq!(resp.status, 204);
    assert_eq!(
        resp.header("access-control-allow-origin"),
        Some("http://app.test")
    );
    assert_eq!(resp.header("vary"), Some("origin"));
    let other = [
        ("Origin", "http://evil.test"),
        ("Access-Control-Request-Method", "GET"),
    ];
    let resp = server.request("OPTIONS", "/rooms", &other, None).await;
    assert_eq!(resp.status, 204);
    assert_eq!(resp.header("access-control-allow-origin"), None);
    assert_eq!(resp.header("access-control-allow-methods"), None);
    let resp = server
        .request("GET", "/health", &[("Origin", "http://evil.test")], None)
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("access-control-allow-origin"), None);
    server.shutdown().await;
}
